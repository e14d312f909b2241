#!/usr/bin/env bash
# Interleaves echo servers (A B A B ...) for ROUNDS rounds with measure.sh and prints, per server,
# the median server CPU per message and messages/s, and the ratio of each median to the first
# server's. Usage:
#   compare.sh [--rounds 5] [measure.sh options...] -- NAME=COMMAND NAME=COMMAND ...
# Each COMMAND contains {port}. Example:
#   compare.sh --rounds 5 -- "c=/tmp/echo-baseline-build/c_epoll_echo {port}" \
#       "iopool=CLI/.build/release/iopool echo-server --port {port} --threads 1"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=5
options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) rounds=$2; shift 2 ;;
        --) shift; break ;;
        *) options+=("$1"); shift ;;
    esac
done
[ $# -ge 1 ] || { echo "usage: compare.sh [--rounds N] [measure options] -- NAME=COMMAND..." >&2; exit 64; }
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for round in $(seq 1 "$rounds"); do
    for spec in "$@"; do
        name=${spec%%=*}
        command=${spec#*=}
        # shellcheck disable=SC2086
        line=$("$here/measure.sh" "${options[@]}" -- $command 2>/dev/null)
        echo "round $round $name $line" >&2
        echo "$name $line" >>"$results"
    done
done
python3 - "$results" "$@" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    values = dict(f.split("=") for f in fields)
    rows.setdefault(name, []).append(values)
names = [spec.split("=", 1)[0] for spec in sys.argv[2:]]
base = None
print(f"{'server':<12} {'rounds':>6} {'cpu_us/msg (median)':>20} {'msgs/s (median)':>16} {'cpu ratio':>10}")
for name in names:
    cpu = statistics.median(float(r["server_cpu_us_per_msg"]) for r in rows[name])
    rate = statistics.median(float(r["msgs_per_sec"]) for r in rows[name])
    base = base or cpu
    print(f"{name:<12} {len(rows[name]):>6} {cpu:>20.3f} {rate:>16.0f} {cpu / base:>10.3f}")
PY

#!/usr/bin/env bash
# Deterministic counts as a budget (issue 11; SwiftNIO's allocation-counter tests are the model):
# user-space instructions per echoed message (callgrind) and syscalls per message (perf stat
# tracepoints) of `iopool echo-server --threads 1`, IOThreadPool and WorkStealingPool, 16
# connections of 64-byte ping-pong from the C client. Fails if a figure is more than 10% above the
# one recorded in BENCHMARKS.md, between the counts-budget markers; lower it there as optimisations
# land. Method and the valgrind workarounds: Benchmarks/counts/README.md.
# Usage: counts-budget.sh [BINARY]   (default CLI/.build/release/iopool)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-CLI/.build/release/iopool}

missing=()
for tool in python3 cc valgrind callgrind_control objcopy readelf ldd perf taskset; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "error: the counts budget needs ${missing[*]} (not found on PATH); install them (Debian: valgrind, linux-perf, gcc, binutils, util-linux)" >&2
    exit 1
fi
# Syscall tracepoints need root or a permissive perf_event_paranoid; say so instead of a perf error.
if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt -1 ]; then
    echo "error: perf stat's syscall tracepoints need root or kernel.perf_event_paranoid=-1" >&2
    exit 1
fi
if [ ! -x "$binary" ]; then
    echo "error: $binary not found; build it first (swift build -c release --package-path CLI --product iopool)" >&2
    exit 1
fi

# Three runs each, the minimum compared: WorkStealingPool's figure depends on timing (how many
# reads find the next message already there), so one run can land high; see README.md.
python3 Benchmarks/counts/counts.py --binary "$binary" --servers io,stealing --connections 16 \
    --runs 3 --budget BENCHMARKS.md

#!/usr/bin/env bash
# CPU per message of the two load clients, the C one (pingpong_client) and the Swift one
# (`iopool load`), against the same C epoll server: a load client must cost less per message than
# the servers it drives, or it, not the server, sets the pace (issue 11). The server runs on CPU 0,
# each client in turn on CPU 1, ROUNDS interleaved rounds of 5 s with no warm-up; a client's cost is
# its whole process's CPU time (bash `times`, set-up included) ÷ the round trips it counted.
#   client-cost.sh IOPOOL PINGPONG_CLIENT C_EPOLL_ECHO CONNECTIONS [ROUNDS]
# e.g. client-cost.sh CLI/.build/release/iopool bench-results/pingpong_client bench-results/c_epoll_echo 16 3
# (`iopool bench echo` leaves both C binaries in its --output directory).
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n 2,9p "$0" >&2; exit 64; }
iopool=$1 client=$2 server=$3 connections=$4 rounds=${5:-3}
work=$(mktemp -d)
taskset -c 0 "$server" 0 >"$work/server.out" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q listening "$work/server.out" && break; sleep 0.1; done
port=$(grep -o '[0-9]*$' "$work/server.out")
seconds() { awk '{ split($1, u, "m"); split($2, s, "m"); sub("s", "", u[2]); sub("s", "", s[2]); print u[1] * 60 + u[2] + s[1] * 60 + s[2] }'; }
for round in $(seq "$rounds"); do
    for name in C Swift; do
        if [[ $name == C ]]; then
            out=$(bash -c "taskset -c 1 '$client' --port $port --connections $connections --warmup 0 --seconds 5 2>/dev/null; times")
        else
            out=$(bash -c "taskset -c 1 '$iopool' load --port $port --connections $connections --warmup 0 --duration 5 --json; times")
        fi
        messages=$(head -1 <<<"$out" | sed 's/.*"messages":\([0-9]*\).*/\1/')
        cpu=$(tail -1 <<<"$out" | seconds)
        awk -v r="$round" -v c="$name" -v n="$messages" -v t="$cpu" -v k="$connections" \
            'BEGIN { printf "%d conns, round %d, %-5s client: %d messages, %.2f s CPU, %.2f us/msg\n", k, r, c, n, t, t * 1e6 / n }'
    done
done

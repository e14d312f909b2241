#!/usr/bin/env bash
# EMFILE on accept: runs `iopool echo-server` with a 64-descriptor limit, opens more connections
# than it can accept, and checks that it neither crashes nor spins a core while out of
# descriptors, and that it serves new clients once descriptors free up. The same scenario runs
# inside `swift test` (CLI/Tests/iopoolTests/AcceptOutOfDescriptorsTests.swift) on the debug and TSan
# builds; this script covers the release binary.
set -euo pipefail
binary=${1:-CLI/.build/release/iopool}
extra="${*:2}"  # e.g. --pool stealing
source "$(dirname "$0")/lib.sh"
out=$(mktemp)
start_echo_server "$out" bash -c "ulimit -n 64 && exec \"$binary\" echo-server --host 127.0.0.1 --port 0 --threads 1 --grace-period 1 $extra"
pid=$SERVER_PID
port=$SERVER_PORT
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
python3 - "$port" "$pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
ticks = os.sysconf("SC_CLK_TCK")
def cpu_seconds():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks
def echo_once(payload=b"ping"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(payload); s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
    s.close()
    assert data == payload, data
echo_once()
held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(120)]
time.sleep(0.5)
before = cpu_seconds()
time.sleep(2.0)
spent = cpu_seconds() - before
print(f"server CPU while out of descriptors: {spent:.3f} s over 2 s")
assert spent < 0.3, "the server spins while accept fails with EMFILE"
for s in held: s.close()
time.sleep(0.5)
echo_once(b"served again after descriptors were freed")
print("emfile smoke: ok")
PY
kill -0 "$pid" || { echo "echo-server died"; cat "$out"; exit 1; }
kill -TERM "$pid"
wait "$pid" || { echo "echo-server exited with status $? after SIGTERM"; cat "$out"; exit 1; }
backoffs=$(sed -n 's/.*accept back-offs (out of descriptors or memory): //p' "$out")
echo "accept back-offs: ${backoffs:-none reported}"
[ "${backoffs:-0}" -gt 0 ] || { echo "the server never ran out of descriptors: the scenario did not test EMFILE"; cat "$out"; exit 1; }

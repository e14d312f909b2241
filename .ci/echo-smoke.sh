#!/usr/bin/env bash
# Starts `iopool echo-server` on a free loopback port, echoes through it with Python (half-close,
# 1 MiB, 200 concurrent connections), and checks that SIGTERM shuts it down cleanly.
# Usage: echo-smoke.sh [BINARY [EXTRA ECHO-SERVER OPTIONS, e.g. --pool stealing]]
set -euo pipefail
binary=${1:-CLI/.build/release/iopool}
extra=("${@:2}")
source "$(dirname "$0")/lib.sh"
out=$(mktemp)
start_echo_server "$out" "$binary" echo-server --host 127.0.0.1 --port 0 --threads 2 --grace-period 2 "${extra[@]}"
pid=$SERVER_PID
port=$SERVER_PORT
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
python3 - "$port" "${extra[@]}" <<'PY'
import socket, sys, threading
port = int(sys.argv[1])
def echo(payload):
    s = socket.create_connection(("127.0.0.1", port))
    received = bytearray()
    def reader():
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return
            received.extend(chunk)
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    t.join(60)
    s.close()
    assert bytes(received) == payload, f"echo mismatch: sent {len(payload)}, got {len(received)}"
echo(b"hello world")
echo(bytes(range(256)) * 4096)  # 1 MiB
threads = [threading.Thread(target=echo, args=(f"conn {i}".encode() * 50,)) for i in range(200)]
for t in threads: t.start()
for t in threads: t.join(60)
print("echo smoke: ok", " ".join(sys.argv[2:]))
PY
kill -TERM "$pid"
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then echo "echo-server did not exit after SIGTERM"; exit 1; fi
wait "$pid" || { echo "echo-server exited with status $?"; cat "$out"; exit 1; }
echo "echo-server shut down on SIGTERM"

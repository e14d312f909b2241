#!/usr/bin/env python3
"""Checks that an echo server keeps the peer contract of `iopool bench echo`.

usage: Benchmarks/check-echo-server.py 'COMMAND --port {port} --threads {threads}' [THREADS]

The command is run as the bench runs it (`/bin/sh -c "exec COMMAND"`, `{port}` = 0 so the server
picks a free one, `{threads}` = THREADS, default 1). Checks, in order:
  1. it prints `listening on 127.0.0.1:PORT` on stdout at once (unbuffered), with a real port;
  2. a small message comes back, and after the client half-closes, the connection closes;
  3. 32 MiB sent while reading concurrently, then half-close: all of it comes back, then EOF;
  4. half-close while the echo is still queued (the client starts reading 0.5 s late): 256 KiB,
     2 MiB and 8 MiB all come back, then EOF (a server that closes at once on EOF loses data here);
  5. 1,000 64-byte ping-pongs on one connection;
  6. SIGTERM with a connection open: exit status 0 within 15 s;
  7. SIGINT or SIGTERM right after the announcement, 10 times: exit status 0 each time.
Exit status 0 if all pass, 1 otherwise. Needs only Python 3.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def start(command):
    proc = subprocess.Popen(["/bin/sh", "-c", "exec " + command],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    return proc, line


def echo_session(port, payload, read_delay=0.0):
    """Sends payload, half-closes, returns everything read until EOF (None if no EOF in 60 s)."""
    s = socket.create_connection(("127.0.0.1", port))
    if read_delay:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    got = bytearray()

    def reader():
        time.sleep(read_delay)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got.extend(chunk)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    for offset in range(0, len(payload), 1 << 16):
        s.sendall(payload[offset:offset + (1 << 16)])
    s.shutdown(socket.SHUT_WR)
    thread.join(60)
    s.close()
    return None if thread.is_alive() else bytes(got)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    threads = sys.argv[2] if len(sys.argv) > 2 else "1"
    command = sys.argv[1].replace("{port}", "0").replace("{threads}", threads)

    proc, line = start(command)
    prefix = "listening on 127.0.0.1:"
    port = int(line[len(prefix):]) if line.startswith(prefix) and line[len(prefix):].isdigit() else 0
    check(port > 0, f"announces {line!r}")
    if port == 0:
        proc.kill()
        proc.wait()
        return 1

    small = b"hello, echo\n"
    check(echo_session(port, small) == small, "small message echoed, then EOF after half-close")
    big = os.urandom(32 << 20)
    check(echo_session(port, big) == big, "32 MiB echoed, then EOF after half-close")
    for size in (256 << 10, 2 << 20, 8 << 20):
        payload = os.urandom(size)
        check(echo_session(port, payload, read_delay=0.5) == payload,
              f"{size} bytes echoed after a half-close that arrived with the echo still queued")

    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pings_ok = True
    for i in range(1000):
        message = bytes([i % 256]) * 64
        s.sendall(message)
        reply = b""
        while len(reply) < 64:
            chunk = s.recv(64 - len(reply))
            if not chunk:
                break
            reply += chunk
        pings_ok &= reply == message
    check(pings_ok, "1,000 ping-pongs of 64 bytes")

    proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        status = "no exit within 15 s"
    s.close()
    check(status == 0, f"SIGTERM with a connection open: exit status {status}")

    statuses = []
    for i in range(10):
        proc, _ = start(command)
        proc.send_signal(signal.SIGTERM if i % 2 else signal.SIGINT)
        try:
            statuses.append(proc.wait(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            statuses.append("timeout")
    check(all(status == 0 for status in statuses),
          f"SIGINT/SIGTERM right after the announcement: exit statuses {statuses}")

    print("ALL OK" if not failures else f"{len(failures)} FAILED")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

"""Python's http.client against the real-client test server (RealClientRoutes in
RealClientSupport.swift). Run by RealClientPythonTests: `python3 http_client_checks.py MODE PORT`.
Exits 0 and prints one "ok" line when every check held; otherwise prints what differed and exits 1.

Modes:
  keep-alive      many requests (GETs and a POST with Content-Length) on one HTTPConnection: every
                  response arrives and the connection's socket (its local port) never changes.
  chunked-upload  request bodies sent with encode_chunked=True, echoed back whole (Content-Length)
                  and streamed back (a chunked response), all on one connection.
"""
import http.client
import sys

TIMEOUT = 10  # seconds for each socket operation


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def numbered(count):
    """Bytes that change under any dropped, repeated or reordered block (as numberedBytes in Swift)."""
    data = b"".join(index.to_bytes(4, "big") for index in range((count + 3) // 4))
    return data[:count]


class OneConnection:
    """An HTTPConnection that checks each request went over the socket the first one opened."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        self.local_address = None
        self.requests = 0

    def exchange(self, method, target, **arguments):
        self.connection.request(method, target, **arguments)
        response = self.connection.getresponse()
        body = response.read()
        self.requests += 1
        address = self.connection.sock.getsockname() if self.connection.sock else None
        if self.local_address is None:
            self.local_address = address
        check(address == self.local_address,
              f"request {self.requests} ({method} {target}) went over a new connection "
              f"{address}, not {self.local_address}")
        check(not response.will_close,
              f"{method} {target}: the response closes the connection ({response.getheaders()})")
        return response, body


def keep_alive(port):
    client = OneConnection(port)
    for index in range(20):
        response, body = client.exchange("GET", f"/keep/{index}")
        check(response.status == 200, f"GET /keep/{index}: status {response.status}")
        check(body == f"/keep/{index}".encode(), f"GET /keep/{index}: body {body!r}")
        check(response.getheader("Date") is not None, f"GET /keep/{index}: no Date field")
    upload = numbered(10_000)
    response, body = client.exchange("POST", "/echo", body=upload)
    check(response.getheader("X-Request-Content-Length") == str(len(upload)),
          f"POST /echo: the server saw {response.getheader('X-Request-Content-Length')!r} as the length")
    check(body == upload, f"POST /echo: {len(body)} bytes back of {len(upload)}, or different ones")
    response, body = client.exchange("GET", "/plaintext")
    check(body == b"Hello, World!", f"GET /plaintext after the POST: {body!r}")
    print(f"ok: {client.requests} requests on one connection (local {client.local_address})")


def chunked_upload(port):
    client = OneConnection(port)
    parts = [numbered(size) for size in (1, 100, 65_536, 7, 300_000)]
    whole = b"".join(parts)
    for target, response_framing in (("/echo", "content-length"), ("/stream-echo", "chunked")):
        response, body = client.exchange(
            "POST", target, body=iter(parts), headers={"Transfer-Encoding": "chunked"},
            encode_chunked=True)
        check(response.status == 200, f"POST {target}: status {response.status}")
        check(response.getheader("X-Request-Transfer-Encoding") == "chunked",
              f"POST {target}: the server saw Transfer-Encoding "
              f"{response.getheader('X-Request-Transfer-Encoding')!r}")
        if response_framing == "chunked":
            check(response.getheader("Transfer-Encoding") == "chunked",
                  f"POST {target}: the response is not chunked ({response.getheaders()})")
        else:
            check(response.getheader("Content-Length") == str(len(whole)),
                  f"POST {target}: Content-Length {response.getheader('Content-Length')!r}")
        check(body == whole, f"POST {target}: {len(body)} bytes back of {len(whole)}, or different ones")
    print(f"ok: {client.requests} chunked uploads of {len(whole)} bytes echoed on one connection")


if __name__ == "__main__":
    modes = {"keep-alive": keep_alive, "chunked-upload": chunked_upload}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        print(f"usage: {sys.argv[0]} {'|'.join(modes)} PORT", file=sys.stderr)
        sys.exit(2)
    modes[sys.argv[1]](int(sys.argv[2]))

"""h11 (a strict HTTP/1.1 implementation, not ours) as the client of the real-client test server
(RealClientRoutes in RealClientSupport.swift), driving a plain socket. Run by
RealClientPythonTests: `python3 h11_checks.py MODE PORT`. Exits 0 and prints one "ok" line when
every check held; otherwise prints what differed (or h11's protocol error) and exits 1.

Modes:
  pipeline  16 requests (GETs, a HEAD, a POST with a body) written in one send before any response
            is read; the responses must come back in request order, each framed as h11 expects.
  chunked   pipelined GETs of streamed (chunked) responses of 0, 1, 3 and 200 parts, with their
            trailers, and a chunked upload streamed back.
"""
import socket
import sys

import h11

TIMEOUT = 10  # seconds for each socket operation


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


class Request:
    def __init__(self, method, target, body=b"", chunked=False):
        self.method, self.target, self.body, self.chunked = method, target, body, chunked

    def events(self):
        headers = [("Host", "127.0.0.1")]
        if self.chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif self.body:
            headers.append(("Content-Length", str(len(self.body))))
        yield h11.Request(method=self.method, target=self.target, headers=headers)
        if self.chunked:
            # Uneven pieces, each its own chunk.
            for start in range(0, len(self.body), 1000):
                yield h11.Data(data=self.body[start:start + 1000])
        elif self.body:
            yield h11.Data(data=self.body)
        yield h11.EndOfMessage()

    def encoded(self):
        """The request's bytes, from an h11 connection of its own (h11 sends one request per cycle)."""
        connection = h11.Connection(h11.CLIENT)
        return b"".join(connection.send(event) for event in self.events())


class Response:
    def __init__(self, head):
        self.head = head
        self.body = b""
        self.trailers = []

    def header(self, name):
        for key, value in self.head.headers:
            if key == name.lower().encode():
                return value.decode()
        return None


def exchange_pipelined(port, requests):
    """Writes every request at once, then reads the responses in order with one h11 connection that
    replays each request (without sending it again) so that it knows how its response is framed."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"".join(request.encoded() for request in requests))
        reader = h11.Connection(h11.CLIENT)
        responses = []
        for index, request in enumerate(requests):
            if index > 0:
                reader.start_next_cycle()
            for event in request.events():
                reader.send(event)
            response = None
            while True:
                event = reader.next_event()
                if event is h11.NEED_DATA:
                    data = sock.recv(65536)
                    check(data, f"the server closed the connection before response {index} was complete")
                    reader.receive_data(data)
                elif isinstance(event, h11.InformationalResponse):
                    continue
                elif isinstance(event, h11.Response):
                    response = Response(event)
                elif isinstance(event, h11.Data):
                    response.body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    response.trailers = list(event.headers)
                    break
                else:
                    check(False, f"response {index}: unexpected event {event!r}")
            check(reader.their_state is h11.DONE and reader.our_state is h11.DONE,
                  f"response {index}: connection states {reader.states} (the server closes?)")
            responses.append(response)
        return responses


def pipeline(port):
    upload = bytes(range(256)) * 40
    requests = [Request("GET", f"/p/{index}") for index in range(7)]
    requests += [Request("HEAD", "/plaintext"), Request("POST", "/echo", body=upload)]
    requests += [Request("GET", f"/p/{index}") for index in range(7, 13)]
    requests += [Request("GET", "/plaintext")]
    responses = exchange_pipelined(port, requests)
    check(len(responses) == 16, f"{len(responses)} responses to 16 requests")
    for request, response in zip(requests, responses):
        check(response.head.status_code == 200, f"{request.method} {request.target}: status {response.head.status_code}")
        if request.method == "HEAD":
            check(response.body == b"", f"HEAD: a body {response.body!r}")
            check(response.header("Content-Length") == "13", f"HEAD: Content-Length {response.header('Content-Length')!r}")
        elif request.method == "POST":
            check(response.body == upload, f"POST /echo: {len(response.body)} bytes back of {len(upload)}")
        elif request.target == "/plaintext":
            check(response.body == b"Hello, World!", f"GET /plaintext: {response.body!r}")
        else:
            check(response.body == request.target.encode(),
                  f"GET {request.target} was answered with {response.body!r}: out of order")
    print(f"ok: {len(responses)} pipelined responses in request order")


def chunked(port):
    counts = [0, 1, 3, 200]
    upload = bytes(range(256)) * 100
    requests = [Request("GET", f"/chunks/{count}") for count in counts]
    requests.append(Request("POST", "/stream-echo", body=upload, chunked=True))
    responses = exchange_pipelined(port, requests)
    for count, response in zip(counts, responses):
        check(response.header("Transfer-Encoding") == "chunked",
              f"GET /chunks/{count}: not chunked ({response.head.headers})")
        expected = "".join(f"part {index}\n" for index in range(count)).encode()
        check(response.body == expected, f"GET /chunks/{count}: body {response.body[:200]!r}")
        check(response.trailers == [(b"x-parts", str(count).encode())],
              f"GET /chunks/{count}: trailers {response.trailers!r}")
    echoed = responses[-1]
    check(echoed.header("X-Request-Transfer-Encoding") == "chunked",
          f"POST /stream-echo: the server saw Transfer-Encoding {echoed.header('X-Request-Transfer-Encoding')!r}")
    check(echoed.header("Transfer-Encoding") == "chunked", f"POST /stream-echo: not chunked ({echoed.head.headers})")
    check(echoed.body == upload, f"POST /stream-echo: {len(echoed.body)} bytes back of {len(upload)}")
    print(f"ok: {len(responses)} chunked responses, trailers included, pipelined")


if __name__ == "__main__":
    modes = {"pipeline": pipeline, "chunked": chunked}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        print(f"usage: {sys.argv[0]} {'|'.join(modes)} PORT", file=sys.stderr)
        sys.exit(2)
    try:
        modes[sys.argv[1]](int(sys.argv[2]))
    except h11.ProtocolError as error:
        print(f"FAILED: h11 protocol error: {error!r}", file=sys.stderr)
        sys.exit(1)

#!/usr/bin/env python3
"""Writes corpus/*.http: one HTTP/1.1 request per file, valid ones and invalid ones (the request
smuggling classics among them), for the differential test (differential.py) and as the fuzzer's
seeds. The files are committed; rerun this after adding a case here."""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
H = b"Host: example.com\r\n"


def req(head, body=b""):
    return head + body


CASES = {
    # --- valid ---
    "get-minimal": b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "get-wrk": b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk/4.2\r\nAccept: */*\r\n"
    b"Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n",
    "get-curl": b"GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
    "get-http10": b"GET / HTTP/1.0\r\n\r\n",
    "get-http10-keepalive": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nHost: h\r\n\r\n",
    "get-connection-close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "get-ows-trimmed": b"GET / HTTP/1.1\r\nHost: h\r\nX-A:   a b  \t\r\nX-B:c\r\nX-Empty:\r\n\r\n",
    "get-obs-text": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9 \xff\r\n\r\n",
    "get-token-chars-in-name": b"GET / HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+.^_`|~: v\r\n\r\n",
    "get-leading-empty-line": b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "get-absolute-form": b"GET http://example.com/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "get-absolute-form-no-path": b"GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "get-unusual-method": b"M-SEARCH / HTTP/1.1\r\nHost: h\r\n\r\n",
    "options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "connect-authority": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "get-empty-host": b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
    "get-host-case": b"GET / HTTP/1.1\r\nhOsT: h\r\n\r\n",
    "get-many-fields": b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(50)) + b"\r\n",
    "post-content-length": b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    "post-content-length-zero": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    "post-content-length-leading-zeros": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\n\r\nhello",
    "post-chunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "post-chunked-uppercase-coding": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n1\r\na\r\n0\r\n\r\n",
    "post-chunked-hex-sizes": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n",
    "post-chunked-leading-zeros": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n000\r\n\r\n",
    "post-chunked-extension": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0;last\r\n\r\n",
    "post-chunked-extension-quoted": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;n=\"v w\"\r\nhello\r\n0\r\n\r\n",
    "post-chunked-trailers": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
    "put-expect-continue": b"PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "post-identical-content-lengths": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "post-identical-content-length-list": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello",
    # --- invalid: framing (request smuggling) ---
    "smuggle-cl-te": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "smuggle-te-cl": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nG",
    "smuggle-te-obs-fold": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello",
    "smuggle-te-obs-fold-only": b"POST / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n",
    "smuggle-te-xchunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "smuggle-te-chunked-then-identity": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    "smuggle-te-chunked-gzip": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "smuggle-te-gzip-chunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "smuggle-te-chunked-twice": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "smuggle-te-chunked-two-fields": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "smuggle-te-quoted": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n",
    "smuggle-te-space-before-colon": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello",
    "smuggle-te-tab-in-value": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
    "smuggle-te-vertical-tab": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    "smuggle-te-empty": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n",
    "smuggle-te-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "smuggle-cl-differing": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "smuggle-cl-differing-list": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "smuggle-cl-plus": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
    "smuggle-cl-minus": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\nhello",
    "smuggle-cl-hex": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\nhello",
    "smuggle-cl-empty": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
    "smuggle-cl-space-inside": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\nhellohello",
    "smuggle-cl-overflow": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "smuggle-cl-space-before-colon": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\nhello",
    "smuggle-cl-nul": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\x00\r\n\r\nhello",
    # --- invalid: field lines ---
    "field-space-before-colon": b"GET / HTTP/1.1\r\nHost: h\r\nX-A : a\r\n\r\n",
    "field-tab-before-colon": b"GET / HTTP/1.1\r\nHost: h\r\nX-A\t: a\r\n\r\n",
    "field-obs-fold": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
    "field-obs-fold-tab": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n",
    "field-first-line-folded": b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
    "field-nul-in-value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n",
    "field-del-in-value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n",
    "field-control-in-value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n",
    "field-bare-cr-in-value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n",
    "field-bare-cr-end-of-value": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\r\n\r\n",
    "field-bare-lf": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n",
    "field-bare-lf-everywhere": b"GET / HTTP/1.1\nHost: h\n\n",
    "field-bare-lf-blank-line": b"GET / HTTP/1.1\r\nHost: h\r\n\n",
    "field-no-colon": b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
    "field-empty-name": b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
    "field-invalid-name-byte": b"GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n",
    "field-nul-in-name": b"GET / HTTP/1.1\r\nHost: h\r\nX\x00A: v\r\n\r\n",
    "field-utf8-in-name": b"GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: v\r\n\r\n",
    "host-missing": b"GET / HTTP/1.1\r\nX-A: a\r\n\r\n",
    "host-twice": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "host-twice-same": b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n",
    "expect-other": b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 0\r\n\r\n",
    # --- invalid: request line ---
    "line-double-space": b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-trailing-space": b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
    "line-tab-separator": b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-leading-space": b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-lowercase-version": b"GET / http/1.1\r\nHost: h\r\n\r\n",
    "line-version-2": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "line-version-12": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "line-version-09": b"GET / HTTP/0.9\r\nHost: h\r\n\r\n",
    "line-version-missing": b"GET /\r\nHost: h\r\n\r\n",
    "line-version-long": b"GET / HTTP/1.10\r\nHost: h\r\n\r\n",
    "line-method-invalid": b"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-target-nul": b"GET /a\x00b HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-target-del": b"GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-target-utf8": b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-bare-cr": b"GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-asterisk-not-options": b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-authority-not-connect": b"GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-connect-origin-form": b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-relative-target": b"GET index.html HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-absolute-no-authority": b"GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n",
    "line-too-long": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    "head-too-large": b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70)) + b"\r\n",
    "head-too-many-fields": b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(120)) + b"\r\n",
    # --- invalid: chunked bodies ---
    "chunk-size-overflow": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    "chunk-size-huge": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n7FFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    "chunk-size-negative": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-0x": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-leading-space": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n",
    "chunk-size-trailing-space": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
    "chunk-size-empty": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n",
    "chunk-size-bare-lf": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    "chunk-data-no-crlf": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
    "chunk-data-bare-lf": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
    "chunk-data-too-long": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    "chunk-extension-huge": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"a" * 2000 + b"\r\nhello\r\n0\r\n\r\n",
    "chunk-extension-nul": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00\r\nhello\r\n0\r\n\r\n",
    "chunk-extension-bare-cr": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n",
    "chunk-trailer-space-before-colon": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX : 1\r\n\r\n",
    "chunk-trailer-obs-fold": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n",
    "chunk-trailer-nul": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\x002\r\n\r\n",
    "chunk-trailer-bare-lf": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n",
    "chunk-trailer-too-many": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(120)) + b"\r\n",
    # --- incomplete: neither side may claim a complete request ---
    "incomplete-head": b"GET / HTTP/1.1\r\nHost: h\r\n",
    "incomplete-body": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhello",
    "incomplete-chunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
}


def main():
    corpus = os.path.join(HERE, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    for name, data in sorted(CASES.items()):
        with open(os.path.join(corpus, name + ".http"), "wb") as f:
            f.write(data)
    print(f"{len(CASES)} cases written to {corpus}")


if __name__ == "__main__":
    main()

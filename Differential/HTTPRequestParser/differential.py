#!/usr/bin/env python3
"""Differential test of our HTTP/1.1 request parser against h11 (python-hyper/h11, a parser nobody
here wrote): every corpus file goes through both; each disagreement must be listed, with why, in
DOCUMENTED-DIFFERENCES.md beside this file. Fails on an unlisted disagreement and on a listed one
that no longer happens (so the list stays true).

Usage: differential.py PROBE CORPUS_DIR..."""
import json
import os
import re
import subprocess
import sys

import h11

HERE = os.path.dirname(os.path.abspath(__file__))


def h11_outcome(data):
    conn = h11.Connection(h11.SERVER)
    try:
        conn.receive_data(data)
        request, body, trailers = None, b"", []
        for _ in range(10000):
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return {"verdict": "incomplete"}
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                trailers = [(bytes(n), bytes(v)) for n, v in event.headers.raw_items()]
                break
        headers = [(bytes(n), bytes(v)) for n, v in request.headers.raw_items()]
        return {
            "verdict": "accept",
            "method": bytes(request.method),
            "target": bytes(request.target),
            "version": request.http_version.decode(),
            "headers": headers,
            "body": body,
            "trailers": trailers,
        }
    except h11.RemoteProtocolError as error:
        return {"verdict": "reject", "status": error.error_status_hint, "reason": str(error)}


def ours_outcome(line):
    out = json.loads(line)
    if out["verdict"] != "accept":
        return out
    unhex = bytes.fromhex
    out["method"] = unhex(out["method"])
    out["target"] = unhex(out["target"])
    out["authority"] = None if out["authority"] is None else unhex(out["authority"])
    out["headers"] = [(unhex(n), unhex(v)) for n, v in out["headers"]]
    out["trailers"] = [(unhex(n), unhex(v)) for n, v in out["trailers"]]
    out["body"] = unhex(out["body"])
    return out


def compare(ours, theirs):
    """None when they agree, else what differs."""
    if ours["verdict"] != theirs["verdict"]:
        detail = lambda o: o["verdict"] + (f" {o['status']} ({o['reason']})" if o["verdict"] == "reject" else "")
        return f"ours {detail(ours)}, h11 {detail(theirs)}"
    if ours["verdict"] != "accept":
        return None
    differences = []
    # h11 keeps Host among the headers (names lowercased); ours moves it to the authority.
    their_headers = [(n.lower(), v) for n, v in theirs["headers"]]
    hosts = [v for n, v in their_headers if n == b"host"]
    their_headers = [(n, v) for n, v in their_headers if n != b"host"]
    our_headers = [(n.lower(), v) for n, v in ours["headers"]]
    # h11 rewrites the framing fields (one Content-Length for `5, 5`, `chunked` lowercased); ours
    # keeps them as sent and reports the framing: compare what they frame, not how they were spelt.
    framing_fields = (b"content-length", b"transfer-encoding")
    their_framing = dict((n, v) for n, v in their_headers if n in framing_fields)
    if b"transfer-encoding" in their_framing:
        their_framing = "chunked"
    elif int(their_framing.get(b"content-length", b"0")) > 0:
        their_framing = f"length {int(their_framing[b'content-length'])}"
    else:
        their_framing = "none"
    if ours["framing"] != their_framing:
        differences.append(f"framing {ours['framing']} vs {their_framing}")
    our_headers = [(n, v) for n, v in our_headers if n not in framing_fields]
    their_headers = [(n, v) for n, v in their_headers if n not in framing_fields]
    if our_headers != their_headers:
        differences.append(f"headers {our_headers} vs {their_headers}")
    if not ours["absolute"] and ours["method"] != b"CONNECT":
        if (hosts[0] if hosts else None) != ours["authority"]:
            differences.append(f"authority {ours['authority']} vs Host {hosts}")
    their_target = theirs["target"]
    if ours["absolute"] and re.fullmatch(rb"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]+", their_target):
        their_target += b"/"  # the origin-form path of "http://host" is "/" (RFC 9112 3.2.1)
    for key, theirs_value in (("method", theirs["method"]), ("target", their_target), ("version", theirs["version"]),
                              ("body", theirs["body"])):
        if ours[key] != theirs_value:
            differences.append(f"{key} {ours[key]!r} vs {theirs_value!r}")
    if [(n.lower(), v) for n, v in ours["trailers"]] != [(n.lower(), v) for n, v in theirs["trailers"]]:
        differences.append(f"trailers {ours['trailers']} vs {theirs['trailers']}")
    return "; ".join(differences) or None


def documented():
    """Case names listed in DOCUMENTED-DIFFERENCES.md: lines `- \\`name\\`: why`."""
    names = {}
    with open(os.path.join(HERE, "DOCUMENTED-DIFFERENCES.md")) as f:
        for line in f:
            match = re.match(r"- `([^`]+)`: (.+)", line)
            if match:
                names[match.group(1)] = match.group(2)
    return names


def main():
    probe, corpora = sys.argv[1], sys.argv[2:]
    files = sorted(os.path.join(d, f) for d in corpora for f in os.listdir(d) if f.endswith(".http"))
    lines = subprocess.run([probe, *files], check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(lines) == len(files), f"probe printed {len(lines)} lines for {len(files)} files"
    listed = documented()
    unlisted, agreed_listed, listed_seen = [], [], 0
    for path, line in zip(files, lines):
        name = os.path.basename(path)[: -len(".http")]
        ours = ours_outcome(line)
        with open(path, "rb") as f:
            theirs = h11_outcome(f.read())
        difference = compare(ours, theirs)
        verdicts = f"ours {ours['verdict']:<10} h11 {theirs['verdict']:<10}"
        if difference is None:
            print(f"  agree      {verdicts} {name}")
            if name in listed:
                agreed_listed.append(name)
        elif name in listed:
            listed_seen += 1
            print(f"  documented {verdicts} {name}: {difference}")
        else:
            unlisted.append(name)
            print(f"  DISAGREE   {verdicts} {name}: {difference}")
    stale = sorted(set(listed) - {os.path.basename(p)[: -len(".http")] for p in files})
    print(f"{len(files)} requests: {len(files) - listed_seen - len(unlisted)} agree with h11 {h11.__version__}, "
          f"{listed_seen} documented differences, {len(unlisted)} unlisted")
    failed = False
    if unlisted:
        print("FAIL: disagreements not in DOCUMENTED-DIFFERENCES.md (a bug of ours, or a stricter choice to document):",
              ", ".join(unlisted))
        failed = True
    if agreed_listed or stale:
        print("FAIL: DOCUMENTED-DIFFERENCES.md lists cases that no longer differ or do not exist:",
              ", ".join(agreed_listed + stale))
        failed = True
    print(f"{len(files) - len(unlisted)} passed, {len(unlisted)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

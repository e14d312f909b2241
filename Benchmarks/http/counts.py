#!/usr/bin/env python3
"""counts.py - deterministic per-request counts for HTTP servers (issue 14).

For each server (our `iopool http-server --threads 1` with IOThreadPool and WorkStealingPool,
nginx with one process, Hummingbird on SwiftNIO with one event loop) under the C keep-alive
client (Benchmarks/http/http_load_client.c: GET /plaintext, every response checked), it reports
per request:
  - Ir/req: user-space instructions of the whole server process (all threads), counted by
    callgrind over a fixed window after warm-up;
  - syscalls/req by kind: `perf stat` syscall tracepoints over the same kind of window, with the
    server running natively.
The divisor is exact: the client quiesces (nothing in flight) at both edges of the window and
holds its load until the counters are switched, so the responses it counts are the requests the
server answered inside the window. The machinery (callgrind_control around a window, perf's
control FIFO, the valgrind 3.19 workarounds for Swift binaries) is Benchmarks/counts/countlib.py,
shared with the echo counts; method and caveats: Benchmarks/counts/README.md.

  python3 Benchmarks/http/counts.py                                   # io, stealing, nginx, hummingbird
  python3 Benchmarks/http/counts.py --servers io --depths 1 --top 15  # io's top functions per request
  python3 Benchmarks/http/counts.py --no-callgrind --runs 3           # syscalls only (fast)

Output: a Markdown table on stdout, with --top the top functions by inclusive and self Ir per
request, and one line `http-counts-json: {...}` (also --json FILE).
Exit status: 0 ok, 1 a run failed or a tool is missing.
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "counts"))
from countlib import (REPO, Failure, callgrind_window, compile_c, compile_sigsuspend_shim,  # noqa: E402
                      drive, function_costs, log, need_tool, parse_dump, perf_window, run_checked,
                      strip_debug_copies, summarize)

# The syscalls counted one by one. Our pools read with read(2), write a response with send(2)
# (sendto) or sendmsg(2) (gathered), and wake with write(2) on an eventfd; nginx reads with
# recv (recvfrom) and writes with writev; SwiftNIO reads with read and writes with write/writev.
SYSCALL_KINDS = ["read", "recvfrom", "write", "writev", "sendto", "sendmsg", "epoll_wait",
                 "epoll_pwait", "epoll_pwait2", "epoll_ctl", "futex"]
TABLE_KINDS = [("read", ["read", "recvfrom"]), ("write", ["write"]), ("writev", ["writev"]),
               ("sendto", ["sendto"]), ("sendmsg", ["sendmsg"]),
               ("epoll_wait", ["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
               ("epoll_ctl", ["epoll_ctl"]), ("futex", ["futex"])]

# Functions whose calls in the callgrind dump are counted per request, as a cross-check of the
# client's count and to show how each server writes (write(2) in our pools and in NIO is also the
# eventfd wake-up, so it is not a response count there).
DUMP_SEND_FUNCTIONS = ["ciopool_send", "send", "sendto", "sendmsg", "writev", "write"]

SERVERS = {
    "io": "IOThreadPool (iopool http-server --threads 1)",
    "stealing": "WorkStealingPool (iopool http-server --threads 1 --pool stealing)",
    "nginx": "nginx, one process (return 200; Benchmarks/http/nginx-peer.sh's configuration)",
    "hummingbird": "Hummingbird on SwiftNIO, one event loop (hummingbird-bench-server --server nio)",
}
SWIFT_SERVERS = {"io", "stealing", "hummingbird"}
BODY = "Hello, World!"


def free_port():
    """A port for nginx, which cannot bind port 0 and say which one it got. Another process may
    take it in between; the run then fails on nginx's bind, and is rerun."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Tools:
    def __init__(self, work, args):
        self.work, self.args = work, args
        cc = need_tool("cc")
        need_tool("taskset")
        if not args.no_callgrind:
            for t in ("valgrind", "callgrind_control", "objcopy", "readelf", "ldd"):
                need_tool(t)
        if not args.no_perf:
            need_tool("perf")
        self.client = compile_c(cc, os.path.join(work, "http_load_client"),
                                os.path.join(HERE, "http_load_client.c"))
        self.shim = compile_sigsuspend_shim(cc, work)
        self.binaries, self.stripped = {}, {}
        for name in args.servers:
            if name == "nginx":
                self.nginx = shutil.which(args.nginx) or args.nginx
                if not os.access(self.nginx, os.X_OK):
                    raise Failure(f"{args.nginx} not found (Debian: apt-get install nginx-light)")
                continue
            binary = os.path.abspath(args.hummingbird if name == "hummingbird" else args.binary)
            if not os.access(binary, os.X_OK):
                raise Failure(f"{binary} is not an executable; build it first")
            self.binaries[name] = binary
            if not args.no_callgrind and binary not in self.stripped:
                d = os.path.join(work, f"stripped-{len(self.stripped)}")
                self.stripped[binary] = (strip_debug_copies(binary, d), d)

    def server(self, name, tag, for_valgrind):
        """(command, env, ready): the server's command line, its environment and how to tell that
        it accepts (returns the port)."""
        if name == "nginx":
            port = free_port()
            d = os.path.join(self.work, f"{tag}.nginx")
            os.makedirs(d)
            run_checked(["bash", os.path.join(HERE, "nginx-peer.sh"), str(port), "1"],
                        env=dict(os.environ, NGINX=self.nginx, NGINX_PEER_DIR=d,
                                 NGINX_PEER_MASTER="off", NGINX_PEER_CONFIG_ONLY="1"))
            cmd = [self.nginx, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e", os.path.join(d, "error.log")]
            return cmd, {}, lambda _out: port if accepts(port) else None
        binary = self.binaries[name]
        env = {}
        if for_valgrind:
            binary, env["LD_LIBRARY_PATH"] = self.stripped[binary]
            env["LD_PRELOAD"] = self.shim
        if name == "hummingbird":
            cmd = [binary, "--server", "nio", "--host", "127.0.0.1", "--port", "0", "--threads", "1"]
        else:
            cmd = [binary, "http-server", "--host", "127.0.0.1", "--port", "0", "--threads", "1",
                   "--pool", name, "--grace-period", "1"]
        return cmd, env, None

    def client_runner(self, connections, depth, warmup, seconds):
        def run(port, on_start, on_end):
            cmd = ["taskset", "-c", str(self.args.client_cpu), self.client, "--port", str(port),
                   "--connections", str(connections), "--depth", str(depth), "--path", "/plaintext",
                   "--body", BODY, "--warmup", str(warmup), "--seconds", str(seconds), "--handshake"]
            return drive(cmd, on_start, on_end, timeout=120, acknowledge=True)
        return run


def ready_or_default(ready):
    return {} if ready is None else {"ready": ready}


def callgrind_run(tools, tag, name, connections, depth, args):
    command, env, ready = tools.server(name, tag, for_valgrind=True)
    dump, client = callgrind_window(tools.work, tag, command, env, args.server_cpu,
                                    tools.client_runner(connections, depth, args.cg_warmup, args.cg_seconds),
                                    **ready_or_default(ready))
    ir, calls = parse_dump(dump, DUMP_SEND_FUNCTIONS)
    reqs = client["requests"]
    if reqs <= 0:
        raise Failure(f"{tag}: the client counted no requests in the window")
    return {"ir": ir, "requests": reqs, "ir_per_req": ir / reqs, "window_s": args.cg_seconds,
            "dump_calls_per_req": {f: c / reqs for f, c in calls.items() if c},
            "responses_checked": client["responses_checked"], "dump": dump}


def perf_run(tools, tag, name, connections, depth, args):
    command, env, ready = tools.server(name, tag, for_valgrind=False)
    counts, client = perf_window(tools.work, tag, command, env, args.server_cpu, SYSCALL_KINDS,
                                 tools.client_runner(connections, depth, args.perf_warmup, args.perf_seconds),
                                 **ready_or_default(ready))
    reqs = client["requests"]
    if reqs <= 0:
        raise Failure(f"{tag}: the client counted no requests in the window")
    return {"requests": reqs, "window_s": args.perf_seconds, "requests_per_sec": client["requests_per_sec"],
            "counts": counts, "per_req": {k: v / reqs for k, v in counts.items()},
            "responses_checked": client["responses_checked"]}


# ---------------------------------------------------------------------------------------------
# Top functions, from the dump.

def demangler():
    for candidate in ("swift-demangle", "/opt/swift/usr/bin/swift-demangle"):
        path = shutil.which(candidate)
        if path:
            return path
    return None


def top_functions(dump, requests, count):
    """The `count` functions with the most inclusive Ir and the most self Ir in `dump`, per request:
    {"inclusive": [(Ir/req, % of the dump's total, name)], "self": [...]}; names demangled with
    swift-demangle --simplified when it is there. Costs from countlib.function_costs (not
    callgrind_annotate, whose self costs are wrong for a dump taken mid-run)."""
    costs = function_costs(dump)
    total = sum(s for s, _ in costs.values()) or 1
    names = list(costs)
    tool = demangler()
    if tool:
        bare = [re.sub(r" \[[^\]]*\]$", "", n) for n in names]
        r = subprocess.run([tool, "--simplified"], input="\n".join(bare) + "\n", capture_output=True, text=True)
        out = r.stdout.rstrip("\n").split("\n")
        if r.returncode == 0 and len(out) == len(names):
            pretty = {n: d + n[len(b):] for n, b, d in zip(names, bare, out)}
        else:
            pretty = {n: n for n in names}
    else:
        pretty = {n: n for n in names}
    result = {}
    for key, index in (("inclusive", 1), ("self", 0)):
        # A recursion level's inclusive cost can exceed the total (see function_costs): left out.
        ranked = [n for n in names if costs[n][index] <= total]
        top = sorted(ranked, key=lambda n: -costs[n][index])[:count]
        result[key] = [(costs[n][index] / requests, 100.0 * costs[n][index] / total, pretty[n]) for n in top]
    return result


# ---------------------------------------------------------------------------------------------
# Measuring, the table.

def measure(tools, args):
    results = []
    for depth in args.depths:
        for name in args.servers:
            entry = {"server": name, "connections": args.connections, "depth": depth}
            if not args.no_callgrind:
                runs = []
                for i in range(args.runs):
                    tag = f"cg-{name}-d{depth}-{i}"
                    r = callgrind_run(tools, tag, name, args.connections, depth, args)
                    calls = ", ".join(f"{f} {v:.3f}" for f, v in r["dump_calls_per_req"].items())
                    log(f"counts: {tag}: {r['ir_per_req']:,.0f} Ir/req ({r['requests']} requests; "
                        f"calls/req in the dump: {calls or 'none'})")
                    runs.append(r)
                entry["ir_per_req"] = summarize([r["ir_per_req"] for r in runs])
                entry["callgrind_runs"] = runs
                if args.top and name in args.top_servers:
                    first = runs[0]
                    top = top_functions(first["dump"], first["requests"], args.top)
                    entry["top_inclusive"], entry["top_self"] = top["inclusive"], top["self"]
            if not args.no_perf:
                runs = []
                for i in range(args.runs):
                    tag = f"perf-{name}-d{depth}-{i}"
                    r = perf_run(tools, tag, name, args.connections, depth, args)
                    log(f"counts: {tag}: {r['per_req']['total']:.3f} syscalls/req ({r['requests']} requests, "
                        f"{r['requests_per_sec']:,.0f}/s)")
                    runs.append(r)
                kinds = runs[0]["per_req"].keys()
                entry["syscalls_per_req"] = {k: summarize([r["per_req"].get(k, 0) for r in runs]) for k in kinds}
                entry["perf_runs"] = runs
            results.append(entry)
    return results


def print_table(results):
    header = ["server", "conns × depth", "Ir/req (mean)", "Ir min-max", "syscalls/req"] + \
        [k for k, _ in TABLE_KINDS] + ["other"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for e in results:
        ir, sc = e.get("ir_per_req"), e.get("syscalls_per_req")
        row = [e["server"], f"{e['connections']} × {e['depth']}",
               f"{ir['mean']:,.0f}" if ir else "-", f"{ir['min']:,.0f}-{ir['max']:,.0f}" if ir else "-"]
        if sc:
            row.append(f"{sc['total']['mean']:.3f}")
            for _, kinds in TABLE_KINDS:
                row.append(f"{sum(sc[k]['mean'] for k in kinds if k in sc):.3f}")
            row.append(f"{sc['other']['mean']:.3f}")
        else:
            row += ["-"] * (len(TABLE_KINDS) + 2)
        print("| " + " | ".join(row) + " |")
    for e in results:
        ir = e.get("ir_per_req")
        line = f"  {e['server']} {e['connections']}×{e['depth']}: {SERVERS[e['server']]}"
        if ir:
            line += "; Ir/req runs: " + ", ".join(f"{v:,.0f}" for v in ir["runs"])
            calls = e["callgrind_runs"][0]["dump_calls_per_req"]
            line += "; calls/req in the dump: " + (", ".join(f"{f} {v:.3f}" for f, v in calls.items()) or "none")
        print(line)
    for e in results:
        for key, what in (("top_inclusive", "inclusive"), ("top_self", "self")):
            if key in e:
                print(f"\n{e['server']} {e['connections']}×{e['depth']}: top {len(e[key])} functions by "
                      f"{what} Ir per request (first run)\n")
                print(f"| Ir/req ({what}) | % of total | function |")
                print("|---:|---:|---|")
                for per_req, share, name in e[key]:
                    print(f"| {per_req:,.0f} | {share:.1f}% | `{name.replace('|', '/')}` |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(REPO, "CLI", ".build", "release", "iopool"))
    p.add_argument("--hummingbird", default=os.path.join(REPO, "IOPoolHummingbird", ".build", "release",
                                                         "hummingbird-bench-server"),
                   help="hummingbird-bench-server; the server 'hummingbird' is skipped when it is absent "
                        "and --servers was not given")
    p.add_argument("--nginx", default="nginx")
    p.add_argument("--servers", help="comma-separated: io, stealing, nginx, hummingbird (default: all "
                                     "whose binary exists)")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--depths", default="1,16", help="comma-separated requests in flight per connection")
    p.add_argument("--runs", type=int, default=2, help="runs per server, depth and tool (default 2)")
    p.add_argument("--cg-warmup", type=float, default=2, help="client warm-up under callgrind, s")
    p.add_argument("--cg-seconds", type=float, default=6, help="callgrind window, s")
    p.add_argument("--perf-warmup", type=float, default=1, help="client warm-up, native, s")
    p.add_argument("--perf-seconds", type=float, default=2, help="perf stat window, s")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--top", type=int, default=0, help="also list the top N functions per request")
    p.add_argument("--top-servers", default="io", help="whose top functions (default io)")
    p.add_argument("--no-callgrind", action="store_true")
    p.add_argument("--no-perf", action="store_true")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (dumps, logs)")
    args = p.parse_args()
    if args.servers:
        args.servers = [s for s in args.servers.split(",") if s]
    else:
        args.servers = ["io", "stealing", "nginx"]
        if os.access(args.hummingbird, os.X_OK):
            args.servers.append("hummingbird")
        else:
            log(f"counts: {args.hummingbird} not found; Hummingbird skipped")
    for s in args.servers:
        if s not in SERVERS:
            p.error(f"unknown server {s!r}; expected one of {', '.join(SERVERS)}")
    args.depths = [int(d) for d in args.depths.split(",") if d]
    args.top_servers = [s for s in args.top_servers.split(",") if s]
    if args.runs < 1:
        p.error("--runs must be at least 1")

    work = tempfile.mkdtemp(prefix="iopool-http-counts-")
    started = time.monotonic()
    try:
        tools = Tools(work, args)
        results = measure(tools, args)
    except Failure as e:
        log(f"counts: error: {e}")
        if args.keep:
            log(f"counts: work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        return 1
    print_table(results)
    doc = {"tool": "Benchmarks/http/counts.py", "path": "/plaintext", "body": BODY, "runs": args.runs,
           "connections": args.connections, "cg_window_s": args.cg_seconds, "perf_window_s": args.perf_seconds,
           "argv": sys.argv[1:], "elapsed_s": round(time.monotonic() - started, 1), "results": results}
    line = json.dumps(doc, separators=(",", ":"))
    print("http-counts-json: " + line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
    if args.keep:
        log(f"counts: work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""countlib.py - what the deterministic-count scripts share (Benchmarks/counts/counts.py for the echo
servers, Benchmarks/http/counts.py for the HTTP servers).

A server runs either under callgrind (user-space instructions, zeroed and dumped around a measured
window with callgrind_control) or natively under `perf stat` syscall tracepoints (enabled and
disabled around the window through perf's control FIFO). The window's edges are the load client's
`measure-start` / `measure-end` lines on its stderr. The two valgrind 3.19 workarounds that Swift
6.3 binaries need (a copy without DWARF 5, the sigsuspend shim) live here too. Method and caveats:
Benchmarks/counts/README.md.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SIGSUSPEND_SHIM = os.path.join(HERE, "sigsuspend_shim.c")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def need_tool(name):
    path = shutil.which(name)
    if not path:
        raise Failure(f"'{name}' is not installed (or not on PATH); the counts need it")
    return path


def run_checked(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise Failure(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def compile_c(cc, output, source, extra=()):
    run_checked([cc, "-O2", "-Wall", "-Wextra", *extra, "-o", output, source])
    return output


def compile_sigsuspend_shim(cc, work):
    """The LD_PRELOAD shim that Swift servers with an async main need under valgrind 3.19."""
    return compile_c(cc, os.path.join(work, "sigsuspend_shim.so"), SIGSUSPEND_SHIM, ["-shared", "-fPIC"])


# ---------------------------------------------------------------------------------------------
# A copy of a Swift binary that valgrind 3.19 can read.

def ldd(binary, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    out = run_checked(["ldd", binary], env=env)
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            libs[m.group(1)] = m.group(2)
    return libs


def has_debug_info(path):
    out = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True).stdout
    return ".debug_info" in out


def strip_debug_copies(binary, directory):
    """valgrind 3.19 stops on Swift 6.3's DWARF 5 ("unhandled dwarf2 abbrev form code 0x25").
    Copy the binary, and every library it loads that carries DWARF, with `objcopy
    --strip-debug` (symbols stay, so callgrind still names functions), and load the copies
    through LD_LIBRARY_PATH. That works because the binary's search path is a DT_RUNPATH,
    which LD_LIBRARY_PATH overrides (a DT_RPATH would win over it; we refuse that case).
    Returns the stripped binary's path; run it with LD_LIBRARY_PATH=directory."""
    os.makedirs(directory)
    dyn = run_checked(["readelf", "-d", binary]) if shutil.which("readelf") else ""
    copies = [(binary, os.path.join(directory, os.path.basename(binary)))]
    for lib, path in ldd(binary).items():
        if has_debug_info(path):
            copies.append((path, os.path.join(directory, lib)))
    if len(copies) > 1 and "(RPATH)" in dyn:
        raise Failure(f"{binary} has a DT_RPATH, which wins over LD_LIBRARY_PATH; the "
                      "stripped library copies would not be loaded")
    for src, dst in copies:
        run_checked(["objcopy", "--strip-debug", src, dst])
    # Check that the copies are the ones the loader picks.
    loaded = ldd(copies[0][1], {"LD_LIBRARY_PATH": directory})
    for _, dst in copies[1:]:
        if loaded.get(os.path.basename(dst)) != dst:
            raise Failure(f"the loader does not pick the stripped copy {dst}: {loaded}")
    log(f"counts: stripped copies for valgrind: {', '.join(os.path.basename(c[1]) for c in copies)}")
    return copies[0][1]


# ---------------------------------------------------------------------------------------------
# One run: a server, the client, and the window between the client's markers.

def listening_port(out_path):
    """The port of a server that prints "listening on 127.0.0.1:PORT" on stdout (ours do)."""
    m = re.search(r"^listening on 127\.0\.0\.1:(\d+)", read(out_path), re.M)
    return int(m.group(1)) if m else None


class Server:
    """Starts PREFIX + COMMAND with stdout in a file and waits until `ready(stdout_path)` returns
    its port (default: it prints "listening on 127.0.0.1:PORT")."""

    def __init__(self, work, tag, command, env, prefix, timeout, ready=listening_port):
        self.out = os.path.join(work, f"{tag}.server.out")
        self.err = os.path.join(work, f"{tag}.server.err")
        with open(self.out, "w") as o, open(self.err, "w") as e:
            self.proc = subprocess.Popen(prefix + command, stdout=o, stderr=e,
                                         env=dict(os.environ, **env), start_new_session=True)
        deadline = time.monotonic() + timeout
        self.port = None
        while time.monotonic() < deadline:
            port = ready(self.out)
            if port:
                self.port = port
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop(1)
        raise Failure(f"server did not get ready within {timeout} s: "
                      f"{' '.join(prefix + command)}\n{read(self.err)[-3000:]}")

    def stop(self, timeout, target=None):
        """SIGTERM to `target` (default: the process we started), then SIGKILL to our process's
        session after `timeout` s. Only processes we started are signalled."""
        if self.proc.poll() is None:
            try:
                os.kill(target or self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def only_child(pid):
    """The one child of `pid`, or None (then the caller signals `pid` itself)."""
    kids = read(f"/proc/{pid}/task/{pid}/children").split()
    return int(kids[0]) if len(kids) == 1 else None


def drive(cmd, on_start, on_end, timeout, acknowledge=False):
    """Runs the client `cmd`; calls on_start()/on_end() when it prints measure-start/measure-end
    on stderr. With `acknowledge`, writes a line to the client's stdin after each call (a client
    that waits for it, as Benchmarks/http/http_load_client.c --handshake does, keeps its load off
    while the counters are switched). Returns the client's JSON (its last stdout line), with the
    time each call took under "control_lag"."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.PIPE if acknowledge else None)
    lag = {}

    def ack():
        if acknowledge:
            proc.stdin.write("go\n")
            proc.stdin.flush()

    try:
        for line in proc.stderr:
            line = line.strip()
            if line == "measure-start":
                t = time.monotonic()
                on_start()
                lag["start_s"] = time.monotonic() - t
                ack()
            elif line == "measure-end":
                t = time.monotonic()
                on_end()
                lag["end_s"] = time.monotonic() - t
                ack()
            elif line:
                log(f"client: {line}")
        out, _ = proc.communicate(timeout=timeout)  # (closes the client's stdin)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or "start_s" not in lag or "end_s" not in lag:
        raise Failure(f"client failed (exit {proc.returncode}): {' '.join(cmd)}")
    result = json.loads(out.strip().splitlines()[-1])
    result["control_lag"] = lag
    return result


def callgrind_window(work, tag, command, env, server_cpu, run_client, ready=listening_port):
    """Starts `command` under callgrind pinned to `server_cpu`, and calls
    run_client(port, on_start, on_end), which must call on_start at the window's start and on_end
    at its end: those zero the counters and dump them (callgrind_control -z / -d). Returns
    (the dump's path, what run_client returned)."""
    cg_out = os.path.join(work, f"{tag}.cg")
    prefix = ["taskset", "-c", str(server_cpu), "valgrind", "--tool=callgrind",
              f"--callgrind-out-file={cg_out}"]
    server = Server(work, tag, command, env, prefix, timeout=120, ready=ready)
    pid = str(server.proc.pid)  # taskset and valgrind exec: this is the server's PID

    def control(flag):
        r = subprocess.run(["callgrind_control", flag, pid], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Failure(f"callgrind_control {flag} {pid} failed: {r.stdout}{r.stderr}")

    try:
        client = run_client(server.port, lambda: control("-z"), lambda: control("-d"))
    finally:
        server.stop(30)
    dumps = sorted(p for p in glob.glob(cg_out + ".*") if re.search(r"\.\d+$", p))
    if not dumps:
        raise Failure(f"callgrind wrote no dump for {tag}: {read(server.err)[-3000:]}")
    return dumps[0], client


def parse_dump(path, functions):
    """The dump's total Ir, and the calls to each of `functions` (by name, from any caller).
    Callgrind's format compresses names: `cfn=(id) name` the first time, `cfn=(id)` after, with
    one id space shared with `fn=`; a `calls=N ...` line follows the `cfn=` it counts."""
    ir, names, calls, callee = None, {}, {f: 0 for f in functions}, None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
                if m:
                    if m.group(2) is not None:
                        names[m.group(1)] = m.group(2)
                    if line.startswith("cfn="):
                        callee = names.get(m.group(1))
            elif line.startswith("calls=") and callee in calls:
                calls[callee] += int(line[6:].split()[0])
            elif ir is None and line.startswith(("summary:", "totals:")):
                ir = int(line.split()[1])
    if ir is None:
        raise Failure(f"no 'summary:' line in {path}")
    return ir, calls


def perf_window(work, tag, command, env, server_cpu, kinds, run_client, ready=listening_port,
                stop_target=None):
    """Syscalls in a window: `command` runs natively under `perf stat` (so every thread and child
    it ever starts is counted, inherit), with the counters disabled (-D -1) until the window's
    start and disabled again at its end, through perf's control FIFO (a write and an ack: ~ms).
    `kinds`: the syscalls counted one by one (syscalls:sys_enter_KIND); the total is
    raw_syscalls:sys_enter, and "other" is the total minus the kinds. run_client as for
    callgrind_window. Returns (counts by kind, what run_client returned)."""
    ctl, ack = os.path.join(work, f"{tag}.ctl"), os.path.join(work, f"{tag}.ack")
    os.mkfifo(ctl)
    os.mkfifo(ack)
    out = os.path.join(work, f"{tag}.perf")
    events = ["-e", "raw_syscalls:sys_enter"]
    for kind in kinds:
        events += ["-e", f"syscalls:sys_enter_{kind}"]
    prefix = ["perf", "stat", "-x", ",", "-o", out, "-D", "-1", "--control", f"fifo:{ctl},{ack}"] + \
        events + ["--", "taskset", "-c", str(server_cpu)]
    # perf opens the FIFOs when it starts; open ours without blocking on it (O_RDWR never blocks).
    ctl_fd = os.open(ctl, os.O_RDWR)
    ack_fd = os.open(ack, os.O_RDWR)
    server = Server(work, tag, command, env, prefix, timeout=30, ready=ready)

    def control(cmd):
        os.write(ctl_fd, (cmd + "\n").encode())
        reply = b""
        while b"\n" not in reply:  # perf writes "ack\n" and a NUL
            reply += os.read(ack_fd, 64)
        if reply.strip(b"\0\n") != b"ack":
            raise Failure(f"perf control '{cmd}': unexpected reply {reply!r}")

    try:
        client = run_client(server.port, lambda: control("enable"), lambda: control("disable"))
    finally:
        # The server is perf's child (taskset execs it). SIGTERM goes to the server: perf then
        # sees its workload exit and writes the counts (a SIGTERM to perf would kill perf first).
        server.stop(15, target=only_child(server.proc.pid))
        os.close(ctl_fd)
        os.close(ack_fd)
    counts = {}
    for line in read(out).splitlines():
        fields = line.split(",")
        if len(fields) < 3 or line.startswith("#"):
            continue
        m = re.match(r"(raw_syscalls:sys_enter|syscalls:sys_enter_(\w+))$", fields[2])
        if not m:
            continue
        if not fields[0].isdigit():
            raise Failure(f"perf could not count {fields[2]}: {line}")
        counts["total" if m.group(2) is None else m.group(2)] = int(fields[0])
    if "total" not in counts:
        raise Failure(f"no counts in perf's output {out}:\n{read(out)}")
    counts["other"] = counts["total"] - sum(counts.get(k, 0) for k in kinds)
    return counts, client


def summarize(values):
    mean = sum(values) / len(values)
    return {"mean": mean, "min": min(values), "max": max(values),
            "spread": (max(values) - min(values)) / mean if mean else 0.0, "runs": values}


def function_costs(path):
    """Self and inclusive Ir of every function in a callgrind dump: {name: (self, inclusive)},
    names as "function [object file name]". Read from the dump itself, not callgrind_annotate:
    3.19's annotate counts the `calls=0` entries that a dump taken mid-run writes for the frames
    still on the stack as those frames' self cost (main then shows 100% self). Inclusive is self
    plus the cost of the calls a function makes to other functions; a function that recurses
    through another (callgrind names the levels f'2, f'3) counts the inner levels again, so
    inclusive figures above the total are possible there, as in callgrind_annotate."""
    fn_names, ob_names, objects = {}, {}, {}
    self_ir, incl_ir = {}, {}
    fn = ob = cfn = None
    after_calls = False
    with open(path, errors="replace") as f:
        for line in f:
            c = line[0]
            if c.isdigit() or c in "+-*":
                ir = int(line.split()[-1])
                if after_calls:
                    if cfn != fn:
                        incl_ir[fn] = incl_ir.get(fn, 0) + ir
                    after_calls = False
                elif fn is not None:
                    self_ir[fn] = self_ir.get(fn, 0) + ir
                    incl_ir[fn] = incl_ir.get(fn, 0) + ir
                continue
            m = re.match(r"(c?fn|c?ob)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                kind, ident, name = m.group(1), m.group(2), m.group(3)
                table = fn_names if kind.endswith("fn") else ob_names
                if name is not None:
                    table[ident] = name
                if kind == "ob":
                    ob = ident
                elif kind == "fn":
                    fn = ident
                    objects.setdefault(fn, ob)
                elif kind == "cfn":
                    cfn = ident
            elif line.startswith("calls="):
                after_calls = True
    result = {}
    for ident in incl_ir:
        obj = os.path.basename(ob_names.get(objects.get(ident), "???"))
        result[f"{fn_names.get(ident, '???')} [{obj}]"] = (self_ir.get(ident, 0), incl_ir[ident])
    return result

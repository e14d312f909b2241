#!/usr/bin/env bash
# measure.sh - server CPU per echoed message, measured from outside the server.
#
# usage: measure.sh [--connections C] [--size M] [--seconds D] [--warmup W]
#                   [--server-cpu 0] [--client-cpu 1] -- SERVER_COMMAND...
#
# The literal token {port} anywhere in SERVER_COMMAND is replaced by a free
# port. The server must print "listening on 127.0.0.1:PORT" on stdout (and
# flush) once it accepts connections; the port printed there is the one used.
# SERVER_COMMAND should exec the server itself (not a wrapper such as
# `swift run` or `sh -c`), because only that PID's CPU time is measured.
#
# Prints one line on stdout:
#   server_cpu_us_per_msg=… msgs_per_sec=… server_cpu_percent=… messages=…
# Details (ticks, window length, client JSON) go to stderr.
#
# Server CPU time = user+system time of the server process (all threads) over
# the client's measured window (warm-up excluded). Two readings are taken:
#  * primary: the client reads the server's POSIX CPU clock
#    (clock_getcpuclockid, ns resolution) at the exact instants its window
#    opens and closes (--server-pid);
#  * cross-check: this script reads utime+stime from /proc/PID/stat (CLK_TCK
#    ticks) when it sees the client's measure-start / measure-end markers.
#    Set MEASURE_USE_TICKS=1 to report from the ticks instead.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
connections=16 size=64 seconds=5 warmup=1 server_cpu=0 client_cpu=1

usage() {
    sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 64
}
while [[ $# -gt 0 ]]; do
    case $1 in
        --connections) connections=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --server-cpu) server_cpu=$2; shift 2 ;;
        --client-cpu) client_cpu=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "measure.sh: unknown option $1" >&2; usage ;;
    esac
done
[[ $# -gt 0 ]] || usage

# ---- build (only when a source is newer than its binary) ----
build_dir=${BUILD_DIR:-/tmp/echo-baseline-build}
mkdir -p "$build_dir"
for prog in c_epoll_echo pingpong_client; do
    if [[ ! -x $build_dir/$prog || $here/$prog.c -nt $build_dir/$prog ]]; then
        ${CC:-cc} -O2 -Wall -Wextra -pthread -o "$build_dir/$prog.tmp.$$" "$here/$prog.c"
        mv -f "$build_dir/$prog.tmp.$$" "$build_dir/$prog"
    fi
done
client=$build_dir/pingpong_client

# ---- pick a free port and substitute {port} ----
port=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
server_cmd=()
for arg in "$@"; do server_cmd+=("${arg//\{port\}/$port}"); done

work=$(mktemp -d "${TMPDIR:-/tmp}/echo-measure.XXXXXX")
server_pid='' client_pid=''
cleanup() {
    # Only ever signal the PIDs this script started.
    if [[ -n $client_pid ]] && kill -0 "$client_pid" 2>/dev/null; then
        kill -TERM "$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
    fi
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$server_pid" 2>/dev/null; then
            echo "measure.sh: server $server_pid ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL "$server_pid" 2>/dev/null || true
        fi
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- start the server (taskset execs the command, so $! is the server) ----
taskset -c "$server_cpu" "${server_cmd[@]}" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

listen_port=''
listen_deadline=$((EPOCHSECONDS + 30))
while ((EPOCHSECONDS < listen_deadline)); do
    if line=$(grep -m1 -o 'listening on 127\.0\.0\.1:[0-9]*' "$work/server.out" 2>/dev/null); then
        listen_port=${line##*:}
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "measure.sh: server exited before listening; its stderr:" >&2
        cat "$work/server.err" >&2
        exit 1
    fi
    sleep 0.05
done
if [[ -z $listen_port ]]; then
    echo "measure.sh: no 'listening on 127.0.0.1:PORT' line within 30 s" >&2
    exit 1
fi

# ---- /proc sampling helpers (bash builtins only: no fork at sample time) ----
clk_tck=$(getconf CLK_TCK)
read_server_ticks() {  # sets $ticks = utime + stime (all threads) of the server
    local stat rest
    read -r stat <"/proc/$server_pid/stat"
    rest=${stat##*) }          # comm may contain spaces; fields resume after ')'
    # shellcheck disable=SC2086
    set -- $rest               # $1 = field 3 (state), so utime = $12, stime = $13
    ticks=$(( ${12} + ${13} ))
}
read_machine() {  # sets $machine = "busy idle steal" ticks summed over all CPUs,
                  # and $scpu = "busy irq+softirq" ticks of the server's CPU
    local line want="cpu$server_cpu"
    scpu=''
    while read -r line; do     # "cpuN user nice system idle iowait irq softirq steal ..."
        # shellcheck disable=SC2086
        set -- $line
        case $1 in
            cpu) machine="$(( $2 + $3 + $4 + $7 + $8 )) $(( $5 + $6 )) ${9:-0}" ;;
            "$want") scpu="$(( $2 + $3 + $4 + $7 + $8 )) $(( $7 + $8 ))"; break ;;
            cpu*) ;;
            *) break ;;
        esac
    done </proc/stat
}

# ---- run the client; sample the server's CPU at its window markers ----
mkfifo "$work/client.err"
taskset -c "$client_cpu" "$client" --port "$listen_port" --connections "$connections" \
    --size "$size" --seconds "$seconds" --warmup "$warmup" --server-pid "$server_pid" \
    >"$work/client.json" 2>"$work/client.err" &
client_pid=$!

ticks=0 t_start='' t_end='' ticks_start='' ticks_end='' machine='' m_start='' m_end=''
scpu='' c_start='' c_end=''
while IFS= read -r line; do
    case $line in
        measure-start) read_server_ticks; ticks_start=$ticks; t_start=$EPOCHREALTIME
                       read_machine; m_start=$machine; c_start=$scpu ;;
        measure-end)   read_server_ticks; ticks_end=$ticks;   t_end=$EPOCHREALTIME
                       read_machine; m_end=$machine; c_end=$scpu ;;
        *) echo "client: $line" >&2 ;;
    esac
done <"$work/client.err"

client_status=0
wait "$client_pid" || client_status=$?
client_pid=''
if [[ $client_status -ne 0 ]]; then
    echo "measure.sh: client failed with exit status $client_status" >&2
    exit "$client_status"
fi
if [[ -z $ticks_start || -z $ticks_end ]]; then
    echo "measure.sh: client did not report its measurement window" >&2
    exit 1
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "measure.sh: server died during the run; its stderr:" >&2
    cat "$work/server.err" >&2
    exit 1
fi

children=$(cat /proc/"$server_pid"/task/*/children 2>/dev/null | tr -d ' \n' || true)
if [[ -n $children ]]; then
    echo "measure.sh: warning: server PID $server_pid has child processes;" \
         "their CPU time is not counted (use a command that execs the server)" >&2
fi

# Whole-machine picture over the window, to spot a noisy run: on this kind of
# shared VM, other processes and hypervisor steal change the numbers a lot.
read -r busy0 idle0 steal0 <<<"$m_start"
read -r busy1 idle1 steal1 <<<"$m_end"
read -r load1 _ </proc/loadavg
awk -v b="$((busy1 - busy0))" -v i="$((idle1 - idle0))" -v st="$((steal1 - steal0))" \
    -v srv="$((ticks_end - ticks_start))" -v load="$load1" -v ncpu="$(getconf _NPROCESSORS_ONLN)" '
BEGIN {
    tot = b + i + st; if (tot <= 0) tot = 1
    printf "machine in window (%% of all %d CPUs): busy %.0f%% (server %.0f%%, client+others %.0f%%), idle %.0f%%, steal %.0f%%; loadavg(1m) %s\n",
        ncpu, 100*b/tot, 100*srv/tot, 100*(b-srv)/tot, 100*i/tot, 100*st/tot, load > "/dev/stderr"
}'

# Cross-check for work the process clock might not see: when the server is
# pinned to one CPU, show that CPU's total busy time per message as well. It
# includes irq/softirq (loopback TCP processing) and whatever else ran there.
# Kernels with IRQ_TIME_ACCOUNTING leave softirq time out of the process's CPU
# time; on this VM's kernel it is included (CPU busy ~= server CPU).
server_cpu_line=''
if [[ -n $c_start && -n $c_end ]]; then
    read -r cb0 ci0 <<<"$c_start"
    read -r cb1 ci1 <<<"$c_end"
    server_cpu_line="$((cb1 - cb0)) $((ci1 - ci0))"
fi

json=$(<"$work/client.json")
echo "client: $json" >&2
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$json"; }
messages=$(field messages) msgs_per_sec=$(field messages_per_sec)
window_sec=$(field window_sec) server_cpu_ns=$(field server_cpu_ns)
if [[ -z $messages || -z $msgs_per_sec || -z $window_sec || -z $server_cpu_ns ]]; then
    echo "measure.sh: unexpected client output" >&2
    exit 1
fi

awk -v t0="$ticks_start" -v t1="$ticks_end" -v hz="$clk_tck" \
    -v w0="${t_start/,/.}" -v w1="${t_end/,/.}" -v n="$messages" -v rate="$msgs_per_sec" \
    -v cpu_ns="$server_cpu_ns" -v win="$window_sec" -v use_ticks="${MEASURE_USE_TICKS:-0}" \
    -v scpu="$server_cpu_line" -v scpu_id="$server_cpu" '
BEGIN {
    if (scpu != "" && n > 0) {
        split(scpu, c, " ")
        printf "server CPU %s in window: busy %.1f%% of it (irq+softirq %.1f%%) = %.3f us/msg incl. irq/softirq and anything else that ran there\n",
            scpu_id, 100 * c[1] * 1e6 / hz / (win * 1e6), 100 * c[2] * 1e6 / hz / (win * 1e6),
            c[1] * 1e6 / hz / n > "/dev/stderr"
    }
    tick_us = (t1 - t0) * 1e6 / hz
    tick_wall_us = (w1 - w0) * 1e6
    printf "server CPU in window: clock %.1f ms over %.3f s; /proc ticks %d (%.0f ms) over %.3f s as seen by this script\n",
        cpu_ns / 1e6, win, t1 - t0, tick_us / 1000, tick_wall_us / 1e6 > "/dev/stderr"
    if (n <= 0) { print "measure.sh: no messages completed" > "/dev/stderr"; exit 1 }
    if (use_ticks) { cpu_us = tick_us; wall_us = tick_wall_us }
    else { cpu_us = cpu_ns / 1000; wall_us = win * 1e6 }
    printf "server_cpu_us_per_msg=%.3f msgs_per_sec=%.0f server_cpu_percent=%.1f messages=%d\n",
        cpu_us / n, rate, 100 * cpu_us / wall_us, n
}'

# Shared by the CI smoke tests. Source it; needs bash.

# start_echo_server OUTFILE COMMAND...: starts COMMAND (an `iopool echo-server ... --port 0`) in the
# background with stdout and stderr in OUTFILE, waits for its "listening on" line, and sets
# SERVER_PID and SERVER_PORT. Exits the script if the server does not come up in 10 s.
start_echo_server() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q "^listening on " "$out" && break
        sleep 0.1
    done
    local address
    address=$(sed -n 's/^listening on //p' "$out" | head -1)
    if [ -z "$address" ]; then
        echo "echo-server did not print 'listening on'"
        cat "$out"
        kill "$SERVER_PID" 2>/dev/null || true
        exit 1
    fi
    SERVER_PORT=${address##*:}
}

#!/usr/bin/env bash
# CI: the Hummingbird adapter (its own package, IOPoolHummingbird/, so the root never builds NIO):
# one release build of everything (library, bench server, tests) with zero compiler warnings, its
# tests, and a smoke run of hummingbird-bench-server on both servers (plaintext, JSON, 404, SIGTERM
# exits 0), the binary `iopool bench http` runs.
#
# One build configuration, release: the bench server must be optimized, and the tests use no
# `@testable import`, so they build in the same configuration instead of compiling Hummingbird and
# SwiftNIO a second time in debug (that alone is 2.5-4.5 minutes here).
# Needs: curl. About 5-6 minutes from a clean .build on 2 shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
package=IOPoolHummingbird

log=$(mktemp)
out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT

fail_on_warnings() {
    if grep -E "(^|/)[^ ]*\.swift:[0-9]+:[0-9]+: warning:" "$log" | grep -v "/.build" ; then
        echo "error: the build has warnings (listed above)" >&2
        exit 1
    fi
}

echo "== swift build -c release --package-path $package --build-tests: zero warnings"
swift build -c release --package-path "$package" --build-tests 2>&1 | tee "$log"
fail_on_warnings

echo "== swift test -c release --package-path $package (a Hummingbird router on IOPoolHTTP over TCP)"
swift test -c release --package-path "$package" --skip-build

binary=$package/.build/release/hummingbird-bench-server
for server in iopool nio; do
    echo "== hummingbird-bench-server --server $server: plaintext, JSON, 404, SIGTERM exits 0"
    start_echo_server "$out" "$binary" --host 127.0.0.1 --port 0 --threads 2 --server "$server"
    base="http://127.0.0.1:$SERVER_PORT"
    check() {  # URL EXPECTED-STATUS EXPECTED-BODY EXPECTED-CONTENT-TYPE-PREFIX
        local response status
        response=$(curl -s --max-time 10 -w '\n%{http_code} %{content_type}' "$1")
        status=$(tail -1 <<<"$response")
        if [[ "$status" != "$2 $4"* ]] || [ "$(head -n -1 <<<"$response")" != "$3" ]; then
            echo "error: $1 answered [$response], expected $2 '$3' ($4)" >&2
            kill "$SERVER_PID" 2>/dev/null || true
            exit 1
        fi
    }
    check "$base/plaintext" 200 "Hello, World!" "text/plain"
    check "$base/json" 200 '{"message":"Hello, World!"}' "application/json"
    check "$base/missing" 404 "" ""
    kill -TERM "$SERVER_PID"
    status=0
    wait "$SERVER_PID" || status=$?
    if [ "$status" != 0 ]; then
        echo "error: --server $server exited $status after SIGTERM" >&2
        cat "$out"
        exit 1
    fi
done
echo "== hummingbird: OK"

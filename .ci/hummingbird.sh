#!/usr/bin/env bash
# CI: the Hummingbird adapter (its own package, IOPoolHummingbird/, so the root never builds NIO):
# one release build of everything (library, bench server, tests) with zero compiler warnings, its
# tests on both pools, and a smoke run of hummingbird-bench-server on Hummingbird's NIO server and
# on ours with each pool (plaintext, JSON, 404, --threads, SIGTERM exits 0): the peer
# `iopool bench http` runs.
#
# One build configuration, release: the bench server must be optimized, and the tests use no
# `@testable import`, so they build in the same configuration instead of compiling Hummingbird and
# SwiftNIO a second time in debug.
#
# Self-contained: needs only the Swift toolchain, the package mirror SwiftPM resolves from, and
# curl (installed with apt-get when missing). HUMMINGBIRD_SCRATCH_PATH moves the build folder
# (default IOPoolHummingbird/.build).
# Time (2026-12-02, 2 cores shared, load ~5.5): clean 507 s in all, of which the build 428-500 s
# (8.2 CPU-minutes: Hummingbird, SwiftNIO and their dependencies in release), the tests 7-18 s,
# the smoke ~10 s; with the build folder kept, ~1-2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
package=IOPoolHummingbird
scratch=${HUMMINGBIRD_SCRATCH_PATH:-$package/.build}

if ! command -v curl >/dev/null; then
    command -v apt-get >/dev/null || { echo "error: the bench server smoke needs curl, and there is no apt-get to install it" >&2; exit 1; }
    apt-get update -qq && apt-get install -y -qq curl >/dev/null \
        || { echo "error: apt-get install curl failed" >&2; exit 1; }
fi

log=$(mktemp)
out=$(mktemp)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -f "$log" "$out"
}
trap cleanup EXIT

echo "== swift build -c release --package-path $package --build-tests: zero warnings"
swift build -c release --package-path "$package" --scratch-path "$scratch" --build-tests 2>&1 | tee "$log"
if grep -E "(^|/)[^ ]*\.swift:[0-9]+:[0-9]+: warning:" "$log" | grep -v "/.build" ; then
    echo "error: the build has warnings (listed above)" >&2
    exit 1
fi

echo "== swift test -c release --package-path $package (a Hummingbird router on IOPoolHTTP over TCP, both pools)"
swift test -c release --package-path "$package" --scratch-path "$scratch" --skip-build

binary=$scratch/release/hummingbird-bench-server
check() {  # URL EXPECTED-STATUS EXPECTED-BODY EXPECTED-CONTENT-TYPE
    local response status
    response=$(curl -s --max-time 10 -w '\n%{http_code} %{content_type}' "$1")
    status=$(tail -1 <<<"$response")
    if [ "$status" != "$2 $4" ] || [ "$(head -n -1 <<<"$response")" != "$3" ]; then
        echo "error: $1 answered [$response], expected $2 '$3' ($4)" >&2
        exit 1
    fi
}
for server in "nio" "iopool --pool io" "iopool --pool stealing"; do
    echo "== hummingbird-bench-server --server $server --threads 2: plaintext, JSON, 404, SIGTERM exits 0"
    # shellcheck disable=SC2086  # $server is the option words
    start_echo_server "$out" "$binary" --host 127.0.0.1 --port 0 --threads 2 --server $server
    base="http://127.0.0.1:$SERVER_PORT"
    check "$base/plaintext" 200 "Hello, World!" "text/plain; charset=utf-8"
    check "$base/json" 200 '{"message":"Hello, World!"}' "application/json; charset=utf-8"
    check "$base/missing" 404 "" ""
    if [ "$server" = "iopool --pool io" ]; then
        # An IOThreadPool starts all its threads at once: --threads 2 is two hb-bench- threads.
        threads=$(cat /proc/"$SERVER_PID"/task/*/comm | grep -c '^hb-bench-' || true)
        if [ "$threads" != 2 ]; then
            echo "error: --threads 2 ran $threads hb-bench- threads" >&2
            exit 1
        fi
    fi
    kill -TERM "$SERVER_PID"
    status=0
    wait "$SERVER_PID" || status=$?
    SERVER_PID=
    if [ "$status" != 0 ]; then
        echo "error: --server $server exited $status after SIGTERM" >&2
        cat "$out"
        exit 1
    fi
done
echo "== hummingbird: OK"

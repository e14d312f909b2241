#!/usr/bin/env bash
# Fuzzes the HTTP/1.1 request parser (Sources/IOPoolHTTP/Parser) with libFuzzer + AddressSanitizer
# for a bounded time: no input may crash it, and feeding an input in pieces must give what feeding
# it whole gives (Fuzz/HTTPRequestParser/FuzzEntry.swift). Fails on any crash, saving the input
# under the artifact folder; the seeds are the committed differential corpus and Fuzz seeds.
# Needs: the Swift toolchain (its clang runtime has libFuzzer), `swift package resolve` done or
# possible (build.sh does it). Time: ~15 s build + HTTP_FUZZ_SECONDS (default 60).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_TO_RUN=${HTTP_FUZZ_SECONDS:-60}
OUT=$ROOT/.build/http-parser
"$ROOT/Fuzz/HTTPRequestParser/build.sh" "$OUT" fuzz

WORK=$(mktemp -d)
ARTIFACTS=${HTTP_FUZZ_ARTIFACTS:-$ROOT/.build/http-fuzz-artifacts}
mkdir -p "$ARTIFACTS"
trap 'rm -rf "$WORK"' EXIT
# The swift runtime's crash backtracer would otherwise wrap (and slow) ASan's own reports.
export SWIFT_BACKTRACE=enable=no
echo "http-fuzz: ${SECONDS_TO_RUN}s of libFuzzer on the request parser"
set +e
"$OUT/http-parser-fuzz" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -dict="$ROOT/Fuzz/HTTPRequestParser/http.dict" -artifact_prefix="$ARTIFACTS/" -print_final_stats=1 \
    "$WORK" "$ROOT/Fuzz/HTTPRequestParser/seeds" "$ROOT/Differential/HTTPRequestParser/corpus" \
    >"$WORK/fuzz.log" 2>&1
status=$?
set -e
grep -E '^(INFO: seed corpus|#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done )' "$WORK/fuzz.log" || true
if [ $status -ne 0 ]; then
    tail -60 "$WORK/fuzz.log"
    echo "http-fuzz: FAILED (libFuzzer exit $status); the input is in $ARTIFACTS"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "http-fuzz: no crash, no property broken"
echo "1 passed, 0 failed"

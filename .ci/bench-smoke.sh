#!/usr/bin/env bash
# `iopool bench`'s three benchmarks with short settings: each must finish, print its table and
# write its JSON (valid) and SVG. The full default run (`iopool bench`) takes about 3 minutes.
set -euo pipefail
binary=${1:-.build/release/iopool}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$binary" bench echo --rounds 1 --warmup 0.1 --seconds 0.3 --connections 1,16 --output "$out" | tee "$out/echo.txt"
"$binary" bench scheduler --iterations 1 --output "$out" | tee "$out/scheduler.txt"
"$binary" bench blocking --seconds 0.3 --output "$out" | tee "$out/blocking.txt"
for name in echo scheduler blocking; do
    python3 -c "import json, sys; json.load(open(sys.argv[1]))" "$out/$name.json"
    grep -q "</svg>" "$out/$name.svg"
done
grep -q "C epoll" "$out/echo.txt" || { echo "the C baseline did not run"; exit 1; }
grep -q "global executor" "$out/echo.txt"
echo "bench smoke: ok"

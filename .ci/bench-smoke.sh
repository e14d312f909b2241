#!/usr/bin/env bash
# `iopool bench`'s three benchmarks with short settings: each must finish, print its table and
# write its JSON (valid) and SVG. The full default run (`iopool bench`) takes about 3 minutes.
set -euo pipefail
binary=${1:-CLI/.build/release/iopool}
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
# Every row says how busy the C load client was, and claims a ratio only where it was not client-bound.
python3 - "$out/echo.json" <<'PY'
import json, sys
summaries = json.load(open(sys.argv[1]))["results"]["summaries"]
assert summaries, "no summaries"
for s in summaries:
    percent = float(s["clientCorePercent"])
    assert 0 < percent <= 110, s
    for key in ("throughputRatio", "cpuPerMessageRatio"):
        ratio = s[key]
        if s["clientBound"]:
            assert ratio == "client-bound", s
        else:
            assert isinstance(ratio, (int, float)) or ratio == "ref client-bound", s
PY
# Without a C compiler there is no echo benchmark (and no silent fall-back to a costlier client).
if CC=no-such-cc "$binary" bench echo --servers io --no-c-baseline --rounds 1 --warmup 0.1 --seconds 0.3 \
    --connections 1 --output "$out/no-cc" >/dev/null 2>"$out/no-cc.txt"; then
    echo "bench echo ran without a C compiler"
    exit 1
fi
grep -q "no C compiler" "$out/no-cc.txt"
echo "bench smoke: ok"

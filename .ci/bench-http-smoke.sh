#!/usr/bin/env bash
# `iopool bench http` with short rounds: our http-server on both pools, the nginx peer
# (Benchmarks/http/nginx-peer.sh), and the Hummingbird server when IOPoolHummingbird/ has been
# built. It must finish, print its table and write valid JSON and an SVG, every row with wrk's
# core percentage and a ratio only where not client-bound. Installs wrk and nginx-light with
# apt-get where missing. About 30 s (1-second rounds).
set -euo pipefail
binary=${1:-CLI/.build/release/iopool}
for tool in wrk nginx; do
    if ! command -v "$tool" >/dev/null && ! [ -x "/usr/sbin/$tool" ]; then
        package=$([ "$tool" = nginx ] && echo nginx-light || echo wrk)
        command -v apt-get >/dev/null || { echo "error: bench http needs $tool (Debian: $package), and there is no apt-get here" >&2; exit 1; }
        apt-get update -qq && apt-get install -y -qq "$package" >/dev/null
    fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hummingbird=IOPoolHummingbird/.build/release/hummingbird-bench-server
# Our server until `iopool http-server` exists (it waits on IOPoolHTTP's HTTPServer): peers only.
if "$binary" --help 2>/dev/null | grep -q "http-server"; then ours=1; servers=(--servers io,stealing); else ours=0; servers=(--servers ""); echo "bench http smoke: no iopool http-server in this build: peers only"; fi
[ -x "$hummingbird" ] || servers+=(--no-hummingbird)
"$binary" bench http "${servers[@]}" --rounds 1 --warmup 0 --seconds 1 --connections 16 --depths 1,16 --paths /plaintext,/json \
    --peer 'nginx=bash Benchmarks/http/nginx-peer.sh {port} {threads}' --output "$out" | tee "$out/http.txt"
python3 -c "import json, sys; json.load(open(sys.argv[1]))" "$out/http.json"
grep -q "</svg>" "$out/http.svg"
grep -q "nginx" "$out/http.txt"
[ "$ours" = 0 ] || grep -q "WorkStealingPool" "$out/http.txt"
python3 - "$out/http.json" <<'PY'
import json, sys
summaries = json.load(open(sys.argv[1]))["results"]["summaries"]
assert len(summaries) >= 4, summaries
for s in summaries:
    assert float(s["requestsPerSecond"]) > 0, s
    assert 0 < float(s["clientCorePercent"]) <= 110, s
    for key in ("throughputRatio", "cpuPerRequestRatio"):
        ratio = s[key]
        if s["clientBound"]:
            assert ratio == "client-bound", s
        else:
            assert isinstance(ratio, (int, float)) or ratio == "ref client-bound", s
PY
echo "bench http smoke: ok"

#!/usr/bin/env bash
# `iopool bench http` with short rounds: our http-server on both pools and the nginx peer
# (Benchmarks/http/nginx-peer.sh), plus Hummingbird as a peer when IOPoolHummingbird/ has been built
# (optional: nothing here needs it). It must finish, print its table and write valid JSON and an
# SVG, every row with wrk's core percentage and a ratio only where not client-bound, no server
# failing its probe or answering an error (the bench fails then). Installs wrk and nginx-light
# with apt-get where missing. About 15 s with 3 servers (1-second rounds, 4 configurations).
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
peers=(--peer 'nginx=bash Benchmarks/http/nginx-peer.sh {port} {threads}')
hummingbird=IOPoolHummingbird/.build/release/hummingbird-bench-server
if [ -x "$hummingbird" ]; then
    peers+=(--peer "hummingbird=$hummingbird --server nio --host 127.0.0.1 --port {port} --threads {threads}")
fi
start=$(date +%s)
"$binary" bench http --servers io,stealing "${peers[@]}" --rounds 1 --warmup 0 --seconds 1 --connections 16 --depths 1,16 \
    --paths /plaintext,/json --output "$out" | tee "$out/http.txt"
python3 -c "import json, sys; json.load(open(sys.argv[1]))" "$out/http.json"
grep -q "</svg>" "$out/http.svg"
for server in IOThreadPool WorkStealingPool nginx; do grep -q "$server" "$out/http.txt"; done
python3 - "$out/http.json" <<'PY'
import json, sys
summaries = json.load(open(sys.argv[1]))["results"]["summaries"]
servers = {s["server"] for s in summaries}
assert {"IOThreadPool", "WorkStealingPool", "nginx"} <= servers, servers
assert len(summaries) == 4 * len(servers), summaries
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
echo "bench http smoke: ok ($(( $(date +%s) - start )) s)"

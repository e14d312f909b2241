#!/usr/bin/env bash
# Installs the real HTTP clients that Tests/IOPoolHTTPTests/RealClient*Tests.swift run: curl, wrk,
# h2load (Debian's nghttp2-client), python3 with h11. Those tests fail (they do not skip) when a
# tool is missing, so .ci/run calls this before the CLI's tests (HTTPBenchTests run wrk) and `swift test`.
# Idempotent and quick when everything is there (no apt-get update then): about 0.1 s.
# Needs root or sudo for apt-get; pip installs h11 for the python3 on PATH (the one the tests run).
set -euo pipefail

H11_VERSION=0.16.0  # the version .ci/http-differential.sh pins

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
    echo "http-clients-setup: apt-get install ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import h11' 2>/dev/null; then
    echo "http-clients-setup: pip install h11==$H11_VERSION"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    # Debian's python3 refuses a plain pip install (PEP 668, externally managed) without the flag.
    python3 -m pip install --quiet "h11==$H11_VERSION" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "h11==$H11_VERSION"
fi

for tool in curl wrk h2load python3; do
    command -v "$tool" >/dev/null || { echo "http-clients-setup: $tool still missing" >&2; exit 1; }
done
python3 -c 'import h11' || { echo "http-clients-setup: python3 cannot import h11" >&2; exit 1; }
echo "http-clients-setup: curl, wrk, h2load, python3 + h11 $(python3 -c 'import h11; print(h11.__version__)') present"

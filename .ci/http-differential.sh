#!/usr/bin/env bash
# Differential test of the HTTP/1.1 request parser against Python's h11: every request in
# Differential/HTTPRequestParser/corpus goes through both; each disagreement must be listed with why
# in Differential/HTTPRequestParser/DOCUMENTED-DIFFERENCES.md (differential.py fails otherwise).
# Needs: python3, pip (installs h11 0.16.0 when missing), the Swift toolchain. Time: ~20 s.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
H11_VERSION=0.16.0
if [ "$(python3 -c 'import h11; print(h11.__version__)' 2>/dev/null)" != "$H11_VERSION" ]; then
    python3 -m pip install --quiet "h11==$H11_VERSION" 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages "h11==$H11_VERSION"
fi
OUT=$ROOT/.build/http-parser
"$ROOT/Fuzz/HTTPRequestParser/build.sh" "$OUT" probe
"$OUT/http-parser-probe" bench
python3 "$ROOT/Differential/HTTPRequestParser/differential.py" "$OUT/http-parser-probe" \
    "$ROOT/Differential/HTTPRequestParser/corpus"

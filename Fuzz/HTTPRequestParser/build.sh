#!/usr/bin/env bash
# Builds, outside SwiftPM, the two programs that exercise Sources/IOPoolHTTP/Parser on its own:
#   OUT/http-parser-fuzz   libFuzzer + AddressSanitizer (FuzzEntry.swift), for .ci/http-fuzz.sh
#   OUT/http-parser-probe  optimised (Differential/HTTPRequestParser/ProbeMain.swift): prints what the
#                          parser makes of request files, for .ci/http-differential.sh; `bench` times it
# SwiftPM cannot pass -sanitize=fuzzer to one target, so swift-http-types is compiled here from the
# checkout `swift package resolve` made (.build/checkouts), as a module of its own that the parser
# files import exactly as they do in the package. The parser files must therefore import nothing
# but HTTPTypes and Glibc (the server's files are not compiled in).
# Usage: build.sh [OUT] [fuzz|probe|all]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/.build/http-parser}
WHAT=${2:-all}
mkdir -p "$OUT/HTTPTypes"
HTTP_TYPES=$ROOT/.build/checkouts/swift-http-types/Sources/HTTPTypes
if [ ! -d "$HTTP_TYPES" ]; then
    (cd "$ROOT" && swift package resolve)
fi
PARSER=("$ROOT"/Sources/IOPoolHTTP/Parser/*.swift)

# swift-http-types declares `@available(HTTPTypes 1.x, *)` through availability macros its
# Package.swift defines; define every one its sources use (all available everywhere on Linux).
MACROS=()
for version in $(grep -rhoE '@available\(HTTPTypes [0-9.]+' "$HTTP_TYPES" | sed 's/.* //' | sort -u); do
    MACROS+=(-enable-experimental-feature "AvailabilityMacro=HTTPTypes $version: macOS 10.0")
done

LIB=$OUT/HTTPTypes/libHTTPTypes.a
if [ ! -f "$LIB" ] || [ -n "$(find "$HTTP_TYPES" -newer "$LIB" -name '*.swift' | head -1)" ]; then
    (cd "$OUT/HTTPTypes" && swiftc -O -parse-as-library -module-name HTTPTypes -swift-version 6 \
        -enable-upcoming-feature InternalImportsByDefault "${MACROS[@]}" \
        -emit-module -emit-module-path "$OUT/HTTPTypes/HTTPTypes.swiftmodule" \
        -emit-library -static -o "$LIB" "$HTTP_TYPES"/*.swift)
fi

if [ "$WHAT" = all ] || [ "$WHAT" = fuzz ]; then
    swiftc -O -g -sanitize=fuzzer,address -use-ld=lld -parse-as-library -swift-version 6 -warnings-as-errors \
        -module-name HTTPParserFuzz -I "$OUT/HTTPTypes" \
        "${PARSER[@]}" "$ROOT/Fuzz/HTTPRequestParser/FuzzEntry.swift" "$LIB" -o "$OUT/http-parser-fuzz"
fi
if [ "$WHAT" = all ] || [ "$WHAT" = probe ]; then
    mkdir -p "$OUT/probe"
    cp "$ROOT/Differential/HTTPRequestParser/ProbeMain.swift" "$OUT/probe/main.swift"
    swiftc -O -swift-version 6 -warnings-as-errors -module-name HTTPParserProbe -I "$OUT/HTTPTypes" \
        "${PARSER[@]}" "$OUT/probe/main.swift" "$LIB" -o "$OUT/http-parser-probe"
fi

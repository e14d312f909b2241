#!/usr/bin/env bash
# Builds the IOPool DocC catalog (Sources/IOPool/IOPool.docc) with the toolchain's docc, and fails on
# any warning (an ambiguous or broken symbol link, an undocumented parameter of a documented
# function, an article link that goes nowhere).
#
# No swift-docc-plugin: the plugin would be a dependency of the root package (resolved by every
# package that depends on this one), and it adds nothing needed here: it, too, asks SwiftPM for
# the symbol graphs and runs the toolchain's `docc convert`. `swift package dump-symbol-graph`
# reuses the debug build that CI has just made (it only extracts, about 20 s), where
# `-Xswiftc -emit-symbol-graph` would change the build flags and rebuild every module.
#
# Usage: bash .ci/docs.sh [--output-path DIR]   (default: .build/docs/IOPool.doccarchive)
set -euo pipefail
cd "$(dirname "$0")/.."

output=.build/docs/IOPool.doccarchive
if [ "${1:-}" = "--output-path" ]; then output=$2; fi

# Public symbols only, as a user of the library sees them. Extension blocks: members IOPool
# adds to other modules' types (the _Concurrency extensions) are listed under those types.
swift package dump-symbol-graph --minimum-access-level public --skip-inherited-docs \
    --emit-extension-block-symbols >/dev/null
graphs=$(swift build --show-bin-path)/../symbolgraph
selected=$(mktemp -d)
trap 'rm -rf "$selected"' EXIT
# IOPool's graph and the graphs of its extensions to other modules (IOPool@Module), nothing else.
cp "$graphs"/IOPool.symbols.json "$graphs"/IOPool@*.symbols.json "$selected"/

# The toolchain's docc (next to swift when it is not on PATH).
docc=$(command -v docc || echo "$(dirname "$(readlink -f "$(command -v swift)")")/docc")

rm -rf "$output"
mkdir -p "$(dirname "$output")"
log=$(mktemp)
"$docc" convert Sources/IOPool/IOPool.docc \
    --additional-symbol-graph-dir "$selected" \
    --fallback-display-name IOPool \
    --fallback-bundle-identifier swift-iopool.IOPool \
    --output-path "$output" \
    --warnings-as-errors 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
warnings=$(grep -cE "^(warning|error):" "$log" || true)
rm -f "$log"
if [ "$status" -ne 0 ] || [ "$warnings" -ne 0 ]; then
    echo "error: the DocC catalog has $warnings warnings or errors (listed above)" >&2
    exit 1
fi
echo "docs: IOPool.doccarchive built with 0 warnings: $output"

#!/usr/bin/env bash
# Total user-space instructions (callgrind Ir, all threads) of one `iopool bench scheduler` run;
# per task = (Ir at N2 − Ir at N1) / ((N2 − N1) × tasks per iteration). Run from the repository root.
# valgrind 3.19 cannot read Swift 6.3's DWARF 5: the binary and the Swift libraries are copied with
# --strip-debug into $WORK; it faults in libdispatch's sigsuspend of the exiting main thread: a
# preload shim ($SHIM, see the "Trust work" section of BENCHMARKS.md for its source) avoids it.
# usage: callgrind-scheduler.sh BENCHMARK RUNTIME ITERATIONS   (writes $WORK/cg-BENCHMARK-RUNTIME-ITERATIONS.out)
set -euo pipefail
WORK=${WORK:-/tmp/iopool-callgrind} SHIM=${SHIM:-/tmp/meas-tools/sigsuspend_shim.so}
bin=CLI/.build/release/iopool
mkdir -p "$WORK/lib"
if [ ! -e "$WORK/iopool" ] || [ "$bin" -nt "$WORK/iopool" ]; then
  objcopy --strip-debug "$bin" "$WORK/iopool"
  for l in $(ldd "$bin" | awk '/\/swift\//{print $3}'); do objcopy --strip-debug "$l" "$WORK/lib/$(basename "$l")"; done
fi
b=$1 rt=$2 n=$3
LD_LIBRARY_PATH=$WORK/lib LD_PRELOAD=$SHIM valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-$b-$rt-$n.out" \
  "$WORK/iopool" bench scheduler --only "$b" --runtime "$rt" --iterations "$n" --output "$WORK/results" >/dev/null 2>"$WORK/cg-$b-$rt-$n.err"
grep -E '^summary:' "$WORK/cg-$b-$rt-$n.out" | awk '{print $2}'

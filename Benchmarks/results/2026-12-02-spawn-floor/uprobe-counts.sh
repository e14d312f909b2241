#!/usr/bin/env bash
# Swift runtime calls and mallocs per spawned task in `iopool bench scheduler`, by perf uprobes:
# (count over --iterations 25 − count over --iterations 5) / (20 × tasks per iteration), so start-up,
# warm-up and shutdown cancel. Run from the repository root as root, after
# `swift build -c release --package-path CLI --product iopool`.
# usage: uprobe-counts.sh BENCHMARK TASKS_PER_ITERATION RUNTIME...   (runtimes: floor-1 floor stealing ...)
#   e.g. uprobe-counts.sh chained_spawn 1001 floor-1 stealing-preference stealing global
set -euo pipefail
bin=${IOPOOL:-CLI/.build/release/iopool}
out=$(mktemp -d)
concurrency=$(ldd "$bin" | awk '/libswift_Concurrency/{print $3}')
libc=$(ldd "$bin" | awk '/libc.so/{print $3}')
functions="swift_task_create swift_task_enqueue swift_task_switch swift_task_alloc swift_task_addCancellationHandler"
for f in $functions; do perf probe -q -x "$concurrency" --add "$f" 2>/dev/null || true; done
perf probe -q -x "$libc" --add malloc 2>/dev/null || true
events=$(for f in $functions; do printf 'probe_libswift_Concurrency:%s,' "$f"; done)probe_libc:malloc
bench=$1 tasks=$2; shift 2
for rt in "$@"; do
  for n in 5 25; do
    perf stat -x, -e "$events" -o "$out/$rt-$n.csv" "$bin" bench scheduler --runtime "$rt" --only "$bench" --iterations $n --output "$out/results" >/dev/null 2>&1
  done
  printf '%-22s' "$rt"
  for e in ${events//,/ }; do
    x=$(awk -F, -v e="$e" '$3==e{print $1}' "$out/$rt-5.csv"); y=$(awk -F, -v e="$e" '$3==e{print $1}' "$out/$rt-25.csv")
    printf ' %s=%.2f' "${e##*:}" "$(echo "($y - $x) / (20 * $tasks)" | bc -l)"
  done
  echo
done

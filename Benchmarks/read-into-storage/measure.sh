#!/bin/sh
# Instructions and mallocs per read, by read API (BENCHMARKS.md, "Issue 12: reads into the
# caller's storage"). Run from this directory; needs valgrind and gcc.
set -e
swift build -c release
# valgrind 3.19 cannot read Swift 6.3's DWARF 5: measure a stripped copy.
cp .build/release/ReadBench rb && strip --strip-debug rb
# valgrind 3.19 faults in rt_sigsuspend on a mask in read-only memory (dispatch_main): the shim.
gcc -O2 -shared -fPIC -o sigsuspend_shim.so ../counts/sigsuspend_shim.c
for method in read-maxBytes read-appendingTo read-OutputRawSpan read-into-pointer buffered-readExactly; do
    for n in 2000 12000; do
        LD_PRELOAD=$PWD/sigsuspend_shim.so valgrind --tool=callgrind --callgrind-out-file=cg.$method.$n ./rb $method $n >/dev/null 2>&1
    done
    a=$(grep '^summary:' cg.$method.2000 | cut -d' ' -f2)
    b=$(grep '^summary:' cg.$method.12000 | cut -d' ' -f2)
    echo "$method: $(( (b - a) / 10000 )) instructions per iteration (a 64-byte write and a read)"
done
python3 calls.py read-maxBytes read-appendingTo read-OutputRawSpan read-into-pointer buffered-readExactly

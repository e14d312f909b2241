/*
 * sigsuspend_shim.c - LD_PRELOAD shim, for running Swift servers under valgrind only.
 *
 *   cc -O2 -shared -fPIC -o sigsuspend_shim.so sigsuspend_shim.c
 *   LD_PRELOAD=$PWD/sigsuspend_shim.so valgrind --tool=callgrind ./server ...
 *
 * Why: a Swift program with an async main ends its main thread in libdispatch's dispatch_main,
 * which parks it in sigsuspend() with a mask that lives in read-only memory. valgrind 3.19's
 * rt_sigsuspend wrapper rewrites the mask in place (to keep its own signals deliverable), so
 * valgrind itself faults on the write and the run dies. The shim copies the mask to the stack
 * and makes the same syscall on the copy: same semantics (the thread still wakes for any signal
 * the mask allows), writable memory for valgrind. A nanosleep loop would also avoid the fault,
 * but it would change how the thread waits; the copy changes nothing the program can see.
 *
 * Never preloaded into a native (non-valgrind) run: there it is not needed.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    /* 8: the kernel's sigset size on Linux (64 signals), not glibc's 128-byte sigset_t */
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)8);
}

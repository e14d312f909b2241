// The Swift runtime's global-executor hooks, for `WorkStealingPool.unsafeInstallAsGlobalExecutor`.
//
// libswift_Concurrency exports one function pointer per hook (ConcurrencyHooks.def): when
// `swift_task_enqueueGlobal_hook` is set, `swift_task_enqueueGlobal` (every job of a task with no
// executor preference, every default actor that becomes runnable) calls it instead of its own
// implementation; likewise `swift_task_enqueueGlobalWithDelay_hook` and `..WithDeadline_hook` for
// delayed jobs. The hooks are in Swift's calling convention (`SWIFT_CC(swift)`, clang's
// `swiftcall`), so they are defined here, in C, with exactly the runtime's signatures, rather than
// as Swift closures reinterpreted as function pointers (which is what SwiftNIO does, and what
// Swift does not promise to keep working). They hand each job to the pool through two plain C
// callbacks set once at installation.
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>
#include "CIOPoolShims.h"

#define SWIFT_CC __attribute__((swiftcall))

typedef SWIFT_CC void (*enqueue_global_original)(void *job);
typedef SWIFT_CC void (*enqueue_global_hook)(void *job, enqueue_global_original original);
typedef SWIFT_CC void (*enqueue_delay_original)(unsigned long long delay, void *job);
typedef SWIFT_CC void (*enqueue_delay_hook)(unsigned long long delay, void *job, enqueue_delay_original original);
typedef SWIFT_CC void (*enqueue_deadline_original)(long long sec, long long nsec, long long tsec, long long tnsec,
                                                   int clock, void *job);
typedef SWIFT_CC void (*enqueue_deadline_hook)(long long sec, long long nsec, long long tsec, long long tnsec,
                                               int clock, void *job, enqueue_deadline_original original);

// The runtime's variables (read by it with plain loads; written here with compare-exchanges, so
// that two installers in one process cannot both believe they won).
extern _Atomic(enqueue_global_hook) swift_task_enqueueGlobal_hook;
extern _Atomic(enqueue_delay_hook) swift_task_enqueueGlobalWithDelay_hook;
extern _Atomic(enqueue_deadline_hook) swift_task_enqueueGlobalWithDeadline_hook;

struct installation {
    void *context;
    ciopool_global_enqueue_callback enqueue;
    ciopool_global_enqueue_delayed_callback enqueue_delayed;
};
static struct installation installation;
// Published (release) before the hooks are; the hooks read it with acquire. The runtime reads the
// hook variable with a plain load, which does not order our later load of `installation` on a
// weakly ordered CPU, so a hook that finds nothing yet waits for the store it must be about to see.
static _Atomic(struct installation *) installed = NULL;

static inline struct installation *current_installation(void) {
    struct installation *current;
    while ((current = atomic_load_explicit(&installed, memory_order_acquire)) == NULL) {
    }
    return current;
}

static SWIFT_CC void enqueue_global(void *job, enqueue_global_original original) {
    (void)original;
    struct installation *current = current_installation();
    current->enqueue(current->context, job);
}

static SWIFT_CC void enqueue_global_with_delay(unsigned long long delay, void *job, enqueue_delay_original original) {
    (void)original;
    struct installation *current = current_installation();
    current->enqueue_delayed(current->context, job, delay);
}

// The runtime's clock ids (swift_clock_id in Clock.cpp; its swift_get_time maps them the same way).
static int posix_clock(int swift_clock) {
    switch (swift_clock) {
    case 1: return CLOCK_BOOTTIME;   // ContinuousClock
    case 2: return CLOCK_MONOTONIC;  // SuspendingClock
    default: return -1;
    }
}

static SWIFT_CC void enqueue_global_with_deadline(long long sec, long long nsec, long long tsec, long long tnsec,
                                                  int clock, void *job, enqueue_deadline_original original) {
    int posix = posix_clock(clock);
    if (posix < 0) {
        // A clock this code does not know: the runtime's own implementation, which does.
        original(sec, nsec, tsec, tnsec, clock, job);
        return;
    }
    struct timespec now;
    clock_gettime(posix, &now);
    long long remaining = (sec - (long long)now.tv_sec) * 1000000000LL + (nsec - (long long)now.tv_nsec);
    struct installation *current = current_installation();
    current->enqueue_delayed(current->context, job, remaining > 0 ? (unsigned long long)remaining : 0);
}

int ciopool_global_executor_hooks_free(void) {
    return atomic_load(&swift_task_enqueueGlobal_hook) == NULL
        && atomic_load(&swift_task_enqueueGlobalWithDelay_hook) == NULL
        && atomic_load(&swift_task_enqueueGlobalWithDeadline_hook) == NULL;
}

int ciopool_global_executor_install(void *context, ciopool_global_enqueue_callback enqueue,
                                    ciopool_global_enqueue_delayed_callback enqueue_delayed) {
    // Called once per process (the Swift side lets one call through).
    installation = (struct installation){context, enqueue, enqueue_delayed};
    atomic_store_explicit(&installed, &installation, memory_order_release);
    enqueue_global_hook expected = NULL;
    if (!atomic_compare_exchange_strong(&swift_task_enqueueGlobal_hook, &expected, enqueue_global)) {
        return 1;
    }
    // Where another library took a delay hook meanwhile, its hook keeps the delayed jobs.
    enqueue_delay_hook expected_delay = NULL;
    atomic_compare_exchange_strong(&swift_task_enqueueGlobalWithDelay_hook, &expected_delay, enqueue_global_with_delay);
    enqueue_deadline_hook expected_deadline = NULL;
    atomic_compare_exchange_strong(&swift_task_enqueueGlobalWithDeadline_hook, &expected_deadline,
                                   enqueue_global_with_deadline);
    return 0;
}

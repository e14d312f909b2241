#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/uio.h>
#include <time.h>
#include "CIOPoolShims.h"

static _Thread_local void *ciopool_current_thread = 0;

void *ciopool_current_thread_get(void) { return ciopool_current_thread; }
void ciopool_current_thread_set(void *thread) { ciopool_current_thread = thread; }

// Swift's own calling convention, as the runtime exports it (clang's `swiftcall`).
extern void *swift_task_getCurrent(void) __attribute__((swiftcall));

uintptr_t ciopool_current_task_address(void) { return (uintptr_t)swift_task_getCurrent(); }

// The runtime's cancellation records (swift/ABI/TaskStatus.h): the handler is a Swift function
// taking its context in the `swift_context` register, the runtime functions are `swiftcall`.
typedef void (*ciopool_cancellation_handler)(void *__attribute__((swift_context))) __attribute__((swiftcall));
extern void *swift_task_addCancellationHandler(ciopool_cancellation_handler handler, void *context)
    __attribute__((swiftcall));
extern void swift_task_removeCancellationHandler(void *record) __attribute__((swiftcall));
// Defined in Swift (`TaskIOCancellation.swift`, `@_cdecl`).
extern void ciopool_task_io_cancellation_fire(void *scope);

__attribute__((swiftcall)) static void ciopool_cancellation_trampoline(void *__attribute__((swift_context)) scope) {
    ciopool_task_io_cancellation_fire(scope);
}

void *ciopool_task_add_cancellation_handler(void *scope) {
    return swift_task_addCancellationHandler(ciopool_cancellation_trampoline, scope);
}

void ciopool_task_remove_cancellation_handler(void *record) { swift_task_removeCancellationHandler(record); }

static _Thread_local void *ciopool_current_worker = 0;

void *ciopool_current_worker_get(void) { return ciopool_current_worker; }
void ciopool_current_worker_set(void *worker) { ciopool_current_worker = worker; }

static _Thread_local void *ciopool_resume_after_job = 0;

void *ciopool_resume_after_job_get(void) { return ciopool_resume_after_job; }
void ciopool_resume_after_job_set(void *task) { ciopool_resume_after_job = task; }

int ciopool_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int ciopool_affinity_cpus(int *cpus, int max) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    int found = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (found < max) cpus[found] = cpu;
        found++;
    }
    return found;
}

int ciopool_set_thread_affinity(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int index = 0; index < count; index++) {
        if (cpus[index] < 0 || cpus[index] >= CPU_SETSIZE) { errno = EINVAL; return -1; }
        CPU_SET(cpus[index], &set);
    }
    return sched_setaffinity(0, sizeof(set), &set);
}

int ciopool_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

int ciopool_get_thread_name(char *name, unsigned long size) { return pthread_getname_np(pthread_self(), name, size); }

int ciopool_accept4(int fd, int flags) { return accept4(fd, 0, 0, flags); }

long ciopool_read(int fd, void *buffer, unsigned long count) { return syscall(SYS_read, fd, buffer, count); }

/* send(2) is sendto(2) without an address (what glibc's send does). */
long ciopool_send(int fd, const void *buffer, unsigned long count, int flags) {
    return syscall(SYS_sendto, fd, buffer, count, flags, (void *)0, 0);
}

enum { CIOPOOL_MMSG_MAX = 64 };

/// Points message i at buffers[i] (lengths[i] bytes) and at addresses[i] (address_lengths[i]
/// bytes; none where it is 0).
static void ciopool_fill_messages(struct mmsghdr *messages, struct iovec *vectors, void *const *buffers,
                                  const unsigned long *lengths, unsigned count, struct sockaddr_storage *addresses,
                                  const unsigned *address_lengths) {
    memset(messages, 0, sizeof(messages[0]) * count);
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = buffers[i];
        vectors[i].iov_len = lengths[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        if (address_lengths[i] != 0) {
            messages[i].msg_hdr.msg_name = &addresses[i];
            messages[i].msg_hdr.msg_namelen = address_lengths[i];
        }
    }
}

int ciopool_recvmmsg(int fd, void *const *buffers, const unsigned long *capacities, unsigned count,
                     void *sender_storage, unsigned *sender_lengths, unsigned long *lengths, int *truncated) {
    struct sockaddr_storage *senders = sender_storage;
    if (count > CIOPOOL_MMSG_MAX) count = CIOPOOL_MMSG_MAX;
    struct mmsghdr messages[CIOPOOL_MMSG_MAX];
    struct iovec vectors[CIOPOOL_MMSG_MAX];
    unsigned room[CIOPOOL_MMSG_MAX];
    for (unsigned i = 0; i < count; i++) room[i] = sizeof(senders[i]);
    ciopool_fill_messages(messages, vectors, buffers, capacities, count, senders, room);
    int received = recvmmsg(fd, messages, count, MSG_DONTWAIT, 0);
    if (received < 0) return -1;
    for (int i = 0; i < received; i++) {
        lengths[i] = messages[i].msg_len;
        truncated[i] = (messages[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
        sender_lengths[i] = messages[i].msg_hdr.msg_namelen;
    }
    return received;
}

int ciopool_sendmmsg(int fd, void *const *buffers, const unsigned long *lengths, unsigned count,
                     const void *destination_storage, const unsigned *destination_lengths) {
    struct sockaddr_storage *destinations = (struct sockaddr_storage *)destination_storage;
    if (count > CIOPOOL_MMSG_MAX) count = CIOPOOL_MMSG_MAX;
    struct mmsghdr messages[CIOPOOL_MMSG_MAX];
    struct iovec vectors[CIOPOOL_MMSG_MAX];
    ciopool_fill_messages(messages, vectors, buffers, lengths, count, destinations, destination_lengths);
    return sendmmsg(fd, messages, count, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int ciopool_timeout_milliseconds(long long timeout_ns) {
    if (timeout_ns < 0) return -1;
    /* Rounded up (a timer must not fire early); clamped, as INT_MAX ms is ~24.8 days and an
       earlier wake-up only makes the loop compute the remaining time and wait again. */
    long long milliseconds = timeout_ns / 1000000LL + (timeout_ns % 1000000LL != 0);
    return milliseconds > INT_MAX ? INT_MAX : (int)milliseconds;
}

int ciopool_epoll_wait_ns(int epfd, struct epoll_event *events, int maxevents, long long timeout_ns) {
    /* Atomic because every loop thread reads it and the first to see ENOSYS clears it; relaxed
       suffices, as it guards no other memory and every thread reaches the same answer. */
    static atomic_int has_pwait2 = 1;
    if (atomic_load_explicit(&has_pwait2, memory_order_relaxed)) {
        struct timespec timeout;
        struct timespec *timeout_pointer = 0;
        if (timeout_ns >= 0) {
            timeout.tv_sec = timeout_ns / 1000000000LL;
            timeout.tv_nsec = timeout_ns % 1000000000LL;
            timeout_pointer = &timeout;
        }
        int result = epoll_pwait2(epfd, events, maxevents, timeout_pointer, 0);
        if (result >= 0 || errno != ENOSYS) return result;
        atomic_store_explicit(&has_pwait2, 0, memory_order_relaxed);
    }
    return epoll_wait(epfd, events, maxevents, ciopool_timeout_milliseconds(timeout_ns));
}

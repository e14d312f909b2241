#ifndef CIOPOOL_SHIMS_H
#define CIOPOOL_SHIMS_H

// Glibc's Swift module does not export these headers; including them here does.
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/// The IOThread (an unretained pointer) whose loop runs on the calling OS thread, or NULL.
/// A C `_Thread_local` so that `IOThread.current` is one TLS load, with no Swift TLS machinery.
void *_Nullable ciopool_current_thread_get(void);
void ciopool_current_thread_set(void *_Nullable thread);

/// The running Swift task's address, or 0 outside a task: the runtime's `swift_task_getCurrent`
/// (one thread-local read), which the standard library's `withUnsafeCurrentTask` calls too, but
/// without that function's copy of the task reference (a retain and a release, called on every
/// I/O wait of a spawned task to find its cancellation scope).
uintptr_t ciopool_current_task_address(void);

/// Adds a cancellation handler to the running task, whose context is `scope` (an unretained
/// `TaskIOCancellation`, which must outlive the record): when the task is cancelled, the runtime
/// calls the Swift function `ciopool_task_io_cancellation_fire(scope)`. Returns the record for
/// `ciopool_task_remove_cancellation_handler`, which the same task must call, in the same function
/// (the record lives on the task's stack allocator). This is what `withTaskCancellationHandler`
/// does (`swift_task_addCancellationHandler`, exported by the runtime), without that function's
/// own async frame, its reabstraction thunks for the operation, and a closure for the handler.
void *_Nonnull ciopool_task_add_cancellation_handler(void *_Nonnull scope);
void ciopool_task_remove_cancellation_handler(void *_Nonnull record);

/// The WorkStealingPool worker thread context (an unretained pointer) of the calling OS thread, or NULL.
void *_Nullable ciopool_current_worker_get(void);
void ciopool_current_worker_set(void *_Nullable worker);

/// A task to resume once the calling thread's current job has returned (set by `blocking { }` after
/// it handed the thread's worker or loop to another thread), or NULL.
void *_Nullable ciopool_resume_after_job_get(void);
void ciopool_resume_after_job_set(void *_Nullable task);

/// CPUs this process may run on: sched_getaffinity's mask (cpusets, taskset).
/// Returns 0 if the mask cannot be read.
int ciopool_affinity_cpu_count(void);

/// The CPUs the calling thread may run on, in ascending order: writes at most `max` of them to
/// `cpus` and returns how many there are (0 if the mask cannot be read).
int ciopool_affinity_cpus(int *_Nonnull cpus, int max);

/// Restricts the calling thread to `cpus` (sched_setaffinity); threads and processes it starts
/// afterwards inherit the mask. Returns 0, or -1 with errno set.
int ciopool_set_thread_affinity(const int *_Nonnull cpus, int count);

/// pthread_setname_np needs _GNU_SOURCE, which the Glibc module is not built with.
int ciopool_set_thread_name(const char *_Nonnull name);

/// pthread_getname_np of the calling thread into `name` (`size` bytes, 16 hold any Linux name);
/// returns 0 or an errno. For the pools' log metadata.
int ciopool_get_thread_name(char *_Nonnull name, unsigned long size);

/// accept4 is a GNU extension the Glibc module does not export.
int ciopool_accept4(int fd, int flags);

/// read(2) and send(2) on a non-blocking socket, as raw system calls: glibc's wrappers are
/// thread-cancellation points, and switch asynchronous cancellation on and off around the call
/// (about 30 instructions each, two per echoed message, callgrind). This library never cancels
/// threads, and these calls never block. Same results as the wrappers: -1 with errno set on failure.
long ciopool_read(int fd, void *_Nullable buffer, unsigned long count);
long ciopool_send(int fd, const void *_Nullable buffer, unsigned long count, int flags);

/// recvmmsg(MSG_DONTWAIT) into `count` (at most 64) separate buffers: per datagram i
/// it stores the bytes into buffers[i] (capacities[i] of room), its stored length in lengths[i],
/// whether the kernel cut it short in truncated[i], and the sender in senders[i] (sender_lengths[i]
/// bytes; `senders` is an array of `count` struct sockaddr_storage). Returns how many datagrams it
/// received, or -1 with errno (EAGAIN: none queued). (struct mmsghdr and recvmmsg need
/// _GNU_SOURCE, which the Glibc module is not built with; sys/socket.h is not included here
/// because a second import of it changes how Swift sees its SOCK_* constants.)
int ciopool_recvmmsg(int fd, void *_Nonnull const *_Nonnull buffers, const unsigned long *_Nonnull capacities,
                     unsigned count, void *_Nonnull senders, unsigned *_Nonnull sender_lengths,
                     unsigned long *_Nonnull lengths, int *_Nonnull truncated);

/// sendmmsg(MSG_DONTWAIT | MSG_NOSIGNAL) of `count` (at most 64) datagrams: datagram i is
/// lengths[i] bytes at buffers[i], sent to destinations[i] (destination_lengths[i] bytes; an array
/// of struct sockaddr_storage), or to the connected peer where destination_lengths[i] is 0.
/// Returns how many were sent (the first ones), or -1 with errno if the first could not be.
int ciopool_sendmmsg(int fd, void *_Nonnull const *_Nonnull buffers, const unsigned long *_Nonnull lengths,
                     unsigned count, const void *_Nonnull destinations, const unsigned *_Nonnull destination_lengths);

/// epoll_wait with a nanosecond timeout (epoll_pwait2, Linux 5.11); timeout_ns < 0 blocks.
/// Falls back to epoll_wait with the timeout rounded up to milliseconds where the kernel lacks it
/// (`ciopool_timeout_milliseconds`).
int ciopool_epoll_wait_ns(int epfd, struct epoll_event *_Nonnull events, int maxevents, long long timeout_ns);

/// epoll_wait's millisecond timeout for `timeout_ns`: -1 (block) if negative, else rounded up and
/// clamped to INT_MAX (~24.8 days; the loop waits again for the rest).
int ciopool_timeout_milliseconds(long long timeout_ns);

/// Swift's global executor, redirected (global_executor.c): `enqueue` receives every job the runtime
/// would give its global executor, `enqueue_delayed` every job it would give it after a delay (in
/// nanoseconds, from now), each with `context`.
typedef void (*ciopool_global_enqueue_callback)(void *_Nullable context, void *_Nonnull job);
typedef void (*ciopool_global_enqueue_delayed_callback)(void *_Nullable context, void *_Nonnull job,
                                                        unsigned long long delay_ns);

/// 1 if none of the runtime's three global-enqueue hooks is set (nobody has redirected Swift's
/// global executor), else 0.
int ciopool_global_executor_hooks_free(void);

/// Sets the runtime's enqueue hook to the callbacks (and its two delayed-enqueue hooks, where they
/// are still free), by compare-exchange. Returns 0, or 1 if another enqueue hook was set first.
/// Once per process: there is no way back.
int ciopool_global_executor_install(void *_Nullable context, ciopool_global_enqueue_callback _Nonnull enqueue,
                                    ciopool_global_enqueue_delayed_callback _Nonnull enqueue_delayed);

#endif

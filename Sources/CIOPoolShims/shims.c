#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include "CIOPoolShims.h"

static _Thread_local void *ciopool_current_thread = 0;

void *ciopool_current_thread_get(void) { return ciopool_current_thread; }
void ciopool_current_thread_set(void *thread) { ciopool_current_thread = thread; }

int ciopool_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}

int ciopool_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

int ciopool_accept4(int fd, int flags) { return accept4(fd, 0, 0, flags); }

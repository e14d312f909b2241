/*
 * pingpong_client.c - epoll echo load client, byte-verifying, cheap per message.
 *
 *   cc -O2 -Wall -Wextra -pthread -o pingpong_client pingpong_client.c
 *   ./pingpong_client --port P [--connections 16] [--size 64] [--depth 1]
 *                     [--threads 1] [--seconds 5] [--warmup 1] [--server-pid PID]
 *
 * It is the load client of `iopool bench echo` and of measure.sh. It must cost
 * less per message than any server it drives, or it, not the server, sets the
 * pace: hence C, one read() per readable event into a 64 KiB scratch buffer,
 * one write() per message in the common case, and no allocation after set-up.
 *
 * Opens C connections to 127.0.0.1:P, spread over T threads (each with its own
 * epoll; connection i on thread i % T). Each connection keeps K messages of M
 * bytes in flight (K = 1: strict ping-pong): it reads the echo, compares every
 * byte with what was sent, and sends the next message. Every message carries a
 * different byte pattern (per connection and per sequence number), so
 * misrouted or stale bytes are detected.
 *
 * The main thread keeps the time: after every connection is open it sleeps W
 * seconds (warm-up), opens the measured window, sleeps D seconds, closes it.
 * At each window edge it reads, at the same instant, the monotonic clock, this
 * process's CPU clock, each worker thread's CPU clock and (with --server-pid)
 * the server's CPU clock (clock_getcpuclockid: user+system time of all its
 * threads, ns resolution). Round trips that complete inside the window are
 * counted, and their latencies (send of a message to the last byte of its
 * echo) go into a log-linear histogram: 64 linear steps per power of two, so a
 * percentile is within 1/64 (1.6%) of the true value.
 *
 * Prints "measure-start" on stderr when the window opens and "measure-end"
 * when it closes (both flushed immediately), then one line of JSON on stdout:
 *   {"connections":C,"size":M,"depth":K,"threads":T,"seconds":D,
 *    "messages":N,"messages_per_sec":X,"window_sec":S,
 *    "p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,"max_us":..,
 *    "client_cpu_ns":..,"client_busiest_thread_cpu_ns":..}
 * client_cpu_ns is this process's CPU time in the window (all threads);
 * client_busiest_thread_cpu_ns the most any one worker thread used, so
 * client_busiest_thread_cpu_ns / (window_sec * 1e9) is how busy the busiest
 * client core was. With --server-pid it appends ,"server_cpu_ns":T.
 *
 * Exit status: 0 ok, 1 setup/usage/I-O error, 2 data mismatch or the server
 * closed a connection early.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_SIZE (64 * 1024)
#define MAX_EVENTS 256
/* A worker wakes at least this often, so that it sees the window close even
 * when the server has stopped answering. */
#define IDLE_WAKE_MS 20

/* ---- latency histogram (the layout of iopool's LatencyHistogram) ---- */

#define SUB_BUCKET_BITS 6
#define SUB_BUCKETS (1 << SUB_BUCKET_BITS)
#define BUCKETS (64 * SUB_BUCKETS)

struct histogram {
    uint64_t counts[BUCKETS];
    uint64_t count, max;
};

static int bucket_index(uint64_t v) {
    if (v < SUB_BUCKETS)
        return (int)v;
    int magnitude = 63 - __builtin_clzll(v); /* >= SUB_BUCKET_BITS */
    int shift = magnitude - SUB_BUCKET_BITS;
    return (shift + 1) * SUB_BUCKETS + (int)((v >> shift) & (SUB_BUCKETS - 1));
}

static uint64_t bucket_upper_edge(int index) {
    if (index < SUB_BUCKETS)
        return (uint64_t)index;
    int shift = index / SUB_BUCKETS - 1;
    uint64_t lower = ((uint64_t)SUB_BUCKETS + (uint64_t)(index % SUB_BUCKETS)) << shift;
    return lower + ((uint64_t)1 << shift) - 1;
}

static void histogram_record(struct histogram *h, uint64_t ns) {
    h->counts[bucket_index(ns)]++;
    h->count++;
    if (ns > h->max)
        h->max = ns;
}

static void histogram_merge(struct histogram *into, const struct histogram *h) {
    for (int i = 0; i < BUCKETS; i++)
        into->counts[i] += h->counts[i];
    into->count += h->count;
    if (h->max > into->max)
        into->max = h->max;
}

/* The upper edge of the bucket holding the value at `percentile`, capped at
 * the largest value recorded; 0 when empty. */
static uint64_t histogram_percentile(const struct histogram *h, double percentile) {
    if (h->count == 0)
        return 0;
    double exact = percentile / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++; /* rounded up, without libm */
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
        seen += h->counts[i];
        if (h->counts[i] && seen >= rank) {
            uint64_t edge = bucket_upper_edge(i);
            return edge < h->max ? edge : h->max;
        }
    }
    return h->max;
}

/* ---- connections ---- */

struct conn {
    int fd;
    int epfd;
    uint32_t id;
    int want_out;          /* EPOLLOUT currently registered */
    uint64_t send_seq;     /* messages queued so far */
    uint64_t recv_seq;     /* messages echoed and verified so far */
    uint64_t written;      /* bytes written to the socket so far */
    uint64_t received;     /* bytes read from the socket so far */
    size_t got;            /* bytes of message recv_seq received */
    unsigned char *expect; /* the bytes of message recv_seq */
    unsigned char *out;    /* queued bytes not yet written: out[out_off..out_len) */
    size_t out_off, out_len;
    uint64_t *sent_at;     /* ring of send times of the messages in flight */
};

/* Phases, set by the main thread: 0 = warm-up, 1 = measuring, 2 = done. */
static _Atomic int phase;
static size_t msg_size = 64;
static long depth = 1;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(int status, const char *fmt, const char *detail) {
    fprintf(stderr, "pingpong_client: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    exit(status);
}

/* Cheap; varies with connection id, sequence number and offset. */
static void fill_message(unsigned char *into, uint32_t id, uint64_t seq) {
    uint32_t x = id * 2654435761u ^ (uint32_t)(seq * 40503u);
    for (size_t i = 0; i < msg_size; i++) {
        x = x * 1103515245u + 12345u;
        into[i] = (unsigned char)(x >> 24);
    }
}

static void set_out(struct conn *c, int on) {
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fail(1, "epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

/* Write as much of the queued bytes as the socket takes. */
static void pump_send(struct conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out(c, 1);
                return;
            }
            if (errno == EPIPE || errno == ECONNRESET)
                fail(2, "server closed the connection early (write: %s)", strerror(errno));
            fail(1, "write: %s", strerror(errno));
        }
        c->out_off += (size_t)w;
        c->written += (uint64_t)w;
    }
    c->out_off = c->out_len = 0;
    set_out(c, 0);
}

/* Appends the next message to the queue (at most `depth` are in flight, so
 * the queue, depth * size bytes, never overflows). */
static void queue_message(struct conn *c) {
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    fill_message(c->out + c->out_len, c->id, c->send_seq);
    c->out_len += msg_size;
    c->sent_at[c->send_seq % (uint64_t)depth] = now_ns();
    c->send_seq++;
}

/* One read (level-triggered epoll reports the socket again if more is
 * waiting): verifies the bytes, completes round trips, queues their
 * successors while the run goes on. */
static void pump_recv(struct conn *c, unsigned char *scratch, struct histogram *h) {
    ssize_t n;
    do
        n = read(c->fd, scratch, SCRATCH_SIZE);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        fail(2, "server closed the connection early%s", "");
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == ECONNRESET)
            fail(2, "server closed the connection early (read: %s)", strerror(errno));
        fail(1, "read: %s", strerror(errno));
    }
    if (c->received + (uint64_t)n > c->written)
        fail(2, "mismatch: received more bytes than were sent%s", "");
    c->received += (uint64_t)n;
    int queued = 0;
    for (size_t off = 0; off < (size_t)n;) {
        size_t take = (size_t)n - off < msg_size - c->got ? (size_t)n - off : msg_size - c->got;
        if (memcmp(scratch + off, c->expect + c->got, take) != 0)
            fail(2, "mismatch: echoed bytes differ from the bytes sent%s", "");
        off += take;
        c->got += take;
        if (c->got < msg_size)
            break;
        uint64_t latency = now_ns() - c->sent_at[c->recv_seq % (uint64_t)depth];
        int current = atomic_load_explicit(&phase, memory_order_relaxed);
        if (current == 1)
            histogram_record(h, latency);
        c->recv_seq++;
        c->got = 0;
        fill_message(c->expect, c->id, c->recv_seq);
        if (current != 2) {
            queue_message(c);
            queued = 1;
        }
    }
    if (queued && !c->want_out)
        pump_send(c);
}

/* ---- threads ---- */

struct worker {
    pthread_t thread;
    clockid_t cpu_clock;
    long first, count; /* connections first, first + T, ... (count of them) */
    long stride;
    struct histogram histogram;
};

static struct sockaddr_in server_addr;
/* Every worker has opened its connections; every worker has left its loop
 * (it waits there, so that its CPU clock can still be read at the end edge). */
static pthread_barrier_t connected, finished;

static void *run_worker(void *arg) {
    struct worker *w = arg;
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        fail(1, "epoll_create1: %s", strerror(errno));
    struct conn *conns = calloc((size_t)w->count, sizeof *conns);
    unsigned char *scratch = malloc(SCRATCH_SIZE);
    if (!conns || !scratch)
        fail(1, "out of memory%s", "");
    for (long i = 0; i < w->count; i++) {
        struct conn *c = &conns[i];
        /* blocking connect, then switch to non-blocking */
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            fail(1, "socket: %s", strerror(errno));
        if (connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0)
            fail(1, "connect: %s", strerror(errno));
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
            fail(1, "fcntl: %s", strerror(errno));
        c->epfd = epfd;
        c->id = (uint32_t)(w->first + i * w->stride);
        c->expect = malloc(msg_size);
        c->out = malloc(msg_size * (size_t)depth);
        c->sent_at = malloc(sizeof *c->sent_at * (size_t)depth);
        if (!c->expect || !c->out || !c->sent_at)
            fail(1, "out of memory%s", "");
        fill_message(c->expect, c->id, 0);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            fail(1, "epoll_ctl: %s", strerror(errno));
    }
    pthread_barrier_wait(&connected);

    for (long i = 0; i < w->count; i++) {
        for (long k = 0; k < depth; k++)
            queue_message(&conns[i]);
        pump_send(&conns[i]);
    }
    struct epoll_event events[MAX_EVENTS];
    while (atomic_load_explicit(&phase, memory_order_relaxed) != 2) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, IDLE_WAKE_MS);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail(1, "epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (events[k].events & EPOLLOUT)
                pump_send(c);
            if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                pump_recv(c, scratch, &w->histogram);
        }
    }
    pthread_barrier_wait(&finished);
    /* The process exits next: the connections close with it. */
    return NULL;
}

/* ---- main: options, the window, the report ---- */

static int64_t read_clock_ns(clockid_t clk, const char *what) {
    struct timespec ts;
    if (clock_gettime(clk, &ts) < 0)
        fail(1, what, strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(uint64_t deadline_ns) {
    struct timespec ts = {.tv_sec = (time_t)(deadline_ns / 1000000000u), .tv_nsec = (long)(deadline_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

struct reading {
    uint64_t wall_ns;
    int64_t process_ns, server_ns;
    int64_t *thread_ns;
};

static void read_edge(struct reading *r, struct worker *workers, long nthreads, int has_server, clockid_t server_clk) {
    r->wall_ns = now_ns();
    r->process_ns = read_clock_ns(CLOCK_PROCESS_CPUTIME_ID, "clock_gettime(process CPU clock): %s");
    for (long t = 0; t < nthreads; t++)
        r->thread_ns[t] = read_clock_ns(workers[t].cpu_clock, "clock_gettime(thread CPU clock): %s");
    if (has_server)
        r->server_ns = read_clock_ns(server_clk, "clock_gettime(server CPU clock): %s");
}

static long parse_long(const char *name, const char *v, long min) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < min) {
        fprintf(stderr, "pingpong_client: bad value for %s: %s\n", name, v);
        exit(1);
    }
    return x;
}

static double parse_seconds(const char *name, const char *v, int allow_zero) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x) || x < 0 || (x == 0 && !allow_zero) || x > 86400) {
        fprintf(stderr, "pingpong_client: bad value for %s: %s\n", name, v);
        exit(1);
    }
    return x;
}

static void usage(void) {
    fprintf(stderr, "usage: pingpong_client --port P [--connections C] [--size M] [--depth K] "
                    "[--threads T] [--seconds D] [--warmup W] [--server-pid PID]\n");
    exit(1);
}

int main(int argc, char **argv) {
    long port = -1, nconns = 16, size = 64, nthreads = 1, server_pid = 0;
    double seconds = 5, warmup = 1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--port")) port = parse_long(a, v, 1);
        else if (!strcmp(a, "--connections")) nconns = parse_long(a, v, 1);
        else if (!strcmp(a, "--size")) size = parse_long(a, v, 1);
        else if (!strcmp(a, "--depth")) depth = parse_long(a, v, 1);
        else if (!strcmp(a, "--threads")) nthreads = parse_long(a, v, 1);
        else if (!strcmp(a, "--seconds")) seconds = parse_seconds(a, v, 0);
        else if (!strcmp(a, "--warmup")) warmup = parse_seconds(a, v, 1);
        else if (!strcmp(a, "--server-pid")) server_pid = parse_long(a, v, 1);
        else usage();
    }
    if (port < 1 || port > 65535)
        usage();
    if (nthreads > nconns)
        nthreads = nconns; /* a thread without connections would measure nothing */
    msg_size = (size_t)size;
    signal(SIGPIPE, SIG_IGN);

    clockid_t server_clk = 0;
    if (server_pid) {
        int e = clock_getcpuclockid((pid_t)server_pid, &server_clk);
        if (e != 0)
            fail(1, "clock_getcpuclockid(--server-pid): %s", strerror(e));
        (void)read_clock_ns(server_clk, "clock_gettime(server CPU clock): %s");
    }

    memset(&server_addr, 0, sizeof server_addr);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)port);
    server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct worker *workers = calloc((size_t)nthreads, sizeof *workers);
    struct reading start = {.thread_ns = calloc((size_t)nthreads, sizeof(int64_t))};
    struct reading end = {.thread_ns = calloc((size_t)nthreads, sizeof(int64_t))};
    if (!workers || !start.thread_ns || !end.thread_ns)
        fail(1, "out of memory%s", "");
    pthread_barrier_init(&connected, NULL, (unsigned)nthreads + 1);
    pthread_barrier_init(&finished, NULL, (unsigned)nthreads + 1);
    for (long t = 0; t < nthreads; t++) {
        struct worker *w = &workers[t];
        w->first = t;
        w->stride = nthreads;
        w->count = (nconns - t + nthreads - 1) / nthreads;
        int e = pthread_create(&w->thread, NULL, run_worker, w);
        if (e == 0)
            e = pthread_getcpuclockid(w->thread, &w->cpu_clock);
        if (e != 0)
            fail(1, "pthread_create: %s", strerror(e));
    }
    pthread_barrier_wait(&connected);

    /* At each edge the phase changes first, then the clocks are read: both
     * windows (the one counted and the one timed) open and close together. */
    sleep_until(now_ns() + (uint64_t)(warmup * 1e9));
    atomic_store_explicit(&phase, 1, memory_order_relaxed);
    read_edge(&start, workers, nthreads, server_pid != 0, server_clk);
    fprintf(stderr, "measure-start\n");
    fflush(stderr);
    sleep_until(start.wall_ns + (uint64_t)(seconds * 1e9));
    atomic_store_explicit(&phase, 2, memory_order_relaxed);
    read_edge(&end, workers, nthreads, server_pid != 0, server_clk);
    pthread_barrier_wait(&finished);
    fprintf(stderr, "measure-end\n");
    fflush(stderr);

    struct histogram *all = calloc(1, sizeof *all);
    if (!all)
        fail(1, "out of memory%s", "");
    int64_t busiest = 0;
    for (long t = 0; t < nthreads; t++) {
        pthread_join(workers[t].thread, NULL);
        histogram_merge(all, &workers[t].histogram);
        int64_t used = end.thread_ns[t] - start.thread_ns[t];
        if (used > busiest)
            busiest = used;
    }
    double window = (double)(end.wall_ns - start.wall_ns) / 1e9;
    printf("{\"connections\":%ld,\"size\":%ld,\"depth\":%ld,\"threads\":%ld,\"seconds\":%g,"
           "\"messages\":%llu,\"messages_per_sec\":%.1f,\"window_sec\":%.6f,"
           "\"p50_us\":%.3f,\"p90_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"max_us\":%.3f,"
           "\"client_cpu_ns\":%lld,\"client_busiest_thread_cpu_ns\":%lld",
           nconns, size, depth, nthreads, seconds, (unsigned long long)all->count,
           window > 0 ? (double)all->count / window : 0.0, window,
           histogram_percentile(all, 50) / 1e3, histogram_percentile(all, 90) / 1e3,
           histogram_percentile(all, 99) / 1e3, histogram_percentile(all, 99.9) / 1e3, all->max / 1e3,
           (long long)(end.process_ns - start.process_ns), (long long)busiest);
    if (server_pid)
        printf(",\"server_cpu_ns\":%lld", (long long)(end.server_ns - start.server_ns));
    printf("}\n");
    fflush(stdout);
    return 0;
}

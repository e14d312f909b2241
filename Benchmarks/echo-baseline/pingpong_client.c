/*
 * pingpong_client.c - single-threaded epoll ping-pong load client.
 *
 *   cc -O2 -Wall -Wextra -o pingpong_client pingpong_client.c
 *   ./pingpong_client --port P [--connections 16] [--size 64]
 *                     [--seconds 5] [--warmup 1] [--server-pid PID]
 *
 * Opens C connections to 127.0.0.1:P. Each connection does strict ping-pong:
 * send M bytes, read exactly M bytes back, compare with what was sent, repeat.
 * Every message carries a different byte pattern (per connection and per
 * sequence number) so misrouted or stale bytes are detected.
 *
 * Prints "measure-start" on stderr when the warm-up ends and "measure-end"
 * when the measured window ends (both flushed immediately), then one line of
 * JSON on stdout with the round trips completed inside the window:
 *   {"connections":C,"size":M,"seconds":D,"messages":N,"messages_per_sec":X}
 * With --server-pid, the client also reads that process's CPU clock
 * (clock_getcpuclockid: user+system time of all its threads, ns resolution)
 * at exactly the two window boundaries and appends the window's length and
 * the server CPU time spent in it: ,"window_sec":S,"server_cpu_ns":T
 *
 * Exit status: 0 ok, 1 setup/usage/I-O error, 2 data mismatch or the server
 * closed a connection early.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH_SIZE (64 * 1024)

struct conn {
    int fd;
    uint32_t id;
    uint64_t seq;    /* sequence number of the message in flight */
    size_t sent;     /* bytes of the current message written */
    size_t got;      /* bytes of the echo received */
    int want_out;    /* EPOLLOUT currently registered */
    unsigned char *msg;
};

static int epfd;
static size_t msg_size = 64;

static double now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(int status, const char *fmt, const char *detail) {
    fprintf(stderr, "pingpong_client: ");
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    exit(status);
}

static void fill_message(struct conn *c) {
    /* cheap, varies with connection id, sequence number and offset */
    uint32_t x = c->id * 2654435761u ^ (uint32_t)(c->seq * 40503u);
    for (size_t i = 0; i < msg_size; i++) {
        x = x * 1103515245u + 12345u;
        c->msg[i] = (unsigned char)(x >> 24);
    }
}

static void set_out(struct conn *c, int on) {
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        fail(1, "epoll_ctl: %s", strerror(errno));
    c->want_out = on;
}

/* Write as much of the current message as the socket takes. */
static void pump_send(struct conn *c) {
    while (c->sent < msg_size) {
        ssize_t w = write(c->fd, c->msg + c->sent, msg_size - c->sent);
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
        c->sent += (size_t)w;
    }
    set_out(c, 0);
}

/* Returns 1 when a full round trip completed. */
static int pump_recv(struct conn *c, unsigned char *scratch) {
    for (;;) {
        ssize_t n = read(c->fd, scratch, SCRATCH_SIZE);
        if (n == 0)
            fail(2, "server closed the connection early%s", "");
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == ECONNRESET)
                fail(2, "server closed the connection early (read: %s)", strerror(errno));
            fail(1, "read: %s", strerror(errno));
        }
        if (c->got + (size_t)n > c->sent)
            fail(2, "mismatch: received more bytes than were sent%s", "");
        if (memcmp(scratch, c->msg + c->got, (size_t)n) != 0)
            fail(2, "mismatch: echoed bytes differ from the bytes sent%s", "");
        c->got += (size_t)n;
        if (c->got == msg_size)
            return 1;
    }
}

static int64_t read_cpu_clock_ns(clockid_t clk) {
    struct timespec ts;
    if (clock_gettime(clk, &ts) < 0)
        fail(1, "clock_gettime(server CPU clock): %s", strerror(errno));
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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

static void usage(void) {
    fprintf(stderr, "usage: pingpong_client --port P [--connections C] [--size M] "
                    "[--seconds D] [--warmup W] [--server-pid PID]\n");
    exit(1);
}

int main(int argc, char **argv) {
    long port = -1, nconns = 16, size = 64, seconds = 5, warmup = 1, server_pid = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *a = argv[i], *v = argv[++i];
        if (!strcmp(a, "--port")) port = parse_long(a, v, 1);
        else if (!strcmp(a, "--connections")) nconns = parse_long(a, v, 1);
        else if (!strcmp(a, "--size")) size = parse_long(a, v, 1);
        else if (!strcmp(a, "--seconds")) seconds = parse_long(a, v, 1);
        else if (!strcmp(a, "--warmup")) warmup = parse_long(a, v, 0);
        else if (!strcmp(a, "--server-pid")) server_pid = parse_long(a, v, 1);
        else usage();
    }
    if (port < 1 || port > 65535)
        usage();
    msg_size = (size_t)size;
    signal(SIGPIPE, SIG_IGN);

    clockid_t server_clk = 0;
    if (server_pid) {
        int e = clock_getcpuclockid((pid_t)server_pid, &server_clk);
        if (e != 0)
            fail(1, "clock_getcpuclockid(--server-pid): %s", strerror(e));
        (void)read_cpu_clock_ns(server_clk);
    }
    int64_t server_ns_start = 0, server_ns_end = 0;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        fail(1, "epoll_create1: %s", strerror(errno));

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    unsigned char *scratch = malloc(SCRATCH_SIZE);
    if (!conns || !scratch)
        fail(1, "out of memory%s", "");
    for (long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        /* blocking connect, then switch to non-blocking */
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
            fail(1, "socket: %s", strerror(errno));
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0)
            fail(1, "connect: %s", strerror(errno));
        int one = 1;
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0)
            fail(1, "fcntl: %s", strerror(errno));
        c->id = (uint32_t)i;
        c->msg = malloc(msg_size);
        if (!c->msg)
            fail(1, "out of memory%s", "");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            fail(1, "epoll_ctl: %s", strerror(errno));
    }

    /* Phases: 0 = warm-up, 1 = measuring, 2 = done. */
    double t0 = now_sec();
    double t_start = t0 + (double)warmup, t_end = t_start + (double)seconds;
    double t_measure_begin = t0, t_measure_end = t0;
    int phase = 0;
    uint64_t completed = 0, completed_at_start = 0, completed_at_end = 0;

    if (warmup == 0) {
        if (server_pid)
            server_ns_start = read_cpu_clock_ns(server_clk);
        fprintf(stderr, "measure-start\n");
        fflush(stderr);
        t_measure_begin = now_sec();
        t_end = t_measure_begin + (double)seconds;
        phase = 1;
    }

    for (long i = 0; i < nconns; i++) {
        fill_message(&conns[i]);
        pump_send(&conns[i]);
    }

    enum { MAX_EVENTS = 256 };
    struct epoll_event events[MAX_EVENTS];
    while (phase < 2) {
        double t = now_sec();
        if (phase == 0 && t >= t_start) {
            completed_at_start = completed;
            if (server_pid)
                server_ns_start = read_cpu_clock_ns(server_clk);
            fprintf(stderr, "measure-start\n");
            fflush(stderr);
            t_measure_begin = t;
            t_end = t + (double)seconds; /* full D seconds even if we woke late */
            phase = 1;
        }
        if (phase == 1 && t >= t_end) {
            completed_at_end = completed;
            if (server_pid)
                server_ns_end = read_cpu_clock_ns(server_clk);
            fprintf(stderr, "measure-end\n");
            fflush(stderr);
            t_measure_end = t;
            phase = 2;
            break;
        }
        double deadline = phase == 0 ? t_start : t_end;
        int timeout_ms = (int)((deadline - t) * 1000.0) + 1;
        int n = epoll_wait(epfd, events, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fail(1, "epoll_wait: %s", strerror(errno));
        }
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (events[k].events & EPOLLOUT)
                pump_send(c);
            if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (pump_recv(c, scratch)) {
                    completed++;
                    c->seq++;
                    c->sent = c->got = 0;
                    fill_message(c);
                    pump_send(c);
                }
            }
        }
    }

    uint64_t messages = completed_at_end - completed_at_start;
    double elapsed = t_measure_end - t_measure_begin;
    printf("{\"connections\":%ld,\"size\":%ld,\"seconds\":%ld,\"messages\":%llu,"
           "\"messages_per_sec\":%.1f",
           nconns, size, seconds, (unsigned long long)messages,
           elapsed > 0 ? (double)messages / elapsed : 0.0);
    if (server_pid)
        printf(",\"window_sec\":%.6f,\"server_cpu_ns\":%lld", elapsed,
               (long long)(server_ns_end - server_ns_start));
    printf("}\n");
    fflush(stdout);
    return 0;
}

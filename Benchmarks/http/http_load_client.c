/*
 * http_load_client.c - keep-alive HTTP/1.1 GET load with an exact request count per window,
 * for Benchmarks/http/counts.py (instructions and syscalls per request).
 *
 *   cc -O2 -Wall -Wextra -o http_load_client http_load_client.c
 *   ./http_load_client --port P [--connections 16] [--depth 1] [--path /plaintext]
 *                      [--body 'Hello, World!'] [--warmup 1] [--seconds 5] [--handshake]
 *
 * Opens C keep-alive connections to 127.0.0.1:P (one thread, one epoll). Each connection writes
 * K requests `GET PATH HTTP/1.1` at once (K = --depth: 1 is request-response, 16 is pipelined
 * x16), reads the K responses, checks every one of them (status line `HTTP/1.1 200`, a
 * Content-Length and exactly that many body bytes, equal to --body; no Transfer-Encoding, no
 * `Connection: close`), then writes the next K.
 *
 * Why not wrk: the counts need the number of requests answered inside a window exactly, and
 * every response checked. wrk counts requests over its whole run (warm-up included), checks only
 * status codes unless a Lua response() callback runs for each response (which costs wrk more
 * than the server it measures), and cannot stop its load at an instant someone else picks.
 *
 * The window: after --warmup s the client QUIESCES (sends nothing new, waits until every
 * connection has all its responses), prints "measure-start" on stderr, and with --handshake
 * waits for a line on stdin (counts.py switches its counters on, then answers). It loads for
 * --seconds s, quiesces again, prints "measure-end" and (--handshake) waits for a line. Nothing
 * is in flight at either edge, so the responses counted in between are exactly the requests the
 * server answered inside the window, whatever the counters' switching lag was (callgrind_control
 * takes 20-250 ms). What the server does while idle at the edges (an epoll_wait that times out,
 * a Date tick) is counted; that is a few hundred instructions against millions.
 *
 * Prints one line of JSON on stdout:
 *   {"connections":C,"depth":K,"path":"..","seconds":D,"requests":N,"window_sec":S,
 *    "requests_per_sec":X,"responses_checked":M,"writes":W,"reads":R}
 * requests: responses received (and checked) inside the window; responses_checked: all of
 * them, warm-up included; writes and reads: the client's own write(2)/read(2) calls in the
 * window.
 *
 * Exit status: 0 ok, 1 setup/usage/I-O error, 2 a response was wrong or a connection closed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER_SIZE (256 * 1024)
#define MAX_DEPTH 1024
#define MAX_EVENTS 256
/* The loop wakes at least this often, so that it sees the window's end when every connection
 * is waiting. */
#define IDLE_WAKE_MS 10

struct connection {
    int fd;
    long outstanding; /* responses still expected for the batch in flight */
    size_t used;      /* bytes in buf not yet parsed */
    char *buf;
};

static const char *expected_body = "Hello, World!";
static size_t expected_body_len;
static char *batch;       /* K requests, written at once */
static size_t batch_len;
static long depth = 1;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(int status, const char *what, int conn) {
    fprintf(stderr, "http_load_client: connection %d: %s\n", conn, what);
    exit(status);
}

static long parse_long(const char *name, const char *v, long min, long max) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < min || x > max) {
        fprintf(stderr, "http_load_client: bad value for %s: %s\n", name, v);
        exit(1);
    }
    return x;
}

static double parse_seconds(const char *name, const char *v) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !(x >= 0) || x > 86400) {
        fprintf(stderr, "http_load_client: bad value for %s: %s\n", name, v);
        exit(1);
    }
    return x;
}

static long counted_writes, counted_reads;

static void send_batch(struct connection *c, int index) {
    size_t off = 0;
    while (off < batch_len) {
        ssize_t n = write(c->fd, batch + off, batch_len - off);
        counted_writes++;
        if (n < 0) {
            if (errno == EINTR) continue;
            /* A blocking socket: EAGAIN cannot happen; anything else is the peer's fault. */
            fail(2, strerror(errno), index);
        }
        off += (size_t)n;
    }
    c->outstanding = depth;
}

/* Parses complete responses off the front of c->buf; returns how many it consumed. Every one is
 * checked: a wrong one ends the program with status 2. */
static long parse_responses(struct connection *c, int index) {
    long done = 0;
    size_t pos = 0;
    while (c->outstanding > 0) {
        char *start = c->buf + pos;
        size_t avail = c->used - pos;
        char *end = memmem(start, avail, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head_len = (size_t)(end - start) + 4;
        if (avail < 13 || memcmp(start, "HTTP/1.1 200 ", 13) != 0) {
            char line[128];
            size_t l = 0;
            while (l < avail && l < sizeof line - 1 && start[l] != '\r') { line[l] = start[l]; l++; }
            line[l] = 0;
            fprintf(stderr, "http_load_client: connection %d: expected HTTP/1.1 200, got \"%s\"\n", index, line);
            exit(2);
        }
        long content_length = -1;
        /* Header lines: after the status line, up to the blank line. */
        char *line = memchr(start, '\n', head_len) + 1;
        while (line < end) {
            char *eol = memchr(line, '\r', (size_t)(end + 2 - line));
            size_t len = (size_t)(eol - line);
            if (len > 15 && strncasecmp(line, "content-length:", 15) == 0) {
                char *p = line + 15;
                while (*p == ' ' || *p == '\t') p++;
                long v = 0;
                int digits = 0;
                while (p < eol && *p >= '0' && *p <= '9' && v < 1000000000) { v = v * 10 + (*p - '0'); p++; digits++; }
                if (!digits || content_length >= 0)
                    fail(2, "a missing, malformed or repeated Content-Length", index);
                content_length = v;
            } else if (len > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
                fail(2, "a Transfer-Encoding in the response (expected a Content-Length)", index);
            } else if (len >= 11 && strncasecmp(line, "connection:", 11) == 0 &&
                       memmem(line, len, "close", 5) != NULL) {
                fail(2, "the server closes the connection (Connection: close)", index);
            }
            line = eol + 2;
        }
        if (content_length < 0)
            fail(2, "no Content-Length in the response", index);
        if (avail < head_len + (size_t)content_length)
            break;
        if ((size_t)content_length != expected_body_len ||
            memcmp(start + head_len, expected_body, expected_body_len) != 0)
            fail(2, "the body is not the expected one", index);
        pos += head_len + (size_t)content_length;
        c->outstanding--;
        done++;
    }
    if (pos > 0) {
        memmove(c->buf, c->buf + pos, c->used - pos);
        c->used -= pos;
    }
    if (c->outstanding == 0 && c->used != 0)
        fail(2, "bytes after the last response of a batch", index);
    return done;
}

static void wait_for_go(int handshake) {
    if (!handshake)
        return;
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "http_load_client: stdin closed before the handshake\n");
        exit(1);
    }
}

int main(int argc, char **argv) {
    long port = -1, nconns = 16;
    double seconds = 5, warmup = 1;
    const char *path = "/plaintext";
    int handshake = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--handshake")) { handshake = 1; continue; }
        if (i + 1 >= argc) goto usage;
        const char *v = argv[++i];
        if (!strcmp(a, "--port")) port = parse_long(a, v, 1, 65535);
        else if (!strcmp(a, "--connections")) nconns = parse_long(a, v, 1, 10000);
        else if (!strcmp(a, "--depth")) depth = parse_long(a, v, 1, MAX_DEPTH);
        else if (!strcmp(a, "--path")) path = v;
        else if (!strcmp(a, "--body")) expected_body = v;
        else if (!strcmp(a, "--seconds")) seconds = parse_seconds(a, v);
        else if (!strcmp(a, "--warmup")) warmup = parse_seconds(a, v);
        else goto usage;
    }
    if (port < 0) {
    usage:
        fprintf(stderr, "usage: http_load_client --port P [--connections C] [--depth K] [--path P] "
                        "[--body B] [--warmup W] [--seconds D] [--handshake]\n");
        return 1;
    }
    expected_body_len = strlen(expected_body);
    char one[1024];
    int one_len = snprintf(one, sizeof one, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (one_len <= 0 || (size_t)one_len >= sizeof one) { fprintf(stderr, "http_load_client: path too long\n"); return 1; }
    batch_len = (size_t)one_len * (size_t)depth;
    batch = malloc(batch_len);
    for (long k = 0; k < depth; k++)
        memcpy(batch + (size_t)k * (size_t)one_len, one, (size_t)one_len);

    int ep = epoll_create1(0);
    struct connection *conns = calloc((size_t)nconns, sizeof *conns);
    if (ep < 0 || !conns || !batch) { perror("http_load_client: setup"); return 1; }
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < nconns; i++) {
        struct connection *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
            fprintf(stderr, "http_load_client: connect to 127.0.0.1:%ld: %s\n", port, strerror(errno));
            return 1;
        }
        int one_flag = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one_flag, sizeof one_flag);
        c->buf = malloc(BUFFER_SIZE);
        if (!c->buf) { perror("http_load_client: malloc"); return 1; }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) { perror("http_load_client: epoll_ctl"); return 1; }
    }

    /* Phases: 0 warm-up, 1 quiescing before the window, 2 window, 3 quiescing after it. */
    int phase = 0;
    double phase_end = now_s() + warmup, window_start = 0, window_end = 0;
    long in_flight = 0, requests = 0, checked = 0;
    for (long i = 0; i < nconns; i++) { send_batch(&conns[i], (int)i); in_flight++; }
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        if ((phase == 0 || phase == 2) && now_s() >= phase_end)
            phase++;
        if ((phase == 1 || phase == 3) && in_flight == 0) {
            if (phase == 1) {
                fprintf(stderr, "measure-start\n");
                fflush(stderr);
                wait_for_go(handshake);
                counted_writes = counted_reads = 0;
                window_start = now_s();
                phase_end = window_start + seconds;
                phase = 2;
                for (long i = 0; i < nconns; i++) { send_batch(&conns[i], (int)i); in_flight++; }
            } else {
                window_end = now_s();
                fprintf(stderr, "measure-end\n");
                fflush(stderr);
                wait_for_go(handshake);
                break;
            }
        }
        int n = epoll_wait(ep, events, MAX_EVENTS, IDLE_WAKE_MS);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("http_load_client: epoll_wait");
            return 1;
        }
        for (int e = 0; e < n; e++) {
            int i = (int)events[e].data.u64;
            struct connection *c = &conns[i];
            if (c->used == BUFFER_SIZE)
                fail(2, "a response larger than the client's buffer", i);
            ssize_t got = read(c->fd, c->buf + c->used, BUFFER_SIZE - c->used);
            if (phase >= 2) counted_reads++;
            if (got < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                fail(2, strerror(errno), i);
            }
            if (got == 0)
                fail(2, "the server closed the connection", i);
            if (c->outstanding == 0)
                fail(2, "bytes from the server with no request outstanding", i);
            c->used += (size_t)got;
            long done = parse_responses(c, i);
            checked += done;
            if (phase == 2 || phase == 3) requests += done;
            if (c->outstanding == 0) {
                in_flight--;
                if (phase == 0 || phase == 2) { send_batch(c, i); in_flight++; }
            }
        }
    }
    double window = window_end - window_start;
    printf("{\"connections\":%ld,\"depth\":%ld,\"path\":\"%s\",\"seconds\":%g,\"requests\":%ld,"
           "\"window_sec\":%.6f,\"requests_per_sec\":%.1f,\"responses_checked\":%ld,"
           "\"writes\":%ld,\"reads\":%ld}\n",
           nconns, depth, path, seconds, requests, window, window > 0 ? requests / window : 0.0,
           checked, counted_writes, counted_reads);
    return 0;
}

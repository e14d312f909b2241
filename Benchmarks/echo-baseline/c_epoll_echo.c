/*
 * c_epoll_echo.c - minimal single-threaded epoll echo server (baseline).
 *
 *   cc -O2 -Wall -Wextra -o c_epoll_echo c_epoll_echo.c
 *   ./c_epoll_echo [PORT]        (PORT 0 or omitted = ephemeral)
 *
 * Listens on 127.0.0.1 only. Prints "listening on 127.0.0.1:PORT" once
 * ready. Level-triggered epoll; for each readable event: one read() into a
 * 64 KiB buffer and one write() of the same bytes. A partial write parks the
 * remainder in a per-connection buffer and switches the connection to
 * EPOLLOUT-only (no reading) until it is flushed. Exits on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)
#define MAX_EVENTS 256

struct conn {
    char *pend;      /* unsent output, NULL when none */
    size_t pend_off; /* bytes of pend already written */
    size_t pend_len; /* total bytes in pend */
};

static volatile sig_atomic_t stop_requested;
static struct conn **conns; /* indexed by fd */
static size_t conns_cap;
static int epfd = -1;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int set_events(int fd, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.fd = fd};
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
}

static void close_conn(int fd) {
    struct conn *c = ((size_t)fd < conns_cap) ? conns[fd] : NULL;
    if (c) {
        free(c->pend);
        free(c);
        conns[fd] = NULL;
    }
    close(fd); /* also removes it from the epoll set */
}

static void accept_all(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept4"); /* e.g. EMFILE: try again on next event */
            return;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if ((size_t)fd >= conns_cap) {
            size_t ncap = conns_cap ? conns_cap : 1024;
            while (ncap <= (size_t)fd)
                ncap *= 2;
            struct conn **n = realloc(conns, ncap * sizeof *n);
            if (!n) {
                close(fd);
                continue;
            }
            memset(n + conns_cap, 0, (ncap - conns_cap) * sizeof *n);
            conns = n;
            conns_cap = ncap;
        }
        struct conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (!c || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        conns[fd] = c;
    }
}

/* Write the pending output; returns -1 if the connection must be closed. */
static int flush_pending(int fd, struct conn *c) {
    while (c->pend_off < c->pend_len) {
        ssize_t w = write(fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0; /* stay in EPOLLOUT mode */
            return -1;
        }
        c->pend_off += (size_t)w;
    }
    free(c->pend);
    c->pend = NULL;
    c->pend_off = c->pend_len = 0;
    return set_events(fd, EPOLLIN); /* resume reading */
}

static int handle_readable(int fd, struct conn *c, char *buf) {
    ssize_t n;
    do {
        n = read(fd, buf, BUF_SIZE);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return -1; /* EOF */
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;

    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = write(fd, buf + off, (size_t)n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        off += (size_t)w;
    }
    if (off < (size_t)n) {
        /* Partial write: keep the rest, stop reading until flushed. */
        size_t rest = (size_t)n - off;
        c->pend = malloc(rest);
        if (!c->pend)
            return -1;
        memcpy(c->pend, buf + off, rest);
        c->pend_off = 0;
        c->pend_len = rest;
        return set_events(fd, EPOLLOUT);
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);

    /* SIGINT/SIGTERM are blocked except while inside epoll_pwait, so a
     * signal can never slip in between the flag check and the wait. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGTERM);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        die("setsockopt");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("bind");
    if (listen(lfd, SOMAXCONN) < 0)
        die("listen");
    socklen_t alen = sizeof addr;
    if (getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0)
        die("getsockname");

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0)
        die("epoll_ctl");

    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);

    static char buf[BUF_SIZE];
    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        int n = epoll_pwait(epfd, events, MAX_EVENTS, -1, &waitmask);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_pwait");
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            uint32_t ev = events[i].events;
            if (fd == lfd) {
                accept_all(lfd);
                continue;
            }
            struct conn *c = ((size_t)fd < conns_cap) ? conns[fd] : NULL;
            if (!c)
                continue; /* closed earlier in this batch */
            int rc;
            if (c->pend)
                rc = (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? flush_pending(fd, c) : 0;
            else if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
                rc = handle_readable(fd, c, buf);
            else
                rc = 0;
            if (rc < 0)
                close_conn(fd);
        }
    }

    for (size_t fd = 0; fd < conns_cap; fd++)
        if (conns[fd])
            close_conn((int)fd);
    free(conns);
    close(epfd);
    close(lfd);
    return 0;
}

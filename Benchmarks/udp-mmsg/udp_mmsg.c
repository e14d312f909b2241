// recvfrom/sendto one datagram per syscall vs recvmmsg/sendmmsg batches, on loopback (issue 4:
// "batched recvmmsg/sendmmsg paths if they measure faster").
//
// Single-threaded, so it measures the syscall path per datagram and nothing else:
// - receive: a burst of BURST datagrams is queued on the receiver (sent with sendmmsg, untimed),
//   then drained and timed with recvfrom (one per call) or recvmmsg (BATCH per call);
// - send: BURST datagrams are sent and timed with sendto (one per call) or sendmmsg (BATCH per
//   call) to a receiver that is drained, untimed, after each burst (the loopback delivery into
//   its queue runs inside the send syscall, so it is part of the send cost, as in a server).
// Prints ns per datagram and datagrams per second (median of ROUNDS rounds).
//
// Build and run: cc -O2 -o /tmp/udp_mmsg Benchmarks/udp-mmsg/udp_mmsg.c && /tmp/udp_mmsg [payload] [batch]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { BURST = 2048, ROUNDS = 201, MAX_BATCH = 256 };

static size_t payload = 64;
static int batch = 32;
static char buffers[MAX_BATCH][65536];
static struct mmsghdr messages[MAX_BATCH];
static struct iovec vectors[MAX_BATCH];
static struct sockaddr_in senders[MAX_BATCH];

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int udp_socket(struct sockaddr_in *bound) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int size = 64 << 20;  // room for a whole burst (the kernel caps it at net.core.rmem_max unless FORCE)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("bind"); exit(1); }
    socklen_t length = sizeof *bound;
    getsockname(fd, (struct sockaddr *)bound, &length);
    return fd;
}

static void prepare(int count, struct sockaddr_in *to) {
    for (int i = 0; i < count; i++) {
        vectors[i] = (struct iovec){.iov_base = buffers[i], .iov_len = to ? payload : sizeof buffers[i]};
        messages[i].msg_hdr = (struct msghdr){
            .msg_name = to ? (void *)to : (void *)&senders[i], .msg_namelen = sizeof(struct sockaddr_in),
            .msg_iov = &vectors[i], .msg_iovlen = 1};
    }
}

// Sends `count` datagrams with sendmmsg; returns how many were queued.
static int fill(int sender, struct sockaddr_in *to, int count) {
    int sent = 0;
    while (sent < count) {
        int n = count - sent < MAX_BATCH ? count - sent : MAX_BATCH;
        prepare(n, to);
        int r = sendmmsg(sender, messages, n, 0);
        if (r <= 0) break;
        sent += r;
    }
    return sent;
}

static int drain(int receiver) {
    int got = 0, r;
    prepare(MAX_BATCH, NULL);
    while ((r = recvmmsg(receiver, messages, MAX_BATCH, MSG_DONTWAIT, NULL)) > 0) got += r;
    return got;
}

int main(int argc, char **argv) {
    if (argc > 1) payload = (size_t)atoi(argv[1]);
    if (argc > 2) batch = atoi(argv[2]);
    if (batch < 1 || batch > MAX_BATCH) { fprintf(stderr, "batch must be 1...%d\n", MAX_BATCH); return 2; }
    struct sockaddr_in receiver_address, sender_address;
    int receiver = udp_socket(&receiver_address);
    int sender = udp_socket(&sender_address);

    double receive_single[ROUNDS], receive_batched[ROUNDS], send_single[ROUNDS], send_batched[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        // Receive, one per call.
        drain(receiver);
        int queued = fill(sender, &receiver_address, BURST);
        double start = now_ns();
        int got = 0;
        socklen_t length;
        while (got < queued) {
            length = sizeof senders[0];
            if (recvfrom(receiver, buffers[0], sizeof buffers[0], MSG_TRUNC, (struct sockaddr *)&senders[0], &length) < 0) break;
            got++;
        }
        receive_single[round] = (now_ns() - start) / got;

        // Receive, batched.
        queued = fill(sender, &receiver_address, BURST);
        start = now_ns();
        got = 0;
        while (got < queued) {
            prepare(batch, NULL);
            int r = recvmmsg(receiver, messages, batch, MSG_TRUNC, NULL);
            if (r <= 0) break;
            got += r;
        }
        receive_batched[round] = (now_ns() - start) / got;

        // Send, one per call.
        start = now_ns();
        int sent = 0;
        for (; sent < BURST; sent++) {
            if (sendto(sender, buffers[0], payload, MSG_NOSIGNAL, (struct sockaddr *)&receiver_address, sizeof receiver_address) < 0) break;
        }
        send_single[round] = (now_ns() - start) / sent;
        drain(receiver);

        // Send, batched.
        start = now_ns();
        sent = 0;
        while (sent < BURST) {
            prepare(batch, &receiver_address);
            int r = sendmmsg(sender, messages, batch, MSG_NOSIGNAL);
            if (r <= 0) break;
            sent += r;
        }
        send_batched[round] = (now_ns() - start) / sent;
        drain(receiver);
    }
    qsort(receive_single, ROUNDS, sizeof(double), compare);
    qsort(receive_batched, ROUNDS, sizeof(double), compare);
    qsort(send_single, ROUNDS, sizeof(double), compare);
    qsort(send_batched, ROUNDS, sizeof(double), compare);
    printf("UDP loopback, %zu-byte datagrams, bursts of %d, median of %d rounds\n", payload, BURST, ROUNDS);
    printf("%-22s %10s %14s\n", "path", "ns/dgram", "dgrams/s");
    const char *names[] = {"recvfrom", "recvmmsg", "sendto", "sendmmsg"};
    double *values[] = {receive_single, receive_batched, send_single, send_batched};
    for (int i = 0; i < 4; i++) {
        char name[40];
        snprintf(name, sizeof name, i % 2 ? "%s (batch %d)" : "%s", names[i], batch);
        double ns = values[i][ROUNDS / 2];
        printf("%-22s %10.0f %14.0f\n", name, ns, 1e9 / ns);
    }
    printf("recvmmsg speedup %.2fx, sendmmsg speedup %.2fx\n", receive_single[ROUNDS / 2] / receive_batched[ROUNDS / 2],
           send_single[ROUNDS / 2] / send_batched[ROUNDS / 2]);
    return 0;
}

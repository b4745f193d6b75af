/* sccrq-flood: send L2TPv2 SCCRQs from spoofed IPv4 sources at a fixed rate (bench/flood.sh).
 *
 *   sccrq-flood DST_IP DST_PORT SRC_NET/PREFIX RATE SECONDS
 *
 * Every datagram has a random source address inside SRC_NET/PREFIX, a random source port and a
 * random Assigned Tunnel ID, so to the daemon each one is a new peer asking for a new tunnel.
 * Packets are built with IP_HDRINCL on a raw socket and sent in batches of 64 (sendmmsg),
 * paced to RATE per second. Randomness: a xorshift generator seeded from getrandom(2) (this is
 * a load generator; nothing depends on it being unpredictable). Prints the number sent.
 * Needs CAP_NET_RAW (run as root inside the flooding namespace). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define PKT 128

static uint64_t rng;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint16_t csum(const uint8_t *p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1) s += (uint32_t)p[n - 1] << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* One SCCRQ (RFC 2661 §6.1): Message Type, Protocol Version, Framing Capabilities, Host Name,
 * Assigned Tunnel ID. Returns its length. */
static size_t sccrq(uint8_t *b, uint16_t tid) {
    static const uint8_t avps[] = {
        0x80, 0x08, 0, 0, 0, 0, 0, 1,          /* Message Type: SCCRQ */
        0x80, 0x08, 0, 0, 0, 2, 1, 0,          /* Protocol Version 1.0 */
        0x80, 0x0a, 0, 0, 0, 3, 0, 0, 0, 3,    /* Framing Capabilities */
        0x80, 0x0b, 0, 0, 0, 7, 'f', 'l', 'o', 'o', 'd', /* Host Name */
        0x80, 0x08, 0, 0, 0, 9,                /* Assigned Tunnel ID (value below) */
    };
    size_t n = 12;
    memcpy(b + n, avps, sizeof avps);
    n += sizeof avps;
    b[n++] = tid >> 8;
    b[n++] = tid & 0xff;
    uint8_t hdr[12] = {0xc8, 0x02, n >> 8, n & 0xff, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(b, hdr, 12);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s DST_IP DST_PORT SRC_NET/PREFIX RATE SECONDS\n", argv[0]);
        return 2;
    }
    struct in_addr dst, net;
    char netbuf[64];
    snprintf(netbuf, sizeof netbuf, "%s", argv[3]);
    char *slash = strchr(netbuf, '/');
    if (!slash || inet_pton(AF_INET, argv[1], &dst) != 1) return 2;
    *slash = 0;
    int prefix = atoi(slash + 1);
    if (inet_pton(AF_INET, netbuf, &net) != 1 || prefix < 1 || prefix > 30) return 2;
    uint16_t dport = (uint16_t)atoi(argv[2]);
    double rate = atof(argv[4]), secs = atof(argv[5]);
    if (getrandom(&rng, sizeof rng, 0) != sizeof rng || rng == 0) rng = 0x9e3779b97f4a7c15ull;
    uint32_t host_mask = prefix == 32 ? 0 : (1u << (32 - prefix)) - 1;
    uint32_t base = ntohl(net.s_addr) & ~host_mask;

    int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    if (s < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(s, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);

    static uint8_t pkts[BATCH][PKT];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
    memset(msgs, 0, sizeof msgs);
    uint64_t sent = 0, errors = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        /* Pace: send the batch when the schedule says so. */
        double due = t0 + (double)sent / rate;
        double t = now();
        if (t < due) {
            struct timespec w = {0, (long)((due - t) * 1e9)};
            nanosleep(&w, NULL);
        }
        for (int i = 0; i < BATCH; i++) {
            uint8_t *p = pkts[i];
            memset(p, 0, PKT);
            uint32_t src = base | (uint32_t)(next() & host_mask);
            if ((src & host_mask) == 0) src |= 1;
            size_t l2tp = sccrq(p + 28, (uint16_t)(next() % 65535 + 1));
            size_t udp = 8 + l2tp, tot = 20 + udp;
            /* IPv4 header */
            p[0] = 0x45; p[2] = tot >> 8; p[3] = tot & 0xff;
            p[8] = 64; p[9] = IPPROTO_UDP;
            uint32_t s_be = htonl(src);
            memcpy(p + 12, &s_be, 4);
            memcpy(p + 16, &dst.s_addr, 4);
            uint16_t c = csum(p, 20);
            p[10] = c >> 8; p[11] = c & 0xff;
            /* UDP header (checksum 0: none, allowed for IPv4) */
            uint16_t sport = (uint16_t)(next() % 64511 + 1024);
            p[20] = sport >> 8; p[21] = sport & 0xff;
            p[22] = dport >> 8; p[23] = dport & 0xff;
            p[24] = udp >> 8; p[25] = udp & 0xff;
            iov[i].iov_base = p;
            iov[i].iov_len = tot;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &to;
            msgs[i].msg_hdr.msg_namelen = sizeof to;
        }
        int n = sendmmsg(s, msgs, BATCH, 0);
        if (n < 0) {
            errors++;
            if (errno != ENOBUFS && errno != EAGAIN) { perror("sendmmsg"); return 1; }
            continue;
        }
        sent += (uint64_t)n;
    }
    printf("%llu\n", (unsigned long long)sent);
    if (errors) fprintf(stderr, "sccrq-flood: %llu failed batches\n", (unsigned long long)errors);
    return 0;
}

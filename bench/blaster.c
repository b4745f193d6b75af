/* Small-packet generator for bench/suite.sh: floods UDP datagrams to one address with
 * sendmmsg(2), 64 per call, for a number of seconds, and prints how many it sent.
 * iperf3 cannot generate small packets fast enough (one send per datagram).
 *
 *   blaster ADDRESS PORT SECONDS [PAYLOAD_BYTES [FLOWS]]
 *
 * PAYLOAD_BYTES: default 18, a 64-byte Ethernet frame with FCS over IPv4. FLOWS (default 1):
 * that many sockets, each its own source port (one flow each), sent from in turn, one
 * sendmmsg batch each, so that a multi-queue device or per-flow steering can spread them.
 *
 * Output: "sent N datagrams in S s". ENOBUFS / EAGAIN (a full device queue) are not errors:
 * the datagram is simply not counted as sent, and the loop goes on.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s ADDRESS PORT SECONDS [PAYLOAD_BYTES]\n", argv[0]);
    return 2;
  }
  double secs = atof(argv[3]);
  size_t len = argc > 4 ? (size_t)atoi(argv[4]) : 18;
  if (len > 1400) len = 1400;
  int nflows = argc > 5 ? atoi(argv[5]) : 1;
  if (nflows < 1) nflows = 1;
  if (nflows > 64) nflows = 64;
  struct sockaddr_storage ss;
  socklen_t sl;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, argv[1], &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(atoi(argv[2]));
    sl = sizeof *a4;
  } else if (inet_pton(AF_INET6, argv[1], &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(atoi(argv[2]));
    sl = sizeof *a6;
  } else {
    fprintf(stderr, "bad address %s\n", argv[1]);
    return 2;
  }
  int fds[64];
  for (int f = 0; f < nflows; f++) {
    fds[f] = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fds[f] < 0 || connect(fds[f], (struct sockaddr *)&ss, sl) < 0) {
      perror("socket/connect");
      return 1;
    }
  }
  static char payload[1400];
  memset(payload, 0x5a, sizeof payload);
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = payload;
    iov[i].iov_len = len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0;
  double t0 = now(), end = t0 + secs;
  unsigned iter = 0;
  for (;;) {
    if ((++iter & 63) == 0 && now() >= end) break;
    int r = sendmmsg(fds[iter % nflows], msgs, BATCH, 0);
    if (r > 0) {
      sent += (unsigned)r;
    } else if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED &&
               errno != EINTR) {
      perror("sendmmsg");
      return 1;
    }
  }
  printf("sent %llu datagrams in %.2f s\n", sent, now() - t0);
  return 0;
}

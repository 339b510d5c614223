/*
 * pcap_send: the fastest stream of small frames this host can put on an
 * interface, for the live pcap benchmark (bench/pcap.sh): COUNT 64-byte
 * IPv4 frames from MAC 52:54:00:aa:00:01 to 02:aa:00:00:00:01, the remote
 * address cycling over 10.0.0.0/8 and 8.8.8.0/24 (two classes), through a
 * raw packet socket that bypasses the qdisc, sent with sendmmsg() in
 * batches of 256. Prints the frames sent and the rate.
 *
 * usage: pcap_send IFACE COUNT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: pcap_send IFACE COUNT\n");
		return 2;
	}
	long count = atol(argv[2]);
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) {
		perror("pcap_send: socket");
		return 1;
	}
	int one = 1;
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	struct sockaddr_ll sll;
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr, "pcap_send: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	static unsigned char fr[BATCH][64];
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	for (int i = 0; i < BATCH; i++) {
		static const unsigned char head[] = { 0x02, 0xaa, 0, 0, 0, 1, 0x52, 0x54, 0, 0xaa, 0, 1, 0x08, 0x00,
						      0x45, 0, 0, 50, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 10 };
		memcpy(fr[i], head, sizeof(head));
		if (i % 2) {
			fr[i][30] = 10;
			fr[i][31] = (unsigned char)i;
		} else {
			fr[i][30] = 8;
			fr[i][31] = 8;
			fr[i][32] = 8;
		}
		fr[i][33] = (unsigned char)(i * 7);
		iov[i].iov_base = fr[i];
		iov[i].iov_len = 64;
		memset(&msg[i], 0, sizeof(msg[i]));
		msg[i].msg_hdr.msg_iov = &iov[i];
		msg[i].msg_hdr.msg_iovlen = 1;
	}
	long sent = 0;
	double t0 = now_s();
	while (sent < count) {
		unsigned int n = count - sent < BATCH ? (unsigned int)(count - sent) : BATCH;
		int r = sendmmsg(fd, msg, n, 0);
		if (r < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
				continue;
			perror("pcap_send: sendmmsg");
			return 1;
		}
		sent += r;
	}
	double t = now_s() - t0;
	printf("sent %ld frames of 64 bytes in %.3f s: %.0f packets/s\n", sent, t, (double)sent / t);
	close(fd);
	return 0;
}

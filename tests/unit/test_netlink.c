/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * netlink.c against a real kernel, in a private network namespace: a veth
 * end "tap0" stands in for port 3's TAP, its peer lets us watch what the
 * kernel sends, and a second veth "other0" is an interface that is not ours.
 * The mirror sinks are replaced by recorders. Needs root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "addr.h"
#include "fib.h"
#include "neigh.h"
#include "netlink.h"
#include "port.h"

#define TEST_PORT      3
#define MAX_CALLS      4096
#define WAIT_MS	       3000
#define OVERRUN_ROUTES 200

enum kind { K_ADDR, K_LOCAL, K_FIB, K_NEIGH };

struct call {
	enum kind kind;
	bool add;
	uint16_t port;
	uint8_t addr[16];
	size_t alen;
	unsigned plen;
	bool has_via;
	uint8_t via[16];
	uint32_t metric;
	bool has_mac;
	uint8_t mac[6];
	char state[16];
};

static struct call calls[MAX_CALLS];
static size_t ncalls;
static int tap_ifindex, other_ifindex, peer_ifindex;

static struct call *record(enum kind kind, bool add, uint16_t port, const uint8_t *addr,
			   size_t alen)
{
	struct call *c;

	assert_true(ncalls < MAX_CALLS);
	assert_true(alen == 4 || alen == 16);
	c = &calls[ncalls++];
	*c = (struct call){.kind = kind, .add = add, .port = port, .alen = alen};
	memcpy(c->addr, addr, alen);
	return c;
}

/* The sinks netlink.c feeds; the real ones live in addr.c, fib.c, neigh.c, port.c. */
void addr_update(bool add, uint16_t port, const uint8_t *addr, size_t alen, unsigned plen)
{
	record(K_ADDR, add, port, addr, alen)->plen = plen;
}

void fib_local(bool add, const uint8_t *addr, size_t alen, uint16_t port)
{
	record(K_LOCAL, add, port, addr, alen);
}

void fib_update(bool add, const uint8_t *dst, size_t alen, unsigned plen, const uint8_t *via,
		uint16_t port, uint32_t metric)
{
	struct call *c = record(K_FIB, add, port, dst, alen);

	c->plen = plen;
	c->metric = metric;
	if (via != NULL) {
		c->has_via = true;
		memcpy(c->via, via, alen);
	}
}

void neigh_update(bool add, uint16_t port, const uint8_t *addr, size_t alen, const uint8_t mac[6],
		  const char *state)
{
	struct call *c = record(K_NEIGH, add, port, addr, alen);

	assert_non_null(state);
	snprintf(c->state, sizeof(c->state), "%s", state);
	if (mac != NULL) {
		c->has_mac = true;
		memcpy(c->mac, mac, 6);
	}
}

int port_by_ifindex(int ifindex)
{
	return ifindex == tap_ifindex ? TEST_PORT : -1;
}

static size_t parse_ip(const char *s, uint8_t *out)
{
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	fail_msg("bad address literal %s", s);
	return 0;
}

/* Latest recorded call of @kind for address @ip (and @plen unless negative). */
static const struct call *find(enum kind kind, const char *ip, int plen)
{
	uint8_t a[16];
	size_t alen = parse_ip(ip, a);

	for (size_t i = ncalls; i-- > 0;) {
		const struct call *c = &calls[i];

		if (c->kind == kind && c->alen == alen && memcmp(c->addr, a, alen) == 0 &&
		    (plen < 0 || c->plen == (unsigned)plen))
			return c;
	}
	return NULL;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run nl_process() until a call matching (kind, ip, plen, add) was recorded. */
static const struct call *wait_for(enum kind kind, const char *ip, int plen, bool add)
{
	long end = now_ms() + WAIT_MS;

	for (;;) {
		const struct call *c;
		struct pollfd pfd = {.fd = nl_fd(), .events = POLLIN};

		nl_process();
		c = find(kind, ip, plen);
		if (c != NULL && c->add == add)
			return c;
		if (now_ms() > end)
			return NULL;
		poll(&pfd, 1, 50);
	}
}

static void sh(const char *fmt, ...)
{
	char cmd[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static void ip_of(const char *s, uint8_t *out, size_t alen)
{
	assert_int_equal(parse_ip(s, out), alen);
}

static int setup(void **state)
{
	char err[256] = "";

	(void)state;
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "test_netlink needs root (CAP_SYS_ADMIN for a netns): %s\n",
			strerror(errno));
		return -1;
	}
	sh("ip link set lo up");
	sh("ip link add tap0 type veth peer name peer0");
	sh("ip link add other0 type veth peer name otherp");
	/* Our address must not wait out DAD before the kernel uses it for ND. */
	sh("sysctl -qw net.ipv6.conf.tap0.accept_dad=0");
	sh("ip link set tap0 address 02:00:00:00:00:03 up");
	sh("ip link set peer0 up");
	sh("ip link set other0 up");
	sh("ip link set otherp up");
	tap_ifindex = (int)if_nametoindex("tap0");
	other_ifindex = (int)if_nametoindex("other0");
	peer_ifindex = (int)if_nametoindex("peer0");
	if (tap_ifindex <= 0 || other_ifindex <= 0 || peer_ifindex <= 0)
		return -1;
	if (nl_init(err, sizeof(err)) != 0) {
		fprintf(stderr, "nl_init: %s\n", err);
		return -1;
	}
	nl_process();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nl_close();
	return 0;
}

static void test_addr_v4(void **state)
{
	uint8_t a[4];
	char err[256] = "";
	const struct call *c;
	(void)state;

	ip_of("10.1.0.1", a, 4);
	assert_int_equal(nl_addr(true, tap_ifindex, a, 4, 24, err, sizeof(err)), 0);
	c = wait_for(K_ADDR, "10.1.0.1", 24, true);
	assert_non_null(c);
	assert_int_equal(c->port, TEST_PORT);
	c = wait_for(K_LOCAL, "10.1.0.1", -1, true);
	assert_non_null(c);
	assert_int_equal(c->port, TEST_PORT);
	/* The kernel's prefix route for the address is a connected route. */
	c = wait_for(K_FIB, "10.1.0.0", 24, true);
	assert_non_null(c);
	assert_false(c->has_via);
	assert_int_equal(c->port, TEST_PORT);

	assert_int_equal(nl_addr(true, tap_ifindex, a, 4, 24, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "kernel refused to add address 10.1.0.1/24 on tap0: "));
}

static void test_addr_v6(void **state)
{
	uint8_t a[16];
	char err[256] = "";
	const struct call *c;
	(void)state;

	ip_of("2001:db8:1::1", a, 16);
	assert_int_equal(nl_addr(true, tap_ifindex, a, 16, 64, err, sizeof(err)), 0);
	c = wait_for(K_ADDR, "2001:db8:1::1", 64, true);
	assert_non_null(c);
	assert_int_equal(c->port, TEST_PORT);
	assert_non_null(wait_for(K_LOCAL, "2001:db8:1::1", -1, true));
	c = wait_for(K_FIB, "2001:db8:1::", 64, true);
	assert_non_null(c);
	assert_false(c->has_via);
	assert_int_equal(c->port, TEST_PORT);
}

static void test_route_via(void **state)
{
	uint8_t d[16], g[16], gw[16];
	char err[256] = "";
	const struct call *c;
	(void)state;

	ip_of("10.9.0.0", d, 4);
	ip_of("10.1.0.254", g, 4);
	assert_int_equal(nl_route(true, tap_ifindex, d, 4, 16, g, 50, err, sizeof(err)), 0);
	c = wait_for(K_FIB, "10.9.0.0", 16, true);
	assert_non_null(c);
	assert_true(c->has_via);
	assert_memory_equal(c->via, g, 4);
	assert_int_equal(c->metric, 50);
	assert_int_equal(c->port, TEST_PORT);

	ip_of("2001:db8:9::", d, 16);
	ip_of("2001:db8:1::fe", gw, 16);
	assert_int_equal(nl_route(true, tap_ifindex, d, 16, 48, gw, 7, err, sizeof(err)), 0);
	c = wait_for(K_FIB, "2001:db8:9::", 48, true);
	assert_non_null(c);
	assert_true(c->has_via);
	assert_memory_equal(c->via, gw, 16);
	assert_int_equal(c->metric, 7);

	/* Default route: no RTA_DST in either direction. */
	ip_of("0.0.0.0", d, 4);
	assert_int_equal(nl_route(true, tap_ifindex, d, 4, 0, g, 0, err, sizeof(err)), 0);
	c = wait_for(K_FIB, "0.0.0.0", 0, true);
	assert_non_null(c);
	assert_true(c->has_via);
	assert_int_equal(c->metric, 0);
}

static void test_route_duplicate(void **state)
{
	uint8_t d[4], g[4];
	char err[256] = "";
	(void)state;

	ip_of("10.9.0.0", d, 4);
	ip_of("10.1.0.254", g, 4);
	assert_int_equal(nl_route(true, tap_ifindex, d, 4, 16, g, 50, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "kernel refused route 10.9.0.0/16 via 10.1.0.254: "));
	assert_true(strlen(err) > strlen("kernel refused route 10.9.0.0/16 via 10.1.0.254: "));
}

static void test_route_unreachable_gw(void **state)
{
	uint8_t d[4], g[4];
	char err[256] = "";
	const char *prefix = "kernel refused route 10.8.0.0/16 via 10.2.0.254: ";
	(void)state;

	ip_of("10.8.0.0", d, 4);
	ip_of("10.2.0.254", g, 4);
	assert_int_equal(nl_route(true, tap_ifindex, d, 4, 16, g, 0, err, sizeof(err)),
			 -ENETUNREACH);
	assert_non_null(strstr(err, prefix));
	/* The kernel explains itself through extended ack: "Nexthop has invalid gateway". */
	assert_non_null(strstr(err, "gateway"));
	nl_process();
	assert_null(find(K_FIB, "10.8.0.0", 16));
}

/* Nothing on an interface that is not one of our TAPs reaches the tables. */
static void test_other_interface_ignored(void **state)
{
	uint8_t a[4], d[4], g[4];
	char err[256] = "";
	const struct call *c;
	(void)state;

	ip_of("10.5.0.1", a, 4);
	assert_int_equal(nl_addr(true, other_ifindex, a, 4, 24, err, sizeof(err)), 0);
	ip_of("10.6.0.0", d, 4);
	ip_of("10.5.0.254", g, 4);
	assert_int_equal(nl_route(true, other_ifindex, d, 4, 16, g, 0, err, sizeof(err)), 0);

	/* Events arrive in order: once this one is seen, the others were processed. */
	ip_of("10.7.0.0", d, 4);
	assert_int_equal(nl_route(true, tap_ifindex, d, 4, 16, NULL, 0, err, sizeof(err)), 0);
	c = wait_for(K_FIB, "10.7.0.0", 16, true);
	assert_non_null(c);
	assert_false(c->has_via);

	assert_null(find(K_ADDR, "10.5.0.1", -1));
	assert_null(find(K_LOCAL, "10.5.0.1", -1));
	assert_null(find(K_FIB, "10.5.0.0", -1));
	assert_null(find(K_FIB, "10.6.0.0", -1));

	assert_int_equal(nl_route(false, tap_ifindex, d, 4, 16, NULL, 0, err, sizeof(err)), 0);
	assert_non_null(wait_for(K_FIB, "10.7.0.0", 16, false));
	assert_int_equal(nl_route(false, tap_ifindex, d, 4, 16, NULL, 0, err, sizeof(err)), -ESRCH);
	assert_non_null(strstr(err, "kernel refused to delete route 10.7.0.0/16 dev tap0: "));
}

static void test_neigh(void **state)
{
	static const uint8_t mac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02};
	static const uint8_t mac3[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x03};
	uint8_t a[16];
	char err[256] = "";
	const struct call *c;
	(void)state;

	ip_of("10.1.0.2", a, 4);
	assert_int_equal(nl_neigh(true, tap_ifindex, a, 4, mac, err, sizeof(err)), 0);
	c = wait_for(K_NEIGH, "10.1.0.2", -1, true);
	assert_non_null(c);
	assert_true(c->has_mac);
	assert_memory_equal(c->mac, mac, 6);
	assert_string_equal(c->state, "PERMANENT");
	assert_int_equal(c->port, TEST_PORT);

	assert_int_equal(nl_neigh(false, tap_ifindex, a, 4, NULL, err, sizeof(err)), 0);
	c = wait_for(K_NEIGH, "10.1.0.2", -1, false);
	assert_non_null(c);
	assert_false(c->has_mac);

	/* These two stay for the resync test. */
	ip_of("10.1.0.3", a, 4);
	assert_int_equal(nl_neigh(true, tap_ifindex, a, 4, mac3, err, sizeof(err)), 0);
	assert_non_null(wait_for(K_NEIGH, "10.1.0.3", -1, true));
	ip_of("2001:db8:1::3", a, 16);
	assert_int_equal(nl_neigh(true, tap_ifindex, a, 16, mac3, err, sizeof(err)), 0);
	c = wait_for(K_NEIGH, "2001:db8:1::3", -1, true);
	assert_non_null(c);
	assert_memory_equal(c->mac, mac3, 6);
}

static void test_addr_delete(void **state)
{
	uint8_t a[4];
	char err[256] = "";
	(void)state;

	ip_of("10.4.0.1", a, 4);
	assert_int_equal(nl_addr(true, tap_ifindex, a, 4, 24, err, sizeof(err)), 0);
	assert_non_null(wait_for(K_FIB, "10.4.0.0", 24, true));
	assert_int_equal(nl_addr(false, tap_ifindex, a, 4, 24, err, sizeof(err)), 0);
	assert_non_null(wait_for(K_ADDR, "10.4.0.1", 24, false));
	assert_non_null(wait_for(K_LOCAL, "10.4.0.1", -1, false));
	assert_non_null(wait_for(K_FIB, "10.4.0.0", 24, false));
	assert_int_equal(nl_addr(false, tap_ifindex, a, 4, 24, err, sizeof(err)), -EADDRNOTAVAIL);
	assert_non_null(strstr(err, "kernel refused to remove address 10.4.0.1/24 on tap0: "));
}

/* Objects made by other tools (`ip`, routing daemons) are mirrored the same way. */
static void test_foreign_objects(void **state)
{
	const struct call *c;
	uint8_t g[4];
	(void)state;

	/* Point-to-point: IFA_LOCAL is ours, IFA_ADDRESS the peer. */
	sh("ip addr add 10.3.0.1 peer 10.3.0.2/32 dev tap0");
	c = wait_for(K_ADDR, "10.3.0.1", 32, true);
	assert_non_null(c);
	assert_null(find(K_ADDR, "10.3.0.2", -1));
	assert_non_null(find(K_LOCAL, "10.3.0.1", -1));
	assert_null(find(K_LOCAL, "10.3.0.2", -1));

	/* Multipath: the first next hop on one of our TAPs. */
	sh("ip route add 10.50.0.0/16 nexthop via 10.5.0.254 dev other0 "
	   "nexthop via 10.1.0.253 dev tap0 nexthop via 10.1.0.252 dev tap0");
	c = wait_for(K_FIB, "10.50.0.0", 16, true);
	assert_non_null(c);
	assert_true(c->has_via);
	ip_of("10.1.0.253", g, 4);
	assert_memory_equal(c->via, g, 4);
	assert_int_equal(c->port, TEST_PORT);

	/* Other tables and route types stay out; the last route is the sentinel. */
	sh("ip route add 10.44.0.0/16 dev tap0 table 100");
	sh("ip route add blackhole 10.45.0.0/16");
	sh("ip route add unreachable 10.46.0.0/16");
	sh("ip route add local 10.48.0.0/16 dev tap0 table main");
	sh("ip -6 route add 2001:db8:77::/48 from 2001:db8:1::/64 via 2001:db8:1::fe dev tap0");
	sh("ip route add 10.47.0.0/16 dev tap0 proto 42");
	assert_non_null(wait_for(K_FIB, "10.47.0.0", 16, true));
	assert_null(find(K_FIB, "10.44.0.0", -1));
	assert_null(find(K_FIB, "10.45.0.0", -1));
	assert_null(find(K_FIB, "10.46.0.0", -1));
	assert_null(find(K_FIB, "10.48.0.0", -1));
	assert_null(find(K_FIB, "2001:db8:77::", -1));

	/* Kernel-learned neighbours carry their `ip neigh` state name. */
	sh("ip neigh replace 10.1.0.9 lladdr 02:00:00:00:00:09 dev tap0 nud stale");
	c = wait_for(K_NEIGH, "10.1.0.9", -1, true);
	assert_non_null(c);
	assert_string_equal(c->state, "STALE");
	sh("ip neigh change 10.1.0.9 dev tap0 nud failed");
	c = wait_for(K_NEIGH, "10.1.0.9", -1, false);
	assert_non_null(c);
}

static void test_resync(void **state)
{
	static const uint8_t mac3[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x03};
	uint8_t g[4];
	const struct call *c;
	(void)state;

	nl_process();
	ncalls = 0;
	assert_int_equal(nl_resync(), 0);

	c = find(K_ADDR, "10.1.0.1", 24);
	assert_non_null(c);
	assert_true(c->add);
	assert_non_null(find(K_ADDR, "2001:db8:1::1", 64));
	assert_non_null(find(K_LOCAL, "10.1.0.1", -1));
	assert_non_null(find(K_LOCAL, "2001:db8:1::1", -1));
	c = find(K_FIB, "10.1.0.0", 24);
	assert_non_null(c);
	assert_false(c->has_via);
	c = find(K_FIB, "10.9.0.0", 16);
	assert_non_null(c);
	ip_of("10.1.0.254", g, 4);
	assert_true(c->add && c->has_via);
	assert_memory_equal(c->via, g, 4);
	assert_int_equal(c->metric, 50);
	assert_non_null(find(K_FIB, "2001:db8:9::", 48));
	assert_non_null(find(K_FIB, "0.0.0.0", 0));
	c = find(K_NEIGH, "10.1.0.3", -1);
	assert_non_null(c);
	assert_true(c->add);
	assert_memory_equal(c->mac, mac3, 6);
	assert_string_equal(c->state, "PERMANENT");
	assert_non_null(find(K_NEIGH, "2001:db8:1::3", -1));

	/* Gone or never ours. */
	assert_null(find(K_NEIGH, "10.1.0.2", -1));
	assert_null(find(K_FIB, "10.7.0.0", -1));
	assert_null(find(K_FIB, "10.6.0.0", -1));
	assert_null(find(K_ADDR, "10.5.0.1", -1));
	assert_null(find(K_ADDR, "10.4.0.1", -1));
	assert_null(find(K_FIB, "10.44.0.0", -1));
	assert_non_null(find(K_FIB, "10.50.0.0", 16));
	assert_non_null(find(K_ADDR, "10.3.0.1", 32));
	/* A dumped FAILED entry is reported, as a removal. */
	c = find(K_NEIGH, "10.1.0.9", -1);
	assert_true(c == NULL || (!c->add && !c->has_mac));
	for (size_t i = 0; i < ncalls; i++) {
		assert_int_equal(calls[i].port, TEST_PORT);
		assert_true(calls[i].add || calls[i].kind == K_NEIGH);
	}
}

/* Events lost to a full queue (ENOBUFS) are recovered by a resync: what was added
 * meanwhile comes in, what was deleted meanwhile goes. */
static void test_overrun_resyncs(void **state)
{
	int small = 1, big = 8 << 20, fd;
	char path[] = "/tmp/test_netlink.XXXXXX";
	FILE *f;
	char ip[32];
	(void)state;

	for (int i = 0; i < 4; i++)
		sh("ip route add 10.201.%d.0/24 via 10.1.0.254 dev tap0", i);
	nl_process();
	for (int i = 0; i < 4; i++) {
		snprintf(ip, sizeof(ip), "10.201.%d.0", i);
		assert_non_null(find(K_FIB, ip, 24));
	}
	assert_int_equal(setsockopt(nl_fd(), SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (int i = 0; i < 4; i++)
		fprintf(f, "route del 10.201.%d.0/24 via 10.1.0.254 dev tap0\n", i);
	for (int i = 0; i < OVERRUN_ROUTES; i++)
		fprintf(f, "route add 10.200.%d.0/24 via 10.1.0.254 dev tap0\n", i);
	fclose(f);
	sh("ip -batch %s", path);
	unlink(path);
	ncalls = 0;
	nl_process();
	assert_int_equal(setsockopt(nl_fd(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)), 0);
	for (int i = 0; i < OVERRUN_ROUTES; i++) {
		snprintf(ip, sizeof(ip), "10.200.%d.0", i);
		assert_non_null(find(K_FIB, ip, 24));
	}
	for (int i = 0; i < 4; i++) {
		const struct call *c;

		snprintf(ip, sizeof(ip), "10.201.%d.0", i);
		c = find(K_FIB, ip, 24);
		assert_non_null(c);
		assert_false(c->add); /* its deletion was among the lost events */
	}
}

/* A local process can unicast to our event socket; it must not be believed. */
static void test_spoofed_event_ignored(void **state)
{
	struct sockaddr_nl me, to = {.nl_family = AF_NETLINK};
	socklen_t sl = sizeof(me);
	struct {
		struct nlmsghdr nh;
		struct rtmsg rtm;
		struct rtattr a1;
		uint8_t dst[4];
		struct rtattr a2;
		uint32_t oif;
	} msg;
	int fd;
	(void)state;

	assert_int_equal(getsockname(nl_fd(), (struct sockaddr *)&me, &sl), 0);
	to.nl_pid = me.nl_pid;
	memset(&msg, 0, sizeof(msg));
	msg.nh = (struct nlmsghdr){.nlmsg_len = sizeof(msg), .nlmsg_type = RTM_NEWROUTE};
	msg.rtm = (struct rtmsg){.rtm_family = AF_INET,
				 .rtm_dst_len = 24,
				 .rtm_table = RT_TABLE_MAIN,
				 .rtm_type = RTN_UNICAST};
	msg.a1 = (struct rtattr){.rta_len = RTA_LENGTH(4), .rta_type = RTA_DST};
	ip_of("10.66.0.0", msg.dst, 4);
	msg.a2 = (struct rtattr){.rta_len = RTA_LENGTH(4), .rta_type = RTA_OIF};
	msg.oif = (uint32_t)tap_ifindex;

	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	assert_true(fd >= 0);
	assert_int_equal(
	    sendto(fd, &msg, sizeof(msg), MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)),
	    (ssize_t)sizeof(msg));
	close(fd);
	usleep(20000);
	nl_process();
	assert_null(find(K_FIB, "10.66.0.0", -1));
}

static bool is_arp_request_for(const uint8_t *p, ssize_t n, const uint8_t tip[4])
{
	/* Ethernet (14) + ARP for IPv4 over Ethernet (28). */
	if (n < 42 || p[12] != 0x08 || p[13] != 0x06)
		return false;
	return p[20] == 0 && p[21] == 1 && memcmp(p + 38, tip, 4) == 0;
}

static bool is_ns_for(const uint8_t *p, ssize_t n, const uint8_t tgt[16])
{
	/* Ethernet (14) + IPv6 (40) + ICMPv6 NS: type 135, target at offset 8. */
	if (n < 14 + 40 + 24 || p[12] != 0x86 || p[13] != 0xdd || p[14 + 6] != 58)
		return false;
	return p[54] == 135 && memcmp(p + 54 + 8, tgt, 16) == 0;
}

/* Wait on @fd for a frame accepted by @match. */
static bool sniff(int fd, bool (*match)(const uint8_t *, ssize_t, const uint8_t *),
		  const uint8_t *want)
{
	long end = now_ms() + WAIT_MS;
	uint8_t buf[2048];

	while (now_ms() < end) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0 && match(buf, n, want))
			return true;
	}
	return false;
}

static int sniffer(int proto)
{
	struct sockaddr_ll sll = {
	    .sll_family = AF_PACKET, .sll_protocol = htons(proto), .sll_ifindex = peer_ifindex};
	int fd = socket(AF_PACKET, SOCK_RAW, htons(proto));

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return fd;
}

static void test_resolve_sends_arp(void **state)
{
	uint8_t a[4];
	int fd;
	(void)state;

	ip_of("10.1.0.77", a, 4);
	fd = sniffer(ETH_P_ARP);
	assert_int_equal(nl_neigh_resolve(tap_ifindex, a, 4), 0);
	assert_true(sniff(fd, is_arp_request_for, a));
	/* Asking again while resolution runs is not an error. */
	assert_int_equal(nl_neigh_resolve(tap_ifindex, a, 4), 0);
	close(fd);
}

static void test_resolve_sends_ns(void **state)
{
	uint8_t a[16];
	int fd;
	(void)state;

	ip_of("2001:db8:1::77", a, 16);
	fd = sniffer(ETH_P_IPV6);
	assert_int_equal(nl_neigh_resolve(tap_ifindex, a, 16), 0);
	assert_true(sniff(fd, is_ns_for, a));
	close(fd);
}

static void test_bad_args(void **state)
{
	uint8_t a[16] = {10};
	char err[64] = "";
	(void)state;

	assert_int_equal(nl_addr(true, tap_ifindex, a, 5, 24, err, sizeof(err)), -EINVAL);
	assert_int_equal(nl_addr(true, tap_ifindex, a, 4, 33, err, sizeof(err)), -EINVAL);
	assert_int_equal(nl_route(true, 0, a, 4, 8, NULL, 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(nl_neigh(true, tap_ifindex, a, 4, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(nl_neigh_resolve(tap_ifindex, a, 3), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_addr_v4),
	    cmocka_unit_test(test_addr_v6),
	    cmocka_unit_test(test_route_via),
	    cmocka_unit_test(test_route_duplicate),
	    cmocka_unit_test(test_route_unreachable_gw),
	    cmocka_unit_test(test_other_interface_ignored),
	    cmocka_unit_test(test_neigh),
	    cmocka_unit_test(test_addr_delete),
	    cmocka_unit_test(test_foreign_objects),
	    cmocka_unit_test(test_resync),
	    cmocka_unit_test(test_overrun_resyncs),
	    cmocka_unit_test(test_spoofed_event_ignored),
	    cmocka_unit_test(test_resolve_sends_arp),
	    cmocka_unit_test(test_resolve_sends_ns),
	    cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

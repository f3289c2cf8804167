/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Kernel mirror over rtnetlink. One socket carries our requests (each waits
 * for its ACK), the other listens to address, route and neighbour events.
 * Messages come from the kernel, but are still checked field by field: only
 * objects on our TAPs reach the tables, anything malformed is skipped.
 */
#define _GNU_SOURCE /* twalk_r */
#include <errno.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <net/if.h>

#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "addr.h"
#include "fib.h"
#include "neigh.h"
#include "netlink.h"
#include "port.h"

/* Big enough that a burst of route changes does not overrun the queue. */
#define NL_EVENT_RCVBUF (8u << 20)
/* Dump replies are batched by the kernel up to about 32 KiB per datagram. */
#define NL_BUF_SIZE (64u << 10)
/* A request the kernel does not answer must not wedge the control thread. */
#define NL_REQ_TIMEOUT_S 5
/* An interrupted dump (table changed under it) is simply redone. */
#define NL_DUMP_TRIES 3
#define NL_EXTACK_MAX 160
/* Our own requests: a header and a few addresses. */
#define NL_REQ_SIZE 512

static struct mnl_socket *req_sock;
static struct mnl_socket *ev_sock;
static uint32_t req_portid;
static uint32_t req_seq;
/* Apart, so a sink may ask the kernel something while events are being fed. */
static uint8_t ev_buf[NL_BUF_SIZE] __attribute__((aligned(8)));
static uint8_t req_buf[NL_BUF_SIZE] __attribute__((aligned(8)));
/* Replies to a request would interleave with the dump parts on one socket. */
static bool dumping;

/*
 * The ledger: every address, route and neighbour the mirror has handed to the
 * tables. After lost events (a full socket) the resync dumps mark what still
 * exists; what they no longer report was deleted meanwhile and is removed
 * too. A libc tree (tsearch): netlink.c stays free of DPDK for its unit test.
 */
enum ledger_kind { L_ADDR, L_ROUTE, L_NEIGH };

struct ledger_key {
	uint8_t kind, alen, plen, zero;
	uint16_t port, zero2;
	uint32_t metric;
	uint8_t addr[16];
};

struct ledger {
	struct ledger_key k;
	bool has_via;
	uint8_t via[16];
	uint32_t gen;
};

static void *ledger_root;
static uint32_t ledger_gen;

static int ledger_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct ledger *)a)->k, &((const struct ledger *)b)->k,
		      sizeof(struct ledger_key));
}

static void ledger_note(bool add, enum ledger_kind kind, uint16_t port, const uint8_t *addr,
			size_t alen, unsigned plen, uint32_t metric, const uint8_t *via)
{
	struct ledger probe, *e, **found;

	memset(&probe, 0, sizeof(probe));
	probe.k = (struct ledger_key){.kind = (uint8_t)kind,
				      .alen = (uint8_t)alen,
				      .plen = (uint8_t)plen,
				      .port = port,
				      .metric = metric};
	memcpy(probe.k.addr, addr, alen);
	found = tfind(&probe, &ledger_root, ledger_cmp);
	if (!add) {
		if (found != NULL) {
			e = *found;
			tdelete(&probe, &ledger_root, ledger_cmp);
			free(e);
		}
		return;
	}
	if (found != NULL) {
		e = *found;
	} else {
		e = malloc(sizeof(*e));
		if (e == NULL)
			return; /* a later sweep then cannot remove it: only a stale entry */
		*e = probe;
		if (tsearch(e, &ledger_root, ledger_cmp) == NULL) {
			free(e);
			return;
		}
	}
	e->gen = ledger_gen;
	e->has_via = via != NULL;
	if (via != NULL)
		memcpy(e->via, via, alen);
}

struct stale {
	struct ledger **v;
	size_t n, cap;
};

static void collect_stale(const void *node, VISIT which, void *arg)
{
	struct ledger *e = *(struct ledger *const *)node;
	struct stale *s = arg;

	if ((which != postorder && which != leaf) || e->gen == ledger_gen)
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct ledger **v = realloc(s->v, cap * sizeof(*v));

		if (v == NULL)
			return;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = e;
}

/* After the resync dumps: remove from the tables what they did not report. */
static void ledger_sweep(void)
{
	struct stale s = {NULL, 0, 0};

	twalk_r(ledger_root, collect_stale, &s);
	for (size_t i = 0; i < s.n; i++) {
		struct ledger *e = s.v[i];
		struct ledger_key k = e->k;

		switch (k.kind) {
		case L_ADDR:
			addr_update(false, k.port, k.addr, k.alen, k.plen);
			fib_local(false, k.addr, k.alen, k.port);
			break;
		case L_ROUTE:
			fib_update(false, k.addr, k.alen, k.plen, e->has_via ? e->via : NULL,
				   k.port, k.metric);
			break;
		default:
			neigh_update(false, k.port, k.addr, k.alen, NULL, "NONE");
			break;
		}
		ledger_note(false, (enum ledger_kind)k.kind, k.port, k.addr, k.alen, k.plen,
			    k.metric, NULL);
	}
	if (s.n > 0)
		fprintf(stderr,
			"dpsec: netlink resync removed %zu entries deleted while events were "
			"lost\n",
			s.n);
	free(s.v);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int family_of(size_t alen)
{
	return alen == 4 ? AF_INET : alen == 16 ? AF_INET6 : -1;
}

static size_t alen_of(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* Receive one datagram, accepting it only from the kernel: any local process
 * may unicast to a netlink port id and would otherwise feed us fake routes. */
static ssize_t nl_recv(struct mnl_socket *s, void *buf, size_t len)
{
	struct sockaddr_nl sa;
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr mh = {
	    .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	for (;;) {
		n = recvmsg(mnl_socket_get_fd(s), &mh, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (mh.msg_namelen != sizeof(sa) || sa.nl_family != AF_NETLINK || sa.nl_pid != 0)
			continue;
		/* A partial datagram lost messages; callers decide what that costs. */
		if (mh.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		return n;
	}
}

/* Attribute table filled by mnl_attr_parse(); later duplicates win, as in the kernel. */
struct attr_tb {
	const struct nlattr **tb;
	unsigned int max;
};

static int attr_store(const struct nlattr *a, void *data)
{
	struct attr_tb *t = data;
	unsigned int type = mnl_attr_get_type(a);

	if (type <= t->max)
		t->tb[type] = a;
	return MNL_CB_OK;
}

static bool parse_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb,
			unsigned int max)
{
	struct attr_tb t = {tb, max};

	memset(tb, 0, (max + 1) * sizeof(*tb));
	if (mnl_nlmsg_get_payload_len(nlh) < hdrlen)
		return false;
	return mnl_attr_parse(nlh, hdrlen, attr_store, &t) >= 0;
}

static bool parse_attrs_payload(const void *p, size_t len, const struct nlattr **tb,
				unsigned int max)
{
	struct attr_tb t = {tb, max};

	memset(tb, 0, (max + 1) * sizeof(*tb));
	return mnl_attr_parse_payload(p, len, attr_store, &t) >= 0;
}

/* Payload of @a if it is exactly @len bytes, else NULL. */
static const uint8_t *attr_bytes(const struct nlattr *a, size_t len)
{
	if (a == NULL || mnl_attr_get_payload_len(a) != len)
		return NULL;
	return mnl_attr_get_payload(a);
}

static bool attr_u32(const struct nlattr *a, uint32_t *v)
{
	if (a == NULL || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
		return false;
	*v = mnl_attr_get_u32(a);
	return true;
}

static void on_addr(const struct nlmsghdr *nlh)
{
	const struct nlattr *tb[IFA_MAX + 1];
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const uint8_t *a;
	size_t alen;
	int port;
	bool add = nlh->nlmsg_type == RTM_NEWADDR;

	if (!parse_attrs(nlh, sizeof(*ifa), tb, IFA_MAX))
		return;
	alen = alen_of(ifa->ifa_family);
	if (alen == 0 || ifa->ifa_prefixlen > alen * 8)
		return;
	port = port_by_ifindex((int)ifa->ifa_index);
	if (port < 0)
		return;
	/* IFA_LOCAL is ours; IFA_ADDRESS is the peer on point-to-point links. */
	a = attr_bytes(tb[IFA_LOCAL], alen);
	if (a == NULL)
		a = attr_bytes(tb[IFA_ADDRESS], alen);
	if (a == NULL)
		return;
	addr_update(add, (uint16_t)port, a, alen, ifa->ifa_prefixlen);
	fib_local(add, a, alen, (uint16_t)port);
	ledger_note(add, L_ADDR, (uint16_t)port, a, alen, ifa->ifa_prefixlen, 0, NULL);
}

/* Gateway from RTA_GATEWAY or a same-family RTA_VIA. Returns false when the
 * next hop cannot be represented (malformed, or a v6 gateway for a v4 route). */
static bool route_via(const struct nlattr *gw, const struct nlattr *via, int family,
		      const uint8_t **out)
{
	size_t alen = alen_of(family);

	*out = NULL;
	if (gw != NULL) {
		*out = attr_bytes(gw, alen);
		return *out != NULL;
	}
	if (via != NULL) {
		const struct rtvia *v = mnl_attr_get_payload(via);

		if (mnl_attr_get_payload_len(via) != sizeof(*v) + alen || v->rtvia_family != family)
			return false;
		*out = v->rtvia_addr;
	}
	return true;
}

/* First next hop of an RTA_MULTIPATH list that leaves through one of our TAPs. */
static int route_multipath(const struct nlattr *mp, int family, const uint8_t **via)
{
	const uint8_t *p = mnl_attr_get_payload(mp);
	size_t rem = mnl_attr_get_payload_len(mp);

	while (rem >= sizeof(struct rtnexthop)) {
		const struct rtnexthop *nh = (const struct rtnexthop *)p;
		const struct nlattr *tb[RTA_MAX + 1];
		size_t step;
		int port;

		if (nh->rtnh_len < sizeof(*nh) || nh->rtnh_len > rem)
			return -1;
		port = port_by_ifindex(nh->rtnh_ifindex);
		if (port >= 0) {
			if (!parse_attrs_payload(p + RTNH_LENGTH(0), nh->rtnh_len - RTNH_LENGTH(0),
						 tb, RTA_MAX))
				return -1;
			if (!route_via(tb[RTA_GATEWAY], tb[RTA_VIA], family, via))
				return -1;
			return port;
		}
		step = RTNH_ALIGN(nh->rtnh_len);
		if (step >= rem)
			break;
		p += step;
		rem -= step;
	}
	return -1;
}

static void on_route(const struct nlmsghdr *nlh)
{
	static const uint8_t zero[16];
	const struct nlattr *tb[RTA_MAX + 1];
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const uint8_t *dst = zero, *via = NULL;
	uint32_t table, oif, metric = 0;
	size_t alen;
	int port;
	bool add = nlh->nlmsg_type == RTM_NEWROUTE;

	if (!parse_attrs(nlh, sizeof(*rtm), tb, RTA_MAX))
		return;
	alen = alen_of(rtm->rtm_family);
	if (alen == 0 || rtm->rtm_dst_len > alen * 8)
		return;
	if (rtm->rtm_type != RTN_UNICAST || (rtm->rtm_flags & RTM_F_CLONED))
		return;
	/* Source-specific routes would widen into plain ones in our table. */
	if (rtm->rtm_src_len != 0)
		return;
	if (!attr_u32(tb[RTA_TABLE], &table))
		table = rtm->rtm_table;
	if (table != RT_TABLE_MAIN)
		return;
	if (tb[RTA_DST] != NULL) {
		dst = attr_bytes(tb[RTA_DST], alen);
		if (dst == NULL)
			return;
	} else if (rtm->rtm_dst_len != 0) {
		return;
	}
	if (tb[RTA_PRIORITY] != NULL && !attr_u32(tb[RTA_PRIORITY], &metric))
		return;

	/* Routes through nexthop objects (RTA_NH_ID) carry no RTA_OIF: not mirrored. */
	if (attr_u32(tb[RTA_OIF], &oif)) {
		port = port_by_ifindex((int)oif);
		if (port < 0 || !route_via(tb[RTA_GATEWAY], tb[RTA_VIA], rtm->rtm_family, &via))
			return;
	} else if (tb[RTA_MULTIPATH] != NULL) {
		port = route_multipath(tb[RTA_MULTIPATH], rtm->rtm_family, &via);
		if (port < 0)
			return;
	} else {
		return;
	}
	fib_update(add, dst, alen, rtm->rtm_dst_len, via, (uint16_t)port, metric);
	ledger_note(add, L_ROUTE, (uint16_t)port, dst, alen, rtm->rtm_dst_len, metric, via);
}

static const char *nud_name(uint16_t state)
{
	/* Same words and precedence as `ip neigh`. */
	static const struct {
		uint16_t bit;
		const char *name;
	} names[] = {
	    {NUD_PERMANENT, "PERMANENT"}, {NUD_NOARP, "NOARP"},
	    {NUD_REACHABLE, "REACHABLE"}, {NUD_STALE, "STALE"},
	    {NUD_DELAY, "DELAY"},	  {NUD_PROBE, "PROBE"},
	    {NUD_FAILED, "FAILED"},	  {NUD_INCOMPLETE, "INCOMPLETE"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (state & names[i].bit)
			return names[i].name;
	return "NONE";
}

#define NUD_USABLE (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)

static void on_neigh(const struct nlmsghdr *nlh)
{
	const struct nlattr *tb[NDA_MAX + 1];
	const struct ndmsg *ndm = mnl_nlmsg_get_payload(nlh);
	const uint8_t *dst, *mac;
	size_t alen;
	int port;
	bool add;

	if (!parse_attrs(nlh, sizeof(*ndm), tb, NDA_MAX))
		return;
	alen = alen_of(ndm->ndm_family);
	/* Proxy entries answer for others; they are not next hops. */
	if (alen == 0 || (ndm->ndm_flags & NTF_PROXY))
		return;
	port = port_by_ifindex(ndm->ndm_ifindex);
	if (port < 0)
		return;
	dst = attr_bytes(tb[NDA_DST], alen);
	if (dst == NULL)
		return;
	mac = attr_bytes(tb[NDA_LLADDR], RTE_ETHER_ADDR_LEN);
	add = nlh->nlmsg_type == RTM_NEWNEIGH && (ndm->ndm_state & NUD_USABLE) && mac != NULL;
	neigh_update(add, (uint16_t)port, dst, alen, add ? mac : NULL, nud_name(ndm->ndm_state));
	ledger_note(add, L_NEIGH, (uint16_t)port, dst, alen, alen * 8, 0, NULL);
}

static void dispatch(const struct nlmsghdr *nlh)
{
	switch (nlh->nlmsg_type) {
	case RTM_NEWADDR:
	case RTM_DELADDR:
		on_addr(nlh);
		break;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
		on_route(nlh);
		break;
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH:
		on_neigh(nlh);
		break;
	default:
		break;
	}
}

/* Error code and extended-ack text of an NLMSG_ERROR. */
static int parse_ack(const struct nlmsghdr *nlh, char *msg, size_t msglen)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t plen = mnl_nlmsg_get_payload_len(nlh);
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t off = sizeof(*e);
	int error;

	if (msglen != 0)
		msg[0] = '\0';
	if (plen < sizeof(*e))
		return -EBADMSG;
	error = e->error;
	if (error > 0 || error < -4095)
		return -EPROTO;
	if (error == 0 || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return error;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return error;
		off += NLMSG_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
	}
	if (off >= plen ||
	    !parse_attrs_payload((const uint8_t *)e + off, plen - off, tb, NLMSGERR_ATTR_MAX))
		return error;
	if (tb[NLMSGERR_ATTR_MSG] != NULL &&
	    mnl_attr_validate(tb[NLMSGERR_ATTR_MSG], MNL_TYPE_NUL_STRING) >= 0 && msglen != 0)
		snprintf(msg, msglen, "%s", mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
	return error;
}

static int send_req(struct nlmsghdr *nlh)
{
	nlh->nlmsg_seq = ++req_seq;
	if (mnl_socket_sendto(req_sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

static bool is_reply(const struct nlmsghdr *nlh)
{
	return nlh->nlmsg_seq == req_seq && nlh->nlmsg_pid == req_portid;
}

/* Send @nlh and wait for its ACK. Replies to older requests (say, one that
 * timed out) are skipped by sequence number. */
static int request(struct nlmsghdr *nlh, char *msg, size_t msglen)
{
	int ret;

	if (req_sock == NULL)
		return -ENOTCONN;
	if (dumping)
		return -EBUSY;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	ret = send_req(nlh);
	if (ret < 0)
		return ret;
	for (;;) {
		ssize_t n = nl_recv(req_sock, req_buf, sizeof(req_buf));
		const struct nlmsghdr *r = (const struct nlmsghdr *)req_buf;
		int len = (int)n;

		if (n == -EMSGSIZE)
			continue; /* an ACK is small: this was something else */
		if (n < 0)
			return n == -EAGAIN ? -ETIMEDOUT : (int)n;
		for (; mnl_nlmsg_ok(r, len); r = mnl_nlmsg_next(r, &len))
			if (is_reply(r) && r->nlmsg_type == NLMSG_ERROR)
				return parse_ack(r, msg, msglen);
	}
}

/* Dump one object type through the same parsers as events. */
static int run_dump(uint16_t type, const void *hdr, size_t hdrlen)
{
	for (int tries = 0; tries < NL_DUMP_TRIES; tries++) {
		uint8_t req[NL_REQ_SIZE] __attribute__((aligned(8)));
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
		bool intr = false;
		int ret;

		nlh->nlmsg_type = type;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
		memcpy(mnl_nlmsg_put_extra_header(nlh, hdrlen), hdr, hdrlen);
		ret = send_req(nlh);
		if (ret < 0)
			return ret;
		for (bool done = false; !done;) {
			ssize_t n = nl_recv(req_sock, req_buf, sizeof(req_buf));
			const struct nlmsghdr *r = (const struct nlmsghdr *)req_buf;
			int len = (int)n;

			if (n < 0)
				return n == -EAGAIN ? -ETIMEDOUT : (int)n;
			for (; !done && mnl_nlmsg_ok(r, len); r = mnl_nlmsg_next(r, &len)) {
				if (!is_reply(r))
					continue;
				if (r->nlmsg_flags & NLM_F_DUMP_INTR)
					intr = true;
				if (r->nlmsg_type == NLMSG_ERROR)
					return parse_ack(r, NULL, 0);
				if (r->nlmsg_type == NLMSG_DONE) {
					/* Some dumps report a late failure in the DONE payload. */
					if (mnl_nlmsg_get_payload_len(r) >= sizeof(int)) {
						int e = *(const int *)mnl_nlmsg_get_payload(r);

						if (e < 0 && e >= -4095)
							return e;
					}
					done = true;
					break;
				}
				dispatch(r);
			}
		}
		if (!intr)
			return 0;
	}
	return -EINTR;
}

static int dump(uint16_t type, const void *hdr, size_t hdrlen)
{
	int ret;

	dumping = true;
	ret = run_dump(type, hdr, hdrlen);
	dumping = false;
	return ret;
}

int nl_resync(void)
{
	struct ifaddrmsg ifa = {.ifa_family = AF_UNSPEC};
	struct rtmsg rtm = {.rtm_family = AF_UNSPEC};
	struct ndmsg ndm = {.ndm_family = AF_UNSPEC};
	int ret;

	if (req_sock == NULL)
		return -ENOTCONN;
	if (dumping)
		return -EBUSY;
	ret = dump(RTM_GETADDR, &ifa, sizeof(ifa));
	if (ret == 0)
		ret = dump(RTM_GETROUTE, &rtm, sizeof(rtm));
	if (ret == 0)
		ret = dump(RTM_GETNEIGH, &ndm, sizeof(ndm));
	return ret;
}

void nl_process(void)
{
	bool overrun = false;

	if (ev_sock == NULL)
		return;
	for (;;) {
		ssize_t n = nl_recv(ev_sock, ev_buf, sizeof(ev_buf));
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)ev_buf;
		int len = (int)n;

		if (n == -ENOBUFS || n == -EMSGSIZE) {
			/* Events were lost; what is still queued is overtaken by the dump. */
			overrun = true;
			continue;
		}
		if (n < 0)
			break;
		if (overrun)
			continue;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
			dispatch(nlh);
	}
	if (overrun) {
		int ret;

		ledger_gen++; /* the dumps mark what still exists */
		ret = nl_resync();
		if (ret < 0)
			fprintf(stderr, "dpsec: netlink resync after overrun failed: %s\n",
				strerror(-ret));
		else
			ledger_sweep();
	}
}

int nl_fd(void)
{
	return ev_sock != NULL ? mnl_socket_get_fd(ev_sock) : -1;
}

static int open_req(char *err, size_t errlen)
{
	struct timeval tv = {.tv_sec = NL_REQ_TIMEOUT_S};
	int one = 1;

	req_sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (req_sock == NULL || mnl_socket_bind(req_sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		set_err(err, errlen, "netlink request socket: %s", strerror(errno));
		return -errno;
	}
	req_portid = mnl_socket_get_portid(req_sock);
	/* Best effort: older kernels lack extended acks, strerror() still works. */
	mnl_socket_setsockopt(req_sock, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(req_sock, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(mnl_socket_get_fd(req_sock), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		set_err(err, errlen, "netlink request socket timeout: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int open_ev(char *err, size_t errlen)
{
	static const unsigned int groups[] = {
	    RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_ROUTE,
	    RTNLGRP_IPV6_ROUTE,	 RTNLGRP_NEIGH,
	};
	int fd, sz = NL_EVENT_RCVBUF;

	ev_sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (ev_sock == NULL || mnl_socket_bind(ev_sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		set_err(err, errlen, "netlink event socket: %s", strerror(errno));
		return -errno;
	}
	fd = mnl_socket_get_fd(ev_sock);
	/* FORCE ignores rmem_max but needs CAP_NET_ADMIN; else take what we may. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (mnl_socket_setsockopt(ev_sock, NETLINK_ADD_MEMBERSHIP, (void *)&groups[i],
					  sizeof(groups[i])) < 0) {
			set_err(err, errlen, "netlink group %u: %s", groups[i], strerror(errno));
			return -errno;
		}
	}
	return 0;
}

int nl_init(char *err, size_t errlen)
{
	int ret;

	nl_close();
	ret = open_req(err, errlen);
	if (ret == 0)
		ret = open_ev(err, errlen);
	if (ret < 0)
		nl_close();
	return ret;
}

void nl_close(void)
{
	if (req_sock != NULL)
		mnl_socket_close(req_sock);
	if (ev_sock != NULL)
		mnl_socket_close(ev_sock);
	req_sock = NULL;
	ev_sock = NULL;
	tdestroy(ledger_root, free);
	ledger_root = NULL;
}

/* "10.1.0.0/16" or "10.1.0.1" into @buf. */
static const char *fmt_addr(char *buf, size_t len, const uint8_t *a, size_t alen, int plen)
{
	char s[INET6_ADDRSTRLEN];

	if (inet_ntop(family_of(alen), a, s, sizeof(s)) == NULL)
		snprintf(s, sizeof(s), "?");
	if (plen >= 0)
		snprintf(buf, len, "%s/%d", s, plen);
	else
		snprintf(buf, len, "%s", s);
	return buf;
}

static const char *fmt_dev(char *buf, int ifindex)
{
	if (if_indextoname((unsigned int)ifindex, buf) == NULL)
		snprintf(buf, IF_NAMESIZE, "if%d", ifindex);
	return buf;
}

/* Kernel's words if it gave any, else strerror(). */
static const char *reason(int ret, const char *extack)
{
	return extack[0] != '\0' ? extack : strerror(-ret);
}

static bool args_ok(int ifindex, const uint8_t *addr, size_t alen, unsigned int plen)
{
	return ifindex > 0 && addr != NULL && family_of(alen) > 0 && plen <= alen * 8;
}

int nl_addr(bool add, int ifindex, const uint8_t *addr, size_t alen, unsigned plen, char *err,
	    size_t errlen)
{
	uint8_t req[NL_REQ_SIZE] __attribute__((aligned(8)));
	char ext[NL_EXTACK_MAX], a[64], dev[IF_NAMESIZE];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int ret;

	if (!args_ok(ifindex, addr, alen, plen)) {
		set_err(err, errlen, "invalid address request");
		return -EINVAL;
	}
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)family_of(alen);
	ifa->ifa_prefixlen = (uint8_t)plen;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	mnl_attr_put(nlh, IFA_LOCAL, alen, addr);
	mnl_attr_put(nlh, IFA_ADDRESS, alen, addr);
	if (alen == 4 && plen < 31) {
		uint32_t a4, host = plen == 0 ? UINT32_MAX : (UINT32_C(1) << (32 - plen)) - 1;

		memcpy(&a4, addr, 4);
		mnl_attr_put_u32(nlh, IFA_BROADCAST, a4 | htonl(host));
	}
	ret = request(nlh, ext, sizeof(ext));
	if (ret < 0)
		set_err(err, errlen, "kernel refused %s address %s on %s: %s",
			add ? "to add" : "to remove", fmt_addr(a, sizeof(a), addr, alen, (int)plen),
			fmt_dev(dev, ifindex), reason(ret, ext));
	return ret;
}

int nl_route(bool add, int ifindex, const uint8_t *dst, size_t alen, unsigned plen,
	     const uint8_t *via, uint32_t metric, char *err, size_t errlen)
{
	uint8_t req[NL_REQ_SIZE] __attribute__((aligned(8)));
	char ext[NL_EXTACK_MAX], d[64], g[64], dev[IF_NAMESIZE];
	char nh[80];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int ret;

	/* Without a device the kernel picks it from the gateway's connected route. */
	if (!args_ok(ifindex > 0 ? ifindex : 1, dst, alen, plen) || ifindex < 0 ||
	    (ifindex == 0 && add && via == NULL)) {
		set_err(err, errlen, "invalid route request");
		return -EINVAL;
	}
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = add ? RTM_NEWROUTE : RTM_DELROUTE;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_EXCL : 0;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)family_of(alen);
	rtm->rtm_dst_len = (uint8_t)plen;
	rtm->rtm_table = RT_TABLE_MAIN;
	if (add) {
		rtm->rtm_protocol = RTPROT_STATIC;
		rtm->rtm_scope = via != NULL ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
		rtm->rtm_type = RTN_UNICAST;
	} else {
		/* Like `ip route del`: match whatever protocol, scope and type installed it. */
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	}
	if (plen != 0)
		mnl_attr_put(nlh, RTA_DST, alen, dst);
	if (ifindex > 0)
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	if (via != NULL)
		mnl_attr_put(nlh, RTA_GATEWAY, alen, via);
	if (metric != 0)
		mnl_attr_put_u32(nlh, RTA_PRIORITY, metric);
	ret = request(nlh, ext, sizeof(ext));
	if (ret < 0) {
		fmt_addr(d, sizeof(d), dst, alen, (int)plen);
		if (via != NULL)
			snprintf(nh, sizeof(nh), "via %s", fmt_addr(g, sizeof(g), via, alen, -1));
		else
			snprintf(nh, sizeof(nh), "dev %s", fmt_dev(dev, ifindex));
		set_err(err, errlen, "kernel refused %sroute %s %s: %s", add ? "" : "to delete ", d,
			nh, reason(ret, ext));
	}
	return ret;
}

int nl_neigh(bool add, int ifindex, const uint8_t *addr, size_t alen, const uint8_t mac[6],
	     char *err, size_t errlen)
{
	uint8_t req[NL_REQ_SIZE] __attribute__((aligned(8)));
	char ext[NL_EXTACK_MAX], a[64], dev[IF_NAMESIZE];
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;
	int ret;

	if (!args_ok(ifindex, addr, alen, 0) || (add && mac == NULL)) {
		set_err(err, errlen, "invalid neighbour request");
		return -EINVAL;
	}
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = add ? RTM_NEWNEIGH : RTM_DELNEIGH;
	nlh->nlmsg_flags = add ? NLM_F_CREATE | NLM_F_REPLACE : 0;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = (uint8_t)family_of(alen);
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = add ? NUD_PERMANENT : NUD_NONE;
	mnl_attr_put(nlh, NDA_DST, alen, addr);
	if (add)
		mnl_attr_put(nlh, NDA_LLADDR, RTE_ETHER_ADDR_LEN, mac);
	ret = request(nlh, ext, sizeof(ext));
	if (ret < 0) {
		if (add)
			set_err(err, errlen,
				"kernel refused neighbour %s lladdr %02x:%02x:%02x:%02x:%02x:%02x "
				"on %s: %s",
				fmt_addr(a, sizeof(a), addr, alen, -1), mac[0], mac[1], mac[2],
				mac[3], mac[4], mac[5], fmt_dev(dev, ifindex), reason(ret, ext));
		else
			set_err(err, errlen, "kernel refused to delete neighbour %s on %s: %s",
				fmt_addr(a, sizeof(a), addr, alen, -1), fmt_dev(dev, ifindex),
				reason(ret, ext));
	}
	return ret;
}

int nl_neigh_resolve(int ifindex, const uint8_t *addr, size_t alen)
{
	uint8_t req[NL_REQ_SIZE] __attribute__((aligned(8)));
	char ext[NL_EXTACK_MAX];
	struct nlmsghdr *nlh;
	struct ndmsg *ndm;
	int ret;

	if (!args_ok(ifindex, addr, alen, 0))
		return -EINVAL;
	nlh = mnl_nlmsg_put_header(req);
	nlh->nlmsg_type = RTM_NEWNEIGH;
	nlh->nlmsg_flags = NLM_F_CREATE;
	ndm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ndm));
	ndm->ndm_family = (uint8_t)family_of(alen);
	ndm->ndm_ifindex = ifindex;
	ndm->ndm_state = NUD_NONE;
	/* NTF_USE makes neigh_add() kick the kernel's own ARP/ND state machine
	 * instead of setting a state; the reply arrives as a neighbour event. */
	ndm->ndm_flags = NTF_USE;
	mnl_attr_put(nlh, NDA_DST, alen, addr);
	ret = request(nlh, ext, sizeof(ext));
	/* Already known (e.g. permanent) is not a failure: nothing to resolve. */
	return ret == -EEXIST ? 0 : ret;
}

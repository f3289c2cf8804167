/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The dpsec control channel (see channel.h): a ROUTER that answers every
 * request exactly once and keeps its own per-client output queues, so a slow
 * reader never loses an event to a ZeroMQ high-water mark.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "channel.h"

/* Messages ZeroMQ buffers per peer before our own queue takes over. */
#define CHAN_HWM 1000
/* Frames above CHAN_MSG_MAX still get an ETOOBIG reply up to this size;
 * beyond it ZeroMQ drops the connection so a peer cannot exhaust memory. */
#define CHAN_RAW_MAX (4 * CHAN_MSG_MAX)
/* Clients with a subscription or a backlog; bounds memory per untrusted peer. */
#define CHAN_PEERS_MAX	    1024
#define CHAN_ROUTING_ID_MAX 255
#define CHAN_GROUP	    "dpsec"
#define CURVE_KEY_LEN	    32
#define CURVE_Z85_LEN	    40
#define ZAP_ENDPOINT	    "inproc://zeromq.zap.01"
#define ZAP_DOMAIN	    "dpsec"

struct outmsg {
	uint8_t *buf;
	size_t len;
	bool event;
};

/* Frames waiting for one client, oldest first (ring buffer). */
struct outq {
	struct outmsg *v;
	size_t cap, head, n;
};

struct peer {
	uint8_t id[CHAN_ROUTING_ID_MAX];
	size_t idlen;
	bool subscribed;
	uint64_t seq;
	struct outq q;
};

struct zap {
	void *sock;
	size_t nkeys;
	uint8_t (*keys)[CURVE_KEY_LEN];
};

struct chan_server {
	void *ctx;
	void *sock;
	uint64_t epoch;
	struct peer **peers;
	size_t npeers;
	struct zap zap;
	pthread_t zap_thread;
	bool zap_running;
	uint64_t requests, bad_frames, events_sent, events_queued;
	uint64_t subs_dropped, replies_dropped;
};

struct evnode {
	Dpsec__Event *ev;
	struct evnode *next;
};

struct chan_client {
	void *ctx;
	void *sock;
	uint64_t next_id;
	struct evnode *head, *tail;
	size_t nev;
	uint64_t ev_dropped;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	int64_t d = deadline - now_ms();

	return d > 0 ? (int)d : 0;
}

const char *chan_code_name(Dpsec__Code code)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&dpsec__code__descriptor, (int)code);

	return v ? v->name : "UNKNOWN";
}

void chan_reply_error(Dpsec__Reply *rep, Dpsec__Code code, const char *fmt, ...)
{
	va_list ap;
	char *reason = NULL;

	va_start(ap, fmt);
	if (vasprintf(&reason, fmt, ap) < 0)
		reason = NULL;
	va_end(ap);
	free(rep->reason);
	rep->reason = reason;
	rep->code = code;
}

void chan_reply_free(Dpsec__Reply *rep)
{
	if (rep)
		protobuf_c_message_free_unpacked(&rep->base, NULL);
}

void chan_event_free(Dpsec__Event *ev)
{
	if (ev)
		protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* ---- endpoints and keys ---- */

enum ep_kind { EP_IPC, EP_TCP };

static int endpoint_kind(const char *ep, enum ep_kind *kind, char *err, size_t errlen)
{
	struct sockaddr_un sa;

	if (!ep || !*ep) {
		snprintf(err, errlen, "empty endpoint");
		return -1;
	}
	if (!strncmp(ep, "ipc://", 6)) {
		if (!ep[6]) {
			snprintf(err, errlen, "endpoint %s has no socket path", ep);
			return -1;
		}
		if (strlen(ep + 6) >= sizeof(sa.sun_path)) {
			snprintf(err, errlen, "socket path %s is longer than %zu bytes", ep + 6,
				 sizeof(sa.sun_path) - 1);
			return -1;
		}
		*kind = EP_IPC;
		return 0;
	}
	if (!strncmp(ep, "tcp://", 6)) {
		*kind = EP_TCP;
		return 0;
	}
	snprintf(err, errlen, "unsupported endpoint '%s' (use ipc:///path or tcp://host:port)", ep);
	return -1;
}

static int z85_key(const char *var, uint8_t key[CURVE_KEY_LEN], char *err, size_t errlen)
{
	const char *s = getenv(var);

	if (!s || !*s) {
		snprintf(err, errlen, "tcp:// needs CurveZMQ keys: %s is not set", var);
		return -1;
	}
	if (strlen(s) != CURVE_Z85_LEN || !zmq_z85_decode(key, s)) {
		snprintf(err, errlen, "%s is not a %d-character Z85 CurveZMQ key", var,
			 CURVE_Z85_LEN);
		return -1;
	}
	return 0;
}

static int curve_available(char *err, size_t errlen)
{
	if (zmq_has("curve"))
		return 0;
	snprintf(err, errlen, "tcp:// needs CurveZMQ but this libzmq was built without it");
	return -1;
}

/* ---- ipc socket file ---- */

static int mkdir_parents(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *p = dir + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s", dir,
				 strerror(errno));
			return -1;
		}
		*p = c;
		if (!c)
			return 0;
	}
}

/* A socket file nobody accepts on is left over from a crash; a live one is not ours. */
static int ipc_prepare(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, rc;

	if (mkdir_parents(path, err, errlen) < 0)
		return -1;
	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; refusing to replace it",
			 path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		snprintf(err, errlen, "%s is in use by another running server", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int ipc_secure(const char *path, char *err, size_t errlen)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (chmod(path, 0660) < 0) {
		snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
		return -1;
	}
	if (getgrnam_r(CHAN_GROUP, &gr, buf, sizeof(buf), &res) == 0 && res &&
	    chown(path, (uid_t)-1, res->gr_gid) < 0) {
		snprintf(err, errlen, "chgrp %s %s: %s", CHAN_GROUP, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- ZAP: which CurveZMQ clients may talk to the dataplane ---- */

static int zap_load_keys(struct zap *z, char *err, size_t errlen)
{
	const char *env = getenv("DPSEC_CURVE_CLIENTS");
	char *copy, *tok, *save = NULL;
	int rc = 0;

	if (!env || !*env) {
		snprintf(err, errlen,
			 "tcp:// needs DPSEC_CURVE_CLIENTS (Z85 public keys of allowed clients)");
		return -1;
	}
	copy = strdup(env);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
		void *nk = realloc(z->keys, (z->nkeys + 1) * sizeof(*z->keys));

		if (!nk) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		z->keys = nk;
		if (strlen(tok) != CURVE_Z85_LEN || !zmq_z85_decode(z->keys[z->nkeys], tok)) {
			snprintf(err, errlen, "DPSEC_CURVE_CLIENTS: '%s' is not a Z85 key", tok);
			rc = -1;
			break;
		}
		z->nkeys++;
	}
	free(copy);
	if (!rc && !z->nkeys) {
		snprintf(err, errlen, "DPSEC_CURVE_CLIENTS lists no key");
		rc = -1;
	}
	return rc;
}

static bool zap_allowed(const struct zap *z, const zmq_msg_t *cred)
{
	if (zmq_msg_size((zmq_msg_t *)cred) != CURVE_KEY_LEN)
		return false;
	for (size_t i = 0; i < z->nkeys; i++)
		if (!memcmp(z->keys[i], zmq_msg_data((zmq_msg_t *)cred), CURVE_KEY_LEN))
			return true;
	return false;
}

static bool frame_is(zmq_msg_t *m, const char *s)
{
	return zmq_msg_size(m) == strlen(s) && !memcmp(zmq_msg_data(m), s, strlen(s));
}

/* ZAP (RFC 27) handler thread; ends when the context shuts down (ETERM). */
static void *zap_main(void *arg)
{
	struct zap *z = arg;
	enum { VERSION, REQID, DOMAIN, ADDRESS, IDENTITY, MECH, CRED, NFRAMES };
	zmq_msg_t f[NFRAMES];

	for (;;) {
		int n = 0, more = 1;
		bool ok;

		while (more) {
			zmq_msg_t *m = &f[n < NFRAMES ? n : NFRAMES - 1];

			if (n >= NFRAMES)
				zmq_msg_close(m);
			zmq_msg_init(m);
			if (zmq_msg_recv(m, z->sock, 0) < 0) {
				zmq_msg_close(m);
				for (int i = 0; i < n && i < NFRAMES - 1; i++)
					zmq_msg_close(&f[i]);
				goto out;
			}
			more = zmq_msg_more(m);
			n++;
		}
		ok = n == NFRAMES && frame_is(&f[VERSION], "1.0") && frame_is(&f[MECH], "CURVE") &&
		     zap_allowed(z, &f[CRED]);
		if (n > REQID) {
			zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
			zmq_send(z->sock, zmq_msg_data(&f[REQID]), zmq_msg_size(&f[REQID]),
				 ZMQ_SNDMORE);
			zmq_send(z->sock, ok ? "200" : "400", 3, ZMQ_SNDMORE);
			zmq_send(z->sock, ok ? "OK" : "client key not authorised", ok ? 2 : 25,
				 ZMQ_SNDMORE);
			zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
			zmq_send(z->sock, "", 0, 0);
		}
		for (int i = 0; i < n && i < NFRAMES; i++)
			zmq_msg_close(&f[i]);
	}
out:
	zmq_close(z->sock);
	return NULL;
}

static int server_curve(struct chan_server *s, char *err, size_t errlen)
{
	uint8_t secret[CURVE_KEY_LEN];
	int one = 1, zero = 0;

	if (curve_available(err, errlen) < 0 || z85_key("DPSEC_CURVE_SECRET", secret, err, errlen))
		return -1;
	if (zap_load_keys(&s->zap, err, errlen) < 0)
		return -1;
	s->zap.sock = zmq_socket(s->ctx, ZMQ_REP);
	if (!s->zap.sock || zmq_setsockopt(s->zap.sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_bind(s->zap.sock, ZAP_ENDPOINT)) {
		snprintf(err, errlen, "ZAP handler: %s", zmq_strerror(errno));
		goto fail;
	}
	if (pthread_create(&s->zap_thread, NULL, zap_main, &s->zap)) {
		snprintf(err, errlen, "ZAP handler thread: %s", strerror(errno));
		goto fail;
	}
	s->zap_running = true;
	if (zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
	    zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, secret, sizeof(secret)) ||
	    zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN))) {
		snprintf(err, errlen, "CurveZMQ setup: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
fail:
	if (s->zap.sock && !s->zap_running)
		zmq_close(s->zap.sock);
	s->zap.sock = NULL;
	return -1;
}

/* ---- server: per-peer output queues ---- */

static int outq_push(struct outq *q, struct outmsg m)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct outmsg *v = malloc(cap * sizeof(*v));

		if (!v)
			return -1;
		for (size_t i = 0; i < q->n; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = cap;
		q->head = 0;
	}
	q->v[(q->head + q->n) % q->cap] = m;
	q->n++;
	return 0;
}

static struct outmsg *outq_front(struct outq *q)
{
	return q->n ? &q->v[q->head] : NULL;
}

static void outq_pop(struct outq *q)
{
	free(q->v[q->head].buf);
	q->head = (q->head + 1) % q->cap;
	q->n--;
}

static struct peer *peer_find(struct chan_server *s, const void *id, size_t idlen, size_t *idx)
{
	for (size_t i = 0; i < s->npeers; i++) {
		struct peer *p = s->peers[i];

		if (p->idlen == idlen && !memcmp(p->id, id, idlen)) {
			if (idx)
				*idx = i;
			return p;
		}
	}
	return NULL;
}

static struct peer *peer_add(struct chan_server *s, const void *id, size_t idlen)
{
	struct peer *p, **v;

	if (s->npeers >= CHAN_PEERS_MAX || idlen > CHAN_ROUTING_ID_MAX)
		return NULL;
	p = calloc(1, sizeof(*p));
	v = realloc(s->peers, (s->npeers + 1) * sizeof(*v));
	if (!p || !v) {
		free(p);
		if (v)
			s->peers = v;
		return NULL;
	}
	s->peers = v;
	memcpy(p->id, id, idlen);
	p->idlen = idlen;
	s->peers[s->npeers++] = p;
	return p;
}

static void peer_drop(struct chan_server *s, size_t idx)
{
	struct peer *p = s->peers[idx];

	while (p->q.n) {
		if (outq_front(&p->q)->event)
			s->events_queued--;
		outq_pop(&p->q);
	}
	free(p->q.v);
	free(p);
	s->peers[idx] = s->peers[--s->npeers];
}

/* 0 sent, 1 would block, -1 peer is gone. */
static int send_frame(struct chan_server *s, const void *id, size_t idlen, const void *buf,
		      size_t len)
{
	if (zmq_send(s->sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return errno == EAGAIN ? 1 : -1;
	/* ROUTER accepted the routing id, so the pipe has room for the body. */
	if (zmq_send(s->sock, buf, len, ZMQ_DONTWAIT) < 0)
		return errno == EAGAIN ? 1 : -1;
	return 0;
}

/* Send every queued frame the peers can take now; keep the rest in order. */
static void flush_peers(struct chan_server *s)
{
	for (size_t i = 0; i < s->npeers;) {
		struct peer *p = s->peers[i];
		struct outmsg *m;
		int rc = 0;

		while ((m = outq_front(&p->q))) {
			rc = send_frame(s, p->id, p->idlen, m->buf, m->len);
			if (rc)
				break;
			if (m->event) {
				s->events_sent++;
				s->events_queued--;
			}
			outq_pop(&p->q);
		}
		if (rc < 0 || (!p->subscribed && !p->q.n)) {
			if (rc < 0 && p->subscribed)
				s->subs_dropped++;
			peer_drop(s, i);
			continue;
		}
		i++;
	}
}

/* Hand @buf (malloc'd, ownership taken) to the client @id, queueing behind its backlog. */
static void deliver(struct chan_server *s, const void *id, size_t idlen, uint8_t *buf, size_t len,
		    bool event)
{
	size_t idx = 0;
	struct peer *p = peer_find(s, id, idlen, &idx);
	int rc;

	if (!p || !p->q.n) {
		rc = send_frame(s, id, idlen, buf, len);
		if (rc == 0) {
			s->events_sent += event;
			free(buf);
			return;
		}
		if (rc < 0) {
			if (p) {
				s->subs_dropped += p->subscribed;
				peer_drop(s, idx);
			}
			free(buf);
			return;
		}
		if (!p)
			p = peer_add(s, id, idlen);
		if (!p) {
			s->replies_dropped++;
			free(buf);
			return;
		}
		peer_find(s, id, idlen, &idx);
	}
	/* A subscriber this far behind is not reading; dropping it beats losing events silently. */
	if (p->q.n >= CHAN_EVENT_QUEUE_MAX || outq_push(&p->q, (struct outmsg){buf, len, event})) {
		free(buf);
		s->subs_dropped += p->subscribed;
		peer_drop(s, idx);
		return;
	}
	s->events_queued += event;
}

static void wipe_keys(Dpsec__Msg *msg)
{
	Dpsec__SaAdd *sa;

	if (msg->kind_case != DPSEC__MSG__KIND_REQUEST ||
	    msg->request->body_case != DPSEC__REQUEST__BODY_SA_ADD)
		return;
	sa = msg->request->sa_add;
	if (sa->has_enc_key)
		explicit_bzero(sa->enc_key.data, sa->enc_key.len);
	if (sa->has_auth_key)
		explicit_bzero(sa->auth_key.data, sa->auth_key.len);
}

static uint8_t *pack_msg(const Dpsec__Msg *m, size_t *len)
{
	uint8_t *buf;

	*len = dpsec__msg__get_packed_size(m);
	buf = malloc(*len ? *len : 1);
	if (buf)
		dpsec__msg__pack(m, buf);
	return buf;
}

static void event_to_peer(struct chan_server *s, struct peer *p, const Dpsec__Event *ev)
{
	Dpsec__Event e = *ev;
	Dpsec__Msg m = DPSEC__MSG__INIT;
	uint8_t *buf;
	size_t len;

	e.seq = ++p->seq;
	e.epoch = s->epoch;
	m.kind_case = DPSEC__MSG__KIND_EVENT;
	m.event = &e;
	buf = pack_msg(&m, &len);
	if (!buf) {
		/* The seq is spent either way: dropping the peer makes the loss visible. */
		size_t idx;

		if (peer_find(s, p->id, p->idlen, &idx)) {
			s->subs_dropped++;
			peer_drop(s, idx);
		}
		return;
	}
	deliver(s, p->id, p->idlen, buf, len, true);
}

size_t chan_server_event(struct chan_server *s, const Dpsec__Event *ev)
{
	/* Walk a snapshot of identities: delivering may drop peers. */
	size_t n = s->npeers, sent = 0;
	struct peer **snap = n ? malloc(n * sizeof(*snap)) : NULL;

	if (n && !snap) {
		for (size_t i = s->npeers; i-- > 0;) {
			if (s->peers[i]->subscribed) {
				s->subs_dropped++;
				peer_drop(s, i);
			}
		}
		return 0;
	}
	if (n)
		memcpy(snap, s->peers, n * sizeof(*snap));
	for (size_t i = 0; i < n; i++) {
		bool alive = false;

		for (size_t j = 0; j < s->npeers; j++)
			alive |= s->peers[j] == snap[i];
		if (alive && snap[i]->subscribed) {
			event_to_peer(s, snap[i], ev);
			sent++;
		}
	}
	free(snap);
	return sent;
}

/* ---- server: requests ---- */

static void send_reply(struct chan_server *s, const zmq_msg_t *idm, Dpsec__Reply *rep)
{
	Dpsec__Msg m = DPSEC__MSG__INIT;
	uint8_t *buf;
	size_t len;

	m.kind_case = DPSEC__MSG__KIND_REPLY;
	m.reply = rep;
	len = dpsec__msg__get_packed_size(&m);
	if (len > CHAN_REPLY_MAX) {
		Dpsec__Reply *big = malloc(sizeof(*big));

		if (!big)
			goto out;
		dpsec__reply__init(big);
		big->id = rep->id;
		big->epoch = rep->epoch;
		chan_reply_error(big, DPSEC__CODE__ETOOBIG,
				 "reply of %zu bytes exceeds the channel maximum of %d bytes", len,
				 CHAN_REPLY_MAX);
		protobuf_c_message_free_unpacked(&rep->base, NULL);
		rep = big;
		m.reply = rep;
	}
	buf = pack_msg(&m, &len);
	if (buf)
		deliver(s, zmq_msg_data((zmq_msg_t *)idm), zmq_msg_size((zmq_msg_t *)idm), buf, len,
			false);
	else
		s->replies_dropped++;
out:
	protobuf_c_message_free_unpacked(&rep->base, NULL);
}

static const char *kind_name(Dpsec__Msg__KindCase k)
{
	switch (k) {
	case DPSEC__MSG__KIND_REPLY:
		return "a reply";
	case DPSEC__MSG__KIND_EVENT:
		return "an event";
	default:
		return "nothing";
	}
}

/* Returns true when the new subscriber must get its Hello after the reply. */
static bool subscribe(struct chan_server *s, const zmq_msg_t *idm, Dpsec__Reply *rep)
{
	const void *id = zmq_msg_data((zmq_msg_t *)idm);
	size_t idlen = zmq_msg_size((zmq_msg_t *)idm);
	struct peer *p = peer_find(s, id, idlen, NULL);

	if (p && p->subscribed)
		return false;
	if (!p)
		p = peer_add(s, id, idlen);
	if (!p) {
		chan_reply_error(rep, DPSEC__CODE__ENOSPC, "too many clients (limit %d)",
				 CHAN_PEERS_MAX);
		return false;
	}
	p->subscribed = true;
	p->seq = 0;
	return true;
}

static void hello(struct chan_server *s, const zmq_msg_t *idm)
{
	Dpsec__Event ev = DPSEC__EVENT__INIT;
	Dpsec__Hello h = DPSEC__HELLO__INIT;
	struct peer *p =
	    peer_find(s, zmq_msg_data((zmq_msg_t *)idm), zmq_msg_size((zmq_msg_t *)idm), NULL);

	if (!p)
		return; /* gone while its reply was sent */
	ev.body_case = DPSEC__EVENT__BODY_HELLO;
	ev.hello = &h;
	event_to_peer(s, p, &ev);
}

/* Serve one incoming message. -1 nothing pending, 0 bad frame, 1 request handled. */
static int serve_one(struct chan_server *s, chan_handler_fn fn, void *ctx)
{
	zmq_msg_t idm, body, extra;
	Dpsec__Msg *msg = NULL;
	Dpsec__Reply *rep;
	unsigned nframes = 1;
	bool more, new_sub = false;
	size_t len;
	int ret = 0;

	zmq_msg_init(&idm);
	if (zmq_msg_recv(&idm, s->sock, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&idm);
		return -1;
	}
	if (!zmq_msg_more(&idm)) { /* ROUTER always adds a body; nothing to answer */
		zmq_msg_close(&idm);
		s->bad_frames++;
		return 0;
	}
	zmq_msg_init(&body);
	if (zmq_msg_recv(&body, s->sock, 0) < 0) {
		zmq_msg_close(&body);
		zmq_msg_close(&idm);
		s->bad_frames++;
		return 0;
	}
	more = zmq_msg_more(&body);
	while (more) {
		zmq_msg_init(&extra);
		if (zmq_msg_recv(&extra, s->sock, 0) < 0) {
			zmq_msg_close(&extra);
			break;
		}
		more = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
		nframes++;
	}

	rep = malloc(sizeof(*rep));
	if (!rep)
		goto out;
	dpsec__reply__init(rep);
	rep->epoch = s->epoch;
	len = zmq_msg_size(&body);
	if (len > CHAN_MSG_MAX) {
		chan_reply_error(rep, DPSEC__CODE__ETOOBIG,
				 "frame of %zu bytes exceeds the channel maximum of %d bytes", len,
				 CHAN_MSG_MAX);
	} else if (nframes > 1) {
		chan_reply_error(rep, DPSEC__CODE__EBADMSG,
				 "message of %u frames; expected one dpsec.Msg frame", nframes);
	} else if (!(msg = dpsec__msg__unpack(NULL, len, zmq_msg_data(&body)))) {
		chan_reply_error(rep, DPSEC__CODE__EBADMSG,
				 "frame of %zu bytes does not decode as dpsec.Msg", len);
	} else if (msg->kind_case != DPSEC__MSG__KIND_REQUEST) {
		chan_reply_error(rep, DPSEC__CODE__EBADMSG, "dpsec.Msg carries %s, not a request",
				 kind_name(msg->kind_case));
	} else if (msg->request->body_case == DPSEC__REQUEST__BODY__NOT_SET) {
		rep->id = msg->request->id;
		chan_reply_error(rep, DPSEC__CODE__EBADMSG,
				 "request %llu has no body (unknown request type?)",
				 (unsigned long long)msg->request->id);
	} else {
		rep->id = msg->request->id;
		if (msg->request->body_case == DPSEC__REQUEST__BODY_SUBSCRIBE)
			new_sub = subscribe(s, &idm, rep);
		else
			fn(msg->request, rep, ctx);
		/* Whatever the handler did, the reply answers this request in this epoch. */
		rep->id = msg->request->id;
		rep->epoch = s->epoch;
		s->requests++;
		ret = 1;
	}
	if (!ret)
		s->bad_frames++;
	send_reply(s, &idm, rep);
	if (new_sub)
		hello(s, &idm);
out:
	if (msg) {
		wipe_keys(msg);
		dpsec__msg__free_unpacked(msg, NULL);
	}
	/* The frame may carry SA keys: leave none behind in freed memory. */
	explicit_bzero(zmq_msg_data(&body), zmq_msg_size(&body));
	zmq_msg_close(&body);
	zmq_msg_close(&idm);
	return ret;
}

int chan_server_process(struct chan_server *s, chan_handler_fn fn, void *ctx)
{
	int handled = 0;

	for (;;) {
		int events = 0, rc;
		size_t optlen = sizeof(events);

		flush_peers(s);
		/* ZMQ_FD is edge-triggered: read until EAGAIN or it never fires again. */
		while ((rc = serve_one(s, fn, ctx)) >= 0)
			handled += rc;
		flush_peers(s);
		if (zmq_getsockopt(s->sock, ZMQ_EVENTS, &events, &optlen) || !(events & ZMQ_POLLIN))
			break;
	}
	return handled;
}

struct chan_server *chan_server_open(const char *endpoint, uint64_t epoch, char *err, size_t errlen)
{
	struct chan_server *s;
	enum ep_kind kind;
	int one = 1, zero = 0, hwm = CHAN_HWM;
	int64_t maxsz = CHAN_RAW_MAX;

	if (endpoint_kind(endpoint, &kind, err, errlen) < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->epoch = epoch;
	s->ctx = zmq_ctx_new();
	s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
	if (!s->sock) {
		snprintf(err, errlen, "zmq: %s", zmq_strerror(errno));
		goto fail;
	}
	if (zmq_setsockopt(s->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) ||
	    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &maxsz, sizeof(maxsz))) {
		snprintf(err, errlen, "zmq_setsockopt: %s", zmq_strerror(errno));
		goto fail;
	}
	if (kind == EP_TCP && server_curve(s, err, errlen) < 0)
		goto fail;
	if (kind == EP_IPC && ipc_prepare(endpoint + 6, err, errlen) < 0)
		goto fail;
	if (zmq_bind(s->sock, endpoint) < 0) {
		snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(errno));
		goto fail;
	}
	if (kind == EP_IPC && ipc_secure(endpoint + 6, err, errlen) < 0)
		goto fail;
	return s;
fail:
	chan_server_close(s);
	return NULL;
}

int chan_server_fd(const struct chan_server *s)
{
	int fd = -1;
	size_t len = sizeof(fd);

	if (zmq_getsockopt(s->sock, ZMQ_FD, &fd, &len))
		return -1;
	return fd;
}

void chan_server_counters(const struct chan_server *s, uint64_t *requests, uint64_t *bad_frames,
			  uint64_t *events_sent, uint64_t *events_queued)
{
	if (requests)
		*requests = s->requests;
	if (bad_frames)
		*bad_frames = s->bad_frames;
	if (events_sent)
		*events_sent = s->events_sent;
	if (events_queued)
		*events_queued = s->events_queued;
}

void chan_server_close(struct chan_server *s)
{
	if (!s)
		return;
	while (s->npeers)
		peer_drop(s, s->npeers - 1);
	free(s->peers);
	if (s->sock)
		zmq_close(s->sock);
	if (s->ctx) {
		/* Shutdown wakes the ZAP thread with ETERM so it closes its socket. */
		zmq_ctx_shutdown(s->ctx);
		if (s->zap_running)
			pthread_join(s->zap_thread, NULL);
		zmq_ctx_term(s->ctx);
	}
	free(s->zap.keys);
	free(s);
}

/* ---- client ---- */

static int client_curve(struct chan_client *c, char *err, size_t errlen)
{
	uint8_t server[CURVE_KEY_LEN], pub[CURVE_KEY_LEN], sec[CURVE_KEY_LEN];

	if (curve_available(err, errlen) < 0 ||
	    z85_key("DPSEC_CURVE_SERVERKEY", server, err, errlen) < 0 ||
	    z85_key("DPSEC_CURVE_PUBLIC", pub, err, errlen) < 0 ||
	    z85_key("DPSEC_CURVE_SECRET", sec, err, errlen) < 0)
		return -1;
	if (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, sizeof(server)) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, sizeof(pub)) ||
	    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sec, sizeof(sec))) {
		snprintf(err, errlen, "CurveZMQ setup: %s", zmq_strerror(errno));
		return -1;
	}
	return 0;
}

struct chan_client *chan_client_open(const char *endpoint, char *err, size_t errlen)
{
	struct chan_client *c;
	enum ep_kind kind;
	int zero = 0, hwm = CHAN_HWM;
	int64_t maxsz = CHAN_REPLY_MAX;

	if (endpoint_kind(endpoint, &kind, err, errlen) < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
	if (!c->sock) {
		snprintf(err, errlen, "zmq: %s", zmq_strerror(errno));
		goto fail;
	}
	if (zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(c->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxsz, sizeof(maxsz))) {
		snprintf(err, errlen, "zmq_setsockopt: %s", zmq_strerror(errno));
		goto fail;
	}
	if (kind == EP_TCP && client_curve(c, err, errlen) < 0)
		goto fail;
	if (zmq_connect(c->sock, endpoint) < 0) {
		snprintf(err, errlen, "cannot connect %s: %s", endpoint, zmq_strerror(errno));
		goto fail;
	}
	return c;
fail:
	chan_client_close(c);
	return NULL;
}

static void client_queue_event(struct chan_client *c, Dpsec__Event *ev)
{
	struct evnode *n;

	/* Bounded like the server's queue; a gap in seq shows the loss. */
	if (c->nev >= CHAN_EVENT_QUEUE_MAX || !(n = malloc(sizeof(*n)))) {
		c->ev_dropped++;
		chan_event_free(ev);
		return;
	}
	n->ev = ev;
	n->next = NULL;
	if (c->tail)
		c->tail->next = n;
	else
		c->head = n;
	c->tail = n;
	c->nev++;
}

static Dpsec__Event *client_pop_event(struct chan_client *c)
{
	struct evnode *n = c->head;
	Dpsec__Event *ev;

	if (!n)
		return NULL;
	c->head = n->next;
	if (!c->head)
		c->tail = NULL;
	c->nev--;
	ev = n->ev;
	free(n);
	return ev;
}

/*
 * Read what has arrived. Events are queued; a reply is returned in *rep when
 * @want matches its id (or @any is set), others are stale and dropped.
 * Returns 1 when a wanted reply was found, 0 when nothing more is pending.
 */
static int client_drain(struct chan_client *c, uint64_t want, bool any, Dpsec__Reply **rep)
{
	for (;;) {
		zmq_msg_t m;
		Dpsec__Msg *msg;

		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return 0;
		}
		msg = zmq_msg_size(&m) <= CHAN_REPLY_MAX
			  ? dpsec__msg__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m))
			  : NULL;
		zmq_msg_close(&m);
		if (!msg)
			continue; /* a server never sends garbage; ignore it */
		if (msg->kind_case == DPSEC__MSG__KIND_EVENT) {
			client_queue_event(c, msg->event);
			msg->event = NULL;
			msg->kind_case = DPSEC__MSG__KIND__NOT_SET;
		} else if (msg->kind_case == DPSEC__MSG__KIND_REPLY && rep &&
			   (any || msg->reply->id == want)) {
			*rep = msg->reply;
			msg->reply = NULL;
			msg->kind_case = DPSEC__MSG__KIND__NOT_SET;
			dpsec__msg__free_unpacked(msg, NULL);
			return 1;
		}
		dpsec__msg__free_unpacked(msg, NULL);
	}
}

static int client_wait_in(struct chan_client *c, int64_t deadline)
{
	zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};

	return zmq_poll(&it, 1, left_ms(deadline));
}

static int transact(struct chan_client *c, const void *buf, size_t len, uint64_t id, bool any,
		    Dpsec__Reply **rep, int timeout_ms, char *err, size_t errlen)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	zmq_pollitem_t out = {.socket = c->sock, .events = ZMQ_POLLOUT};

	*rep = NULL;
	if (len > CHAN_MSG_MAX && !any) {
		snprintf(err, errlen,
			 "request of %zu bytes exceeds the channel maximum of %d bytes", len,
			 CHAN_MSG_MAX);
		return -1;
	}
	/* Take what is already here so old replies cannot be mistaken for ours. */
	client_drain(c, 0, false, NULL);
	while (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0) {
		if (errno != EAGAIN) {
			snprintf(err, errlen, "send: %s", zmq_strerror(errno));
			return -1;
		}
		if (zmq_poll(&out, 1, left_ms(deadline)) <= 0 && left_ms(deadline) == 0) {
			snprintf(err, errlen, "no reply within %d ms (could not send)", timeout_ms);
			return -1;
		}
	}
	for (;;) {
		if (client_drain(c, id, any, rep))
			return 0;
		if (left_ms(deadline) == 0)
			break;
		if (client_wait_in(c, deadline) < 0 && errno != EINTR) {
			snprintf(err, errlen, "poll: %s", zmq_strerror(errno));
			return -1;
		}
	}
	snprintf(err, errlen, "no reply within %d ms", timeout_ms);
	return -1;
}

int chan_client_call(struct chan_client *c, Dpsec__Request *req, Dpsec__Reply **rep, int timeout_ms,
		     char *err, size_t errlen)
{
	Dpsec__Msg m = DPSEC__MSG__INIT;
	uint8_t *buf;
	size_t len;
	int rc;

	req->id = ++c->next_id;
	m.kind_case = DPSEC__MSG__KIND_REQUEST;
	m.request = req;
	buf = pack_msg(&m, &len);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = transact(c, buf, len, req->id, false, rep, timeout_ms, err, errlen);
	/* The frame may carry SA keys. */
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

int chan_client_call_raw(struct chan_client *c, const void *buf, size_t len, Dpsec__Reply **rep,
			 int timeout_ms, char *err, size_t errlen)
{
	/* Raw frames carry no id we assigned: the first reply is theirs. */
	return transact(c, buf, len, 0, true, rep, timeout_ms, err, errlen);
}

int chan_client_subscribe(struct chan_client *c, int timeout_ms, char *err, size_t errlen)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Subscribe sub = DPSEC__SUBSCRIBE__INIT;
	Dpsec__Reply *rep;
	int rc = 0;

	req.body_case = DPSEC__REQUEST__BODY_SUBSCRIBE;
	req.subscribe = &sub;
	if (chan_client_call(c, &req, &rep, timeout_ms, err, errlen) < 0)
		return -1;
	if (rep->code != DPSEC__CODE__OK) {
		snprintf(err, errlen, "subscribe refused: %s: %s", chan_code_name(rep->code),
			 rep->reason ? rep->reason : "");
		rc = -1;
	}
	chan_reply_free(rep);
	return rc;
}

int chan_client_event(struct chan_client *c, Dpsec__Event **ev, int timeout_ms)
{
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		client_drain(c, 0, false, NULL);
		*ev = client_pop_event(c);
		if (*ev)
			return 1;
		if (left_ms(deadline) == 0)
			return 0;
		if (client_wait_in(c, deadline) < 0)
			return errno == EINTR ? 0 : -1; /* let the caller see its signal flags */
	}
}

int chan_client_fd(const struct chan_client *c)
{
	int fd = -1;
	size_t len = sizeof(fd);

	if (zmq_getsockopt(c->sock, ZMQ_FD, &fd, &len))
		return -1;
	return fd;
}

void chan_client_close(struct chan_client *c)
{
	Dpsec__Event *ev;

	if (!c)
		return;
	while ((ev = client_pop_event(c)))
		chan_event_free(ev);
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c);
}

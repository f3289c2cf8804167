/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Channel tests: every dpsec.proto message survives pack/unpack with every
 * field set, and a real ROUTER server in a thread answers each request once,
 * rejects bad frames without calling the handler, and delivers events in order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "channel.h"

#define EPOCH		    0x1122334455667788ull
#define TIMEOUT_MS	    5000
#define N_EVENTS	    10000
#define N_MESSAGES_IN_PROTO 35 /* message types declared in dpsec.proto */
#define MAX_DESC	    64
#define MAX_FIELDS	    32

/* ---------------- generic message fill / compare ---------------- */

static unsigned seed;

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4; /* 32-bit ints, float, bool, enum */
	}
}

static void *fill_new(const ProtobufCMessageDescriptor *d, unsigned variant);

static void fill_value(const ProtobufCFieldDescriptor *f, void *p, unsigned variant)
{
	unsigned v = ++seed;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)p = -(int32_t)v;
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)p = 0x80000000u + v;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *)p = -(int64_t)v * 1000000007;
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)p = 0x8000000000000000ull + v;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)p = (float)v + 0.5f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = v + 0.25;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = 1;
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *e = f->descriptor;

		/* Prefer a non-default value so a lost field cannot pass as 0. */
		*(int *)p = e->values[e->n_values > 1 ? 1 + v % (e->n_values - 1) : 0].value;
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		assert_true(asprintf((char **)p, "str-%u-\"\\", v) > 0);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;

		b->len = v % 2 ? 4 : 16;
		b->data = malloc(b->len);
		assert_non_null(b->data);
		for (size_t i = 0; i < b->len; i++)
			b->data[i] = (uint8_t)(v + i);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		*(void **)p = fill_new(f->descriptor, variant);
		break;
	}
}

static bool has_flag(const ProtobufCFieldDescriptor *f)
{
	return f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
	       f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* Index of @f among the members of its oneof, and the oneof's size. */
static unsigned oneof_pos(const ProtobufCMessageDescriptor *d, unsigned fi, unsigned *size)
{
	unsigned pos = 0;

	*size = 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
		    d->fields[i].quantifier_offset != d->fields[fi].quantifier_offset)
			continue;
		if (i < fi)
			pos++;
		(*size)++;
	}
	return pos;
}

/* Every field set; in each oneof, member (variant % size). */
static void *fill_new(const ProtobufCMessageDescriptor *d, unsigned variant)
{
	uint8_t *m = malloc(d->sizeof_message);

	assert_non_null(m);
	d->message_init((ProtobufCMessage *)m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		void *p = m + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t es = elem_size(f->type);
			uint8_t *arr = calloc(2, es);

			assert_non_null(arr);
			for (int k = 0; k < 2; k++)
				fill_value(f, arr + k * es, variant);
			*(size_t *)(m + f->quantifier_offset) = 2;
			*(void **)p = arr;
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			unsigned size, pos = oneof_pos(d, i, &size);

			if (pos != variant % size)
				continue;
			*(uint32_t *)(m + f->quantifier_offset) = f->id;
		} else if (has_flag(f)) {
			*(protobuf_c_boolean *)(m + f->quantifier_offset) = 1;
		}
		fill_value(f, p, variant);
	}
	return m;
}

static void cmp_msg(const ProtobufCMessage *a, const ProtobufCMessage *b);

static void cmp_value(const ProtobufCFieldDescriptor *f, const void *a, const void *b,
		      const char *msgname)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		if (strcmp(*(char *const *)a, *(char *const *)b))
			fail_msg("%s.%s: string differs", msgname, f->name);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *x = a, *y = b;

		if (x->len != y->len || memcmp(x->data, y->data, x->len))
			fail_msg("%s.%s: bytes differ", msgname, f->name);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		cmp_msg(*(ProtobufCMessage *const *)a, *(ProtobufCMessage *const *)b);
		break;
	default:
		if (memcmp(a, b, elem_size(f->type)))
			fail_msg("%s.%s: value differs", msgname, f->name);
	}
}

static void cmp_msg(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	const ProtobufCMessageDescriptor *d = a->descriptor;
	const uint8_t *ma = (const uint8_t *)a, *mb = (const uint8_t *)b;

	assert_ptr_equal(a->descriptor, b->descriptor);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *pa = ma + f->offset, *pb = mb + f->offset;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t na = *(const size_t *)(ma + f->quantifier_offset);
			size_t nb = *(const size_t *)(mb + f->quantifier_offset);
			size_t es = elem_size(f->type);

			if (na != nb)
				fail_msg("%s.%s: %zu vs %zu elements", d->name, f->name, na, nb);
			for (size_t k = 0; k < na; k++)
				cmp_value(f, *(uint8_t *const *)pa + k * es,
					  *(uint8_t *const *)pb + k * es, d->name);
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t ca = *(const uint32_t *)(ma + f->quantifier_offset);
			uint32_t cb = *(const uint32_t *)(mb + f->quantifier_offset);

			if (ca != cb)
				fail_msg("%s.%s: oneof case %u vs %u", d->name, f->name, ca, cb);
			if (ca != f->id)
				continue;
		} else if (has_flag(f)) {
			protobuf_c_boolean ha =
			    *(const protobuf_c_boolean *)(ma + f->quantifier_offset);
			protobuf_c_boolean hb =
			    *(const protobuf_c_boolean *)(mb + f->quantifier_offset);

			if (ha != hb)
				fail_msg("%s.%s: presence differs", d->name, f->name);
			if (!ha)
				continue;
		} else if (f->type == PROTOBUF_C_TYPE_STRING ||
			   f->type == PROTOBUF_C_TYPE_MESSAGE) {
			bool na = !*(void *const *)pa, nb = !*(void *const *)pb;

			if (na != nb)
				fail_msg("%s.%s: presence differs", d->name, f->name);
			if (na)
				continue;
		}
		cmp_value(f, pa, pb, d->name);
	}
}

/* Was field @i present in @m? (for coverage: a field the fill forgot fails the test) */
static bool field_present(const ProtobufCMessage *m, unsigned i)
{
	const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
	const uint8_t *p = (const uint8_t *)m;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(p + f->quantifier_offset) > 0;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(p + f->quantifier_offset) == f->id;
	if (has_flag(f))
		return *(const protobuf_c_boolean *)(p + f->quantifier_offset);
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(p + f->offset) != NULL;
	return true;
}

static size_t collect(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **all,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (all[i] == d)
			return n;
	assert_true(n < MAX_DESC);
	all[n++] = d;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
			n = collect(d->fields[i].descriptor, all, n);
	return n;
}

static void test_roundtrip_every_message(void **state)
{
	const ProtobufCMessageDescriptor *all[MAX_DESC];
	size_t n = collect(&dpsec__msg__descriptor, all, 0);

	(void)state;
	/* Every message type hangs off Msg; a new one that does not is a proto bug. */
	assert_int_equal(n, N_MESSAGES_IN_PROTO);
	for (size_t k = 0; k < n; k++) {
		const ProtobufCMessageDescriptor *d = all[k];
		bool seen[MAX_FIELDS] = {false};

		assert_true(d->n_fields <= MAX_FIELDS);
		for (unsigned variant = 0; variant < 16; variant++) {
			ProtobufCMessage *m = fill_new(d, variant), *u;
			size_t len = protobuf_c_message_get_packed_size(m);
			uint8_t *buf = malloc(len + 1), *buf2 = malloc(len + 1);

			assert_non_null(buf);
			assert_non_null(buf2);
			assert_int_equal(protobuf_c_message_pack(m, buf), len);
			assert_true(protobuf_c_message_check(m));
			u = protobuf_c_message_unpack(d, NULL, len, buf);
			if (!u)
				fail_msg("%s does not unpack", d->name);
			cmp_msg(m, u);
			/* Re-packing what we decoded gives the same bytes. */
			assert_int_equal(protobuf_c_message_pack(u, buf2), len);
			assert_memory_equal(buf, buf2, len);
			for (unsigned i = 0; i < d->n_fields; i++)
				seen[i] |= field_present(u, i);
			protobuf_c_message_free_unpacked(u, NULL);
			protobuf_c_message_free_unpacked(m, NULL);
			free(buf);
			free(buf2);
		}
		for (unsigned i = 0; i < d->n_fields; i++)
			if (!seen[i])
				fail_msg("%s.%s never survived a round trip", d->name,
					 d->fields[i].name);
	}
}

static void test_code_names(void **state)
{
	(void)state;
	assert_string_equal(chan_code_name(DPSEC__CODE__OK), "OK");
	assert_string_equal(chan_code_name(DPSEC__CODE__EINVAL), "EINVAL");
	assert_string_equal(chan_code_name(DPSEC__CODE__ETOOBIG), "ETOOBIG");
	assert_string_equal(chan_code_name(DPSEC__CODE__EBADMSG), "EBADMSG");
	assert_string_equal(chan_code_name((Dpsec__Code)999), "UNKNOWN");
}

/* ---------------- a real server in a thread ---------------- */

struct srv {
	struct chan_server *s;
	pthread_t th;
	atomic_bool stop;
	atomic_int calls;
	atomic_int last_body;
	char dir[64];
	char path[128];
	char ep[160];
};

static void add_counter(Dpsec__Stats *st, const char *name, uint64_t v)
{
	Dpsec__Counter *c = malloc(sizeof(*c));

	assert_non_null(c);
	dpsec__counter__init(c);
	c->name = strdup(name);
	c->value = v;
	st->global = realloc(st->global, (st->n_global + 1) * sizeof(*st->global));
	st->global[st->n_global++] = c;
}

static void emit_events(struct srv *sv, unsigned n)
{
	Dpsec__Event ev = DPSEC__EVENT__INIT;
	Dpsec__Mapping mp = DPSEC__MAPPING__INIT;
	Dpsec__SaId sa = DPSEC__SA_ID__INIT;
	uint8_t addr[4] = {192, 0, 2, 9};

	sa.dst.data = addr;
	sa.dst.len = 4;
	sa.proto = 50;
	mp.sa = &sa;
	mp.new_addr = sa.dst;
	ev.body_case = DPSEC__EVENT__BODY_MAPPING;
	ev.mapping = &mp;
	for (unsigned i = 0; i < n; i++) {
		sa.spi = i;
		mp.new_port = i;
		chan_server_event(sv->s, &ev);
	}
}

/* Runs on the server thread, like the dataplane's apply path. */
static void handler(const Dpsec__Request *req, Dpsec__Reply *rep, void *ctx)
{
	struct srv *sv = ctx;
	uint64_t r, b, es, eq;

	atomic_fetch_add(&sv->calls, 1);
	atomic_store(&sv->last_body, (int)req->body_case);
	switch (req->body_case) {
	case DPSEC__REQUEST__BODY_SHOW:
		/* Leave malloc'd sub-messages for the server to free (ASan checks). */
		rep->stats = malloc(sizeof(*rep->stats));
		dpsec__stats__init(rep->stats);
		chan_server_counters(sv->s, &r, &b, &es, &eq);
		add_counter(rep->stats, "requests", r);
		add_counter(rep->stats, "bad_frames", b);
		add_counter(rep->stats, "events_sent", es);
		add_counter(rep->stats, "events_queued", eq);
		break;
	case DPSEC__REQUEST__BODY_SA_DEL:
		chan_reply_error(rep, DPSEC__CODE__ENOENT, "no SA with spi 0x%08x",
				 req->sa_del->spi);
		break;
	case DPSEC__REQUEST__BODY_FLUSH:
		emit_events(sv, N_EVENTS);
		/* Report the backlog right after queueing: proves the server queue was used. */
		chan_server_counters(sv->s, NULL, NULL, NULL, &eq);
		rep->has_spi = 1;
		rep->spi = (uint32_t)eq;
		break;
	case DPSEC__REQUEST__BODY_SPI_ALLOC:
		emit_events(sv, req->spi_alloc->min);
		break;
	default:
		break;
	}
}

static void *serve(void *arg)
{
	struct srv *sv = arg;
	struct pollfd pfd = {.fd = chan_server_fd(sv->s), .events = POLLIN};

	while (!atomic_load(&sv->stop)) {
		/* The timeout also retries queued events if an fd edge were missed. */
		poll(&pfd, 1, 10);
		chan_server_process(sv->s, handler, sv);
	}
	return NULL;
}

static int srv_setup(void **state)
{
	struct srv *sv = calloc(1, sizeof(*sv));
	char err[256];

	assert_non_null(sv);
	snprintf(sv->dir, sizeof(sv->dir), "/tmp/dpsec-chan-XXXXXX");
	assert_non_null(mkdtemp(sv->dir));
	/* A missing parent directory is created by the server. */
	snprintf(sv->path, sizeof(sv->path), "%s/run/ctl.sock", sv->dir);
	snprintf(sv->ep, sizeof(sv->ep), "ipc://%s", sv->path);
	sv->s = chan_server_open(sv->ep, EPOCH, err, sizeof(err));
	if (!sv->s)
		fail_msg("chan_server_open: %s", err);
	assert_int_equal(pthread_create(&sv->th, NULL, serve, sv), 0);
	*state = sv;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv *sv = *state;
	char sub[160];

	atomic_store(&sv->stop, true);
	pthread_join(sv->th, NULL);
	chan_server_close(sv->s);
	unlink(sv->path);
	snprintf(sub, sizeof(sub), "%s/run", sv->dir);
	rmdir(sub);
	rmdir(sv->dir);
	free(sv);
	return 0;
}

static struct chan_client *client(struct srv *sv)
{
	char err[256];
	struct chan_client *c = chan_client_open(sv->ep, err, sizeof(err));

	if (!c)
		fail_msg("chan_client_open: %s", err);
	return c;
}

static Dpsec__Reply *call(struct chan_client *c, Dpsec__Request *req)
{
	Dpsec__Reply *rep = NULL;
	char err[256];

	if (chan_client_call(c, req, &rep, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("chan_client_call: %s", err);
	assert_int_equal(rep->id, req->id);
	assert_int_equal(rep->epoch, EPOCH);
	return rep;
}

static uint64_t stat_of(struct chan_client *c, const char *name)
{
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Show show = DPSEC__SHOW__INIT;
	Dpsec__Reply *rep;
	uint64_t v = UINT64_MAX;

	show.what = DPSEC__SHOW__WHAT__STATS;
	req.body_case = DPSEC__REQUEST__BODY_SHOW;
	req.show = &show;
	rep = call(c, &req);
	assert_non_null(rep->stats);
	for (size_t i = 0; i < rep->stats->n_global; i++)
		if (!strcmp(rep->stats->global[i]->name, name))
			v = rep->stats->global[i]->value;
	chan_reply_free(rep);
	assert_int_not_equal(v, UINT64_MAX);
	return v;
}

static void test_request_reply(void **state)
{
	struct srv *sv = *state;
	struct chan_client *c = client(sv);
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__PortSet port = DPSEC__PORT_SET__INIT;
	Dpsec__SaId sa = DPSEC__SA_ID__INIT;
	uint8_t dst[4] = {192, 0, 2, 2};
	Dpsec__Reply *rep;
	uint64_t first;

	port.port_id = 1;
	port.name = "outside";
	req.body_case = DPSEC__REQUEST__BODY_PORT;
	req.port = &port;
	rep = call(c, &req);
	first = req.id;
	assert_int_equal(rep->code, DPSEC__CODE__OK);
	assert_int_equal(atomic_load(&sv->calls), 1);
	assert_int_equal(atomic_load(&sv->last_body), DPSEC__REQUEST__BODY_PORT);
	chan_reply_free(rep);

	sa.dst.data = dst;
	sa.dst.len = 4;
	sa.proto = 50;
	sa.spi = 0x100;
	req.body_case = DPSEC__REQUEST__BODY_SA_DEL;
	req.sa_del = &sa;
	rep = call(c, &req);
	assert_true(req.id > first);
	assert_int_equal(rep->code, DPSEC__CODE__ENOENT);
	assert_string_equal(rep->reason, "no SA with spi 0x00000100");
	assert_int_equal(atomic_load(&sv->calls), 2);
	chan_reply_free(rep);

	assert_int_equal(stat_of(c, "requests"), 2); /* counted before this show ran */
	assert_int_equal(atomic_load(&sv->calls), 3);
	chan_client_close(c);
}

static void expect_error(struct chan_client *c, const void *buf, size_t len, Dpsec__Code code,
			 uint64_t id, const char *reason_part)
{
	Dpsec__Reply *rep = NULL;
	char err[256];

	if (chan_client_call_raw(c, buf, len, &rep, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("chan_client_call_raw: %s", err);
	assert_int_equal(rep->code, code);
	assert_int_equal(rep->id, id);
	assert_int_equal(rep->epoch, EPOCH);
	assert_non_null(rep->reason);
	if (!strstr(rep->reason, reason_part))
		fail_msg("reason '%s' lacks '%s'", rep->reason, reason_part);
	chan_reply_free(rep);
}

static void test_bad_frames(void **state)
{
	struct srv *sv = *state;
	struct chan_client *c = client(sv);
	static const uint8_t garbage[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0xff, 0x07};
	Dpsec__Msg m = DPSEC__MSG__INIT;
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Reply notreq = DPSEC__REPLY__INIT;
	uint8_t *big, small[64];
	size_t len;

	expect_error(c, garbage, sizeof(garbage), DPSEC__CODE__EBADMSG, 0,
		     "frame of 12 bytes does not decode as dpsec.Msg");
	big = calloc(1, CHAN_MSG_MAX + 1);
	assert_non_null(big);
	expect_error(c, big, CHAN_MSG_MAX + 1, DPSEC__CODE__ETOOBIG, 0, "exceeds");
	free(big);

	/* A request with no body: decodes, but there is nothing to do. */
	req.id = 77;
	m.kind_case = DPSEC__MSG__KIND_REQUEST;
	m.request = &req;
	len = dpsec__msg__pack(&m, small);
	expect_error(c, small, len, DPSEC__CODE__EBADMSG, 77, "no body");

	/* A client sending a reply is confused, not obeyed. */
	m.kind_case = DPSEC__MSG__KIND_REPLY;
	m.reply = &notreq;
	len = dpsec__msg__pack(&m, small);
	expect_error(c, small, len, DPSEC__CODE__EBADMSG, 0, "not a request");

	/* An empty frame is an empty Msg: no kind. */
	expect_error(c, "", 0, DPSEC__CODE__EBADMSG, 0, "not a request");

	assert_int_equal(atomic_load(&sv->calls), 0);
	assert_int_equal(stat_of(c, "bad_frames"), 5);
	assert_int_equal(stat_of(c, "requests"), 1);
	chan_client_close(c);
}

static void test_multipart_rejected(void **state)
{
	struct srv *sv = *state;
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, tmo = TIMEOUT_MS;
	uint8_t buf[4096];
	Dpsec__Msg *m;
	int n;

	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
	assert_int_equal(zmq_connect(s, sv->ep), 0);
	assert_int_equal(zmq_send(s, "a", 1, ZMQ_SNDMORE), 1);
	assert_int_equal(zmq_send(s, "b", 1, ZMQ_SNDMORE), 1);
	assert_int_equal(zmq_send(s, "c", 1, 0), 1);
	n = zmq_recv(s, buf, sizeof(buf), 0);
	assert_true(n > 0);
	m = dpsec__msg__unpack(NULL, (size_t)n, buf);
	assert_non_null(m);
	assert_int_equal(m->kind_case, DPSEC__MSG__KIND_REPLY);
	assert_int_equal(m->reply->code, DPSEC__CODE__EBADMSG);
	assert_non_null(strstr(m->reply->reason, "3 frames"));
	dpsec__msg__free_unpacked(m, NULL);
	assert_int_equal(atomic_load(&sv->calls), 0);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

static void test_events_in_order(void **state)
{
	struct srv *sv = *state;
	struct chan_client *sub = client(sv), *ctl = client(sv);
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Flush fl = DPSEC__FLUSH__INIT;
	Dpsec__Event *ev;
	Dpsec__Reply *rep;
	char err[256];

	if (chan_client_subscribe(sub, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("subscribe: %s", err);
	assert_int_equal(chan_client_event(sub, &ev, TIMEOUT_MS), 1);
	assert_int_equal(ev->body_case, DPSEC__EVENT__BODY_HELLO);
	assert_int_equal(ev->seq, 1);
	assert_int_equal(ev->epoch, EPOCH);
	chan_event_free(ev);
	/* Subscribing twice is harmless and does not restart the numbering. */
	if (chan_client_subscribe(sub, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("subscribe: %s", err);
	assert_int_equal(atomic_load(&sv->calls), 0); /* the channel handles subscribe */

	req.body_case = DPSEC__REQUEST__BODY_FLUSH;
	req.flush = &fl;
	rep = call(ctl, &req);
	assert_true(rep->has_spi);
	/* More events than ZeroMQ buffers: the rest waited in the server's queue. */
	assert_true(rep->spi > 0);
	chan_reply_free(rep);
	usleep(200 * 1000); /* the subscriber is slow */

	for (unsigned i = 0; i < N_EVENTS; i++) {
		int rc = chan_client_event(sub, &ev, TIMEOUT_MS);

		if (rc != 1)
			fail_msg("event %u of %u missing (rc %d)", i, N_EVENTS, rc);
		assert_int_equal(ev->seq, i + 2);
		assert_int_equal(ev->epoch, EPOCH);
		assert_int_equal(ev->body_case, DPSEC__EVENT__BODY_MAPPING);
		assert_int_equal(ev->mapping->sa->spi, i);
		chan_event_free(ev);
	}
	assert_int_equal(chan_client_event(sub, &ev, 100), 0);
	/* The non-subscriber got no events. */
	assert_int_equal(chan_client_event(ctl, &ev, 0), 0);
	assert_int_equal(stat_of(ctl, "events_sent"), N_EVENTS + 1);
	assert_int_equal(stat_of(ctl, "events_queued"), 0);
	chan_client_close(sub);
	chan_client_close(ctl);
}

/* A subscriber that stops reading is dropped once its queue is full, not fed gaps. */
static void test_stuck_subscriber_dropped(void **state)
{
	struct srv *sv = *state;
	struct chan_client *sub = client(sv), *ctl = client(sv);
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__SpiAlloc sa = DPSEC__SPI_ALLOC__INIT;
	uint8_t dst[4] = {192, 0, 2, 2};
	unsigned total = CHAN_EVENT_QUEUE_MAX + 30000, got = 0;
	Dpsec__Event *ev;
	char err[256];

	if (chan_client_subscribe(sub, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("subscribe: %s", err);
	sa.dst.data = dst;
	sa.dst.len = 4;
	sa.has_min = 1;
	sa.min = total;
	req.body_case = DPSEC__REQUEST__BODY_SPI_ALLOC;
	req.spi_alloc = &sa;
	chan_reply_free(call(ctl, &req));
	/* What it does get is gap-free from the Hello on; then nothing. */
	while (chan_client_event(sub, &ev, 300) == 1) {
		assert_int_equal(ev->seq, got + 1);
		got++;
		chan_event_free(ev);
	}
	assert_true(got > 1);
	assert_true(got < total);
	assert_int_equal(stat_of(ctl, "events_queued"), 0);
	/* Subscribing again starts a fresh, numbered stream. */
	if (chan_client_subscribe(sub, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("subscribe: %s", err);
	assert_int_equal(chan_client_event(sub, &ev, TIMEOUT_MS), 1);
	assert_int_equal(ev->body_case, DPSEC__EVENT__BODY_HELLO);
	assert_int_equal(ev->seq, 1);
	chan_event_free(ev);
	chan_client_close(sub);
	chan_client_close(ctl);
}

static void test_socket_mode(void **state)
{
	struct srv *sv = *state;
	struct stat st;

	assert_int_equal(stat(sv->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
}

static void test_second_server_refused(void **state)
{
	struct srv *sv = *state;
	char err[256] = "";

	assert_null(chan_server_open(sv->ep, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));
}

/* ---------------- without a server thread ---------------- */

static void test_stale_socket_replaced(void **state)
{
	char dir[] = "/tmp/dpsec-chan-XXXXXX", path[96], ep[128], err[256] = "";
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct chan_server *s;
	FILE *f;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	snprintf(ep, sizeof(ep), "ipc://%s", path);
	/* A crashed server leaves its socket file behind. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	s = chan_server_open(ep, 1, err, sizeof(err));
	if (!s)
		fail_msg("stale socket not replaced: %s", err);
	chan_server_close(s);
	unlink(path);

	/* A regular file is somebody's data, never removed. */
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_null(chan_server_open(ep, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	rmdir(dir);
}

static void test_bad_endpoints(void **state)
{
	char err[256] = "";

	(void)state;
	assert_null(chan_server_open("udp://1.2.3.4:5", 1, err, sizeof(err)));
	assert_non_null(strstr(err, "unsupported endpoint"));
	assert_null(chan_client_open("", err, sizeof(err)));
	assert_null(chan_server_open("ipc://", 1, err, sizeof(err)));
	unsetenv("DPSEC_CURVE_SECRET");
	assert_null(chan_server_open("tcp://127.0.0.1:1", 1, err, sizeof(err)));
	assert_non_null(strstr(err, "DPSEC_CURVE_SECRET"));
	unsetenv("DPSEC_CURVE_SERVERKEY");
	assert_null(chan_client_open("tcp://127.0.0.1:1", err, sizeof(err)));
	assert_non_null(strstr(err, "DPSEC_CURVE_SERVERKEY"));
}

static void test_timeout_without_server(void **state)
{
	char err[256] = "";
	struct chan_client *c =
	    chan_client_open("ipc:///tmp/dpsec-chan-none/ctl.sock", err, sizeof(err));
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Subscribe sub = DPSEC__SUBSCRIBE__INIT;
	Dpsec__Reply *rep = (Dpsec__Reply *)&req;

	(void)state;
	assert_non_null(c);
	req.body_case = DPSEC__REQUEST__BODY_SUBSCRIBE;
	req.subscribe = &sub;
	assert_int_equal(chan_client_call(c, &req, &rep, 150, err, sizeof(err)), -1);
	assert_null(rep);
	assert_non_null(strstr(err, "no reply within 150 ms"));
	chan_client_close(c);
}

/* CurveZMQ over tcp: an authorised client is served, an unknown key is not. */
static void test_curve_tcp(void **state)
{
	char spub[41], ssec[41], cpub[41], csec[41], opub[41], osec[41], ep[64], err[256];
	struct srv sv = {0};
	struct chan_client *c;
	Dpsec__Request req = DPSEC__REQUEST__INIT;
	Dpsec__Subscribe sub = DPSEC__SUBSCRIBE__INIT;
	Dpsec__Reply *rep;

	(void)state;
	if (!zmq_has("curve"))
		skip();
	assert_int_equal(zmq_curve_keypair(spub, ssec), 0);
	assert_int_equal(zmq_curve_keypair(cpub, csec), 0);
	assert_int_equal(zmq_curve_keypair(opub, osec), 0);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", 20000 + getpid() % 20000);
	setenv("DPSEC_CURVE_SECRET", ssec, 1);
	unsetenv("DPSEC_CURVE_CLIENTS");
	assert_null(chan_server_open(ep, EPOCH, err, sizeof(err)));
	assert_non_null(strstr(err, "DPSEC_CURVE_CLIENTS"));
	setenv("DPSEC_CURVE_CLIENTS", cpub, 1);
	sv.s = chan_server_open(ep, EPOCH, err, sizeof(err));
	if (!sv.s)
		fail_msg("curve server: %s", err);
	assert_int_equal(pthread_create(&sv.th, NULL, serve, &sv), 0);

	setenv("DPSEC_CURVE_SERVERKEY", spub, 1);
	setenv("DPSEC_CURVE_PUBLIC", cpub, 1);
	setenv("DPSEC_CURVE_SECRET", csec, 1);
	c = chan_client_open(ep, err, sizeof(err));
	if (!c)
		fail_msg("curve client: %s", err);
	req.body_case = DPSEC__REQUEST__BODY_SUBSCRIBE;
	req.subscribe = &sub;
	if (chan_client_call(c, &req, &rep, TIMEOUT_MS, err, sizeof(err)) < 0)
		fail_msg("authorised curve client: %s", err);
	assert_int_equal(rep->code, DPSEC__CODE__OK);
	chan_reply_free(rep);
	chan_client_close(c);

	setenv("DPSEC_CURVE_PUBLIC", opub, 1);
	setenv("DPSEC_CURVE_SECRET", osec, 1);
	c = chan_client_open(ep, err, sizeof(err));
	assert_non_null(c);
	assert_int_equal(chan_client_call(c, &req, &rep, 300, err, sizeof(err)), -1);
	chan_client_close(c);

	atomic_store(&sv.stop, true);
	pthread_join(sv.th, NULL);
	chan_server_close(sv.s);
	unsetenv("DPSEC_CURVE_SECRET");
	unsetenv("DPSEC_CURVE_PUBLIC");
	unsetenv("DPSEC_CURVE_SERVERKEY");
	unsetenv("DPSEC_CURVE_CLIENTS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_every_message),
	    cmocka_unit_test(test_code_names),
	    cmocka_unit_test_setup_teardown(test_request_reply, srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_frames, srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_multipart_rejected, srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_events_in_order, srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_stuck_subscriber_dropped, srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_socket_mode, srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_second_server_refused, srv_setup, srv_teardown),
	    cmocka_unit_test(test_stale_socket_replaced),
	    cmocka_unit_test(test_bad_endpoints),
	    cmocka_unit_test(test_timeout_without_server),
	    cmocka_unit_test(test_curve_tcp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dpsecctl output: aligned tables for `show`, one-line events for `monitor`,
 * and a generic protobuf -> JSON printer for --json. Everything printed came
 * from the channel, so lengths and enum values are checked, never trusted.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"
#include "grammar.h"

#define ADDR_STR       64 /* INET6_ADDRSTRLEN + "/128", rounded up */
#define MAC_LEN	       6
#define TABLE_COLS_MAX 16
#define COL_GAP	       2

/* ---- aligned tables ---- */

struct table {
	unsigned ncols;
	const char *hdr[TABLE_COLS_MAX];
	size_t nrows;
	char **cells; /* nrows * ncols, malloc'd */
};

static void table_init(struct table *t, unsigned ncols, ...)
{
	va_list ap;

	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
	va_start(ap, ncols);
	for (unsigned i = 0; i < ncols; i++)
		t->hdr[i] = va_arg(ap, const char *);
	va_end(ap);
}

/* Add one row of t->ncols strings (copied). */
static void table_row(struct table *t, ...)
{
	char **cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(*cells));
	va_list ap;

	if (!cells)
		return;
	t->cells = cells;
	va_start(ap, t);
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		char *d = strdup(s ? s : "-");

		/* Names come from the dataplane: never let them drive the terminal. */
		for (char *p = d; p && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		cells[t->nrows * t->ncols + i] = d;
	}
	va_end(ap);
	t->nrows++;
}

static void print_cell(FILE *out, const char *s, size_t width, bool last)
{
	if (last)
		fprintf(out, "%s\n", s ? s : "");
	else
		fprintf(out, "%-*s", (int)(width + COL_GAP), s ? s : "");
}

static void table_print(struct table *t, FILE *out)
{
	size_t w[TABLE_COLS_MAX];

	for (unsigned c = 0; c < t->ncols; c++) {
		w[c] = strlen(t->hdr[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t l = s ? strlen(s) : 0;

			if (l > w[c])
				w[c] = l;
		}
	}
	for (unsigned c = 0; c < t->ncols; c++)
		print_cell(out, t->hdr[c], w[c], c + 1 == t->ncols);
	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++)
			print_cell(out, t->cells[r * t->ncols + c], w[c], c + 1 == t->ncols);
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

/* ---- field formatters (each into a caller's buffer) ---- */

static const char *fmt_u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

static const char *fmt_mac(char *buf, size_t len, const ProtobufCBinaryData *m)
{
	if (!m->data || m->len != MAC_LEN) {
		snprintf(buf, len, "-");
		return buf;
	}
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", m->data[0], m->data[1], m->data[2],
		 m->data[3], m->data[4], m->data[5]);
	return buf;
}

static const char *fmt_last_use(char *buf, size_t len, bool has, uint64_t t)
{
	time_t now = time(NULL);

	if (!has || !t)
		snprintf(buf, len, "never");
	else if ((uint64_t)now >= t)
		snprintf(buf, len, "%" PRIu64 "s ago", (uint64_t)now - t);
	else
		snprintf(buf, len, "@%" PRIu64, t);
	return buf;
}

static const char *fmt_proto(char *buf, size_t len, bool has, uint32_t p)
{
	static const struct {
		uint32_t n;
		const char *name;
	} names[] = {{1, "icmp"}, {6, "tcp"}, {17, "udp"}, {50, "esp"}, {51, "ah"}, {58, "icmpv6"}};

	if (!has || !p) {
		snprintf(buf, len, "any");
		return buf;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].n == p) {
			snprintf(buf, len, "%s", names[i].name);
			return buf;
		}
	snprintf(buf, len, "%u", p);
	return buf;
}

static const char *name_or(const char *name, char *buf, size_t len, int v)
{
	if (name)
		return name;
	snprintf(buf, len, "?%d", v);
	return buf;
}

static uint64_t counter(Dpsec__Counter *const *c, size_t n, const char *const *names)
{
	for (const char *const *nm = names; *nm; nm++)
		for (size_t i = 0; i < n; i++)
			if (c[i]->name && !strcmp(c[i]->name, *nm))
				return c[i]->value;
	return 0;
}

/* Drops are split by reason; the table shows their sum. */
static uint64_t drops_sum(Dpsec__Counter *const *c, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		if (c[i]->name && strstr(c[i]->name, "drop"))
			sum += c[i]->value;
	return sum;
}

/* ---- tables ---- */

static void print_ports(Dpsec__PortInfo *const *p, size_t n, FILE *out)
{
	static const char *const rx[] = {"rx", "rx_packets", NULL};
	static const char *const tx[] = {"tx", "tx_packets", NULL};
	static const char *const punted[] = {"punted", "to_tap", "punt", NULL};
	static const char *const from_tap[] = {"from_tap", "tap_rx", NULL};
	struct table t;

	table_init(&t, 11, "id", "name", "tap", "mac", "driver", "link", "rx", "tx", "punted",
		   "from-tap", "drops");
	for (size_t i = 0; i < n; i++) {
		char id[12], mac[24], v[5][24];
		Dpsec__Counter *const *c = p[i]->counters;
		size_t nc = p[i]->n_counters;

		snprintf(id, sizeof(id), "%u", p[i]->port_id);
		table_row(&t, id, p[i]->name, p[i]->tap, fmt_mac(mac, sizeof(mac), &p[i]->mac),
			  p[i]->driver,
			  !p[i]->has_link_up ? "-"
			  : p[i]->link_up    ? "up"
					     : "down",
			  fmt_u64(v[0], 24, counter(c, nc, rx)),
			  fmt_u64(v[1], 24, counter(c, nc, tx)),
			  fmt_u64(v[2], 24, counter(c, nc, punted)),
			  fmt_u64(v[3], 24, counter(c, nc, from_tap)),
			  fmt_u64(v[4], 24, drops_sum(c, nc)));
	}
	table_print(&t, out);
}

static void print_stats(const Dpsec__Stats *st, FILE *out)
{
	struct table t;
	char v[24];

	if (!st) {
		fprintf(out, "(no statistics in reply)\n");
		return;
	}
	table_init(&t, 2, "counter", "value");
	for (size_t i = 0; i < st->n_global; i++)
		table_row(&t, st->global[i]->name, fmt_u64(v, sizeof(v), st->global[i]->value));
	table_print(&t, out);
	if (!st->n_ports)
		return;
	fputc('\n', out);
	table_init(&t, 3, "port", "counter", "value");
	for (size_t i = 0; i < st->n_ports; i++) {
		const Dpsec__PortInfo *p = st->ports[i];

		for (size_t k = 0; k < p->n_counters; k++)
			table_row(&t, p->name, p->counters[k]->name,
				  fmt_u64(v, sizeof(v), p->counters[k]->value));
	}
	table_print(&t, out);
}

static void print_routes(Dpsec__RouteInfo *const *r, size_t n, FILE *out)
{
	struct table t;

	table_init(&t, 4, "dst", "via", "dev", "metric");
	for (size_t i = 0; i < n; i++) {
		char dst[ADDR_STR], via[ADDR_STR], metric[12];

		snprintf(metric, sizeof(metric), "%u", r[i]->metric);
		table_row(&t, gram_prefix_fmt(r[i]->dst, dst, sizeof(dst)),
			  r[i]->has_via ? gram_addr_fmt(&r[i]->via, via, sizeof(via)) : "-",
			  r[i]->dev, r[i]->has_metric ? metric : "-");
	}
	table_print(&t, out);
}

static void print_neighs(Dpsec__NeighInfo *const *nb, size_t n, FILE *out)
{
	struct table t;

	table_init(&t, 4, "addr", "lladdr", "dev", "state");
	for (size_t i = 0; i < n; i++) {
		char a[ADDR_STR], mac[24];

		table_row(&t, gram_addr_fmt(&nb[i]->addr, a, sizeof(a)),
			  nb[i]->has_lladdr ? fmt_mac(mac, sizeof(mac), &nb[i]->lladdr) : "-",
			  nb[i]->dev, nb[i]->state);
	}
	table_print(&t, out);
}

static void print_addrs(Dpsec__AddrInfo *const *a, size_t n, FILE *out)
{
	struct table t;

	table_init(&t, 2, "prefix", "dev");
	for (size_t i = 0; i < n; i++) {
		char p[ADDR_STR];

		table_row(&t, gram_prefix_fmt(a[i]->prefix, p, sizeof(p)), a[i]->dev);
	}
	table_print(&t, out);
}

static const char *fmt_algs(char *buf, size_t len, const Dpsec__SaAdd *sa)
{
	char u1[16], u2[16];

	if (sa->has_aead && sa->aead != DPSEC__AEAD__AEAD_NONE)
		snprintf(buf, len, "aead %s", name_or(gram_aead_name(sa->aead), u1, 16, sa->aead));
	else
		snprintf(buf, len, "enc %s auth %s",
			 sa->has_cipher ? name_or(gram_cipher_name(sa->cipher), u1, 16, sa->cipher)
					: "-",
			 sa->has_integ ? name_or(gram_integ_name(sa->integ), u2, 16, sa->integ)
				       : "-");
	return buf;
}

static void print_sas(Dpsec__SaInfo *const *s, size_t n, FILE *out)
{
	struct table t;

	table_init(&t, 13, "dir", "src", "dst", "spi", "proto", "algorithms", "mode", "encap",
		   "replay", "bytes", "packets", "last-use", "drops");
	for (size_t i = 0; i < n; i++) {
		const Dpsec__SaAdd *sa = s[i]->sa;
		char src[ADDR_STR], dst[ADDR_STR], spi[12], proto[12], algs[80], encap[32];
		char replay[24], bytes[24], pkts[24], last[32], drops[24];

		if (!sa)
			continue;
		snprintf(spi, sizeof(spi), "0x%08x", sa->spi);
		if (sa->encap)
			snprintf(encap, sizeof(encap), "udp %u:%u", sa->encap->sport,
				 sa->encap->dport);
		snprintf(replay, sizeof(replay), "%u%s",
			 sa->has_replay_window ? sa->replay_window : 0,
			 sa->has_esn && sa->esn ? " esn" : "");
		table_row(&t, sa->dir == DPSEC__DIR__DIR_OUT ? "out" : "in",
			  gram_addr_fmt(&sa->src, src, sizeof(src)),
			  gram_addr_fmt(&sa->dst, dst, sizeof(dst)), spi,
			  fmt_proto(proto, sizeof(proto), true, sa->proto),
			  fmt_algs(algs, sizeof(algs), sa),
			  sa->mode == DPSEC__MODE__MODE_TRANSPORT ? "transport" : "tunnel",
			  sa->encap ? encap : "-", replay, fmt_u64(bytes, 24, s[i]->bytes),
			  fmt_u64(pkts, 24, s[i]->packets),
			  fmt_last_use(last, sizeof(last), s[i]->has_last_use, s[i]->last_use),
			  fmt_u64(drops, 24, drops_sum(s[i]->drops, s[i]->n_drops)));
	}
	table_print(&t, out);
}

static const char *fmt_range(char *buf, size_t len, const char *kw, bool has_lo, uint32_t lo,
			     bool has_hi, uint32_t hi)
{
	size_t n = strlen(buf);

	if (!has_lo && !has_hi)
		return buf;
	if (!has_hi || hi == lo)
		snprintf(buf + n, len - n, "%s%s %u", n ? " " : "", kw, lo);
	else
		snprintf(buf + n, len - n, "%s%s %u-%u", n ? " " : "", kw, lo, hi);
	return buf;
}

static void print_policies(Dpsec__PolicyInfo *const *p, size_t n, FILE *out)
{
	struct table t;

	table_init(&t, 10, "dir", "src", "dst", "proto", "ports", "action", "spi", "priority",
		   "last-use", "packets");
	for (size_t i = 0; i < n; i++) {
		const Dpsec__PolicyAdd *pa = p[i]->policy;
		const Dpsec__Selector *sel = pa ? pa->sel : NULL;
		char src[ADDR_STR], dst[ADDR_STR], proto[12], ports[64] = "", act[16], spi[12];
		char prio[12], last[32], pkts[24];

		if (!sel)
			continue;
		fmt_range(ports, sizeof(ports), "sport", sel->has_sport_lo, sel->sport_lo,
			  sel->has_sport_hi, sel->sport_hi);
		fmt_range(ports, sizeof(ports), "dport", sel->has_dport_lo, sel->dport_lo,
			  sel->has_dport_hi, sel->dport_hi);
		snprintf(spi, sizeof(spi), "0x%08x", pa->spi);
		snprintf(prio, sizeof(prio), "%u", pa->priority);
		table_row(&t, pa->dir == DPSEC__DIR__DIR_OUT ? "out" : "in",
			  gram_prefix_fmt(sel->src, src, sizeof(src)),
			  gram_prefix_fmt(sel->dst, dst, sizeof(dst)),
			  fmt_proto(proto, sizeof(proto), sel->has_proto, sel->proto),
			  ports[0] ? ports : "any",
			  name_or(gram_action_name(pa->action), act, sizeof(act), pa->action),
			  pa->has_spi ? spi : "-", pa->has_priority ? prio : "-",
			  fmt_last_use(last, sizeof(last), p[i]->has_last_use, p[i]->last_use),
			  fmt_u64(pkts, sizeof(pkts), p[i]->packets));
	}
	table_print(&t, out);
}

/*
 * Print what a successful reply carries; for `show X` always X's table, even
 * empty, and likewise the SA table for `sa get` and the policy table for
 * `policy get`. `spi alloc` prints the bare SPI so scripts can capture it.
 */
void ctl_print_reply(const Dpsec__Request *req, const Dpsec__Reply *rep, FILE *out)
{
	int what = req->body_case == DPSEC__REQUEST__BODY_SHOW ? (int)req->show->what : -1;

	if (req->body_case == DPSEC__REQUEST__BODY_SA_QUERY)
		what = DPSEC__SHOW__WHAT__SA;
	else if (req->body_case == DPSEC__REQUEST__BODY_POLICY_QUERY)
		what = DPSEC__SHOW__WHAT__POLICY;
	if (req->body_case == DPSEC__REQUEST__BODY_SPI_ALLOC) {
		if (rep->has_spi)
			fprintf(out, "0x%08x\n", rep->spi);
		return;
	}
	if (what == DPSEC__SHOW__WHAT__PORTS || (what < 0 && rep->n_ports))
		print_ports(rep->ports, rep->n_ports, out);
	if (what == DPSEC__SHOW__WHAT__STATS || (what < 0 && rep->stats))
		print_stats(rep->stats, out);
	if (what == DPSEC__SHOW__WHAT__ROUTE || (what < 0 && rep->n_routes))
		print_routes(rep->routes, rep->n_routes, out);
	if (what == DPSEC__SHOW__WHAT__NEIGH || (what < 0 && rep->n_neighs))
		print_neighs(rep->neighs, rep->n_neighs, out);
	if (what == DPSEC__SHOW__WHAT__ADDR || (what < 0 && rep->n_addrs))
		print_addrs(rep->addrs, rep->n_addrs, out);
	if (what == DPSEC__SHOW__WHAT__SA || (what < 0 && rep->n_sas))
		print_sas(rep->sas, rep->n_sas, out);
	if (what == DPSEC__SHOW__WHAT__POLICY || (what < 0 && rep->n_policies))
		print_policies(rep->policies, rep->n_policies, out);
	if (what < 0 && rep->has_spi)
		fprintf(out, "spi 0x%08x\n", rep->spi);
}

/* ---- events, one line each ---- */

static const char *fmt_said(char *buf, size_t len, const Dpsec__SaId *id)
{
	char a[ADDR_STR], p[12];

	if (!id)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "dst %s proto %s spi 0x%08x",
			 gram_addr_fmt(&id->dst, a, sizeof(a)),
			 fmt_proto(p, sizeof(p), true, id->proto), id->spi);
	return buf;
}

void ctl_print_event(const Dpsec__Event *ev, FILE *out)
{
	char a[ADDR_STR], b[ADDR_STR], c[ADDR_STR], d[ADDR_STR], id[128], p[12];

	fprintf(out, "seq %" PRIu64 " ", ev->seq);
	switch (ev->body_case) {
	case DPSEC__EVENT__BODY_HELLO:
		fprintf(out, "hello epoch %" PRIu64 "\n", ev->epoch);
		break;
	case DPSEC__EVENT__BODY_EXPIRE:
		fprintf(out, "expire %s %s\n", ev->expire->hard ? "hard" : "soft",
			fmt_said(id, sizeof(id), ev->expire->sa));
		break;
	case DPSEC__EVENT__BODY_ACQUIRE: {
		const Dpsec__Acquire *q = ev->acquire;

		fprintf(out, "acquire src %s dst %s proto %s policy src %s dst %s\n",
			gram_addr_fmt(&q->src, a, sizeof(a)), gram_addr_fmt(&q->dst, b, sizeof(b)),
			fmt_proto(p, sizeof(p), q->has_proto, q->proto),
			q->sel ? gram_prefix_fmt(q->sel->src, c, sizeof(c)) : "?",
			q->sel ? gram_prefix_fmt(q->sel->dst, d, sizeof(d)) : "?");
		break;
	}
	case DPSEC__EVENT__BODY_LEASE:
		fprintf(out, "lease %s seq-out %" PRIu64 " seq-limit %" PRIu64 "\n",
			fmt_said(id, sizeof(id), ev->lease->sa), ev->lease->seq_out,
			ev->lease->seq_limit);
		break;
	case DPSEC__EVENT__BODY_MAPPING:
		fprintf(out, "mapping %s new-addr %s new-port %u\n",
			fmt_said(id, sizeof(id), ev->mapping->sa),
			gram_addr_fmt(&ev->mapping->new_addr, a, sizeof(a)), ev->mapping->new_port);
		break;
	default:
		fprintf(out, "unknown event\n");
	}
}

/* ---- generic protobuf -> JSON ---- */

static void json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', out);
	while (*p) {
		unsigned n = 0;

		if (*p == '"' || *p == '\\') {
			fprintf(out, "\\%c", *p++);
			continue;
		}
		if (*p < 0x20) {
			fprintf(out, "\\u%04x", *p++);
			continue;
		}
		if (*p < 0x80) {
			fputc(*p++, out);
			continue;
		}
		/* Pass valid UTF-8 through; anything else would make invalid JSON. */
		n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		for (unsigned k = 1; k < n; k++)
			if ((p[k] & 0xc0) != 0x80)
				n = 0;
		if (!n) {
			fputs("\\ufffd", out);
			p++;
			continue;
		}
		fwrite(p, 1, n, out);
		p += n;
	}
	fputc('"', out);
}

static bool is_addr_field(const char *name)
{
	static const char *const names[] = {"addr",	"src",	  "dst",     "via",
					    "new_addr", "sa_dst", "new_src", "new_dst"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

static void json_bytes(FILE *out, const char *field, const ProtobufCBinaryData *b)
{
	char buf[ADDR_STR];

	if (is_addr_field(field) && (b->len == 4 || b->len == 16)) {
		fprintf(out, "\"%s\"", gram_addr_fmt(b, buf, sizeof(buf)));
		return;
	}
	fputc('"', out);
	if ((!strcmp(field, "mac") || !strcmp(field, "lladdr")) && b->len) {
		for (size_t i = 0; i < b->len; i++)
			fprintf(out, i ? ":%02x" : "%02x", b->data[i]);
	} else {
		for (size_t i = 0; i < b->len; i++)
			fprintf(out, "%02x", b->data[i]);
	}
	fputc('"', out);
}

static void json_msg(FILE *out, const ProtobufCMessage *m);

static void json_value(FILE *out, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		fprintf(out, "%.9g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		fprintf(out, "%.17g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", out);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);

		if (v)
			json_string(out, v->name);
		else
			fprintf(out, "%d", *(const int *)p);
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		json_string(out, *(char *const *)p ? *(char *const *)p : "");
		break;
	case PROTOBUF_C_TYPE_BYTES:
		json_bytes(out, f->name, p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		json_msg(out, *(ProtobufCMessage *const *)p);
		break;
	}
}

static size_t json_elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return sizeof(uint32_t);
	}
}

static bool json_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const uint8_t *base = (const uint8_t *)m;

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + f->offset) != NULL;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL)
		return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
	return true;
}

static void json_msg(FILE *out, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const uint8_t *base = (const uint8_t *)m;
	bool first = true;

	fputc('{', out);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = base + f->offset;

		/* Repeated fields are always arrays, so scripts need not test for absence. */
		if (f->label != PROTOBUF_C_LABEL_REPEATED && !json_present(m, f))
			continue;
		fprintf(out, "%s\"%s\":", first ? "" : ",", f->name);
		first = false;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			const uint8_t *arr = *(const uint8_t *const *)p;
			size_t es = json_elem_size(f->type);

			fputc('[', out);
			for (size_t k = 0; k < n; k++) {
				if (k)
					fputc(',', out);
				json_value(out, f, arr + k * es);
			}
			fputc(']', out);
			continue;
		}
		json_value(out, f, p);
	}
	fputc('}', out);
}

void ctl_print_json(const ProtobufCMessage *m, FILE *out)
{
	json_msg(out, m);
	fputc('\n', out);
}

/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>

#include "stats.h"

struct stats_port (*stats_ports)[PORT_MAX];
struct stats_global *stats_workers;
unsigned stats_n_workers;

static const char *const drop_names[STATS_DROP_MAX] = {
#define X(e, n) [STATS_DROP_##e] = "drop_" n,
    STATS_DROP_REASONS(X)
#undef X
};

int stats_init(unsigned n_workers)
{
	stats_ports =
	    rte_zmalloc("dpsec_stats_ports", sizeof(*stats_ports) * n_workers, RTE_CACHE_LINE_SIZE);
	stats_workers = rte_zmalloc("dpsec_stats_workers", sizeof(*stats_workers) * n_workers,
				    RTE_CACHE_LINE_SIZE);
	if (stats_ports == NULL || stats_workers == NULL)
		return -1;
	stats_n_workers = n_workers;
	return 0;
}

void stats_port_sum(uint16_t port, struct stats_port *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned w = 0; w < stats_n_workers; w++) {
		const struct stats_port *s = &stats_ports[w][port];
		out->rx += s->rx;
		out->tx += s->tx;
		out->punted += s->punted;
		out->from_tap += s->from_tap;
		for (int d = 0; d < STATS_DROP_MAX; d++)
			out->drop[d] += s->drop[d];
	}
}

void stats_counter_add(Dpsec__Counter ***cnt, size_t *n, const char *name, uint64_t value)
{
	Dpsec__Counter **a = realloc(*cnt, sizeof(*a) * (*n + 1));
	Dpsec__Counter *c = malloc(sizeof(*c));
	char *s = strdup(name);

	if (a == NULL || c == NULL || s == NULL) {
		/* Out of memory on the control thread: show fewer counters, never crash. */
		free(c);
		free(s);
		if (a != NULL)
			*cnt = a;
		return;
	}
	dpsec__counter__init(c);
	c->name = s;
	c->value = value;
	a[(*n)++] = c;
	*cnt = a;
}

void stats_port_counters(uint16_t port, Dpsec__Counter ***cnt, size_t *n)
{
	struct stats_port s;

	stats_port_sum(port, &s);
	stats_counter_add(cnt, n, "rx", s.rx);
	stats_counter_add(cnt, n, "tx", s.tx);
	stats_counter_add(cnt, n, "punted", s.punted);
	stats_counter_add(cnt, n, "from_tap", s.from_tap);
	for (int d = 0; d < STATS_DROP_MAX; d++)
		stats_counter_add(cnt, n, drop_names[d], s.drop[d]);
}

/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Unit tests for esp_group_of() (dataplane/esp.h), the index that sorts a
 * burst's packets into one group per SA. A wrong answer would encrypt a packet
 * with another SA's keys, so: SAs whose addresses hash alike, a burst's worth
 * of them in one probe chain that wraps around the table, and random bursts
 * checked against a linear scan. The index never dereferences an SA, so the
 * addresses here are made up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "esp.h"

static const struct sa *fake_sa(uintptr_t line)
{
	return (const struct sa *)(line * 64);
}

/* @n made-up SAs that all hash to slot @slot. */
static void colliding(const struct sa **out, unsigned n, uint32_t slot)
{
	unsigned k = 0;

	for (uintptr_t line = 1; k < n; line++)
		if (esp_group_slot(fake_sa(line)) == slot)
			out[k++] = fake_sa(line);
}

static void test_colliding_sas_get_their_own_groups(void **state)
{
	const struct sa *sa[ESP_JOBS_MAX];
	struct esp_group_index x;
	uint16_t ng = 0;

	(void)state;
	/* the last slot: the chain wraps around to slot 0 and on */
	colliding(sa, ESP_JOBS_MAX, ESP_GROUP_SLOTS - 1);
	esp_group_index_init(&x);
	for (unsigned i = 0; i < ESP_JOBS_MAX; i++) {
		assert_int_equal(esp_group_of(&x, sa[i], ng), ng);
		ng++;
	}
	/* every SA again, in another order: its own group, nothing new */
	for (unsigned i = ESP_JOBS_MAX; i-- > 0;)
		assert_int_equal(esp_group_of(&x, sa[i], ng), i);
	for (unsigned i = 0; i < ESP_JOBS_MAX; i += 7)
		assert_int_equal(esp_group_of(&x, sa[i], ng), i);
}

static void test_init_forgets_the_last_burst(void **state)
{
	const struct sa *sa[4];
	struct esp_group_index x;

	(void)state;
	colliding(sa, 4, 3);
	esp_group_index_init(&x);
	assert_int_equal(esp_group_of(&x, sa[0], 0), 0);
	assert_int_equal(esp_group_of(&x, sa[1], 1), 1);
	esp_group_index_init(&x);
	assert_int_equal(esp_group_of(&x, sa[1], 0), 0);
	assert_int_equal(esp_group_of(&x, sa[2], 1), 1);
	assert_int_equal(esp_group_of(&x, sa[0], 2), 2);
	assert_int_equal(esp_group_of(&x, sa[1], 3), 0);
}

/* Bursts of random SAs from a pool (repeats included), against a linear scan. */
static void test_random_bursts_match_a_scan(void **state)
{
	const struct sa *pool[200], *groups[ESP_JOBS_MAX];
	struct esp_group_index x;

	(void)state;
	srand(5);
	for (unsigned i = 0; i < 200; i++)
		pool[i] = fake_sa(1000 + (uintptr_t)(rand() % 100000));
	for (unsigned burst = 0; burst < 2000; burst++) {
		unsigned n = 1 + (unsigned)rand() % 200;
		uint16_t ng = 0;

		esp_group_index_init(&x);
		for (unsigned p = 0; p < n; p++) {
			const struct sa *sa = pool[(unsigned)rand() % (1 + burst % 200)];
			uint16_t want = 0, got;

			while (want < ng && groups[want] != sa)
				want++;
			if (want == ng && ng == ESP_JOBS_MAX)
				break; /* a burst never has more SAs than this */
			got = esp_group_of(&x, sa, ng);
			assert_int_equal(got, want);
			if (got == ng)
				groups[ng++] = sa;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_colliding_sas_get_their_own_groups),
	    cmocka_unit_test(test_init_forgets_the_last_burst),
	    cmocka_unit_test(test_random_bursts_match_a_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

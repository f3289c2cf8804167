/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Load-to-use latency of this machine's memory hierarchy, for the benchmark's
 * account of what bounds the 10k-SA cases: a chain of dependent loads through
 * a buffer of each size, one per cache line in a random order (no hardware
 * prefetcher can follow it), on transparent huge pages where the kernel gives
 * them (as the dataplane's tables sit on 2 MB pages). Prints one line per size:
 * "<KiB> <TSC cycles per load>".
 *
 *     memlat [-c CPU] KiB...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <x86intrin.h>

#define LINE  64
#define LOADS (4u << 20)

/* xorshift64*: any fixed seed; the order only has to defeat the prefetchers */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static int chase(size_t bytes, double *cycles)
{
	size_t n = bytes / LINE, *order;
	uint64_t seed = 0x9e3779b97f4a7c15ull, t0, t1;
	void **p;
	char *buf;

	if (n < 2)
		return -EINVAL;
	buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	order = malloc(n * sizeof(*order));
	if (buf == MAP_FAILED || order == NULL) {
		free(order);
		if (buf != MAP_FAILED)
			munmap(buf, bytes);
		return -ENOMEM;
	}
	madvise(buf, bytes, MADV_HUGEPAGE); /* best effort: 4 KiB pages add TLB misses */
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = next_rand(&seed) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (size_t i = 0; i < n; i++)
		*(void **)(buf + order[i] * LINE) = buf + order[(i + 1) % n] * LINE;
	p = (void **)(buf + order[0] * LINE);
	for (size_t i = 0; i < 2 * n; i++) /* warm: the caches hold what fits */
		p = *p;
	/* rdtsc is no compiler barrier: pin the chain between the two reads */
	__asm__ volatile("" : "+r"(p)::"memory");
	t0 = __rdtsc();
	__asm__ volatile("" : "+r"(p)::"memory");
	for (unsigned i = 0; i < LOADS; i++)
		p = *p;
	__asm__ volatile("" : "+r"(p)::"memory");
	t1 = __rdtsc();
	*cycles = (double)(t1 - t0) / LOADS;
	free(order);
	munmap(buf, bytes);
	return 0;
}

int main(int argc, char **argv)
{
	int i = 1;

	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		cpu_set_t set;
		char *end;
		long cpu = strtol(argv[2], &end, 10);

		if (*end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE) {
			fprintf(stderr, "memlat: bad CPU '%s'\n", argv[2]);
			return 2;
		}
		CPU_ZERO(&set);
		CPU_SET((int)cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) {
			fprintf(stderr, "memlat: CPU %ld: %s\n", cpu, strerror(errno));
			return 1;
		}
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: memlat [-c CPU] KiB...\n");
		return 2;
	}
	for (; i < argc; i++) {
		char *end;
		unsigned long kib = strtoul(argv[i], &end, 10);
		double cyc;
		int rc;

		if (*end != '\0' || kib == 0 || kib > (16ul << 20)) {
			fprintf(stderr, "memlat: bad size '%s' (KiB, 1..16777216)\n", argv[i]);
			return 2;
		}
		rc = chase((size_t)kib << 10, &cyc);
		if (rc != 0) {
			fprintf(stderr, "memlat: %lu KiB: %s\n", kib, strerror(-rc));
			return 1;
		}
		printf("%lu %.1f\n", kib, cyc);
		fflush(stdout);
	}
	return 0;
}

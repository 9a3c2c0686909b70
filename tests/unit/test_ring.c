/*
 * test_ring.c: the ring of a session's output (worker-ring.c) against a
 * plain copy of everything added: pieces of every size up to past the
 * ring's own, each offset kept read back, wrapping included.
 */
#include "stubs.h"

#define SIZE	64

static void
test_against_copy(void)
{
	struct ring	 r;
	uint8_t		 all[4096], got[SIZE];
	size_t		 total = 0, n, k;
	uint64_t	 off, start;

	ring_init(&r, SIZE);
	CHECK(ring_start(&r) == 0 && r.end == 0);
	for (n = 1; total + n <= sizeof all && n <= SIZE + 3; n++) {
		for (k = 0; k < n; k++)
			all[total + k] = (uint8_t)(total + k * 7);
		ring_add(&r, all + total, n);
		total += n;
		start = total > SIZE ? total - SIZE : 0;
		CHECKF(r.end == total && ring_start(&r) == start,
		    "after %zu bytes: end %llu, start %llu", total,
		    (unsigned long long)r.end,
		    (unsigned long long)ring_start(&r));
		for (off = start; off < total; off++) {
			k = (size_t)(total - off);
			ring_copy(&r, off, got, k);
			CHECKF(memcmp(got, all + off, k) == 0, "offset %llu of "
			    "%zu differs", (unsigned long long)off, total);
		}
	}
	ring_free(&r);
}

int
main(void)
{
	test_against_copy();
	return (unit_done("test_ring"));
}

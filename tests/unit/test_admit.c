/*
 * test_admit.c: admission control (server-admit.c): the bound in all,
 * an address's share once every slot is taken (and whose slot a
 * newcomer takes), Retry-After from the queue, the slots given back.
 */
#include "stubs.h"

int
main(void)
{
	const char	*why, *evict;
	int		 ra, last, first = 0, i, n = 0;

	ev_base = event_base_new();
	serve_opts.max_handshakes = 4;
	serve_opts.max_handshakes_addr = 2;
	serve_opts.handshake_rate = 10;

	/* While slots are free, one address may take past its share. */
	for (i = 0; i < 3; i++)
		CHECK(server_admit_enter("10.0.0.1", &why, &ra, &evict) == 0);
	CHECK(server_admit_enter("10.0.0.2", &why, &ra, &evict) == 0);
	CHECK(server_admit_busy() == 4);
	/* All taken: that address is over its share and waits. */
	CHECK(server_admit_enter("10.0.0.1", &why, &ra, &evict) == -1);
	CHECK(why != NULL && strstr(why, "address") != NULL);
	CHECK(evict == NULL && ra >= 1);
	/* One under its share takes a slot of the one furthest over. */
	CHECK(server_admit_enter("10.0.0.9", &why, &ra, &evict) == 1);
	CHECK(why == NULL && evict != NULL && strcmp(evict, "10.0.0.1") == 0);
	server_admit_leave("10.0.0.1", 0);	/* the caller closed it */
	CHECK(server_admit_busy() == 4);
	/* No one is over its share now: anyone waits, later and later. */
	CHECK(server_admit_enter("::1", &why, &ra, &evict) == -1);
	CHECK(why != NULL && strcmp(why, "too many handshakes") == 0);
	CHECK(evict == NULL);
	last = ra;
	for (i = 0; i < 40; i++) {
		CHECK(server_admit_enter("10.0.0.8", &why, &ra, &evict) == -1);
		CHECKF(ra >= last, "refusal %d: %d after %d", i, ra, last);
		if (i == 0)
			first = ra;
		if (ra > last)
			n++;
		last = ra;
	}
	/* 4 in progress and 41 told to come back, at 10 a second. */
	CHECKF(first <= 2 && last >= 4, "first %d, last %d", first, last);
	CHECK(n >= 3);
	CHECK(last <= SERVER_RETRY_AFTER_MAX);

	server_admit_leave("10.0.0.1", 1);
	CHECK(server_admit_enter("10.0.0.1", &why, &ra, &evict) == 0);
	server_admit_leave("10.0.0.1", 1);
	server_admit_leave("10.0.0.1", 0);
	server_admit_leave("10.0.0.2", 1);
	server_admit_leave("10.0.0.9", 1);
	CHECK(server_admit_busy() == 0);
	CHECK(server_admit_rate() >= SERVER_ADMIT_MIN_RATE);
	return (unit_done("test_admit"));
}

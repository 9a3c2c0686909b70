/*
 * test_link.c: how a worker's links follow the addresses a controller
 * name resolves to (wlink_plan in worker-link.c): a link keeps its
 * address while the name has it, a link that is down takes over an
 * address that appeared (a controller that moved keeps its channels),
 * a registered link keeps its address even when the name lost it, and
 * what is left over gets a new link.
 */
#include "stubs.h"

#define MAXN	8

/* Run wlink_plan over have (text, up pairs) and got. */
static void
plan(const char **have, const int *up, size_t nhave, const char **got,
    size_t ngot, int *assign, int *fresh)
{
	struct wlink_addr	h[MAXN];
	size_t			i;

	for (i = 0; i < nhave; i++) {
		snprintf(h[i].text, sizeof h[i].text, "%s", have[i]);
		h[i].up = up[i];
	}
	wlink_plan(h, nhave, got, ngot, assign, fresh);
}

static void
test_same_addresses_keep_their_links(void)
{
	const char	*have[] = { "10.0.0.2", "10.0.0.1" };
	const char	*got[] = { "10.0.0.1", "10.0.0.2" };
	int		 up[] = { 1, 0 }, assign[2], fresh[2];

	plan(have, up, 2, got, 2, assign, fresh);
	CHECK(assign[0] == 1 && assign[1] == 0);
	CHECK(fresh[0] == 0 && fresh[1] == 0);
}

static void
test_new_address_gets_a_new_link(void)
{
	const char	*have[] = { "10.0.0.1" };
	const char	*got[] = { "10.0.0.1", "10.0.0.3" };
	int		 up[] = { 1 }, assign[1], fresh[2];

	plan(have, up, 1, got, 2, assign, fresh);
	CHECK(assign[0] == 0);
	CHECK(fresh[0] == 0 && fresh[1] == 1);
}

static void
test_link_that_is_down_follows_a_moved_controller(void)
{
	/* .2 was replaced by .5; the link to .2 is down, the one to .1 up */
	const char	*have[] = { "10.0.0.1", "10.0.0.2" };
	const char	*got[] = { "10.0.0.1", "10.0.0.5" };
	int		 up[] = { 1, 0 }, assign[2], fresh[2];

	plan(have, up, 2, got, 2, assign, fresh);
	CHECK(assign[0] == 0 && assign[1] == 1);
	CHECK(fresh[0] == 0 && fresh[1] == 0);
}

static void
test_registered_link_keeps_an_address_the_name_lost(void)
{
	const char	*have[] = { "10.0.0.2" };
	const char	*got[] = { "10.0.0.7" };
	int		 up[] = { 1 }, assign[1], fresh[1];

	plan(have, up, 1, got, 1, assign, fresh);
	CHECK(assign[0] == -1);
	CHECK(fresh[0] == 1);
}

static void
test_first_link_without_address_takes_the_first(void)
{
	const char	*have[] = { "" };
	const char	*got[] = { "127.0.0.1", "127.0.0.2" };
	int		 up[] = { 0 }, assign[1], fresh[2];

	plan(have, up, 1, got, 2, assign, fresh);
	CHECK(assign[0] == 0);
	CHECK(fresh[0] == 0 && fresh[1] == 1);
}

static void
test_name_with_no_address_leaves_links_unassigned(void)
{
	const char	*have[] = { "10.0.0.1", "10.0.0.2" };
	int		 up[] = { 0, 1 }, assign[2], fresh[1];

	plan(have, up, 2, NULL, 0, assign, fresh);
	CHECK(assign[0] == -1 && assign[1] == -1);
}

int
main(void)
{
	test_same_addresses_keep_their_links();
	test_new_address_gets_a_new_link();
	test_link_that_is_down_follows_a_moved_controller();
	test_registered_link_keeps_an_address_the_name_lost();
	test_first_link_without_address_takes_the_first();
	test_name_with_no_address_leaves_links_unassigned();
	return (unit_done("test_link"));
}

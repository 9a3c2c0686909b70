/*
 * stubs.h: what every unit test includes. The tests link with every object
 * of the sanitizer build but sandd.o, so the globals main() would own are
 * defined here; plus a tiny CHECK() that prints one line per failed check.
 */
#ifndef UNIT_STUBS_H
#define UNIT_STUBS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

struct event_base	*ev_base;
struct serve_options	 serve_opts;
struct worker_options	 worker_opts;

static int	unit_checks;
static int	unit_failures;

/* Count a check; print file:line and the condition when it is false. */
#define CHECK(cond) do {						\
	unit_checks++;							\
	if (!(cond)) {							\
		unit_failures++;					\
		printf("%s:%d: check failed: %s\n", __FILE__, __LINE__,	\
		    #cond);						\
	}								\
} while (0)

/* Like CHECK, with a printf-style note saying which case failed. */
#define CHECKF(cond, ...) do {						\
	unit_checks++;							\
	if (!(cond)) {							\
		unit_failures++;					\
		printf("%s:%d: check failed: %s: ", __FILE__, __LINE__,	\
		    #cond);						\
		printf(__VA_ARGS__);					\
		printf("\n");						\
	}								\
} while (0)

/* A heap copy of exactly len bytes, so ASan sees any read past the end. */
static inline void *
unit_copy(const void *p, size_t len)
{
	void	*q = malloc(len == 0 ? 1 : len);

	if (q == NULL)
		abort();
	if (len > 0)
		memcpy(q, p, len);
	return (q);
}

/* Print the summary line; the exit status of the test. */
static inline int
unit_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, unit_checks,
	    unit_failures);
	return (unit_failures == 0 ? 0 : 1);
}

#endif

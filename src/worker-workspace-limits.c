/*
 * worker-workspace-limits.c: the limits a workspace.create asks for,
 * checked and held to the worker's ceilings. Pure functions of the
 * request and the ceilings (unit test: test_limits), so that the
 * worker's own checks, not a controller's, decide what a workspace may
 * take; worker-workspace.c applies them.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/*
 * A limit of msg that must be a whole number from min to max, into *v
 * (left as it is when absent or null). -1 with *cause.
 */
static int
ws_limit_int(json_t *msg, const char *name, json_int_t min, json_int_t max,
    json_int_t *v, char **cause)
{
	json_t	*j = json_object_get(msg, name);

	if (j == NULL || json_is_null(j))
		return (0);
	if (!json_is_integer(j) || json_integer_value(j) < min ||
	    json_integer_value(j) > max) {
		xasprintf(cause, "field '%s' must be a whole number from %lld "
		    "to %lld", name, (long long)min, (long long)max);
		return (-1);
	}
	*v = json_integer_value(j);
	return (0);
}

/* The "cpu" of msg into *cpu: a finite number of cores above 0. */
static int
ws_limit_cpu(json_t *msg, double *cpu, char **cause)
{
	json_t	*j = json_object_get(msg, "cpu");
	double	 d;

	if (j == NULL || json_is_null(j))
		return (0);
	d = json_number_value(j);
	if (!json_is_number(j) || !isfinite(d) || d <= 0 || d > WS_MAX_CPU) {
		xasprintf(cause, "field 'cpu' must be a number of cores above "
		    "0, up to %d", WS_MAX_CPU);
		return (-1);
	}
	*cpu = d;
	return (0);
}

/*
 * The limits a workspace.create (msg) asks for, into *l: each checked
 * (a value past its range, negative or not a number: *code "bad_request"),
 * then held to the ceilings ceil of worker id (past one: "limit"); what
 * is not asked for gets its ceiling. Pure: the worker's own checks, so
 * that no controller can lift them. -1 with *code and *cause.
 */
int
workspace_limits_parse(json_t *msg, const struct ws_limits *ceil,
    const char *id, struct ws_limits *l, const char **code, char **cause)
{
	json_int_t	mem = 0, pids = 0, disk = 0;

	memset(l, 0, sizeof *l);
	*code = "bad_request";
	if (ws_limit_int(msg, "memory", WS_MIN_MEMORY, FIELD_MAX_BYTES, &mem,
	    cause) == -1 || ws_limit_int(msg, "pids", 1, WS_MAX_PIDS, &pids,
	    cause) == -1 || ws_limit_cpu(msg, &l->cpu, cause) == -1 ||
	    ws_limit_int(msg, "disk", WS_MIN_DISK, FIELD_MAX_BYTES, &disk,
	    cause) == -1)
		return (-1);
	l->memory = (uint64_t)mem;
	l->pids = (int)pids;
	l->disk = (uint64_t)disk;
	*code = "limit";
	if (ceil->memory > 0 && l->memory > ceil->memory) {
		xasprintf(cause, "memory %llu is over the ceiling of worker %s "
		    "(%llu)", (unsigned long long)l->memory, id,
		    (unsigned long long)ceil->memory);
		return (-1);
	}
	if (ceil->pids > 0 && l->pids > ceil->pids) {
		xasprintf(cause, "pids %d is over the ceiling of worker %s "
		    "(%d)", l->pids, id, ceil->pids);
		return (-1);
	}
	if (ceil->cpu > 0 && l->cpu > ceil->cpu) {
		xasprintf(cause, "cpu %g is over the ceiling of worker %s (%g)",
		    l->cpu, id, ceil->cpu);
		return (-1);
	}
	if (ceil->disk > 0 && l->disk > ceil->disk) {
		xasprintf(cause, "disk %llu is over the ceiling of worker %s "
		    "(%llu)", (unsigned long long)l->disk, id,
		    (unsigned long long)ceil->disk);
		return (-1);
	}
	workspace_limits_clamp(l, ceil, NULL);
	if (l->disk == 0)
		l->disk = ceil->disk;
	return (0);
}

static void	 workspace_limits_say(char **, const char *, ...)
		     __attribute__((format(printf, 2, 3)));

/* Add "name value" in fmt to the list *s (", " between, allocated). */
static void
workspace_limits_say(char **s, const char *fmt, ...)
{
	va_list	 ap;
	char	*item, *t;

	va_start(ap, fmt);
	xvasprintf(&item, fmt, ap);
	va_end(ap);
	xasprintf(&t, "%s%s%s", *s != NULL ? *s : "", *s != NULL ? ", " : "",
	    item);
	free(item);
	free(*s);
	*s = t;
}

/*
 * Hold l to the ceilings ceil: a limit over its ceiling, or none where
 * there is a ceiling, becomes the ceiling; but not the disk, an image
 * of its size already. Returns how many changed;
 * with what, *what says which, as they were (allocated, NULL if none).
 */
int
workspace_limits_clamp(struct ws_limits *l, const struct ws_limits *ceil,
    char **what)
{
	char	*s = NULL;
	int	 n = 0;

	if (ceil->memory > 0 && (l->memory == 0 || l->memory > ceil->memory)) {
		workspace_limits_say(&s, "memory %llu",
		    (unsigned long long)l->memory);
		l->memory = ceil->memory;
		n++;
	}
	if (ceil->pids > 0 && (l->pids <= 0 || l->pids > ceil->pids)) {
		workspace_limits_say(&s, "pids %d", l->pids);
		l->pids = ceil->pids;
		n++;
	}
	if (ceil->cpu > 0 && (!(l->cpu > 0) || l->cpu > ceil->cpu)) {
		workspace_limits_say(&s, "cpu %g", l->cpu);
		l->cpu = ceil->cpu;
		n++;
	}
	if (what != NULL)
		*what = s;
	else
		free(s);
	return (n);
}

/*
 * The memory, pids and cpu limits saved in a workspace's meta.json m,
 * into *l, each on its own: one that is not a sound number is none and
 * leaves the others (*cause says the last such, allocated, else NULL).
 */
void
workspace_limits_saved(json_t *m, struct ws_limits *l, char **cause)
{
	json_int_t	mem = 0, pids = 0;
	char		*why = NULL;

	memset(l, 0, sizeof *l);
	*cause = NULL;
	if (ws_limit_int(m, "memory", WS_MIN_MEMORY, FIELD_MAX_BYTES, &mem,
	    &why) == -1) {
		mem = 0;
		free(*cause);
		*cause = why;
		why = NULL;
	}
	if (ws_limit_int(m, "pids", 1, WS_MAX_PIDS, &pids, &why) == -1) {
		pids = 0;
		free(*cause);
		*cause = why;
		why = NULL;
	}
	if (ws_limit_cpu(m, &l->cpu, &why) == -1) {
		l->cpu = 0;
		free(*cause);
		*cause = why;
	}
	l->memory = (uint64_t)mem;
	l->pids = (int)pids;
}

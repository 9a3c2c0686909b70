/*
 * control-limit.c: limits per peer on the control socket, and what they
 * count.
 *
 * --rate N[/s|/m][,burst=B]: a token bucket per peer uid for the
 * requests that start work (the ops flagged so in control-cmd.c's
 * table); it fills at N a second (or a minute) up to B (default: N, at
 * least 1), and a request that finds it below one token gets
 * rate_limited with retry_after, the seconds until one is there. It
 * applies to every uid, root included. --max-inflight bounds the
 * requests of one connection still without their final reply (limit).
 *
 * The per-uid counters behind sandd_requests_total{uid,op} are kept
 * here too: one row per (uid, op), so at most the uids that ever
 * connected times the ops of the table.
 */
#include <sys/types.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* The bucket of one uid, and its request counts by op. */
struct limit_uid {
	long			 uid;
	double			 tokens;
	double			 when;		/* of the last refill */
	json_t			*ops;		/* op name -> count */
	TAILQ_ENTRY(limit_uid)	 entry;
};
static TAILQ_HEAD(, limit_uid) limit_uids = TAILQ_HEAD_INITIALIZER(limit_uids);

static double	 limit_rate;	/* tokens a second; 0: no --rate */
static double	 limit_burst;

/*
 * Parse --rate: N[/s|/m][,burst=B]. -1 with *cause when it is not one.
 */
int
control_limit_parse_rate(const char *s, char **cause)
{
	char	*end;
	double	 n, per = 1, burst;

	errno = 0;
	n = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(n) || n <= 0 || n > 1e6)
		goto bad;
	if (strncmp(end, "/s", 2) == 0)
		end += 2;
	else if (strncmp(end, "/m", 2) == 0) {
		per = 60;
		end += 2;
	}
	burst = n < 1 ? 1 : floor(n);
	if (strncmp(end, ",burst=", 7) == 0) {
		burst = strtod(end + 7, &end);
		if (!isfinite(burst) || burst < 1 ||
		    burst > 1e6 || burst != floor(burst))
			goto bad;
	}
	if (*end != '\0')
		goto bad;
	limit_rate = n / per;
	limit_burst = burst;
	return (0);
bad:
	xasprintf(cause, "bad --rate '%s' (want N[/s|/m][,burst=B], N above "
	    "0, B a whole number from 1)", s);
	return (-1);
}

/* The row of uid, made on first use. */
static struct limit_uid *
limit_uid_get(long uid)
{
	struct limit_uid	*u;

	TAILQ_FOREACH(u, &limit_uids, entry)
		if (u->uid == uid)
			return (u);
	u = xcalloc(1, sizeof *u);
	u->uid = uid;
	u->tokens = limit_burst;
	u->when = util_now();
	u->ops = json_object();
	TAILQ_INSERT_TAIL(&limit_uids, u, entry);
	return (u);
}

/* Count a request of r's op by its client's uid. */
void
control_limit_count(struct req *r)
{
	struct limit_uid	*u = limit_uid_get(control_client_uid(
				    r->client));
	json_t			*n = json_object_get(u->ops, r->op);

	json_object_set_new(u->ops, r->op, json_integer(n != NULL ?
	    json_integer_value(n) + 1 : 1));
}

/*
 * Take a token for r from its uid's bucket. 0, or -1 after replying
 * rate_limited with retry_after.
 */
int
control_limit_rate(struct req *r)
{
	struct limit_uid	*u;
	double			 now = util_now(), wait;
	json_t			*e;

	if (limit_rate == 0)
		return (0);
	u = limit_uid_get(control_client_uid(r->client));
	u->tokens += (now - u->when) * limit_rate;
	if (u->tokens > limit_burst)
		u->tokens = limit_burst;
	u->when = now;
	if (u->tokens >= 1) {
		u->tokens -= 1;
		return (0);
	}
	/* Rounded up to the millisecond: never come back too early. */
	wait = ceil((1 - u->tokens) / limit_rate * 1000) / 1000;
	server_stats.rate_limited++;
	e = wire_error("rate_limited", 0, "uid %ld is over the rate of "
	    "requests that start work (%s): retry after %.3f s",
	    control_client_uid(r->client), serve_opts.rate, wait);
	json_object_set_new(e, "retry_after", json_real(wait));
	req_error_json(r, e);
	return (-1);
}

/*
 * May r's connection have one more request without its reply? 0, or -1
 * after replying limit.
 */
int
control_limit_inflight(struct req *r)
{
	int	n = req_client_pending(r->client);

	if (serve_opts.max_inflight == 0 || n <= serve_opts.max_inflight)
		return (0);
	req_error(r, "limit", "this connection has %d requests without their "
	    "reply (--max-inflight %d)", n - 1, serve_opts.max_inflight);
	return (-1);
}

/* Add the per-uid request counts to the metrics text in b. */
void
control_limit_metrics(struct evbuffer *b)
{
	struct limit_uid	*u;
	const char		*op;
	json_t			*n;

	evbuffer_add_printf(b, "# HELP sandd_requests_total Control requests "
	    "by peer uid and op.\n# TYPE sandd_requests_total counter\n");
	TAILQ_FOREACH(u, &limit_uids, entry) {
		json_object_foreach(u->ops, op, n)
			evbuffer_add_printf(b,
			    "sandd_requests_total{uid=\"%ld\",op=\"%s\"} "
			    "%lld\n", u->uid, op,
			    (long long)json_integer_value(n));
	}
}

/* Forget every row (at exit). */
void
control_limit_free(void)
{
	struct limit_uid	*u;

	while ((u = TAILQ_FIRST(&limit_uids)) != NULL) {
		TAILQ_REMOVE(&limit_uids, u, entry);
		json_decref(u->ops);
		free(u);
	}
}

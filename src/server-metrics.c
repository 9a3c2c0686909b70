/*
 * server-metrics.c: the controller's counters, rendered both by the
 * stats op and by GET /metrics (Prometheus text format, version 0.0.4)
 * from one table, so the two always show the same things; and who may
 * read /metrics (--metrics-token-file: a bearer token).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "sandd.h"

static unsigned char	 metrics_digest[32];	/* SHA-256 of the token */
static int		 metrics_have_token;

/*
 * The counters of the controller, rendered both by the stats op and by
 * GET /metrics, so the two always show the same things.
 */
static uint64_t	 ctr_workers_connected(void);
static uint64_t	 ctr_workers_known(void);
static uint64_t	 ctr_execs_running(void);
static uint64_t	 ctr_sessions(void);
static uint64_t	 ctr_control_clients(void);
static uint64_t	 ctr_handshakes(void);
static uint64_t	 ctr_handshake_rate(void);

static const struct counter {
	const char	*name;		/* in stats; sandd_NAME in metrics */
	const char	*metric;	/* when the metric's name differs */
	int		 gauge;		/* else a counter */
	const char	*help;
	const uint64_t	*value;		/* a plain count, or: */
	uint64_t	(*get)(void);	/* a count worked out when asked */
} counters[] = {
	{ "workers_connected", NULL, 1, "Workers connected now.", NULL,
	    ctr_workers_connected },
	{ "workers_known", NULL, 1, "Workers connected, away or recently "
	    "gone.", NULL, ctr_workers_known },
	{ "execs_total", NULL, 0, "Commands started.",
	    &server_stats.execs_total, NULL },
	{ "execs_running", NULL, 1, "Commands running now.", NULL,
	    ctr_execs_running },
	{ "sessions", NULL, 1, "Sessions open now.", NULL, ctr_sessions },
	{ "bytes_in", "bytes_in_total", 0, "Payload bytes from workers.",
	    &server_stats.bytes_in, NULL },
	{ "bytes_out", "bytes_out_total", 0, "Payload bytes to workers.",
	    &server_stats.bytes_out, NULL },
	{ "control_clients", NULL, 1, "Control connections now.", NULL,
	    ctr_control_clients },
	{ "auth_failures", "auth_failures_total", 0, "Refused worker "
	    "handshakes.", &server_stats.auth_failures, NULL },
	{ "handshakes_refused", "handshakes_refused_total", 0, "Handshakes "
	    "sent 503.", &server_stats.handshakes_refused, NULL },
	{ "handshakes", NULL, 1, "Handshakes holding an admission slot now.",
	    NULL, ctr_handshakes },
	{ "handshake_rate", NULL, 1, "Handshakes a second the controller "
	    "measured itself finishing, or assumes until it has.", NULL,
	    ctr_handshake_rate },
	{ "denied", "denied_total", 0, "Control requests refused by the "
	    "access rules.", &server_stats.denied, NULL },
	{ "rate_limited", "rate_limited_total", 0, "Control requests over "
	    "the rate limit.", &server_stats.rate_limited, NULL },
};

static uint64_t
ctr_workers_connected(void)
{
	return (server_worker_count(1));
}

static uint64_t
ctr_handshakes(void)
{
	return ((uint64_t)server_admit_busy());
}

static uint64_t
ctr_handshake_rate(void)
{
	return ((uint64_t)(server_admit_rate() + 0.5));
}

static uint64_t
ctr_workers_known(void)
{
	return (server_worker_count(0));
}

static uint64_t
ctr_execs_running(void)
{
	return ((uint64_t)server_worker_count_chans(NULL, CHAN_COUNT_COMMAND));
}

static uint64_t
ctr_sessions(void)
{
	return ((uint64_t)server_worker_count_chans(NULL, CHAN_COUNT_SESSION));
}

static uint64_t
ctr_control_clients(void)
{
	return (control_client_count());
}

/* The value of counter c now. */
static uint64_t
counter_value(const struct counter *c)
{
	return (c->value != NULL ? *c->value : c->get());
}

/* The stats op's reply: every counter, and errors by code. */
json_t *
server_stats_json(void)
{
	json_t	*o = json_object();
	size_t	 i;

	for (i = 0; i < sizeof counters / sizeof counters[0]; i++)
		json_object_set_new(o, counters[i].name, json_integer(
		    (json_int_t)counter_value(&counters[i])));
	json_object_set(o, "errors", server_stats.errors);
	return (o);
}

/* Prometheus text for GET /metrics; caller frees. */
char *
server_metrics(void)
{
	struct evbuffer		*b = evbuffer_new();
	const struct counter	*c;
	const char		*code, *name;
	json_t			*v;
	char			*out;
	size_t			 len, i;

	for (i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		c = &counters[i];
		name = c->metric != NULL ? c->metric : c->name;
		evbuffer_add_printf(b, "# HELP sandd_%s %s\n"
		    "# TYPE sandd_%s %s\nsandd_%s %llu\n", name, c->help, name,
		    c->gauge ? "gauge" : "counter", name,
		    (unsigned long long)counter_value(c));
	}
	evbuffer_add_printf(b, "# HELP sandd_errors_total Error replies by "
	    "code.\n# TYPE sandd_errors_total counter\n");
	json_object_foreach(server_stats.errors, code, v)
		evbuffer_add_printf(b, "sandd_errors_total{code=\"%s\"} %lld\n",
		    code, (long long)json_integer_value(v));
	control_limit_metrics(b);
	len = evbuffer_get_length(b);
	out = xmalloc(len + 1);
	evbuffer_remove(b, out, len);
	out[len] = '\0';
	evbuffer_free(b);
	return (out);
}


/*
 * (Re)load the bearer token /metrics asks for, from --metrics-token-file
 * (one token, surrounding white space ignored). On error the old token
 * stays and -1 is returned with *cause.
 */
int
server_metrics_load_token(const char *path, char **cause)
{
	FILE		*f;
	char		 buf[4096];
	size_t		 n, start, end;
	unsigned int	 mdlen;

	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "open %s: %s", path, strerror(errno));
		return (-1);
	}
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	for (start = 0; start < n && strchr(" \t\r\n", buf[start]) != NULL;
	    start++)
		;
	for (end = n; end > start && strchr(" \t\r\n", buf[end - 1]) != NULL;
	    end--)
		;
	if (end == start) {
		xasprintf(cause, "%s holds no token", path);
		return (-1);
	}
	if (EVP_Digest(buf + start, end - start, metrics_digest, &mdlen,
	    EVP_sha256(), NULL) != 1)
		fatalx("SHA-256 failed");
	compat_explicit_bzero(buf, sizeof buf);
	metrics_have_token = 1;
	return (0);
}

/* May the request m read /metrics (its bearer token, when one is set)? */
int
server_metrics_allowed(struct http_msg *m)
{
	const char	*auth = http_msg_get(m, "Authorization");
	unsigned char	 md[32];
	unsigned int	 mdlen;
	int		 ok;

	if (!metrics_have_token)
		return (1);
	if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
		return (0);
	auth += 7;
	if (EVP_Digest(auth, strlen(auth), md, &mdlen, EVP_sha256(),
	    NULL) != 1)
		fatalx("SHA-256 failed");
	ok = CRYPTO_memcmp(md, metrics_digest, sizeof md) == 0;
	compat_explicit_bzero(md, sizeof md);
	return (ok);
}

/*
 * worker-resolve.c: the targets of a worker's links, one per
 * --server-url. A target whose host is a name has one link per address
 * the name resolves to (its IPv4 ones if it has any, else its IPv6 ones:
 * a dual-stack name would give two links to each controller). The name
 * is resolved again every LINK_RESOLVE_S and after a failed dial: a link
 * that is down follows a controller that moved (so its channels go on),
 * a new address gets a new link, and a link whose address stayed gone
 * LINK_STALE_S is freed.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>

#include "sandd.h"
#include "worker-link.h"

static TAILQ_HEAD(, wtarget) targets = TAILQ_HEAD_INITIALIZER(targets);
static int		 ntargets;
static struct evdns_base *dns;

/*
 * Match the addresses a name now resolves to (got) against its links'
 * (have): assign[i] is the index in got of have[i]'s address, or, for a
 * link whose address left and that is not up, a new address it takes
 * over (so a controller that moved keeps its link, and its channels),
 * or -1; fresh[j] is 1 for an address of got that needs a new link.
 */
void
wlink_plan(const struct wlink_addr *have, size_t nhave, const char **got,
    size_t ngot, int *assign, int *fresh)
{
	size_t	i, j;

	for (j = 0; j < ngot; j++)
		fresh[j] = 1;
	for (i = 0; i < nhave; i++) {
		assign[i] = -1;
		for (j = 0; j < ngot; j++) {
			if (fresh[j] && strcmp(have[i].text, got[j]) == 0) {
				assign[i] = (int)j;
				fresh[j] = 0;
				break;
			}
		}
	}
	for (i = 0; i < nhave; i++) {
		if (assign[i] != -1 || have[i].up)
			continue;
		for (j = 0; j < ngot; j++) {
			if (fresh[j]) {
				assign[i] = (int)j;
				fresh[j] = 0;
				break;
			}
		}
	}
}

/* The numeric form of sa. */
static void
target_addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	const void	*p;

	if (sa->sa_family == AF_INET6)
		p = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		p = &((const struct sockaddr_in *)sa)->sin_addr;
	if (evutil_inet_ntop(sa->sa_family, p, out, len) == NULL)
		snprintf(out, len, "?");
}

/* Point l at address number j of the resolution. */
static void
target_link_move(struct wlink *l, struct evutil_addrinfo *ai, const char *text)
{
	int	had = l->salen != 0;

	if (l->salen != 0 && strcmp(l->addr, text) == 0) {
		l->missing = 0;
		return;
	}
	memcpy(&l->sa, ai->ai_addr, ai->ai_addrlen);
	l->salen = (socklen_t)ai->ai_addrlen;
	snprintf(l->addr, sizeof l->addr, "%s", text);
	l->missing = 0;
	link_set_name(l);
	log_info("link: %s: address %s", l->name, had ? "moved" : "found");
	if (l->state == LINK_IDLE && !evtimer_pending(l->redial_ev, NULL))
		link_dial(l);
}

/* The addresses of one family of a resolution: IPv4 if any, else IPv6. */
static size_t
target_addrs(struct evutil_addrinfo *res, struct evutil_addrinfo **ai,
    char (*text)[64], size_t max)
{
	struct evutil_addrinfo	*p;
	size_t			 n = 0, k;
	int			 fam = AF_INET6;

	for (p = res; p != NULL; p = p->ai_next)
		if (p->ai_family == AF_INET)
			fam = AF_INET;
	for (p = res; p != NULL && n < max; p = p->ai_next) {
		if (p->ai_family != fam)
			continue;
		target_addr_text(p->ai_addr, text[n], sizeof text[n]);
		for (k = 0; k < n; k++)
			if (strcmp(text[k], text[n]) == 0)
				break;
		if (k == n)
			ai[n++] = p;
	}
	return (n);
}

/* Apply a resolution of t: links move, come and (after a while) go. */
static void
target_apply(struct wtarget *t, struct evutil_addrinfo *res)
{
	struct evutil_addrinfo	*ai[LINK_MAX];
	struct wlink_addr	 have[LINK_MAX];
	struct wlink		*mine[LINK_MAX], *l, *l1;
	char			 text[LINK_MAX][64];
	const char		*got[LINK_MAX];
	int			 assign[LINK_MAX], fresh[LINK_MAX];
	size_t			 n, nhave = 0, i;

	n = target_addrs(res, ai, text, LINK_MAX);
	for (i = 0; i < n; i++)
		got[i] = text[i];
	for (l = wlink_next(NULL); l != NULL; l = wlink_next(l)) {
		if (l->t != t || nhave == LINK_MAX)
			continue;
		snprintf(have[nhave].text, sizeof have[nhave].text, "%s",
		    l->salen != 0 ? l->addr : "");
		have[nhave].up = l->state != LINK_IDLE &&
		    l->state != LINK_DIALING;
		mine[nhave++] = l;
	}
	wlink_plan(have, nhave, got, n, assign, fresh);
	for (i = 0; i < nhave; i++) {
		if (assign[i] != -1)
			target_link_move(mine[i], ai[assign[i]],
			    text[assign[i]]);
		else if (mine[i]->missing == 0)
			mine[i]->missing = util_now();
	}
	for (i = 0; i < n; i++) {
		if (fresh[i] && link_count() < LINK_MAX) {
			l = link_create(t, ai[i]->ai_addr,
			    (socklen_t)ai[i]->ai_addrlen, text[i]);
			log_info("link: %s: new address", l->name);
			link_dial(l);
		}
	}
	for (l = wlink_next(NULL); l != NULL; l = l1) {
		l1 = wlink_next(l);
		if (l->t == t && l->missing != 0 && l->state == LINK_IDLE &&
		    util_now() - l->missing >= LINK_STALE_S && l->index != 0)
			link_free(l);
	}
}

/* A resolution of t's host ended. */
static void
target_resolved_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct wtarget	*t = arg;
	struct timeval	 tv = { LINK_RESOLVE_S, 0 };

	t->req = NULL;
	if (err == EVUTIL_EAI_CANCEL)
		return;
	if (err != 0) {
		log_warnx("link: %s:%s: cannot resolve: %s", t->host, t->port,
		    evutil_gai_strerror(err));
		tv.tv_sec = LINK_RESOLVE_RETRY_S;
	} else
		target_apply(t, res);
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (!t->literal)
		evtimer_add(t->resolve_ev, &tv);
}

/* Resolve t's host (again). */
void
target_resolve(struct wtarget *t)
{
	struct evutil_addrinfo	hints;

	if (t->req != NULL)
		return;
	t->resolved = util_now();
	evtimer_del(t->resolve_ev);
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	if (t->literal)
		hints.ai_flags = EVUTIL_AI_NUMERICHOST;
	/* May call back before it returns (an address, /etc/hosts). */
	t->req = evdns_getaddrinfo(dns, t->host, t->port, &hints,
	    target_resolved_cb, t);
}

static void
target_resolve_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	target_resolve(arg);
}

/* Split ws[s]://HOST:PORT/PATH into a new target. */
static int
target_parse(const char *s, char **cause)
{
	struct wtarget	*t;
	const char	*p, *slash;
	char		*hp;
	unsigned char	 a[16];

	t = xcalloc(1, sizeof *t);
	if (strncmp(s, "ws://", 5) == 0)
		p = s + 5;
	else if (strncmp(s, "wss://", 6) == 0) {
		p = s + 6;
		t->tls = 1;
	} else {
		xasprintf(cause, "bad --server-url '%s' (want "
		    "ws://HOST:PORT/ws or wss://...)", s);
		free(t);
		return (-1);
	}
	slash = strchr(p, '/');
	hp = slash != NULL ? xstrndup(p, (size_t)(slash - p)) : xstrdup(p);
	if (util_parse_hostport(hp, &t->host, &t->port) != 0) {
		if (strchr(hp, ':') != NULL || *hp == '\0') {
			xasprintf(cause, "bad host or port in --server-url "
			    "'%s'", s);
			free(hp);
			free(t);
			return (-1);
		}
		t->host = xstrdup(hp);
		t->port = xstrdup(t->tls ? "443" : "80");
	}
	free(hp);
	t->path = xstrdup(slash != NULL ? slash : WIRE_PATH);
	t->text = xstrdup(s);
	t->index = ntargets++;
	t->literal = inet_pton(AF_INET, t->host, a) == 1 ||
	    inet_pton(AF_INET6, t->host, a) == 1;
	TAILQ_INSERT_TAIL(&targets, t, entry);
	return (0);
}

/*
 * Parse the --server-url list (each entry may hold several URLs,
 * separated by spaces or commas, as $SERVER_URL does).
 */
int
wlink_parse(json_t *urls, char **cause)
{
	json_t	*v;
	size_t	 i;
	char	*copy, *p, *tok;

	json_array_foreach(urls, i, v) {
		copy = p = xstrdup(json_string_value(v));
		while ((tok = strsep(&p, " \t\n,")) != NULL) {
			if (*tok != '\0' && target_parse(tok, cause) != 0) {
				free(copy);
				return (-1);
			}
		}
		free(copy);
	}
	if (TAILQ_EMPTY(&targets)) {
		xasprintf(cause, "--server-url (or $SERVER_URL) is required");
		return (-1);
	}
	return (0);
}

/* Does any target need TLS? */
int
wlink_need_tls(void)
{
	struct wtarget	*t;

	TAILQ_FOREACH(t, &targets, entry)
		if (t->tls)
			return (1);
	return (0);
}

/* Resolve every target; each has a first link from the start. */
void
target_start_all(void)
{
	struct wtarget	*t;

	dns = evdns_base_new(ev_base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	TAILQ_FOREACH(t, &targets, entry) {
		t->resolve_ev = evtimer_new(ev_base, target_resolve_cb, t);
		/* It holds the first secret and the channels of the first. */
		link_create(t, NULL, 0, NULL);
		target_resolve(t);
	}
}

/* Free every target (their links are gone). */
void
target_free_all(void)
{
	struct wtarget	*t;

	while ((t = TAILQ_FIRST(&targets)) != NULL) {
		TAILQ_REMOVE(&targets, t, entry);
		if (t->req != NULL)
			evdns_getaddrinfo_cancel(t->req);
		if (t->resolve_ev != NULL)
			event_free(t->resolve_ev);
		free(t->host);
		free(t->port);
		free(t->path);
		free(t->text);
		free(t);
	}
	if (dns != NULL)
		evdns_base_free(dns, 0);
	dns = NULL;
}

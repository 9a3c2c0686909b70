/*
 * server-admit.c: admission control of the WebSocket listener. A
 * connection holds an admission slot from accept until its request head
 * is answered (server.c); the slots are bounded in all (--max-handshakes),
 * and the head deadline frees a slot held by a peer that sends nothing.
 * One remote address may take every free slot (a fleet behind one NAT
 * comes back at once), but its share is --max-handshakes-per-addr: when
 * all are taken, a connection from an address under its share takes the
 * slot of the oldest waiting connection of the address furthest over
 * its own, so idle connections from one place cannot keep workers out.
 *
 * The bound is not what paces a herd: the slots are many, so handshakes
 * go through as fast as the CPU finishes them. This file also measures
 * that rate (heads answered per second, over each second in which a
 * connection had to be refused) and tells each refused connection, in
 * its Retry-After, when it would be served: after the handshakes in
 * progress and after every connection already told to come back, at the
 * measured rate. Successive refusals so get later and later times, and
 * the herd comes back spread out instead of all at once.
 *
 * A burst of handshakes leaves the heap full of holes (a TLS handshake
 * uses tens of KiB for a moment, a connected worker a few), which the
 * process keeps unless told: a second after the last handshake ends,
 * the free pages go back to the kernel.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandd.h"

/* Handshakes in progress from one address (host without port). */
struct admit_host {
	char			 host[64];
	int			 n;
	struct admit_host	*next;
};
#define ADMIT_BUCKETS	256
static struct admit_host *admit_hosts[ADMIT_BUCKETS];

static int	 admit_busy;		/* slots held */
static double	 admit_rate;		/* heads answered per second */
static double	 admit_promised;	/* the last refused one's turn */
static double	 admit_window;		/* start of the measuring window */
static uint64_t	 admit_served;		/* heads answered in it */
static int	 admit_full;		/* did it refuse one? */
static struct event *admit_trim;	/* after the last handshake */

/* Seconds on the monotonic clock. */
static double
admit_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* The link that holds host's count, or the NULL at the end of its chain. */
static struct admit_host **
admit_host_slot(const char *host)
{
	struct admit_host	**pp;
	uint32_t		  v = 2166136261u;	/* FNV-1a */
	const char		 *p;

	for (p = host; *p != '\0'; p++)
		v = (v ^ (uint8_t)*p) * 16777619u;
	pp = &admit_hosts[v % ADMIT_BUCKETS];
	while (*pp != NULL && strcmp((*pp)->host, host) != 0)
		pp = &(*pp)->next;
	return (pp);
}

/*
 * Close the measuring window once a second has passed. A window in which
 * a connection was refused ran at capacity: its rate is the controller's
 * (averaged with the last). One that did not only shows a lower bound.
 * A window closed late (no connection came for a while) says nothing:
 * its quiet tail was not capacity.
 */
static void
admit_measure(double now)
{
	double	elapsed = now - admit_window, seen;

	if (admit_rate == 0)
		admit_rate = serve_opts.handshake_rate;
	if (elapsed < 1.0)
		return;
	seen = (double)admit_served / elapsed;
	if (elapsed >= 2.0)
		;	/* stale */
	else if (admit_full)
		admit_rate = (admit_rate + seen) / 2;
	else if (seen > admit_rate)
		admit_rate = seen;
	if (admit_rate < SERVER_ADMIT_MIN_RATE)
		admit_rate = SERVER_ADMIT_MIN_RATE;
	admit_window = now;
	admit_served = 0;
	admit_full = 0;
}

/*
 * Seconds until a connection refused now would be served: after the
 * handshakes in progress, and after those refused before it whose turn
 * has not come, at the measured rate. Whole seconds (HTTP's
 * Retry-After), at least 1, at most SERVER_RETRY_AFTER_MAX.
 */
static int
admit_retry_after(double now)
{
	double	wait;

	if (admit_promised < now + admit_busy / admit_rate)
		admit_promised = now + admit_busy / admit_rate;
	admit_promised += 1.0 / admit_rate;
	wait = admit_promised - now;
	if (wait > SERVER_RETRY_AFTER_MAX)
		wait = SERVER_RETRY_AFTER_MAX;
	return (wait < 1 ? 1 : (int)(wait + 0.999));
}

/* The address holding the most slots, if that is over its share. */
static const char *
admit_most_over(void)
{
	struct admit_host	*h, *most = NULL;
	int			 i;

	for (i = 0; i < ADMIT_BUCKETS; i++)
		for (h = admit_hosts[i]; h != NULL; h = h->next)
			if (most == NULL || h->n > most->n)
				most = h;
	if (most == NULL || most->n <= serve_opts.max_handshakes_addr)
		return (NULL);
	return (most->host);
}

/*
 * May a connection from host start its handshake? 0 if so: it holds a
 * slot until server_admit_leave. 1 if so too, and the caller is to close
 * the oldest waiting connection of *evict, whose slot this one took.
 * Else -1 with *why and *retry_after.
 */
int
server_admit_enter(const char *host, const char **why, int *retry_after,
    const char **evict)
{
	struct admit_host	**pp = admit_host_slot(host), *h = *pp;
	double			  now = admit_now();

	admit_measure(now);
	*why = *evict = NULL;
	if (admit_busy >= serve_opts.max_handshakes) {
		if (h != NULL && h->n >= serve_opts.max_handshakes_addr)
			*why = "too many handshakes from this address";
		else if ((*evict = admit_most_over()) == NULL)
			*why = "too many handshakes";
	}
	if (*why != NULL) {
		admit_full = 1;
		*retry_after = admit_retry_after(now);
		return (-1);
	}
	if (h == NULL) {
		h = *pp = xcalloc(1, sizeof *h);
		snprintf(h->host, sizeof h->host, "%s", host);
	}
	h->n++;
	admit_busy++;
	return (*evict != NULL ? 1 : 0);
}

/* A second after the last handshake ended: give back what they used. */
static void
admit_trim_cb(__unused evutil_socket_t fd, __unused short what,
    __unused void *arg)
{
	if (admit_busy == 0)
		compat_malloc_trim();
}

/* host's connection gives its slot back; served: its head was answered. */
void
server_admit_leave(const char *host, int served)
{
	struct admit_host	**pp = admit_host_slot(host), *h = *pp;
	struct timeval		  tv = { 1, 0 };

	if (h == NULL)
		fatalx("%s: %s holds no slot", __func__, host);
	if (--h->n == 0) {
		*pp = h->next;
		free(h);
	}
	admit_busy--;
	if (served)
		admit_served++;
	if (admit_busy == 0) {
		if (admit_trim == NULL)
			admit_trim = evtimer_new(ev_base, admit_trim_cb, NULL);
		if (!evtimer_pending(admit_trim, NULL))
			evtimer_add(admit_trim, &tv);
	}
}

/* Handshakes in progress now. */
int
server_admit_busy(void)
{
	return (admit_busy);
}

/* The handshake rate measured (or assumed until measured), per second. */
double
server_admit_rate(void)
{
	return (admit_rate != 0 ? admit_rate : serve_opts.handshake_rate);
}

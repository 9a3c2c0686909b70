/*
 * server-worker.c: the controller's side of connected workers. A worker
 * record outlives its connections: when the link drops it waits out the
 * resume window with its channels intact, and a worker that comes back
 * with the same boot id resumes every stream where it stopped.
 *
 * Wire messages from a worker are dispatched by type through a table;
 * those about a channel go to chan.c, answers to calls (RPCs) to the
 * caller's callback. The control code hears of a worker's state through
 * the watchers it registered (server_worker_watch), never by name.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandd.h"

struct worker {
	char		 id[WORKER_ID_MAX + 1];
	json_t		*info;		/* hostname, os, arch, version */
	json_t		*labels;
	char		 boot[40];
	char		 addr[64];
	char		 why[128];	/* its last link went: why */
	time_t		 connected_at;

	int		 state;
#define WORKER_CONNECTED	1
#define WORKER_AWAY		2	/* inside its resume window */
#define WORKER_GONE		3	/* kept a while for `workers all` */
	struct ws_conn	*ws;		/* link->ws while connected */
	struct link	*link;
	struct worker_auth auth;	/* how its link proved who it is */
	struct event	*timer;		/* resume window, then expiry */
	uint32_t	 next_ch;
	struct chans	 chans;
	json_t		*pending;	/* messages held while away */
	TAILQ_HEAD(, worker_rpc) rpcs;	/* calls awaiting a `res` */
	uint32_t	 next_rid;
	TAILQ_ENTRY(worker) entry;
};

/* A call to a worker awaiting its `res`. */
struct worker_rpc {
	struct worker	*worker;
	uint32_t	 rid;
	json_t		*msg;
	void		(*done)(json_t *, void *);
	void		*arg;
	TAILQ_ENTRY(worker_rpc) entry;
};

/* Who hears of state changes (control-cmd.c). */
#define MAX_WATCHERS	4
static void	(*watchers[MAX_WATCHERS])(struct worker *, const char *);
static int	nwatchers;
static TAILQ_HEAD(, worker) all_workers = TAILQ_HEAD_INITIALIZER(all_workers);

/* A link that has upgraded but not yet said hello. */
struct link {
	struct ws_conn	*ws;
	char		 addr[64];
	struct event	*timer;		/* hello timeout, NULL after */
	struct worker	*worker;	/* once registered */
	char		 id[WORKER_ID_MAX + 1];	/* authenticated at upgrade */
	struct worker_auth auth;	/* how it proved it */
};

#define HELLO_TIMEOUT	10

static int	stopping;	/* closing links for a shutdown */
#define GONE_KEEP	600

static const char *worker_state_names[] = { "none", "connected",
    "disconnected", "gone" };

static void	 link_text_cb(struct ws_conn *, const char *, size_t, void *);
static void	 link_binary_cb(struct ws_conn *, const uint8_t *, size_t,
		     void *);
static void	 link_closed_cb(struct ws_conn *, const char *, void *);
static void	 link_drained_cb(struct ws_conn *, void *);
static void	 link_free(struct link *);
static void	 worker_free(struct worker *);
static int	 server_worker_links(void);
static void	 worker_rpcs_lost(struct worker *, const char *);

static const struct ws_callbacks link_callbacks = {
	link_text_cb, link_binary_cb, link_closed_cb, link_drained_cb
};

/* Call fn(worker, state name) whenever a worker changes state. */
void
server_worker_watch(void (*fn)(struct worker *, const char *))
{
	if (nwatchers == MAX_WATCHERS)
		fatalx("%s: too many watchers", __func__);
	watchers[nwatchers++] = fn;
}

/* Move w to state, log old -> new and tell the watchers. */
static void
worker_set_state(struct worker *w, int state)
{
	int	i;

	if (w->state == state)
		return;
	log_info("worker %s: %s -> %s", w->id, worker_state_names[w->state],
	    worker_state_names[state]);
	w->state = state;
	for (i = 0; i < nwatchers; i++)
		watchers[i](w, worker_state_names[state]);
}

/* Find a worker record by id (any state). */
static struct worker *
server_worker_find(const char *id)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &all_workers, entry)
		if (strcmp(w->id, id) == 0)
			return (w);
	return (NULL);
}

/* Walk every worker record: NULL gives the first. */
struct worker *
server_worker_next(struct worker *w)
{
	return (w == NULL ? TAILQ_FIRST(&all_workers) : TAILQ_NEXT(w, entry));
}

const char *
server_worker_id(struct worker *w)
{
	return (w->id);
}

/* The labels the worker claimed (an object; not a new reference). */
json_t *
server_worker_labels(struct worker *w)
{
	return (w->labels);
}

/* Where its last link came from, as host:port. */
const char *
server_worker_addr(struct worker *w)
{
	return (w->addr);
}

/* Why its last link ended ("" while it has never lost one). */
const char *
server_worker_why(struct worker *w)
{
	return (w->why);
}

int
server_worker_connected(struct worker *w)
{
	return (w->state == WORKER_CONNECTED);
}

/*
 * Is id taken: connected, or inside its resume window? Then only that
 * worker may take it (server-auth.c).
 */
int
server_worker_claimed(const char *id)
{
	return (server_worker_reachable(id) != NULL);
}

/*
 * The grants were re-read: a connected worker whose grant is gone loses
 * its link (and, unless it comes back with a grant, its work after the
 * resume window).
 */
void
server_worker_recheck_grants(void)
{
	struct worker	*w;

	TAILQ_FOREACH(w, &all_workers, entry) {
		if (w->link == NULL || auth_still_granted(w->id, &w->auth))
			continue;
		log_warnx("worker %s: its grant was removed, closing its link",
		    w->id);
		ws_conn_close(w->ws, 1008, "grant removed");
	}
}

/*
 * The worker with this id if requests may be sent to it: connected, or
 * inside its resume window (they wait for it). NULL otherwise.
 */
struct worker *
server_worker_reachable(const char *id)
{
	struct worker	*w = server_worker_find(id);

	if (w == NULL || (w->state != WORKER_CONNECTED &&
	    w->state != WORKER_AWAY))
		return (NULL);
	return (w);
}

/* Workers connected (connected_only) or all records. */
size_t
server_worker_count(int connected_only)
{
	struct worker	*w;
	size_t		 n = 0;

	TAILQ_FOREACH(w, &all_workers, entry)
		if (!connected_only || w->state == WORKER_CONNECTED)
			n++;
	return (n);
}

/*
 * How many of w's channels count as what (CHAN_COUNT_COMMAND: running
 * commands; CHAN_COUNT_SESSION: sessions); NULL w: of every worker.
 */
int
server_worker_count_chans(struct worker *w, int what)
{
	struct chan	*c;
	int		 n = 0;

	if (w == NULL) {
		TAILQ_FOREACH(w, &all_workers, entry)
			n += server_worker_count_chans(w, what);
		return (n);
	}
	TAILQ_FOREACH(c, &w->chans, wentry) {
		if (!(c->ops->counts & what))
			continue;
		if (what == CHAN_COUNT_COMMAND && (c->flags & CHAN_ENDED))
			continue;
		n++;
	}
	return (n);
}

/* Does w carry every label in want (an object, or NULL)? */
int
server_worker_matches(struct worker *w, json_t *want)
{
	const char	*k;
	json_t		*v, *have;

	if (want == NULL)
		return (1);
	json_object_foreach(want, k, v) {
		have = json_object_get(w->labels, k);
		if (have == NULL || !json_equal(have, v))
			return (0);
	}
	return (1);
}

/* The worker object of the control protocol; caller owns it. */
json_t *
server_worker_json(struct worker *w)
{
	char	 when[32];
	json_t	*o;

	util_rfc3339(w->connected_at, when, sizeof when);
	o = json_pack("{s:s, s:b, s:O, s:s, s:s, s:s, s:s, s:s, s:s, s:i, "
	    "s:i, s:s}",
	    "id", w->id,
	    "connected", w->state == WORKER_CONNECTED,
	    "labels", w->labels,
	    "hostname", json_string_value(json_object_get(w->info,
	    "hostname")) ?: "",
	    "os", json_string_value(json_object_get(w->info, "os")) ?: "",
	    "arch", json_string_value(json_object_get(w->info, "arch")) ?: "",
	    "version", json_string_value(json_object_get(w->info,
	    "version")) ?: "",
	    "addr", w->addr,
	    "connected_at", when,
	    "running", server_worker_count_chans(w, CHAN_COUNT_COMMAND),
	    "sessions", server_worker_count_chans(w, CHAN_COUNT_SESSION),
	    "state", worker_state_names[w->state]);
	return (o);
}

#define PENDING_MAX	4096

/*
 * Send a wire message to the worker. While it is away, keep it for the
 * resume (a signal, detach, release or cancel must not be lost); acks
 * are not kept, chan_resume sends them again.
 */
void
server_worker_send(struct worker *w, json_t *msg)
{
	enum wire_type	t = wire_type_of(msg);

	if (w->state == WORKER_CONNECTED && w->ws != NULL)
		ws_conn_send_json(w->ws, msg);
	else if (w->state == WORKER_AWAY && t != WIRE_T_ACK &&
	    t != WIRE_T_OPEN && t != WIRE_T_REQ &&
	    json_array_size(w->pending) < PENDING_MAX) {
		if (w->pending == NULL)
			w->pending = json_array();
		json_array_append(w->pending, msg);
	}
}

/* Is a release or cancel of channel ch held for the worker? */
static int
worker_pending_ends(struct worker *w, uint32_t ch)
{
	enum wire_type	 t;
	size_t		 i;
	json_t		*m;

	json_array_foreach(w->pending, i, m) {
		t = wire_type_of(m);
		if (wire_msg_chan(m) == ch &&
		    (t == WIRE_T_RELEASE || t == WIRE_T_CANCEL))
			return (1);
	}
	return (0);
}

/*
 * Open a channel of ops' kind on w with the open message msg (not
 * stolen; "t", "ch", "kind" and "handle" are set on it). It is sent now
 * if the link is up, else on resume.
 */
struct chan *
server_worker_chan_open(struct worker *w, const struct chan_ops *ops,
    json_t *msg)
{
	struct chan	*c;

	c = chan_create(w, w->next_ch++, ops);
	/* Numbers from WIRE_VIEW_BASE up are the worker's. */
	if (w->next_ch >= WIRE_VIEW_BASE)
		w->next_ch = 1;
	TAILQ_INSERT_TAIL(&w->chans, c, wentry);
	json_object_set_new(msg, "t", json_string(wire_type_name(
	    WIRE_T_OPEN)));
	json_object_set_new(msg, "ch", json_integer(c->ch));
	json_object_set_new(msg, "kind", json_integer(ops->kind));
	json_object_set_new(msg, "window", json_integer((json_int_t)
	    ops->out_window));
	json_object_set_new(msg, "handle", json_string(c->handle));
	c->open = json_incref(msg);
	if (json_is_object(json_object_get(msg, "owner")))
		c->owner = json_incref(json_object_get(msg, "owner"));
	if (w->state == WORKER_CONNECTED) {
		server_worker_send(w, msg);
		c->flags |= CHAN_SENT;
	}
	return (c);
}

static struct chan *
worker_chan_find(struct worker *w, uint32_t ch)
{
	struct chan	*c;

	TAILQ_FOREACH(c, &w->chans, wentry)
		if (c->ch == ch)
			return (c);
	return (NULL);
}

/*
 * End the channels of w with worker_lost: all of them, or (sent_only)
 * those whose open reached the worker; queued ones then go to the new
 * instance.
 */
static void
worker_lose_chans(struct worker *w, const char *why, int sent_only)
{
	struct chan	*c, *c1;

	TAILQ_FOREACH_SAFE(c, &w->chans, wentry, c1)
		if (!sent_only || (c->flags & CHAN_SENT))
			chan_lost(c, "worker_lost", why);
	worker_rpcs_lost(w, why);
}

static void
worker_timer_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct worker	*w = arg;
	struct timeval	 tv = { GONE_KEEP, 0 };
	char		 why[128];

	if (w->state == WORKER_AWAY) {
		snprintf(why, sizeof why, "worker '%s' did not come back "
		    "within %d seconds", w->id, serve_opts.resume_window);
		worker_lose_chans(w, why, 0);
		worker_set_state(w, WORKER_GONE);
		evtimer_add(w->timer, &tv);
		return;
	}
	if (w->state == WORKER_GONE) {
		TAILQ_REMOVE(&all_workers, w, entry);
		worker_free(w);
	}
}

/* The worker's link dropped: wait for it within the resume window. */
static void
worker_link_lost(struct worker *w, const char *why)
{
	struct timeval	tv = { serve_opts.resume_window, 0 };

	log_warnx("worker %s (%s): link lost: %s", w->id, w->addr, why);
	snprintf(w->why, sizeof w->why, "%s", why);
	w->ws = NULL;
	worker_set_state(w, WORKER_AWAY);
	evtimer_add(w->timer, &tv);
}

static void
worker_free(struct worker *w)
{
	struct chan		*c;
	struct worker_rpc	*p;

	while ((c = TAILQ_FIRST(&w->chans)) != NULL)
		chan_free(c);
	while ((p = TAILQ_FIRST(&w->rpcs)) != NULL)
		server_worker_rpc_cancel(p);
	event_free(w->timer);
	json_decref(w->pending);
	json_decref(w->info);
	json_decref(w->labels);
	free(w);
}

/*
 * Start the close handshake on every link. Returns how many links are
 * still open; server_stopping_link_closed() is told as each one ends.
 */
int
server_worker_close_all(void)
{
	struct worker	*w;
	int		 n = 0;

	stopping = 1;
	TAILQ_FOREACH(w, &all_workers, entry) {
		if (w->link != NULL) {
			ws_conn_close(w->ws, 1001, "controller stopping");
			n++;
		}
	}
	return (n);
}

/* How many workers still have a link. */
static int
server_worker_links(void)
{
	struct worker	*w;
	int		 n = 0;

	TAILQ_FOREACH(w, &all_workers, entry)
		if (w->link != NULL)
			n++;
	return (n);
}

/* Free every record and whatever link is left, after the loop ended. */
void
server_worker_free_all(void)
{
	struct worker	*w;

	while ((w = TAILQ_FIRST(&all_workers)) != NULL) {
		TAILQ_REMOVE(&all_workers, w, entry);
		if (w->link != NULL) {
			ws_conn_close(w->ws, 1001, "controller stopping");
			link_free(w->link);
		}
		worker_free(w);
	}
}

static void
link_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct link	*l = arg;

	log_warnx("%s: no hello within %d seconds", l->addr, HELLO_TIMEOUT);
	ws_conn_close(l->ws, 1008, "no hello");
	link_free(l);
}

/* A WebSocket link was accepted: wait for its hello. */
void
server_worker_accept(struct bufferevent *bev, const char *addr,
    const char *id, int wsflags, const struct worker_auth *wa)
{
	struct link	*l;
	struct timeval	 tv = { HELLO_TIMEOUT, 0 };
	struct ws_params wp = { wsflags, serve_opts.ping_interval,
			    serve_opts.ping_timeout, WIRE_MAX_MSG };

	l = xcalloc(1, sizeof *l);
	snprintf(l->addr, sizeof l->addr, "%s", addr);
	snprintf(l->id, sizeof l->id, "%s", id);
	l->auth = *wa;
	l->ws = ws_conn_create(bev, &wp, &link_callbacks, l);
	l->timer = evtimer_new(ev_base, link_timeout_cb, l);
	evtimer_add(l->timer, &tv);
	log_debug("%s: %s: upgraded", __func__, addr);
}

/* Free a link; its worker (if any) is told first by the caller. */
static void
link_free(struct link *l)
{
	if (l->timer != NULL)
		event_free(l->timer);
	ws_conn_free(l->ws);
	free(l);
}

/* Refuse a link with a close frame that says why. */
static void
link_refuse(struct link *l, const char *why)
{
	log_warnx("%s: refused: %s", l->addr, why);
	control_audit_worker("worker.refused", l->id, l->addr, why);
	ws_conn_close(l->ws, 1008, why);
}

/*
 * A channel the worker announced that we do not know (this controller
 * restarted): its kind adopts it, or it is cancelled.
 */
static void
worker_adopt(struct worker *w, json_t *a)
{
	uint32_t	 ch = wire_msg_chan(a);
	struct chan	*c;
	json_t		*m;

	if (ch == 0)
		return;
	if (ch >= w->next_ch && ch < WIRE_VIEW_BASE - 1)
		w->next_ch = ch + 1;
	if ((c = chan_adopt(w, ch, a)) != NULL) {
		TAILQ_INSERT_TAIL(&w->chans, c, wentry);
		return;
	}
	m = wire_chan_msg(WIRE_T_CANCEL, ch);
	ws_conn_send_json(w->ws, m);
	json_decref(m);
}

/* Is msg a hello this link may register with? Refuses it if not. */
static int
link_hello_ok(struct link *l, json_t *msg)
{
	const char	*id, *boot;
	json_t		*labels, *chans;
	char		*why;

	id = json_string_value(json_object_get(msg, "id"));
	boot = json_string_value(json_object_get(msg, "boot"));
	labels = json_object_get(msg, "labels");
	chans = json_object_get(msg, "channels");
	if (id == NULL || !util_valid_id(id)) {
		link_refuse(l, "invalid worker id");
		return (0);
	}
	/* The token was checked for the id of the upgrade: hold it to it. */
	if (strcmp(id, l->id) != 0) {
		server_stats.auth_failures++;
		link_refuse(l, "hello id differs from the authenticated id");
		return (0);
	}
	if (boot == NULL || strlen(boot) >= sizeof ((struct worker *)0)->boot ||
	    (labels != NULL && !json_is_object(labels)) ||
	    (chans != NULL && (!json_is_array(chans) ||
	    json_array_size(chans) > WIRE_MAX_CHANNELS)) ||
	    json_integer_value(json_object_get(msg, "proto")) != WIRE_PROTOCOL) {
		link_refuse(l, "bad hello");
		return (0);
	}
	/* The id may have been taken since the upgrade. */
	if (server_worker_claimed(id) && !l->auth.secret &&
	    !l->auth.own_grant && !l->auth.cert) {
		server_stats.auth_failures++;
		link_refuse(l, "worker id in use");
		return (0);
	}
	if (labels != NULL && auth_labels_ok(id, &l->auth, labels, &why) != 0) {
		server_stats.auth_failures++;
		link_refuse(l, why);
		free(why);
		return (0);
	}
	return (1);
}

/* A new worker record for id. */
static struct worker *
worker_create(const char *id)
{
	struct worker	*w;

	w = xcalloc(1, sizeof *w);
	snprintf(w->id, sizeof w->id, "%s", id);
	TAILQ_INIT(&w->chans);
	TAILQ_INIT(&w->rpcs);
	w->next_rid = 1;
	w->next_ch = 1;
	w->timer = evtimer_new(ev_base, worker_timer_cb, w);
	TAILQ_INSERT_TAIL(&all_workers, w, entry);
	return (w);
}

/*
 * A known worker says hello again over link l with boot: the old link
 * (if any) goes; its work resumes if boot is the same process, else the
 * old process's requests are lost. Returns 1 when it resumes.
 */
static int
worker_return(struct worker *w, struct link *l, const char *boot)
{
	int	same = strcmp(w->boot, boot) == 0;

	evtimer_del(w->timer);
	if (w->link != NULL) {
		log_warnx("worker %s: new connection from %s replaces the one "
		    "from %s", w->id, l->addr, w->addr);
		w->link->worker = NULL;
		/* Another process with this id: the old one stops. */
		if (!same)
			ws_conn_close(w->link->ws, WS_CLOSE_REPLACED,
			    "replaced by another worker with this id");
		else
			ws_conn_close(w->link->ws, 1000, "replaced by a new "
			    "connection");
		w->link = NULL;
		w->ws = NULL;
	}
	if (same && w->state != WORKER_GONE)
		return (1);
	if (!same) {
		json_decref(w->pending);
		w->pending = NULL;
	}
	if (!TAILQ_EMPTY(&w->chans)) {
		log_warnx("worker %s restarted: its requests are lost", w->id);
		worker_lose_chans(w, "the worker restarted", 1);
	}
	return (0);
}

/* One channel a worker announced in its hello. */
struct announced {
	uint32_t	 ch;
	json_t		*a;
};

static int
announced_cmp(const void *x, const void *y)
{
	const struct announced	*p = x, *q = y;

	return (p->ch < q->ch ? -1 : p->ch > q->ch);
}

/* The announcement of channel ch in the sorted list, or NULL. */
static json_t *
announced_find(struct announced *list, size_t n, uint32_t ch)
{
	struct announced	 key, *found;

	key.ch = ch;
	found = bsearch(&key, list, n, sizeof *list, announced_cmp);
	return (found != NULL ? found->a : NULL);
}

/*
 * Match the channels the worker holds against ours: resume the common
 * ones, send again opens that never arrived, adopt the ones we do not
 * know; then send what waited for it. The lists are sorted first, so a
 * hello with many channels costs n log n, not n squared.
 */
static void
worker_sync(struct worker *w, json_t *chans)
{
	struct worker_rpc	*p;
	struct announced	*list;
	struct chan		*c, *c1;
	json_t			*a;
	size_t			 i, n = 0;
	uint32_t		*ours;
	size_t			 nours = 0;

	list = xcalloc(json_array_size(chans) + 1, sizeof *list);
	json_array_foreach(chans, i, a) {
		if ((list[n].ch = wire_msg_chan(a)) != 0)
			list[n++].a = a;
	}
	qsort(list, n, sizeof *list, announced_cmp);
	TAILQ_FOREACH(c, &w->chans, wentry)
		nours++;
	ours = xcalloc(nours + 1, sizeof *ours);
	nours = 0;
	TAILQ_FOREACH_SAFE(c, &w->chans, wentry, c1) {
		ours[nours++] = c->ch;
		if ((a = announced_find(list, n, c->ch)) != NULL)
			chan_resume(c, a);
		else if (c->open != NULL) {
			/* The open never arrived: send it again. */
			ws_conn_send_json(w->ws, c->open);
			c->flags |= CHAN_SENT;
			c->in_sent = c->in_base;
			c->in_eof_sent = 0;
			chan_flush_input(c);
		}
	}
	qsort(ours, nours, sizeof *ours, util_u32_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && list[i].ch == list[i - 1].ch)
			continue;	/* announced twice: once is enough */
		if (bsearch(&list[i].ch, ours, nours, sizeof *ours,
		    util_u32_cmp) == NULL &&
		    !worker_pending_ends(w, list[i].ch))
			worker_adopt(w, list[i].a);
	}
	free(ours);
	free(list);
	/* What was said to it while it was away, and calls in flight. */
	json_array_foreach(w->pending, i, a)
		ws_conn_send_json(w->ws, a);
	json_decref(w->pending);
	w->pending = NULL;
	TAILQ_FOREACH(p, &w->rpcs, entry)
		ws_conn_send_json(w->ws, p->msg);
}

/* Handle the first message of a link: who is this worker? */
static void
link_hello(struct link *l, json_t *msg)
{
	const char	*id = json_string_value(json_object_get(msg, "id"));
	const char	*boot = json_string_value(json_object_get(msg, "boot"));
	json_t		*labels = json_object_get(msg, "labels"), *welcome;
	struct worker	*w;
	char		*secret;
	int		 resume = 0;

	if (!link_hello_ok(l, msg))
		return;
	if ((w = server_worker_find(id)) == NULL)
		w = worker_create(id);
	else
		resume = worker_return(w, l, boot);
	snprintf(w->boot, sizeof w->boot, "%s", boot);
	snprintf(w->addr, sizeof w->addr, "%s", l->addr);
	json_decref(w->info);
	w->info = json_incref(msg);
	json_decref(w->labels);
	w->labels = labels != NULL ? json_incref(labels) : json_object();
	w->connected_at = time(NULL);
	w->ws = l->ws;
	w->link = l;
	w->auth = l->auth;
	l->worker = w;
	if (l->timer != NULL) {
		event_free(l->timer);
		l->timer = NULL;
	}

	welcome = wire_msg(WIRE_T_WELCOME);
	json_object_set_new(welcome, "resumed", json_boolean(resume));
	json_object_set_new(welcome, "resume_window",
	    json_integer(serve_opts.resume_window));
	json_object_set_new(welcome, "proto", json_integer(WIRE_PROTOCOL));
	secret = auth_secret(w->id);
	json_object_set_new(welcome, "secret", json_string(secret));
	compat_explicit_bzero(secret, strlen(secret));
	free(secret);
	ws_conn_send_json(w->ws, welcome);
	json_decref(welcome);
	worker_set_state(w, WORKER_CONNECTED);
	log_info("worker %s connected from %s%s", id, w->addr,
	    resume ? " (resumed)" : "");
	worker_sync(w, json_object_get(msg, "channels"));
}

/* ---- messages from a registered worker ---- */

static void
msg_res(struct worker *w, __unused struct chan *c, json_t *msg)
{
	struct worker_rpc	*p;
	json_t			*v = json_object_get(msg, "rid");

	TAILQ_FOREACH(p, &w->rpcs, entry) {
		if (json_is_integer(v) && json_integer_value(v) == p->rid) {
			TAILQ_REMOVE(&w->rpcs, p, entry);
			json_decref(p->msg);
			p->done(msg, p->arg);
			free(p);
			return;
		}
	}
	log_debug("worker %s: answer to an unknown call", w->id);
}

static void
msg_ack(__unused struct worker *w, struct chan *c, json_t *msg)
{
	chan_input_acked(c, (uint64_t)json_integer_value(json_object_get(msg,
	    "in")));
}

static void
msg_started(__unused struct worker *w, struct chan *c, json_t *msg)
{
	chan_started(c, msg);
}

static void
msg_end(__unused struct worker *w, struct chan *c, json_t *msg)
{
	chan_end(c, msg);
}

static void
msg_info(__unused struct worker *w, struct chan *c, json_t *msg)
{
	chan_info(c, msg);
}

/* announce: a view of a session another controller opened; adopt it. */
static void
msg_announce(struct worker *w, __unused struct chan *c, json_t *msg)
{
	uint32_t	ch = wire_msg_chan(msg);

	if (ch >= WIRE_VIEW_BASE && worker_chan_find(w, ch) == NULL)
		worker_adopt(w, msg);
}

/* What a registered worker may send; per channel unless WIRE_ANY. */
static const struct {
	void	(*fn)(struct worker *, struct chan *, json_t *);
	int	 flags;
#define WIRE_ANY	0x1	/* not about a channel */
} worker_dispatch[WIRE_NTYPES] = {
	[WIRE_T_RES] = { msg_res, WIRE_ANY },
	[WIRE_T_ACK] = { msg_ack, 0 },
	[WIRE_T_STARTED] = { msg_started, 0 },
	[WIRE_T_END] = { msg_end, 0 },
	[WIRE_T_INFO] = { msg_info, 0 },
	[WIRE_T_ANNOUNCE] = { msg_announce, WIRE_ANY },
};

/* Route one wire message from a registered worker. */
static void
worker_message(struct worker *w, json_t *msg)
{
	enum wire_type	 t = wire_type_of(msg);
	struct chan	*c = NULL;
	uint32_t	 ch;

	if (worker_dispatch[t].fn == NULL) {
		log_debug("worker %s: unexpected message '%s'", w->id,
		    t == WIRE_T_UNKNOWN ? "?" : wire_type_name(t));
		return;
	}
	if (!(worker_dispatch[t].flags & WIRE_ANY)) {
		if ((ch = wire_msg_chan(msg)) == 0 ||
		    (c = worker_chan_find(w, ch)) == NULL) {
			log_debug("worker %s: '%s' for unknown channel", w->id,
			    wire_type_name(t));
			return;
		}
	}
	worker_dispatch[t].fn(w, c, msg);
}

static void
link_text_cb(__unused struct ws_conn *ws, const char *p, size_t len,
    void *arg)
{
	struct link	*l = arg;
	json_t		*msg;
	json_error_t	 err;
	char		*esc;

	msg = json_loadb(p, len, JSON_ALLOW_NUL, &err);
	if (msg == NULL || !json_is_object(msg)) {
		esc = log_escape(p, len);
		log_warnx("%s: bad wire message: %s", l->addr, esc);
		free(esc);
		json_decref(msg);
		return;
	}
	if (l->worker != NULL)
		worker_message(l->worker, msg);
	else if (l->timer == NULL)
		;	/* replaced: ignore what the old link still says */
	else if (wire_type_of(msg) == WIRE_T_HELLO)
		link_hello(l, msg);
	else
		log_warnx("%s: message before hello", l->addr);
	json_decref(msg);
}

static void
link_binary_cb(__unused struct ws_conn *ws, const uint8_t *p, size_t len,
    void *arg)
{
	struct link	*l = arg;
	struct chan	*c;
	const uint8_t	*data;
	size_t		 dlen;
	uint64_t	 off;
	uint32_t	 ch;
	int		 type;

	if (l->worker == NULL)
		return;
	if (wire_frame_parse(p, len, &type, &ch, &off, &data, &dlen) != 0 ||
	    type == WIRE_IN) {
		log_warnx("worker %s: bad binary frame", l->worker->id);
		return;
	}
	if ((c = worker_chan_find(l->worker, ch)) == NULL)
		return;		/* cancelled: the worker stops soon */
	if (chan_data(c, type, off, data, dlen) != 0)
		ws_conn_close(l->ws, 1008, "output past the window");
}

static void
link_closed_cb(__unused struct ws_conn *ws, const char *why, void *arg)
{
	struct link	*l = arg;
	struct worker	*w = l->worker;

	if (w != NULL && stopping) {
		w->link = NULL;
		w->ws = NULL;
		link_free(l);
		if (server_worker_links() == 0)
			event_base_loopexit(ev_base, NULL);
		return;
	}
	if (w != NULL) {
		w->link = NULL;
		w->ws = NULL;
		worker_link_lost(w, why);
	} else
		log_debug("%s: closed: %s", l->addr, why);
	link_free(l);
}

/* The link drained: streams held back by its backlog may go on. */
static void
link_drained_cb(__unused struct ws_conn *ws, void *arg)
{
	struct link	*l = arg;
	struct chan	*c;

	if (l->worker == NULL)
		return;
	TAILQ_FOREACH(c, &l->worker->chans, wentry)
		chan_flush_input(c);
}

struct chans *
server_worker_chan_list(struct worker *w)
{
	return (&w->chans);
}

/* Take c off its worker's list. */
void
server_worker_chan_unlink(struct worker *w, struct chan *c)
{
	TAILQ_REMOVE(&w->chans, c, wentry);
	c->worker = NULL;
}

/* Send len bytes of buf from skip as one binary frame, if the link is up. */
void
server_worker_send_buf(struct worker *w, int stream, uint32_t ch,
    uint64_t off, struct evbuffer *buf, size_t skip, size_t len)
{
	uint8_t	h[WIRE_HDR_LEN];

	if (w->state != WORKER_CONNECTED || w->ws == NULL)
		return;
	wire_frame_header(h, stream, ch, off);
	ws_conn_send_binary_buf(w->ws, h, sizeof h, buf, skip, len);
}

/* May more input be queued to this worker now? */
int
server_worker_writable(struct worker *w)
{
	return (w->ws != NULL && ws_conn_writable(w->ws));
}

/* ---- calls (RPCs) ---- */

/*
 * Ask w: msg (stolen) goes as a `req` now, or when the worker is back;
 * done(res, arg) gets its `res`, or an error res if the worker is lost.
 * The returned call may be cancelled until then.
 */
struct worker_rpc *
server_worker_rpc(struct worker *w, json_t *msg, void (*done)(json_t *,
    void *), void *arg)
{
	struct worker_rpc	*p;

	p = xcalloc(1, sizeof *p);
	p->worker = w;
	p->rid = w->next_rid++;
	p->done = done;
	p->arg = arg;
	json_object_set_new(msg, "t", json_string(wire_type_name(
	    WIRE_T_REQ)));
	json_object_set_new(msg, "rid", json_integer(p->rid));
	p->msg = msg;
	TAILQ_INSERT_TAIL(&w->rpcs, p, entry);
	if (w->state == WORKER_CONNECTED && w->ws != NULL)
		ws_conn_send_json(w->ws, msg);
	return (p);
}

/* Forget a call: its answer, if it comes, is ignored. */
void
server_worker_rpc_cancel(struct worker_rpc *p)
{
	TAILQ_REMOVE(&p->worker->rpcs, p, entry);
	json_decref(p->msg);
	free(p);
}

/* The worker is lost for good: every call fails with worker_lost. */
static void
worker_rpcs_lost(struct worker *w, const char *why)
{
	struct worker_rpc	*p;
	json_t			*res;

	while ((p = TAILQ_FIRST(&w->rpcs)) != NULL) {
		TAILQ_REMOVE(&w->rpcs, p, entry);
		res = json_pack("{s:b, s:o}", "ok", 0, "error",
		    wire_error("worker_lost", 0, "%s", why));
		json_decref(p->msg);
		p->done(res, p->arg);
		json_decref(res);
		free(p);
	}
}

/*
 * server-link.c: one worker's WebSocket link on the controller, from the
 * upgrade (server.c hands it over) to its end. The first message must be
 * a hello naming the id the upgrade authenticated; then the link is the
 * worker's: a worker that comes back with the same boot id resumes every
 * channel where it stopped, one the controller does not know (it
 * restarted) is adopted or cancelled.
 *
 * Wire messages from a registered worker are dispatched by type through
 * a table; those about a channel go to chan.c, answers to calls (RPCs)
 * to the caller's callback.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandd.h"
#include "server-worker.h"

#define HELLO_TIMEOUT	10

static void	 link_text_cb(struct ws_conn *, const char *, size_t, void *);
static void	 link_binary_cb(struct ws_conn *, const uint8_t *, size_t,
		     void *);
static void	 link_closed_cb(struct ws_conn *, const char *, void *);
static void	 link_drained_cb(struct ws_conn *, void *);

static const struct ws_callbacks link_callbacks = {
	link_text_cb, link_binary_cb, link_closed_cb, link_drained_cb
};

/* Every link, registered or not, so that none outlives serve. */
static TAILQ_HEAD(, link) all_links = TAILQ_HEAD_INITIALIZER(all_links);

static void
link_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct link	*l = arg;

	log_warnx("%s: no hello within %d seconds", l->addr, HELLO_TIMEOUT);
	ws_conn_close(l->ws, 1008, "no hello");
	server_link_free(l);
}

/* A WebSocket link was accepted: wait for its hello. */
void
server_link_accept(struct bufferevent *bev, const char *addr,
    const char *id, int wsflags, const struct worker_auth *wa)
{
	struct link	*l;
	struct timeval	 tv = { HELLO_TIMEOUT, 0 };
	struct ws_params wp = { wsflags, serve_opts.ping_interval,
			    serve_opts.ping_timeout, WIRE_MAX_MSG };

	l = xcalloc(1, sizeof *l);
	TAILQ_INSERT_TAIL(&all_links, l, entry);
	snprintf(l->addr, sizeof l->addr, "%s", addr);
	snprintf(l->id, sizeof l->id, "%s", id);
	l->auth = *wa;
	l->ws = ws_conn_create(bev, &wp, &link_callbacks, l);
	l->timer = evtimer_new(ev_base, link_timeout_cb, l);
	evtimer_add(l->timer, &tv);
	log_debug("%s: %s: upgraded", __func__, addr);
}

/* Free a link; its worker (if any) is told first by the caller. */
void
server_link_free(struct link *l)
{
	if (l->timer != NULL)
		event_free(l->timer);
	ws_conn_free(l->ws);
	TAILQ_REMOVE(&all_links, l, entry);
	free(l);
}

/*
 * After the loop: free the links no worker record holds (those refused
 * or closing before their hello), then what still lingers in ws.c.
 */
void
server_link_free_all(void)
{
	struct link	*l;

	while ((l = TAILQ_FIRST(&all_links)) != NULL)
		server_link_free(l);
	ws_conn_free_lingering();
}

/*
 * Cut a registered worker off for what it sent: the close frame says
 * why, and nothing more it sent is read (what is already buffered would
 * otherwise still be parsed, message by message).
 */
static void
link_cut(struct link *l, const char *why)
{
	ws_conn_close(l->ws, 1008, why);
	link_closed_cb(l->ws, why, l);
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
	    json_integer_value(json_object_get(msg, "proto")) !=
	    WIRE_PROTOCOL) {
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
		server_worker_lose_chans(w, "the worker restarted", 1);
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
		    !server_worker_pending_ends(w, list[i].ch))
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
	json_t		*welcome;
	struct worker	*w;
	char		*secret;
	int		 resume = 0;

	if (!link_hello_ok(l, msg))
		return;
	if ((w = server_worker_find(id)) == NULL)
		w = server_worker_create(id);
	else
		resume = worker_return(w, l, boot);
	snprintf(w->boot, sizeof w->boot, "%s", boot);
	snprintf(w->addr, sizeof w->addr, "%s", l->addr);
	server_worker_set_hello(w, msg);
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
	server_worker_set_state(w, WORKER_CONNECTED);
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

	if (ch >= WIRE_VIEW_BASE && server_worker_chan_find(w, ch) == NULL)
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
		    (c = server_worker_chan_find(w, ch)) == NULL) {
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
	if ((c = server_worker_chan_find(l->worker, ch)) == NULL)
		return;		/* cancelled: the worker stops soon */
	if (chan_data(c, type, off, data, dlen) != 0)
		link_cut(l, "output past the window");
}

static void
link_closed_cb(__unused struct ws_conn *ws, const char *why, void *arg)
{
	struct link	*l = arg;
	struct worker	*w = l->worker;

	if (w != NULL && server_worker_stopping) {
		w->link = NULL;
		w->ws = NULL;
		server_link_free(l);
		if (server_worker_links() == 0)
			event_base_loopexit(ev_base, NULL);
		return;
	}
	if (w != NULL) {
		w->link = NULL;
		w->ws = NULL;
		server_worker_link_lost(w, why);
	} else
		log_debug("%s: closed: %s", l->addr, why);
	server_link_free(l);
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


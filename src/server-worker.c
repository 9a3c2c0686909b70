/*
 * server-worker.c: the controller's registry of workers. A worker
 * record outlives its connections: when the link drops it waits out the
 * resume window with its channels intact (server-link.c resumes them when
 * the same process comes back), then it is kept a while as gone.
 *
 * Channels and calls (RPCs) to a worker live on its record, so that they
 * wait for it while it is away. The control code hears of a worker's
 * state through the watchers it registered (server_worker_watch), never
 * by name.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandd.h"
#include "server-worker.h"

/* Who hears of state changes (control-cmd.c). */
#define MAX_WATCHERS	4
static void	(*watchers[MAX_WATCHERS])(struct worker *, const char *);
static int	nwatchers;
static TAILQ_HEAD(, worker) all_workers = TAILQ_HEAD_INITIALIZER(all_workers);

/*
 * The records by id, for the hello and the upgrade of each worker of a
 * herd: a chained hash table that doubles when it holds as many records
 * as it has buckets.
 */
static struct worker	**worker_index;
static size_t		  worker_index_size;	/* buckets, a power of 2 */
static size_t		  nworkers;

int		server_worker_stopping;	/* closing links for a shutdown */
#define GONE_KEEP	600

static const char *worker_state_names[] = { "none", "connected",
    "disconnected", "gone" };

static void	 worker_free(struct worker *);
static void	 worker_rpcs_lost(struct worker *, const char *);

/* Call fn(worker, state name) whenever a worker changes state. */
void
server_worker_watch(void (*fn)(struct worker *, const char *))
{
	if (nwatchers == MAX_WATCHERS)
		fatalx("%s: too many watchers", __func__);
	watchers[nwatchers++] = fn;
}

/* Move w to state, log old -> new and tell the watchers. */
void
server_worker_set_state(struct worker *w, int state)
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

/* The bucket of id in a table of size buckets (FNV-1a). */
static size_t
worker_index_bucket(const char *id, size_t size)
{
	uint32_t	v = 2166136261u;

	for (; *id != '\0'; id++)
		v = (v ^ (uint8_t)*id) * 16777619u;
	return (v & (size - 1));
}

/* Index w by its id, growing the table first if it is full. */
static void
worker_index_add(struct worker *w)
{
	struct worker	**old = worker_index, *v, *next;
	size_t		  i, n = worker_index_size, b;

	if (nworkers >= worker_index_size) {
		worker_index_size = n == 0 ? 64 : n * 2;
		worker_index = xcalloc(worker_index_size, sizeof *worker_index);
		for (i = 0; i < n; i++) {
			for (v = old[i]; v != NULL; v = next) {
				next = v->hnext;
				b = worker_index_bucket(v->id,
				    worker_index_size);
				v->hnext = worker_index[b];
				worker_index[b] = v;
			}
		}
		free(old);
	}
	b = worker_index_bucket(w->id, worker_index_size);
	w->hnext = worker_index[b];
	worker_index[b] = w;
	nworkers++;
}

/* Take w out of the index and the list of records. */
static void
worker_index_remove(struct worker *w)
{
	struct worker	**pp;

	pp = &worker_index[worker_index_bucket(w->id, worker_index_size)];
	while (*pp != w)
		pp = &(*pp)->hnext;
	*pp = w->hnext;
	nworkers--;
	TAILQ_REMOVE(&all_workers, w, entry);
}

/* Find a worker record by id (any state). */
struct worker *
server_worker_find(const char *id)
{
	struct worker	*w;

	if (worker_index_size == 0)
		return (NULL);
	w = worker_index[worker_index_bucket(id, worker_index_size)];
	while (w != NULL && strcmp(w->id, id) != 0)
		w = w->hnext;
	return (w);
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

/*
 * Workers that claim the same labels share one object of them: a fleet
 * has few sets of labels, and an object costs a few hundred bytes.
 */
struct label_set {
	char			*key;	/* the labels as compact JSON, sorted */
	json_t			*labels;
	unsigned int		 refs;
	struct label_set	*next;
};
#define LABEL_BUCKETS	256
static struct label_set	*label_sets[LABEL_BUCKETS];

/* The shared set equal to labels (an object), made if new. */
static struct label_set *
worker_labels_get(json_t *labels)
{
	struct label_set	*ls;
	char			*key;
	size_t			 b;

	key = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS);
	if (key == NULL)
		fatalx("%s: out of memory", __func__);
	b = worker_index_bucket(key, LABEL_BUCKETS);
	for (ls = label_sets[b]; ls != NULL; ls = ls->next) {
		if (strcmp(ls->key, key) == 0) {
			free(key);
			ls->refs++;
			return (ls);
		}
	}
	ls = xcalloc(1, sizeof *ls);
	ls->key = key;
	ls->labels = json_incref(labels);
	ls->refs = 1;
	ls->next = label_sets[b];
	label_sets[b] = ls;
	return (ls);
}

/* Drop a reference to a shared set; NULL is fine. */
static void
worker_labels_put(struct label_set *ls)
{
	struct label_set	**pp;

	if (ls == NULL || --ls->refs > 0)
		return;
	pp = &label_sets[worker_index_bucket(ls->key, LABEL_BUCKETS)];
	while (*pp != ls)
		pp = &(*pp)->next;
	*pp = ls->next;
	json_decref(ls->labels);
	free(ls->key);
	free(ls);
}

/*
 * Keep of a hello what the record shows: hostname, os, arch and version
 * in one string, and the labels (shared). The rest of the message goes.
 */
void
server_worker_set_hello(struct worker *w, json_t *msg)
{
	static const char	*keys[] = { "hostname", "os", "arch",
				    "version" };
	const char		*v[4];
	json_t			*labels = json_object_get(msg, "labels");
	size_t			 i, n = 0, len[4];

	for (i = 0; i < 4; i++) {
		v[i] = json_string_value(json_object_get(msg, keys[i]));
		if (v[i] == NULL)
			v[i] = "";
		len[i] = strlen(v[i]) + 1;
		n += len[i];
	}
	free(w->info);
	w->info = xmalloc(n);
	for (i = 0, n = 0; i < 4; n += len[i], i++)
		memcpy(w->info + n, v[i], len[i]);
	worker_labels_put(w->lset);
	if (labels == NULL) {
		labels = json_object();
		w->lset = worker_labels_get(labels);
		json_decref(labels);
	} else
		w->lset = worker_labels_get(labels);
	w->labels = w->lset->labels;
}

/* Field i of the info (0 hostname, 1 os, 2 arch, 3 version). */
static const char *
worker_info(struct worker *w, int i)
{
	const char	*p = w->info;

	if (p == NULL)
		return ("");
	while (i-- > 0)
		p += strlen(p) + 1;
	return (p);
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
	    "hostname", worker_info(w, 0),
	    "os", worker_info(w, 1),
	    "arch", worker_info(w, 2),
	    "version", worker_info(w, 3),
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
int
server_worker_pending_ends(struct worker *w, uint32_t ch)
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

struct chan *
server_worker_chan_find(struct worker *w, uint32_t ch)
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
void
server_worker_lose_chans(struct worker *w, const char *why, int sent_only)
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
		server_worker_lose_chans(w, why, 0);
		server_worker_set_state(w, WORKER_GONE);
		evtimer_add(w->timer, &tv);
		return;
	}
	if (w->state == WORKER_GONE) {
		worker_index_remove(w);
		worker_free(w);
	}
}

/* The worker's link dropped: wait for it within the resume window. */
void
server_worker_link_lost(struct worker *w, const char *why)
{
	struct timeval	tv = { serve_opts.resume_window, 0 };

	log_warnx("worker %s (%s): link lost: %s", w->id, w->addr, why);
	snprintf(w->why, sizeof w->why, "%s", why);
	w->ws = NULL;
	server_worker_set_state(w, WORKER_AWAY);
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
	free(w->info);
	worker_labels_put(w->lset);
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

	server_worker_stopping = 1;
	TAILQ_FOREACH(w, &all_workers, entry) {
		if (w->link != NULL) {
			ws_conn_close(w->ws, 1001, "controller stopping");
			n++;
		}
	}
	return (n);
}

/* How many workers still have a link. */
int
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
		worker_index_remove(w);
		if (w->link != NULL) {
			ws_conn_close(w->ws, 1001, "controller stopping");
			server_link_free(w->link);
		}
		worker_free(w);
	}
	free(worker_index);
	worker_index = NULL;
	worker_index_size = 0;
}

/* A new worker record for id. */
struct worker *
server_worker_create(const char *id)
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
	worker_index_add(w);
	return (w);
}

/*
 * A known worker says hello again over link l with boot: the old link
 * (if any) goes; its work resumes if boot is the same process, else the
 * old process's requests are lost. Returns 1 when it resumes.
 */
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


/*
 * worker-link.c: the worker's links to its controllers, one per
 * controller address (worker-resolve.c finds them from the
 * --server-url list). A link dials (TCP, TLS, the HTTP upgrade), says
 * hello with the channels it holds, and routes what its controller
 * sends to jobs (job.c) and views (worker-view.c). When it drops, it
 * dials again within a second if it was registered, then with
 * exponential backoff and full jitter, and at a 503's Retry-After; the
 * other links and every job run on meanwhile.
 *
 * Channels are per link: each controller numbers its own. Sessions are
 * the worker's and every link sees each one (worker-view.c). RPCs are
 * answered on the link that asked: the request carries the link's
 * serial under "_link" (worker_reply finds it there).
 *
 * Each link keeps the secret its controller gave in its own file of the
 * state folder ("secret" for the first link, as before several).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "sandd.h"
#include "worker-link.h"

static const char *state_names[] = { "idle", "dialing", "up", "welcomed",
    "stopping" };

static TAILQ_HEAD(, wlink) links = TAILQ_HEAD_INITIALIZER(links);
static int		 nlinks, serials;
static SSL_CTX		*link_tls;
static const char	*link_token;

static void	 link_schedule(struct wlink *);

/* Move l to state s, logging old -> new. */
static void
link_set_state(struct wlink *l, int s)
{
	int	was = l->state;

	if (s == was)
		return;
	log_debug("link: %s: %s -> %s", l->name, state_names[was],
	    state_names[s]);
	l->state = s;
	/* A shared job may hold its output for a link that is up again. */
	if (s == LINK_WELCOMED || was == LINK_WELCOMED)
		job_links_changed();
}

/* ---- for jobs and views ---- */

struct wlink *
wlink_next(struct wlink *l)
{
	return (l == NULL ? TAILQ_FIRST(&links) : TAILQ_NEXT(l, entry));
}

/* The link an RPC request came on, NULL if it has gone. */
struct wlink *
wlink_of_req(json_t *req)
{
	json_int_t	 serial;
	struct wlink	*l;

	serial = json_integer_value(json_object_get(req, "_link"));
	TAILQ_FOREACH(l, &links, entry)
		if (l->serial == serial)
			return (l);
	return (NULL);
}

/* Is l up and welcomed, so that its channels may send? */
int
wlink_connected(struct wlink *l)
{
	return (l != NULL && l->state == LINK_WELCOMED && l->ws != NULL);
}

/* Is any link welcomed? */
int
wlink_any_connected(void)
{
	struct wlink	*l;

	TAILQ_FOREACH(l, &links, entry)
		if (wlink_connected(l))
			return (1);
	return (0);
}

/* Can l take more now (connected, backlog under its mark)? */
int
wlink_writable(struct wlink *l)
{
	return (wlink_connected(l) && ws_conn_writable(l->ws));
}

/* How long l's controller keeps our requests after a cut, in seconds. */
int
wlink_window(struct wlink *l)
{
	return (l->window > 0 ? l->window : DEFAULT_RESUME_WINDOW);
}

/* Send a wire message on l if it is up (dropped otherwise: resent later). */
void
wlink_send(struct wlink *l, json_t *msg)
{
	if (l != NULL && l->ws != NULL && l->state >= LINK_UP &&
	    l->state != LINK_STOPPING)
		ws_conn_send_json(l->ws, msg);
}

/*
 * Send msg on l now, or once l is welcomed again: for what the hello
 * cannot say (a channel that went while the link was down).
 */
void
wlink_send_later(struct wlink *l, json_t *msg)
{
	if (l == NULL)
		return;
	if (wlink_connected(l)) {
		ws_conn_send_json(l->ws, msg);
		return;
	}
	if (l->later == NULL)
		l->later = json_array();
	if (json_array_size(l->later) < WIRE_MAX_CHANNELS)
		json_array_append(l->later, msg);
}

/* Send len bytes of buf from skip as one binary frame on l; -1 if down. */
int
wlink_send_buf(struct wlink *l, int stream, uint32_t ch, uint64_t off,
    struct evbuffer *buf, size_t skip, size_t len)
{
	uint8_t	h[WIRE_HDR_LEN];

	if (!wlink_connected(l))
		return (-1);
	wire_frame_header(h, stream, ch, off);
	return (ws_conn_send_binary_buf(l->ws, h, sizeof h, buf, skip, len));
}

/* A channel number for a new view on l, in the worker's range. */
uint32_t
wlink_view_ch(struct wlink *l)
{
	if (++l->next_view >= WIRE_VIEW_BASE)
		l->next_view = 1;
	return (WIRE_VIEW_BASE | l->next_view);
}

const char *
wlink_name(struct wlink *l)
{
	return (l != NULL ? l->name : "none");
}

/* ---- secrets ---- */

/*
 * Keep the secret the controller gave this id (in memory, and in the
 * state folder so that a restarted worker process proves it is us).
 */
static void
link_keep_secret(struct wlink *l, const char *s)
{
	if (s == NULL || strlen(s) != 64 || (l->secret != NULL &&
	    strcmp(s, l->secret) == 0))
		return;
	if (l->secret != NULL) {
		compat_explicit_bzero(l->secret, strlen(l->secret));
		free(l->secret);
	}
	l->secret = xstrdup(s);
	state_write(l->secret_file, l->secret, strlen(l->secret));
}

/* The secret kept by an earlier process of this worker, if any. */
static void
link_load_secret(struct wlink *l)
{
	char	*s = state_read(l->secret_file);
	size_t	 n;

	if (s == NULL)
		return;
	n = strcspn(s, " \t\r\n");
	s[n] = '\0';
	if (n == 64)
		l->secret = xstrdup(s);
	compat_explicit_bzero(s, strlen(s));
	free(s);
}

/* Name l's secret file: "secret" for the first, else by URL and index. */
static void
link_secret_file(struct wlink *l)
{
	unsigned char	 md[32];
	char		 hex[65], *key;

	if (l->t->index == 0 && l->index == 0) {
		snprintf(l->secret_file, sizeof l->secret_file, "secret");
		return;
	}
	xasprintf(&key, "%s#%d", l->t->text, l->index);
	SHA256((const unsigned char *)key, strlen(key), md);
	free(key);
	util_sha256_hex(md, hex);
	snprintf(l->secret_file, sizeof l->secret_file, "secret-%.16s", hex);
}

/* ---- messages from the controller ---- */

/* welcome: registered; every channel starts again from its acks. */
static void
link_welcome(struct wlink *l, __unused uint32_t ch, json_t *msg)
{
	json_t	*v, *m;
	size_t	 i;

	if (json_is_integer(v = json_object_get(msg, "resume_window")))
		l->window = (int)json_integer_value(v);
	link_set_state(l, LINK_WELCOMED);
	link_keep_secret(l, json_string_value(json_object_get(msg, "secret")));
	log_info("link: %s: registered as %s%s", l->name, worker_opts.id,
	    json_is_true(json_object_get(msg, "resumed")) ? " (resumed)" : "");
	evtimer_del(l->orphan_ev);
	job_link_up(l);
	view_link_up(l);
	json_array_foreach(l->later, i, m)
		ws_conn_send_json(l->ws, m);
	json_decref(l->later);
	l->later = NULL;
}

/* req: an RPC, answered on this link. */
static void
link_rpc(struct wlink *l, __unused uint32_t ch, json_t *msg)
{
	json_object_set_new(msg, "_link", json_integer(l->serial));
	worker_rpc(msg);
}

/* open: a new channel. */
static void
link_open(struct wlink *l, uint32_t ch, json_t *msg)
{
	if (ch >= WIRE_VIEW_BASE) {
		log_warnx("link: %s: open of channel %u, in the worker's range",
		    l->name, ch);
		return;
	}
	job_open(l, ch, msg);
}

/* What the worker does with each message from a controller. */
static const struct {
	void	(*fn)(struct wlink *, uint32_t, json_t *);
	int	 flags;
#define LINK_ANY_STATE	0x1	/* also before the welcome */
#define LINK_CHANNEL	0x2	/* names a channel */
} link_msgs[WIRE_NTYPES] = {
	[WIRE_T_WELCOME] = { link_welcome, LINK_ANY_STATE },
	[WIRE_T_REQ] = { link_rpc, 0 },
	[WIRE_T_OPEN] = { link_open, LINK_CHANNEL },
	[WIRE_T_ACK] = { NULL, LINK_CHANNEL },
	[WIRE_T_EOF] = { NULL, LINK_CHANNEL },
	[WIRE_T_SIGNAL] = { NULL, LINK_CHANNEL },
	[WIRE_T_DETACH] = { NULL, LINK_CHANNEL },
	[WIRE_T_RELEASE] = { NULL, LINK_CHANNEL },
	[WIRE_T_CANCEL] = { NULL, LINK_CHANNEL },
	[WIRE_T_RESIZE] = { NULL, LINK_CHANNEL },
};

/* Route one message of type for channel ch: to a view or a job. */
static void
link_chan(struct wlink *l, enum wire_type type, uint32_t ch, json_t *msg)
{
	if (ch >= WIRE_VIEW_BASE)
		view_message(l, ch, type, msg);
	else
		job_message(l, ch, type, msg);
}

/* A text message from the controller: dispatch it by type. */
static void
link_text_cb(__unused struct ws_conn *ws, const char *p, size_t len,
    void *arg)
{
	struct wlink	*l = arg;
	json_t		*msg;
	json_error_t	 err;
	const char	*t;
	enum wire_type	 type;
	uint32_t	 ch;
	int		 flags;

	msg = json_loadb(p, len, JSON_ALLOW_NUL, &err);
	if (msg == NULL || !json_is_object(msg) ||
	    (t = json_string_value(json_object_get(msg, "t"))) == NULL) {
		log_warnx("link: %s: bad message from the controller", l->name);
		json_decref(msg);
		return;
	}
	type = wire_type_of(msg);
	ch = wire_msg_chan(msg);
	flags = link_msgs[type].flags;
	if (link_msgs[type].fn == NULL && !(flags & LINK_CHANNEL))
		log_warnx("link: %s: unknown message '%s'", l->name, t);
	else if (l->state != LINK_WELCOMED && !(flags & LINK_ANY_STATE))
		log_warnx("link: %s: '%s' before welcome", l->name, t);
	else if ((flags & LINK_CHANNEL) && ch == 0)
		log_warnx("link: %s: '%s' without a channel", l->name, t);
	else if (link_msgs[type].fn == NULL)
		link_chan(l, type, ch, msg);
	else
		link_msgs[type].fn(l, ch, msg);
	json_decref(msg);
}

/* A binary message from the controller: input for a channel. */
static void
link_binary_cb(__unused struct ws_conn *ws, const uint8_t *p, size_t len,
    void *arg)
{
	struct wlink	*l = arg;
	const uint8_t	*data;
	size_t		 dlen;
	uint64_t	 off;
	uint32_t	 ch;
	int		 type;

	if (wire_frame_parse(p, len, &type, &ch, &off, &data, &dlen) != 0 ||
	    type != WIRE_IN) {
		log_warnx("link: %s: bad binary frame", l->name);
		return;
	}
	if (ch >= WIRE_VIEW_BASE)
		view_input(l, ch, off, data, dlen);
	else
		job_input(l, ch, off, data, dlen);
}

/* The controller did not take the link back in time: end its orphans. */
static void
link_orphan_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	job_link_orphans(arg);
}

/* The link is gone: dial again, or stop if we were replaced. */
static void
link_closed_cb(__unused struct ws_conn *ws, const char *why, void *arg)
{
	struct wlink	*l = arg;
	struct timeval	 tv;
	int		 was = l->state;

	log_warnx("link: lost: %s (%s)", why, l->name);
	if (ws_conn_close_code(l->ws) == WS_CLOSE_REPLACED) {
		log_warnx("link: %s: another worker connected with id '%s' and "
		    "replaced this one; stopping", l->name, worker_opts.id);
		link_set_state(l, LINK_STOPPING);
		worker_replaced();
	}
	ws_conn_free(l->ws);
	l->ws = NULL;
	event_del(l->stable_ev);
	if (was == LINK_WELCOMED) {
		tv.tv_sec = wlink_window(l);
		tv.tv_usec = 0;
		evtimer_add(l->orphan_ev, &tv);
	}
	if (l->state == LINK_STOPPING) {
		if (wlink_stop_all() == 0)
			event_base_loopexit(ev_base, NULL);
		return;
	}
	/*
	 * A controller we were registered with went away: it is most
	 * likely restarting, and the resume window runs. Dial again within
	 * the first second, unless it went away the same way lately (a
	 * controller that drops every link gets the usual backoff).
	 */
	if (was == LINK_WELCOMED &&
	    util_now() - l->last_fast >= BACKOFF_STABLE_S) {
		l->fast_retry = 1;
		l->last_fast = util_now();
		l->attempt = 0;
	}
	link_set_state(l, LINK_IDLE);
	link_schedule(l);
}

/* The link's backlog went down: let its jobs and views send more. */
static void
link_drained_cb(__unused struct ws_conn *ws, void *arg)
{
	struct wlink	*l = arg;

	if (!wlink_connected(l))
		return;
	job_link_writable(l);
	view_link_writable(l);
}

static const struct ws_callbacks link_callbacks = {
	link_text_cb, link_binary_cb, link_closed_cb, link_drained_cb
};

/* Say who we are, with every channel this link holds. */
static void
link_hello(struct wlink *l)
{
	struct utsname	 u;
	char		 host[256];
	json_t		*hello, *chans;

	uname(&u);
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	chans = job_list_json(l);
	view_hello(l, chans);
	hello = wire_msg(WIRE_T_HELLO);
	json_object_update_new(hello, json_pack("{s:i, s:s, s:s, s:O, s:s, "
	    "s:s, s:s, s:s, s:o}", "proto", WIRE_PROTOCOL, "id", worker_opts.id,
	    "boot", worker_boot(), "labels", worker_opts.labels, "hostname",
	    host, "os", u.sysname, "arch", u.machine, "version", SANDD_VERSION,
	    "channels", chans));
	ws_conn_send_json(l->ws, hello);
	json_decref(hello);
}

/* ---- dialing ---- */

/* The link stayed up long enough: the backoff starts over. */
static void
link_stable_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct wlink	*l = arg;

	l->attempt = 0;
}

/*
 * The dial or its upgrade failed: drop it and wait for the next. A
 * name is resolved again (at most every second): the controller may
 * have moved.
 */
static void
link_dial_failed(struct wlink *l)
{
	bufferevent_free(l->dial_bev);
	l->dial_bev = NULL;
	link_set_state(l, LINK_IDLE);
	link_schedule(l);
	if (!l->t->literal && util_now() - l->t->resolved >= 1)
		target_resolve(l->t);
}

/*
 * The registered link that dialed the same address as l: two URLs (a
 * name and its address, say) of one controller. NULL if none.
 */
static struct wlink *
link_twin(struct wlink *l)
{
	struct wlink	*o;

	TAILQ_FOREACH(o, &links, entry) {
		if (o != l && wlink_connected(o) && o->salen == l->salen &&
		    l->salen != 0 && memcmp(&o->sa, &l->sa, l->salen) == 0)
			return (o);
	}
	return (NULL);
}

/* Log what a refusal of the upgrade says; keep a 503's Retry-After. */
static void
link_refused(struct wlink *l, struct http_msg *m)
{
	struct wlink	*twin;
	const char	*ra;

	if (m->status == 401)
		log_warnx("link: %s refused our token (401); check "
		    "--token-file", l->name);
	if (m->status == 409 && (twin = link_twin(l)) != NULL) {
		/* Its id is ours already, through the twin: no flap. */
		log_info("link: %s: the controller %s, where this worker "
		    "is registered; trying again in %d s", l->name,
		    twin->name, BACKOFF_STABLE_S);
		l->retry_after = BACKOFF_STABLE_S;
	} else if (m->status == 409)
		log_warnx("link: %s: id %s is in use by a worker we cannot "
		    "prove to be (409)", l->name, worker_opts.id);
	if (m->status == 403)
		log_warnx("link: %s refused our certificate for id %s (403)",
		    l->name, worker_opts.id);
	if (m->status == 503 && (ra = http_msg_get(m, "Retry-After")) != NULL)
		l->retry_after = atof(ra);
}

/* The upgrade answer arrived: check it and start the WebSocket. */
static void
link_dial_read_cb(struct bufferevent *bev, void *arg)
{
	struct wlink	*l = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct http_msg	 m;
	struct timeval	 tv = { BACKOFF_STABLE_S, 0 };
	struct ws_params wp;
	char		*cause;
	size_t		 len = evbuffer_get_length(in);
	int		 used, r, mask;

	if (len > HTTP_MAX_HEADER)
		len = HTTP_MAX_HEADER;
	r = http_msg_parse(&m, (char *)evbuffer_pullup(in, (ssize_t)len), len,
	    0, &used);
	if (r == 0)
		return;
	if (r < 0) {
		log_warnx("link: %s sent a malformed HTTP answer", l->name);
		link_dial_failed(l);
		return;
	}
	evbuffer_drain(in, (size_t)used);
	link_refused(l, &m);
	r = http_upgrade_accepted(&m, l->ws_key, &mask, &cause);
	http_msg_clear(&m);
	if (r != 0) {
		log_warnx("link: %s: %s", l->name, cause);
		free(cause);
		link_dial_failed(l);
		return;
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	/* The handshake deadline is over: pings watch the link from now. */
	bufferevent_set_timeouts(bev, NULL, NULL);
	l->dial_bev = NULL;
	wp.flags = mask || worker_opts.ws_mask ? 0 : WS_NO_MASK;
	wp.ping_interval = worker_opts.ping_interval;
	wp.ping_timeout = worker_opts.ping_timeout;
	wp.max_message = WIRE_MAX_MSG;
	l->ws = ws_conn_create(bev, &wp, &link_callbacks, l);
	link_set_state(l, LINK_UP);
	link_hello(l);
	evtimer_add(l->stable_ev, &tv);
}

/* Connected: send the upgrade request. */
static void
link_upgrade(struct wlink *l, struct bufferevent *bev)
{
	struct http_upgrade u;
	unsigned char	 raw[16];
	char		*b64;
	int		 one = 1;

	/* Small messages (acks, replies) must not wait for Nagle. */
	setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof one);
	RAND_bytes(raw, sizeof raw);
	b64 = util_base64(raw, sizeof raw);
	snprintf(l->ws_key, sizeof l->ws_key, "%s", b64);
	free(b64);
	memset(&u, 0, sizeof u);
	u.host = l->t->host;
	u.port = l->t->port;
	u.path = l->t->path;
	u.key = l->ws_key;
	u.id = worker_opts.id;
	u.token = link_token;
	if (l->secret == NULL)	/* another process of ours may have it */
		link_load_secret(l);
	u.secret = l->secret;
	u.mask = worker_opts.ws_mask;
	http_upgrade_request(bufferevent_get_output(bev), &u);
}

static void
link_dial_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct wlink	*l = arg;
	char		*err;

	if (what & BEV_EVENT_CONNECTED) {
		link_upgrade(l, bev);
		return;
	}
	if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
		return;
	if ((what & BEV_EVENT_ERROR) && (err = tls_bev_error(bev)) != NULL) {
		log_warnx("link: %s: TLS failed: %s", l->name, err);
		free(err);
	} else if (what & BEV_EVENT_EOF)
		log_warnx("link: %s closed the connection", l->name);
	else
		log_warnx("link: connect to %s: %s", l->name,
		    strerror(EVUTIL_SOCKET_ERROR()));
	link_dial_failed(l);
}

/* Dial the link's address: TCP (and TLS), then the upgrade. */
void
link_dial(struct wlink *l)
{
	struct timeval	tv = { HTTP_HANDSHAKE_TIMEOUT, 0 };

	if (l->salen == 0) {
		link_set_state(l, LINK_IDLE);
		return;		/* the resolution will dial it */
	}
	link_set_state(l, LINK_DIALING);
	l->attempt++;
	if (link_tls != NULL) {
		l->dial_bev = bufferevent_openssl_socket_new(ev_base, -1,
		    tls_client_ssl(link_tls, l->t->host),
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_openssl_set_allow_dirty_shutdown(l->dial_bev, 1);
	} else
		l->dial_bev = bufferevent_socket_new(ev_base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(l->dial_bev, link_dial_read_cb, NULL,
	    link_dial_event_cb, l);
	bufferevent_set_timeouts(l->dial_bev, &tv, &tv);
	bufferevent_enable(l->dial_bev, EV_READ | EV_WRITE);
	log_debug("link: %s: dialing (attempt %d)", l->name, l->attempt);
	if (bufferevent_socket_connect(l->dial_bev, (struct sockaddr *)&l->sa,
	    (int)l->salen) != 0) {
		log_warnx("link: %s: cannot dial", l->name);
		link_dial_failed(l);
	}
}

/* The backoff has passed: dial again. */
static void
link_redial_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	link_dial(arg);
}

/*
 * Wait before the next dial: full jitter over an exponential cap, or
 * over the first second after losing a controller. A 503's Retry-After
 * is when the controller expects to serve us: then, plus up to a second
 * of jitter so that a herd told the same second spreads over it.
 */
static void
link_schedule(struct wlink *l)
{
	struct timeval	tv;
	double		cap, delay;
	uint32_t	r;

	cap = BACKOFF_START_MS;
	for (int i = 1; i < l->attempt && cap < BACKOFF_CAP_MS; i++)
		cap *= 2;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	/*
	 * A flapping link must not make us miss the resume window: the
	 * controller holds requests for us only that long.
	 */
	if (l->window > 0 && cap > l->window * 1000.0 / 3)
		cap = l->window * 1000.0 / 3;
	if (l->fast_retry)
		cap = BACKOFF_FIRST_MS;
	l->fast_retry = 0;
	RAND_bytes((unsigned char *)&r, sizeof r);
	delay = cap * ((double)r / 4294967296.0) / 1000.0;
	if (l->retry_after > 0) {
		delay = l->retry_after + BACKOFF_FIRST_MS * ((double)r /
		    4294967296.0) / 1000.0;
		l->retry_after = 0;
	}
	log_debug("link: %s: next dial in %.2f s", l->name, delay);
	util_timeval(&tv, delay);
	evtimer_add(l->redial_ev, &tv);
}

/* ---- links and addresses ---- */

/* Name l for the logs: host:port, with the address for a name's links. */
void
link_set_name(struct wlink *l)
{
	if (l->t->literal || l->salen == 0)
		snprintf(l->name, sizeof l->name, "%s:%s", l->t->host,
		    l->t->port);
	else
		snprintf(l->name, sizeof l->name, "%s:%s (%s)", l->t->host,
		    l->t->port, l->addr);
}

/* A new link of target t to address sa (NULL: none yet). */
struct wlink *
link_create(struct wtarget *t, const struct sockaddr *sa, socklen_t salen,
    const char *addr)
{
	struct wlink	*l;

	l = xcalloc(1, sizeof *l);
	l->t = t;
	l->serial = ++serials;
	l->index = t->made++;
	if (sa != NULL) {
		memcpy(&l->sa, sa, salen);
		l->salen = salen;
		snprintf(l->addr, sizeof l->addr, "%s", addr);
	}
	link_set_name(l);
	link_secret_file(l);
	link_load_secret(l);
	l->redial_ev = evtimer_new(ev_base, link_redial_cb, l);
	l->stable_ev = evtimer_new(ev_base, link_stable_cb, l);
	l->orphan_ev = evtimer_new(ev_base, link_orphan_cb, l);
	TAILQ_INSERT_TAIL(&links, l, entry);
	nlinks++;
	return (l);
}

/* How many links there are. */
int
link_count(void)
{
	return (nlinks);
}

/* Free what l holds, and l. */
static void
link_destroy(struct wlink *l)
{
	TAILQ_REMOVE(&links, l, entry);
	nlinks--;
	if (l->dial_bev != NULL)
		bufferevent_free(l->dial_bev);
	if (l->ws != NULL)
		ws_conn_free(l->ws);
	event_free(l->redial_ev);
	event_free(l->stable_ev);
	event_free(l->orphan_ev);
	if (l->secret != NULL) {
		compat_explicit_bzero(l->secret, strlen(l->secret));
		free(l->secret);
	}
	json_decref(l->later);
	free(l);
}

/* Free a link that is down; its jobs and views go or lose it. */
void
link_free(struct wlink *l)
{
	log_info("link: %s: its address is gone; link closed", l->name);
	job_link_gone(l);
	view_link_gone(l);
	link_destroy(l);
}

/* ---- start and stop ---- */

/* Start dialing every target with TLS context tls and token. */
void
wlink_start(void *tls, const char *token)
{
	link_tls = tls;
	link_token = token;
	target_start_all();
}

/*
 * Stop: close every link that is open (1001). Returns how many are
 * still closing; the last one's close ends the loop.
 */
int
wlink_stop_all(void)
{
	struct wlink	*l;
	int		 n = 0;

	TAILQ_FOREACH(l, &links, entry) {
		event_del(l->redial_ev);
		if (l->dial_bev != NULL) {
			bufferevent_free(l->dial_bev);
			l->dial_bev = NULL;
		}
		if (l->ws == NULL)
			continue;
		if (l->state != LINK_STOPPING) {
			link_set_state(l, LINK_STOPPING);
			ws_conn_close(l->ws, 1001, "worker stopping");
		}
		n++;
	}
	return (n);
}

/* The worker has stopped: free every link and target. */
void
wlink_free_all(void)
{
	struct wlink	*l;

	while ((l = TAILQ_FIRST(&links)) != NULL)
		link_destroy(l);
	target_free_all();
}

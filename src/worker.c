/*
 * worker.c: `sandd worker`. Dials the controller (ws:// or wss://),
 * upgrades, says hello with every channel it still holds, and routes
 * wire messages to jobs. When the link drops it dials again within a
 * second, then with exponential backoff and full jitter, and when the
 * controller answers 503 at the time its Retry-After names; the jobs run
 * on meanwhile.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "sandd.h"

static struct {
	int		 tls;
	char		*host;
	char		*port;
	char		*path;
} url;

static char		 boot[33];
static char		*token;
static char		*secret;	/* given by the controller */
static SSL_CTX		*worker_tls;
static struct evdns_base *dns;

static int		 state;
#define LINK_IDLE	0	/* waiting to dial */
#define LINK_DIALING	1	/* TCP/TLS connect and HTTP upgrade */
#define LINK_UP		2	/* hello sent */
#define LINK_WELCOMED	3	/* controller answered */
#define LINK_STOPPING	4
static const char *state_names[] = { "idle", "dialing", "up", "welcomed",
    "stopping" };

static struct bufferevent *dial_bev;
static struct ws_conn	*link_ws;
static char		 ws_key[25];
static struct event	*redial_ev, *stable_ev, *stop_ev;
static struct event	*sig_ev[4];
static int		 attempt;
static int		 exit_status;
static double		 retry_after;
static int		 fast_retry;	/* the next dial comes within 1 s */
static double		 last_fast;	/* when the last fast retry was due */
static int		 link_window;	/* resume window from the welcome */

/* Children: pid -> callback, so jobs and sessions share one reaper. */
struct child {
	pid_t		 pid;
	void		(*cb)(pid_t, int, void *);
	void		*arg;
	TAILQ_ENTRY(child) entry;
};
static TAILQ_HEAD(, child) children = TAILQ_HEAD_INITIALIZER(children);

static void	 worker_dial(void);
static void	 worker_load_secret(void);
static void	 worker_schedule(void);

/* Move the link to state s, logging old -> new. */
static void
worker_set_state(int s)
{
	if (s == state)
		return;
	log_debug("link: %s -> %s", state_names[state], state_names[s]);
	state = s;
}

/* The dial or its upgrade failed: drop it and wait for the next. */
static void
worker_dial_failed(void)
{
	bufferevent_free(dial_bev);
	dial_bev = NULL;
	worker_set_state(LINK_IDLE);
	worker_schedule();
}

/* Call cb(pid, status, arg) when pid is reaped. */
void
worker_child_add(pid_t pid, void (*cb)(pid_t, int, void *), void *arg)
{
	struct child	*c;

	c = xcalloc(1, sizeof *c);
	c->pid = pid;
	c->cb = cb;
	c->arg = arg;
	TAILQ_INSERT_TAIL(&children, c, entry);
}

/* Reap every child that exited and call its callback. */
static void
worker_reap(void)
{
	struct child	*c;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(c, &children, entry)
			if (c->pid == pid)
				break;
		if (c == NULL)
			continue;
		TAILQ_REMOVE(&children, c, entry);
		c->cb(pid, status, c->arg);
		free(c);
	}
}

/* Is the link up and welcomed, so that channels may send? */
int
worker_connected(void)
{
	return (state == LINK_WELCOMED && link_ws != NULL);
}

/* Send a wire message if the link is up (dropped otherwise: resent later). */
void
worker_send(json_t *msg)
{
	if (link_ws != NULL && state >= LINK_UP && state != LINK_STOPPING)
		ws_conn_send_json(link_ws, msg);
}

/* Send len bytes of buf from skip as one binary frame; -1 if down. */
int
worker_send_buf(int stream, uint32_t ch, uint64_t off, struct evbuffer *buf,
    size_t skip, size_t len)
{
	uint8_t	h[WIRE_HDR_LEN];

	if (!worker_connected())
		return (-1);
	wire_frame_header(h, stream, ch, off);
	return (ws_conn_send_binary_buf(link_ws, h, sizeof h, buf, skip, len));
}

/* Can the link take more now (connected, backlog under its mark)? */
int
worker_writable(void)
{
	return (worker_connected() && ws_conn_writable(link_ws));
}

/* Reply to the RPC req with the fields of res (stolen). */
void
worker_reply(json_t *req, json_t *res)
{
	json_t	*m;

	m = wire_msg(WIRE_T_RES);
	json_object_set(m, "rid", json_object_get(req, "rid"));
	json_object_update_new(m, res);
	worker_send(m);
	json_decref(m);
}

/* An error reply to the RPC req. */
void
worker_reply_error(json_t *req, const char *code, int err, const char *fmt,
    ...)
{
	va_list	 ap;
	json_t	*e;

	va_start(ap, fmt);
	e = wire_verror(code, err, fmt, ap);
	va_end(ap);
	worker_reply(req, json_pack("{s:b, s:o}", "ok", 0, "error", e));
}

/* The RPCs the worker answers. */
static const struct {
	const char	*op;
	void		(*fn)(json_t *);
} worker_rpcs[] = {
	{ "stat", worker_file_stat },
	{ "session.read", worker_session_read },
	{ "session.resize", worker_session_resize },
	{ "session.run", worker_session_run },
	{ "session.signal", worker_session_signal },
	{ "session.close", worker_session_close },
	{ "workspace.create", worker_workspace_create },
	{ "workspace.list", worker_workspace_list },
	{ "workspace.destroy", worker_workspace_destroy },
};

/* req: run the RPC its op names; it replies. */
static void
link_rpc(__unused enum wire_type type, __unused uint32_t ch, json_t *msg)
{
	const char	*op = json_string_value(json_object_get(msg, "op"));
	size_t		 i;

	if (op == NULL) {
		worker_reply_error(msg, "bad_request", 0, "rpc without op");
		return;
	}
	for (i = 0; i < sizeof worker_rpcs / sizeof worker_rpcs[0]; i++) {
		if (strcmp(op, worker_rpcs[i].op) == 0) {
			worker_rpcs[i].fn(msg);
			return;
		}
	}
	worker_reply_error(msg, "unknown_op", 0, "unknown op '%s'", op);
}

/*
 * Keep the secret the controller gave this id (in memory, and in the
 * state folder so that a restarted worker process proves it is us).
 */
static void
worker_keep_secret(const char *s)
{
	if (s == NULL || strlen(s) != 64 || (secret != NULL &&
	    strcmp(s, secret) == 0))
		return;
	if (secret != NULL) {
		compat_explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	secret = xstrdup(s);
	state_write("secret", secret, strlen(secret));
}

/* welcome: registered; every channel starts again from its acks. */
static void
link_welcome(__unused enum wire_type type, __unused uint32_t ch,
    json_t *msg)
{
	json_t	*v;

	worker_set_state(LINK_WELCOMED);
	if (json_is_integer(v = json_object_get(msg, "resume_window")))
		link_window = (int)json_integer_value(v);
	worker_keep_secret(json_string_value(json_object_get(msg, "secret")));
	log_info("link: registered as %s%s", worker_opts.id,
	    json_is_true(json_object_get(msg, "resumed")) ? " (resumed)" : "");
	job_link_up(msg);
}

/* open: a new channel. */
static void
link_open(__unused enum wire_type type, uint32_t ch, json_t *msg)
{
	job_open(ch, msg);
}

/* Any other message for a channel. */
static void
link_chan(enum wire_type type, uint32_t ch, json_t *msg)
{
	job_message(ch, type, msg);
}

/* What the worker does with each message from the controller. */
static const struct {
	void	(*fn)(enum wire_type, uint32_t, json_t *);
	int	 flags;
#define LINK_ANY_STATE	0x1	/* also before the welcome */
#define LINK_CHANNEL	0x2	/* names a channel */
} link_msgs[WIRE_NTYPES] = {
	[WIRE_T_WELCOME] = { link_welcome, LINK_ANY_STATE },
	[WIRE_T_REQ] = { link_rpc, 0 },
	[WIRE_T_OPEN] = { link_open, LINK_CHANNEL },
	[WIRE_T_ACK] = { link_chan, LINK_CHANNEL },
	[WIRE_T_EOF] = { link_chan, LINK_CHANNEL },
	[WIRE_T_SIGNAL] = { link_chan, LINK_CHANNEL },
	[WIRE_T_DETACH] = { link_chan, LINK_CHANNEL },
	[WIRE_T_RELEASE] = { link_chan, LINK_CHANNEL },
	[WIRE_T_CANCEL] = { link_chan, LINK_CHANNEL },
	[WIRE_T_RESIZE] = { link_chan, LINK_CHANNEL },
};

/* A text message from the controller: dispatch it by type. */
static void
link_text_cb(__unused struct ws_conn *ws, const char *p, size_t len,
    __unused void *arg)
{
	json_t		*msg;
	json_error_t	 err;
	const char	*t;
	enum wire_type	 type;
	uint32_t	 ch;

	msg = json_loadb(p, len, JSON_ALLOW_NUL, &err);
	if (msg == NULL || !json_is_object(msg) ||
	    (t = json_string_value(json_object_get(msg, "t"))) == NULL) {
		log_warnx("link: bad message from the controller");
		json_decref(msg);
		return;
	}
	type = wire_type_of(msg);
	ch = wire_msg_chan(msg);
	if (link_msgs[type].fn == NULL)
		log_warnx("link: unknown message '%s'", t);
	else if (state != LINK_WELCOMED &&
	    !(link_msgs[type].flags & LINK_ANY_STATE))
		log_warnx("link: '%s' before welcome", t);
	else if ((link_msgs[type].flags & LINK_CHANNEL) && ch == 0)
		log_warnx("link: '%s' without a channel", t);
	else
		link_msgs[type].fn(type, ch, msg);
	json_decref(msg);
}

/* A binary message from the controller: input for a channel. */
static void
link_binary_cb(__unused struct ws_conn *ws, const uint8_t *p, size_t len,
    __unused void *arg)
{
	const uint8_t	*data;
	size_t		 dlen;
	uint64_t	 off;
	uint32_t	 ch;
	int		 type;

	if (wire_frame_parse(p, len, &type, &ch, &off, &data, &dlen) != 0 ||
	    type != WIRE_IN) {
		log_warnx("link: bad binary frame");
		return;
	}
	job_input(ch, off, data, dlen);
}

/* The link is gone: dial again, or stop if we were replaced. */
static void
link_closed_cb(__unused struct ws_conn *ws, const char *why,
    __unused void *arg)
{
	int	was = state;

	log_warnx("link: lost: %s", why);
	if (ws_conn_close_code(link_ws) == WS_CLOSE_REPLACED) {
		log_warnx("link: another worker connected with id '%s' and "
		    "replaced this one; stopping", worker_opts.id);
		worker_set_state(LINK_STOPPING);
		exit_status = 1;
		job_shutdown();
	}
	ws_conn_free(link_ws);
	link_ws = NULL;
	event_del(stable_ev);
	if (was == LINK_WELCOMED)
		job_link_down();
	if (state == LINK_STOPPING) {
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
	    util_now() - last_fast >= BACKOFF_STABLE_S) {
		fast_retry = 1;
		last_fast = util_now();
		attempt = 0;
	}
	worker_set_state(LINK_IDLE);
	worker_schedule();
}

/* The link's backlog went down: let the jobs send more. */
static void
link_drained_cb(__unused struct ws_conn *ws, __unused void *arg)
{
	if (worker_connected())
		job_link_writable();
}

static const struct ws_callbacks link_callbacks = {
	link_text_cb, link_binary_cb, link_closed_cb, link_drained_cb
};

/* Say who we are, with every channel we still hold. */
static void
worker_hello(void)
{
	struct utsname	 u;
	char		 host[256];
	json_t		*hello;

	uname(&u);
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	hello = wire_msg(WIRE_T_HELLO);
	json_object_update_new(hello, json_pack("{s:i, s:s, s:s, s:O, s:s, "
	    "s:s, s:s, s:s, s:o}", "proto", WIRE_PROTOCOL, "id", worker_opts.id,
	    "boot", boot, "labels", worker_opts.labels, "hostname", host,
	    "os", u.sysname, "arch", u.machine, "version", SANDD_VERSION,
	    "channels", job_list_json()));
	ws_conn_send_json(link_ws, hello);
	json_decref(hello);
}

/* The link stayed up long enough: the backoff starts over. */
static void
stable_cb(__unused evutil_socket_t fd, __unused short what, __unused void *arg)
{
	attempt = 0;
}

/* The upgrade answer arrived: check it and start the WebSocket. */
static void
dial_read_cb(struct bufferevent *bev, __unused void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct http_msg	 m;
	struct timeval	 tv = { BACKOFF_STABLE_S, 0 };
	struct ws_params wp;
	const char	*ra;
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
		log_warnx("link: %s:%s sent a malformed HTTP answer", url.host,
		    url.port);
		goto fail;
	}
	evbuffer_drain(in, (size_t)used);
	if (m.status == 401)
		log_warnx("link: %s:%s refused our token (401); check "
		    "--token-file", url.host, url.port);
	if (m.status == 409)
		log_warnx("link: %s:%s: id %s is in use by a worker we cannot "
		    "prove to be (409)", url.host, url.port, worker_opts.id);
	if (m.status == 403)
		log_warnx("link: %s:%s refused our certificate for id %s "
		    "(403)", url.host, url.port, worker_opts.id);
	if (m.status == 503 && (ra = http_msg_get(&m, "Retry-After")) != NULL)
		retry_after = atof(ra);
	r = http_upgrade_accepted(&m, ws_key, &mask, &cause);
	http_msg_clear(&m);
	if (r != 0) {
		log_warnx("link: %s:%s %s", url.host, url.port, cause);
		free(cause);
		goto fail;
	}
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	/* The handshake deadline is over: pings watch the link from now. */
	bufferevent_set_timeouts(bev, NULL, NULL);
	dial_bev = NULL;
	wp.flags = mask || worker_opts.ws_mask ? 0 : WS_NO_MASK;
	wp.ping_interval = worker_opts.ping_interval;
	wp.ping_timeout = worker_opts.ping_timeout;
	wp.max_message = WIRE_MAX_MSG;
	link_ws = ws_conn_create(bev, &wp, &link_callbacks, NULL);
	worker_set_state(LINK_UP);
	worker_hello();
	evtimer_add(stable_ev, &tv);
	return;
fail:
	worker_dial_failed();
}

/* Connected: send the upgrade request. */
static void
dial_event_cb(struct bufferevent *bev, short what, __unused void *arg)
{
	struct http_upgrade u;
	unsigned char	 raw[16];
	char		*b64, *err;
	int		 one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		/* Small messages (acks, replies) must not wait for Nagle. */
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof one);
		RAND_bytes(raw, sizeof raw);
		b64 = util_base64(raw, sizeof raw);
		snprintf(ws_key, sizeof ws_key, "%s", b64);
		free(b64);
		memset(&u, 0, sizeof u);
		u.host = url.host;
		u.port = url.port;
		u.path = url.path;
		u.key = ws_key;
		u.id = worker_opts.id;
		u.token = token;
		if (secret == NULL)	/* another process of ours may have it */
			worker_load_secret();
		u.secret = secret;
		u.mask = worker_opts.ws_mask;
		http_upgrade_request(bufferevent_get_output(bev), &u);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		if ((what & BEV_EVENT_ERROR) &&
		    (err = tls_bev_error(bev)) != NULL) {
			log_warnx("link: TLS with %s:%s failed: %s", url.host,
			    url.port, err);
			free(err);
		} else if (what & BEV_EVENT_EOF)
			log_warnx("link: %s:%s closed the connection",
			    url.host, url.port);
		else
			log_warnx("link: connect to %s:%s: %s", url.host,
			    url.port, strerror(EVUTIL_SOCKET_ERROR()));
		worker_dial_failed();
	}
}

/* Dial the controller: TCP (and TLS), then the upgrade. */
static void
worker_dial(void)
{
	struct timeval	tv = { HTTP_HANDSHAKE_TIMEOUT, 0 };

	worker_set_state(LINK_DIALING);
	attempt++;
	if (worker_tls != NULL) {
		dial_bev = bufferevent_openssl_socket_new(ev_base, -1,
		    tls_client_ssl(worker_tls, url.host),
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_openssl_set_allow_dirty_shutdown(dial_bev, 1);
	} else
		dial_bev = bufferevent_socket_new(ev_base, -1,
		    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(dial_bev, dial_read_cb, NULL, dial_event_cb, NULL);
	bufferevent_set_timeouts(dial_bev, &tv, &tv);
	bufferevent_enable(dial_bev, EV_READ | EV_WRITE);
	log_debug("link: dialing %s:%s (attempt %d)", url.host, url.port,
	    attempt);
	if (bufferevent_socket_connect_hostname(dial_bev, dns, AF_UNSPEC,
	    url.host, atoi(url.port)) != 0) {
		log_warnx("link: cannot dial %s:%s", url.host, url.port);
		worker_dial_failed();
	}
}

/* The backoff has passed: dial again. */
static void
redial_cb(__unused evutil_socket_t fd, __unused short what, __unused void *arg)
{
	worker_dial();
}

/*
 * Wait before the next dial: full jitter over an exponential cap, or
 * over the first second after losing a controller. A 503's Retry-After
 * is when the controller expects to serve us: then, plus up to a second
 * of jitter so that a herd told the same second spreads over it.
 */
static void
worker_schedule(void)
{
	struct timeval	tv;
	double		cap, delay;
	uint32_t	r;

	cap = BACKOFF_START_MS;
	for (int i = 1; i < attempt && cap < BACKOFF_CAP_MS; i++)
		cap *= 2;
	if (cap > BACKOFF_CAP_MS)
		cap = BACKOFF_CAP_MS;
	/*
	 * A flapping link must not make us miss the resume window: the
	 * controller holds requests for us only that long.
	 */
	if (link_window > 0 && cap > link_window * 1000.0 / 3)
		cap = link_window * 1000.0 / 3;
	if (fast_retry)
		cap = BACKOFF_FIRST_MS;
	fast_retry = 0;
	RAND_bytes((unsigned char *)&r, sizeof r);
	delay = cap * ((double)r / 4294967296.0) / 1000.0;
	if (retry_after > 0) {
		delay = retry_after + BACKOFF_FIRST_MS * ((double)r /
		    4294967296.0) / 1000.0;
		retry_after = 0;
	}
	log_debug("link: next dial in %.2f s", delay);
	util_timeval(&tv, delay);
	evtimer_add(redial_ev, &tv);
}

/* SIGCHLD reaps; TERM and INT stop the worker, HUP is ignored. */
static void
worker_signal_cb(evutil_socket_t sig, __unused short what, __unused void *arg)
{
	struct timeval	tv = { 2, 0 };

	if (sig == SIGCHLD) {
		worker_reap();
		return;
	}
	if (sig == SIGHUP)
		return;
	log_info("signal %d: stopping", (int)sig);
	if (state == LINK_STOPPING)
		return;
	event_del(redial_ev);
	job_shutdown();
	if (dial_bev != NULL) {
		bufferevent_free(dial_bev);
		dial_bev = NULL;
	}
	if (link_ws != NULL) {
		worker_set_state(LINK_STOPPING);
		ws_conn_close(link_ws, 1001, "worker stopping");
		evtimer_add(stop_ev, &tv);	/* do not wait for ever */
		return;
	}
	event_base_loopexit(ev_base, NULL);
}

/* The close did not finish in time: stop anyway. */
static void
stop_cb(__unused evutil_socket_t fd, __unused short what, __unused void *arg)
{
	event_base_loopexit(ev_base, NULL);
}

/* Split ws[s]://HOST:PORT/PATH. */
static int
worker_parse_url(const char *s, char **cause)
{
	const char	*p, *slash;
	char		*hp;

	if (strncmp(s, "ws://", 5) == 0)
		p = s + 5;
	else if (strncmp(s, "wss://", 6) == 0) {
		p = s + 6;
		url.tls = 1;
	} else {
		xasprintf(cause, "bad --server-url '%s' (want "
		    "ws://HOST:PORT/ws or wss://...)", s);
		return (-1);
	}
	slash = strchr(p, '/');
	hp = slash != NULL ? xstrndup(p, (size_t)(slash - p)) : xstrdup(p);
	url.path = xstrdup(slash != NULL ? slash : WIRE_PATH);
	if (util_parse_hostport(hp, &url.host, &url.port) != 0) {
		if (strchr(hp, ':') != NULL || *hp == '\0') {
			xasprintf(cause, "bad host or port in --server-url "
			    "'%s'", s);
			free(hp);
			return (-1);
		}
		url.host = xstrdup(hp);
		url.port = xstrdup(url.tls ? "443" : "80");
	}
	free(hp);
	return (0);
}

/*
 * Wipe the value of environment variable name where it lies (the memory
 * that /proc/PID/environ shows to every process of our user, the
 * commands we run among them) and drop it from the environment.
 */
static void
worker_env_scrub(const char *name)
{
	char	*v;

	if ((v = getenv(name)) != NULL)
		compat_explicit_bzero(v, strlen(v));
	unsetenv(name);
}

/* Warn about a token file that other users may read or write. */
static void
worker_token_file_check(FILE *f)
{
	struct stat	st;

	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)))
		log_warnx("token file %s has mode %04o: every user of this "
		    "host may %s it; make it 0600", worker_opts.token_file,
		    (unsigned)(st.st_mode & 07777),
		    (st.st_mode & S_IROTH) ? "read" : "write");
}

/*
 * Read the token from --token-file or $SANDD_TOKEN; either way it leaves
 * the environment, so no command inherits or reads it.
 */
static int
worker_load_token(char **cause)
{
	FILE		*f;
	char		 buf[4096];
	const char	*env;
	size_t		 n, start, end;
	int		 rc = 0;

	if (worker_opts.token_file != NULL) {
		if ((f = fopen(worker_opts.token_file, "r")) == NULL) {
			xasprintf(cause, "open %s: %s", worker_opts.token_file,
			    strerror(errno));
			rc = -1;
			goto out;
		}
		worker_token_file_check(f);
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		for (start = 0; start < n && strchr(" \t\r\n", buf[start]);
		    start++)
			;
		for (end = n; end > start && strchr(" \t\r\n", buf[end - 1]);
		    end--)
			;
		if (end == start) {
			xasprintf(cause, "%s is empty", worker_opts.token_file);
			rc = -1;
			goto out;
		}
		token = xstrndup(buf + start, end - start);
		compat_explicit_bzero(buf, sizeof buf);
	} else if ((env = getenv("SANDD_TOKEN")) != NULL && *env != '\0')
		token = xstrdup(env);
out:
	worker_env_scrub("SANDD_TOKEN");
	return (rc);
}

/* The secret kept by an earlier process of this worker, if any. */
static void
worker_load_secret(void)
{
	char	*s = state_read("secret");
	size_t	 n;

	if (s == NULL)
		return;
	n = strcspn(s, " \t\r\n");
	s[n] = '\0';
	if (n == 64)
		secret = xstrdup(s);
	compat_explicit_bzero(s, strlen(s));
	free(s);
}

/*
 * Before any work: the worker's groups (and what an earlier process of
 * this id left in them), its guardian, and its own protection from the
 * OOM killer (best effort: it needs CAP_SYS_RESOURCE).
 */
static void
worker_protect(void)
{
	unsigned char	 md[32];
	char		*self = NULL, buf[8192], hex[65];
	char		 name[WORKER_ID_MAX + 16];
	ssize_t		 n;
	int		 fd;

	if ((fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(fd, buf, sizeof buf - 1)) > 0) {
			buf[n] = '\0';
			self = buf;
		}
		close(fd);
	}
	/* The same id with another state folder is another worker. */
	snprintf(name, sizeof name, "%s", worker_opts.id);
	if (state_folder() != NULL) {
		SHA256((const unsigned char *)state_folder(),
		    strlen(state_folder()), md);
		util_sha256_hex(md, hex);
		snprintf(name, sizeof name, "%s.%.8s", worker_opts.id, hex);
	}
	cgroup_init("/sys/fs/cgroup", self != NULL ? self : "", name);
	cgroup_sweep();
	cgroup_guard_start();
	if (!cgroup_tracking() && prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("%s: PR_SET_CHILD_SUBREAPER", __func__);
	if ((fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) !=
	    -1) {
		if (write(fd, "-900", 4) != 4)
			log_debug("%s: oom_score_adj -900: %s", __func__,
			    strerror(errno));
		close(fd);
	}
}

/* Run the worker until SIGTERM or SIGINT. */
int
worker_main(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	char	*cause;
	int	 i;

	if (worker_parse_url(worker_opts.url, &cause) != 0 ||
	    worker_load_token(&cause) != 0 || path_init(&cause) != 0 ||
	    policy_init(&cause) != 0) {
		fprintf(stderr, "sandd worker: %s\n", cause);
		free(cause);
		return (2);
	}
	if (url.tls) {
		worker_tls = tls_client_ctx(worker_opts.ca,
		    worker_opts.tls_cert, worker_opts.tls_key, &cause);
		if (worker_tls == NULL) {
			fprintf(stderr, "sandd worker: %s\n", cause);
			free(cause);
			return (1);
		}
	}
	util_random_hex(boot, sizeof boot);
	dns = evdns_base_new(ev_base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	redial_ev = evtimer_new(ev_base, redial_cb, NULL);
	stable_ev = evtimer_new(ev_base, stable_cb, NULL);
	stop_ev = evtimer_new(ev_base, stop_cb, NULL);
	for (i = 0; i < 4; i++) {
		sig_ev[i] = evsignal_new(ev_base, sigs[i], worker_signal_cb,
		    NULL);
		evsignal_add(sig_ev[i], NULL);
	}
	state_init();
	worker_load_secret();
	worker_protect();
	workspace_init();
	job_init();
	hash_init();
	log_info("worker %s (boot %s) dialing %s", worker_opts.id, boot,
	    worker_opts.url);
	worker_dial();
	event_base_dispatch(ev_base);

	job_free_all();
	workspace_shutdown();
	cgroup_shutdown();
	hash_shutdown();
	if (link_ws != NULL)
		ws_conn_free(link_ws);
	for (i = 0; i < 4; i++)
		event_free(sig_ev[i]);
	event_free(redial_ev);
	event_free(stable_ev);
	event_free(stop_ev);
	if (dns != NULL)
		evdns_base_free(dns, 0);
	if (worker_tls != NULL)
		SSL_CTX_free(worker_tls);
	if (token != NULL) {
		compat_explicit_bzero(token, strlen(token));
		free(token);
	}
	if (secret != NULL) {
		compat_explicit_bzero(secret, strlen(secret));
		free(secret);
	}
	log_info("stopped");
	return (exit_status);
}

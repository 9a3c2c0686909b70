/*
 * server.c: `sandd serve`. The WebSocket listener with its HTTP front
 * door (upgrade, /health, /metrics, admission control), worker
 * authentication from the token file, signals, and the main loop.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "sandd.h"

struct server_stats server_stats;

/* One connection before its upgrade: reading the HTTP head. */
struct handshake {
	struct bufferevent	*bev;
	char			 addr[64];
	/* without port */
	char			 host[INET6_ADDRSTRLEN];
	int			 metrics_only;	/* on --metrics-listen */
	struct event		*timer;
	int			 closing;
	int			 admitted;	/* holds an admission slot */
	TAILQ_ENTRY(handshake)	 entry;
};
static TAILQ_HEAD(, handshake) handshakes =
    TAILQ_HEAD_INITIALIZER(handshakes);

static struct evconnlistener	*listener;
static struct evconnlistener	*metrics_listener;
static SSL_CTX			*server_tls;
static struct event		*ev_sigterm, *ev_sigint, *ev_sighup;

static void	 handshake_free(struct handshake *);
static void	 server_shutdown(void);

/* Give the admission slot back; served: the head was answered. */
static void
handshake_release(struct handshake *hs, int served)
{
	if (hs->admitted) {
		server_admit_leave(hs->host, served);
		hs->admitted = 0;
	}
}

/* Count one error reply by code, for stats and metrics. */
void
server_count_error(const char *code)
{
	json_t	*n;

	n = json_object_get(server_stats.errors, code);
	json_object_set_new(server_stats.errors, code,
	    json_integer(n != NULL ? json_integer_value(n) + 1 : 1));
}

static void
handshake_close_cb(struct bufferevent *bev, void *arg)
{
	struct handshake	*hs = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		handshake_free(hs);
}

static void
handshake_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct handshake	*hs = arg;
	char			*err;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if ((what & BEV_EVENT_ERROR) &&
		    (err = tls_bev_error(bev)) != NULL) {
			log_warnx("%s: TLS with %s failed: %s", __func__,
			    hs->addr, err);
			free(err);
		} else
			log_debug("%s: %s: closed during handshake", __func__,
			    hs->addr);
		handshake_free(hs);
	}
}

/* Send an answer and close once it is written. */
static void
handshake_answer(struct handshake *hs, const struct http_answer *a)
{
	handshake_release(hs, 1);
	http_respond(hs->bev, a);
	hs->closing = 1;
	bufferevent_disable(hs->bev, EV_READ);
	bufferevent_setcb(hs->bev, NULL, handshake_close_cb,
	    handshake_event_cb, hs);
	bufferevent_enable(hs->bev, EV_WRITE);
}

/* Send a plain text answer and close once it is written. */
static void
handshake_respond(struct handshake *hs, int status, const char *reason,
    const char *extra, const char *body)
{
	struct http_answer	a;

	memset(&a, 0, sizeof a);
	a.status = status;
	a.reason = reason;
	a.extra = extra;
	a.body = body;
	handshake_answer(hs, &a);
}

/* Fill a refusal of a page. */
static void
handshake_refusal(struct http_answer *a, int status, const char *reason,
    const char *extra, const char *body)
{
	memset(a, 0, sizeof *a);
	a->status = status;
	a->reason = reason;
	a->extra = extra;
	a->body = body;
}

/*
 * Answer GET or HEAD of /health or /metrics (a query string is ignored);
 * returns 0 when the target is neither. /metrics is served on the
 * metrics listener when there is one (--metrics-listen), else here, and
 * asks for the bearer token of --metrics-token-file when there is one.
 */
static int
handshake_page(struct handshake *hs, struct http_msg *m)
{
	struct http_answer	 a;
	size_t			 n = strcspn(m->target, "?");
	char			*metrics = NULL;
	int			 want_metrics;

	want_metrics = n == 8 && strncmp(m->target, "/metrics", n) == 0 &&
	    (hs->metrics_only || serve_opts.metrics_listen == NULL);
	memset(&a, 0, sizeof a);
	a.status = 200;
	a.reason = "OK";
	a.head = strcmp(m->method, "HEAD") == 0;
	if (n == 7 && strncmp(m->target, "/health", n) == 0)
		a.body = "OK";
	else if (!want_metrics) {
		if (!hs->metrics_only)
			return (0);
		handshake_refusal(&a, 404, "Not Found", NULL, "not found\n");
	} else if (!server_metrics_allowed(m))
		handshake_refusal(&a, 401, "Unauthorized",
		    "WWW-Authenticate: Bearer\r\n", "a bearer token is "
		    "needed\n");
	else {
		a.body = metrics = server_metrics();
		a.type = "text/plain; version=0.0.4; charset=utf-8";
	}
	if (!a.head && strcmp(m->method, "GET") != 0)
		handshake_refusal(&a, 405, "Method Not Allowed",
		    "Allow: GET, HEAD\r\n", "method not allowed\n");
	handshake_answer(hs, &a);
	free(metrics);
	return (1);
}

/* Handle a complete request head. */
static void
handshake_request(struct handshake *hs, struct http_msg *m)
{
	struct http_upgrade	 u;
	struct http_answer	 a;
	struct worker_auth	 wa;
	char			*esc;
	const char		*why;

	handshake_release(hs, 1);
	if (handshake_page(hs, m))
		return;
	if (http_upgrade_check(m, &u, &a) != 0) {
		if (a.status == 400 && u.id != NULL && !util_valid_id(u.id)) {
			esc = log_escape(u.id, strlen(u.id));
			log_warnx("%s: %s: invalid worker id '%s'", __func__,
			    hs->addr, esc);
			free(esc);
		}
		handshake_answer(hs, &a);
		return;
	}
	if (auth_admit(hs->bev, &u, &wa, &a) != 0) {
		server_stats.auth_failures++;
		why = a.status == 401 ? (u.token == NULL ? "no token" :
		    "wrong token") : a.status == 409 ? "id in use, no proof of "
		    "being that worker" : "certificate names another id";
		log_warnx("%s: %s: worker %s refused: %d %s", __func__,
		    hs->addr, u.id, a.status, why);
		control_audit_worker("worker.refused", u.id, hs->addr, why);
		handshake_answer(hs, &a);
		return;
	}
	u.mask = u.mask || serve_opts.ws_mask;
	http_upgrade_response(bufferevent_get_output(hs->bev), &u);

	/* Hand the bufferevent over to the WebSocket layer. */
	event_del(hs->timer);
	bufferevent_setcb(hs->bev, NULL, NULL, NULL, NULL);
	server_link_accept(hs->bev, hs->addr, u.id,
	    WS_ROLE_SERVER | (u.mask ? 0 : WS_NO_MASK), &wa);
	hs->bev = NULL;
	handshake_free(hs);
}

static void
handshake_read_cb(struct bufferevent *bev, void *arg)
{
	struct handshake	*hs = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct http_msg		 m;
	size_t			 len = evbuffer_get_length(in);
	int			 used, r;
	char			*p;

	if (hs->closing)
		return;
	if (len > HTTP_MAX_HEADER)
		len = HTTP_MAX_HEADER;
	p = (char *)evbuffer_pullup(in, (ssize_t)len);
	r = http_msg_parse(&m, p, len, 1, &used);
	if (r == 0)
		return;
	if (r == -2) {
		handshake_respond(hs, 431, "Request Header Fields Too Large",
		    NULL, "header too large\n");
		return;
	}
	if (r == -1) {
		log_info("%s: %s: malformed HTTP request", __func__, hs->addr);
		handshake_respond(hs, 400, "Bad Request", NULL,
		    "malformed request\n");
		return;
	}
	evbuffer_drain(in, (size_t)used);
	handshake_request(hs, &m);
	http_msg_clear(&m);
}

static void
handshake_timeout_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct handshake	*hs = arg;

	log_info("%s: %s: handshake timed out", __func__, hs->addr);
	handshake_free(hs);
}

static void
handshake_free(struct handshake *hs)
{
	handshake_release(hs, 0);
	TAILQ_REMOVE(&handshakes, hs, entry);
	event_free(hs->timer);
	if (hs->bev != NULL)
		bufferevent_free(hs->bev);
	free(hs);
}

/*
 * Every slot is taken and a connection from an address under its share
 * came (server-admit.c): close the oldest connection of host, which is
 * over its share, still waiting for its request head; its slot goes to
 * the one from for_addr.
 */
static void
handshake_evict(const char *host, const char *for_addr)
{
	struct handshake	*hs;

	TAILQ_FOREACH(hs, &handshakes, entry) {
		if (hs->admitted && !hs->closing &&
		    strcmp(hs->host, host) == 0)
			break;
	}
	if (hs == NULL)
		fatalx("%s: %s holds no waiting connection", __func__, host);
	log_info("%s: %s: closed, its address over its share of handshakes, "
	    "for %s", __func__, hs->addr, for_addr);
	handshake_free(hs);
}

static void
server_accept_cb(__unused struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct handshake	*hs;
	struct timeval		 tv = { HTTP_HEAD_TIMEOUT, 0 };
	char			*host, extra[64];
	const char		*why, *evict;
	int			 one = 1, port = 0, retry;

	hs = xcalloc(1, sizeof *hs);
	hs->metrics_only = arg != NULL;
	host = hs->host;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;
		evutil_inet_ntop(AF_INET, &sin->sin_addr, host,
		    sizeof hs->host);
		port = ntohs(sin->sin_port);
		snprintf(hs->addr, sizeof hs->addr, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
		evutil_inet_ntop(AF_INET6, &sin6->sin6_addr, host,
		    sizeof hs->host);
		port = ntohs(sin6->sin6_port);
		snprintf(hs->addr, sizeof hs->addr, "[%s]:%d", host, port);
	} else
		snprintf(hs->addr, sizeof hs->addr, "unknown");
	(void)salen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

	if (server_tls != NULL && !hs->metrics_only)
		hs->bev = bufferevent_openssl_socket_new(ev_base, fd,
		    tls_server_ssl(server_tls), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
	else
		hs->bev = bufferevent_socket_new(ev_base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if (hs->bev == NULL) {
		close(fd);
		free(hs);
		return;
	}
	if (server_tls != NULL && !hs->metrics_only)
		bufferevent_openssl_set_allow_dirty_shutdown(hs->bev, 1);
	TAILQ_INSERT_TAIL(&handshakes, hs, entry);
	hs->timer = evtimer_new(ev_base, handshake_timeout_cb, hs);
	evtimer_add(hs->timer, &tv);
	/* Admission control: server-admit.c. */
	switch (server_admit_enter(hs->host, &why, &retry, &evict)) {
	case 1:
		handshake_evict(evict, hs->addr);
		/* FALLTHROUGH */
	case 0:
		hs->admitted = 1;
		break;
	}
	if (why != NULL) {
		server_stats.handshakes_refused++;
		snprintf(extra, sizeof extra, "Retry-After: %d\r\n", retry);
		log_debug("%s: %s: %s, 503, retry after %d s", __func__,
		    hs->addr, why, retry);
		handshake_respond(hs, 503, "Service Unavailable", extra,
		    "busy, retry later\n");
		return;
	}
	bufferevent_setcb(hs->bev, handshake_read_cb, NULL,
	    handshake_event_cb, hs);
	bufferevent_setwatermark(hs->bev, EV_READ, 0, HTTP_MAX_HEADER + 1);
	bufferevent_enable(hs->bev, EV_READ | EV_WRITE);
}

/* The pause after an accept that failed for want of descriptors is over. */
static void
server_accept_resume_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	evconnlistener_enable(arg);
}

/*
 * accept failed. Out of descriptors, the waiting connection stays and
 * would wake the loop at once again: stop accepting for a second.
 */
static void
server_accept_error_cb(struct evconnlistener *l, __unused void *arg)
{
	struct timeval	tv = { 1, 0 };
	int		e = EVUTIL_SOCKET_ERROR();

	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_debug("%s: %s", __func__, strerror(e));
		return;
	}
	log_warnx("%s: %s: not accepting for a second", __func__,
	    strerror(e));
	evconnlistener_disable(l);
	event_base_once(ev_base, -1, EV_TIMEOUT, server_accept_resume_cb, l,
	    &tv);
}

/*
 * Open files: each worker holds one. Take the hard limit, as a fleet
 * needs it and the soft one is often 1024.
 */
static void
server_raise_nofile(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("setrlimit RLIMIT_NOFILE");
}

/* SIGHUP: read the grants and the rules again, reopen the audit file. */
static void
server_reload(void)
{
	char	*cause;

	if (serve_opts.metrics_token_file != NULL &&
	    server_metrics_load_token(serve_opts.metrics_token_file,
	    &cause) != 0) {
		log_warnx("SIGHUP: %s (keeping the old token)", cause);
		free(cause);
	}
	if (serve_opts.token_file != NULL) {
		if (auth_load_grants(serve_opts.token_file, &cause) != 0) {
			log_warnx("SIGHUP: %s (keeping the old grants)", cause);
			free(cause);
		} else {
			log_warnx("SIGHUP: re-read %s", serve_opts.token_file);
			server_worker_recheck_grants();
		}
	}
	if (serve_opts.acl != NULL) {
		if (control_acl_load(serve_opts.acl, &cause) != 0) {
			log_warnx("SIGHUP: %s (keeping the old rules)", cause);
			free(cause);
		} else
			log_warnx("SIGHUP: re-read %s", serve_opts.acl);
	}
	control_audit_reopen();
}

static void
server_signal_cb(evutil_socket_t sig, __unused short what, __unused void *arg)
{
	if (sig == SIGHUP) {
		server_reload();
		return;
	}
	log_info("%s: signal %d, stopping", __func__, (int)sig);
	server_shutdown();
}

/* Stop listening, close every connection, and leave the loop. */
static void
server_shutdown(void)
{
	struct handshake	*hs;
	struct timeval		 tv = { 1, 0 };

	if (listener != NULL) {
		evconnlistener_free(listener);
		listener = NULL;
	}
	if (metrics_listener != NULL) {
		evconnlistener_free(metrics_listener);
		metrics_listener = NULL;
	}
	while ((hs = TAILQ_FIRST(&handshakes)) != NULL)
		handshake_free(hs);
	control_close();
	/* Let the close frames go out, for a second at most. */
	if (server_worker_close_all() == 0)
		event_base_loopexit(ev_base, NULL);
	else
		event_base_loopexit(ev_base, &tv);
}

/*
 * Bind a listener on HOST:PORT (metrics: the one for /metrics only); -1
 * with *cause on failure.
 */
static int
server_listen(const char *hostport, int metrics, char **cause)
{
	struct evconnlistener	*lev;
	struct evutil_addrinfo	 hints, *ai = NULL;
	char			*host, *port;
	int			 r;

	if (util_parse_hostport(hostport, &host, &port) != 0) {
		xasprintf(cause, "bad --listen '%s' (want HOST:PORT)",
		    hostport);
		return (-1);
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	r = evutil_getaddrinfo(*host != '\0' ? host : NULL, port, &hints, &ai);
	if (r != 0) {
		xasprintf(cause, "listen %s: %s", hostport,
		    evutil_gai_strerror(r));
		free(host);
		free(port);
		return (-1);
	}
	lev = evconnlistener_new_bind(ev_base, server_accept_cb, metrics ?
	    (void *)1 : NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
	    LEV_OPT_CLOSE_ON_EXEC, SERVER_LISTEN_BACKLOG, ai->ai_addr,
	    (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	free(host);
	free(port);
	if (lev == NULL) {
		xasprintf(cause, "listen %s: %s", hostport,
		    strerror(errno));
		return (-1);
	}
	evconnlistener_set_error_cb(lev, server_accept_error_cb);
	if (metrics)
		metrics_listener = lev;
	else
		listener = lev;
	return (0);
}

/*
 * What several tenants share the controller by: the access rules, the
 * rate, the audit file and the recordings' folder. -1 with *cause.
 */
static int
server_open_tenancy(char **cause)
{
	struct stat	sb;

	if (serve_opts.acl != NULL &&
	    control_acl_load(serve_opts.acl, cause) != 0)
		return (-1);
	if (serve_opts.rate != NULL &&
	    control_limit_parse_rate(serve_opts.rate, cause) != 0)
		return (-1);
	if (serve_opts.audit != NULL &&
	    control_audit_open(serve_opts.audit, cause) != 0)
		return (-1);
	if (serve_opts.record == NULL)
		return (0);
	if (stat(serve_opts.record, &sb) == -1) {
		xasprintf(cause, "--record %s: %s", serve_opts.record,
		    strerror(errno));
		return (-1);
	}
	if (!S_ISDIR(sb.st_mode)) {
		xasprintf(cause, "--record %s: not a folder",
		    serve_opts.record);
		return (-1);
	}
	return (0);
}

/* Run the controller until a signal stops it. */
int
server_main(void)
{
	char	*cause;

	server_stats.errors = json_object();
	server_raise_nofile();
	if (serve_opts.token_file != NULL) {
		if (auth_load_grants(serve_opts.token_file, &cause) != 0) {
			fprintf(stderr, "sandd serve: %s\n", cause);
			free(cause);
			return (1);
		}
	}
	if (serve_opts.tls_cert != NULL) {
		server_tls = tls_server_ctx(serve_opts.tls_cert,
		    serve_opts.tls_key, serve_opts.tls_client_ca, &cause);
		if (server_tls == NULL) {
			fprintf(stderr, "sandd serve: %s\n", cause);
			free(cause);
			return (1);
		}
	}
	if (serve_opts.handshake_rate == 0)
		serve_opts.handshake_rate = server_tls != NULL ?
		    SERVER_HANDSHAKE_RATE_TLS : SERVER_HANDSHAKE_RATE;
	if (serve_opts.metrics_token_file != NULL &&
	    server_metrics_load_token(serve_opts.metrics_token_file,
	    &cause) != 0) {
		fprintf(stderr, "sandd serve: %s\n", cause);
		free(cause);
		return (1);
	}
	if (server_listen(serve_opts.listen, 0, &cause) != 0 ||
	    (serve_opts.metrics_listen != NULL &&
	    server_listen(serve_opts.metrics_listen, 1, &cause) != 0)) {
		fprintf(stderr, "sandd serve: %s\n", cause);
		free(cause);
		return (1);
	}
	auth_init(serve_opts.state_dir);
	if (server_open_tenancy(&cause) != 0) {
		fprintf(stderr, "sandd serve: %s\n", cause);
		free(cause);
		return (1);
	}
	control_cmd_init();
	if (control_listen(serve_opts.control, serve_opts.control_mode,
	    &cause) != 0) {
		fprintf(stderr, "sandd serve: %s\n", cause);
		free(cause);
		return (1);
	}
	if (serve_opts.token_file == NULL)
		log_warnx("no --token-file: any worker may connect");
	ev_sigterm = evsignal_new(ev_base, SIGTERM, server_signal_cb, NULL);
	ev_sigint = evsignal_new(ev_base, SIGINT, server_signal_cb, NULL);
	ev_sighup = evsignal_new(ev_base, SIGHUP, server_signal_cb, NULL);
	evsignal_add(ev_sigterm, NULL);
	evsignal_add(ev_sigint, NULL);
	evsignal_add(ev_sighup, NULL);
	log_info("listening on %s%s, control %s", serve_opts.listen,
	    server_tls != NULL ? " (TLS)" : "", serve_opts.control);

	event_base_dispatch(ev_base);
	server_worker_free_all();
	server_link_free_all();
	control_reap();

	event_free(ev_sigterm);
	event_free(ev_sigint);
	event_free(ev_sighup);
	if (server_tls != NULL)
		SSL_CTX_free(server_tls);
	auth_free();
	control_acl_free();
	control_limit_free();
	control_audit_close();
	json_decref(server_stats.errors);
	event_base_free(ev_base);
	log_info("stopped");
	return (0);
}

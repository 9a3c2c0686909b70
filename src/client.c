/*
 * client.c: what every client subcommand (client-*.c) shares. The
 * connection to the control socket is non-blocking and what we send is
 * queued: while a send waits for room we keep reading, so neither side
 * can block the other (a command that prints more than it reads cannot
 * stall its own standard input). Also: replies, error exits, option
 * helpers, signals, and client_main, which runs a subcommand from
 * sandd.c's table.
 */
#include <sys/types.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "client.h"

/* Seconds without a word from the server before we ask about the worker. */
#define CONN_QUIET	1.0
/* And at most this long between two questions. */
#define CONN_QUIET_MAX	30.0

/*
 * A connection to the control socket: read buffer, the next message
 * parsed from it, and the send queue. While a worker is watched
 * (client_conn_watch), a `workers` request goes out whenever the server
 * has said nothing for a while, to tell the user that what we wait for
 * waits for a disconnected worker; its reply never reaches the caller.
 */
struct conn {
	int		 fd;
	char		*buf;
	size_t		 len;
	size_t		 cap;
	json_t		*next;		/* a message parsed, not yet taken */
	struct evbuffer	*out;
	size_t		 payload_out;	/* raw payload bytes still to queue */
	int		 eof;		/* the server closed its side */
	int		 wdead;		/* a send failed: nothing more goes */

	char		*watch;		/* the worker watched, or NULL */
	int		 watch_fail;	/* die when it is disconnected */
	int		 watch_said;	/* the user was told it is */
	int		 probe_id;	/* our workers request in flight */
	double		 probe_at;	/* when to send the next one */
	double		 probe_gap;
};

static const char	*client_cmd = "client";	/* the subcommand's name */
static const char	*client_usage = "";	/* and its usage line */
static const char	*client_summary = "";	/* what it does */
static const char	*client_options = "";	/* its options explained */
static const char	*client_socket;		/* -S */
static struct conn	*client_conn;		/* the open connection */
static int		 next_id = 1;

static void		 conn_free(struct conn *);
static void		 conn_write(struct conn *);
static void		 conn_probe_reply(struct conn *, json_t *);
static void		 client_vwarnx(const char *, va_list)
			     __attribute__((format(printf, 1, 0)));

volatile sig_atomic_t	 client_got_signal;
volatile sig_atomic_t	 client_got_winch;

/* The long options of a subcommand that has only -S and --help. */
static void	 client_conn_workspace(json_t *);

const char		*client_workspace;

const struct option	 client_longopts[] = {
	CLIENT_LONGOPTS_COMMON,
	{ NULL, 0, NULL, 0 }
};

/* Print "sandd CMD: message" on one line of stderr. */
static void
client_vwarnx(const char *fmt, va_list ap)
{
	fprintf(stderr, "sandd %s: ", client_cmd);
	vfprintf(stderr, fmt, ap);
	/* A raw terminal does not go back to the margin by itself. */
	fputs(client_tty_is_raw() ? "\r\n" : "\n", stderr);
	fflush(stderr);
}

/* Print "sandd CMD: message" on one line of stderr. */
void
client_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	client_vwarnx(fmt, ap);
	va_end(ap);
}

/*
 * Exit with status, leaving nothing behind: the terminal as it was and
 * the connection freed, so that a sanitizer build finds no leak.
 */
__dead void
client_exit(int status)
{
	client_tty_restore();
	conn_free(client_conn);
	exit(status);
}

/* Print "sandd CMD: message" on one line and exit with status. */
__dead void
client_die(int status, const char *fmt, ...)
{
	va_list	ap;

	client_tty_restore();
	va_start(ap, fmt);
	client_vwarnx(fmt, ap);
	va_end(ap);
	client_exit(status);
}

/* Print the message of error reply r as client_die does, free r, exit. */
__dead void
client_die_reply(int status, json_t *r)
{
	client_tty_restore();
	client_warnx("%s", client_reply_message(r));
	json_decref(r);
	client_exit(status);
}

/* Print the usage line of the subcommand and exit 2. */
__dead void
client_usage_error(void)
{
	fprintf(stderr, "usage: sandd %s %s\n", client_cmd, client_usage);
	exit(2);
}

/*
 * `sandd NAME --help`: the usage line, what the subcommand does and its
 * options explained, on stdout; exit 0.
 */
__dead void
client_help(void)
{
	printf("usage: sandd %s %s\n\n%c%s.\n\nOptions:\n%s", client_cmd,
	    client_usage, toupper((unsigned char)client_summary[0]),
	    client_summary + 1, client_options);
	client_exit(0);
}

/*
 * The options every subcommand has, for the default case of its getopt
 * switch: -S socket, -h or --help; any other is unknown or lacks its
 * argument (one line, exit 2).
 */
void
client_option(int ch, char **argv)
{
	const char	*opt = optind > 0 ? argv[optind - 1] : "?";

	switch (ch) {
	case 'S':
		client_socket = optarg;
		return;
	case 'W':
		client_workspace = optarg;
		return;
	case 'h':
		client_help();
	}
	fprintf(stderr, "sandd %s: bad option '%s' (see sandd %s --help)\n",
	    client_cmd, opt, client_cmd);
	exit(2);
}

/* Add K=V of option -opt (as -l or -e) to obj; exits 2 when malformed. */
void
client_option_kv(json_t *obj, int opt, const char *kv)
{
	const char	*eq = strchr(kv, '=');
	char		*k;

	if (eq == NULL || eq == kv)
		client_die(2, "bad -%c '%s' (want K=V)", opt, kv);
	k = xstrndup(kv, (size_t)(eq - kv));
	json_object_set_new(obj, k, json_string(eq + 1));
	free(k);
}

/* Parse seconds for -t; exits 2 when malformed. */
double
client_option_secs(const char *s)
{
	char	*end;
	double	 d;

	errno = 0;
	d = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || d < 0 || d > 1e9)
		client_die(2, "bad time '%s' (want seconds)", s);
	return (d);
}

/* The message of an error reply, never NULL. */
const char *
client_reply_message(json_t *r)
{
	json_t		*e = json_object_get(r, "error");
	const char	*s = json_string_value(json_object_get(e, "message"));

	if (s == NULL)
		s = json_string_value(json_object_get(e, "code"));
	return (s != NULL ? s : "request failed");
}

/* The code of an error reply, never NULL. */
const char *
client_reply_code(json_t *r)
{
	const char	*s = json_string_value(json_object_get(
			    json_object_get(r, "error"), "code"));

	return (s != NULL ? s : "");
}

/* Is m a final reply (not an event)? */
int
client_msg_final(json_t *m)
{
	return (json_object_get(m, "ok") != NULL &&
	    json_object_get(m, "event") == NULL);
}

/* Bytes of field name (or name_b64) of m into out; returns the length. */
size_t
client_msg_bytes(json_t *m, const char *name, struct evbuffer *out)
{
	char	*cause = NULL;
	size_t	 before = evbuffer_get_length(out);

	if (util_json_get_bytes(m, name, out, &cause) < 0) {
		free(cause);
		return (0);
	}
	return (evbuffer_get_length(out) - before);
}

/* Write field name (or name_b64) of m to fd. */
void
client_msg_write(json_t *m, const char *name, int fd)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 n = client_msg_bytes(m, name, b);

	if (n > 0)
		client_write_all(fd, evbuffer_pullup(b, -1), n);
	evbuffer_free(b);
}

/* Write all of p to a local descriptor; -1 (errno says why) if it fails. */
int
client_write(int fd, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		s += n;
		len -= (size_t)n;
	}
	return (0);
}

/* Write all of p to a local descriptor; a closed pipe ends us quietly. */
void
client_write_all(int fd, const void *p, size_t len)
{
	if (client_write(fd, p, len) == 0)
		return;
	if (errno == EPIPE) {
		/* Like the default SIGPIPE, without a message. */
		client_tty_restore();
		exit(128 + SIGPIPE);
	}
	client_die(255, "write: %s", strerror(errno));
}

/* Note a signal for the loop that waits. */
static void
signal_cb(int sig)
{
	if (sig == SIGWINCH)
		client_got_winch = 1;
	else
		client_got_signal = sig;
}

/* Catch INT, TERM and HUP into client_got_signal, WINCH into _got_winch. */
void
client_signals_catch(int winch)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = signal_cb;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (winch)
		sigaction(SIGWINCH, &sa, NULL);
}

/* The socket given with -S, or NULL for the default. */
const char *
client_socket_option(void)
{
	return (client_socket);
}

/*
 * Connect to the control socket named by -S, $SANDD_CONTROL or the
 * default. NULL if it cannot be reached, with the reason in *cause
 * (caller frees). The connection is freed by client_main or
 * client_conn_close.
 */
struct conn *
client_conn_try_open(char **cause)
{
	struct sockaddr_un	 sun;
	struct conn		*c;
	char			*path, *why;
	int			 fd, builtin;

	if (client_socket != NULL)
		path = xstrdup(client_socket);
	else {
		path = util_default_control_path(&builtin);
		if (builtin && util_control_dir_ok(path, 0, &why) != 0) {
			xasprintf(cause, "control socket %s: %s (not using "
			    "it; give -S)", path, why);
			free(why);
			free(path);
			return (NULL);
		}
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		xasprintf(cause, "socket path too long: %s", path);
		free(path);
		return (NULL);
	}
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1) {
		xasprintf(cause, "connect %s: %s (is sandd serve running?)",
		    path, strerror(errno));
		if (fd != -1)
			close(fd);
		free(path);
		return (NULL);
	}
	free(path);
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->out = evbuffer_new();
	conn_free(client_conn);
	client_conn = c;
	return (c);
}

/* Connect as client_conn_try_open does; die if it cannot. */
struct conn *
client_conn_open(void)
{
	struct conn	*c;
	char		*cause;

	if ((c = client_conn_try_open(&cause)) == NULL) {
		client_warnx("%s", cause);
		free(cause);
		client_exit(255);
	}
	return (c);
}

/* Close the connection and free it (NULL is fine). */
void
client_conn_close(struct conn *c)
{
	conn_free(c);
}

/* Close the connection and free it (NULL is fine). */
static void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (client_conn == c)
		client_conn = NULL;
	close(c->fd);
	free(c->buf);
	json_decref(c->next);
	evbuffer_free(c->out);
	free(c->watch);
	free(c);
}

/* Seconds on a clock that only goes forward. */
static double
conn_clock(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/*
 * Watch worker: while we wait on the server, tell the user (once) when
 * the worker is disconnected, inside the controller's resume window
 * where requests wait for it; with fail, die instead, now if it is
 * disconnected already.
 */
void
client_conn_watch(struct conn *c, const char *worker, int fail)
{
	json_t	*r;

	free(c->watch);
	c->watch = xstrdup(worker);
	c->watch_fail = fail;
	c->watch_said = 0;
	c->probe_gap = CONN_QUIET;
	c->probe_at = conn_clock() + c->probe_gap;
	if (fail) {
		r = client_conn_call(c, json_pack("{s:s}", "op", "workers"), 1);
		conn_probe_reply(c, r);
	}
}

/*
 * May we ask about the watched worker when it is time? Not with a
 * question in flight, nor in the middle of a raw payload we send.
 */
static int
conn_may_probe(struct conn *c)
{
	return (c->watch != NULL && c->probe_id == 0 && c->payload_out == 0 &&
	    !client_conn_gone(c));
}

/* Ask the server about the watched worker, if it is time. */
static void
conn_probe(struct conn *c)
{
	char	*s;

	if (!conn_may_probe(c) || conn_clock() < c->probe_at)
		return;
	/* Queued without waiting for room: it is a short line. */
	c->probe_id = next_id++;
	xasprintf(&s, "{\"op\":\"workers\",\"id\":%d}\n", c->probe_id);
	evbuffer_add(c->out, s, strlen(s));
	free(s);
	conn_write(c);
}

/*
 * The reply r (freed) to a workers request about the watched worker:
 * say that it is disconnected, or die if the caller asked so.
 */
static void
conn_probe_reply(struct conn *c, json_t *r)
{
	json_t	*w;
	size_t	 i;

	c->probe_id = 0;
	c->probe_at = conn_clock() + c->probe_gap;
	c->probe_gap = c->probe_gap * 2 < CONN_QUIET_MAX ? c->probe_gap * 2 :
	    CONN_QUIET_MAX;
	json_array_foreach(json_object_get(r, "workers"), i, w) {
		if (strcmp(json_string_value(json_object_get(w, "id")) ?: "",
		    c->watch) != 0)
			continue;
		if (json_is_true(json_object_get(w, "connected")))
			c->watch_said = 0;
		else if (c->watch_fail) {
			json_decref(r);
			client_die(255, "%s is disconnected; not waiting for "
			    "it (--no-wait)", c->watch);
		} else if (!c->watch_said) {
			/* The window is the controller's; it does not say. */
			client_warnx("%s is disconnected; waiting for it to "
			    "come back", c->watch);
			c->watch_said = 1;
		}
	}
	json_decref(r);
}

/* The server said something: the watched worker answers, or may. */
static void
conn_heard(struct conn *c)
{
	c->probe_gap = CONN_QUIET;
	c->probe_at = conn_clock() + c->probe_gap;
}

/* Has the server closed its side? */
int
client_conn_eof(struct conn *c)
{
	return (c->eof);
}

/* Is the server gone, as far as sending goes? */
int
client_conn_gone(struct conn *c)
{
	return (c->eof || c->wdead);
}

/* Bytes queued for the server. */
size_t
client_conn_pending(struct conn *c)
{
	return (evbuffer_get_length(c->out));
}

/* Send what the socket takes now without blocking. */
static void
conn_write(struct conn *c)
{
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	if (c->wdead) {
		evbuffer_drain(c->out, client_conn_pending(c));
		return;
	}
	while (client_conn_pending(c) > 0) {
		if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1)
			break;
		n = send(c->fd, v.iov_base, v.iov_len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1) {
			/*
			 * The server is gone: nothing more can be sent. What
			 * it sent is still read, then eof comes.
			 */
			c->wdead = 1;
			evbuffer_drain(c->out, client_conn_pending(c));
			return;
		}
		evbuffer_drain(c->out, (size_t)n);
	}
}

/* Read what is there without blocking; sets eof when the server closed. */
static void
conn_read(struct conn *c)
{
	ssize_t	n;

	if (c->eof)
		return;
	if (c->cap - c->len < 65536) {
		c->cap = c->cap * 2 + 65536;
		c->buf = xrealloc(c->buf, c->cap);
	}
	n = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno != ECONNRESET)
			client_die(255, "read from the server: %s",
			    strerror(errno));
		n = 0;
	}
	if (n == 0)
		c->eof = 1;
	c->len += (size_t)n;
}

/*
 * Wait once for the socket (reading and sending) and, unless in_fd is
 * -1, for input on in_fd while the send queue has room; at most ms
 * milliseconds unless that is -1. Returns 1 when in_fd is ready to read
 * (data or its end), else 0 (also after a signal, so callers can look
 * at client_got_signal). Dies if the server closed.
 */
int
client_conn_poll_ms(struct conn *c, int in_fd, int ms)
{
	struct pollfd	pfd[2];
	int		timeout = ms;
	double		left;

	if (c->eof)
		client_die(255, "the server closed the connection");
	conn_probe(c);
	if (conn_may_probe(c)) {
		left = c->probe_at - conn_clock();
		if (left <= 0)
			timeout = 0;
		else if (timeout == -1 || left * 1000 < timeout)
			timeout = (int)(left * 1000) + 1;
	}
	pfd[0].fd = c->fd;
	pfd[0].events = POLLIN | (client_conn_pending(c) > 0 ? POLLOUT : 0);
	pfd[1].fd = in_fd;
	pfd[1].events = in_fd != -1 && client_conn_pending(c) <
	    CLIENT_OUT_HIGH ? POLLIN : 0;
	pfd[0].revents = pfd[1].revents = 0;
	if (poll(pfd, 2, timeout) == -1) {
		if (errno == EINTR)
			return (0);
		client_die(255, "poll: %s", strerror(errno));
	}
	if (pfd[0].revents & (POLLOUT | POLLERR))
		conn_write(c);
	if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
		conn_read(c);
	/* POLLHUP comes even when not asked for: check events. */
	return (pfd[1].events != 0 && (pfd[1].revents &
	    (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0);
}

/* Wait once as client_conn_poll_ms does, with no time limit. */
int
client_conn_poll(struct conn *c, int in_fd)
{
	return (client_conn_poll_ms(c, in_fd, -1));
}

/*
 * Wait for the socket once. Returns 0 when the server has closed and
 * nothing more can come, else 1.
 */
static int
conn_wait(struct conn *c)
{
	if (c->eof)
		return (0);
	client_conn_poll(c, -1);
	return (1);
}

/* Wait until the socket takes more, reading what the server says. */
static void
conn_wait_writable(struct conn *c)
{
	struct pollfd	pfd;

	pfd.fd = c->fd;
	pfd.events = POLLIN | POLLOUT;
	pfd.revents = 0;
	if (poll(&pfd, 1, -1) == -1) {
		if (errno == EINTR)
			return;
		client_die(255, "poll: %s", strerror(errno));
	}
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		conn_read(c);
	if ((pfd.revents & (POLLHUP | POLLERR)) && !(pfd.revents & POLLOUT))
		c->wdead = 1;
}

/* Count len bytes of a raw payload as queued. */
static void
conn_payload_queued(struct conn *c, size_t len)
{
	c->payload_out -= len < c->payload_out ? len : c->payload_out;
}

/* Queue bytes for the server without waiting: the caller polls. */
void
client_conn_add(struct conn *c, const void *p, size_t len)
{
	evbuffer_add(c->out, p, len);
	conn_payload_queued(c, len);
}

/* Queue bytes for the server; waits (reading on) while the queue is full. */
void
client_conn_queue(struct conn *c, const void *p, size_t len)
{
	evbuffer_add(c->out, p, len);
	conn_payload_queued(c, len);
	conn_write(c);
	while (client_conn_pending(c) >= CLIENT_OUT_HIGH) {
		if (!conn_wait(c) && client_conn_pending(c) > 0)
			client_die(255, "the server closed the connection");
	}
}

/*
 * Send len bytes of the file fd from offset off as raw payload with
 * sendfile(2), so that they do not pass through this process; reads on
 * while the socket is full. done(n, arg) is told of each piece. Returns
 * 0, or -1 with errno when fd cannot be sent so and nothing was sent
 * (the caller then reads and queues it).
 */
int
client_conn_sendfile(struct conn *c, int fd, off_t off, size_t len,
    void (*done)(size_t, void *), void *arg)
{
	size_t	left = len;
	ssize_t	n;

	client_conn_flush(c);
	while (left > 0) {
		if (client_conn_gone(c))
			client_die(255, "the server closed the connection");
		n = sendfile(c->fd, fd, &off, left < CLIENT_SENDFILE ? left :
		    CLIENT_SENDFILE);
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_wait_writable(c);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			client_die(255, "the server closed the connection");
		if (n == -1 && left == len)
			return (-1);	/* EINVAL, ENOSYS: not for this fd */
		if (n <= 0)
			client_die(1, "sendfile: %s", n == 0 ? "the file "
			    "shrank while copying" : strerror(errno));
		left -= (size_t)n;
		conn_payload_queued(c, (size_t)n);
		if (done != NULL)
			done((size_t)n, arg);
	}
	return (0);
}

/* Send everything queued. */
void
client_conn_flush(struct conn *c)
{
	while (client_conn_pending(c) > 0) {
		if (!conn_wait(c))
			client_die(255, "the server closed the connection");
	}
}

/* Half-close: the server answers what it has, then closes. */
void
client_conn_shutdown(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
}

/* Write what is buffered, a last line without its newline, to fd. */
void
client_conn_rest(struct conn *c, int fd)
{
	if (c->len > 0)
		client_write_all(fd, c->buf, c->len);
	c->len = 0;
}

/* Send a request (an id is added when it has none); returns the id. */
int
client_conn_send(struct conn *c, json_t *req)
{
	char	*s;
	int	 id;

	if (json_object_get(req, "id") == NULL)
		json_object_set_new(req, "id", json_integer(next_id++));
	client_conn_workspace(req);
	id = (int)json_integer_value(json_object_get(req, "id"));
	if ((s = json_dumps(req, JSON_COMPACT)) == NULL)
		client_die(255, "cannot encode a request");
	evbuffer_add(c->out, s, strlen(s));
	free(s);
	client_conn_queue(c, "\n", 1);
	/* Its raw payload comes next: nothing of ours may go between. */
	if (json_is_integer(json_object_get(req, "bytes")))
		c->payload_out = (size_t)json_integer_value(json_object_get(req,
		    "bytes"));
	return (id);
}

/*
 * With -W, what a request does on a worker (exec, session.open, put,
 * get, stat) happens in that workspace.
 */
static void
client_conn_workspace(json_t *req)
{
	static const char *ops[] = { "exec", "session.open", "put", "get",
	    "stat", NULL };
	const char	*op = json_string_value(json_object_get(req, "op"));
	const char	**o;

	if (client_workspace == NULL || op == NULL ||
	    json_object_get(req, "workspace") != NULL)
		return;
	for (o = ops; *o != NULL; o++)
		if (strcmp(op, *o) == 0)
			json_object_set_new(req, "workspace",
			    json_string(client_workspace));
}

/* Send a request that wants no attention (its reply is dropped); frees it. */
void
client_conn_send_quiet(struct conn *c, json_t *req)
{
	json_object_set_new(req, "id", json_integer(0));
	client_conn_send(c, req);
	json_decref(req);
}

/*
 * Is a message there to take? Parses the next buffered line (dies if
 * it is not JSON); replies to our own workers requests are dealt with
 * here and never reach the caller.
 */
int
client_conn_has_line(struct conn *c)
{
	char		*nl;
	json_t		*m, *id;
	json_error_t	 err;
	size_t		 n;

	while (c->next == NULL) {
		if (c->len == 0 || (nl = memchr(c->buf, '\n', c->len)) == NULL)
			return (0);
		n = (size_t)(nl - c->buf);
		m = json_loadb(c->buf, n, JSON_ALLOW_NUL, &err);
		memmove(c->buf, nl + 1, c->len - n - 1);
		c->len -= n + 1;
		if (m == NULL || !json_is_object(m)) {
			json_decref(m);
			client_die(255, "bad message from the server: %s",
			    m == NULL ? err.text : "not an object");
		}
		id = json_object_get(m, "id");
		if (c->probe_id != 0 && json_is_integer(id) &&
		    json_integer_value(id) == c->probe_id &&
		    client_msg_final(m))
			conn_probe_reply(c, m);
		else {
			c->next = m;
			conn_heard(c);
		}
	}
	return (1);
}

/* Take the message client_conn_has_line found. */
json_t *
client_conn_take(struct conn *c)
{
	json_t	*m;

	if (!client_conn_has_line(c))
		client_die(255, "%s: no message (a bug)", __func__);
	m = c->next;
	c->next = NULL;
	return (m);
}

/* Read one message (waiting). NULL when the server has closed. */
static json_t *
conn_recv(struct conn *c)
{
	while (!client_conn_has_line(c)) {
		if (!conn_wait(c))
			return (NULL);
	}
	return (client_conn_take(c));
}

/*
 * Pass the raw payload that follows message m (its "bytes", if any) but
 * its first skip bytes to fd and md, or drop it if fd < 0 and md is NULL.
 * Returns its length.
 */
static size_t
conn_payload(struct conn *c, json_t *m, size_t skip, int fd, EVP_MD_CTX *md)
{
	json_t	*b = json_object_get(m, "bytes");
	size_t	 n, k, len, total;

	len = total = json_is_integer(b) ? (size_t)json_integer_value(b) : 0;
	while (len > 0) {
		if (c->len == 0 && !conn_wait(c) && c->len == 0)
			client_die(255, "the server closed the connection in a "
			    "payload");
		n = c->len < len ? c->len : len;
		if (n == 0)
			continue;
		k = skip < n ? skip : n;
		skip -= k;
		if (fd >= 0 && n > k)
			client_write_all(fd, c->buf + k, n - k);
		if (md != NULL && n > k)
			EVP_DigestUpdate(md, c->buf + k, n - k);
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
		len -= n;
	}
	return (total);
}

/*
 * Pass the raw payload that follows message m (its "bytes", if any) to
 * fd and md, or drop it if fd < 0 and md is NULL. Returns its length.
 */
size_t
client_conn_payload(struct conn *c, json_t *m, int fd, EVP_MD_CTX *md)
{
	return (conn_payload(c, m, 0, fd, md));
}

/* The same, leaving out the payload's first skip bytes. */
size_t
client_conn_payload_skip(struct conn *c, json_t *m, size_t skip, int fd)
{
	return (conn_payload(c, m, skip, fd, NULL));
}

/*
 * The next message for request id, waiting; the others are dropped
 * with their payloads. NULL when the server has closed.
 */
json_t *
client_conn_recv_id(struct conn *c, int id)
{
	json_t	*m;

	while ((m = conn_recv(c)) != NULL) {
		if (json_integer_value(json_object_get(m, "id")) == id)
			return (m);
		client_conn_payload(c, m, -1, NULL);
		json_decref(m);
	}
	return (NULL);
}

/* Wait for the final reply to id, dropping everything else. */
json_t *
client_conn_reply(struct conn *c, int id)
{
	json_t	*m;

	for (;;) {
		if ((m = client_conn_recv_id(c, id)) == NULL)
			client_die(255, "the server closed the connection");
		client_conn_payload(c, m, -1, NULL);
		if (client_msg_final(m))
			return (m);
		json_decref(m);
	}
}

/*
 * Send req (freed) and wait for its final reply, dropping events. Dies
 * with the server's message on an error reply (status 1 for timeout,
 * else 255) unless allow_error.
 */
json_t *
client_conn_call(struct conn *c, json_t *req, int allow_error)
{
	json_t	*m;
	int	 id = client_conn_send(c, req);

	json_decref(req);
	m = client_conn_reply(c, id);
	if (!allow_error && !json_is_true(json_object_get(m, "ok")))
		client_die_reply(strcmp(client_reply_code(m), "timeout") == 0 ?
		    1 : 255, m);
	return (m);
}

/*
 * Run a client subcommand: fn with argv[0] the name; usage, summary and
 * options are for --help (sandd.c's table). Returns the exit status.
 */
int
client_main(const char *name, const char *usage, const char *summary,
    const char *options, int (*fn)(int, char **), int argc, char **argv)
{
	int	status, fd;

	client_cmd = name;
	client_usage = usage;
	client_summary = summary;
	client_options = options;
	/* A closed 0, 1 or 2 must not become the socket. */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO)
		continue;
	if (fd > STDERR_FILENO)
		close(fd);
	opterr = 0;	/* our own one-line message instead */
	optind = 1;
	status = fn(argc, argv);
	conn_free(client_conn);
	return (status);
}

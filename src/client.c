/*
 * client.c: the client subcommands (exec, workers, wait, stats, ctl,
 * sessions, shell, attach, cp). Each is a small program that speaks the
 * control protocol over the UNIX socket with poll(2). The socket is
 * non-blocking and what we send is queued: while a send waits for room
 * we keep reading, so neither side can block the other (a command that
 * prints more than it reads cannot stall its own standard input).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sandd.h"

/* A connection to the control socket: read buffer and send queue. */
struct conn {
	int		 fd;
	char		*buf;
	size_t		 len;
	size_t		 cap;
	struct evbuffer	*out;
	int		 eof;
};

static const char	*client_cmd = "client";
static const char	*client_usage = "";
static struct conn	*client_conn;	/* the open connection, if any */
static const char	*client_socket;
static int		 next_id = 1;
static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_winch;
static struct termios	 saved_tio;
static int		 tio_saved;

/* Bytes read from a file or pipe at a time. */
#define CLIENT_CHUNK	(256 * 1024)
/* Stdin bytes per write request (base64 makes the line 4/3 of this). */
#define CLIENT_WRITE	(64 * 1024)
/* Send queue: stop producing (stdin, files) above this. */
#define CLIENT_OUT_HIGH	(1024 * 1024)
/* Progress bar only for transfers over this. */
#define CLIENT_PROGRESS	(4 * 1024 * 1024)

static __dead void die(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void	tty_restore(void);

/* Print "sandd CMD: message" on one line and exit with status. */
static __dead void
die(int status, const char *fmt, ...)
{
	va_list	ap;

	tty_restore();
	fprintf(stderr, "sandd %s: ", client_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* An unknown option or a missing argument: one line, status 2. */
static __dead void
bad_option(char **argv)
{
	const char	*opt = optind > 0 ? argv[optind - 1] : "?";

	fprintf(stderr, "sandd %s: bad option '%s' (see sandd %s --help)\n",
	    client_cmd, opt, client_cmd);
	exit(2);
}

/* Print the usage line of the subcommand and exit 2. */
static __dead void
usage_error(void)
{
	fprintf(stderr, "usage: sandd %s %s\n", client_cmd, client_usage);
	exit(2);
}

/* The message of an error reply, never NULL. */
static const char *
reply_message(json_t *r)
{
	json_t		*e = json_object_get(r, "error");
	const char	*s = json_string_value(json_object_get(e, "message"));

	if (s == NULL)
		s = json_string_value(json_object_get(e, "code"));
	return (s != NULL ? s : "request failed");
}

/* The code of an error reply, never NULL. */
static const char *
reply_code(json_t *r)
{
	const char	*s = json_string_value(json_object_get(
			    json_object_get(r, "error"), "code"));

	return (s != NULL ? s : "");
}

/* Connect to the control socket named by -S, $SANDD_CONTROL or default. */
static void
conn_open(struct conn *c)
{
	struct sockaddr_un	 sun;
	char			*path;

	path = client_socket != NULL ? xstrdup(client_socket) :
	    util_default_control_path();
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		die(255, "socket path too long: %s", path);
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		die(255, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		die(255, "connect %s: %s (is sandd serve running?)", path,
		    strerror(errno));
	free(path);
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) == -1)
		die(255, "fcntl: %s", strerror(errno));
	c->buf = NULL;
	c->len = c->cap = 0;
	c->out = evbuffer_new();
	c->eof = 0;
	client_conn = c;
}

/* Close the connection and free its buffers (NULL is fine). */
static void
conn_close(struct conn *c)
{
	if (c == NULL || c->out == NULL)
		return;
	close(c->fd);
	free(c->buf);
	evbuffer_free(c->out);
	c->buf = NULL;
	c->out = NULL;
	if (client_conn == c)
		client_conn = NULL;
}

/* Write all of p to a local descriptor; a closed pipe ends us quietly. */
static void
write_all(int fd, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EPIPE) {
			/* Like the default SIGPIPE, without a message. */
			tty_restore();
			exit(128 + SIGPIPE);
		}
		if (n <= 0)
			die(255, "write: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
}

/* Bytes queued for the server. */
static size_t
conn_pending(struct conn *c)
{
	return (evbuffer_get_length(c->out));
}

/* Send what the socket takes now without blocking. */
static void
conn_write(struct conn *c)
{
	struct evbuffer_iovec	 v;
	ssize_t			 n;

	while (conn_pending(c) > 0) {
		if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1)
			break;
		n = send(c->fd, v.iov_base, v.iov_len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1)
			die(255, "lost the server: %s", strerror(errno));
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
			die(255, "read from the server: %s", strerror(errno));
		n = 0;
	}
	if (n == 0)
		c->eof = 1;
	c->len += (size_t)n;
}

/* The poll events the connection wants. */
static short
conn_events(struct conn *c)
{
	return (POLLIN | (conn_pending(c) > 0 ? POLLOUT : 0));
}

/* Act on poll's revents for the connection. */
static void
conn_handle(struct conn *c, short revents)
{
	if (revents & (POLLOUT | POLLERR))
		conn_write(c);
	if (revents & (POLLIN | POLLHUP | POLLERR))
		conn_read(c);
}

/*
 * Wait for the socket (reading and sending) once. Returns 0 when the
 * server has closed and nothing more can come, else 1 (also after a
 * signal, so callers can look at got_signal).
 */
static int
conn_wait(struct conn *c)
{
	struct pollfd	pfd;

	if (c->eof)
		return (0);
	pfd.fd = c->fd;
	pfd.events = conn_events(c);
	pfd.revents = 0;
	if (poll(&pfd, 1, -1) == -1) {
		if (errno == EINTR)
			return (1);
		die(255, "poll: %s", strerror(errno));
	}
	conn_handle(c, pfd.revents);
	return (1);
}

/* Queue bytes for the server; waits (reading on) while the queue is full. */
static void
conn_queue(struct conn *c, const void *p, size_t len)
{
	evbuffer_add(c->out, p, len);
	conn_write(c);
	while (conn_pending(c) >= CLIENT_OUT_HIGH) {
		if (!conn_wait(c) && conn_pending(c) > 0)
			die(255, "the server closed the connection");
	}
}

/* Send everything queued. */
static void
conn_flush(struct conn *c)
{
	while (conn_pending(c) > 0) {
		if (!conn_wait(c))
			die(255, "the server closed the connection");
	}
}

/* Send a request (an id is added when it has none); returns the id. */
static int
conn_send(struct conn *c, json_t *req)
{
	char	*s;
	int	 id;

	if (json_object_get(req, "id") == NULL)
		json_object_set_new(req, "id", json_integer(next_id++));
	id = (int)json_integer_value(json_object_get(req, "id"));
	if ((s = json_dumps(req, JSON_COMPACT)) == NULL)
		die(255, "cannot encode a request");
	evbuffer_add(c->out, s, strlen(s));
	free(s);
	conn_queue(c, "\n", 1);
	return (id);
}

/* Send a request that wants no attention (its reply is dropped); frees it. */
static void
conn_send_quiet(struct conn *c, json_t *req)
{
	json_object_set_new(req, "id", json_integer(0));
	conn_send(c, req);
	json_decref(req);
}

/* A whole line is buffered? */
static int
conn_has_line(struct conn *c)
{
	return (c->len > 0 && memchr(c->buf, '\n', c->len) != NULL);
}

/* Take one buffered line as a message; dies if it is not JSON. */
static json_t *
conn_take(struct conn *c)
{
	char		*nl = memchr(c->buf, '\n', c->len);
	json_t		*m;
	json_error_t	 err;
	size_t		 n = (size_t)(nl - c->buf);

	m = json_loadb(c->buf, n, JSON_ALLOW_NUL, &err);
	memmove(c->buf, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	if (m == NULL || !json_is_object(m))
		die(255, "bad message from the server: %s", m == NULL ?
		    err.text : "not an object");
	return (m);
}

/* Read one message (waiting). NULL when the server has closed. */
static json_t *
conn_recv(struct conn *c)
{
	while (!conn_has_line(c)) {
		if (!conn_wait(c))
			return (NULL);
	}
	return (conn_take(c));
}

/* Pass the next len raw payload bytes to fd (or drop them if fd < 0). */
static void
conn_payload(struct conn *c, size_t len, int fd, EVP_MD_CTX *md)
{
	size_t	n;

	while (len > 0) {
		if (c->len == 0 && !conn_wait(c) && c->len == 0)
			die(255, "the server closed the connection in a "
			    "payload");
		n = c->len < len ? c->len : len;
		if (n == 0)
			continue;
		if (fd >= 0)
			write_all(fd, c->buf, n);
		if (md != NULL)
			EVP_DigestUpdate(md, c->buf, n);
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
		len -= n;
	}
}

/* Is m the final reply (not an event) to request id? */
static int
is_final(json_t *m, int id)
{
	return (json_integer_value(json_object_get(m, "id")) == id &&
	    json_object_get(m, "ok") != NULL &&
	    json_object_get(m, "event") == NULL);
}

/* Wait for the final reply to id, dropping everything else. */
static json_t *
conn_reply(struct conn *c, int id)
{
	json_t	*m, *b;

	for (;;) {
		if ((m = conn_recv(c)) == NULL)
			die(255, "the server closed the connection");
		if (json_is_integer(b = json_object_get(m, "bytes")))
			conn_payload(c, (size_t)json_integer_value(b), -1,
			    NULL);
		if (is_final(m, id))
			return (m);
		json_decref(m);
	}
}

/*
 * Send req (freed) and wait for its final reply, dropping events. Dies
 * with the server's message on an error reply (status 1 for timeout,
 * else 255) unless allow_error.
 */
static json_t *
conn_call(struct conn *c, json_t *req, int allow_error)
{
	json_t	*m;
	int	 id = conn_send(c, req);

	json_decref(req);
	m = conn_reply(c, id);
	if (!allow_error && !json_is_true(json_object_get(m, "ok")))
		die(strcmp(reply_code(m), "timeout") == 0 ? 1 : 255, "%s",
		    reply_message(m));
	return (m);
}

/* Bytes of field name (or name_b64) of m into out; returns the length. */
static size_t
msg_bytes(json_t *m, const char *name, struct evbuffer *out)
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
static void
msg_write(json_t *m, const char *name, int fd)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 n = msg_bytes(m, name, b);

	if (n > 0)
		write_all(fd, evbuffer_pullup(b, -1), n);
	evbuffer_free(b);
}

/* Parse K=V into obj; -1 if malformed. */
static int
add_kv(json_t *obj, const char *kv)
{
	const char	*eq = strchr(kv, '=');
	char		*k;

	if (eq == NULL || eq == kv)
		return (-1);
	k = xstrndup(kv, (size_t)(eq - kv));
	json_object_set_new(obj, k, json_string(eq + 1));
	free(k);
	return (0);
}

/* Parse seconds for -t; exits 2 when malformed. */
static double
parse_secs(const char *s)
{
	char	*end;
	double	 d;

	errno = 0;
	d = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || d < 0 || d > 1e9)
		die(2, "bad time '%s' (want seconds)", s);
	return (d);
}

static void
signal_cb(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_signal = sig;
}

/* Catch INT, TERM and HUP (and WINCH) into got_signal (got_winch). */
static void
catch_signals(int winch)
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

/* Exit status for a finished command, as ssh and timeout(1) do. */
static int
exit_status(json_t *r)
{
	json_t		*code = json_object_get(r, "exit_code");
	const char	*sig = json_string_value(json_object_get(r, "signal"));
	int		 n;

	if (json_is_true(json_object_get(r, "timed_out")))
		return (124);
	if (json_is_integer(code))
		return ((int)json_integer_value(code) & 0xff);
	if (sig != NULL && (n = util_signal_number(sig)) > 0)
		return (128 + n);
	return (255);
}

/* The status and message for an error reply of an exec or session. */
static __dead void
exec_error(json_t *r)
{
	die(strcmp(reply_code(r), "exec_failed") == 0 ? 127 : 255, "%s",
	    reply_message(r));
}

/* Is fd the null device (nothing to forward)? */
static int
is_devnull(int fd)
{
	struct stat	sb, nb;

	return (fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode) &&
	    stat("/dev/null", &nb) == 0 && sb.st_rdev == nb.st_rdev);
}

/* ---- exec ---- */

/* Does this single word need a shell? */
static int
needs_shell(const char *s)
{
	return (strpbrk(s, " \t\n|&;<>()$`\\\"'*?[]#~=%{}") != NULL);
}

/* Write len bytes at p to f, each line prefixed with "[worker] ". */
static void
print_prefixed(FILE *f, const char *worker, const char *p, size_t len)
{
	const char	*nl;
	size_t		 k;

	while (len > 0) {
		nl = memchr(p, '\n', len);
		k = nl != NULL ? (size_t)(nl - p) + 1 : len;
		fprintf(f, "[%s] ", worker);
		fwrite(p, 1, k, f);
		if (nl == NULL)
			fputc('\n', f);
		p += k;
		len -= k;
	}
	fflush(f);
}

/* Print one worker's result of a broadcast; returns its exit status. */
static int
print_result(json_t *v)
{
	struct evbuffer	*b;
	const char	*w = json_string_value(json_object_get(v, "worker"));
	size_t		 len;
	int		 status;

	if (w == NULL)
		w = "?";
	if (!json_is_true(json_object_get(v, "ok"))) {
		fprintf(stderr, "[%s] error: %s\n", w, reply_message(v));
		return (255);
	}
	b = evbuffer_new();
	len = msg_bytes(v, "stdout", b);
	print_prefixed(stdout, w, (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_drain(b, len);
	len = msg_bytes(v, "stderr", b);
	print_prefixed(stderr, w, (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
	if (json_is_true(json_object_get(v, "stdout_truncated")) ||
	    json_is_true(json_object_get(v, "stderr_truncated")))
		fprintf(stderr, "[%s] (output truncated)\n", w);
	status = exit_status(v);
	if (json_is_true(json_object_get(v, "timed_out")))
		fprintf(stderr, "[%s] timed out\n", w);
	else if (status > 128 && json_is_string(json_object_get(v, "signal")))
		fprintf(stderr, "[%s] killed by SIG%s\n", w,
		    json_string_value(json_object_get(v, "signal")));
	else if (status != 0)
		fprintf(stderr, "[%s] exit %d\n", w, status);
	return (status);
}

/*
 * Run on every worker that matches the labels: print each result as it
 * comes, lines prefixed with the worker. 0 only if every one exited 0.
 */
static int
client_exec_broadcast(struct conn *c, json_t *req)
{
	json_t		*m;
	const char	*ev;
	int		 id, status = 0, n = 0;

	id = conn_send(c, req);
	json_decref(req);
	for (;;) {
		if ((m = conn_recv(c)) == NULL)
			die(255, "the server closed the connection");
		if (json_integer_value(json_object_get(m, "id")) != id) {
			json_decref(m);
			continue;
		}
		ev = json_string_value(json_object_get(m, "event"));
		if (ev != NULL && strcmp(ev, "result") == 0) {
			n++;
			if (print_result(m) != 0)
				status = 1;
		} else if (ev == NULL && json_object_get(m, "ok") != NULL)
			break;
		json_decref(m);
	}
	if (!json_is_true(json_object_get(m, "ok")))
		exec_error(m);
	if (n == 0 && json_array_size(json_object_get(m, "results")) == 0)
		die(1, "no connected worker matches the labels");
	if (n == 0) {
		/* An older server without result events. */
		size_t	 i;
		json_t	*v;

		json_array_foreach(json_object_get(m, "results"), i, v) {
			if (print_result(v) != 0)
				status = 1;
		}
	}
	json_decref(m);
	return (status);
}

/* Send a chunk of stdin (or its end) to the running handle. */
static void
exec_write(struct conn *c, const char *handle, const char *p, size_t len)
{
	json_t	*req;
	char	*b64;

	if (len > 0) {
		b64 = util_base64(p, len);
		req = json_pack("{s:s, s:s, s:s}", "op", "write", "handle",
		    handle, "data_b64", b64);
		free(b64);
	} else
		req = json_pack("{s:s, s:s, s:b}", "op", "write", "handle",
		    handle, "eof", 1);
	conn_send_quiet(c, req);
}

/* `sandd exec`: a command on one worker or on all with the labels. */
int
client_exec(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct conn c;	/* static: closed by client_main */
	json_t		*req, *env, *labels, *m, *cmd;
	struct pollfd	 pfd[2];
	char		*buf, *handle = NULL;
	const char	*ev, *cwd = NULL;
	int		 ch, id, i, in_open, status, dashdash, nsig = 0;
	int		 last_sig = 0;
	double		 timeout = 0;
	ssize_t		 n;

	env = json_object();
	labels = json_object();
	while ((ch = getopt_long(argc, argv, "+S:t:e:C:l:h", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 't':
			timeout = parse_secs(optarg);
			break;
		case 'e':
			if (add_kv(env, optarg) != 0)
				die(2, "bad -e '%s' (want K=V)", optarg);
			break;
		case 'C':
			cwd = optarg;
			break;
		case 'l':
			if (add_kv(labels, optarg) != 0)
				die(2, "bad -l '%s' (want K=V)", optarg);
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd,
			    client_usage);
			exit(0);
		default:
			bad_option(argv);
		}
	}
	/* With labels and no worker, "--" came right after the options. */
	dashdash = optind > 0 && strcmp(argv[optind - 1], "--") == 0;
	argc -= optind;
	argv += optind;
	req = json_pack("{s:s}", "op", "exec");
	if (json_object_size(labels) > 0 && (argc == 0 || dashdash ||
	    strcmp(argv[0], "--") == 0))
		json_object_set_new(req, "labels", json_incref(labels));
	else {
		if (argc == 0)
			usage_error();
		if (json_object_size(labels) > 0)
			die(2, "-l and a worker do not go together");
		json_object_set_new(req, "worker", json_string(argv[0]));
		argc--;
		argv++;
	}
	if (argc > 0 && strcmp(argv[0], "--") == 0) {
		argc--;
		argv++;
	}
	if (argc == 0)
		usage_error();
	if (argc == 1 && needs_shell(argv[0]))
		json_object_set_new(req, "cmd", json_string(argv[0]));
	else {
		cmd = json_array();
		for (i = 0; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(req, "argv", cmd);
	}
	if (cwd != NULL)
		json_object_set_new(req, "cwd", json_string(cwd));
	if (json_object_size(env) > 0)
		json_object_set(req, "env", env);
	if (timeout > 0)
		json_object_set_new(req, "timeout", json_real(timeout));
	json_decref(env);
	json_decref(labels);
	conn_open(&c);
	if (json_object_get(req, "labels") != NULL)
		return (client_exec_broadcast(&c, req));

	json_object_set_new(req, "stream", json_true());
	/* A terminal or /dev/null: nothing to forward, stdin ends at once. */
	in_open = !isatty(STDIN_FILENO) && !is_devnull(STDIN_FILENO);
	if (in_open)
		json_object_set_new(req, "stdin_open", json_true());
	catch_signals(0);
	id = conn_send(&c, req);
	json_decref(req);
	buf = xmalloc(CLIENT_WRITE);
	for (;;) {
		if (got_signal != 0 && got_signal != last_sig) {
			/* A third one gives up on the server. */
			if (++nsig >= 3)
				die(128 + got_signal, "interrupted");
			last_sig = got_signal;
		}
		if (got_signal != 0 && handle != NULL) {
			/* Forward it (kept until the handle is known). */
			conn_send_quiet(&c, json_pack("{s:s, s:s, s:s}", "op",
			    "signal", "handle", handle, "signal",
			    util_signal_name(got_signal)));
			got_signal = last_sig = 0;
		}
		if (conn_has_line(&c)) {
			m = conn_take(&c);
			if (json_integer_value(json_object_get(m, "id")) != id) {
				/* Replies to our writes and signals. */
				json_decref(m);
				continue;
			}
			ev = json_string_value(json_object_get(m, "event"));
			if (ev != NULL && strcmp(ev, "started") == 0) {
				free(handle);
				handle = xstrdup(json_string_value(
				    json_object_get(m, "handle")) ?: "");
			} else if (ev != NULL && strcmp(ev, "stdout") == 0)
				msg_write(m, "data", STDOUT_FILENO);
			else if (ev != NULL && strcmp(ev, "stderr") == 0)
				msg_write(m, "data", STDERR_FILENO);
			else if (ev == NULL && json_object_get(m, "ok") !=
			    NULL) {
				if (!json_is_true(json_object_get(m, "ok")))
					exec_error(m);
				status = exit_status(m);
				json_decref(m);
				free(handle);
				free(buf);
				return (status);
			}
			json_decref(m);
			continue;
		}
		if (c.eof)
			die(255, "the server closed the connection");
		pfd[0].fd = c.fd;
		pfd[0].events = conn_events(&c);
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = in_open && handle != NULL &&
		    conn_pending(&c) < CLIENT_OUT_HIGH ? POLLIN : 0;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(255, "poll: %s", strerror(errno));
		}
		/* POLLHUP comes even when not asked for: check events. */
		if (pfd[1].events != 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
			n = read(STDIN_FILENO, buf, CLIENT_WRITE);
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				in_open = 0;
			exec_write(&c, handle, buf, n > 0 ? (size_t)n : 0);
		}
		conn_handle(&c, pfd[0].revents);
	}
}

/* ---- workers, wait, stats, sessions ---- */

/* A table printed with columns as wide as their widest cell. */
struct table {
	size_t	  ncols;
	size_t	  nrows;
	char	**cells;	/* nrows * ncols, row-major */
	int	 *right;	/* right-aligned columns */
};

/* A table with these column titles; right[i] aligns column i right. */
static struct table *
table_create(const char **titles, const int *right, size_t ncols)
{
	struct table	*t = xcalloc(1, sizeof *t);
	size_t		 i;

	t->ncols = ncols;
	t->right = xcalloc(ncols, sizeof *t->right);
	t->cells = xcalloc(ncols, sizeof *t->cells);
	for (i = 0; i < ncols; i++) {
		t->cells[i] = xstrdup(titles[i]);
		t->right[i] = right[i];
	}
	t->nrows = 1;
	return (t);
}

/* Add a row of ncols cells (copied; NULL prints as "-"). */
static void
table_add(struct table *t, const char **cells)
{
	size_t	i;

	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols *
	    sizeof *t->cells);
	for (i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = xstrdup(cells[i] != NULL &&
		    *cells[i] != '\0' ? cells[i] : "-");
	t->nrows++;
}

/* Print the table on stdout and free it. */
static void
table_print(struct table *t)
{
	size_t	*w = xcalloc(t->ncols, sizeof *w), r, i, n;
	char	*s;

	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			n = strlen(t->cells[r * t->ncols + i]);
			if (n > w[i])
				w[i] = n;
		}
	}
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			s = t->cells[r * t->ncols + i];
			if (i == t->ncols - 1 && !t->right[i])
				printf("%s", s);
			else if (t->right[i])
				printf("%*s", (int)w[i], s);
			else
				printf("%-*s", (int)w[i], s);
			printf(i == t->ncols - 1 ? "\n" : "  ");
			free(s);
		}
	}
	free(w);
	free(t->cells);
	free(t->right);
	free(t);
}

/* Labels as k=v,k=v; caller frees. */
static char *
labels_text(json_t *labels)
{
	const char	*k;
	json_t		*v;
	char		*out = xstrdup(""), *tmp;

	json_object_foreach(labels, k, v) {
		xasprintf(&tmp, "%s%s%s=%s", out, *out != '\0' ? "," : "", k,
		    json_string_value(v) != NULL ? json_string_value(v) : "?");
		free(out);
		out = tmp;
	}
	return (out);
}

/* A number field as text into buf. */
static const char *
num_text(json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else
		snprintf(buf, len, "-");
	return (buf);
}

/* Print v as indented JSON on stdout. */
static void
print_json(json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) != 0)
		die(1, "cannot print JSON");
	putchar('\n');
}

/* Parse the common -S, -l, -w, --json, -a options of the listings. */
static void
list_options(int argc, char **argv, json_t *labels,
    int *json, int *all, const char **worker)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "worker", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	while ((ch = getopt_long(argc, argv, "S:l:w:ajh", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 'l':
			if (labels == NULL)
				usage_error();
			if (add_kv(labels, optarg) != 0)
				die(2, "bad -l '%s' (want K=V)", optarg);
			break;
		case 'w':
			if (worker == NULL)
				usage_error();
			*worker = optarg;
			break;
		case 'a':
			if (all == NULL)
				usage_error();
			*all = 1;
			break;
		case 'j':
			if (json == NULL)
				usage_error();
			*json = 1;
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd,
			    client_usage);
			exit(0);
		default:
			bad_option(argv);
		}
	}
	if (optind != argc)
		usage_error();
}

/* `sandd workers`: the table (or JSON) of workers. */
int
client_workers(int argc, char **argv)
{
	static const char *titles[] = { "ID", "STATE", "LABELS", "HOSTNAME",
	    "OS/ARCH", "VERSION", "RUNNING", "SESSIONS", "ADDR" };
	static const int right[] = { 0, 0, 0, 0, 0, 0, 1, 1, 0 };
	static struct conn c;	/* static: closed by client_main */
	struct table	*t;
	json_t		*labels = json_object(), *r, *list, *w;
	int		 json = 0, all = 0;
	size_t		 i;
	char		*lt, *osarch, running[32], sessions[32];
	const char	*row[9];

	list_options(argc, argv, labels, &json, &all, NULL);
	conn_open(&c);
	r = conn_call(&c, json_pack("{s:s, s:o, s:b}", "op", "workers",
	    "labels", labels, "all", all), 0);
	list = json_object_get(r, "workers");
	if (!json_is_array(list))
		die(255, "bad reply from the server: no workers array");
	if (json) {
		print_json(list);
		json_decref(r);
		return (0);
	}
	t = table_create(titles, right, 9);
	json_array_foreach(list, i, w) {
		lt = labels_text(json_object_get(w, "labels"));
		xasprintf(&osarch, "%s/%s",
		    json_string_value(json_object_get(w, "os")) ?: "?",
		    json_string_value(json_object_get(w, "arch")) ?: "?");
		row[0] = json_string_value(json_object_get(w, "id"));
		row[1] = json_is_true(json_object_get(w, "connected")) ?
		    "connected" : "away";
		row[2] = lt;
		row[3] = json_string_value(json_object_get(w, "hostname"));
		row[4] = osarch;
		row[5] = json_string_value(json_object_get(w, "version"));
		row[6] = num_text(json_object_get(w, "running"), running,
		    sizeof running);
		row[7] = num_text(json_object_get(w, "sessions"), sessions,
		    sizeof sessions);
		row[8] = json_string_value(json_object_get(w, "addr"));
		table_add(t, row);
		free(lt);
		free(osarch);
	}
	table_print(t);
	json_decref(r);
	return (0);
}

/* `sandd wait`: until a worker (or n with the labels) is there. */
int
client_wait(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct conn c;	/* static: closed by client_main */
	json_t		*labels = json_object(), *req, *r;
	double		 timeout = 30;
	long		 count = 1;
	char		*end;
	int		 ch;

	while ((ch = getopt_long(argc, argv, "S:t:l:n:h", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 't':
			timeout = parse_secs(optarg);
			break;
		case 'l':
			if (add_kv(labels, optarg) != 0)
				die(2, "bad -l '%s' (want K=V)", optarg);
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    count < 1 || count > 1000000)
				die(2, "bad -n '%s'", optarg);
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd,
			    client_usage);
			exit(0);
		default:
			bad_option(argv);
		}
	}
	argc -= optind;
	argv += optind;
	req = json_pack("{s:s, s:f}", "op", "wait", "timeout", timeout);
	if (argc == 1 && json_object_size(labels) == 0)
		json_object_set_new(req, "worker", json_string(argv[0]));
	else if (argc == 0 && json_object_size(labels) > 0) {
		json_object_set(req, "labels", labels);
		json_object_set_new(req, "count", json_integer(count));
	} else
		usage_error();
	json_decref(labels);
	conn_open(&c);
	r = conn_call(&c, req, 1);
	if (!json_is_true(json_object_get(r, "ok")))
		die(strcmp(reply_code(r), "timeout") == 0 ? 1 : 255, "%s",
		    reply_message(r));
	json_decref(r);
	return (0);
}

/* `sandd stats`: print the controller's counters. */
int
client_stats(int argc, char **argv)
{
	static struct conn c;	/* static: closed by client_main */
	json_t		*r, *v, *e;
	const char	*k, *k2;
	char		 num[64];
	int		 json = 0;

	list_options(argc, argv, NULL, &json, NULL, NULL);
	conn_open(&c);
	r = conn_call(&c, json_pack("{s:s}", "op", "stats"), 0);
	json_object_del(r, "ok");
	json_object_del(r, "id");
	if (json) {
		print_json(r);
		json_decref(r);
		return (0);
	}
	json_object_foreach(r, k, v) {
		if (json_is_object(v)) {
			json_object_foreach(v, k2, e)
				printf("%s.%s %s\n", k, k2, num_text(e, num,
				    sizeof num));
		} else if (json_is_string(v))
			printf("%s %s\n", k, json_string_value(v));
		else
			printf("%s %s\n", k, num_text(v, num, sizeof num));
	}
	json_decref(r);
	return (0);
}

/* `sandd sessions`: the table (or JSON) of sessions. */
int
client_sessions(int argc, char **argv)
{
	static const char *titles[] = { "SESSION", "WORKER", "PID", "SIZE",
	    "OFFSET", "ATTACHED", "CREATED", "STATE", "COMMAND" };
	static const int right[] = { 0, 0, 1, 0, 1, 1, 0, 0, 0 };
	static struct conn c;	/* static: closed by client_main */
	struct table	*t;
	json_t		*req, *r, *list, *s;
	const char	*worker = NULL, *row[9];
	char		 size[48], pid[32], off[32], att[32], state[32];
	int		 json = 0;
	size_t		 i;

	list_options(argc, argv, NULL, &json, NULL, &worker);
	req = json_pack("{s:s}", "op", "session.list");
	if (worker != NULL)
		json_object_set_new(req, "worker", json_string(worker));
	conn_open(&c);
	r = conn_call(&c, req, 0);
	list = json_object_get(r, "sessions");
	if (!json_is_array(list))
		die(255, "bad reply from the server: no sessions array");
	if (json) {
		print_json(list);
		json_decref(r);
		return (0);
	}
	t = table_create(titles, right, 9);
	json_array_foreach(list, i, s) {
		snprintf(size, sizeof size, "%lldx%lld",
		    (long long)json_integer_value(json_object_get(s, "cols")),
		    (long long)json_integer_value(json_object_get(s, "rows")));
		if (!json_is_true(json_object_get(s, "exited")))
			snprintf(state, sizeof state, "running");
		else if (json_is_integer(json_object_get(s, "exit_code")))
			snprintf(state, sizeof state, "exit %lld",
			    (long long)json_integer_value(json_object_get(s,
			    "exit_code")));
		else
			snprintf(state, sizeof state, "exited");
		row[0] = json_string_value(json_object_get(s, "session"));
		row[1] = json_string_value(json_object_get(s, "worker"));
		row[2] = num_text(json_object_get(s, "pid"), pid, sizeof pid);
		row[3] = size;
		row[4] = num_text(json_object_get(s, "offset"), off,
		    sizeof off);
		row[5] = num_text(json_object_get(s, "attached"), att,
		    sizeof att);
		row[6] = json_string_value(json_object_get(s, "created_at"));
		row[7] = state;
		row[8] = json_string_value(json_object_get(s, "cmd"));
		table_add(t, row);
	}
	table_print(t);
	json_decref(r);
	return (0);
}

/* ---- ctl ---- */

/*
 * `sandd ctl`: pass stdin to the socket as it is and print every message
 * that comes back, one per line, raw payloads right after their line. At
 * the end of stdin, half-close and print on until the server closes.
 */
int
client_ctl(int argc, char **argv)
{
	static struct conn c;	/* static: closed by client_main */
	struct pollfd	 pfd[2];
	char		*buf, *s;
	ssize_t		 n;
	int		 in_open = 1, shut = 0;
	json_t		*m, *b;

	list_options(argc, argv, NULL, NULL, NULL, NULL);
	conn_open(&c);
	buf = xmalloc(CLIENT_CHUNK);
	for (;;) {
		while (conn_has_line(&c)) {
			m = conn_take(&c);
			if ((s = json_dumps(m, JSON_COMPACT)) == NULL)
				die(255, "cannot print a message");
			fflush(stdout);
			write_all(STDOUT_FILENO, s, strlen(s));
			write_all(STDOUT_FILENO, "\n", 1);
			free(s);
			if (json_is_integer(b = json_object_get(m, "bytes")))
				conn_payload(&c, (size_t)json_integer_value(b),
				    STDOUT_FILENO, NULL);
			json_decref(m);
		}
		if (c.eof) {
			/* A last line without its newline, as it is. */
			if (c.len > 0)
				write_all(STDOUT_FILENO, c.buf, c.len);
			free(buf);
			return (0);
		}
		if (!in_open && !shut && conn_pending(&c) == 0) {
			/* Half-close: the server answers, then closes. */
			shutdown(c.fd, SHUT_WR);
			shut = 1;
		}
		pfd[0].fd = c.fd;
		pfd[0].events = conn_events(&c);
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = in_open && conn_pending(&c) < CLIENT_OUT_HIGH ?
		    POLLIN : 0;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(255, "poll: %s", strerror(errno));
		}
		if (pfd[1].events != 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
			n = read(STDIN_FILENO, buf, CLIENT_CHUNK);
			if (n > 0)
				evbuffer_add(c.out, buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				in_open = 0;
		}
		conn_handle(&c, pfd[0].revents);
	}
}

/* ---- shell and attach ---- */

/* Put the terminal back as it was (atexit, die, every return). */
static void
tty_restore(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
		tio_saved = 0;
	}
}

/* Make the local terminal raw, if stdin is one. */
static void
tty_raw(void)
{
	static int	registered;
	struct termios	tio;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) != 0)
		return;
	tio = saved_tio;
	cfmakeraw(&tio);
	/* TCSADRAIN, not TCSAFLUSH: keys typed ahead must not be lost. */
	if (tcsetattr(STDIN_FILENO, TCSADRAIN, &tio) != 0)
		return;
	tio_saved = 1;
	if (!registered) {
		atexit(tty_restore);
		registered = 1;
	}
}

/* Attached with readonly: send no keys and no sizes. */
static int	term_readonly;

/* Send the local window size to the session. */
static void
tty_resize(struct conn *c, const char *session)
{
	struct winsize	 ws;

	if (term_readonly || !isatty(STDIN_FILENO) ||
	    ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0)
		return;
	conn_send_quiet(c, json_pack("{s:s, s:s, s:i, s:i}", "op",
	    "session.resize", "session", session, "rows", ws.ws_row, "cols",
	    ws.ws_col));
}

/* Send keys to the session. */
static void
session_send(struct conn *c, const char *session, const char *p, size_t len)
{
	char	*b64;

	if (len == 0 || term_readonly)
		return;
	b64 = util_base64(p, len);
	conn_send_quiet(c, json_pack("{s:s, s:s, s:s}", "op",
	    "session.write", "session", session, "data_b64", b64));
	free(b64);
}

/* Escape state of the terminal loop, as ssh's ~ escapes. */
struct escape {
	int	on;		/* escapes recognised (stdin is a terminal) */
	int	at_bol;		/* last key ended a line */
	int	tilde;		/* saw ~ at the start of a line */
};

/*
 * Run keys through the escapes into out (room for 2 * n). Returns the
 * number of bytes to send; *detach is set at `~.` (keys after it are
 * dropped, those before it are to be sent).
 */
static size_t
escape_keys(struct escape *e, const char *in, size_t n, char *out,
    int *detach)
{
	size_t	i, o = 0;

	for (i = 0; i < n; i++) {
		if (!e->on) {
			out[o++] = in[i];
			continue;
		}
		if (e->tilde) {
			e->tilde = 0;
			if (in[i] == '.') {
				*detach = 1;
				return (o);
			}
			if (in[i] == '?') {
				fprintf(stderr, "\r\nSupported escapes (after "
				    "a newline):\r\n  ~.  detach (the session "
				    "goes on)\r\n  ~~  send ~\r\n  ~?  this "
				    "help\r\n");
				continue;
			}
			if (in[i] != '~')
				out[o++] = '~';
			out[o++] = in[i];
		} else if (e->at_bol && in[i] == '~') {
			e->tilde = 1;
			continue;
		} else
			out[o++] = in[i];
		e->at_bol = in[i] == '\r' || in[i] == '\n';
	}
	return (o);
}

/* Detach from the session and say so; returns status. */
static int
terminal_detach(struct conn *c, const char *session, int status)
{
	json_t	*r;

	r = conn_call(c, json_pack("{s:s, s:s}", "op", "session.detach",
	    "session", session), 1);
	json_decref(r);
	tty_restore();
	fprintf(stderr, "\r\n[detached from session %s]\r\n", session);
	return (status);
}

/*
 * The terminal loop of shell and attach: keys go to the session, output
 * comes back, `~.` after a newline detaches. Returns the exit status.
 */
static int
terminal_loop(struct conn *c, const char *session)
{
	struct pollfd	 pfd[2];
	struct escape	 esc;
	char		 in[4096], out[2 * 4096];
	json_t		*m;
	const char	*ev;
	ssize_t		 n;
	size_t		 o;
	int		 in_open = 1, status, sig, detach = 0;

	memset(&esc, 0, sizeof esc);
	esc.on = isatty(STDIN_FILENO);
	esc.at_bol = 1;
	tty_raw();
	catch_signals(1);
	tty_resize(c, session);
	for (;;) {
		if (got_winch) {
			got_winch = 0;
			tty_resize(c, session);
		}
		if ((sig = got_signal) != 0) {
			got_signal = 0;
			if (sig == SIGINT && !tio_saved && !term_readonly) {
				/* Not raw: ^C reached us, pass it on. */
				conn_send_quiet(c, json_pack("{s:s, s:s, s:s}",
				    "op", "signal", "session", session,
				    "signal", "INT"));
			} else
				return (terminal_detach(c, session, 128 + sig));
		}
		if (conn_has_line(c)) {
			m = conn_take(c);
			ev = json_string_value(json_object_get(m, "event"));
			if (ev != NULL && strcmp(ev, "output") == 0)
				msg_write(m, "data", STDOUT_FILENO);
			else if (ev != NULL && strcmp(ev, "exit") == 0) {
				tty_restore();
				status = exit_status(m);
				json_decref(m);
				/* The program is gone: release the session. */
				json_decref(conn_call(c, json_pack("{s:s, s:s}",
				    "op", "session.close", "session", session),
				    1));
				return (status);
			} else if (ev == NULL && json_is_false(json_object_get(m,
			    "ok")))
				die(255, "%s", reply_message(m));
			json_decref(m);
			continue;
		}
		if (c->eof)
			die(255, "the server closed the connection");
		pfd[0].fd = c->fd;
		pfd[0].events = conn_events(c);
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = in_open && conn_pending(c) < CLIENT_OUT_HIGH ?
		    POLLIN : 0;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(255, "poll: %s", strerror(errno));
		}
		if (pfd[1].events != 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
			n = read(STDIN_FILENO, in, sizeof in);
			if (n == -1 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				in_open = 0;	/* watch on until it exits */
			else {
				o = escape_keys(&esc, in, (size_t)n, out,
				    &detach);
				/* Keys before a ~. still go. */
				session_send(c, session, out, o);
				if (detach)
					return (terminal_detach(c, session, 0));
			}
		}
		conn_handle(c, pfd[0].revents);
	}
}

/* `sandd shell`: a new session on a worker, attached to the terminal. */
int
client_shell(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct conn c;	/* static: closed by client_main */
	struct winsize	 ws;
	json_t		*req, *r, *cmd;
	const char	*term = getenv("TERM");
	char		*session;
	int		 ch, i, status;

	while ((ch = getopt_long(argc, argv, "+S:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd,
			    client_usage);
			exit(0);
		default:
			bad_option(argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || strcmp(argv[0], "--") == 0)
		usage_error();
	req = json_pack("{s:s, s:s, s:b}", "op", "session.open", "worker",
	    argv[0], "attach", 1);
	if (argc > 1 && strcmp(argv[1], "--") == 0) {
		argc--;
		argv++;
	}
	if (argc > 1) {
		cmd = json_array();
		for (i = 1; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(req, "argv", cmd);
	}
	if (isatty(STDIN_FILENO) && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) ==
	    0 && ws.ws_row > 0) {
		json_object_set_new(req, "rows", json_integer(ws.ws_row));
		json_object_set_new(req, "cols", json_integer(ws.ws_col));
	}
	if (term != NULL && *term != '\0')
		json_object_set_new(req, "env", json_pack("{s:s}", "TERM",
		    term));
	conn_open(&c);
	r = conn_call(&c, req, 1);
	if (!json_is_true(json_object_get(r, "ok")))
		exec_error(r);
	if (!json_is_string(json_object_get(r, "session")))
		die(255, "bad reply from the server: no session");
	session = xstrdup(json_string_value(json_object_get(r, "session")));
	json_decref(r);
	status = terminal_loop(&c, session);
	free(session);
	return (status);
}

/* `sandd attach`: attach the terminal to a running session. */
int
client_attach(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct conn c;	/* static: closed by client_main */
	json_t		*r;
	long long	 since = 0;
	char		*end;
	int		 ch, readonly = 0;

	while ((ch = getopt_long(argc, argv, "S:rh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 's':
			errno = 0;
			since = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    since < 0)
				die(2, "bad --since '%s'", optarg);
			break;
		case 'r':
			readonly = term_readonly = 1;
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd,
			    client_usage);
			exit(0);
		default:
			bad_option(argv);
		}
	}
	if (optind != argc - 1)
		usage_error();
	conn_open(&c);
	r = conn_call(&c, json_pack("{s:s, s:s, s:I, s:b}", "op",
	    "session.attach", "session", argv[optind], "since",
	    (json_int_t)since, "readonly", readonly), 0);
	json_decref(r);
	return (terminal_loop(&c, argv[optind]));
}

/* ---- cp ---- */

/* A progress line on stderr: percent, rate and time left. */
struct progress {
	int	 on;
	size_t	 total;
	size_t	 done;
	double	 start;
	double	 last;
};

/* Start a progress line; shown only on a terminal and for big copies. */
static void
progress_init(struct progress *p, size_t total)
{
	memset(p, 0, sizeof *p);
	p->on = isatty(STDERR_FILENO) && total > CLIENT_PROGRESS;
	p->total = total;
	p->start = p->last = util_now();
}

/* Count n more bytes; redraw at most ten times a second (and at the end). */
static void
progress_add(struct progress *p, size_t n, int final)
{
	double	now = util_now(), rate, eta;
	size_t	left;

	p->done += n;
	if (!p->on || (!final && now - p->last < 0.1))
		return;
	p->last = now;
	rate = p->done / (now - p->start > 0.001 ? now - p->start : 0.001);
	left = p->total > p->done ? p->total - p->done : 0;
	eta = rate > 0 ? (double)left / rate : 0;
	fprintf(stderr, "\r%3d%% %10.1f MiB %8.1f MiB/s  ETA %3d:%02d ",
	    p->total > 0 ? (int)(100.0 * p->done / p->total) : 100,
	    p->done / 1048576.0, rate / 1048576.0, (int)eta / 60,
	    (int)eta % 60);
	if (final)
		fputc('\n', stderr);
}

/* Split WORKER:PATH; NULL worker for a local path. */
static char *
cp_split(const char *arg, const char **path)
{
	const char	*colon = strchr(arg, ':');
	char		*w;

	if (colon == NULL || colon == arg || memchr(arg, '/',
	    (size_t)(colon - arg)) != NULL) {
		*path = arg;
		return (NULL);
	}
	w = xstrndup(arg, (size_t)(colon - arg));
	if (!util_valid_id(w)) {
		free(w);
		*path = arg;
		return (NULL);
	}
	*path = colon + 1;
	return (w);
}

/* The last part of a path without trailing slashes; caller frees. */
static char *
cp_base(const char *path)
{
	char	*copy = xstrdup(path), *b;

	b = xstrdup(basename(copy));
	free(copy);
	return (b);
}

/* stat on the worker: returns the reply (ok or not). */
static json_t *
cp_remote_stat(struct conn *c, const char *worker, const char *path)
{
	return (conn_call(c, json_pack("{s:s, s:s, s:s}", "op", "stat",
	    "worker", worker, "path", path), 1));
}

/* Is the stat reply st an existing folder? */
static int
cp_is_dir(json_t *st)
{
	return (json_is_true(json_object_get(st, "ok")) &&
	    strcmp(json_string_value(json_object_get(st, "type")) ?: "",
	    "dir") == 0);
}

/* The hex SHA-256 of what md has seen; frees md. */
static void
cp_digest(EVP_MD_CTX *md, char hex[65])
{
	unsigned char	dig[EVP_MAX_MD_SIZE];

	EVP_DigestFinal_ex(md, dig, NULL);
	EVP_MD_CTX_free(md);
	util_sha256_hex(dig, hex);
}

/* A new SHA-256 context. */
static EVP_MD_CTX *
cp_md(void)
{
	EVP_MD_CTX	*md;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		die(1, "cannot start a SHA-256 digest");
	return (md);
}

/* Set the modification time of worker:path with touch(1) there. */
static void
cp_remote_mtime(struct conn *c, const char *worker, const char *path,
    time_t mtime)
{
	struct evbuffer	*b;
	json_t		*r;
	char		 stamp[32];
	size_t		 n;

	snprintf(stamp, sizeof stamp, "@%lld", (long long)mtime);
	r = conn_call(c, json_pack("{s:s, s:s, s:[s, s, s, s, s]}", "op",
	    "exec", "worker", worker, "argv", "touch", "-d", stamp, "--",
	    path), 0);
	if (exit_status(r) != 0) {
		b = evbuffer_new();
		n = msg_bytes(r, "stderr", b);
		while (n > 0 && evbuffer_pullup(b, -1)[n - 1] == '\n')
			n--;
		die(1, "%s on %s: cannot keep the modification time: %.*s",
		    path, worker, (int)n, (const char *)evbuffer_pullup(b, -1));
	}
	json_decref(r);
}

/* Upload fd (size bytes) to worker:path as a raw payload. */
static void
cp_put(struct conn *c, const char *worker, const char *path, int fd,
    size_t size, int mode, time_t mtime)
{
	json_t			*req, *r;
	struct progress		 pg;
	EVP_MD_CTX		*md = cp_md();
	char			*buf, hex[65];
	const char		*got;
	size_t			 left = size;
	ssize_t			 n;
	int			 id;

	req = json_pack("{s:s, s:s, s:s, s:I, s:i}", "op", "put", "worker",
	    worker, "path", path, "bytes", (json_int_t)size, "mode", mode);
	id = conn_send(c, req);
	json_decref(req);
	buf = xmalloc(CLIENT_CHUNK);
	progress_init(&pg, size);
	while (left > 0) {
		n = read(fd, buf, left < CLIENT_CHUNK ? left : CLIENT_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The server waits for the rest: just go. */
			die(1, "read: %s", n == 0 ? "the file shrank while "
			    "copying" : strerror(errno));
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		conn_queue(c, buf, (size_t)n);
		left -= (size_t)n;
		progress_add(&pg, (size_t)n, 0);
	}
	progress_add(&pg, 0, 1);
	free(buf);
	cp_digest(md, hex);
	r = conn_reply(c, id);
	if (!json_is_true(json_object_get(r, "ok")))
		die(1, "%s", reply_message(r));
	got = json_string_value(json_object_get(r, "sha256"));
	if (got == NULL || strcmp(hex, got) != 0)
		die(1, "%s on %s: SHA-256 differs (sent %s, got %s)", path,
		    worker, hex, got != NULL ? got : "none");
	json_decref(r);
	if (mtime != 0)
		cp_remote_mtime(c, worker, path, mtime);
}

/*
 * Download worker:path (size bytes) to the local path, or stdout for "-",
 * through a temporary file beside it that is renamed into place once the
 * digest matches. mtime (from a stat) is set when keep.
 */
static void
cp_get(struct conn *c, const char *worker, const char *path,
    const char *local, size_t size, int keep, time_t mtime)
{
	json_t			*req, *r, *b;
	struct progress		 pg;
	struct timespec		 ts[2];
	EVP_MD_CTX		*md = cp_md();
	mode_t			 mode, mask;
	char			 hex[65], *tmp = NULL, *dir, *copy;
	const char		*got;
	size_t			 n;
	int			 id, fd;

	if (strcmp(local, "-") == 0)
		fd = STDOUT_FILENO;
	else {
		copy = xstrdup(local);
		dir = dirname(copy);
		xasprintf(&tmp, "%s/.sandd-cp.XXXXXX", dir);
		free(copy);
		if ((fd = mkstemp(tmp)) == -1)
			die(1, "%s: %s", local, strerror(errno));
	}
	req = json_pack("{s:s, s:s, s:s, s:b}", "op", "get", "worker",
	    worker, "path", path, "raw", 1);
	id = conn_send(c, req);
	json_decref(req);
	progress_init(&pg, size);
	for (;;) {
		if ((r = conn_recv(c)) == NULL) {
			if (tmp != NULL)
				unlink(tmp);
			die(255, "the server closed the connection");
		}
		b = json_object_get(r, "bytes");
		if (json_integer_value(json_object_get(r, "id")) != id) {
			if (json_is_integer(b))
				conn_payload(c, (size_t)json_integer_value(b),
				    -1, NULL);
			json_decref(r);
			continue;
		}
		if (json_object_get(r, "event") == NULL)
			break;
		n = json_is_integer(b) ? (size_t)json_integer_value(b) : 0;
		conn_payload(c, n, fd, md);
		progress_add(&pg, n, 0);
		json_decref(r);
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		if (tmp != NULL)
			unlink(tmp);
		die(1, "%s", reply_message(r));
	}
	progress_add(&pg, 0, 1);
	cp_digest(md, hex);
	got = json_string_value(json_object_get(r, "sha256"));
	if (got == NULL || strcmp(hex, got) != 0) {
		if (tmp != NULL)
			unlink(tmp);
		die(1, "%s on %s: SHA-256 differs (received %s, sent %s)",
		    path, worker, hex, got != NULL ? got : "none");
	}
	if (tmp != NULL) {
		/* Like cp: the bits go through the umask unless -p. */
		mask = umask(0);
		umask(mask);
		mode = (mode_t)json_integer_value(json_object_get(r, "mode"));
		mode = keep ? mode & 07777 : mode & 0777 & ~mask;
		if (fchmod(fd, mode) != 0)
			die(1, "%s: %s", local, strerror(errno));
		if (keep) {
			ts[0].tv_sec = ts[1].tv_sec = mtime;
			ts[0].tv_nsec = ts[1].tv_nsec = 0;
			futimens(fd, ts);
		}
		if (fsync(fd) != 0 || close(fd) != 0 ||
		    rename(tmp, local) != 0) {
			unlink(tmp);
			die(1, "%s: %s", local, strerror(errno));
		}
		free(tmp);
	}
	json_decref(r);
}

/*
 * Start a local tar with argv; *fd is its stdout (we read) when reading,
 * else its stdin (we write). Returns its pid.
 */
static pid_t
cp_tar_spawn(char *const *argv, int reading, int *fd)
{
	int	p[2];
	pid_t	pid;

	if (pipe(p) != 0)
		die(1, "pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		die(1, "fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(p[reading ? 1 : 0], reading ? STDOUT_FILENO :
		    STDIN_FILENO) == -1)
			_exit(127);
		close(p[0]);
		close(p[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "sandd %s: %s: %s\n", client_cmd, argv[0],
		    strerror(errno));
		_exit(127);
	}
	close(p[reading ? 1 : 0]);
	*fd = p[reading ? 0 : 1];
	return (pid);
}

/* Wait for the local tar; 0 if it exited 0. */
static int
cp_tar_wait(pid_t pid)
{
	int	st;

	while (waitpid(pid, &st, 0) == -1) {
		if (errno != EINTR)
			return (-1);
	}
	return (WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1);
}

/* Write to the local tar; -1 if it is gone. */
static int
cp_tar_write(int fd, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		p += n;
		len -= (size_t)n;
	}
	return (0);
}

/*
 * Copy the folder worker:src to local dst (made, or dst/NAME when dst is
 * a folder): a remote `tar -c` streams into a local `tar -x`.
 */
static void
cp_tree_get(struct conn *c, const char *worker, const char *src,
    const char *dst)
{
	struct evbuffer	*b;
	struct stat	 sb;
	json_t		*req, *m;
	const char	*ev;
	char		*target, *base, *targv[6];
	pid_t		 pid;
	size_t		 n;
	int		 id, fd, made = 0, status, broken = 0;

	base = cp_base(src);
	if (stat(dst, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    strcmp(base, "/") != 0 && strcmp(base, ".") != 0)
		xasprintf(&target, "%s/%s", dst, base);
	else
		target = xstrdup(dst);
	free(base);
	if (mkdir(target, 0777) == 0)
		made = 1;
	else if (errno != EEXIST)
		die(1, "%s: %s", target, strerror(errno));
	targv[0] = (char *)"tar";
	targv[1] = (char *)"-C";
	targv[2] = target;
	targv[3] = (char *)"-xpf";
	targv[4] = (char *)"-";
	targv[5] = NULL;
	pid = cp_tar_spawn(targv, 0, &fd);
	req = json_pack("{s:s, s:s, s:[s, s, s, s, s, s], s:b}", "op",
	    "exec", "worker", worker, "argv", "tar", "-C", src, "-cf", "-",
	    ".", "stream", 1);
	id = conn_send(c, req);
	json_decref(req);
	b = evbuffer_new();
	for (;;) {
		if ((m = conn_recv(c)) == NULL)
			die(255, "the server closed the connection");
		if (json_integer_value(json_object_get(m, "id")) != id) {
			json_decref(m);
			continue;
		}
		ev = json_string_value(json_object_get(m, "event"));
		if (ev != NULL && strcmp(ev, "stdout") == 0) {
			n = msg_bytes(m, "data", b);
			if (!broken && n > 0 && cp_tar_write(fd,
			    (const char *)evbuffer_pullup(b, -1), n) != 0)
				broken = 1;
			evbuffer_drain(b, n);
		} else if (ev != NULL && strcmp(ev, "stderr") == 0)
			msg_write(m, "data", STDERR_FILENO);
		else if (ev == NULL && json_object_get(m, "ok") != NULL)
			break;
		json_decref(m);
	}
	evbuffer_free(b);
	close(fd);
	status = cp_tar_wait(pid);
	if (!json_is_true(json_object_get(m, "ok"))) {
		if (made)
			rmdir(target);
		die(1, "%s", reply_message(m));
	}
	if (exit_status(m) != 0) {
		if (made)
			rmdir(target);
		die(1, "%s:%s: tar on the worker failed (status %d)", worker,
		    src, exit_status(m));
	}
	if (status != 0 || broken)
		die(1, "%s: the local tar failed", target);
	json_decref(m);
	free(target);
}

/*
 * Copy the local folder src to worker:dst (made, or dst/NAME when dst is
 * a folder there): a local `tar -c` feeds a remote `tar -x` on stdin.
 */
static void
cp_tree_put(struct conn *c, const char *src, const char *worker,
    const char *dst)
{
	struct pollfd	 pfd[2];
	json_t		*req, *m, *st;
	const char	*ev;
	char		*target, *base, *targv[7], *buf, *handle = NULL;
	pid_t		 pid;
	ssize_t		 n;
	int		 id, fd, status, in_open = 1;

	base = cp_base(src);
	st = cp_remote_stat(c, worker, dst);
	if (cp_is_dir(st) && strcmp(base, "/") != 0 &&
	    strcmp(base, ".") != 0)
		xasprintf(&target, "%s/%s", dst, base);
	else
		target = xstrdup(dst);
	json_decref(st);
	free(base);
	targv[0] = (char *)"tar";
	targv[1] = (char *)"-C";
	targv[2] = (char *)src;
	targv[3] = (char *)"-cf";
	targv[4] = (char *)"-";
	targv[5] = (char *)".";
	targv[6] = NULL;
	pid = cp_tar_spawn(targv, 1, &fd);
	req = json_pack("{s:s, s:s, s:[s, s, s, s, s], s:b, s:b}", "op",
	    "exec", "worker", worker, "argv", "sh", "-c",
	    "mkdir -p -- \"$1\" && exec tar -C \"$1\" -xpf -", "sh", target,
	    "stream", 1, "stdin_open", 1);
	id = conn_send(c, req);
	json_decref(req);
	buf = xmalloc(CLIENT_WRITE);
	for (;;) {
		if (conn_has_line(c)) {
			m = conn_take(c);
			if (json_integer_value(json_object_get(m, "id")) != id) {
				json_decref(m);
				continue;
			}
			ev = json_string_value(json_object_get(m, "event"));
			if (ev != NULL && strcmp(ev, "started") == 0)
				handle = xstrdup(json_string_value(
				    json_object_get(m, "handle")) ?: "");
			else if (ev != NULL && (strcmp(ev, "stderr") == 0 ||
			    strcmp(ev, "stdout") == 0))
				msg_write(m, "data", STDERR_FILENO);
			else if (ev == NULL && json_object_get(m, "ok") != NULL)
				break;
			json_decref(m);
			continue;
		}
		if (c->eof)
			die(255, "the server closed the connection");
		pfd[0].fd = c->fd;
		pfd[0].events = conn_events(c);
		pfd[1].fd = fd;
		pfd[1].events = in_open && handle != NULL &&
		    conn_pending(c) < CLIENT_OUT_HIGH ? POLLIN : 0;
		pfd[0].revents = pfd[1].revents = 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(255, "poll: %s", strerror(errno));
		}
		if (pfd[1].events != 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
			n = read(fd, buf, CLIENT_WRITE);
			if (n == -1 && errno == EINTR)
				continue;
			if (n <= 0)
				in_open = 0;
			exec_write(c, handle, buf, n > 0 ? (size_t)n : 0);
		}
		conn_handle(c, pfd[0].revents);
	}
	free(buf);
	free(handle);
	close(fd);
	status = cp_tar_wait(pid);
	if (!json_is_true(json_object_get(m, "ok")))
		die(1, "%s", reply_message(m));
	if (status != 0)
		die(1, "%s: the local tar failed", src);
	if (exit_status(m) != 0)
		die(1, "%s:%s: tar on the worker failed (status %d)", worker,
		    target, exit_status(m));
	json_decref(m);
	free(target);
}

/* Spool stdin to an unlinked temporary file; returns it, at offset 0. */
static int
cp_spool_stdin(void)
{
	const char	*tmpdir = getenv("TMPDIR");
	char		*path, *buf;
	ssize_t		 n;
	int		 fd;

	if (tmpdir == NULL || *tmpdir == '\0')
		tmpdir = "/tmp";
	xasprintf(&path, "%s/sandd-cp.XXXXXX", tmpdir);
	if ((fd = mkstemp(path)) == -1)
		die(1, "%s: %s", path, strerror(errno));
	unlink(path);
	free(path);
	buf = xmalloc(CLIENT_CHUNK);
	while ((n = read(STDIN_FILENO, buf, CLIENT_CHUNK)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			die(1, "stdin: %s", strerror(errno));
		if (cp_tar_write(fd, buf, (size_t)n) != 0)
			die(1, "spooling stdin: %s", strerror(errno));
	}
	free(buf);
	if (lseek(fd, 0, SEEK_SET) != 0)
		die(1, "spooling stdin: %s", strerror(errno));
	return (fd);
}

/* Copy local spath (or stdin) to worker:dpath. */
static void
cp_to_worker(struct conn *c, const char *spath, const char *worker,
    const char *dpath, int rec, int keep)
{
	struct stat	 sb;
	json_t		*st;
	char		*target, *base;
	mode_t		 mode;
	int		 fd, is_stdin = strcmp(spath, "-") == 0;

	if (is_stdin)
		fd = cp_spool_stdin();
	else {
		if (stat(spath, &sb) != 0)
			die(1, "%s: %s", spath, strerror(errno));
		if (S_ISDIR(sb.st_mode)) {
			if (!rec)
				die(1, "%s is a folder (use -r)", spath);
			cp_tree_put(c, spath, worker, dpath);
			return;
		}
		if ((fd = open(spath, O_RDONLY)) == -1)
			die(1, "%s: %s", spath, strerror(errno));
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		die(1, "%s: not a regular file", spath);
	st = cp_remote_stat(c, worker, dpath);
	if (cp_is_dir(st) && !is_stdin) {
		base = cp_base(spath);
		xasprintf(&target, "%s%s%s", dpath, dpath[strlen(dpath) - 1] ==
		    '/' ? "" : "/", base);
		free(base);
	} else
		target = xstrdup(dpath);
	json_decref(st);
	if (is_stdin) {
		/* A new file, as the shell would make it. */
		mode = umask(0);
		umask(mode);
		mode = 0666 & ~mode;
	} else
		mode = sb.st_mode & (keep ? 07777 : 0777);
	cp_put(c, worker, target, fd, (size_t)sb.st_size, (int)mode,
	    keep ? sb.st_mtime : 0);
	close(fd);
	free(target);
}

/* Copy worker:spath to local dpath (or stdout). */
static void
cp_from_worker(struct conn *c, const char *worker, const char *spath,
    const char *dpath, int rec, int keep)
{
	struct stat	 sb;
	json_t		*st;
	char		*target, *base;
	const char	*type;

	st = cp_remote_stat(c, worker, spath);
	if (!json_is_true(json_object_get(st, "ok")))
		die(1, "%s", reply_message(st));
	type = json_string_value(json_object_get(st, "type")) ?: "";
	if (strcmp(type, "dir") == 0) {
		if (!rec)
			die(1, "%s:%s is a folder (use -r)", worker, spath);
		if (strcmp(dpath, "-") == 0)
			die(1, "a folder cannot go to stdout");
		cp_tree_get(c, worker, spath, dpath);
		json_decref(st);
		return;
	}
	if (strcmp(dpath, "-") != 0 && stat(dpath, &sb) == 0 &&
	    S_ISDIR(sb.st_mode)) {
		base = cp_base(spath);
		xasprintf(&target, "%s/%s", dpath, base);
		free(base);
	} else
		target = xstrdup(dpath);
	cp_get(c, worker, spath, target,
	    (size_t)json_integer_value(json_object_get(st, "size")), keep,
	    (time_t)json_number_value(json_object_get(st, "mtime")));
	json_decref(st);
	free(target);
}

/* `sandd cp`: copy a file or folder to or from a worker. */
int
client_cp(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "preserve", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static struct conn c;	/* static: closed by client_main */
	const char	*spath, *dpath;
	char		*sw, *dw;
	int		 ch, rec = 0, keep = 0;

	while ((ch = getopt_long(argc, argv, "S:rph", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 'r':
			rec = 1;
			break;
		case 'p':
			keep = 1;
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd,
			    client_usage);
			exit(0);
		default:
			bad_option(argv);
		}
	}
	if (optind != argc - 2)
		usage_error();
	sw = cp_split(argv[optind], &spath);
	dw = cp_split(argv[optind + 1], &dpath);
	if ((sw == NULL) == (dw == NULL))
		die(2, "exactly one of source and destination must be "
		    "WORKER:PATH");
	if (*spath == '\0' || *dpath == '\0')
		die(2, "empty path");
	conn_open(&c);
	if (dw != NULL)
		cp_to_worker(&c, spath, dw, dpath, rec, keep);
	else
		cp_from_worker(&c, sw, spath, dpath, rec, keep);
	conn_flush(&c);
	free(sw);
	free(dw);
	return (0);
}

/*
 * Run a client subcommand: fn with argv[0] the name, usage its usage
 * line. Returns the exit status.
 */
int
client_main(const char *name, const char *usage, int (*fn)(int, char **),
    int argc, char **argv)
{
	int	status, fd;

	client_cmd = name;
	client_usage = usage;
	/* A closed 0, 1 or 2 must not become the socket. */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= STDERR_FILENO)
		continue;
	if (fd > STDERR_FILENO)
		close(fd);
	opterr = 0;	/* our own one-line message instead */
	optind = 1;
	status = fn(argc, argv);
	conn_close(client_conn);
	return (status);
}

/*
 * client.c: the client subcommands (exec, workers, wait, stats, ctl,
 * sessions, shell, attach, cp). Each is a plain blocking program that
 * speaks the control protocol over the UNIX socket, one request at a
 * time plus the events that belong to it.
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

/* A connection to the control socket with its read buffer. */
struct conn {
	int	 fd;
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

static const char	*client_cmd = "client";
static const char	*client_socket;
static int		 next_id = 1;
static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_winch;
static struct termios	 saved_tio;
static int		 tio_saved;

#define CLIENT_CHUNK	(256 * 1024)

static __dead void
die(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "sandd CMD: message" and exit with status. */
static __dead void
die(int status, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "sandd %s: ", client_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void
usage_error(const char *usage)
{
	fprintf(stderr, "usage: sandd %s %s\n", client_cmd, usage);
	exit(2);
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
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* Write all of p. */
static void
write_all(int fd, const void *p, size_t len)
{
	const char	*s = p;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			die(255, "write: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
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
	write_all(c->fd, s, strlen(s));
	write_all(c->fd, "\n", 1);
	free(s);
	return (id);
}

/* Read more bytes into the buffer; 0 at EOF. */
static ssize_t
conn_fill(struct conn *c)
{
	ssize_t	n;

	if (c->cap - c->len < 65536) {
		c->cap = c->cap * 2 + 65536;
		c->buf = xrealloc(c->buf, c->cap);
	}
	do
		n = read(c->fd, c->buf + c->len, c->cap - c->len);
	while (n == -1 && errno == EINTR && !got_signal);
	if (n == -1)
		return (-1);
	c->len += (size_t)n;
	return (n);
}

/* A whole line is buffered? */
static int
conn_has_line(struct conn *c)
{
	return (c->len > 0 && memchr(c->buf, '\n', c->len) != NULL);
}

/* Read one message (blocking). NULL at EOF. */
static json_t *
conn_recv(struct conn *c)
{
	char		*nl;
	json_t		*m;
	json_error_t	 err;
	size_t		 n;

	while ((nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL) ==
	    NULL) {
		if (conn_fill(c) <= 0)
			return (NULL);
	}
	n = (size_t)(nl - c->buf);
	m = json_loadb(c->buf, n, JSON_ALLOW_NUL, &err);
	memmove(c->buf, nl + 1, c->len - n - 1);
	c->len -= n + 1;
	if (m == NULL)
		die(255, "bad message from the server: %s", err.text);
	return (m);
}

/* Pass the next len raw payload bytes to fd (or drop them if fd < 0). */
static void
conn_payload(struct conn *c, size_t len, int fd, EVP_MD_CTX *md)
{
	size_t	n;

	while (len > 0) {
		if (c->len == 0 && conn_fill(c) <= 0)
			die(255, "connection closed in a payload");
		n = c->len < len ? c->len : len;
		if (fd >= 0)
			write_all(fd, c->buf, n);
		if (md != NULL)
			EVP_DigestUpdate(md, c->buf, n);
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
		len -= n;
	}
}

/*
 * Send req and wait for its final reply, dropping events. Dies with the
 * server's message on an error reply unless allow_error.
 */
static json_t *
conn_call(struct conn *c, json_t *req, int allow_error)
{
	json_t	*m, *e;
	int	 id = conn_send(c, req);

	json_decref(req);
	for (;;) {
		if ((m = conn_recv(c)) == NULL)
			die(255, "the server closed the connection");
		if (json_is_integer(json_object_get(m, "bytes")))
			conn_payload(c, (size_t)json_integer_value(
			    json_object_get(m, "bytes")), -1, NULL);
		if (json_integer_value(json_object_get(m, "id")) == id &&
		    json_object_get(m, "ok") != NULL &&
		    json_object_get(m, "event") == NULL)
			break;
		json_decref(m);
	}
	if (!allow_error && !json_is_true(json_object_get(m, "ok"))) {
		e = json_object_get(m, "error");
		die(json_string_value(json_object_get(e, "code")) != NULL &&
		    strcmp(json_string_value(json_object_get(e, "code")),
		    "timeout") == 0 ? 1 : 255, "%s",
		    json_string_value(json_object_get(e, "message")));
	}
	return (m);
}

/* Bytes of field name (or name_b64) of m into *out; returns length. */
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

static void
signal_cb(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_signal = sig;
}

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
		return ((int)json_integer_value(code));
	if (sig != NULL && (n = util_signal_number(sig)) > 0)
		return (128 + n);
	return (255);
}

/* The status and message for an error reply of an exec. */
static __dead void
exec_error(json_t *r)
{
	json_t		*e = json_object_get(r, "error");
	const char	*code = json_string_value(json_object_get(e, "code"));

	die(code != NULL && strcmp(code, "exec_failed") == 0 ? 127 : 255,
	    "%s", json_string_value(json_object_get(e, "message")));
}

/* ---- exec ---- */

/* Does this word need a shell? */
static int
needs_shell(const char *s)
{
	return (strpbrk(s, " \t\n|&;<>()$`\\\"'*?[]#~=%{}") != NULL);
}

static int
client_exec_broadcast(struct conn *c, json_t *req)
{
	json_t		*r, *res, *v;
	struct evbuffer	*b;
	size_t		 i, k, len;
	const char	*w, *p, *nl;
	int		 status = 0;

	r = conn_call(c, req, 0);
	res = json_object_get(r, "results");
	json_array_foreach(res, i, v) {
		w = json_string_value(json_object_get(v, "worker"));
		if (!json_is_true(json_object_get(v, "ok"))) {
			fprintf(stderr, "[%s] error: %s\n", w,
			    json_string_value(json_object_get(json_object_get(
			    v, "error"), "message")));
			status = 1;
			continue;
		}
		b = evbuffer_new();
		len = msg_bytes(v, "stdout", b);
		p = (const char *)evbuffer_pullup(b, -1);
		while (len > 0) {
			nl = memchr(p, '\n', len);
			k = nl != NULL ? (size_t)(nl - p) + 1 : len;
			printf("[%s] %.*s%s", w, (int)k, p, nl == NULL ? "\n" :
			    "");
			p += k;
			len -= k;
		}
		evbuffer_free(b);
		if (exit_status(v) != 0)
			status = 1;
	}
	fflush(stdout);
	json_decref(r);
	return (status);
}

static int
client_exec(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*usage = "[-S socket] [-t secs] [-e K=V]... [-C dir] "
			    "[-l K=V]... worker -- command ...";
	struct conn	 c;
	json_t		*req, *env, *labels, *m, *cmd;
	struct pollfd	 pfd[2];
	char		 buf[65536], *b64, *end;
	const char	*ev, *handle = NULL, *cwd = NULL;
	int		 ch, id, i, in_open, status, dashdash;
	int		 write_pending = 0;
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
			timeout = strtod(optarg, &end);
			if (*end != '\0' || timeout < 0)
				die(2, "bad -t '%s'", optarg);
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
			printf("usage: sandd exec %s\n", usage);
			exit(0);
		default:
			usage_error(usage);
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
			usage_error(usage);
		json_object_set_new(req, "worker", json_string(argv[0]));
		argc--;
		argv++;
	}
	if (argc > 0 && strcmp(argv[0], "--") == 0) {
		argc--;
		argv++;
	}
	if (argc == 0)
		usage_error(usage);
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
	in_open = !isatty(STDIN_FILENO);
	if (in_open)
		json_object_set_new(req, "stdin_open", json_true());
	catch_signals(0);
	id = conn_send(&c, req);
	json_decref(req);
	for (;;) {
		if (got_signal && handle != NULL) {
			req = json_pack("{s:s, s:s, s:s}", "op", "signal",
			    "handle", handle, "signal", util_signal_name(
			    got_signal));
			conn_send(&c, req);
			json_decref(req);
			got_signal = 0;
		}
		if (conn_has_line(&c)) {
			m = conn_recv(&c);
			goto message;
		}
		pfd[0].fd = c.fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = STDIN_FILENO;
		/*
		 * One write in flight at a time: blocking on a full socket
		 * while output waits for us would deadlock both ends.
		 */
		pfd[1].events = in_open && handle != NULL && !write_pending ?
		    POLLIN : 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(255, "poll: %s", strerror(errno));
		}
		/* POLLHUP comes even when not asked for: check events. */
		if (pfd[1].events != 0 && (pfd[1].revents & (POLLIN | POLLHUP))) {
			n = read(STDIN_FILENO, buf, sizeof buf);
			if (n > 0) {
				b64 = util_base64(buf, (size_t)n);
				req = json_pack("{s:s, s:s, s:s}", "op",
				    "write", "handle", handle, "data_b64", b64);
				free(b64);
			} else {
				req = json_pack("{s:s, s:s, s:b}", "op",
				    "write", "handle", handle, "eof", 1);
				in_open = 0;
			}
			json_object_set_new(req, "id", json_integer(0));
			conn_send(&c, req);
			json_decref(req);
			write_pending = 1;
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP)))
			continue;
		if (conn_fill(&c) <= 0)
			die(255, "the server closed the connection");
		continue;
message:
		if (json_integer_value(json_object_get(m, "id")) != id) {
			/* Replies to our writes and signals. */
			if (json_integer_value(json_object_get(m, "id")) == 0)
				write_pending = 0;
			json_decref(m);
			continue;
		}
		ev = json_string_value(json_object_get(m, "event"));
		if (ev != NULL && strcmp(ev, "started") == 0) {
			handle = xstrdup(json_string_value(json_object_get(m,
			    "handle")));
		} else if (ev != NULL && strcmp(ev, "stdout") == 0)
			msg_write(m, "data", STDOUT_FILENO);
		else if (ev != NULL && strcmp(ev, "stderr") == 0)
			msg_write(m, "data", STDERR_FILENO);
		else if (ev == NULL && json_object_get(m, "ok") != NULL) {
			if (!json_is_true(json_object_get(m, "ok")))
				exec_error(m);
			status = exit_status(m);
			json_decref(m);
			return (status);
		}
		json_decref(m);
	}
}

/* ---- workers, wait, stats, sessions ---- */

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
	if (*out == '\0') {
		free(out);
		out = xstrdup("-");
	}
	return (out);
}

/* Parse the common -S, -l, --json, -a options of the listing commands. */
static void
list_options(int argc, char **argv, const char *usage, json_t *labels,
    int *json, int *all, const char **worker)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
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
			if (labels == NULL || add_kv(labels, optarg) != 0)
				usage_error(usage);
			break;
		case 'w':
			if (worker == NULL)
				usage_error(usage);
			*worker = optarg;
			break;
		case 'a':
			if (all == NULL)
				usage_error(usage);
			*all = 1;
			break;
		case 'j':
			*json = 1;
			break;
		case 'h':
			printf("usage: sandd %s %s\n", client_cmd, usage);
			exit(0);
		default:
			usage_error(usage);
		}
	}
	if (optind != argc)
		usage_error(usage);
}

static int
client_workers(int argc, char **argv)
{
	struct conn	 c;
	json_t		*labels = json_object(), *r, *list, *w;
	int		 json = 0, all = 0;
	size_t		 i;
	char		*lt, osarch[64];

	list_options(argc, argv, "[-S socket] [-l K=V]... [-a] [--json]",
	    labels, &json, &all, NULL);
	conn_open(&c);
	r = conn_call(&c, json_pack("{s:s, s:o, s:b}", "op", "workers",
	    "labels", labels, "all", all), 0);
	list = json_object_get(r, "workers");
	if (json) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(r);
		return (0);
	}
	printf("%-20s %-12s %-24s %-16s %-14s %-8s %7s %8s %s\n", "ID",
	    "STATE", "LABELS", "HOSTNAME", "OS/ARCH", "VERSION", "RUNNING",
	    "SESSIONS", "ADDR");
	json_array_foreach(list, i, w) {
		lt = labels_text(json_object_get(w, "labels"));
		snprintf(osarch, sizeof osarch, "%s/%s",
		    json_string_value(json_object_get(w, "os")),
		    json_string_value(json_object_get(w, "arch")));
		printf("%-20s %-12s %-24s %-16s %-14s %-8s %7lld %8lld %s\n",
		    json_string_value(json_object_get(w, "id")),
		    json_is_true(json_object_get(w, "connected")) ?
		    "connected" : "away", lt,
		    json_string_value(json_object_get(w, "hostname")), osarch,
		    json_string_value(json_object_get(w, "version")),
		    (long long)json_integer_value(json_object_get(w,
		    "running")),
		    (long long)json_integer_value(json_object_get(w,
		    "sessions")),
		    json_string_value(json_object_get(w, "addr")));
		free(lt);
	}
	json_decref(r);
	return (0);
}

static int
client_wait(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*usage = "[-S socket] [-t secs] worker | -l K=V... "
			    "[-n count]";
	struct conn	 c;
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
			timeout = strtod(optarg, &end);
			if (*end != '\0' || timeout < 0)
				die(2, "bad -t '%s'", optarg);
			break;
		case 'l':
			if (add_kv(labels, optarg) != 0)
				die(2, "bad -l '%s' (want K=V)", optarg);
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end != '\0' || count < 0)
				die(2, "bad -n '%s'", optarg);
			break;
		case 'h':
			printf("usage: sandd wait %s\n", usage);
			exit(0);
		default:
			usage_error(usage);
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
		usage_error(usage);
	json_decref(labels);
	conn_open(&c);
	r = conn_call(&c, req, 1);
	if (!json_is_true(json_object_get(r, "ok")))
		die(1, "%s", json_string_value(json_object_get(
		    json_object_get(r, "error"), "message")));
	json_decref(r);
	return (0);
}

static int
client_stats(int argc, char **argv)
{
	struct conn	 c;
	json_t		*r, *v, *e;
	const char	*k, *k2;
	int		 json = 0;

	list_options(argc, argv, "[-S socket] [--json]", NULL, &json, NULL,
	    NULL);
	conn_open(&c);
	r = conn_call(&c, json_pack("{s:s}", "op", "stats"), 0);
	json_object_del(r, "ok");
	json_object_del(r, "id");
	if (json) {
		json_dumpf(r, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		json_object_foreach(r, k, v) {
			if (json_is_object(v)) {
				json_object_foreach(v, k2, e)
					printf("%s.%s %lld\n", k, k2, (long long)
					    json_integer_value(e));
			} else
				printf("%s %lld\n", k, (long long)
				    json_integer_value(v));
		}
	}
	json_decref(r);
	return (0);
}

static int
client_sessions(int argc, char **argv)
{
	struct conn	 c;
	json_t		*req, *r, *list, *s;
	const char	*worker = NULL;
	int		 json = 0;
	size_t		 i;

	list_options(argc, argv, "[-S socket] [-w worker] [--json]", NULL,
	    &json, NULL, &worker);
	req = json_pack("{s:s}", "op", "session.list");
	if (worker != NULL)
		json_object_set_new(req, "worker", json_string(worker));
	conn_open(&c);
	r = conn_call(&c, req, 0);
	list = json_object_get(r, "sessions");
	if (json) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(r);
		return (0);
	}
	printf("%-20s %-16s %7s %-9s %9s %8s %-20s %s\n", "SESSION", "WORKER",
	    "PID", "SIZE", "OFFSET", "ATTACHED", "CREATED", "COMMAND");
	json_array_foreach(list, i, s) {
		char size[24];

		snprintf(size, sizeof size, "%lldx%lld",
		    (long long)json_integer_value(json_object_get(s, "cols")),
		    (long long)json_integer_value(json_object_get(s, "rows")));
		printf("%-20s %-16s %7lld %-9s %9lld %8lld %-20s %s%s\n",
		    json_string_value(json_object_get(s, "session")),
		    json_string_value(json_object_get(s, "worker")),
		    (long long)json_integer_value(json_object_get(s, "pid")),
		    size,
		    (long long)json_integer_value(json_object_get(s, "offset")),
		    (long long)json_integer_value(json_object_get(s,
		    "attached")),
		    json_string_value(json_object_get(s, "created_at")) ?: "",
		    json_string_value(json_object_get(s, "cmd")) ?: "",
		    json_is_true(json_object_get(s, "exited")) ? " (exited)" :
		    "");
	}
	json_decref(r);
	return (0);
}

/* ---- ctl ---- */

static int
client_ctl(int argc, char **argv)
{
	struct conn	 c;
	struct pollfd	 pfd[2];
	char		 buf[65536];
	ssize_t		 n;
	int		 in_open = 1, json = 0;
	json_t		*m;
	char		*s;

	list_options(argc, argv, "[-S socket]  (JSON lines on stdin)", NULL,
	    &json, NULL, NULL);
	conn_open(&c);
	for (;;) {
		while (conn_has_line(&c)) {
			m = conn_recv(&c);
			s = json_dumps(m, JSON_COMPACT);
			printf("%s\n", s);
			fflush(stdout);
			free(s);
			if (json_is_integer(json_object_get(m, "bytes")))
				conn_payload(&c, (size_t)json_integer_value(
				    json_object_get(m, "bytes")),
				    STDOUT_FILENO, NULL);
			json_decref(m);
		}
		pfd[0].fd = c.fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = in_open ? POLLIN : 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die(255, "poll: %s", strerror(errno));
		}
		if (pfd[1].events != 0 && (pfd[1].revents & (POLLIN | POLLHUP))) {
			n = read(STDIN_FILENO, buf, sizeof buf);
			if (n > 0)
				write_all(c.fd, buf, (size_t)n);
			else {
				/* Half-close: the server answers, then closes. */
				shutdown(c.fd, SHUT_WR);
				in_open = 0;
			}
		}
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			if (conn_fill(&c) <= 0) {
				if (c.len > 0)
					write_all(STDOUT_FILENO, c.buf, c.len);
				return (0);
			}
		}
	}
}

/* ---- shell and attach ---- */

static void
tty_restore(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		tio_saved = 0;
	}
}

static void
tty_raw(void)
{
	struct termios	tio;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) != 0)
		return;
	tio = saved_tio;
	cfmakeraw(&tio);
	/* TCSADRAIN, not TCSAFLUSH: keys typed ahead must not be lost. */
	tcsetattr(STDIN_FILENO, TCSADRAIN, &tio);
	tio_saved = 1;
	atexit(tty_restore);
}

/* Send the local window size to the session. */
static void
tty_resize(struct conn *c, const char *session)
{
	struct winsize	 ws;
	json_t		*req;

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0)
		return;
	req = json_pack("{s:s, s:s, s:i, s:i, s:i}", "op", "session.resize",
	    "session", session, "rows", ws.ws_row, "cols", ws.ws_col, "id", 0);
	conn_send(c, req);
	json_decref(req);
}

/* Send keys to the session. */
static void
session_send(struct conn *c, const char *session, const char *p, size_t len)
{
	json_t	*req;
	char	*b64;

	if (len == 0)
		return;
	b64 = util_base64(p, len);
	req = json_pack("{s:s, s:s, s:s, s:i}", "op", "session.write",
	    "session", session, "data_b64", b64, "id", 0);
	free(b64);
	conn_send(c, req);
	json_decref(req);
}

/*
 * The terminal loop of shell and attach: keys go to the session, output
 * comes back, `~.` after a newline detaches. Returns the exit status.
 */
static int
terminal_loop(struct conn *c, const char *session)
{
	struct pollfd	 pfd[2];
	char		 in[4096], out[4096 + 1];
	json_t		*m, *req;
	const char	*ev;
	ssize_t		 n, i;
	size_t		 o;
	int		 at_bol = 1, tilde = 0, in_open = 1, status;

	tty_raw();
	catch_signals(1);
	for (;;) {
		if (got_winch) {
			got_winch = 0;
			tty_resize(c, session);
		}
		if (got_signal)
			break;
		while (conn_has_line(c)) {
			m = conn_recv(c);
			ev = json_string_value(json_object_get(m, "event"));
			if (ev != NULL && strcmp(ev, "output") == 0)
				msg_write(m, "data", STDOUT_FILENO);
			else if (ev != NULL && strcmp(ev, "exit") == 0) {
				tty_restore();
				status = exit_status(m);
				json_decref(m);
				/* The program is gone: release the session. */
				conn_call(c, json_pack("{s:s, s:s}", "op",
				    "session.close", "session", session), 1);
				return (status);
			} else if (ev == NULL && json_is_false(json_object_get(m,
			    "ok"))) {
				tty_restore();
				die(255, "%s", json_string_value(json_object_get(
				    json_object_get(m, "error"), "message")));
			}
			json_decref(m);
		}
		pfd[0].fd = c->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = STDIN_FILENO;
		pfd[1].events = in_open ? POLLIN : 0;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].events != 0 && (pfd[1].revents & (POLLIN | POLLHUP))) {
			n = read(STDIN_FILENO, in, sizeof in);
			if (n <= 0) {
				in_open = 0;
				continue;
			}
			for (i = 0, o = 0; i < n; i++) {
				if (tilde) {
					tilde = 0;
					if (in[i] == '.') {
						session_send(c, session, out, o);
						goto detach;
					}
					if (in[i] != '~')
						out[o++] = '~';
					out[o++] = in[i];
				} else if (at_bol && in[i] == '~') {
					tilde = 1;
					continue;
				} else
					out[o++] = in[i];
				at_bol = in[i] == '\r' || in[i] == '\n';
			}
			session_send(c, session, out, o);
		}
		if ((pfd[0].revents & (POLLIN | POLLHUP)) && conn_fill(c) <= 0) {
			tty_restore();
			die(255, "the server closed the connection");
		}
	}
detach:
	req = json_pack("{s:s, s:s, s:i}", "op", "session.detach", "session",
	    session, "id", 0);
	conn_send(c, req);
	json_decref(req);
	tty_restore();
	fprintf(stderr, "\r\n[detached from session %s]\r\n", session);
	return (0);
}

static int
client_shell(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*usage = "[-S socket] worker [-- command ...]";
	struct conn	 c;
	struct winsize	 ws;
	json_t		*req, *r, *cmd, *env;
	const char	*term = getenv("TERM");
	char		*session;
	int		 ch, i, status;

	while ((ch = getopt_long(argc, argv, "+S:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 'h':
			printf("usage: sandd shell %s\n", usage);
			exit(0);
		default:
			usage_error(usage);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage_error(usage);
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
	if (term != NULL && *term != '\0') {
		env = json_pack("{s:s}", "TERM", term);
		json_object_set_new(req, "env", env);
		json_object_set_new(req, "term", json_string(term));
	}
	conn_open(&c);
	r = conn_call(&c, req, 1);
	if (!json_is_true(json_object_get(r, "ok"))) {
		const char *code = json_string_value(json_object_get(
		    json_object_get(r, "error"), "code"));
		die(code != NULL && strcmp(code, "exec_failed") == 0 ? 127 :
		    255, "%s", json_string_value(json_object_get(
		    json_object_get(r, "error"), "message")));
	}
	session = xstrdup(json_string_value(json_object_get(r, "session")));
	json_decref(r);
	status = terminal_loop(&c, session);
	free(session);
	return (status);
}

static int
client_attach(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*usage = "[-S socket] [--since offset] session";
	struct conn	 c;
	json_t		*r;
	long long	 since = 0;
	char		*end;
	int		 ch;

	while ((ch = getopt_long(argc, argv, "S:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			client_socket = optarg;
			break;
		case 's':
			since = strtoll(optarg, &end, 10);
			if (*end != '\0' || since < 0)
				die(2, "bad --since '%s'", optarg);
			break;
		case 'h':
			printf("usage: sandd attach %s\n", usage);
			exit(0);
		default:
			usage_error(usage);
		}
	}
	if (optind != argc - 1)
		usage_error(usage);
	conn_open(&c);
	r = conn_call(&c, json_pack("{s:s, s:s, s:I}", "op", "session.attach",
	    "session", argv[optind], "since", (json_int_t)since), 0);
	json_decref(r);
	tty_resize(&c, argv[optind]);
	return (terminal_loop(&c, argv[optind]));
}

/* ---- cp ---- */

struct progress {
	int	 on;
	size_t	 total;
	size_t	 done;
	double	 start;
	double	 last;
};

static void
progress_init(struct progress *p, size_t total)
{
	memset(p, 0, sizeof *p);
	p->on = isatty(STDERR_FILENO) && total > 4 * 1024 * 1024;
	p->total = total;
	p->start = p->last = util_now();
}

/* Draw percent, rate and ETA, at most ten times a second. */
static void
progress_add(struct progress *p, size_t n, int final)
{
	double	now = util_now(), rate, eta;

	p->done += n;
	if (!p->on || (!final && now - p->last < 0.1))
		return;
	p->last = now;
	rate = p->done / (now - p->start > 0.001 ? now - p->start : 0.001);
	eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
	fprintf(stderr, "\r%3d%% %8.1f MB/s  ETA %3d:%02d ",
	    p->total > 0 ? (int)(100.0 * p->done / p->total) : 100,
	    rate / 1e6, (int)eta / 60, (int)eta % 60);
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

/* stat on the worker: returns the reply (ok or not). */
static json_t *
cp_remote_stat(struct conn *c, const char *worker, const char *path)
{
	return (conn_call(c, json_pack("{s:s, s:s, s:s}", "op", "stat",
	    "worker", worker, "path", path), 1));
}

static void
cp_hex(const unsigned char *md, char *out)
{
	util_sha256_hex(md, out);
}

/* Upload fd (size bytes) to worker:path. */
static void
cp_put(struct conn *c, const char *worker, const char *path, int fd,
    size_t size, int mode, time_t mtime)
{
	json_t			*req, *r;
	struct progress		 pg;
	EVP_MD_CTX		*md = EVP_MD_CTX_new();
	unsigned char		 dig[32];
	char			*buf, hex[65];
	size_t			 left = size;
	ssize_t			 n;
	int			 id;

	req = json_pack("{s:s, s:s, s:s, s:I, s:i}", "op", "put", "worker",
	    worker, "path", path, "bytes", (json_int_t)size, "mode", mode);
	id = conn_send(c, req);
	json_decref(req);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	buf = xmalloc(CLIENT_CHUNK);
	progress_init(&pg, size);
	while (left > 0) {
		n = read(fd, buf, left < CLIENT_CHUNK ? left : CLIENT_CHUNK);
		if (n <= 0)
			die(1, "read: %s", n == 0 ? "file shrank while copying" :
			    strerror(errno));
		EVP_DigestUpdate(md, buf, (size_t)n);
		write_all(c->fd, buf, (size_t)n);
		left -= (size_t)n;
		progress_add(&pg, (size_t)n, 0);
	}
	progress_add(&pg, 0, 1);
	free(buf);
	EVP_DigestFinal_ex(md, dig, NULL);
	EVP_MD_CTX_free(md);
	cp_hex(dig, hex);
	for (;;) {
		if ((r = conn_recv(c)) == NULL)
			die(255, "the server closed the connection");
		if (json_integer_value(json_object_get(r, "id")) == id)
			break;
		json_decref(r);
	}
	if (!json_is_true(json_object_get(r, "ok")))
		die(1, "%s", json_string_value(json_object_get(json_object_get(
		    r, "error"), "message")));
	if (strcmp(hex, json_string_value(json_object_get(r, "sha256")) ?:
	    "") != 0)
		die(1, "put %s on %s: SHA-256 differs (sent %s)", path, worker,
		    hex);
	json_decref(r);
	if (mtime != 0) {
		char	stamp[32];

		snprintf(stamp, sizeof stamp, "@%lld", (long long)mtime);
		r = conn_call(c, json_pack("{s:s, s:s, s:[s, s, s, s, s]}",
		    "op", "exec", "worker", worker, "argv", "touch", "-d",
		    stamp, "--", path), 0);
		json_decref(r);
	}
}

/*
 * Download worker:path to the local path (or stdout for "-"), through a
 * temporary file that is renamed into place once the digest matches.
 */
static void
cp_get(struct conn *c, const char *worker, const char *path,
    const char *local, int keep)
{
	json_t			*req, *r;
	struct progress		 pg;
	EVP_MD_CTX		*md = EVP_MD_CTX_new();
	unsigned char		 dig[32];
	char			 hex[65], *tmp = NULL, *dir, *copy;
	int			 id, fd, started = 0;
	struct timespec		 ts[2];

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
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	progress_init(&pg, 0);
	for (;;) {
		if ((r = conn_recv(c)) == NULL)
			die(255, "the server closed the connection");
		if (json_integer_value(json_object_get(r, "id")) != id) {
			json_decref(r);
			continue;
		}
		if (json_object_get(r, "event") != NULL) {
			size_t n = (size_t)json_integer_value(
			    json_object_get(r, "bytes"));
			if (!started) {
				progress_init(&pg, (size_t)json_integer_value(
				    json_object_get(r, "size")));
				started = 1;
			}
			conn_payload(c, n, fd, md);
			progress_add(&pg, n, 0);
			json_decref(r);
			continue;
		}
		break;
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		if (tmp != NULL)
			unlink(tmp);
		die(1, "%s", json_string_value(json_object_get(json_object_get(
		    r, "error"), "message")));
	}
	if (started)
		progress_add(&pg, 0, 1);
	EVP_DigestFinal_ex(md, dig, NULL);
	EVP_MD_CTX_free(md);
	cp_hex(dig, hex);
	if (strcmp(hex, json_string_value(json_object_get(r, "sha256")) ?:
	    "") != 0) {
		if (tmp != NULL)
			unlink(tmp);
		die(1, "get %s from %s: SHA-256 differs", path, worker);
	}
	if (tmp != NULL) {
		fchmod(fd, (mode_t)json_integer_value(json_object_get(r,
		    "mode")) & 07777);
		if (keep) {
			json_t *st = cp_remote_stat(c, worker, path);
			ts[0].tv_sec = ts[1].tv_sec = (time_t)json_number_value(
			    json_object_get(st, "mtime"));
			ts[0].tv_nsec = ts[1].tv_nsec = 0;
			futimens(fd, ts);
			json_decref(st);
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

/* Pipe the output of a local tar into a remote `tar -x` (or back). */
static int
cp_tree(struct conn *c, const char *src_worker, const char *src,
    const char *dst_worker, const char *dst)
{
	json_t		*req, *m;
	char		*cmd, *b64, buf[65536];
	const char	*ev, *handle = NULL;
	FILE		*f;
	size_t		 n;
	int		 id, status;

	if (src_worker != NULL && dst_worker == NULL) {
		/* worker -> local: remote tar -c, local tar -x. */
		if (mkdir(dst, 0755) == -1 && errno != EEXIST)
			die(1, "%s: %s", dst, strerror(errno));
		xasprintf(&cmd, "tar -C '%s' -xpf -", dst);
		if ((f = popen(cmd, "w")) == NULL)
			die(1, "tar: %s", strerror(errno));
		free(cmd);
		req = json_pack("{s:s, s:s, s:[s, s, s, s, s, s], s:b}", "op",
		    "exec", "worker", src_worker, "argv", "tar", "-C", src,
		    "-cf", "-", ".", "stream", 1);
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
			if (ev != NULL && strcmp(ev, "stdout") == 0) {
				struct evbuffer *b = evbuffer_new();
				size_t k = msg_bytes(m, "data", b);
				if (k > 0 && fwrite(evbuffer_pullup(b, -1), 1, k,
				    f) != k)
					die(1, "tar: write failed");
				evbuffer_free(b);
			} else if (ev != NULL && strcmp(ev, "stderr") == 0)
				msg_write(m, "data", STDERR_FILENO);
			else if (ev == NULL)
				break;
			json_decref(m);
		}
		if (!json_is_true(json_object_get(m, "ok")))
			exec_error(m);
		status = exit_status(m);
		json_decref(m);
		if (pclose(f) != 0 || status != 0)
			die(1, "copy of %s:%s failed", src_worker, src);
		return (0);
	}
	/* local -> worker: local tar -c, remote mkdir + tar -x. */
	xasprintf(&cmd, "tar -C '%s' -cf - .", src);
	if ((f = popen(cmd, "r")) == NULL)
		die(1, "tar: %s", strerror(errno));
	free(cmd);
	req = json_pack("{s:s, s:s, s:[s, s, s, s, s], s:b, s:b}", "op",
	    "exec", "worker", dst_worker, "argv", "sh", "-c",
	    "mkdir -p -- \"$1\" && exec tar -C \"$1\" -xpf -", "sh", dst,
	    "stream", 1, "stdin_open", 1);
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
		if (ev != NULL && strcmp(ev, "started") == 0) {
			handle = xstrdup(json_string_value(json_object_get(m,
			    "handle")));
			json_decref(m);
			while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
				b64 = util_base64(buf, n);
				req = json_pack("{s:s, s:s, s:s, s:i}", "op",
				    "write", "handle", handle, "data_b64", b64,
				    "id", 0);
				free(b64);
				conn_send(c, req);
				json_decref(req);
			}
			req = json_pack("{s:s, s:s, s:b, s:i}", "op", "write",
			    "handle", handle, "eof", 1, "id", 0);
			conn_send(c, req);
			json_decref(req);
			continue;
		}
		if (ev != NULL && strcmp(ev, "stderr") == 0)
			msg_write(m, "data", STDERR_FILENO);
		else if (ev == NULL)
			break;
		json_decref(m);
	}
	if (!json_is_true(json_object_get(m, "ok")))
		exec_error(m);
	status = exit_status(m);
	json_decref(m);
	if (pclose(f) != 0 || status != 0)
		die(1, "copy of %s to %s:%s failed", src, dst_worker, dst);
	return (0);
}

static int
client_cp(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*usage = "[-S socket] [-r] [-p] src dst  (WORKER:PATH "
			    "on one side, - for stdin/stdout)";
	struct conn	 c;
	const char	*spath, *dpath, *base;
	char		*sw, *dw, *target = NULL, *copy, spool[] =
			    "/tmp/sandd-cp.XXXXXX";
	struct stat	 sb;
	json_t		*st;
	int		 ch, rec = 0, keep = 0, fd, mode;

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
			printf("usage: sandd cp %s\n", usage);
			exit(0);
		default:
			usage_error(usage);
		}
	}
	if (optind != argc - 2)
		usage_error(usage);
	sw = cp_split(argv[optind], &spath);
	dw = cp_split(argv[optind + 1], &dpath);
	if ((sw == NULL) == (dw == NULL))
		die(2, "exactly one side must be WORKER:PATH");
	conn_open(&c);
	if (rec)
		return (cp_tree(&c, sw, spath, dw, dpath));

	copy = xstrdup(spath);
	base = basename(copy);
	if (dw != NULL) {
		/* local -> worker */
		if (strcmp(spath, "-") == 0) {
			/* Spool stdin: put needs the size up front. */
			if ((fd = mkstemp(spool)) == -1)
				die(1, "spool: %s", strerror(errno));
			unlink(spool);
			{
				char buf[65536];
				ssize_t n;
				while ((n = read(STDIN_FILENO, buf,
				    sizeof buf)) > 0)
					write_all(fd, buf, (size_t)n);
			}
			lseek(fd, 0, SEEK_SET);
		} else if ((fd = open(spath, O_RDONLY)) == -1)
			die(1, "%s: %s", spath, strerror(errno));
		if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
			die(1, "%s: not a regular file (use -r for folders)",
			    spath);
		st = cp_remote_stat(&c, dw, dpath);
		if (json_is_true(json_object_get(st, "ok")) &&
		    strcmp(json_string_value(json_object_get(st, "type")) ?:
		    "", "dir") == 0 && strcmp(spath, "-") != 0)
			xasprintf(&target, "%s/%s", dpath, base);
		else
			target = xstrdup(dpath);
		json_decref(st);
		mode = strcmp(spath, "-") == 0 ? 0644 : (int)(sb.st_mode &
		    07777);
		cp_put(&c, dw, target, fd, (size_t)sb.st_size, mode,
		    keep ? sb.st_mtime : 0);
		close(fd);
	} else {
		/* worker -> local */
		if (strcmp(dpath, "-") != 0 && stat(dpath, &sb) == 0 &&
		    S_ISDIR(sb.st_mode))
			xasprintf(&target, "%s/%s", dpath, base);
		else
			target = xstrdup(dpath);
		cp_get(&c, sw, spath, target, keep);
	}
	free(copy);
	free(target);
	free(sw);
	free(dw);
	return (0);
}

/* ---- table ---- */

static const struct {
	const char	*name;
	int		(*fn)(int, char **);
} client_cmds[] = {
	{ "exec", client_exec },
	{ "workers", client_workers },
	{ "wait", client_wait },
	{ "stats", client_stats },
	{ "ctl", client_ctl },
	{ "sessions", client_sessions },
	{ "shell", client_shell },
	{ "attach", client_attach },
	{ "cp", client_cp },
};

/* Run client subcommand cmd; argv[0] is cmd. */
int
client_main(const char *cmd, int argc, char **argv)
{
	size_t	i;

	client_cmd = cmd;
	for (i = 0; i < sizeof client_cmds / sizeof client_cmds[0]; i++) {
		if (strcmp(cmd, client_cmds[i].name) == 0) {
			optind = 1;
			return (client_cmds[i].fn(argc, argv));
		}
	}
	die(2, "unknown command");
}

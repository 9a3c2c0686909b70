/*
 * client-shell.c: `sandd shell`, `sandd attach` and `sandd exec --pty`,
 * the local terminal tied to a session on a worker: raw mode, window
 * sizes, keys out and output back, and ssh-like `~` escapes (`~.`
 * detaches).
 *
 * The session outlives the connection to the controller. The terminal
 * keeps the offset where the output it has shown ends; when the
 * controller goes away it either says how to come back (`sandd attach`)
 * or, with --reconnect, connects again with a growing pause and
 * attaches with `since` at that offset, so that nothing is lost or
 * shown twice, for as long as the session lives.
 */
#include <sys/types.h>
#include <sys/ioctl.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "client.h"

/* Pauses between two attempts to reach the controller again. */
#define TERM_RETRY_MIN	0.25
#define TERM_RETRY_MAX	5.0
/* Keys kept while the controller is away; more are dropped. */
#define TERM_KEYS_MAX	(64 * 1024)
/* After the TERM of a timeout, KILL this much later. */
#define TERM_KILL_GRACE	2.0

static struct termios	 saved_tio;
static int		 tio_saved;

/* Escape state of the terminal loop, as ssh's ~ escapes. */
struct escape {
	int	on;		/* escapes recognised (stdin is a terminal) */
	int	at_bol;		/* last key ended a line */
	int	tilde;		/* saw ~ at the start of a line */
};

/* A local terminal tied to a session. */
struct term {
	struct conn		*c;
	const struct client_term_opts *o;
	char			*session;
	char			*worker;	/* the session's, if known */
	uint64_t		 offset;	/* the output shown ends here */
	int			 in_fd;		/* keys; -1 once they end */
	struct escape		 esc;
	struct evbuffer		*keys;		/* typed while reconnecting */
	double			 deadline;	/* of -t; 0 for none */
	int			 timed_out;	/* TERM sent at the deadline */
};

/* What term_attach found. */
#define TERM_ATTACHED	0
#define TERM_RETRY	1	/* the controller went, or lacks the session */
#define TERM_GONE	2	/* the session is no more */

/* Put the terminal back as it was (atexit, client_die, every return). */
void
client_tty_restore(void)
{
	if (tio_saved) {
		tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
		tio_saved = 0;
	}
}

/* Is the local terminal in raw mode (lines need "\r\n")? */
int
client_tty_is_raw(void)
{
	return (tio_saved);
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
		atexit(client_tty_restore);
		registered = 1;
	}
}

/* The size of the local terminal; -1 if stdin is none or it is unknown. */
static int
tty_size(struct winsize *ws)
{
	if (!isatty(STDIN_FILENO) || ioctl(STDIN_FILENO, TIOCGWINSZ, ws) != 0 ||
	    ws->ws_row == 0)
		return (-1);
	return (0);
}

/* Seconds on a clock that only goes forward. */
static double
term_clock(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
}

/* Send the local window size to the session. */
static void
term_resize(struct term *t)
{
	struct winsize	 ws;

	if (t->o->readonly || tty_size(&ws) != 0)
		return;
	client_conn_send_quiet(t->c, json_pack("{s:s, s:s, s:i, s:i}", "op",
	    "session.resize", "session", t->session, "rows", ws.ws_row, "cols",
	    ws.ws_col));
}

/* Send keys to the session. */
static void
term_send(struct term *t, const char *p, size_t len)
{
	char	*b64;

	if (len == 0 || t->o->readonly)
		return;
	b64 = util_base64(p, len);
	client_conn_send_quiet(t->c, json_pack("{s:s, s:s, s:s}", "op",
	    "session.write", "session", t->session, "data_b64", b64));
	free(b64);
}

/* Send a signal to the session's foreground process group. */
static void
term_signal(struct term *t, const char *sig)
{
	client_conn_send_quiet(t->c, json_pack("{s:s, s:s, s:s}", "op",
	    "signal", "session", t->session, "signal", sig));
}

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

/*
 * Read keys from t->in_fd into out (2 * TERM_KEYS_IN), through the
 * escapes. Returns their length; *detach as escape_keys.
 */
#define TERM_KEYS_IN	4096
static size_t
term_read_keys(struct term *t, char *out, int *detach)
{
	char	in[TERM_KEYS_IN];
	ssize_t	n;

	n = read(t->in_fd, in, sizeof in);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return (0);
	if (n <= 0) {
		t->in_fd = -1;	/* watch on until it exits */
		return (0);
	}
	return (escape_keys(&t->esc, in, (size_t)n, out, detach));
}

/*
 * Tell how to come back to the session, after why: the terminal as it
 * was, then one line.
 */
static void
term_hint(struct term *t, const char *why)
{
	const char	*sock = client_socket_option();

	client_tty_restore();
	client_warnx("%s; session %s goes on; to come back: sandd attach%s%s "
	    "%s", why, t->session, sock != NULL ? " -S " : "", sock != NULL ?
	    sock : "", t->session);
}

/* Detach from the session and say so; returns status. */
static int
term_detach(struct term *t, int status)
{
	json_t	*r;

	r = client_conn_call(t->c, json_pack("{s:s, s:s}", "op",
	    "session.detach", "session", t->session), 1);
	json_decref(r);
	client_tty_restore();
	fprintf(stderr, "\r\n[detached from session %s]\r\n", t->session);
	return (status);
}

/*
 * Pass a new window size on; INT, TERM or HUP detach, except a ^C that
 * reached us because the terminal is not raw: that goes to the program.
 * Returns the status to exit with, or -1 to go on.
 */
static int
term_signals(struct term *t)
{
	int	sig;

	if (client_got_winch) {
		client_got_winch = 0;
		term_resize(t);
	}
	if ((sig = client_got_signal) == 0)
		return (-1);
	client_got_signal = 0;
	if (sig != SIGINT || tio_saved || t->o->readonly)
		return (term_detach(t, 128 + sig));
	term_signal(t, "INT");
	return (-1);
}

/*
 * The time limit of exec --pty -t: TERM when it passes, KILL a grace
 * later. Returns the milliseconds to the next step, -1 for none.
 */
static int
term_deadline(struct term *t)
{
	double	now, left;

	if (t->deadline == 0)
		return (-1);
	now = term_clock();
	if ((left = t->deadline - now) > 0)
		return ((int)(left * 1000) + 1);
	term_signal(t, t->timed_out ? "KILL" : "TERM");
	if (t->timed_out) {
		t->deadline = 0;
		return (-1);
	}
	t->timed_out = 1;
	t->deadline = now + TERM_KILL_GRACE;
	return ((int)(TERM_KILL_GRACE * 1000));
}

/*
 * Print the output event m (its raw payload, or its data), the part of
 * it not shown yet.
 */
static void
term_output(struct term *t, json_t *m)
{
	struct evbuffer	*b;
	json_t		*off = json_object_get(m, "offset");
	json_t		*raw = json_object_get(m, "bytes");
	uint64_t	 at, skip = 0;
	size_t		 n;

	at = json_is_integer(off) ? (uint64_t)json_integer_value(off) :
	    t->offset;
	if (at < t->offset)
		skip = t->offset - at;
	if (json_is_integer(raw))
		n = client_conn_payload_skip(t->c, m, skip, STDOUT_FILENO);
	else {
		b = evbuffer_new();
		n = client_msg_bytes(m, "data", b);
		if (n > skip)
			client_write_all(STDOUT_FILENO, evbuffer_pullup(b, -1) +
			    skip, n - skip);
		evbuffer_free(b);
	}
	if (at + n > t->offset)
		t->offset = at + n;
}

/*
 * One message of the session (freed): output is printed; when the
 * program exits, the session is released and its status returned, else
 * -1 to go on.
 */
static int
term_message(struct term *t, json_t *m)
{
	const char	*ev = json_string_value(json_object_get(m, "event"));
	int		 status = -1;

	if (ev != NULL && strcmp(ev, "output") == 0)
		term_output(t, m);
	else if (ev != NULL && strcmp(ev, "exit") == 0) {
		client_tty_restore();
		status = t->timed_out ? 124 : client_exec_status(m);
		/* The program is gone: release the session. */
		json_decref(client_conn_call(t->c, json_pack("{s:s, s:s}",
		    "op", "session.close", "session", t->session), 1));
	} else if (ev == NULL && json_is_false(json_object_get(m, "ok")))
		client_die_reply(255, m);
	json_decref(m);
	return (status);
}

/*
 * Send req (freed) on a connection that may go away: the final reply,
 * or NULL if the server closed first. Other messages are dropped.
 */
static json_t *
term_call(struct term *t, json_t *req)
{
	json_t	*m, *mid;
	int	 id = client_conn_send(t->c, req);

	json_decref(req);
	for (;;) {
		while (client_conn_has_line(t->c)) {
			m = client_conn_take(t->c);
			mid = json_object_get(m, "id");
			if (json_integer_value(mid) == id &&
			    client_msg_final(m))
				return (m);
			client_conn_payload(t->c, m, -1, NULL);
			json_decref(m);
		}
		if (client_conn_eof(t->c))
			return (NULL);
		client_conn_poll(t->c, -1);
	}
}

/*
 * Is the session's worker connected to the controller? Then a session
 * the controller does not know is gone; else the worker may still bring
 * it back (a controller that restarted learns its sessions from them).
 */
static int
term_worker_back(struct term *t)
{
	json_t	*r, *w;
	size_t	 i;
	int	 back = 0;

	if (t->worker == NULL)
		return (1);
	if ((r = term_call(t, json_pack("{s:s}", "op", "workers"))) == NULL)
		return (0);
	json_array_foreach(json_object_get(r, "workers"), i, w) {
		if (strcmp(json_string_value(json_object_get(w, "id")) ?: "",
		    t->worker) == 0 && json_is_true(json_object_get(w,
		    "connected")))
			back = 1;
	}
	json_decref(r);
	return (back);
}

/*
 * Attach t->c to the session from where the output shown ends. A
 * no_such_session says the session is gone only if it comes once the
 * worker is back: the worker may come back (and bring its sessions)
 * between the attach and the question, so then ask once more.
 */
static int
term_attach(struct term *t)
{
	json_t	*r;
	int	 try;

	if (t->worker != NULL)
		client_conn_watch(t->c, t->worker, 0);
	for (try = 0; try < 2; try++) {
		r = term_call(t, json_pack("{s:s, s:s, s:I, s:b, s:b}", "op",
		    "session.attach", "session", t->session, "since",
		    (json_int_t)t->offset, "readonly", t->o->readonly, "raw",
		    1));
		if (r == NULL)
			return (TERM_RETRY);
		if (json_is_true(json_object_get(r, "ok"))) {
			json_decref(r);
			return (TERM_ATTACHED);
		}
		if (strcmp(client_reply_code(r), "no_such_session") != 0) {
			client_tty_restore();
			client_die_reply(255, r);
		}
		json_decref(r);
		if (!term_worker_back(t))
			return (TERM_RETRY);
	}
	return (TERM_GONE);
}

/*
 * Wait secs for the controller to come back, taking keys: `~.` gives
 * up (status 0, as a detach), and so does a signal (128 + it); other
 * keys are kept for the session. Returns -1 to go on.
 */
static int
term_pause(struct term *t, double secs)
{
	struct pollfd	 pfd;
	char		 out[2 * TERM_KEYS_IN];
	double		 end = term_clock() + secs, left;
	size_t		 n;
	int		 detach = 0, sig;

	for (;;) {
		if ((sig = client_got_signal) != 0) {
			term_hint(t, "gave up waiting for the controller");
			return (128 + sig);
		}
		if ((left = end - term_clock()) <= 0)
			return (-1);
		pfd.fd = t->in_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, t->in_fd != -1 ? 1 : 0, (int)(left * 1000) + 1)
		    <= 0 || pfd.revents == 0)
			continue;
		n = term_read_keys(t, out, &detach);
		if (evbuffer_get_length(t->keys) + n <= TERM_KEYS_MAX)
			evbuffer_add(t->keys, out, n);
		if (detach) {
			term_hint(t, "detached");
			return (0);
		}
	}
}

/*
 * The controller went away (--reconnect): connect again with a growing
 * pause and attach where the output shown ends. Returns -1 once
 * attached, else the status to exit with.
 */
static int
term_reconnect(struct term *t)
{
	double	 delay = TERM_RETRY_MIN;
	char	*cause;
	int	 status;

	client_conn_close(t->c);
	t->c = NULL;
	client_warnx("lost the controller; attaching to session %s again "
	    "when it is back (~. gives up)", t->session);
	for (;;) {
		if ((status = term_pause(t, delay)) != -1)
			return (status);
		delay = delay * 2 < TERM_RETRY_MAX ? delay * 2 :
		    TERM_RETRY_MAX;
		if ((t->c = client_conn_try_open(&cause)) == NULL) {
			free(cause);
			continue;
		}
		switch (term_attach(t)) {
		case TERM_ATTACHED:
			client_warnx("attached to session %s again",
			    t->session);
			term_resize(t);
			term_send(t, (const char *)evbuffer_pullup(t->keys, -1),
			    evbuffer_get_length(t->keys));
			evbuffer_drain(t->keys, evbuffer_get_length(t->keys));
			return (-1);
		case TERM_GONE:
			client_tty_restore();
			client_warnx("session %s is gone", t->session);
			return (255);
		}
		client_conn_close(t->c);
		t->c = NULL;
	}
}

/*
 * The controller closed the connection: with --reconnect attach again
 * (-1 once done), else say how to come back and return 255.
 */
static int
term_lost(struct term *t)
{
	if (t->o->reconnect)
		return (term_reconnect(t));
	term_hint(t, "lost the controller");
	return (255);
}

/*
 * The terminal loop of shell, attach and exec --pty: keys go to the
 * session, output comes back, `~.` after a newline detaches. Returns
 * the exit status.
 */
static int
term_loop(struct term *t)
{
	char	out[2 * TERM_KEYS_IN];
	size_t	o;
	int	status, detach = 0, ms;

	t->esc.on = isatty(STDIN_FILENO);
	t->esc.at_bol = 1;
	tty_raw();
	client_signals_catch(1);
	term_resize(t);
	for (;;) {
		if ((status = term_signals(t)) != -1)
			return (status);
		if (client_conn_has_line(t->c)) {
			status = term_message(t, client_conn_take(t->c));
			if (status != -1)
				return (status);
			continue;
		}
		if (client_conn_eof(t->c)) {
			if ((status = term_lost(t)) != -1)
				return (status);
			continue;
		}
		ms = term_deadline(t);
		if (!client_conn_poll_ms(t->c, t->in_fd, ms))
			continue;
		o = term_read_keys(t, out, &detach);
		/* Keys before a ~. still go. */
		term_send(t, out, o);
		if (detach)
			return (term_detach(t, 0));
	}
}

/*
 * Run the terminal on session (of worker, if known) over c, from
 * offset on. Returns the exit status.
 */
static int
term_run(struct conn *c, const char *session, const char *worker,
    uint64_t offset, const struct client_term_opts *o)
{
	struct term	t;
	int		status;

	memset(&t, 0, sizeof t);
	t.c = c;
	t.o = o;
	t.session = xstrdup(session);
	t.worker = worker != NULL ? xstrdup(worker) : NULL;
	t.offset = offset;
	t.in_fd = STDIN_FILENO;
	t.keys = evbuffer_new();
	if (o->timeout > 0)
		t.deadline = term_clock() + o->timeout;
	status = term_loop(&t);
	evbuffer_free(t.keys);
	free(t.worker);
	free(t.session);
	return (status);
}

/*
 * Open a session with session.open request req (freed), attached, with
 * the local terminal's size and TERM, and run the terminal on it.
 * Returns the exit status.
 */
int
client_term_open(struct conn *c, json_t *req, const struct client_term_opts *o)
{
	struct winsize	 ws;
	json_t		*r, *env;
	const char	*term = getenv("TERM");
	char		*session, *worker;
	int		 status;

	json_object_set_new(req, "attach", json_true());
	json_object_set_new(req, "raw", json_true());
	if (tty_size(&ws) == 0) {
		json_object_set_new(req, "rows", json_integer(ws.ws_row));
		json_object_set_new(req, "cols", json_integer(ws.ws_col));
	}
	if (term != NULL && *term != '\0') {
		if ((env = json_object_get(req, "env")) == NULL) {
			env = json_object();
			json_object_set_new(req, "env", env);
		}
		if (json_object_get(env, "TERM") == NULL)
			json_object_set_new(env, "TERM", json_string(term));
	}
	worker = xstrdup(json_string_value(json_object_get(req, "worker")));
	client_conn_watch(c, worker, o->no_wait);
	r = client_conn_call(c, req, 1);
	if (!json_is_true(json_object_get(r, "ok"))) {
		free(worker);
		client_exec_error(r);
	}
	if (!json_is_string(json_object_get(r, "session"))) {
		free(worker);
		json_decref(r);
		client_die(255, "bad reply from the server: no session");
	}
	session = xstrdup(json_string_value(json_object_get(r, "session")));
	json_decref(r);
	status = term_run(c, session, worker, 0, o);
	free(session);
	free(worker);
	return (status);
}

/*
 * The worker of session, from the session list; NULL if it is not
 * listed. Caller frees.
 */
static char *
session_worker(struct conn *c, const char *session)
{
	json_t		*r, *s;
	const char	*w = NULL;
	char		*worker;
	size_t		 i;

	r = client_conn_call(c, json_pack("{s:s}", "op", "session.list"), 1);
	json_array_foreach(json_object_get(r, "sessions"), i, s) {
		if (strcmp(json_string_value(json_object_get(s, "session")) ?:
		    "", session) == 0)
			w = json_string_value(json_object_get(s, "worker"));
	}
	worker = w != NULL ? xstrdup(w) : NULL;
	json_decref(r);
	return (worker);
}

/* `sandd shell`: a new session on a worker, attached to the terminal. */
int
client_shell(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no-wait", no_argument, NULL, 'N' },
		{ "reconnect", no_argument, NULL, 'R' },
		{ "workspace", required_argument, NULL, 'W' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct client_term_opts	 o;
	json_t			*req, *cmd;
	int			 ch, i;

	memset(&o, 0, sizeof o);
	while ((ch = getopt_long(argc, argv, "+S:W:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'N':
			o.no_wait = 1;
			break;
		case 'R':
			o.reconnect = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || strcmp(argv[0], "--") == 0)
		client_usage_error();
	req = json_pack("{s:s, s:s}", "op", "session.open", "worker", argv[0]);
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
	return (client_term_open(client_conn_open(), req, &o));
}

/* `sandd attach`: attach the terminal to a running session. */
int
client_attach(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "readonly", no_argument, NULL, 'r' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "reconnect", no_argument, NULL, 'R' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct client_term_opts	 o;
	struct conn		*c;
	json_t			*r;
	long long		 since = 0;
	char			*end, *worker;
	int			 ch, status;

	memset(&o, 0, sizeof o);
	while ((ch = getopt_long(argc, argv, "S:rh", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			errno = 0;
			since = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    since < 0)
				client_die(2, "bad --since '%s'", optarg);
			break;
		case 'r':
			o.readonly = 1;
			break;
		case 'N':
			o.no_wait = 1;
			break;
		case 'R':
			o.reconnect = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (optind != argc - 1)
		client_usage_error();
	c = client_conn_open();
	/* An unknown session: session.attach says so. */
	if ((worker = session_worker(c, argv[optind])) != NULL)
		client_conn_watch(c, worker, o.no_wait);
	r = client_conn_call(c, json_pack("{s:s, s:s, s:I, s:b, s:b}", "op",
	    "session.attach", "session", argv[optind], "since",
	    (json_int_t)since, "readonly", o.readonly, "raw", 1), 1);
	if (!json_is_true(json_object_get(r, "ok"))) {
		free(worker);
		client_die_reply(255, r);
	}
	json_decref(r);
	status = term_run(c, argv[optind], worker, (uint64_t)since, &o);
	free(worker);
	return (status);
}

/*
 * client-shell.c: `sandd shell` and `sandd attach`, the local terminal
 * tied to a session on a worker: raw mode, window sizes, keys out and
 * output back, and ssh-like `~` escapes (`~.` detaches).
 */
#include <sys/types.h>
#include <sys/ioctl.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "sandd.h"
#include "client.h"

static struct termios	 saved_tio;
static int		 tio_saved;
static int		 term_readonly;	/* attach -r: no keys, no sizes */

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

/* Send the local window size to the session. */
static void
tty_resize(struct conn *c, const char *session)
{
	struct winsize	 ws;

	if (term_readonly || tty_size(&ws) != 0)
		return;
	client_conn_send_quiet(c, json_pack("{s:s, s:s, s:i, s:i}", "op",
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
	client_conn_send_quiet(c, json_pack("{s:s, s:s, s:s}", "op",
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

	r = client_conn_call(c, json_pack("{s:s, s:s}", "op", "session.detach",
	    "session", session), 1);
	json_decref(r);
	client_tty_restore();
	fprintf(stderr, "\r\n[detached from session %s]\r\n", session);
	return (status);
}

/*
 * Pass a new window size on; INT, TERM or HUP detach, except a ^C that
 * reached us because the terminal is not raw: that goes to the program.
 * Returns the status to exit with, or -1 to go on.
 */
static int
terminal_signals(struct conn *c, const char *session)
{
	int	sig;

	if (client_got_winch) {
		client_got_winch = 0;
		tty_resize(c, session);
	}
	if ((sig = client_got_signal) == 0)
		return (-1);
	client_got_signal = 0;
	if (sig != SIGINT || tio_saved || term_readonly)
		return (terminal_detach(c, session, 128 + sig));
	client_conn_send_quiet(c, json_pack("{s:s, s:s, s:s}", "op", "signal",
	    "session", session, "signal", "INT"));
	return (-1);
}

/*
 * One message of the session (freed): output is printed; when the
 * program exits, the session is released and its status returned, else
 * -1 to go on.
 */
static int
terminal_message(struct conn *c, const char *session, json_t *m)
{
	const char	*ev = json_string_value(json_object_get(m, "event"));
	int		 status = -1;

	if (ev != NULL && strcmp(ev, "output") == 0)
		client_msg_write(m, "data", STDOUT_FILENO);
	else if (ev != NULL && strcmp(ev, "exit") == 0) {
		client_tty_restore();
		status = client_exec_status(m);
		/* The program is gone: release the session. */
		json_decref(client_conn_call(c, json_pack("{s:s, s:s}", "op",
		    "session.close", "session", session), 1));
	} else if (ev == NULL && json_is_false(json_object_get(m, "ok")))
		client_die_reply(255, m);
	json_decref(m);
	return (status);
}

/*
 * The terminal loop of shell and attach: keys go to the session, output
 * comes back, `~.` after a newline detaches. Returns the exit status.
 */
static int
terminal_loop(struct conn *c, const char *session)
{
	struct escape	 esc;
	char		 in[4096], out[2 * 4096];
	ssize_t		 n;
	size_t		 o;
	int		 in_fd = STDIN_FILENO, status, detach = 0;

	memset(&esc, 0, sizeof esc);
	esc.on = isatty(STDIN_FILENO);
	esc.at_bol = 1;
	tty_raw();
	client_signals_catch(1);
	tty_resize(c, session);
	for (;;) {
		if ((status = terminal_signals(c, session)) != -1)
			return (status);
		if (client_conn_has_line(c)) {
			status = terminal_message(c, session,
			    client_conn_take(c));
			if (status != -1)
				return (status);
			continue;
		}
		if (!client_conn_poll(c, in_fd))
			continue;
		n = read(in_fd, in, sizeof in);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			in_fd = -1;	/* watch on until it exits */
			continue;
		}
		o = escape_keys(&esc, in, (size_t)n, out, &detach);
		/* Keys before a ~. still go. */
		session_send(c, session, out, o);
		if (detach)
			return (terminal_detach(c, session, 0));
	}
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
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct conn	*c;
	struct winsize	 ws;
	json_t		*req, *r, *cmd;
	const char	*term = getenv("TERM");
	char		*session;
	int		 ch, i, status, no_wait = 0;

	while ((ch = getopt_long(argc, argv, "+S:h", longopts, NULL)) != -1) {
		if (ch == 'N')
			no_wait = 1;
		else
			client_option(ch, argv);
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || strcmp(argv[0], "--") == 0)
		client_usage_error();
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
	if (tty_size(&ws) == 0) {
		json_object_set_new(req, "rows", json_integer(ws.ws_row));
		json_object_set_new(req, "cols", json_integer(ws.ws_col));
	}
	if (term != NULL && *term != '\0')
		json_object_set_new(req, "env", json_pack("{s:s}", "TERM",
		    term));
	c = client_conn_open();
	client_conn_watch(c, json_string_value(json_object_get(req, "worker")),
	    no_wait);
	r = client_conn_call(c, req, 1);
	if (!json_is_true(json_object_get(r, "ok")))
		client_exec_error(r);
	if (!json_is_string(json_object_get(r, "session"))) {
		json_decref(r);
		client_die(255, "bad reply from the server: no session");
	}
	session = xstrdup(json_string_value(json_object_get(r, "session")));
	json_decref(r);
	status = terminal_loop(c, session);
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
		{ "no-wait", no_argument, NULL, 'N' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct conn	*c;
	json_t		*r;
	long long	 since = 0;
	char		*end, *worker;
	int		 ch, readonly = 0, no_wait = 0;

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
			readonly = term_readonly = 1;
			break;
		case 'N':
			no_wait = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (optind != argc - 1)
		client_usage_error();
	c = client_conn_open();
	/* An unknown session: session.attach says so. */
	if ((worker = session_worker(c, argv[optind])) != NULL) {
		client_conn_watch(c, worker, no_wait);
		free(worker);
	}
	r = client_conn_call(c, json_pack("{s:s, s:s, s:I, s:b}", "op",
	    "session.attach", "session", argv[optind], "since",
	    (json_int_t)since, "readonly", readonly), 0);
	json_decref(r);
	return (terminal_loop(c, argv[optind]));
}

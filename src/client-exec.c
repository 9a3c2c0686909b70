/*
 * client-exec.c: `sandd exec`, on one worker with stdin, stdout, stderr
 * and signals streamed, or on every worker with the labels, each result
 * printed as it comes with its lines prefixed by the worker; with --pty,
 * on a terminal through client-shell.c.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "client.h"

/* Exit status for a finished command, as ssh and timeout(1) do. */
int
client_exec_status(json_t *r)
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

/* Exit with the status and message of error reply r (freed). */
__dead void
client_exec_error(json_t *r)
{
	client_die_reply(strcmp(client_reply_code(r), "exec_failed") == 0 ?
	    127 : 255, r);
}

/* Is fd the null device (nothing to forward)? */
static int
is_devnull(int fd)
{
	struct stat	sb, nb;

	return (fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode) &&
	    stat("/dev/null", &nb) == 0 && sb.st_rdev == nb.st_rdev);
}

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
		fprintf(stderr, "[%s] error: %s\n", w, client_reply_message(v));
		return (255);
	}
	b = evbuffer_new();
	len = client_msg_bytes(v, "stdout", b);
	print_prefixed(stdout, w, (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_drain(b, len);
	len = client_msg_bytes(v, "stderr", b);
	print_prefixed(stderr, w, (const char *)evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
	if (json_is_true(json_object_get(v, "stdout_truncated")) ||
	    json_is_true(json_object_get(v, "stderr_truncated")))
		fprintf(stderr, "[%s] (output truncated)\n", w);
	status = client_exec_status(v);
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
exec_broadcast(struct conn *c, json_t *req)
{
	json_t		*m;
	const char	*ev;
	int		 id, status = 0, n = 0;

	id = client_conn_send(c, req);
	json_decref(req);
	for (;;) {
		if ((m = client_conn_recv_id(c, id)) == NULL)
			client_die(255, "the server closed the connection");
		ev = json_string_value(json_object_get(m, "event"));
		if (ev != NULL && strcmp(ev, "result") == 0) {
			n++;
			if (print_result(m) != 0)
				status = 1;
		} else if (client_msg_final(m))
			break;
		json_decref(m);
	}
	if (!json_is_true(json_object_get(m, "ok")))
		client_exec_error(m);
	json_decref(m);
	if (n == 0)
		client_die(1, "no connected worker matches the labels");
	return (status);
}

/* A streamed command while it runs (client_exec_run). */
struct exec_run {
	struct conn		*c;
	struct client_exec_io	*io;
	int			 id;
	char			*handle;	/* from its started event */
	int			 nsig;		/* signals seen */
	int			 last_sig;
};

/* Send a chunk of input (or, len 0, its end) to the running command. */
static void
exec_run_write(struct exec_run *r, const char *p, size_t len)
{
	json_t	*req;
	char	*b64;

	if (len > 0) {
		b64 = util_base64(p, len);
		req = json_pack("{s:s, s:s, s:s}", "op", "write", "handle",
		    r->handle, "data_b64", b64);
		free(b64);
	} else
		req = json_pack("{s:s, s:s, s:b}", "op", "write", "handle",
		    r->handle, "eof", 1);
	client_conn_send_quiet(r->c, req);
}

/*
 * Forward a signal caught by client_signals_catch to the command, once
 * its handle is known. A third one gives up on the server.
 */
static void
exec_run_signal(struct exec_run *r)
{
	int	sig = client_got_signal;

	if (sig != 0 && sig != r->last_sig) {
		if (++r->nsig >= 3)
			client_die(128 + sig, "interrupted");
		r->last_sig = sig;
	}
	if (sig != 0 && r->handle != NULL) {
		client_conn_send_quiet(r->c, json_pack("{s:s, s:s, s:s}", "op",
		    "signal", "handle", r->handle, "signal",
		    util_signal_name(sig)));
		client_got_signal = r->last_sig = 0;
	}
}

/* Pass a stdout event on to out_fd (see CLIENT_EXEC_SOFT). */
static void
exec_run_stdout(struct exec_run *r, json_t *m)
{
	struct client_exec_io	*io = r->io;
	struct evbuffer		*b;
	size_t			 n;

	if ((io->flags & CLIENT_EXEC_SOFT) == 0) {
		client_msg_write(m, "data", io->out_fd);
		return;
	}
	b = evbuffer_new();
	n = client_msg_bytes(m, "data", b);
	if ((io->flags & CLIENT_EXEC_BROKEN) == 0 && n > 0 &&
	    client_write(io->out_fd, evbuffer_pullup(b, -1), n) != 0)
		io->flags |= CLIENT_EXEC_BROKEN;
	evbuffer_free(b);
}

/*
 * One message (freed unless returned): the handle, output, or the final
 * reply, which is returned. Others (replies to our writes and signals)
 * are dropped; NULL to go on.
 */
static json_t *
exec_run_message(struct exec_run *r, json_t *m)
{
	const char	*ev = json_string_value(json_object_get(m, "event"));

	if (json_integer_value(json_object_get(m, "id")) != r->id)
		ev = NULL;
	else if (client_msg_final(m))
		return (m);
	if (ev != NULL && strcmp(ev, "started") == 0) {
		free(r->handle);
		r->handle = xstrdup(json_string_value(json_object_get(m,
		    "handle")) ?: "");
	} else if (ev != NULL && strcmp(ev, "stdout") == 0)
		exec_run_stdout(r, m);
	else if (ev != NULL && strcmp(ev, "stderr") == 0)
		client_msg_write(m, "data", r->io->err_fd);
	json_decref(m);
	return (NULL);
}

/*
 * Send exec request req (freed) with "stream" and run the command to
 * its end: io->in_fd (until its end) goes to its stdin once it has
 * started, its output to io->out_fd and io->err_fd. Returns the final
 * reply, ok or not; the caller frees it.
 */
json_t *
client_exec_run(struct conn *c, json_t *req, struct client_exec_io *io)
{
	struct exec_run	 r;
	json_t		*m = NULL;
	char		*buf;
	ssize_t		 n;
	int		 in_fd = io->in_fd;

	memset(&r, 0, sizeof r);
	r.c = c;
	r.io = io;
	json_object_set_new(req, "stream", json_true());
	if (in_fd != -1)
		json_object_set_new(req, "stdin_open", json_true());
	r.id = client_conn_send(c, req);
	json_decref(req);
	buf = xmalloc(CLIENT_WRITE);
	while (m == NULL) {
		exec_run_signal(&r);
		if (client_conn_has_line(c)) {
			m = exec_run_message(&r, client_conn_take(c));
			continue;
		}
		if (!client_conn_poll(c, r.handle != NULL ? in_fd : -1))
			continue;
		n = read(in_fd, buf, CLIENT_WRITE);
		if (n == -1 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			in_fd = -1;
		exec_run_write(&r, buf, n > 0 ? (size_t)n : 0);
	}
	free(buf);
	free(r.handle);
	return (m);
}

/* What exec's options ask for. */
struct exec_opts {
	json_t		*env;
	json_t		*labels;
	const char	*cwd;
	double		 timeout;
	int		 no_wait;	/* not for a disconnected worker */
	int		 pty;		/* in a session on a terminal */
	int		 dashdash;	/* "--" ended the options */
};

/* Parse exec's options into o; returns the index of the first operand. */
static int
exec_options(int argc, char **argv, struct exec_opts *o)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'C' },
		{ "label", required_argument, NULL, 'l' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "pty", no_argument, NULL, 'P' },
		{ "workspace", required_argument, NULL, 'W' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	while ((ch = getopt_long(argc, argv, "+S:t:e:C:l:PW:h", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 't':
			o->timeout = client_option_secs(optarg);
			break;
		case 'e':
			client_option_kv(o->env, ch, optarg);
			break;
		case 'C':
			o->cwd = optarg;
			break;
		case 'l':
			client_option_kv(o->labels, ch, optarg);
			break;
		case 'N':
			o->no_wait = 1;
			break;
		case 'P':
			o->pty = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	/* With labels and no worker, "--" came right after the options. */
	o->dashdash = optind > 0 && strcmp(argv[optind - 1], "--") == 0;
	return (optind);
}

/* The exec request for operands "worker [--] command ..." and o. */
static json_t *
exec_request(int argc, char **argv, struct exec_opts *o)
{
	json_t	*req, *cmd;
	int	 i;

	req = json_pack("{s:s}", "op", "exec");
	if (json_object_size(o->labels) > 0 && (argc == 0 || o->dashdash ||
	    strcmp(argv[0], "--") == 0))
		json_object_set(req, "labels", o->labels);
	else {
		if (argc == 0)
			client_usage_error();
		if (json_object_size(o->labels) > 0)
			client_die(2, "-l and a worker do not go together");
		json_object_set_new(req, "worker", json_string(argv[0]));
		argc--;
		argv++;
	}
	if (argc > 0 && strcmp(argv[0], "--") == 0) {
		argc--;
		argv++;
	}
	if (argc == 0)
		client_usage_error();
	if (argc == 1 && needs_shell(argv[0]))
		json_object_set_new(req, "cmd", json_string(argv[0]));
	else {
		cmd = json_array();
		for (i = 0; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(req, "argv", cmd);
	}
	if (o->cwd != NULL)
		json_object_set_new(req, "cwd", json_string(o->cwd));
	if (json_object_size(o->env) > 0)
		json_object_set(req, "env", o->env);
	if (o->timeout > 0)
		json_object_set_new(req, "timeout", json_real(o->timeout));
	return (req);
}

/*
 * exec --pty: the command in a session on a terminal, as `sandd shell`
 * runs one, with the exec request req (freed) made a session.open.
 */
static int
exec_pty(struct conn *c, json_t *req, struct exec_opts *o)
{
	struct client_term_opts	t;

	memset(&t, 0, sizeof t);
	t.no_wait = o->no_wait;
	t.timeout = o->timeout;
	json_object_set_new(req, "op", json_string("session.open"));
	json_object_del(req, "timeout");
	return (client_term_open(c, req, &t));
}

/* `sandd exec`: a command on one worker or on all with the labels. */
int
client_exec(int argc, char **argv)
{
	struct exec_opts	 o;
	struct client_exec_io	 io;
	struct conn		*c;
	json_t			*req, *m;
	int			 n, status;

	memset(&o, 0, sizeof o);
	o.env = json_object();
	o.labels = json_object();
	n = exec_options(argc, argv, &o);
	req = exec_request(argc - n, argv + n, &o);
	json_decref(o.env);
	json_decref(o.labels);
	if (o.pty && json_object_get(req, "labels") != NULL) {
		json_decref(req);
		client_die(2, "--pty runs on one worker, not on labels");
	}
	c = client_conn_open();
	if (json_object_get(req, "labels") != NULL)
		return (exec_broadcast(c, req));
	if (o.pty)
		return (exec_pty(c, req, &o));
	client_conn_watch(c, json_string_value(json_object_get(req, "worker")),
	    o.no_wait);

	/* A terminal or /dev/null: nothing to forward, stdin ends at once. */
	io.in_fd = STDIN_FILENO;
	if (isatty(STDIN_FILENO) || is_devnull(STDIN_FILENO))
		io.in_fd = -1;
	io.out_fd = STDOUT_FILENO;
	io.err_fd = STDERR_FILENO;
	io.flags = 0;
	client_signals_catch(0);
	m = client_exec_run(c, req, &io);
	if (!json_is_true(json_object_get(m, "ok")))
		client_exec_error(m);
	status = client_exec_status(m);
	json_decref(m);
	return (status);
}

/*
 * control-session.c: PTY sessions on the controller side: the session
 * channel kind, the life of a session (opened, started, exited, gone,
 * adopted by a controller that restarted) and the ops session.open,
 * write, resize, signal, close and list.
 *
 * A session is a channel of kind CHAN_SESSION; its id is the channel's
 * handle. The worker owns the program and a ring of its recent output;
 * the controller holds only what it received and not every consumer has
 * taken yet (at most the worker's window), and acks as the slowest one
 * advances, at once when nobody is attached. The consumers are the
 * attached connections (control-attach.c); session.run is the worker's
 * (control-run.c forwards it).
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"
#include "control-session.h"

static TAILQ_HEAD(, session) sessions = TAILQ_HEAD_INITIALIZER(sessions);

/* ---- sessions ---- */

/* Walk the sessions: NULL gives the first. */
struct session *
session_next(struct session *s)
{
	return (s == NULL ? TAILQ_FIRST(&sessions) : TAILQ_NEXT(s, entry));
}

struct session *
session_find(const char *id)
{
	struct session	*s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (strcmp(s->id, id) == 0)
			return (s);
	return (NULL);
}

/* The state of a new session channel. */
static struct session *
session_create(struct chan *c)
{
	struct session	*s;

	s = xcalloc(1, sizeof *s);
	s->c = c;
	snprintf(s->id, sizeof s->id, "%s", c->handle);
	snprintf(s->worker, sizeof s->worker, "%s",
	    server_worker_id(c->worker));
	s->exit_code = json_null();
	s->signal = json_null();
	s->pid = -1;
	s->rows = 24;
	s->cols = 80;
	TAILQ_INIT(&s->conns);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	c->data = s;
	return (s);
}

/*
 * The started session named in r's "session" field, if r's client may
 * see it; NULL after replying no_such_session (another uid's session is
 * not there, for it) or denied (a worker its rule no longer covers).
 */
struct session *
session_get(struct req *r)
{
	const char	*id = req_string(r, "session");
	struct session	*s;

	if ((s = session_find(id)) == NULL || !s->started ||
	    !control_acl_owns(r->client, s->c->owner)) {
		req_error(r, "no_such_session", "no session '%s'", id);
		return (NULL);
	}
	if (!control_acl_covers_id(r->client, s->worker)) {
		server_stats.denied++;
		req_error(r, "denied", "the access rules do not cover worker "
		    "'%s' of session %s", s->worker, s->id);
		return (NULL);
	}
	return (s);
}

/* Bytes held for the session's consumers: [base, recv). */
uint64_t
session_recv(struct session *s)
{
	return (s->c->recv[WIRE_OUT]);
}

uint64_t
session_base(struct session *s)
{
	return (s->c->recv[WIRE_OUT] -
	    evbuffer_get_length(s->c->out[WIRE_OUT]));
}

/* Copy held bytes at [off, off+n) (all inside what is held) to dst. */
void
session_copy_held(struct session *s, uint64_t off, uint8_t *dst, size_t n)
{
	struct evbuffer_ptr	ptr;

	if (n == 0)
		return;
	evbuffer_ptr_set(s->c->out[WIRE_OUT], &ptr,
	    (size_t)(off - session_base(s)), EVBUFFER_PTR_SET);
	evbuffer_copyout_from(s->c->out[WIRE_OUT], &ptr, dst, n);
}

/* Drop held bytes every consumer has taken and ack them. */
void
session_consume(struct session *s)
{
	uint64_t	base = session_base(s), min = session_recv(s);

	attach_min(s, &min);
	if (min > base)
		chan_consume(s->c, WIRE_OUT, (size_t)(min - base));
	chan_ack(s->c, 0);
}

/* May cl see session s (its own, on a worker its rule covers)? */
static int
session_visible(struct client *cl, void *arg)
{
	struct session	*s = arg;

	return (control_acl_visible(cl, s->worker, s->c->owner));
}

/* Tell subscribers about the session. */
static void
session_announce(struct session *s, const char *state)
{
	json_t	*ev;

	ev = json_pack("{s:s, s:s, s:s, s:s}", "event", "session", "session",
	    s->id, "worker", s->worker, "state", state);
	control_broadcast_event(TOPIC_SESSIONS, ev, session_visible, s);
	json_decref(ev);
}

/* Keep exit_code and signal of info (an end, a close reply, a hello). */
static void
session_set_status(struct session *s, json_t *info)
{
	json_t	*v;

	if ((v = json_object_get(info, "exit_code")) != NULL) {
		json_decref(s->exit_code);
		s->exit_code = json_incref(v);
	}
	if ((v = json_object_get(info, "signal")) != NULL) {
		json_decref(s->signal);
		s->signal = json_incref(v);
	}
	if (json_is_string(v = json_object_get(info, "reason"))) {
		json_decref(s->reason);
		s->reason = json_incref(v);
	}
}

/* The program exited (per the end message, or a close or run reply). */
void
session_exited(struct session *s, json_t *info)
{
	if (s->exited)
		return;
	s->exited = 1;
	if (info != NULL)
		session_set_status(s, info);
	if (!s->announced) {
		s->announced = 1;
		session_announce(s, "exited");
	}
}

/* Output or the end arrived: runs, events, acks. */
static void
session_pump(struct session *s)
{
	record_feed(s);
	if ((s->c->flags & CHAN_ENDED) && !s->exited)
		session_exited(s, s->c->end);
	attach_deliver_all(s);
	session_consume(s);
}

/* Answer the open (err: with that error, stolen), if it still waits. */
static void
session_answer_open(struct session *s, json_t *err)
{
	struct req	*r = s->open_req;

	if (r == NULL) {
		json_decref(err);
		return;
	}
	s->open_req = NULL;
	if (req_dead(r))
		json_decref(err);
	else if (err != NULL)
		req_error_json(r, err);
	else {
		if (s->attach_on_open)
			attach_on_open(s, r->client, s->attach_raw);
		req_reply(r, json_pack("{s:s, s:I, s:s}", "session", s->id,
		    "pid", s->pid, "worker", s->worker));
	}
	req_unref(r);
}

/* Free the session's state; a pending open gets no_such_session. */
static void
session_free(struct session *s)
{
	session_answer_open(s, wire_error("no_such_session", 0, "session %s "
	    "went away before it started", s->id));
	attach_free_all(s);
	record_stop(s);
	TAILQ_REMOVE(&sessions, s, entry);
	json_decref(s->exit_code);
	json_decref(s->signal);
	json_decref(s->reason);
	free(s->cmd);
	s->c->data = NULL;
	free(s);
}

/* Take the describing fields of a started or adopted session. */
static void
session_set_info(struct session *s, json_t *m)
{
	json_t		*v;
	const char	*str;

	if (json_is_integer(v = json_object_get(m, "pid")))
		s->pid = json_integer_value(v);
	if ((str = json_string_value(json_object_get(m, "cmd"))) != NULL) {
		free(s->cmd);
		s->cmd = xstrdup(str);
	}
	if (json_is_integer(v = json_object_get(m, "rows")))
		s->rows = (int)json_integer_value(v);
	if (json_is_integer(v = json_object_get(m, "cols")))
		s->cols = (int)json_integer_value(v);
	if ((str = json_string_value(json_object_get(m, "created_at"))) !=
	    NULL)
		snprintf(s->created, sizeof s->created, "%s", str);
}

/* The worker started the program: answer the open, attach its client. */
static void
session_started(struct session *s, json_t *msg)
{
	s->started = 1;
	session_set_info(s, msg);
	/* It runs: never send the open again. */
	json_decref(s->c->open);
	s->c->open = NULL;
	record_start(s);
	session_answer_open(s, NULL);
	session_announce(s, "opened");
	session_pump(s);
}

/* The session is gone for good: tell who watches, answer who waits. */
static void
session_gone(struct session *s, json_t *error)
{
	attach_exit_all(s, error);
	if (!s->announced && s->started) {
		s->announced = 1;
		session_announce(s, "exited");
	}
}

/* ---- the channel kind ---- */

/* chan_ops.output: output or the end arrived. */
static void
session_output(struct chan *c)
{
	struct session	*s = c->data;
	json_t		*err;

	if (s == NULL)
		return;
	if ((c->flags & CHAN_ENDED) &&
	    (err = json_object_get(c->end, "error")) != NULL) {
		/* The program could not be started. */
		session_answer_open(s, json_incref(err));
		chan_release(c);
		return;
	}
	session_pump(s);
}

/* chan_ops.info: the program started, or the worker let it go. */
static void
session_info(struct chan *c, json_t *msg)
{
	struct session	*s = c->data;
	const char	*state;

	if (s == NULL ||
	    (state = json_string_value(json_object_get(msg, "state"))) == NULL)
		return;
	if (strcmp(state, "started") == 0 && !s->started)
		session_started(s, msg);
	else if (strcmp(state, "gone") == 0) {
		log_debug("session %s: released by worker %s after lingering",
		    s->id, s->worker);
		session_gone(s, NULL);
		chan_free(c);
	}
}

/* chan_ops.lost: the session's worker is gone past its resume window. */
static void
session_lost(struct chan *c, const char *code, const char *why)
{
	struct session	*s = c->data;
	json_t		*err;

	if (s == NULL)
		return;
	err = wire_error(code, 0, "%s", why);
	session_answer_open(s, json_incref(err));
	session_gone(s, err);
	json_decref(err);
}

/* chan_ops.freed */
static void
session_freed(struct chan *c)
{
	if (c->data != NULL)
		session_free(c->data);
}

/* chan_ops.adopt: a controller that restarted learns of a session. */
static int
session_adopt(struct chan *c, json_t *a)
{
	struct session	*s;

	/* Session ids are unique across the fleet. */
	if ((s = session_find(c->handle)) != NULL) {
		log_warnx("worker %s announced session %s, which lives on "
		    "worker %s: refused", server_worker_id(c->worker),
		    c->handle, s->worker);
		return (-1);
	}
	s = session_create(c);
	s->started = 1;
	session_set_info(s, a);
	if (json_is_true(json_object_get(a, "exited"))) {
		s->announced = 1;
		session_set_status(s, a);
	} else
		record_start(s);
	return (0);
}

const struct chan_ops chan_session_ops = {
	.name = "session",
	.kind = CHAN_SESSION,
	.counts = CHAN_COUNT_SESSION,
	.prefix = "s-",
	.in_window = WIRE_WINDOW,
	.out_window = WIRE_WINDOW,
	.gaps = 1,	/* its ring has what was skipped */
	.output = session_output,
	.info = session_info,
	.lost = session_lost,
	.freed = session_freed,
	.adopt = session_adopt,
	.client_gone = attach_client_gone,
	.client_drained = attach_client_drained,
};

/* ---- ops ---- */

void
control_session_open(struct req *r)
{
	json_t		*open, *v;
	const char	*term = req_string(r, "term");
	const char	**f;
	static const char *pass[] = { "cmd", "argv", "env", "cwd", "user",
	    "workspace", NULL };
	struct chan	*c;
	struct session	*s;

	if (control_cmd_command(r, 0) != 0)
		return;
	open = json_pack("{s:I, s:I, s:s}", "rows", req_int(r, "rows", 24),
	    "cols", req_int(r, "cols", 80), "term", term != NULL ? term :
	    "xterm-256color");
	for (f = pass; *f != NULL; f++)
		if ((v = req_field(r, *f)) != NULL)
			json_object_set(open, *f, v);
	json_object_set_new(open, "owner", req_owner(r));
	control_workspace_pass(r, open);
	c = server_worker_chan_open(r->worker, &chan_session_ops, open);
	json_decref(open);
	s = session_create(c);
	s->rows = (int)req_int(r, "rows", 24);
	s->cols = (int)req_int(r, "cols", 80);
	s->attach_on_open = req_bool(r, "attach", 1);
	s->attach_raw = req_bool(r, "raw", 0);
	s->open_req = req_ref(r);
	log_debug("session %s: opening on worker %s", s->id, s->worker);
}

void
control_session_write(struct req *r)
{
	struct session	*s;
	struct evbuffer	*in;
	char		*cause = NULL;
	int		 have;

	if ((s = session_get(r)) == NULL || attach_readonly(r, s))
		return;
	in = evbuffer_new();
	have = util_json_get_bytes(r->msg, "data", in, &cause);
	if (have <= 0) {
		evbuffer_free(in);
		if (have < 0)
			req_error(r, "bad_request", "%s", cause);
		else
			req_error(r, "bad_request", "field 'data' or "
			    "'data_b64' is required");
		free(cause);
		return;
	}
	chan_input_buffer(s->c, in, evbuffer_get_length(in));
	evbuffer_free(in);
	control_client_wait_sink(r->client, s->c);
	req_reply(r, json_object());
}

/* The worker resized the terminal. */
static void
session_resize_done(struct req *r, json_t *res)
{
	struct session	*s;

	if (json_is_true(json_object_get(res, "ok")) &&
	    (s = session_find(req_string(r, "session"))) != NULL) {
		s->rows = (int)json_integer_value(json_object_get(res, "rows"));
		s->cols = (int)json_integer_value(json_object_get(res, "cols"));
		record_resize(s);
	}
	req_rpc_forward(r, res);
}

void
control_session_resize(struct req *r)
{
	struct session	*s;

	if ((s = session_get(r)) == NULL || attach_readonly(r, s))
		return;
	req_rpc(r, s->c->worker, json_pack("{s:s, s:s, s:O, s:O}", "op",
	    "session.resize", "session", s->id, "rows", req_field(r, "rows"),
	    "cols", req_field(r, "cols")), session_resize_done);
}

/* The program exited after session.close: release the session. */
static void
session_close_done(struct req *r, json_t *res)
{
	struct session	*s;

	if (json_is_true(json_object_get(res, "ok")) &&
	    (s = session_find(req_string(r, "session"))) != NULL) {
		session_exited(s, res);
		attach_exit_all(s, NULL);
		log_debug("session %s: closed", s->id);
		chan_release(s->c);
	}
	req_rpc_forward(r, res);
}

/* A signal name given in field "signal", or NULL after replying. */
static const char *
session_signal_name(struct req *r)
{
	const char	*sig = req_string(r, "signal");

	if (sig != NULL && util_signal_number(sig) == -1) {
		req_error(r, "bad_request", "field 'signal' must name a signal "
		    "(INT, TERM, KILL, HUP, ...)");
		return (NULL);
	}
	return (sig != NULL ? util_signal_name(util_signal_number(sig)) : "");
}

void
control_session_close(struct req *r)
{
	struct session	*s;
	const char	*sig;
	json_t		*m;

	if ((sig = session_signal_name(r)) == NULL ||
	    (s = session_get(r)) == NULL)
		return;
	m = json_pack("{s:s, s:s}", "op", "session.close", "session", s->id);
	if (*sig != '\0')
		json_object_set_new(m, "signal", json_string(sig));
	req_rpc(r, s->c->worker, m, session_close_done);
}

/* The list entry of a session. */
static json_t *
session_json(struct session *s)
{
	return (json_pack("{s:s, s:s, s:I, s:s, s:i, s:i, s:s, s:I, s:i, "
	    "s:b, s:O, s:O}", "session", s->id, "worker", s->worker,
	    "pid", s->pid, "cmd", s->cmd != NULL ? s->cmd : "",
	    "rows", s->rows, "cols", s->cols, "created_at", s->created,
	    "offset", (json_int_t)session_recv(s), "attached",
	    attach_count(s), "exited", s->exited, "exit_code", s->exit_code,
	    "signal", s->signal));
}

void
control_session_list(struct req *r)
{
	struct session	*s;
	const char	*worker = req_string(r, "worker");
	json_t		*list;

	list = json_array();
	TAILQ_FOREACH(s, &sessions, entry) {
		if (!s->started)
			continue;
		if (worker != NULL && strcmp(worker, s->worker) != 0)
			continue;
		if (!session_visible(r->client, s))
			continue;
		json_array_append_new(list, session_json(s));
	}
	req_reply(r, json_pack("{s:o}", "sessions", list));
}

/* signal with "session": to the terminal's foreground process group. */
void
control_session_signal(struct req *r)
{
	struct session	*s;
	const char	*sig;

	if ((sig = session_signal_name(r)) == NULL ||
	    (s = session_get(r)) == NULL || attach_readonly(r, s))
		return;
	req_rpc(r, s->c->worker, json_pack("{s:s, s:s, s:s}", "op",
	    "session.signal", "session", s->id, "signal", sig),
	    req_rpc_forward);
}

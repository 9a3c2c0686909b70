/*
 * control-exec.c: the exec channel kind and its ops: exec (single and
 * broadcast, buffered, streamed, yielded) and the handle ops read, write
 * and signal.
 *
 * A buffered exec collects output up to max_output and replies once the
 * command has ended; a streamed one turns output into stdout/stderr
 * events while the client keeps up (the worker's window holds the
 * command back otherwise). With yield_after, the command is answered
 * with a handle when the time passes (or at once past max_output) and
 * lives on, detached: its output then waits for `read`.
 */
#include <sys/types.h>

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* Per-channel state of an exec. */
struct exec_chan {
	struct chan	*c;
	struct event	*yield;		/* yield_after */
	struct req	*read;		/* a `read` waiting for output */
	regex_t		 re;		/* its `until` */
	int		 has_re;
};

/* Per-request state of a broadcast. */
struct exec_bcast {
	json_t		*results;
	json_t		*pending;	/* worker ids not started yet */
	int		 running;
	int		 max_concurrency;
};

static void	 exec_broadcast_next(struct req *);
static void	 exec_try_read(struct chan *);

/* Fields of the exec request passed on to the worker as they are. */
static const char *exec_pass[] = {
	"cmd", "argv", "env", "env_clear", "cwd", "user", "timeout",
	"kill_grace", "stdin_open", "merge_stderr", "limits", "workspace", NULL
};

/* Check what the field specs cannot; 0, or -1 after replying. */
static int
exec_validate(struct req *r)
{
	struct evbuffer	*in;
	char		*cause = NULL;

	if (control_cmd_command(r, 1) != 0)
		return (-1);
	in = evbuffer_new();
	if (util_json_get_bytes(r->msg, "stdin", in, &cause) < 0) {
		evbuffer_free(in);
		req_error(r, "bad_request", "%s", cause);
		free(cause);
		return (-1);
	}
	evbuffer_free(in);
	if (req_bool(r, "stdin_open", 0) && !req_bool(r, "stream", 0) &&
	    req_field(r, "yield_after") == NULL) {
		req_error(r, "bad_request", "'stdin_open' needs 'stream' (or "
		    "'yield_after')");
		return (-1);
	}
	return (0);
}

/* Time to yield: answer with a handle and what was printed so far. */
static void
exec_yield_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct chan	*c = arg;
	struct req	*r = c->req;
	json_t		*reply, *o, *m;
	int		 s;

	if (r == NULL || (c->flags & CHAN_ENDED))
		return;
	reply = json_pack("{s:b, s:s, s:s}", "running", 1, "handle",
	    c->handle, "worker", server_worker_id(c->worker));
	c->flags &= ~(CHAN_BUFFERED | CHAN_STREAM | CHAN_HOLD);
	c->flags |= CHAN_HANDLE;
	/* What is past max_output stays for the first read. */
	for (s = WIRE_OUT; s <= WIRE_ERR; s++) {
		o = chan_take_output(c, s, c->max_output);
		json_object_update(reply, o);
		json_decref(o);
	}
	req_remove_chan(c);
	m = wire_chan_msg(WIRE_T_DETACH, c->ch);
	json_object_set_new(m, "handle", json_string(c->handle));
	server_worker_send(c->worker, m);
	json_decref(m);
	req_reply(r, reply);
}

/* Log who runs what on which worker; the command text is escaped. */
static void
exec_audit(struct req *r, struct worker *w, struct chan *c)
{
	json_t	*cmd = req_field(r, "cmd");
	char	*text, *esc;

	if (cmd == NULL)
		cmd = req_field(r, "argv");
	text = json_dumps(cmd, JSON_COMPACT | JSON_ENCODE_ANY);
	esc = log_escape(text != NULL ? text : "", text != NULL ?
	    strlen(text) : 0);
	log_audit("uid %ld exec on %s (%s): %s", control_client_uid(
	    r->client), server_worker_id(w), c->handle, esc);
	free(esc);
	free(text);
}

/* Open the command on worker w for request r. */
static void
exec_start(struct req *r, struct worker *w)
{
	json_t			*open, *v;
	struct chan		*c;
	struct exec_chan	*x;
	struct evbuffer		*in;
	char			*cause = NULL;
	const char		**f;
	json_int_t		 max;
	struct timeval		 tv;

	open = json_object();
	for (f = exec_pass; *f != NULL; f++)
		if ((v = req_field(r, *f)) != NULL)
			json_object_set(open, *f, v);
	json_object_set_new(open, "owner", req_owner(r));
	control_workspace_pass(r, open);
	/*
	 * Only a stream shows `started` to its client; for the rest it
	 * would be one more message each way while the command runs (the
	 * end carries the pid).
	 */
	if (!req_bool(r, "stream", 0))
		json_object_set_new(open, "started", json_false());
	/* No input will come: the worker gives the command /dev/null. */
	if (json_object_get(r->msg, "stdin") == NULL &&
	    json_object_get(r->msg, "stdin_b64") == NULL &&
	    !req_bool(r, "stdin_open", 0))
		json_object_set_new(open, "stdin_none", json_true());
	c = server_worker_chan_open(w, &chan_exec_ops, open);
	json_decref(open);
	x = xcalloc(1, sizeof *x);
	x->c = c;
	c->data = x;
	exec_audit(r, w, c);
	req_add_chan(r, c);
	server_stats.execs_total++;

	if (req_bool(r, "stream", 0))
		c->flags |= CHAN_STREAM;
	else {
		c->flags |= CHAN_BUFFERED;
		/* The server's --max-output bounds what a client may ask. */
		max = req_int(r, "max_output",
		    (json_int_t)serve_opts.max_output);
		if (max > (json_int_t)serve_opts.max_output)
			max = (json_int_t)serve_opts.max_output;
		c->max_output = (size_t)max;
	}
	if (req_bool(r, "stdin_open", 0))
		c->flags |= CHAN_STDIN_OPEN;
	else {
		in = evbuffer_new();
		if (util_json_get_bytes(r->msg, "stdin", in, &cause) == 1)
			chan_input(c, evbuffer_pullup(in, -1),
			    evbuffer_get_length(in));
		free(cause);
		evbuffer_free(in);
		chan_input_eof(c);
	}
	if (!(r->flags & REQ_BROADCAST) && req_field(r, "yield_after") !=
	    NULL) {
		/* Output past max_output is held for reads, not dropped. */
		c->flags |= CHAN_HOLD;
		x->yield = evtimer_new(ev_base, exec_yield_cb, c);
		util_timeval(&tv, req_number(r, "yield_after", 0));
		evtimer_add(x->yield, &tv);
	}
}

/* The exec fields of a reply from the worker's end message. */
static json_t *
exec_result(struct chan *c)
{
	json_t		*res, *e = c->end, *v;
	static const char *fields[] = { "exit_code", "signal", "timed_out",
	    "duration_ms", "reason", "pid", NULL };
	const char	**f;

	res = json_pack("{s:s}", "worker", server_worker_id(c->worker));
	for (f = fields; *f != NULL; f++)
		if ((v = json_object_get(e, *f)) != NULL)
			json_object_set(res, *f, v);
	return (res);
}

/*
 * Take buffered output for a result into bufs (stdout, stderr) and set
 * the truncation marks on res.
 */
static void
exec_result_buffers(struct chan *c, json_t *res, struct evbuffer **bufs)
{
	int	s;

	for (s = WIRE_OUT; s <= WIRE_ERR; s++) {
		chan_take_buffer(c, s, c->max_output, bufs[s - WIRE_OUT]);
		/* Held back for a yield that did not come: past max_output. */
		c->dropped[s] += evbuffer_get_length(c->out[s]);
		chan_consume(c, s, evbuffer_get_length(c->out[s]));
		json_object_set_new(res, s == WIRE_OUT ? "stdout_truncated" :
		    "stderr_truncated", json_boolean(c->dropped[s] > 0));
	}
	chan_ack(c, 1);
}

/* Add buffered output (and truncation marks) to a result. */
static void
exec_result_output(struct chan *c, json_t *res)
{
	struct evbuffer	*bufs[2] = { evbuffer_new(), evbuffer_new() };

	exec_result_buffers(c, res, bufs);
	util_json_set_bytes(res, "stdout", evbuffer_pullup(bufs[0], -1),
	    evbuffer_get_length(bufs[0]));
	util_json_set_bytes(res, "stderr", evbuffer_pullup(bufs[1], -1),
	    evbuffer_get_length(bufs[1]));
	evbuffer_free(bufs[0]);
	evbuffer_free(bufs[1]);
}

/* An error the worker reported in place of a result, or NULL. */
static json_t *
exec_error(struct chan *c)
{
	json_t	*err = json_object_get(c->end, "error");

	return (err != NULL ? json_incref(err) : NULL);
}

/* One worker of a broadcast is done; result is stolen. */
static void
exec_broadcast_result(struct req *r, json_t *result)
{
	struct exec_bcast	*b = r->data;
	json_t			*ev;

	if (!json_is_true(json_object_get(result, "ok")))
		server_count_error(json_string_value(json_object_get(
		    json_object_get(result, "error"), "code")));
	ev = json_deep_copy(result);
	json_object_set_new(ev, "event", json_string("result"));
	req_event(r, ev);
	json_decref(ev);
	json_array_append_new(b->results, result);
	b->running--;
	exec_broadcast_next(r);
}

/* A failed result of one broadcast member. */
static json_t *
exec_failed(const char *worker, json_t *err)
{
	return (json_pack("{s:s, s:b, s:o}", "worker", worker, "ok", 0,
	    "error", err));
}

/* The command ended and its output is all delivered: answer. */
static void
exec_done(struct chan *c)
{
	struct req	*r = c->req;
	json_t		*res, *err;

	if (r == NULL)
		return;
	req_remove_chan(c);
	if ((err = exec_error(c)) != NULL) {
		if (r->flags & REQ_BROADCAST)
			exec_broadcast_result(r, exec_failed(
			    server_worker_id(c->worker), err));
		else
			req_error_json(r, err);
		chan_release(c);
		return;
	}
	res = exec_result(c);
	/*
	 * The reply is queued before the release: the control socket is
	 * then written first, and the client does not wait behind a write
	 * to the worker (a loopback TCP write runs the receive path too).
	 */
	if ((c->flags & CHAN_BUFFERED) && !(r->flags & REQ_BROADCAST)) {
		/* The output goes as the client takes it: never held twice. */
		static const char *names[] = { "stdout", "stderr" };
		struct evbuffer	*bufs[2] = { evbuffer_new(), evbuffer_new() };

		exec_result_buffers(c, res, bufs);
		req_reply_stream(r, res, names, bufs, 2);
		chan_release(c);
		evbuffer_free(bufs[0]);
		evbuffer_free(bufs[1]);
		return;
	}
	if (c->flags & CHAN_BUFFERED)
		exec_result_output(c, res);
	if (r->flags & REQ_BROADCAST) {
		chan_release(c);
		json_object_set_new(res, "ok", json_true());
		exec_broadcast_result(r, res);
	} else {
		req_reply(r, res);
		chan_release(c);
	}
}

/*
 * Move streamed output to the owner as events while its client keeps
 * up; ack what went; answer once the end is delivered.
 */
static void
exec_drain(struct chan *c)
{
	struct req	*r = c->req;
	int		 s;
	size_t		 len;
	json_t		*ev;
	uint8_t		*p;

	for (s = WIRE_OUT; s <= WIRE_ERR; s++) {
		while ((len = evbuffer_get_length(c->out[s])) != 0 &&
		    control_client_writable(r->client)) {
			if (len > WIRE_CHUNK)
				len = WIRE_CHUNK;
			p = evbuffer_pullup(c->out[s], (ssize_t)len);
			ev = json_pack("{s:s, s:s}", "event", s == WIRE_ERR ?
			    "stderr" : "stdout", "worker",
			    server_worker_id(c->worker));
			if (chan_event_bytes(ev, "data", c, s, p, len, 0) != 0)
				req_event(r, ev);
			json_decref(ev);
			chan_consume(c, s, len);
		}
	}
	if ((c->flags & CHAN_ENDED) && evbuffer_get_length(c->out[WIRE_OUT])
	    == 0 && evbuffer_get_length(c->out[WIRE_ERR]) == 0)
		exec_done(c);
}

/* chan_ops.started: tell a streaming client, once. */
static void
exec_started(struct chan *c, json_t *msg)
{
	json_t	*ev;

	/* The worker says it again after a reconnect. */
	if (c->flags & CHAN_STARTED)
		return;
	c->flags |= CHAN_STARTED;
	if (c->req == NULL || !(c->flags & CHAN_STREAM))
		return;
	ev = json_pack("{s:s, s:s, s:s, s:O}", "event", "started",
	    "worker", server_worker_id(c->worker), "handle", c->handle,
	    "pid", json_object_get(msg, "pid"));
	req_event(c->req, ev);
	json_decref(ev);
}

/* chan_ops.output: output or the end arrived. */
static void
exec_output(struct chan *c)
{
	struct exec_chan	*x = c->data;

	if ((c->flags & CHAN_STREAM) && c->req != NULL)
		exec_drain(c);
	else if (c->flags & CHAN_HANDLE)
		exec_try_read(c);
	else if ((c->flags & CHAN_HOLD) && !(c->flags & CHAN_ENDED) &&
	    chan_over_max(c) && x->yield != NULL) {
		/*
		 * Past max_output, a command that may yield yields now: its
		 * output goes on to reads instead of being dropped, and it
		 * does not wait on us until yield_after.
		 */
		evtimer_del(x->yield);
		event_active(x->yield, EV_TIMEOUT, 0);
	} else if ((c->flags & CHAN_ENDED) && c->req != NULL)
		exec_done(c);
}

/* chan_ops.lost: the worker is gone for good. */
static void
exec_lost(struct chan *c, const char *code, const char *why)
{
	struct exec_chan	*x = c->data;
	struct req		*r = c->req;

	if (x->read != NULL)
		req_error(x->read, code, "%s", why);
	if (r == NULL)
		return;
	req_remove_chan(c);
	if (r->flags & REQ_BROADCAST)
		exec_broadcast_result(r, exec_failed(
		    server_worker_id(c->worker), wire_error(code, 0, "%s",
		    why)));
	else
		req_error(r, code, "%s", why);
}

/* chan_ops.freed: nothing may point at c any more. */
static void
exec_freed(struct chan *c)
{
	struct exec_chan	*x = c->data;

	if (x == NULL)
		return;
	if (x->read != NULL)
		req_error(x->read, "no_such_handle", "handle '%s' is gone",
		    c->handle);
	if (x->yield != NULL)
		event_free(x->yield);
	free(x);
	c->data = NULL;
}

/* chan_ops.owner_gone: nobody waits for the command: stop it. */
static void
exec_owner_gone(struct chan *c)
{
	chan_cancel(c);
}

/* chan_ops.owner_drained: the client can take more events. */
static void
exec_owner_drained(struct chan *c)
{
	if (c->flags & CHAN_STREAM)
		exec_drain(c);
}

/* chan_ops.adopt: a detached command lives on; the rest is cancelled. */
static int
exec_adopt(struct chan *c, json_t *a)
{
	if (!json_is_true(json_object_get(a, "detached")))
		return (-1);
	c->data = xcalloc(1, sizeof (struct exec_chan));
	((struct exec_chan *)c->data)->c = c;
	return (0);
}

const struct chan_ops chan_exec_ops = {
	.name = "exec",
	.kind = CHAN_EXEC,
	.counts = CHAN_COUNT_COMMAND,
	.prefix = "h-",
	.in_window = WIRE_WINDOW,
	.out_window = WIRE_WINDOW,
	.started = exec_started,
	.output = exec_output,
	.lost = exec_lost,
	.freed = exec_freed,
	.owner_gone = exec_owner_gone,
	.owner_drained = exec_owner_drained,
	.adopt = exec_adopt,
};

/* ---- exec ---- */

/* Start broadcast members while under max_concurrency; finish at the end. */
static void
exec_broadcast_next(struct req *r)
{
	struct exec_bcast	*b = r->data;
	struct worker		*w;
	const char		*id;

	while (json_array_size(b->pending) > 0 && (b->max_concurrency == 0 ||
	    b->running < b->max_concurrency)) {
		id = json_string_value(json_array_get(b->pending, 0));
		w = server_worker_reachable(id);
		b->running++;
		if (w == NULL) {
			json_t *res = exec_failed(id, wire_error(
			    "no_such_worker", 0, "worker '%s' is not "
			    "connected", id));
			json_array_remove(b->pending, 0);
			exec_broadcast_result(r, res);
			return;
		}
		exec_start(r, w);
		json_array_remove(b->pending, 0);
	}
	if (json_array_size(b->pending) == 0 && b->running == 0)
		req_reply(r, json_pack("{s:O}", "results", b->results));
}

static void
exec_bcast_free(void *arg)
{
	struct exec_bcast	*b = arg;

	json_decref(b->results);
	json_decref(b->pending);
	free(b);
}

/* An exec on several workers: by "workers" (ids) or by "labels". */
static void
exec_broadcast(struct req *r)
{
	json_t			*ids = req_field(r, "workers"), *v;
	json_t			*labels = req_field(r, "labels");
	struct exec_bcast	*b;
	struct worker		*w;
	size_t			 i;

	if (ids != NULL) {
		json_array_foreach(ids, i, v) {
			if (!json_is_string(v)) {
				req_error(r, "bad_request", "field 'workers' "
				    "must be an array of worker ids");
				return;
			}
		}
	}
	b = xcalloc(1, sizeof *b);
	b->max_concurrency = (int)req_int(r, "max_concurrency", 0);
	b->results = json_array();
	b->pending = json_array();
	r->flags |= REQ_BROADCAST;
	r->data = b;
	r->data_free = exec_bcast_free;
	if (ids != NULL)
		json_array_extend(b->pending, ids);
	else {
		for (w = server_worker_next(NULL); w != NULL;
		    w = server_worker_next(w))
			if (server_worker_connected(w) &&
			    server_worker_matches(w, labels) &&
			    control_acl_covers(r->client, w))
				json_array_append_new(b->pending,
				    json_string(server_worker_id(w)));
	}
	exec_broadcast_next(r);
}

void
control_exec_cmd(struct req *r)
{
	struct worker	*w;
	const char	*id = req_string(r, "worker");

	if (exec_validate(r) != 0)
		return;
	if (req_field(r, "workers") != NULL ||
	    (req_field(r, "labels") != NULL && id == NULL)) {
		exec_broadcast(r);
		return;
	}
	if (id == NULL) {
		req_error(r, "bad_request", "field 'worker' is required");
		return;
	}
	if ((w = server_worker_reachable(id)) == NULL) {
		req_error(r, "no_such_worker", "worker '%s' is not connected",
		    id);
		return;
	}
	exec_start(r, w);
}

/* ---- handles: read, write, signal ---- */

/* Does the waiting read on x's channel get its answer now? */
static int
exec_read_ready(struct exec_chan *x, int *matched)
{
	struct chan		*c = x->c;
	size_t			 len = evbuffer_get_length(c->out[WIRE_OUT]);
	struct evbuffer_ptr	 from;
	char			*text;

	if (x->has_re) {
		/* Only the last UNTIL_WINDOW bytes: bounded work a try. */
		evbuffer_ptr_set(c->out[WIRE_OUT], &from, len > UNTIL_WINDOW ?
		    len - UNTIL_WINDOW : 0, EVBUFFER_PTR_SET);
		if (len > UNTIL_WINDOW)
			len = UNTIL_WINDOW;
		text = xmalloc(len + 1);
		evbuffer_copyout_from(c->out[WIRE_OUT], &from, text, len);
		text[len] = '\0';
		*matched = regexec(&x->re, text, 0, NULL, 0) == 0;
		free(text);
	} else
		*matched = len + evbuffer_get_length(c->out[WIRE_ERR]) > 0;
	return (*matched || (c->flags & CHAN_ENDED) ||
	    (x->read->flags & REQ_EXPIRED));
}

/* Answer a waiting read on c if it can be answered now. */
static void
exec_try_read(struct chan *c)
{
	struct exec_chan	*x = c->data;
	struct req		*r;
	json_t			*reply, *o;
	int			 matched, ended, has_re, s;

	if (x == NULL || x->read == NULL || !exec_read_ready(x, &matched))
		return;
	r = x->read;
	has_re = x->has_re;
	ended = (c->flags & CHAN_ENDED) != 0;
	reply = json_pack("{s:b}", "running", !ended);
	for (s = WIRE_OUT; s <= WIRE_ERR; s++) {
		o = chan_take_output(c, s, (size_t)-1);
		json_object_update(reply, o);
		json_decref(o);
	}
	if (has_re)
		json_object_set_new(reply, "matched", json_boolean(matched));
	if (ended) {
		o = exec_result(c);
		json_object_update(reply, o);
		json_decref(o);
		if ((o = exec_error(c)) != NULL)
			json_object_set_new(reply, "error", o);
	}
	req_reply(r, reply);	/* detaches the read (exec_read_gone) */
	if (ended)
		chan_release(c);
}

static void
read_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct req		*r = arg;
	struct exec_chan	*x = r->data;

	r->flags |= REQ_EXPIRED;
	exec_try_read(x->c);
}

/* The read request is done (answered, or its client gone). */
static void
exec_read_gone(void *arg)
{
	struct exec_chan	*x = arg;

	x->read = NULL;
	if (x->has_re)
		regfree(&x->re);
	x->has_re = 0;
}

/*
 * The channel of a handle; replies bad_request without one and
 * no_such_handle if there is none.
 */
static struct chan *
handle_find(struct req *r, const char *handle)
{
	struct chan	*c;

	if (handle == NULL) {
		req_error(r, "bad_request", "field 'handle' or 'session' is "
		    "required");
		return (NULL);
	}
	c = chan_find_handle(handle, &chan_exec_ops);
	/* Another uid's handle is not there, for this client. */
	if (c != NULL && !control_acl_visible(r->client,
	    server_worker_id(c->worker), c->owner))
		c = NULL;
	if (c == NULL)
		req_error(r, "no_such_handle", "no running command with "
		    "handle '%s'", handle);
	return (c);
}

void
control_exec_read(struct req *r)
{
	const char		*handle = req_string(r, "handle");
	const char		*until = req_string(r, "until");
	struct chan		*c;
	struct exec_chan	*x;
	struct timeval		 tv;
	char			 errbuf[128];
	int			 e;

	if ((c = handle_find(r, handle)) == NULL)
		return;
	x = c->data;
	if (!(c->flags & CHAN_HANDLE)) {
		req_error(r, "bad_request", "handle '%s' streams to the "
		    "connection that started it", handle);
		return;
	}
	if (x->read != NULL) {
		req_error(r, "bad_request", "another read is waiting on handle "
		    "'%s'", handle);
		return;
	}
	if (until != NULL) {
		if ((e = regcomp(&x->re, until, REG_EXTENDED | REG_NOSUB))
		    != 0) {
			regerror(e, &x->re, errbuf, sizeof errbuf);
			req_error(r, "bad_request", "field 'until': %s",
			    errbuf);
			return;
		}
		x->has_re = 1;
	}
	x->read = r;
	r->data = x;
	r->data_free = exec_read_gone;
	if (req_field(r, "timeout") == NULL && until == NULL)
		r->flags |= REQ_EXPIRED;	/* answer at once */
	else {
		r->timer = evtimer_new(ev_base, read_timeout_cb, r);
		util_timeval(&tv, req_number(r, "timeout", 0));
		evtimer_add(r->timer, &tv);
	}
	exec_try_read(c);
}

void
control_exec_write(struct req *r)
{
	const char	*handle = req_string(r, "handle");
	struct chan	*c;
	struct evbuffer	*in;
	char		*cause = NULL;
	int		 eof = req_bool(r, "eof", 0), have;

	if (req_field(r, "session") != NULL) {
		control_session_write(r);
		return;
	}
	if ((c = handle_find(r, handle)) == NULL)
		return;
	if (!(c->flags & CHAN_STDIN_OPEN) || c->in_eof) {
		req_error(r, "bad_request", "handle '%s' has no open stdin "
		    "(start it with stdin_open)", handle);
		return;
	}
	in = evbuffer_new();
	have = util_json_get_bytes(r->msg, "data", in, &cause);
	if (have < 0) {
		evbuffer_free(in);
		req_error(r, "bad_request", "%s", cause);
		free(cause);
		return;
	}
	if (have == 0 && !eof) {
		evbuffer_free(in);
		req_error(r, "bad_request", "write needs 'data', 'data_b64' or "
		    "'eof'");
		return;
	}
	if (evbuffer_get_length(in) > 0)
		chan_input_buffer(c, in, evbuffer_get_length(in));
	evbuffer_free(in);
	if (eof)
		chan_input_eof(c);
	control_client_wait_sink(r->client, c);
	req_reply(r, json_object());
}

void
control_exec_signal(struct req *r)
{
	const char	*sig = req_string(r, "signal");
	struct chan	*c;
	json_t		*m;

	if (util_signal_number(sig) == -1) {
		req_error(r, "bad_request", "field 'signal' must name a signal "
		    "(INT, TERM, KILL, HUP, ...)");
		return;
	}
	if (req_field(r, "session") != NULL) {
		control_session_signal(r);
		return;
	}
	if ((c = handle_find(r, req_string(r, "handle"))) == NULL)
		return;
	m = wire_chan_msg(WIRE_T_SIGNAL, c->ch);
	json_object_set_new(m, "signal", json_string(util_signal_name(
	    util_signal_number(sig))));
	server_worker_send(c->worker, m);
	json_decref(m);
	req_reply(r, json_object());
}

/*
 * control-exec.c: the exec op (single and broadcast, buffered, streamed,
 * yielded) and the handle ops read, write and signal.
 */
#include <sys/types.h>

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* Per-channel state of a `read` waiting on a detached exec. */
struct exec_read {
	struct req	*req;
	regex_t		 re;
	int		 has_re;
};

static void	 exec_start(struct req *, struct worker *);
static void	 exec_broadcast_next(struct req *);
static void	 exec_try_read(struct chan *);

/* Fields of the exec request passed on to the worker as they are. */
static const char *exec_pass[] = {
	"cmd", "argv", "env", "env_clear", "cwd", "user", "timeout",
	"kill_grace", "stdin_open", "merge_stderr", "limits", NULL
};

/* Check the exec fields once, before any worker is asked. */
static int
exec_validate(struct req *r)
{
	json_t		*cmd = json_object_get(r->msg, "cmd");
	json_t		*argv = json_object_get(r->msg, "argv"), *v, *o;
	double		 d;
	json_int_t	 n;
	int		 b;
	const char	*s, *k;
	size_t		 i;
	struct evbuffer	*in;
	char		*cause = NULL;

	if ((cmd == NULL) == (argv == NULL)) {
		req_error(r, "bad_request", "exec needs exactly one of 'cmd' "
		    "and 'argv'");
		return (-1);
	}
	if (cmd != NULL && !json_is_string(cmd)) {
		req_error(r, "bad_request", "field 'cmd' must be a string");
		return (-1);
	}
	if (argv != NULL) {
		if (!json_is_array(argv) || json_array_size(argv) == 0) {
			req_error(r, "bad_request", "field 'argv' must be a "
			    "non-empty array of strings");
			return (-1);
		}
		json_array_foreach(argv, i, v) {
			if (!json_is_string(v)) {
				req_error(r, "bad_request", "field 'argv' must "
				    "be a non-empty array of strings");
				return (-1);
			}
		}
	}
	if (req_get_number(r, "timeout", &d) < 0 ||
	    req_get_number(r, "kill_grace", &d) < 0 ||
	    req_get_number(r, "yield_after", &d) < 0 ||
	    req_get_int(r, "max_output", &n) < 0 ||
	    req_get_int(r, "max_concurrency", &n) < 0 ||
	    req_get_bool(r, "env_clear", &b) < 0 ||
	    req_get_bool(r, "stream", &b) < 0 ||
	    req_get_bool(r, "stdin_open", &b) < 0 ||
	    req_get_bool(r, "merge_stderr", &b) < 0 ||
	    req_get_string(r, "cwd", &s) < 0 ||
	    req_get_string(r, "user", &s) < 0 ||
	    req_get_object(r, "env", &o) < 0 ||
	    req_get_object(r, "limits", &o) < 0)
		return (-1);
	if ((o = json_object_get(r->msg, "env")) != NULL) {
		json_object_foreach(o, k, v) {
			if (!json_is_string(v) || *k == '\0' ||
			    strchr(k, '=') != NULL) {
				req_error(r, "bad_request", "field 'env' must "
				    "map names to strings");
				return (-1);
			}
		}
	}
	if ((o = json_object_get(r->msg, "limits")) != NULL) {
		json_object_foreach(o, k, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0) {
				req_error(r, "bad_request", "field 'limits.%s'"
				    " must be a whole number", k);
				return (-1);
			}
		}
	}
	in = evbuffer_new();
	if (util_json_get_bytes(r->msg, "stdin", in, &cause) < 0) {
		evbuffer_free(in);
		req_error(r, "bad_request", "%s", cause);
		free(cause);
		return (-1);
	}
	evbuffer_free(in);
	if (json_is_true(json_object_get(r->msg, "stdin_open")) &&
	    !json_is_true(json_object_get(r->msg, "stream")) &&
	    json_object_get(r->msg, "yield_after") == NULL) {
		req_error(r, "bad_request", "'stdin_open' needs 'stream' (or "
		    "'yield_after')");
		return (-1);
	}
	return (0);
}

static void
exec_yield_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct chan	*c = arg;
	struct req	*r = c->req;
	json_t		*reply, *o, *m;

	if (r == NULL || (c->flags & CHAN_ENDED))
		return;
	/* Still running: answer now with a handle and let it run on. */
	reply = json_pack("{s:b, s:s, s:s}", "running", 1, "handle",
	    c->handle, "worker", server_worker_id(c->worker));
	c->flags &= ~(CHAN_BUFFERED | CHAN_STREAM);
	c->flags |= CHAN_HANDLE;
	/* What is past max_output stays for the first read. */
	o = chan_take_output(c, WIRE_OUT, c->max_output);
	json_object_update(reply, o);
	json_decref(o);
	o = chan_take_output(c, WIRE_ERR, c->max_output);
	json_object_update(reply, o);
	json_decref(o);
	TAILQ_REMOVE(&r->chans, c, rentry);
	c->req = NULL;
	m = json_pack("{s:s, s:I, s:s}", "t", "detach", "ch",
	    (json_int_t)c->ch, "handle", c->handle);
	server_worker_send(c->worker, m);
	json_decref(m);
	req_reply(r, reply);
}

/* Log who runs what on which worker; the command text is escaped. */
static void
exec_audit(struct req *r, struct worker *w, struct chan *c)
{
	json_t	*cmd = json_object_get(r->msg, "cmd");
	char	*text, *esc;

	if (cmd == NULL)
		cmd = json_object_get(r->msg, "argv");
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
	json_t		*open, *v;
	struct chan	*c;
	struct evbuffer	*in;
	char		*cause = NULL;
	const char	**f;
	json_int_t	 max = (json_int_t)serve_opts.max_output;
	double		 yield;
	struct timeval	 tv;

	open = json_object();
	for (f = exec_pass; *f != NULL; f++)
		if ((v = json_object_get(r->msg, *f)) != NULL)
			json_object_set(open, *f, v);
	c = server_worker_chan_open(w, CHAN_EXEC, open);
	json_decref(open);
	exec_audit(r, w, c);
	c->req = r;
	TAILQ_INSERT_TAIL(&r->chans, c, rentry);
	server_stats.execs_total++;
	server_stats.execs_running++;
	r->running++;

	if (json_is_true(json_object_get(r->msg, "stream")))
		c->flags |= CHAN_STREAM;
	else {
		c->flags |= CHAN_BUFFERED;
		/* The server's --max-output bounds what a client may ask. */
		if (json_is_integer(json_object_get(r->msg, "max_output")))
			max = json_integer_value(json_object_get(r->msg,
			    "max_output"));
		if (max > (json_int_t)serve_opts.max_output)
			max = (json_int_t)serve_opts.max_output;
		c->max_output = (size_t)max;
	}
	if (json_is_true(json_object_get(r->msg, "stdin_open")))
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
	if (!(r->flags & REQ_BROADCAST) &&
	    json_is_number(json_object_get(r->msg, "yield_after"))) {
		yield = json_number_value(json_object_get(r->msg,
		    "yield_after"));
		c->timer = evtimer_new(ev_base, exec_yield_cb, c);
		util_timeval(&tv, yield);
		evtimer_add(c->timer, &tv);
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

/* Add buffered output (and truncation marks) to a result. */
static void
exec_result_output(struct chan *c, json_t *res)
{
	json_t	*o;
	int	 s;

	for (s = WIRE_OUT; s <= WIRE_ERR; s++) {
		o = chan_take_output(c, s, c->max_output);
		json_object_update(res, o);
		json_decref(o);
		/* Held back for a yield that did not come: past max_output. */
		c->dropped[s] += evbuffer_get_length(c->out[s]);
		evbuffer_drain(c->out[s], evbuffer_get_length(c->out[s]));
		json_object_set_new(res, s == WIRE_OUT ? "stdout_truncated" :
		    "stderr_truncated", json_boolean(c->dropped[s] > 0));
	}
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
	json_t	*ev;

	ev = json_deep_copy(result);
	json_object_set_new(ev, "event", json_string("result"));
	req_event(r, ev);
	json_decref(ev);
	json_array_append_new(r->results, result);
	r->running--;
	exec_broadcast_next(r);
}

/* A channel's command ended and its output is all delivered. */
void
control_cmd_chan_done(struct chan *c)
{
	struct req	*r = c->req;
	json_t		*res, *err;

	if (r == NULL || c->kind != CHAN_EXEC)
		return;
	TAILQ_REMOVE(&r->chans, c, rentry);
	c->req = NULL;
	if ((err = exec_error(c)) != NULL) {
		res = json_pack("{s:s, s:b, s:o}", "worker",
		    server_worker_id(c->worker), "ok", 0, "error", err);
		if (r->flags & REQ_BROADCAST) {
			server_count_error(json_string_value(json_object_get(
			    err, "code")));
			exec_broadcast_result(r, res);
		} else {
			json_decref(res);
			req_error_json(r, json_incref(err));
		}
		chan_release(c);
		return;
	}
	res = exec_result(c);
	if (c->flags & CHAN_BUFFERED)
		exec_result_output(c, res);
	chan_release(c);
	if (r->flags & REQ_BROADCAST) {
		json_object_set_new(res, "ok", json_true());
		exec_broadcast_result(r, res);
	} else
		req_reply(r, res);
}

/* The worker started the command. */
void
control_cmd_chan_started(struct chan *c, json_t *msg)
{
	json_t	*ev;

	if (c->kind != CHAN_EXEC) {
		control_file_started(c, msg);
		return;
	}
	/* The worker says it again after a reconnect: tell clients once. */
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

/* A stdout/stderr event skeleton for c's owner. */
json_t *
control_cmd_stream_event(struct chan *c, int s)
{
	return (json_pack("{s:s, s:s}", "event", s == WIRE_ERR ? "stderr" :
	    "stdout", "worker", server_worker_id(c->worker)));
}

/* Output or the end arrived on a channel not streamed to a client. */
void
control_cmd_chan_output(struct chan *c)
{
	switch (c->kind) {
	case CHAN_SESSION:
		control_session_output(c);
		return;
	case CHAN_GET:
	case CHAN_PUT:
		control_file_output(c);
		return;
	}
	if (c->flags & CHAN_HANDLE)
		exec_try_read(c);
	else if ((c->flags & CHAN_ENDED) && c->req != NULL)
		control_cmd_chan_done(c);
}

/* A message about a channel other than started/end. */
void
control_cmd_chan_event(struct chan *c, const char *t, json_t *msg)
{
	if (c->kind == CHAN_SESSION)
		control_session_event(c, t, msg);
}

/* Input was taken by the worker: a client paused on it may go on. */
void
control_cmd_chan_input_acked(struct chan *c)
{
	control_client_sink_drained(c);
	if (c->kind == CHAN_PUT)
		control_file_output(c);
}

/* The channel's worker is gone for good. */
void
control_cmd_chan_lost(struct chan *c, const char *code, const char *why)
{
	struct req	*r = c->req;
	struct exec_read *er = c->data;

	if (c->kind == CHAN_SESSION) {
		control_session_lost(c, why);
		return;
	}
	if (er != NULL && c->kind == CHAN_EXEC)
		req_error(er->req, code, "%s", why);
	if (r == NULL)
		return;
	TAILQ_REMOVE(&r->chans, c, rentry);
	c->req = NULL;
	if (r->flags & REQ_BROADCAST) {
		server_count_error(code);
		exec_broadcast_result(r, json_pack("{s:s, s:b, s:o}", "worker",
		    server_worker_id(c->worker), "ok", 0, "error",
		    req_error_object(code, "%s", why)));
	} else
		req_error(r, code, "%s", why);
}

/* The channel is being freed: forget any pointer to it. */
void
control_cmd_chan_freed(struct chan *c)
{
	struct exec_read *er = c->data;

	control_client_sink_gone(c);
	if (c->req != NULL) {
		TAILQ_REMOVE(&c->req->chans, c, rentry);
		c->req = NULL;
	}
	if (c->kind == CHAN_EXEC && er != NULL) {
		er->req->data = NULL;
		if (er->has_re)
			regfree(&er->re);
		free(er);
		c->data = NULL;
	} else if (c->kind == CHAN_SESSION)
		control_session_freed(c);
	else if (c->kind == CHAN_GET || c->kind == CHAN_PUT)
		control_file_freed(c);
}

/* Start broadcast members while under max_concurrency; finish at the end. */
static void
exec_broadcast_next(struct req *r)
{
	struct worker	*w;
	const char	*id;
	json_t		*res;

	while (json_array_size(r->pending) > 0 &&
	    (r->max_concurrency == 0 || r->running < r->max_concurrency)) {
		id = json_string_value(json_array_get(r->pending, 0));
		w = server_worker_find(id);
		if (w == NULL || (!server_worker_connected(w) &&
		    !server_worker_away(w))) {
			server_count_error("no_such_worker");
			res = json_pack("{s:s, s:b, s:o}", "worker", id, "ok", 0,
			    "error", req_error_object("no_such_worker",
			    "worker '%s' is not connected", id));
			json_array_remove(r->pending, 0);
			r->running++;
			exec_broadcast_result(r, res);
			return;
		}
		exec_start(r, w);
		json_array_remove(r->pending, 0);
	}
	if (json_array_size(r->pending) == 0 && r->running == 0)
		req_reply(r, json_pack("{s:O}", "results", r->results));
}

static void
cmd_exec_broadcast(struct req *r)
{
	json_t		*ids = json_object_get(r->msg, "workers"), *v;
	json_t		*labels = NULL;
	struct worker	*w;
	size_t		 i;
	json_int_t	 n = 0;

	if (req_get_object(r, "labels", &labels) < 0 ||
	    req_get_int(r, "max_concurrency", &n) < 0)
		return;
	r->flags |= REQ_BROADCAST;
	r->max_concurrency = (int)n;
	r->results = json_array();
	r->pending = json_array();
	if (ids != NULL) {
		if (!json_is_array(ids)) {
			req_error(r, "bad_request", "field 'workers' must be an "
			    "array of worker ids");
			return;
		}
		json_array_foreach(ids, i, v) {
			if (!json_is_string(v)) {
				req_error(r, "bad_request", "field 'workers' "
				    "must be an array of worker ids");
				return;
			}
			json_array_append(r->pending, v);
		}
	} else {
		for (w = server_worker_next(NULL); w != NULL; w = server_worker_next(w))
			if (server_worker_connected(w) &&
			    server_worker_matches(w, labels))
				json_array_append_new(r->pending,
				    json_string(server_worker_id(w)));
	}
	exec_broadcast_next(r);
}

void
control_exec_cmd(struct req *r)
{
	struct worker	*w;

	if (exec_validate(r) != 0)
		return;
	if (json_object_get(r->msg, "workers") != NULL ||
	    (json_object_get(r->msg, "labels") != NULL &&
	    json_object_get(r->msg, "worker") == NULL)) {
		cmd_exec_broadcast(r);
		return;
	}
	if ((w = req_get_worker(r)) == NULL)
		return;
	exec_start(r, w);
}

/* ---- handles: read, write, signal ---- */

/* Answer a waiting read on c if it can be answered now. */
static void
exec_try_read(struct chan *c)
{
	struct exec_read *er = c->data;
	struct req	*r;
	json_t		*reply, *o;
	size_t		 len;
	char		*text;
	int		 matched = 1, ended, has_re;

	if (er == NULL)
		return;
	has_re = er->has_re;
	ended = (c->flags & CHAN_ENDED) != 0;
	len = evbuffer_get_length(c->out[WIRE_OUT]);
	if (er->has_re) {
		text = xmalloc(len + 1);
		evbuffer_copyout(c->out[WIRE_OUT], text, len);
		text[len] = '\0';
		matched = regexec(&er->re, text, 0, NULL, 0) == 0;
		free(text);
	} else
		matched = len + evbuffer_get_length(c->out[WIRE_ERR]) > 0;
	if (!matched && !ended && !(er->req->flags & REQ_EXPIRED))
		return;

	r = er->req;
	c->data = NULL;
	if (er->has_re)
		regfree(&er->re);
	free(er);
	r->data = NULL;
	reply = json_pack("{s:b}", "running", !ended);
	o = chan_take_output(c, WIRE_OUT, (size_t)-1);
	json_object_update(reply, o);
	json_decref(o);
	o = chan_take_output(c, WIRE_ERR, (size_t)-1);
	json_object_update(reply, o);
	json_decref(o);
	if (has_re)
		json_object_set_new(reply, "matched", json_boolean(matched));
	if (ended) {
		o = exec_result(c);
		json_object_update(reply, o);
		json_decref(o);
		if ((o = exec_error(c)) != NULL)
			json_object_set_new(reply, "error", o);
		chan_release(c);
	}
	req_reply(r, reply);
}

static void
read_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct req	*r = arg;
	struct chan	*c = r->data;

	r->flags |= REQ_EXPIRED;
	if (c != NULL)
		exec_try_read(c);
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
	c = control_cmd_find_handle(handle, CHAN_EXEC);
	if (c == NULL)
		req_error(r, "no_such_handle", "no running command with "
		    "handle '%s'", handle);
	return (c);
}

void
control_exec_read(struct req *r)
{
	const char	*handle = NULL, *until = NULL;
	double		 timeout = 0;
	struct chan	*c;
	struct exec_read *er;
	struct timeval	 tv;
	char		 errbuf[128];
	int		 e;

	if (req_get_string(r, "handle", &handle) < 0 ||
	    req_get_string(r, "until", &until) < 0 ||
	    req_get_number(r, "timeout", &timeout) < 0)
		return;
	if (handle == NULL) {
		req_error(r, "bad_request", "field 'handle' is required");
		return;
	}
	if ((c = handle_find(r, handle)) == NULL)
		return;
	if (!(c->flags & CHAN_HANDLE)) {
		req_error(r, "bad_request", "handle '%s' streams to the "
		    "connection that started it", handle);
		return;
	}
	if (c->data != NULL) {
		req_error(r, "bad_request", "another read is waiting on handle "
		    "'%s'", handle);
		return;
	}
	er = xcalloc(1, sizeof *er);
	er->req = r;
	if (until != NULL) {
		if ((e = regcomp(&er->re, until, REG_EXTENDED | REG_NOSUB))
		    != 0) {
			regerror(e, &er->re, errbuf, sizeof errbuf);
			free(er);
			req_error(r, "bad_request", "field 'until': %s",
			    errbuf);
			return;
		}
		er->has_re = 1;
	}
	c->data = er;
	r->data = c;
	if (timeout == 0 && until == NULL)
		r->flags |= REQ_EXPIRED;	/* answer at once */
	else {
		r->timer = evtimer_new(ev_base, read_timeout_cb, r);
		util_timeval(&tv, timeout);
		evtimer_add(r->timer, &tv);
	}
	exec_try_read(c);
}

/* The read request r goes away (client gone): detach it from its chan. */
void
control_exec_read_gone(struct req *r)
{
	struct chan		*c = r->data;
	struct exec_read	*er;

	if (c == NULL || (er = c->data) == NULL || er->req != r)
		return;
	if (er->has_re)
		regfree(&er->re);
	free(er);
	c->data = NULL;
	r->data = NULL;
}

void
control_exec_write(struct req *r)
{
	const char	*handle = NULL;
	struct chan	*c;
	struct evbuffer	*in;
	char		*cause = NULL;
	int		 eof = 0, have;

	if (json_object_get(r->msg, "session") != NULL) {
		control_session_write(r);
		return;
	}
	if (req_get_string(r, "handle", &handle) < 0 ||
	    req_get_bool(r, "eof", &eof) < 0)
		return;
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
		chan_input(c, evbuffer_pullup(in, -1), evbuffer_get_length(in));
	evbuffer_free(in);
	if (eof)
		chan_input_eof(c);
	control_client_wait_sink(r->client, c);
	req_reply(r, json_object());
}

void
control_exec_signal(struct req *r)
{
	const char	*handle = NULL, *sig = NULL;
	struct chan	*c;
	json_t		*m;

	if (req_get_string(r, "handle", &handle) < 0 ||
	    req_get_string(r, "signal", &sig) < 0)
		return;
	if (sig == NULL || util_signal_number(sig) == -1) {
		req_error(r, "bad_request", "field 'signal' must name a signal "
		    "(INT, TERM, KILL, HUP, ...)");
		return;
	}
	if (json_object_get(r->msg, "session") != NULL) {
		control_session_signal(r, sig);
		return;
	}
	if ((c = handle_find(r, handle)) == NULL)
		return;
	m = json_pack("{s:s, s:I, s:s}", "t", "signal", "ch",
	    (json_int_t)c->ch, "signal", util_signal_name(
	    util_signal_number(sig)));
	server_worker_send(c->worker, m);
	json_decref(m);
	req_reply(r, json_object());
}

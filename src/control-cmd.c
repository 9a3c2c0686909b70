/*
 * control-cmd.c: the op table of the control protocol and the handlers of
 * the core ops (hello, workers, wait, exec, read, write, signal,
 * subscribe, stats), the life of a request, and the glue from channel
 * events to replies. Sessions and files have their own files.
 */
#include <sys/types.h>

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

static struct reqs	 all_reqs = TAILQ_HEAD_INITIALIZER(all_reqs);

/* A pending RPC to a worker: a request waiting for a `res`. */
struct rpc {
	struct req	*req;
	struct worker	*worker;
	uint32_t	 rid;
	json_t		*msg;
	int		 sent;
	void		(*done)(struct req *, json_t *);
	TAILQ_ENTRY(rpc) entry;
};
static TAILQ_HEAD(, rpc) all_rpcs = TAILQ_HEAD_INITIALIZER(all_rpcs);
static uint32_t		 next_rid = 1;

static void	 cmd_hello(struct req *);
static void	 cmd_workers(struct req *);
static void	 cmd_wait(struct req *);
static void	 cmd_subscribe(struct req *);
static void	 cmd_stats(struct req *);
static void	 cmd_wait_check(struct req *);

static const struct {
	const char	*name;
	void		(*fn)(struct req *);
} control_cmds[] = {
	{ "hello", cmd_hello },
	{ "workers", cmd_workers },
	{ "wait", cmd_wait },
	{ "exec", control_exec_cmd },
	{ "read", control_exec_read },
	{ "write", control_exec_write },
	{ "signal", control_exec_signal },
	{ "subscribe", cmd_subscribe },
	{ "stats", cmd_stats },
	{ "session.open", control_session_open },
	{ "session.attach", control_session_attach },
	{ "session.detach", control_session_detach },
	{ "session.write", control_session_write },
	{ "session.resize", control_session_resize },
	{ "session.read", control_session_read },
	{ "session.run", control_session_run },
	{ "session.close", control_session_close },
	{ "session.list", control_session_list },
	{ "put", control_file_put },
	{ "get", control_file_get },
	{ "stat", control_file_stat },
};

/* A request from client cl; msg is referenced. */
struct req *
req_create(struct client *cl, json_t *msg)
{
	struct req	*r;
	json_t		*id;

	r = xcalloc(1, sizeof *r);
	r->client = control_client_ref(cl);
	r->msg = json_incref(msg);
	id = json_object_get(msg, "id");
	if (id != NULL && (json_is_string(id) || json_is_integer(id)))
		r->id = json_incref(id);
	r->op = json_string_value(json_object_get(msg, "op"));
	TAILQ_INIT(&r->chans);
	TAILQ_INSERT_TAIL(&all_reqs, r, entry);
	return (r);
}

/* Free a request; its channels must be gone or detached. */
void
req_free(struct req *r)
{
	struct chan	*c;
	struct rpc	*p, *p1;

	while ((c = TAILQ_FIRST(&r->chans)) != NULL) {
		TAILQ_REMOVE(&r->chans, c, rentry);
		c->req = NULL;
	}
	TAILQ_FOREACH_SAFE(p, &all_rpcs, entry, p1) {
		if (p->req != r)
			continue;
		TAILQ_REMOVE(&all_rpcs, p, entry);
		json_decref(p->msg);
		free(p);
	}
	TAILQ_REMOVE(&all_reqs, r, entry);
	if (r->data != NULL && strcmp(r->op, "read") == 0)
		control_exec_read_gone(r);
	if (r->timer != NULL)
		event_free(r->timer);
	json_decref(r->id);
	json_decref(r->msg);
	json_decref(r->results);
	json_decref(r->pending);
	if (r->data_free != NULL)
		r->data_free(r->data);
	control_client_check_finished(r->client);
	control_client_unref(r->client);
	free(r);
}

/* Send an event about r (id added). */
void
req_event(struct req *r, json_t *ev)
{
	if (r->id != NULL)
		json_object_set(ev, "id", r->id);
	control_client_send(r->client, ev);
}

/* Send the final reply (ok:true added, reply stolen) and free r. */
void
req_reply(struct req *r, json_t *reply)
{
	if (r->id != NULL)
		json_object_set(reply, "id", r->id);
	json_object_set_new(reply, "ok", json_true());
	control_client_send(r->client, reply);
	json_decref(reply);
	req_free(r);
}

/* An error object {code, message}; caller owns it. */
json_t *
req_error_object(const char *code, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;
	json_t	*e;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	e = json_pack("{s:s, s:s}", "code", code, "message", msg);
	free(msg);
	return (e);
}

/* Final error reply with an error object (stolen); frees r. */
void
req_error_json(struct req *r, json_t *err)
{
	json_t	*reply;

	server_count_error(json_string_value(json_object_get(err, "code")));
	reply = json_object();
	if (r->id != NULL)
		json_object_set(reply, "id", r->id);
	json_object_set_new(reply, "ok", json_false());
	json_object_set_new(reply, "error", err);
	control_client_send(r->client, reply);
	json_decref(reply);
	req_free(r);
}

/* Final error reply; frees r. */
void
req_error(struct req *r, const char *code, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	xvasprintf(&msg, fmt, ap);
	va_end(ap);
	req_error_json(r, json_pack("{s:s, s:s}", "code", code, "message",
	    msg));
	free(msg);
}

/*
 * Field helpers: each returns 0 when absent, 1 when present and well
 * typed, and on a wrong type replies bad_request naming the field and
 * returns -1 (r is then freed).
 */
int
req_get_string(struct req *r, const char *name, const char **out)
{
	json_t	*v = json_object_get(r->msg, name);

	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_string(v)) {
		req_error(r, "bad_request", "field '%s' must be a string",
		    name);
		return (-1);
	}
	*out = json_string_value(v);
	return (1);
}

int
req_get_number(struct req *r, const char *name, double *out)
{
	json_t	*v = json_object_get(r->msg, name);

	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_number(v) || json_number_value(v) < 0) {
		req_error(r, "bad_request", "field '%s' must be a number of "
		    "seconds, 0 or more", name);
		return (-1);
	}
	*out = json_number_value(v);
	return (1);
}

int
req_get_int(struct req *r, const char *name, json_int_t *out)
{
	json_t	*v = json_object_get(r->msg, name);

	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		req_error(r, "bad_request", "field '%s' must be a whole "
		    "number, 0 or more", name);
		return (-1);
	}
	*out = json_integer_value(v);
	return (1);
}

int
req_get_bool(struct req *r, const char *name, int *out)
{
	json_t	*v = json_object_get(r->msg, name);

	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_boolean(v)) {
		req_error(r, "bad_request", "field '%s' must be true or false",
		    name);
		return (-1);
	}
	*out = json_is_true(v);
	return (1);
}

int
req_get_object(struct req *r, const char *name, json_t **out)
{
	json_t	*v = json_object_get(r->msg, name);

	if (v == NULL || json_is_null(v))
		return (0);
	if (!json_is_object(v)) {
		req_error(r, "bad_request", "field '%s' must be an object",
		    name);
		return (-1);
	}
	*out = v;
	return (1);
}

/*
 * The worker a request names in "worker": connected or inside its
 * resume window. Replies the error and returns NULL otherwise.
 */
struct worker *
req_get_worker(struct req *r)
{
	const char	*id = NULL;
	struct worker	*w;
	int		 have;

	if ((have = req_get_string(r, "worker", &id)) != 1) {
		if (have == 0)
			req_error(r, "bad_request", "field 'worker' is "
			    "required");
		return (NULL);
	}
	w = server_worker_find(id);
	if (w == NULL || (!server_worker_connected(w) &&
	    !server_worker_away(w))) {
		req_error(r, "no_such_worker", "worker '%s' is not connected",
		    id);
		return (NULL);
	}
	return (w);
}

/* Find the channel named by a handle or session id, in any worker. */
struct chan *
control_cmd_find_handle(const char *handle, int kind)
{
	struct worker	*w;
	struct chan	*c;

	for (w = server_worker_next(NULL); w != NULL; w = server_worker_next(w)) {
		TAILQ_FOREACH(c, server_worker_chan_list(w), wentry) {
			if (c->kind == kind && strcmp(c->handle, handle) == 0)
				return (c);
		}
	}
	return (NULL);
}

/* Parse and run one request line. msg is NULL when the line is not JSON. */
void
control_cmd_dispatch(struct client *cl, json_t *msg, size_t len,
    const char *jsonerr)
{
	struct req	*r;
	const char	*op;
	size_t		 i;
	json_t		*reply;

	(void)len;
	if (msg == NULL || !json_is_object(msg)) {
		reply = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error",
		    "code", "bad_request", "message", msg == NULL ?
		    "request is not valid JSON" : "request is not an object");
		if (msg == NULL && jsonerr != NULL)
			json_object_set_new(json_object_get(reply, "error"),
			    "detail", json_string(jsonerr));
		server_count_error("bad_request");
		control_client_send(cl, reply);
		json_decref(reply);
		return;
	}
	r = req_create(cl, msg);
	if (json_object_get(msg, "id") != NULL && r->id == NULL) {
		req_error(r, "bad_request", "field 'id' must be a string or "
		    "an integer");
		return;
	}
	switch (req_get_string(r, "op", &op)) {
	case -1:
		return;
	case 0:
		req_error(r, "bad_request", "field 'op' is required");
		return;
	}
	for (i = 0; i < sizeof control_cmds / sizeof control_cmds[0]; i++) {
		if (strcmp(op, control_cmds[i].name) == 0) {
			r->op = control_cmds[i].name;
			control_cmds[i].fn(r);
			return;
		}
	}
	req_error(r, "unknown_op", "unknown op '%s'", op);
}

/* How many requests of cl still owe a reply. */
int
control_cmd_client_pending(struct client *cl)
{
	struct req	*r;
	int		 n = 0;

	TAILQ_FOREACH(r, &all_reqs, entry)
		if (r->client == cl && !(r->flags & REQ_SUBSCRIPTION))
			n++;
	return (n);
}

/* The client's read side is shut; close it if nothing is owed. */
void
control_cmd_client_idle(struct client *cl)
{
	if (control_cmd_client_pending(cl) == 0)
		control_client_finish(cl);
}

/* The client went away: cancel its execs, forget its requests. */
void
control_cmd_client_gone(struct client *cl)
{
	struct req	*r, *r1;
	struct chan	*c;

	TAILQ_FOREACH_SAFE(r, &all_reqs, entry, r1) {
		if (r->client != cl)
			continue;
		while ((c = TAILQ_FIRST(&r->chans)) != NULL) {
			TAILQ_REMOVE(&r->chans, c, rentry);
			c->req = NULL;
			if (c->kind == CHAN_EXEC || c->kind == CHAN_PUT ||
			    c->kind == CHAN_GET)
				chan_cancel(c);
		}
		req_free(r);
	}
	control_session_client_gone(cl);
}

/* The client's output drained: let its streams flow again. */
void
control_cmd_client_drained(struct client *cl)
{
	struct req	*r, *r1;
	struct chan	*c, *c1;

	TAILQ_FOREACH_SAFE(r, &all_reqs, entry, r1) {
		if (r->client != cl)
			continue;
		TAILQ_FOREACH_SAFE(c, &r->chans, rentry, c1) {
			if (c->flags & CHAN_STREAM)
				chan_drain_to(c, cl);
			else if (c->kind == CHAN_GET)
				control_file_get_drain(c);
			if (control_client_dead(cl) || !control_client_writable(cl))
				return;
		}
	}
	control_session_client_drained(cl);
	control_client_check_finished(cl);
}

/* ---- hello, workers, wait, subscribe, stats ---- */

static void
cmd_hello(struct req *r)
{
	req_reply(r, json_pack("{s:s, s:i}", "version", SANDD_VERSION,
	    "protocol", CONTROL_PROTOCOL));
}

static void
cmd_workers(struct req *r)
{
	json_t		*labels = NULL, *list;
	struct worker	*w;
	int		 all = 0;

	if (req_get_object(r, "labels", &labels) < 0 ||
	    req_get_bool(r, "all", &all) < 0)
		return;
	list = json_array();
	for (w = server_worker_next(NULL); w != NULL; w = server_worker_next(w)) {
		if (!all && !server_worker_connected(w) &&
		    !server_worker_away(w))
			continue;
		if (server_worker_matches(w, labels))
			json_array_append_new(list, server_worker_json(w));
	}
	req_reply(r, json_pack("{s:o}", "workers", list));
}

static void
wait_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct req	*r = arg;

	req_error(r, "timeout", "wait: condition not met in time");
}

/* Reply if the wait condition of r holds now. */
static void
cmd_wait_check(struct req *r)
{
	const char	*id = json_string_value(json_object_get(r->msg,
			    "worker"));
	json_t		*labels = json_object_get(r->msg, "labels"), *list;
	json_int_t	 count = 1;
	struct worker	*w;

	if (json_is_integer(json_object_get(r->msg, "count")))
		count = json_integer_value(json_object_get(r->msg, "count"));
	list = json_array();
	for (w = server_worker_next(NULL); w != NULL; w = server_worker_next(w)) {
		if (!server_worker_connected(w))
			continue;
		if (id != NULL ? strcmp(id, server_worker_id(w)) == 0 :
		    server_worker_matches(w, labels))
			json_array_append_new(list, server_worker_json(w));
	}
	if ((json_int_t)json_array_size(list) >= count && count > 0)
		req_reply(r, json_pack("{s:o}", "workers", list));
	else if (count == 0)
		req_reply(r, json_pack("{s:o}", "workers", list));
	else
		json_decref(list);
}

static void
cmd_wait(struct req *r)
{
	const char	*id = NULL;
	json_t		*labels = NULL;
	json_int_t	 count = 1;
	double		 timeout = 30;
	struct timeval	 tv;

	if (req_get_string(r, "worker", &id) < 0 ||
	    req_get_object(r, "labels", &labels) < 0 ||
	    req_get_int(r, "count", &count) < 0 ||
	    req_get_number(r, "timeout", &timeout) < 0)
		return;
	if (id == NULL && labels == NULL) {
		req_error(r, "bad_request", "wait needs 'worker' or 'labels'");
		return;
	}
	r->flags |= REQ_WAIT;
	r->timer = evtimer_new(ev_base, wait_timeout_cb, r);
	util_timeval(&tv, timeout);
	evtimer_add(r->timer, &tv);
	cmd_wait_check(r);
}

/* A worker (re)connected: wake waits, send queued RPCs. */
void
control_cmd_worker_connected(struct worker *w)
{
	struct req	*r, *r1;
	struct rpc	*p;

	TAILQ_FOREACH(p, &all_rpcs, entry) {
		if (p->worker == w) {
			server_worker_send(w, p->msg);
			p->sent = 1;
		}
	}
	TAILQ_FOREACH_SAFE(r, &all_reqs, entry, r1)
		if (r->flags & REQ_WAIT)
			cmd_wait_check(r);
}

/* The worker is lost for good: its RPCs fail. */
void
control_cmd_worker_lost(struct worker *w, const char *code, const char *why)
{
	struct rpc	*p, *p1;

again:
	TAILQ_FOREACH_SAFE(p, &all_rpcs, entry, p1) {
		if (p->worker == w) {
			req_error(p->req, code, "%s", why);
			goto again;
		}
	}
}

static void
cmd_subscribe(struct req *r)
{
	json_t		*topics = json_object_get(r->msg, "topics"), *t;
	size_t		 i;
	int		 mask = 0;
	const char	*name;

	if (!json_is_array(topics)) {
		req_error(r, "bad_request", "field 'topics' must be an array");
		return;
	}
	json_array_foreach(topics, i, t) {
		name = json_string_value(t);
		if (name != NULL && strcmp(name, "workers") == 0)
			mask |= TOPIC_WORKERS;
		else if (name != NULL && strcmp(name, "sessions") == 0)
			mask |= TOPIC_SESSIONS;
		else {
			req_error(r, "bad_request", "unknown topic in "
			    "'topics'");
			return;
		}
	}
	control_client_subscribe(r->client, mask);
	req_reply(r, json_pack("{s:O}", "topics", topics));
}

static void
cmd_stats(struct req *r)
{
	struct worker	*w;
	json_int_t	 sessions = 0;

	for (w = server_worker_next(NULL); w != NULL; w = server_worker_next(w))
		sessions += server_worker_sessions(w);
	req_reply(r, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:O}",
	    "workers_connected", (json_int_t)server_worker_count(1),
	    "workers_known", (json_int_t)server_worker_count(0),
	    "execs_total", (json_int_t)server_stats.execs_total,
	    "execs_running", (json_int_t)server_stats.execs_running,
	    "sessions", sessions,
	    "bytes_in", (json_int_t)server_stats.bytes_in,
	    "bytes_out", (json_int_t)server_stats.bytes_out,
	    "control_clients", (json_int_t)control_client_count(),
	    "auth_failures", (json_int_t)server_stats.auth_failures,
	    "errors", server_stats.errors));
}

/* ---- RPCs to workers ---- */

/*
 * Send msg (stolen) to w as an RPC for r; done gets the worker's `res`
 * (r must be answered by done). Waits while the worker is away.
 */
void
control_cmd_rpc(struct req *r, struct worker *w, json_t *msg,
    void (*done)(struct req *, json_t *))
{
	struct rpc	*p;

	p = xcalloc(1, sizeof *p);
	p->req = r;
	p->worker = w;
	p->rid = next_rid++;
	p->done = done;
	json_object_set_new(msg, "t", json_string("req"));
	json_object_set_new(msg, "rid", json_integer(p->rid));
	p->msg = msg;
	TAILQ_INSERT_TAIL(&all_rpcs, p, entry);
	if (server_worker_connected(w)) {
		server_worker_send(w, msg);
		p->sent = 1;
	}
}

/* Plain RPC completion: the worker's res is the reply. */
void
control_cmd_rpc_forward(struct req *r, json_t *res)
{
	json_t	*reply;

	if (!json_is_true(json_object_get(res, "ok"))) {
		req_error_json(r, json_incref(json_object_get(res, "error")));
		return;
	}
	reply = json_deep_copy(res);
	json_object_del(reply, "t");
	json_object_del(reply, "rid");
	json_object_del(reply, "ok");
	req_reply(r, reply);
}

/* A `res` from a worker. */
void
control_cmd_worker_reply(struct worker *w, json_t *msg)
{
	struct rpc	*p;
	uint32_t	 rid = (uint32_t)json_integer_value(json_object_get(msg,
			    "rid"));

	TAILQ_FOREACH(p, &all_rpcs, entry) {
		if (p->worker == w && p->rid == rid) {
			TAILQ_REMOVE(&all_rpcs, p, entry);
			json_decref(p->msg);
			p->done(p->req, msg);
			free(p);
			return;
		}
	}
	log_debug("worker %s: reply to unknown rpc %u", server_worker_id(w),
	    rid);
}

/*
 * control-req.c: the life of one control request. A request is created
 * for each line a client sends and lives until its final reply (or its
 * client goes away). Its fields are checked once against the op's field
 * specs (control-cmd.c's table) before the handler runs, so handlers
 * read them with plain accessors.
 *
 * Lifetime: a request has a reference count and a DEAD flag, like
 * clients and links. The final reply (req_reply, req_error) marks it
 * dead and lets go of what it owns: its channels are detached, its
 * worker calls cancelled, its per-op state freed by the op's own hook.
 * Whoever else holds a reference (a session waiting to answer an open,
 * a queued session.run, a waiting read) checks req_dead() before using
 * it and drops the reference when done; the memory goes with the last
 * reference.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* A call to a worker made for a request. */
struct req_call {
	struct req		*req;
	struct worker_rpc	*rpc;
	void			(*done)(struct req *, json_t *);
	TAILQ_ENTRY(req_call)	 entry;
};

static struct reqs	 all_reqs = TAILQ_HEAD_INITIALIZER(all_reqs);

/* A request from client cl; msg is referenced. */
struct req *
req_create(struct client *cl, json_t *msg)
{
	struct req	*r;
	json_t		*id;

	r = xcalloc(1, sizeof *r);
	r->refs = 1;
	r->client = control_client_ref(cl);
	r->msg = json_incref(msg);
	id = json_object_get(msg, "id");
	if (id != NULL && (json_is_string(id) || json_is_integer(id)))
		r->id = json_incref(id);
	r->op = "?";
	r->started = util_now();
	TAILQ_INIT(&r->chans);
	TAILQ_INIT(&r->calls);
	TAILQ_INSERT_TAIL(&all_reqs, r, entry);
	return (r);
}

struct req *
req_ref(struct req *r)
{
	r->refs++;
	return (r);
}

/* Drop a reference; the last one frees the request. */
void
req_unref(struct req *r)
{
	if (r == NULL || --r->refs > 0)
		return;
	json_decref(r->id);
	json_decref(r->msg);
	control_client_unref(r->client);
	free(r);
}

/* Has the request been answered (or its client gone)? */
int
req_dead(struct req *r)
{
	return ((r->flags & REQ_DEAD) != 0);
}

/*
 * Let go of everything a request owns and mark it dead: detach its
 * channels, cancel its worker calls, free its op state. The caller's
 * reference (the request's own) is dropped.
 */
static void
req_finish(struct req *r)
{
	struct chan	*c;
	struct req_call	*k;
	void		(*data_free)(void *) = r->data_free;

	if (r->flags & REQ_DEAD)
		return;
	control_audit_request(r, NULL, NULL);	/* unless it was */
	r->flags |= REQ_DEAD;
	TAILQ_REMOVE(&all_reqs, r, entry);
	while ((c = TAILQ_FIRST(&r->chans)) != NULL) {
		TAILQ_REMOVE(&r->chans, c, rentry);
		c->req = NULL;
	}
	while ((k = TAILQ_FIRST(&r->calls)) != NULL) {
		TAILQ_REMOVE(&r->calls, k, entry);
		server_worker_rpc_cancel(k->rpc);
		free(k);
	}
	if (r->timer != NULL) {
		event_free(r->timer);
		r->timer = NULL;
	}
	r->data_free = NULL;
	if (data_free != NULL)
		data_free(r->data);
	r->data = NULL;
	control_client_check_finished(r->client);
	req_unref(r);
}

/* Link channel c to its owning request r. */
void
req_add_chan(struct req *r, struct chan *c)
{
	c->req = r;
	TAILQ_INSERT_TAIL(&r->chans, c, rentry);
}

/* Take c off its owning request, if any. */
void
req_remove_chan(struct chan *c)
{
	if (c->req != NULL) {
		TAILQ_REMOVE(&c->req->chans, c, rentry);
		c->req = NULL;
	}
}

/* Send an event about r (id added). */
void
req_event(struct req *r, json_t *ev)
{
	if (r->flags & REQ_DEAD)
		return;
	if (r->id != NULL)
		json_object_set(ev, "id", r->id);
	control_client_send(r->client, ev);
}

/* Send the final reply (ok:true added, reply stolen); r is done. */
void
req_reply(struct req *r, json_t *reply)
{
	if (!(r->flags & REQ_DEAD)) {
		if (r->id != NULL)
			json_object_set(reply, "id", r->id);
		json_object_set_new(reply, "ok", json_true());
		control_client_send(r->client, reply);
		control_audit_request(r, reply, NULL);
	}
	json_decref(reply);
	req_finish(r);
}

/* Is err the answer "no such file" to a request that may expect it? */
static int
req_expected_miss(struct req *r, json_t *err)
{
	const char	*code = json_string_value(json_object_get(err, "code"));
	const char	*e = json_string_value(json_object_get(err, "errno"));

	return ((r->flags & REQ_MISS_OK) && code != NULL && e != NULL &&
	    strcmp(code, "io_error") == 0 && strcmp(e, "ENOENT") == 0);
}

/*
 * The final reply (ok:true added, reply stolen) with n byte fields whose
 * bytes come from bufs[i] (moved out): they are written as the client
 * takes them, never held whole as JSON. r is done.
 */
void
req_reply_stream(struct req *r, json_t *reply, const char **names,
    struct evbuffer **bufs, int n)
{
	int	i;

	if (!(r->flags & REQ_DEAD)) {
		if (r->id != NULL)
			json_object_set(reply, "id", r->id);
		json_object_set_new(reply, "ok", json_true());
		control_audit_request(r, reply, NULL);
		control_client_send_stream(r->client, reply, names, bufs, n);
	} else {
		json_decref(reply);
		for (i = 0; i < n; i++)
			evbuffer_drain(bufs[i], evbuffer_get_length(bufs[i]));
	}
	req_finish(r);
}

/* Final error reply with an error object (stolen); r is done. */
void
req_error_json(struct req *r, json_t *err)
{
	json_t	*reply;

	if (!(r->flags & REQ_DEAD)) {
		if (!req_expected_miss(r, err))
			server_count_error(json_string_value(
			    json_object_get(err, "code")));
		control_audit_request(r, NULL, err);
		reply = json_object();
		if (r->id != NULL)
			json_object_set(reply, "id", r->id);
		json_object_set_new(reply, "ok", json_false());
		json_object_set(reply, "error", err);
		control_client_send(r->client, reply);
		json_decref(reply);
	}
	json_decref(err);
	req_finish(r);
}

/* Final error reply; r is done. */
void
req_error(struct req *r, const char *code, const char *fmt, ...)
{
	va_list	 ap;
	json_t	*e;

	va_start(ap, fmt);
	e = wire_verror(code, 0, fmt, ap);
	va_end(ap);
	req_error_json(r, e);
}
/* ---- field specs ---- */

/* Is v a non-empty array of strings? */
static int
req_is_argv(json_t *v)
{
	json_t	*a;
	size_t	 i;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return (0);
	json_array_foreach(v, i, a)
		if (!json_is_string(a))
			return (0);
	return (1);
}

/* Is v an object mapping names (no '=', not empty) to strings? */
static int
req_is_env(json_t *v)
{
	const char	*k;
	json_t		*a;

	if (!json_is_object(v))
		return (0);
	json_object_foreach(v, k, a)
		if (!json_is_string(a) || *k == '\0' || strchr(k, '=') != NULL)
			return (0);
	return (1);
}

/* Is v an object of whole numbers, 0 or more? Sets *bad to the key. */
static int
req_is_counts(json_t *v, const char **bad)
{
	const char	*k;
	json_t		*a;

	if (!json_is_object(v))
		return (0);
	json_object_foreach(v, k, a) {
		if (!json_is_integer(a) || json_integer_value(a) < 0) {
			*bad = k;
			return (0);
		}
	}
	return (1);
}

/*
 * Check one present field against its spec; 0, or -1 after replying
 * bad_request naming the field.
 */
static int
req_check_field(struct req *r, const struct req_field *f, json_t *v)
{
	const char	*bad = NULL;
	double		 d;

	switch (f->type) {
	case FIELD_STRING:
		if (!json_is_string(v))
			goto bad_string;
		if ((f->flags & FIELD_NONUL) &&
		    strlen(json_string_value(v)) != json_string_length(v))
			break;
		return (0);
	case FIELD_PATH:
		if (!json_is_string(v) || *json_string_value(v) != '/' ||
		    strlen(json_string_value(v)) != json_string_length(v))
			break;
		return (0);
	case FIELD_BOOL:
		if (!json_is_boolean(v)) {
			req_error(r, "bad_request", "field '%s' must be true "
			    "or false", f->name);
			return (-1);
		}
		return (0);
	case FIELD_OBJECT:
		if (!json_is_object(v)) {
			req_error(r, "bad_request", "field '%s' must be an "
			    "object", f->name);
			return (-1);
		}
		return (0);
	case FIELD_ARRAY:
		if (!json_is_array(v))
			break;
		return (0);
	case FIELD_SECONDS:
		d = json_is_number(v) ? json_number_value(v) : -1;
		if (!isfinite(d) || d < 0 || d > FIELD_MAX_SECONDS) {
			req_error(r, "bad_request", "field '%s' must be a "
			    "number of seconds, 0 to %d", f->name,
			    FIELD_MAX_SECONDS);
			return (-1);
		}
		return (0);
	case FIELD_COUNT:
		if (!json_is_integer(v) || json_integer_value(v) < f->min ||
		    (f->max != 0 && json_integer_value(v) > f->max)) {
			if (f->what != NULL)
				req_error(r, "bad_request",
				    "field '%s' must be %s", f->name, f->what);
			else if (f->max != 0)
				req_error(r, "bad_request", "field '%s' must "
				    "be a whole number, %lld to %lld", f->name,
				    (long long)f->min, (long long)f->max);
			else
				req_error(r, "bad_request", "field '%s' must "
				    "be a whole number, %lld or more", f->name,
				    (long long)f->min);
			return (-1);
		}
		return (0);
	case FIELD_ARGV:
		if (req_is_argv(v))
			return (0);
		break;
	case FIELD_ENV:
		if (req_is_env(v))
			return (0);
		break;
	case FIELD_COUNTS:
		if (req_is_counts(v, &bad))
			return (0);
		if (bad != NULL) {
			req_error(r, "bad_request", "field '%s.%s' must be a "
			    "whole number", f->name, bad);
			return (-1);
		}
		break;
	case FIELD_ANY:
		return (0);
	}
	req_error(r, "bad_request", "field '%s' must be %s", f->name,
	    f->what != NULL ? f->what : "a string");
	return (-1);

bad_string:
	req_error(r, "bad_request", "field '%s' must be a string", f->name);
	return (-1);
}

/*
 * Check r's fields against specs (ended by a NULL name): required ones
 * present, present ones well typed and in bounds. A null counts as
 * absent. 0, or -1 after replying bad_request (r is then done).
 */
int
req_check_fields(struct req *r, const struct req_field *specs)
{
	const struct req_field	*f;
	json_t			*v;

	for (f = specs; f != NULL && f->name != NULL; f++) {
		v = json_object_get(r->msg, f->name);
		if (v == NULL || json_is_null(v)) {
			if (f->flags & FIELD_REQUIRED) {
				req_error(r, "bad_request", "field '%s' is "
				    "required", f->name);
				return (-1);
			}
			continue;
		}
		if (req_check_field(r, f, v) != 0)
			return (-1);
	}
	return (0);
}

/* A field of the request, NULL when absent or null. */
json_t *
req_field(struct req *r, const char *name)
{
	json_t	*v = json_object_get(r->msg, name);

	return (v == NULL || json_is_null(v) ? NULL : v);
}

/* A checked string field, or NULL. */
const char *
req_string(struct req *r, const char *name)
{
	return (json_string_value(req_field(r, name)));
}

/* A checked number field, or def. */
double
req_number(struct req *r, const char *name, double def)
{
	json_t	*v = req_field(r, name);

	return (v != NULL ? json_number_value(v) : def);
}

/* A checked whole-number field, or def. */
json_int_t
req_int(struct req *r, const char *name, json_int_t def)
{
	json_t	*v = req_field(r, name);

	return (v != NULL ? json_integer_value(v) : def);
}

/* A checked boolean field, or def. */
int
req_bool(struct req *r, const char *name, int def)
{
	json_t	*v = req_field(r, name);

	return (v != NULL ? json_is_true(v) : def);
}

/*
 * The owner of what r makes on a worker (a session, a handle, a
 * workspace): the client's uid and this controller's id. The worker
 * stores it with the item. Caller owns it.
 */
json_t *
req_owner(struct req *r)
{
	return (json_pack("{s:I, s:s}", "uid", (json_int_t)
	    control_client_uid(r->client), "controller",
	    auth_controller_id()));
}

/* ---- calls to workers ---- */

static void
req_call_done(json_t *res, void *arg)
{
	struct req_call	*k = arg;
	struct req	*r = k->req;
	void		(*done)(struct req *, json_t *) = k->done;

	TAILQ_REMOVE(&r->calls, k, entry);
	free(k);
	done(r, res);
}

/*
 * Ask worker w (msg stolen) on behalf of r; done(r, res) gets the
 * worker's answer, or a worker_lost error, unless r is done first.
 */
void
req_rpc(struct req *r, struct worker *w, json_t *msg,
    void (*done)(struct req *, json_t *))
{
	struct req_call	*k;

	k = xcalloc(1, sizeof *k);
	k->req = r;
	k->done = done;
	TAILQ_INSERT_TAIL(&r->calls, k, entry);
	k->rpc = server_worker_rpc(w, msg, req_call_done, k);
}

/* Plain completion: the worker's answer is the reply. */
void
req_rpc_forward(struct req *r, json_t *res)
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

/* ---- a client's requests ---- */

/* How many requests of cl still owe a reply. */
int
req_client_pending(struct client *cl)
{
	struct req	*r;
	int		 n = 0;

	TAILQ_FOREACH(r, &all_reqs, entry)
		if (r->client == cl)
			n++;
	return (n);
}

/* The client went away: its channels hear of it, its requests end. */
void
req_client_gone(struct client *cl)
{
	struct req	*r, *r1;
	struct chan	*c;

	TAILQ_FOREACH_SAFE(r, &all_reqs, entry, r1) {
		if (r->client != cl)
			continue;
		while ((c = TAILQ_FIRST(&r->chans)) != NULL) {
			req_remove_chan(c);
			if (c->ops->owner_gone != NULL)
				c->ops->owner_gone(c);
		}
		req_finish(r);
	}
	chan_kinds_client_gone(cl);
}

/* The client's output drained: let its streams flow again. */
void
req_client_drained(struct client *cl)
{
	struct req	*r, *r1;
	struct chan	*c, *c1;

	TAILQ_FOREACH_SAFE(r, &all_reqs, entry, r1) {
		if (r->client != cl)
			continue;
		TAILQ_FOREACH_SAFE(c, &r->chans, rentry, c1) {
			if (c->ops->owner_drained != NULL)
				c->ops->owner_drained(c);
			if (control_client_dead(cl) ||
			    !control_client_writable(cl))
				return;
		}
	}
	chan_kinds_client_drained(cl);
	control_client_check_finished(cl);
}

/* Call fn on every live request (fn may end it). */
void
req_foreach(void (*fn)(struct req *, void *), void *arg)
{
	struct req	*r, *r1;

	TAILQ_FOREACH_SAFE(r, &all_reqs, entry, r1)
		fn(r, arg);
}

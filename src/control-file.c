/*
 * control-file.c: put, get and stat on the controller side.
 *
 * A put opens a CHAN_PUT channel and feeds it the request's inline data
 * or its raw payload: control.c moves the payload into the channel's
 * input with backpressure, so only a window of it is ever held here. The
 * worker replies (size and digest) once the file is in place.
 *
 * A get opens a CHAN_GET channel. Inline, the bytes are collected up to
 * CONTROL_MAX_INLINE (past it: too_large); raw, each chunk goes to the
 * client as a data event followed by its bytes while the client keeps
 * up, and is acknowledged only then, so the worker never runs more than
 * a window ahead. stat is an RPC.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* Reply with the worker's error if its end carries one; 1 if it did. */
static int
file_end_error(struct chan *c)
{
	json_t		*err = json_object_get(c->end, "error");
	struct req	*r;

	if (err == NULL)
		return (0);
	json_incref(err);
	r = c->req;
	req_remove_chan(c);
	chan_release(c);
	if (r != NULL)
		req_error_json(r, err);
	else
		json_decref(err);
	return (1);
}

/* Copy the named fields of the worker's end into reply. */
static void
file_end_fields(struct chan *c, json_t *reply, const char **fields)
{
	json_t	*v;

	for (; *fields != NULL; fields++)
		if ((v = json_object_get(c->end, *fields)) != NULL)
			json_object_set(reply, *fields, v);
}

/*
 * Who asks, and in which workspace (if any): the worker resolves the
 * workspace among its owner's.
 */
static void
file_add_owner(struct req *r, json_t *m)
{
	json_object_set_new(m, "owner", req_owner(r));
	if (req_field(r, "workspace") != NULL)
		json_object_set(m, "workspace", req_field(r, "workspace"));
}

/* ---- put ---- */

void
control_file_put(struct req *r)
{
	json_int_t	 bytes = req_int(r, "bytes", -1);
	struct evbuffer	*in;
	struct chan	*c;
	char		*cause = NULL;
	json_t		*open;
	int		 have;

	in = evbuffer_new();
	if ((have = util_json_get_bytes(r->msg, "data", in, &cause)) < 0) {
		evbuffer_free(in);
		req_error(r, "bad_request", "%s", cause);
		free(cause);
		return;
	}
	if (have && bytes >= 0) {
		evbuffer_free(in);
		req_error(r, "bad_request", "put takes 'data' or a raw payload "
		    "('bytes'), not both");
		return;
	}
	if (!have && bytes < 0) {
		evbuffer_free(in);
		req_error(r, "bad_request", "put needs 'data', 'data_b64' or a "
		    "raw payload ('bytes')");
		return;
	}
	if (have)
		bytes = (json_int_t)evbuffer_get_length(in);
	open = json_pack("{s:s, s:b, s:I}", "path", req_string(r, "path"),
	    "mkdir", req_bool(r, "mkdir", 0), "size", bytes);
	/* Without one the worker keeps a replaced file's mode (else 0644). */
	if (req_field(r, "mode") != NULL)
		json_object_set_new(open, "mode", json_integer(req_int(r,
		    "mode", 0644)));
	file_add_owner(r, open);
	control_workspace_pass(r, open);
	c = server_worker_chan_open(r->worker, &chan_put_ops, open);
	json_decref(open);
	req_add_chan(r, c);
	if (have) {
		if (bytes > 0)
			chan_input_buffer(c, in, (size_t)bytes);
		chan_input_eof(c);
	} else if (bytes > 0)
		control_client_set_sink(r->client, c);	/* eof when all came */
	else
		chan_input_eof(c);
	evbuffer_free(in);
}

/* chan_ops.output of a put: the file is in place, or it failed. */
static void
file_put_output(struct chan *c)
{
	static const char	*fields[] = { "size", "mode", "sha256", NULL };
	struct req		*r = c->req;
	json_t			*reply;

	if (!(c->flags & CHAN_ENDED) || file_end_error(c))
		return;
	reply = json_object();
	file_end_fields(c, reply, fields);
	req_remove_chan(c);
	chan_release(c);
	if (r != NULL)
		req_reply(r, reply);
	else
		json_decref(reply);
}

/* ---- get ---- */

void
control_file_get(struct req *r)
{
	struct chan	*c;
	json_t		*open;
	int		 raw = req_bool(r, "raw", 0);

	open = json_pack("{s:s, s:I}", "path", req_string(r, "path"),
	    "offset", req_int(r, "offset", 0));
	if (req_field(r, "length") != NULL)
		json_object_set(open, "length", req_field(r, "length"));
	if (!raw)
		json_object_set_new(open, "max",
		    json_integer(CONTROL_MAX_INLINE));
	file_add_owner(r, open);
	control_workspace_pass(r, open);
	c = server_worker_chan_open(r->worker, &chan_get_ops, open);
	json_decref(open);
	req_add_chan(r, c);
	if (raw)
		c->flags |= CHAN_RAW;
	else {
		/* Collected (and acked) up to the limit; past it, dropped. */
		c->flags |= CHAN_BUFFERED;
		c->max_output = CONTROL_MAX_INLINE;
	}
}

/* An inline get ended: the bytes go in the reply, as the client takes them. */
static void
file_get_inline_done(struct chan *c)
{
	static const char	*fields[] = { "size", "mode", "sha256", NULL };
	static const char	*names[] = { "data" };
	struct evbuffer		*bufs[1];
	struct req		*r;
	json_t			*reply;

	if (file_end_error(c))
		return;
	r = c->req;
	req_remove_chan(c);
	if (c->dropped[WIRE_OUT] > 0) {
		if (r != NULL)
			req_error(r, "too_large", "get %s on %s: more than the "
			    "inline limit of %d bytes (use raw)",
			    json_string_value(json_object_get(c->open,
			    "path")), server_worker_id(c->worker),
			    CONTROL_MAX_INLINE);
		chan_release(c);
		return;
	}
	reply = json_object();
	file_end_fields(c, reply, fields);
	bufs[0] = evbuffer_new();
	evbuffer_add_buffer(bufs[0], c->out[WIRE_OUT]);
	chan_release(c);
	if (r != NULL)
		req_reply_stream(r, reply, names, bufs, 1);
	else
		json_decref(reply);
	evbuffer_free(bufs[0]);
}

/*
 * Deliver a raw get's bytes to its client as data events while the
 * client keeps up; ack what went; finish once the end is delivered.
 */
static void
file_get_drain(struct chan *c)
{
	static const char	*fields[] = { "size", "mode", "sha256", NULL };
	struct evbuffer		*out = c->out[WIRE_OUT], *chunk;
	struct req		*r = c->req;
	size_t			 len;
	json_t			*ev, *reply;

	if (r == NULL || !(c->flags & CHAN_RAW))
		return;
	chunk = evbuffer_new();
	while ((len = evbuffer_get_length(out)) != 0 &&
	    control_client_writable(r->client)) {
		if (len > WIRE_CHUNK)
			len = WIRE_CHUNK;
		evbuffer_remove_buffer(out, chunk, len);
		ev = json_pack("{s:s}", "event", "data");
		if (r->id != NULL)
			json_object_set(ev, "id", r->id);
		control_client_send_raw(r->client, ev, chunk);
		json_decref(ev);
	}
	evbuffer_free(chunk);
	chan_ack(c, 0);
	if (!(c->flags & CHAN_ENDED) || evbuffer_get_length(out) != 0 ||
	    file_end_error(c))
		return;
	reply = json_object();
	file_end_fields(c, reply, fields);
	req_remove_chan(c);
	chan_release(c);
	req_reply(r, reply);
}

/* ---- stat ---- */

void
control_file_stat(struct req *r)
{
	json_t	*m;

	/* A probe for a path that is not there is no error of ours. */
	r->flags |= REQ_MISS_OK;
	m = json_pack("{s:s, s:s}", "op", "stat", "path", req_string(r,
	    "path"));
	file_add_owner(r, m);
	control_workspace_pass(r, m);
	req_rpc(r, r->worker, m, req_rpc_forward);
}

/* ---- the kinds ---- */

/* chan_ops.output of a get: bytes or the end arrived. */
static void
file_get_output(struct chan *c)
{
	if (c->flags & CHAN_RAW)
		file_get_drain(c);
	else if (c->flags & CHAN_ENDED)
		file_get_inline_done(c);
}

/* chan_ops.owner_gone: nobody waits for the transfer: stop it. */
static void
file_owner_gone(struct chan *c)
{
	chan_cancel(c);
}

/* chan_ops.lost: the worker is gone for good. */
static void
file_lost(struct chan *c, const char *code, const char *why)
{
	struct req	*r = c->req;

	if (r == NULL)
		return;
	req_remove_chan(c);
	req_error(r, code, "%s", why);
}

const struct chan_ops chan_put_ops = {
	.name = "put",
	.kind = CHAN_PUT,
	.prefix = "h-",
	.in_window = WIRE_FILE_WINDOW,
	.out_window = WIRE_WINDOW,
	.output = file_put_output,
	.input_acked = file_put_output,
	.lost = file_lost,
	.owner_gone = file_owner_gone,
};

const struct chan_ops chan_get_ops = {
	.name = "get",
	.kind = CHAN_GET,
	.prefix = "h-",
	.in_window = WIRE_WINDOW,
	.out_window = WIRE_FILE_WINDOW,
	.output = file_get_output,
	.lost = file_lost,
	.owner_gone = file_owner_gone,
	.owner_drained = file_get_drain,
};

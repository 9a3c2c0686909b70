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

/*
 * Get the request's "path": present, a string without NUL bytes, and
 * absolute. Replies bad_request (freeing r) and returns NULL otherwise.
 */
static const char *
file_get_path(struct req *r)
{
	const char	*path = NULL;
	json_t		*v;

	switch (req_get_string(r, "path", &path)) {
	case -1:
		return (NULL);
	case 0:
		req_error(r, "bad_request", "field 'path' is required");
		return (NULL);
	}
	v = json_object_get(r->msg, "path");
	if (strlen(path) != json_string_length(v) || *path != '/') {
		req_error(r, "bad_request", "field 'path' must be an absolute "
		    "path");
		return (NULL);
	}
	return (path);
}

/* Link c to its request r. */
static void
file_chan_link(struct req *r, struct chan *c)
{
	c->req = r;
	TAILQ_INSERT_TAIL(&r->chans, c, rentry);
}

/* The request of a transfer is answered: take c off it. */
static struct req *
file_chan_unlink(struct chan *c)
{
	struct req	*r = c->req;

	if (r != NULL) {
		TAILQ_REMOVE(&r->chans, c, rentry);
		c->req = NULL;
	}
	return (r);
}

/* Reply with the worker's error if its end carries one; 1 if it did. */
static int
file_end_error(struct chan *c)
{
	json_t		*err = json_object_get(c->end, "error");
	struct req	*r;

	if (err == NULL)
		return (0);
	json_incref(err);
	r = file_chan_unlink(c);
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

/* ---- put ---- */

void
control_file_put(struct req *r)
{
	const char	*path;
	json_int_t	 mode = 0644, bytes = -1;
	int		 mk = 0, have;
	struct worker	*w;
	struct evbuffer	*in;
	struct chan	*c;
	char		*cause = NULL;
	json_t		*open;

	if ((path = file_get_path(r)) == NULL ||
	    req_get_int(r, "mode", &mode) < 0 ||
	    req_get_bool(r, "mkdir", &mk) < 0 ||
	    req_get_int(r, "bytes", &bytes) < 0)
		return;
	if (mode > 07777) {
		req_error(r, "bad_request", "field 'mode' must be permission "
		    "bits, 0 to 4095 (07777)");
		return;
	}
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
	if ((w = req_get_worker(r)) == NULL) {
		evbuffer_free(in);
		return;
	}
	if (have)
		bytes = (json_int_t)evbuffer_get_length(in);
	open = json_pack("{s:s, s:I, s:b, s:I}", "path", path, "mode", mode,
	    "mkdir", mk, "size", bytes);
	c = server_worker_chan_open(w, CHAN_PUT, open);
	json_decref(open);
	file_chan_link(r, c);
	if (have) {
		if (bytes > 0)
			chan_input(c, evbuffer_pullup(in, -1), (size_t)bytes);
		chan_input_eof(c);
	} else if (bytes > 0)
		control_client_set_sink(r->client, c);	/* payload_done ends it */
	else
		chan_input_eof(c);
	evbuffer_free(in);
}

/* The raw payload of a put has all been queued: the input ends. */
void
control_cmd_payload_done(struct client *cl, struct chan *c)
{
	(void)cl;
	if (c->kind == CHAN_PUT)
		chan_input_eof(c);
}

/* The worker ended a put: the file is in place, or it failed. */
static void
file_put_output(struct chan *c)
{
	static const char	*fields[] = { "size", "sha256", NULL };
	struct req		*r;
	json_t			*reply;

	if (!(c->flags & CHAN_ENDED) || file_end_error(c))
		return;
	reply = json_object();
	file_end_fields(c, reply, fields);
	r = file_chan_unlink(c);
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
	const char	*path;
	json_int_t	 offset = 0, length = -1;
	int		 raw = 0;
	struct worker	*w;
	struct chan	*c;
	json_t		*open;

	if ((path = file_get_path(r)) == NULL ||
	    req_get_int(r, "offset", &offset) < 0 ||
	    req_get_int(r, "length", &length) < 0 ||
	    req_get_bool(r, "raw", &raw) < 0)
		return;
	if ((w = req_get_worker(r)) == NULL)
		return;
	open = json_pack("{s:s, s:I}", "path", path, "offset", offset);
	if (length >= 0)
		json_object_set_new(open, "length", json_integer(length));
	if (!raw)
		json_object_set_new(open, "max",
		    json_integer(CONTROL_MAX_INLINE));
	c = server_worker_chan_open(w, CHAN_GET, open);
	json_decref(open);
	file_chan_link(r, c);
	if (raw)
		c->flags |= CHAN_RAW;
	else {
		/* Collected (and acked) up to the limit; past it, dropped. */
		c->flags |= CHAN_BUFFERED;
		c->max_output = CONTROL_MAX_INLINE;
	}
}

/* An inline get ended: the bytes go in the reply. */
static void
file_get_inline_done(struct chan *c)
{
	static const char	*fields[] = { "size", "mode", "sha256", NULL };
	struct evbuffer		*out = c->out[WIRE_OUT];
	size_t			 len = evbuffer_get_length(out);
	struct req		*r;
	json_t			*reply;

	if (file_end_error(c))
		return;
	r = file_chan_unlink(c);
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
	util_json_set_bytes(reply, "data", evbuffer_pullup(out, -1), len);
	chan_release(c);
	if (r != NULL)
		req_reply(r, reply);
	else
		json_decref(reply);
}

/*
 * Deliver a raw get's bytes to its client as data events while the
 * client keeps up; ack what went; finish once the end is delivered.
 */
void
control_file_get_drain(struct chan *c)
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
		control_client_send_raw(r->client, ev, NULL, 0, chunk);
		json_decref(ev);
	}
	evbuffer_free(chunk);
	chan_ack(c, 0);
	if (!(c->flags & CHAN_ENDED) || evbuffer_get_length(out) != 0 ||
	    file_end_error(c))
		return;
	reply = json_object();
	file_end_fields(c, reply, fields);
	r = file_chan_unlink(c);
	chan_release(c);
	req_reply(r, reply);
}

/* ---- stat ---- */

void
control_file_stat(struct req *r)
{
	const char	*path;
	struct worker	*w;

	if ((path = file_get_path(r)) == NULL ||
	    (w = req_get_worker(r)) == NULL)
		return;
	control_cmd_rpc(r, w, json_pack("{s:s, s:s}", "op", "stat", "path",
	    path), control_cmd_rpc_forward);
}

/* ---- channel hooks ---- */

/* The worker started a transfer: nothing to tell the client. */
void
control_file_started(struct chan *c, json_t *msg)
{
	(void)c;
	(void)msg;
}

/* Output, the end, or an input ack arrived on a transfer. */
void
control_file_output(struct chan *c)
{
	if (c->kind == CHAN_PUT)
		file_put_output(c);
	else if (c->flags & CHAN_RAW)
		control_file_get_drain(c);
	else if (c->flags & CHAN_ENDED)
		file_get_inline_done(c);
}

/* A transfer channel is being freed: it holds nothing of its own. */
void
control_file_freed(struct chan *c)
{
	(void)c;
}

/*
 * chan.c: the controller's side of one channel (a command, a session or
 * a file transfer on a worker). Output arrives with absolute offsets and
 * is acknowledged only once it has been consumed: delivered into a
 * client's buffer, collected for a final reply, or read through a
 * handle. The worker sends at most a window beyond the last ack, so
 * memory here stays bounded and a slow client slows only its own stream.
 * Input goes the other way with the same rule.
 *
 * What a channel means to clients is its kind's business: each kind
 * (control-exec.c, control-session.c, control-file.c) gives a struct
 * chan_ops of hooks, and this file calls them and nothing else of the
 * control code.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

#define ACK_EVERY	(64 * 1024)

/* Every kind, for the wire's kind numbers and the per-kind hooks. */
static const struct chan_ops *chan_kinds[] = {
	&chan_exec_ops, &chan_session_ops, &chan_put_ops, &chan_get_ops
};
#define NKINDS	(sizeof chan_kinds / sizeof chan_kinds[0])

/* The kind with this wire number, or NULL. */
static const struct chan_ops *
chan_kind_find(int kind)
{
	size_t	i;

	for (i = 0; i < NKINDS; i++)
		if (chan_kinds[i]->kind == kind)
			return (chan_kinds[i]);
	return (NULL);
}

/* A control client left: every kind that keeps per-client state hears. */
void
chan_kinds_client_gone(struct client *cl)
{
	size_t	i;

	for (i = 0; i < NKINDS; i++)
		if (chan_kinds[i]->client_gone != NULL)
			chan_kinds[i]->client_gone(cl);
}

/* A control client can take more: kinds with per-client output send it. */
void
chan_kinds_client_drained(struct client *cl)
{
	size_t	i;

	for (i = 0; i < NKINDS; i++) {
		if (chan_kinds[i]->client_drained != NULL)
			chan_kinds[i]->client_drained(cl);
		if (control_client_dead(cl) || !control_client_writable(cl))
			return;
	}
}

/* A new channel of ops' kind; the caller links it into its worker. */
struct chan *
chan_create(struct worker *w, uint32_t ch, const struct chan_ops *ops)
{
	struct chan	*c;
	int		 i;

	c = xcalloc(1, sizeof *c);
	c->worker = w;
	c->ch = ch;
	c->ops = ops;
	for (i = 0; i < WIRE_NSTREAMS; i++)
		c->out[i] = evbuffer_new();
	c->in = evbuffer_new();
	auth_handle(server_worker_id(w), ops->prefix, c->handle,
	    sizeof c->handle);
	return (c);
}

/* Free a channel; its kind forgets it first. */
void
chan_free(struct chan *c)
{
	int	i;

	if (c == NULL)
		return;
	if (c->worker != NULL)
		server_worker_chan_unlink(c->worker, c);
	control_client_sink_gone(c);
	if (c->ops->freed != NULL)
		c->ops->freed(c);
	req_remove_chan(c);
	for (i = 0; i < WIRE_NSTREAMS; i++)
		evbuffer_free(c->out[i]);
	evbuffer_free(c->in);
	json_decref(c->open);
	json_decref(c->end);
	json_decref(c->owner);
	free(c);
}

/*
 * Bytes of buffered stream s held beyond max_output, unacknowledged. Only
 * a channel with CHAN_HOLD has any: a command that may yield, between
 * passing max_output and the yield that this brings on at once.
 */
static size_t
chan_held(struct chan *c, int s)
{
	size_t	len = evbuffer_get_length(c->out[s]);

	return (len > c->max_output ? len - c->max_output : 0);
}

/* Tell the worker how far stream s has been consumed. */
static void
chan_send_ack(struct chan *c, int s, int force)
{
	uint64_t	 consumed;
	json_t		*m;

	consumed = c->recv[s] - evbuffer_get_length(c->out[s]);
	if (c->flags & CHAN_BUFFERED) {
		/* What the reply will carry is consumed on arrival. */
		consumed = c->recv[s] - chan_held(c, s);
	}
	if (consumed <= c->acked[s])
		return;
	if (!force && consumed - c->acked[s] < ACK_EVERY &&
	    evbuffer_get_length(c->out[s]) != 0)
		return;
	/* Not sent while away: chan_resume acks it then. */
	if (!server_worker_connected(c->worker))
		return;
	c->acked[s] = consumed;
	m = wire_chan_msg(WIRE_T_ACK, c->ch);
	json_object_set_new(m, "s", json_integer(s));
	json_object_set_new(m, "off", json_integer((json_int_t)consumed));
	server_worker_send(c->worker, m);
	json_decref(m);
}

/* Acknowledge what has been consumed on every output stream. */
void
chan_ack(struct chan *c, int force)
{
	chan_send_ack(c, WIRE_OUT, force);
	chan_send_ack(c, WIRE_ERR, force);
}

/*
 * Set name (or name_b64) on ev from data, holding back an incomplete
 * UTF-8 sequence at the end for the next event of stream s, unless
 * final. Returns how many bytes were set (0: all held back).
 */
size_t
chan_event_bytes(json_t *ev, const char *name, struct chan *c, int s,
    const uint8_t *data, size_t len, int final)
{
	uint8_t		*buf;
	size_t		 n, whole;
	int		 valid;

	n = c->ncarry[s] + len;
	buf = xmalloc(n + 1);
	memcpy(buf, c->carry[s], c->ncarry[s]);
	memcpy(buf + c->ncarry[s], data, len);
	c->ncarry[s] = 0;
	whole = util_utf8_complete(buf, n, &valid);
	if (!valid || final)
		whole = n;
	else if (whole < n) {
		c->ncarry[s] = n - whole;
		memcpy(c->carry[s], buf + whole, n - whole);
	}
	if (whole != 0)
		util_json_set_bytes(ev, name, buf, whole);
	free(buf);
	return (whole);
}

/*
 * Output bytes [off, off+len) of stream s arrived. Returns -1 when the
 * worker sent past the window it was granted (it is then cut off: a
 * worker may not make the controller hold more than that).
 */
int
chan_data(struct chan *c, int s, uint64_t off, const uint8_t *data,
    size_t len)
{
	uint64_t	skip, keep;

	if (off > c->recv[s] && c->ops->gaps) {
		/*
		 * The worker skipped what this controller fell behind on (a
		 * session seen from several): what is held goes too, and a
		 * client that wants it replays it from the worker's ring.
		 */
		log_info("worker %s: channel %u stream %d: skips %llu bytes",
		    server_worker_id(c->worker), c->ch, s,
		    (unsigned long long)(off - c->recv[s]));
		evbuffer_drain(c->out[s], evbuffer_get_length(c->out[s]));
		c->recv[s] = c->acked[s] = off;
	} else if (off > c->recv[s]) {
		log_warnx("worker %s: channel %u stream %d: gap at %llu "
		    "(expected %llu)", server_worker_id(c->worker), c->ch, s,
		    (unsigned long long)off, (unsigned long long)c->recv[s]);
		return (0);
	}
	skip = c->recv[s] - off;	/* resent after a reconnect */
	if (skip >= len)
		return (0);
	data += skip;
	len -= skip;
	if (c->recv[s] + len - c->acked[s] > c->ops->out_window) {
		log_warnx("worker %s: channel %u stream %d: %llu bytes past "
		    "the acknowledged offset, over the window of %zu",
		    server_worker_id(c->worker), c->ch, s, (unsigned long long)
		    (c->recv[s] + len - c->acked[s]), c->ops->out_window);
		return (-1);
	}
	c->recv[s] += len;
	server_stats.bytes_in += len;

	if (c->flags & CHAN_BUFFERED) {
		keep = evbuffer_get_length(c->out[s]) < c->max_output ?
		    c->max_output - evbuffer_get_length(c->out[s]) : 0;
		if (keep > len || (c->flags & CHAN_HOLD))
			keep = len;
		evbuffer_add(c->out[s], data, keep);
		c->dropped[s] += len - keep;
		chan_send_ack(c, s, 0);
	} else
		evbuffer_add(c->out[s], data, len);
	if (c->ops->output != NULL)
		c->ops->output(c);
	return (0);
}

/* Is buffered output past max_output held back (see chan_held)? */
int
chan_over_max(struct chan *c)
{
	return (chan_held(c, WIRE_OUT) > 0 || chan_held(c, WIRE_ERR) > 0);
}

/*
 * Move up to max bytes of stream s's output into dst (consuming them and
 * acking); a UTF-8 character cut in two by max is left whole for the
 * next taker. Returns how many moved.
 */
size_t
chan_take_buffer(struct chan *c, int s, size_t max, struct evbuffer *dst)
{
	struct evbuffer_ptr	ptr;
	size_t			len = evbuffer_get_length(c->out[s]), k;
	uint8_t			tail[4];

	if (len > max) {
		k = max < sizeof tail ? max : sizeof tail;
		evbuffer_ptr_set(c->out[s], &ptr, max - k, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(c->out[s], &ptr, tail, k);
		k = util_utf8_cut(tail, k);
		len = k < max ? max - k : max;
	}
	evbuffer_remove_buffer(c->out[s], dst, len);
	chan_send_ack(c, s, 1);
	return (len);
}

/*
 * Take up to max bytes of stream s's output for a reply (consuming it)
 * as a JSON object with the bytes under "stdout" or "stderr".
 */
json_t *
chan_take_output(struct chan *c, int s, size_t max)
{
	struct evbuffer	*b = evbuffer_new();
	size_t		 len = chan_take_buffer(c, s, max, b);
	json_t		*o;

	o = json_object();
	util_json_set_bytes(o, s == WIRE_ERR ? "stderr" : "stdout",
	    evbuffer_pullup(b, -1), len);
	evbuffer_free(b);
	return (o);
}

/* Consume n bytes of stream s (they were delivered) and ack them. */
void
chan_consume(struct chan *c, int s, size_t n)
{
	evbuffer_drain(c->out[s], n);
	chan_send_ack(c, s, 0);
}

/* Queue input for the worker; it is sent as the window allows. */
void
chan_input(struct chan *c, const void *data, size_t len)
{
	evbuffer_add(c->in, data, len);
	chan_flush_input(c);
}

/* Move n bytes of src into the channel's input, without copying them. */
void
chan_input_buffer(struct chan *c, struct evbuffer *src, size_t n)
{
	evbuffer_remove_buffer(src, c->in, n);
	chan_flush_input(c);
}

/* No more input after what is queued. */
void
chan_input_eof(struct chan *c)
{
	c->in_eof = 1;
	chan_flush_input(c);
}

/* Input queued and not yet acknowledged by the worker. */
size_t
chan_input_backlog(struct chan *c)
{
	return (evbuffer_get_length(c->in));
}

/* Send queued input within the window, and the eof after it. */
void
chan_flush_input(struct chan *c)
{
	uint64_t	 end = c->in_base + evbuffer_get_length(c->in);
	uint64_t	 limit = c->in_base + c->ops->in_window;
	size_t		 n;
	json_t		*m;

	if (!server_worker_connected(c->worker))
		return;
	if (limit > end)
		limit = end;
	while (c->in_sent < limit && server_worker_writable(c->worker)) {
		n = (size_t)(limit - c->in_sent);
		if (n > WIRE_CHUNK)
			n = WIRE_CHUNK;
		server_worker_send_buf(c->worker, WIRE_IN, c->ch, c->in_sent,
		    c->in, (size_t)(c->in_sent - c->in_base), n);
		c->in_sent += n;
		server_stats.bytes_out += n;
	}
	if (c->in_eof && !c->in_eof_sent && c->in_sent == end) {
		m = wire_chan_msg(WIRE_T_EOF, c->ch);
		json_object_set_new(m, "off", json_integer((json_int_t)end));
		server_worker_send(c->worker, m);
		json_decref(m);
		c->in_eof_sent = 1;
	}
}

/* The worker has consumed input up to off. */
void
chan_input_acked(struct chan *c, uint64_t off)
{
	uint64_t	end = c->in_base + evbuffer_get_length(c->in);

	if (off <= c->in_base || off > end)
		return;
	evbuffer_drain(c->in, (size_t)(off - c->in_base));
	c->in_base = off;
	chan_flush_input(c);
	control_client_sink_drained(c);
	if (c->ops->input_acked != NULL)
		c->ops->input_acked(c);
}

/*
 * The worker is back (or newly announced this channel): resend input
 * from what it has, and expect output again from what we acked.
 */
void
chan_resume(struct chan *c, json_t *a)
{
	uint64_t	in = (uint64_t)json_integer_value(json_object_get(a,
			    "in"));
	json_t		*out = json_object_get(a, "out");
	int		s;

	/* An adopted channel's input goes on from what the worker has. */
	if (c->in_base == 0 && evbuffer_get_length(c->in) == 0 && in > 0)
		c->in_base = c->in_sent = in;
	if (in > c->in_base && in <= c->in_base + evbuffer_get_length(c->in))
		chan_input_acked(c, in);
	c->in_sent = c->in_base;
	if (c->in_eof_sent && !json_is_true(json_object_get(a, "eof")))
		c->in_eof_sent = 0;
	/* An adopted channel starts where the worker's acks stand. */
	if (json_is_array(out) && c->recv[WIRE_OUT] == 0) {
		for (s = WIRE_OUT; s <= WIRE_ERR; s++)
			c->recv[s] = c->acked[s] = (uint64_t)
			    json_integer_value(json_array_get(out, (size_t)s));
	}
	/* What we consumed but could not ack while away. */
	chan_ack(c, 1);
	chan_flush_input(c);
}

/* The worker started the channel's program. */
void
chan_started(struct chan *c, json_t *msg)
{
	if (c->ops->started != NULL)
		c->ops->started(c, msg);
}

/* A message the kind interprets (a session's "info"). */
void
chan_info(struct chan *c, json_t *msg)
{
	if (c->ops->info != NULL)
		c->ops->info(c, msg);
}

/* The worker says the channel ended; msg holds the result. */
void
chan_end(struct chan *c, json_t *msg)
{
	if (c->flags & CHAN_ENDED)
		return;
	c->flags |= CHAN_ENDED;
	json_decref(c->end);
	c->end = json_incref(msg);
	if (c->ops->output != NULL)
		c->ops->output(c);
}

/* Tell the worker to forget the channel (msg type) and free it. */
static void
chan_close(struct chan *c, enum wire_type type)
{
	json_t	*m;

	m = wire_chan_msg(type, c->ch);
	server_worker_send(c->worker, m);
	json_decref(m);
	chan_free(c);
}

/* The worker is done with the channel for good: tell it to forget. */
void
chan_release(struct chan *c)
{
	chan_close(c, WIRE_T_RELEASE);
}

/* Stop a channel nobody waits for: the worker kills and forgets it. */
void
chan_cancel(struct chan *c)
{
	chan_close(c, WIRE_T_CANCEL);
}

/* The worker is gone for good: the kind fails whoever waits. */
void
chan_lost(struct chan *c, const char *code, const char *why)
{
	if (c->ops->lost != NULL)
		c->ops->lost(c, code, why);
	chan_free(c);
}

/*
 * A channel the worker announced that this controller does not know (it
 * restarted). Its kind decides whether it lives on; NULL when not (the
 * caller cancels it on the worker).
 */
struct chan *
chan_adopt(struct worker *w, uint32_t ch, json_t *a)
{
	const struct chan_ops	*ops;
	const char		*handle;
	struct chan		*c;

	ops = chan_kind_find((int)json_integer_value(json_object_get(a,
	    "kind")));
	handle = json_string_value(json_object_get(a, "handle"));
	if (ops == NULL || ops->adopt == NULL || handle == NULL ||
	    strlen(handle) >= sizeof c->handle)
		return (NULL);
	c = chan_create(w, ch, ops);
	snprintf(c->handle, sizeof c->handle, "%s", handle);
	c->flags |= CHAN_HANDLE | CHAN_SENT;
	/* Not one of ours (another controller's, or invented). */
	if (!auth_handle_ok(server_worker_id(w), handle))
		c->flags |= CHAN_FOREIGN;
	/* Its owner, as stored on the worker; root's alone if not ours. */
	else if (json_is_object(json_object_get(a, "owner")))
		c->owner = json_incref(json_object_get(a, "owner"));
	if (json_is_true(json_object_get(a, "stdin_open")))
		c->flags |= CHAN_STDIN_OPEN;
	if (ops->adopt(c, a) != 0) {
		c->worker = NULL;	/* never linked */
		chan_free(c);
		return (NULL);
	}
	chan_resume(c, a);
	log_info("worker %s: adopted %s %s%s", server_worker_id(w), ops->name,
	    handle, (c->flags & CHAN_FOREIGN) ? " (not made here)" : "");
	return (c);
}

/* Find the channel of kind ops named by a handle, in any worker. */
struct chan *
chan_find_handle(const char *handle, const struct chan_ops *ops)
{
	struct worker	*w;
	struct chan	*c;

	for (w = server_worker_next(NULL); w != NULL;
	    w = server_worker_next(w)) {
		TAILQ_FOREACH(c, server_worker_chan_list(w), wentry) {
			if (c->ops == ops && strcmp(c->handle, handle) == 0)
				return (c);
		}
	}
	return (NULL);
}

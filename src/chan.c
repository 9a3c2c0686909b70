/*
 * chan.c: the controller's side of one channel (a command, a session or
 * a file transfer on a worker). Output arrives with absolute offsets and
 * is acknowledged only once it has been consumed: delivered into a
 * client's buffer, collected for a final reply, or read through a
 * handle. The worker sends at most a window beyond the last ack, so
 * memory here stays bounded and a slow client slows only its own stream.
 * Input goes the other way with the same rule.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

#define ACK_EVERY	(64 * 1024)

/* A new channel; the caller links it into its worker. */
struct chan *
chan_create(struct worker *w, uint32_t ch, int kind)
{
	struct chan	*c;
	int		 i;

	c = xcalloc(1, sizeof *c);
	c->worker = w;
	c->ch = ch;
	c->kind = kind;
	for (i = 0; i < WIRE_NSTREAMS; i++)
		c->out[i] = evbuffer_new();
	c->in = evbuffer_new();
	/* Sessions are named s-..., everything else h-... */
	snprintf(c->handle, sizeof c->handle, "%s",
	    kind == CHAN_SESSION ? "s-" : "h-");
	util_random_hex(c->handle + 2, 17);
	return (c);
}

/* Free a channel: the caller has detached it from its request. */
void
chan_free(struct chan *c)
{
	int	i;

	if (c == NULL)
		return;
	if (c->worker != NULL)
		server_worker_chan_unlink(c->worker, c);
	control_cmd_chan_freed(c);
	for (i = 0; i < WIRE_NSTREAMS; i++)
		evbuffer_free(c->out[i]);
	evbuffer_free(c->in);
	if (c->timer != NULL)
		event_free(c->timer);
	json_decref(c->open);
	json_decref(c->end);
	free(c);
}

/*
 * Bytes of buffered stream s held beyond max_output, unacknowledged. Only
 * a command that may yield has any, between passing max_output and the
 * yield that this brings on at once (chan_data).
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
	m = json_pack("{s:s, s:I, s:i, s:I}", "t", "ack", "ch",
	    (json_int_t)c->ch, "s", s, "off", (json_int_t)consumed);
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
chan_event_bytes(json_t *ev, struct chan *c, int s, const uint8_t *data,
    size_t len, int final)
{
	const char	*name = "data";
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
 * Move stream output to the owning client as events while it keeps up;
 * then ack what went.
 */
void
chan_drain_to(struct chan *c, struct client *cl)
{
	int		 s;
	size_t		 len;
	json_t		*ev;
	uint8_t		*p;

	for (s = WIRE_OUT; s <= WIRE_ERR; s++) {
		while ((len = evbuffer_get_length(c->out[s])) != 0 &&
		    control_client_writable(cl)) {
			if (len > WIRE_CHUNK)
				len = WIRE_CHUNK;
			p = evbuffer_pullup(c->out[s], (ssize_t)len);
			ev = control_cmd_stream_event(c, s);
			if (chan_event_bytes(ev, c, s, p, len, 0) != 0)
				req_event(c->req, ev);
			json_decref(ev);
			evbuffer_drain(c->out[s], len);
		}
		chan_send_ack(c, s, 0);
	}
	if ((c->flags & CHAN_ENDED) && evbuffer_get_length(c->out[1]) == 0 &&
	    evbuffer_get_length(c->out[2]) == 0)
		control_cmd_chan_done(c);
}

/* Output bytes [off, off+len) of stream s arrived. */
void
chan_data(struct chan *c, int s, uint64_t off, const uint8_t *data,
    size_t len)
{
	uint64_t	skip, keep;

	if (off > c->recv[s]) {
		log_warnx("worker %s: channel %u stream %d: gap at %llu "
		    "(expected %llu)", server_worker_id(c->worker), c->ch, s,
		    (unsigned long long)off, (unsigned long long)c->recv[s]);
		return;
	}
	skip = c->recv[s] - off;	/* resent after a reconnect */
	if (skip >= len)
		return;
	data += skip;
	len -= skip;
	c->recv[s] += len;
	server_stats.bytes_in += len;

	if (c->flags & CHAN_BUFFERED) {
		keep = evbuffer_get_length(c->out[s]) < c->max_output ?
		    c->max_output - evbuffer_get_length(c->out[s]) : 0;
		if (keep > len || c->timer != NULL)	/* may yield: keep all */
			keep = len;
		/*
		 * Past max_output, a command that may yield yields now: its
		 * output goes on to reads instead of being dropped, and the
		 * command does not wait on it until yield_after.
		 */
		if (c->timer != NULL && evbuffer_get_length(c->out[s]) + keep >
		    c->max_output) {
			evtimer_del(c->timer);
			event_active(c->timer, EV_TIMEOUT, 0);
		}
		evbuffer_add(c->out[s], data, keep);
		c->dropped[s] += len - keep;
		chan_send_ack(c, s, 0);
		return;
	}
	evbuffer_add(c->out[s], data, len);
	if ((c->flags & CHAN_STREAM) && c->req != NULL)
		chan_drain_to(c, c->req->client);
	else
		control_cmd_chan_output(c);
}

/*
 * Take up to max bytes of stream s's output for a reply (consuming it)
 * as a JSON string, or NULL if there is none; the caller sets it.
 */
json_t *
chan_take_output(struct chan *c, int s, size_t max)
{
	size_t	len = evbuffer_get_length(c->out[s]), whole;
	json_t	*o;
	int	valid;

	if (len > max) {
		/* Leave a character cut in two for the next taker whole. */
		whole = util_utf8_complete(evbuffer_pullup(c->out[s],
		    (ssize_t)max), max, &valid);
		len = valid && whole > 0 ? whole : max;
	}
	o = json_object();
	util_json_set_bytes(o, s == WIRE_ERR ? "stderr" : "stdout",
	    evbuffer_pullup(c->out[s], (ssize_t)len), len);
	evbuffer_drain(c->out[s], len);
	chan_send_ack(c, s, 1);
	return (o);
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
	uint64_t	 limit = c->in_base + (c->kind == CHAN_PUT ?
	    WIRE_FILE_WINDOW : WIRE_WINDOW);
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
		m = json_pack("{s:s, s:I, s:I}", "t", "eof", "ch",
		    (json_int_t)c->ch, "off", (json_int_t)end);
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
	control_cmd_chan_input_acked(c);
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

/* The worker says the channel ended; msg holds the result. */
void
chan_end(struct chan *c, json_t *msg)
{
	if (c->flags & CHAN_ENDED)
		return;
	c->flags |= CHAN_ENDED;
	json_decref(c->end);
	c->end = json_incref(msg);
	if (c->kind == CHAN_EXEC && server_stats.execs_running > 0)
		server_stats.execs_running--;
	if ((c->flags & CHAN_STREAM) && c->req != NULL)
		chan_drain_to(c, c->req->client);
	else
		control_cmd_chan_output(c);
}

/* The worker is done with the channel for good: tell it to forget. */
void
chan_release(struct chan *c)
{
	json_t	*m;

	m = json_pack("{s:s, s:I}", "t", "release", "ch", (json_int_t)c->ch);
	server_worker_send(c->worker, m);
	json_decref(m);
	chan_free(c);
}

/* Stop a channel nobody waits for: the worker kills and forgets it. */
void
chan_cancel(struct chan *c)
{
	json_t	*m;

	if (!(c->flags & CHAN_ENDED) && c->kind == CHAN_EXEC &&
	    server_stats.execs_running > 0)
		server_stats.execs_running--;
	m = json_pack("{s:s, s:I}", "t", "cancel", "ch", (json_int_t)c->ch);
	server_worker_send(c->worker, m);
	json_decref(m);
	chan_free(c);
}

/* The worker is gone for good: fail the owner with code. */
void
chan_lost(struct chan *c, const char *code, const char *why)
{
	if (!(c->flags & CHAN_ENDED) && c->kind == CHAN_EXEC &&
	    server_stats.execs_running > 0)
		server_stats.execs_running--;
	control_cmd_chan_lost(c, code, why);
	chan_free(c);
}

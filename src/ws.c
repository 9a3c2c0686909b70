/*
 * ws.c: a WebSocket connection, wslay's event API over a bufferevent
 * (plain or TLS), used by both the controller and the worker once the
 * HTTP upgrade is done. It sends pings, notices a silent peer, bounds
 * message size, and reports its backlog so producers can hold back.
 *
 * The object is freed from the event loop, never inside one of its own
 * callbacks: ws_conn_free() only marks it when called from one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "sandd.h"

struct ws_conn {
	struct bufferevent	*bev;
	wslay_event_context_ptr	 ctx;
	const struct ws_callbacks *cb;
	void			*arg;

	int			 flags;
#define WS_DEAD		0x1	/* closed; free when out of callbacks */
#define WS_CLOSED_CB	0x2	/* closed callback was called */
#define WS_INRECV	0x4	/* inside wslay_event_recv */

	struct event		*ping;
	int			 ping_interval;
	int			 ping_timeout;
	double			 last_rx;

	uint64_t		 rx;
	uint64_t		 tx;
	uint8_t			*scratch;	/* one outgoing binary frame */
	struct event		*kick;
	struct event		*reaper;
	uint16_t		 close_code;	/* from the peer's close */
};

static void	ws_conn_closed(struct ws_conn *, const char *);
static void	ws_conn_pump(struct ws_conn *);
static void	ws_conn_flush(struct ws_conn *);
static int	ws_conn_send_frame(struct ws_conn *, int, uint32_t, uint64_t,
		    const void *, struct evbuffer *, size_t, size_t);

static ssize_t
ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    __unused int flags, void *arg)
{
	struct ws_conn	*ws = arg;
	int		 n;

	n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return (-1);
	}
	ws->rx += (uint64_t)n;
	/* Bytes are traffic: a big frame on a slow link is not silence. */
	ws->last_rx = util_now();
	return (n);
}

static ssize_t
ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    __unused int flags, void *arg)
{
	struct ws_conn	*ws = arg;
	struct evbuffer	*out = bufferevent_get_output(ws->bev);

	/* The output buffer is the queue; its size is bounded by callers. */
	if (evbuffer_get_length(out) >= WS_OUT_HIGH) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return (-1);
	}
	if (evbuffer_add(out, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return (-1);
	}
	ws->tx += len;
	return ((ssize_t)len);
}

static int
ws_genmask_cb(__unused wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
    __unused void *arg)
{
	return (RAND_bytes(buf, (int)len) == 1 ? 0 : -1);
}

static void
ws_msg_cb(__unused wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct ws_conn	*ws = arg;

	if (ws->flags & WS_DEAD)
		return;
	ws->last_rx = util_now();
	switch (m->opcode) {
	case WSLAY_TEXT_FRAME:
		if (ws->cb->text != NULL)
			ws->cb->text(ws, (const char *)m->msg, m->msg_length,
			    ws->arg);
		break;
	case WSLAY_BINARY_FRAME:
		if (ws->cb->binary != NULL)
			ws->cb->binary(ws, m->msg, m->msg_length, ws->arg);
		break;
	case WSLAY_CONNECTION_CLOSE:
		log_debug("%s: close received (%u)", __func__, m->status_code);
		ws->close_code = m->status_code;
		break;
	}
}

static const struct wslay_event_callbacks ws_wslay_callbacks = {
	ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb
};

/* Send what wslay has queued, unless inside its receive loop. */
static void
ws_conn_flush(struct ws_conn *ws)
{
	if (ws->flags & (WS_DEAD | WS_INRECV))
		return;
	if (wslay_event_send(ws->ctx) != 0)
		ws_conn_closed(ws, "send failed");
}

/* Run wslay's receive and send as far as they go; notice the end. */
static void
ws_conn_pump(struct ws_conn *ws)
{
	int	r;

	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	ws->flags |= WS_INRECV;
	r = wslay_event_recv(ws->ctx);
	ws->flags &= ~WS_INRECV;
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	if (r != 0) {
		ws_conn_closed(ws, "protocol error or oversize message");
		return;
	}
	ws_conn_flush(ws);
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	if (!wslay_event_want_read(ws->ctx) &&
	    !wslay_event_want_write(ws->ctx) &&
	    evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0)
		ws_conn_closed(ws, "closed by peer");
}

static void
ws_read_cb(struct bufferevent *bev, void *arg)
{
	util_bev_slurp(bev, WIRE_MAX_MSG);
	ws_conn_pump(arg);
}

static void
ws_kick_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	ws_conn_pump(arg);
}

static void
ws_write_cb(__unused struct bufferevent *bev, void *arg)
{
	struct ws_conn	*ws = arg;

	if (ws->flags & WS_DEAD)
		return;
	if (wslay_event_want_write(ws->ctx)) {
		ws_conn_flush(ws);
		if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
			return;
	}
	if (wslay_event_get_close_sent(ws->ctx) &&
	    wslay_event_get_close_received(ws->ctx) &&
	    evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
		ws_conn_closed(ws, "closed");
		return;
	}
	if (ws_conn_backlog(ws) < WS_OUT_LOW && ws->cb->drained != NULL)
		ws->cb->drained(ws, ws->arg);
}

static void
ws_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn	*ws = arg;
	char		 why[256];
	unsigned long	 e;

	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "connection closed by peer");
	else if (what & BEV_EVENT_ERROR) {
		if ((e = bufferevent_get_openssl_error(bev)) != 0) {
			char *err = tls_error_string();
			snprintf(why, sizeof why, "TLS: %s", err);
			free(err);
		} else
			snprintf(why, sizeof why, "%s",
			    strerror(EVUTIL_SOCKET_ERROR()));
	} else
		return;
	ws_conn_closed(ws, why);
}

static void
ws_ping_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct ws_conn		*ws = arg;
	struct wslay_event_msg	 m = { WSLAY_PING, (const uint8_t *)"", 0 };
	char			 why[64];

	if (ws->flags & WS_DEAD)
		return;
	if (util_now() - ws->last_rx > ws->ping_timeout) {
		snprintf(why, sizeof why, "no traffic for %d seconds",
		    ws->ping_timeout);
		ws_conn_closed(ws, why);
		return;
	}
	wslay_event_queue_msg(ws->ctx, &m);
	ws_conn_flush(ws);
}

/*
 * Wrap an upgraded connection. server is 1 on the controller. The
 * callbacks get arg; ping_interval/ping_timeout are in seconds.
 */
struct ws_conn *
ws_conn_create(struct bufferevent *bev, int server,
    const struct ws_callbacks *cb, void *arg, int ping_interval,
    int ping_timeout)
{
	struct ws_conn	*ws;
	struct timeval	 tv;
	int		 r;

	ws = xcalloc(1, sizeof *ws);
	ws->bev = bev;
	ws->cb = cb;
	ws->arg = arg;
	ws->ping_interval = ping_interval;
	ws->ping_timeout = ping_timeout;
	ws->last_rx = util_now();
	if (server)
		r = wslay_event_context_server_init(&ws->ctx,
		    &ws_wslay_callbacks, ws);
	else
		r = wslay_event_context_client_init(&ws->ctx,
		    &ws_wslay_callbacks, ws);
	if (r != 0)
		fatalx("wslay_event_context_init: %d", r);
	wslay_event_config_set_max_recv_msg_length(ws->ctx, WIRE_MAX_MSG);

	bufferevent_setcb(bev, ws_read_cb, ws_write_cb, ws_event_cb, ws);
	bufferevent_setwatermark(bev, EV_READ, 0, WIRE_MAX_MSG);
	bufferevent_setwatermark(bev, EV_WRITE, WS_OUT_LOW, 0);
	/* libevent moves 16 KiB per call by default: too little for bulk. */
	bufferevent_set_max_single_read(bev, WIRE_CHUNK);
	bufferevent_set_max_single_write(bev, WIRE_CHUNK);
	bufferevent_enable(bev, EV_READ | EV_WRITE);

	ws->ping = event_new(ev_base, -1, EV_PERSIST, ws_ping_cb, ws);
	util_timeval(&tv, ping_interval);
	event_add(ws->ping, &tv);

	/* Bytes that came with the upgrade may already be in the input. */
	ws->kick = event_new(ev_base, -1, 0, ws_kick_cb, ws);
	event_active(ws->kick, EV_TIMEOUT, 0);
	return (ws);
}

/* Change the argument given to the callbacks. */
void
ws_conn_set_arg(struct ws_conn *ws, void *arg)
{
	ws->arg = arg;
}

/* Report the end of the connection once, then hold the object dead. */
static void
ws_conn_closed(struct ws_conn *ws, const char *why)
{
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	ws->flags |= WS_CLOSED_CB;
	bufferevent_disable(ws->bev, EV_READ | EV_WRITE);
	event_del(ws->ping);
	if (ws->cb->closed != NULL)
		ws->cb->closed(ws, why, ws->arg);
}

static void
ws_free_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct ws_conn	*ws = arg;

	event_free(ws->ping);
	event_free(ws->kick);
	event_free(ws->reaper);
	wslay_event_context_free(ws->ctx);
	bufferevent_free(ws->bev);
	free(ws->scratch);
	free(ws);
}

/*
 * Release the connection. No callback runs after this; the memory goes
 * from the event loop, so this may be called from a callback.
 */
void
ws_conn_free(struct ws_conn *ws)
{
	if (ws == NULL || (ws->flags & WS_DEAD))
		return;
	ws->flags |= WS_DEAD | WS_CLOSED_CB;
	bufferevent_disable(ws->bev, EV_READ | EV_WRITE);
	bufferevent_setcb(ws->bev, NULL, NULL, NULL, NULL);
	event_del(ws->ping);
	event_del(ws->kick);
	ws->reaper = event_new(ev_base, -1, 0, ws_free_cb, ws);
	event_active(ws->reaper, EV_TIMEOUT, 0);
}

/* Queue one text message holding obj as compact JSON. */
int
ws_conn_send_json(struct ws_conn *ws, json_t *obj)
{
	struct wslay_event_msg	 m;
	char			*s;
	int			 r;

	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return (-1);
	if ((s = json_dumps(obj, JSON_COMPACT)) == NULL)
		return (-1);
	m.opcode = WSLAY_TEXT_FRAME;
	m.msg = (const uint8_t *)s;
	m.msg_length = strlen(s);
	r = wslay_event_queue_msg(ws->ctx, &m);
	free(s);
	if (r != 0)
		return (-1);
	ws_conn_flush(ws);
	return (0);
}

/* Queue one binary frame: the wire header for (type, ch, off), then data. */
int
ws_conn_send_data(struct ws_conn *ws, int type, uint32_t ch, uint64_t off,
    const void *data, size_t len)
{
	return (ws_conn_send_frame(ws, type, ch, off, data, NULL, 0, len));
}

/*
 * Queue one binary frame whose payload is len bytes of buf starting at
 * skip, copied straight out of the buffer (no pullup).
 */
int
ws_conn_send_buf(struct ws_conn *ws, int type, uint32_t ch, uint64_t off,
    struct evbuffer *buf, size_t skip, size_t len)
{
	return (ws_conn_send_frame(ws, type, ch, off, NULL, buf, skip, len));
}

static int
ws_conn_send_frame(struct ws_conn *ws, int type, uint32_t ch, uint64_t off,
    const void *data, struct evbuffer *buf, size_t skip, size_t len)
{
	struct wslay_event_msg	 m;
	struct evbuffer_ptr	 pos;
	uint8_t			*h = ws->scratch;
	int			 i;

	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return (-1);
	if (len > WIRE_CHUNK)
		fatalx("%s: chunk of %zu bytes", __func__, len);
	/* Allocated on first use: most controller links never send data. */
	if (h == NULL)
		h = ws->scratch = xmalloc(WIRE_HDR_LEN + WIRE_CHUNK);
	h[0] = (uint8_t)type;
	h[1] = h[2] = h[3] = 0;
	for (i = 0; i < 4; i++)
		h[4 + i] = (uint8_t)(ch >> (24 - 8 * i));
	for (i = 0; i < 8; i++)
		h[8 + i] = (uint8_t)(off >> (56 - 8 * i));
	if (buf != NULL) {
		if (evbuffer_ptr_set(buf, &pos, skip, EVBUFFER_PTR_SET) != 0 ||
		    evbuffer_copyout_from(buf, &pos, h + WIRE_HDR_LEN, len) !=
		    (ev_ssize_t)len)
			fatalx("%s: range past the buffer", __func__);
	} else
		memcpy(h + WIRE_HDR_LEN, data, len);
	m.opcode = WSLAY_BINARY_FRAME;
	m.msg = h;
	m.msg_length = WIRE_HDR_LEN + len;
	if (wslay_event_queue_msg(ws->ctx, &m) != 0)
		return (-1);
	ws_conn_flush(ws);
	return (0);
}

/*
 * Split a received binary message into its header fields and payload.
 * Returns -1 if it is too short or has an unknown type.
 */
int
ws_frame_parse(const uint8_t *msg, size_t len, int *type, uint32_t *ch,
    uint64_t *off, const uint8_t **data, size_t *dlen)
{
	int	i;

	if (len < WIRE_HDR_LEN || msg[0] >= WIRE_NSTREAMS)
		return (-1);
	*type = msg[0];
	*ch = 0;
	for (i = 0; i < 4; i++)
		*ch = (*ch << 8) | msg[4 + i];
	*off = 0;
	for (i = 0; i < 8; i++)
		*off = (*off << 8) | msg[8 + i];
	*data = msg + WIRE_HDR_LEN;
	*dlen = len - WIRE_HDR_LEN;
	return (0);
}

/* Bytes queued toward the peer and not yet written to the socket. */
size_t
ws_conn_backlog(struct ws_conn *ws)
{
	return (evbuffer_get_length(bufferevent_get_output(ws->bev)) +
	    wslay_event_get_queued_msg_length(ws->ctx));
}

/* May a producer queue more now? */
int
ws_conn_writable(struct ws_conn *ws)
{
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return (0);
	return (ws_conn_backlog(ws) < WS_OUT_HIGH);
}

/* Start the close handshake; the closed callback follows. */
void
ws_conn_close(struct ws_conn *ws, uint16_t code, const char *reason)
{
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason,
	    strlen(reason));
	ws_conn_flush(ws);
}

/* The status code of the peer's close frame, 0 if none came. */
int
ws_conn_close_code(struct ws_conn *ws)
{
	return (ws->close_code);
}

/* Bytes received and sent on the socket. */
void
ws_conn_stats(struct ws_conn *ws, uint64_t *rx, uint64_t *tx)
{
	*rx = ws->rx;
	*tx = ws->tx;
}

/*
 * ws.c: a WebSocket connection over a bufferevent (plain or TLS), used by
 * both the controller and the worker once the HTTP upgrade is done.
 *
 * wslay's frame layer parses and builds every frame; this file is the
 * connection on top of it: message assembly, control frames (ping, pong,
 * close), the checks RFC 6455 asks of an endpoint, pings toward a silent
 * peer, a bound on message size, and the backlog producers watch.
 *
 * Frames are written straight into the bufferevent's output buffer, which
 * is the only send queue: a payload is copied once, from its source into
 * that buffer (wslay's event layer would copy it twice more). On a plain
 * socket, what one turn of the event loop queues is written at its end
 * in one writev (util_flush_new), without waiting for epoll. A payload
 * is received in wslay's 4 KiB pieces and assembled in one buffer per
 * message; a message that arrives in one piece is handed on in place.
 *
 * Client masking: RFC 6455 has clients mask every frame so that caching
 * intermediaries which do not understand WebSocket cannot be poisoned
 * with attacker-chosen bytes. It costs a pass over every byte on both
 * ends (wslay does it a byte at a time: ~1 ns per byte, the largest cost
 * of a download). Our two ends agree to skip it with the upgrade header
 * "Sandd-Frames: unmasked" unless either side runs with --ws-mask; see
 * sandd-wire(7).
 *
 * The object is freed from the event loop, never inside one of its own
 * callbacks: ws_conn_free() marks it and lets its output drain first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "sandd.h"

/* RFC 6455 opcodes and close codes used here. */
#define WS_OP_CONT	0x0
#define WS_OP_TEXT	0x1
#define WS_OP_BINARY	0x2
#define WS_OP_CLOSE	0x8
#define WS_OP_PING	0x9
#define WS_OP_PONG	0xa
#define WS_CTL_MAX	125
#define WS_LINGER	2	/* seconds to flush at free */

#define WS_CODE_PROTOCOL	1002
#define WS_CODE_BAD_DATA	1007
#define WS_CODE_TOO_BIG		1009

struct ws_conn {
	struct bufferevent	*bev;
	wslay_frame_context_ptr	 fr;
	const struct ws_callbacks *cb;
	void			*arg;

	int			 mode;	/* WS_ROLE_SERVER, WS_NO_MASK */
	size_t			 max_msg;	/* largest data message taken */
	int			 flags;
#define WS_DEAD		0x1	/* freed; release when out of callbacks */
#define WS_CLOSED_CB	0x2	/* closed callback was called */
#define WS_CLOSE_SENT	0x4
#define WS_CLOSE_RECV	0x8
#define WS_IN_FRAME	0x10	/* inside a frame's payload */

	struct event		*ping;
	int			 ping_timeout;
	double			 last_rx;

	/* The frame being received. */
	int			 f_opcode;
	int			 f_fin;
	uint64_t		 f_left;
	uint8_t			 ctl[WS_CTL_MAX];
	size_t			 ctl_len;

	/* The data message being received; opcode 0 when none. */
	int			 m_opcode;
	uint8_t			*m_buf;
	size_t			 m_len;

	uint64_t		 rx;
	uint64_t		 framed;	/* of rx: whole frames' bytes */
	uint64_t		 tx;
	struct event		*kick;
	struct util_flush	*flush;
	struct event		*reaper;
	uint16_t		 close_code;	/* from the peer's close */

	TAILQ_ENTRY(ws_conn)	 entry;
};

/* Every connection, lingering ones too, for ws_conn_free_lingering. */
static TAILQ_HEAD(, ws_conn) ws_conns = TAILQ_HEAD_INITIALIZER(ws_conns);

static void	ws_conn_closed(struct ws_conn *, const char *);
static void	ws_conn_fail(struct ws_conn *, uint16_t, const char *);
static void	ws_conn_send_close(struct ws_conn *, uint16_t, const char *);

static ssize_t
ws_recv_cb(uint8_t *buf, size_t len, __unused int flags, void *arg)
{
	struct ws_conn	*ws = arg;
	int		 n;

	n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
	if (n <= 0)
		return (-1);	/* wslay: want more */
	ws->rx += (uint64_t)n;
	/* Bytes are traffic: a big frame on a slow link is not silence. */
	ws->last_rx = util_now();
	return (n);
}

/* The output buffer is the queue; callers bound it (ws_conn_writable). */
static ssize_t
ws_send_cb(const uint8_t *data, size_t len, __unused int flags, void *arg)
{
	struct ws_conn	*ws = arg;

	if (evbuffer_add(bufferevent_get_output(ws->bev), data, len) != 0)
		fatalx("%s: out of memory", __func__);
	ws->tx += len;
	return ((ssize_t)len);
}

static int
ws_genmask_cb(uint8_t *buf, size_t len, __unused void *arg)
{
	return (RAND_bytes(buf, (int)len) == 1 ? 0 : -1);
}

static const struct wslay_frame_callbacks ws_frame_callbacks = {
	ws_send_cb, ws_recv_cb, ws_genmask_cb
};

/*
 * wslay's frame context, made when needed. It holds a 4 KiB input
 * buffer, half of what an idle link costs the controller otherwise, so
 * an idle link gives it back (ws_conn_idle).
 */
static wslay_frame_context_ptr
ws_conn_fr(struct ws_conn *ws)
{
	if (ws->fr == NULL &&
	    wslay_frame_context_init(&ws->fr, &ws_frame_callbacks, ws) != 0)
		fatalx("%s: out of memory", __func__);
	return (ws->fr);
}

/*
 * Nothing received is held in wslay: every byte handed to it belonged to
 * a frame that was whole, and no message is half assembled. Its context
 * is then in its first state with an empty buffer, and can go. (Sends
 * always complete, so they leave no state in it.)
 */
static void
ws_conn_idle(struct ws_conn *ws)
{
	if (ws->fr == NULL || (ws->flags & WS_IN_FRAME) || ws->m_opcode != 0 ||
	    ws->rx != ws->framed)
		return;
	wslay_frame_context_free(ws->fr);
	ws->fr = NULL;
}

/* Bytes a frame takes on the wire (wslay refuses longer length forms). */
static uint64_t
ws_frame_size(const struct wslay_frame_iocb *io)
{
	uint64_t	n = 2 + io->payload_length;

	if (io->payload_length >= 65536)
		n += 8;
	else if (io->payload_length >= 126)
		n += 2;
	return (io->mask ? n + 4 : n);
}

/* Must our frames be masked? Only a client's, and only if not agreed. */
static int
ws_conn_masks(struct ws_conn *ws)
{
	return (!(ws->mode & (WS_ROLE_SERVER | WS_NO_MASK)));
}

/*
 * Write one frame of total payload bytes, given as up to two pieces; the
 * second may instead be a range of an evbuffer (skip, len), copied from
 * its chains without a pullup.
 */
static void
ws_conn_write_frame(struct ws_conn *ws, int opcode, const void *a,
    size_t alen, const void *b, struct evbuffer *buf, size_t skip,
    size_t blen)
{
	struct wslay_frame_iocb	 io;
	struct evbuffer_iovec	 v[16];
	struct evbuffer_ptr	 pos;
	size_t			 left, n;
	int			 i, nv;

	memset(&io, 0, sizeof io);
	io.fin = 1;
	io.opcode = (uint8_t)opcode;
	io.mask = (uint8_t)ws_conn_masks(ws);
	io.payload_length = alen + blen;
	io.data = a;
	io.data_length = alen;
	/* Our send callback takes everything, so only bad arguments fail. */
	if (wslay_frame_send(ws_conn_fr(ws), &io) < 0)
		fatalx("%s: wslay_frame_send failed", __func__);
	if (buf == NULL) {
		io.data = b;
		io.data_length = blen;
		if (blen > 0 && wslay_frame_send(ws->fr, &io) < 0)
			fatalx("%s: wslay_frame_send failed", __func__);
		return;
	}
	if (evbuffer_ptr_set(buf, &pos, skip, EVBUFFER_PTR_SET) != 0)
		fatalx("%s: range past the buffer", __func__);
	for (left = blen; left > 0; ) {
		nv = evbuffer_peek(buf, (ev_ssize_t)left, &pos, v, 16);
		if (nv <= 0)
			fatalx("%s: range past the buffer", __func__);
		for (i = 0; i < nv && i < 16 && left > 0; i++) {
			n = v[i].iov_len < left ? v[i].iov_len : left;
			io.data = v[i].iov_base;
			io.data_length = n;
			if (wslay_frame_send(ws->fr, &io) < 0)
				fatalx("%s: wslay_frame_send failed", __func__);
			left -= n;
			evbuffer_ptr_set(buf, &pos, n, EVBUFFER_PTR_ADD);
		}
	}
}

static void
ws_conn_send_close(struct ws_conn *ws, uint16_t code, const char *reason)
{
	uint8_t	p[WS_CTL_MAX];
	size_t	n = 0;
	int	valid;

	if (ws->flags & WS_CLOSE_SENT)
		return;
	ws->flags |= WS_CLOSE_SENT;
	if (code != 0) {
		p[0] = (uint8_t)(code >> 8);
		p[1] = (uint8_t)code;
		n = strlen(reason);
		if (n > sizeof p - 2)	/* cut on a character boundary */
			n = util_utf8_complete((const uint8_t *)reason,
			    sizeof p - 2, &valid);
		memcpy(p + 2, reason, n);
		n += 2;
	}
	ws_conn_write_frame(ws, WS_OP_CLOSE, p, n, NULL, NULL, 0, 0);
}

/* Are the close frames exchanged and written? Then the link is over. */
static void
ws_conn_check_done(struct ws_conn *ws)
{
	if ((ws->flags & (WS_CLOSE_SENT | WS_CLOSE_RECV)) ==
	    (WS_CLOSE_SENT | WS_CLOSE_RECV) &&
	    evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0)
		ws_conn_closed(ws, "closed");
}

/* A peer broke the protocol: say why in a close frame and give up. */
static void
ws_conn_fail(struct ws_conn *ws, uint16_t code, const char *why)
{
	log_debug("%s: %s (%u)", __func__, why, code);
	ws_conn_send_close(ws, code, why);
	ws_conn_closed(ws, why);
}

/* A close frame came: answer it once, then read no more. */
static void
ws_conn_on_close(struct ws_conn *ws)
{
	uint16_t	code = 0;

	if (ws->ctl_len == 1) {
		ws_conn_fail(ws, WS_CODE_PROTOCOL, "short close frame");
		return;
	}
	if (ws->ctl_len >= 2) {
		code = (uint16_t)(ws->ctl[0] << 8 | ws->ctl[1]);
		if (code < 1000 || code >= 5000 || code == 1004 ||
		    code == 1005 || code == 1006 ||
		    (code > 1011 && code < 3000)) {
			ws_conn_fail(ws, WS_CODE_PROTOCOL, "bad close code");
			return;
		}
	}
	log_debug("%s: close received (%u)", __func__, code);
	ws->close_code = code;
	ws->flags |= WS_CLOSE_RECV;
	ws_conn_send_close(ws, code, "");
	ws_conn_check_done(ws);
}

/* Hand a whole data message to the owner. */
static void
ws_conn_deliver(struct ws_conn *ws, int opcode, const uint8_t *p, size_t len)
{
	if (opcode == WS_OP_TEXT) {
		if (!util_utf8_valid(p, len)) {
			ws_conn_fail(ws, WS_CODE_BAD_DATA, "text is not UTF-8");
			return;
		}
		if (ws->cb->text != NULL)
			ws->cb->text(ws, (const char *)p, len, ws->arg);
	} else if (ws->cb->binary != NULL)
		ws->cb->binary(ws, p, len, ws->arg);
}

/* A frame header arrived: check it against RFC 6455 and our limits. */
static int
ws_conn_frame_start(struct ws_conn *ws, const struct wslay_frame_iocb *io)
{
	if (io->rsv != 0)
		return (ws_conn_fail(ws, WS_CODE_PROTOCOL, "reserved bits set"),
		    -1);
	if ((ws->mode & WS_ROLE_SERVER) && !io->mask &&
	    !(ws->mode & WS_NO_MASK))
		return (ws_conn_fail(ws, WS_CODE_PROTOCOL,
		    "unmasked frame from the client"), -1);
	if (!(ws->mode & WS_ROLE_SERVER) && io->mask)
		return (ws_conn_fail(ws, WS_CODE_PROTOCOL,
		    "masked frame from the server"), -1);
	switch (io->opcode) {
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		ws->ctl_len = 0;	/* wslay checked fin and length */
		break;
	case WS_OP_CONT:
		if (ws->m_opcode == 0)
			return (ws_conn_fail(ws, WS_CODE_PROTOCOL,
			    "continuation without a message"), -1);
		break;
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		if (ws->m_opcode != 0)
			return (ws_conn_fail(ws, WS_CODE_PROTOCOL,
			    "new message inside a fragmented one"), -1);
		ws->m_opcode = io->opcode;
		ws->m_len = 0;
		break;
	default:
		return (ws_conn_fail(ws, WS_CODE_PROTOCOL, "unknown opcode"),
		    -1);
	}
	if (io->opcode < WS_OP_CLOSE &&
	    io->payload_length > ws->max_msg - ws->m_len)
		return (ws_conn_fail(ws, WS_CODE_TOO_BIG, "message too big"),
		    -1);
	ws->f_opcode = io->opcode;
	ws->f_fin = io->fin;
	ws->f_left = io->payload_length;
	ws->flags |= WS_IN_FRAME;
	ws->framed += ws_frame_size(io);
	return (0);
}

/* A piece of the current frame's payload. */
static void
ws_conn_frame_data(struct ws_conn *ws, const struct wslay_frame_iocb *io)
{
	size_t	len = io->data_length;

	ws->f_left -= len;
	if (ws->f_opcode >= WS_OP_CLOSE) {
		memcpy(ws->ctl + ws->ctl_len, io->data, len);
		ws->ctl_len += len;
		return;
	}
	/* A whole message in one piece is handed on in place. */
	if (ws->m_buf == NULL && ws->f_left == 0 && ws->f_fin)
		return;
	if (ws->m_buf == NULL)
		ws->m_buf = xmalloc(ws->f_fin ? len + ws->f_left :
		    ws->max_msg);
	memcpy(ws->m_buf + ws->m_len, io->data, len);
	ws->m_len += len;
}

/* The current frame is complete. */
static void
ws_conn_frame_end(struct ws_conn *ws, const struct wslay_frame_iocb *io)
{
	int	opcode;

	ws->flags &= ~WS_IN_FRAME;
	switch (ws->f_opcode) {
	case WS_OP_CLOSE:
		ws_conn_on_close(ws);
		return;
	case WS_OP_PING:
		/* A peer that pings but never reads gets no pong pile. */
		if (!(ws->flags & WS_CLOSE_SENT) &&
		    ws_conn_backlog(ws) < WS_OUT_HIGH)
			ws_conn_write_frame(ws, WS_OP_PONG, ws->ctl,
			    ws->ctl_len, NULL, NULL, 0, 0);
		return;
	case WS_OP_PONG:
		return;
	}
	if (!ws->f_fin)
		return;
	opcode = ws->m_opcode;
	ws->m_opcode = 0;
	if (ws->m_buf == NULL)
		ws_conn_deliver(ws, opcode, io->data, io->data_length);
	else {
		ws_conn_deliver(ws, opcode, ws->m_buf, ws->m_len);
		/* Idle links keep no message buffer. */
		free(ws->m_buf);
		ws->m_buf = NULL;
	}
	ws->m_len = 0;
}

/* Parse what has arrived, frame by frame, as far as it goes. */
static void
ws_conn_pump(struct ws_conn *ws)
{
	struct wslay_frame_iocb	io;
	ssize_t			r;

	while (!(ws->flags & (WS_DEAD | WS_CLOSED_CB | WS_CLOSE_RECV))) {
		memset(&io, 0, sizeof io);
		r = wslay_frame_recv(ws_conn_fr(ws), &io);
		if (r == WSLAY_ERR_WANT_READ) {
			ws_conn_idle(ws);
			break;
		}
		if (r < 0) {
			ws_conn_fail(ws, WS_CODE_PROTOCOL, "malformed frame");
			return;
		}
		if (!(ws->flags & WS_IN_FRAME) &&
		    ws_conn_frame_start(ws, &io) != 0)
			return;
		ws_conn_frame_data(ws, &io);
		if (ws->f_left == 0)
			ws_conn_frame_end(ws, &io);
	}
}

static void
ws_read_cb(struct bufferevent *bev, void *arg)
{
	struct ws_conn	*ws = arg;

	util_bev_slurp(bev, ws->max_msg);
	ws_conn_pump(arg);
}

/* The first pump, for bytes that came with the upgrade; once only. */
static void
ws_kick_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct ws_conn	*ws = arg;

	event_free(ws->kick);
	ws->kick = NULL;
	ws_conn_pump(ws);
}

static void
ws_write_cb(__unused struct bufferevent *bev, void *arg)
{
	struct ws_conn	*ws = arg;

	util_flush_drained(ws->flush);
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	ws_conn_check_done(ws);
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	if (ws_conn_backlog(ws) < WS_OUT_LOW && ws->cb->drained != NULL)
		ws->cb->drained(ws, ws->arg);
}

static void
ws_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn	*ws = arg;
	char		 why[256], *err;
	int		 e = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof why, "connection closed by peer");
	else if (what & BEV_EVENT_ERROR) {
		if ((err = tls_bev_error(bev)) != NULL) {
			snprintf(why, sizeof why, "TLS: %s", err);
			free(err);
		} else
			snprintf(why, sizeof why, "%s", strerror(e));
	} else
		return;
	ws_conn_closed(ws, why);
}

static void
ws_ping_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct ws_conn	*ws = arg;
	char		 why[64];

	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	if (util_now() - ws->last_rx > ws->ping_timeout) {
		snprintf(why, sizeof why, "no traffic for %d seconds",
		    ws->ping_timeout);
		ws_conn_closed(ws, why);
		return;
	}
	if (!(ws->flags & WS_CLOSE_SENT))
		ws_conn_write_frame(ws, WS_OP_PING, NULL, 0, NULL, NULL, 0, 0);
}

/*
 * Wrap an upgraded connection. p->flags: WS_ROLE_SERVER on the side that
 * accepted, WS_NO_MASK when the upgrade agreed to skip masking; pings go
 * every p->ping_interval seconds and the link ends after p->ping_timeout
 * seconds of silence; data messages over p->max_message bytes end it
 * with 1009. The callbacks get arg.
 */
struct ws_conn *
ws_conn_create(struct bufferevent *bev, const struct ws_params *p,
    const struct ws_callbacks *cb, void *arg)
{
	struct ws_conn	*ws;
	struct timeval	 tv;

	ws = xcalloc(1, sizeof *ws);
	TAILQ_INSERT_TAIL(&ws_conns, ws, entry);
	ws->bev = bev;
	ws->cb = cb;
	ws->arg = arg;
	ws->mode = p->flags;
	ws->max_msg = p->max_message;
	ws->ping_timeout = p->ping_timeout;
	ws->last_rx = util_now();

	bufferevent_setcb(bev, ws_read_cb, ws_write_cb, ws_event_cb, ws);
	bufferevent_setwatermark(bev, EV_READ, 0, ws->max_msg);
	bufferevent_setwatermark(bev, EV_WRITE, WS_OUT_LOW, 0);
	/* libevent moves 16 KiB per call by default: too little for bulk. */
	bufferevent_set_max_single_read(bev, WS_IO_CHUNK);
	bufferevent_set_max_single_write(bev, WS_IO_CHUNK);
	bufferevent_enable(bev, EV_READ | EV_WRITE);

	ws->ping = event_new(ev_base, -1, EV_PERSIST, ws_ping_cb, ws);
	util_timeval(&tv, p->ping_interval);
	event_add(ws->ping, &tv);

	/* Bytes that came with the upgrade may already be in the input. */
	ws->kick = event_new(ev_base, -1, 0, ws_kick_cb, ws);
	event_active(ws->kick, EV_TIMEOUT, 0);
	ws->flush = util_flush_new(bev);
	return (ws);
}

/* Report the end of the connection once, then hold the object dead. */
static void
ws_conn_closed(struct ws_conn *ws, const char *why)
{
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	ws->flags |= WS_CLOSED_CB;
	bufferevent_disable(ws->bev, EV_READ);
	event_del(ws->ping);
	if (ws->cb->closed != NULL)
		ws->cb->closed(ws, why, ws->arg);
}

static void
ws_free_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct ws_conn	*ws = arg;

	event_free(ws->ping);
	if (ws->kick != NULL)
		event_free(ws->kick);
	event_free(ws->reaper);
	if (ws->fr != NULL)
		wslay_frame_context_free(ws->fr);
	bufferevent_free(ws->bev);
	TAILQ_REMOVE(&ws_conns, ws, entry);
	free(ws->m_buf);
	free(ws);
}

/*
 * At exit, after the loop: release the freed connections whose close
 * frame is still lingering; the loop will not run to reap them.
 */
void
ws_conn_free_lingering(void)
{
	struct ws_conn	*ws, *next;

	TAILQ_FOREACH_SAFE(ws, &ws_conns, entry, next) {
		if ((ws->flags & WS_DEAD) && ws->reaper != NULL)
			ws_free_cb(-1, 0, ws);
	}
}

/* Lingering: the output is written, or the connection failed. */
static void
ws_linger_write_cb(__unused struct bufferevent *bev, void *arg)
{
	struct ws_conn	*ws = arg;

	event_active(ws->reaper, EV_TIMEOUT, 0);
}

static void
ws_linger_event_cb(__unused struct bufferevent *bev, __unused short what,
    void *arg)
{
	struct ws_conn	*ws = arg;

	event_active(ws->reaper, EV_TIMEOUT, 0);
}

/*
 * Release the connection. No callback runs after this; the memory goes
 * from the event loop, so this may be called from a callback. What is
 * still queued, such as a close frame saying why, gets WS_LINGER seconds
 * to leave.
 */
void
ws_conn_free(struct ws_conn *ws)
{
	struct timeval	tv = { WS_LINGER, 0 };

	if (ws == NULL || (ws->flags & WS_DEAD))
		return;
	ws->flags |= WS_DEAD | WS_CLOSED_CB;
	bufferevent_disable(ws->bev, EV_READ);
	event_del(ws->ping);
	if (ws->kick != NULL)
		event_del(ws->kick);
	/* The linger below is libevent's to write. */
	util_flush_free(ws->flush);
	ws->flush = NULL;
	ws->reaper = event_new(ev_base, -1, 0, ws_free_cb, ws);
	if (evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
		bufferevent_disable(ws->bev, EV_WRITE);
		bufferevent_setcb(ws->bev, NULL, NULL, NULL, NULL);
		event_active(ws->reaper, EV_TIMEOUT, 0);
		return;
	}
	bufferevent_setcb(ws->bev, NULL, ws_linger_write_cb,
	    ws_linger_event_cb, ws);
	bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
	bufferevent_enable(ws->bev, EV_WRITE);
	event_add(ws->reaper, &tv);
}

/* May frames still be sent? */
static int
ws_conn_open(struct ws_conn *ws)
{
	return (!(ws->flags & (WS_DEAD | WS_CLOSED_CB | WS_CLOSE_SENT)));
}

/* Send one text message holding obj as compact JSON. */
int
ws_conn_send_json(struct ws_conn *ws, json_t *obj)
{
	char	*s;

	if (!ws_conn_open(ws))
		return (-1);
	if ((s = json_dumps(obj, JSON_COMPACT)) == NULL)
		return (-1);
	ws_conn_write_frame(ws, WS_OP_TEXT, s, strlen(s), NULL, NULL, 0, 0);
	free(s);
	return (0);
}

/*
 * Send one binary message: head (hlen bytes, may be 0), then len bytes
 * of buf from skip, copied straight from the buffer's chains into the
 * socket's.
 */
int
ws_conn_send_binary_buf(struct ws_conn *ws, const void *head, size_t hlen,
    struct evbuffer *buf, size_t skip, size_t len)
{
	if (!ws_conn_open(ws))
		return (-1);
	ws_conn_write_frame(ws, WS_OP_BINARY, head, hlen, NULL, buf, skip,
	    len);
	return (0);
}

/* Bytes queued toward the peer and not yet written to the socket. */
size_t
ws_conn_backlog(struct ws_conn *ws)
{
	return (evbuffer_get_length(bufferevent_get_output(ws->bev)));
}

/* May a producer queue more now? */
int
ws_conn_writable(struct ws_conn *ws)
{
	return (ws_conn_open(ws) && ws_conn_backlog(ws) < WS_OUT_HIGH);
}

/* Start the close handshake; the closed callback follows. */
void
ws_conn_close(struct ws_conn *ws, uint16_t code, const char *reason)
{
	if (ws->flags & (WS_DEAD | WS_CLOSED_CB))
		return;
	/* The write callback ends the link once the frame is out. */
	ws_conn_send_close(ws, code, reason);
}

/* The status code of the peer's close frame, 0 if none came. */
int
ws_conn_close_code(struct ws_conn *ws)
{
	return (ws->close_code);
}

/*
 * control.c: the UNIX-domain control socket. Splits each client's bytes
 * into JSON lines (and raw payloads after a line that announces them),
 * hands requests to control-cmd.c, and writes replies. Reading stops
 * while the client's replies back up or its payload waits on a worker,
 * so a client can make the server hold only a bounded amount for it.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "sandd.h"

struct client {
	struct bufferevent	*bev;
	int			 fd;
	uid_t			 uid;
	struct compat_peer	 peer;		/* valid if uid is not -1 */
	int			 refs;
	int			 flags;
#define CLIENT_DEAD		0x1
#define CLIENT_EOF		0x2	/* read side shut: finish, then close */
#define CLIENT_PAUSED		0x8	/* waiting for a payload sink */
#define CLIENT_OVERFULL		0x10	/* past CONTROL_OUT_MAX: closing */
	struct control_split	 split;
	int			 topics;
	uint64_t		 payload_left;
	struct chan		*sink;		/* where payload bytes go */
	/* re-arm after a bounded batch */
	struct event		*more;
	struct util_flush	*flush;		/* direct writes */
	struct event		*hup;		/* polls for a full close */
	struct event		*reaper;
	TAILQ_HEAD(stream_replies, stream_reply) streams; /* being written */
	TAILQ_ENTRY(client)	 entry;
};

/*
 * A final reply with big byte fields (an exec's output, an inline get),
 * written as the client takes it: the fields' bytes (moved in, never
 * copied whole) are turned into JSON text a chunk at a time, so what the
 * controller holds for a reply is its raw bytes, not their escaped and
 * encoded copies. Messages for the client that come after it wait behind
 * it (in its `after`), so every line stays whole and in order.
 */
#define STREAM_FIELDS	2
#define STREAM_CHUNK	(48 * 1024)	/* raw bytes per step; multiple of 3 */
struct stream_reply {
	struct evbuffer	*head;		/* '{...,' before the first field */
	int		 n;		/* fields */
	int		 i;		/* the one being written */
	int		 in_field;	/* its opening quote is written */
	char		*names[STREAM_FIELDS];
	struct evbuffer	*bufs[STREAM_FIELDS];
	int		 b64[STREAM_FIELDS];
	struct evbuffer	*after;		/* messages that follow it */
	TAILQ_ENTRY(stream_reply) entry;
};
static TAILQ_HEAD(, client) clients = TAILQ_HEAD_INITIALIZER(clients);
static size_t			 nclients;
/* Closed and unreferenced, to be freed on the next turn of the loop. */
static TAILQ_HEAD(, client) reaping = TAILQ_HEAD_INITIALIZER(reaping);
static struct evconnlistener	*control_listener;
static char			*control_path;

#define LINES_PER_CALLBACK	64
#define CONTROL_COPY_MAX	(64 * 1024)	/* longer lines: by reference */

static void	 control_client_read_cb(struct bufferevent *, void *);
static void	 stream_reply_free(struct stream_reply *);
static void	 control_client_close(struct client *, const char *);
static void	 control_refuse(int, const char *, ...)
		     __attribute__((format(printf, 2, 3)));

struct client *
control_client_ref(struct client *cl)
{
	cl->refs++;
	return (cl);
}

static void
control_client_reap_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct client		*cl = arg;
	struct stream_reply	*sr;

	TAILQ_REMOVE(&reaping, cl, entry);
	event_free(cl->more);
	event_free(cl->hup);
	event_free(cl->reaper);
	while ((sr = TAILQ_FIRST(&cl->streams)) != NULL) {
		TAILQ_REMOVE(&cl->streams, sr, entry);
		stream_reply_free(sr);
	}
	free(cl);
}

/*
 * Drop a reference. The last one frees the client on the next turn of
 * the loop, not under the callers (closed, it is no longer in clients).
 */
void
control_client_unref(struct client *cl)
{
	if (--cl->refs > 0)
		return;
	TAILQ_INSERT_TAIL(&reaping, cl, entry);
	cl->reaper = event_new(ev_base, -1, 0, control_client_reap_cb, cl);
	event_active(cl->reaper, EV_TIMEOUT, 0);
}

/*
 * Free the clients still waiting for their turn: once the loop is over,
 * the last references can go without one (a request that waited for a
 * worker holds its client until the worker is freed).
 */
void
control_reap(void)
{
	struct client	*cl;

	while ((cl = TAILQ_FIRST(&reaping)) != NULL)
		control_client_reap_cb(-1, 0, cl);
}

int
control_client_dead(struct client *cl)
{
	return (cl->flags & CLIENT_DEAD);
}

/* The uid of the client's process (SO_PEERCRED), -1 if unknown. */
long
control_client_uid(struct client *cl)
{
	return (cl->uid == (uid_t)-1 ? -1 : (long)cl->uid);
}

/* The client's process: uid, gid, pid, groups; NULL if unknown. */
const struct compat_peer *
control_client_peer(struct client *cl)
{
	return (cl->uid == (uid_t)-1 ? NULL : &cl->peer);
}

size_t
control_client_count(void)
{
	return (nclients);
}

/* Is the client keeping up with what we write? */
int
control_client_writable(struct client *cl)
{
	if (cl->flags & (CLIENT_DEAD | CLIENT_OVERFULL))
		return (1);	/* nothing will be written: do not hold */
	return (TAILQ_EMPTY(&cl->streams) && evbuffer_get_length(
	    bufferevent_get_output(cl->bev)) < CONTROL_OUT_HIGH);
}

/* Where the next message to cl goes: behind the replies being written. */
static struct evbuffer *
control_client_out(struct client *cl)
{
	struct stream_reply	*sr;

	if ((sr = TAILQ_LAST(&cl->streams, stream_replies)) != NULL)
		return (sr->after);
	return (bufferevent_get_output(cl->bev));
}

/*
 * Bytes written for the client and not yet taken by it: in its buffer,
 * and waiting behind replies being written.
 */
static size_t
control_client_backlog(struct client *cl)
{
	struct stream_reply	*sr;
	size_t			 n;

	n = evbuffer_get_length(bufferevent_get_output(cl->bev));
	TAILQ_FOREACH(sr, &cl->streams, entry)
		n += evbuffer_get_length(sr->after);
	return (n);
}

/*
 * Every message to a client comes through here: past CONTROL_OUT_MAX of
 * unread output the client is dropped (from the event loop, not from
 * inside whoever is sending) and nothing more is queued for it. Returns
 * 1 if a message may be queued.
 */
static int
control_client_bound(struct client *cl)
{
	if (cl->flags & (CLIENT_DEAD | CLIENT_OVERFULL))
		return (0);
	if (control_client_backlog(cl) < CONTROL_OUT_MAX)
		return (1);
	log_warnx("client fd %d uid %ld: over %d bytes unread, closing",
	    cl->fd, control_client_uid(cl), CONTROL_OUT_MAX);
	cl->flags |= CLIENT_OVERFULL;
	event_active(cl->more, EV_TIMEOUT, 0);
	return (0);
}

/* Write one message as a line. */
void
control_client_send(struct client *cl, json_t *msg)
{
	struct evbuffer	*out;
	char		*s;
	size_t		 len;

	if (!control_client_bound(cl))
		return;
	if ((s = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(12)))
	    == NULL) {
		log_warnx("%s: cannot encode a reply", __func__);
		return;
	}
	out = control_client_out(cl);
	len = strlen(s);
	if (len < CONTROL_COPY_MAX) {
		/*
		 * Copied: small lines pack into the buffer's chains. One
		 * chain per line would cost a kilobyte or two for an event
		 * of sixty bytes, and the bound counts bytes.
		 */
		s[len++] = '\n';
		evbuffer_add(out, s, len);
		free(s);
		return;
	}
	evbuffer_add_reference(out, s, len,
	    (evbuffer_ref_cleanup_cb)(void (*)(void))free, NULL);
	evbuffer_add(out, "\n", 1);
}

/*
 * Write a message announcing a raw payload, then the payload: all of buf,
 * moved, not copied.
 */
void
control_client_send_raw(struct client *cl, json_t *msg, struct evbuffer *buf)
{
	size_t	len = evbuffer_get_length(buf);

	json_object_set_new(msg, "bytes", json_integer((json_int_t)len));
	if (!control_client_bound(cl)) {
		evbuffer_drain(buf, len);
		return;
	}
	control_client_send(cl, msg);
	if (cl->flags & CLIENT_DEAD)
		evbuffer_drain(buf, len);
	else
		evbuffer_add_buffer(control_client_out(cl), buf);
}

static void
stream_reply_free(struct stream_reply *sr)
{
	int	i;

	if (sr == NULL)
		return;
	evbuffer_free(sr->after);
	if (sr->head != NULL)
		evbuffer_free(sr->head);
	for (i = 0; i < sr->n; i++) {
		free(sr->names[i]);
		evbuffer_free(sr->bufs[i]);
	}
	free(sr);
}

/* Write the next step of cl's stream reply into out; 1 when done. */
static int
stream_reply_step(struct stream_reply *sr, struct evbuffer *out)
{
	size_t	 len;
	int	 last;

	if (sr->head != NULL) {
		evbuffer_add_buffer(out, sr->head);
		evbuffer_free(sr->head);
		sr->head = NULL;
	}
	if (sr->i == sr->n) {
		evbuffer_add(out, "}\n", 2);
		return (1);
	}
	if (!sr->in_field) {
		evbuffer_add_printf(out, "%s\"%s%s\":\"", sr->i > 0 ? "," : "",
		    sr->names[sr->i], sr->b64[sr->i] ? "_b64" : "");
		sr->in_field = 1;
	}
	len = evbuffer_get_length(sr->bufs[sr->i]);
	last = len <= STREAM_CHUNK;
	if (!last)
		len = STREAM_CHUNK;
	if (sr->b64[sr->i])
		util_base64_buffer(sr->bufs[sr->i], len, out);
	else
		util_json_escape_buffer(sr->bufs[sr->i], len, out);
	if (last) {
		evbuffer_add(out, "\"", 1);
		sr->in_field = 0;
		sr->i++;
	}
	return (0);
}

/* Write what the client may take of its stream replies. */
static void
control_client_pump(struct client *cl)
{
	struct stream_reply	*sr;
	struct evbuffer		*out;

	if (cl->flags & CLIENT_DEAD)
		return;
	out = bufferevent_get_output(cl->bev);
	while ((sr = TAILQ_FIRST(&cl->streams)) != NULL &&
	    evbuffer_get_length(out) < CONTROL_OUT_HIGH) {
		if (stream_reply_step(sr, out)) {
			TAILQ_REMOVE(&cl->streams, sr, entry);
			evbuffer_add_buffer(out, sr->after);
			stream_reply_free(sr);
		}
	}
}

/*
 * Send msg (stolen) as a final reply whose byte fields names[i] come
 * from bufs[i] (moved out of them): as text when the bytes are UTF-8,
 * else as NAME_b64, written as the client takes them.
 */
void
control_client_send_stream(struct client *cl, json_t *msg,
    const char **names, struct evbuffer **bufs, int n)
{
	struct stream_reply	*sr;
	char			*text;
	size_t			 len;
	int			 i;

	if ((cl->flags & CLIENT_DEAD) || n > STREAM_FIELDS ||
	    (text = json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(12)))
	    == NULL) {
		json_decref(msg);
		return;
	}
	json_decref(msg);
	sr = xcalloc(1, sizeof *sr);
	sr->after = evbuffer_new();
	sr->head = evbuffer_new();
	len = strlen(text);		/* '{...}': reopen it */
	evbuffer_add(sr->head, text, len - 1);
	if (len > 2)
		evbuffer_add(sr->head, ",", 1);
	free(text);
	sr->n = n;
	for (i = 0; i < n; i++) {
		sr->names[i] = xstrdup(names[i]);
		sr->bufs[i] = evbuffer_new();
		evbuffer_add_buffer(sr->bufs[i], bufs[i]);
		sr->b64[i] = !util_buffer_utf8_valid(sr->bufs[i]);
	}
	/* After everything already queued for the client. */
	TAILQ_INSERT_TAIL(&cl->streams, sr, entry);
	control_client_pump(cl);
}

/* Subscribe the client to topics (TOPIC_*). */
void
control_client_subscribe(struct client *cl, int topics)
{
	cl->topics |= topics;
}

/*
 * An event of a subscription to topic, which cannot wait: past
 * CONTROL_EVENT_MAX of unread output it is dropped, the client gets an
 * overflow event and the subscription ends.
 */
static void
control_client_event(struct client *cl, int topic, json_t *ev)
{
	json_t	*o;

	if (control_client_backlog(cl) < CONTROL_EVENT_MAX) {
		control_client_send(cl, ev);
		return;
	}
	cl->topics &= ~topic;
	log_info("client fd %d uid %ld: not reading, its subscription to %s "
	    "ends", cl->fd, control_client_uid(cl), topic == TOPIC_WORKERS ?
	    "workers" : "sessions");
	o = json_pack("{s:s, s:s}", "event", "overflow", "topic",
	    topic == TOPIC_WORKERS ? "workers" : "sessions");
	control_client_send(cl, o);
	json_decref(o);
}

/*
 * Send ev to every client subscribed to topic that may see it
 * (visible(client, arg), or all if visible is NULL).
 */
void
control_broadcast_event(int topic, json_t *ev,
    int (*visible)(struct client *, void *), void *arg)
{
	struct client	*cl;

	TAILQ_FOREACH(cl, &clients, entry) {
		if ((cl->topics & topic) && (visible == NULL ||
		    visible(cl, arg)))
			control_client_event(cl, topic, ev);
	}
}

/*
 * Payload bytes after a request go to sink (a channel's input) or, with
 * no sink, nowhere. Called by the request handler.
 */
void
control_client_set_sink(struct client *cl, struct chan *sink)
{
	cl->sink = sink;
}

/* The sink went away: discard the rest of its payload. */
void
control_client_sink_gone(struct chan *c)
{
	struct client	*cl;

	TAILQ_FOREACH(cl, &clients, entry) {
		if (cl->sink != c)
			continue;
		cl->sink = NULL;
		if (cl->flags & CLIENT_PAUSED) {
			cl->flags &= ~CLIENT_PAUSED;
			event_active(cl->more, EV_TIMEOUT, 0);
		}
	}
}

/* The sink took some input: read on if we stopped for it. */
void
control_client_sink_drained(struct chan *c)
{
	struct client	*cl;

	TAILQ_FOREACH(cl, &clients, entry) {
		if (cl->sink == c && (cl->flags & CLIENT_PAUSED) &&
		    chan_input_backlog(c) < WIRE_WINDOW) {
			cl->flags &= ~CLIENT_PAUSED;
			event_active(cl->more, EV_TIMEOUT, 0);
		}
	}
}

/* After a write to c, stop reading from cl while c's input is backed up. */
void
control_client_wait_sink(struct client *cl, struct chan *c)
{
	if (chan_input_backlog(c) >= WIRE_WINDOW) {
		cl->sink = c;
		cl->flags |= CLIENT_PAUSED;
	}
}

/* Feed payload bytes from the input to the sink, within its window. */
static int
control_client_payload(struct client *cl, struct evbuffer *in)
{
	size_t	 n, avail = evbuffer_get_length(in);

	while (cl->payload_left > 0 && avail > 0) {
		if (cl->sink != NULL &&
		    chan_input_backlog(cl->sink) >= WIRE_WINDOW) {
			cl->flags |= CLIENT_PAUSED;
			return (0);
		}
		n = avail < cl->payload_left ? avail : cl->payload_left;
		if (n > WIRE_CHUNK)
			n = WIRE_CHUNK;
		/* Whole chunks: small frames cost more than they carry. */
		if (cl->sink != NULL && n < WIRE_CHUNK &&
		    n < cl->payload_left && !(cl->flags & CLIENT_EOF))
			break;
		if (cl->sink != NULL)
			chan_input_buffer(cl->sink, in, n);
		else
			evbuffer_drain(in, n);
		cl->payload_left -= n;
		avail -= n;
	}
	if (cl->payload_left == 0 && cl->sink != NULL) {
		chan_input_eof(cl->sink);	/* the whole payload is in */
		cl->sink = NULL;
	}
	return (cl->payload_left == 0);
}

/*
 * The client shut its side in the middle of a raw payload: the request
 * it belongs to fails with bad_request and its transfer stops.
 */
static void
control_client_payload_cut(struct client *cl)
{
	struct chan	*c = cl->sink;
	struct req	*r;

	log_debug("%s: client fd %d: payload cut short, %llu bytes missing",
	    __func__, cl->fd, (unsigned long long)cl->payload_left);
	cl->sink = NULL;
	if (c != NULL && (r = c->req) != NULL) {
		req_error(r, "bad_request", "payload cut short: %llu bytes "
		    "missing", (unsigned long long)cl->payload_left);
		chan_cancel(c);
	}
	cl->payload_left = 0;
}

/* Reply too_large for a line we could not take. */
static void
control_client_too_large(struct client *cl)
{
	json_t	*err;

	err = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code",
	    "too_large", "message", "request line over the server's limit");
	server_count_error("too_large");
	control_client_send(cl, err);
	json_decref(err);
}

/*
 * The control line splitter: what comes next in a client's input, given
 * the position of its first newline (eol, -1 for none) among the len
 * bytes buffered, the line limit max and the state st. Pure, so the fuzz
 * target calls this very function.
 *
 * SPLIT_LINE: a whole line of *n bytes; consume it and its newline.
 * SPLIT_TOO_LONG: a line over max; drop *n bytes and reply too_large.
 * SPLIT_SKIP: more of a line already refused; drop *n bytes.
 * SPLIT_MORE: nothing to do until more bytes come.
 */
int
control_split_next(struct control_split *st, ssize_t eol, size_t len,
    size_t max, size_t *n)
{
	if (eol < 0) {
		*n = len;
		if (st->discard)
			return (len > 0 ? SPLIT_SKIP : SPLIT_MORE);
		if (len <= max)
			return (SPLIT_MORE);
		st->discard = 1;	/* until its newline */
		return (SPLIT_TOO_LONG);
	}
	*n = (size_t)eol;
	if (st->discard) {
		st->discard = 0;
		*n += 1;
		return (SPLIT_SKIP);
	}
	if (*n > max) {
		*n += 1;
		return (SPLIT_TOO_LONG);
	}
	return (SPLIT_LINE);
}

/* The raw payload a request line announces ("bytes": N), 0 for none. */
uint64_t
control_line_payload(json_t *msg)
{
	json_t	*v = json_object_get(msg, "bytes");

	if (!json_is_object(msg) || !json_is_integer(v) ||
	    json_integer_value(v) <= 0)
		return (0);
	return ((uint64_t)json_integer_value(v));
}

/* One whole request line of len bytes at the head of in. */
static void
control_client_line(struct client *cl, struct evbuffer *in, size_t len)
{
	char		*line;
	json_t		*msg;
	json_error_t	 jerr;

	line = (char *)evbuffer_pullup(in, (ssize_t)len + 1);
	msg = json_loadb(line, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
	evbuffer_drain(in, len + 1);
	cl->sink = NULL;
	control_cmd_dispatch(cl, msg, msg == NULL ? jerr.text : NULL);
	cl->payload_left = control_line_payload(msg);
	json_decref(msg);
}

/* Process what the client sent, a bounded batch at a time. */
static void
control_client_input(struct client *cl)
{
	struct evbuffer		*in = bufferevent_get_input(cl->bev);
	struct evbuffer_ptr	 eol;
	size_t			 n, nlines = 0;

	while (!(cl->flags & (CLIENT_DEAD | CLIENT_PAUSED | CLIENT_OVERFULL))) {
		if (cl->payload_left > 0) {
			if (!control_client_payload(cl, in))
				break;
			continue;
		}
		if (!control_client_writable(cl))
			break;		/* the write callback resumes */
		if (nlines++ == LINES_PER_CALLBACK) {
			event_active(cl->more, EV_TIMEOUT, 0);
			break;
		}
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		switch (control_split_next(&cl->split, eol.pos,
		    evbuffer_get_length(in), serve_opts.max_line, &n)) {
		case SPLIT_LINE:
			control_client_line(cl, in, n);
			continue;
		case SPLIT_TOO_LONG:
			control_client_too_large(cl);
			/* FALLTHROUGH */
		case SPLIT_SKIP:
			evbuffer_drain(in, n);
			continue;
		}
		break;		/* SPLIT_MORE */
	}
	if (cl->flags & CLIENT_DEAD)
		return;
	/*
	 * Held back (a sink's window is full, or our replies back up): stop
	 * reading the socket until the sink drains or the write callback
	 * fires, rather than being called again for nothing.
	 */
	if (!(cl->flags & CLIENT_EOF)) {
		if ((cl->flags & CLIENT_PAUSED) || !control_client_writable(cl))
			bufferevent_disable(cl->bev, EV_READ);
		else
			bufferevent_enable(cl->bev, EV_READ);
	}
	if (cl->flags & CLIENT_EOF) {
		if (cl->payload_left > 0 && evbuffer_get_length(in) == 0)
			control_client_payload_cut(cl);
		control_client_check_finished(cl);
	}
}

static void
control_client_read_cb(struct bufferevent *bev, void *arg)
{
	struct client	*cl = arg;

	if (!(cl->flags & CLIENT_PAUSED))
		util_bev_slurp(bev, serve_opts.max_line + WIRE_CHUNK);
	control_client_input(cl);
}

static void
control_client_more_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct client	*cl = arg;

	if (cl->flags & CLIENT_OVERFULL)
		control_client_close(cl, "too much unread output");
	else
		control_client_input(cl);
}

static void
control_client_write_cb(__unused struct bufferevent *bev, void *arg)
{
	struct client	*cl = arg;

	util_flush_drained(cl->flush);
	if (cl->flags & CLIENT_DEAD)
		return;
	control_client_pump(cl);
	req_client_drained(cl);
	if (cl->flags & CLIENT_DEAD)
		return;
	if (control_client_writable(cl))
		control_client_input(cl);
	if (!(cl->flags & CLIENT_DEAD))
		control_client_check_finished(cl);
}

/* After EOF, notice when the client closes its side for good. */
static void
control_client_hup_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct client	*cl = arg;
	struct pollfd	 pfd = { cl->fd, 0, 0 };
	struct timeval	 tv = { 0, 200000 };

	if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR))) {
		control_client_close(cl, "closed");
		return;
	}
	evtimer_add(cl->hup, &tv);
}

static void
control_client_event_cb(__unused struct bufferevent *bev, short what,
    void *arg)
{
	struct client	*cl = arg;
	struct timeval	 tv = { 0, 200000 };

	if (what & BEV_EVENT_EOF) {
		/* Half-close: finish what was asked, then close. */
		cl->flags |= CLIENT_EOF;
		bufferevent_disable(cl->bev, EV_READ);
		control_client_input(cl);
		if (!(cl->flags & CLIENT_DEAD))
			evtimer_add(cl->hup, &tv);
		return;
	}
	control_client_close(cl, "error");
}

/* Drop the client: cancel its execs, free it when unreferenced. */
static void
control_client_close(struct client *cl, const char *why)
{
	if (cl->flags & CLIENT_DEAD)
		return;
	log_debug("%s: client fd %d: %s", __func__, cl->fd, why);
	cl->flags |= CLIENT_DEAD;
	TAILQ_REMOVE(&clients, cl, entry);
	nclients--;
	evtimer_del(cl->hup);
	event_del(cl->more);
	req_client_gone(cl);
	util_flush_free(cl->flush);
	cl->flush = NULL;
	bufferevent_free(cl->bev);
	cl->bev = NULL;
	control_client_unref(cl);
}

/*
 * A client whose read side is shut is done once nothing is owed to it:
 * close it when its replies are written.
 */
void
control_client_check_finished(struct client *cl)
{
	if (!(cl->flags & CLIENT_EOF) || (cl->flags & CLIENT_DEAD) ||
	    req_client_pending(cl) != 0)
		return;
	if (evbuffer_get_length(bufferevent_get_output(cl->bev)) == 0)
		control_client_close(cl, "done");
	else	/* the write callback comes when all is written */
		bufferevent_setwatermark(cl->bev, EV_WRITE, 0, 0);
}

/*
 * Refuse a connection with one error line (limit), written as it is to
 * the new socket (it has room for it), then close it.
 */
static void
control_refuse(int fd, const char *fmt, ...)
{
	va_list	 ap;
	json_t	*e;
	char	*s;

	va_start(ap, fmt);
	e = wire_verror("limit", 0, fmt, ap);
	va_end(ap);
	log_warnx("control: refused a connection: %s", json_string_value(
	    json_object_get(e, "message")));
	e = json_pack("{s:b, s:o}", "ok", 0, "error", e);
	if ((s = json_dumps(e, JSON_COMPACT)) != NULL) {
		if (write(fd, s, strlen(s)) == -1 || write(fd, "\n", 1) == -1)
			log_debug("%s: %s", __func__, strerror(errno));
		free(s);
	}
	json_decref(e);
	close(fd);
}

/* How many clients uid has. */
static int
control_uid_clients(uid_t uid)
{
	struct client	*cl;
	int		 n = 0;

	TAILQ_FOREACH(cl, &clients, entry)
		if (cl->uid == uid)
			n++;
	return (n);
}

static void
control_accept_cb(__unused struct evconnlistener *l, evutil_socket_t fd,
    __unused struct sockaddr *sa, __unused int salen, __unused void *arg)
{
	struct client		*cl;
	struct compat_peer	 peer;
	uid_t			 uid = (uid_t)-1;

	if (nclients >= CONTROL_MAX_CLIENTS) {
		control_refuse(fd, "too many control connections (%d)",
		    CONTROL_MAX_CLIENTS);
		return;
	}
	if (compat_peer_cred(fd, &peer) == 0)
		uid = peer.uid;
	if (serve_opts.max_conns != 0 &&
	    control_uid_clients(uid) >= serve_opts.max_conns) {
		control_refuse(fd, "uid %ld has %d control connections already "
		    "(--max-conns %d)", uid == (uid_t)-1 ? -1L : (long)uid,
		    serve_opts.max_conns, serve_opts.max_conns);
		return;
	}
	cl = xcalloc(1, sizeof *cl);
	cl->fd = fd;
	cl->refs = 1;
	cl->uid = uid;
	cl->peer = peer;
	cl->bev = bufferevent_socket_new(ev_base, fd, BEV_OPT_CLOSE_ON_FREE);
	cl->more = event_new(ev_base, -1, 0, control_client_more_cb, cl);
	TAILQ_INIT(&cl->streams);
	cl->hup = evtimer_new(ev_base, control_client_hup_cb, cl);
	bufferevent_setcb(cl->bev, control_client_read_cb,
	    control_client_write_cb, control_client_event_cb, cl);
	/* A whole line must fit; payloads stream through in chunks. */
	bufferevent_setwatermark(cl->bev, EV_READ, 0, serve_opts.max_line +
	    WIRE_CHUNK);
	bufferevent_setwatermark(cl->bev, EV_WRITE, CONTROL_OUT_HIGH / 2, 0);
	/* libevent moves 16 KiB per call by default: too little for bulk. */
	bufferevent_set_max_single_read(cl->bev, WIRE_CHUNK);
	bufferevent_set_max_single_write(cl->bev, WIRE_CHUNK);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
	cl->flush = util_flush_new(cl->bev);
	TAILQ_INSERT_TAIL(&clients, cl, entry);
	nclients++;
	log_debug("%s: client fd %d uid %ld", __func__, fd, (long)cl->uid);
}

/*
 * Listen on the control socket at path with mode. A stale socket file is
 * replaced; a live one is an error.
 */
int
control_listen(const char *path, int mode, char **cause)
{
	struct sockaddr_un	 sun;
	char			*dir, *slash;
	int			 fd, probe;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		xasprintf(cause, "control socket path too long: %s", path);
		return (-1);
	}
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0)
			log_info("created %s", dir);
	}
	free(dir);

	if ((probe = socket(AF_UNIX, SOCK_STREAM, 0)) != -1) {
		if (connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) {
			close(probe);
			xasprintf(cause, "control socket %s: a server is "
			    "already running there", path);
			return (-1);
		}
		close(probe);
	}
	if (unlink(path) == 0)
		log_info("removed stale control socket %s", path);

	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1) {
		xasprintf(cause, "socket: %s", strerror(errno));
		return (-1);
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		xasprintf(cause, "bind %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	if (chmod(path, (mode_t)mode) == -1) {
		xasprintf(cause, "chmod %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	control_listener = evconnlistener_new(ev_base, control_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE, 128, fd);
	if (control_listener == NULL) {
		xasprintf(cause, "listen %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	control_path = xstrdup(path);
	return (0);
}

/* Close every client and the socket; remove the socket file. */
void
control_close(void)
{
	struct client	*cl;

	while ((cl = TAILQ_FIRST(&clients)) != NULL)
		control_client_close(cl, "server stopping");
	if (control_listener != NULL) {
		evconnlistener_free(control_listener);
		control_listener = NULL;
	}
	if (control_path != NULL) {
		unlink(control_path);
		free(control_path);
		control_path = NULL;
	}
}

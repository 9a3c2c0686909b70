/*
 * control-attach.c: each control connection's view of a session (struct
 * sconn): whether it is attached and read-only, where its output events
 * stand, where its last session.read ended. The ops session.attach,
 * session.detach and session.read are here.
 *
 * The controller holds a session's output only until every attached
 * connection took it (control-session.c acks as the slowest one
 * advances). A connection attached with `since` older than what is held
 * gets the older part replayed from the worker's ring first
 * (session.read calls of bounded size, fetched as the client keeps up),
 * so nothing between is lost or repeated. session.read always asks the
 * worker's ring.
 *
 * Output events carry the bytes JSON-escaped in "data" (or "data_b64"),
 * never splitting a UTF-8 sequence; a connection attached with "raw"
 * gets "bytes": N instead, followed by the N bytes as they are (the raw
 * payload framing of get), copied once from where they are held.
 */
#include <sys/types.h>

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"
#include "control-session.h"

#define SESSION_EVENT_MAX	(64 * 1024)	/* bytes per output event */
#define SESSION_RAW_MAX		(256 * 1024)	/* the same, raw */
#define SESSION_RPC_CHUNK	(128 * 1024)	/* bytes per ring read */

struct sconn {
	struct session	*s;
	struct client	*cl;
	int		 attached;
	int		 readonly;
	int		 raw;		/* output as raw payloads */
	int		 exit_sent;
	uint64_t	 pos;		/* next offset for its events */
	struct evbuffer	*rbuf;		/* replayed from the ring */
	uint64_t	 rpos;		/* offset of rbuf's first byte */
	uint64_t	 fetch_from;
	struct worker_rpc *fetch;	/* replay read in flight */
	int		 has_read;
	uint64_t	 read_off;	/* where its last session.read ended */
	TAILQ_ENTRY(sconn) entry;
};

/* A session.read being collected over one or more calls. */
struct sread {
	char		 id[40];
	struct evbuffer	*acc;
	uint64_t	 start;
	uint64_t	 next;
	uint64_t	 end;		/* of the ring at the last read */
	size_t		 max;
	int		 first;
	int		 matched;
	int		 exited;
	int		 truncated;
	json_t		*exit_code;
	json_t		*signal;
};

static void	 sconn_deliver(struct sconn *);

static struct sconn *
sconn_find(struct session *s, struct client *cl)
{
	struct sconn	*a;

	TAILQ_FOREACH(a, &s->conns, entry)
		if (a->cl == cl)
			return (a);
	return (NULL);
}

static struct sconn *
sconn_get(struct session *s, struct client *cl)
{
	struct sconn	*a;

	if ((a = sconn_find(s, cl)) != NULL)
		return (a);
	a = xcalloc(1, sizeof *a);
	a->s = s;
	a->cl = control_client_ref(cl);
	a->rbuf = evbuffer_new();
	TAILQ_INSERT_TAIL(&s->conns, a, entry);
	return (a);
}

/* Stop a replay in flight. */
static void
sconn_stop_replay(struct sconn *a)
{
	if (a->fetch != NULL) {
		server_worker_rpc_cancel(a->fetch);
		a->fetch = NULL;
	}
	evbuffer_drain(a->rbuf, evbuffer_get_length(a->rbuf));
}

static void
sconn_free(struct sconn *a)
{
	sconn_stop_replay(a);
	TAILQ_REMOVE(&a->s->conns, a, entry);
	evbuffer_free(a->rbuf);
	control_client_unref(a->cl);
	free(a);
}

/* Send the exit event to an attached connection. */
static void
sconn_send_exit(struct sconn *a, json_t *error)
{
	json_t	*ev;

	if (a->exit_sent || !a->attached)
		return;
	a->exit_sent = 1;
	ev = json_pack("{s:s, s:s, s:O, s:O}", "event", "exit", "session",
	    a->s->id, "exit_code", a->s->exit_code, "signal", a->s->signal);
	if (a->s->reason != NULL)
		json_object_set(ev, "reason", a->s->reason);
	if (error != NULL)
		json_object_set(ev, "error", error);
	control_client_send(a->cl, ev);
	json_decref(ev);
}

/* The replay's ring read came back. */
static void
sconn_fetch_done(json_t *res, void *arg)
{
	struct sconn	*a = arg;
	struct session	*s = a->s;
	struct evbuffer	*data;
	uint64_t	 start, base = session_base(s);
	char		*cause = NULL;

	a->fetch = NULL;
	data = evbuffer_new();
	if (!json_is_true(json_object_get(res, "ok")) ||
	    util_json_get_bytes(res, "data", data, &cause) != 1) {
		free(cause);
		evbuffer_drain(a->rbuf, evbuffer_get_length(a->rbuf));
		if (a->pos < base)
			a->pos = base;
	} else {
		start = (uint64_t)json_integer_value(json_object_get(res,
		    "start"));
		if (start != a->fetch_from) {
			/* The ring no longer has it all: skip the gap. */
			evbuffer_drain(a->rbuf, evbuffer_get_length(a->rbuf));
			a->rpos = start;
			if (a->pos < start)
				a->pos = start;
		} else if (evbuffer_get_length(a->rbuf) == 0)
			a->rpos = start;
		if (evbuffer_get_length(data) == 0) {
			evbuffer_drain(a->rbuf, evbuffer_get_length(a->rbuf));
			if (a->pos < base)
				a->pos = base;
		} else
			evbuffer_add_buffer(a->rbuf, data);
		if (a->pos >= base)
			evbuffer_drain(a->rbuf, evbuffer_get_length(a->rbuf));
	}
	evbuffer_free(data);
	sconn_deliver(a);
	session_consume(s);
}

/* Ask the worker's ring for the replayed bytes from `from` up to base. */
static void
sconn_fetch(struct sconn *a, uint64_t from, uint64_t base)
{
	json_t	*m;

	if (a->fetch != NULL)
		return;
	a->fetch_from = from;
	m = json_pack("{s:s, s:s, s:I, s:I, s:i}", "op", "session.read",
	    "session", a->s->id, "since", (json_int_t)from, "limit",
	    (json_int_t)base, "max", SESSION_RPC_CHUNK);
	a->fetch = server_worker_rpc(a->s->c->worker, m, sconn_fetch_done, a);
}

/*
 * Copy what a connection gets next, from its position: replayed bytes,
 * then (when they reach it) held ones. Returns how many.
 */
static size_t
sconn_copy(struct sconn *a, uint8_t *dst, size_t max)
{
	struct session		*s = a->s;
	struct evbuffer_ptr	 ptr;
	uint64_t		 pos = a->pos, base = session_base(s);
	uint64_t		 recv = session_recv(s), rend;
	size_t			 n = 0, k;

	if (pos < base) {
		rend = a->rpos + evbuffer_get_length(a->rbuf);
		if (pos < a->rpos || pos >= rend)
			return (0);
		k = (size_t)(rend - pos);
		if (k > max)
			k = max;
		evbuffer_ptr_set(a->rbuf, &ptr, (size_t)(pos - a->rpos),
		    EVBUFFER_PTR_SET);
		evbuffer_copyout_from(a->rbuf, &ptr, dst, k);
		n = k;
		pos += k;
		if (pos < base || n == max)
			return (n);
	}
	k = (size_t)(recv - pos);
	if (k > max - n)
		k = max - n;
	session_copy_held(s, pos, dst + n, k);
	return (n + k);
}

/* How many bytes sconn_copy() would give at most. */
static size_t
sconn_avail(struct sconn *a)
{
	uint64_t	pos = a->pos, base = session_base(a->s), rend;
	size_t		n = 0;

	if (pos < base) {
		rend = a->rpos + evbuffer_get_length(a->rbuf);
		if (pos < a->rpos || pos >= rend)
			return (0);
		n = (size_t)(rend - pos);
		if ((pos += n) < base)
			return (n);
	}
	return (n + (size_t)(session_recv(a->s) - pos));
}

/* The next output event as a raw payload; how many bytes it has. */
static size_t
sconn_send_raw(struct sconn *a)
{
	struct evbuffer		*b;
	struct evbuffer_iovec	 v;
	size_t			 n = sconn_avail(a);
	json_t			*ev;

	if (n == 0)
		return (0);
	if (n > SESSION_RAW_MAX)
		n = SESSION_RAW_MAX;
	b = evbuffer_new();
	if (evbuffer_reserve_space(b, (ev_ssize_t)n, &v, 1) < 1)
		fatalx("%s: evbuffer_reserve_space", __func__);
	v.iov_len = n = sconn_copy(a, v.iov_base, n);
	evbuffer_commit_space(b, &v, 1);
	ev = json_pack("{s:s, s:s, s:I}", "event", "output", "session",
	    a->s->id, "offset", (json_int_t)a->pos);
	control_client_send_raw(a->cl, ev, b);
	json_decref(ev);
	evbuffer_free(b);
	return (n);
}

/*
 * The next output event with the bytes in JSON, never splitting a UTF-8
 * sequence (but at the end); how many bytes it has. buf holds
 * SESSION_EVENT_MAX.
 */
static size_t
sconn_send_json(struct sconn *a, uint8_t *buf)
{
	size_t	n, whole;
	int	valid;
	json_t	*ev;

	if ((n = sconn_copy(a, buf, SESSION_EVENT_MAX)) == 0)
		return (0);
	whole = util_utf8_complete(buf, n, &valid);
	if (!valid || ((a->s->c->flags & CHAN_ENDED) &&
	    a->pos + n == session_recv(a->s)))
		whole = n;
	if (whole == 0)
		return (0);
	ev = json_pack("{s:s, s:s, s:I}", "event", "output", "session",
	    a->s->id, "offset", (json_int_t)a->pos);
	util_json_set_bytes(ev, "data", buf, whole);
	control_client_send(a->cl, ev);
	json_decref(ev);
	return (whole);
}

/*
 * Send a connection its output events while it keeps up, then the exit
 * event once all is sent.
 */
static void
sconn_deliver(struct sconn *a)
{
	struct session	*s = a->s;
	uint8_t		*buf = NULL;
	uint64_t	 base, rend;
	size_t		 whole, d;
	int		 ended = (s->c->flags & CHAN_ENDED) != 0;

	if (!a->attached || control_client_dead(a->cl))
		return;
	if (!a->raw)
		buf = xmalloc(SESSION_EVENT_MAX);
	while (control_client_writable(a->cl)) {
		base = session_base(s);
		rend = a->rpos + evbuffer_get_length(a->rbuf);
		whole = a->raw ? sconn_send_raw(a) : sconn_send_json(a, buf);
		if (whole == 0) {
			/* Replay: fetch (more of) it from the ring. */
			if (a->pos < base && sconn_avail(a) == 0) {
				evbuffer_drain(a->rbuf,
				    evbuffer_get_length(a->rbuf));
				sconn_fetch(a, a->pos, base);
			} else if (a->pos < base && rend < base)
				sconn_fetch(a, rend, base);
			break;
		}
		a->pos += whole;
		if ((d = evbuffer_get_length(a->rbuf)) > 0 &&
		    a->pos > a->rpos) {
			if (d > a->pos - a->rpos)
				d = (size_t)(a->pos - a->rpos);
			evbuffer_drain(a->rbuf, d);
			a->rpos += d;
		}
	}
	free(buf);
	if (ended && s->exited && a->pos >= session_recv(s))
		sconn_send_exit(a, NULL);
}

/* ---- for control-session.c ---- */

/* Is r's connection attached read-only? Replies denied if so. */
int
attach_readonly(struct req *r, struct session *s)
{
	struct sconn	*a = sconn_find(s, r->client);

	if (a != NULL && a->attached && a->readonly) {
		req_error(r, "denied", "this connection is attached to session "
		    "%s read-only", s->id);
		return (1);
	}
	return (0);
}

/* The connection that opened s is attached from the start (raw: so). */
void
attach_on_open(struct session *s, struct client *cl, int raw)
{
	struct sconn	*a;

	if (control_client_dead(cl))
		return;
	a = sconn_get(s, cl);
	a->attached = 1;
	a->raw = raw;
	a->pos = 0;
}

/* How many connections are attached. */
int
attach_count(struct session *s)
{
	struct sconn	*a;
	int		 n = 0;

	TAILQ_FOREACH(a, &s->conns, entry)
		if (a->attached)
			n++;
	return (n);
}

/* Send every attached connection what it may take. */
void
attach_deliver_all(struct session *s)
{
	struct sconn	*a;

	TAILQ_FOREACH(a, &s->conns, entry)
		sconn_deliver(a);
}

/* The session is over: deliver the rest, then the exit event. */
void
attach_exit_all(struct session *s, json_t *error)
{
	struct sconn	*a;

	TAILQ_FOREACH(a, &s->conns, entry) {
		sconn_deliver(a);
		sconn_send_exit(a, error);
	}
}

void
attach_free_all(struct session *s)
{
	struct sconn	*a;

	while ((a = TAILQ_FIRST(&s->conns)) != NULL)
		sconn_free(a);
}

/* Lower *min to the slowest attached connection's position; 1 if any. */
int
attach_min(struct session *s, uint64_t *min)
{
	struct sconn	*a;
	int		 any = 0;

	TAILQ_FOREACH(a, &s->conns, entry) {
		if (a->attached && !control_client_dead(a->cl) &&
		    a->pos < *min) {
			*min = a->pos;
			any = 1;
		}
	}
	return (any);
}

/* A control connection closed: its views of sessions go. */
void
attach_client_gone(struct client *cl)
{
	struct session	*s;
	struct sconn	*a;
	int		 changed;

	for (s = session_next(NULL); s != NULL; s = session_next(s)) {
		changed = 0;
		while ((a = sconn_find(s, cl)) != NULL) {
			sconn_free(a);
			changed = 1;
		}
		if (changed)
			session_consume(s);
	}
}

/* A control connection can take more: send it what waits. */
void
attach_client_drained(struct client *cl)
{
	struct session	*s;
	struct sconn	*a;

	for (s = session_next(NULL); s != NULL; s = session_next(s)) {
		if ((a = sconn_find(s, cl)) == NULL || !a->attached)
			continue;
		sconn_deliver(a);
		session_consume(s);
		if (control_client_dead(cl) || !control_client_writable(cl))
			return;
	}
}

/* ---- ops ---- */

void
control_session_attach(struct req *r)
{
	struct session	*s;
	struct sconn	*a;
	json_t		*since = req_field(r, "since");
	uint64_t	 recv;

	if ((s = session_get(r)) == NULL)
		return;
	a = sconn_get(s, r->client);
	sconn_stop_replay(a);
	recv = session_recv(s);
	a->attached = 1;
	a->readonly = req_bool(r, "readonly", 0);
	a->raw = req_bool(r, "raw", 0);
	a->exit_sent = 0;
	a->pos = since != NULL && (uint64_t)json_integer_value(since) < recv ?
	    (uint64_t)json_integer_value(since) : recv;
	req_reply(r, json_pack("{s:s, s:I}", "session", s->id, "offset",
	    (json_int_t)a->pos));
	sconn_deliver(a);
	session_consume(s);
}

void
control_session_detach(struct req *r)
{
	struct session	*s;
	struct sconn	*a;

	if ((s = session_get(r)) == NULL)
		return;
	if ((a = sconn_find(s, r->client)) != NULL && a->attached) {
		sconn_stop_replay(a);
		a->attached = 0;
		a->readonly = 0;
		session_consume(s);
	}
	req_reply(r, json_object());
}

static void
sread_free(void *arg)
{
	struct sread	*sr = arg;

	evbuffer_free(sr->acc);
	json_decref(sr->exit_code);
	json_decref(sr->signal);
	free(sr);
}

/* Take the fields of a ring read that came back; 1 to read on. */
static int
sread_add(struct sread *sr, json_t *res, struct evbuffer *data)
{
	uint64_t	start, off, end;
	int		more = 0;

	start = (uint64_t)json_integer_value(json_object_get(res, "start"));
	off = (uint64_t)json_integer_value(json_object_get(res, "offset"));
	end = (uint64_t)json_integer_value(json_object_get(res, "end"));
	if (sr->first) {
		sr->first = 0;
		sr->start = sr->next = start;
		sr->matched = json_is_true(json_object_get(res, "matched"));
		sr->truncated = json_is_true(json_object_get(res,
		    "truncated"));
	}
	if (start == sr->next) {
		evbuffer_add_buffer(sr->acc, data);
		sr->next = off;
		more = off < end && evbuffer_get_length(sr->acc) < sr->max;
	}
	sr->exited = json_is_true(json_object_get(res, "exited"));
	json_decref(sr->exit_code);
	json_decref(sr->signal);
	sr->exit_code = json_incref(json_object_get(res, "exit_code"));
	sr->signal = json_incref(json_object_get(res, "signal"));
	if (more) {
		sr->end = end;
		return (1);
	}
	return (0);
}

/* The answer of a session.read from what was collected. */
static json_t *
sread_reply(struct sread *sr, size_t *taken)
{
	size_t	 n = evbuffer_get_length(sr->acc), whole;
	uint8_t	*p = evbuffer_pullup(sr->acc, -1);
	int	 valid;
	json_t	*reply;

	if (!sr->exited && n > 0) {
		/* Leave a cut UTF-8 sequence for the next read. */
		whole = util_utf8_complete(p, n, &valid);
		if (valid)
			n = whole;
	}
	reply = json_pack("{s:I, s:I, s:b, s:b, s:b}", "offset",
	    (json_int_t)(sr->start + n), "start", (json_int_t)sr->start,
	    "matched", sr->matched, "exited", sr->exited, "truncated",
	    sr->truncated);
	util_json_set_bytes(reply, "data", p, n);
	if (sr->exited) {
		json_object_set(reply, "exit_code", sr->exit_code != NULL ?
		    sr->exit_code : json_null());
		json_object_set(reply, "signal", sr->signal != NULL ?
		    sr->signal : json_null());
	}
	*taken = n;
	return (reply);
}

/* A ring read came back: read on, or answer. */
static void
session_read_done(struct req *r, json_t *res)
{
	struct sread	*sr = r->data;
	struct session	*s;
	struct evbuffer	*data;
	char		*cause = NULL;
	size_t		 n;
	json_t		*m, *reply;
	int		 more;

	if (!json_is_true(json_object_get(res, "ok"))) {
		req_rpc_forward(r, res);
		return;
	}
	data = evbuffer_new();
	if (util_json_get_bytes(res, "data", data, &cause) < 0) {
		free(cause);
		evbuffer_free(data);
		req_error(r, "internal", "bad ring read from the worker");
		return;
	}
	more = sread_add(sr, res, data);
	evbuffer_free(data);
	s = session_find(sr->id);
	if (more && s != NULL) {
		n = sr->max - evbuffer_get_length(sr->acc);
		m = json_pack("{s:s, s:s, s:I, s:I, s:I}", "op", "session.read",
		    "session", sr->id, "since", (json_int_t)sr->next, "limit",
		    (json_int_t)sr->end, "max", (json_int_t)(n <
		    SESSION_RPC_CHUNK ? n : SESSION_RPC_CHUNK));
		req_rpc(r, s->c->worker, m, session_read_done);
		return;
	}
	reply = sread_reply(sr, &n);
	if (s != NULL && !control_client_dead(r->client)) {
		struct sconn *a = sconn_get(s, r->client);

		a->has_read = 1;
		a->read_off = sr->start + n;
	}
	req_reply(r, reply);
}

void
control_session_read(struct req *r)
{
	struct session	*s;
	struct sconn	*a;
	struct sread	*sr;
	const char	*until = req_string(r, "until");
	regex_t		 re;
	char		 errbuf[128];
	int		 e;
	json_t		*m;

	if (until != NULL) {
		if ((e = regcomp(&re, until, REG_EXTENDED | REG_NOSUB)) != 0) {
			regerror(e, &re, errbuf, sizeof errbuf);
			req_error(r, "bad_request", "field 'until': %s",
			    errbuf);
			return;
		}
		regfree(&re);
	}
	if ((s = session_get(r)) == NULL)
		return;
	sr = xcalloc(1, sizeof *sr);
	snprintf(sr->id, sizeof sr->id, "%s", s->id);
	sr->acc = evbuffer_new();
	sr->first = 1;
	sr->max = (size_t)req_int(r, "max_bytes",
	    (json_int_t)serve_opts.max_output);
	r->data = sr;
	r->data_free = sread_free;
	m = json_pack("{s:s, s:s, s:I}", "op", "session.read", "session",
	    s->id, "max", (json_int_t)(sr->max < SESSION_RPC_CHUNK ? sr->max :
	    SESSION_RPC_CHUNK));
	a = sconn_find(s, r->client);
	if (req_field(r, "since") != NULL)
		json_object_set(m, "since", req_field(r, "since"));
	else if (a != NULL && a->has_read)
		json_object_set_new(m, "since", json_integer(
		    (json_int_t)a->read_off));
	if (until != NULL) {
		json_object_set_new(m, "until", json_string(until));
		if (req_field(r, "timeout") != NULL)
			json_object_set(m, "timeout", req_field(r, "timeout"));
	}
	req_rpc(r, s->c->worker, m, session_read_done);
}

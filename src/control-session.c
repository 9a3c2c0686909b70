/*
 * control-session.c: PTY sessions on the controller side.
 *
 * A session is a channel of kind CHAN_SESSION; its id is the channel's
 * handle. The worker owns the program and a ring of its recent output;
 * the controller holds only what it received and not every attached
 * client has taken yet (at most the worker's window), and acks as the
 * slowest attached client takes bytes, at once when nobody is attached.
 * A client attached with `since` older than what is held gets the older
 * part replayed from the worker's ring first (session.read RPCs of
 * bounded size, fetched as the client keeps up), so nothing between is
 * lost or repeated. session.read always asks the worker's ring.
 *
 * Per connection and session there is a struct sconn: attached or not,
 * where its events stand, where its last session.read ended.
 *
 * session.run is done here, as one more consumer of the output stream.
 * The design: the line is typed into the shell wrapped as
 *
 *   ^U [stty -echo 2>/dev/null || :;] command printf '\033]sandd;B;N\007';
 *   if command eval 'CMD'; then command printf '\033]sandd;E;N;0\007';
 *   else command printf '\033]sandd;E;N;%d\007' "$?"; fi
 *
 * on one line, N a fresh random nonce. The markers are OSC sequences, so
 * a terminal attached to the session ignores them, and they appear in the
 * output only when printf runs: the echo of the line (if any) holds the
 * text \033, not the byte, and so do the prompt (printed after E) and
 * the shell's bracketed-paste switches (before B). The output of the run
 * is what lies between B and E. The whole command is one line that the
 * shell reads entirely before running anything, so a command that reads
 * stdin finds the terminal empty (it cannot swallow the end marker).
 * eval keeps the shell's state (cwd, variables, functions) and runs the
 * command in the current shell; "command eval" turns a syntax error into
 * status 2 instead of aborting the line (dash). Inside an if condition
 * errexit is ignored, so `set -e; false` does not kill the shell (a
 * consequence: set -e has no effect inside a run). CMD is single-quoted;
 * when it holds bytes outside printable ASCII (a tab would trigger
 * readline completion, a newline would submit early) it is rebuilt by
 * printf from octal escapes instead. `stty -echo` is sent once per
 * session so that shells without line editing do not echo either; the
 * leading ^U drops anything typed and not yet entered, and the leading
 * space keeps the line out of the history (HISTCONTROL=ignorespace). On
 * timeout a Ctrl-C (\003) is typed: the terminal sends SIGINT to the
 * foreground job; the reply waits RUN_GRACE for the end marker (the shell
 * usually abandons the line instead), then goes with the output so far.
 * An `exit` in the line ends the session: the reply then carries the
 * session's exit status and "exited":true. Runs on one session are
 * queued, one at a time.
 */
#include <sys/types.h>

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

#define SESSION_EVENT_MAX	(64 * 1024)	/* bytes per output event */
#define SESSION_RPC_CHUNK	(128 * 1024)	/* bytes per ring read */
#define RUN_GRACE		0.5	/* s to wait for E after Ctrl-C */

struct session;

/* One control connection's view of one session. */
struct sconn {
	struct session	*s;
	struct client	*cl;
	int		 attached;
	int		 readonly;
	int		 exit_sent;
	uint64_t	 pos;		/* next offset for its events */
	struct evbuffer	*rbuf;		/* replayed from the ring */
	uint64_t	 rpos;		/* offset of rbuf's first byte */
	uint64_t	 fetch_from;
	struct req	*rreq;		/* replay RPC in flight */
	int		 has_read;
	uint64_t	 read_off;	/* where its last session.read ended */
	TAILQ_ENTRY(sconn) entry;
};

/* One session.run. */
struct srun {
	struct session	*s;
	struct req	*req;
	char		 nonce[17];
	char		*cmd;
	double		 timeout;
	int		 state;
#define RUN_QUEUED	0
#define RUN_WAIT_B	1	/* before the begin marker */
#define RUN_OUTPUT	2	/* between the markers */
	uint64_t	 pos;		/* next stream offset to scan */
	struct evbuffer	*pend;		/* scanned, may be part of a marker */
	struct evbuffer	*out;
	size_t		 max;
	int		 truncated;
	int		 timed_out;
	size_t		 cut;		/* output length at the Ctrl-C */
	struct event	*timer;
	TAILQ_ENTRY(srun) entry;
};

struct session {
	struct chan	*c;
	char		 id[40];
	char		 worker[WORKER_ID_MAX + 1];
	struct req	*open_req;
	int		 attach_on_open;
	int		 started;
	int		 exited;
	int		 announced;	/* "exited" sent to subscribers */
	json_t		*exit_code;
	json_t		*signal;
	json_int_t	 pid;
	char		*cmd;
	int		 rows;
	int		 cols;
	char		 created[32];
	int		 shell_ready;	/* stty -echo sent */
	TAILQ_HEAD(, sconn) conns;
	TAILQ_HEAD(, srun) runs;
	TAILQ_ENTRY(session) entry;
};
static TAILQ_HEAD(, session) sessions = TAILQ_HEAD_INITIALIZER(sessions);

/* A session.read being collected over one or more RPCs. */
struct sread {
	char		 id[40];
	struct evbuffer	*acc;
	uint64_t	 start;
	uint64_t	 next;
	size_t		 max;
	int		 first;
	int		 matched;
	int		 exited;
	int		 truncated;
	json_t		*exit_code;
	json_t		*signal;
};

static void	 session_pump(struct session *);
static void	 session_consume(struct session *);
static void	 sconn_deliver(struct sconn *);
static void	 run_next(struct session *);
static void	 run_finish(struct srun *, json_t *, int);

/* ---- sessions ---- */

static struct session *
session_find(const char *id)
{
	struct session	*s;

	TAILQ_FOREACH(s, &sessions, entry)
		if (strcmp(s->id, id) == 0)
			return (s);
	return (NULL);
}

/* The state of a new session channel. */
static struct session *
session_create(struct chan *c)
{
	struct session	*s;

	s = xcalloc(1, sizeof *s);
	s->c = c;
	snprintf(s->id, sizeof s->id, "%s", c->handle);
	snprintf(s->worker, sizeof s->worker, "%s",
	    server_worker_id(c->worker));
	s->exit_code = json_null();
	s->signal = json_null();
	s->pid = -1;
	s->rows = 24;
	s->cols = 80;
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->runs);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	c->data = s;
	return (s);
}

/*
 * The session named in r's "session" field; NULL after replying
 * bad_request or no_such_session (r is then freed).
 */
static struct session *
session_get(struct req *r)
{
	const char	*id = NULL;
	struct session	*s;
	int		 have;

	if ((have = req_get_string(r, "session", &id)) != 1) {
		if (have == 0)
			req_error(r, "bad_request", "field 'session' is "
			    "required");
		return (NULL);
	}
	if ((s = session_find(id)) == NULL || !s->started) {
		req_error(r, "no_such_session", "no session '%s'", id);
		return (NULL);
	}
	return (s);
}

/* Bytes held for the session's events: [base, recv). */
static uint64_t
session_recv(struct session *s)
{
	return (s->c->recv[WIRE_OUT]);
}

static uint64_t
session_base(struct session *s)
{
	return (s->c->recv[WIRE_OUT] -
	    evbuffer_get_length(s->c->out[WIRE_OUT]));
}

/* Copy held bytes at [off, off+n) (all inside what is held) to dst. */
static void
session_copy_held(struct session *s, uint64_t off, uint8_t *dst, size_t n)
{
	struct evbuffer_ptr	ptr;

	if (n == 0)
		return;
	evbuffer_ptr_set(s->c->out[WIRE_OUT], &ptr,
	    (size_t)(off - session_base(s)), EVBUFFER_PTR_SET);
	evbuffer_copyout_from(s->c->out[WIRE_OUT], &ptr, dst, n);
}

/* Tell subscribers about the session. */
static void
session_announce(struct session *s, const char *state)
{
	json_t	*ev;

	ev = json_pack("{s:s, s:s, s:s, s:s}", "event", "session", "session",
	    s->id, "worker", s->worker, "state", state);
	control_broadcast_event(TOPIC_SESSIONS, ev);
	json_decref(ev);
}

/* ---- connections ---- */

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
	struct req	*r = a->rreq;

	if (r != NULL) {
		a->rreq = NULL;
		r->data = NULL;
		r->data_free = NULL;
		req_free(r);
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
	if (error != NULL)
		json_object_set(ev, "error", error);
	control_client_send(a->cl, ev);
	json_decref(ev);
}

/* The replay's ring read came back. */
static void
sconn_fetch_done(struct req *r, json_t *res)
{
	struct sconn	*a = r->data;
	struct session	*s;
	struct evbuffer	*data;
	uint64_t	 start, base;
	char		*cause = NULL;

	a->rreq = NULL;
	r->data = NULL;
	r->data_free = NULL;
	req_free(r);
	s = a->s;
	base = session_base(s);
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

static void
sconn_rreq_gone(void *arg)
{
	struct sconn	*a = arg;

	a->rreq = NULL;
}

/* Ask the worker's ring for the replayed bytes from `from` up to base. */
static void
sconn_fetch(struct sconn *a, uint64_t from, uint64_t base)
{
	struct req	*r;
	json_t		*m;

	if (a->rreq != NULL)
		return;
	m = json_pack("{s:s}", "op", "session.replay");
	r = req_create(a->cl, m);
	json_decref(m);
	r->flags |= REQ_SUBSCRIPTION;	/* owes no reply */
	r->data = a;
	r->data_free = sconn_rreq_gone;
	a->rreq = r;
	a->fetch_from = from;
	m = json_pack("{s:s, s:s, s:I, s:I, s:i}", "op", "session.read",
	    "session", a->s->id, "since", (json_int_t)from, "limit",
	    (json_int_t)base, "max", SESSION_RPC_CHUNK);
	control_cmd_rpc(r, a->s->c->worker, m, sconn_fetch_done);
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

/*
 * Send a connection its output events while it keeps up, never
 * splitting a UTF-8 sequence; then the exit event once all is sent.
 */
static void
sconn_deliver(struct sconn *a)
{
	struct session	*s = a->s;
	struct chan	*c = s->c;
	uint8_t		*buf;
	uint64_t	 base, recv, rend;
	size_t		 n, whole, d;
	int		 valid, ended = (c->flags & CHAN_ENDED) != 0;
	json_t		*ev;

	if (!a->attached || control_client_dead(a->cl))
		return;
	buf = xmalloc(SESSION_EVENT_MAX);
	while (control_client_writable(a->cl)) {
		base = session_base(s);
		recv = session_recv(s);
		rend = a->rpos + evbuffer_get_length(a->rbuf);
		n = sconn_copy(a, buf, SESSION_EVENT_MAX);
		whole = 0;
		if (n > 0) {
			whole = util_utf8_complete(buf, n, &valid);
			if (!valid || (ended && a->pos + n == recv))
				whole = n;
		}
		if (whole == 0) {
			/* Replay: fetch (more of) it from the ring. */
			if (a->pos < base && n == 0) {
				evbuffer_drain(a->rbuf,
				    evbuffer_get_length(a->rbuf));
				sconn_fetch(a, a->pos, base);
			} else if (a->pos < base && rend < base)
				sconn_fetch(a, rend, base);
			break;
		}
		ev = json_pack("{s:s, s:s, s:I}", "event", "output", "session",
		    s->id, "offset", (json_int_t)a->pos);
		util_json_set_bytes(ev, "data", buf, whole);
		control_client_send(a->cl, ev);
		json_decref(ev);
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

/* Drop held bytes every consumer has taken and ack them. */
static void
session_consume(struct session *s)
{
	struct chan	*c = s->c;
	struct sconn	*a;
	struct srun	*u;
	uint64_t	 base = session_base(s), min = session_recv(s);

	TAILQ_FOREACH(a, &s->conns, entry)
		if (a->attached && !control_client_dead(a->cl) && a->pos < min)
			min = a->pos;
	if ((u = TAILQ_FIRST(&s->runs)) != NULL && u->state != RUN_QUEUED &&
	    u->pos < min)
		min = u->pos;
	if (min > base)
		evbuffer_drain(c->out[WIRE_OUT], (size_t)(min - base));
	chan_ack(c, 0);
}

/* ---- runs ---- */

/* Keep up to max bytes of a run's output. */
static void
run_commit(struct srun *u, struct evbuffer *from, size_t n)
{
	size_t	have = evbuffer_get_length(u->out), keep;

	keep = have < u->max ? u->max - have : 0;
	if (keep > n)
		keep = n;
	if (keep < n)
		u->truncated = 1;
	evbuffer_remove_buffer(from, u->out, keep);
	evbuffer_drain(from, n - keep);
}

/* Look for the markers in what the run has seen. */
static void
run_scan(struct srun *u)
{
	struct evbuffer_ptr	 p;
	char			 marker[64], tail[16];
	size_t			 mlen, len, i, k;
	json_t			*code;

	for (;;) {
		len = evbuffer_get_length(u->pend);
		if (u->state == RUN_WAIT_B) {
			mlen = (size_t)snprintf(marker, sizeof marker,
			    "\033]sandd;B;%s\007", u->nonce);
			p = evbuffer_search(u->pend, marker, mlen, NULL);
			if (p.pos == -1) {
				if (len >= mlen)
					evbuffer_drain(u->pend, len - mlen + 1);
				return;
			}
			evbuffer_drain(u->pend, (size_t)p.pos + mlen);
			u->state = RUN_OUTPUT;
			continue;
		}
		if (u->state != RUN_OUTPUT)
			return;
		mlen = (size_t)snprintf(marker, sizeof marker,
		    "\033]sandd;E;%s;", u->nonce);
		p = evbuffer_search(u->pend, marker, mlen, NULL);
		if (p.pos == -1) {
			if (len >= mlen)
				run_commit(u, u->pend, len - mlen + 1);
			return;
		}
		run_commit(u, u->pend, (size_t)p.pos);
		len = evbuffer_get_length(u->pend);
		k = len - mlen < sizeof tail - 1 ? len - mlen :
		    sizeof tail - 1;
		evbuffer_ptr_set(u->pend, &p, mlen, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(u->pend, &p, tail, k);
		tail[k] = '\0';
		for (i = 0; i < k && tail[i] >= '0' && tail[i] <= '9'; i++)
			;
		if (i < k && i > 0 && tail[i] == '\007') {
			evbuffer_drain(u->pend, mlen + i + 1);
			code = json_integer(strtol(tail, NULL, 10));
			run_finish(u, code, 0);
			return;
		}
		if (i == k && k < sizeof tail - 1)
			return;		/* the rest has not come yet */
		/* Not our marker after all: it is output. */
		run_commit(u, u->pend, 1);
	}
}

/* Give the active run the new held bytes. */
static void
run_feed(struct session *s)
{
	struct srun	*u = TAILQ_FIRST(&s->runs);
	uint64_t	 base = session_base(s), recv = session_recv(s);
	uint8_t		*buf;
	size_t		 n;

	if (u == NULL || u->state == RUN_QUEUED)
		return;
	if (u->pos < base)
		u->pos = base;
	if ((n = (size_t)(recv - u->pos)) == 0)
		return;
	buf = xmalloc(n);
	session_copy_held(s, u->pos, buf, n);
	evbuffer_add(u->pend, buf, n);
	free(buf);
	u->pos = recv;
	run_scan(u);
}

static void
run_free(struct srun *u)
{
	if (u->timer != NULL)
		event_free(u->timer);
	evbuffer_free(u->pend);
	evbuffer_free(u->out);
	free(u->cmd);
	free(u);
}

/*
 * Reply to the run (code: the exit status, stolen; NULL when unknown)
 * and start the next one.
 */
static void
run_finish(struct srun *u, json_t *code, int exited)
{
	struct session	*s = u->s;
	struct req	*r = u->req;
	json_t		*reply;
	uint8_t		*p, *q;
	size_t		 n, i, j;
	int		 was_active = u->state != RUN_QUEUED;

	TAILQ_REMOVE(&s->runs, u, entry);
	if (r != NULL) {
		r->data = NULL;
		r->data_free = NULL;
		n = evbuffer_get_length(u->out);
		p = evbuffer_pullup(u->out, -1);
		q = xmalloc(n + 1);
		for (i = j = 0; i < n; i++) {
			if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
				continue;
			q[j++] = p[i];
		}
		reply = json_pack("{s:o, s:b, s:b}", "exit_code",
		    code != NULL ? code : json_null(), "timed_out",
		    u->timed_out, "truncated", u->truncated);
		code = NULL;
		util_json_set_bytes(reply, "output", q, j);
		free(q);
		if (exited) {
			json_object_set_new(reply, "exited", json_true());
			json_object_set(reply, "signal", s->signal);
		}
		req_reply(r, reply);
	}
	json_decref(code);
	run_free(u);
	if (was_active)
		run_next(s);
}

static void
run_timer_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct srun	*u = arg;
	struct timeval	 tv;

	if (u->timed_out) {
		/*
		 * No end marker after the Ctrl-C: the shell dropped the line.
		 * What came after the Ctrl-C is its newline and prompt.
		 */
		evbuffer_drain(u->pend, evbuffer_get_length(u->pend));
		if (evbuffer_get_length(u->out) > u->cut)
			evbuffer_drain(u->out, evbuffer_get_length(u->out) -
			    u->cut);
		run_finish(u, NULL, 0);
		return;
	}
	log_debug("session %s: run timed out, typing Ctrl-C", u->s->id);
	u->timed_out = 1;
	if (u->state == RUN_OUTPUT)
		run_commit(u, u->pend, evbuffer_get_length(u->pend));
	u->cut = evbuffer_get_length(u->out);
	chan_input(u->s->c, "\003", 1);
	util_timeval(&tv, RUN_GRACE);
	evtimer_add(u->timer, &tv);
}

/* The run's client went away: forget it, go on with the next. */
static void
run_req_gone(void *arg)
{
	struct srun	*u = arg;

	u->req = NULL;
	run_finish(u, NULL, 0);
}

/* The argument of eval for cmd: quoted, or rebuilt by printf. */
static void
run_quote(struct evbuffer *b, const char *cmd)
{
	const unsigned char	*p;
	int			 plain = 1;

	for (p = (const unsigned char *)cmd; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			plain = 0;
	evbuffer_add_printf(b, plain ? "'" : "\"$(command printf '");
	for (p = (const unsigned char *)cmd; *p != '\0'; p++) {
		if (*p == '\'')
			evbuffer_add_printf(b, "'\\''");
		else if (plain)
			evbuffer_add(b, p, 1);
		else if (*p == '\\')
			evbuffer_add_printf(b, "\\\\");
		else if (*p == '%')
			evbuffer_add_printf(b, "%%%%");
		else if (*p < 0x20 || *p > 0x7e)
			evbuffer_add_printf(b, "\\%03o", *p);
		else
			evbuffer_add(b, p, 1);
	}
	evbuffer_add_printf(b, plain ? "'" : "')\"");
}

/* Start the first queued run: type its wrapped line. */
static void
run_next(struct session *s)
{
	struct srun	*u = TAILQ_FIRST(&s->runs);
	struct evbuffer	*b;
	struct timeval	 tv;

	if (u == NULL || u->state != RUN_QUEUED)
		return;
	util_random_hex(u->nonce, sizeof u->nonce);
	b = evbuffer_new();
	evbuffer_add_printf(b, "\025 %scommand printf '\\033]sandd;B;%s\\007'; "
	    "if command eval ", s->shell_ready ? "" :
	    "stty -echo 2>/dev/null || :; ", u->nonce);
	run_quote(b, u->cmd);
	evbuffer_add_printf(b, "; then command printf '\\033]sandd;E;%s;0"
	    "\\007'; else command printf '\\033]sandd;E;%s;%%d\\007' \"$?\"; "
	    "fi\n", u->nonce, u->nonce);
	s->shell_ready = 1;
	u->state = RUN_WAIT_B;
	u->pos = session_recv(s);
	chan_input(s->c, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
	if (u->timeout > 0) {
		u->timer = evtimer_new(ev_base, run_timer_cb, u);
		util_timeval(&tv, u->timeout);
		evtimer_add(u->timer, &tv);
	}
}

/* ---- the session's life ---- */

/* The program exited (per the end message, or the close reply). */
static void
session_mark_exited(struct session *s, json_t *info)
{
	struct srun	*u;
	json_t		*v;

	if (s->exited)
		return;
	s->exited = 1;
	if (info != NULL) {
		if ((v = json_object_get(info, "exit_code")) != NULL) {
			json_decref(s->exit_code);
			s->exit_code = json_incref(v);
		}
		if ((v = json_object_get(info, "signal")) != NULL) {
			json_decref(s->signal);
			s->signal = json_incref(v);
		}
	}
	if (!s->announced) {
		s->announced = 1;
		session_announce(s, "exited");
	}
	while ((u = TAILQ_FIRST(&s->runs)) != NULL) {
		if (u->state == RUN_OUTPUT)
			run_commit(u, u->pend, evbuffer_get_length(u->pend));
		u->state = RUN_QUEUED;	/* do not start the next */
		run_finish(u, json_incref(s->exit_code), 1);
	}
}

/* Output or the end arrived: runs, events, acks. */
static void
session_pump(struct session *s)
{
	struct sconn	*a;

	run_feed(s);
	if ((s->c->flags & CHAN_ENDED) && !s->exited)
		session_mark_exited(s, s->c->end);
	TAILQ_FOREACH(a, &s->conns, entry)
		sconn_deliver(a);
	session_consume(s);
}

/* Free the session's state; pending requests get no_such_session. */
static void
session_free(struct session *s)
{
	struct req	*r;
	struct sconn	*a;
	struct srun	*u;

	if ((r = s->open_req) != NULL) {
		s->open_req = NULL;
		r->data = NULL;
		r->data_free = NULL;
		req_error(r, "no_such_session", "session %s went away before "
		    "it started", s->id);
	}
	while ((u = TAILQ_FIRST(&s->runs)) != NULL) {
		TAILQ_REMOVE(&s->runs, u, entry);
		if ((r = u->req) != NULL) {
			r->data = NULL;
			r->data_free = NULL;
			req_error(r, "no_such_session", "session %s was "
			    "closed", s->id);
		}
		run_free(u);
	}
	while ((a = TAILQ_FIRST(&s->conns)) != NULL)
		sconn_free(a);
	TAILQ_REMOVE(&sessions, s, entry);
	json_decref(s->exit_code);
	json_decref(s->signal);
	free(s->cmd);
	s->c->data = NULL;
	free(s);
}

/* Take the describing fields of a started or adopted session. */
static void
session_set_info(struct session *s, json_t *m)
{
	json_t		*v;
	const char	*str;

	if (json_is_integer(v = json_object_get(m, "pid")))
		s->pid = json_integer_value(v);
	if ((str = json_string_value(json_object_get(m, "cmd"))) != NULL) {
		free(s->cmd);
		s->cmd = xstrdup(str);
	}
	if (json_is_integer(v = json_object_get(m, "rows")))
		s->rows = (int)json_integer_value(v);
	if (json_is_integer(v = json_object_get(m, "cols")))
		s->cols = (int)json_integer_value(v);
	if ((str = json_string_value(json_object_get(m, "created_at"))) !=
	    NULL)
		snprintf(s->created, sizeof s->created, "%s", str);
}

static void
session_open_gone(void *arg)
{
	struct session	*s = arg;

	s->open_req = NULL;
}

/* The worker started the program: answer the open, attach its client. */
static void
session_started(struct session *s, json_t *msg)
{
	struct req	*r;
	struct sconn	*a;

	s->started = 1;
	session_set_info(s, msg);
	/* It runs: never send the open again. */
	json_decref(s->c->open);
	s->c->open = NULL;
	if ((r = s->open_req) != NULL) {
		s->open_req = NULL;
		r->data = NULL;
		r->data_free = NULL;
		if (s->attach_on_open && !control_client_dead(r->client)) {
			a = sconn_get(s, r->client);
			a->attached = 1;
			a->pos = 0;
		}
		req_reply(r, json_pack("{s:s, s:I, s:s}", "session", s->id,
		    "pid", s->pid, "worker", s->worker));
	}
	session_announce(s, "opened");
	session_pump(s);
}

/* The session is gone for good: tell who watches, free the channel. */
static void
session_gone(struct session *s, json_t *error)
{
	struct sconn	*a;
	struct srun	*u;
	struct req	*r;

	TAILQ_FOREACH(a, &s->conns, entry) {
		sconn_deliver(a);
		sconn_send_exit(a, error);
	}
	if (!s->announced && s->started) {
		s->announced = 1;
		session_announce(s, "exited");
	}
	while ((u = TAILQ_FIRST(&s->runs)) != NULL) {
		u->state = RUN_QUEUED;
		if (error != NULL && u->req != NULL) {
			TAILQ_REMOVE(&s->runs, u, entry);
			r = u->req;
			r->data = NULL;
			r->data_free = NULL;
			req_error_json(r, json_incref(error));
			run_free(u);
		} else
			run_finish(u, json_incref(s->exit_code), 1);
	}
}

/* ---- hooks from control-cmd.c and chan.c ---- */

/* Output or the end arrived on a session channel. */
void
control_session_output(struct chan *c)
{
	struct session	*s = c->data;
	struct req	*r;
	json_t		*err;

	if (s == NULL)
		return;
	if ((c->flags & CHAN_ENDED) &&
	    (err = json_object_get(c->end, "error")) != NULL) {
		/* The program could not be started. */
		if ((r = s->open_req) != NULL) {
			s->open_req = NULL;
			r->data = NULL;
			r->data_free = NULL;
			req_error_json(r, json_incref(err));
		}
		chan_release(c);
		return;
	}
	session_pump(s);
}

/* A wire message about a session channel: "info" (started, gone). */
void
control_session_event(struct chan *c, const char *t, json_t *msg)
{
	struct session	*s = c->data;
	const char	*state;

	if (s == NULL || strcmp(t, "info") != 0)
		return;
	state = json_string_value(json_object_get(msg, "state"));
	if (state == NULL)
		return;
	if (strcmp(state, "started") == 0 && !s->started)
		session_started(s, msg);
	else if (strcmp(state, "gone") == 0) {
		log_debug("session %s: released by worker %s after lingering",
		    s->id, s->worker);
		session_gone(s, NULL);
		chan_free(c);
	}
}

/* The session's worker is gone past its resume window. */
void
control_session_lost(struct chan *c, const char *why)
{
	struct session	*s = c->data;
	struct req	*r;
	json_t		*err;

	if (s == NULL)
		return;
	err = req_error_object("worker_lost", "%s", why);
	if ((r = s->open_req) != NULL) {
		s->open_req = NULL;
		r->data = NULL;
		r->data_free = NULL;
		req_error_json(r, json_incref(err));
	}
	session_gone(s, err);
	json_decref(err);
}

/* The session's channel is being freed. */
void
control_session_freed(struct chan *c)
{
	if (c->data != NULL)
		session_free(c->data);
}

/* A controller that restarted learns of a session from the worker. */
void
control_cmd_session_adopted(struct chan *c, json_t *a)
{
	struct session	*s;
	json_t		*v;

	s = session_create(c);
	s->started = 1;
	s->shell_ready = 0;
	c->flags |= CHAN_SENT;	/* lost like the others if the worker dies */
	/* Input goes on from what the worker has taken, not from 0. */
	if (json_is_integer(v = json_object_get(a, "in")) &&
	    evbuffer_get_length(c->in) == 0 && c->in_base == 0)
		c->in_base = c->in_sent = (uint64_t)json_integer_value(v);
	session_set_info(s, a);
	if (json_is_true(json_object_get(a, "exited"))) {
		s->announced = 1;
		if ((v = json_object_get(a, "exit_code")) != NULL) {
			json_decref(s->exit_code);
			s->exit_code = json_incref(v);
		}
		if ((v = json_object_get(a, "signal")) != NULL) {
			json_decref(s->signal);
			s->signal = json_incref(v);
		}
	}
}

/* A control connection closed: its views of sessions go. */
void
control_session_client_gone(struct client *cl)
{
	struct session	*s, *s1;
	struct sconn	*a, *a1;
	int		 changed;

	TAILQ_FOREACH_SAFE(s, &sessions, entry, s1) {
		changed = 0;
		TAILQ_FOREACH_SAFE(a, &s->conns, entry, a1) {
			if (a->cl == cl) {
				sconn_free(a);
				changed = 1;
			}
		}
		if (changed)
			session_consume(s);
	}
}

/* A control connection can take more: send it what waits. */
void
control_session_client_drained(struct client *cl)
{
	struct session	*s, *s1;
	struct sconn	*a;

	TAILQ_FOREACH_SAFE(s, &sessions, entry, s1) {
		if ((a = sconn_find(s, cl)) == NULL || !a->attached)
			continue;
		sconn_deliver(a);
		session_consume(s);
		if (control_client_dead(cl) || !control_client_writable(cl))
			return;
	}
}

/* ---- ops ---- */

/* rows and cols of r (required or not); -1 after replying. */
static int
session_get_size(struct req *r, int required, json_int_t *rows,
    json_int_t *cols)
{
	int	hr, hc;

	if ((hr = req_get_int(r, "rows", rows)) < 0 ||
	    (hc = req_get_int(r, "cols", cols)) < 0)
		return (-1);
	if (required && (hr == 0 || hc == 0)) {
		req_error(r, "bad_request", "fields 'rows' and 'cols' are "
		    "required");
		return (-1);
	}
	if (*rows < 1 || *rows > 65535 || *cols < 1 || *cols > 65535) {
		req_error(r, "bad_request", "fields 'rows' and 'cols' must be "
		    "1 to 65535");
		return (-1);
	}
	return (0);
}

/* Is this connection attached read-only? Replies denied if so. */
static int
session_readonly(struct req *r, struct session *s)
{
	struct sconn	*a = sconn_find(s, r->client);

	if (a != NULL && a->attached && a->readonly) {
		req_error(r, "denied", "this connection is attached to session "
		    "%s read-only", s->id);
		return (1);
	}
	return (0);
}

void
control_session_open(struct req *r)
{
	json_t		*cmd = json_object_get(r->msg, "cmd");
	json_t		*argv = json_object_get(r->msg, "argv");
	json_t		*env = NULL, *open, *v;
	json_int_t	 rows = 24, cols = 80;
	const char	*cwd = NULL, *user = NULL, *term = NULL, *k;
	int		 attach = 1;
	size_t		 i;
	struct worker	*w;
	struct chan	*c;
	struct session	*s;

	if (cmd != NULL && json_is_null(cmd))
		cmd = NULL;
	if (argv != NULL && json_is_null(argv))
		argv = NULL;
	if (cmd != NULL && argv != NULL) {
		req_error(r, "bad_request", "give 'cmd' or 'argv', not both");
		return;
	}
	if (cmd != NULL && !json_is_string(cmd)) {
		req_error(r, "bad_request", "field 'cmd' must be a string");
		return;
	}
	if (argv != NULL) {
		if (!json_is_array(argv) || json_array_size(argv) == 0) {
			req_error(r, "bad_request", "field 'argv' must be a "
			    "non-empty array of strings");
			return;
		}
		json_array_foreach(argv, i, v) {
			if (!json_is_string(v)) {
				req_error(r, "bad_request", "field 'argv' must "
				    "be a non-empty array of strings");
				return;
			}
		}
	}
	if (session_get_size(r, 0, &rows, &cols) < 0 ||
	    req_get_object(r, "env", &env) < 0 ||
	    req_get_string(r, "cwd", &cwd) < 0 ||
	    req_get_string(r, "user", &user) < 0 ||
	    req_get_string(r, "term", &term) < 0 ||
	    req_get_bool(r, "attach", &attach) < 0)
		return;
	if (env != NULL) {
		json_object_foreach(env, k, v) {
			if (!json_is_string(v) || *k == '\0' ||
			    strchr(k, '=') != NULL) {
				req_error(r, "bad_request", "field 'env' must "
				    "map names to strings");
				return;
			}
		}
	}
	if ((w = req_get_worker(r)) == NULL)
		return;

	open = json_pack("{s:I, s:I, s:s}", "rows", rows, "cols", cols,
	    "term", term != NULL ? term : "xterm-256color");
	if (cmd != NULL)
		json_object_set(open, "cmd", cmd);
	if (argv != NULL)
		json_object_set(open, "argv", argv);
	if (env != NULL)
		json_object_set(open, "env", env);
	if (cwd != NULL)
		json_object_set_new(open, "cwd", json_string(cwd));
	if (user != NULL)
		json_object_set_new(open, "user", json_string(user));
	c = server_worker_chan_open(w, CHAN_SESSION, open);
	json_decref(open);
	s = session_create(c);
	s->rows = (int)rows;
	s->cols = (int)cols;
	s->attach_on_open = attach;
	s->open_req = r;
	r->data = s;
	r->data_free = session_open_gone;
	log_debug("session %s: opening on worker %s", s->id, s->worker);
}

void
control_session_attach(struct req *r)
{
	struct session	*s;
	struct sconn	*a;
	json_int_t	 since = 0;
	int		 readonly = 0, have;
	uint64_t	 recv;

	if ((have = req_get_int(r, "since", &since)) < 0 ||
	    req_get_bool(r, "readonly", &readonly) < 0 ||
	    (s = session_get(r)) == NULL)
		return;
	a = sconn_get(s, r->client);
	sconn_stop_replay(a);
	recv = session_recv(s);
	a->attached = 1;
	a->readonly = readonly;
	a->exit_sent = 0;
	a->pos = have && (uint64_t)since < recv ? (uint64_t)since : recv;
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

void
control_session_write(struct req *r)
{
	struct session	*s;
	struct evbuffer	*in;
	char		*cause = NULL;
	int		 have;

	if ((s = session_get(r)) == NULL || session_readonly(r, s))
		return;
	in = evbuffer_new();
	have = util_json_get_bytes(r->msg, "data", in, &cause);
	if (have <= 0) {
		evbuffer_free(in);
		if (have < 0)
			req_error(r, "bad_request", "%s", cause);
		else
			req_error(r, "bad_request", "field 'data' or "
			    "'data_b64' is required");
		free(cause);
		return;
	}
	if (evbuffer_get_length(in) > 0)
		chan_input(s->c, evbuffer_pullup(in, -1),
		    evbuffer_get_length(in));
	evbuffer_free(in);
	control_client_wait_sink(r->client, s->c);
	req_reply(r, json_object());
}

/* The worker resized the terminal. */
static void
session_resize_done(struct req *r, json_t *res)
{
	struct session	*s;
	const char	*id = json_string_value(json_object_get(r->msg,
			    "session"));

	if (json_is_true(json_object_get(res, "ok")) &&
	    (s = session_find(id)) != NULL) {
		s->rows = (int)json_integer_value(json_object_get(res, "rows"));
		s->cols = (int)json_integer_value(json_object_get(res, "cols"));
	}
	control_cmd_rpc_forward(r, res);
}

void
control_session_resize(struct req *r)
{
	struct session	*s;
	json_int_t	 rows = 0, cols = 0;

	if ((s = session_get(r)) == NULL || session_readonly(r, s) ||
	    session_get_size(r, 1, &rows, &cols) < 0)
		return;
	control_cmd_rpc(r, s->c->worker, json_pack("{s:s, s:s, s:I, s:I}",
	    "op", "session.resize", "session", s->id, "rows", rows, "cols",
	    cols), session_resize_done);
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

/* A ring read came back: read on, or answer. */
static void
session_read_done(struct req *r, json_t *res)
{
	struct sread	*sr = r->data;
	struct session	*s;
	struct sconn	*a;
	struct evbuffer	*data;
	uint64_t	 start, off, end;
	size_t		 n, whole;
	uint8_t		*p;
	char		*cause = NULL;
	int		 valid, more = 0;
	json_t		*reply, *m;

	if (!json_is_true(json_object_get(res, "ok"))) {
		control_cmd_rpc_forward(r, res);
		return;
	}
	data = evbuffer_new();
	if (util_json_get_bytes(res, "data", data, &cause) < 0) {
		free(cause);
		evbuffer_free(data);
		req_error(r, "internal", "bad ring read from the worker");
		return;
	}
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
	evbuffer_free(data);
	sr->exited = json_is_true(json_object_get(res, "exited"));
	json_decref(sr->exit_code);
	json_decref(sr->signal);
	sr->exit_code = json_incref(json_object_get(res, "exit_code"));
	sr->signal = json_incref(json_object_get(res, "signal"));
	s = session_find(sr->id);
	if (more && s != NULL) {
		n = sr->max - evbuffer_get_length(sr->acc);
		m = json_pack("{s:s, s:s, s:I, s:I, s:I}", "op", "session.read",
		    "session", sr->id, "since", (json_int_t)sr->next, "limit",
		    (json_int_t)end, "max", (json_int_t)(n < SESSION_RPC_CHUNK ?
		    n : SESSION_RPC_CHUNK));
		control_cmd_rpc(r, s->c->worker, m, session_read_done);
		return;
	}

	n = evbuffer_get_length(sr->acc);
	p = evbuffer_pullup(sr->acc, -1);
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
	if (s != NULL && !control_client_dead(r->client)) {
		a = sconn_get(s, r->client);
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
	json_int_t	 since = 0, max = 0;
	const char	*until = NULL;
	double		 timeout = 0;
	int		 have_since, have_max, have_to = 0, e;
	regex_t		 re;
	char		 errbuf[128];
	json_t		*m;

	if ((have_since = req_get_int(r, "since", &since)) < 0 ||
	    req_get_string(r, "until", &until) < 0 ||
	    (have_to = req_get_number(r, "timeout", &timeout)) < 0 ||
	    (have_max = req_get_int(r, "max_bytes", &max)) < 0)
		return;
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
	sr->max = have_max ? (size_t)max : serve_opts.max_output;
	r->data = sr;
	r->data_free = sread_free;
	m = json_pack("{s:s, s:s, s:I}", "op", "session.read", "session",
	    s->id, "max", (json_int_t)(sr->max < SESSION_RPC_CHUNK ? sr->max :
	    SESSION_RPC_CHUNK));
	a = sconn_find(s, r->client);
	if (have_since)
		json_object_set_new(m, "since", json_integer(since));
	else if (a != NULL && a->has_read)
		json_object_set_new(m, "since", json_integer(
		    (json_int_t)a->read_off));
	if (until != NULL) {
		json_object_set_new(m, "until", json_string(until));
		if (have_to)
			json_object_set_new(m, "timeout", json_real(timeout));
	}
	control_cmd_rpc(r, s->c->worker, m, session_read_done);
}

void
control_session_run(struct req *r)
{
	struct session	*s;
	struct srun	*u;
	const char	*cmd = NULL;
	double		 timeout = 0;
	int		 have;

	if ((have = req_get_string(r, "cmd", &cmd)) < 0 ||
	    req_get_number(r, "timeout", &timeout) < 0)
		return;
	if (have == 0) {
		req_error(r, "bad_request", "field 'cmd' is required");
		return;
	}
	if (strlen(cmd) != json_string_length(json_object_get(r->msg,
	    "cmd"))) {
		req_error(r, "bad_request", "field 'cmd' must not hold NUL");
		return;
	}
	if ((s = session_get(r)) == NULL || session_readonly(r, s))
		return;
	if (s->exited) {
		req_error(r, "no_such_session", "session %s has exited", s->id);
		return;
	}
	u = xcalloc(1, sizeof *u);
	u->s = s;
	u->req = r;
	u->cmd = xstrdup(cmd);
	u->timeout = timeout;
	u->pend = evbuffer_new();
	u->out = evbuffer_new();
	u->max = serve_opts.max_output;
	r->data = u;
	r->data_free = run_req_gone;
	TAILQ_INSERT_TAIL(&s->runs, u, entry);
	run_next(s);
}

/* The program exited after session.close: release the session. */
static void
session_close_done(struct req *r, json_t *res)
{
	struct session	*s;
	struct sconn	*a;
	const char	*id = json_string_value(json_object_get(r->msg,
			    "session"));

	if (json_is_true(json_object_get(res, "ok")) &&
	    (s = session_find(id)) != NULL) {
		session_mark_exited(s, res);
		TAILQ_FOREACH(a, &s->conns, entry) {
			sconn_deliver(a);
			sconn_send_exit(a, NULL);
		}
		log_debug("session %s: closed", s->id);
		chan_release(s->c);
	}
	control_cmd_rpc_forward(r, res);
}

void
control_session_close(struct req *r)
{
	struct session	*s;
	const char	*sig = NULL;
	json_t		*m;

	if (req_get_string(r, "signal", &sig) < 0)
		return;
	if (sig != NULL && util_signal_number(sig) == -1) {
		req_error(r, "bad_request", "field 'signal' must name a signal "
		    "(INT, TERM, KILL, HUP, ...)");
		return;
	}
	if ((s = session_get(r)) == NULL)
		return;
	m = json_pack("{s:s, s:s}", "op", "session.close", "session", s->id);
	if (sig != NULL)
		json_object_set_new(m, "signal", json_string(util_signal_name(
		    util_signal_number(sig))));
	control_cmd_rpc(r, s->c->worker, m, session_close_done);
}

/* The list entry of a session. */
static json_t *
session_json(struct session *s)
{
	struct sconn	*a;
	int		 attached = 0;

	TAILQ_FOREACH(a, &s->conns, entry)
		if (a->attached)
			attached++;
	return (json_pack("{s:s, s:s, s:I, s:s, s:i, s:i, s:s, s:I, s:i, "
	    "s:b, s:O, s:O}", "session", s->id, "worker", s->worker,
	    "pid", s->pid, "cmd", s->cmd != NULL ? s->cmd : "",
	    "rows", s->rows, "cols", s->cols, "created_at", s->created,
	    "offset", (json_int_t)session_recv(s), "attached", attached,
	    "exited", s->exited, "exit_code", s->exit_code,
	    "signal", s->signal));
}

void
control_session_list(struct req *r)
{
	struct session	*s;
	const char	*worker = NULL;
	json_t		*list;

	if (req_get_string(r, "worker", &worker) < 0)
		return;
	list = json_array();
	TAILQ_FOREACH(s, &sessions, entry) {
		if (!s->started)
			continue;
		if (worker != NULL && strcmp(worker, s->worker) != 0)
			continue;
		json_array_append_new(list, session_json(s));
	}
	req_reply(r, json_pack("{s:o}", "sessions", list));
}

void
control_session_signal(struct req *r, const char *sig)
{
	struct session	*s;

	if ((s = session_get(r)) == NULL || session_readonly(r, s))
		return;
	control_cmd_rpc(r, s->c->worker, json_pack("{s:s, s:s, s:s}", "op",
	    "session.signal", "session", s->id, "signal", util_signal_name(
	    util_signal_number(sig))), control_cmd_rpc_forward);
}

/*
 * worker-run.c: session.run, done on the worker, which owns the terminal
 * and the ring. A shell command line is run in a session's shell and
 * answered with only that command's output and exit status, while what
 * the session keeps (the ring, the channel's stream: replays, session.read,
 * recordings) shows only what a person who typed the command would have
 * seen.
 *
 * The line is typed into the shell wrapped as
 *
 *   ^U command printf '\033]sandd;B;S;N\007'; if command eval 'CMD';
 *   then command printf '\033]sandd;E;S;N;0\007'; else command printf
 *   '\033]sandd;E;S;N;%d\007' "$?"; fi
 *
 * on one line; S is a secret of the session, N the number of the run. The
 * markers are OSC sequences that appear only when printf runs: the echo of
 * the line holds the text \033, not the byte. The run's output lies between
 * B and E. The shell reads the whole line before running any of it, so a
 * command that reads stdin finds the terminal empty. eval keeps the shell's
 * state (cwd, variables, functions); "command eval" turns a syntax error
 * into status 2 (dash); inside an if condition errexit is ignored, so
 * `set -e; false` does not kill the shell. CMD is single-quoted, or rebuilt
 * by printf from octal escapes when it holds bytes outside printable ASCII
 * (a tab would trigger completion, a newline would submit early). The
 * leading ^U drops anything typed and not yet entered; the leading space
 * keeps the line out of the history (HISTCONTROL=ignorespace).
 *
 * The filter. Once a session had a run, its output goes through
 * runner_filter() before it enters the ring and the stream (job.c's
 * JOB_FILTER), so a byte it removes never gets an offset:
 * - markers with the session's secret are removed whenever they come (a
 *   marker cut between two reads waits for its rest, RUN_PART_WAIT at most);
 * - from the moment the line is typed until its B marker, output is held:
 *   it is what the ^U did and the shell's echo of the line (readline's, or
 *   the terminal's own). At B, the held bytes up to the end of that echo
 *   (found by the line's unique tail) become the command as a person would
 *   have typed it; what the shell printed after the echo (its newline,
 *   bracketed paste off) is kept;
 * - between B and E the bytes pass, and are collected for the reply.
 * Echo is never turned off, so the terminal is as the shell keeps it.
 *
 * When to type: a line typed while the shell is not reading one would be
 * echoed by the terminal out of place, or read by another program, and
 * a prompt printed after the typing would be taken for echo. So a run
 * waits until no job of the shell holds the terminal (its foreground
 * process group is the one that was in front at the last E marker, when
 * the shell itself ran printf; not known before the first) and the shell
 * printed something since the last line ended (its prompt) and then
 * nothing for RUN_QUIET; after RUN_READY_MAX of that wait (a shell with
 * an empty prompt) it types anyway, after RUN_START_MAX for the first
 * line (a shell reading its rc files prints nothing for a while).
 *
 * On timeout: a run not typed yet ends with nothing; else a Ctrl-C is
 * typed (the terminal sends SIGINT to the foreground job) and the reply
 * waits for E until the shell is back at its prompt, RUN_GRACE at most
 * (the shell usually drops the line), then goes with the output up to
 * the Ctrl-C. A run whose line ends the session
 * is answered with the session's exit status and "exited". Runs on one
 * session go one at a time, in order. The controller names each run; a
 * request sent again after a link drop finds its run queued, running or
 * answered (the last RUN_KEEP answers are kept), so it never runs twice.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

#define RUN_GRACE	0.5	/* s to wait for E after the Ctrl-C */
#define RUN_POLL	0.01	/* s between checks of a waiting run */
#define RUN_QUIET	0.01	/* s of no output before typing */
#define RUN_READY_MAX	0.25	/* s of waiting with the shell in front */
#define RUN_START_MAX	3.0	/* the same for the first line */
#define RUN_PART_WAIT	0.02	/* s to hold a cut marker */
#define RUN_HOLD_MAX	(64 * 1024)	/* bytes held for one echo */
#define RUN_MAX_QUEUED	64
#define RUN_KEEP	16	/* answers kept for requests sent again */

/* One session.run. */
struct wrun {
	struct runner	*rn;
	json_t		*req;		/* the RPC to answer */
	char		 id[40];	/* the controller's name for it */
	char		*cmd;
	unsigned long	 seq;
	char		 tail[64];	/* the typed line's end, for its echo */
	int		 state;
#define WRUN_QUEUED	0
#define WRUN_TYPED	1	/* output held: the echo of the line */
#define WRUN_OUTPUT	2	/* between the markers */
#define WRUN_CUT	3	/* Ctrl-C typed: waiting a little for E */
	struct evbuffer	*out;
	size_t		 max;
	int		 truncated;
	int		 timed_out;
	struct event	*timer;
	TAILQ_ENTRY(wrun) entry;
};

/* An answer kept for a request sent again. */
struct wdone {
	char		 id[40];
	json_t		*res;
	TAILQ_ENTRY(wdone) entry;
};

struct runner {
	struct job	*job;
	int		 master;
	pid_t		 shell_pg;	/* in front at the last E; or -1 */
	unsigned long	 seq;
	struct run_scan	 scan;
	int		 hold;
	struct evbuffer	*held;
	struct evbuffer	*typing;	/* to write to the terminal */
	struct event	*write_ev;
	struct event	*poll_ev;
	struct event	*part_ev;
	double		 last_output;
	int		 seen_output;	/* since the last line ended */
	int		 typed;		/* a line was typed */
	unsigned long	 wait_seq;	/* the run waiting since then */
	double		 wait_since;
	TAILQ_HEAD(, wrun) runs;
	TAILQ_HEAD(, wdone) done;
	int		 ndone;
};

static void	 runner_schedule(struct runner *);

/* ---- the marker scanner ---- */

/*
 * Is p[0..n) a marker with this secret: \033]sandd;B;S;N\007 or
 * \033]sandd;E;S;N;CODE\007? 1 (type, seq, code and len set), 0 (no), -1
 * (p is the start of one; more bytes decide).
 */
static int
run_scan_match(const char *secret, const uint8_t *p, size_t n, int *type,
    unsigned long *seq, int *code, size_t *len)
{
	static const char	 pre[] = "\033]sandd;";
	char			 want[RUN_MARK_MAX];
	size_t			 i, k, wlen, digits;
	unsigned long		 v = 0;
	int			 field, nfields;

	if (n > sizeof pre - 1 && (p[sizeof pre - 1] == 'B' ||
	    p[sizeof pre - 1] == 'E'))
		*type = p[sizeof pre - 1];
	else
		*type = 'B';
	wlen = (size_t)snprintf(want, sizeof want, "%s%c;%s;", pre, *type,
	    secret);
	for (i = 0; i < wlen; i++) {
		if (i == n)
			return (-1);
		if (p[i] != (uint8_t)want[i])
			return (0);
	}
	nfields = *type == 'E' ? 2 : 1;
	for (field = 0; field < nfields; field++) {
		for (v = 0, digits = 0;; i++, digits++) {
			if (i == n)
				return (-1);
			if (p[i] < '0' || p[i] > '9' || digits == 10)
				break;
			v = v * 10 + (unsigned long)(p[i] - '0');
		}
		if (digits == 0)
			return (0);
		if (field == 0)
			*seq = v;
		else if (v > 255)
			return (0);
		k = p[i++];
		if (k != (field + 1 < nfields ? ';' : '\007'))
			return (0);
	}
	*code = (int)v;
	*len = i;
	return (1);
}

/*
 * Scan p[0..n): ordinary bytes and markers to the callbacks, starting no
 * match at or past stop. Returns where it stopped: a marker cut by the end
 * of p may start there.
 */
static size_t
run_scan_some(struct run_scan *sc, const uint8_t *p, size_t n, size_t stop)
{
	const uint8_t	*q;
	size_t		 i = 0, start = 0, len = 0;
	unsigned long	 seq = 0;
	int		 r, type, code = 0;

	while (i < stop) {
		if ((q = memchr(p + i, '\033', stop - i)) == NULL) {
			i = stop;
			break;
		}
		i = (size_t)(q - p);
		r = run_scan_match(sc->secret, p + i, n - i, &type, &seq,
		    &code, &len);
		if (r == 0) {
			i++;
			continue;
		}
		if (r < 0)
			break;
		if (i > start)
			sc->bytes(sc->arg, p + start, i - start);
		sc->mark(sc->arg, type, seq, code);
		i += len;
		start = i;
	}
	if (i > start)
		sc->bytes(sc->arg, p + start, i - start);
	return (i > n ? n : i);
}

/*
 * Feed output to the scanner: it calls bytes() for ordinary bytes and
 * mark() for each marker of its secret, in order; the start of a marker
 * cut by the end of p is kept for the next feed (or run_scan_flush).
 */
void
run_scan_feed(struct run_scan *sc, const uint8_t *p, size_t n)
{
	uint8_t	buf[2 * RUN_MARK_MAX];
	size_t	k, c, skip = 0;

	if (sc->plen > 0) {
		k = n < RUN_MARK_MAX ? n : RUN_MARK_MAX;
		memcpy(buf, sc->part, sc->plen);
		memcpy(buf + sc->plen, p, k);
		c = run_scan_some(sc, buf, sc->plen + k, sc->plen);
		if (c < sc->plen) {
			/* Still cut: then all of p is in buf. */
			sc->plen += k - c;
			memmove(sc->part, buf + c, sc->plen);
			return;
		}
		skip = c - sc->plen;
		sc->plen = 0;
	}
	c = run_scan_some(sc, p + skip, n - skip, n - skip);
	sc->plen = n - skip - c;
	memcpy(sc->part, p + skip + c, sc->plen);
}

/* What was kept of a cut marker is output after all. */
void
run_scan_flush(struct run_scan *sc)
{
	size_t	n = sc->plen;

	sc->plen = 0;
	if (n > 0)
		sc->bytes(sc->arg, sc->part, n);
}

/*
 * Where the last echo of a typed line ends in p[0..n): just past the last
 * occurrence of its tail; -1 if there is none.
 */
ssize_t
run_echo_end(const uint8_t *p, size_t n, const char *tail)
{
	size_t	tlen = strlen(tail), i;

	if (tlen == 0 || tlen > n)
		return (-1);
	for (i = n - tlen + 1; i-- > 0;)
		if (p[i] == (uint8_t)tail[0] && memcmp(p + i, tail, tlen) == 0)
			return ((ssize_t)(i + tlen));
	return (-1);
}

/* A command line as its echo looks when a person types it. */
void
run_typed_form(struct evbuffer *b, const char *cmd)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)cmd; *p != '\0'; p++) {
		if (*p == '\n')
			evbuffer_add(b, "\r\n", 2);
		else if (*p == 0x7f)
			evbuffer_add(b, "^?", 2);
		else if (*p < 0x20 && *p != '\t')
			evbuffer_add_printf(b, "^%c", *p + 0x40);
		else
			evbuffer_add(b, p, 1);
	}
}

/* ---- typing ---- */

/* Write what waits to the terminal, as much as it takes now. */
static void
runner_write(struct runner *rn)
{
	size_t	len;
	ssize_t	n;

	while ((len = evbuffer_get_length(rn->typing)) > 0) {
		if (rn->master == -1) {
			evbuffer_drain(rn->typing, len);
			return;
		}
		n = write(rn->master, evbuffer_pullup(rn->typing, -1), len);
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			event_add(rn->write_ev, NULL);
			return;
		}
		if (n <= 0) {
			evbuffer_drain(rn->typing, len);
			return;
		}
		evbuffer_drain(rn->typing, (size_t)n);
	}
}

static void
runner_write_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	runner_write(arg);
}

/* Type bytes into the terminal, after what is still to be written. */
static void
runner_type(struct runner *rn, const void *p, size_t n)
{
	evbuffer_add(rn->typing, p, n);
	runner_write(rn);
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

/* Type the run's wrapped line; hold the output until its B marker. */
static void
run_type(struct wrun *u)
{
	struct runner	*rn = u->rn;
	const char	*sec = rn->scan.secret;
	struct evbuffer	*b;

	b = evbuffer_new();
	evbuffer_add_printf(b, "\025 command printf "
	    "'\\033]sandd;B;%s;%lu\\007'; if command eval ", sec, u->seq);
	run_quote(b, u->cmd);
	evbuffer_add_printf(b, "; then command printf '\\033]sandd;E;%s;%lu;0"
	    "\\007'; else command printf '\\033]sandd;E;%s;%lu;%%d\\007' "
	    "\"$?\"; fi\n", sec, u->seq, sec, u->seq);
	snprintf(u->tail, sizeof u->tail, "%s;%lu;%%d\\007' \"$?\"; fi", sec,
	    u->seq);
	log_debug("session %s: run %lu typed", rn->job->handle, u->seq);
	u->state = WRUN_TYPED;
	rn->typed = 1;
	rn->hold = 1;
	rn->seen_output = 0;
	runner_type(rn, evbuffer_pullup(b, -1), evbuffer_get_length(b));
	evbuffer_free(b);
}

/* Does the shell have the terminal (as far as is known)? */
static int
runner_in_front(struct runner *rn)
{
	if (rn->master == -1)
		return (0);
	return (rn->shell_pg == -1 || tcgetpgrp(rn->master) == rn->shell_pg);
}

/*
 * Is the shell at its prompt: the terminal its own, something printed
 * since the last line ended, then nothing for a while?
 */
static int
runner_at_prompt(struct runner *rn)
{
	return (runner_in_front(rn) && rn->seen_output &&
	    util_now() - rn->last_output >= RUN_QUIET);
}

static void	 run_finish(struct wrun *, json_t *, json_t *, int);

/*
 * Type the first run once the shell waits for a line; end a run whose
 * line the Ctrl-C dropped once the shell is back. Else check again soon.
 */
static void
runner_poll_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct runner	*rn = arg;
	struct wrun	*u = TAILQ_FIRST(&rn->runs);
	struct timeval	 tv;
	double		 cap;

	if (u == NULL || (u->state != WRUN_QUEUED && u->state != WRUN_CUT))
		return;
	if (runner_at_prompt(rn)) {
		if (u->state == WRUN_QUEUED)
			run_type(u);
		else {
			run_finish(u, NULL, NULL, 0);
			job_flush(rn->job);
		}
		return;
	}
	cap = rn->typed ? RUN_READY_MAX : RUN_START_MAX;
	if (u->state == WRUN_QUEUED && runner_in_front(rn) &&
	    util_now() - rn->wait_since >= cap) {
		run_type(u);
		return;
	}
	util_timeval(&tv, RUN_POLL);
	evtimer_add(rn->poll_ev, &tv);
}

/* The first run waits for its turn to be typed. */
static void
runner_schedule(struct runner *rn)
{
	struct wrun	*u = TAILQ_FIRST(&rn->runs);
	struct timeval	 tv = { 0, 0 };

	if (u == NULL || u->state != WRUN_QUEUED)
		return;
	if (rn->wait_seq != u->seq) {
		rn->wait_seq = u->seq;
		rn->wait_since = util_now();
	}
	if (!evtimer_pending(rn->poll_ev, NULL))
		evtimer_add(rn->poll_ev, &tv);
}

/* ---- output ---- */

/* Keep up to max bytes of a run's output. */
static void
run_collect(struct wrun *u, const uint8_t *p, size_t n)
{
	size_t	have = evbuffer_get_length(u->out), keep;

	keep = have < u->max ? u->max - have : 0;
	if (keep > n)
		keep = n;
	if (keep < n)
		u->truncated = 1;
	evbuffer_add(u->out, p, keep);
}

/*
 * Stop holding. The held bytes up to the end of the echo of u's line
 * become the line as a person typed it, and what follows is kept; without
 * that echo in them, they go when the line began to run (began: it was
 * all echo), else they are kept as they are.
 */
static void
runner_unhold(struct runner *rn, struct wrun *u, int began)
{
	struct evbuffer	*b;
	uint8_t		*p;
	size_t		 n = evbuffer_get_length(rn->held);
	ssize_t		 end;

	if (!rn->hold)
		return;
	rn->hold = 0;
	p = evbuffer_pullup(rn->held, -1);
	end = run_echo_end(p, n, u->tail);
	b = evbuffer_new();
	if (end >= 0 || began) {
		run_typed_form(b, u->cmd);
		if (end >= 0)
			evbuffer_add(b, p + end, n - (size_t)end);
		else
			evbuffer_add(b, "\r\n", 2);
	} else
		evbuffer_add(b, p, n);
	evbuffer_drain(rn->held, n);
	job_stream_push(rn->job, WIRE_OUT, evbuffer_pullup(b, -1),
	    evbuffer_get_length(b));
	evbuffer_free(b);
}

/* The scanner's ordinary bytes: held, or passed on (and collected). */
static void
runner_bytes(void *arg, const uint8_t *p, size_t n)
{
	struct runner	*rn = arg;
	struct wrun	*u = TAILQ_FIRST(&rn->runs);

	rn->seen_output = 1;
	if (rn->hold) {
		evbuffer_add(rn->held, p, n);
		if (evbuffer_get_length(rn->held) > RUN_HOLD_MAX && u != NULL)
			runner_unhold(rn, u, 0);
		return;
	}
	if (u != NULL && u->state == WRUN_OUTPUT)
		run_collect(u, p, n);
	job_stream_push(rn->job, WIRE_OUT, p, n);
}

/* The scanner's markers: the run begins or ends; others are dropped. */
static void
runner_mark(void *arg, int type, unsigned long seq, int code)
{
	struct runner	*rn = arg;
	struct wrun	*u = TAILQ_FIRST(&rn->runs);

	if (u == NULL || u->seq != seq || u->state == WRUN_QUEUED)
		return;		/* of a run that ended */
	if (type == 'B' && u->state == WRUN_TYPED) {
		runner_unhold(rn, u, 1);
		u->state = WRUN_OUTPUT;
	} else if (type == 'E') {
		runner_unhold(rn, u, 1);
		rn->seen_output = 0;
		if (rn->master != -1)
			rn->shell_pg = tcgetpgrp(rn->master);
		run_finish(u, json_integer(code), NULL, 0);
	}
}

/* Output of the session, through the filter into the ring and stream. */
void
runner_filter(struct runner *rn, const uint8_t *p, size_t n)
{
	struct timeval	tv;

	rn->last_output = util_now();
	run_scan_feed(&rn->scan, p, n);
	if (rn->scan.plen > 0) {
		util_timeval(&tv, RUN_PART_WAIT);
		evtimer_add(rn->part_ev, &tv);
	}
}

/* A cut marker did not go on: it is output. */
static void
runner_part_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct runner	*rn = arg;

	run_scan_flush(&rn->scan);
	job_flush(rn->job);
}

/* The terminal's output ended: pass on what is held; type no more. */
void
runner_eof(struct runner *rn)
{
	struct wrun	*u = TAILQ_FIRST(&rn->runs);

	run_scan_flush(&rn->scan);
	if (u != NULL)
		runner_unhold(rn, u, 0);
	rn->master = -1;
	event_del(rn->write_ev);
	evbuffer_drain(rn->typing, evbuffer_get_length(rn->typing));
	job_flush(rn->job);
}

/* ---- runs ---- */

static void
run_free(struct wrun *u)
{
	if (u->timer != NULL)
		event_free(u->timer);
	evbuffer_free(u->out);
	json_decref(u->req);
	free(u->cmd);
	free(u);
}

/* Keep an answer for a request sent again; the oldest go. */
static void
runner_keep(struct runner *rn, const char *id, json_t *res)
{
	struct wdone	*d;

	if (*id == '\0')
		return;
	d = xcalloc(1, sizeof *d);
	snprintf(d->id, sizeof d->id, "%s", id);
	d->res = json_deep_copy(res);
	TAILQ_INSERT_TAIL(&rn->done, d, entry);
	if (++rn->ndone > RUN_KEEP) {
		d = TAILQ_FIRST(&rn->done);
		TAILQ_REMOVE(&rn->done, d, entry);
		json_decref(d->res);
		free(d);
		rn->ndone--;
	}
}

/*
 * Answer the run (code: its exit status, stolen, NULL when unknown; sig
 * with exited: the session's end) and go on with the next.
 */
static void
run_finish(struct wrun *u, json_t *code, json_t *sig, int exited)
{
	struct runner	*rn = u->rn;
	uint8_t		*p, *q;
	size_t		 n, i, j;
	json_t		*res;

	TAILQ_REMOVE(&rn->runs, u, entry);
	n = evbuffer_get_length(u->out);
	p = evbuffer_pullup(u->out, -1);
	q = xmalloc(n + 1);
	for (i = j = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		q[j++] = p[i];
	}
	res = json_pack("{s:b, s:o, s:b, s:b}", "ok", 1, "exit_code",
	    code != NULL ? code : json_null(), "timed_out", u->timed_out,
	    "truncated", u->truncated);
	util_json_set_bytes(res, "output", q, j);
	free(q);
	if (exited) {
		json_object_set_new(res, "exited", json_true());
		json_object_set(res, "signal", sig != NULL ? sig :
		    json_null());
	}
	log_debug("session %s: run %lu answered", rn->job->handle, u->seq);
	runner_keep(rn, u->id, res);
	worker_reply(u->req, res);
	run_free(u);
	runner_schedule(rn);
}

/* The run's timeout, then its grace after the Ctrl-C. */
static void
run_timer_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct wrun	*u = arg;
	struct runner	*rn = u->rn;
	struct timeval	 tv;

	u->timed_out = 1;
	if (u->state == WRUN_QUEUED || u->state == WRUN_CUT) {
		/* Never typed; or no E after the Ctrl-C: the line is gone. */
		run_finish(u, NULL, NULL, 0);
		job_flush(rn->job);
		return;
	}
	log_debug("session %s: run %lu timed out, typing Ctrl-C",
	    rn->job->handle, u->seq);
	runner_unhold(rn, u, 0);
	u->state = WRUN_CUT;
	rn->seen_output = 0;
	runner_type(rn, "\003", 1);
	util_timeval(&tv, RUN_GRACE);
	evtimer_add(u->timer, &tv);
	util_timeval(&tv, RUN_POLL);
	evtimer_add(rn->poll_ev, &tv);
	job_flush(rn->job);
}

/* The run named id, queued or running, or NULL. */
static struct wrun *
runner_find(struct runner *rn, const char *id)
{
	struct wrun	*u;

	TAILQ_FOREACH(u, &rn->runs, entry)
		if (*id != '\0' && strcmp(u->id, id) == 0)
			return (u);
	return (NULL);
}

/*
 * A request for a run the runner knows (sent again, or a cancel): 1 when
 * it is answered here.
 */
static int
runner_again(struct runner *rn, json_t *msg, const char *id, int cancel)
{
	struct wrun	*u;
	struct wdone	*d;

	if ((u = runner_find(rn, id)) != NULL) {
		if (!cancel) {
			json_decref(u->req);
			u->req = json_incref(msg);
			return (1);
		}
		if (u->state == WRUN_QUEUED) {
			/* Its requester went away before it was typed. */
			TAILQ_REMOVE(&rn->runs, u, entry);
			run_free(u);
			runner_schedule(rn);
		}
	} else if (!cancel) {
		TAILQ_FOREACH(d, &rn->done, entry) {
			if (*id != '\0' && strcmp(d->id, id) == 0) {
				worker_reply(msg, json_deep_copy(d->res));
				return (1);
			}
		}
		return (0);
	}
	worker_reply(msg, json_pack("{s:b}", "ok", 1));
	return (1);
}

/* session.run: run (its name), cmd, optional timeout, max; or cancel. */
void
runner_request(struct runner *rn, json_t *msg)
{
	const char	*id = json_string_value(json_object_get(msg, "run"));
	const char	*cmd = json_string_value(json_object_get(msg, "cmd"));
	struct wrun	*u;
	json_t		*v;
	struct timeval	 tv;
	int		 n = 0;

	if (runner_again(rn, msg, id != NULL ? id : "",
	    json_is_true(json_object_get(msg, "cancel"))))
		return;
	if (cmd == NULL) {
		worker_reply_error(msg, "bad_request", 0, "field 'cmd' is "
		    "required");
		return;
	}
	TAILQ_FOREACH(u, &rn->runs, entry)
		n++;
	if (n >= RUN_MAX_QUEUED) {
		worker_reply_error(msg, "limit", 0, "too many runs queued on "
		    "session %s", rn->job->handle);
		return;
	}
	u = xcalloc(1, sizeof *u);
	u->rn = rn;
	u->req = json_incref(msg);
	snprintf(u->id, sizeof u->id, "%s", id != NULL ? id : "");
	u->cmd = xstrdup(cmd);
	u->seq = ++rn->seq;
	u->out = evbuffer_new();
	u->max = CONTROL_MAX_OUTPUT;
	if (json_is_integer(v = json_object_get(msg, "max")) &&
	    json_integer_value(v) >= 0)
		u->max = (size_t)json_integer_value(v);
	u->timer = evtimer_new(ev_base, run_timer_cb, u);
	if (json_is_number(v = json_object_get(msg, "timeout")) &&
	    json_number_value(v) > 0) {
		util_timeval(&tv, json_number_value(v));
		evtimer_add(u->timer, &tv);
	}
	TAILQ_INSERT_TAIL(&rn->runs, u, entry);
	runner_schedule(rn);
}

/* The session exited: every run ends with its status. */
void
runner_exited(struct runner *rn, json_t *status)
{
	struct wrun	*u;

	while ((u = TAILQ_FIRST(&rn->runs)) != NULL) {
		u->state = WRUN_QUEUED;		/* type nothing more */
		run_finish(u, json_incref(json_object_get(status,
		    "exit_code")), json_object_get(status, "signal"), 1);
	}
}

/* ---- the runner of a session ---- */

/*
 * The run engine of the session of job j on terminal master. From now on
 * the session's output goes through runner_filter().
 */
struct runner *
runner_create(struct job *j, int master)
{
	struct runner	*rn;
	struct job_stream *st = &j->out[WIRE_OUT];

	rn = xcalloc(1, sizeof *rn);
	rn->job = j;
	rn->master = master;
	rn->shell_pg = -1;
	util_random_hex(rn->scan.secret, sizeof rn->scan.secret);
	rn->scan.bytes = runner_bytes;
	rn->scan.mark = runner_mark;
	rn->scan.arg = rn;
	rn->held = evbuffer_new();
	rn->typing = evbuffer_new();
	rn->write_ev = event_new(ev_base, master, EV_WRITE, runner_write_cb,
	    rn);
	rn->poll_ev = evtimer_new(ev_base, runner_poll_cb, rn);
	rn->part_ev = evtimer_new(ev_base, runner_part_cb, rn);
	/* What the shell printed before (its prompt) counts as quiet. */
	rn->seen_output = st->base + evbuffer_get_length(st->buf) > 0;
	rn->last_output = util_now() - RUN_QUIET;
	TAILQ_INIT(&rn->runs);
	TAILQ_INIT(&rn->done);
	j->flags |= JOB_FILTER;
	return (rn);
}

/* Free the runner (NULL is fine); waiting runs get no_such_session. */
void
runner_free(struct runner *rn)
{
	struct wrun	*u;
	struct wdone	*d;

	if (rn == NULL)
		return;
	while ((u = TAILQ_FIRST(&rn->runs)) != NULL) {
		TAILQ_REMOVE(&rn->runs, u, entry);
		worker_reply_error(u->req, "no_such_session", 0, "session %s "
		    "was released", rn->job->handle);
		run_free(u);
	}
	while ((d = TAILQ_FIRST(&rn->done)) != NULL) {
		TAILQ_REMOVE(&rn->done, d, entry);
		json_decref(d->res);
		free(d);
	}
	event_free(rn->write_ev);
	event_free(rn->poll_ev);
	event_free(rn->part_ev);
	evbuffer_free(rn->held);
	evbuffer_free(rn->typing);
	free(rn);
}

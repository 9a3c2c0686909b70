/*
 * control-run.c: session.run, a shell command line run in a session's
 * shell, answered with only that command's output and exit status.
 *
 * It is done here, as one more consumer of the session's output.
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

#include <stdlib.h>
#include <string.h>

#include "sandd.h"
#include "control-session.h"

#define RUN_GRACE		0.5	/* s to wait for E after Ctrl-C */

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

static void	 run_next(struct session *);
static void	 run_finish(struct srun *, json_t *, int);

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
void
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
		r->data_free = NULL;	/* answered here, not gone */
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


/* The session exited: every run ends with its status. */
void
run_exited(struct session *s)
{
	struct srun	*u;

	while ((u = TAILQ_FIRST(&s->runs)) != NULL) {
		if (u->state == RUN_OUTPUT)
			run_commit(u, u->pend, evbuffer_get_length(u->pend));
		u->state = RUN_QUEUED;	/* do not start the next */
		run_finish(u, json_incref(s->exit_code), 1);
	}
}

/*
 * The session is gone for good: runs end with error (when given), else
 * with the session's status.
 */
void
run_gone(struct session *s, json_t *error)
{
	struct srun	*u;
	struct req	*r;

	while ((u = TAILQ_FIRST(&s->runs)) != NULL) {
		u->state = RUN_QUEUED;
		if (error != NULL && u->req != NULL) {
			TAILQ_REMOVE(&s->runs, u, entry);
			r = u->req;
			r->data_free = NULL;
			req_error_json(r, json_incref(error));
			run_free(u);
		} else
			run_finish(u, json_incref(s->exit_code), 1);
	}
}

/* Lower *min to where the active run stands; 1 if there is one. */
int
run_min(struct session *s, uint64_t *min)
{
	struct srun	*u = TAILQ_FIRST(&s->runs);

	if (u == NULL || u->state == RUN_QUEUED || u->pos >= *min)
		return (0);
	*min = u->pos;
	return (1);
}

/* session.run: session, cmd, optional timeout. */
void
control_run_cmd(struct req *r)
{
	struct session	*s;
	struct srun	*u;

	if ((s = session_get(r)) == NULL || attach_readonly(r, s))
		return;
	if (s->exited) {
		req_error(r, "no_such_session", "session %s has exited", s->id);
		return;
	}
	u = xcalloc(1, sizeof *u);
	u->s = s;
	u->req = r;
	u->cmd = xstrdup(req_string(r, "cmd"));
	u->timeout = req_number(r, "timeout", 0);
	u->pend = evbuffer_new();
	u->out = evbuffer_new();
	u->max = serve_opts.max_output;
	r->data = u;
	r->data_free = run_req_gone;
	TAILQ_INSERT_TAIL(&s->runs, u, entry);
	run_next(s);
}


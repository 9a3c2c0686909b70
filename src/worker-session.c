/*
 * worker-session.c: PTY sessions on the worker.
 *
 * A session is a program started with forkpty(3): it is the leader of a
 * new session with the PTY as its controlling terminal, so job control
 * works (Ctrl-C reaches the foreground job, Ctrl-Z stops it), and the
 * window size is set before it runs. The session belongs to the worker:
 * it runs on whatever happens to clients, to the link or to the
 * controller, until it exits and is released (session.close) or its
 * linger time passes.
 *
 * Output is read by job.c with the usual window (the controller acks
 * only what every attached client took, so a slow client pauses the
 * program through the PTY); on the way every byte is also copied into a
 * ring of the last --ring-size bytes, addressed by absolute offset, that
 * answers session.read and the controller's replays. Input comes through
 * job.c's stdin path on the master. session.run is worker-run.c's: once a
 * session had one, its output passes that file's filter on the way.
 *
 * The session has exited once its leader was reaped and the master read
 * EOF (EIO), so no tail of output is lost; the end message then carries
 * exit_code and signal. RPCs: session.read (optionally waiting for a
 * regex, re-checked as output arrives, at most every CHECK_DELAY over a
 * big range), session.resize, session.signal, session.close.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

#define SESSION_RPC_CHUNK	(128 * 1024)	/* bytes per read reply */
#define SESSION_MAX_WAITERS	64
#define SESSION_CHECK_DELAY	0.025	/* s between scans of a big range */
#define SESSION_CHECK_SMALL	(64 * 1024)
#define SESSION_EOF_GRACE	1.0	/* s after the leader died */
#define SESSION_NONE		UINT64_MAX

struct session;

/* A session.read waiting for its regex, or a session.close for the exit. */
struct swait {
	struct session	*s;
	json_t		*req;
	regex_t		 re;
	int		 has_re;
	uint64_t	 since;		/* SESSION_NONE: the oldest kept */
	uint64_t	 limit;		/* SESSION_NONE: up to the end */
	size_t		 max;
	struct event	*timer;
	TAILQ_ENTRY(swait) entry;
};
TAILQ_HEAD(swaits, swait);

struct session {
	struct job	*job;
	pid_t		 pid;		/* the leader, kept after reaping */
	int		 master;
	struct ring	 ring;		/* of its output (worker-ring.c) */
	int		 rows;
	int		 cols;
	char		*cmd;
	char		 created[32];
	int		 reaped;
	int		 eof;
	int		 exited;
	int		 status;
	double		 last_check;
	struct event	*check_ev;
	struct event	*info_ev;	/* resend "started" after a hello */
	struct event	*exec_ev;	/* in a workspace: did its exec go? */
	int		 failed;	/* it did not: the job is failed */
	struct event	*eof_ev;
	struct event	*kill_ev;
	struct event	*linger_ev;
	struct swaits	 reads;
	struct swaits	 closes;
	struct runner	*runner;	/* session.run (worker-run.c) */
};

static void	 session_output(struct job *, int, const uint8_t *, size_t);
static void	 session_filter(struct job *, int, const uint8_t *, size_t);
static void	 session_eof(struct job *, int);
static void	 session_message(struct job *, enum wire_type, json_t *);
static void	 session_release(struct job *);
static void	 session_describe(struct job *, json_t *);
static void	 session_free(struct job *);
static void	 session_check_exit(struct session *);
static void	 session_exec_check(struct session *);
static void	 session_check_waiters(struct session *);

static const struct job_ops session_ops = {
	.output = session_output,
	.filter = session_filter,
	.eof = session_eof,
	.message = session_message,
	.release = session_release,
	.cancel = session_release,
	.describe = session_describe,
	.free = session_free,
};

/* ---- helpers ---- */

/* Set exit_code and signal on o from the leader's wait status. */
static void
session_exit_fields(struct session *s, json_t *o)
{
	if (!s->reaped) {
		json_object_set_new(o, "exit_code", json_null());
		json_object_set_new(o, "signal", json_null());
	} else if (WIFEXITED(s->status)) {
		json_object_set_new(o, "exit_code",
		    json_integer(WEXITSTATUS(s->status)));
		json_object_set_new(o, "signal", json_null());
	} else {
		json_object_set_new(o, "exit_code", json_null());
		json_object_set_new(o, "signal", json_string(
		    util_signal_name(WTERMSIG(s->status))));
	}
	if (s->reaped)
		json_object_set_new(o, "reason", json_string(job_tree_reason(
		    s->job, s->status, WIFEXITED(s->status) ? "exit" :
		    "signal")));
}

/* What a controller knows a running session by: id, pid, cmd, size. */
static void
session_fields(struct session *s, json_t *o)
{
	json_object_set_new(o, "session", json_string(s->job->handle));
	json_object_set_new(o, "pid", json_integer(s->pid));
	json_object_set_new(o, "cmd", json_string(s->cmd));
	json_object_set_new(o, "rows", json_integer(s->rows));
	json_object_set_new(o, "cols", json_integer(s->cols));
	json_object_set_new(o, "created_at", json_string(s->created));
}

/* Signal the foreground process group of the terminal, or the leader's. */
static void
session_kill(struct session *s, int sig, int both)
{
	pid_t	pg = -1;

	if (s->reaped)
		return;
	if (s->master != -1)
		pg = tcgetpgrp(s->master);
	if (pg > 0)
		killpg(pg, sig);
	if (pg <= 0 || (both && pg != s->pid)) {
		if (killpg(s->pid, sig) == -1 && errno == ESRCH)
			kill(s->pid, sig);
	}
}

/* The session named by the RPC's "session", or NULL after replying. */
static struct session *
session_find_rpc(json_t *msg)
{
	const char	*id = json_string_value(json_object_get(msg,
			    "session"));
	struct job	*j;

	if (id == NULL) {
		worker_reply_error(msg, "bad_request", 0, "field 'session' is "
		    "required");
		return (NULL);
	}
	j = job_find_handle(id);
	if (j == NULL || j->kind != CHAN_SESSION || j->data == NULL ||
	    (j->flags & JOB_CANCELLED)) {
		worker_reply_error(msg, "no_such_session", 0, "no session '%s' "
		    "on worker %s", id, worker_opts.id);
		return (NULL);
	}
	return (j->data);
}

/* Free a waiter (unlinked by the caller). */
static void
session_waiter_free(struct swait *w)
{
	if (w->timer != NULL)
		event_free(w->timer);
	if (w->has_re)
		regfree(&w->re);
	json_decref(w->req);
	free(w);
}

/* ---- reading ---- */

/* Answer a session.read waiter with what the ring holds; frees it. */
static void
session_read_reply(struct session *s, struct swait *w, int matched)
{
	uint64_t	 start = w->since, stop, rstart = ring_start(&s->ring);
	int		 truncated = 0;
	uint8_t		*buf;
	char		*b64;
	size_t		 n;
	json_t		*res;

	if (start == SESSION_NONE)
		start = rstart;
	else if (start < rstart) {
		truncated = 1;
		start = rstart;
	}
	if (start > s->ring.end)
		start = s->ring.end;
	stop = s->ring.end;
	if (w->limit != SESSION_NONE && w->limit < stop)
		stop = w->limit > start ? w->limit : start;
	if (stop - start > w->max)
		stop = start + w->max;
	n = (size_t)(stop - start);
	buf = xmalloc(n + 1);
	ring_copy(&s->ring, start, buf, n);
	b64 = util_base64(buf, n);
	free(buf);
	res = json_pack("{s:b, s:I, s:I, s:I, s:s, s:b, s:b, s:b}",
	    "ok", 1, "start", (json_int_t)start, "offset", (json_int_t)stop,
	    "end", (json_int_t)s->ring.end, "data_b64", b64, "matched", matched,
	    "exited", s->exited, "truncated", truncated);
	free(b64);
	if (s->exited)
		session_exit_fields(s, res);
	worker_reply(w->req, res);
	session_waiter_free(w);
}

/*
 * Does the output since the waiter's start match its regex? Only its
 * last UNTIL_WINDOW bytes are looked at.
 */
static int
session_waiter_matches(struct session *s, struct swait *w)
{
	uint64_t	 start = w->since, rstart = ring_start(&s->ring);
	uint8_t		*buf;
	size_t		 n;
	regmatch_t	 m;
	int		 r;

	if (start == SESSION_NONE || start < rstart)
		start = rstart;
	if (start > s->ring.end)
		start = s->ring.end;
	if (s->ring.end - start > UNTIL_WINDOW)
		/* Bounded work per attempt. */
		start = s->ring.end - UNTIL_WINDOW;
	n = (size_t)(s->ring.end - start);
	buf = xmalloc(n + 1);
	ring_copy(&s->ring, start, buf, n);
	buf[n] = '\0';
#ifdef REG_STARTEND
	m.rm_so = 0;
	m.rm_eo = (regoff_t)n;
	r = regexec(&w->re, (char *)buf, 1, &m, REG_STARTEND);
#else
	(void)m;
	r = regexec(&w->re, (char *)buf, 0, NULL, 0);
#endif
	free(buf);
	return (r == 0);
}

/* Answer every waiting read that can be answered now. */
static void
session_check_waiters(struct session *s)
{
	struct swait	*w, *w1;

	s->last_check = util_now();
	TAILQ_FOREACH_SAFE(w, &s->reads, entry, w1) {
		if (session_waiter_matches(s, w)) {
			TAILQ_REMOVE(&s->reads, w, entry);
			session_read_reply(s, w, 1);
		} else if (s->exited) {
			TAILQ_REMOVE(&s->reads, w, entry);
			session_read_reply(s, w, 0);
		}
	}
}

/* Time to re-check the waiting reads. */
static void
session_check_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	session_check_waiters(arg);
}

/*
 * New output: re-check the waiting reads, at once for a small range, at
 * most every SESSION_CHECK_DELAY for a big one (bounded work per byte).
 */
static void
session_schedule_check(struct session *s)
{
	struct timeval	tv = { 0, 0 };
	double		wait;

	if (TAILQ_EMPTY(&s->reads) || evtimer_pending(s->check_ev, NULL))
		return;
	wait = s->last_check + SESSION_CHECK_DELAY - util_now();
	if (wait > 0 &&
	    s->ring.end - ring_start(&s->ring) > SESSION_CHECK_SMALL)
		util_timeval(&tv, wait);
	evtimer_add(s->check_ev, &tv);
}

/* A waiting read timed out: answer with what there is. */
static void
session_read_timeout_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct swait	*w = arg;
	struct session	*s = w->s;

	TAILQ_REMOVE(&s->reads, w, entry);
	session_read_reply(s, w, session_waiter_matches(s, w));
}

/*
 * session.read: session, optional since, limit, max, until, timeout.
 * Replies data_b64 [start, offset), the ring's end and the flags; with
 * until, once the output since `since` matches, the session exits or
 * timeout passes.
 */
void
worker_session_read(json_t *msg)
{
	struct session	*s;
	struct swait	*w, *x;
	json_t		*v;
	const char	*until;
	struct timeval	 tv;
	char		 errbuf[128];
	int		 e, n = 0;

	if ((s = session_find_rpc(msg)) == NULL)
		return;
	w = xcalloc(1, sizeof *w);
	w->s = s;
	w->req = json_incref(msg);
	w->since = w->limit = SESSION_NONE;
	w->max = SESSION_RPC_CHUNK;
	if (json_is_integer(v = json_object_get(msg, "since")) &&
	    json_integer_value(v) >= 0)
		w->since = (uint64_t)json_integer_value(v);
	if (json_is_integer(v = json_object_get(msg, "limit")) &&
	    json_integer_value(v) >= 0)
		w->limit = (uint64_t)json_integer_value(v);
	if (json_is_integer(v = json_object_get(msg, "max")) &&
	    json_integer_value(v) >= 0 &&
	    json_integer_value(v) < SESSION_RPC_CHUNK)
		w->max = (size_t)json_integer_value(v);
	until = json_string_value(json_object_get(msg, "until"));
	if (until == NULL) {
		session_read_reply(s, w, 0);
		return;
	}
	if ((e = regcomp(&w->re, until, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(e, &w->re, errbuf, sizeof errbuf);
		session_waiter_free(w);
		worker_reply_error(msg, "bad_request", 0, "field 'until': %s",
		    errbuf);
		return;
	}
	w->has_re = 1;
	if (session_waiter_matches(s, w)) {
		session_read_reply(s, w, 1);
		return;
	}
	if (s->exited) {
		session_read_reply(s, w, 0);
		return;
	}
	TAILQ_FOREACH(x, &s->reads, entry)
		n++;
	if (n >= SESSION_MAX_WAITERS) {
		session_waiter_free(w);
		worker_reply_error(msg, "limit", 0, "too many reads waiting on "
		    "session %s", s->job->handle);
		return;
	}
	if (json_is_number(v = json_object_get(msg, "timeout"))) {
		w->timer = evtimer_new(ev_base, session_read_timeout_cb, w);
		util_timeval(&tv, json_number_value(v));
		evtimer_add(w->timer, &tv);
	}
	TAILQ_INSERT_TAIL(&s->reads, w, entry);
}

/* ---- the program's life ---- */

/* Stop reading a master that will give no EOF: the tail is all read. */
static void
session_force_eof(struct session *s)
{
	struct job		*j = s->job;

	if (j->out[WIRE_OUT].eof)
		return;
	job_close_stream(j, WIRE_OUT);
	if (s->runner != NULL)
		runner_eof(s->runner);
	s->eof = 1;
}

/* Answer the session.close requests waiting for the exit. */
static void
session_reply_closes(struct session *s)
{
	struct swait	*w;
	json_t		*res;

	while ((w = TAILQ_FIRST(&s->closes)) != NULL) {
		TAILQ_REMOVE(&s->closes, w, entry);
		res = json_pack("{s:b}", "ok", 1);
		session_exit_fields(s, res);
		worker_reply(w->req, res);
		session_waiter_free(w);
	}
	if (s->kill_ev != NULL)
		evtimer_del(s->kill_ev);
}

/* Tell the controller of the session's own channel that it is gone. */
static void
session_tell_gone(struct job *j)
{
	json_t	*m;

	m = wire_chan_msg(WIRE_T_INFO, j->ch);
	json_object_update_new(m, json_pack("{s:s, s:s}", "state", "gone",
	    "session", j->handle));
	wlink_send_later(j->link, m);
	json_decref(m);
}

/*
 * The exited session lingered long enough: tell every link (now, or
 * once it is back) and free it.
 */
static void
session_linger_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct session	*s = arg;
	struct job	*j = s->job;

	log_info("session %s: lingered %d seconds after its exit, released",
	    j->handle, worker_opts.session_linger);
	session_tell_gone(j);
	job_free(j);
}

/* Leader reaped and output at EOF: the session has exited. */
static void
session_check_exit(struct session *s)
{
	struct job	*j = s->job;
	struct timeval	 tv = { worker_opts.session_linger, 0 };
	json_t		*end;

	if (s->exited || !s->reaped || !s->eof || s->failed ||
	    (j->flags & JOB_CANCELLED))
		return;
	s->exited = 1;
	log_info("session %s: pid %ld exited (status %d)", j->handle,
	    (long)s->pid, s->status);
	end = json_object();
	session_exit_fields(s, end);
	json_object_set_new(end, "session", json_string(j->handle));
	session_check_waiters(s);
	s->linger_ev = evtimer_new(ev_base, session_linger_cb, s);
	evtimer_add(s->linger_ev, &tv);
	job_set_end(j, end);
	view_job_output(j);
	if (s->runner != NULL) {
		end = json_object();
		session_exit_fields(s, end);
		runner_exited(s->runner, end);
		json_decref(end);
	}
}

/* The leader died a while ago and the master gave no EOF yet. */
static void
session_eof_grace_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct session	*s = arg;
	struct timeval	 tv;

	if (s->eof)
		return;
	if (s->job->out[WIRE_OUT].paused) {
		/* Output waits for acks: the EOF will come after it. */
		util_timeval(&tv, SESSION_EOF_GRACE);
		evtimer_add(s->eof_ev, &tv);
		return;
	}
	/* Something else (a background job) holds the terminal open. */
	log_debug("session %s: no EOF after the leader died", s->job->handle);
	session_force_eof(s);
	session_check_exit(s);
}

/* The leader was reaped. */
static void
session_reaped(__unused pid_t pid, int status, void *arg)
{
	struct job	*j = arg;
	struct session	*s = j->data;
	struct timeval	 tv;

	j->pid = -1;
	s->reaped = 1;
	s->status = status;
	if (j->flags & JOB_CANCELLED) {
		job_maybe_free(j);
		return;
	}
	if (s->exec_ev != NULL)
		session_exec_check(s);	/* its news came with its death */
	if (s->failed)
		return;		/* the end is exec_failed */
	session_reply_closes(s);
	if (!s->eof) {
		s->eof_ev = evtimer_new(ev_base, session_eof_grace_cb, s);
		util_timeval(&tv, SESSION_EOF_GRACE);
		evtimer_add(s->eof_ev, &tv);
	}
	session_check_exit(s);
}

/* The grace period of session.close has passed: SIGKILL. */
static void
session_kill_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct session	*s = arg;

	log_info("session %s: still there after the grace period, SIGKILL",
	    s->job->handle);
	session_kill(s, SIGKILL, 1);
}

/* ---- job hooks ---- */

/* job_ops.output: keep the bytes in the ring, wake waiting reads. */
static void
session_output(struct job *j, int st, const uint8_t *p, size_t n)
{
	struct session	*s = j->data;

	if (st != WIRE_OUT || s == NULL)
		return;
	ring_add(&s->ring, p, n);
	session_schedule_check(s);
	view_job_output(j);
}

/* job_ops.filter: once it had a run, the output goes through its filter. */
static void
session_filter(struct job *j, int st, const uint8_t *p, size_t n)
{
	struct session	*s = j->data;

	if (s != NULL && s->runner != NULL)
		runner_filter(s->runner, p, n);
	else
		job_stream_push(j, st, p, n);
}

/* job_ops.eof: the master gave EIO (job.c closed its read side). */
static void
session_eof(struct job *j, int st)
{
	struct session	*s = j->data;

	if (st != WIRE_OUT || s == NULL)
		return;
	if (s->runner != NULL)
		runner_eof(s->runner);
	s->eof = 1;
	session_check_exit(s);
}

/* Set the terminal's size; the kernel sends SIGWINCH on a change. */
static int
session_set_size(struct session *s, int rows, int cols)
{
	struct winsize	ws;

	memset(&ws, 0, sizeof ws);
	ws.ws_row = (unsigned short)rows;
	ws.ws_col = (unsigned short)cols;
	if (s->master != -1 && ioctl(s->master, TIOCSWINSZ, &ws) == -1)
		return (-1);
	s->rows = rows;
	s->cols = cols;
	return (0);
}

/* job_ops.message: "resize" as a plain message too. */
static void
session_message(struct job *j, enum wire_type type, json_t *msg)
{
	struct session	*s = j->data;
	json_int_t	 rows, cols;

	if (s == NULL || type != WIRE_T_RESIZE)
		return;
	rows = json_integer_value(json_object_get(msg, "rows"));
	cols = json_integer_value(json_object_get(msg, "cols"));
	if (rows > 0 && rows <= 65535 && cols > 0 && cols <= 65535)
		session_set_size(s, (int)rows, (int)cols);
}

/* job_ops.release and cancel: the controller is done with the session. */
static void
session_release(struct job *j)
{
	struct session	*s = j->data;

	if (s != NULL && j->pid > 0) {
		log_info("session %s: released while running, SIGKILL",
		    j->handle);
		j->flags |= JOB_CANCELLED;
		session_kill(s, SIGKILL, 1);
		session_force_eof(s);
		return;		/* freed once reaped */
	}
	job_free(j);
}

/* job_ops.describe: what a new controller needs to adopt the session. */
static void
session_describe(struct job *j, json_t *a)
{
	struct session	*s = j->data;

	if (s == NULL || s->pid <= 0)
		return;
	/* Say "started" again once the hello is out (it may have been lost). */
	event_active(s->info_ev, EV_TIMEOUT, 0);
	session_fields(s, a);
	json_object_set_new(a, "end", json_integer((json_int_t)s->ring.end));
	json_object_set_new(a, "exited", json_boolean(s->exited));
	session_exit_fields(s, a);
}

/* job_ops.free: the session goes; waiting requests are answered. */
static void
session_free(struct job *j)
{
	struct session	*s = j->data;
	struct swait	*w;

	if (s == NULL)
		return;
	view_job_free(j);
	while ((w = TAILQ_FIRST(&s->reads)) != NULL) {
		TAILQ_REMOVE(&s->reads, w, entry);
		worker_reply_error(w->req, "no_such_session", 0, "session %s "
		    "was released", j->handle);
		session_waiter_free(w);
	}
	while ((w = TAILQ_FIRST(&s->closes)) != NULL) {
		TAILQ_REMOVE(&s->closes, w, entry);
		worker_reply_error(w->req, "no_such_session", 0, "session %s "
		    "was released", j->handle);
		session_waiter_free(w);
	}
	if (s->check_ev != NULL)
		event_free(s->check_ev);
	if (s->info_ev != NULL)
		event_free(s->info_ev);
	if (s->exec_ev != NULL)
		event_free(s->exec_ev);
	if (s->eof_ev != NULL)
		event_free(s->eof_ev);
	if (s->kill_ev != NULL)
		event_free(s->kill_ev);
	if (s->linger_ev != NULL)
		event_free(s->linger_ev);
	runner_free(s->runner);
	ring_free(&s->ring);
	free(s->cmd);
	free(s);
	j->data = NULL;
}

/* ---- opening ---- */

/*
 * May the session's program run? The login shell is checked as the
 * program it is (*shell, run as sr->path), not as its argv[0] "-bash";
 * when allowed, it runs the rule's path.
 */
static int
session_allowed(struct spawn_req *sr, char **shell, json_t *env,
    char **cause)
{
	char	*check[2];

	if (*shell == NULL)
		return (policy_command_allowed(sr->argv, env, cause));
	check[0] = xstrdup(*shell);
	check[1] = NULL;
	if (!policy_command_allowed(check, env, cause)) {
		free(check[0]);
		return (0);
	}
	free(*shell);
	sr->path = *shell = check[0];
	return (1);
}

/*
 * Start the session's program on a new PTY: the open's cmd or argv, else
 * the user's login shell. Returns 0, or -1 after failing the job with the
 * reason.
 */
static int
session_spawn(struct job *j, struct session *s, json_t *open)
{
	struct spawn_req	 sr;
	struct passwd		*pw = NULL;
	char			*cause = NULL, *shell = NULL, *home = NULL;
	int			 e, master;
	pid_t			 pid;

	memset(&sr, 0, sizeof sr);
	if (job_tree_prepare(j, open, &sr) == -1)
		return (-1);
	sr.cwd = json_string_value(json_object_get(open, "cwd"));
	sr.user = json_string_value(json_object_get(open, "user"));
	sr.rows = s->rows;
	sr.cols = s->cols;
	/* For the shell and the environment; spawn_pty says if none. */
	if (sr.user != NULL)
		pw = getpwnam(sr.user);
	if (json_object_get(open, "cmd") != NULL ||
	    json_object_get(open, "argv") != NULL) {
		if ((sr.argv = spawn_build_argv(open, &cause)) == NULL) {
			job_tree_started(j, &sr);
			job_fail(j, "exec_failed", 0, "%s", cause);
			free(cause);
			return (-1);
		}
	} else
		shell = shell_login(j, &sr, pw, &home);
	s->cmd = shell != NULL ? xstrdup(shell) : shell_cmd_string(open,
	    sr.argv);
	if (!session_allowed(&sr, &shell, json_object_get(open, "env"),
	    &cause)) {
		job_tree_started(j, &sr);
		spawn_free_strv(sr.argv);
		free(shell);
		free(home);
		job_fail(j, "denied", 0, "%s", cause);
		free(cause);
		return (-1);
	}
	sr.envp = j->ws != NULL ? job_tree_env(j, json_object_get(open, "env"),
	    1, shell_term(open), NULL) : shell_env(open, sr.user);
	pid = spawn_pty(&sr, &master, &e, &cause);
	job_tree_started(j, &sr);
	free(shell);
	free(home);
	spawn_free_strv(sr.argv);
	spawn_free_strv(sr.envp);
	if (pid == -1) {
		job_fail(j, "exec_failed", e, "%s", cause);
		free(cause);
		return (-1);
	}
	s->master = master;
	s->pid = j->pid = j->started_pid = pid;
	worker_child_add(pid, session_reaped, j);
	job_stream_attach(j, WIRE_OUT, master);
	job_stdin_attach(j, master);
	return (0);
}

/*
 * Tell the controller the program runs (answers the open). Sent again
 * after every hello: the controller ignores it when it knows already.
 */
static void
session_send_started(struct session *s)
{
	struct job	*j = s->job;
	json_t		*m;

	m = wire_chan_msg(WIRE_T_INFO, j->ch);
	json_object_set_new(m, "state", json_string("started"));
	session_fields(s, m);
	wlink_send(j->link, m);
	json_decref(m);
}

/* After a hello: say again that the session runs. */
static void
session_info_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct session	*s = arg;

	if (!(s->job->flags & JOB_CANCELLED))
		session_send_started(s);
}

/* The program runs: say so to every controller. */
static void
session_running(struct session *s)
{
	struct job	*j = s->job;

	log_info("session %s: started pid %ld: %s (%dx%d)", j->handle,
	    (long)s->pid, s->cmd, s->rows, s->cols);
	j->flags |= JOB_SHARED;
	session_send_started(s);
	view_job_started(j);
}

/*
 * What the failure pipe of a program started in a workspace says: EOF
 * (its exec closed it) and it runs; else it failed before its program
 * ran and the job is failed with exec_failed (job_tree_failed).
 */
static void
session_exec_check(struct session *s)
{
	event_free(s->exec_ev);
	s->exec_ev = NULL;
	if (job_tree_failed(s->job))
		s->failed = 1;
	else
		session_running(s);
}

static void
session_exec_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	session_exec_check(arg);
}

/* An open of kind CHAN_SESSION: start the program, or fail the job. */
void
worker_session_open(struct job *j, json_t *open)
{
	struct session	*s;
	json_int_t	 rows, cols;

	j->ops = &session_ops;
	/* Exited sessions count until released: their output is kept. */
	if (worker_opts.max_sessions > 0 &&
	    job_count(CHAN_SESSION, j, 0) >= worker_opts.max_sessions) {
		job_fail(j, "limit", 0, "worker %s holds %d sessions, its most "
		    "(--max-sessions %d)", worker_opts.id,
		    worker_opts.max_sessions, worker_opts.max_sessions);
		return;
	}
	s = xcalloc(1, sizeof *s);
	s->job = j;
	s->master = -1;
	s->pid = -1;
	TAILQ_INIT(&s->reads);
	TAILQ_INIT(&s->closes);
	ring_init(&s->ring, worker_opts.ring_size < DEFAULT_RING_SIZE ?
	    DEFAULT_RING_SIZE : worker_opts.ring_size);
	s->check_ev = evtimer_new(ev_base, session_check_cb, s);
	s->info_ev = event_new(ev_base, -1, 0, session_info_cb, s);
	util_rfc3339(time(NULL), s->created, sizeof s->created);
	rows = json_integer_value(json_object_get(open, "rows"));
	cols = json_integer_value(json_object_get(open, "cols"));
	s->rows = rows > 0 && rows <= 65535 ? (int)rows : 24;
	s->cols = cols > 0 && cols <= 65535 ? (int)cols : 80;
	j->data = s;

	if (session_spawn(j, s, open) != 0) {
		/* Nothing runs: the failed job waits for its release. */
		return;
	}
	if (j->fail_fd != -1) {
		/* In a workspace: started once its exec went (exec_ev). */
		s->exec_ev = event_new(ev_base, j->fail_fd, EV_READ,
		    session_exec_cb, s);
		event_add(s->exec_ev, NULL);
		return;
	}
	session_running(s);
}

/* The ring of session job j's output. */
const struct ring *
worker_session_ring(struct job *j)
{
	struct session	*s = j->data;

	return (&s->ring);
}

/* Is session job j one a hello lists (its program was started)? */
int
worker_session_listed(struct job *j)
{
	struct session	*s = j->data;

	return (s != NULL && s->pid > 0 && !(j->flags & JOB_CANCELLED));
}

/*
 * Another link's controller is done with session job j (it closed it):
 * once the program is gone the session is released for every link.
 * Returns with j freed then; a running session goes on.
 */
void
worker_session_view_release(struct job *j)
{
	struct session	*s = j->data;

	if (s == NULL || !s->reaped)
		return;
	log_info("session %s: released through another link", j->handle);
	session_tell_gone(j);
	session_release(j);
}

/* ---- RPCs ---- */

/* session.resize: rows, cols. */
void
worker_session_resize(json_t *msg)
{
	struct session	*s;
	json_int_t	 rows, cols;
	int		 e;

	if ((s = session_find_rpc(msg)) == NULL)
		return;
	rows = json_integer_value(json_object_get(msg, "rows"));
	cols = json_integer_value(json_object_get(msg, "cols"));
	if (rows <= 0 || rows > 65535 || cols <= 0 || cols > 65535) {
		worker_reply_error(msg, "bad_request", 0, "rows and cols must "
		    "be 1 to 65535");
		return;
	}
	if (s->exited || s->reaped) {
		s->rows = (int)rows;
		s->cols = (int)cols;
	} else if (session_set_size(s, (int)rows, (int)cols) == -1) {
		e = errno;
		worker_reply_error(msg, "io_error", e, "resize: %s",
		    strerror(e));
		return;
	}
	worker_reply(msg, json_pack("{s:b, s:i, s:i}", "ok", 1, "rows",
	    s->rows, "cols", s->cols));
}

/* session.run: a command line in the session's shell (worker-run.c). */
void
worker_session_run(json_t *msg)
{
	struct session	*s;

	if ((s = session_find_rpc(msg)) == NULL)
		return;
	if (s->exited || s->eof || s->master == -1) {
		worker_reply_error(msg, "no_such_session", 0, "session %s has "
		    "exited", s->job->handle);
		return;
	}
	if (s->runner == NULL)
		s->runner = runner_create(s->job, s->master);
	runner_request(s->runner, msg);
}

/* session.signal: to the terminal's foreground process group. */
void
worker_session_signal(json_t *msg)
{
	struct session	*s;
	int		 sig;

	if ((s = session_find_rpc(msg)) == NULL)
		return;
	sig = util_signal_number(json_string_value(json_object_get(msg,
	    "signal")));
	if (sig <= 0) {
		worker_reply_error(msg, "bad_request", 0, "field 'signal' must "
		    "name a signal");
		return;
	}
	session_kill(s, sig, 0);
	worker_reply(msg, json_pack("{s:b}", "ok", 1));
}

/*
 * session.close: signal the program (default HUP), SIGKILL after the
 * grace period, reply with its status once it is reaped. The controller
 * then releases the channel.
 */
void
worker_session_close(json_t *msg)
{
	struct session	*s;
	struct swait	*w;
	struct timeval	 tv;
	const char	*name;
	int		 sig = SIGHUP;
	json_t		*res;

	if ((s = session_find_rpc(msg)) == NULL)
		return;
	if ((name = json_string_value(json_object_get(msg, "signal"))) !=
	    NULL && (sig = util_signal_number(name)) <= 0) {
		worker_reply_error(msg, "bad_request", 0, "field 'signal' must "
		    "name a signal");
		return;
	}
	if (s->reaped || s->pid <= 0) {
		res = json_pack("{s:b}", "ok", 1);
		session_exit_fields(s, res);
		worker_reply(msg, res);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->s = s;
	w->req = json_incref(msg);
	TAILQ_INSERT_TAIL(&s->closes, w, entry);
	log_info("session %s: closing pid %ld with SIG%s", s->job->handle,
	    (long)s->pid, util_signal_name(sig));
	session_kill(s, sig, 1);
	if (sig == SIGHUP || sig == SIGTERM)
		session_kill(s, SIGCONT, 1);
	if (s->kill_ev == NULL)
		s->kill_ev = evtimer_new(ev_base, session_kill_cb, s);
	util_timeval(&tv, s->job->kill_grace);
	evtimer_add(s->kill_ev, &tv);
}

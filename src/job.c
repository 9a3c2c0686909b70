/*
 * job.c: the worker's side of every channel, whatever its kind. A job
 * owns a process (or, for files, a descriptor) and its streams. Output
 * is read only while the stream's unacknowledged bytes stay under the
 * window; what has been sent but not acknowledged is kept, so that after
 * a reconnect it is sent again from the last ack and nothing is lost. A
 * job completes only when its output reached EOF and its process was
 * reaped; its result is kept until the controller releases it.
 *
 * What differs between kinds lives in their files behind job_ops (job.h):
 * worker-exec.c, worker-session.c and worker-file*.c. An open finds its
 * kind's open function in a table.
 */
#include <sys/types.h>
#include <sys/uio.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

/*
 * A read this big says the program writes as fast as it can (a terminal
 * gives at most 4 KiB a read): its output is sent once JOB_COALESCE bytes
 * wait or JOB_COALESCE_WAIT has passed, in fewer, bigger frames; a smaller
 * read (typing, a prompt) goes at once. A 256 MiB cat on a terminal made
 * 65,536 frames of 4 KiB, each costing a write, epoll changes and an ack
 * on three processes.
 */
#define JOB_BUSY_READ		2048
#define JOB_COALESCE		(64 * 1024)
#define JOB_COALESCE_WAIT	0.001	/* s */

static TAILQ_HEAD(, job) jobs = TAILQ_HEAD_INITIALIZER(jobs);

static void	 job_stream_read_cb(evutil_socket_t, short, void *);
static void	 job_stdin_cb(evutil_socket_t, short, void *);
static void	 job_try_end(struct job *);

/* A new job on channel ch of link l; its kind's open fills it in. */
static struct job *
job_create(struct wlink *l, uint32_t ch, int kind)
{
	struct job	*j;
	int		 s;

	j = xcalloc(1, sizeof *j);
	j->link = l;
	j->ch = ch;
	j->kind = kind;
	j->pid = -1;
	j->fail_fd = -1;
	j->kill_grace = DEFAULT_KILL_GRACE;
	j->in_fd = -1;
	j->started = util_now();
	for (s = 0; s < WIRE_NSTREAMS; s++) {
		j->out[s].fd = -1;
		j->out[s].buf = evbuffer_new();
		j->out[s].eof = 1;	/* until a descriptor is attached */
	}
	j->in_buf = evbuffer_new();
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	return (j);
}

/* The job on channel ch of link l, or NULL. */
static struct job *
job_find(struct wlink *l, uint32_t ch)
{
	struct job	*j;

	TAILQ_FOREACH(j, &jobs, entry)
		if (j->ch == ch && j->link == l)
			return (j);
	return (NULL);
}

/* Walk the jobs: NULL gives the first. */
struct job *
job_next(struct job *j)
{
	return (j == NULL ? TAILQ_FIRST(&jobs) : TAILQ_NEXT(j, entry));
}

/* Find a job by its handle or session id. */
struct job *
job_find_handle(const char *handle)
{
	struct job	*j;

	TAILQ_FOREACH(j, &jobs, entry)
		if (strcmp(j->handle, handle) == 0)
			return (j);
	return (NULL);
}

/*
 * How many jobs of kind, but except, started a process: with live, only
 * those whose process still runs. For the worker's caps.
 */
int
job_count(int kind, const struct job *except, int live)
{
	struct job	*j;
	int		 n = 0;

	TAILQ_FOREACH(j, &jobs, entry)
		if (j != except && j->kind == kind && j->started_pid > 0 &&
		    (!live || j->pid > 0))
			n++;
	return (n);
}

/* Stop reading stream s and close its descriptor (not a shared stdin). */
void
job_close_stream(struct job *j, int s)
{
	struct job_stream	*st = &j->out[s];

	if (st->ev != NULL) {
		event_free(st->ev);
		st->ev = NULL;
	}
	if (st->fd != -1 && st->fd != j->in_fd)
		close(st->fd);
	st->fd = -1;
	st->eof = 1;
}

/* Stop writing to the job's stdin; close it unless stdout shares it. */
static void
job_close_stdin(struct job *j)
{
	if (j->in_ev != NULL) {
		event_free(j->in_ev);
		j->in_ev = NULL;
	}
	if (j->in_fd != -1 && j->in_fd != j->out[WIRE_OUT].fd)
		close(j->in_fd);
	j->in_fd = -1;
}

/* Free a job now: everything it holds goes. */
void
job_free(struct job *j)
{
	int	s;

	TAILQ_REMOVE(&jobs, j, entry);
	if (j->ops != NULL && j->ops->free != NULL)
		j->ops->free(j);
	job_tree_free(j);
	for (s = 0; s < WIRE_NSTREAMS; s++) {
		job_close_stream(j, s);
		evbuffer_free(j->out[s].buf);
	}
	job_close_stdin(j);
	evbuffer_free(j->in_buf);
	if (j->timeout_ev != NULL)
		event_free(j->timeout_ev);
	if (j->kill_ev != NULL)
		event_free(j->kill_ev);
	if (j->flush_ev != NULL)
		event_free(j->flush_ev);
	json_decref(j->end);
	json_decref(j->owner);
	free(j);
}

/* Bytes of stream s produced and not yet acknowledged. */
static size_t
job_unacked(struct job *j, int s)
{
	return (evbuffer_get_length(j->out[s].buf));
}

/* Send stream s from sent up to what is produced, as the link allows. */
static void
job_stream_flush(struct job *j, int s)
{
	struct job_stream	*st = &j->out[s];
	uint64_t		 end = st->base + evbuffer_get_length(st->buf);
	size_t			 n;

	while (st->sent < end && wlink_writable(j->link)) {
		n = (size_t)(end - st->sent);
		if (n > WIRE_CHUNK)
			n = WIRE_CHUNK;
		if (wlink_send_buf(j->link, s, j->ch, st->sent, st->buf,
		    (size_t)(st->sent - st->base), n) != 0)
			return;
		st->sent += n;
	}
}

/* Send what can be sent on every stream, then the end if it is due. */
void
job_flush(struct job *j)
{
	int	s;

	if ((j->flags & JOB_CANCELLED) || !wlink_connected(j->link))
		return;
	for (s = WIRE_OUT; s <= WIRE_ERR; s++)
		job_stream_flush(j, s);
	job_try_end(j);
}

/* The window of j's output streams: --window, or more for a get. */
static size_t
job_window(struct job *j)
{
	size_t	w = worker_opts.window;

	if (j->kind == CHAN_GET && w < WIRE_FILE_WINDOW)
		w = WIRE_FILE_WINDOW;
	/* The controller cuts off a worker that sends past its grant. */
	if (j->granted != 0 && j->granted < w)
		w = j->granted;
	return (w);
}

/*
 * Does j's output wait for its link's acks? A shared job's (a
 * session's) does not while its link is down and another is up: its
 * ring keeps what that controller missed, and the others are served.
 */
static int
job_holds(struct job *j)
{
	if (!(j->flags & JOB_SHARED) || wlink_connected(j->link))
		return (1);
	return (j->link != NULL && !wlink_any_connected());
}

/* Forget stream s's unacknowledged output if j does not hold it. */
static void
job_stream_drop(struct job *j, int s)
{
	struct job_stream	*st = &j->out[s];
	size_t			 n = evbuffer_get_length(st->buf);

	if (n == 0 || job_holds(j))
		return;
	evbuffer_drain(st->buf, n);
	st->base += n;
	if (st->sent < st->base)
		st->sent = st->base;
}

/* (Re)arm reading of stream s if there is room in its window. */
static void
job_stream_arm(struct job *j, int s)
{
	struct job_stream	*st = &j->out[s];

	if (st->ev == NULL || st->eof)
		return;
	if (job_unacked(j, s) < job_window(j)) {
		if (st->paused) {
			st->paused = 0;
			event_add(st->ev, NULL);
		}
	} else if (!st->paused) {
		st->paused = 1;
		event_del(st->ev);
	}
}

/* Room left in the window of stream s. */
size_t
job_stream_room(struct job *j, int s)
{
	size_t	used = job_unacked(j, s), window = job_window(j);

	return (used < window ? window - used : 0);
}

static void
job_flush_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	job_flush(arg);
}

/* After a read of n bytes of stream s: send now, or soon with more. */
static void
job_flush_soon(struct job *j, int s, size_t n)
{
	struct job_stream	*st = &j->out[s];
	struct timeval		 tv;

	if (n < JOB_BUSY_READ || st->base + evbuffer_get_length(st->buf) -
	    st->sent >= JOB_COALESCE) {
		job_flush(j);
		return;
	}
	if (j->flush_ev == NULL)
		j->flush_ev = evtimer_new(ev_base, job_flush_cb, j);
	if (!evtimer_pending(j->flush_ev, NULL)) {
		util_timeval(&tv, JOB_COALESCE_WAIT);
		evtimer_add(j->flush_ev, &tv);
	}
}

/*
 * Queue output of stream s that a filter kept (job_ops.filter): it is
 * sent, and gets its offset, like bytes read. The caller flushes.
 */
void
job_stream_push(struct job *j, int s, const uint8_t *p, size_t n)
{
	if (n == 0 || (j->flags & JOB_CANCELLED))
		return;
	evbuffer_add(j->out[s].buf, p, n);
	if (j->ops != NULL && j->ops->output != NULL)
		j->ops->output(j, s, p, n);
	job_stream_drop(j, s);
	job_stream_arm(j, s);
}

/* Read through the kind's filter: it pushes what it keeps. */
static ssize_t
job_stream_read_filtered(struct job *j, int s, int fd, size_t room)
{
	static uint8_t	buf[WIRE_CHUNK];
	ssize_t		n;

	if ((n = read(fd, buf, room)) > 0 && !(j->flags & JOB_CANCELLED)) {
		j->ops->filter(j, s, buf, (size_t)n);
		job_flush_soon(j, s, (size_t)n);
	}
	return (n);
}

/*
 * Read into the free space of the stream's buffer: the tail of its last
 * chain, then a new one, so that neither a copy nor a chain per read is
 * needed (a terminal gives 4 KiB a read). The kind's output hook sees
 * the bytes. Returns what readv(2) returned.
 */
static ssize_t
job_stream_read_direct(struct job *j, int s, int fd, size_t room)
{
	struct job_stream	*st = &j->out[s];
	struct evbuffer_iovec	 vec[2];
	struct iovec		 iov[2];
	size_t			 left = room;
	ssize_t			 n;
	int			 i, nv, e;

	nv = evbuffer_reserve_space(st->buf, (ev_ssize_t)room, vec, 2);
	if (nv < 1)
		fatalx("%s: evbuffer_reserve_space", __func__);
	for (i = 0; i < nv; i++) {
		iov[i].iov_base = vec[i].iov_base;
		iov[i].iov_len = vec[i].iov_len < left ? vec[i].iov_len : left;
		left -= iov[i].iov_len;
	}
	n = readv(fd, iov, nv);
	e = errno;
	left = n > 0 ? (size_t)n : 0;
	for (i = 0; i < nv; i++) {
		vec[i].iov_len = left < iov[i].iov_len ? left : iov[i].iov_len;
		left -= vec[i].iov_len;
	}
	evbuffer_commit_space(st->buf, vec, nv);
	if (n <= 0) {
		errno = e;
		return (n);
	}
	if (j->flags & JOB_CANCELLED) {
		/* Nobody wants it, but the program may still write. */
		evbuffer_drain(st->buf, (size_t)n);
		return (n);
	}
	for (i = 0; i < nv && j->ops != NULL && j->ops->output != NULL; i++)
		if (vec[i].iov_len > 0)
			j->ops->output(j, s, vec[i].iov_base, vec[i].iov_len);
	job_stream_drop(j, s);
	job_stream_arm(j, s);
	job_flush_soon(j, s, (size_t)n);
	return (n);
}

/* Output to read on a stream: as much as its window has room for. */
static void
job_stream_read_cb(evutil_socket_t fd, __unused short what, void *arg)
{
	struct job_stream	*st = arg;
	struct job		*j = st->job;
	int			 s = (int)(st - j->out);
	size_t			 room = job_stream_room(j, s);
	ssize_t			 n;

	if (room == 0) {
		job_stream_arm(j, s);
		return;
	}
	if (room > WIRE_CHUNK)
		room = WIRE_CHUNK;
	if (j->flags & JOB_FILTER)
		n = job_stream_read_filtered(j, s, fd, room);
	else
		n = job_stream_read_direct(j, s, fd, room);
	if (n > 0 || (n == -1 && (errno == EAGAIN || errno == EINTR)))
		return;
	/* EOF, or EIO on a PTY whose program has gone. */
	job_close_stream(j, s);
	if (j->ops != NULL && j->ops->eof != NULL)
		j->ops->eof(j, s);
	job_try_end(j);
	job_maybe_free(j);
}

/* Read stream s from fd (non-blocking, owned by the job). */
void
job_stream_attach(struct job *j, int s, int fd)
{
	struct job_stream	*st = &j->out[s];

	evutil_make_socket_nonblocking(fd);
	st->job = j;
	st->fd = fd;
	st->eof = 0;
	st->ev = event_new(ev_base, fd, EV_READ | EV_PERSIST,
	    job_stream_read_cb, st);
	event_add(st->ev, NULL);
}

/* The controller consumed stream s up to off. */
static void
job_stream_acked(struct job *j, int s, uint64_t off)
{
	struct job_stream	*st = &j->out[s];
	uint64_t		 end = st->base + evbuffer_get_length(st->buf);

	if (off <= st->base || off > end)
		return;
	evbuffer_drain(st->buf, (size_t)(off - st->base));
	st->base = off;
	if (st->sent < off)
		st->sent = off;
	job_stream_arm(j, s);
	if (j->ops != NULL && j->ops->acked != NULL)
		j->ops->acked(j, s);
	job_maybe_free(j);
}

/* Set the result (end is stolen); it is sent once all output is sent. */
void
job_set_end(struct job *j, json_t *end)
{
	json_decref(j->end);
	j->end = wire_chan_msg(WIRE_T_END, j->ch);
	json_object_update_new(j->end, end);
	job_try_end(j);
}

/* Send the end if it is set, all output was sent and the link is up. */
static void
job_try_end(struct job *j)
{
	int	s;

	if (j->end == NULL || (j->flags & (JOB_END_SENT | JOB_CANCELLED)) ||
	    !wlink_connected(j->link))
		return;
	for (s = WIRE_OUT; s <= WIRE_ERR; s++)
		if (!j->out[s].eof || j->out[s].sent !=
		    j->out[s].base + evbuffer_get_length(j->out[s].buf))
			return;
	wlink_send(j->link, j->end);
	j->flags |= JOB_END_SENT;
}

/* Free a cancelled job once nothing of it runs. */
void
job_maybe_free(struct job *j)
{
	if ((j->flags & JOB_CANCELLED) && j->pid == -1 &&
	    j->out[WIRE_OUT].eof && j->out[WIRE_ERR].eof)
		job_free(j);
}

/* ---- input ---- */

/* (Re)send the input acknowledgement. */
static void
job_send_input_ack(struct job *j)
{
	json_t	*m;

	m = wire_chan_msg(WIRE_T_ACK, j->ch);
	json_object_set_new(m, "in", json_integer((json_int_t)j->in_acked));
	wlink_send(j->link, m);
	json_decref(m);
}

/* Tell the controller how much input was consumed, if more was. */
void
job_ack_input(struct job *j)
{
	if (j->in_acked == j->in_done)
		return;		/* a command's empty stdin closing, say */
	j->in_acked = j->in_done;
	job_send_input_ack(j);
}

/* Write the input received to stdin, as much as it takes; ack it. */
static void
job_stdin_write(struct job *j)
{
	ssize_t	 n;
	size_t	 len;

	while ((len = evbuffer_get_length(j->in_buf)) > 0 && j->in_fd != -1) {
		if (len > WIRE_CHUNK)
			len = WIRE_CHUNK;
		n = write(j->in_fd, evbuffer_pullup(j->in_buf, (ssize_t)len),
		    len);
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			event_add(j->in_ev, NULL);
			break;
		}
		if (n <= 0) {
			/* The program closed its stdin: drop the rest. */
			j->in_done += evbuffer_get_length(j->in_buf);
			evbuffer_drain(j->in_buf, evbuffer_get_length(
			    j->in_buf));
			job_close_stdin(j);
			break;
		}
		evbuffer_drain(j->in_buf, (size_t)n);
		j->in_done += (uint64_t)n;
	}
	if (evbuffer_get_length(j->in_buf) == 0 && j->in_eof_set &&
	    j->in_done == j->in_eof_at && j->in_fd != -1 &&
	    j->kind == CHAN_EXEC)
		job_close_stdin(j);
	job_ack_input(j);
}

/* stdin can take more. */
static void
job_stdin_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	job_stdin_write(arg);
}

/* Input bytes [off, off+len) for channel ch of link l. */
void
job_input(struct wlink *l, uint32_t ch, uint64_t off, const uint8_t *data,
    size_t len)
{
	struct job	*j = job_find(l, ch);
	uint64_t	 skip;

	if (j == NULL || (j->flags & JOB_CANCELLED))
		return;
	if (off > j->in_off) {
		log_warnx("channel %u: input gap at %llu", ch,
		    (unsigned long long)off);
		return;
	}
	skip = j->in_off - off;
	if (skip >= len)
		return;
	data += skip;
	len -= skip;
	j->in_off += len;
	if (j->ops != NULL && j->ops->input != NULL) {
		j->ops->input(j, data, len);
		return;
	}
	if (j->in_fd == -1) {
		j->in_done += len;	/* nobody reads it: consume */
		job_ack_input(j);
		return;
	}
	evbuffer_add(j->in_buf, data, len);
	job_stdin_write(j);
}

/* Use fd as the job's stdin (non-blocking, owned by the job). */
void
job_stdin_attach(struct job *j, int fd)
{
	evutil_make_socket_nonblocking(fd);
	j->in_fd = fd;
	j->in_ev = event_new(ev_base, fd, EV_WRITE, job_stdin_cb, j);
}

/* ---- processes ---- */

/* Signal the job's process group. */
static void
job_kill(struct job *j, int sig)
{
	if (j->pid > 0 && killpg(j->pid, sig) == -1 && errno == ESRCH)
		kill(j->pid, sig);
	/* KILL is the end: of everything the job started. */
	if (sig == SIGKILL)
		job_tree_kill(j);
}

/* The grace period after TERM has passed. */
static void
job_kill_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct job	*j = arg;

	log_info("channel %u: pid %ld still there after the grace period, "
	    "SIGKILL", j->ch, (long)j->pid);
	job_kill(j, SIGKILL);
}

/* TERM now, KILL after the grace period. */
void
job_terminate(struct job *j)
{
	struct timeval	tv;

	if (j->pid <= 0)
		return;
	job_kill(j, SIGTERM);
	if (j->kill_ev == NULL)
		j->kill_ev = evtimer_new(ev_base, job_kill_cb, j);
	util_timeval(&tv, j->kill_grace);
	evtimer_add(j->kill_ev, &tv);
}

/* Fail an open with an error end. */
void
job_fail(struct job *j, const char *code, int err, const char *fmt, ...)
{
	va_list	 ap;
	json_t	*e;

	va_start(ap, fmt);
	e = wire_verror(code, err, fmt, ap);
	va_end(ap);
	log_info("channel %u: %s", j->ch, json_string_value(json_object_get(e,
	    "message")));
	job_set_end(j, json_pack("{s:o}", "error", e));
}

/*
 * How each kind starts, by the open's "kind": the function sets the new
 * job's ops and starts it, or fails it.
 */
static void (*const job_kinds[])(struct job *, json_t *) = {
	[CHAN_EXEC] = worker_exec_open,
	[CHAN_SESSION] = worker_session_open,
	[CHAN_PUT] = worker_file_open,
	[CHAN_GET] = worker_file_open,
};
#define JOB_NKINDS	(sizeof job_kinds / sizeof job_kinds[0])

/* An `open` from the controller of link l. */
void
job_open(struct wlink *l, uint32_t ch, json_t *open)
{
	struct job	*j;
	const char	*handle;
	json_int_t	 kind;
	json_t		*v;

	kind = json_integer_value(json_object_get(open, "kind"));
	if (job_find(l, ch) != NULL) {
		/* Sent again after a reconnect: we have it already. */
		log_debug("channel %u: open again, ignored", ch);
		return;
	}
	if (kind < 0 || (size_t)kind >= JOB_NKINDS || job_kinds[kind] == NULL) {
		log_warnx("channel %u: unknown kind %lld", ch, (long long)kind);
		return;
	}
	j = job_create(l, ch, (int)kind);
	if (json_is_integer(v = json_object_get(open, "window")) &&
	    json_integer_value(v) >= WIRE_MIN_WINDOW &&
	    json_integer_value(v) <= WIRE_MAX_WINDOW)
		j->granted = (size_t)json_integer_value(v);
	handle = json_string_value(json_object_get(open, "handle"));
	if (handle != NULL)
		snprintf(j->handle, sizeof j->handle, "%s", handle);
	/* Kept for a controller that restarts: who may see it. */
	if (json_is_object(json_object_get(open, "owner")))
		j->owner = json_incref(json_object_get(open, "owner"));
	job_kinds[kind](j, open);
}

/* Stop a job nobody waits for: kill it, send nothing more, free it. */
static void
job_cancel(struct job *j)
{
	j->flags |= JOB_CANCELLED;
	if (j->ops != NULL && j->ops->cancel != NULL) {
		j->ops->cancel(j);
		return;
	}
	/*
	 * Keep reading (and dropping) its output: a TERM handler that
	 * prints must not die of SIGPIPE during its grace period.
	 */
	job_close_stdin(j);
	evbuffer_drain(j->out[WIRE_OUT].buf, evbuffer_get_length(
	    j->out[WIRE_OUT].buf));
	evbuffer_drain(j->out[WIRE_ERR].buf, evbuffer_get_length(
	    j->out[WIRE_ERR].buf));
	job_stream_arm(j, WIRE_OUT);
	job_stream_arm(j, WIRE_ERR);
	if (j->pid > 0)
		job_terminate(j);
	job_maybe_free(j);
}

/* ack: the controller consumed output stream s up to off. */
static void
job_msg_ack(struct job *j, json_t *msg)
{
	json_int_t	s = json_integer_value(json_object_get(msg, "s"));

	if (s == WIRE_OUT || s == WIRE_ERR)
		job_stream_acked(j, (int)s, (uint64_t)json_integer_value(
		    json_object_get(msg, "off")));
}

/* eof: the input ends at off. */
static void
job_msg_eof(struct job *j, json_t *msg)
{
	j->in_eof_set = 1;
	j->in_eof_at = (uint64_t)json_integer_value(json_object_get(msg,
	    "off"));
	if (j->ops != NULL && j->ops->input_eof != NULL)
		j->ops->input_eof(j);
	else
		job_stdin_write(j);
}

/* signal: to the job's process group. */
static void
job_msg_signal(struct job *j, json_t *msg)
{
	int	sig;

	sig = util_signal_number(json_string_value(json_object_get(msg,
	    "signal")));
	if (sig > 0)
		job_kill(j, sig);
}

/* detach: the job outlives its requester. */
static void
job_msg_detach(struct job *j, __unused json_t *msg)
{
	j->flags |= JOB_DETACHED;
}

/* release: the controller is done with the job; stop it if it runs. */
static void
job_msg_release(struct job *j, __unused json_t *msg)
{
	if (j->ops != NULL && j->ops->release != NULL)
		j->ops->release(j);
	else if (j->pid > 0 || !j->out[WIRE_OUT].eof ||
	    !j->out[WIRE_ERR].eof)
		job_cancel(j);
	else
		job_free(j);
}

/* cancel: nobody waits for the job any more. */
static void
job_msg_cancel(struct job *j, __unused json_t *msg)
{
	job_cancel(j);
}

/* The channel messages every job takes; the rest go to its message hook. */
static void (*const job_msgs[WIRE_NTYPES])(struct job *, json_t *) = {
	[WIRE_T_ACK] = job_msg_ack,
	[WIRE_T_EOF] = job_msg_eof,
	[WIRE_T_SIGNAL] = job_msg_signal,
	[WIRE_T_DETACH] = job_msg_detach,
	[WIRE_T_RELEASE] = job_msg_release,
	[WIRE_T_CANCEL] = job_msg_cancel,
};

/* A message of type for job j, other than open. */
void
job_message_to(struct job *j, enum wire_type type, json_t *msg)
{
	if ((unsigned)type < WIRE_NTYPES && job_msgs[type] != NULL)
		job_msgs[type](j, msg);
	else if (j->ops != NULL && j->ops->message != NULL)
		j->ops->message(j, type, msg);
	else
		log_debug("channel %u: unknown message '%s'", j->ch,
		    wire_type_name(type));
}

/* A message of type for channel ch of link l, other than open. */
void
job_message(struct wlink *l, uint32_t ch, enum wire_type type, json_t *msg)
{
	struct job	*j = job_find(l, ch);

	if (j == NULL)
		log_debug("channel %u: '%s' for no job", ch,
		    wire_type_name(type));
	else
		job_message_to(j, type, msg);
}

/* ---- the links ---- */

/* Every channel link l holds, for its hello. */
json_t *
job_list_json(struct wlink *l)
{
	struct job	*j;
	json_t		*list = json_array(), *a;

	TAILQ_FOREACH(j, &jobs, entry) {
		if ((j->flags & JOB_CANCELLED) || j->link != l)
			continue;
		a = json_pack("{s:I, s:i, s:I, s:b, s:[I, I, I], s:b}",
		    "ch", (json_int_t)j->ch, "kind", j->kind,
		    "in", (json_int_t)j->in_off,
		    "eof", j->in_eof_set,
		    "out", (json_int_t)0, (json_int_t)j->out[WIRE_OUT].base,
		    (json_int_t)j->out[WIRE_ERR].base,
		    "detached", (j->flags & JOB_DETACHED) != 0);
		if (*j->handle != '\0')
			json_object_set_new(a, "handle",
			    json_string(j->handle));
		if (j->in_fd != -1 && !j->in_eof_set)
			json_object_set_new(a, "stdin_open", json_true());
		if (j->owner != NULL)
			json_object_set(a, "owner", j->owner);
		if (j->ops != NULL && j->ops->describe != NULL)
			j->ops->describe(j, a);
		json_array_append_new(list, a);
	}
	return (list);
}

/* Link l's controller welcomed us: send its jobs' output again. */
void
job_link_up(struct wlink *l)
{
	struct job	*j, *j1;
	int		 s;

	TAILQ_FOREACH_SAFE(j, &jobs, entry, j1) {
		if (j->link != l)
			continue;
		for (s = WIRE_OUT; s <= WIRE_ERR; s++)
			j->out[s].sent = j->out[s].base;
		j->flags &= ~JOB_END_SENT;
		if (j->ops != NULL && j->ops->link_up != NULL)
			j->ops->link_up(j);
		/* What we acked while away (not what we hold back). */
		job_send_input_ack(j);
		job_flush(j);
	}
}

/* A link came or went: shared jobs hold their output, or stop holding. */
void
job_links_changed(void)
{
	struct job	*j;

	TAILQ_FOREACH(j, &jobs, entry) {
		if (!(j->flags & JOB_SHARED))
			continue;
		job_stream_drop(j, WIRE_OUT);
		job_stream_arm(j, WIRE_OUT);
	}
}

/* Link l can take more: send what waits. */
void
job_link_writable(struct wlink *l)
{
	struct job	*j, *j1;

	TAILQ_FOREACH_SAFE(j, &jobs, entry, j1) {
		if (j->link != l)
			continue;
		/* One gathering output for a bigger frame waits for it. */
		if (j->flush_ev == NULL || !evtimer_pending(j->flush_ev, NULL))
			job_flush(j);
		if (!wlink_writable(l))
			break;
	}
}

/*
 * Link l's controller did not come back in time: end what nobody can
 * reach. Sessions are every link's and stay; detached jobs wait for it.
 */
void
job_link_orphans(struct wlink *l)
{
	struct job	*j, *j1;

	TAILQ_FOREACH_SAFE(j, &jobs, entry, j1) {
		if (j->link != l || (j->flags & (JOB_SHARED | JOB_DETACHED)))
			continue;
		log_warnx("channel %u: no controller for %d seconds, ending "
		    "orphaned pid %ld", j->ch, wlink_window(l), (long)j->pid);
		job_cancel(j);
	}
}

/* Link l is going for good: its sessions stay, the rest ends. */
void
job_link_gone(struct wlink *l)
{
	struct job	*j, *j1;

	TAILQ_FOREACH_SAFE(j, &jobs, entry, j1) {
		if (j->link != l)
			continue;
		if (j->flags & JOB_SHARED) {
			j->link = NULL;
			job_stream_drop(j, WIRE_OUT);
			job_stream_arm(j, WIRE_OUT);
		} else if (!(j->flags & JOB_CANCELLED))
			job_cancel(j);
	}
}

/* The worker is stopping: terminate every process. */
void
job_shutdown(void)
{
	struct job	*j;

	TAILQ_FOREACH(j, &jobs, entry)
		job_kill(j, SIGTERM);
}

/* The worker has stopped: kill and free every job. */
void
job_free_all(void)
{
	struct job	*j;

	while ((j = TAILQ_FIRST(&jobs)) != NULL) {
		job_kill(j, SIGKILL);
		job_free(j);
	}
}

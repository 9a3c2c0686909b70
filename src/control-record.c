/*
 * control-record.c: session recordings (--record DIR). Each session's
 * terminal output goes to DIR/SESSION.cast in asciicast v2: a header
 * line with the terminal's size, then one `[TIME, "o", TEXT]` line per
 * chunk of output and `[TIME, "r", "COLSxROWS"]` per resize. The file
 * is made with O_EXCL and O_NOFOLLOW and kept when the session ends.
 *
 * A recording never holds its session back: it takes its copy of the
 * output as it arrives (before the session's consumers let it go) into
 * a queue of at most RECORD_QUEUE_MAX bytes, written from a callback of
 * its own, RECORD_WRITE_CHUNK at a time. A queue that overflows (a slow
 * disk) or a failed write (a full disk) ends the recording with a log
 * line; the session goes on.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "control-session.h"

#define RECORD_QUEUE_MAX	(4 * 1024 * 1024)
#define RECORD_WRITE_CHUNK	(256 * 1024)
#define RECORD_EVENT_MAX	(64 * 1024)	/* output bytes per "o" line */
#define RECORD_RETRY_MS		50		/* after EAGAIN */
#define RECORD_TRIES		100		/* names per session */

struct record {
	struct session	*s;
	int		 fd;
	char		 path[PATH_MAX];
	double		 start;
	uint64_t	 pos;		/* next output offset to take */
	struct evbuffer	*queue;		/* lines not yet written */
	struct event	*flush;
};

static void	 record_flush_cb(evutil_socket_t, short, void *);

/* Stop recording s: what is queued is dropped, the file kept. */
void
record_stop(struct session *s)
{
	struct record	*rec = s->rec;

	if (rec == NULL)
		return;
	s->rec = NULL;
	if (rec->fd != -1)
		close(rec->fd);
	event_free(rec->flush);
	evbuffer_free(rec->queue);
	free(rec);
}

/* Give up on s's recording, saying why; the session goes on. */
static void
record_fail(struct record *rec, const char *why)
{
	log_warnx("session %s: recording %s stops: %s", rec->s->id,
	    rec->path, why);
	record_stop(rec->s);
}

/* Queue one line (stolen); too much queued ends the recording. */
static void
record_line(struct record *rec, json_t *line)
{
	char	*text;

	text = json_dumps(line, JSON_COMPACT | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(10));
	json_decref(line);
	if (text == NULL)
		return;
	if (evbuffer_get_length(rec->queue) + strlen(text) >
	    RECORD_QUEUE_MAX) {
		free(text);
		record_fail(rec, "the disk does not keep up");
		return;
	}
	evbuffer_add(rec->queue, text, strlen(text));
	evbuffer_add(rec->queue, "\n", 1);
	free(text);
	if (!event_pending(rec->flush, EV_TIMEOUT, NULL))
		event_active(rec->flush, EV_TIMEOUT, 0);
}

/* Write a bounded part of the queue; come back for the rest. */
static void
record_flush_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct record	*rec = arg;
	struct timeval	 tv = { 0, RECORD_RETRY_MS * 1000 };
	size_t		 len = evbuffer_get_length(rec->queue);
	ssize_t		 n;
	char		 why[128];

	if (len == 0)
		return;
	if (len > RECORD_WRITE_CHUNK)
		len = RECORD_WRITE_CHUNK;
	n = write(rec->fd, evbuffer_pullup(rec->queue, (ssize_t)len), len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		evtimer_add(rec->flush, &tv);
		return;
	}
	if (n == -1) {
		snprintf(why, sizeof why, "write: %s", strerror(errno));
		record_fail(rec, why);
		return;
	}
	evbuffer_drain(rec->queue, (size_t)n);
	if (evbuffer_get_length(rec->queue) > 0)
		event_active(rec->flush, EV_TIMEOUT, 0);
}

/* Open DIR/ID.cast (or, if a recording of ID is there, ID.N.cast). */
static int
record_create(struct record *rec)
{
	int	i, fd;

	for (i = 0; i < RECORD_TRIES; i++) {
		if (i == 0)
			snprintf(rec->path, sizeof rec->path, "%s/%s.cast",
			    serve_opts.record, rec->s->id);
		else
			snprintf(rec->path, sizeof rec->path, "%s/%s.%d.cast",
			    serve_opts.record, rec->s->id, i);
		fd = open(rec->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			return (fd);
	}
	return (-1);
}

/*
 * Start recording s, from the output offset the controller holds now
 * (a session adopted after a restart goes on in a file of its own).
 */
void
record_start(struct session *s)
{
	struct record	*rec;
	json_t		*hdr;

	if (serve_opts.record == NULL || s->rec != NULL)
		return;
	rec = xcalloc(1, sizeof *rec);
	rec->s = s;
	if ((rec->fd = record_create(rec)) == -1) {
		log_warn("session %s: cannot record to %s", s->id, rec->path);
		free(rec);
		return;
	}
	rec->queue = evbuffer_new();
	rec->flush = evtimer_new(ev_base, record_flush_cb, rec);
	rec->start = util_now();
	rec->pos = session_base(s);	/* all it holds */
	s->rec = rec;
	hdr = json_pack("{s:i, s:i, s:i, s:I, s:s}", "version", 2, "width",
	    s->cols, "height", s->rows, "timestamp", (json_int_t)time(NULL),
	    "title", s->id);
	if (s->cmd != NULL)
		json_object_set_new(hdr, "command", json_string(s->cmd));
	record_line(rec, hdr);
	log_debug("session %s: recording to %s", s->id, rec->path);
}

/* An output line of bytes [pos, pos+n) of s, lossy UTF-8; n taken. */
static size_t
record_output(struct record *rec, size_t n, int final)
{
	struct evbuffer	*text;
	uint8_t		*buf;
	size_t		 took;
	json_t		*line;

	buf = xmalloc(n);
	session_copy_held(rec->s, rec->pos, buf, n);
	text = evbuffer_new();
	took = util_utf8_lossy(buf, n, text, final);
	free(buf);
	if (evbuffer_get_length(text) > 0) {
		line = json_pack("[f, s, s%]", util_now() - rec->start, "o",
		    (char *)evbuffer_pullup(text, -1),
		    evbuffer_get_length(text));
		record_line(rec, line);
	}
	evbuffer_free(text);
	return (took);
}

/*
 * Take the output of s that arrived since the last call: called as it
 * arrives, before the consumers let it go.
 */
void
record_feed(struct session *s)
{
	struct record	*rec = s->rec;
	uint64_t	 recv = session_recv(s);
	size_t		 n, took;
	int		 final = (s->c->flags & CHAN_ENDED) != 0;

	if (rec == NULL)
		return;
	if (rec->pos < session_base(s))
		rec->pos = session_base(s);	/* never: it is taken at once */
	while (rec->pos < recv) {
		n = recv - rec->pos > RECORD_EVENT_MAX ? RECORD_EVENT_MAX :
		    (size_t)(recv - rec->pos);
		took = record_output(rec, n, final);
		if (s->rec == NULL)
			return;		/* it failed, and is gone */
		if (took == 0)
			break;		/* a sequence cut in two: wait */
		rec->pos += took;
	}
}

/* The terminal of s was resized. */
void
record_resize(struct session *s)
{
	char	size[32];

	if (s->rec == NULL)
		return;
	snprintf(size, sizeof size, "%dx%d", s->cols, s->rows);
	record_line(s->rec, json_pack("[f, s, s]", util_now() -
	    s->rec->start, "r", size));
}

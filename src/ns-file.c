/*
 * ns-file.c: the worker's end of a workspace init's file service (see
 * ns.c). A file operation on a workspace asks its init to open a path
 * beneath the workspace's root, as the workspace's root, and gets the
 * descriptor back over the init's socket. Requests are numbered and
 * queued, one on its way at a time; the answer comes through the event
 * loop, so the worker never waits on a workspace however busy it is. A
 * request not answered within NS_FILE_TIMEOUT fails, and its late answer
 * is dropped by its number, never taken for the next request's.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "ns.h"

#define NS_FILE_TIMEOUT	5	/* s the init has for a file request */
#define NS_FILE_BATCH	16	/* answers read per callback */
#define NS_FILE_QUEUE	256	/* requests queued for one init, at most */

/* A file request on its way (worker side, see ns_file_open). */
struct ns_file {
	struct ns_files	*fs;
	size_t		 len;		/* of q as sent */
	void		(*cb)(int, int, int, void *);	/* NULL: cancelled */
	void		*arg;
	TAILQ_ENTRY(ns_file) entry;
	struct ns_freq	 q;
};

/* The worker's end of an init's file service. */
struct ns_files {
	struct ns_init	*ni;
	int		 sock;
	struct event	*ev;		/* answers to read */
	struct event	*timer;		/* the one sent must be answered */
	uint32_t	 seq;
	int		 sent;		/* the first queued is on its way */
	int		 incb;		/* in a request's callback */
	int		 queued;	/* in queue */
	TAILQ_HEAD(, ns_file) queue;
};


/*
 * Take request f off the queue and give its callback the answer (fd is
 * the callback's); a cancelled one's descriptor is closed.
 */
static void
ns_files_done(struct ns_files *fs, struct ns_file *f, int fd, int err,
    int why)
{
	TAILQ_REMOVE(&fs->queue, f, entry);
	fs->queued--;
	if (f->cb != NULL) {
		fs->incb++;
		f->cb(fd, err, why, f->arg);
		fs->incb--;
	} else if (fd != -1)
		close(fd);
	free(f);
}

/* Send the first queued request if none is on its way. */
static void
ns_files_send(struct ns_files *fs)
{
	struct ns_file	*f;
	struct timeval	 tv = { NS_FILE_TIMEOUT, 0 };

	while (!fs->sent && (f = TAILQ_FIRST(&fs->queue)) != NULL) {
		if (f->cb == NULL) {		/* cancelled before it went */
			ns_files_done(fs, f, -1, 0, 0);
			continue;
		}
		f->q.seq = ++fs->seq;
		if (send(fs->sock, &f->q, f->len, MSG_NOSIGNAL |
		    MSG_DONTWAIT) != (ssize_t)f->len) {
			log_warn("%s: init pid %ld", __func__,
			    (long)fs->ni->pid);
			ns_files_done(fs, f, -1, EIO, NS_WHY_INIT);
			continue;
		}
		fs->sent = 1;
		evtimer_add(fs->timer, &tv);
	}
}

/*
 * Read one answer: 1 when there was one (taken, or dropped when late),
 * 0 when there is none now, -1 when the init has gone.
 */
static int
ns_files_read(struct ns_files *fs)
{
	struct ns_fans	 a;
	struct ns_file	*f;
	ssize_t		 n;
	int		 fd;

	n = ns_recv_fd(fs->sock, &a, sizeof a, MSG_DONTWAIT, &fd);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return (0);
	if (n <= 0)
		return (-1);
	f = TAILQ_FIRST(&fs->queue);
	if (n != (ssize_t)sizeof a || !fs->sent || f == NULL ||
	    a.seq != f->q.seq) {
		log_debug("%s: init pid %ld: late answer %u dropped", __func__,
		    (long)fs->ni->pid, a.seq);
		if (fd != -1)
			close(fd);
		return (1);
	}
	fs->sent = 0;
	evtimer_del(fs->timer);
	if (a.err == 0 && fd == -1)
		a.err = EIO;
	if (a.err != 0 && fd != -1) {
		close(fd);
		fd = -1;
	}
	ns_files_done(fs, f, fd, a.err, a.why);
	return (1);
}

/* Fail every request: the init has gone (or goes). */
static void
ns_files_fail_all(struct ns_files *fs)
{
	struct ns_file	*f;

	fs->sent = 0;
	evtimer_del(fs->timer);
	while ((f = TAILQ_FIRST(&fs->queue)) != NULL)
		ns_files_done(fs, f, -1, EIO, NS_WHY_INIT);
}

/* Answers from the init: a bounded batch, then the next request goes. */
static void
ns_files_read_cb(__unused evutil_socket_t sock, __unused short what,
    void *arg)
{
	struct ns_files	*fs = arg;
	int		 i, r = 1;

	for (i = 0; i < NS_FILE_BATCH && r == 1; i++)
		r = ns_files_read(fs);
	if (r == -1) {
		log_warnx("%s: init pid %ld: its socket closed", __func__,
		    (long)fs->ni->pid);
		event_del(fs->ev);
		close(fs->sock);
		fs->sock = -1;
		ns_files_fail_all(fs);
		return;
	}
	ns_files_send(fs);
}

/*
 * The init did not answer in time: that request fails (its answer, if
 * it comes, is dropped by its number) and the next one goes.
 */
static void
ns_files_timeout_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct ns_files	*fs = arg;
	struct ns_file	*f = TAILQ_FIRST(&fs->queue);

	if (!fs->sent || f == NULL)
		return;
	log_warnx("%s: init pid %ld did not answer request %u (%s) in %d s",
	    __func__, (long)fs->ni->pid, f->q.seq, f->q.path,
	    NS_FILE_TIMEOUT);
	fs->sent = 0;
	ns_files_done(fs, f, -1, ETIMEDOUT, NS_WHY_INIT);
	ns_files_send(fs);
}

/* The worker's end of ni's file service, on sock (which it owns). */
struct ns_files *
ns_files_create(struct ns_init *ni, int sock)
{
	struct ns_files	*fs;

	fs = xcalloc(1, sizeof *fs);
	fs->ni = ni;
	fs->sock = sock;
	TAILQ_INIT(&fs->queue);
	evutil_make_socket_nonblocking(sock);
	fs->ev = event_new(ev_base, sock, EV_READ | EV_PERSIST,
	    ns_files_read_cb, fs);
	fs->timer = evtimer_new(ev_base, ns_files_timeout_cb, fs);
	event_add(fs->ev, NULL);
	return (fs);
}

/* Free the file service; every request still queued fails. */
void
ns_files_free(struct ns_files *fs)
{
	if (fs == NULL)
		return;
	if (fs->incb)
		fatalx("%s: the init stopped from a file callback", __func__);
	event_free(fs->ev);
	if (fs->sock != -1)
		close(fs->sock);
	fs->sock = -1;
	ns_files_fail_all(fs);
	event_free(fs->timer);
	free(fs);
}

/*
 * Open path as the workspace sees it, with its credentials (flags and
 * mode as open(2)); how: NS_FILE_MKDIRS makes its folders first (0755),
 * NS_FILE_WRITABLE wants a folder it may write in. The answer comes
 * later to cb(fd, err, why, arg), once (fd is cb's, or -1 with err and
 * why, NS_WHY_*), unless ns_file_cancel comes first. NULL with *err if
 * the request cannot even be made (cb is not called then).
 */
struct ns_file *
ns_file_open(struct ns_init *ni, const char *path, int flags, int mode,
    int how, void (*cb)(int, int, int, void *), void *arg, int *err)
{
	struct ns_file	*f;
	size_t		 len = strlen(path);

	if (len >= NS_PATH_MAX) {
		*err = ENAMETOOLONG;
		return (NULL);
	}
	if (ni->files == NULL || ni->files->sock == -1) {
		*err = EIO;
		return (NULL);
	}
	if (ni->files->queued >= NS_FILE_QUEUE) {
		*err = EAGAIN;	/* so many are waiting that one more would */
		return (NULL);
	}
	f = xcalloc(1, sizeof *f);
	f->fs = ni->files;
	f->cb = cb;
	f->arg = arg;
	f->q.flags = flags;
	f->q.mode = mode;
	f->q.how = how;
	memcpy(f->q.path, path, len + 1);
	f->len = offsetof(struct ns_freq, path) + len + 1;
	TAILQ_INSERT_TAIL(&f->fs->queue, f, entry);
	f->fs->queued++;
	ns_files_send(f->fs);
	return (f);
}

/* Forget request f: its callback will not be called. */
void
ns_file_cancel(struct ns_file *f)
{
	if (f == NULL)
		return;
	f->cb = NULL;
	if (!f->fs->sent || f != TAILQ_FIRST(&f->fs->queue)) {
		TAILQ_REMOVE(&f->fs->queue, f, entry);
		f->fs->queued--;
		free(f);
	}
}

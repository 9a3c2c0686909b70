/*
 * worker-file.c: file transfers on the worker.
 *
 * A put writes its input to an unnamed temporary file (O_TMPFILE) in the
 * target's folder, or, where the filesystem has none, to a locked dot
 * file named FILE_TEMP_PREFIX.XXXXXX; it hashes the bytes on the way,
 * acknowledges input only once written, flushes the file and links or
 * renames it into place when every byte arrived. A reader never sees a
 * half-written file, and a failed or cut transfer leaves the old file as
 * it was: the unnamed file vanishes with its descriptor, a dot file is
 * removed on failure, and one left by a killed worker (its lock gone) is
 * removed by the next put into that folder.
 *
 * A get is worker-file-get.c's; stat is an RPC. Paths are resolved by
 * worker-path.c: with --root, beneath the root at every step. In a
 * workspace its init opens them (ns.c), and the answer comes later from
 * the event loop: a put holds the input that arrives meanwhile (the
 * window bounds it), a get and a stat wait.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"
#include "worker-file.h"

#define FILE_TEMP_PREFIX	".sandd-put."
#define FILE_TEMP_STALE		10	/* s: an unlocked temp older is stale */
#define FILE_WRITE_BATCH	(256 * 1024)	/* put: write and ack unit */
#define FILE_SYNC_EVERY		(8 * 1024 * 1024)	/* start writeback */


static void	 file_put_input(struct job *, const uint8_t *, size_t);
static void	 file_put_input_eof(struct job *);

static const struct job_ops file_put_ops = {
	.input = file_put_input,
	.input_eof = file_put_input_eof,
	.release = file_forget,
	.cancel = file_forget,
	.free = file_free,
};

/* A new transfer for job j. */
static struct file_xfer *
file_xfer_create(struct job *j, const char *op, const char *path)
{
	struct file_xfer	*x;

	x = xcalloc(1, sizeof *x);
	x->op = op;
	x->path = xstrdup(path);
	x->dirfd = -1;
	x->fd = -1;
	x->hash = hash_create();
	j->data = x;
	return (x);
}

/* Close what the transfer holds; an unfinished put leaves no file. */
void
file_close(struct file_xfer *x)
{
	if (x->req != NULL) {
		ns_file_cancel(x->req);	/* its answer is dropped */
		x->req = NULL;
	}
	free(x->pend);
	x->pend = NULL;
	x->npend = 0;
	if (x->ev != NULL)
		event_del(x->ev);	/* freed with the job */
	if (x->fd != -1) {
		close(x->fd);	/* an unlinked O_TMPFILE goes with it */
		x->fd = -1;
	}
	if (x->temp != NULL) {
		if (unlinkat(x->dirfd, x->temp, 0) == -1 && errno != ENOENT)
			log_warn("%s: unlink %s/%s", __func__, x->dir, x->temp);
		free(x->temp);
		x->temp = NULL;
	}
	if (x->dirfd != -1) {
		close(x->dirfd);
		x->dirfd = -1;
	}
}

/* job_ops.free: the job goes; so does everything of its transfer. */
void
file_free(struct job *j)
{
	struct file_xfer	*x = j->data;

	if (x == NULL)
		return;
	file_close(x);
	if (x->ev != NULL)
		event_free(x->ev);
	hash_free(x->hash);
	free(x->wbuf);
	free(x->path);
	free(x->dir);
	free(x->base);
	free(x);
	j->data = NULL;
}

/* job_ops.release and cancel: the controller is done with it. */
void
file_forget(struct job *j)
{
	job_free(j);
}

/* End the transfer with an error of code; the message names it all. */
void
file_fail(struct job *j, const char *code, int err, const char *fmt, ...)
{
	struct file_xfer	*x = j->data;
	va_list			 ap;
	char			*detail;

	va_start(ap, fmt);
	xvasprintf(&detail, fmt, ap);
	va_end(ap);
	x->done = 1;
	file_close(x);
	j->out[WIRE_OUT].eof = 1;
	job_fail(j, code, err, "%s %s%s%s on %s: %s", x->op, x->path,
	    j->ws != NULL ? " in workspace " : "", j->ws != NULL ?
	    workspace_name(j->ws) : "", worker_opts.id, detail);
	free(detail);
}

/* A denied error: the path leads outside the worker's root. */
void
file_fail_outside(struct job *j)
{
	file_fail(j, "denied", 0, "outside the worker's root %s (by name, "
	    "\"..\" or a symlink)", path_root());
}

/*
 * An io_error for errno err. A full file system says its errno's name
 * first: in a workspace it is a bound the put ran into.
 */
void
file_fail_errno(struct job *j, int err, const char *what)
{
	if (err == ENOSPC || err == EDQUOT || err == EFBIG)
		file_fail(j, "io_error", err, "%s%s%s (%s)", what != NULL ?
		    what : "", what != NULL ? ": " : "", util_errno_name(err),
		    strerror(err));
	else if (what != NULL)
		file_fail(j, "io_error", err, "%s: %s", what, strerror(err));
	else
		file_fail(j, "io_error", err, "%s", strerror(err));
}

/*
 * A request to a workspace's init failed (see ns_file_open): err, and
 * why, for the message; what names the path asked for.
 */
void
file_fail_ns(struct job *j, int err, int why, const char *what)
{
	switch (why) {
	case NS_WHY_MKDIR:
		file_fail(j, "io_error", err, "mkdir %s: %s", what,
		    strerror(err));
		break;
	case NS_WHY_PSEUDO:
		file_fail(j, "denied", err, "/proc and /sys of a workspace "
		    "are not served");
		break;
	case NS_WHY_INIT:
		file_fail(j, "io_error", err, "the workspace's init did not "
		    "answer: %s", strerror(err));
		break;
	default:
		file_fail_errno(j, err, NULL);
		break;
	}
}

/* ---- put ---- */

/*
 * Remove dot temp files in the folder that a dead put left: no process
 * holds their lock and they have not changed for a while.
 */
static void
file_clean_stale(int dirfd, const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	int		 fd, dup_fd;
	time_t		 now = time(NULL);

	if ((dup_fd = dup(dirfd)) == -1)
		return;
	if ((d = fdopendir(dup_fd)) == NULL) {
		close(dup_fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, FILE_TEMP_PREFIX,
		    strlen(FILE_TEMP_PREFIX)) != 0)
			continue;
		fd = openat(dirfd, de->d_name, O_RDONLY | O_NOFOLLOW |
		    O_NONBLOCK | O_CLOEXEC);
		if (fd == -1)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_mtime + FILE_TEMP_STALE < now &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0 &&
		    unlinkat(dirfd, de->d_name, 0) == 0)
			log_info("%s: removed stale %s/%s", __func__, dir,
			    de->d_name);
		close(fd);
	}
	closedir(d);
}

/* Create a locked dot temp file in the folder; its name goes in x. */
static int
file_temp_named(struct file_xfer *x)
{
	char	name[sizeof FILE_TEMP_PREFIX + 8], rnd[7];
	int	tries;

	file_clean_stale(x->dirfd, x->dir);
	for (tries = 0; tries < 100; tries++) {
		util_random_hex(rnd, sizeof rnd);
		snprintf(name, sizeof name, "%s%s", FILE_TEMP_PREFIX, rnd);
		x->fd = openat(x->dirfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (x->fd != -1) {
			/* Held while the put runs: the lock says it is live. */
			if (flock(x->fd, LOCK_EX) == -1)
				log_warn("%s: flock %s", __func__, name);
			x->temp = xstrdup(name);
			return (0);
		}
		if (errno != EEXIST)
			return (-1);
	}
	return (-1);
}

/*
 * The temporary file: unnamed where the filesystem can (set
 * SANDD_PUT_NO_TMPFILE to force the named way, for tests), else named.
 */
static int
file_temp_create(struct file_xfer *x)
{
#ifdef O_TMPFILE
	const char	*no = getenv("SANDD_PUT_NO_TMPFILE");

	if (no == NULL || *no == '\0') {
		x->fd = openat(x->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC,
		    0600);
		if (x->fd != -1) {
			x->unnamed = 1;
			return (0);
		}
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return (-1);
	}
#endif
	return (file_temp_named(x));
}

/* Give the unnamed temp file the name name in the folder. */
static int
file_link_unnamed(struct file_xfer *x, const char *name)
{
	char	proc[64];

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", x->fd);
	if (linkat(AT_FDCWD, proc, x->dirfd, name, AT_SYMLINK_FOLLOW) == 0)
		return (0);
#ifdef AT_EMPTY_PATH
	if (errno == ENOENT &&
	    linkat(x->fd, "", x->dirfd, name, AT_EMPTY_PATH) == 0)
		return (0);
#endif
	return (-1);
}

/*
 * Put the finished temp file in place: link an unnamed one straight to
 * the target when there is none, else under a temp name and rename that
 * over the target (atomic either way).
 */
static int
file_publish(struct file_xfer *x)
{
	char	name[sizeof FILE_TEMP_PREFIX + 8], rnd[7];
	int	tries, e;

	if (!x->unnamed)
		return (renameat(x->dirfd, x->temp, x->dirfd, x->base));
	if (file_link_unnamed(x, x->base) == 0)
		return (0);
	if (errno != EEXIST)
		return (-1);
	for (tries = 0;; tries++) {
		util_random_hex(rnd, sizeof rnd);
		snprintf(name, sizeof name, "%s%s", FILE_TEMP_PREFIX, rnd);
		if (file_link_unnamed(x, name) == 0)
			break;
		if (errno != EEXIST || tries == 100)
			return (-1);
	}
	if (renameat(x->dirfd, name, x->dirfd, x->base) == -1) {
		e = errno;
		unlinkat(x->dirfd, name, 0);
		errno = e;
		return (-1);
	}
	return (0);
}

/*
 * Every byte of a put or a get is hashed: end the job with the file's
 * size and mode and the digest.
 */
void
file_end_hashed(struct job *j)
{
	struct file_xfer	*x = j->data;
	char			 hex[65];

	hash_final(x->hash, hex);
	job_set_end(j, json_pack("{s:I, s:i, s:s}", "size", (json_int_t)x->size,
	    "mode", (int)x->mode, "sha256", hex));
}

/* The file is in place and every byte hashed: reply. */
static void
file_put_reply(void *arg)
{
	struct job		*j = arg;
	struct file_xfer	*x = j->data;

	log_debug("channel %u: put %s: %llu bytes", j->ch, x->path,
	    (unsigned long long)x->size);
	file_end_hashed(j);
}

/* What a put must leave alone: "a FIFO" and the like, else NULL. */
static const char *
file_special(mode_t mode)
{
	if (S_ISFIFO(mode))
		return ("a FIFO");
	if (S_ISSOCK(mode))
		return ("a socket");
	if (S_ISCHR(mode))
		return ("a character device");
	if (S_ISBLK(mode))
		return ("a block device");
	return (NULL);
}

/* The mode a put may apply: no set-id bits without --allow-setid. */
static mode_t
file_put_mode(mode_t mode)
{
	mode &= 07777;
	if (!worker_opts.allow_setid)
		mode &= ~(mode_t)(S_ISUID | S_ISGID);
	return (mode);
}

/*
 * Before the temp file takes the target's place: a device, FIFO or
 * socket there stays; a file there passes on its owner, group and (with
 * no mode asked for) its mode. -1 after failing the job.
 */
static int
file_put_take_over(struct job *j)
{
	struct file_xfer	*x = j->data;
	struct stat		 old, tmp;
	const char		*special;

	if (fstatat(x->dirfd, x->base, &old, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return (0);
		file_fail_errno(j, errno, NULL);
		return (-1);
	}
	if ((special = file_special(old.st_mode)) != NULL) {
		file_fail(j, "io_error", EINVAL, "%s, not a regular file: left "
		    "as it is", special);
		return (-1);
	}
	if (!S_ISREG(old.st_mode))
		return (0);	/* a symlink is replaced, not followed */
	if (!x->mode_given)
		x->mode = file_put_mode(old.st_mode);
	if (fstat(x->fd, &tmp) == -1 || ((tmp.st_uid != old.st_uid ||
	    tmp.st_gid != old.st_gid) &&
	    fchown(x->fd, old.st_uid, old.st_gid) == -1)) {
		file_fail(j, "io_error", errno, "keeping owner %lu:%lu: %s",
		    (unsigned long)old.st_uid, (unsigned long)old.st_gid,
		    strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Every byte is written: flush, take over the old file's owner and mode,
 * set the mode (after chown, which clears set-id bits), rename, and
 * reply once the hashing has caught up.
 */
static void
file_put_commit(struct job *j)
{
	struct file_xfer	*x = j->data;

	if (x->expect != x->size && ftruncate(x->fd, (off_t)x->size) == -1) {
		file_fail_errno(j, errno, "truncate");
		return;
	}
	if (file_put_take_over(j) == -1)
		return;
	if (fchmod(x->fd, x->mode) == -1) {
		file_fail_errno(j, errno, "chmod");
		return;
	}
	if (fsync(x->fd) == -1) {
		file_fail_errno(j, errno, "fsync");
		return;
	}
	if (file_publish(x) == -1) {
		file_fail_errno(j, errno, NULL);
		return;
	}
	free(x->temp);
	x->temp = NULL;		/* it is the target now */
	if (fsync(x->dirfd) == -1 && errno != EINVAL)
		log_warn("%s: fsync %s", __func__, x->dir);
	x->done = 1;
	file_close(x);
	hash_when_below(x->hash, 0, file_put_reply, j);
}

/* The hash caught up with a put: let more input come. */
static void
file_put_ack(void *arg)
{
	job_ack_input(arg);
}

/*
 * Write what is buffered, then acknowledge it: the controller's window
 * opens only for bytes that are in the file. -1 with errno on failure.
 */
static int
file_put_write(struct job *j)
{
	struct file_xfer	*x = j->data;
	size_t			 off = 0;
	ssize_t			 n;

	while (off < x->wlen) {
		n = write(x->fd, x->wbuf + off, x->wlen - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return (-1);
		}
		off += (size_t)n;
	}
	x->size += x->wlen;
	j->in_done += x->wlen;
	if (x->wlen > 0) {
		/* Hashed meanwhile; the next batch gets a new buffer. */
		hash_add(x->hash, x->wbuf, x->wlen, free, x->wbuf);
		x->wbuf = NULL;
	}
	x->wlen = 0;
#ifdef SYNC_FILE_RANGE_WRITE
	/* Start writeback as we go, so the final fsync has little left. */
	if (x->size - x->synced >= FILE_SYNC_EVERY) {
		sync_file_range(x->fd, (off_t)x->synced,
		    (off_t)(x->size - x->synced), SYNC_FILE_RANGE_WRITE);
		x->synced = x->size;
	}
#endif
	/* Input waiting for the hash is held too: ack once it catches up. */
	if (hash_backlog(x->hash) < FILE_HASH_AHEAD)
		job_ack_input(j);
	else
		hash_when_below(x->hash, FILE_HASH_AHEAD / 2, file_put_ack, j);
	return (0);
}

/* Commit once the input's end is known and all of it arrived. */
static void
file_put_check_done(struct job *j)
{
	struct file_xfer	*x = j->data;

	if (x == NULL || x->done || x->req != NULL || !j->in_eof_set ||
	    j->in_off < j->in_eof_at)
		return;
	if (file_put_write(j) == -1)
		file_fail_errno(j, errno, NULL);
	else
		file_put_commit(j);
}

/*
 * job_ops.input: hash, and write in batches (input comes in frames of
 * any size, often small).
 */
static void
file_put_input(struct job *j, const uint8_t *data, size_t len)
{
	struct file_xfer	*x = j->data;
	size_t			 n;

	if (x == NULL || x->done) {
		j->in_done += len;	/* failed: the rest is dropped */
		job_ack_input(j);
		return;
	}
	if (x->req != NULL) {	/* the folder is not open yet */
		x->pend = xrealloc(x->pend, x->npend + len);
		memcpy(x->pend + x->npend, data, len);
		x->npend += len;
		return;
	}
	while (len > 0) {
		if (x->wbuf == NULL)
			x->wbuf = xmalloc(FILE_WRITE_BATCH);
		n = FILE_WRITE_BATCH - x->wlen;
		if (n > len)
			n = len;
		memcpy(x->wbuf + x->wlen, data, n);
		x->wlen += n;
		data += n;
		len -= n;
		if (x->wlen == FILE_WRITE_BATCH && file_put_write(j) == -1) {
			file_fail_errno(j, errno, NULL);
			return;
		}
	}
	file_put_check_done(j);
}

/* job_ops.input_eof: the input ends at j->in_eof_at. */
static void
file_put_input_eof(struct job *j)
{
	file_put_check_done(j);
}

/* The put's folder, for messages; -1 if the path names a folder. */
static int
file_put_split(struct file_xfer *x)
{
	const char	*slash = strrchr(x->path, '/');

	if (slash == x->path)
		x->dir = xstrdup("/");
	else
		x->dir = xstrndup(x->path, (size_t)(slash - x->path));
	if (slash[1] == '\0' || strcmp(slash + 1, ".") == 0 ||
	    strcmp(slash + 1, "..") == 0)
		return (-1);
	return (0);
}

/* The folder cannot be had: fail as errno e says. */
static void
file_put_folder_failed(struct job *j, int e, const char *failed)
{
	if (path_outside(e))
		file_fail_outside(j);
	else if (failed != NULL)
		file_fail(j, "io_error", e, "mkdir %s: %s", failed,
		    strerror(e));
	else
		file_fail_errno(j, e, NULL);
}

/*
 * The put's folder is open (x->dirfd, x->base): check the target, make
 * the temporary file, then take the input that came meanwhile.
 */
static void
file_put_opened(struct job *j, struct file_xfer *x)
{
	struct stat	 st;
	uint8_t		*pend;
	size_t		 npend;

	if (fstatat(x->dirfd, x->base, &st, AT_SYMLINK_NOFOLLOW) == -1)
		st.st_mode = 0;
	if (x->isdir || S_ISDIR(st.st_mode)) {
		file_fail_errno(j, EISDIR, NULL);
		return;
	}
	if (file_special(st.st_mode) != NULL) {	/* checked again at the end */
		file_fail(j, "io_error", EINVAL, "%s, not a regular file: left "
		    "as it is", file_special(st.st_mode));
		return;
	}
	if (file_temp_create(x) == -1) {
		file_fail_errno(j, errno, NULL);
		return;
	}
	if (j->ws != NULL && workspace_file_give(j->ws, x->fd) == -1) {
		file_fail_errno(j, errno, "chown");
		return;
	}
#ifdef __linux__
	/* Claim the space now: a full disk fails before the bytes flow. */
	if (x->expect > 0 && fallocate(x->fd, 0, 0, (off_t)x->expect) == -1 &&
	    (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)) {
		file_fail_errno(j, errno, NULL);
		return;
	}
#endif
	log_debug("channel %u: put %s (%llu bytes, mode %04o%s)", j->ch,
	    x->path, (unsigned long long)x->expect, (unsigned)x->mode,
	    x->unnamed ? "" : ", named temp");
	if ((pend = x->pend) != NULL) {
		npend = x->npend;
		x->pend = NULL;
		x->npend = 0;
		file_put_input(j, pend, npend);
		free(pend);
		if (x->done)
			return;
	}
	/* An empty put may have had its eof already: nothing to wait for. */
	file_put_check_done(j);
}

/* The workspace's init answered the put's folder (see ns_file_open). */
static void
file_put_folder_cb(int fd, int err, int why, void *arg)
{
	struct job		*j = arg;
	struct file_xfer	*x = j->data;

	x->req = NULL;
	if (fd == -1) {
		if (why == NS_WHY_OPEN)
			file_put_folder_failed(j, err, NULL);
		else
			file_fail_ns(j, err, why, x->dir);
		return;
	}
	x->dirfd = fd;
	file_put_opened(j, x);
}

/*
 * Open the put's folder (made first with mkdir): beneath the root if
 * there is one, or through the workspace's init, then go on.
 */
static void
file_put_folder(struct job *j, struct file_xfer *x, int mkdir)
{
	const char	*slash = strrchr(x->path, '/');
	char		*failed = NULL;
	int		 e;

	if (j->ws != NULL) {	/* as the workspace sees it */
		x->base = xstrdup(slash[1] != '\0' ? slash + 1 : ".");
		x->req = workspace_file_parent(j->ws, x->path, mkdir,
		    file_put_folder_cb, j, &e);
		if (x->req == NULL)
			file_fail_errno(j, e, NULL);
		return;
	}
	x->dirfd = path_open_parent(x->path, O_RDONLY, mkdir, &x->base,
	    &failed);
	if (x->dirfd == -1) {
		file_put_folder_failed(j, errno, failed);
		free(failed);
		return;
	}
	file_put_opened(j, x);
}

/* Start a put: check, make folders, open the temporary file. */
static void
file_put_open(struct job *j, struct file_xfer *x, json_t *msg)
{
	json_t		*v;

	x->mode = 0644;
	if (json_is_integer(v = json_object_get(msg, "mode"))) {
		x->mode = file_put_mode((mode_t)json_integer_value(v));
		x->mode_given = 1;
	}
	if (json_is_integer(v = json_object_get(msg, "size")) &&
	    json_integer_value(v) > 0)
		x->expect = (uint64_t)json_integer_value(v);
	/* A path outside the root is denied before anything else. */
	x->isdir = file_put_split(x) == -1;
	file_put_folder(j, x, !x->isdir && json_is_true(json_object_get(msg,
	    "mkdir")));
}

/* ---- entry points ---- */

/* An open of kind CHAN_PUT or CHAN_GET: start it, or fail the job. */
void
worker_file_open(struct job *j, json_t *msg)
{
	static int		 once;
	struct file_xfer	*x;
	struct workspace	*ws;
	const char		*path, *code;
	char			*cause;
	int			 put = j->kind == CHAN_PUT;

	/*
	 * Past RLIMIT_FSIZE a write should fail with EFBIG, not kill the
	 * worker (children get every signal reset by spawn).
	 */
	if (!once) {
		signal(SIGXFSZ, SIG_IGN);
		once = 1;
	}
	j->ops = put ? &file_put_ops : &file_get_ops;
	path = json_string_value(json_object_get(msg, "path"));
	if (path == NULL || *path != '/') {
		job_fail(j, "bad_request", 0, "field 'path' must be an "
		    "absolute path");
		return;
	}
	x = file_xfer_create(j, put ? "put" : "get", path);
	if (workspace_of(msg, &ws, &code, &cause) == -1) {
		file_fail(j, code, 0, "%s", cause);
		free(cause);
		return;
	}
	if (ws != NULL)
		j->ws = workspace_ref(ws);
	if (ws == NULL && !policy_files_allowed(&cause)) {
		file_fail(j, "denied", 0, "%s", cause);
		free(cause);
		return;
	}
	if (put)
		file_put_open(j, x, msg);
	else
		file_get_open(j, x, msg);
}

/* Reply to the stat RPC msg about path: st, or errno e. */
static void
file_stat_reply(json_t *msg, const char *path, int e, struct stat *st)
{
	const char	*type;

	if (e != 0) {
		worker_reply_error(msg, "io_error", e, "stat %s on %s: %s",
		    path, worker_opts.id, strerror(e));
		return;
	}
	if (S_ISREG(st->st_mode))
		type = "file";
	else if (S_ISDIR(st->st_mode))
		type = "dir";
	else if (S_ISLNK(st->st_mode))
		type = "link";
	else
		type = "other";
	worker_reply(msg, json_pack("{s:b, s:s, s:I, s:i, s:I}", "ok", 1,
	    "type", type, "size", (json_int_t)st->st_size,
	    "mode", (int)(st->st_mode & 07777),
	    "mtime", (json_int_t)st->st_mtime));
}

/* The workspace's init answered a stat's open (an O_PATH descriptor). */
static void
file_stat_cb(int fd, int err, int why, void *arg)
{
	json_t		*msg = arg;
	const char	*path = json_string_value(json_object_get(msg, "path"));
	struct stat	 st;

	if (fd != -1) {
		err = fstat(fd, &st) == -1 ? errno : 0;
		close(fd);
	}
	if (fd == -1 && why == NS_WHY_PSEUDO)
		worker_reply_error(msg, "denied", err, "stat %s on %s: /proc "
		    "and /sys of a workspace are not served", path,
		    worker_opts.id);
	else if (fd == -1 && why == NS_WHY_INIT)
		worker_reply_error(msg, "io_error", err, "stat %s on %s: the "
		    "workspace's init did not answer: %s", path,
		    worker_opts.id, strerror(err));
	else
		file_stat_reply(msg, path, err, &st);
	json_decref(msg);
}

/*
 * The stat RPC: what lstat says about a path (beneath the root); in a
 * workspace its init opens the path, and the answer comes later.
 */
void
worker_file_stat(json_t *msg)
{
	struct workspace *ws;
	const char	*path, *code = "denied";
	struct stat	 st;
	char		*base, *cause;
	int		 dirfd, e = 0;

	path = json_string_value(json_object_get(msg, "path"));
	if (path == NULL || *path != '/') {
		worker_reply_error(msg, "bad_request", 0, "field 'path' must "
		    "be an absolute path");
		return;
	}
	if (workspace_of(msg, &ws, &code, &cause) == -1 ||
	    (ws == NULL && !policy_files_allowed(&cause))) {
		worker_reply_error(msg, code, 0, "stat %s on %s: %s", path,
		    worker_opts.id, cause);
		free(cause);
		return;
	}
	if (ws != NULL) {
		if (workspace_file_open(ws, path, O_PATH | O_NOFOLLOW |
		    O_CLOEXEC, 0, file_stat_cb, json_incref(msg), &e) == NULL) {
			json_decref(msg);
			file_stat_reply(msg, path, e, &st);
		}
		return;
	}
	if ((dirfd = path_open_parent(path, O_PATH, 0, &base, NULL)) == -1)
		e = errno;
	else {
		if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1)
			e = errno;
		close(dirfd);
		free(base);
	}
	if (path_outside(e)) {
		worker_reply_error(msg, "denied", 0, "stat %s on %s: outside "
		    "the worker's root %s (by name, \"..\" or a symlink)",
		    path, worker_opts.id, path_root());
		return;
	}
	file_stat_reply(msg, path, e, &st);
}

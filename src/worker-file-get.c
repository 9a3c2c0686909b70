/*
 * worker-file-get.c: a get on the worker. It reads the file only while
 * its stream's window has room, a bounded batch per callback, hashes
 * what it sends (hash.c), and goes on when the controller acks. In a
 * workspace its init opens the file (ns-file.c) and the get waits for
 * the answer.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"
#include "worker-file.h"

#define FILE_GET_BATCH		4	/* chunks read per callback */

static void	 file_get_acked(struct job *, int);

const struct job_ops file_get_ops = {
	.acked = file_get_acked,
	.release = file_forget,
	.cancel = file_forget,
	.free = file_free,
};

/* Everything is read and hashed: the end carries size, mode and digest. */
static void
file_get_end(void *arg)
{
	struct job		*j = arg;
	struct file_xfer	*x = j->data;

	j->out[WIRE_OUT].eof = 1;
	log_debug("channel %u: get %s: %llu bytes sent", j->ch, x->path,
	    (unsigned long long)x->sent);
	file_end_hashed(j);
}

/* Everything is read: end once the hashing has caught up. */
static void
file_get_finish(struct job *j)
{
	struct file_xfer	*x = j->data;

	x->done = 1;
	file_close(x);
	hash_when_below(x->hash, 0, file_get_end, j);
}

/* get: a block read from the file, shared by the stream and the hash. */
struct file_block {
	int	refs;
	uint8_t	data[];
};

/* One user of a get block is done with it; the last frees it. */
static void
file_block_unref(void *arg)
{
	struct file_block	*b = arg;

	if (--b->refs == 0)
		free(b);
}

/* The stream sent its reference to a block. */
static void
file_block_cleanup_cb(__unused const void *data, __unused size_t len,
    void *arg)
{
	file_block_unref(arg);
}

/* The hash caught up with a get: read on. */
static void
file_get_more(void *arg)
{
	struct job		*j = arg;
	struct file_xfer	*x = j->data;

	if (!x->done && x->ev != NULL)
		event_active(x->ev, EV_TIMEOUT, 0);
}

/*
 * Read a bounded batch while the window has room and the hash keeps up;
 * re-arm for more.
 */
static void
file_get_read_cb(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct job		*j = arg;
	struct file_xfer	*x = j->data;
	struct evbuffer		*buf = j->out[WIRE_OUT].buf;
	struct file_block	*b;
	size_t			 room, want;
	ssize_t			 n;
	int			 i;

	for (i = 0; i < FILE_GET_BATCH && x->left > 0; i++) {
		if ((room = job_stream_room(j, WIRE_OUT)) == 0)
			return;		/* file_get_acked goes on */
		if (hash_backlog(x->hash) >= FILE_HASH_AHEAD) {
			hash_when_below(x->hash, FILE_HASH_AHEAD / 2,
			    file_get_more, j);
			return;
		}
		want = room < WIRE_CHUNK ? room : WIRE_CHUNK;
		if (want > x->left)
			want = (size_t)x->left;
		b = xmalloc(sizeof *b + want);
		n = pread(x->fd, b->data, want, (off_t)x->pos);
		if (n <= 0)
			free(b);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			file_fail_errno(j, errno, "read");
			return;
		}
		if (n == 0) {		/* shorter than it was */
			x->left = 0;
			break;
		}
		/* Sent from the stream and hashed meanwhile, not copied. */
		b->refs = 2;
		if (evbuffer_add_reference(buf, b->data, (size_t)n,
		    file_block_cleanup_cb, b) != 0)
			fatalx("%s: out of memory", __func__);
		hash_add(x->hash, b->data, (size_t)n, file_block_unref, b);
		x->pos += (uint64_t)n;
		x->sent += (uint64_t)n;
		if (x->left != FILE_LEFT_UNKNOWN)
			x->left -= (uint64_t)n;
		else if (x->size < x->pos)
			x->size = x->pos;
		if (x->max != 0 && x->sent > x->max) {
			file_fail(j, "too_large", 0, "more than the inline "
			    "limit of %llu bytes (use raw)",
			    (unsigned long long)x->max);
			return;
		}
		job_flush(j);
	}
	if (x->left == 0) {
		file_get_finish(j);
		return;
	}
	if (job_stream_room(j, WIRE_OUT) > 0)
		event_active(x->ev, EV_TIMEOUT, 0);
}

/* job_ops.acked: the window opened again. */
static void
file_get_acked(struct job *j, int s)
{
	struct file_xfer	*x = j->data;

	if (x != NULL && s == WIRE_OUT && !x->done && x->ev != NULL &&
	    x->left > 0)
		event_active(x->ev, EV_TIMEOUT, 0);
}

static void	 file_get_opened(struct job *, struct file_xfer *);

/* The workspace's init answered the get's open (see ns_file_open). */
static void
file_get_open_cb(int fd, int err, int why, void *arg)
{
	struct job		*j = arg;
	struct file_xfer	*x = j->data;

	x->req = NULL;
	if (fd == -1) {
		file_fail_ns(j, err, why, x->path);
		return;
	}
	x->fd = fd;
	file_get_opened(j, x);
}

/* The get's file is open (x->fd): check it, plan the range, read. */
static void
file_get_opened(struct job *j, struct file_xfer *x)
{
	struct stat	 st;
	uint64_t	 offset = x->offset, length = x->length;

	if (fstat(x->fd, &st) == -1) {
		file_fail_errno(j, errno, NULL);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		file_fail_errno(j, EISDIR, NULL);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		file_fail(j, "io_error", EINVAL, "not a regular file");
		return;
	}
	x->size = (uint64_t)st.st_size;
	x->mode = st.st_mode & 07777;
	x->pos = offset;
	if (st.st_size == 0)		/* /proc and the like: read to EOF */
		x->left = length;
	else {
		x->left = offset < x->size ? x->size - offset : 0;
		if (length < x->left)
			x->left = length;
	}
	if (x->max != 0 && x->left != FILE_LEFT_UNKNOWN && x->left > x->max) {
		file_fail(j, "too_large", 0, "%llu bytes is over the inline "
		    "limit of %llu (use raw)", (unsigned long long)x->left,
		    (unsigned long long)x->max);
		return;
	}
#ifdef POSIX_FADV_SEQUENTIAL
	posix_fadvise(x->fd, (off_t)offset, 0, POSIX_FADV_SEQUENTIAL);
#endif
	log_debug("channel %u: get %s (offset %llu)", j->ch, x->path,
	    (unsigned long long)offset);
	x->ev = event_new(ev_base, -1, 0, file_get_read_cb, j);
	event_active(x->ev, EV_TIMEOUT, 0);
}

/* Start a get: open (in a workspace, through its init), then go on. */
void
file_get_open(struct job *j, struct file_xfer *x, json_t *msg)
{
	json_t		*v;
	int		 e;

	x->length = FILE_LEFT_UNKNOWN;
	if (json_is_integer(v = json_object_get(msg, "offset")) &&
	    json_integer_value(v) > 0)
		x->offset = (uint64_t)json_integer_value(v);
	if (json_is_integer(v = json_object_get(msg, "length")) &&
	    json_integer_value(v) >= 0)
		x->length = (uint64_t)json_integer_value(v);
	if (json_is_integer(v = json_object_get(msg, "max")) &&
	    json_integer_value(v) > 0)
		x->max = (uint64_t)json_integer_value(v);
	j->out[WIRE_OUT].eof = 0;
	if (j->ws != NULL) {
		x->req = workspace_file_open(j->ws, x->path, O_RDONLY |
		    O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0, file_get_open_cb, j,
		    &e);
		if (x->req == NULL)
			file_fail_errno(j, e, NULL);
		return;
	}
	if ((x->fd = path_open(x->path, O_RDONLY | O_NONBLOCK, 0)) == -1) {
		if (path_outside(errno))
			file_fail_outside(j);
		else
			file_fail_errno(j, errno, NULL);
		return;
	}
	file_get_opened(j, x);
}

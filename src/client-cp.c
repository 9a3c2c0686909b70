/*
 * client-cp.c: `sandd cp`, one file to or from a worker as a raw payload
 * checked by SHA-256 (through a temporary file renamed into place), or
 * a folder with -r as a tar stream between a local and a remote tar;
 * a progress line on a terminal for big copies, naming the file and
 * fitting the terminal's width.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sandd.h"
#include "client.h"

/* Progress bar only for transfers over this. */
#define CLIENT_PROGRESS	(4 * 1024 * 1024)

/*
 * A progress line on stderr: the file, percent, size, rate and time
 * left, as wide as the terminal less its last column.
 */
struct progress {
	int	 on;
	char	 name[PATH_MAX + 80];	/* as the user named it */
	size_t	 total;
	size_t	 done;
	double	 start;
	double	 last;
};

static void	progress_init(struct progress *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/*
 * Start a progress line for the file name (printf-like); shown only on
 * a terminal and for big copies.
 */
static void
progress_init(struct progress *p, size_t total, const char *fmt, ...)
{
	va_list	ap;

	memset(p, 0, sizeof *p);
	p->on = isatty(STDERR_FILENO) && total > CLIENT_PROGRESS;
	p->total = total;
	p->start = p->last = util_now();
	va_start(ap, fmt);
	vsnprintf(p->name, sizeof p->name, fmt, ap);
	va_end(ap);
}

/* Columns of the terminal on stderr; 80 if it does not say. */
static size_t
progress_cols(void)
{
	struct winsize	ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0)
		return (80);
	return (ws.ws_col);
}

/* The byte where the n-th character of UTF-8 s (len bytes) starts. */
static size_t
progress_skip(const char *s, size_t len, size_t n)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		/* A continuation byte is part of the character before. */
		if (((unsigned char)s[i] & 0xc0) != 0x80 && n-- == 0)
			break;
	}
	return (i);
}

/*
 * The name into buf, cut in the middle with "..." to at most room
 * characters (room > 3); returns how many characters it has.
 */
static size_t
progress_name(const char *name, size_t room, char *buf, size_t size)
{
	size_t	len = strlen(name), n, head, tail;

	for (n = 0, head = 0; head < len; head++)
		n += ((unsigned char)name[head] & 0xc0) != 0x80;
	if (n <= room) {
		snprintf(buf, size, "%s", name);
		return (n);
	}
	/* More of the end: it holds the file's own name. */
	head = (room - 3) / 3;
	tail = room - 3 - head;
	snprintf(buf, size, "%.*s...%s", (int)progress_skip(name, len, head),
	    name, name + progress_skip(name, len, n - tail));
	return (room);
}

/* Count n more bytes; redraw at most ten times a second (and at the end). */
static void
progress_add(struct progress *p, size_t n, int final)
{
	char	stats[128], name[sizeof p->name];
	double	now = util_now(), rate, eta;
	size_t	left, cols, nstats, nname;

	p->done += n;
	if (!p->on || (!final && now - p->last < 0.1))
		return;
	p->last = now;
	rate = p->done / (now - p->start > 0.001 ? now - p->start : 0.001);
	left = p->total > p->done ? p->total - p->done : 0;
	eta = rate > 0 ? (double)left / rate : 0;
	snprintf(stats, sizeof stats, "%3d%% %.1f MiB %.1f MiB/s ETA %d:%02d",
	    p->total > 0 ? (int)(100.0 * p->done / p->total) : 100,
	    p->done / 1048576.0, rate / 1048576.0, (int)eta / 60,
	    (int)eta % 60);
	nstats = strlen(stats);
	/* Never the last column: a terminal wraps after it. */
	cols = progress_cols() - 1;
	if (cols >= nstats + 2 + 8) {
		/* The name, two blanks, the numbers at the right margin. */
		nname = progress_name(p->name, cols - nstats - 2, name,
		    sizeof name);
		fprintf(stderr, "\r%s%*s%s", name, (int)(cols - nname - nstats),
		    "", stats);
	} else
		fprintf(stderr, "\r%-*.*s", (int)cols, (int)cols, stats);
	if (final)
		fputc('\n', stderr);
}

/* Split WORKER:PATH; NULL worker for a local path. */
static char *
cp_split(const char *arg, const char **path)
{
	const char	*colon = strchr(arg, ':');
	char		*w;

	if (colon == NULL || colon == arg || memchr(arg, '/',
	    (size_t)(colon - arg)) != NULL) {
		*path = arg;
		return (NULL);
	}
	w = xstrndup(arg, (size_t)(colon - arg));
	if (!util_valid_id(w)) {
		free(w);
		*path = arg;
		return (NULL);
	}
	*path = colon + 1;
	return (w);
}

/*
 * Where src goes when copied to dst: dst/NAME, NAME the last part of
 * src, when dst is a folder (and NAME is not / or .), else dst. Caller
 * frees.
 */
static char *
cp_target(const char *dst, const char *src, int dst_is_dir)
{
	char	*copy = xstrdup(src), *base = basename(copy), *t;

	if (dst_is_dir && strcmp(base, "/") != 0 && strcmp(base, ".") != 0)
		xasprintf(&t, "%s%s%s", dst, dst[strlen(dst) - 1] == '/' ?
		    "" : "/", base);
	else
		t = xstrdup(dst);
	free(copy);
	return (t);
}

/* Is the local path a folder? */
static int
cp_local_is_dir(const char *path)
{
	struct stat	sb;

	return (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
}

/* stat on the worker: returns the reply (ok or not). */
static json_t *
cp_remote_stat(struct conn *c, const char *worker, const char *path)
{
	return (client_conn_call(c, json_pack("{s:s, s:s, s:s}", "op", "stat",
	    "worker", worker, "path", path), 1));
}

/* Is the stat reply st an existing folder? */
static int
cp_is_dir(json_t *st)
{
	return (json_is_true(json_object_get(st, "ok")) &&
	    strcmp(json_string_value(json_object_get(st, "type")) ?: "",
	    "dir") == 0);
}

/* The hex SHA-256 of what md has seen; frees md. */
static void
cp_digest(EVP_MD_CTX *md, char hex[65])
{
	unsigned char	dig[EVP_MAX_MD_SIZE];

	EVP_DigestFinal_ex(md, dig, NULL);
	EVP_MD_CTX_free(md);
	util_sha256_hex(dig, hex);
}

/* A new SHA-256 context. */
static EVP_MD_CTX *
cp_md(void)
{
	EVP_MD_CTX	*md;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		client_die(1, "cannot start a SHA-256 digest");
	return (md);
}

/* Set the modification time of worker:path with touch(1) there. */
static void
cp_remote_mtime(struct conn *c, const char *worker, const char *path,
    time_t mtime)
{
	struct evbuffer	*b;
	json_t		*r;
	char		 stamp[32];
	size_t		 n;

	snprintf(stamp, sizeof stamp, "@%lld", (long long)mtime);
	r = client_conn_call(c, json_pack("{s:s, s:s, s:[s, s, s, s, s]}", "op",
	    "exec", "worker", worker, "argv", "touch", "-d", stamp, "--",
	    path), 0);
	if (client_exec_status(r) != 0) {
		b = evbuffer_new();
		n = client_msg_bytes(r, "stderr", b);
		while (n > 0 && evbuffer_pullup(b, -1)[n - 1] == '\n')
			n--;
		client_warnx("%s on %s: cannot keep the modification time: "
		    "%.*s", path, worker, (int)n,
		    (const char *)evbuffer_pullup(b, -1));
		evbuffer_free(b);
		json_decref(r);
		client_exit(1);
	}
	json_decref(r);
}

/*
 * The SHA-256 of a file being uploaded, taken on a thread of its own by
 * pread while the main thread sends the file with sendfile(2): a 512 MiB
 * upload had the client read, hash, copy into its queue and send every
 * byte on one thread (1.1 s of CPU, twice the time of a raw put).
 */
struct cp_hash {
	pthread_t	 thread;
	int		 fd;
	size_t		 size;
	char		 hex[65];
	/* errno of a failed read, or -1: short */
	int		 err;
};

#define CP_HASH_READ	(1024 * 1024)

static void *
cp_hash_main(void *arg)
{
	struct cp_hash	*h = arg;
	EVP_MD_CTX	*md = cp_md();
	uint8_t		*buf = xmalloc(CP_HASH_READ);
	size_t		 off = 0;
	ssize_t		 n;

	while (off < h->size) {
		n = pread(h->fd, buf, h->size - off < CP_HASH_READ ?
		    h->size - off : CP_HASH_READ, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			h->err = n == 0 ? -1 : errno;
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		off += (size_t)n;
	}
	free(buf);
	cp_digest(md, h->hex);
	return (NULL);
}

/* Progress of a sendfile: arg is the progress line. */
static void
cp_put_sent(size_t n, void *arg)
{
	progress_add(arg, n, 0);
}

/*
 * Send size bytes of fd as put's payload: sendfile while a thread hashes
 * (hex gets the digest), or read, hash and queue where sendfile cannot
 * take fd.
 */
static void
cp_put_payload(struct conn *c, int fd, size_t size, struct progress *pg,
    char hex[65])
{
	struct cp_hash	 h;
	EVP_MD_CTX	*md;
	char		*buf;
	ssize_t		 n;
	size_t		 left = size;

	memset(&h, 0, sizeof h);
	h.fd = fd;
	h.size = size;
	if (pthread_create(&h.thread, NULL, cp_hash_main, &h) == 0) {
		if (client_conn_sendfile(c, fd, 0, size, cp_put_sent,
		    pg) == 0) {
			pthread_join(h.thread, NULL);
			if (h.err != 0)
				client_die(1, "read: %s", h.err == -1 ? "the "
				    "file shrank while copying" :
				    strerror(h.err));
			memcpy(hex, h.hex, 65);
			return;
		}
		pthread_join(h.thread, NULL);
	}
	md = cp_md();
	buf = xmalloc(CLIENT_CHUNK);
	while (left > 0) {
		n = read(fd, buf, left < CLIENT_CHUNK ? left : CLIENT_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* The server waits for the rest: just go. */
			client_die(1, "read: %s", n == 0 ? "the file shrank "
			    "while copying" : strerror(errno));
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		client_conn_queue(c, buf, (size_t)n);
		if (client_conn_gone(c))
			client_die(255, "the server closed the connection");
		left -= (size_t)n;
		progress_add(pg, (size_t)n, 0);
	}
	free(buf);
	cp_digest(md, hex);
}

/* Upload fd (size bytes; name for the progress line) to worker:path. */
static void
cp_put(struct conn *c, const char *name, const char *worker,
    const char *path, int fd, size_t size, int mode, time_t mtime)
{
	json_t			*req, *r;
	struct progress		 pg;
	char			 hex[65];
	const char		*got;
	int			 id;

	req = json_pack("{s:s, s:s, s:s, s:I, s:i}", "op", "put", "worker",
	    worker, "path", path, "bytes", (json_int_t)size, "mode", mode);
	id = client_conn_send(c, req);
	json_decref(req);
	progress_init(&pg, size, "%s", name);
	cp_put_payload(c, fd, size, &pg, hex);
	progress_add(&pg, 0, 1);
	r = client_conn_reply(c, id);
	if (!json_is_true(json_object_get(r, "ok")))
		client_die_reply(1, r);
	got = json_string_value(json_object_get(r, "sha256"));
	if (got == NULL || strcmp(hex, got) != 0) {
		client_warnx("%s on %s: SHA-256 differs (sent %s, got %s)",
		    path, worker, hex, got != NULL ? got : "none");
		json_decref(r);
		client_exit(1);
	}
	json_decref(r);
	if (mtime != 0)
		cp_remote_mtime(c, worker, path, mtime);
}

/* The process's umask (umask(2) can only set it). */
static mode_t
cp_umask(void)
{
	mode_t	mask = umask(0);

	umask(mask);
	return (mask);
}

/*
 * The temporary file of the download in progress, if any: whatever ends
 * the client before it is renamed into place (an error, the server
 * closing, a signal) removes it.
 */
static char	*cp_tmp;

/* Remove the unfinished download (atexit). */
static void
cp_tmp_remove(void)
{
	if (cp_tmp == NULL)
		return;
	unlink(cp_tmp);
	free(cp_tmp);
	cp_tmp = NULL;
}

/* INT, TERM, HUP: remove the unfinished download, then die of sig. */
static void
cp_tmp_signal_cb(int sig)
{
	if (cp_tmp != NULL)
		unlink(cp_tmp);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A temporary file beside local for cp_get, in cp_tmp; returns it open. */
static int
cp_tmp_create(const char *local)
{
	static int		 registered;
	struct sigaction	 sa;
	char			*copy = xstrdup(local), *tmp;
	int			 fd;

	xasprintf(&tmp, "%s/.sandd-cp.XXXXXX", dirname(copy));
	free(copy);
	if (!registered) {
		atexit(cp_tmp_remove);
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = cp_tmp_signal_cb;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		registered = 1;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		free(tmp);
		client_die(1, "%s: %s", local, strerror(errno));
	}
	cp_tmp = tmp;
	return (fd);
}

/*
 * Give the download in cp_tmp (open as fd) mode, through the umask
 * unless keep, and with keep its set-id bits and mtime, then rename it
 * to local.
 */
static void
cp_tmp_install(int fd, const char *local, mode_t mode, int keep,
    time_t mtime)
{
	struct timespec	ts[2];

	/* Like cp: the bits go through the umask unless -p. */
	mode = keep ? mode & 07777 : mode & 0777 & ~cp_umask();
	if (fchmod(fd, mode) != 0)
		client_die(1, "%s: %s", local, strerror(errno));
	if (keep) {
		ts[0].tv_sec = ts[1].tv_sec = mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		futimens(fd, ts);
	}
	if (fsync(fd) != 0 || close(fd) != 0 || rename(cp_tmp, local) != 0)
		client_die(1, "%s: %s", local, strerror(errno));
	free(cp_tmp);
	cp_tmp = NULL;
}

/*
 * Download worker:path (size bytes) to the local path, or stdout for "-",
 * through a temporary file beside it that is renamed into place once the
 * digest matches. mtime (from a stat) is set when keep.
 */
static void
cp_get(struct conn *c, const char *worker, const char *path,
    const char *local, size_t size, int keep, time_t mtime)
{
	json_t			*req, *r;
	struct progress		 pg;
	EVP_MD_CTX		*md;
	char			 hex[65];
	const char		*got;
	mode_t			 mode;
	int			 id, fd, same;

	if (strcmp(local, "-") == 0)
		fd = STDOUT_FILENO;
	else
		fd = cp_tmp_create(local);
	req = json_pack("{s:s, s:s, s:s, s:b}", "op", "get", "worker",
	    worker, "path", path, "raw", 1);
	id = client_conn_send(c, req);
	json_decref(req);
	progress_init(&pg, size, "%s:%s", worker, path);
	md = cp_md();
	for (;;) {
		if ((r = client_conn_recv_id(c, id)) == NULL) {
			EVP_MD_CTX_free(md);
			client_die(255, "the server closed the connection");
		}
		if (json_object_get(r, "event") == NULL)
			break;
		progress_add(&pg, client_conn_payload(c, r, fd, md), 0);
		json_decref(r);
	}
	cp_digest(md, hex);
	if (!json_is_true(json_object_get(r, "ok")))
		client_die_reply(1, r);
	progress_add(&pg, 0, 1);
	got = json_string_value(json_object_get(r, "sha256"));
	if (!(same = got != NULL && strcmp(hex, got) == 0))
		client_warnx("%s on %s: SHA-256 differs (received %s, "
		    "sent %s)", path, worker, hex, got != NULL ? got : "none");
	mode = (mode_t)json_integer_value(json_object_get(r, "mode"));
	json_decref(r);
	if (!same)
		client_exit(1);
	if (fd != STDOUT_FILENO)
		cp_tmp_install(fd, local, mode, keep, mtime);
}

/*
 * Start a local tar with argv; *fd is its stdout (we read) when reading,
 * else its stdin (we write). Returns its pid.
 */
static pid_t
cp_tar_spawn(char *const *argv, int reading, int *fd)
{
	int	p[2];
	pid_t	pid;

	if (pipe(p) != 0)
		client_die(1, "pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		client_die(1, "fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(p[reading ? 1 : 0], reading ? STDOUT_FILENO :
		    STDIN_FILENO) == -1)
			_exit(127);
		close(p[0]);
		close(p[1]);
		execvp(argv[0], argv);
		fprintf(stderr, "sandd cp: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[reading ? 1 : 0]);
	*fd = p[reading ? 0 : 1];
	return (pid);
}

/* Wait for the local tar; 0 if it exited 0. */
static int
cp_tar_wait(pid_t pid)
{
	int	st;

	while (waitpid(pid, &st, 0) == -1) {
		if (errno != EINTR)
			return (-1);
	}
	return (WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1);
}

/*
 * Copy the folder worker:src to local dst (made, or dst/NAME when dst is
 * a folder): a remote `tar -c` streams into a local `tar -x`.
 */
static void
cp_tree_get(struct conn *c, const char *worker, const char *src,
    const char *dst)
{
	struct client_exec_io	 io;
	json_t			*m;
	char			*target, *targv[6];
	pid_t			 pid;
	int			 made = 0, status, rstatus;

	target = cp_target(dst, src, cp_local_is_dir(dst));
	if (mkdir(target, 0777) == 0)
		made = 1;
	else if (errno != EEXIST)
		client_die(1, "%s: %s", target, strerror(errno));
	targv[0] = (char *)"tar";
	targv[1] = (char *)"-C";
	targv[2] = target;
	targv[3] = (char *)"-xpf";
	targv[4] = (char *)"-";
	targv[5] = NULL;
	pid = cp_tar_spawn(targv, 0, &io.out_fd);
	io.in_fd = -1;
	io.err_fd = STDERR_FILENO;
	io.flags = CLIENT_EXEC_SOFT;
	m = client_exec_run(c, json_pack("{s:s, s:s, s:[s, s, s, s, s, s]}",
	    "op", "exec", "worker", worker, "argv", "tar", "-C", src, "-cf",
	    "-", "."), &io);
	close(io.out_fd);
	status = cp_tar_wait(pid);
	if (!json_is_true(json_object_get(m, "ok"))) {
		if (made)
			rmdir(target);
		free(target);
		client_die_reply(1, m);
	}
	rstatus = client_exec_status(m);
	json_decref(m);
	if (rstatus != 0) {
		if (made)
			rmdir(target);
		free(target);
		client_die(1, "%s:%s: tar on the worker failed (status %d)",
		    worker, src, rstatus);
	}
	if (status != 0 || (io.flags & CLIENT_EXEC_BROKEN)) {
		client_warnx("%s: the local tar failed", target);
		free(target);
		client_exit(1);
	}
	free(target);
}

/*
 * Copy the local folder src to worker:dst (made, or dst/NAME when dst is
 * a folder there): a local `tar -c` feeds a remote `tar -x` on stdin.
 */
static void
cp_tree_put(struct conn *c, const char *src, const char *worker,
    const char *dst)
{
	struct client_exec_io	 io;
	json_t			*m, *st;
	char			*target, *targv[7];
	pid_t			 pid;
	int			 status, rstatus;

	st = cp_remote_stat(c, worker, dst);
	target = cp_target(dst, src, cp_is_dir(st));
	json_decref(st);
	targv[0] = (char *)"tar";
	targv[1] = (char *)"-C";
	targv[2] = (char *)src;
	targv[3] = (char *)"-cf";
	targv[4] = (char *)"-";
	targv[5] = (char *)".";
	targv[6] = NULL;
	pid = cp_tar_spawn(targv, 1, &io.in_fd);
	/* What the remote tar says goes to stderr. */
	io.out_fd = io.err_fd = STDERR_FILENO;
	io.flags = 0;
	m = client_exec_run(c, json_pack("{s:s, s:s, s:[s, s, s, s, s]}",
	    "op", "exec", "worker", worker, "argv", "sh", "-c",
	    "mkdir -p -- \"$1\" && exec tar -C \"$1\" -xpf -", "sh", target),
	    &io);
	close(io.in_fd);
	status = cp_tar_wait(pid);
	if (!json_is_true(json_object_get(m, "ok"))) {
		free(target);
		client_die_reply(1, m);
	}
	rstatus = client_exec_status(m);
	json_decref(m);
	if (status != 0) {
		free(target);
		client_die(1, "%s: the local tar failed", src);
	}
	if (rstatus != 0) {
		client_warnx("%s:%s: tar on the worker failed (status %d)",
		    worker, target, rstatus);
		free(target);
		client_exit(1);
	}
	free(target);
}

/* Spool stdin to an unlinked temporary file; returns it, at offset 0. */
static int
cp_spool_stdin(void)
{
	const char	*tmpdir = getenv("TMPDIR");
	char		*path, *buf;
	ssize_t		 n;
	int		 fd;

	if (tmpdir == NULL || *tmpdir == '\0')
		tmpdir = "/tmp";
	xasprintf(&path, "%s/sandd-cp.XXXXXX", tmpdir);
	if ((fd = mkstemp(path)) == -1)
		client_die(1, "%s: %s", path, strerror(errno));
	unlink(path);
	free(path);
	buf = xmalloc(CLIENT_CHUNK);
	while ((n = read(STDIN_FILENO, buf, CLIENT_CHUNK)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			client_die(1, "stdin: %s", strerror(errno));
		if (client_write(fd, buf, (size_t)n) != 0)
			client_die(1, "spooling stdin: %s", strerror(errno));
	}
	free(buf);
	if (lseek(fd, 0, SEEK_SET) != 0)
		client_die(1, "spooling stdin: %s", strerror(errno));
	return (fd);
}

/* Copy local spath (or stdin) to worker:dpath. */
static void
cp_to_worker(struct conn *c, const char *spath, const char *worker,
    const char *dpath, int rec, int keep)
{
	struct stat	 sb;
	json_t		*st;
	char		*target;
	mode_t		 mode;
	int		 fd, is_stdin = strcmp(spath, "-") == 0;

	if (is_stdin)
		fd = cp_spool_stdin();
	else {
		if (stat(spath, &sb) != 0)
			client_die(1, "%s: %s", spath, strerror(errno));
		if (S_ISDIR(sb.st_mode)) {
			if (!rec)
				client_die(1, "%s is a folder (use -r)", spath);
			cp_tree_put(c, spath, worker, dpath);
			return;
		}
		if ((fd = open(spath, O_RDONLY)) == -1)
			client_die(1, "%s: %s", spath, strerror(errno));
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		client_die(1, "%s: not a regular file", spath);
	st = cp_remote_stat(c, worker, dpath);
	target = cp_target(dpath, spath, cp_is_dir(st) && !is_stdin);
	json_decref(st);
	if (is_stdin) {
		/* A new file, as the shell would make it. */
		mode = 0666 & ~cp_umask();
	} else
		mode = sb.st_mode & (keep ? 07777 : 0777);
	cp_put(c, is_stdin ? "stdin" : spath, worker, target, fd,
	    (size_t)sb.st_size, (int)mode,
	    keep ? sb.st_mtime : 0);
	close(fd);
	free(target);
}

/* Copy worker:spath to local dpath (or stdout). */
static void
cp_from_worker(struct conn *c, const char *worker, const char *spath,
    const char *dpath, int rec, int keep)
{
	json_t		*st;
	char		*target;

	st = cp_remote_stat(c, worker, spath);
	if (!json_is_true(json_object_get(st, "ok")))
		client_die_reply(1, st);
	if (cp_is_dir(st)) {
		json_decref(st);
		if (!rec)
			client_die(1, "%s:%s is a folder (use -r)", worker,
			    spath);
		if (strcmp(dpath, "-") == 0)
			client_die(1, "a folder cannot go to stdout");
		cp_tree_get(c, worker, spath, dpath);
		return;
	}
	target = cp_target(dpath, spath, strcmp(dpath, "-") != 0 &&
	    cp_local_is_dir(dpath));
	cp_get(c, worker, spath, target,
	    (size_t)json_integer_value(json_object_get(st, "size")), keep,
	    (time_t)json_number_value(json_object_get(st, "mtime")));
	json_decref(st);
	free(target);
}

/* `sandd cp`: copy a file or folder to or from a worker. */
int
client_cp(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "preserve", no_argument, NULL, 'p' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "workspace", required_argument, NULL, 'W' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct conn	*c;
	const char	*spath, *dpath;
	char		*sw, *dw;
	int		 ch, rec = 0, keep = 0, no_wait = 0;

	while ((ch = getopt_long(argc, argv, "S:rpW:h", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'r':
			rec = 1;
			break;
		case 'p':
			keep = 1;
			break;
		case 'N':
			no_wait = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (optind != argc - 2)
		client_usage_error();
	sw = cp_split(argv[optind], &spath);
	dw = cp_split(argv[optind + 1], &dpath);
	if ((sw == NULL) == (dw == NULL)) {
		free(sw);
		free(dw);
		client_die(2, "exactly one of source and destination must be "
		    "WORKER:PATH");
	}
	if (*spath == '\0' || *dpath == '\0') {
		free(sw);
		free(dw);
		client_die(2, "empty path");
	}
	c = client_conn_open();
	client_conn_watch(c, dw != NULL ? dw : sw, no_wait);
	if (dw != NULL)
		cp_to_worker(c, spath, dw, dpath, rec, keep);
	else
		cp_from_worker(c, sw, spath, dpath, rec, keep);
	client_conn_flush(c);
	free(sw);
	free(dw);
	return (0);
}

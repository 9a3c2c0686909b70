/*
 * worker-state.c: what a worker keeps across its own restarts, in a
 * folder of its id under the state folder (--state-dir, default
 * /var/lib/sandd as root): DIR/ID/. Several workers on one host never
 * touch each other's folder. The folder is the worker's alone (made
 * 0700, owned by it); one process writes it at a time, by a lock on
 * DIR/ID/lock. A second live process with the same id and folder is the
 * same worker (it reads the secret, and so may replace the first) but
 * writes nothing until it holds the lock. A folder that is not safe is
 * not used at all: the worker then keeps its secret in memory only.
 *
 * Files are small and written whole: to a temporary file, flushed, then
 * renamed into place, mode 0600.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

#define STATE_FILE_MAX	(64 * 1024)

static char	*state_dir;	/* DIR/ID, NULL without state */
static int	 state_lock = -1;
static int	 state_locked;	/* we hold the lock: we may write */

/* Do we hold the folder's lock (taking it if it is free now)? */
static int
state_own(void)
{
	if (!state_locked && state_lock != -1 &&
	    flock(state_lock, LOCK_EX | LOCK_NB) == 0) {
		state_locked = 1;
		log_debug("state folder %s: lock taken", state_dir);
	}
	return (state_locked);
}

/* The default state folder. */
static char *
state_default(void)
{
	const char	*env;
	char		*dir;

	if (geteuid() == 0)
		return (xstrdup("/var/lib/sandd"));
	if ((env = getenv("XDG_STATE_HOME")) != NULL && *env == '/')
		xasprintf(&dir, "%s/sandd", env);
	else if ((env = getenv("HOME")) != NULL && *env == '/')
		xasprintf(&dir, "%s/.local/state/sandd", env);
	else
		return (NULL);
	return (dir);
}

/* Make dir and its missing parents (mode for the last); -1 with errno. */
int
state_mkdirs(char *dir, mode_t mode)
{
	char	*p;

	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
			*p = '/';
			return (-1);
		}
		*p = '/';
	}
	if (mkdir(dir, mode) == -1 && errno != EEXIST)
		return (-1);
	return (0);
}

/* Is path a folder of ours that nobody else may write into? */
static int
state_safe(const char *path, char **why)
{
	struct stat	sb;

	if (lstat(path, &sb) == -1) {
		xasprintf(why, "%s: %s", path, strerror(errno));
		return (0);
	}
	if (!S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 022)) {
		xasprintf(why, "%s is not a folder of this user's that only "
		    "it may write", path);
		return (0);
	}
	return (1);
}

/*
 * Set up the worker's state folder. On any trouble the worker runs
 * without one (logged): it then forgets its secret when it stops.
 */
void
state_init(void)
{
	char	*base, *dir = NULL, *lock, *why = NULL;

	base = worker_opts.state_dir != NULL ?
	    xstrdup(worker_opts.state_dir) : state_default();
	if (base == NULL) {
		log_warnx("no state folder (set --state-dir)");
		return;
	}
	xasprintf(&dir, "%s/%s", base, worker_opts.id);
	if (state_mkdirs(dir, 0700) == -1)
		xasprintf(&why, "%s: %s", dir, strerror(errno));
	else if (state_safe(dir, &why)) {
		xasprintf(&lock, "%s/lock", dir);
		state_lock = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (state_lock == -1)
			xasprintf(&why, "%s: %s", lock, strerror(errno));
		free(lock);
	}
	if (why != NULL) {
		log_warnx("running without a state folder: %s", why);
		free(why);
		free(dir);
	} else {
		state_dir = dir;
		if (!state_own())
			log_warnx("state folder %s is in use by another "
			    "process of worker %s", state_dir, worker_opts.id);
	}
	free(base);
}

/* The worker's own folder (DIR/ID), NULL when it has none. */
const char *
state_folder(void)
{
	return (state_dir);
}

/* The content of state file name (NUL-terminated), or NULL. */
char *
state_read(const char *name)
{
	char	*path, *buf;
	ssize_t	 n;
	int	 fd;

	if (state_dir == NULL)
		return (NULL);
	xasprintf(&path, "%s/%s", state_dir, name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd == -1)
		return (NULL);
	buf = xmalloc(STATE_FILE_MAX + 1);
	n = read(fd, buf, STATE_FILE_MAX);
	close(fd);
	if (n < 0) {
		free(buf);
		return (NULL);
	}
	buf[n] = '\0';
	return (buf);
}

/* Write state file name whole (0600); -1 when it could not be. */
int
state_write(const char *name, const void *data, size_t len)
{
	char	*path, *tmp;
	int	 fd, r = -1;

	if (state_dir == NULL || !state_own())
		return (-1);
	xasprintf(&path, "%s/%s", state_dir, name);
	xasprintf(&tmp, "%s/.%s.tmp", state_dir, name);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd != -1 && write(fd, data, len) == (ssize_t)len &&
	    fsync(fd) == 0 && rename(tmp, path) == 0)
		r = 0;
	if (r != 0)
		log_warn("state: write %s", path);
	if (fd != -1)
		close(fd);
	if (r != 0)
		unlink(tmp);
	free(tmp);
	free(path);
	return (r);
}

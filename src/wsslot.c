/*
 * wsslot.c: the host-wide registry of workspace slots. A slot is a host
 * uid range (see worker-workspace.c); two workspaces with the same range
 * could touch each other's files and processes, whichever worker made
 * them. So slots are taken in one fixed folder of the host,
 * WSSLOT_DIR, not in a worker's state folder: workers with different
 * --state-dir on one host take from the same registry.
 *
 * A taken slot is the file WSSLOT_DIR/SLOT, holding the absolute path of
 * the workspace folder that owns it. While a worker runs it holds an
 * exclusive flock(2) on the file of each of its slots. A slot's file
 * survives its worker (the workspace's files, owned by its range, do
 * too), so a slot is free again only when given back (unlinked), or when
 * provably free: nobody holds its lock (its worker is gone, even killed
 * -9) and the folder it names is gone (the workspace can never come
 * back). A new file is written and locked before it is linked in, so a
 * slot is never seen unlocked and unwritten while being taken.
 */
#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

/* The path of slot's file (allocated). */
static char *
wsslot_path(int slot)
{
	char	*path;

	xasprintf(&path, "%s/%d", WSSLOT_DIR, slot);
	return (path);
}

/* Make the registry folder; -1 with *cause. */
static int
wsslot_dir(char **cause)
{
	char	*dir = xstrdup(WSSLOT_DIR);
	int	 r;

	if ((r = state_mkdirs(dir, 0700)) == -1)
		xasprintf(cause, "mkdir %s: %s", dir, strerror(errno));
	free(dir);
	return (r);
}

/* Write owner into the locked file fd, replacing what it held. */
static int
wsslot_write(int fd, const char *owner)
{
	size_t	len = strlen(owner);

	if (ftruncate(fd, 0) == -1 || pwrite(fd, owner, len, 0) !=
	    (ssize_t)len || fsync(fd) == -1)
		return (-1);
	return (0);
}

/*
 * Take the free slot: link a new, locked file holding owner in as its
 * file. The locked descriptor, or -1 with errno (EEXIST: taken).
 */
static int
wsslot_link(int slot, const char *owner)
{
	char	*path, proc[64];
	int	 fd, saved;

	fd = open(WSSLOT_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd == -1)
		return (-1);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || wsslot_write(fd,
	    owner) == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return (-1);
	}
	/* linkat of /proc/self/fd, not AT_EMPTY_PATH: no capability needed */
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	path = wsslot_path(slot);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == -1) {
		saved = errno;
		close(fd);
		fd = -1;
		errno = saved;
	}
	free(path);
	return (fd);
}

/*
 * Open and lock slot's existing file, if nobody holds it and it is
 * still the slot's file; what it holds in owner. The descriptor, or -1
 * (busy, gone meanwhile, or unreadable).
 */
static int
wsslot_lock(int slot, char *owner, size_t len)
{
	struct stat	 a, b;
	char		*path = wsslot_path(slot);
	ssize_t		 n = 0;
	int		 fd;

	fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1 && (flock(fd, LOCK_EX | LOCK_NB) == -1 ||
	    fstat(fd, &a) == -1 || stat(path, &b) == -1 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev ||
	    (n = pread(fd, owner, len - 1, 0)) < 0)) {
		close(fd);
		fd = -1;
	}
	free(path);
	if (fd != -1)
		owner[n] = '\0';
	return (fd);
}

/* Is the workspace folder owner gone for good? */
static int
wsslot_gone(const char *owner)
{
	struct stat	sb;

	return (*owner == '/' && lstat(owner, &sb) == -1 && errno == ENOENT);
}

/*
 * Take a free slot for a new workspace folder base/SLOT (base absolute):
 * its number, with *fd its locked file (held while the workspace is the
 * worker's). -1 with *cause.
 */
int
wsslot_take(const char *base, int *fd, char **cause)
{
	char	held[PATH_MAX], owner[PATH_MAX];
	int	slot, lfd = -1;

	if (wsslot_dir(cause) == -1)
		return (-1);
	for (slot = 0; slot < WSSLOT_COUNT; slot++) {
		snprintf(owner, sizeof owner, "%s/%d", base, slot);
		if ((lfd = wsslot_link(slot, owner)) != -1)
			break;
		if (errno != EEXIST) {
			xasprintf(cause, "%s/%d: %s", WSSLOT_DIR, slot,
			    strerror(errno));
			return (-1);
		}
		if ((lfd = wsslot_lock(slot, held, sizeof held)) == -1)
			continue;
		if (wsslot_gone(held) && wsslot_write(lfd, owner) == 0) {
			log_info("workspace slot %d: taken back from %s, gone",
			    slot, held);
			break;
		}
		close(lfd);
	}
	if (slot == WSSLOT_COUNT) {
		xasprintf(cause, "all %d workspace slots of the host are taken "
		    "(%s)", WSSLOT_COUNT, WSSLOT_DIR);
		return (-1);
	}
	*fd = lfd;
	return (slot);
}

/*
 * Take slot again for the existing workspace folder owner (a worker
 * that starts): its locked file in *fd, or -1 with *cause if another
 * workspace has it or a running process holds it.
 */
int
wsslot_claim(int slot, const char *owner, int *fd, char **cause)
{
	char	held[PATH_MAX];
	int	lfd;

	if (slot < 0 || slot >= WSSLOT_COUNT) {
		xasprintf(cause, "slot %d is out of range", slot);
		return (-1);
	}
	if (wsslot_dir(cause) == -1)
		return (-1);
	if ((lfd = wsslot_link(slot, owner)) != -1) {
		*fd = lfd;
		return (0);
	}
	if (errno != EEXIST) {
		xasprintf(cause, "%s/%d: %s", WSSLOT_DIR, slot,
		    strerror(errno));
		return (-1);
	}
	if ((lfd = wsslot_lock(slot, held, sizeof held)) == -1) {
		xasprintf(cause, "slot %d (%s/%d) is held by a running "
		    "process", slot, WSSLOT_DIR, slot);
		return (-1);
	}
	if (strcmp(held, owner) != 0 && (!wsslot_gone(held) ||
	    wsslot_write(lfd, owner) == -1)) {
		xasprintf(cause, "slot %d (its uid range) belongs to %s",
		    slot, held);
		close(lfd);
		return (-1);
	}
	*fd = lfd;
	return (0);
}

/* Give slot back: its file goes, then its lock. */
void
wsslot_give(int slot, int fd)
{
	char	*path = wsslot_path(slot);

	if (fd != -1 && unlink(path) == -1 && errno != ENOENT)
		log_warn("%s: unlink %s", __func__, path);
	free(path);
	if (fd != -1)
		close(fd);
}

/*
 * disk.c: the bounded disk of a workspace. /workspace is an ext4 file
 * system in a sparse image file in the workspace's folder on the
 * worker's disk, attached to a loop device and mounted by the
 * workspace's init in its own mount namespace. The image is as large as
 * the workspace's disk limit, so a write past it fails with ENOSPC in
 * the kernel, whoever writes (a command inside, or the worker for a
 * put); and it costs the host only what has been written (mounted with
 * discard, deleted files give their space back).
 *
 * Why an image: a bound must hold whatever the state folder's file
 * system is. Project quotas need ext4 or XFS made and mounted with them
 * (the usual root file system is not); a tmpfs is memory and does not
 * outlive the worker; RLIMIT_FSIZE bounds one file, not a folder. A
 * loop device and mkfs.ext4 are on every Linux host sandd runs on as
 * root; where they are not (a container without /dev/loop-control, no
 * e2fsprogs), disk_probe says why and the worker refuses bounded
 * workspaces unless its operator gave --max-workspace-disk none.
 *
 * The worker holds the loop device open while the workspace lives in
 * it, with LO_FLAGS_AUTOCLEAR: the device goes when the worker and the
 * workspace's mounts have, however the worker ended, and an init
 * started again mounts the same device (so the same file system, never
 * a second one over the same image).
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/loop.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

#define DISK_LOOP_TRIES	16	/* a free loop device taken meanwhile */
#define DISK_ERR_MAX	512	/* bytes of mkfs's errors kept */
#define DISK_SLACK	(1024 * 1024)	/* data past what a file takes */

/* Where mkfs.ext4 and cp may be: fixed places, never a request's PATH. */
static const char *disk_mkfs_paths[] = { "/usr/sbin/mkfs.ext4",
    "/sbin/mkfs.ext4", "/usr/bin/mkfs.ext4", "/bin/mkfs.ext4", NULL };
static const char *disk_cp_paths[] = { "/usr/bin/cp", "/bin/cp", NULL };
static const char *disk_fsck_paths[] = { "/usr/sbin/e2fsck", "/sbin/e2fsck",
    NULL };
static const char *disk_resize_paths[] = { "/usr/sbin/resize2fs",
    "/sbin/resize2fs", NULL };

/* The first of paths that can be run, or NULL. */
static const char *
disk_find(const char **paths)
{
	for (; *paths != NULL; paths++)
		if (access(*paths, X_OK) == 0)
			return (*paths);
	return (NULL);
}

/*
 * Can this host bound workspace disks? 0, or -1 with *why (allocated)
 * saying what is missing.
 */
int
disk_probe(char **why)
{
	if (disk_find(disk_mkfs_paths) == NULL) {
		xasprintf(why, "no mkfs.ext4 (e2fsprogs) in /usr/sbin, /sbin, "
		    "/usr/bin or /bin");
		return (-1);
	}
	if (access("/dev/loop-control", R_OK | W_OK) == -1) {
		xasprintf(why, "/dev/loop-control: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Run argv[0] with argv and no environment, stdin and stdout on
 * /dev/null, stderr into err (len bytes, NUL-terminated). Its wait
 * status, or -1 with errno.
 */
static int
disk_run(char *const argv[], char *err, size_t len)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	    "LC_ALL=C", NULL };
	int	 p[2], null, status;
	size_t	 got = 0;
	ssize_t	 n;
	pid_t	 pid;

	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) == -1)
		return (-1);
	if (compat_pipe_cloexec(p) == -1) {
		close(null);
		return (-1);
	}
	if ((pid = fork()) == 0) {
		/* Only system calls here: the worker has a second thread. */
		if (dup2(null, 0) == -1 || dup2(null, 1) == -1 ||
		    dup2(p[1], 2) == -1)
			_exit(127);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(null);
	close(p[1]);
	while (pid > 0 && got + 1 < len && (n = read(p[0], err + got,
	    len - got - 1)) != 0) {
		if (n == -1 && errno != EINTR)
			break;
		if (n > 0)
			got += (size_t)n;
	}
	err[got] = '\0';
	close(p[0]);
	if (pid == -1)
		return (-1);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return (-1);
	return (status);
}

/* The first line of text, for a message (in place). */
static const char *
disk_first_line(char *text)
{
	text[strcspn(text, "\n")] = '\0';
	return (*text != '\0' ? text : "no message");
}

/*
 * Make at tpl a sparse file of size bytes with an empty ext4 whose root
 * belongs to the host's root (the init gives it to the workspace's).
 * Made under a temporary name and renamed when it is whole and on disk,
 * so it is never half made. -1 with *cause.
 */
static int
disk_make_fs(const char *tpl, uint64_t size, char **cause)
{
	const char	*mkfs = disk_find(disk_mkfs_paths);
	char		 err[DISK_ERR_MAX], *tmp;
	char		*argv[] = { NULL, "-q", "-F", "-m", "0", "-L", "sandd",
			    "-E", "lazy_itable_init=1,lazy_journal_init=1,"
			    "nodiscard", NULL, NULL };
	int		 fd, status, r = -1;

	if (mkfs == NULL) {
		xasprintf(cause, "no mkfs.ext4 to make %s with", tpl);
		return (-1);
	}
	xasprintf(&tmp, "%s.%ld", tpl, (long)getpid());
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || ftruncate(fd, (off_t)size) == -1) {
		xasprintf(cause, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	argv[0] = (char *)mkfs;
	argv[9] = tmp;
	status = disk_run(argv, err, sizeof err);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		xasprintf(cause, "%s %s failed (status %d): %s", mkfs, tmp,
		    status, status == -1 ? strerror(errno) :
		    disk_first_line(err));
	else if (fsync(fd) == -1 || rename(tmp, tpl) == -1)
		xasprintf(cause, "%s: %s", tpl, strerror(errno));
	else
		r = 0;
out:
	if (fd != -1)
		close(fd);
	if (r == -1)
		(void)unlink(tmp);
	free(tmp);
	return (r);
}

/*
 * Copy what tfd holds (its data, not its holes) into the empty file fd,
 * to size bytes: copy_file_range, or read and write where it cannot.
 * -1 with errno; EFBIG if there is more data than tfd takes on disk (a
 * file system that shows no holes: the copy would write every byte).
 */
static int
disk_copy_data(int tfd, int fd, off_t size)
{
	struct stat	st;
	char		buf[65536];
	off_t		off = 0, end, in, out;
	uint64_t	most, data = 0;
	ssize_t		n;

	if (fstat(tfd, &st) == -1 || ftruncate(fd, size) == -1)
		return (-1);
	most = (uint64_t)st.st_blocks * 512 + DISK_SLACK;
	while ((off = lseek(tfd, off, SEEK_DATA)) != -1) {
		if ((end = lseek(tfd, off, SEEK_HOLE)) == -1)
			return (-1);
		if ((data += (uint64_t)(end - off)) > most) {
			errno = EFBIG;
			return (-1);
		}
		while (off < end) {
			in = out = off;
			n = copy_file_range(tfd, &in, fd, &out,
			    (size_t)(end - off), 0);
			if (n == -1 && (errno == EXDEV || errno == EINVAL ||
			    errno == ENOSYS || errno == EOPNOTSUPP)) {
				n = pread(tfd, buf, (size_t)(end - off) <
				    sizeof buf ? (size_t)(end - off) :
				    sizeof buf, off);
				if (n > 0 && pwrite(fd, buf, (size_t)n, off) !=
				    n)
					return (-1);
			}
			if (n == -1 && errno != EINTR)
				return (-1);
			if (n == 0) {
				errno = EIO;	/* the template shrank */
				return (-1);
			}
			if (n > 0)
				off += n;
		}
	}
	return (errno == ENXIO ? 0 : -1);
}

/*
 * Make the image path, size bytes: a copy of the template of that size
 * in folder (both made the first time, then kept), so that a workspace
 * costs a copy of the few MiB that mkfs.ext4 writes, not a run of it
 * (but where the file system would not keep the copy sparse). The file
 * system's root belongs to the host's root until its init mounts it.
 * -1 with *cause (nothing is left).
 */
int
disk_make(const char *folder, const char *path, uint64_t size, char **cause)
{
	struct stat	 st;
	char		*tpl;
	int		 tfd = -1, fd = -1, r = -1;

	if (mkdir(folder, 0700) == -1 && errno != EEXIST) {
		xasprintf(cause, "mkdir %s: %s", folder, strerror(errno));
		return (-1);
	}
	xasprintf(&tpl, "%s/ext4-%llu.img", folder, (unsigned long long)size);
	tfd = open(tpl, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (tfd != -1 && (fstat(tfd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size)) {
		log_warnx("%s: not a template of %llu bytes, made again", tpl,
		    (unsigned long long)size);
		close(tfd);
		tfd = -1;
		(void)unlink(tpl);
	}
	if (tfd == -1) {
		if (disk_make_fs(tpl, size, cause) == -1)
			goto out;
		if ((tfd = open(tpl, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) ==
		    -1) {
			xasprintf(cause, "%s: %s", tpl, strerror(errno));
			goto out;
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (ioctl(fd, FICLONE, tfd) == 0)
		r = 0;		/* the file system shares the blocks */
	else if (disk_copy_data(tfd, fd, (off_t)size) == 0 &&
	    fdatasync(fd) == 0)
		r = 0;
	else if (errno == EFBIG) {
		close(fd);
		fd = -1;
		(void)unlink(path);
		r = disk_make_fs(path, size, cause);
	} else {
		xasprintf(cause, "copy %s to %s: %s", tpl, path,
		    strerror(errno));
		(void)unlink(path);
	}
out:
	if (fd != -1)
		close(fd);
	if (tfd != -1)
		close(tfd);
	free(tpl);
	return (r);
}

/* Run argv (argv[0] one of paths); -1 with *cause unless it exits 0. */
static int
disk_tool(const char **paths, char **argv, int ok, char **cause)
{
	char	err[DISK_ERR_MAX];
	int	status;

	if ((argv[0] = (char *)disk_find(paths)) == NULL) {
		xasprintf(cause, "no %s in /usr/sbin or /sbin",
		    strrchr(paths[0], '/') + 1);
		return (-1);
	}
	status = disk_run(argv, err, sizeof err);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) > ok) {
		xasprintf(cause, "%s failed (status %d): %s", argv[0],
		    status, status == -1 ? strerror(errno) :
		    disk_first_line(err));
		return (-1);
	}
	return (0);
}

/*
 * Shrink the image path (not attached) to size bytes: check its file
 * system, shrink it, then the file. A file system that holds more than
 * size stays as it was. -1 with *cause.
 */
int
disk_shrink(const char *path, uint64_t size, char **cause)
{
	char	 kib[32];
	char	*fsck[] = { NULL, "-f", "-p", (char *)path, NULL };
	char	*resize[] = { NULL, (char *)path, kib, NULL };

	snprintf(kib, sizeof kib, "%lluK", (unsigned long long)size / 1024);
	/* e2fsck -p: 1 is "errors corrected", still a sound file system */
	if (disk_tool(disk_fsck_paths, fsck, 1, cause) == -1 ||
	    disk_tool(disk_resize_paths, resize, 0, cause) == -1)
		return (-1);
	if (truncate(path, (off_t)size) == -1) {
		xasprintf(cause, "truncate %s: %s", path, strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Is the image path still attached to a loop device (by a process of
 * the worker that is going away)? The device's name in *dev then.
 */
static int
disk_attached(const char *path, char *dev, size_t len)
{
	DIR		*d;
	struct dirent	*de;
	char		 file[PATH_MAX], back[PATH_MAX + 16];
	ssize_t		 n;
	int		 fd, found = 0;

	if ((d = opendir("/sys/block")) == NULL)
		return (0);
	while (!found && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		snprintf(file, sizeof file, "/sys/block/%s/loop/backing_file",
		    de->d_name);
		if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		n = read(fd, back, sizeof back - 1);
		close(fd);
		if (n <= 0)
			continue;
		back[n] = '\0';
		back[strcspn(back, "\n")] = '\0';
		if (strcmp(back, path) == 0 && strlen(de->d_name) + 6 <= len) {
			memcpy(dev, "/dev/", 5);
			memcpy(dev + 5, de->d_name, strlen(de->d_name) + 1);
			found = 1;
		}
	}
	closedir(d);
	return (found);
}

/* Bind the image fd to the loop device lfd, clearing itself when done. */
static int
disk_loop_set(int lfd, int fd)
{
	struct loop_info64	info;
#ifdef LOOP_CONFIGURE
	struct loop_config	cfg;

	memset(&cfg, 0, sizeof cfg);
	cfg.fd = (uint32_t)fd;
	cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
		return (0);
	if (errno != EINVAL && errno != ENOTTY)
		return (-1);
#endif
	if (ioctl(lfd, LOOP_SET_FD, fd) == -1)
		return (-1);
	memset(&info, 0, sizeof info);
	info.lo_flags = LO_FLAGS_AUTOCLEAR;
	if (ioctl(lfd, LOOP_SET_STATUS64, &info) == -1) {
		ioctl(lfd, LOOP_CLR_FD, 0);
		return (-1);
	}
	return (0);
}

/*
 * Attach the image path (an absolute real path) to a free loop device:
 * its descriptor, held while the disk is in use, and its name in *dev
 * (allocated). -1 with *cause.
 */
int
disk_attach(const char *path, char **dev, char **cause)
{
	char	name[64];
	int	ctl, fd, lfd = -1, n, tries;

	if (disk_attached(path, name, sizeof name)) {
		xasprintf(cause, "%s is still attached to %s", path, name);
		return (-1);
	}
	if ((fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if ((ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC)) == -1) {
		xasprintf(cause, "/dev/loop-control: %s", strerror(errno));
		close(fd);
		return (-1);
	}
	for (tries = 0; tries < DISK_LOOP_TRIES; tries++) {
		if ((n = ioctl(ctl, LOOP_CTL_GET_FREE)) == -1)
			break;
		snprintf(name, sizeof name, "/dev/loop%d", n);
		if ((lfd = open(name, O_RDWR | O_CLOEXEC)) == -1)
			break;
		if (disk_loop_set(lfd, fd) == 0)
			break;
		close(lfd);
		lfd = -1;
		if (errno != EBUSY)
			break;
	}
	if (lfd == -1)
		xasprintf(cause, "a loop device for %s: %s", path,
		    tries == DISK_LOOP_TRIES ? "all taken meanwhile" :
		    strerror(errno));
	else
		*dev = xstrdup(name);
	close(ctl);
	close(fd);
	return (lfd);
}

/*
 * Copy what the disk dev holds into the new folder to, in a child: a
 * mount namespace of its own, dev mounted on the empty folder mnt, cp
 * -a from there. The child's pid, to reap (0 status: copied), or -1
 * with *cause.
 */
pid_t
disk_copy_out(const char *dev, const char *mnt, const char *to,
    char **cause)
{
	const char	*cp = disk_find(disk_cp_paths);
	char		*from;
	char		*argv[] = { NULL, "-a", "--", NULL, NULL, NULL };
	static char *const envp[] = { "LC_ALL=C", NULL };
	pid_t		 pid;

	if (cp == NULL) {
		xasprintf(cause, "no cp in /usr/bin or /bin");
		return (-1);
	}
	if (mkdir(to, 0700) == -1) {
		xasprintf(cause, "mkdir %s: %s", to, strerror(errno));
		return (-1);
	}
	xasprintf(&from, "%s/.", mnt);
	argv[0] = (char *)cp;
	argv[3] = from;
	argv[4] = (char *)to;
	if ((pid = fork()) == 0) {
		/* Only system calls here: the worker has a second thread. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNS) == -1 || mount(NULL, "/", NULL,
		    MS_REC | MS_PRIVATE, NULL) == -1 || mount(dev, mnt,
		    "ext4", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == -1)
			_exit(126);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	if (pid == -1)
		xasprintf(cause, "fork: %s", strerror(errno));
	free(from);
	return (pid);
}

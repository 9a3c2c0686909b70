/*
 * worker-path.c: how the worker's file operations find what a path
 * names.
 *
 * Without --root a path is used as the system resolves it. With --root
 * DIR, a path must name DIR or something below it by name: its part
 * after DIR is taken apart lexically ("." dropped, ".." taking back the
 * component before it and never climbing above DIR), then opened beneath
 * the descriptor of DIR opened at start, so that no symlink, "..", or
 * rename racing with us leads out: openat2 with RESOLVE_BENEATH and
 * RESOLVE_NO_MAGICLINKS where the kernel has it (a symlink is followed
 * while it stays below DIR), else openat with O_NOFOLLOW one component
 * at a time (no symlink is followed at all). put's mkdir makes each
 * missing folder with mkdirat in its parent, itself opened beneath DIR.
 * Nothing here checks a path string and then uses the string again.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

static char	*root_given;	/* --root as given, no trailing slash */
static char	*root_real;	/* its realpath */
static int	 root_fd = -1;	/* opened at start */
static int	 use_openat2 = 1;

/*
 * Open the --root folder, if there is one, for every file operation to
 * resolve beneath. Set SANDD_NO_OPENAT2 to use the openat fallback (for
 * tests). -1 with *cause (allocated).
 */
int
path_init(char **cause)
{
	const char	*no = getenv("SANDD_NO_OPENAT2");
	size_t		 n;

	if (worker_opts.root == NULL)
		return (0);
	if (no != NULL && *no != '\0')
		use_openat2 = 0;
	if ((root_real = realpath(worker_opts.root, NULL)) == NULL ||
	    (root_fd = open(root_real, O_PATH | O_DIRECTORY | O_CLOEXEC)) ==
	    -1) {
		xasprintf(cause, "--root %s: %s", worker_opts.root,
		    strerror(errno));
		return (-1);
	}
	root_given = xstrdup(worker_opts.root);
	n = strlen(root_given);
	while (n > 1 && root_given[n - 1] == '/')
		root_given[--n] = '\0';
	return (0);
}

/* The --root folder as given, or NULL without one. */
const char *
path_root(void)
{
	return (root_given);
}

/* The real path of the --root folder (symlinks resolved), or NULL. */
const char *
path_root_real(void)
{
	return (root_real);
}

/* Does errno err of a path_* call mean the path leads outside the root? */
int
path_outside(int err)
{
	return (root_fd != -1 && (err == EXDEV || err == ELOOP));
}

/*
 * If path is prefix or below it, what follows prefix (no leading slash);
 * else NULL.
 */
static const char *
path_after(const char *path, const char *prefix)
{
	size_t	n = strlen(prefix);

	if (strcmp(prefix, "/") == 0)
		return (path + 1);
	if (strncmp(path, prefix, n) != 0)
		return (NULL);
	if (path[n] == '\0')
		return (path + n);
	if (path[n] == '/')
		return (path + n + 1);
	return (NULL);
}

/*
 * The absolute path below the root, relative to it with no ".", ".." or
 * empty component ("." for the root itself), allocated in *rel. -1 with
 * EXDEV when it is not below the root.
 */
static int
path_rel(const char *path, char **rel)
{
	const char	*rest;
	char		*copy, *c, *next, **v, *out;
	size_t		 k = 0, i, len = 0;
	int		 outside = 0;

	if ((rest = path_after(path, root_given)) == NULL &&
	    (rest = path_after(path, root_real)) == NULL) {
		errno = EXDEV;
		return (-1);
	}
	copy = xstrdup(rest);
	v = xcalloc(strlen(rest) / 2 + 2, sizeof *v);
	for (c = copy; c != NULL && !outside; c = next) {
		if ((next = strchr(c, '/')) != NULL)
			*next++ = '\0';
		if (*c == '\0' || strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") != 0)
			v[k++] = c;
		else if (k > 0)
			k--;
		else
			outside = 1;
	}
	out = NULL;
	if (!outside && k == 0)
		out = xstrdup(".");
	else if (!outside) {
		for (i = 0; i < k; i++)
			len += strlen(v[i]) + 1;
		out = xmalloc(len);
		for (i = 0, len = 0; i < k; i++) {
			memcpy(out + len, v[i], strlen(v[i]));
			len += strlen(v[i]);
			out[len++] = i + 1 < k ? '/' : '\0';
		}
	}
	free(v);
	free(copy);
	if (outside) {
		errno = EXDEV;
		return (-1);
	}
	*rel = out;
	return (0);
}

/*
 * openat of name in dirfd, following no symlink, failed: a symlink in
 * the way says ELOOP (leads outside), whatever openat said.
 */
static int
path_nofollow_errno(int dirfd, const char *name, int err)
{
	struct stat	st;

	if ((err == ENOTDIR || err == ELOOP) &&
	    fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return (ELOOP);
	return (err);
}

/*
 * Open rel (from path_rel) beneath the root. -1 with errno: EXDEV or
 * ELOOP where it would lead outside (see path_outside).
 */
static int
path_beneath(const char *rel, int flags, mode_t mode)
{
	char	*copy, *c, *slash;
	int	 fd, dirfd = root_fd, e;

	flags |= O_CLOEXEC;
	/* openat2 takes nothing else with O_PATH */
	if (!(flags & O_PATH))
		flags |= O_NOCTTY;
	if (use_openat2) {
		fd = compat_open_beneath(root_fd, rel, flags, mode);
		if (fd != -1 || errno != ENOSYS)
			return (fd);
		use_openat2 = 0;
		log_info("%s: no openat2: no symlink is followed under --root",
		    __func__);
	}
	copy = xstrdup(rel);
	for (c = copy; (slash = strchr(c, '/')) != NULL; c = slash + 1) {
		*slash = '\0';
		fd = openat(dirfd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		e = fd == -1 ? path_nofollow_errno(dirfd, c, errno) : 0;
		if (dirfd != root_fd)
			close(dirfd);
		if (fd == -1) {
			free(copy);
			errno = e;
			return (-1);
		}
		dirfd = fd;
	}
	fd = openat(dirfd, c, flags | O_NOFOLLOW, mode);
	e = fd == -1 ? path_nofollow_errno(dirfd, c, errno) : 0;
	if (dirfd != root_fd)
		close(dirfd);
	free(copy);
	errno = e;
	return (fd);
}

/*
 * Open path with flags (and mode for O_CREAT); with --root beneath the
 * root, following a last symlink only while it stays there. -1 with
 * errno.
 */
int
path_open(const char *path, int flags, mode_t mode)
{
	char	*rel;
	int	 fd, e;

	if (root_fd == -1)
		return (open(path, flags | O_CLOEXEC | O_NOCTTY, mode));
	if (path_rel(path, &rel) == -1)
		return (-1);
	fd = path_beneath(rel, flags, mode);
	e = errno;
	free(rel);
	errno = e;
	return (fd);
}

/*
 * Make the missing folders of dir (no root), each 0755 whatever the
 * umask. -1 with errno and the folder that failed in *failed.
 */
static int
path_mkdirs_plain(const char *dir, char **failed)
{
	char	*p = xstrdup(dir), *s, c;
	int	 e;

	for (s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if (mkdir(p, 0755) == 0) {
			if (chmod(p, 0755) == -1)
				goto fail;
		} else if (errno != EEXIST)
			goto fail;
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return (0);
fail:
	e = errno;
	*failed = p;
	errno = e;
	return (-1);
}

/*
 * Make the missing folders of rel below the root, each 0755 whatever
 * the umask: each with mkdirat in its parent, which was opened beneath
 * the root, so nothing is made outside it whatever is renamed meanwhile.
 * -1 with errno and the folder that failed (below the root) in *failed.
 */
static int
path_mkdirs_beneath(const char *rel, char **failed)
{
	char	*p = xstrdup(rel), *s, *name = p, c;
	int	 parent = root_fd, fd, e;

	for (s = p;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		fd = path_beneath(p, O_PATH | O_DIRECTORY, 0);
		if (fd == -1 && errno == ENOENT) {
			if (mkdirat(parent, name, 0755) == -1 &&
			    errno != EEXIST)
				goto fail;
			if ((fd = path_beneath(p, O_RDONLY | O_DIRECTORY,
			    0)) != -1 && fchmod(fd, 0755) == -1)
				goto fail;
		}
		if (fd == -1)
			goto fail;
		if (parent != root_fd)
			close(parent);
		parent = fd;
		*s = c;
		if (c == '\0')
			break;
		name = s + 1;
	}
	if (parent != root_fd)
		close(parent);
	free(p);
	return (0);
fail:
	e = errno;
	if (fd != -1)
		close(fd);
	if (parent != root_fd)
		close(parent);
	xasprintf(failed, "%s/%s", root_given, p);
	free(p);
	errno = e;
	return (-1);
}

/*
 * Open the folder that holds what path names (with flags, O_DIRECTORY
 * added), making missing folders first with mkdir; its name in that
 * folder goes in *base (allocated; "." for a path naming the root or
 * "/"). With --root both are worked out beneath the root. -1 with errno
 * (and, when making a folder failed, that folder in *failed).
 */
int
path_open_parent(const char *path, int flags, int mkdir, char **base,
    char **failed)
{
	const char	*slash;
	char		*dir, *rel = NULL;
	int		 fd = -1, e;

	*base = NULL;
	if (root_fd == -1) {
		slash = strrchr(path, '/');
		dir = slash == path ? xstrdup("/") :
		    xstrndup(path, (size_t)(slash - path));
		*base = xstrdup(slash[1] != '\0' ? slash + 1 : ".");
		if (!mkdir || path_mkdirs_plain(dir, failed) == 0)
			fd = open(dir, flags | O_DIRECTORY | O_CLOEXEC);
	} else {
		if (path_rel(path, &rel) == -1)
			return (-1);
		if ((slash = strrchr(rel, '/')) != NULL) {
			dir = xstrndup(rel, (size_t)(slash - rel));
			*base = xstrdup(slash + 1);
		} else {
			dir = xstrdup(".");
			*base = xstrdup(rel);
		}
		if (!mkdir || strcmp(dir, ".") == 0 ||
		    path_mkdirs_beneath(dir, failed) == 0)
			fd = path_beneath(dir, flags | O_DIRECTORY, 0);
	}
	e = errno;
	if (fd == -1) {
		free(*base);
		*base = NULL;
	}
	free(dir);
	free(rel);
	errno = e;
	return (fd);
}

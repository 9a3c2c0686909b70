/*
 * compat.c: the few calls that differ between Linux, macOS and FreeBSD.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#if defined(__linux__)
#include <sys/prctl.h>
#include <sys/syscall.h>
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif
#endif

#include <dirent.h>
#include <errno.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compat.h"

/*
 * Signals the C library keeps for itself (glibc: 32 and 33) cannot be
 * set through it, so one inherited ignored (GNU make's posix_spawn leaves
 * them so) would pass to every program started. Set them back to their
 * default with the system call itself; the library installs its own
 * handlers when it needs them.
 */
void
compat_reset_libc_signals(void)
{
#if defined(__linux__) && defined(SYS_rt_sigaction)
	unsigned long	ksa[4], old[4];	/* handler, flags, (restorer), mask */
	int		sig;

	for (sig = 32; sig < SIGRTMIN; sig++) {
		memset(old, 0, sizeof old);
		if (syscall(SYS_rt_sigaction, sig, NULL, old, 8) != 0 ||
		    old[0] != (unsigned long)SIG_IGN)
			continue;
		memset(ksa, 0, sizeof ksa);	/* SIG_DFL, no flags */
		(void)syscall(SYS_rt_sigaction, sig, ksa, NULL, 8);
	}
#endif
}

/* Return the uid of the process at the other end of a UNIX socket. */
int
compat_peer_uid(int fd, uid_t *uid)
{
	struct compat_peer	p;

	if (compat_peer_cred(fd, &p) != 0)
		return (-1);
	*uid = p.uid;
	return (0);
}

/*
 * The credentials of the process at the other end of a UNIX socket: uid,
 * gid and pid from SO_PEERCRED, the supplementary groups from
 * SO_PEERGROUPS (Linux 4.13) or else from the user database. Groups past
 * COMPAT_PEER_GROUPS are left out.
 */
int
compat_peer_cred(int fd, struct compat_peer *p)
{
	struct passwd	*pw;
	int		 n;
#if defined(SO_PEERCRED)
	struct ucred	 cr;
	socklen_t	 len = sizeof cr;

	memset(p, 0, sizeof *p);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == -1)
		return (-1);
	p->uid = cr.uid;
	p->gid = cr.gid;
	p->pid = cr.pid;
#if defined(SO_PEERGROUPS)
	len = sizeof p->groups;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &len) == 0) {
		p->ngroups = (int)(len / sizeof p->groups[0]);
		return (0);
	}
#endif
#else
	memset(p, 0, sizeof *p);
	if (getpeereid(fd, &p->uid, &p->gid) == -1)
		return (-1);
	p->pid = -1;
#endif
	/* No groups from the socket: the user database's. */
	n = COMPAT_PEER_GROUPS;
	if ((pw = getpwuid(p->uid)) != NULL &&
	    getgrouplist(pw->pw_name, p->gid, p->groups, &n) != -1)
		p->ngroups = n;
	else {
		p->groups[0] = p->gid;
		p->ngroups = 1;
	}
	return (0);
}

/* Ask the kernel to kill this (child) process when its parent dies. */
void
compat_set_pdeathsig(void)
{
#if defined(__linux__)
	prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
}

/* Close every descriptor from lowfd up, in a freshly forked child. */
void
compat_closefrom(int lowfd)
{
#if defined(__FreeBSD__)
	closefrom(lowfd);
#else
	long	maxfd, fd;

	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
#if defined(SYS_close_range)
	/* close_range(2) is one syscall where the kernel has it. */
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
		return;
#endif
	for (fd = lowfd; fd < maxfd; fd++)
		close((int)fd);
#endif
}

/* closefrom(lowfd), but keep fd open (it is close-on-exec). */
void
compat_closefrom_except(int lowfd, int keep)
{
	long	maxfd, fd;

	if (keep < lowfd) {
		compat_closefrom(lowfd);
		return;
	}
#if defined(SYS_close_range)
	/*
	 * Two calls, not one close per descriptor below keep: a command's
	 * vfork child closed the worker's ~17 descriptors one at a time
	 * while the worker waited (more with more channels open).
	 */
	if ((keep == lowfd || syscall(SYS_close_range, (unsigned)lowfd,
	    (unsigned)keep - 1, 0) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0) == 0)
		return;
#endif
	for (fd = lowfd; fd < keep; fd++)
		close((int)fd);
	maxfd = sysconf(_SC_OPEN_MAX);
	if (maxfd < 0 || maxfd > 65536)
		maxfd = 65536;
	for (fd = keep + 1; fd < maxfd; fd++)
		close((int)fd);
}

/* pipe(2) with both ends close-on-exec. */
int
compat_pipe_cloexec(int fds[2])
{
#if defined(__linux__) || defined(__FreeBSD__)
	return (pipe2(fds, O_CLOEXEC));
#else
	if (pipe(fds) == -1)
		return (-1);
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	return (0);
#endif
}

/*
 * openat(dirfd, path, flags, mode) resolving path beneath dirfd only: no
 * "..", absolute path or symlink leads above it, and no magic link
 * (/proc/PID/fd/N) is followed. -1 with ENOSYS where the kernel or the
 * platform has no openat2.
 */
int
compat_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
#if defined(__linux__) && defined(SYS_openat2) && defined(RESOLVE_BENEATH)
	struct open_how	how;

	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)flags;
	if (flags & O_CREAT)
		how.mode = mode;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	return ((int)syscall(SYS_openat2, dirfd, path, &how, sizeof how));
#else
	(void)dirfd;
	(void)path;
	(void)flags;
	(void)mode;
	errno = ENOSYS;
	return (-1);
#endif
}

/* Wipe a secret so that the compiler cannot drop the store. */
void
compat_explicit_bzero(void *p, size_t len)
{
#if defined(__APPLE__)
	memset_s(p, len, 0, len);
#else
	explicit_bzero(p, len);
#endif
}

/*
 * Keep freed memory of the size of wire chunks in the heap. By default
 * glibc gives such blocks back to the kernel (mmap threshold, heap
 * trimming), so every chunk that passes through costs fresh page faults:
 * measured at ~1.4 million faults per 4 GiB moved, the largest single
 * cost of a transfer in a VM. Peak memory does not change, only whether
 * the same pages are reused. The trim threshold is past what a get
 * frees at once on the controller (its 4 MiB window, the client's
 * backlog, libevent's chains rounded up to powers of two): at 8 MiB
 * serve still took 56,000-63,000 faults per GiB of a get (~0.7 s of
 * CPU at ~12 us a fault here), at 16 MiB none after the first round.
 */
void
compat_tune_malloc(void)
{
#if defined(__GLIBC__)
	mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
#endif
}

/*
 * Give the kernel back the free pages of the heap, wherever they lie
 * (glibc only; elsewhere nothing).
 */
void
compat_malloc_trim(void)
{
#if defined(__GLIBC__)
	malloc_trim(0);
#endif
}

/* Name the calling thread, as ps and /proc show it (Linux only). */
void
compat_thread_name(const char *name)
{
#if defined(__linux__)
	pthread_setname_np(pthread_self(), name);
#else
	(void)name;
#endif
}

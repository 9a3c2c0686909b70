/*
 * compat.h: the platform differences sandd cares about, in one place.
 * Linux is the first platform; macOS and FreeBSD keep building.
 */
#ifndef COMPAT_H
#define COMPAT_H

#include <sys/types.h>

#include <fcntl.h>

#if defined(__linux__)
#include <pty.h>
#elif defined(__APPLE__)
#include <util.h>
#else
#include <libutil.h>
#endif

#include <sys/queue.h>

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)			\
	for ((var) = TAILQ_FIRST(head);					\
	    (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);	\
	    (var) = (tvar))
#endif

#ifndef O_PATH
#define O_PATH	0	/* opened for reading instead */
#endif

/* <linux/fs.h> has it, and a LINK_MAX of its own. */
#ifndef FICLONE
#define FICLONE	_IOW(0x94, 9, int)
#endif

#ifndef __dead
#define __dead __attribute__((__noreturn__))
#endif
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif

/* The process at the other end of a UNIX socket. */
#define COMPAT_PEER_GROUPS	64
struct compat_peer {
	uid_t	 uid;
	gid_t	 gid;
	pid_t	 pid;
	int	 ngroups;
	gid_t	 groups[COMPAT_PEER_GROUPS];
};

/* compat.c */
int	 compat_peer_uid(int, uid_t *);
int	 compat_peer_cred(int, struct compat_peer *);
void	 compat_set_pdeathsig(void);
void	 compat_closefrom(int);
void	 compat_closefrom_except(int, int);
void	 compat_reset_libc_signals(void);
int	 compat_pipe_cloexec(int [2]);
void	 compat_tune_malloc(void);
void	 compat_malloc_trim(void);
void	 compat_thread_name(const char *);
void	 compat_explicit_bzero(void *, size_t);
int	 compat_open_beneath(int, const char *, int, mode_t);

#endif

/*
 * seccomp.c: the system call filter of what runs in a workspace, built
 * once with libseccomp and kept as BPF, so that a child after fork only
 * makes the two prctl calls that load it.
 *
 * An allowlist modelled on Docker's default profile for a container
 * without added capabilities: what is not listed fails with EPERM; clone3
 * fails with ENOSYS (the C library then falls back to clone, whose flags
 * can be checked); clone may not make namespaces. Left out, as Docker
 * leaves them out: mount and its kin, namespaces (unshare, setns), module
 * loading, kexec, reboot, swap, the kernel keyring, bpf, perf, handles
 * (open_by_handle_at), userfaultfd, clock and time setting, quotas,
 * personality other than the usual values, uselib, pidfd_getfd (another
 * process's descriptors) and socket(AF_VSOCK): vsock is not in the
 * network namespace, so it would reach the host or its hypervisor from
 * a workspace with network "none".
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

static const char *seccomp_allowed[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk",
	"capget", "capset", "chdir", "chmod", "chown", "chown32",
	"clock_adjtime", "clock_getres", "clock_getres_time64",
	"clock_gettime", "clock_gettime64", "clock_nanosleep",
	"clock_nanosleep_time64", "close", "close_range", "connect",
	"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
	"epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
	"eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
	"faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2",
	"fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
	"fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
	"fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
	"futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
	"futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
	"getdents64", "getegid", "getegid32", "geteuid", "geteuid32",
	"getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
	"getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresgid32",
	"getresuid", "getresuid32", "getrlimit", "get_robust_list",
	"getrusage", "getsid", "getsockname", "getsockopt",
	"get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32",
	"getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
	"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
	"io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get",
	"ioprio_set", "io_setup", "io_submit", "ipc", "kill",
	"landlock_add_rule",
	"landlock_create_ruleset", "landlock_restrict_self", "lchown",
	"lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
	"llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr",
	"lstat", "lstat64", "madvise", "membarrier", "memfd_create",
	"memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat",
	"mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
	"mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
	"mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd",
	"msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
	"nanosleep", "newfstatat", "_newselect", "open", "openat",
	"openat2", "pause", "pidfd_open", "pidfd_send_signal",
	"pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
	"ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
	"prlimit64", "process_mrelease", "pselect6", "pselect6_time64",
	"ptrace", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
	"readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
	"recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
	"rename", "renameat", "renameat2", "restart_syscall", "rmdir",
	"rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
	"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam",
	"sched_get_priority_max", "sched_get_priority_min",
	"sched_getscheduler", "sched_rr_get_interval",
	"sched_rr_get_interval_time64", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler",
	"sched_yield", "seccomp", "select", "semctl", "semget", "semop",
	"semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64",
	"sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
	"setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
	"setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
	"setregid32", "setresgid", "setresgid32", "setresuid",
	"setresuid32", "setreuid", "setreuid32", "setrlimit",
	"set_robust_list", "setsid", "setsockopt", "set_thread_area",
	"set_tid_address", "setuid", "setuid32", "setxattr", "shmat",
	"shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
	"signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
	"splice", "stat", "stat64", "statfs", "statfs64", "statx",
	"symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
	"sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
	"timer_getoverrun", "timer_gettime", "timer_gettime64",
	"timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
	"timerfd_settime64", "times", "tkill", "truncate", "truncate64",
	"ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime",
	"utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
	"wait4", "waitid", "waitpid", "write", "writev", "arch_prctl",
	"modify_ldt", NULL
};

/* socket(2) families refused (Docker's): not bound by a netns. */
#ifndef AF_VSOCK
#define AF_VSOCK	40
#endif

/* Namespaces clone may not make (Docker's mask). */
#define SECCOMP_NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC |	\
	CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

static struct sock_fprog	seccomp_prog;

/* Add the rules to ctx; -1 with *cause. */
static int
seccomp_rules(scmp_filter_ctx ctx, char **cause)
{
	const char	**name;
	int		  nr, r;

	for (name = seccomp_allowed; *name != NULL; name++) {
		nr = seccomp_syscall_resolve_name(*name);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;	/* not on this architecture */
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) != 0) {
			xasprintf(cause, "seccomp rule %s: %s", *name,
			    strerror(-r));
			return (-1);
		}
	}
	/* clone: a thread or a process, never a namespace. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
#if defined(__s390__) || defined(__s390x__)
	    SCMP_A1(SCMP_CMP_MASKED_EQ, SECCOMP_NS_FLAGS, 0));
#else
	    SCMP_A0(SCMP_CMP_MASKED_EQ, SECCOMP_NS_FLAGS, 0));
#endif
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
		    SCMP_SYS(clone3), 0);
	/* socket: any family but vsock. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		    SCMP_A0(SCMP_CMP_NE, AF_VSOCK, 0));
	/* personality: the usual values only (Docker's). */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ, 0x0, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ, 0x8, 0));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
		    SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ,
		    0xffffffff, 0));
	if (r != 0) {
		xasprintf(cause, "seccomp rules: %s", strerror(-r));
		return (-1);
	}
	return (0);
}

/* Export ctx as BPF into seccomp_prog; -1 with *cause. */
static int
seccomp_export(scmp_filter_ctx ctx, char **cause)
{
	off_t	 len;
	void	*buf;
	int	 fd, r;

	if ((fd = memfd_create("sandd-seccomp", MFD_CLOEXEC)) == -1) {
		xasprintf(cause, "memfd_create: %s", strerror(errno));
		return (-1);
	}
	if ((r = seccomp_export_bpf(ctx, fd)) != 0 ||
	    (len = lseek(fd, 0, SEEK_END)) <= 0 ||
	    len % (off_t)sizeof(struct sock_filter) != 0) {
		xasprintf(cause, "seccomp_export_bpf: %s", r != 0 ?
		    strerror(-r) : "no program");
		close(fd);
		return (-1);
	}
	buf = xmalloc((size_t)len);
	if (pread(fd, buf, (size_t)len, 0) != (ssize_t)len) {
		xasprintf(cause, "read back the filter: %s", strerror(errno));
		free(buf);
		close(fd);
		return (-1);
	}
	close(fd);
	seccomp_prog.len = (unsigned short)(len / sizeof(struct sock_filter));
	seccomp_prog.filter = buf;
	return (0);
}

/* Build the filter once; -1 with *cause (workspaces cannot start then). */
int
seccomp_init_filter(char **cause)
{
	scmp_filter_ctx	ctx;
	int		r;

	if (seccomp_prog.filter != NULL)
		return (0);
	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL) {
		xasprintf(cause, "seccomp_init failed");
		return (-1);
	}
	r = seccomp_rules(ctx, cause);
	if (r == 0)
		r = seccomp_export(ctx, cause);
	seccomp_release(ctx);
	return (r);
}

/*
 * In a child after fork, the last thing before exec: no new privileges,
 * then the filter. Only system calls. -1 with errno.
 */
int
seccomp_apply(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return (-1);
	if (seccomp_prog.filter == NULL) {
		errno = ENOSYS;
		return (-1);
	}
	return (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &seccomp_prog));
}

/* Free the filter (for leak checkers). */
void
seccomp_free_filter(void)
{
	free(seccomp_prog.filter);
	seccomp_prog.filter = NULL;
}

/*
 * ns-spawn.c: starting a command or a session's program inside a
 * workspace (see ns.c for the namespaces and the init).
 *
 * The worker starts a helper that joins the job's v1 pids groups (so
 * that what it starts counts), raises its own oom_score_adj (a
 * workspace's processes go before the worker when the host runs out of
 * memory) and joins the init's namespaces through its pidfd; it starts
 * the command with CLONE_PARENT, so that the command is a child of the
 * worker inside the workspace's PID namespace, sends its pid (and the
 * terminal's master) and exits. None of this waits on anything of the
 * workspace, and the helper is in none of its memory or CPU groups: the
 * worker's short wait for it does not depend on how busy or full the
 * workspace is.
 *
 * A command on pipes (ns_spawn_vchild): the helper is vforked, so it
 * copies nothing of the worker. Sharing memory, it may not enter a user
 * namespace: it joins the others and forks the command, which makes
 * itself not dumpable (its memory is a copy of the worker's) and joins
 * the user namespace itself.
 *
 * A session (ns_spawn_child): the helper is forked, becomes not
 * dumpable, joins every namespace at once and opens the terminal there,
 * from the workspace's own devpts, as the workspace's root (so no path
 * on the host is involved); the command shares the helper's memory
 * until its exec, on a stack of its own, as posix_spawn does.
 *
 * The command joins the rest of its groups first thing, then takes its
 * terminal or its pipes, its ids inside, a parent death signal, its
 * rlimits and folder, no new privileges and the seccomp filter, finds
 * its program on PATH as the workspace sees it and execs. All of that
 * runs at the workspace's speed, so the worker does not wait for it: a
 * failure there is said on its stderr (or terminal), and as errno and
 * text on a pipe whose other end the worker keeps (closed by the exec
 * when it succeeds); the command exits 127. Once it is reaped the worker
 * reads that pipe (ns_spawn_failed) and answers exec_failed, as for a
 * start on the host.
 */
#include <sys/types.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "sandd.h"

#define NS_SPAWN_WAIT	10000	/* ms for the helper to report */
#define NS_OOM_ADJ	"500"	/* workspace processes: killed first */
#define NS_CMD_STACK	(256 * 1024)	/* the command's until its exec */

/* What the helper reports on its socket (with a master, for a session). */
struct ns_spawn_note {
	int	kind;
#define NSS_PID		1	/* val: the command's pid */
#define NSS_ERR		2	/* val: errno at stage (ns_child_fail) */
	int	stage;
	int	val;
};

enum {
	NSS_ST_CGROUP = 1,
	NSS_ST_SETNS,
	NSS_ST_PTY,
	NSS_ST_CLONE,
};

/* What the command needs, worked out before the fork. */
struct ns_cmd {
	struct spawn_req *sr;
	int		  slave;	/* session: the terminal, else -1 */
	const char	 *cwd;
	const char	 *path;		/* PATH as the command sees it */
	uid_t		  uid;		/* ids inside */
	gid_t		  gid;
	int		  pty;		/* a session: open a terminal */
	int		  master;	/* helper: its master */
	int		  note;		/* helper: the report socket */
	int		  fail;		/* command: its failure's pipe */
	int		  userns;	/* command: joins this init's user ns */
};

/* Exec prog, searching path when it has no slash (as execvp). */
static void
ns_spawn_execvp(const char *prog, char **argv, char **envp, const char *path)
{
	char		 buf[4096];
	const char	*p, *colon;
	size_t		 len, plen = strlen(prog);
	int		 seen_eacces = 0;

	if (strchr(prog, '/') != NULL) {
		execve(prog, argv, envp);
		return;
	}
	for (p = path; ; p = colon + 1) {
		colon = strchr(p, ':');
		len = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (len == 0) {
			buf[0] = '.';
			len = 1;
		} else if (len + plen + 2 <= sizeof buf)
			memcpy(buf, p, len);
		else
			len = 0;
		if (len != 0 && len + plen + 2 <= sizeof buf) {
			buf[len] = '/';
			memcpy(buf + len + 1, prog, plen + 1);
			execve(buf, argv, envp);
			if (errno == EACCES)
				seen_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR)
				return;
		}
		if (colon == NULL)
			break;
	}
	errno = seen_eacces ? EACCES : ENOENT;
}

/* The command's failure pipe (ns_spawn_command sets it first thing). */
static int	ns_spawn_fail_fd = -1;

/*
 * A step of the command failed: say so on fd (its stderr, or what
 * becomes it), what, arg and the errno's text; write the errno and the
 * same text (without "sandd: " and the newline) on the failure pipe in
 * one write; exit 127. System calls only: strerrordesc_np takes no lock
 * and translates nothing.
 */
static __dead void
ns_spawn_die(int fd, const char *what, const char *arg, int e)
{
	const char	*s[6] = { "sandd: ", what, arg, ": ", NULL, "\n" };
	struct iovec	 iov[7];
	int		 i, n = 1;

	if ((s[4] = strerrordesc_np(e)) == NULL)
		s[4] = "error";
	iov[0].iov_base = &e;
	iov[0].iov_len = sizeof e;
	for (i = 1; i < 5; i++) {
		if (s[i] == NULL)
			continue;
		iov[n].iov_base = (void *)s[i];
		iov[n++].iov_len = strlen(s[i]);
	}
	if (ns_spawn_fail_fd != -1)
		(void)!writev(ns_spawn_fail_fd, iov, n);
	iov[0].iov_base = (void *)s[0];
	iov[0].iov_len = strlen(s[0]);
	iov[n].iov_base = (void *)s[5];
	iov[n++].iov_len = strlen(s[5]);
	(void)!writev(fd, iov, n);
	_exit(127);
}

/* The command, cloned inside the namespaces: set up and exec. */
static __dead void
ns_spawn_command(struct ns_cmd *c)
{
	struct spawn_req	*sr = c->sr;
	struct rlimit		 rl;
	sigset_t		 set;
	const char		*prog;
	int			 i, efd;

	ns_spawn_fail_fd = c->fail;
	efd = c->slave != -1 ? c->slave : sr->fd_err;
	if (c->userns != -1) {
		/* Its own memory now (a copy of the worker's): hide it. */
		prctl(PR_SET_DUMPABLE, 0);
		if (setns(c->userns, CLONE_NEWUSER) == -1)
			ns_spawn_die(efd, "joining the workspace's user "
			    "namespace", NULL, errno);
	}
	/* Its memory and CPU groups, before anything else runs. */
	if (cgroup_join_self(&sr->cg_join) == -1)
		ns_spawn_die(efd, "joining the workspace's cgroups", NULL,
		    errno);
	spawn_reset_signals();
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	if (c->slave != -1) {
		if (setsid() == -1 || ioctl(c->slave, TIOCSCTTY, 0) == -1 ||
		    dup2(c->slave, 0) == -1 || dup2(c->slave, 1) == -1 ||
		    dup2(c->slave, 2) == -1)
			ns_spawn_die(efd, "its terminal", NULL, errno);
	} else if (setpgid(0, 0) == -1 || dup2(sr->fd_in, 0) == -1 ||
	    dup2(sr->fd_out, 1) == -1 || dup2(sr->fd_err, 2) == -1)
		ns_spawn_die(efd, "its standard descriptors", NULL, errno);
	compat_closefrom_except(3, c->fail);
	/* Raw: glibc would signal threads this copy does not have. */
	if (syscall(SYS_setgroups, (size_t)sr->ngroups, sr->groups) == -1 ||
	    syscall(SYS_setresgid, c->gid, c->gid, c->gid) == -1 ||
	    syscall(SYS_setresuid, c->uid, c->uid, c->uid) == -1)
		ns_spawn_die(2, "its user and groups", NULL, errno);
	/* After the ids: changing them clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < sr->nlimits; i++) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sr->limit_val[i];
		if (setrlimit(sr->limit_res[i], &rl) == -1)
			ns_spawn_die(2, "its limits", NULL, errno);
	}
	if (chdir(c->cwd) == -1)
		ns_spawn_die(2, "cwd ", c->cwd, errno);
	if (seccomp_apply() == -1)
		ns_spawn_die(2, "its system call filter", NULL, errno);
	prog = sr->path != NULL ? sr->path : sr->argv[0];
	ns_spawn_execvp(prog, sr->argv, sr->envp, c->path);
	if (errno == ENOENT && strchr(prog, '/') == NULL)
		ns_spawn_die(2, prog, " in PATH", errno);
	ns_spawn_die(2, prog, NULL, errno);
}

/*
 * In the helper, inside: a terminal from the workspace's devpts, opened
 * as the workspace's root (whose its slave is then), in c->master and
 * c->slave. -1 with errno.
 */
static int
ns_spawn_child_pty(struct ns_cmd *c)
{
	struct winsize	ws;
	struct stat	st;
	int		unlock = 0;

	setfsuid(0);
	setfsgid(0);
	c->master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK |
	    O_CLOEXEC);
	if (c->master == -1)
		return (-1);
	/* The workspace may not swap it: it must be a devpts ptmx. */
	if (fstat(c->master, &st) == -1 || !S_ISCHR(st.st_mode) ||
	    major(st.st_rdev) != 5 || minor(st.st_rdev) != 2) {
		errno = ENOTTY;
		return (-1);
	}
	memset(&ws, 0, sizeof ws);
	ws.ws_row = (unsigned short)c->sr->rows;
	ws.ws_col = (unsigned short)c->sr->cols;
	if (ioctl(c->master, TIOCSPTLCK, &unlock) == -1 ||
	    ioctl(c->master, TIOCSWINSZ, &ws) == -1 ||
	    (c->slave = ioctl(c->master, TIOCGPTPEER, O_RDWR | O_NOCTTY |
	    O_CLOEXEC)) == -1)
		return (-1);
	return (0);
}

/* Send the command's pid (and the master, if any) to the worker. */
static void
ns_spawn_child_send(struct ns_cmd *c, pid_t pid)
{
	struct ns_spawn_note	 n;

	memset(&n, 0, sizeof n);
	n.kind = NSS_PID;
	n.val = (int)pid;
	ns_send_fd(c->note, &n, sizeof n, c->master);
}

/*
 * A helper's first steps: the job's pids groups, so that what it starts
 * counts, and its oom_score_adj, which what it starts inherits (a vfork
 * child's is its own: the worker's does not change, see proc(5)).
 */
static void
ns_spawn_helper_start(struct ns_cmd *c)
{
	int	fd;

	if (cgroup_join_fork(&c->sr->cg_join) == -1)
		ns_child_fail(c->note, NSS_ST_CGROUP);
	if ((fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) !=
	    -1) {
		(void)!write(fd, NS_OOM_ADJ, strlen(NS_OOM_ADJ));
		close(fd);
	}
}

/* The command's start in its clone (ns_spawn_child). */
static int
ns_spawn_command_fn(void *arg)
{
	ns_spawn_command(arg);
}

/* The forked helper: pids groups, namespaces, terminal, the command. */
static __dead void
ns_spawn_child(struct ns_cmd *c, struct ns_init *ni)
{
	void	*stack;
	int	 flags;
	pid_t	 pid;

	ns_spawn_helper_start(c);
	prctl(PR_SET_DUMPABLE, 0);
	flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
	    CLONE_NEWUTS;
	if (!ni->host_network)
		flags |= CLONE_NEWNET;
	if (setns(ni->pidfd, flags) == -1)
		ns_child_fail(c->note, NSS_ST_SETNS);
	if (c->pty && ns_spawn_child_pty(c) == -1)
		ns_child_fail(c->note, NSS_ST_PTY);
	/*
	 * The command shares the helper's memory (a copy of the worker's)
	 * on a stack of its own, as posix_spawn does: one copy of the
	 * worker's page tables per command, not two. The helper touches
	 * nothing the command reads once it runs, and exits.
	 */
	stack = mmap(NULL, NS_CMD_STACK, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		ns_child_fail(c->note, NSS_ST_CLONE);
	pid = clone(ns_spawn_command_fn, (char *)stack + NS_CMD_STACK,
	    CLONE_VM | CLONE_PARENT | SIGCHLD, c);
	if (pid == -1)
		ns_child_fail(c->note, NSS_ST_CLONE);
	ns_spawn_child_send(c, pid);
	_exit(0);
}

/*
 * The helper of a command without a terminal, vforked: it shares the
 * worker's memory (so nothing is copied for it) while the worker waits,
 * which is only as long as the steps below take at the host's speed.
 * It joins the pids group and every namespace but the user one (a
 * process sharing memory may not enter a user namespace), then forks
 * the command (one copy of the worker's page tables), which joins the
 * user namespace itself, and reports its pid. Signals stay blocked: the
 * worker's handlers must not run on its memory here.
 */
static __dead void
ns_spawn_vchild(struct ns_cmd *c, struct ns_init *ni)
{
	int	flags;
	pid_t	pid;

	ns_spawn_helper_start(c);
	flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
	if (!ni->host_network)
		flags |= CLONE_NEWNET;
	if (setns(ni->pidfd, flags) == -1)
		ns_child_fail(c->note, NSS_ST_SETNS);
	c->userns = ni->pidfd;
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL,
	    NULL, 0);
	if (pid == -1)
		ns_child_fail(c->note, NSS_ST_CLONE);
	if (pid == 0)
		ns_spawn_command(c);
	ns_spawn_child_send(c, pid);
	_exit(0);
}

/* vfork the helper (ns_spawn_vchild), signals blocked meanwhile. */
static pid_t
ns_spawn_vfork(struct ns_cmd *c, struct ns_init *ni)
{
	sigset_t	all, old;
	pid_t		child;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	if ((child = vfork()) == 0)
		ns_spawn_vchild(c, ni);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return (child);
}

/* The message for a failure of the helper at stage with errno e. */
static void
ns_spawn_cause(int stage, int e, char **cause)
{
	switch (stage) {
	case NSS_ST_CGROUP:
		xasprintf(cause, "joining the workspace's pids group: %s",
		    strerror(e));
		break;
	case NSS_ST_PTY:
		xasprintf(cause, "a terminal in the workspace: %s",
		    strerror(e));
		break;
	default:
		xasprintf(cause, "joining the workspace (stage %d): %s", stage,
		    strerror(e));
		break;
	}
}

/*
 * Wait for the helper's report: the command's pid (and a master, in
 * *master) or its failure. Reaps the helper, which exits right after.
 */
static pid_t
ns_spawn_wait(int sock, pid_t child, int *master, int *err, char **cause)
{
	struct ns_spawn_note	 n;
	struct pollfd		 pfd = { sock, POLLIN, 0 };
	pid_t			 pid = -1;
	ssize_t			 r = -1;
	int			 fd = -1, ready;

	/* A SIGCHLD (of the command, say) must not end the wait. */
	while ((ready = poll(&pfd, 1, NS_SPAWN_WAIT)) == -1 && errno == EINTR)
		;
	if (ready == 1) {
		do
			r = ns_recv_fd(sock, &n, sizeof n, 0, &fd);
		while (r == -1 && errno == EINTR);
	}
	if (r == (ssize_t)sizeof n && n.kind == NSS_PID && n.val > 0 &&
	    (master == NULL || fd != -1)) {
		pid = (pid_t)n.val;
		if (master != NULL)
			*master = fd;
		fd = -1;
	} else if (r == (ssize_t)sizeof n && n.kind == NSS_ERR) {
		*err = n.val;
		ns_spawn_cause(n.stage, n.val, cause);
	} else {
		kill(child, SIGKILL);
		*err = EIO;
		xasprintf(cause, "joining the workspace: no answer");
	}
	if (fd != -1)
		close(fd);
	waitpid(child, NULL, 0);
	return (pid);
}

/* The value of PATH in envp, or the default. */
static const char *
ns_spawn_path(char **envp)
{
	char	**p;

	for (p = envp; *p != NULL; p++)
		if (strncmp(*p, "PATH=", 5) == 0)
			return (*p + 5);
	return ("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:"
	    "/bin");
}

/*
 * Start sr's program inside the workspace of ni: on pipes (sr's fds), or
 * with master non-NULL on a new terminal of the workspace (its master in
 * *master). sr->cg_join says the groups it joins. Returns the command's
 * pid, or -1 with *err and *cause.
 */
pid_t
ns_spawn(struct spawn_req *sr, struct ns_init *ni, int *master, int *err,
    char **cause)
{
	struct ns_cmd	 c;
	int		 sp[2], fail[2];
	pid_t		 child, pid = -1;

	memset(&c, 0, sizeof c);
	c.sr = sr;
	c.slave = c.master = -1;
	c.pty = master != NULL;
	c.cwd = sr->cwd != NULL ? sr->cwd : "/workspace";
	c.path = ns_spawn_path(sr->envp);
	*err = 0;
	if (spawn_plan(sr, err) == -1) {
		xasprintf(cause, "user %s: no such user", sr->user);
		goto out;
	}
	if (sr->user != NULL && (sr->uid >= ni->count || sr->gid >=
	    ni->count)) {
		*err = EINVAL;
		xasprintf(cause, "user %s: uid %lu is not mapped in the "
		    "workspace", sr->user, (unsigned long)sr->uid);
		goto out;
	}
	c.uid = sr->user != NULL ? sr->uid : 0;
	c.gid = sr->user != NULL ? sr->gid : 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		fatal("%s: socketpair", __func__);
	if (pipe2(fail, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("%s: pipe2", __func__);
	c.note = sp[1];
	c.fail = fail[1];
	c.userns = -1;
	if (c.pty) {
		/* The terminal is opened as the workspace's root: a fork. */
		if ((child = fork()) == 0) {
			close(sp[0]);
			close(fail[0]);
			ns_spawn_child(&c, ni);
		}
	} else
		child = ns_spawn_vfork(&c, ni);
	close(sp[1]);
	close(fail[1]);
	if (child == -1) {
		*err = errno;
		xasprintf(cause, "fork: %s", strerror(*err));
	} else
		pid = ns_spawn_wait(sp[0], child, master, err, cause);
	close(sp[0]);
	if (pid != -1)
		sr->fail_fd = fail[0];
	else
		close(fail[0]);
out:
	spawn_plan_free(sr);
	return (pid);
}

/*
 * Read what a command that was reaped said on its failure pipe fd (see
 * ns_spawn_die): 1 with *err and *cause (allocated) if it failed before
 * its program ran, 0 if its exec took the pipe's end away unwritten.
 */
int
ns_spawn_failed(int fd, int *err, char **cause)
{
	char	buf[sizeof(int) + 1024];
	ssize_t	n;

	n = read(fd, buf, sizeof buf - 1);
	if (n < (ssize_t)sizeof(int))
		return (0);
	memcpy(err, buf, sizeof(int));
	buf[n] = '\0';
	*cause = xstrdup(buf + sizeof(int));
	return (1);
}

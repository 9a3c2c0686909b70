/*
 * ns-spawn.c: starting a command or a session's program inside a
 * workspace (see ns.c for the namespaces and the init).
 *
 * The worker forks; the child joins the job's groups, raises its own
 * oom_score_adj (a workspace's processes go before the worker when the
 * host runs out of memory), becomes not dumpable (until exec nothing
 * inside may trace it: it is a copy of the worker) and joins the init's
 * namespaces through its pidfd, all at once. It then clones the command
 * with CLONE_PARENT, so that the command is a child of the worker inside
 * the workspace's PID namespace, says its pid and exits. The command
 * takes its terminal or its pipes, its ids inside, a parent death
 * signal, its rlimits and folder, no new privileges and the seccomp
 * filter, finds its program on PATH as the workspace sees it and execs.
 *
 * A session's terminal comes from the workspace's own devpts: the init
 * opens /dev/pts/ptmx, the worker keeps the master and gives the command
 * the peer (TIOCGPTPEER), so no path on the host is involved.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

#define NS_SPAWN_WAIT	10000	/* ms for the child to report */
#define NS_OOM_ADJ	"500"	/* workspace processes: killed first */

/* What a child reports on its pipe. */
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
	NSS_ST_CLONE,
	NSS_ST_TTY,
	NSS_ST_IDS,
	NSS_ST_LIMITS,
	NSS_ST_CWD,
	NSS_ST_FILTER,
	NSS_ST_EXEC,
};

/* What the command needs, worked out before the fork. */
struct ns_cmd {
	struct spawn_req *sr;
	int		  slave;	/* session: the terminal, else -1 */
	const char	 *cwd;
	const char	 *path;		/* PATH as the command sees it */
	uid_t		  uid;		/* ids inside */
	gid_t		  gid;
	int		  note;		/* the report pipe */
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

/* The command, cloned inside the namespaces: set up and exec. */
static __dead void
ns_spawn_command(struct ns_cmd *c)
{
	struct spawn_req	*sr = c->sr;
	struct rlimit		 rl;
	sigset_t		 set;
	int			 i, sig;

	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	if (c->slave != -1) {
		if (setsid() == -1 || ioctl(c->slave, TIOCSCTTY, 0) == -1 ||
		    dup2(c->slave, 0) == -1 || dup2(c->slave, 1) == -1 ||
		    dup2(c->slave, 2) == -1)
			ns_child_fail(c->note, NSS_ST_TTY);
	} else if (setpgid(0, 0) == -1 || dup2(sr->fd_in, 0) == -1 ||
	    dup2(sr->fd_out, 1) == -1 || dup2(sr->fd_err, 2) == -1)
		ns_child_fail(c->note, NSS_ST_TTY);
	compat_closefrom_except(3, c->note);
	if (setgroups((size_t)sr->ngroups, sr->groups) == -1 ||
	    setresgid(c->gid, c->gid, c->gid) == -1 ||
	    setresuid(c->uid, c->uid, c->uid) == -1)
		ns_child_fail(c->note, NSS_ST_IDS);
	/* After the ids: changing them clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < sr->nlimits; i++) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sr->limit_val[i];
		if (setrlimit(sr->limit_res[i], &rl) == -1)
			ns_child_fail(c->note, NSS_ST_LIMITS);
	}
	if (chdir(c->cwd) == -1)
		ns_child_fail(c->note, NSS_ST_CWD);
	if (seccomp_apply() == -1)
		ns_child_fail(c->note, NSS_ST_FILTER);
	ns_spawn_execvp(sr->path != NULL ? sr->path : sr->argv[0], sr->argv,
	    sr->envp, c->path);
	ns_child_fail(c->note, NSS_ST_EXEC);
}

/* The forked child: groups, namespaces, then clone the command. */
static __dead void
ns_spawn_child(struct ns_cmd *c, struct ns_init *ni)
{
	struct ns_spawn_note	 n;
	int			 fd, flags;
	pid_t			 pid;

	if (cgroup_enter(c->sr->cg_fds, c->sr->ncg) == -1)
		ns_child_fail(c->note, NSS_ST_CGROUP);
	if ((fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) !=
	    -1) {
		(void)!write(fd, NS_OOM_ADJ, strlen(NS_OOM_ADJ));
		close(fd);
	}
	prctl(PR_SET_DUMPABLE, 0);
	flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC |
	    CLONE_NEWUTS;
	if (!ni->host_network)
		flags |= CLONE_NEWNET;
	if (setns(ni->pidfd, flags) == -1)
		ns_child_fail(c->note, NSS_ST_SETNS);
	pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL,
	    NULL, 0);
	if (pid == -1)
		ns_child_fail(c->note, NSS_ST_CLONE);
	if (pid == 0)
		ns_spawn_command(c);
	n.kind = NSS_PID;
	n.stage = 0;
	n.val = (int)pid;
	(void)!write(c->note, &n, sizeof n);
	_exit(0);
}

/* The message for a failure of a child at stage with errno e. */
static void
ns_spawn_cause(struct ns_cmd *c, int stage, int e, char **cause)
{
	const char	*prog = c->sr->argv[0];

	switch (stage) {
	case NSS_ST_EXEC:
		if (e == ENOENT && strchr(prog, '/') == NULL)
			xasprintf(cause, "%s: no such program in PATH", prog);
		else
			xasprintf(cause, "%s: %s", prog, strerror(e));
		break;
	case NSS_ST_CWD:
		xasprintf(cause, "cwd %s: %s", c->cwd, strerror(e));
		break;
	default:
		xasprintf(cause, "joining the workspace (stage %d): %s", stage,
		    strerror(e));
		break;
	}
}

/*
 * Wait for the child's report: the command's pid, then nothing (it ran)
 * or its failure. Reaps the child (and a command that failed).
 */
static pid_t
ns_spawn_wait(struct ns_cmd *c, int rd, pid_t child, int *err, char **cause)
{
	struct ns_spawn_note	 n;
	struct pollfd		 pfd = { rd, POLLIN, 0 };
	pid_t			 pid = -1;
	ssize_t			 r;

	for (;;) {
		if (poll(&pfd, 1, NS_SPAWN_WAIT) != 1)
			break;
		do
			r = read(rd, &n, sizeof n);
		while (r == -1 && errno == EINTR);
		if (r != (ssize_t)sizeof n)
			break;
		if (n.kind == NSS_PID) {
			pid = (pid_t)n.val;
			continue;
		}
		*err = n.val;
		ns_spawn_cause(c, n.stage, n.val, cause);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		pid = -2;
		break;
	}
	waitpid(child, NULL, 0);
	if (pid == -1) {
		*err = EIO;
		xasprintf(cause, "joining the workspace: no answer");
	}
	return (pid < 0 ? -1 : pid);
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

/* A terminal from the workspace's devpts: master (returned) and slave. */
static int
ns_spawn_pty(struct spawn_req *sr, struct ns_init *ni, int *slave, int *err)
{
	struct winsize	ws;
	int		master, unlock = 0;

	master = ns_file_open(ni, "/dev/pts/ptmx", O_RDWR | O_NOCTTY, 0, 0,
	    err);
	if (master == -1)
		return (-1);
	memset(&ws, 0, sizeof ws);
	ws.ws_row = (unsigned short)sr->rows;
	ws.ws_col = (unsigned short)sr->cols;
	if (ioctl(master, TIOCSPTLCK, &unlock) == -1 ||
	    ioctl(master, TIOCSWINSZ, &ws) == -1 ||
	    (*slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		*err = errno;
		close(master);
		return (-1);
	}
	return (master);
}

/*
 * Start sr's program inside the workspace of ni: on pipes (sr's fds), or
 * with master non-NULL on a new terminal of the workspace (its master in
 * *master). Returns the command's pid, or -1 with *err and *cause.
 */
pid_t
ns_spawn(struct spawn_req *sr, struct ns_init *ni, int *master, int *err,
    char **cause)
{
	struct ns_cmd	 c;
	int		 ep[2], m = -1;
	pid_t		 child, pid = -1;

	memset(&c, 0, sizeof c);
	c.sr = sr;
	c.slave = -1;
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
	if (master != NULL &&
	    (m = ns_spawn_pty(sr, ni, &c.slave, err)) == -1) {
		xasprintf(cause, "a terminal in the workspace: %s",
		    strerror(*err));
		goto out;
	}
	if (compat_pipe_cloexec(ep) == -1)
		fatal("%s: pipe", __func__);
	c.note = ep[1];
	if ((child = fork()) == 0) {
		close(ep[0]);
		ns_spawn_child(&c, ni);
	}
	close(ep[1]);
	if (child == -1) {
		*err = errno;
		xasprintf(cause, "fork: %s", strerror(*err));
	} else
		pid = ns_spawn_wait(&c, ep[0], child, err, cause);
	close(ep[0]);
out:
	if (c.slave != -1)
		close(c.slave);
	if (pid == -1 && m != -1)
		close(m);
	else if (master != NULL)
		*master = m;
	spawn_plan_free(sr);
	return (pid);
}

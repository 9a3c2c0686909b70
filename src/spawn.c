/*
 * spawn.c: starting a program. posix_spawn where nothing but descriptors,
 * a process group and a folder need setting (the fast path); fork where
 * rlimits or another user are asked for; forkpty for sessions
 * (spawn_pty). All three share the checks made before the fork (folder,
 * user, program), so the message can say which part was wrong, and the
 * plan (ids, groups, limits), so the child of a fork only makes system
 * calls. Whether the worker's --allow rules let a command run at all
 * is decided before, by worker-policy.c.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "sandd.h"

extern char	**environ;

/* Free a NULL-terminated vector of strings and each string; NULL is fine. */
void
spawn_free_strv(char **v)
{
	char	**p;

	if (v == NULL)
		return;
	for (p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

/*
 * The argv of an open message: "cmd" runs under /bin/sh -c, "argv" as it
 * is. NULL with *cause if neither is usable.
 */
char **
spawn_build_argv(json_t *open, char **cause)
{
	json_t		*argv = json_object_get(open, "argv"), *v;
	const char	*cmd = json_string_value(json_object_get(open, "cmd"));
	char		**out;
	size_t		 i, n;

	if (cmd != NULL) {
		out = xcalloc(4, sizeof *out);
		out[0] = xstrdup("/bin/sh");
		out[1] = xstrdup("-c");
		out[2] = xstrdup(cmd);
		return (out);
	}
	if (!json_is_array(argv) || (n = json_array_size(argv)) == 0) {
		xasprintf(cause, "no command given");
		return (NULL);
	}
	out = xcalloc(n + 1, sizeof *out);
	json_array_foreach(argv, i, v)
		out[i] = xstrdup(json_string_value(v) != NULL ?
		    json_string_value(v) : "");
	return (out);
}

/*
 * Set k to v in the n entries of out (room for one more): replace k's
 * entry, or append one.
 */
static void
spawn_env_set(char **out, size_t *n, const char *k, const char *v)
{
	size_t	i, klen = strlen(k);

	for (i = 0; i < *n; i++)
		if (strncmp(out[i], k, klen) == 0 && out[i][klen] == '=')
			break;
	if (i == *n)
		(*n)++;
	else
		free(out[i]);
	xasprintf(&out[i], "%s=%s", k, v);
}

/*
 * The worker's own passwd entry, looked up once per euid: getpwuid reads
 * /etc/passwd through NSS every time (7 system calls and ~27,000
 * instructions, a tenth of what the worker spent on an exec).
 */
static struct passwd *
spawn_own_pw(void)
{
	static struct passwd	 pw;
	static uid_t		 uid = (uid_t)-1;
	static char		*strs[4];
	struct passwd		*p;
	int			 i;

	if (uid == geteuid() && uid != (uid_t)-1)
		return (&pw);
	if ((p = getpwuid(geteuid())) == NULL)
		return (NULL);
	for (i = 0; i < 4; i++)
		free(strs[i]);
	pw = *p;
	pw.pw_name = strs[0] = xstrdup(p->pw_name);
	pw.pw_dir = strs[1] = xstrdup(p->pw_dir);
	pw.pw_shell = strs[2] = xstrdup(p->pw_shell);
	pw.pw_passwd = strs[3] = xstrdup("");
	pw.pw_gecos = NULL;
	uid = p->pw_uid;
	return (&pw);
}

/*
 * The environment for a child run as user (NULL: the worker's own user):
 * the worker's own less every SANDD_* (its token and settings are not
 * for commands), HOME, USER, LOGNAME and SHELL of that user, env's
 * entries merged over it all, and TERM if term is given. With clear,
 * only env and TERM.
 */
char **
spawn_build_env(json_t *env, int clear, const char *term, const char *user)
{
	struct passwd	*pw = NULL;
	char		**out, **p;
	size_t		 n = 0;
	const char	*k;
	json_t		*v;

	if (!clear)
		for (p = environ; *p != NULL; p++)
			n++;
	out = xcalloc(n + json_object_size(env) + 6, sizeof *out);
	n = 0;
	if (!clear) {
		for (p = environ; *p != NULL; p++)
			if (strncmp(*p, "SANDD_", 6) != 0)
				out[n++] = xstrdup(*p);
		pw = user != NULL ? getpwnam(user) : spawn_own_pw();
	}
	if (pw != NULL) {
		spawn_env_set(out, &n, "HOME", pw->pw_dir);
		spawn_env_set(out, &n, "USER", pw->pw_name);
		spawn_env_set(out, &n, "LOGNAME", pw->pw_name);
		spawn_env_set(out, &n, "SHELL", pw->pw_shell);
	}
	json_object_foreach(env, k, v)
		if (json_is_string(v))
			spawn_env_set(out, &n, k, json_string_value(v));
	if (term != NULL && json_object_get(env, "TERM") == NULL)
		spawn_env_set(out, &n, "TERM", term);
	out[n] = NULL;
	return (out);
}

/* The value of PATH in envp, or the default. */
static const char *
spawn_env_path(char **envp)
{
	char	**p;

	for (p = envp; *p != NULL; p++)
		if (strncmp(*p, "PATH=", 5) == 0)
			return (*p + 5);
	return (SPAWN_DEFAULT_PATH);
}

/*
 * Find the program to run: argv[0] itself if it has a slash, else the
 * first executable of that name in PATH. Allocated; NULL with *err.
 */
static char *
spawn_resolve(const char *prog, char **envp, int *err)
{
	const char	*path, *p, *colon;
	char		*cand;
	struct stat	 sb;
	size_t		 len;

	*err = ENOENT;
	if (strchr(prog, '/') != NULL) {
		if (stat(prog, &sb) == -1) {
			*err = errno;
			return (NULL);
		}
		if (S_ISDIR(sb.st_mode)) {
			*err = EISDIR;
			return (NULL);
		}
		if (access(prog, X_OK) == -1) {
			*err = errno;
			return (NULL);
		}
		return (xstrdup(prog));
	}
	path = spawn_env_path(envp);
	for (p = path; ; p = colon + 1) {
		colon = strchr(p, ':');
		len = colon != NULL ? (size_t)(colon - p) : strlen(p);
		xasprintf(&cand, "%.*s/%s", (int)len, len == 0 ? "." : p, prog);
		if (stat(cand, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (access(cand, X_OK) == 0)
				return (cand);
			*err = EACCES;
		}
		free(cand);
		if (colon == NULL)
			break;
	}
	return (NULL);
}

static const struct {
	const char	*name;
	int		 res;
	rlim_t		 scale;
} spawn_limits[] = {
	{ "cpu_s", RLIMIT_CPU, 1 },
	{ "memory_mb", RLIMIT_AS, 1024 * 1024 },
	{ "nproc", RLIMIT_NPROC, 1 },
	{ "nofile", RLIMIT_NOFILE, 1 },
	{ "fsize_mb", RLIMIT_FSIZE, 1024 * 1024 },
};

/*
 * Work out before the fork what the child needs: the user's ids and
 * groups, and the resource limits (a worker's own caps win). Between
 * fork and exec the child then only makes system calls, as it must in
 * a process with more than one thread (hash.c). -1 with *err.
 */
int
spawn_plan(struct spawn_req *sr, int *err)
{
	struct passwd	*pw;
	struct rlimit	 cur;
	json_t		*v;
	uint64_t	 want;
	size_t		 i;
	int		 ng = 16;

	sr->nlimits = 0;
	for (i = 0; i < sizeof spawn_limits / sizeof spawn_limits[0]; i++) {
		v = json_object_get(sr->limits, spawn_limits[i].name);
		if (!json_is_integer(v))
			continue;
		want = (uint64_t)json_integer_value(v) * spawn_limits[i].scale;
		if (getrlimit(spawn_limits[i].res, &cur) == 0 &&
		    cur.rlim_max != RLIM_INFINITY && want > cur.rlim_max)
			continue;
		sr->limit_res[sr->nlimits] = spawn_limits[i].res;
		sr->limit_val[sr->nlimits++] = want;
	}
	if (sr->user == NULL)
		return (0);
	errno = 0;
	if ((pw = getpwnam(sr->user)) == NULL) {
		*err = errno != 0 ? errno : ENOENT;
		return (-1);
	}
	sr->uid = pw->pw_uid;
	sr->gid = pw->pw_gid;
	for (;;) {
		if (ng < 1 || ng > 65536)
			ng = 65536;
		sr->groups = xrealloc(sr->groups, (size_t)ng *
		    sizeof *sr->groups);
		if (getgrouplist(pw->pw_name, pw->pw_gid, sr->groups,
		    &ng) != -1)
			break;
	}
	sr->ngroups = ng;
	return (0);
}

/* Release what spawn_plan allocated. */
void
spawn_plan_free(struct spawn_req *sr)
{
	free(sr->groups);
	sr->groups = NULL;
	sr->ngroups = 0;
}

/* Why argv0 cannot run, for errno *err: allocated in *cause. */
static void
spawn_prog_cause(const char *argv0, int *err, char **cause)
{
	if (*err == ENOENT && strchr(argv0, '/') == NULL)
		xasprintf(cause, "%s: no such program in PATH", argv0);
	else
		xasprintf(cause, "%s: %s", argv0, strerror(*err));
}

/* Check what can be checked before forking; -1 with *err and *cause. */
static int
spawn_precheck(struct spawn_req *sr, char **prog, int *err, char **cause)
{
	struct stat	sb;

	if (sr->cwd != NULL) {
		if (stat(sr->cwd, &sb) == -1) {
			*err = errno;
			xasprintf(cause, "cwd %s: %s", sr->cwd,
			    strerror(errno));
			return (-1);
		}
		if (!S_ISDIR(sb.st_mode)) {
			*err = ENOTDIR;
			xasprintf(cause, "cwd %s: not a folder", sr->cwd);
			return (-1);
		}
	}
	/* Only the user's lookup can fail here. */
	if (spawn_plan(sr, err) == -1) {
		xasprintf(cause, "user %s: no such user", sr->user);
		return (-1);
	}
	if (sr->user != NULL && geteuid() != 0) {
		*err = EPERM;
		xasprintf(cause, "user %s: needs a worker running as root",
		    sr->user);
		return (-1);
	}
	if ((*prog = spawn_resolve(sr->path != NULL ? sr->path : sr->argv[0],
	    sr->envp, err)) == NULL) {
		spawn_prog_cause(sr->argv[0], err, cause);
		return (-1);
	}
	return (0);
}

/* What the child of a fork was doing when it failed (see spawn_fail). */
#define SPAWN_STEP_SETUP	0	/* descriptors */
#define SPAWN_STEP_LIMITS	1
#define SPAWN_STEP_USER		2
#define SPAWN_STEP_CWD		3
#define SPAWN_STEP_EXEC		4

/*
 * In the child: tell the parent step and errno, and exit 127. A fork's
 * child writes them to errfd; a vfork's (errfd -1) into sr, which the
 * parent shares until the child execs or exits.
 */
static __dead void
spawn_fail(struct spawn_req *sr, int errfd, int step)
{
	int	msg[2];

	msg[0] = step;
	msg[1] = errno;
	if (errfd != -1)
		(void)!write(errfd, msg, sizeof msg);
	else {
		sr->child_errno = msg[1];
		sr->child_step = step + 1;
	}
	_exit(127);
}

static sigset_t	spawn_moved;	/* signals not at their default */
static int	spawn_moved_known;

/*
 * Note which signals this process has moved from their default (caught
 * or ignored), once all its handlers are in place, so that a child
 * resets those before exec rather than all 64 (a system call each,
 * with the worker waiting on a vfork child meanwhile).
 */
void
spawn_note_signals(void)
{
	struct sigaction	sa;
	int			sig;

	compat_reset_libc_signals();
	sigemptyset(&spawn_moved);
	for (sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL)
			sigaddset(&spawn_moved, sig);
	spawn_moved_known = 1;
}

/* In a child about to exec: every signal at its default again. */
void
spawn_reset_signals(void)
{
	int	sig;

	for (sig = 1; sig < NSIG; sig++)
		if (!spawn_moved_known || sigismember(&spawn_moved, sig))
			signal(sig, SIG_DFL);
}

/*
 * The child half, after fork or forkpty: descriptors are in place.
 * Reset signals, set limits, become the user and then enter the folder
 * (so a folder the user may not enter fails, as it would for them),
 * all planned before the fork, and exec prog. On failure tell the parent
 * (spawn_fail).
 */
static __dead void
spawn_child_exec(struct spawn_req *sr, const char *prog, int errfd)
{
	struct rlimit	 rl;
	sigset_t	 set;
	int		 i;

	spawn_reset_signals();
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	for (i = 0; i < sr->nlimits; i++) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)sr->limit_val[i];
		if (setrlimit(sr->limit_res[i], &rl) == -1)
			spawn_fail(sr, errfd, SPAWN_STEP_LIMITS);
	}
	if (sr->user != NULL &&
	    (setgroups((size_t)sr->ngroups, sr->groups) == -1 ||
	    setgid(sr->gid) == -1 || setuid(sr->uid) == -1))
		spawn_fail(sr, errfd, SPAWN_STEP_USER);
	/* Without a group per job, the worker's death must end it. */
	if (!cgroup_tracking())
		compat_set_pdeathsig();
	if (sr->cwd != NULL && chdir(sr->cwd) == -1)
		spawn_fail(sr, errfd, SPAWN_STEP_CWD);
	execve(prog, sr->argv, sr->envp);
	spawn_fail(sr, errfd, SPAWN_STEP_EXEC);
}

/* Why the child failed at step with errno err: allocated in *cause. */
static void
spawn_step_cause(struct spawn_req *sr, int step, int *err, char **cause)
{
	switch (step) {
	case SPAWN_STEP_CWD:
		if (sr->user != NULL)
			xasprintf(cause, "cwd %s: %s (as user %s)", sr->cwd,
			    strerror(*err), sr->user);
		else
			xasprintf(cause, "cwd %s: %s", sr->cwd, strerror(*err));
		break;
	case SPAWN_STEP_USER:
		xasprintf(cause, "user %s: %s", sr->user, strerror(*err));
		break;
	case SPAWN_STEP_LIMITS:
		xasprintf(cause, "limits: %s", strerror(*err));
		break;
	default:
		spawn_prog_cause(sr->argv[0], err, cause);
		break;
	}
}

/* The fast path: posix_spawn in a new process group. */
static pid_t
spawn_fast(struct spawn_req *sr, const char *prog, int *err)
{
	posix_spawn_file_actions_t	fa;
	posix_spawnattr_t		attr;
	sigset_t			all, none;
	pid_t				pid;
	int				r;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, sr->fd_in, 0);
	posix_spawn_file_actions_adddup2(&fa, sr->fd_out, 1);
	posix_spawn_file_actions_adddup2(&fa, sr->fd_err, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 29)
	if (sr->cwd != NULL)
		posix_spawn_file_actions_addchdir_np(&fa, sr->cwd);
#endif
	sigfillset(&all);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
	    POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	r = posix_spawn(&pid, prog, &fa, &attr, sr->argv, sr->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0) {
		*err = r;
		return (-1);
	}
	return (pid);
}

/*
 * In the parent after the fork: close the child's end of the errno pipe
 * ep and wait. The pipe closes on exec; a step and errno read from it
 * mean the child failed before exec: reap it and return -1 with *err
 * and *cause.
 */
static int
spawn_wait_exec(struct spawn_req *sr, int ep[2], pid_t pid, int *err,
    char **cause)
{
	ssize_t	n;
	int	msg[2];

	close(ep[1]);
	do
		n = read(ep[0], msg, sizeof msg);
	while (n == -1 && errno == EINTR);
	close(ep[0]);
	if (n != sizeof msg)
		return (0);
	waitpid(pid, NULL, 0);
	*err = msg[1];
	spawn_step_cause(sr, msg[0], err, cause);
	return (-1);
}

/*
 * The general path: vfork, then the child half. vfork, not fork: a fork
 * copies the worker's page tables and makes its pages copy-on-write
 * until the exec, which cost ~1.5 ms of the ~2 ms a command takes to
 * start here. The child shares the worker's memory until it execs, so
 * it only makes system calls (it was planned before) and never returns;
 * the only memory it writes is sr's child_step and child_errno when it
 * fails (as glibc's posix_spawn does), read here once it has gone.
 * Signals stay blocked until it has reset their dispositions, so no
 * handler of the worker runs in it.
 */
static pid_t
spawn_fork(struct spawn_req *sr, const char *prog, int *err, char **cause)
{
	sigset_t	all, old;
	pid_t		pid;

	sr->child_step = 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0) {
		setpgid(0, 0);
		if (cgroup_enter(sr->cg_fds, sr->ncg) == -1 ||
		    dup2(sr->fd_in, 0) == -1 || dup2(sr->fd_out, 1) == -1 ||
		    dup2(sr->fd_err, 2) == -1)
			spawn_fail(sr, -1, SPAWN_STEP_SETUP);
		compat_closefrom(3);
		spawn_child_exec(sr, prog, -1);
	}
	*err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid == -1)
		return (-1);
	if (sr->child_step != 0) {
		waitpid(pid, NULL, 0);
		*err = sr->child_errno;
		spawn_step_cause(sr, sr->child_step - 1, err, cause);
		return (-1);
	}
	return (pid);
}

/*
 * Start sr's program with its stdio on sr's descriptors, in a new process
 * group. Returns the pid, or -1 with *err and *cause (allocated).
 */
pid_t
spawn_process(struct spawn_req *sr, int *err, char **cause)
{
	char	*prog;
	pid_t	 pid;

	if (sr->ns != NULL)
		return (ns_spawn(sr, sr->ns, NULL, err, cause));
	*err = 0;
	*cause = NULL;
	if (spawn_precheck(sr, &prog, err, cause) != 0) {
		spawn_plan_free(sr);
		return (-1);
	}
	/* A group to join, or a death signal to set: fork. */
	if (sr->user == NULL && json_object_size(sr->limits) == 0 &&
	    sr->ncg == 0 && cgroup_tracking())
		pid = spawn_fast(sr, prog, err);
	else
		pid = spawn_fork(sr, prog, err, cause);
	if (pid == -1 && *cause == NULL)
		xasprintf(cause, "%s: %s", sr->argv[0], strerror(*err));
	free(prog);
	spawn_plan_free(sr);
	return (pid);
}

/*
 * Start sr's program on a new PTY of sr->rows x sr->cols: it leads a new
 * session with the PTY as its controlling terminal. The same checks and
 * plan as spawn_process come first, so forkpty's child only makes system
 * calls. Returns the pid with the master (close-on-exec) in *master, or
 * -1 with *err and *cause (allocated).
 */
pid_t
spawn_pty(struct spawn_req *sr, int *master, int *err, char **cause)
{
	struct winsize	 ws;
	char		*prog = NULL;
	int		 ep[2];
	pid_t		 pid = -1;

	if (sr->ns != NULL)
		return (ns_spawn(sr, sr->ns, master, err, cause));
	*err = 0;
	*cause = NULL;
	if (spawn_precheck(sr, &prog, err, cause) != 0)
		goto out;
	if (compat_pipe_cloexec(ep) == -1) {
		*err = errno;
		xasprintf(cause, "pipe: %s", strerror(*err));
		goto out;
	}
	memset(&ws, 0, sizeof ws);
	ws.ws_row = (unsigned short)sr->rows;
	ws.ws_col = (unsigned short)sr->cols;
	if ((pid = forkpty(master, NULL, NULL, &ws)) == 0) {
		close(ep[0]);
		if (cgroup_enter(sr->cg_fds, sr->ncg) == -1)
			spawn_fail(sr, ep[1], SPAWN_STEP_SETUP);
		compat_closefrom_except(3, ep[1]);
		spawn_child_exec(sr, prog, ep[1]);
	}
	if (pid == -1) {
		*err = errno;
		close(ep[0]);
		close(ep[1]);
		xasprintf(cause, "forkpty: %s", strerror(*err));
	} else if (spawn_wait_exec(sr, ep, pid, err, cause) == -1) {
		close(*master);
		pid = -1;
	} else
		fcntl(*master, F_SETFD, FD_CLOEXEC);
out:
	free(prog);
	spawn_plan_free(sr);
	return (pid);
}

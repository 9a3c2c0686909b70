/*
 * worker-exec.c: commands on the worker (kind CHAN_EXEC).
 *
 * A command runs in a process group of its own with its stdin, stdout
 * and stderr on pipes (stderr on stdout's with merge_stderr); job.c
 * moves the bytes both ways and ends it once its output reached EOF and
 * it was reaped. Here: starting it from the open (allowlist, argv, env,
 * cwd, user, limits through spawn.c), the `started` message (sent again
 * after a reconnect, it may have been lost), the timeout, which stops it
 * with TERM and, after its kill grace, KILL, and the end once it is
 * reaped: exit code or signal, duration, timed out or not.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

static void	 exec_eof(struct job *, int);
static void	 exec_link_up(struct job *);

static const struct job_ops exec_ops = {
	.eof = exec_eof,
	.link_up = exec_link_up,
};

/* Tell the controller the command runs, with its pid. */
static void
exec_send_started(struct job *j)
{
	json_t	*m;

	m = wire_chan_msg(WIRE_T_STARTED, j->ch);
	json_object_set_new(m, "pid", json_integer(j->started_pid));
	wlink_send(j->link, m);
	json_decref(m);
}

/* job_ops.link_up: `started` may have been lost with the old link. */
static void
exec_link_up(struct job *j)
{
	if (j->started_pid > 0 && !(j->flags & JOB_NO_STARTED))
		exec_send_started(j);
}

/*
 * job_ops.eof: a command's output pipes close as it exits, so it can
 * most often be reaped now, without another turn of the event loop for
 * SIGCHLD: the end then leaves at once (~50 us of an exec's round trip
 * here). If it has not exited, SIGCHLD reaps it as before. Not for a
 * cancelled job, which its reaping frees.
 */
static void
exec_eof(struct job *j, __unused int s)
{
	if (j->pid > 0 && !(j->flags & JOB_CANCELLED) &&
	    j->out[WIRE_OUT].eof && j->out[WIRE_ERR].eof)
		worker_reap();
}

/* The command's timeout has passed: stop it. */
static void
exec_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct job	*j = arg;

	log_info("channel %u: timed out, stopping pid %ld", j->ch,
	    (long)j->pid);
	j->flags |= JOB_TIMED_OUT;
	job_terminate(j);
}

/* The command's process was reaped: its end is due once output is out. */
static void
exec_reaped(pid_t pid, int status, void *arg)
{
	struct job	*j = arg;
	json_t		*end;
	double		 ms = (util_now() - j->started) * 1000.0;

	j->pid = -1;
	/* Stray members of the group must not hold the pipes for ever. */
	killpg(pid, SIGKILL);
	if (j->flags & (JOB_TIMED_OUT | JOB_CANCELLED))
		job_tree_kill(j);
	if (j->kill_ev != NULL)
		evtimer_del(j->kill_ev);
	if (j->timeout_ev != NULL)
		evtimer_del(j->timeout_ev);
	if (j->flags & JOB_CANCELLED) {
		job_maybe_free(j);
		return;
	}
	if (job_tree_failed(j))
		return;
	end = json_pack("{s:f, s:b, s:I}", "duration_ms",
	    (double)(long long)(ms * 1000) / 1000.0, "timed_out",
	    (j->flags & JOB_TIMED_OUT) != 0, "pid", (json_int_t)pid);
	if (WIFEXITED(status)) {
		json_object_set_new(end, "exit_code",
		    json_integer(WEXITSTATUS(status)));
		json_object_set_new(end, "signal", json_null());
		json_object_set_new(end, "reason", json_string(
		    (j->flags & JOB_TIMED_OUT) ? "timeout" : "exit"));
	} else {
		json_object_set_new(end, "exit_code", json_null());
		json_object_set_new(end, "signal", json_string(
		    util_signal_name(WTERMSIG(status))));
		json_object_set_new(end, "reason", json_string(
		    job_tree_reason(j, status, (j->flags & JOB_TIMED_OUT) ?
		    "timeout" : "signal")));
	}
	log_debug("channel %u: pid %ld done", j->ch, (long)pid);
	job_set_end(j, end);
}

/* Close whichever ends of pipe p are open. */
static void
exec_close_pipe(int p[2])
{
	int	i;

	for (i = 0; i < 2; i++) {
		if (p[i] != -1)
			close(p[i]);
		p[i] = -1;
	}
}

/* /dev/null, opened once: the stdin of commands that get no input. */
static int
exec_devnull(void)
{
	static int	fd = -1;

	if (fd == -1)
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return (fd);
}

/*
 * Start sr's program with its stdio on new pipes (stderr on stdout's
 * with merge; stdin on /dev/null with no_input, on the host) and give
 * the job its ends. Returns the pid, or -1 with *err and *cause
 * (allocated).
 */
static pid_t
exec_spawn(struct job *j, struct spawn_req *sr, int merge, int no_input,
    int *err, char **cause)
{
	int	in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
	pid_t	pid = -1;

	/* In a workspace, no descriptor of the host's /dev: a pipe. */
	if (no_input && (sr->ns != NULL || exec_devnull() == -1))
		no_input = 0;
	if ((!no_input && compat_pipe_cloexec(in) == -1) ||
	    compat_pipe_cloexec(out) == -1 ||
	    (!merge && compat_pipe_cloexec(er) == -1)) {
		*err = errno;
		xasprintf(cause, "pipe: %s", strerror(*err));
		goto out;
	}
	sr->fd_in = no_input ? exec_devnull() : in[0];
	sr->fd_out = out[1];
	sr->fd_err = merge ? out[1] : er[1];
	if ((pid = spawn_process(sr, err, cause)) == -1)
		goto out;
	if (in[1] != -1)
		job_stdin_attach(j, in[1]);
	job_stream_attach(j, WIRE_OUT, out[0]);
	if (er[0] != -1)
		job_stream_attach(j, WIRE_ERR, er[0]);
	in[1] = out[0] = er[0] = -1;	/* the job's now */
out:
	exec_close_pipe(in);
	exec_close_pipe(out);
	exec_close_pipe(er);
	return (pid);
}

/* An open of kind CHAN_EXEC: start the command, or fail the job. */
void
worker_exec_open(struct job *j, json_t *open)
{
	struct spawn_req	 sr;
	struct timeval		 tv;
	char			*cause = NULL;
	json_t			*v;
	pid_t			 pid;
	int			 e = 0;

	j->ops = &exec_ops;
	if (json_is_number(v = json_object_get(open, "kill_grace")))
		j->kill_grace = json_number_value(v);
	if (json_is_true(json_object_get(open, "detached")))
		j->flags |= JOB_DETACHED;
	/* Nobody waits for it: the end carries the pid (sandd-wire(7)). */
	if (json_is_false(json_object_get(open, "started")))
		j->flags |= JOB_NO_STARTED;
	if (worker_opts.max_jobs > 0 &&
	    job_count(CHAN_EXEC, j, 1) >= worker_opts.max_jobs) {
		job_fail(j, "limit", 0, "worker %s runs %d commands, its most "
		    "(--max-jobs %d)", worker_opts.id, worker_opts.max_jobs,
		    worker_opts.max_jobs);
		return;
	}
	memset(&sr, 0, sizeof sr);
	if (job_tree_prepare(j, open, &sr) == -1)
		return;
	if ((sr.argv = spawn_build_argv(open, &cause)) == NULL) {
		job_tree_started(j, &sr);
		job_fail(j, "exec_failed", 0, "%s", cause);
		free(cause);
		return;
	}
	if (!policy_command_allowed(sr.argv, json_object_get(open, "env"),
	    &cause)) {
		job_tree_started(j, &sr);
		spawn_free_strv(sr.argv);
		job_fail(j, "denied", 0, "%s", cause);
		free(cause);
		return;
	}
	sr.cwd = json_string_value(json_object_get(open, "cwd"));
	sr.user = json_string_value(json_object_get(open, "user"));
	sr.envp = job_tree_env(j, json_object_get(open, "env"),
	    json_is_true(json_object_get(open, "env_clear")), NULL, sr.user);
	sr.limits = json_object_get(open, "limits");
	pid = exec_spawn(j, &sr, json_is_true(json_object_get(open,
	    "merge_stderr")), json_is_true(json_object_get(open,
	    "stdin_none")), &e, &cause);
	job_tree_started(j, &sr);
	spawn_free_strv(sr.argv);
	spawn_free_strv(sr.envp);
	if (pid == -1) {
		job_fail(j, "exec_failed", e, "%s", cause);
		free(cause);
		return;
	}
	j->pid = j->started_pid = pid;
	j->started = util_now();
	worker_child_add(pid, exec_reaped, j);
	if (json_is_number(v = json_object_get(open, "timeout")) &&
	    json_number_value(v) > 0) {
		j->timeout_ev = evtimer_new(ev_base, exec_timeout_cb, j);
		util_timeval(&tv, json_number_value(v));
		evtimer_add(j->timeout_ev, &tv);
	}
	if (!(j->flags & JOB_NO_STARTED))
		exec_send_started(j);
	log_debug("channel %u: started pid %ld", j->ch, (long)pid);
}

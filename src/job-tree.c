/*
 * job-tree.c: where a job's processes run and how all of them end.
 *
 * Every command and session gets a group of its own (cgroup.c's tracker:
 * job-N under the worker's, or under its workspace's), joined before
 * exec, so that a timeout, a cancel or a lost controller ends every
 * process it started, also those that left its process group (setsid),
 * and a worker killed outright leaves nothing behind (its guardian and
 * the next worker's sweep end the groups). Groups of host jobs that end
 * empty are kept (a few) for the next ones. Where no group can be had,
 * the worker is a child subreaper and its children get a parent death
 * signal (spawn.c), which ends at least what it started itself.
 *
 * A job that names a workspace runs inside it (worker-workspace.c, ns.c)
 * with a clean environment; a process of it killed by the workspace's
 * OOM killer ends with reason "oom". Its groups are what bounds it, so
 * where they cannot be had (removed from outside) it does not run.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

static unsigned	job_tree_next;	/* names of job groups */

/*
 * A job in workspace ws: it joins its group (j->cg) and the workspace's
 * limits, or it does not run (cause says why the group could not be
 * made). -1 after failing the job.
 */
static int
job_tree_prepare_ws(struct job *j, struct workspace *ws,
    struct spawn_req *sr, char *cause)
{
	if (j->cg != NULL && cgroup_join_open(j->cg, &sr->cg_join,
	    &cause) == 0)
		return (0);
	job_fail(j, "exec_failed", 0, "%s in workspace %s on %s: its cgroup "
	    "is gone (%s)", j->kind == CHAN_SESSION ? "session" : "exec",
	    workspace_name(ws), worker_opts.id, cause);
	free(cause);
	return (-1);
}

/*
 * Before a job's process starts: find its workspace (open names it, or
 * the host) and make its group; fill sr. -1 after failing the job.
 */
int
job_tree_prepare(struct job *j, json_t *open, struct spawn_req *sr)
{
	struct workspace	*ws;
	const char		*code;
	char			*cause = NULL, name[32];

	sr->fail_fd = -1;
	if (workspace_of(open, &ws, &code, &cause) == -1) {
		job_fail(j, code, 0, "%s", cause);
		free(cause);
		return (-1);
	}
	if (ws != NULL) {
		j->ws = workspace_ref(ws);
		j->ws_ooms = workspace_ooms(ws);
		sr->ns = workspace_ns(ws);
	}
	if (!cgroup_tracking())
		return (0);
	if (ws != NULL || (j->cg = cgroup_spare_take()) == NULL) {
		snprintf(name, sizeof name, "job-%u", ++job_tree_next);
		j->cg = cgroup_create(ws != NULL ? workspace_cgroup(ws) :
		    NULL, name, 1, &cause);
	}
	if (ws != NULL)
		return (job_tree_prepare_ws(j, ws, sr, cause));
	if (j->cg == NULL) {
		log_warnx("channel %u: no group of its own: %s", j->ch, cause);
		free(cause);
		return (0);
	}
	if ((sr->cg_fds[0] = cgroup_spare_procs(j->cg)) != -1)
		sr->ncg = sr->ncg_kept = 1;
	else if ((sr->ncg = cgroup_procs_fds(j->cg, sr->cg_fds, 4)) == -1)
		sr->ncg = 0;
	return (0);
}

/* The process started (or not): the group's descriptors go. */
void
job_tree_started(struct job *j, struct spawn_req *sr)
{
	int	i;

	for (i = sr->ncg_kept; i < sr->ncg; i++)
		close(sr->cg_fds[i]);
	sr->ncg = sr->ncg_kept = 0;
	cgroup_join_close(&sr->cg_join);
	j->fail_fd = sr->fail_fd;
	sr->fail_fd = -1;
}

/*
 * The job's process was reaped: did it fail before its program ran (in
 * a workspace, where the worker does not wait for that)? Then fail the
 * job with exec_failed, as a start on the host does, and return 1.
 */
int
job_tree_failed(struct job *j)
{
	char	*cause;
	int	 e, r;

	if (j->fail_fd == -1)
		return (0);
	r = ns_spawn_failed(j->fail_fd, &e, &cause);
	close(j->fail_fd);
	j->fail_fd = -1;
	if (r == 0)
		return (0);
	job_fail(j, "exec_failed", e, "%s in workspace %s on %s: %s",
	    j->kind == CHAN_SESSION ? "session" : "exec",
	    workspace_name(j->ws), worker_opts.id, cause);
	free(cause);
	return (1);
}

/* The environment of the job: its workspace's, or as on the host. */
char **
job_tree_env(struct job *j, json_t *env, int clear, const char *term,
    const char *user)
{
	if (j->ws != NULL)
		return (workspace_env(j->ws, env, term));
	return (spawn_build_env(env, clear, term, user));
}

/* End every process of the job, wherever it went. */
void
job_tree_kill(struct job *j)
{
	cgroup_kill(j->cg);
}

/*
 * Why a process of the job that ended with status did: "oom" when the
 * workspace's OOM killer killed it, else dflt.
 */
const char *
job_tree_reason(struct job *j, int status, const char *dflt)
{
	if (j->ws != NULL && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGKILL &&
	    workspace_ooms(j->ws) > j->ws_ooms)
		return ("oom");
	return (dflt);
}

/* The job is freed: its group (killed if it was stopped) and workspace. */
void
job_tree_free(struct job *j)
{
	if (j->flags & (JOB_CANCELLED | JOB_TIMED_OUT))
		cgroup_free(j->cg, CGROUP_KILL);
	else if (j->ws != NULL || !cgroup_spare_keep(j->cg))
		cgroup_free(j->cg, CGROUP_RMDIR);
	j->cg = NULL;
	if (j->fail_fd != -1)
		close(j->fail_fd);
	j->fail_fd = -1;
	workspace_unref(j->ws);
	j->ws = NULL;
}

/*
 * control-run.c: session.run, a shell command line run in a session's
 * shell, answered with only that command's output and exit status.
 *
 * The worker does it (worker-run.c): it owns the terminal and the ring,
 * so it can type the line when the shell reads one and keep the
 * machinery out of what the session shows a person. Here the request is
 * forwarded under a name of its own, so that the worker runs it once even
 * when a link drop makes the call go again; a request whose client goes
 * away before the answer is cancelled, which drops it from the worker's
 * queue if it has not been typed yet.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"
#include "control-session.h"

/* A session.run on its way to the worker. */
struct crun {
	char	session[40];
	char	run[33];
};

/* The cancel's answer: nothing waits for it. */
static void
run_cancel_done(__unused json_t *res, __unused void *arg)
{
}

/* The request ended unanswered (its client went away): cancel the run. */
static void
run_req_gone(void *arg)
{
	struct crun	*u = arg;
	struct session	*s;

	if ((s = session_find(u->session)) != NULL && !s->exited)
		server_worker_rpc(s->c->worker, json_pack("{s:s, s:s, s:s, "
		    "s:b}", "op", "session.run", "session", u->session, "run",
		    u->run, "cancel", 1), run_cancel_done, NULL);
	free(u);
}

/* The worker's answer; a line that ended the session ends it here too. */
static void
run_done(struct req *r, json_t *res)
{
	struct crun	*u = r->data;
	struct session	*s;

	r->data_free = free;	/* answered: nothing to cancel */
	if (json_is_true(json_object_get(res, "exited")) &&
	    (s = session_find(u->session)) != NULL)
		session_exited(s, res);
	req_rpc_forward(r, res);
}

/* session.run: session, cmd, optional timeout. */
void
control_run_cmd(struct req *r)
{
	struct session	*s;
	struct crun	*u;
	json_t		*m;

	if ((s = session_get(r)) == NULL || attach_readonly(r, s))
		return;
	if (s->exited) {
		req_error(r, "no_such_session", "session %s has exited", s->id);
		return;
	}
	u = xcalloc(1, sizeof *u);
	snprintf(u->session, sizeof u->session, "%s", s->id);
	util_random_hex(u->run, sizeof u->run);
	r->data = u;
	r->data_free = run_req_gone;
	m = json_pack("{s:s, s:s, s:s, s:s, s:I}", "op", "session.run",
	    "session", s->id, "run", u->run, "cmd", req_string(r, "cmd"),
	    "max", (json_int_t)serve_opts.max_output);
	if (req_field(r, "timeout") != NULL)
		json_object_set(m, "timeout", req_field(r, "timeout"));
	req_rpc(r, s->c->worker, m, run_done);
}

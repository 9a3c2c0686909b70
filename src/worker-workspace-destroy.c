/*
 * worker-workspace-destroy.c: workspace.list, and workspace.destroy:
 * its processes ended in passes from the event loop, then its disk,
 * folder and uid slot given back, or with keep its files moved (a disk
 * copied out to a folder by a child) to the state folder's kept/.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "worker-workspace.h"

/*
 * A destroy on its way: its init is gone (and with it its PID namespace)
 * and a pass of kills ends what is left in its groups every little while,
 * from the event loop, until none is; then its groups and folder go and
 * the controller has its answer.
 */
#define WS_KILL_EVERY	20	/* ms between passes */
#define WS_KILL_WAIT	10.0	/* s of passes before going on regardless */
struct ws_destroy {
	struct workspace *ws;		/* out of the list: this holds it */
	json_t		*msg;
	int		 keep;
	struct event	*timer;
	double		 until;
	TAILQ_ENTRY(ws_destroy) entry;
};
static TAILQ_HEAD(, ws_destroy) ws_destroys =
    TAILQ_HEAD_INITIALIZER(ws_destroys);

/* The list entry of ws. */
static json_t *
ws_json(struct workspace *ws)
{
	json_t	*o;

	o = json_pack("{s:s, s:s, s:s, s:s, s:O, s:i, s:I}", "worker",
	    worker_opts.id, "workspace", ws->name, "created_at", ws->created,
	    "network", ws->host_network ? "host" : "none", "owner",
	    ws->owner, "processes", cgroup_count(ws->cg), "memory_used",
	    (json_int_t)cgroup_memory_used(ws->cg));
	json_object_set_new(o, "memory", ws->memory > 0 ?
	    json_integer((json_int_t)ws->memory) : json_null());
	json_object_set_new(o, "pids", ws->pids > 0 ? json_integer(ws->pids) :
	    json_null());
	json_object_set_new(o, "cpu", ws->cpu > 0 ? json_real(ws->cpu) :
	    json_null());
	json_object_set_new(o, "disk", ws->disk > 0 ?
	    json_integer((json_int_t)ws->disk) : json_null());
	return (o);
}

/* The workspace.list RPC: every workspace of this worker. */
void
worker_workspace_list(json_t *msg)
{
	struct workspace	*ws;
	json_t			*list = json_array();

	TAILQ_FOREACH(ws, &workspaces, entry)
		if (!ws->dead)
			json_array_append_new(list, ws_json(ws));
	worker_reply(msg, json_pack("{s:b, s:o}", "ok", 1, "workspaces",
	    list));
}

/* Where a kept /workspace of ws goes: STATE/ID/kept/NAME.SLOT.TIME. */
static char *
ws_kept_path(struct workspace *ws, const char *suffix)
{
	char	*kept, *to;

	xasprintf(&kept, "%s/kept", state_folder());
	if (mkdir(kept, 0700) == -1 && errno != EEXIST)
		log_warn("%s: mkdir %s", __func__, kept);
	xasprintf(&to, "%s/%s.%d.%lld%s", kept, ws->name, ws->slot,
	    (long long)time(NULL), suffix);
	free(kept);
	return (to);
}

/*
 * Keep ws's files as they are, moved to STATE/ID/kept/: its disk image
 * if it has one, else its /workspace folder. Where they went, or NULL
 * (logged).
 */
static char *
ws_keep(struct workspace *ws)
{
	char	*from, *to;

	if (ws->disk > 0) {
		from = ws_disk_path(ws);
		to = ws_kept_path(ws, ".img");
	} else {
		xasprintf(&from, "%s/workspace", ws->folder);
		to = ws_kept_path(ws, "");
	}
	if (rename(from, to) == -1) {
		log_warn("%s: keep %s", __func__, from);
		free(to);
		to = NULL;
	}
	free(from);
	return (to);
}

/*
 * The end of a destroy, its processes gone: disk, folder and slot go,
 * the reply says where what was kept is. Drops the reference the
 * workspace list had.
 */
static void
ws_destroyed(struct workspace *ws, json_t *msg, const char *kept)
{
	json_t	*reply;

	ws_disk_detach(ws);
	ws_rmtree(ws->folder);
	wsslot_give(ws->slot, ws->slotfd);
	ws->slotfd = -1;
	log_info("workspace %s: destroyed%s%s", ws->name, kept != NULL ?
	    ", kept in " : "", kept != NULL ? kept : "");
	reply = json_pack("{s:b, s:s}", "ok", 1, "workspace", ws->name);
	if (kept != NULL)
		json_object_set_new(reply, "kept", json_string(kept));
	worker_reply(msg, reply);
	workspace_unref(ws);
}

/* A destroy with keep of a workspace with a disk, while cp copies it. */
struct ws_keeping {
	struct workspace	*ws;
	json_t			*msg;
	char			*to;
};

/*
 * The copy of a disk has ended. Had it failed, the image itself is kept
 * instead, so that nothing asked to be kept is lost.
 */
static void
ws_kept_cb(__unused pid_t pid, int status, void *arg)
{
	struct ws_keeping	*k = arg;

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_warnx("workspace %s: copying its disk to %s failed "
		    "(status %d): keeping the image instead", k->ws->name,
		    k->to, status);
		ws_rmtree(k->to);
		free(k->to);
		k->to = ws_keep(k->ws);
	}
	ws_destroyed(k->ws, k->msg, k->to);
	json_decref(k->msg);
	free(k->to);
	free(k);
}

/*
 * Keep ws's disk as a folder, copied out by a child (ws_kept_cb goes on
 * when it is done). -1 if the copy cannot start (logged).
 */
static int
ws_keep_disk(struct workspace *ws, json_t *msg)
{
	struct ws_keeping	*k;
	char			*to, *mnt, *cause = NULL;
	pid_t			 pid;

	to = ws_kept_path(ws, "");
	xasprintf(&mnt, "%s/root", ws->folder);
	if (ws->loopfd == -1 && ws_disk_attach(ws, &cause) == -1)
		pid = -1;
	else
		pid = disk_copy_out(ws->loopdev, mnt, to, &cause);
	free(mnt);
	if (pid == -1) {
		log_warnx("workspace %s: cannot copy its disk out: %s; keeping "
		    "the image", ws->name, cause);
		free(cause);
		free(to);
		return (-1);
	}
	k = xcalloc(1, sizeof *k);
	k->ws = ws;
	k->msg = json_incref(msg);
	k->to = to;
	worker_child_add(pid, ws_kept_cb, k);
	return (0);
}

/* The destroy's processes are gone: keep what was asked, then end it. */
static void
ws_destroy_done(struct ws_destroy *d)
{
	struct workspace	*ws = d->ws;
	char			*kept = NULL;

	cgroup_free(ws->cg, CGROUP_RMDIR);
	ws->cg = NULL;
	cgroup_free(ws->initcg, CGROUP_RMDIR);
	ws->initcg = NULL;
	TAILQ_REMOVE(&ws_destroys, d, entry);
	event_free(d->timer);
	if (!d->keep || ws->disk == 0 || ws_keep_disk(ws, d->msg) != 0) {
		/* Nothing to copy out first (ws_kept_cb does it then). */
		if (d->keep)
			kept = ws_keep(ws);
		ws_destroyed(ws, d->msg, kept);
		free(kept);
	}
	json_decref(d->msg);
	free(d);
}

/* A pass of kills; again a little later until nothing is left. */
static void
ws_destroy_pass(__unused evutil_socket_t fd, __unused short what,
    void *arg)
{
	struct ws_destroy	*d = arg;
	struct timeval		 tv = { 0, WS_KILL_EVERY * 1000 };
	int			 n;

	n = cgroup_kill_pass(d->ws->cg) + cgroup_kill_pass(d->ws->initcg);
	if (n > 0 && util_now() < d->until) {
		evtimer_add(d->timer, &tv);
		return;
	}
	if (n > 0)
		log_warnx("workspace %s: %d processes left after %.0f s of "
		    "kills; destroyed regardless", d->ws->name, n,
		    WS_KILL_WAIT);
	ws_destroy_done(d);
}

/*
 * The workspace.destroy RPC: end it all, then remove or keep its files.
 * Nothing waits: its init goes at once (its PID namespace with it), the
 * rest of its processes in passes from the event loop (ws_destroy_pass),
 * so a workspace slow to die (its memory full, say) stalls nothing else.
 */
void
worker_workspace_destroy(json_t *msg)
{
	struct workspace	*ws;
	struct ws_destroy	*d;
	const char		*name;

	name = json_string_value(json_object_get(msg, "workspace"));
	if (name == NULL || (ws = ws_find(name, json_object_get(msg,
	    "owner"))) == NULL) {
		worker_reply_error(msg, "no_such_workspace", 0, "no workspace "
		    "'%s' on worker %s", name != NULL ? name : "",
		    worker_opts.id);
		return;
	}
	ws->dead = 1;
	TAILQ_REMOVE(&workspaces, ws, entry);
	ns_init_stop(&ws->init);
	d = xcalloc(1, sizeof *d);
	d->ws = ws;			/* the list's reference */
	d->msg = json_incref(msg);
	d->keep = json_is_true(json_object_get(msg, "keep"));
	d->until = util_now() + WS_KILL_WAIT;
	d->timer = evtimer_new(ev_base, ws_destroy_pass, d);
	TAILQ_INSERT_TAIL(&ws_destroys, d, entry);
	ws_destroy_pass(-1, 0, d);
}

/* The worker stops: destroys on their way end now, without waiting. */
void
ws_destroy_flush(void)
{
	struct ws_destroy	*d;

	while ((d = TAILQ_FIRST(&ws_destroys)) != NULL) {
		ws_stop(d->ws);
		ws_destroy_done(d);
	}
}

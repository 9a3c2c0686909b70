/*
 * control-workspace.c: workspaces on the controller side: the ops
 * workspace.create, workspace.list and workspace.destroy, which are
 * calls to the worker that owns them, and the `workspace` field of exec,
 * session.open, put, get and stat, passed on with the owner.
 *
 * The worker keeps each workspace with its owner (the peer's uid and
 * this controller's id, req_owner) and finds a workspace by name and
 * owner, so that names are per owner and hold across controller
 * restarts.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

/* A workspace.list over every worker: what came back, what is pending. */
struct ws_list {
	json_t	*list;
	int	 pending;
};

/*
 * Pass r's "workspace" (if any) on in open, with the owner the worker
 * looks it up by.
 */
void
control_workspace_pass(struct req *r, json_t *open)
{
	json_t	*v;

	if ((v = req_field(r, "workspace")) == NULL)
		return;
	json_object_set(open, "workspace", v);
	if (json_object_get(open, "owner") == NULL)
		json_object_set_new(open, "owner", req_owner(r));
}

/* A worker's answer, with the worker's id added to an ok reply. */
static void
ws_forward(struct req *r, json_t *res)
{
	if (json_is_true(json_object_get(res, "ok")))
		json_object_set_new(res, "worker", json_string(
		    server_worker_id(r->worker)));
	req_rpc_forward(r, res);
}

void
control_workspace_create(struct req *r)
{
	static const char *pass[] = { "network", "memory", "pids", "cpu",
	    "disk", "env", NULL };
	const char	**f, *net = req_string(r, "network");
	json_t		*msg, *v, *cpu = req_field(r, "cpu");

	if (net != NULL && strcmp(net, "none") != 0 &&
	    strcmp(net, "host") != 0) {
		req_error(r, "bad_request", "field 'network' must be \"none\" "
		    "or \"host\"");
		return;
	}
	if (net != NULL && strcmp(net, "host") == 0 &&
	    control_acl_check_network(r) == -1)
		return;
	if (cpu != NULL && (!json_is_number(cpu) ||
	    json_number_value(cpu) <= 0 || json_number_value(cpu) > 1024)) {
		req_error(r, "bad_request", "field 'cpu' must be a number of "
		    "cores above 0, up to 1024");
		return;
	}
	msg = json_pack("{s:s, s:o}", "op", "workspace.create", "owner",
	    req_owner(r));
	if ((v = req_field(r, "name")) != NULL ||
	    (v = req_field(r, "workspace")) != NULL) {
		if (!util_valid_id(json_string_value(v))) {
			json_decref(msg);
			req_error(r, "bad_request", "field 'name' must be 1 to "
			    "64 of A-Za-z0-9._-");
			return;
		}
		json_object_set(msg, "workspace", v);
	}
	for (f = pass; *f != NULL; f++)
		if ((v = req_field(r, *f)) != NULL)
			json_object_set(msg, *f, v);
	req_rpc(r, r->worker, msg, ws_forward);
}

void
control_workspace_destroy(struct req *r)
{
	req_rpc(r, r->worker, json_pack("{s:s, s:s, s:b, s:o}", "op",
	    "workspace.destroy", "workspace", req_string(r, "workspace"),
	    "keep", req_bool(r, "keep", 0), "owner", req_owner(r)),
	    ws_forward);
}

/* Free a list's state (its request's data). */
static void
ws_list_free(void *arg)
{
	struct ws_list	*l = arg;

	json_decref(l->list);
	free(l);
}

/* One worker's list came back: add it; reply when all did. */
static void
ws_list_done(struct req *r, json_t *res)
{
	struct ws_list	*l = r->data;
	json_t		*v;
	size_t		 i;

	json_array_foreach(json_object_get(res, "workspaces"), i, v)
		if (control_acl_visible(r->client, json_string_value(
		    json_object_get(v, "worker")), json_object_get(v, "owner")))
			json_array_append(l->list, v);
	if (--l->pending == 0)
		req_reply(r, json_pack("{s:O}", "workspaces", l->list));
}

void
control_workspace_list(struct req *r)
{
	struct ws_list	*l;
	struct worker	*w;
	const char	*id = req_string(r, "worker");

	l = xcalloc(1, sizeof *l);
	l->list = json_array();
	r->data = l;
	r->data_free = ws_list_free;
	l->pending = 1;		/* until every call is made */
	for (w = server_worker_next(NULL); w != NULL;
	    w = server_worker_next(w)) {
		if (id != NULL ? strcmp(id, server_worker_id(w)) != 0 :
		    !server_worker_connected(w))
			continue;
		if (server_worker_reachable(server_worker_id(w)) == NULL)
			continue;
		l->pending++;
		req_rpc(r, w, json_pack("{s:s}", "op", "workspace.list"),
		    ws_list_done);
	}
	if (id != NULL && l->pending == 1) {
		req_error(r, "no_such_worker", "worker '%s' is not connected",
		    id);
		return;
	}
	ws_list_done(r, NULL);
}

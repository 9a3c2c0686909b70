/*
 * control-cmd.c: the op table of the control protocol and the handlers
 * of the ops about the fleet itself (hello, workers, wait, subscribe,
 * stats). Each entry gives the op's name, its handler, flags, and the
 * specs of its fields; the fields are checked once here, before the
 * handler runs (control-req.c), and for OP_WORKER the named worker is
 * looked up. Commands, sessions and files have files of their own.
 */
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

struct op_entry {
	const char		*name;
	void			(*fn)(struct req *);
	int			 class;	/* ACL_*: what a rule must allow */
	int			 flags;
#define OP_WORKER	0x1	/* "worker" names one, connected or away */
#define OP_STARTS	0x2	/* starts work: under --rate */
#define OP_AUDIT	0x4	/* does something: to --audit */
#define OP_RUNS		0x8	/* runs on a worker: workspaces-only */
#define OP_BY_SESSION	0x10	/* with "session": a session op */
	const struct req_field	*fields;
};

static void	 cmd_hello(struct req *);
static void	 cmd_workers(struct req *);
static void	 cmd_wait(struct req *);
static void	 cmd_subscribe(struct req *);
static void	 cmd_stats(struct req *);

#define F_END		{ NULL, 0, 0, 0, 0, NULL }
#define F_STR(n)	{ n, FIELD_STRING, 0, 0, 0, NULL }
#define F_STR_REQ(n)	{ n, FIELD_STRING, FIELD_REQUIRED, 0, 0, NULL }
#define F_BOOL(n)	{ n, FIELD_BOOL, 0, 0, 0, NULL }
#define F_OBJ(n)	{ n, FIELD_OBJECT, 0, 0, 0, NULL }
#define F_SECS(n)	{ n, FIELD_SECONDS, 0, 0, 0, NULL }
#define F_BYTES(n)	{ n, FIELD_COUNT, 0, 0, FIELD_MAX_BYTES, NULL }
#define F_SIZE(n, f)	{ n, FIELD_COUNT, f, 1, 65535, NULL }
#define F_PATH		{ "path", FIELD_PATH, FIELD_REQUIRED, 0, 0,	\
			    "an absolute path" }
#define F_SESSION	F_STR_REQ("session")

static const struct req_field f_none[] = { F_END };
static const struct req_field f_workers[] = {
	F_OBJ("labels"), F_BOOL("all"), F_END
};
static const struct req_field f_wait[] = {
	F_STR("worker"), F_OBJ("labels"), F_BYTES("count"), F_SECS("timeout"),
	F_END
};
static const struct req_field f_exec[] = {
	REQ_COMMAND_FIELDS,
	F_STR("worker"),
	{ "workers", FIELD_ARRAY, 0, 0, 0, "an array of worker ids" },
	F_OBJ("labels"), F_SECS("timeout"), F_SECS("kill_grace"),
	F_SECS("yield_after"), F_BYTES("max_output"),
	{ "max_concurrency", FIELD_COUNT, 0, 0, 1000000, NULL },
	F_BOOL("env_clear"), F_BOOL("stream"), F_BOOL("stdin_open"),
	F_BOOL("merge_stderr"), { "limits", FIELD_COUNTS, 0, 0, 0,
	"an object of whole numbers" }, F_STR("workspace"), F_END
};
static const struct req_field f_read[] = {
	F_STR_REQ("handle"), F_STR("until"), F_SECS("timeout"), F_END
};
static const struct req_field f_write[] = {
	F_STR("handle"), F_STR("session"), F_BOOL("eof"), F_END
};
static const struct req_field f_signal[] = {
	F_STR("handle"), F_STR("session"), F_STR_REQ("signal"), F_END
};
static const struct req_field f_subscribe[] = {
	{ "topics", FIELD_ARRAY, FIELD_REQUIRED, 0, 0, "an array" }, F_END
};
static const struct req_field f_session_open[] = {
	REQ_COMMAND_FIELDS, F_SIZE("rows", 0), F_SIZE("cols", 0),
	F_STR("term"), F_BOOL("attach"), F_BOOL("raw"), F_STR("workspace"),
	F_END
};
static const struct req_field f_session_attach[] = {
	F_SESSION, F_BYTES("since"), F_BOOL("readonly"), F_BOOL("raw"), F_END
};
static const struct req_field f_session[] = { F_SESSION, F_END };
static const struct req_field f_session_resize[] = {
	F_SESSION, F_SIZE("rows", FIELD_REQUIRED),
	F_SIZE("cols", FIELD_REQUIRED), F_END
};
static const struct req_field f_session_read[] = {
	F_SESSION, F_BYTES("since"), F_STR("until"), F_SECS("timeout"),
	F_BYTES("max_bytes"), F_END
};
static const struct req_field f_session_run[] = {
	F_SESSION, { "cmd", FIELD_STRING, FIELD_REQUIRED | FIELD_NONUL, 0, 0,
	"a string without NUL" }, F_SECS("timeout"), F_END
};
static const struct req_field f_session_close[] = {
	F_SESSION, F_STR("signal"), F_END
};
static const struct req_field f_session_list[] = { F_STR("worker"), F_END };
static const struct req_field f_put[] = {
	F_PATH, { "mode", FIELD_COUNT, 0, 0, 07777,
	"permission bits, 0 to 4095 (07777)" }, F_BOOL("mkdir"),
	F_BYTES("bytes"), F_STR("workspace"), F_END
};
static const struct req_field f_get[] = {
	F_PATH, F_BYTES("offset"), F_BYTES("length"), F_BOOL("raw"),
	F_STR("workspace"), F_END
};
static const struct req_field f_stat[] = { F_PATH, F_STR("workspace"),
	F_END };
static const struct req_field f_ws_create[] = {
	F_STR("name"), F_STR("workspace"), F_STR("network"),
	{ "memory", FIELD_COUNT, 0, 1024 * 1024, FIELD_MAX_BYTES,
	"a number of bytes, at least 1048576" },
	{ "pids", FIELD_COUNT, 0, 1, 4194304, NULL },
	{ "cpu", FIELD_ANY, 0, 0, 0, NULL },
	{ "disk", FIELD_COUNT, 0, WS_MIN_DISK, FIELD_MAX_BYTES,
	"a number of bytes, at least 16777216" },
	{ "env", FIELD_ENV, 0, 0, 0, "an object mapping names to strings" },
	F_END
};
static const struct req_field f_ws_list[] = { F_STR("worker"), F_END };
static const struct req_field f_ws_destroy[] = {
	F_STR_REQ("workspace"), F_BOOL("keep"), F_END
};

/*
 * The ops: name, handler, the class an access rule must allow (0: any
 * peer), flags, fields. The workspace ops go in as ACL_WORKSPACE |
 * OP_AUDIT (workspace.create also OP_WORKER | OP_STARTS), and
 * workspace.list as ACL_VIEW, keeping of the workers' entries those
 * control_acl_visible(client, worker, entry's "owner") allows.
 */
static const struct op_entry control_ops[] = {
	{ "hello", cmd_hello, 0, 0, f_none },
	{ "workers", cmd_workers, ACL_VIEW, 0, f_workers },
	{ "wait", cmd_wait, ACL_VIEW, 0, f_wait },
	{ "exec", control_exec_cmd, ACL_EXEC, OP_STARTS | OP_AUDIT | OP_RUNS,
	  f_exec },
	{ "read", control_exec_read, ACL_EXEC, 0, f_read },
	{ "write", control_exec_write, ACL_EXEC, OP_AUDIT | OP_BY_SESSION,
	  f_write },
	{ "signal", control_exec_signal, ACL_EXEC, OP_AUDIT | OP_BY_SESSION,
	  f_signal },
	{ "subscribe", cmd_subscribe, ACL_VIEW, 0, f_subscribe },
	{ "stats", cmd_stats, ACL_VIEW, 0, f_none },
	{ "session.open", control_session_open, ACL_SESSION, OP_WORKER |
	  OP_STARTS | OP_AUDIT | OP_RUNS, f_session_open },
	{ "session.attach", control_session_attach, ACL_SESSION, OP_AUDIT,
	  f_session_attach },
	{ "session.detach", control_session_detach, ACL_SESSION, 0,
	  f_session },
	{ "session.write", control_session_write, ACL_SESSION, OP_AUDIT,
	  f_session },
	{ "session.resize", control_session_resize, ACL_SESSION, 0,
	  f_session_resize },
	{ "session.read", control_session_read, ACL_SESSION, 0,
	  f_session_read },
	{ "session.run", control_run_cmd, ACL_SESSION, OP_STARTS | OP_AUDIT,
	  f_session_run },
	{ "session.close", control_session_close, ACL_SESSION, OP_AUDIT,
	  f_session_close },
	{ "session.list", control_session_list, ACL_VIEW, 0, f_session_list },
	{ "put", control_file_put, ACL_FILES, OP_WORKER | OP_STARTS |
	  OP_AUDIT | OP_RUNS, f_put },
	{ "get", control_file_get, ACL_FILES, OP_WORKER | OP_STARTS |
	  OP_AUDIT | OP_RUNS, f_get },
	{ "stat", control_file_stat, ACL_FILES, OP_WORKER | OP_AUDIT | OP_RUNS,
	  f_stat },
	{ "workspace.create", control_workspace_create, ACL_WORKSPACE,
	  OP_WORKER | OP_STARTS | OP_AUDIT, f_ws_create },
	{ "workspace.list", control_workspace_list, ACL_VIEW, 0, f_ws_list },
	{ "workspace.destroy", control_workspace_destroy, ACL_WORKSPACE,
	  OP_WORKER | OP_AUDIT, f_ws_destroy },
};

/*
 * The command of an exec or session.open (fields already checked): one
 * of "cmd" and "argv", or (unless required) neither; a null counts as
 * absent. 0, or -1 after replying bad_request.
 */
int
control_cmd_command(struct req *r, int required)
{
	json_t	*cmd = req_field(r, "cmd"), *argv = req_field(r, "argv");

	if ((cmd != NULL && argv != NULL) ||
	    (required && cmd == NULL && argv == NULL)) {
		req_error(r, "bad_request", "%s needs %s of 'cmd' and 'argv'",
		    r->op, required ? "exactly one" : "at most one");
		return (-1);
	}
	return (0);
}

/*
 * What the peer of r may ask under the access rules and the limits:
 * denied, limit or rate_limited; 0 when it may go on. An audited op is
 * marked so here, so a refusal is audited too.
 */
static int
control_cmd_allowed(struct req *r, const struct op_entry *e)
{
	int	class = e->class;

	if (e->flags & OP_AUDIT)
		r->flags |= REQ_AUDIT;
	if ((e->flags & OP_BY_SESSION) && req_field(r, "session") != NULL)
		class = ACL_SESSION;
	if (e->flags & OP_RUNS)
		class |= ACL_WS_ONLY;
	if (control_acl_check(r, class) != 0) {
		server_stats.denied++;
		return (-1);
	}
	if (control_limit_inflight(r) != 0)
		return (-1);
	if ((e->flags & OP_STARTS) && control_limit_rate(r) != 0)
		return (-1);
	return (0);
}

/* Find the op of a request, check its fields and run it. */
static void
control_cmd_run(struct req *r)
{
	const struct op_entry	*e;
	const char		*op, *id;
	json_t			*v = json_object_get(r->msg, "op");
	size_t			 i;

	if (v == NULL || json_is_null(v)) {
		req_error(r, "bad_request", "field 'op' is required");
		return;
	}
	if ((op = json_string_value(v)) == NULL) {
		req_error(r, "bad_request", "field 'op' must be a string");
		return;
	}
	for (i = 0; i < sizeof control_ops / sizeof control_ops[0]; i++) {
		e = &control_ops[i];
		if (strcmp(op, e->name) != 0)
			continue;
		r->op = e->name;
		control_limit_count(r);
		if (req_check_fields(r, e->fields) != 0 ||
		    control_cmd_allowed(r, e) != 0)
			return;
		if (e->flags & OP_WORKER) {
			if ((id = req_string(r, "worker")) == NULL) {
				req_error(r, "bad_request", "field 'worker' is "
				    "required");
				return;
			}
			if ((r->worker = server_worker_reachable(id)) == NULL) {
				req_error(r, "no_such_worker", "worker '%s' is "
				    "not connected", id);
				return;
			}
		}
		e->fn(r);
		return;
	}
	req_error(r, "unknown_op", "unknown op '%s'", op);
}

/* One request line: msg is NULL when it is not JSON (jsonerr says why). */
void
control_cmd_dispatch(struct client *cl, json_t *msg, const char *jsonerr)
{
	struct req	*r;
	json_t		*reply;

	if (msg == NULL || !json_is_object(msg)) {
		reply = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error",
		    "code", "bad_request", "message", msg == NULL ?
		    "request is not valid JSON" : "request is not an object");
		if (msg == NULL && jsonerr != NULL)
			json_object_set_new(json_object_get(reply, "error"),
			    "detail", json_string(jsonerr));
		server_count_error("bad_request");
		control_client_send(cl, reply);
		json_decref(reply);
		return;
	}
	r = req_create(cl, msg);
	if (json_object_get(msg, "id") != NULL && r->id == NULL) {
		req_error(r, "bad_request", "field 'id' must be a string or "
		    "an integer");
		return;
	}
	control_cmd_run(r);
}

/* ---- hello, workers, wait, subscribe, stats ---- */

static void
cmd_hello(struct req *r)
{
	req_reply(r, json_pack("{s:s, s:i}", "version", SANDD_VERSION,
	    "protocol", CONTROL_PROTOCOL));
}

static void
cmd_workers(struct req *r)
{
	json_t		*labels = req_field(r, "labels"), *list;
	struct worker	*w;
	int		 all = req_bool(r, "all", 0);

	list = json_array();
	for (w = server_worker_next(NULL); w != NULL;
	    w = server_worker_next(w)) {
		if (!all && server_worker_reachable(server_worker_id(w)) ==
		    NULL)
			continue;
		if (server_worker_matches(w, labels) &&
		    control_acl_covers(r->client, w))
			json_array_append_new(list, server_worker_json(w));
	}
	req_reply(r, json_pack("{s:o}", "workers", list));
}

static void
wait_timeout_cb(__unused evutil_socket_t fd, __unused short what, void *arg)
{
	struct req	*r = arg;

	req_error(r, "timeout", "wait: condition not met in time");
}

/* Reply if the wait condition of r holds now. */
static void
cmd_wait_check(struct req *r, __unused void *arg)
{
	const char	*id = req_string(r, "worker");
	json_t		*labels = req_field(r, "labels"), *list;
	json_int_t	 count = req_int(r, "count", 1);
	struct worker	*w;

	if (!(r->flags & REQ_WAIT))
		return;
	list = json_array();
	for (w = server_worker_next(NULL); w != NULL;
	    w = server_worker_next(w)) {
		if (!server_worker_connected(w) ||
		    !control_acl_covers(r->client, w))
			continue;
		if (id != NULL ? strcmp(id, server_worker_id(w)) == 0 :
		    server_worker_matches(w, labels))
			json_array_append_new(list, server_worker_json(w));
	}
	if ((json_int_t)json_array_size(list) >= count)
		req_reply(r, json_pack("{s:o}", "workers", list));
	else
		json_decref(list);
}

static void
cmd_wait(struct req *r)
{
	struct timeval	tv;

	if (req_field(r, "worker") == NULL && req_field(r, "labels") == NULL) {
		req_error(r, "bad_request", "wait needs 'worker' or 'labels'");
		return;
	}
	r->flags |= REQ_WAIT;
	r->timer = evtimer_new(ev_base, wait_timeout_cb, r);
	util_timeval(&tv, req_number(r, "timeout", 30));
	evtimer_add(r->timer, &tv);
	cmd_wait_check(r, NULL);
}

/* May the subscriber cl hear of worker arg? */
static int
cmd_worker_visible(struct client *cl, void *arg)
{
	return (control_acl_covers(cl, arg));
}

/* A worker changed state: tell subscribers, wake waits. */
static void
cmd_worker_changed(struct worker *w, const char *state)
{
	json_t	*ev;

	ev = json_pack("{s:s, s:s, s:s}", "event", "worker", "worker",
	    server_worker_id(w), "state", state);
	control_broadcast_event(TOPIC_WORKERS, ev, cmd_worker_visible, w);
	json_decref(ev);
	req_foreach(cmd_wait_check, NULL);
}

static void
cmd_subscribe(struct req *r)
{
	json_t		*topics = req_field(r, "topics"), *t;
	size_t		 i;
	int		 mask = 0;
	const char	*name;

	json_array_foreach(topics, i, t) {
		name = json_string_value(t);
		if (name != NULL && strcmp(name, "workers") == 0)
			mask |= TOPIC_WORKERS;
		else if (name != NULL && strcmp(name, "sessions") == 0)
			mask |= TOPIC_SESSIONS;
		else {
			req_error(r, "bad_request", "unknown topic in "
			    "'topics'");
			return;
		}
	}
	control_client_subscribe(r->client, mask);
	req_reply(r, json_pack("{s:O}", "topics", topics));
}

static void
cmd_stats(struct req *r)
{
	req_reply(r, server_stats_json());
}

/* Set up what the op handlers need from the rest of the controller. */
void
control_cmd_init(void)
{
	server_worker_watch(cmd_worker_changed);
}

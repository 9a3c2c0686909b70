/*
 * control-audit.c: the audit trail (--audit FILE). One JSON line per
 * finished request that does something (the ops flagged OP_AUDIT in
 * control-cmd.c's table), and one per worker that connects,
 * disconnects or is refused.
 *
 * A line carries who (uid, pid), what (op, worker, session, command,
 * path) and how it ended (ok, error code, exit status, digest,
 * duration), picked field by field from the request and its reply: a
 * field not named here never gets in, so no env value, stdin, file
 * content, keystroke or token does. SIGHUP reopens FILE, for rotation.
 */
#include <sys/types.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"

static int	 audit_fd = -1;
static int	 audit_failing;		/* the last write failed */

/* Fields copied from the request, as they are. */
static const char *audit_req_fields[] = {
	"worker", "workers", "labels", "workspace", "session", "handle",
	"cmd", "argv", "cwd", "user", "path", "signal", NULL
};
/* Fields copied from the reply, over the request's. */
static const char *audit_reply_fields[] = {
	"worker", "workspace", "session", "handle", "exit_code", "signal",
	"sha256", "timed_out", NULL
};

/* Open (or reopen) path for appending; -1 with *cause. */
static int
audit_open_fd(const char *path, char **cause)
{
	int	fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		xasprintf(cause, "--audit %s: %s", path, strerror(errno));
		return (-1);
	}
	return (fd);
}

/* A worker came or went: its line. */
static void
audit_worker_changed(struct worker *w, const char *state)
{
	if (strcmp(state, "connected") == 0)
		control_audit_worker("worker.connect", server_worker_id(w),
		    server_worker_addr(w), NULL);
	else if (strcmp(state, "disconnected") == 0)
		control_audit_worker("worker.disconnect", server_worker_id(w),
		    server_worker_addr(w), server_worker_why(w));
}

/* Start the audit trail at path (and hear of workers). */
int
control_audit_open(const char *path, char **cause)
{
	if ((audit_fd = audit_open_fd(path, cause)) == -1)
		return (-1);
	server_worker_watch(audit_worker_changed);
	return (0);
}

/* SIGHUP: open the file again (it may have been rotated away). */
void
control_audit_reopen(void)
{
	char	*cause;
	int	 fd;

	if (audit_fd == -1)
		return;
	if ((fd = audit_open_fd(serve_opts.audit, &cause)) == -1) {
		log_warnx("SIGHUP: %s (writing on to the file open before)",
		    cause);
		free(cause);
		return;
	}
	close(audit_fd);
	audit_fd = fd;
	audit_failing = 0;
	log_info("SIGHUP: reopened %s", serve_opts.audit);
}

void
control_audit_close(void)
{
	if (audit_fd != -1)
		close(audit_fd);
	audit_fd = -1;
}

/* A new line with ts, RFC 3339 UTC to the millisecond. */
static json_t *
audit_line(void)
{
	struct timeval	tv;
	struct tm	tm;
	char		ts[64];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
	return (json_pack("{s:s}", "ts", ts));
}

/* Append line (stolen) to the file; a failure is logged once a streak. */
static void
audit_write(json_t *line)
{
	char	*s;
	size_t	 len, off = 0;
	ssize_t	 n;

	s = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(12));
	json_decref(line);
	if (s == NULL)
		return;
	len = strlen(s);
	s[len++] = '\n';	/* over the NUL: written by length */
	while (off < len) {
		if ((n = write(audit_fd, s + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			if (!audit_failing)
				log_warn("audit: write to %s",
				    serve_opts.audit);
			audit_failing = 1;
			break;
		}
		off += (size_t)n;
	}
	if (off == len)
		audit_failing = 0;
	free(s);
}

/* Copy the named fields of from (those present) into to. */
static void
audit_copy(json_t *to, json_t *from, const char **fields)
{
	json_t	*v;

	for (; *fields != NULL; fields++)
		if ((v = json_object_get(from, *fields)) != NULL &&
		    !json_is_null(v))
			json_object_set(to, *fields, v);
}

/* How many bytes a write or put carried, or -1 when none. */
static json_int_t
audit_bytes(struct req *r, json_t *reply)
{
	struct evbuffer	*b;
	char		*cause = NULL;
	json_int_t	 n = -1;

	if (json_is_integer(json_object_get(reply, "size")))
		return (json_integer_value(json_object_get(reply, "size")));
	if (json_is_integer(json_object_get(r->msg, "bytes")))
		return (json_integer_value(json_object_get(r->msg, "bytes")));
	b = evbuffer_new();
	if (util_json_get_bytes(r->msg, "data", b, &cause) == 1)
		n = (json_int_t)evbuffer_get_length(b);
	free(cause);
	evbuffer_free(b);
	return (n);
}

/* For a broadcast: who ran it and how each ended, no output. */
static json_t *
audit_results(json_t *results)
{
	static const char	*fields[] = { "worker", "ok", "exit_code",
				    "signal", "timed_out", NULL };
	json_t			*list = json_array(), *res, *o;
	size_t			 i;

	json_array_foreach(results, i, res) {
		o = json_object();
		audit_copy(o, res, fields);
		if (json_object_get(res, "error") != NULL)
			json_object_set(o, "error", json_object_get(
			    json_object_get(res, "error"), "code"));
		json_array_append_new(list, o);
	}
	return (list);
}

/*
 * Request r ends with reply (ok) or err (an error object), or neither
 * (its client went away first). Once per request marked REQ_AUDIT.
 */
void
control_audit_request(struct req *r, json_t *reply, json_t *err)
{
	const struct compat_peer	*p;
	json_t				*line;
	struct chan			*c;
	const char			*sid;
	json_int_t			 n;

	if (!(r->flags & REQ_AUDIT))
		return;
	r->flags &= ~REQ_AUDIT;
	if (audit_fd == -1)
		return;
	line = audit_line();
	p = control_client_peer(r->client);
	json_object_set_new(line, "uid", json_integer(p != NULL ?
	    (json_int_t)p->uid : -1));
	json_object_set_new(line, "pid", json_integer(p != NULL ?
	    (json_int_t)p->pid : -1));
	json_object_set_new(line, "op", json_string(r->op));
	if (r->id != NULL)
		json_object_set(line, "id", r->id);
	audit_copy(line, r->msg, audit_req_fields);
	audit_copy(line, reply, audit_reply_fields);
	if ((sid = json_string_value(json_object_get(line, "session"))) !=
	    NULL && json_object_get(line, "worker") == NULL &&
	    (c = chan_find_handle(sid, &chan_session_ops)) != NULL)
		json_object_set_new(line, "worker", json_string(
		    server_worker_id(c->worker)));
	if ((n = audit_bytes(r, reply)) >= 0)
		json_object_set_new(line, "bytes", json_integer(n));
	if (json_is_array(json_object_get(reply, "results")))
		json_object_set_new(line, "results", audit_results(
		    json_object_get(reply, "results")));
	json_object_set_new(line, "ok", json_boolean(reply != NULL));
	if (err != NULL)
		json_object_set(line, "error", json_object_get(err, "code"));
	else if (reply == NULL)
		json_object_set_new(line, "error", json_string("cancelled"));
	json_object_set_new(line, "duration_ms", json_real(
	    (double)(long long)((util_now() - r->started) * 1e4) / 10));
	audit_write(line);
}

/*
 * A worker event: worker.connect, worker.disconnect or worker.refused,
 * from addr, with a reason (or NULL).
 */
void
control_audit_worker(const char *event, const char *id, const char *addr,
    const char *reason)
{
	json_t	*line;

	if (audit_fd == -1)
		return;
	line = audit_line();
	json_object_set_new(line, "event", json_string(event));
	if (id != NULL && *id != '\0')
		json_object_set_new(line, "worker", json_string(id));
	json_object_set_new(line, "addr", json_string(addr));
	if (reason != NULL && *reason != '\0')
		json_object_set_new(line, "reason", json_string(reason));
	audit_write(line);
}

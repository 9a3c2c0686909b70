/*
 * worker.c: `sandd worker`. The process: its options, token, groups and
 * signals, the reaper every job shares, and the RPCs it answers. Its
 * links to one or more controllers (dialing, hello, dispatch, backoff)
 * are worker-link.c's; the jobs run on whatever happens to them.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "sandd.h"

static char		 boot[33];
static char		*token;
static SSL_CTX		*worker_tls;
static struct event	*stop_ev;
static struct event	*sig_ev[4];
static int		 exit_status;
static int		 stopping;

/* Children: pid -> callback, so jobs and sessions share one reaper. */
struct child {
	pid_t		 pid;
	void		(*cb)(pid_t, int, void *);
	void		*arg;
	TAILQ_ENTRY(child) entry;
};
static TAILQ_HEAD(, child) children = TAILQ_HEAD_INITIALIZER(children);

/* This process's boot id, said in every hello. */
const char *
worker_boot(void)
{
	return (boot);
}

/* Call cb(pid, status, arg) when pid is reaped. */
void
worker_child_add(pid_t pid, void (*cb)(pid_t, int, void *), void *arg)
{
	struct child	*c;

	c = xcalloc(1, sizeof *c);
	c->pid = pid;
	c->cb = cb;
	c->arg = arg;
	TAILQ_INSERT_TAIL(&children, c, entry);
}

/*
 * Reap every child that exited and call its callback: on SIGCHLD, and
 * when a command's output ends (it has most often exited by then).
 */
void
worker_reap(void)
{
	struct child	*c;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		TAILQ_FOREACH(c, &children, entry)
			if (c->pid == pid)
				break;
		if (c == NULL)
			continue;
		TAILQ_REMOVE(&children, c, entry);
		c->cb(pid, status, c->arg);
		free(c);
	}
}

/* Reply to the RPC req with the fields of res (stolen), on its link. */
void
worker_reply(json_t *req, json_t *res)
{
	json_t	*m;

	m = wire_msg(WIRE_T_RES);
	json_object_set(m, "rid", json_object_get(req, "rid"));
	json_object_update_new(m, res);
	wlink_send(wlink_of_req(req), m);
	json_decref(m);
}

/* An error reply to the RPC req. */
void
worker_reply_error(json_t *req, const char *code, int err, const char *fmt,
    ...)
{
	va_list	 ap;
	json_t	*e;

	va_start(ap, fmt);
	e = wire_verror(code, err, fmt, ap);
	va_end(ap);
	worker_reply(req, json_pack("{s:b, s:o}", "ok", 0, "error", e));
}

/* The RPCs the worker answers. */
static const struct {
	const char	*op;
	void		(*fn)(json_t *);
} worker_rpcs[] = {
	{ "stat", worker_file_stat },
	{ "session.read", worker_session_read },
	{ "session.resize", worker_session_resize },
	{ "session.run", worker_session_run },
	{ "session.signal", worker_session_signal },
	{ "session.close", worker_session_close },
	{ "workspace.create", worker_workspace_create },
	{ "workspace.list", worker_workspace_list },
	{ "workspace.destroy", worker_workspace_destroy },
};

/* A req: run the RPC its op names; it replies on the link that asked. */
void
worker_rpc(json_t *msg)
{
	const char	*op = json_string_value(json_object_get(msg, "op"));
	size_t		 i;

	if (op == NULL) {
		worker_reply_error(msg, "bad_request", 0, "rpc without op");
		return;
	}
	for (i = 0; i < sizeof worker_rpcs / sizeof worker_rpcs[0]; i++) {
		if (strcmp(op, worker_rpcs[i].op) == 0) {
			worker_rpcs[i].fn(msg);
			return;
		}
	}
	worker_reply_error(msg, "unknown_op", 0, "unknown op '%s'", op);
}

/* Stop: every job is told TERM, every link closes (within 2 s). */
static void
worker_stop(void)
{
	struct timeval	tv = { 2, 0 };

	if (stopping)
		return;
	stopping = 1;
	job_shutdown();
	if (wlink_stop_all() == 0) {
		event_base_loopexit(ev_base, NULL);
		return;
	}
	evtimer_add(stop_ev, &tv);	/* do not wait for ever */
}

/* Another worker with our id took over at a controller: we stop. */
void
worker_replaced(void)
{
	exit_status = 1;
	worker_stop();
}

/* SIGCHLD reaps; TERM and INT stop the worker, HUP is ignored. */
static void
worker_signal_cb(evutil_socket_t sig, __unused short what, __unused void *arg)
{
	if (sig == SIGCHLD) {
		worker_reap();
		return;
	}
	if (sig == SIGHUP)
		return;
	log_info("signal %d: stopping", (int)sig);
	worker_stop();
}

/* The close did not finish in time: stop anyway. */
static void
stop_cb(__unused evutil_socket_t fd, __unused short what, __unused void *arg)
{
	event_base_loopexit(ev_base, NULL);
}

/*
 * Wipe the value of environment variable name where it lies (the memory
 * that /proc/PID/environ shows to every process of our user, the
 * commands we run among them) and drop it from the environment.
 */
static void
worker_env_scrub(const char *name)
{
	char	*v;

	if ((v = getenv(name)) != NULL)
		compat_explicit_bzero(v, strlen(v));
	unsetenv(name);
}

/* Warn about a token file that other users may read or write. */
static void
worker_token_file_check(FILE *f)
{
	struct stat	st;

	if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IROTH | S_IWOTH)))
		log_warnx("token file %s has mode %04o: every user of this "
		    "host may %s it; make it 0600", worker_opts.token_file,
		    (unsigned)(st.st_mode & 07777),
		    (st.st_mode & S_IROTH) ? "read" : "write");
}

/*
 * Read the token from --token-file or $SANDD_TOKEN; either way it leaves
 * the environment, so no command inherits or reads it.
 */
static int
worker_load_token(char **cause)
{
	FILE		*f;
	char		 buf[4096];
	const char	*env;
	size_t		 n, start, end;
	int		 rc = 0;

	if (worker_opts.token_file != NULL) {
		if ((f = fopen(worker_opts.token_file, "r")) == NULL) {
			xasprintf(cause, "open %s: %s", worker_opts.token_file,
			    strerror(errno));
			rc = -1;
			goto out;
		}
		worker_token_file_check(f);
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		for (start = 0; start < n && strchr(" \t\r\n", buf[start]);
		    start++)
			;
		for (end = n; end > start && strchr(" \t\r\n", buf[end - 1]);
		    end--)
			;
		if (end == start) {
			xasprintf(cause, "%s is empty", worker_opts.token_file);
			rc = -1;
			goto out;
		}
		token = xstrndup(buf + start, end - start);
		compat_explicit_bzero(buf, sizeof buf);
	} else if ((env = getenv("SANDD_TOKEN")) != NULL && *env != '\0')
		token = xstrdup(env);
out:
	worker_env_scrub("SANDD_TOKEN");
	return (rc);
}

/*
 * Before any work: the worker's groups (and what an earlier process of
 * this id left in them), its guardian, and its own protection from the
 * OOM killer (best effort: it needs CAP_SYS_RESOURCE).
 */
static void
worker_protect(void)
{
	unsigned char	 md[32];
	char		*self = NULL, buf[8192], hex[65];
	char		 name[WORKER_ID_MAX + 16];
	ssize_t		 n;
	int		 fd;

	if ((fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(fd, buf, sizeof buf - 1)) > 0) {
			buf[n] = '\0';
			self = buf;
		}
		close(fd);
	}
	/* The same id with another state folder is another worker. */
	snprintf(name, sizeof name, "%s", worker_opts.id);
	if (state_folder() != NULL) {
		SHA256((const unsigned char *)state_folder(),
		    strlen(state_folder()), md);
		util_sha256_hex(md, hex);
		snprintf(name, sizeof name, "%s.%.8s", worker_opts.id, hex);
	}
	cgroup_init("/sys/fs/cgroup", self != NULL ? self : "", name);
	cgroup_guard_start();
	cgroup_make();
	cgroup_sweep();
	if (!cgroup_tracking() && prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("%s: PR_SET_CHILD_SUBREAPER", __func__);
	if ((fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC)) !=
	    -1) {
		if (write(fd, "-900", 4) != 4)
			log_debug("%s: oom_score_adj -900: %s", __func__,
			    strerror(errno));
		close(fd);
	}
}

/* Run the worker until SIGTERM or SIGINT. */
int
worker_main(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	char	*cause;
	int	 i;

	if (wlink_parse(worker_opts.urls, &cause) != 0 ||
	    worker_load_token(&cause) != 0 || path_init(&cause) != 0 ||
	    policy_init(&cause) != 0) {
		fprintf(stderr, "sandd worker: %s\n", cause);
		free(cause);
		return (2);
	}
	if (wlink_need_tls()) {
		worker_tls = tls_client_ctx(worker_opts.ca,
		    worker_opts.tls_cert, worker_opts.tls_key, &cause);
		if (worker_tls == NULL) {
			fprintf(stderr, "sandd worker: %s\n", cause);
			free(cause);
			return (1);
		}
	}
	util_random_hex(boot, sizeof boot);
	stop_ev = evtimer_new(ev_base, stop_cb, NULL);
	for (i = 0; i < 4; i++) {
		sig_ev[i] = evsignal_new(ev_base, sigs[i], worker_signal_cb,
		    NULL);
		evsignal_add(sig_ev[i], NULL);
	}
	spawn_note_signals();	/* every handler is in place */
	state_init();
	worker_protect();
	workspace_init();
	hash_init();
	log_info("worker %s (boot %s) dialing %zu controller URL(s)",
	    worker_opts.id, boot, json_array_size(worker_opts.urls));
	wlink_start(worker_tls, token);
	event_base_dispatch(ev_base);

	job_free_all();
	workspace_shutdown();
	cgroup_shutdown();
	hash_shutdown();
	wlink_free_all();
	ws_conn_free_lingering();
	for (i = 0; i < 4; i++)
		event_free(sig_ev[i]);
	event_free(stop_ev);
	if (worker_tls != NULL)
		SSL_CTX_free(worker_tls);
	if (token != NULL) {
		compat_explicit_bzero(token, strlen(token));
		free(token);
	}
	log_info("stopped");
	return (exit_status);
}

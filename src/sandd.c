/*
 * sandd.c: main and the one subcommand table (name, function, usage,
 * summary). `serve` and `worker` parse their options here and hand over
 * to server.c and worker.c; every other subcommand is a client of the
 * control socket and runs under client_main (client.c).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

struct event_base	*ev_base;
struct serve_options	 serve_opts;
struct worker_options	 worker_opts;

static int	 sandd_serve(int, char **);
static int	 sandd_worker(int, char **);
static __dead void usage(int);

/*
 * The subcommands, as tmux's cmd_entry: the name, what runs it, the
 * usage line for --help and usage errors, a summary for `sandd --help`
 * (also the description line of `sandd NAME --help`) and the options
 * explained, one after another, as `sandd NAME --help` prints them.
 * The client ones run under client_main (client.c).
 */
struct sandd_cmd {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*usage;
	const char	*help;
	const char	*options;
#define SANDD_CMD_CLIENT	0x1
	int		 flags;
};

/* The options every client subcommand has, at the end of its list. */
#define CLIENT_OPTIONS_COMMON						\
	"  -S, --socket PATH\n"						\
	"      The controller's control socket. Default: $SANDD_CONTROL,\n" \
	"      else /run/sandd/control.sock for root and, for other\n"	\
	"      users, $XDG_RUNTIME_DIR/sandd/control.sock or\n"		\
	"      /tmp/sandd-UID/control.sock.\n"				\
	"  -h, --help\n"						\
	"      Print this help and exit.\n"

static const struct sandd_cmd sandd_cmds[] = {
	{ "serve", sandd_serve,
	  "--listen HOST:PORT [--control PATH] [--token-file F] [options]",
	  "run the controller", NULL, 0 },
	{ "worker", sandd_worker,
	  "-s ws[s]://HOST:PORT/ws [-d ID] [-l K=V]... [--token-file F] "
	  "[options]",
	  "run a worker that dials the controller", NULL, 0 },
	{ "exec", client_exec,
	  "[options] worker [--] command [arg ...]\n"
	  "       sandd exec [options] -l K=V [-l K=V]... -- command [arg ...]",
	  "run a command on a worker (or on every worker with the labels)",
	  "  -t, --timeout SECS\n"
	  "      Stop the command after SECS: SIGTERM, SIGKILL two seconds\n"
	  "      later; exit 124. Default: no limit.\n"
	  "  -e, --env K=V\n"
	  "      Set an environment variable for the command; repeatable.\n"
	  "  -C, --cwd DIR\n"
	  "      Run the command in DIR. Default: the worker's working\n"
	  "      folder.\n"
	  "  -l, --label K=V\n"
	  "      Run on every connected worker with this label (all of\n"
	  "      them when repeated) instead of on one; repeatable.\n"
	  "  -P, --pty\n"
	  "      Run the command on a terminal, as ssh -t does: a session\n"
	  "      as sandd shell opens (raw mode, window size, ~. detaches);\n"
	  "      exit with its status. Default: pipes, no terminal.\n"
	  "  -W, --workspace NAME\n"
	  "      Run it in this workspace of the worker (see sandd\n"
	  "      workspace). Default: on the worker itself.\n"
	  "  --no-wait\n"
	  "      Fail at once (status 255) when the worker is found\n"
	  "      disconnected, as we start or while we wait. Default: wait\n"
	  "      for it to come back within the controller's resume window.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "shell", client_shell,
	  "[options] worker [-- command [arg ...]]",
	  "open an interactive session on a worker",
	  "  -W, --workspace NAME\n"
	  "      Open it in this workspace of the worker (see sandd\n"
	  "      workspace). Default: on the worker itself.\n"
	  "  --reconnect\n"
	  "      When the controller goes away, connect again (pausing\n"
	  "      longer each time) and attach where the output shown ends,\n"
	  "      for as long as the session lives. Default: say how to\n"
	  "      come back (sandd attach SESSION) and exit 255.\n"
	  "  --no-wait\n"
	  "      Fail at once (status 255) when the worker is found\n"
	  "      disconnected, as we start or while we wait. Default: wait\n"
	  "      for it to come back within the controller's resume window.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "attach", client_attach,
	  "[options] session",
	  "attach to a running session",
	  "  -r, --readonly\n"
	  "      Watch only: send no keys and no window sizes.\n"
	  "  --since OFFSET\n"
	  "      Replay the output from this byte offset on.\n"
	  "      Default: all the output the session still keeps.\n"
	  "  --reconnect\n"
	  "      When the controller goes away, connect again (pausing\n"
	  "      longer each time) and attach where the output shown ends,\n"
	  "      for as long as the session lives. Default: say how to\n"
	  "      come back (sandd attach SESSION) and exit 255.\n"
	  "  --no-wait\n"
	  "      Fail at once (status 255) when the worker is found\n"
	  "      disconnected, as we start or while we wait. Default: wait\n"
	  "      for it to come back within the controller's resume window.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "sessions", client_sessions,
	  "[options]",
	  "list sessions",
	  "  -w, --worker ID\n"
	  "      Only the sessions of this worker. Default: every worker.\n"
	  "  --json\n"
	  "      Print the list as JSON instead of a table.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "cp", client_cp,
	  "[options] source destination\n"
	  "  (WORKER:PATH on one side; - for stdin or stdout)",
	  "copy files to and from workers",
	  "  -r, --recursive\n"
	  "      Copy a folder and everything in it (tar on both sides).\n"
	  "  -p, --preserve\n"
	  "      Keep the modification time and the set-id and sticky\n"
	  "      bits. Default: the permission bits only, through the\n"
	  "      umask on the local side.\n"
	  "  -W, --workspace NAME\n"
	  "      Copy in this workspace of the worker (see sandd\n"
	  "      workspace). Default: on the worker itself.\n"
	  "  --no-wait\n"
	  "      Fail at once (status 255) when the worker is found\n"
	  "      disconnected, as we start or while we wait. Default: wait\n"
	  "      for it to come back within the controller's resume window.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "workspace", client_workspace_cmd,
	  "create [options] worker [name]\n"
	  "       sandd workspace list [options]\n"
	  "       sandd workspace destroy [--keep] worker name",
	  "create, list and destroy isolated workspaces on workers",
	  "  --memory BYTES, --pids N, --cpu CORES, --disk BYTES\n"
	  "      create: the workspace's limits (K, M, G suffixes for\n"
	  "      memory and disk; cpu in cores, such as 0.5). Default:\n"
	  "      the worker's ceilings, else none.\n"
	  "  --network none|host\n"
	  "      create: only its own loopback (none, the default), or\n"
	  "      the host's network.\n"
	  "  -e, --env K=V\n"
	  "      create: the default environment inside; repeatable.\n"
	  "  -w, --worker ID\n"
	  "      list: only the workspaces of this worker.\n"
	  "  --json\n"
	  "      list: print JSON instead of a table.\n"
	  "  --keep\n"
	  "      destroy: keep /workspace as a folder on the worker's disk.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "workers", client_workers,
	  "[options]",
	  "list workers",
	  "  -l, --label K=V\n"
	  "      Only workers with this label; repeatable.\n"
	  "  -a, --all\n"
	  "      Also the workers gone past the resume window.\n"
	  "  --json\n"
	  "      Print the list as JSON instead of a table.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "wait", client_wait,
	  "[options] worker\n"
	  "       sandd wait [options] -l K=V [-l K=V]... [-n count]",
	  "wait for a worker to connect",
	  "  -t, --timeout SECS\n"
	  "      Give up after SECS and exit 1. Default: 30.\n"
	  "  -l, --label K=V\n"
	  "      Wait for workers with this label instead of one by\n"
	  "      name; repeatable.\n"
	  "  -n, --count N\n"
	  "      With -l, how many must be connected. Default: 1.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "stats", client_stats,
	  "[options]",
	  "print the controller's counters",
	  "  --json\n"
	  "      Print the counters as JSON instead of NAME VALUE lines.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "audit", client_audit,
	  "[options] FILE  (- for stdin)",
	  "show the controller's audit file (serve --audit)",
	  "  -w, --worker ID\n"
	  "      Only the records about this worker.\n"
	  "  -u, --uid UID\n"
	  "      Only the requests of this uid (a number or a user name).\n"
	  "  -s, --since TIME\n"
	  "      Only the records from TIME on: an RFC 3339 UTC time (or\n"
	  "      its start, as 2024-05-01), or a time ago, as 30s, 10m,\n"
	  "      2h or 7d. Default: all.\n"
	  "  --json\n"
	  "      Print the records as the JSON lines they are instead of\n"
	  "      one readable line each.\n"
	  "  -h, --help\n"
	  "      Print this help and exit.\n",
	  SANDD_CMD_CLIENT },
	{ "ctl", client_ctl,
	  "[options]  (JSON request lines on stdin)",
	  "send JSON requests from stdin, print replies",
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
};

/* The entry of subcommand name, or NULL. */
static const struct sandd_cmd *
sandd_cmd_find(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof sandd_cmds / sizeof sandd_cmds[0]; i++) {
		if (strcmp(name, sandd_cmds[i].name) == 0)
			return (&sandd_cmds[i]);
	}
	return (NULL);
}

/* `sandd --help`: the subcommands and their summaries; exit with status. */
static __dead void
usage(int status)
{
	size_t	i;
	FILE	*f = status == 0 ? stdout : stderr;

	fprintf(f, "usage: sandd command [options]\n\ncommands:\n");
	for (i = 0; i < sizeof sandd_cmds / sizeof sandd_cmds[0]; i++)
		fprintf(f, "  %-10s %s\n", sandd_cmds[i].name,
		    sandd_cmds[i].help);
	fprintf(f, "\n`sandd COMMAND --help` describes one; see sandd(8).\n");
	exit(status);
}

#define SO(f)	offsetof(struct serve_options, f)
#define WO(f)	offsetof(struct worker_options, f)

static const struct opt_spec serve_specs[] = {
	{ "listen", 0, OPT_HOSTPORT, SO(listen), 0, 0, "HOST:PORT", NULL,
	  "where workers connect (required)" },
	{ "control", 0, OPT_STRING, SO(control), 0, 0, "PATH", NULL,
	  "the control socket (default: see FILES in sandd(8))" },
	{ "control-mode", 0, OPT_OCTAL, SO(control_mode), 0, 0777, "OCTAL",
	  "0 to 0777", "mode of the control socket (0660)" },
	{ "state-dir", 0, OPT_STRING, SO(state_dir), 0, 0, "DIR", NULL,
	  "where the key behind worker secrets is kept" },
	{ "token-file", 0, OPT_STRING, SO(token_file), 0, 0, "FILE", NULL,
	  "worker grants: ID TOKEN or ID sha256:HEX [LABEL=GLOB]..." },
	{ "tls-cert", 0, OPT_STRING, SO(tls_cert), 0, 0, "FILE", NULL,
	  "serve wss:// with this certificate (and --tls-key)" },
	{ "tls-key", 0, OPT_STRING, SO(tls_key), 0, 0, "FILE", NULL,
	  "the certificate's private key" },
	{ "tls-client-ca", 0, OPT_STRING, SO(tls_client_ca), 0, 0, "FILE",
	  NULL, "workers need a certificate from this CA naming their id" },
	{ "tls-any-id", 0, OPT_FLAG, SO(tls_any_id), 0, 0, NULL, NULL,
	  "a client certificate need not name the worker's id" },
	{ "resume-window", 0, OPT_SECONDS, SO(resume_window), 0, 0, "SECS",
	  NULL, "how long requests wait for a worker that left (30)" },
	{ "ping-interval", 0, OPT_SECONDS, SO(ping_interval), 1, 0, "SECS",
	  NULL, "ping a silent worker this often (10)" },
	{ "ping-timeout", 0, OPT_SECONDS, SO(ping_timeout), 1, 0, "SECS",
	  NULL, "drop a worker silent this long (30)" },
	{ "max-line", 0, OPT_SIZE, SO(max_line), 1024 * 1024,
	  1024 * 1024 * 1024, "BYTES", "1M to 1G",
	  "longest control request line (4M)" },
	{ "max-output", 0, OPT_SIZE, SO(max_output), 0, 0, "BYTES", NULL,
	  "most output an exec reply carries per stream (16M)" },
	{ "max-handshakes", 0, OPT_INT, SO(max_handshakes), 1, 100000, "N",
	  "1 to 100000", "WebSocket handshakes in progress at once (1024)" },
	{ "max-handshakes-per-addr", 0, OPT_INT, SO(max_handshakes_addr), 1,
	  100000, "N", "1 to 100000",
	  "one address's share of them when all are taken (512)" },
	{ "handshake-rate", 0, OPT_INT, SO(handshake_rate), 1, 1000000, "N",
	  "1 to 1000000", "handshakes/s assumed until measured, for "
	  "Retry-After" },
	{ "metrics-token-file", 0, OPT_STRING, SO(metrics_token_file), 0, 0,
	  "FILE", NULL, "/metrics needs this bearer token" },
	{ "metrics-listen", 0, OPT_HOSTPORT, SO(metrics_listen), 0, 0,
	  "HOST:PORT", NULL, "serve /metrics and /health here instead" },
	{ "acl", 0, OPT_STRING, SO(acl), 0, 0, "FILE", NULL,
	  "who may do what on the control socket" },
	{ "rate", 0, OPT_STRING, SO(rate), 0, 0, "N[/s][,burst=B]", NULL,
	  "requests that start work, per peer uid" },
	{ "max-inflight", 0, OPT_INT, SO(max_inflight), 1, 1000000, "N",
	  "1 to 1000000", "requests without their reply, per connection" },
	{ "max-conns", 0, OPT_INT, SO(max_conns), 1, 1000000, "N",
	  "1 to 1000000", "control connections per uid" },
	{ "audit", 0, OPT_STRING, SO(audit), 0, 0, "FILE", NULL,
	  "append a JSON line per request that does something" },
	{ "record", 0, OPT_STRING, SO(record), 0, 0, "DIR", NULL,
	  "record every session as DIR/SESSION.cast (asciicast v2)" },
	{ "ws-mask", 0, OPT_FLAG, SO(ws_mask), 0, 0, NULL, NULL,
	  "keep RFC 6455 masking (see sandd-wire(7))" },
	{ "syslog", 0, OPT_FLAG, SO(syslog), 0, 0, NULL, NULL,
	  "log to syslog instead of stderr" },
	{ "verbose", 'v', OPT_COUNT, SO(verbose), 0, 0, NULL, NULL,
	  "log more (twice: debug)" },
	{ "help", 'h', OPT_HELP, 0, 0, 0, NULL, NULL, "this help" },
	{ NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL }
};

static const struct opt_spec worker_specs[] = {
	{ "server-url", 's', OPT_LIST, WO(urls), 0, 0, "URL", NULL,
	  "a controller, ws[s]://HOST:PORT/ws (repeatable; $SERVER_URL)" },
	{ "id", 'd', OPT_STRING, WO(id), 0, 0, "ID", NULL,
	  "this worker's id ($DAEMON_ID, else the host name)" },
	{ "daemon-id", 0, OPT_STRING, WO(id), 0, 0, "ID", NULL,
	  "the same as --id" },
	{ "label", 'l', OPT_KV, WO(labels), 0, 0, "KEY=VALUE", NULL,
	  "a label (repeatable)" },
	{ "labels", 0, OPT_KVS, WO(labels), 0, 0, "K=V,K=V", NULL,
	  "several labels" },
	{ "token-file", 0, OPT_STRING, WO(token_file), 0, 0, "FILE", NULL,
	  "the bearer token ($SANDD_TOKEN)" },
	{ "ca", 0, OPT_STRING, WO(ca), 0, 0, "FILE", NULL,
	  "CA that signed the controller's certificate" },
	{ "tls-cert", 0, OPT_STRING, WO(tls_cert), 0, 0, "FILE", NULL,
	  "client certificate (and --tls-key)" },
	{ "tls-key", 0, OPT_STRING, WO(tls_key), 0, 0, "FILE", NULL,
	  "its private key" },
	{ "state-dir", 0, OPT_STRING, WO(state_dir), 0, 0, "DIR", NULL,
	  "state kept across restarts, in DIR/ID (/var/lib/sandd)" },
	{ "root", 0, OPT_STRING, WO(root), 0, 0, "DIR", NULL,
	  "file operations only below DIR" },
	{ "allow", 0, OPT_LIST, WO(allow), 0, 0, "'PROGRAM [GLOB]...'", NULL,
	  "run only this program with these arguments (repeatable)" },
	{ "allow-env", 0, OPT_LIST, WO(allow_env), 0, 0, "NAME", NULL,
	  "with --allow: env names a request may set (repeatable)" },
	{ "isolate", 0, OPT_FLAG, WO(isolate), 0, 0, NULL, NULL,
	  "run nothing on the host itself, only in workspaces" },
	{ "allow-host-network", 0, OPT_FLAG, WO(allow_host_network), 0, 0,
	  NULL, NULL, "with --isolate: workspaces may use the host's network" },
	{ "allow-setid", 0, OPT_FLAG, WO(allow_setid), 0, 0, NULL, NULL,
	  "put may create set-user-id and set-group-id files" },
	{ "max-jobs", 0, OPT_INT, WO(max_jobs), 1, 1000000, "N",
	  "1 to 1000000", "commands running at once" },
	{ "max-sessions", 0, OPT_INT, WO(max_sessions), 1, 1000000, "N",
	  "1 to 1000000", "sessions at once" },
	{ "max-workspaces", 0, OPT_INT, WO(max_workspaces), 1, 1000000, "N",
	  "1 to 1000000", "workspaces at once" },
	{ "max-workspace-memory", 0, OPT_SIZE, WO(ws_max_memory), 1024 * 1024,
	  0, "BYTES", "at least 1M", "ceiling and default of a workspace's "
	  "memory (2G, or a quarter of the host's if less)" },
	{ "max-workspace-pids", 0, OPT_INT, WO(ws_max_pids), 1, 4194304, "N",
	  "1 to 4194304", "ceiling and default of a workspace's processes "
	  "(1024)" },
	{ "max-workspace-cpu", 0, OPT_NUMBER, WO(ws_max_cpu), 0, 1024,
	  "CORES", "above 0, up to 1024", "ceiling of a workspace's CPU" },
	{ "max-workspace-disk", 0, OPT_SIZE_NONE, WO(ws_max_disk),
	  WS_MIN_DISK, 0, "BYTES|none", "at least 16M, or none",
	  "ceiling and default of a workspace's disk (10G)" },
	{ "window", 0, OPT_SIZE, WO(window), WIRE_MIN_WINDOW, WIRE_MAX_WINDOW,
	  "BYTES", "64K to 64M", "output sent ahead of acks, per stream (1M)" },
	{ "ring-size", 0, OPT_SIZE, WO(ring_size), DEFAULT_RING_SIZE, 0,
	  "BYTES", "at least 1M", "output a session keeps for replays (1M)" },
	{ "session-linger", 0, OPT_SECONDS, WO(session_linger), 0, 0, "SECS",
	  NULL, "an exited session stays readable this long (600)" },
	{ "ping-interval", 0, OPT_SECONDS, WO(ping_interval), 1, 0, "SECS",
	  NULL, "ping a silent controller this often (10)" },
	{ "ping-timeout", 0, OPT_SECONDS, WO(ping_timeout), 1, 0, "SECS",
	  NULL, "drop a controller silent this long (30)" },
	{ "ws-mask", 0, OPT_FLAG, WO(ws_mask), 0, 0, NULL, NULL,
	  "keep RFC 6455 masking (see sandd-wire(7))" },
	{ "syslog", 0, OPT_FLAG, WO(syslog), 0, 0, NULL, NULL,
	  "log to syslog instead of stderr" },
	{ "verbose", 'v', OPT_COUNT, WO(verbose), 0, 0, NULL, NULL,
	  "log more (twice: debug)" },
	{ "help", 'h', OPT_HELP, 0, 0, 0, NULL, NULL, "this help" },
	{ NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL }
};

/* `sandd serve --help`. */
static __dead void
serve_help(void)
{
	printf("usage: sandd serve %s\n\nRun the controller.\n\nOptions:\n",
	    sandd_cmd_find("serve")->usage);
	opts_help(stdout, serve_specs);
	exit(0);
}

/* `sandd worker --help`. */
static __dead void
worker_help(void)
{
	printf("usage: sandd worker %s\n\nRun a worker that dials the "
	    "controller.\n\nOptions:\n", sandd_cmd_find("worker")->usage);
	opts_help(stdout, worker_specs);
	exit(0);
}

/* `sandd serve`: options into serve_opts, then run the controller. */
static int
sandd_serve(int argc, char **argv)
{
	struct serve_options	*o = &serve_opts;
	char			*why;
	int			 i, builtin;

	o->control_mode = 0660;
	o->resume_window = DEFAULT_RESUME_WINDOW;
	o->ping_interval = DEFAULT_PING_INTERVAL;
	o->ping_timeout = DEFAULT_PING_TIMEOUT;
	o->max_line = CONTROL_MAX_LINE;
	o->max_output = CONTROL_MAX_OUTPUT;
	o->max_handshakes = SERVER_MAX_HANDSHAKES;
	o->max_handshakes_addr = SERVER_MAX_HANDSHAKES_ADDR;
	i = opts_parse("serve", serve_specs, o, argc, argv, serve_help);
	if (i != argc)
		opts_bad("serve", "unexpected argument '%s'", argv[i]);
	if (o->listen == NULL)
		opts_bad("serve", "--listen HOST:PORT is required");
	if (o->control == NULL) {
		o->control = util_default_control_path(&builtin);
		if (builtin && util_control_dir_ok(o->control, 1, &why) != 0)
			opts_bad("serve", "control socket %s: %s (refusing the "
			    "default path; give --control)", o->control, why);
	}
	if ((o->tls_cert == NULL) != (o->tls_key == NULL))
		opts_bad("serve", "--tls-cert and --tls-key go together");
	if (o->tls_client_ca != NULL && o->tls_cert == NULL)
		opts_bad("serve", "--tls-client-ca needs --tls-cert");
	log_init("sandd-serve", o->verbose, o->syslog);
	return (server_main());
}

/*
 * Is arg one of `sandd worker`'s options (but not -h or --help)? The
 * Rust sandd ran a worker with no subcommand, `sandd --server-url URL
 * --daemon-id ID`, and so does main when the first argument is one.
 */
static int
sandd_worker_option(const char *arg)
{
	if (strcmp(arg, "-h") == 0 || strncmp(arg, "--help", 6) == 0)
		return (0);
	return (opts_known(worker_specs, arg));
}

/*
 * The default ceiling of a workspace's memory: WS_DEFAULT_MEMORY, or a
 * quarter of the host's memory where that is less.
 */
static size_t
worker_default_memory(void)
{
	long		pages = sysconf(_SC_PHYS_PAGES);
	long		size = sysconf(_SC_PAGESIZE);
	uint64_t	quarter;

	if (pages <= 0 || size <= 0)
		return (WS_DEFAULT_MEMORY);
	quarter = (uint64_t)pages / 4 * (uint64_t)size;
	if (quarter < WS_MIN_MEMORY)
		return (WS_MIN_MEMORY);
	return (quarter < WS_DEFAULT_MEMORY ? quarter : WS_DEFAULT_MEMORY);
}

/* `sandd worker`: options into worker_opts, then run the worker. */
static int
sandd_worker(int argc, char **argv)
{
	struct worker_options	*o = &worker_opts;
	static char		 host[256];
	const char		*url;
	int			 i;

	o->labels = json_object();
	o->allow = json_array();
	o->allow_env = json_array();
	o->window = WIRE_WINDOW;
	o->ring_size = DEFAULT_RING_SIZE;
	o->session_linger = DEFAULT_SESSION_LINGER;
	o->ping_interval = DEFAULT_PING_INTERVAL;
	o->ping_timeout = DEFAULT_PING_TIMEOUT;
	o->ws_max_memory = worker_default_memory();
	o->ws_max_pids = WS_DEFAULT_PIDS;
	o->ws_max_disk = WS_DEFAULT_DISK;
	o->urls = json_array();
	o->id = getenv("DAEMON_ID");
	if (o->id != NULL && *o->id == '\0')
		o->id = NULL;
	i = opts_parse("worker", worker_specs, o, argc, argv, worker_help);
	if (i != argc)
		opts_bad("worker", "unexpected argument '%s'", argv[i]);
	/* $SERVER_URL may hold several, separated by spaces or commas. */
	if (json_array_size(o->urls) == 0 && (url = getenv("SERVER_URL")) !=
	    NULL && *url != '\0')
		json_array_append_new(o->urls, json_string(url));
	if (json_array_size(o->urls) == 0)
		opts_bad("worker", "--server-url (or $SERVER_URL) is required");
	if (o->id == NULL || *o->id == '\0') {
		if (gethostname(host, sizeof host) != 0)
			opts_bad("worker", "no --id and no host name");
		host[sizeof host - 1] = '\0';
		o->id = host;
	}
	/* The id names the worker's state folder: "." and ".." cannot. */
	if (!util_valid_id(o->id) || strcmp(o->id, ".") == 0 ||
	    strcmp(o->id, "..") == 0)
		opts_bad("worker", "invalid worker id '%s' (1 to 64 of "
		    "A-Za-z0-9._-, not . or ..)", o->id);
	if ((o->tls_cert == NULL) != (o->tls_key == NULL))
		opts_bad("worker", "--tls-cert and --tls-key go together");
	log_init("sandd-worker", o->verbose, o->syslog);
	return (worker_main());
}

/* Run the subcommand argv[1] names, or a worker when it is its option. */
int
main(int argc, char **argv)
{
	const struct sandd_cmd	*cmd;

	/* A workspace's init, exec'd by its worker (ns.c). */
	if (argc == 1 && strcmp(argv[0], NS_INIT_ARGV0) == 0)
		ns_init_main();
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage(2);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("sandd %s\n", SANDD_VERSION);
		return (0);
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0)
		usage(0);
	if ((cmd = sandd_cmd_find(argv[1])) != NULL) {
		argc--;
		argv++;
	} else if (sandd_worker_option(argv[1])) {
		/* `sandd worker` with argv[0] standing for "worker". */
		cmd = sandd_cmd_find("worker");
	} else {
		fprintf(stderr, "sandd: unknown command '%s' (see sandd "
		    "--help)\n", argv[1]);
		return (2);
	}
	if (cmd->flags & SANDD_CMD_CLIENT)
		return (client_main(cmd->name, cmd->usage, cmd->help,
		    cmd->options, cmd->fn, argc, argv));
	compat_tune_malloc();
	if ((ev_base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	return (cmd->fn(argc, argv));
}

/*
 * sandd.c: main and the one subcommand table (name, function, usage,
 * summary). `serve` and `worker` parse their options here and hand over
 * to server.c and worker.c; every other subcommand is a client of the
 * control socket and runs under client_main (client.c).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
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
static __dead void bad_option(const char *, const char *, ...)
		     __attribute__((format(printf, 2, 3)));

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
	"      else /run/sandd/control.sock for root and\n"		\
	"      /tmp/sandd-UID/control.sock for other users.\n"		\
	"  -h, --help\n"						\
	"      Print this help and exit.\n"

static const struct sandd_cmd sandd_cmds[] = {
	{ "serve", sandd_serve,
	  "--listen HOST:PORT --control PATH [--control-mode OCTAL]\n"
	  "\t[--token-file F] [--tls-cert F --tls-key F [--tls-client-ca F]]\n"
	  "\t[--resume-window SECS] [--ping-interval SECS]"
	  " [--ping-timeout SECS]\n"
	  "\t[--max-line BYTES] [--max-output BYTES]"
	  " [--max-handshakes N]\n"
	  "\t[--ws-mask] [--syslog] [-v]",
	  "run the controller",
	  "  --listen HOST:PORT\n"
	  "      Where workers connect (path /ws); also answers GET /health\n"
	  "      and /metrics. Required.\n"
	  "  --control PATH\n"
	  "      The control socket for clients. Default: /run/sandd/\n"
	  "      control.sock for root, /tmp/sandd-UID/control.sock else.\n"
	  "  --control-mode OCTAL\n"
	  "      Permission bits of the control socket. Default: 0660.\n"
	  "  --token-file FILE\n"
	  "      Grants (ID TOKEN or ID sha256:HEX a line) workers must\n"
	  "      match. Default: any worker is accepted.\n"
	  "  --tls-cert FILE, --tls-key FILE\n"
	  "      Serve the listener over TLS with this certificate chain\n"
	  "      and key (PEM). Default: plain ws://.\n"
	  "  --tls-client-ca FILE\n"
	  "      With TLS, require worker certificates signed by a CA in\n"
	  "      FILE. Default: no client certificate asked for.\n"
	  "  --resume-window SECS\n"
	  "      How long requests wait for a worker whose link dropped\n"
	  "      before they fail with worker_lost. Default: 30.\n"
	  "  --ping-interval SECS\n"
	  "      Ping each worker this often. Default: 10.\n"
	  "  --ping-timeout SECS\n"
	  "      A link silent this long is dead. Default: 30.\n"
	  "  --max-line BYTES\n"
	  "      Longest control request line (1M to 1G). Default: 4M.\n"
	  "  --max-output BYTES\n"
	  "      Output kept per stream of a buffered exec. Default: 16M.\n"
	  "  --max-handshakes N\n"
	  "      Connections in their handshake at once; more get 503.\n"
	  "      Default: 256.\n"
	  "  --ws-mask\n"
	  "      Refuse workers' offers to send unmasked frames.\n"
	  "  --syslog\n"
	  "      Log to syslog instead of stderr.\n"
	  "  -v, --verbose\n"
	  "      Log more (twice: debugging).\n"
	  "  -h, --help\n"
	  "      Print this help and exit.\n",
	  0 },
	{ "worker", sandd_worker,
	  "-s ws[s]://HOST:PORT/ws [-d ID] [-l K=V]...\n"
	  "\t[--labels K=V,K=V] [--token-file F] [--ca F]\n"
	  "\t[--tls-cert F --tls-key F] [--root DIR]\n"
	  "\t[--allow PATTERN]... [--window BYTES] [--ring-size BYTES]\n"
	  "\t[--session-linger SECS] [--ping-interval SECS]"
	  " [--ping-timeout SECS]\n"
	  "\t[--ws-mask] [--syslog] [-v]\n"
	  "environment: SERVER_URL, DAEMON_ID, SANDD_TOKEN",
	  "run a worker that dials the controller",
	  "  -s, --server-url URL\n"
	  "      The controller, ws://HOST:PORT/ws or wss://...\n"
	  "      Default: $SERVER_URL.\n"
	  "  -d, --daemon-id ID, --id ID\n"
	  "      This worker's id (1 to 64 of A-Za-z0-9._-).\n"
	  "      Default: $DAEMON_ID, else the host name.\n"
	  "  -l, --label K=V\n"
	  "      A label to be selected by; repeatable. Default: none.\n"
	  "  --labels K=V,K=V\n"
	  "      Several labels at once.\n"
	  "  --token-file FILE\n"
	  "      The token to present. Default: $SANDD_TOKEN, else none.\n"
	  "  --ca FILE\n"
	  "      Verify the controller against these CAs (PEM).\n"
	  "      Default: the system's.\n"
	  "  --tls-cert FILE, --tls-key FILE\n"
	  "      A client certificate and key (PEM) to present.\n"
	  "  --root DIR\n"
	  "      Confine file operations to DIR. Default: anywhere.\n"
	  "  --allow PATTERN\n"
	  "      Run only commands that match; repeatable.\n"
	  "      Default: every command.\n"
	  "  --window BYTES\n"
	  "      Output in flight per stream (64K to 64M). Default: 1M.\n"
	  "  --ring-size BYTES\n"
	  "      Recent output each session keeps (at least 1M).\n"
	  "      Default: 1M.\n"
	  "  --session-linger SECS\n"
	  "      How long an exited session stays readable. Default: 600.\n"
	  "  --ping-interval SECS\n"
	  "      Ping the controller this often. Default: 10.\n"
	  "  --ping-timeout SECS\n"
	  "      A link silent this long is dead. Default: 30.\n"
	  "  --ws-mask\n"
	  "      Mask every frame sent, as RFC 6455 requires.\n"
	  "  --syslog\n"
	  "      Log to syslog instead of stderr.\n"
	  "  -v, --verbose\n"
	  "      Log more (twice: debugging).\n"
	  "  -h, --help\n"
	  "      Print this help and exit.\n",
	  0 },
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
	  "  --no-wait\n"
	  "      Fail at once (status 255) when the worker is found\n"
	  "      disconnected, as we start or while we wait. Default: wait\n"
	  "      for it to come back within the controller's resume window.\n"
	  CLIENT_OPTIONS_COMMON,
	  SANDD_CMD_CLIENT },
	{ "shell", client_shell,
	  "[options] worker [-- command [arg ...]]",
	  "open an interactive session on a worker",
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
	  "  --no-wait\n"
	  "      Fail at once (status 255) when the worker is found\n"
	  "      disconnected, as we start or while we wait. Default: wait\n"
	  "      for it to come back within the controller's resume window.\n"
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

/* `sandd NAME --help` of serve and worker (clients: client_help). */
static __dead void
sandd_cmd_help(const char *name)
{
	const struct sandd_cmd	*cmd = sandd_cmd_find(name);

	printf("usage: sandd %s %s\n\n%c%s.\n\nOptions:\n%s", name,
	    cmd->usage, toupper((unsigned char)cmd->help[0]), cmd->help + 1,
	    cmd->options);
	exit(0);
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

/* One-line error for a bad option, exit 2. */
static __dead void
bad_option(const char *cmd, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "sandd %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see sandd %s --help)\n", cmd);
	exit(2);
}

/* Seconds for a timer option of cmd: a whole number above zero, else exit 2. */
static int
parse_positive_seconds(const char *cmd, const char *opt, const char *arg)
{
	int	n;

	if (util_parse_seconds(arg, &n) != 0 || n == 0)
		bad_option(cmd, "bad %s '%s'", opt, arg);
	return (n);
}

/* `sandd serve`: options into serve_opts, then run the controller. */
static int
sandd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'L' },
		{ "control", required_argument, NULL, 'c' },
		{ "control-mode", required_argument, NULL, 'm' },
		{ "token-file", required_argument, NULL, 't' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-client-ca", required_argument, NULL, 'A' },
		{ "resume-window", required_argument, NULL, 'r' },
		{ "ping-interval", required_argument, NULL, 'p' },
		{ "ping-timeout", required_argument, NULL, 'P' },
		{ "max-line", required_argument, NULL, 'l' },
		{ "max-output", required_argument, NULL, 'o' },
		{ "max-handshakes", required_argument, NULL, 'H' },
		{ "ws-mask", no_argument, NULL, 'M' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct serve_options	*o = &serve_opts;
	char			*end, *host, *port;
	int			 ch, level = 0;
	long			 n;

	o->control_mode = 0660;
	o->resume_window = DEFAULT_RESUME_WINDOW;
	o->ping_interval = DEFAULT_PING_INTERVAL;
	o->ping_timeout = DEFAULT_PING_TIMEOUT;
	o->max_line = CONTROL_MAX_LINE;
	o->max_output = CONTROL_MAX_OUTPUT;
	o->max_handshakes = SERVER_MAX_HANDSHAKES;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'L':
			if (util_parse_hostport(optarg, &host, &port) != 0)
				bad_option("serve", "bad --listen '%s' (want "
				    "HOST:PORT)", optarg);
			free(host);
			free(port);
			o->listen = optarg;
			break;
		case 'c':
			o->control = optarg;
			break;
		case 'm':
			n = strtol(optarg, &end, 8);
			if (*end != '\0' || n < 0 || n > 0777)
				bad_option("serve", "bad --control-mode '%s'",
				    optarg);
			o->control_mode = (int)n;
			break;
		case 't':
			o->token_file = optarg;
			break;
		case 'C':
			o->tls_cert = optarg;
			break;
		case 'K':
			o->tls_key = optarg;
			break;
		case 'A':
			o->tls_client_ca = optarg;
			break;
		case 'r':
			if (util_parse_seconds(optarg, &o->resume_window) != 0)
				bad_option("serve", "bad --resume-window '%s'",
				    optarg);
			break;
		case 'p':
			o->ping_interval = parse_positive_seconds("serve",
			    "--ping-interval", optarg);
			break;
		case 'P':
			o->ping_timeout = parse_positive_seconds("serve",
			    "--ping-timeout", optarg);
			break;
		case 'l':
			if (util_parse_size(optarg, &o->max_line) != 0 ||
			    o->max_line < 1024 * 1024 ||
			    o->max_line > 1024 * 1024 * 1024)
				bad_option("serve", "bad --max-line '%s' (1M "
				    "to 1G)", optarg);
			break;
		case 'o':
			if (util_parse_size(optarg, &o->max_output) != 0)
				bad_option("serve", "bad --max-output '%s'",
				    optarg);
			break;
		case 'H':
			n = strtol(optarg, &end, 10);
			if (*end != '\0' || n < 1 || n > 100000)
				bad_option("serve", "bad --max-handshakes '%s'",
				    optarg);
			o->max_handshakes = (int)n;
			break;
		case 'M':
			o->ws_mask = 1;
			break;
		case 'S':
			o->syslog = 1;
			break;
		case 'v':
			level++;
			break;
		case 'h':
			sandd_cmd_help("serve");
		default:
			exit(2);
		}
	}
	if (optind != argc)
		bad_option("serve", "unexpected argument '%s'", argv[optind]);
	if (o->listen == NULL)
		bad_option("serve", "--listen HOST:PORT is required");
	if (o->control == NULL)
		o->control = util_default_control_path();
	if ((o->tls_cert == NULL) != (o->tls_key == NULL))
		bad_option("serve", "--tls-cert and --tls-key go together");
	if (o->tls_client_ca != NULL && o->tls_cert == NULL)
		bad_option("serve", "--tls-client-ca needs --tls-cert");
	log_init("sandd-serve", level, o->syslog);
	return (server_main());
}

/* The options of `sandd worker`. */
#define WORKER_SHORTOPTS	"s:d:l:vh"

static const struct option worker_longopts[] = {
	{ "server-url", required_argument, NULL, 's' },
	{ "id", required_argument, NULL, 'd' },
	{ "daemon-id", required_argument, NULL, 'd' },
	{ "label", required_argument, NULL, 'l' },
	{ "labels", required_argument, NULL, 'L' },
	{ "token-file", required_argument, NULL, 't' },
	{ "ca", required_argument, NULL, 'a' },
	{ "tls-cert", required_argument, NULL, 'C' },
	{ "tls-key", required_argument, NULL, 'K' },
	{ "root", required_argument, NULL, 'r' },
	{ "allow", required_argument, NULL, 'A' },
	{ "window", required_argument, NULL, 'w' },
	{ "ring-size", required_argument, NULL, 'R' },
	{ "session-linger", required_argument, NULL, 'g' },
	{ "ping-interval", required_argument, NULL, 'p' },
	{ "ping-timeout", required_argument, NULL, 'P' },
	{ "ws-mask", no_argument, NULL, 'M' },
	{ "syslog", no_argument, NULL, 'S' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/*
 * Is arg one of `sandd worker`'s options (but not -h or --help)? The
 * Rust sandd ran a worker with no subcommand, `sandd --server-url URL
 * --daemon-id ID`, and so does main when the first argument is one.
 */
static int
sandd_worker_option(const char *arg)
{
	const struct option	*o;
	size_t			 n;

	if (arg[0] != '-' || arg[1] == '\0' || arg[1] == 'h')
		return (0);
	if (arg[1] != '-')
		return (arg[1] != ':' && strchr(WORKER_SHORTOPTS, arg[1]) !=
		    NULL);
	n = strcspn(arg + 2, "=");
	for (o = worker_longopts; o->name != NULL; o++) {
		if (o->val != 'h' && strlen(o->name) == n &&
		    strncmp(o->name, arg + 2, n) == 0)
			return (1);
	}
	return (0);
}

/* Add "k=v" to the labels object; -1 if it has no '='. */
static int
worker_add_label(json_t *labels, const char *kv)
{
	const char	*eq = strchr(kv, '=');
	char		*k;

	if (eq == NULL || eq == kv)
		return (-1);
	k = xstrndup(kv, (size_t)(eq - kv));
	json_object_set_new(labels, k, json_string(eq + 1));
	free(k);
	return (0);
}

/* `sandd worker`: options into worker_opts, then run the worker. */
static int
sandd_worker(int argc, char **argv)
{
	struct worker_options	*o = &worker_opts;
	static char		 host[256];
	char			*copy, *tok, *save;
	int			 ch, level = 0;

	o->labels = json_object();
	o->allow = json_array();
	o->window = WIRE_WINDOW;
	o->ring_size = DEFAULT_RING_SIZE;
	o->session_linger = DEFAULT_SESSION_LINGER;
	o->ping_interval = DEFAULT_PING_INTERVAL;
	o->ping_timeout = DEFAULT_PING_TIMEOUT;
	o->url = getenv("SERVER_URL");
	o->id = getenv("DAEMON_ID");
	if (o->id != NULL && *o->id == '\0')
		o->id = NULL;
	optind = 1;
	while ((ch = getopt_long(argc, argv, WORKER_SHORTOPTS, worker_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			o->url = optarg;
			break;
		case 'd':
			if (*optarg == '\0')
				bad_option("worker", "invalid worker id '' (1 "
				    "to 64 of A-Za-z0-9._-)");
			o->id = optarg;
			break;
		case 'l':
			if (worker_add_label(o->labels, optarg) != 0)
				bad_option("worker", "bad label '%s' (want "
				    "KEY=VALUE)", optarg);
			break;
		case 'L':
			copy = xstrdup(optarg);
			for (tok = strtok_r(copy, ",", &save); tok != NULL;
			    tok = strtok_r(NULL, ",", &save))
				if (worker_add_label(o->labels, tok) != 0)
					bad_option("worker", "bad label '%s' "
					    "(want KEY=VALUE)", tok);
			free(copy);
			break;
		case 't':
			o->token_file = optarg;
			break;
		case 'a':
			o->ca = optarg;
			break;
		case 'C':
			o->tls_cert = optarg;
			break;
		case 'K':
			o->tls_key = optarg;
			break;
		case 'r':
			o->root = optarg;
			break;
		case 'A':
			json_array_append_new(o->allow, json_string(optarg));
			break;
		case 'w':
			if (util_parse_size(optarg, &o->window) != 0 ||
			    o->window < WIRE_MIN_WINDOW ||
			    o->window > WIRE_MAX_WINDOW)
				bad_option("worker", "bad --window '%s' (64K "
				    "to 64M)", optarg);
			break;
		case 'R':
			if (util_parse_size(optarg, &o->ring_size) != 0 ||
			    o->ring_size < DEFAULT_RING_SIZE)
				bad_option("worker", "bad --ring-size '%s' (at "
				    "least 1M)", optarg);
			break;
		case 'g':
			if (util_parse_seconds(optarg, &o->session_linger) != 0)
				bad_option("worker", "bad --session-linger "
				    "'%s'", optarg);
			break;
		case 'p':
			o->ping_interval = parse_positive_seconds("worker",
			    "--ping-interval", optarg);
			break;
		case 'P':
			o->ping_timeout = parse_positive_seconds("worker",
			    "--ping-timeout", optarg);
			break;
		case 'M':
			o->ws_mask = 1;
			break;
		case 'S':
			o->syslog = 1;
			break;
		case 'v':
			level++;
			break;
		case 'h':
			sandd_cmd_help("worker");
		default:
			exit(2);
		}
	}
	if (optind != argc)
		bad_option("worker", "unexpected argument '%s'", argv[optind]);
	if (o->url == NULL || *o->url == '\0')
		bad_option("worker", "--server-url (or $SERVER_URL) is "
		    "required");
	if (o->id == NULL || *o->id == '\0') {
		if (gethostname(host, sizeof host) != 0)
			bad_option("worker", "no --id and no host name");
		host[sizeof host - 1] = '\0';
		o->id = host;
	}
	if (!util_valid_id(o->id))
		bad_option("worker", "invalid worker id '%s' (1 to 64 of "
		    "A-Za-z0-9._-)", o->id);
	if ((o->tls_cert == NULL) != (o->tls_key == NULL))
		bad_option("worker", "--tls-cert and --tls-key go together");
	log_init("sandd-worker", level, o->syslog);
	return (worker_main());
}

/* Run the subcommand argv[1] names, or a worker when it is its option. */
int
main(int argc, char **argv)
{
	const struct sandd_cmd	*cmd;

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

/*
 * client-list.c: the short request-and-reply subcommands: `workers`,
 * `sessions` and `stats` print a table (or JSON), `wait` waits for
 * workers, and `ctl` passes JSON lines from stdin to the socket and
 * prints every message that comes back.
 */
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "client.h"

/* A table printed with columns as wide as their widest cell. */
struct table {
	size_t	  ncols;
	size_t	  nrows;
	char	**cells;	/* nrows * ncols, row-major */
	int	 *right;	/* right-aligned columns */
};

/* A table with these column titles; right[i] aligns column i right. */
struct table *
table_create(const char **titles, const int *right, size_t ncols)
{
	struct table	*t = xcalloc(1, sizeof *t);
	size_t		 i;

	t->ncols = ncols;
	t->right = xcalloc(ncols, sizeof *t->right);
	t->cells = xcalloc(ncols, sizeof *t->cells);
	for (i = 0; i < ncols; i++) {
		t->cells[i] = xstrdup(titles[i]);
		t->right[i] = right[i];
	}
	t->nrows = 1;
	return (t);
}

/* Add a row of ncols cells (copied; NULL prints as "-"). */
void
table_add(struct table *t, const char **cells)
{
	size_t	i;

	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols *
	    sizeof *t->cells);
	/* Cells hold what workers said: never raw terminal controls. */
	for (i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = util_escape_terminal(
		    cells[i] != NULL && *cells[i] != '\0' ? cells[i] : "-");
	t->nrows++;
}

/* Print the table on stdout and free it. */
void
table_print(struct table *t)
{
	size_t	*w = xcalloc(t->ncols, sizeof *w), r, i, n;
	char	*s;

	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			n = strlen(t->cells[r * t->ncols + i]);
			if (n > w[i])
				w[i] = n;
		}
	}
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			s = t->cells[r * t->ncols + i];
			if (i == t->ncols - 1 && !t->right[i])
				printf("%s", s);
			else if (t->right[i])
				printf("%*s", (int)w[i], s);
			else
				printf("%-*s", (int)w[i], s);
			printf(i == t->ncols - 1 ? "\n" : "  ");
			free(s);
		}
	}
	free(w);
	free(t->cells);
	free(t->right);
	free(t);
}

/* Labels as k=v,k=v; caller frees. */
static char *
labels_text(json_t *labels)
{
	const char	*k;
	json_t		*v;
	char		*out = xstrdup(""), *tmp;

	json_object_foreach(labels, k, v) {
		xasprintf(&tmp, "%s%s%s=%s", out, *out != '\0' ? "," : "", k,
		    json_string_value(v) != NULL ? json_string_value(v) : "?");
		free(out);
		out = tmp;
	}
	return (out);
}

/* A number field as text into buf. */
const char *
num_text(json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else
		snprintf(buf, len, "-");
	return (buf);
}

/* Print v as indented JSON on stdout. */
static void
print_json(json_t *v)
{
	if (json_dumpf(v, stdout, JSON_INDENT(2)) != 0)
		client_die(1, "cannot print JSON");
	putchar('\n');
}

/* Parse the common -S, -l, -w, --json, -a options of the listings. */
static void
list_options(int argc, char **argv, json_t *labels,
    int *json, int *all, const char **worker)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "worker", required_argument, NULL, 'w' },
		{ "label", required_argument, NULL, 'l' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	int	ch;

	while ((ch = getopt_long(argc, argv, "S:l:w:ajh", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 'l':
			if (labels == NULL)
				client_usage_error();
			client_option_kv(labels, ch, optarg);
			break;
		case 'w':
			if (worker == NULL)
				client_usage_error();
			*worker = optarg;
			break;
		case 'a':
			if (all == NULL)
				client_usage_error();
			*all = 1;
			break;
		case 'j':
			if (json == NULL)
				client_usage_error();
			*json = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (optind != argc)
		client_usage_error();
}

/*
 * Send req (freed) and return its reply, whose field key must be an
 * array (in *list). With json, print the array and return NULL.
 */
json_t *
list_fetch(json_t *req, const char *key, int json, json_t **list)
{
	json_t	*r;

	r = client_conn_call(client_conn_open(), req, 0);
	*list = json_object_get(r, key);
	if (!json_is_array(*list)) {
		json_decref(r);
		client_die(255, "bad reply from the server: no %s array", key);
	}
	if (!json)
		return (r);
	print_json(*list);
	json_decref(r);
	return (NULL);
}

/*
 * The state of worker object w as the controller names it: connected,
 * disconnected (inside its resume window) or gone (past it). From the
 * connected flag when the controller gives no state.
 */
static const char *
worker_state_text(json_t *w)
{
	const char	*state = json_string_value(json_object_get(w, "state"));

	if (state != NULL && *state != '\0')
		return (state);
	return (json_is_true(json_object_get(w, "connected")) ? "connected" :
	    "disconnected");
}

/* "os/arch" of worker object w, "-" for a part it lacks; caller frees. */
static char *
os_arch_text(json_t *w)
{
	const char	*os = json_string_value(json_object_get(w, "os"));
	const char	*arch = json_string_value(json_object_get(w, "arch"));
	char		*s;

	if (os == NULL || *os == '\0')
		os = NULL;
	if (arch == NULL || *arch == '\0')
		arch = NULL;
	if (os == NULL && arch == NULL)
		return (xstrdup("-"));
	xasprintf(&s, "%s/%s", os != NULL ? os : "-", arch != NULL ? arch :
	    "-");
	return (s);
}

/* `sandd workers`: the table (or JSON) of workers. */
int
client_workers(int argc, char **argv)
{
	static const char *titles[] = { "ID", "STATE", "LABELS", "HOSTNAME",
	    "OS/ARCH", "VERSION", "RUNNING", "SESSIONS", "ADDR" };
	static const int right[] = { 0, 0, 0, 0, 0, 0, 1, 1, 0 };
	struct table	*t;
	json_t		*labels = json_object(), *r, *list, *w;
	int		 json = 0, all = 0;
	size_t		 i;
	char		*lt, *osarch, running[32], sessions[32];
	const char	*row[9];

	list_options(argc, argv, labels, &json, &all, NULL);
	r = list_fetch(json_pack("{s:s, s:o, s:b}", "op", "workers", "labels",
	    labels, "all", all), "workers", json, &list);
	if (r == NULL)
		return (0);
	t = table_create(titles, right, 9);
	json_array_foreach(list, i, w) {
		lt = labels_text(json_object_get(w, "labels"));
		osarch = os_arch_text(w);
		row[0] = json_string_value(json_object_get(w, "id"));
		row[1] = worker_state_text(w);
		row[2] = lt;
		row[3] = json_string_value(json_object_get(w, "hostname"));
		row[4] = osarch;
		row[5] = json_string_value(json_object_get(w, "version"));
		row[6] = num_text(json_object_get(w, "running"), running,
		    sizeof running);
		row[7] = num_text(json_object_get(w, "sessions"), sessions,
		    sizeof sessions);
		row[8] = json_string_value(json_object_get(w, "addr"));
		table_add(t, row);
		free(lt);
		free(osarch);
	}
	table_print(t);
	json_decref(r);
	return (0);
}

/* `sandd wait`: until a worker (or n with the labels) is there. */
int
client_wait(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "label", required_argument, NULL, 'l' },
		{ "count", required_argument, NULL, 'n' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct conn	*c;
	json_t		*labels = json_object(), *req;
	double		 timeout = 30;
	long		 count = 1;
	char		*end;
	int		 ch;

	while ((ch = getopt_long(argc, argv, "S:t:l:n:h", longopts, NULL))
	    != -1) {
		switch (ch) {
		case 't':
			timeout = client_option_secs(optarg);
			break;
		case 'l':
			client_option_kv(labels, ch, optarg);
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 ||
			    count < 1 || count > 1000000)
				client_die(2, "bad -n '%s'", optarg);
			break;
		default:
			client_option(ch, argv);
		}
	}
	argc -= optind;
	argv += optind;
	req = json_pack("{s:s, s:f}", "op", "wait", "timeout", timeout);
	if (argc == 1 && json_object_size(labels) == 0)
		json_object_set_new(req, "worker", json_string(argv[0]));
	else if (argc == 0 && json_object_size(labels) > 0) {
		json_object_set(req, "labels", labels);
		json_object_set_new(req, "count", json_integer(count));
	} else
		client_usage_error();
	json_decref(labels);
	c = client_conn_open();
	/* An error reply exits 1 for a timeout, else 255. */
	json_decref(client_conn_call(c, req, 0));
	return (0);
}

/* `sandd stats`: print the controller's counters. */
int
client_stats(int argc, char **argv)
{
	struct conn	*c;
	json_t		*r, *v, *e;
	const char	*k, *k2;
	char		 num[64];
	int		 json = 0;

	list_options(argc, argv, NULL, &json, NULL, NULL);
	c = client_conn_open();
	r = client_conn_call(c, json_pack("{s:s}", "op", "stats"), 0);
	json_object_del(r, "ok");
	json_object_del(r, "id");
	if (json) {
		print_json(r);
		json_decref(r);
		return (0);
	}
	json_object_foreach(r, k, v) {
		if (json_is_object(v)) {
			json_object_foreach(v, k2, e)
				printf("%s.%s %s\n", k, k2, num_text(e, num,
				    sizeof num));
		} else if (json_is_string(v))
			printf("%s %s\n", k, json_string_value(v));
		else
			printf("%s %s\n", k, num_text(v, num, sizeof num));
	}
	json_decref(r);
	return (0);
}

/* `sandd sessions`: the table (or JSON) of sessions. */
int
client_sessions(int argc, char **argv)
{
	static const char *titles[] = { "SESSION", "WORKER", "PID", "SIZE",
	    "OFFSET", "ATTACHED", "CREATED", "STATE", "COMMAND" };
	static const int right[] = { 0, 0, 1, 0, 1, 1, 0, 0, 0 };
	struct table	*t;
	json_t		*req, *r, *list, *s;
	const char	*worker = NULL, *row[9];
	char		 size[48], pid[32], off[32], att[32], state[32];
	int		 json = 0;
	size_t		 i;

	list_options(argc, argv, NULL, &json, NULL, &worker);
	req = json_pack("{s:s}", "op", "session.list");
	if (worker != NULL)
		json_object_set_new(req, "worker", json_string(worker));
	if ((r = list_fetch(req, "sessions", json, &list)) == NULL)
		return (0);
	t = table_create(titles, right, 9);
	json_array_foreach(list, i, s) {
		snprintf(size, sizeof size, "%lldx%lld",
		    (long long)json_integer_value(json_object_get(s, "cols")),
		    (long long)json_integer_value(json_object_get(s, "rows")));
		if (!json_is_true(json_object_get(s, "exited")))
			snprintf(state, sizeof state, "running");
		else if (json_is_integer(json_object_get(s, "exit_code")))
			snprintf(state, sizeof state, "exit %lld",
			    (long long)json_integer_value(json_object_get(s,
			    "exit_code")));
		else
			snprintf(state, sizeof state, "exited");
		row[0] = json_string_value(json_object_get(s, "session"));
		row[1] = json_string_value(json_object_get(s, "worker"));
		row[2] = num_text(json_object_get(s, "pid"), pid, sizeof pid);
		row[3] = size;
		row[4] = num_text(json_object_get(s, "offset"), off,
		    sizeof off);
		row[5] = num_text(json_object_get(s, "attached"), att,
		    sizeof att);
		row[6] = json_string_value(json_object_get(s, "created_at"));
		row[7] = state;
		row[8] = json_string_value(json_object_get(s, "cmd"));
		table_add(t, row);
	}
	table_print(t);
	json_decref(r);
	return (0);
}

/* Print m as one line on stdout, its raw payload right after it. */
static void
ctl_print(struct conn *c, json_t *m)
{
	char	*s;

	if ((s = json_dumps(m, JSON_COMPACT)) == NULL)
		client_die(255, "cannot print a message");
	fflush(stdout);
	client_write_all(STDOUT_FILENO, s, strlen(s));
	client_write_all(STDOUT_FILENO, "\n", 1);
	free(s);
	client_conn_payload(c, m, STDOUT_FILENO, NULL);
}

/*
 * `sandd ctl`: pass stdin to the socket as it is and print every message
 * that comes back, one per line, raw payloads right after their line. At
 * the end of stdin, half-close and print on until the server closes.
 */
int
client_ctl(int argc, char **argv)
{
	struct conn	*c;
	json_t		*m;
	char		*buf;
	ssize_t		 n;
	int		 in_fd = STDIN_FILENO, shut = 0;

	list_options(argc, argv, NULL, NULL, NULL, NULL);
	c = client_conn_open();
	buf = xmalloc(CLIENT_CHUNK);
	for (;;) {
		while (client_conn_has_line(c)) {
			m = client_conn_take(c);
			ctl_print(c, m);
			json_decref(m);
		}
		if (client_conn_eof(c)) {
			/* A last line without its newline, as it is. */
			client_conn_rest(c, STDOUT_FILENO);
			free(buf);
			return (0);
		}
		if (in_fd == -1 && !shut && client_conn_pending(c) == 0) {
			/* Half-close: the server answers, then closes. */
			client_conn_shutdown(c);
			shut = 1;
		}
		if (!client_conn_poll(c, in_fd))
			continue;
		n = read(in_fd, buf, CLIENT_CHUNK);
		if (n > 0)
			client_conn_add(c, buf, (size_t)n);
		else if (n == 0 || (errno != EINTR && errno != EAGAIN))
			in_fd = -1;
	}
}

/*
 * client-audit.c: `sandd audit`, the reader of the controller's audit
 * file (--audit): one line per record, pretty or as the JSON it is,
 * optionally only the records of a worker, of a uid, or since a time.
 * It reads the file itself and needs no controller. Text from the file
 * is shown escaped: a worker id or a command may hold anything.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sandd.h"
#include "client.h"

#define AUDIT_LINE_MAX	(1024 * 1024)

/* What records to show, and how. */
struct audit_filter {
	const char	*worker;
	long		 uid;		/* -1: any */
	char		 since[32];	/* RFC 3339 UTC; "" for any */
	int		 json;
};

/*
 * --since: an RFC 3339 UTC time (a prefix of one, as 2024-05-01), or a
 * time ago: N followed by s, m, h or d. Sets since as the earliest ts.
 */
static void
audit_parse_since(const char *arg, char *since, size_t len)
{
	char	*end;
	long	 n;
	time_t	 t;

	if (isdigit((unsigned char)arg[0]) && strchr(arg, '-') != NULL) {
		snprintf(since, len, "%s", arg);
		goto out;
	}
	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || n < 0 || n > 100L * 365 * 86400 ||
	    end[0] == '\0' || end[1] != '\0' || strchr("smhd", *end) == NULL)
		client_die(2, "bad --since '%s' (want an RFC 3339 time or N "
		    "with s, m, h or d)", arg);
	n *= *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400;
	t = time(NULL) - n;
	util_rfc3339(t, since, len);
out:
	/* Compared as a prefix: the records' times have milliseconds. */
	if (*since != '\0' && since[strlen(since) - 1] == 'Z')
		since[strlen(since) - 1] = '\0';
}

/* --uid: a number or a user name. */
static long
audit_parse_uid(const char *arg)
{
	struct passwd	*pw;
	char		*end;
	long		 n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno == 0 && end != arg && *end == '\0' && n >= 0)
		return (n);
	if ((pw = getpwnam(arg)) == NULL)
		client_die(2, "bad --uid '%s' (no such user)", arg);
	return ((long)pw->pw_uid);
}

/* Does record o pass the filter? */
static int
audit_match(const struct audit_filter *f, json_t *o)
{
	const char	*ts = json_string_value(json_object_get(o, "ts"));
	const char	*w = json_string_value(json_object_get(o, "worker"));
	json_t		*uid = json_object_get(o, "uid");

	if (f->worker != NULL && (w == NULL || strcmp(w, f->worker) != 0))
		return (0);
	if (f->uid != -1 && (!json_is_integer(uid) ||
	    json_integer_value(uid) != f->uid))
		return (0);
	/* RFC 3339 UTC times of one form compare as strings. */
	if (f->since[0] != '\0' && (ts == NULL ||
	    strncmp(ts, f->since, strlen(f->since)) < 0))
		return (0);
	return (1);
}

/* Print " NAME=VALUE" for field name of o when present, escaped. */
static void
audit_print_field(json_t *o, const char *name)
{
	json_t	*v = json_object_get(o, name);
	char	*text, *esc;

	if (v == NULL || json_is_null(v))
		return;
	if (json_is_string(v))
		text = xstrdup(json_string_value(v));
	else if ((text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) ==
	    NULL)
		return;
	esc = log_escape(text, strlen(text));
	printf(" %s=%s", name, esc);
	free(esc);
	free(text);
}

/* One record, pretty: time, who, what, how it ended, then details. */
static void
audit_print(json_t *o)
{
	static const char	*details[] = { "session", "handle",
				    "workspace", "cmd", "argv", "cwd", "user",
				    "path", "bytes", "sha256", "exit_code",
				    "signal", "duration_ms", "addr", "reason",
				    NULL };
	const char		**d, *what, *w;
	json_t			*ok = json_object_get(o, "ok");
	char			*esc;

	what = json_string_value(json_object_get(o, "op"));
	if (what == NULL)
		what = json_string_value(json_object_get(o, "event"));
	w = json_string_value(json_object_get(o, "worker"));
	esc = log_escape(w != NULL ? w : "-", strlen(w != NULL ? w : "-"));
	printf("%s", json_string_value(json_object_get(o, "ts")) ?: "?");
	if (json_is_integer(json_object_get(o, "uid")))
		printf(" uid=%lld", (long long)json_integer_value(
		    json_object_get(o, "uid")));
	printf(" %s %s", what != NULL ? what : "?", esc);
	free(esc);
	if (json_is_boolean(ok))
		printf(" %s", json_is_true(ok) ? "ok" : json_string_value(
		    json_object_get(o, "error")) ?: "error");
	for (d = details; *d != NULL; d++)
		audit_print_field(o, *d);
	printf("\n");
}

/* Show the records of f (stdin for "-") that pass the filter. */
static int
audit_read(FILE *f, const struct audit_filter *flt)
{
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;
	json_t	*o;
	int	 bad = 0;

	while ((n = getline(&line, &cap, f)) != -1) {
		if (n > AUDIT_LINE_MAX || (o = json_loadb(line, (size_t)n, 0,
		    NULL)) == NULL || !json_is_object(o)) {
			if (bad++ == 0)
				client_warnx("skipping a line that is not a "
				    "record");
			continue;
		}
		if (audit_match(flt, o)) {
			if (flt->json)
				fwrite(line, 1, (size_t)n, stdout);
			else
				audit_print(o);
		}
		json_decref(o);
	}
	free(line);
	return (ferror(f) ? -1 : 0);
}

/* `sandd audit [options] FILE`. */
int
client_audit(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "uid", required_argument, NULL, 'u' },
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	struct audit_filter	 flt;
	FILE			*f;
	int			 ch, r;

	memset(&flt, 0, sizeof flt);
	flt.uid = -1;
	while ((ch = getopt_long(argc, argv, "w:u:s:jh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'w':
			flt.worker = optarg;
			break;
		case 'u':
			flt.uid = audit_parse_uid(optarg);
			break;
		case 's':
			audit_parse_since(optarg, flt.since, sizeof flt.since);
			break;
		case 'j':
			flt.json = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (optind != argc - 1)
		client_usage_error();
	if (strcmp(argv[optind], "-") == 0)
		f = stdin;
	else if ((f = fopen(argv[optind], "re")) == NULL)
		client_die(1, "%s: %s", argv[optind], strerror(errno));
	r = audit_read(f, &flt);
	if (r != 0)
		client_warnx("%s: %s", argv[optind], strerror(errno));
	if (f != stdin)
		fclose(f);
	return (r != 0 ? 1 : 0);
}

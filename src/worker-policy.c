/*
 * worker-policy.c: what the worker's --allow rules let run.
 *
 * A rule is 'PROGRAM [ARG-GLOB]...', split into words as sh would (blanks
 * separate words; '...' and "..." quote, and so does a backslash; a
 * quoted glob character matches only itself). PROGRAM is an absolute
 * path, or a name found at start in the worker's own PATH. A command
 * runs only if its program, found the same way (never by the request's
 * env), is a rule's path compared as a path (no symlink followed), and
 * its arguments match that rule's globs one by one (fnmatch, so a glob
 * never spans two arguments); a last unquoted `*` matches any remaining
 * arguments, none included. It then runs that path with the path as
 * argv[0]. `cmd` is argv "/bin/sh" "-c" CMD, so it needs a rule for
 * /bin/sh. With rules, a request's env may name only --allow-env names.
 * One function, policy_command_allowed, decides for commands and
 * sessions alike.
 *
 * An allowlist holds only while the files it names do: with rules, host
 * file operations need --root, and a --root that holds a folder of the
 * worker's PATH, of an allowed program, the loader's configuration or
 * the system's libraries stops the worker at start.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

/* One --allow rule. */
struct policy_rule {
	const char	*text;		/* as given, for messages */
	char		*prog;		/* its path; NULL if not found */
	char		**globs;	/* fnmatch patterns, one an argument */
	size_t		 nglobs;
	/* ends in a bare *: any more arguments */
	int		 rest;
};

static struct policy_rule	*rules;
static size_t			 nrules;

/* What a put under --root must not reach while there are rules. */
static const char *policy_guarded[] = {
	"/etc/ld.so.preload", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
	"/etc/ld.so.cache", "/lib", "/lib64", "/usr/lib", "/usr/lib64",
	"/usr/local/lib", NULL
};

/* One word of a rule: quotes removed, and as an fnmatch pattern. */
struct policy_word {
	char	*lit;
	char	*pat;
	int	 star;		/* a lone unquoted * */
};

/* Add character c to word w, quoted (a glob character then escaped). */
static void
policy_word_add(struct policy_word *w, size_t *li, size_t *pi, char c,
    int quoted)
{
	w->lit[(*li)++] = c;
	if (quoted && strchr("*?[]\\", c) != NULL)
		w->pat[(*pi)++] = '\\';
	w->pat[(*pi)++] = c;
}

/*
 * The next word of s from *i, as sh splits it with simple quoting. 0 at
 * the end, 1 with a word in *w, -1 with *cause.
 */
static int
policy_word_next(const char *s, size_t *i, struct policy_word *w,
    char **cause)
{
	size_t		 len = strlen(s), li = 0, pi = 0;
	const char	*bad = NULL;
	char		 q = 0, c;
	int		 quoted = 0;

	while (*i < len && strchr(" \t\n", s[*i]) != NULL)
		(*i)++;
	if (*i == len)
		return (0);
	w->lit = xcalloc(1, len + 1);
	w->pat = xcalloc(1, 2 * len + 1);
	for (; *i < len && bad == NULL; (*i)++) {
		c = s[*i];
		if (q == 0 && strchr(" \t\n", c) != NULL)
			break;
		if (q == 0 && (c == '\'' || c == '"')) {
			q = c;
			quoted = 1;
		} else if (q != 0 && c == q)
			q = 0;
		else if (c == '\\' && (q == 0 || (q == '"' && *i + 1 < len &&
		    strchr("\"\\$`", s[*i + 1]) != NULL))) {
			if (*i + 1 == len)
				bad = "it ends in a backslash";
			else {
				policy_word_add(w, &li, &pi, s[++(*i)], 1);
				quoted = 1;
			}
		} else
			policy_word_add(w, &li, &pi, c, q != 0);
	}
	if (q != 0)
		bad = "a quote is not closed";
	if (bad != NULL) {
		xasprintf(cause, "--allow '%s': %s", s, bad);
		free(w->lit);
		free(w->pat);
		return (-1);
	}
	w->star = !quoted && strcmp(w->lit, "*") == 0;
	return (1);
}

/*
 * path with "//" and "/./" taken out (".." stays: compared as given).
 * Allocated.
 */
static char *
policy_clean(const char *path)
{
	char	*out = xstrdup(path), *p = out, *q = out;

	while (*p != '\0') {
		if (p[0] == '/' && p[1] == '/')
			p++;
		else if (p[0] == '/' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0'))
			p += 2;
		else
			*q++ = *p++;
	}
	*q = '\0';
	if (*out == '\0')
		strcpy(out, "/");
	return (out);
}

/*
 * The program a command or rule names: an absolute path as it is, a
 * name by the worker's own PATH (its absolute folders). NULL if none.
 */
static char *
policy_which(const char *name)
{
	const char	*path = getenv("PATH"), *p, *colon;
	char		*cand, *out;
	struct stat	 st;
	size_t		 len;

	if (*name == '/')
		return (policy_clean(name));
	if (strchr(name, '/') != NULL || *name == '\0')
		return (NULL);
	if (path == NULL)
		path = SPAWN_DEFAULT_PATH;
	for (p = path; ; p = colon + 1) {
		colon = strchr(p, ':');
		len = colon != NULL ? (size_t)(colon - p) : strlen(p);
		if (len > 0 && *p == '/') {
			xasprintf(&cand, "%.*s/%s", (int)len, p, name);
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(cand, X_OK) == 0) {
				out = policy_clean(cand);
				free(cand);
				return (out);
			}
			free(cand);
		}
		if (colon == NULL)
			return (NULL);
	}
}

/*
 * Parse rule text into r: its program, found now, and its globs; a last
 * bare * is not a glob but says "any more arguments". -1 with *cause.
 */
static int
policy_rule_parse(const char *text, struct policy_rule *r, char **cause)
{
	struct policy_word	 w;
	size_t			 i = 0, n = 0;
	int			 got, star = 0;

	memset(r, 0, sizeof *r);
	r->text = text;
	r->globs = xcalloc(strlen(text) / 2 + 2, sizeof *r->globs);
	while ((got = policy_word_next(text, &i, &w, cause)) == 1) {
		if (n++ > 0) {
			r->globs[r->nglobs++] = w.pat;
			star = w.star;
		} else if (*w.lit != '/' && strchr(w.lit, '/') != NULL) {
			xasprintf(cause, "--allow '%s': the program is a name "
			    "or an absolute path", text);
			got = -1;
		} else if ((r->prog = policy_which(w.lit)) == NULL)
			log_warnx("--allow '%s': no program %s in PATH: the "
			    "rule matches nothing", text, w.lit);
		if (n == 1)
			free(w.pat);
		free(w.lit);
		if (got == -1)
			return (-1);
	}
	if (got == -1)
		return (-1);
	if (n == 0) {
		xasprintf(cause, "--allow '%s': no program", text);
		return (-1);
	}
	if (star) {
		r->rest = 1;
		free(r->globs[--r->nglobs]);
	}
	return (0);
}

/*
 * Where path really is: its realpath, or its folder's realpath and its
 * name when it does not exist. Allocated, or NULL.
 */
static char *
policy_real(const char *path)
{
	char	*real, *dir, *slash, *out;

	if ((real = realpath(path, NULL)) != NULL || errno != ENOENT ||
	    (slash = strrchr(path, '/')) == NULL)
		return (real);
	dir = slash == path ? xstrdup("/") :
	    xstrndup(path, (size_t)(slash - path));
	if ((real = realpath(dir, NULL)) == NULL)
		out = NULL;
	else
		xasprintf(&out, "%s%s", strcmp(real, "/") == 0 ? "" : real,
		    slash);
	free(real);
	free(dir);
	return (out);
}

/* Does the --root folder hold path (or is it path)? */
static int
policy_root_holds(const char *path)
{
	const char	*root = path_root_real();
	char		*real = policy_real(path);
	size_t		 n = strlen(root);
	int		 holds;

	if (real == NULL)
		return (0);
	holds = strcmp(root, "/") == 0 || (strncmp(real, root, n) == 0 &&
	    (real[n] == '\0' || real[n] == '/'));
	free(real);
	return (holds);
}

/*
 * With rules and --root: refuse a root that holds what the rules rely
 * on. -1 with *cause.
 */
static int
policy_root_check(char **cause)
{
	const char	*path = getenv("PATH"), *p, *colon, **g;
	char		*dir, *what = NULL;
	size_t		 i;

	if (path == NULL)
		path = SPAWN_DEFAULT_PATH;
	for (p = path; what == NULL; p = colon + 1) {
		colon = strchr(p, ':');
		dir = colon != NULL ? xstrndup(p, (size_t)(colon - p)) :
		    xstrdup(p);
		if (*dir == '/' && policy_root_holds(dir))
			xasprintf(&what, "%s, a folder of PATH", dir);
		free(dir);
		if (colon == NULL)
			break;
	}
	for (i = 0; i < nrules && what == NULL; i++) {
		if (rules[i].prog == NULL)
			continue;
		dir = xstrndup(rules[i].prog, (size_t)(strrchr(rules[i].prog,
		    '/') - rules[i].prog));
		if (policy_root_holds(*dir == '\0' ? "/" : dir))
			xasprintf(&what, "%s, the folder of an allowed "
			    "program", *dir == '\0' ? "/" : dir);
		free(dir);
	}
	for (g = policy_guarded; *g != NULL && what == NULL; g++)
		if (policy_root_holds(*g))
			xasprintf(&what, "%s, the dynamic loader's "
			    "configuration or libraries", *g);
	if (what == NULL)
		return (0);
	xasprintf(cause, "--root %s holds %s: with --allow, a put there could "
	    "change what an allowed program runs", path_root(), what);
	free(what);
	return (-1);
}

/*
 * Parse the --allow rules, once at start (after path_init), and check
 * --allow-env and --root against them. -1 with *cause (allocated).
 */
int
policy_init(char **cause)
{
	json_t	*v;
	size_t	 i;

	if (json_array_size(worker_opts.allow) == 0) {
		if (json_array_size(worker_opts.allow_env) == 0)
			return (0);
		xasprintf(cause, "--allow-env is for commands that --allow "
		    "rules let run: give --allow too");
		return (-1);
	}
	rules = xcalloc(json_array_size(worker_opts.allow), sizeof *rules);
	json_array_foreach(worker_opts.allow, i, v) {
		if (policy_rule_parse(json_string_value(v), &rules[i],
		    cause) == -1)
			return (-1);
		nrules++;
	}
	if (path_root() != NULL && policy_root_check(cause) == -1)
		return (-1);
	log_info("%zu --allow rules; host file operations %s", nrules,
	    path_root() != NULL ? "under --root" : "refused (no --root)");
	return (0);
}

/*
 * May host file operations run? Not with --allow rules and no --root
 * (a put could change an allowed program); then *cause says so.
 */
int
policy_files_allowed(char **cause)
{
	if (nrules == 0 || path_root() != NULL)
		return (1);
	xasprintf(cause, "refused: worker %s has --allow rules and no --root, "
	    "so no file operations on the host", worker_opts.id);
	return (0);
}

/* Does argv (after the program) match rule r's globs one by one? */
static int
policy_args_match(const struct policy_rule *r, char **argv)
{
	size_t	i;

	for (i = 0; i < r->nglobs; i++)
		if (argv[i] == NULL || fnmatch(r->globs[i], argv[i], 0) != 0)
			return (0);
	return (argv[i] == NULL || r->rest);
}

/* Is name one of the --allow-env names? */
static int
policy_env_allowed(const char *name)
{
	json_t	*v;
	size_t	 i;

	json_array_foreach(worker_opts.allow_env, i, v)
		if (strcmp(json_string_value(v), name) == 0)
			return (1);
	return (0);
}

/*
 * May env's names be set for what runs here? Any without --allow rules;
 * with them, only the --allow-env names (a workspace's env counts too:
 * LD_PRELOAD there would run any code inside an allowed program). 0 when
 * not, with *cause (allocated).
 */
int
policy_env_ok(json_t *env, char **cause)
{
	const char	*k;
	json_t		*v;
	char		*name;

	if (nrules == 0)
		return (1);
	json_object_foreach(env, k, v) {
		if (policy_env_allowed(k))
			continue;
		name = log_escape(k, strlen(k));
		xasprintf(cause, "env %s: not among the --allow-env names of "
		    "worker %s", name, worker_opts.id);
		free(name);
		return (0);
	}
	return (1);
}

/* argv as one line for a message, escaped and cut. Caller frees. */
static char *
policy_argv_string(char **argv)
{
	char	*line, *tmp, *out;
	size_t	 i;

	line = xstrdup(argv[0]);
	for (i = 1; argv[i] != NULL; i++) {
		xasprintf(&tmp, "%s %s", line, argv[i]);
		free(line);
		line = tmp;
	}
	out = log_escape(line, strlen(line));
	free(line);
	return (out);
}

/*
 * The one policy check for a command or session about to start, with
 * argv (cmd already made "/bin/sh" "-c" CMD) and the request's env:
 * without --allow rules anything goes; with them, see the top of this
 * file. When allowed, argv[0] becomes the rule's path. 0 when refused,
 * with *cause naming what and why (allocated).
 */
int
policy_command_allowed(char **argv, json_t *env, char **cause)
{
	const struct policy_rule	*r;
	char				*prog, *line;
	size_t				 i;
	int				 known = 0;

	if (nrules == 0)
		return (1);
	if (!policy_env_ok(env, cause))
		return (0);
	prog = policy_which(argv[0]);
	for (i = 0; prog != NULL && i < nrules; i++) {
		r = &rules[i];
		if (r->prog == NULL || strcmp(r->prog, prog) != 0)
			continue;
		known = 1;
		if (policy_args_match(r, argv + 1)) {
			free(argv[0]);
			argv[0] = xstrdup(r->prog);
			free(prog);
			return (1);
		}
	}
	line = policy_argv_string(argv);
	if (known)
		xasprintf(cause, "%s: refused by the --allow rules of worker "
		    "%s (no rule for %s takes these arguments)", line,
		    worker_opts.id, prog);
	else
		xasprintf(cause, "%s: refused by the --allow rules of worker "
		    "%s (no rule for program %s)", line, worker_opts.id,
		    prog != NULL ? prog : argv[0]);
	free(line);
	free(prog);
	return (0);
}

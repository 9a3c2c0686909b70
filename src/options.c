/*
 * options.c: the command lines of `sandd serve` and `sandd worker`. Each
 * option is a row of a table (name, short letter, type, where its value
 * goes, bounds, help); getopt_long reads the command line from the table
 * and the value is checked and stored by its type, so the parsing, the
 * error messages and `--help` come from one place.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"

#define OPTS_MAX	64

/* One-line error for a bad option of cmd, exit 2. */
__dead void
opts_bad(const char *cmd, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, "sandd %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see sandd %s --help)\n", cmd);
	exit(2);
}

/* Add "k=v" to the labels object; -1 if it has no '='. */
static int
opts_add_kv(json_t *obj, const char *kv)
{
	const char	*eq = strchr(kv, '=');
	char		*k;

	if (eq == NULL || eq == kv)
		return (-1);
	k = xstrndup(kv, (size_t)(eq - kv));
	json_object_set_new(obj, k, json_string(eq + 1));
	free(k);
	return (0);
}

/* Store arg for option o of cmd at base, checked by its type. */
static void
opts_store(const char *cmd, const struct opt_spec *o, void *base,
    const char *arg)
{
	void		*p = (char *)base + o->off;
	char		*end, *copy, *tok, *save, *host, *port;
	long		 n;
	double		 d;
	size_t		 z;
	int		 secs;

	switch (o->type) {
	case OPT_STRING:
		if (*arg == '\0')
			opts_bad(cmd, "--%s needs a value", o->name);
		*(const char **)p = arg;
		return;
	case OPT_FLAG:
		*(int *)p = 1;
		return;
	case OPT_COUNT:
		(*(int *)p)++;
		return;
	case OPT_HOSTPORT:
		if (util_parse_hostport(arg, &host, &port) != 0)
			opts_bad(cmd, "bad --%s '%s' (want HOST:PORT)",
			    o->name, arg);
		free(host);
		free(port);
		*(const char **)p = arg;
		return;
	case OPT_SECONDS:
		if (util_parse_seconds(arg, &secs) != 0 || secs < o->min)
			break;
		*(int *)p = secs;
		return;
	case OPT_INT:
	case OPT_OCTAL:
		n = strtol(arg, &end, o->type == OPT_OCTAL ? 8 : 10);
		if (*arg == '\0' || *end != '\0' || n < o->min || n > o->max)
			break;
		*(int *)p = (int)n;
		return;
	case OPT_SIZE_NONE:
		if (strcmp(arg, "none") == 0) {
			*(size_t *)p = 0;
			return;
		}
		/* FALLTHROUGH */
	case OPT_SIZE:
		if (util_parse_size(arg, &z) != 0 || z < (size_t)o->min ||
		    (o->max != 0 && z > (size_t)o->max))
			break;
		*(size_t *)p = z;
		return;
	case OPT_NUMBER:
		d = strtod(arg, &end);
		if (*arg == '\0' || *end != '\0' || !(d > 0) || d > o->max)
			break;
		*(double *)p = d;
		return;
	case OPT_LIST:
		if (*arg == '\0')
			opts_bad(cmd, "--%s needs a value", o->name);
		json_array_append_new(*(json_t **)p, json_string(arg));
		return;
	case OPT_KV:
		if (opts_add_kv(*(json_t **)p, arg) != 0)
			opts_bad(cmd, "bad --%s '%s' (want KEY=VALUE)", o->name,
			    arg);
		return;
	case OPT_KVS:
		copy = xstrdup(arg);
		for (tok = strtok_r(copy, ",", &save); tok != NULL;
		    tok = strtok_r(NULL, ",", &save)) {
			if (opts_add_kv(*(json_t **)p, tok) != 0)
				opts_bad(cmd, "bad --%s '%s' (want KEY=VALUE)",
				    o->name, tok);
		}
		free(copy);
		return;
	case OPT_HELP:
		return;		/* opts_parse calls the help */
	}
	opts_bad(cmd, "bad --%s '%s'%s%s%s", o->name, arg,
	    o->what != NULL ? " (" : "", o->what != NULL ? o->what : "",
	    o->what != NULL ? ")" : "");
}

/* getopt_long's tables for specs: the long options and short letters. */
static void
opts_getopt_tables(const struct opt_spec *specs, struct option *longopts,
    char *shortopts)
{
	const struct opt_spec	*o;
	size_t			 n = 0, s = 0;

	for (o = specs; o->name != NULL; o++, n++) {
		if (n == OPTS_MAX)
			fatalx("%s: too many options", __func__);
		longopts[n].name = o->name;
		longopts[n].has_arg = o->type == OPT_FLAG ||
		    o->type == OPT_COUNT || o->type == OPT_HELP ? no_argument :
		    required_argument;
		longopts[n].flag = NULL;
		longopts[n].val = 256 + (int)n;
		if (o->letter != 0) {
			shortopts[s++] = (char)o->letter;
			if (longopts[n].has_arg == required_argument)
				shortopts[s++] = ':';
		}
	}
	memset(&longopts[n], 0, sizeof longopts[n]);
	shortopts[s] = '\0';
}

/* Is arg an option of specs (short or long, with or without =value)? */
int
opts_known(const struct opt_spec *specs, const char *arg)
{
	const struct opt_spec	*o;
	size_t			 n;

	if (arg[0] != '-' || arg[1] == '\0')
		return (0);
	for (o = specs; o->name != NULL; o++) {
		if (arg[1] != '-') {
			if (o->letter == arg[1])
				return (1);
			continue;
		}
		n = strcspn(arg + 2, "=");
		if (strlen(o->name) == n && strncmp(o->name, arg + 2, n) == 0)
			return (1);
	}
	return (0);
}

/*
 * Parse argv (argv[0] is the subcommand cmd) by specs into base; the
 * OPT_HELP option calls help (which exits); anything wrong exits 2.
 * Returns optind.
 */
int
opts_parse(const char *cmd, const struct opt_spec *specs, void *base,
    int argc, char **argv, __dead void (*help)(void))
{
	struct option	 longopts[OPTS_MAX + 2];
	char		 shortopts[2 * OPTS_MAX + 3];
	const struct opt_spec *o;
	int		 ch;

	opts_getopt_tables(specs, longopts, shortopts);
	optind = 1;
	while ((ch = getopt_long(argc, argv, shortopts, longopts, NULL)) !=
	    -1) {
		if (ch >= 256)
			o = &specs[ch - 256];
		else {
			for (o = specs; o->name != NULL && o->letter != ch; o++)
				;
			if (ch == '?' || o->name == NULL)
				exit(2);	/* getopt said why */
		}
		if (o->type == OPT_HELP)
			help();
		opts_store(cmd, o, base, optarg);
	}
	return (optind);
}

/* Print every option of specs with its help, for --help. */
void
opts_help(FILE *f, const struct opt_spec *specs)
{
	const struct opt_spec	*o;
	char			 arg[64];

	for (o = specs; o->name != NULL; o++) {
		if (o->help == NULL)
			continue;
		snprintf(arg, sizeof arg, "%s%s", o->arg != NULL ? " " : "",
		    o->arg != NULL ? o->arg : "");
		if (o->letter != 0)
			fprintf(f, "  -%c, --%s%s\n", o->letter, o->name, arg);
		else
			fprintf(f, "  --%s%s\n", o->name, arg);
		fprintf(f, "      %c%s.\n", toupper((unsigned char)o->help[0]),
		    o->help + 1);
	}
}

/*
 * test_limits.c: the worker's own check of a workspace's limits
 * (workspace_limits_parse, workspace_limits_clamp). The controller
 * refuses bad values before they reach a worker; these are what a
 * compromised controller could send instead: negative, zero, fractions
 * where whole numbers go, strings, values past a ceiling.
 */
#include "stubs.h"

/* The ceilings most cases run under. */
static const struct ws_limits ceil = { 100 << 20, 100, 2, 1 << 30 };

/* Parse text as a create request; the code (NULL when it passed). */
static const char *
parse(const char *text, const struct ws_limits *c, struct ws_limits *l)
{
	json_error_t	 jerr;
	json_t		*msg = json_loads(text, 0, &jerr);
	const char	*code = NULL;
	char		*cause = NULL;

	if (msg == NULL) {
		printf("bad test json %s: %s\n", text, jerr.text);
		exit(1);
	}
	if (workspace_limits_parse(msg, c, "w1", l, &code, &cause) == 0)
		code = NULL;
	else if (cause == NULL || strstr(cause, code[0] == 'b' ? "field" :
	    "ceiling") == NULL)
		printf("%s: no useful cause: %s\n", text, cause ? cause : "");
	free(cause);
	json_decref(msg);
	return (code);
}

static void
test_bad_values_are_bad_requests(void)
{
	static const char *bad[] = {
		"{\"pids\": -1}", "{\"pids\": 0}", "{\"pids\": 1.5}",
		"{\"pids\": \"10\"}", "{\"pids\": true}",
		"{\"pids\": 4194305}", "{\"pids\": -9223372036854775807}",
		"{\"memory\": -1}", "{\"memory\": 0}", "{\"memory\": 1}",
		"{\"memory\": 1048576.5}", "{\"memory\": \"1G\"}",
		"{\"memory\": 9223372036854775807}",
		"{\"cpu\": -1}", "{\"cpu\": 0}", "{\"cpu\": -0.0}",
		"{\"cpu\": 1025}", "{\"cpu\": \"1\"}", "{\"cpu\": [1]}",
		"{\"cpu\": 1e308}", "{\"disk\": 16777215}",
		"{\"disk\": 0}", "{\"disk\": -1}", "{\"disk\": \"1G\"}",
		"{\"disk\": 16777216.5}", NULL
	};
	struct ws_limits	 none, l;
	const char		*code;
	int			 i;

	memset(&none, 0, sizeof none);
	for (i = 0; bad[i] != NULL; i++) {
		/* Bad with ceilings and without: none lifts the check. */
		code = parse(bad[i], &ceil, &l);
		CHECKF(code != NULL && strcmp(code, "bad_request") == 0,
		    "%s: %s", bad[i], code ? code : "accepted");
		code = parse(bad[i], &none, &l);
		CHECKF(code != NULL && strcmp(code, "bad_request") == 0,
		    "%s without ceilings: %s", bad[i],
		    code ? code : "accepted");
	}
}

static void
test_past_a_ceiling_is_limit(void)
{
	static const char *over[] = {
		"{\"pids\": 101}", "{\"memory\": 104857601}",
		"{\"cpu\": 2.01}", "{\"disk\": 1073741825}", NULL
	};
	struct ws_limits	 l;
	const char		*code;
	int			 i;

	for (i = 0; over[i] != NULL; i++) {
		code = parse(over[i], &ceil, &l);
		CHECKF(code != NULL && strcmp(code, "limit") == 0, "%s: %s",
		    over[i], code ? code : "accepted");
	}
}

static void
test_good_values_and_defaults(void)
{
	struct ws_limits	 none, l;

	CHECK(parse("{\"pids\": 100, \"memory\": 104857600, \"cpu\": 2}",
	    &ceil, &l) == NULL);
	CHECK(l.pids == 100 && l.memory == 100 << 20 && l.cpu == 2);
	CHECK(parse("{\"pids\": 7, \"memory\": null, \"cpu\": 0.25}", &ceil,
	    &l) == NULL);
	CHECK(l.pids == 7 && l.memory == 100 << 20 && l.cpu == 0.25);
	/* Unasked: the ceiling. */
	CHECK(parse("{}", &ceil, &l) == NULL);
	CHECK(l.pids == 100 && l.memory == 100 << 20 && l.cpu == 2);
	CHECK(l.disk == 1 << 30);
	CHECK(parse("{\"disk\": 16777216}", &ceil, &l) == NULL);
	CHECK(l.disk == 16 << 20);
	/* No ceiling, nothing asked: no limit. */
	memset(&none, 0, sizeof none);
	CHECK(parse("{\"network\": \"none\"}", &none, &l) == NULL);
	CHECK(l.pids == 0 && l.memory == 0 && l.cpu == 0 && l.disk == 0);
}

static void
test_clamp_lowers_to_the_ceilings(void)
{
	struct ws_limits	 l;
	char			*what = NULL;

	memset(&l, 0, sizeof l);
	l.memory = 200 << 20;
	l.pids = 0;
	l.cpu = 1;
	CHECK(workspace_limits_clamp(&l, &ceil, &what) == 2);
	CHECK(l.memory == 100 << 20 && l.pids == 100 && l.cpu == 1);
	CHECK(what != NULL && strcmp(what, "memory 209715200, pids 0") == 0);
	free(what);
	what = NULL;
	CHECK(workspace_limits_clamp(&l, &ceil, &what) == 0);
	CHECK(what == NULL);
	l.pids = -5;		/* from a meta.json written by hand */
	l.cpu = -1;
	CHECK(workspace_limits_clamp(&l, &ceil, NULL) == 2);
	CHECK(l.pids == 100 && l.cpu == 2);
}

int
main(void)
{
	test_bad_values_are_bad_requests();
	test_past_a_ceiling_is_limit();
	test_good_values_and_defaults();
	test_clamp_lowers_to_the_ceilings();
	return (unit_done("test_limits"));
}

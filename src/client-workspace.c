/*
 * client-workspace.c: `sandd workspace create|list|destroy`, the
 * workspace ops of the control protocol from the command line. The
 * other subcommands reach a workspace with -W NAME (client.c).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "sandd.h"
#include "client.h"

/* `sandd workspace create [options] worker [name]`: prints the name. */
static int
workspace_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "pids", required_argument, NULL, 'p' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "disk", required_argument, NULL, 'd' },
		{ "network", required_argument, NULL, 'n' },
		{ "env", required_argument, NULL, 'e' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	json_t	*req, *env = json_object(), *r;
	size_t	 size;
	char	*end;
	double	 cpu;
	long	 pids;
	int	 ch;

	req = json_pack("{s:s}", "op", "workspace.create");
	while ((ch = getopt_long(argc, argv, "+S:m:p:c:d:n:e:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (util_parse_size(optarg, &size) != 0)
				client_die(2, "bad --memory '%s'", optarg);
			json_object_set_new(req, "memory",
			    json_integer((json_int_t)size));
			break;
		case 'p':
			pids = strtol(optarg, &end, 10);
			if (*end != '\0' || pids < 1)
				client_die(2, "bad --pids '%s'", optarg);
			json_object_set_new(req, "pids", json_integer(pids));
			break;
		case 'c':
			cpu = strtod(optarg, &end);
			if (*end != '\0' || cpu <= 0)
				client_die(2, "bad --cpu '%s'", optarg);
			json_object_set_new(req, "cpu", json_real(cpu));
			break;
		case 'd':
			if (util_parse_size(optarg, &size) != 0)
				client_die(2, "bad --disk '%s'", optarg);
			json_object_set_new(req, "disk",
			    json_integer((json_int_t)size));
			break;
		case 'n':
			json_object_set_new(req, "network",
			    json_string(optarg));
			break;
		case 'e':
			client_option_kv(env, ch, optarg);
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		client_usage_error();
	json_object_set_new(req, "worker", json_string(argv[optind]));
	if (argc - optind == 2)
		json_object_set_new(req, "name", json_string(argv[optind + 1]));
	if (json_object_size(env) > 0)
		json_object_set(req, "env", env);
	json_decref(env);
	r = client_conn_call(client_conn_open(), req, 0);
	if (!json_is_true(json_object_get(r, "ok")))
		client_die_reply(1, r);
	printf("%s\n", json_string_value(json_object_get(r, "workspace")));
	json_decref(r);
	return (0);
}

/* `sandd workspace list [-w worker] [--json]`. */
static int
workspace_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "worker", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	static const char *titles[] = { "WORKSPACE", "WORKER", "NETWORK",
	    "MEMORY", "PIDS", "CPU", "PROCESSES", "MEMORY_USED", "CREATED" };
	static const char *nums[] = { "memory", "pids", "cpu", "processes",
	    "memory_used" };
	static const int right[] = { 0, 0, 0, 1, 1, 1, 1, 1, 0 };
	struct table	*t;
	json_t		*req, *r, *list, *w;
	const char	*row[9];
	char		 buf[5][32];
	size_t		 i, k;
	int		 ch, json = 0;

	req = json_pack("{s:s}", "op", "workspace.list");
	while ((ch = getopt_long(argc, argv, "S:w:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			json_object_set_new(req, "worker", json_string(optarg));
			break;
		case 'j':
			json = 1;
			break;
		default:
			client_option(ch, argv);
		}
	}
	if (optind != argc)
		client_usage_error();
	if ((r = list_fetch(req, "workspaces", json, &list)) == NULL)
		return (0);
	t = table_create(titles, right, 9);
	json_array_foreach(list, i, w) {
		row[0] = json_string_value(json_object_get(w, "workspace"));
		row[1] = json_string_value(json_object_get(w, "worker"));
		row[2] = json_string_value(json_object_get(w, "network"));
		for (k = 0; k < 5; k++)
			row[3 + k] = num_text(json_object_get(w, nums[k]),
			    buf[k], sizeof buf[k]);
		row[8] = json_string_value(json_object_get(w, "created_at"));
		table_add(t, row);
	}
	table_print(t);
	json_decref(r);
	return (0);
}

/* `sandd workspace destroy [--keep] worker name`. */
static int
workspace_destroy(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keep", no_argument, NULL, 'k' },
		CLIENT_LONGOPTS_COMMON,
		{ NULL, 0, NULL, 0 }
	};
	json_t	*r;
	int	 ch, keep = 0;

	while ((ch = getopt_long(argc, argv, "S:kh", longopts, NULL)) != -1) {
		if (ch == 'k')
			keep = 1;
		else
			client_option(ch, argv);
	}
	if (argc - optind != 2)
		client_usage_error();
	r = client_conn_call(client_conn_open(), json_pack("{s:s, s:s, s:s, "
	    "s:b}", "op", "workspace.destroy", "worker", argv[optind],
	    "workspace", argv[optind + 1], "keep", keep), 0);
	if (!json_is_true(json_object_get(r, "ok")))
		client_die_reply(1, r);
	if (json_is_string(json_object_get(r, "kept")))
		printf("kept in %s\n", json_string_value(json_object_get(r,
		    "kept")));
	json_decref(r);
	return (0);
}

/* `sandd workspace create|list|destroy ...`. */
int
client_workspace_cmd(int argc, char **argv)
{
	if (argc < 2)
		client_usage_error();
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		client_help();
	argc--;
	argv++;
	optind = 1;
	if (strcmp(argv[0], "create") == 0)
		return (workspace_create(argc, argv));
	if (strcmp(argv[0], "list") == 0)
		return (workspace_list(argc, argv));
	if (strcmp(argv[0], "destroy") == 0)
		return (workspace_destroy(argc, argv));
	client_usage_error();
}

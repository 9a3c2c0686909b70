/*
 * control-acl.c: who may do what over the control socket (--acl FILE),
 * and who owns what a request made.
 *
 * The file has one rule a line, `WHO WORKERS OPS`; the first rule that
 * matches the peer (its uid, gid and groups from the socket) applies.
 * User and group names are looked up when the file is read, so matching
 * a request compares numbers only. A file that does not parse leaves
 * the rules in force as they were (SIGHUP re-reads it), and the error
 * names FILE:LINE.
 *
 * control-cmd.c calls control_acl_check once per request, before the
 * handler, with the op's class; the lists, waits, subscriptions and
 * broadcasts filter with control_acl_covers; the lookups of sessions,
 * handles and workspaces with control_acl_owns. Root and the server's
 * own uid pass every rule; ownership they pass too, but an item made by
 * another controller is shown to root only.
 */
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"

#define ACL_MAX_RULES	4096
#define ACL_MAX_LINE	4096

/* One entry of a rule's worker list. */
struct acl_worker {
	int		 type;
#define ACL_W_ANY	0
#define ACL_W_ID	1
#define ACL_W_LABEL	2
	char		*key;		/* label name */
	char		*glob;		/* of the id or the label's value */
};

struct acl_rule {
	int		 who;
#define ACL_WHO_ANY	0
#define ACL_WHO_UID	1
#define ACL_WHO_GID	2
	unsigned long	 id;		/* uid or gid */
	int		 ops;		/* ACL_* classes and flags */
	struct acl_worker *workers;
	size_t		 nworkers;
	int		 line;
};

struct acl {
	char		*file;
	struct acl_rule	*rules;
	size_t		 nrules;
};

static struct acl	*acl_current;

/* The names of the op classes, in rules and messages. */
static const struct {
	const char	*name;
	int		 bits;
} acl_class_names[] = {
	{ "view", ACL_VIEW },
	{ "exec", ACL_EXEC },
	{ "session", ACL_SESSION },
	{ "files", ACL_FILES },
	{ "workspace", ACL_WORKSPACE },
	{ "*", ACL_ALL },
	{ "workspaces-only", ACL_WS_ONLY },
	{ "host-network", ACL_HOST_NET },
};
#define ACL_NCLASSES	(sizeof acl_class_names / sizeof acl_class_names[0])

/* The name of one class bit. */
static const char *
acl_class_name(int bit)
{
	size_t	i;

	for (i = 0; i < ACL_NCLASSES; i++)
		if (acl_class_names[i].bits == bit)
			return (acl_class_names[i].name);
	return ("?");
}

static void
acl_free(struct acl *a)
{
	size_t	i, j;

	if (a == NULL)
		return;
	for (i = 0; i < a->nrules; i++) {
		for (j = 0; j < a->rules[i].nworkers; j++) {
			free(a->rules[i].workers[j].key);
			free(a->rules[i].workers[j].glob);
		}
		free(a->rules[i].workers);
	}
	free(a->rules);
	free(a->file);
	free(a);
}

/* A number for uid:N or gid:N; -1 if s is not one. */
static int
acl_parse_number(const char *s, unsigned long *n)
{
	char	*end;

	if (!isdigit((unsigned char)*s))
		return (-1);
	errno = 0;
	*n = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *n >= (unsigned long)(uid_t)-1)
		return (-1);
	return (0);
}

/* The who field of rule ru; -1 with *cause. */
static int
acl_parse_who(struct acl_rule *ru, const char *s, char **cause)
{
	struct passwd	*pw;
	struct group	*gr;

	if (strcmp(s, "*") == 0) {
		ru->who = ACL_WHO_ANY;
		return (0);
	}
	if (strncmp(s, "uid:", 4) == 0 || strncmp(s, "gid:", 4) == 0) {
		ru->who = *s == 'u' ? ACL_WHO_UID : ACL_WHO_GID;
		if (acl_parse_number(s + 4, &ru->id) == 0)
			return (0);
		xasprintf(cause, "'%s' is not a number", s + 4);
		return (-1);
	}
	if (strncmp(s, "user:", 5) == 0) {
		if ((pw = getpwnam(s + 5)) == NULL) {
			xasprintf(cause, "no user '%s'", s + 5);
			return (-1);
		}
		ru->who = ACL_WHO_UID;
		ru->id = pw->pw_uid;
		return (0);
	}
	if (strncmp(s, "group:", 6) == 0) {
		if ((gr = getgrnam(s + 6)) == NULL) {
			xasprintf(cause, "no group '%s'", s + 6);
			return (-1);
		}
		ru->who = ACL_WHO_GID;
		ru->id = gr->gr_gid;
		return (0);
	}
	xasprintf(cause, "who '%s' is not uid:N, user:NAME, gid:N, "
	    "group:NAME or *", s);
	return (-1);
}

/* One entry of the workers field; -1 with *cause. */
static int
acl_parse_worker(struct acl_worker *aw, const char *s, char **cause)
{
	const char	*eq;

	memset(aw, 0, sizeof *aw);
	if (strcmp(s, "*") == 0) {
		aw->type = ACL_W_ANY;
		return (0);
	}
	if (strncmp(s, "id:", 3) == 0 && s[3] != '\0') {
		aw->type = ACL_W_ID;
		aw->glob = xstrdup(s + 3);
		return (0);
	}
	if (strncmp(s, "label:", 6) == 0 && (eq = strchr(s + 6, '=')) !=
	    NULL && eq != s + 6) {
		aw->type = ACL_W_LABEL;
		aw->key = xstrndup(s + 6, (size_t)(eq - (s + 6)));
		aw->glob = xstrdup(eq + 1);
		return (0);
	}
	xasprintf(cause, "workers '%s' is not *, id:GLOB or label:K=GLOB", s);
	return (-1);
}

/* The workers field, entries joined by ','; -1 with *cause. */
static int
acl_parse_workers(struct acl_rule *ru, char *s, char **cause)
{
	char	*tok, *save;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		ru->workers = xrealloc(ru->workers, (ru->nworkers + 1) *
		    sizeof *ru->workers);
		if (acl_parse_worker(&ru->workers[ru->nworkers], tok,
		    cause) != 0)
			return (-1);
		ru->nworkers++;
	}
	if (ru->nworkers == 0) {
		xasprintf(cause, "no workers");
		return (-1);
	}
	return (0);
}

/* The ops field, names joined by ','; -1 with *cause. */
static int
acl_parse_ops(struct acl_rule *ru, char *s, char **cause)
{
	char	*tok, *save;
	size_t	 i;

	for (tok = strtok_r(s, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < ACL_NCLASSES; i++)
			if (strcmp(tok, acl_class_names[i].name) == 0)
				break;
		if (i == ACL_NCLASSES) {
			xasprintf(cause, "unknown ops '%s' (view, exec, "
			    "session, files, workspace, *, workspaces-only, "
			    "host-network)", tok);
			return (-1);
		}
		ru->ops |= acl_class_names[i].bits;
	}
	if ((ru->ops & ACL_ALL) == 0) {
		xasprintf(cause, "no ops");
		return (-1);
	}
	return (0);
}

/*
 * Cut a comment off line: '#' where a line starts or after white
 * space. Then split it in at most 4 fields; returns how many.
 */
static int
acl_split(char *line, char *fields[4])
{
	char	*p, *save;
	int	 n = 0;

	for (p = line; *p != '\0'; p++) {
		if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	}
	for (p = strtok_r(line, " \t\r\n", &save); p != NULL && n < 4;
	    p = strtok_r(NULL, " \t\r\n", &save))
		fields[n++] = p;
	return (n);
}

/* Parse one line into a new rule of a (if not blank); -1 with *cause. */
static int
acl_parse_line(struct acl *a, char *line, int lineno, char **cause)
{
	struct acl_rule	*ru;
	char		*f[4];
	int		 n;

	if ((n = acl_split(line, f)) == 0)
		return (0);
	if (n != 3) {
		xasprintf(cause, "want WHO WORKERS OPS, found %s", n < 3 ?
		    "fewer fields" : "more fields");
		return (-1);
	}
	if (a->nrules == ACL_MAX_RULES) {
		xasprintf(cause, "more than %d rules", ACL_MAX_RULES);
		return (-1);
	}
	a->rules = xrealloc(a->rules, (a->nrules + 1) * sizeof *a->rules);
	ru = &a->rules[a->nrules++];
	memset(ru, 0, sizeof *ru);
	ru->line = lineno;
	if (acl_parse_who(ru, f[0], cause) != 0 ||
	    acl_parse_workers(ru, f[1], cause) != 0 ||
	    acl_parse_ops(ru, f[2], cause) != 0)
		return (-1);
	return (0);
}

/*
 * Read the rules of path; they replace the rules in force only if the
 * whole file parses. -1 with *cause ("FILE:LINE: why") otherwise.
 */
int
control_acl_load(const char *path, char **cause)
{
	struct acl	*a;
	FILE		*f;
	char		 line[ACL_MAX_LINE], *why = NULL;
	int		 lineno = 0;

	if ((f = fopen(path, "re")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	a = xcalloc(1, sizeof *a);
	a->file = xstrdup(path);
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
			why = xstrdup("line too long");
		else
			acl_parse_line(a, line, lineno, &why);
		if (why != NULL)
			break;
	}
	if (why == NULL && ferror(f))
		xasprintf(&why, "%s", strerror(errno));
	fclose(f);
	if (why != NULL) {
		xasprintf(cause, "%s:%d: %s", path, lineno, why);
		free(why);
		acl_free(a);
		return (-1);
	}
	acl_free(acl_current);
	acl_current = a;
	log_info("%s: %zu rules", path, a->nrules);
	return (0);
}

/* Forget the rules (at exit). */
void
control_acl_free(void)
{
	acl_free(acl_current);
	acl_current = NULL;
}

/* May cl do everything (root, or the uid the server runs as)? */
int
control_acl_privileged(struct client *cl)
{
	long	uid = control_client_uid(cl);

	return (uid == 0 || (uid != -1 && (uid_t)uid == getuid()));
}

/* Does rule ru's who match peer p? */
static int
acl_rule_matches(const struct acl_rule *ru, const struct compat_peer *p)
{
	int	i;

	switch (ru->who) {
	case ACL_WHO_ANY:
		return (1);
	case ACL_WHO_UID:
		return (p->uid == (uid_t)ru->id);
	}
	if (p->gid == (gid_t)ru->id)
		return (1);
	for (i = 0; i < p->ngroups; i++)
		if (p->groups[i] == (gid_t)ru->id)
			return (1);
	return (0);
}

/* The rule that applies to cl, NULL for none. */
static const struct acl_rule *
acl_rule_of(struct client *cl)
{
	const struct compat_peer	*p = control_client_peer(cl);
	size_t				 i;

	if (p == NULL)
		return (NULL);
	for (i = 0; i < acl_current->nrules; i++)
		if (acl_rule_matches(&acl_current->rules[i], p))
			return (&acl_current->rules[i]);
	return (NULL);
}

/* Does rule ru cover the worker with this id and labels? */
static int
acl_rule_covers(const struct acl_rule *ru, const char *id, json_t *labels)
{
	const struct acl_worker	*aw;
	const char		*v;
	size_t			 i;

	for (i = 0; i < ru->nworkers; i++) {
		aw = &ru->workers[i];
		switch (aw->type) {
		case ACL_W_ANY:
			return (1);
		case ACL_W_ID:
			if (fnmatch(aw->glob, id, 0) == 0)
				return (1);
			break;
		case ACL_W_LABEL:
			v = json_string_value(json_object_get(labels, aw->key));
			if (v != NULL && fnmatch(aw->glob, v, 0) == 0)
				return (1);
			break;
		}
	}
	return (0);
}

/* Does rule ru cover the worker named id (known to us or not)? */
static int
acl_rule_covers_id(const struct acl_rule *ru, const char *id)
{
	struct worker	*w;

	for (w = server_worker_next(NULL); w != NULL;
	    w = server_worker_next(w))
		if (strcmp(server_worker_id(w), id) == 0)
			return (acl_rule_covers(ru, id,
			    server_worker_labels(w)));
	return (acl_rule_covers(ru, id, NULL));
}

/* The rule that limits cl, or NULL with *all set when none does. */
static const struct acl_rule *
acl_rule_limiting(struct client *cl, int *all)
{
	*all = acl_current == NULL || control_acl_privileged(cl);
	return (*all ? NULL : acl_rule_of(cl));
}

/* May cl see and use worker w? */
int
control_acl_covers(struct client *cl, struct worker *w)
{
	const struct acl_rule	*ru;
	int			 all;

	ru = acl_rule_limiting(cl, &all);
	return (all || (ru != NULL && acl_rule_covers(ru, server_worker_id(w),
	    server_worker_labels(w))));
}

/* May cl see and use the worker named id? */
int
control_acl_covers_id(struct client *cl, const char *id)
{
	const struct acl_rule	*ru;
	int			 all;

	ru = acl_rule_limiting(cl, &all);
	return (all || (ru != NULL && acl_rule_covers_id(ru, id)));
}

/*
 * May cl see an item (session, handle, workspace) whose owner is owner
 * ({"uid": N, "controller": ID} as the worker keeps it)? Its own uid's,
 * and all for root and the server's uid; but one made by another
 * controller (or with no owner) only for root.
 */
int
control_acl_owns(struct client *cl, json_t *owner)
{
	const char	*ctl;
	json_t		*uid;
	long		 me = control_client_uid(cl);

	ctl = json_string_value(json_object_get(owner, "controller"));
	uid = json_object_get(owner, "uid");
	if (ctl == NULL || !json_is_integer(uid) ||
	    strcmp(ctl, auth_controller_id()) != 0)
		return (me == 0);
	if (control_acl_privileged(cl))
		return (1);
	return (me != -1 && json_integer_value(uid) == (json_int_t)me);
}

/* May cl see an item of owner on the worker named id? */
int
control_acl_visible(struct client *cl, const char *id, json_t *owner)
{
	return (control_acl_owns(cl, owner) && control_acl_covers_id(cl, id));
}

/* Reply denied for a worker outside rule ru; -1. */
static int
acl_deny_worker(struct req *r, const struct acl_rule *ru, const char *id)
{
	req_error(r, "denied", "rule %s:%d does not cover worker '%s'",
	    acl_current->file, ru->line, id);
	return (-1);
}

/* The workers r names ("worker", "workers") inside rule ru? */
static int
acl_check_workers(struct req *r, const struct acl_rule *ru)
{
	const char	*id = req_string(r, "worker");
	json_t		*ids = req_field(r, "workers"), *v;
	size_t		 i;

	if (id != NULL && !acl_rule_covers_id(ru, id))
		return (acl_deny_worker(r, ru, id));
	if (!json_is_array(ids))
		return (0);
	json_array_foreach(ids, i, v) {
		if (json_is_string(v) &&
		    !acl_rule_covers_id(ru, json_string_value(v)))
			return (acl_deny_worker(r, ru, json_string_value(v)));
	}
	return (0);
}

/*
 * May r's client ask for an op of class (an ACL_* bit, 0 for hello)?
 * With ACL_WS_ONLY in class, the op runs something and a
 * workspaces-only rule wants a workspace named. 0, or -1 after
 * replying denied (naming the rule that refused).
 */
int
control_acl_check(struct req *r, int class)
{
	const struct acl_rule	*ru;
	const struct compat_peer *p;
	int			 need = class & ACL_ALL;

	if (acl_current == NULL || control_acl_privileged(r->client) ||
	    need == 0)
		return (0);
	if ((ru = acl_rule_of(r->client)) == NULL) {
		p = control_client_peer(r->client);
		req_error(r, "denied", "no rule of %s matches uid %ld",
		    acl_current->file, p != NULL ? (long)p->uid : -1L);
		return (-1);
	}
	if ((ru->ops & need) == 0) {
		req_error(r, "denied", "rule %s:%d does not allow '%s' ops "
		    "(%s)", acl_current->file, ru->line, acl_class_name(need),
		    r->op);
		return (-1);
	}
	if ((class & ACL_WS_ONLY) && (ru->ops & ACL_WS_ONLY) &&
	    req_string(r, "workspace") == NULL) {
		req_error(r, "denied", "rule %s:%d is workspaces-only: '%s' "
		    "must name a workspace", acl_current->file, ru->line,
		    r->op);
		return (-1);
	}
	return (acl_check_workers(r, ru));
}

/*
 * May r's client make a workspace with the host's network? Not under a
 * workspaces-only rule, unless the rule also says host-network: the
 * host's network reaches the worker's loopback services and whatever
 * the worker host may reach, which is what workspaces-only keeps a
 * tenant from. 0, or -1 after replying denied.
 */
int
control_acl_check_network(struct req *r)
{
	const struct acl_rule	*ru;

	if (acl_current == NULL || control_acl_privileged(r->client) ||
	    (ru = acl_rule_of(r->client)) == NULL)
		return (0);
	if ((ru->ops & ACL_WS_ONLY) && !(ru->ops & ACL_HOST_NET)) {
		req_error(r, "denied", "rule %s:%d is workspaces-only: a "
		    "workspace with network \"host\" needs host-network in "
		    "its ops", acl_current->file, ru->line);
		return (-1);
	}
	return (0);
}

/*
 * worker-shell.c: what a session runs and how it is shown: the user's
 * login shell (run as ssh runs it), the display form of its command,
 * its TERM and environment. worker-session.c starts it.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandd.h"
#include "job.h"

/* The login shell of pw (or of the worker's user), else /bin/sh. */
char *
shell_default(struct passwd *pw)
{
	if (pw == NULL)
		pw = getpwuid(geteuid());
	if (pw != NULL && pw->pw_shell != NULL && *pw->pw_shell == '/' &&
	    access(pw->pw_shell, X_OK) == 0)
		return (xstrdup(pw->pw_shell));
	return (xstrdup("/bin/sh"));
}

/*
 * The default program of a session: its user's login shell, run as a
 * login shell ("-bash" as argv[0]), in the user's home unless the open
 * names a folder, as ssh does; in a workspace /bin/sh, in /workspace.
 * Sets sr's argv, path and cwd (*home holds it); returns the shell's path
 * (allocated, as *home).
 */
char *
shell_login(struct job *j, struct spawn_req *sr, struct passwd *pw,
    char **home)
{
	struct stat	 sb;
	char		*shell, *base;

	if (j->ws != NULL)
		shell = xstrdup("/bin/sh");
	else {
		if (pw == NULL && sr->user == NULL)
			pw = getpwuid(geteuid());
		shell = shell_default(pw);
		if (sr->cwd == NULL && pw != NULL && pw->pw_dir != NULL &&
		    stat(pw->pw_dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			*home = xstrdup(pw->pw_dir);
			sr->cwd = *home;
		}
	}
	base = strrchr(shell, '/');
	sr->argv = xcalloc(2, sizeof *sr->argv);
	xasprintf(&sr->argv[0], "-%s", base != NULL ? base + 1 : shell);
	sr->path = shell;
	return (shell);
}

/* A display form of argv for session.list. */
char *
shell_cmd_string(json_t *open, char **argv)
{
	const char	*cmd = json_string_value(json_object_get(open, "cmd"));
	char		*out, *tmp;
	size_t		 i;

	if (cmd != NULL)
		return (xstrdup(cmd));
	out = xstrdup(argv[0]);
	for (i = 1; argv[i] != NULL; i++) {
		xasprintf(&tmp, "%s %s", out, argv[i]);
		free(out);
		out = tmp;
	}
	return (out);
}

/* The session's TERM: the open's, else xterm-256color. */
const char *
shell_term(json_t *open)
{
	const char	*term;

	term = json_string_value(json_object_get(open, "term"));
	return (term != NULL ? term : "xterm-256color");
}

/*
 * The session's environment: as a command's for its user, with the
 * open's env over it and TERM. Caller frees.
 */
char **
shell_env(json_t *open, const char *user)
{
	return (spawn_build_env(json_object_get(open, "env"), 0,
	    shell_term(open), user));
}

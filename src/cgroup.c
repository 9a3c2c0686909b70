/*
 * cgroup.c: the worker's control groups. Each controller sandd limits
 * (memory, pids, cpu) is taken from cgroup v2 where the v2 hierarchy's
 * cgroup.controllers lists it, else from its v1 hierarchy; a fourth
 * hierarchy, the tracker, only finds and kills processes: v2 wherever
 * it is mounted (cgroup.kill needs no controller), else v1 pids or
 * freezer.
 *
 * Every group of the worker lives under a folder of its id below the
 * worker's own group in each hierarchy, and in it under one of its own
 * process, OWN/sandd-ID/pPID: workspaces as ws-N (jobs inside them as
 * ws-N/job-M), host jobs as job-M. The worker itself stays outside them.
 * A worker that starts kills what a dead process of its id left there
 * (cgroup_sweep); a live one (a second process of the same worker, about
 * to replace it) keeps its own.
 *
 * The root ("/sys/fs/cgroup") and the file that says where this process
 * is ("/proc/self/cgroup") are parameters, so a unit test runs the same
 * code against a fake tree in a temporary folder.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"

#define CG_KILL_PASSES	2000	/* v1: kill passes before giving up */
#define CG_CPU_PERIOD	100000	/* us */
#define CG_SPARES	4	/* empty host job groups kept for reuse */

static pid_t	 cg_pid;	/* the worker's, not its guardian's */
static const char *cg_names[CG_NHIER] = { "memory", "pids", "cpu",
    "tracker" };

/* Where each hierarchy is: mount point and this worker's base under it. */
static struct {
	int	 version;	/* 0: none, 1 or 2 */
	char	*mount;		/* the hierarchy's mount point */
	char	*parent;	/* mount/OWN/sandd-ID */
	char	*base;		/* parent/pPID: this process's */
} cg_hier[CG_NHIER];

struct cgroup {
	char	*path[CG_NHIER];	/* NULL where not used */
	int	 made;			/* 1 << k: we made path[k] */
	int	 procs;			/* a spare's cgroup.procs, or -1 */
	int	 events;		/* a spare's cgroup.events, or -1 */
};

/*
 * Host jobs' groups that ended empty, for the next host jobs: a mkdir
 * and an rmdir of a group cost ~70 us of the worker's time an exec, the
 * mkdir and the open of its cgroup.procs while the command waits to
 * start. A spare is checked empty (cgroup.events) when kept and again
 * when taken.
 */
static struct cgroup *cg_spares[CG_SPARES];
static int	 cg_nspares;

/* Read a small file whole (NUL-terminated, allocated); NULL on error. */
static char *
cgroup_read(const char *path)
{
	char	*buf;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (NULL);
	buf = xmalloc(65536);
	n = read(fd, buf, 65535);
	close(fd);
	if (n < 0) {
		free(buf);
		return (NULL);
	}
	buf[n] = '\0';
	return (buf);
}

/* Write s to dir/file; -1 with errno. */
static int
cgroup_write(const char *dir, const char *file, const char *s)
{
	char	*path;
	int	 fd, r = -1, e;

	xasprintf(&path, "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT, 0644)) != -1) {
		if (write(fd, s, strlen(s)) == (ssize_t)strlen(s))
			r = 0;
		e = errno;
		close(fd);
		errno = e;
	}
	free(path);
	return (r);
}

/* The group of hierarchy name (v1: "memory"; v2: "") in self's text. */
static char *
cgroup_own(const char *self, const char *name)
{
	const char	*line, *c1, *c2, *nl;
	size_t		 n = strlen(name);

	for (line = self; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			nl = line + strlen(line);
		if ((c1 = memchr(line, ':', (size_t)(nl - line))) != NULL &&
		    (c2 = memchr(c1 + 1, ':', (size_t)(nl - c1 - 1))) != NULL) {
			/* "N:ctrl,ctrl:/path" or "0::/path" */
			const char	*p = c1 + 1;

			while (p < c2) {
				const char *e = memchr(p, ',', (size_t)(c2 -
				    p));
				if (e == NULL)
					e = c2;
				if ((size_t)(e - p) == n &&
				    strncmp(p, name, n) == 0)
					return (xstrndup(c2 + 1,
					    (size_t)(nl - c2 - 1)));
				p = e + 1;
			}
			if (n == 0 && c2 == c1 + 1)
				return (xstrndup(c2 + 1, (size_t)(nl - c2 -
				    1)));
		}
		if (*nl == '\0')
			break;
	}
	return (NULL);
}

/* Does the v2 hierarchy at mount list controller name? */
static int
cgroup_v2_has(const char *mount, const char *name)
{
	char	*path, *list, *p;
	size_t	 n = strlen(name);
	int	 found = 0;

	xasprintf(&path, "%s/cgroup.controllers", mount);
	list = cgroup_read(path);
	free(path);
	if (list == NULL)
		return (0);
	for (p = list; (p = strstr(p, name)) != NULL; p += n) {
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' ||
		    p[n] == ' ' || p[n] == '\n')) {
			found = 1;
			break;
		}
	}
	free(list);
	return (found);
}

/* Is dir a v2 hierarchy (it has cgroup.controllers)? */
static int
cgroup_is_v2(const char *dir)
{
	char		*path;
	struct stat	 sb;
	int		 r;

	xasprintf(&path, "%s/cgroup.controllers", dir);
	r = stat(path, &sb) == 0;
	free(path);
	return (r);
}

/*
 * Make dir and its missing parents; -1 with errno. A parent removed
 * meanwhile (the guardian of an earlier worker of this id removing the
 * id's folder as it empties) is made again, a few times.
 */
static int
cgroup_mkdirs(const char *dir)
{
	char	*p = xstrdup(dir), *s;
	int	 r = -1, tries;

	for (tries = 0; tries < 3 && r == -1; tries++) {
		for (s = p + 1; *s != '\0'; s++) {
			if (*s != '/')
				continue;
			*s = '\0';
			(void)mkdir(p, 0755);
			*s = '/';
		}
		r = mkdir(p, 0755) == -1 && errno != EEXIST ? -1 : 0;
		if (r == -1 && errno != ENOENT)
			break;
	}
	free(p);
	return (r);
}

/* Set hierarchy k to version v at mount, with own group own. */
static void
cgroup_use(int k, int v, const char *mount, const char *own, const char *id)
{
	cg_hier[k].version = v;
	cg_hier[k].mount = xstrdup(mount);
	xasprintf(&cg_hier[k].parent, "%s%s%ssandd-%s", mount, own,
	    own[strlen(own) - 1] == '/' ? "" : "/", id);
	xasprintf(&cg_hier[k].base, "%s/p%ld", cg_hier[k].parent,
	    (long)cg_pid);
}

/*
 * v2 with controllers: they must be enabled in the subtree of the
 * worker's own group, which may not hold processes then. Move the worker
 * into a leaf of its own first if it must. -1 if it cannot be done.
 */
static int
cgroup_v2_enable(const char *mount, const char *own, const char *id)
{
	char	*dir, *leaf, pid[32];
	int	 r;

	xasprintf(&dir, "%s%s", mount, strcmp(own, "/") == 0 ? "" : own);
	r = cgroup_write(dir, "cgroup.subtree_control", "+memory +pids +cpu");
	if (r == -1 && errno == EBUSY) {
		xasprintf(&leaf, "%s/sandd-%s.worker", dir, id);
		snprintf(pid, sizeof pid, "%ld", (long)getpid());
		if (cgroup_mkdirs(leaf) == 0 &&
		    cgroup_write(leaf, "cgroup.procs", pid) == 0)
			r = cgroup_write(dir, "cgroup.subtree_control",
			    "+memory +pids +cpu");
		free(leaf);
	}
	free(dir);
	return (r);
}

/*
 * Find the hierarchies under root for a worker of id, given the text of
 * /proc/self/cgroup in self; cgroup_make makes the folders and logs
 * what was chosen.
 */
void
cgroup_init(const char *root, const char *self, const char *id)
{
	static const char *ctl[] = { "memory", "pids", "cpu" };
	char		*v2 = NULL, *own2, *own, *mount;
	int		 k;

	cg_pid = getpid();
	if (cgroup_is_v2(root))
		v2 = xstrdup(root);
	else {
		xasprintf(&v2, "%s/unified", root);
		if (!cgroup_is_v2(v2)) {
			free(v2);
			v2 = NULL;
		}
	}
	own2 = v2 != NULL ? cgroup_own(self, "") : NULL;
	if (v2 != NULL && own2 != NULL && (cgroup_v2_has(v2, "memory") ||
	    cgroup_v2_has(v2, "pids") || cgroup_v2_has(v2, "cpu")))
		cgroup_v2_enable(v2, own2, id);
	for (k = 0; k < 3; k++) {
		if (v2 != NULL && own2 != NULL && cgroup_v2_has(v2, ctl[k])) {
			cgroup_use(k, 2, v2, own2, id);
			continue;
		}
		xasprintf(&mount, "%s/%s", root, ctl[k]);
		if ((own = cgroup_own(self, ctl[k])) != NULL &&
		    access(mount, W_OK) == 0)
			cgroup_use(k, 1, mount, own, id);
		free(own);
		free(mount);
	}
	if (v2 != NULL && own2 != NULL)
		cgroup_use(CG_TRACK, 2, v2, own2, id);
	else if (cg_hier[CG_PIDS].version == 1) {
		cg_hier[CG_TRACK].version = 1;
		cg_hier[CG_TRACK].mount = xstrdup(cg_hier[CG_PIDS].mount);
		cg_hier[CG_TRACK].parent = xstrdup(cg_hier[CG_PIDS].parent);
		cg_hier[CG_TRACK].base = xstrdup(cg_hier[CG_PIDS].base);
	}
	free(own2);
	free(v2);
}

/*
 * Make the folders cgroup_init found: the worker's base in each
 * hierarchy, with the controllers reaching below it. Called once the
 * guardian is there (cgroup_guard_start), so that no folder is made
 * that nothing would remove if the worker were killed at once.
 */
void
cgroup_make(void)
{
	int	k;

	for (k = 0; k < CG_NHIER; k++) {
		if (cg_hier[k].version == 0) {
			log_info("cgroup %s: none", cg_names[k]);
			continue;
		}
		if (cgroup_mkdirs(cg_hier[k].base) == -1) {
			log_warn("cgroup %s: mkdir %s", cg_names[k],
			    cg_hier[k].base);
			cg_hier[k].version = 0;
			continue;
		}
		/* v2: the controllers must reach the groups made below. */
		if (cg_hier[k].version == 2 && k != CG_TRACK) {
			cgroup_write(cg_hier[k].parent,
			    "cgroup.subtree_control", "+memory +pids +cpu");
			cgroup_write(cg_hier[k].base,
			    "cgroup.subtree_control", "+memory +pids +cpu");
		}
		log_info("cgroup %s: v%d at %s", cg_names[k],
		    cg_hier[k].version, cg_hier[k].base);
	}
}

/* The version of hierarchy k (CG_MEMORY, ...): 0 when there is none. */
int
cgroup_version(int k)
{
	return (cg_hier[k].version);
}

/* Do we have a tracker, so that jobs can be ended as a whole? */
int
cgroup_tracking(void)
{
	return (cg_hier[CG_TRACK].version != 0);
}

/*
 * A new group name (under parent, or under the worker's base) in every
 * hierarchy; with track_only, in the tracker alone. NULL with *cause.
 */
struct cgroup *
cgroup_create(struct cgroup *parent, const char *name, int track_only,
    char **cause)
{
	struct cgroup	*cg;
	const char	*under;
	int		 k, j;

	cg = xcalloc(1, sizeof *cg);
	cg->procs = cg->events = -1;
	for (k = 0; k < CG_NHIER; k++) {
		if (cg_hier[k].version == 0 ||
		    (track_only && parent == NULL && k != CG_TRACK))
			continue;
		under = parent != NULL ? parent->path[k] : cg_hier[k].base;
		if (under == NULL)
			continue;
		/* A job in a workspace joins its v1 groups as they are. */
		if (parent != NULL && k != CG_TRACK &&
		    cg_hier[k].version == 1) {
			cg->path[k] = xstrdup(under);
			continue;
		}
		xasprintf(&cg->path[k], "%s/%s", under, name);
		for (j = 0; j < k; j++)
			if (cg->path[j] != NULL &&
			    strcmp(cg->path[j], cg->path[k]) == 0)
				break;
		if (j < k)
			continue;	/* the same folder: made already */
		if (mkdir(cg->path[k], 0755) == -1 && errno != EEXIST) {
			xasprintf(cause, "mkdir %s: %s", cg->path[k],
			    strerror(errno));
			cgroup_free(cg, CGROUP_RMDIR);
			return (NULL);
		}
		cg->made |= 1 << k;
	}
	return (cg);
}

/*
 * Limits: memory in bytes, most processes, CPU in cores (0 for none).
 * -1 with *cause naming the file that refused.
 */
int
cgroup_set_limits(struct cgroup *cg, uint64_t memory, int pids, double cpu,
    char **cause)
{
	char		 buf[64];
	const char	*dir, *file = NULL;
	int		 v;

	if (memory > 0 && (dir = cg->path[CG_MEMORY]) != NULL) {
		v = cg_hier[CG_MEMORY].version;
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)memory);
		file = v == 2 ? "memory.max" : "memory.limit_in_bytes";
		if (cgroup_write(dir, file, buf) == -1)
			goto fail;
		/* No swap past it: the limit is the memory it may use. */
		if (v == 2)
			cgroup_write(dir, "memory.swap.max", "0");
		else
			cgroup_write(dir, "memory.memsw.limit_in_bytes", buf);
	}
	if (pids > 0 && (dir = cg->path[CG_PIDS]) != NULL) {
		snprintf(buf, sizeof buf, "%d", pids);
		file = "pids.max";
		if (cgroup_write(dir, file, buf) == -1)
			goto fail;
	}
	if (cpu > 0 && (dir = cg->path[CG_CPU]) != NULL) {
		if (cg_hier[CG_CPU].version == 2) {
			snprintf(buf, sizeof buf, "%lld %d", (long long)(cpu *
			    CG_CPU_PERIOD), CG_CPU_PERIOD);
			file = "cpu.max";
			if (cgroup_write(dir, file, buf) == -1)
				goto fail;
		} else {
			snprintf(buf, sizeof buf, "%d", CG_CPU_PERIOD);
			file = "cpu.cfs_period_us";
			if (cgroup_write(dir, file, buf) == -1)
				goto fail;
			snprintf(buf, sizeof buf, "%lld", (long long)(cpu *
			    CG_CPU_PERIOD));
			file = "cpu.cfs_quota_us";
			if (cgroup_write(dir, file, buf) == -1)
				goto fail;
		}
	}
	return (0);
fail:
	xasprintf(cause, "%s/%s: %s", dir, file, strerror(errno));
	return (-1);
}

/* Is cg's path of hierarchy k that of an earlier one (the same folder)? */
static int
cgroup_path_seen(struct cgroup *cg, int k)
{
	int	j;

	for (j = 0; j < k; j++)
		if (cg->path[j] != NULL && strcmp(cg->path[j], cg->path[k]) ==
		    0)
			return (1);
	return (0);
}

/*
 * Open the cgroup.procs files a child writes "0" into to join cg (see
 * cgroup_enter); up to max, close-on-exec. Returns how many, or -1 with
 * errno when one cannot be opened (none is left open then).
 */
int
cgroup_procs_fds(struct cgroup *cg, int *fds, int max)
{
	char	*path;
	int	 k, n = 0, e;

	for (k = 0; k < CG_NHIER && n < max; k++) {
		if (cg == NULL || cg->path[k] == NULL ||
		    cgroup_path_seen(cg, k))
			continue;
		xasprintf(&path, "%s/cgroup.procs", cg->path[k]);
		if ((fds[n] = open(path, O_WRONLY | O_CLOEXEC)) != -1) {
			n++;
			free(path);
			continue;
		}
		e = errno;
		log_warn("%s: open %s", __func__, path);
		free(path);
		while (n > 0)
			close(fds[--n]);
		errno = e;
		return (-1);
	}
	return (n);
}

/*
 * How a workspace command joins cg without the process that starts it
 * being slowed or bounded by cg's limits (its CPU and memory above all):
 * the v1 pids groups are joined by the forking process, so that its
 * clone of the command counts against pids.max; every other group is
 * joined by the command itself, first thing (v2's pids.max counts from
 * its first fork). -1 with *cause (nothing left open) when a group
 * cannot be opened: it is gone, and the command must not run without it.
 */
int
cgroup_join_open(struct cgroup *cg, struct cgroup_join *jn, char **cause)
{
	char	*path;
	int	 k, fd;

	memset(jn, 0, sizeof *jn);
	for (k = 0; k < CG_NHIER; k++) {
		if (cg->path[k] == NULL || cgroup_path_seen(cg, k))
			continue;
		xasprintf(&path, "%s/cgroup.procs", cg->path[k]);
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1) {
			xasprintf(cause, "open %s: %s", path, strerror(errno));
			free(path);
			cgroup_join_close(jn);
			return (-1);
		}
		free(path);
		if (cg_hier[k].version == 1 && (k == CG_PIDS || k == CG_TRACK))
			jn->fork[jn->nfork++] = fd;
		else
			jn->self[jn->nself++] = fd;
	}
	return (0);
}

/* Close what cgroup_join_open opened. */
void
cgroup_join_close(struct cgroup_join *jn)
{
	int	i;

	for (i = 0; i < jn->nfork; i++)
		close(jn->fork[i]);
	for (i = 0; i < jn->nself; i++)
		close(jn->self[i]);
	memset(jn, 0, sizeof *jn);
}

/* Write "0" into each of n procs files: join them. System calls only. */
static int
cgroup_join_fds(const int *fds, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if (write(fds[i], "0", 1) != 1)
			return (-1);
	return (0);
}

/* In the process that forks the command: the groups it joins first. */
int
cgroup_join_fork(const struct cgroup_join *jn)
{
	return (cgroup_join_fds(jn->fork, jn->nfork));
}

/* In the command, first thing: the rest of its groups. */
int
cgroup_join_self(const struct cgroup_join *jn)
{
	return (cgroup_join_fds(jn->self, jn->nself));
}

/*
 * In a child after fork: join the groups whose procs files are fds, and
 * be as killable by the OOM killer as any process (the worker's own
 * protection is not for its jobs). System calls only.
 */
int
cgroup_enter(const int *fds, int n)
{
	int	i, fd;

	if (n > 0 && (fd = open("/proc/self/oom_score_adj", O_WRONLY |
	    O_CLOEXEC)) != -1) {
		(void)!write(fd, "0", 1);
		close(fd);
	}
	for (i = 0; i < n; i++)
		if (write(fds[i], "0", 1) != 1)
			return (-1);
	return (0);
}

/* The pids in dir/cgroup.procs, a -1 ended array (allocated); NULL if none. */
static pid_t *
cgroup_pids(const char *dir)
{
	char	*path, *text, *p, *end;
	pid_t	*pids = NULL;
	size_t	 n = 0;
	long	 v;

	xasprintf(&path, "%s/cgroup.procs", dir);
	text = cgroup_read(path);
	free(path);
	if (text == NULL)
		return (NULL);
	for (p = text; *p != '\0'; p = end) {
		v = strtol(p, &end, 10);
		if (end == p)
			break;
		pids = xrealloc(pids, (n + 2) * sizeof *pids);
		pids[n++] = (pid_t)v;
		while (*end == '\n')
			end++;
	}
	free(text);
	if (pids != NULL)
		pids[n] = -1;
	return (pids);
}

/*
 * Walk the group at dir and those below it: the number of processes
 * listed, each sent sig first unless sig is 0.
 */
static int
cgroup_walk(const char *dir, int sig)
{
	DIR		*d;
	struct dirent	*de;
	pid_t		*pids;
	char		*sub;
	int		 n = 0, i;

	if ((pids = cgroup_pids(dir)) != NULL) {
		for (i = 0; pids[i] != -1; i++, n++)
			if (sig != 0)
				kill(pids[i], sig);
		free(pids);
	}
	if ((d = opendir(dir)) == NULL)
		return (n);
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		xasprintf(&sub, "%s/%s", dir, de->d_name);
		n += cgroup_walk(sub, sig);
		free(sub);
	}
	closedir(d);
	return (n);
}

/* How many processes are in cg (and below it). */
int
cgroup_count(struct cgroup *cg)
{
	if (cg == NULL || cg->path[CG_TRACK] == NULL)
		return (0);
	return (cgroup_walk(cg->path[CG_TRACK], 0));
}

/*
 * Kill every process in the tracker group at dir and below, and wait
 * (bounded) until none is left. v2 has cgroup.kill; v1 kills what it
 * lists until the list stays empty. 0 when it is empty.
 */
static int
cgroup_kill_dir(const char *dir)
{
	struct timespec	 ts = { 0, 1000000 };
	int		 i;

	if (cg_hier[CG_TRACK].version == 2 &&
	    cgroup_write(dir, "cgroup.kill", "1") == 0) {
		for (i = 0; i < CG_KILL_PASSES; i++) {
			if (cgroup_walk(dir, 0) == 0)
				return (0);
			nanosleep(&ts, NULL);
		}
	}
	for (i = 0; i < CG_KILL_PASSES; i++) {
		if (cgroup_walk(dir, SIGKILL) == 0)
			return (0);
		nanosleep(&ts, NULL);
	}
	log_warnx("%s: processes left in %s", __func__, dir);
	return (-1);
}

/*
 * One pass at ending every process of cg, without waiting: v2's
 * cgroup.kill, or SIGKILL to each one listed. How many were listed (0:
 * none is left).
 */
int
cgroup_kill_pass(struct cgroup *cg)
{
	const char	*dir;

	if (cg == NULL || (dir = cg->path[CG_TRACK]) == NULL)
		return (0);
	if (cg_hier[CG_TRACK].version == 2 &&
	    cgroup_write(dir, "cgroup.kill", "1") == 0)
		return (cgroup_walk(dir, 0));
	return (cgroup_walk(dir, SIGKILL));
}

/* Kill every process of cg and wait until they are gone. */
int
cgroup_kill(struct cgroup *cg)
{
	if (cg == NULL || cg->path[CG_TRACK] == NULL)
		return (0);
	return (cgroup_kill_dir(cg->path[CG_TRACK]));
}

/* A number after key in the flat keyed file dir/file; 0 if none. */
static uint64_t
cgroup_key(const char *dir, const char *file, const char *key)
{
	char		*path, *text, *p;
	uint64_t	 v = 0;
	size_t		 n = strlen(key);

	xasprintf(&path, "%s/%s", dir, file);
	text = cgroup_read(path);
	free(path);
	if (text == NULL)
		return (0);
	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, key, n) == 0 && p[n] == ' ') {
			v = strtoull(p + n + 1, NULL, 10);
			break;
		}
	}
	free(text);
	return (v);
}

/* Memory in use by cg, in bytes. */
uint64_t
cgroup_memory_used(struct cgroup *cg)
{
	char		*path, *text;
	uint64_t	 v = 0;

	if (cg == NULL || cg->path[CG_MEMORY] == NULL)
		return (0);
	xasprintf(&path, "%s/%s", cg->path[CG_MEMORY],
	    cg_hier[CG_MEMORY].version == 2 ? "memory.current" :
	    "memory.usage_in_bytes");
	if ((text = cgroup_read(path)) != NULL)
		v = strtoull(text, NULL, 10);
	free(text);
	free(path);
	return (v);
}

/* How many processes of cg the OOM killer has killed so far. */
uint64_t
cgroup_oom_kills(struct cgroup *cg)
{
	if (cg == NULL || cg->path[CG_MEMORY] == NULL)
		return (0);
	if (cg_hier[CG_MEMORY].version == 2)
		return (cgroup_key(cg->path[CG_MEMORY], "memory.events",
		    "oom_kill"));
	return (cgroup_key(cg->path[CG_MEMORY], "memory.oom_control",
	    "oom_kill"));
}

/* Open file of spare cg's tracker group into *fd once; -1 if it cannot. */
static int
cgroup_spare_open(struct cgroup *cg, const char *file, int flags, int *fd)
{
	char	*path;

	if (*fd == -1) {
		xasprintf(&path, "%s/%s", cg->path[CG_TRACK], file);
		*fd = open(path, flags | O_CLOEXEC);
		free(path);
	}
	return (*fd);
}

/* Is spare cg empty, and still there? Opens its cgroup.events once. */
static int
cgroup_spare_empty(struct cgroup *cg)
{
	char	 buf[128];
	ssize_t	 n;

	if (cgroup_spare_open(cg, "cgroup.events", O_RDONLY,
	    &cg->events) == -1)
		return (0);
	if ((n = pread(cg->events, buf, sizeof buf - 1, 0)) <= 0)
		return (0);
	buf[n] = '\0';
	return (strstr(buf, "populated 0") != NULL);
}

/*
 * Keep cg, the group of a host job that ended, for another: only a
 * tracker-only v2 group with no process left, while there is room.
 * 1 when kept (the caller forgets it), else 0.
 */
int
cgroup_spare_keep(struct cgroup *cg)
{
	int	k;

	if (cg == NULL || cg_nspares == CG_SPARES ||
	    cg_hier[CG_TRACK].version != 2 || cg->made != 1 << CG_TRACK)
		return (0);
	for (k = 0; k < CG_NHIER; k++)
		if (k != CG_TRACK && cg->path[k] != NULL)
			return (0);
	if (!cgroup_spare_empty(cg) || cgroup_spare_open(cg, "cgroup.procs",
	    O_WRONLY, &cg->procs) == -1)
		return (0);
	cg_spares[cg_nspares++] = cg;
	return (1);
}

/* The cgroup.procs a spare keeps open (cg's, not the caller's), or -1. */
int
cgroup_spare_procs(struct cgroup *cg)
{
	return (cg != NULL ? cg->procs : -1);
}

/* A spare group for a host job, or NULL: make one with cgroup_create. */
struct cgroup *
cgroup_spare_take(void)
{
	struct cgroup	*cg;

	while (cg_nspares > 0) {
		cg = cg_spares[--cg_nspares];
		if (cgroup_spare_empty(cg))
			return (cg);
		cgroup_free(cg, CGROUP_RMDIR);	/* removed, or taken over */
	}
	return (NULL);
}

/*
 * Free cg. CGROUP_RMDIR removes the folders that are empty; CGROUP_KILL
 * first kills what is left in them.
 */
void
cgroup_free(struct cgroup *cg, int remove)
{
	int	k;

	if (cg == NULL)
		return;
	if (remove == CGROUP_KILL)
		cgroup_kill(cg);
	if (cg->procs != -1)
		close(cg->procs);
	if (cg->events != -1)
		close(cg->events);
	for (k = 0; k < CG_NHIER; k++) {
		if (remove && (cg->made & (1 << k)) &&
		    rmdir(cg->path[k]) == -1 && errno != ENOENT &&
		    errno != EBUSY)
			log_warn("%s: rmdir %s", __func__, cg->path[k]);
	}
	for (k = 0; k < CG_NHIER; k++)
		free(cg->path[k]);
	free(cg);
}

/* Remove dir and the empty groups below it, deepest first. */
static void
cgroup_rmdirs(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		*sub;

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			xasprintf(&sub, "%s/%s", dir, de->d_name);
			cgroup_rmdirs(sub);
			free(sub);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* Is dir's name that of the group of a live process (pPID)? */
static int
cgroup_live_process(const char *name)
{
	char	*end;
	long	 pid;

	if (name[0] != 'p')
		return (0);
	pid = strtol(name + 1, &end, 10);
	if (*end != '\0' || pid <= 0)
		return (0);
	return (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/*
 * At start: a previous process of this worker id may have left groups
 * with processes in them (it was killed): end those processes and remove
 * the groups. Only this id's folder is touched, and there only what no
 * live process of it owns.
 */
void
cgroup_sweep(void)
{
	DIR		*d;
	struct dirent	*de;
	char		*sub;
	int		 k, n;

	for (k = 0; k < CG_NHIER; k++) {
		if (cg_hier[k].version == 0 ||
		    (d = opendir(cg_hier[k].parent)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
			    cgroup_live_process(de->d_name))
				continue;
			xasprintf(&sub, "%s/%s", cg_hier[k].parent,
			    de->d_name);
			if (k == CG_TRACK && (n = cgroup_walk(sub, 0)) > 0) {
				log_warnx("%s: ending %d processes left by an "
				    "earlier worker %s", __func__, n,
				    worker_opts.id);
				cgroup_kill_dir(sub);
			}
			cgroup_rmdirs(sub);
			free(sub);
		}
		closedir(d);
	}
}

/*
 * The worker is gone (called by its guardian, see cgroup_guard_start):
 * kill everything under its base, then remove its folders in every
 * hierarchy, as its own shutdown would have. Without this, each worker
 * killed by a signal left four folders behind for good (29,000 on a
 * machine that ran the suite and the herd bench a few times), and every
 * mkdir of a group slows with their number.
 */
void
cgroup_kill_all(void)
{
	int	k;

	if (cg_hier[CG_TRACK].version != 0)
		cgroup_kill_dir(cg_hier[CG_TRACK].base);
	for (k = 0; k < CG_NHIER; k++) {
		if (cg_hier[k].version == 0 || cg_hier[k].base == NULL)
			continue;
		cgroup_rmdirs(cg_hier[k].base);
		rmdir(cg_hier[k].parent);	/* if no other is left in it */
	}
}

/*
 * The worker stops: remove its (by now empty) groups and its base, and
 * free what cgroup_init set up.
 */
void
cgroup_shutdown(void)
{
	int	k;

	while (cg_nspares > 0)
		cgroup_free(cg_spares[--cg_nspares], CGROUP_RMDIR);
	for (k = 0; k < CG_NHIER; k++) {
		if (cg_hier[k].base != NULL && getpid() == cg_pid) {
			cgroup_rmdirs(cg_hier[k].base);
			/* The parent goes if no other is left in it. */
			rmdir(cg_hier[k].parent);
		}
		free(cg_hier[k].mount);
		free(cg_hier[k].parent);
		free(cg_hier[k].base);
		memset(&cg_hier[k], 0, sizeof cg_hier[k]);
	}
}

/* Where group cg is in hierarchy k (for tests and logs); NULL if not. */
const char *
cgroup_path(struct cgroup *cg, int k)
{
	return (cg != NULL ? cg->path[k] : NULL);
}

/*
 * The worker's guardian: a small process, forked before the worker has
 * threads, that waits for the worker to go (its pipe closes, however the
 * worker died, kill -9 included) and then ends every process left in the
 * worker's groups. Without a tracker there is nothing for it to do.
 */
void
cgroup_guard_start(void)
{
	int	p[2], fd;
	char	c;
	pid_t	pid;

	if (!cgroup_tracking())
		return;
	if (compat_pipe_cloexec(p) == -1)
		fatal("%s: pipe", __func__);
	if ((pid = fork()) == -1) {
		log_warn("%s: fork", __func__);
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		close(p[1]);
		for (fd = 3; fd < 1024; fd++)
			if (fd != p[0])
				close(fd);
		/*
		 * A process group of its own: a kill of the worker's group
		 * (a supervisor's, a terminal's) must not take the guardian
		 * with it, or nothing cleans up after the worker.
		 */
		setpgid(0, 0);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		compat_thread_name("sandd-guard");
		while (read(p[0], &c, 1) == -1 && errno == EINTR)
			;
		cgroup_kill_all();
		_exit(0);
	}
	close(p[0]);
	/* The write end stays open, close-on-exec, until we die. */
	log_debug("%s: guardian pid %ld", __func__, (long)pid);
}

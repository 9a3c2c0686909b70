/*
 * worker-workspace.c: the workspaces of a worker (the spec's "Workspaces
 * (isolation)"): the RPC workspace.create (its limits are checked in
 * worker-workspace-limits.c; workspace.list and workspace.destroy are in
 * worker-workspace-destroy.c), the worker's start and stop, and the
 * lookup by which commands, sessions and file operations that name a
 * workspace find it.
 *
 * A workspace belongs to the worker. It lives on disk in the worker's
 * state folder as workspaces/SLOT/ (meta.json: name, owner, limits;
 * disk.img: what the workspace sees as /workspace, an ext4 image as
 * large as its disk limit (see disk.c), or, without a limit, the folder
 * workspace/; root/: an empty folder its init builds the root on). SLOT
 * also picks the workspace's own host uid range, SANDD_WS_UID_BASE +
 * SLOT * 65536: a slot is taken in the host's registry (wsslot.c), whatever
 * the worker's --state-dir, and given back when the workspace goes, so
 * no two workspaces of the host share a range. A worker that starts finds the
 * folders again and starts their inits anew; processes never outlive
 * the worker, folders do.
 *
 * In memory a workspace has a reference count: a job that runs in it
 * holds one, so that a destroy while jobs end frees nothing they use.
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sandd.h"
#include "worker-workspace.h"

#define SANDD_WS_UID_BASE	0x40000000u	/* host uid of slot 0's root */
#define SANDD_WS_IDS		65536u		/* ids of a workspace */

struct ws_list workspaces = TAILQ_HEAD_INITIALIZER(workspaces);

static int	 ws_ready;	/* the filter is built: workspaces can start */
static char	*ws_why;	/* why they cannot */
static char	*ws_disk_why;	/* why disks cannot be bounded, or NULL */

static int	 ws_start(struct workspace *, char **);

/* ---- folders ---- */

/* The absolute folder of this worker's workspaces (allocated). */
static char *
ws_base(void)
{
	char	*real, *base;

	if ((real = realpath(state_folder(), NULL)) == NULL)
		real = xstrdup(state_folder());
	xasprintf(&base, "%s/workspaces", real);
	free(real);
	return (base);
}

/* Remove name in folder at and all below it, following no link. */
static void
ws_rmtree_at(int at, const char *name)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if (unlinkat(at, name, 0) == 0 || (errno != EISDIR &&
	    errno != EPERM))
		return;
	fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..")
		    != 0)
			ws_rmtree_at(dirfd(d), de->d_name);
	closedir(d);
	if (unlinkat(at, name, AT_REMOVEDIR) == -1)
		log_warn("%s: rmdir %s", __func__, name);
}

/* Remove a folder and all in it. */
void
ws_rmtree(const char *path)
{
	ws_rmtree_at(AT_FDCWD, path);
}

/* The workspace's meta.json, written whole. */
static int
ws_save(struct workspace *ws)
{
	char	*path, *tmp, *text;
	json_t	*m;
	int	 fd, r = -1;

	m = json_pack("{s:s, s:O, s:s, s:s, s:O}", "name", ws->name, "owner",
	    ws->owner, "created_at", ws->created, "network", ws->host_network ?
	    "host" : "none", "env", ws->env);
	json_object_set_new(m, "memory", ws->memory > 0 ?
	    json_integer((json_int_t)ws->memory) : json_null());
	json_object_set_new(m, "pids", ws->pids > 0 ?
	    json_integer(ws->pids) : json_null());
	json_object_set_new(m, "cpu", ws->cpu > 0 ? json_real(ws->cpu) :
	    json_null());
	json_object_set_new(m, "disk", ws->disk > 0 ?
	    json_integer((json_int_t)ws->disk) : json_null());
	text = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	xasprintf(&path, "%s/meta.json", ws->folder);
	xasprintf(&tmp, "%s/.meta.json.tmp", ws->folder);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd != -1 && write(fd, text, strlen(text)) == (ssize_t)strlen(text)
	    && fsync(fd) == 0 && rename(tmp, path) == 0)
		r = 0;
	if (fd != -1)
		close(fd);
	if (r == -1)
		log_warn("%s: %s", __func__, path);
	free(text);
	free(tmp);
	free(path);
	return (r);
}

/* ---- workspaces ---- */

/* Take a reference to ws. */
struct workspace *
workspace_ref(struct workspace *ws)
{
	ws->refs++;
	return (ws);
}

/* The name of ws, for messages. */
const char *
workspace_name(struct workspace *ws)
{
	return (ws->name);
}

/* Drop a reference; the last one frees it. */
void
workspace_unref(struct workspace *ws)
{
	if (ws == NULL || --ws->refs > 0)
		return;
	cgroup_free(ws->cg, 0);
	cgroup_free(ws->initcg, 0);
	if (ws->slotfd != -1)
		close(ws->slotfd);	/* the slot stays taken */
	if (ws->loopfd != -1)
		close(ws->loopfd);
	free(ws->loopdev);
	json_decref(ws->owner);
	json_decref(ws->env);
	free(ws->folder);
	free(ws);
}

/* The init has gone: by our hand, or else everything inside went too. */
static void
ws_init_reaped(pid_t pid, int status, void *arg)
{
	struct workspace	*ws = arg;

	if (ws->init.pid == pid) {
		log_warnx("workspace %s: its init (pid %ld) ended (status "
		    "%d); starting it again", ws->name, (long)pid, status);
		ns_init_stop(&ws->init);
		if (!ws->dead && ws_start(ws, NULL) == -1)
			log_warnx("workspace %s: cannot start again", ws->name);
	}
	workspace_unref(ws);
}

/* The host uid of ws's root (its gid is the same number). */
static uid_t
ws_uid(struct workspace *ws)
{
	return ((uid_t)(SANDD_WS_UID_BASE + (unsigned)ws->slot *
	    SANDD_WS_IDS));
}

/* The path of ws's disk image (allocated). */
char *
ws_disk_path(struct workspace *ws)
{
	char	*path, *real;

	xasprintf(&path, "%s/disk.img", ws->folder);
	if ((real = realpath(path, NULL)) == NULL)
		return (path);
	free(path);
	return (real);
}

/* Hold a loop device of ws's disk, if it has one. -1 with *cause. */
int
ws_disk_attach(struct workspace *ws, char **cause)
{
	char	*path;

	if (ws->disk == 0 || ws->loopfd != -1)
		return (0);
	path = ws_disk_path(ws);
	ws->loopfd = disk_attach(path, &ws->loopdev, cause);
	free(path);
	if (ws->loopfd == -1)
		return (-1);
	log_debug("workspace %s: disk on %s", ws->name, ws->loopdev);
	return (0);
}

/* Let go of ws's loop device (it goes once nothing has it mounted). */
void
ws_disk_detach(struct workspace *ws)
{
	if (ws->loopfd != -1)
		close(ws->loopfd);
	ws->loopfd = -1;
	free(ws->loopdev);
	ws->loopdev = NULL;
}

/*
 * Does ws's disk keep to the worker's bound? A workspace found again
 * may have been made without one (--max-workspace-disk none) or with a
 * larger one that holds too much to shrink: it does not start (a folder
 * cannot be bounded, a file system not shrunk under what it holds), its
 * files stay for a destroy --keep.
 */
static int
ws_disk_check(struct workspace *ws, char **cause)
{
	uint64_t	max = worker_opts.ws_max_disk;

	if (max == 0 || (ws->disk > 0 && ws->disk <= max))
		return (0);
	if (ws->disk == 0)
		xasprintf(cause, "workspace %s has no disk bound, and worker "
		    "%s bounds disks to %llu (--max-workspace-disk): destroy "
		    "it (--keep keeps its files) or start the worker with "
		    "--max-workspace-disk none", ws->name, worker_opts.id,
		    (unsigned long long)max);
	else
		xasprintf(cause, "workspace %s's disk of %llu is over worker "
		    "%s's ceiling of %llu (--max-workspace-disk): destroy it "
		    "(--keep keeps its files) or raise the ceiling", ws->name,
		    (unsigned long long)ws->disk, worker_opts.id,
		    (unsigned long long)max);
	return (-1);
}

/* Start the workspace's init (its groups must exist). -1 with *cause. */
static int
ws_start(struct workspace *ws, char **cause)
{
	struct ns_config	 cfg;
	char			*work, *stage, *why = NULL, name[32];
	int			 r;

	if (ws_disk_check(ws, cause != NULL ? cause : &why) == -1 ||
	    ws_disk_attach(ws, cause != NULL ? cause : &why) == -1) {
		if (why != NULL)
			log_warnx("workspace %s: %s", ws->name, why);
		free(why);
		return (-1);
	}
	xasprintf(&work, "%s/workspace", ws->folder);
	xasprintf(&stage, "%s/root", ws->folder);
	if (mkdir(stage, 0700) == -1 && errno != EEXIST)
		log_warn("%s: mkdir %s", __func__, stage);
	memset(&cfg, 0, sizeof cfg);
	cfg.hostname = ws->name;
	cfg.work = work;
	cfg.disk = ws->loopdev;
	cfg.stage = stage;
	cfg.hide = worker_opts.state_dir != NULL ? worker_opts.state_dir :
	    state_folder();
	cfg.host_network = ws->host_network;
	cfg.tmp_size = ws->memory;
	cfg.uid = ws_uid(ws);
	cfg.gid = (gid_t)cfg.uid;
	cfg.count = SANDD_WS_IDS;
	/*
	 * The init is in none of the workspace's limits: it answers the
	 * worker however busy or full the workspace is. It is tracked, so
	 * that a sweep finds it.
	 */
	snprintf(name, sizeof name, "ws-%d.init", ws->slot);
	if (ws->initcg == NULL)
		ws->initcg = cgroup_create(NULL, name, 1, &why);
	if (ws->initcg == NULL)
		r = -1;
	else
		r = ns_init_start(&cfg, ws->initcg, &ws->init, &why);
	if (r == 0)
		worker_child_add(ws->init.pid, ws_init_reaped,
		    workspace_ref(ws));
	else if (cause != NULL)
		*cause = why;
	else {
		log_warnx("workspace %s: %s", ws->name, why);
		free(why);
	}
	free(work);
	free(stage);
	return (r);
}

/* Make the workspace's groups with its limits; -1 with *cause. */
static int
ws_groups(struct workspace *ws, char **cause)
{
	char	name[32];

	snprintf(name, sizeof name, "ws-%d", ws->slot);
	if ((ws->cg = cgroup_create(NULL, name, 0, cause)) == NULL)
		return (-1);
	return (cgroup_set_limits(ws->cg, ws->memory, ws->pids, ws->cpu,
	    cause));
}

/* A workspace in memory; the caller fills it and adds it. */
static struct workspace *
ws_alloc(const char *name, int slot)
{
	struct workspace	*ws;

	ws = xcalloc(1, sizeof *ws);
	ws->refs = 1;
	ws->slot = slot;
	snprintf(ws->name, sizeof ws->name, "%s", name);
	xasprintf(&ws->folder, "%s/workspaces/%d", state_folder(), slot);
	ws->init.pid = -1;
	ws->init.pidfd = -1;
	ws->loopfd = ws->slotfd = -1;
	return (ws);
}

/* Are two owners the same (uid and controller)? */
static int
ws_same_owner(json_t *a, json_t *b)
{
	return (json_equal(json_object_get(a, "uid"), json_object_get(b,
	    "uid")) && json_equal(json_object_get(a, "controller"),
	    json_object_get(b, "controller")));
}

/*
 * The live workspace name of owner. Root (uid 0) also finds another
 * owner's when the name is unique on this worker.
 */
struct workspace *
ws_find(const char *name, json_t *owner)
{
	struct workspace	*ws, *any = NULL;
	int			 n = 0;

	TAILQ_FOREACH(ws, &workspaces, entry) {
		if (ws->dead || strcmp(ws->name, name) != 0)
			continue;
		if (ws_same_owner(ws->owner, owner))
			return (ws);
		any = ws;
		n++;
	}
	if (n == 1 && json_integer_value(json_object_get(owner, "uid")) == 0)
		return (any);
	return (NULL);
}

/* How many live workspaces there are. */
static int
ws_count(void)
{
	struct workspace	*ws;
	int			 n = 0;

	TAILQ_FOREACH(ws, &workspaces, entry)
		if (!ws->dead)
			n++;
	return (n);
}

/* Stop everything of ws, and wait: processes, init. */
void
ws_stop(struct workspace *ws)
{
	cgroup_kill(ws->cg);
	ns_init_stop(&ws->init);
	cgroup_kill(ws->initcg);
}

/*
 * The workspace a command, session or file operation (msg) names, in
 * *ws (NULL for the host). -1 with *code and *cause (allocated): an
 * unknown name, or the host with --isolate.
 */
int
workspace_of(json_t *msg, struct workspace **wsp, const char **code,
    char **cause)
{
	const char		*name;
	struct workspace	*ws;

	*wsp = NULL;
	name = json_string_value(json_object_get(msg, "workspace"));
	if (name == NULL) {
		if (!worker_opts.isolate)
			return (0);
		*code = "denied";
		xasprintf(cause, "worker %s runs nothing on the host "
		    "(--isolate): name a workspace", worker_opts.id);
		return (-1);
	}
	if ((ws = ws_find(name, json_object_get(msg, "owner"))) == NULL) {
		*code = "no_such_workspace";
		xasprintf(cause, "no workspace '%s' on worker %s", name,
		    worker_opts.id);
		return (-1);
	}
	if (ws->init.pid == -1 && ws_start(ws, cause) == -1) {
		*code = "internal";
		return (-1);
	}
	*wsp = ws;
	return (0);
}


/* The init of ws, through which its commands and files go. */
struct ns_init *
workspace_ns(struct workspace *ws)
{
	return (&ws->init);
}

/* The groups of ws. */
struct cgroup *
workspace_cgroup(struct workspace *ws)
{
	return (ws->cg);
}

/*
 * The environment of what runs in ws: a clean one (nothing of the
 * worker's), the workspace's env, the request's env over it, TERM if
 * term. Caller frees.
 */
char **
workspace_env(struct workspace *ws, json_t *env, const char *term)
{
	json_t	*all;
	char	**envp;

	all = json_pack("{s:s, s:s, s:s, s:s, s:s}", "PATH",
	    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	    "HOME", "/workspace", "USER", "root", "LOGNAME", "root",
	    "HOSTNAME", ws->name);
	json_object_update(all, ws->env);
	if (json_is_object(env))
		json_object_update(all, env);
	envp = spawn_build_env(all, 1, term, NULL);
	json_decref(all);
	return (envp);
}

/*
 * Open path as ws sees it, with its credentials (with writable: a folder
 * it may write in). The descriptor, or -1 with an errno and why
 * (NS_WHY_*), comes later to cb (see ns_file_open); NULL with *err if
 * the request cannot be made.
 */
struct ns_file *
workspace_file_open(struct workspace *ws, const char *path, int flags,
    int writable, void (*cb)(int, int, int, void *), void *arg, int *err)
{
	return (ns_file_open(&ws->init, path, flags, 0, writable ?
	    NS_FILE_WRITABLE : 0, cb, arg, err));
}

/*
 * Open the folder that holds path in ws (made first with mkdir), one it
 * may write in; as workspace_file_open.
 */
struct ns_file *
workspace_file_parent(struct workspace *ws, const char *path, int mkdir,
    void (*cb)(int, int, int, void *), void *arg, int *err)
{
	const char	*slash = strrchr(path, '/');
	char		*dir;
	struct ns_file	*f;

	dir = slash == path ? xstrdup("/") : xstrndup(path,
	    (size_t)(slash - path));
	f = ns_file_open(&ws->init, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
	    0, NS_FILE_WRITABLE | (mkdir ? NS_FILE_MKDIRS : 0), cb, arg, err);
	free(dir);
	return (f);
}

/* A file the worker made for ws belongs to its root. */
int
workspace_file_give(struct workspace *ws, int fd)
{
	return (fchown(fd, ws->init.uid, ws->init.gid));
}

/* How many processes ws's OOM killer has ended so far. */
uint64_t
workspace_ooms(struct workspace *ws)
{
	return (cgroup_oom_kills(ws->cg));
}

/* ---- workspace.create ---- */

/* The worker's ceilings of a workspace (its options). */
static void
ws_ceilings(struct ws_limits *ceil)
{
	memset(ceil, 0, sizeof *ceil);
	ceil->memory = worker_opts.ws_max_memory;
	ceil->pids = worker_opts.ws_max_pids;
	ceil->cpu = worker_opts.ws_max_cpu;
	ceil->disk = worker_opts.ws_max_disk;
}

/* The limits of a create request into ws; -1 after replying. */
static int
ws_limits(json_t *msg, struct workspace *ws)
{
	struct ws_limits	 ceil, l;
	const char		*code;
	char			*cause = NULL;

	ws_ceilings(&ceil);
	if (workspace_limits_parse(msg, &ceil, worker_opts.id, &l, &code,
	    &cause) == -1) {
		worker_reply_error(msg, code, 0, "%s", cause);
		free(cause);
		return (-1);
	}
	ws->memory = l.memory;
	ws->pids = l.pids;
	ws->cpu = l.cpu;
	ws->disk = l.disk;
	if (ws->disk > 0 && ws_disk_why != NULL) {
		worker_reply_error(msg, "internal", 0, "worker %s cannot bound "
		    "a workspace's disk: %s (started with --max-workspace-disk "
		    "none, it makes workspaces without a bound)",
		    worker_opts.id, ws_disk_why);
		return (-1);
	}
	return (0);
}

/* Check a create request; -1 after replying. */
static int
ws_create_check(json_t *msg, const char *name, int host_network)
{
	const char	*net;
	char		*cause;

	net = json_string_value(json_object_get(msg, "network"));
	if (!util_valid_id(name)) {
		worker_reply_error(msg, "bad_request", 0, "field 'workspace' "
		    "must be 1 to 64 of A-Za-z0-9._-");
		return (-1);
	}
	if (net != NULL && strcmp(net, "none") != 0 && strcmp(net, "host") !=
	    0) {
		worker_reply_error(msg, "bad_request", 0, "field 'network' "
		    "must be \"none\" or \"host\"");
		return (-1);
	}
	if (ws_find(name, json_object_get(msg, "owner")) != NULL &&
	    ws_same_owner(ws_find(name, json_object_get(msg, "owner"))->owner,
	    json_object_get(msg, "owner"))) {
		worker_reply_error(msg, "bad_request", 0, "workspace '%s' "
		    "exists on worker %s", name, worker_opts.id);
		return (-1);
	}
	if (!policy_env_ok(json_object_get(msg, "env"), &cause)) {
		worker_reply_error(msg, "denied", 0, "workspace %s: %s", name,
		    cause);
		free(cause);
		return (-1);
	}
	if (host_network && worker_opts.isolate &&
	    !worker_opts.allow_host_network) {
		worker_reply_error(msg, "denied", 0, "worker %s gives "
		    "workspaces no host network (--isolate without "
		    "--allow-host-network)", worker_opts.id);
		return (-1);
	}
	if (state_folder() == NULL || !ws_ready) {
		worker_reply_error(msg, "internal", 0, "worker %s cannot make "
		    "workspaces: %s", worker_opts.id, state_folder() == NULL ?
		    "it has no state folder (--state-dir)" : ws_why);
		return (-1);
	}
	if (worker_opts.max_workspaces > 0 &&
	    ws_count() >= worker_opts.max_workspaces) {
		worker_reply_error(msg, "limit", 0, "worker %s has its most "
		    "workspaces (%d)", worker_opts.id,
		    worker_opts.max_workspaces);
		return (-1);
	}
	return (0);
}

/*
 * Make the folders of a new workspace, and its disk (or, without a
 * bound, its folder workspace/); -1 with *cause.
 */
static int
ws_create_folders(struct workspace *ws, char **cause)
{
	char	*base, *work, *tpl;
	uid_t	 uid = ws_uid(ws);
	int	 r = -1;

	xasprintf(&base, "%s/workspaces", state_folder());
	xasprintf(&tpl, "%s/templates", state_folder());
	xasprintf(&work, "%s/%s", ws->folder, ws->disk > 0 ? "disk.img" :
	    "workspace");
	if (mkdir(base, 0700) == -1 && errno != EEXIST)
		xasprintf(cause, "mkdir %s: %s", base, strerror(errno));
	else if (mkdir(ws->folder, 0700) == -1)
		xasprintf(cause, "mkdir %s: %s", ws->folder, strerror(errno));
	else if (ws->disk > 0)
		r = disk_make(tpl, work, ws->disk, cause);
	else if (mkdir(work, 0755) == -1 || chown(work, uid, (gid_t)uid) == -1)
		xasprintf(cause, "%s: %s", work, strerror(errno));
	else
		r = 0;
	free(tpl);
	free(work);
	free(base);
	return (r);
}

/* The workspace.create RPC. */
void
worker_workspace_create(json_t *msg)
{
	struct workspace	*ws;
	const char		*name, *net;
	char			 gen[WORKER_ID_MAX + 1], rnd[9], *cause = NULL;
	char			*base;
	int			 slot, slotfd, host;

	net = json_string_value(json_object_get(msg, "network"));
	host = net != NULL && strcmp(net, "host") == 0;
	if ((name = json_string_value(json_object_get(msg, "workspace"))) ==
	    NULL) {
		util_random_hex(rnd, sizeof rnd);
		snprintf(gen, sizeof gen, "ws-%s", rnd);
		name = gen;
	}
	if (ws_create_check(msg, name, host) == -1)
		return;
	base = ws_base();
	slot = wsslot_take(base, &slotfd, &cause);
	free(base);
	if (slot == -1) {
		worker_reply_error(msg, "limit", 0, "worker %s: no uid range "
		    "for a workspace: %s", worker_opts.id, cause);
		free(cause);
		return;
	}
	ws = ws_alloc(name, slot);
	ws->slotfd = slotfd;
	ws->owner = json_incref(json_object_get(msg, "owner"));
	if (ws->owner == NULL)
		ws->owner = json_object();
	ws->env = json_is_object(json_object_get(msg, "env")) ?
	    json_deep_copy(json_object_get(msg, "env")) : json_object();
	ws->host_network = host;
	util_rfc3339(time(NULL), ws->created, sizeof ws->created);
	if (ws_limits(msg, ws) == -1)
		goto fail;
	if (ws_create_folders(ws, &cause) == -1 || ws_save(ws) == -1 ||
	    ws_groups(ws, &cause) == -1 || ws_start(ws, &cause) == -1) {
		worker_reply_error(msg, "internal", 0, "workspace %s on "
		    "worker %s: %s", name, worker_opts.id, cause != NULL ?
		    cause : "cannot save it");
		goto fail;
	}
	TAILQ_INSERT_TAIL(&workspaces, ws, entry);
	log_info("workspace %s: created (slot %d, init pid %ld%s%s)",
	    ws->name, ws->slot, (long)ws->init.pid, ws->loopdev != NULL ?
	    ", disk on " : "", ws->loopdev != NULL ? ws->loopdev : "");
	worker_reply(msg, json_pack("{s:b, s:s}", "ok", 1, "workspace",
	    ws->name));
	return;
fail:
	free(cause);
	cgroup_free(ws->cg, CGROUP_KILL);
	ws->cg = NULL;
	cgroup_free(ws->initcg, CGROUP_KILL);
	ws->initcg = NULL;
	ws_disk_detach(ws);
	ws_rmtree(ws->folder);
	wsslot_give(slot, ws->slotfd);
	ws->slotfd = -1;
	workspace_unref(ws);
}

/* ---- the worker's start and stop ---- */

/*
 * Take the slot of a workspace found in folder slotname again; -1 if
 * another workspace of the host has its uid range (logged: it is not
 * started, whatever its folder says, its files stay).
 */
static int
ws_load_slot(const char *slotname, int *fd)
{
	char	*base, *owner, *cause = NULL, *end;
	long	 slot;
	int	 r;

	slot = strtol(slotname, &end, 10);
	if (*end != '\0' || slot < 0 || slot >= WSSLOT_COUNT) {
		log_warnx("workspaces/%s: not a slot", slotname);
		return (-1);
	}
	base = ws_base();
	xasprintf(&owner, "%s/%ld", base, slot);
	if ((r = wsslot_claim((int)slot, owner, fd, &cause)) == -1) {
		log_warnx("workspace in %s: not started: %s", owner, cause);
		free(cause);
	}
	free(owner);
	free(base);
	return (r);
}

/*
 * The disk of a workspace found again: what its folder holds, not what
 * its meta.json says (the size of its image; 0 if it is a folder). An
 * image past today's ceiling is shrunk to it where what it holds fits.
 */
static uint64_t
ws_load_disk(struct workspace *ws)
{
	struct stat	 sb;
	uint64_t	 max = worker_opts.ws_max_disk;
	char		*img, *cause = NULL;

	xasprintf(&img, "%s/disk.img", ws->folder);
	if (lstat(img, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		free(img);
		return (0);
	}
	if (max > 0 && (uint64_t)sb.st_size > max && ws_disk_why == NULL) {
		if (disk_shrink(img, max, &cause) == 0) {
			log_warnx("workspace %s: disk shrunk from %lld to %llu "
			    "(--max-workspace-disk)", ws->name,
			    (long long)sb.st_size, (unsigned long long)max);
			sb.st_size = (off_t)max;
		} else {
			log_warnx("workspace %s: disk of %lld cannot shrink to "
			    "%llu: %s", ws->name, (long long)sb.st_size,
			    (unsigned long long)max, cause);
			free(cause);
		}
	}
	free(img);
	return (sb.st_size > 0 ? (uint64_t)sb.st_size : 1);
}

/*
 * Hold a workspace found again to today's policy, not to its saved
 * meta.json m (which anyone who could write the state folder may have
 * edited, and which the worker's options may have changed since): a
 * limit that is not a sound number is none, then every one is held to
 * the ceilings; the disk is what is there; the host's network goes
 * where --isolate now refuses it. What changed is logged and saved.
 */
static void
ws_load_bounds(struct workspace *ws, json_t *m)
{
	struct ws_limits	 l, ceil;
	char			*what = NULL, *junk = NULL;
	int			 changed;

	json_t			*disk;

	workspace_limits_saved(m, &l, &junk);
	if (junk != NULL)
		log_warnx("workspace %s: saved limits: %s", ws->name, junk);
	free(junk);
	ws_ceilings(&ceil);
	changed = workspace_limits_clamp(&l, &ceil, &what);
	if (changed > 0)
		log_warnx("workspace %s: held to worker %s's ceilings (saved: "
		    "%s)", ws->name, worker_opts.id, what);
	free(what);
	ws->memory = l.memory;
	ws->pids = l.pids;
	ws->cpu = l.cpu;
	ws->disk = ws_load_disk(ws);
	if (ws->host_network && worker_opts.isolate &&
	    !worker_opts.allow_host_network) {
		log_warnx("workspace %s: no host network (--isolate without "
		    "--allow-host-network)", ws->name);
		ws->host_network = 0;
		changed++;
	}
	disk = ws->disk > 0 ? json_integer((json_int_t)ws->disk) :
	    json_null();
	if (changed > 0 || !json_equal(json_object_get(m, "disk"), disk))
		(void)ws_save(ws);
	json_decref(disk);
}

/* A workspace of a previous process of the worker, from its folder. */
static void
ws_load(const char *slotname)
{
	struct workspace	*ws;
	json_t			*m, *v;
	json_error_t		 jerr;
	char			*path, *cause = NULL;
	const char		*name;
	int			 slotfd;

	/*
	 * First the slot: a folder even without a usable meta.json has
	 * files of its uid range, which no other workspace may get.
	 */
	if (ws_load_slot(slotname, &slotfd) == -1)
		return;
	xasprintf(&path, "%s/workspaces/%s/meta.json", state_folder(),
	    slotname);
	m = json_load_file(path, 0, &jerr);
	free(path);
	name = json_string_value(json_object_get(m, "name"));
	if (m == NULL || name == NULL || !util_valid_id(name)) {
		log_warnx("%s: workspaces/%s: no usable meta.json", __func__,
		    slotname);
		close(slotfd);	/* it stays taken while the folder is */
		json_decref(m);
		return;
	}
	ws = ws_alloc(name, atoi(slotname));
	ws->slotfd = slotfd;
	ws->owner = json_incref(json_object_get(m, "owner"));
	ws->env = json_incref(json_object_get(m, "env"));
	if (!json_is_object(ws->env) || !policy_env_ok(ws->env, &cause)) {
		if (cause != NULL)
			log_warnx("workspace %s: its env is dropped: %s",
			    name, cause);
		free(cause);
		cause = NULL;
		json_decref(ws->env);
		ws->env = json_object();
	}
	snprintf(ws->created, sizeof ws->created, "%s",
	    json_string_value(json_object_get(m, "created_at")) != NULL ?
	    json_string_value(json_object_get(m, "created_at")) : "");
	v = json_object_get(m, "network");
	ws->host_network = json_is_string(v) && strcmp(json_string_value(v),
	    "host") == 0;
	ws_load_bounds(ws, m);
	json_decref(m);
	TAILQ_INSERT_TAIL(&workspaces, ws, entry);
	if (ws_groups(ws, &cause) == -1 || ws_start(ws, &cause) == -1) {
		log_warnx("workspace %s: %s (started again on first use)",
		    ws->name, cause);
		free(cause);
	} else
		log_info("workspace %s: found again (slot %s)", ws->name,
		    slotname);
}

/*
 * At the worker's start: build the system call filter and find the
 * workspaces a previous process of this worker left.
 */
void
workspace_init(void)
{
	DIR		*d;
	struct dirent	*de;
	char		*dir;

	if (seccomp_init_filter(&ws_why) == -1)
		log_warnx("workspaces cannot start: %s", ws_why);
	else
		ws_ready = 1;
	if (disk_probe(&ws_disk_why) == -1)
		log_warnx("workspace disks cannot be bounded: %s%s",
		    ws_disk_why, worker_opts.ws_max_disk > 0 ? "; "
		    "workspace.create will fail (--max-workspace-disk none "
		    "makes them unbounded)" : "");
	if (state_folder() == NULL || !ws_ready)
		return;
	xasprintf(&dir, "%s/workspaces", state_folder());
	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
				ws_load(de->d_name);
		closedir(d);
	}
	free(dir);
}

/* The worker stops: end every workspace's processes; folders stay. */
void
workspace_shutdown(void)
{
	struct workspace	*ws;

	while ((ws = TAILQ_FIRST(&workspaces)) != NULL) {
		TAILQ_REMOVE(&workspaces, ws, entry);
		ws->dead = 1;
		ws_stop(ws);
		cgroup_free(ws->cg, CGROUP_KILL);
		ws->cg = NULL;
		cgroup_free(ws->initcg, CGROUP_KILL);
		ws->initcg = NULL;
		ws_disk_detach(ws);
		workspace_unref(ws);
	}
	ws_destroy_flush();
	seccomp_free_filter();
	free(ws_why);
	ws_why = NULL;
	free(ws_disk_why);
	ws_disk_why = NULL;
}

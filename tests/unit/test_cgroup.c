/*
 * test_cgroup.c: cgroup.c against fake cgroup trees in a temporary
 * folder: pure v2 (the norm), v1 only, and the hybrid of the machines
 * here (v2 mounted without controllers, memory, pids and cpu in v1).
 * Which version each controller takes, where the groups go, and what
 * the limits write, read and count.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "stubs.h"


/*
 * path with "@P" made the group of this process ("pPID"): the worker's
 * groups are under one of its own process. From a ring of buffers.
 */
static const char *
pp(const char *path)
{
	static char	 ring[8][512];
	static int	 next;
	char		*out = ring[next++ % 8], self[32];
	const char	*at = strstr(path, "@P");

	if (at == NULL)
		return (path);
	snprintf(self, sizeof self, "p%ld", (long)getpid());
	snprintf(out, sizeof ring[0], "%.*s%s%s", (int)(at - path), path,
	    self, at + 2);
	return (out);
}

static char	tmp[256];

/* Write s to root/rel (making the file). */
static void
put(const char *root, const char *rel, const char *s)
{
	char	path[512];
	int	fd;

	snprintf(path, sizeof path, "%s/%s", root, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1 || write(fd, s, strlen(s)) != (ssize_t)strlen(s)) {
		printf("cannot write %s\n", path);
		exit(1);
	}
	close(fd);
}

/* The content of root/rel ("" when missing), in a static buffer. */
static const char *
get(const char *root, const char *rel)
{
	static char	buf[256];
	char		path[512];
	ssize_t		n;
	int		fd;

	snprintf(path, sizeof path, "%s/%s", root, rel);
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY)) == -1)
		return (buf);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return (buf);
}

/* mkdir root/rel. */
static void
dir(const char *root, const char *rel)
{
	char	path[512];

	snprintf(path, sizeof path, "%s/%s", root, rel);
	if (mkdir(path, 0755) == -1 && errno != EEXIST) {
		printf("cannot mkdir %s\n", path);
		exit(1);
	}
}

/* Pure v2: every limit goes to the one hierarchy, below our own group. */
static void
test_v2(void)
{
	struct cgroup	*ws, *job;
	char		*cause = NULL, root[300];
	int		 fds[4], n, i;

	snprintf(root, sizeof root, "%s/v2", tmp);
	dir(tmp, "v2");
	put(root, "cgroup.controllers", "cpuset cpu io memory pids\n");
	dir(root, "svc");
	cgroup_init(root, "0::/svc\n", "u1");
	cgroup_make();
	CHECK(cgroup_version(CG_MEMORY) == 2);
	CHECK(cgroup_version(CG_PIDS) == 2);
	CHECK(cgroup_version(CG_CPU) == 2);
	CHECK(cgroup_version(CG_TRACK) == 2);
	CHECK(strstr(get(root, "svc/cgroup.subtree_control"), "+memory") !=
	    NULL);
	ws = cgroup_create(NULL, "ws-0", 0, &cause);
	CHECK(ws != NULL);
	if (ws == NULL)
		return;
	CHECK(strcmp(cgroup_path(ws, CG_MEMORY), cgroup_path(ws, CG_TRACK)) ==
	    0);
	CHECK(strstr(cgroup_path(ws, CG_MEMORY),
	    pp("/svc/sandd-u1/@P/ws-0")) != NULL);
	CHECK(cgroup_set_limits(ws, 64 << 20, 50, 0.5, &cause) == 0);
	CHECK(strcmp(get(root, pp("svc/sandd-u1/@P/ws-0/memory.max")),
	    "67108864") == 0);
	CHECK(strcmp(get(root, pp("svc/sandd-u1/@P/ws-0/memory.swap.max")),
	    "0") == 0);
	CHECK(strcmp(get(root, pp("svc/sandd-u1/@P/ws-0/pids.max")),
	    "50") == 0);
	CHECK(strcmp(get(root, pp("svc/sandd-u1/@P/ws-0/cpu.max")),
	    "50000 100000") == 0);
	put(root, pp("svc/sandd-u1/@P/ws-0/memory.current"), "12345\n");
	put(root, pp("svc/sandd-u1/@P/ws-0/memory.events"),
	    "low 0\nhigh 0\nmax 9\noom 2\noom_kill 3\n");
	CHECK(cgroup_memory_used(ws) == 12345);
	CHECK(cgroup_oom_kills(ws) == 3);
	/* A job inside: a group below the workspace's, in v2 alone. */
	job = cgroup_create(ws, "job-1", 1, &cause);
	CHECK(job != NULL);
	CHECK(strstr(cgroup_path(job, CG_TRACK), "/ws-0/job-1") != NULL);
	put(root, pp("svc/sandd-u1/@P/ws-0/cgroup.procs"), "");
	put(root, pp("svc/sandd-u1/@P/ws-0/job-1/cgroup.procs"), "101\n102\n");
	CHECK(cgroup_count(ws) == 2);
	n = cgroup_procs_fds(job, fds, 4);
	CHECK(n == 1);
	for (i = 0; i < n; i++)
		close(fds[i]);
	cgroup_free(job, 0);
	cgroup_free(ws, 0);
	cgroup_shutdown();
}

/* v1 only: each controller its own hierarchy; pids tracks. */
static void
test_v1(void)
{
	struct cgroup	*ws;
	char		*cause = NULL, root[300];

	snprintf(root, sizeof root, "%s/v1", tmp);
	dir(tmp, "v1");
	dir(root, "memory");
	dir(root, "pids");
	dir(root, "cpu");
	dir(root, "memory/a");
	cgroup_init(root, "5:memory:/a\n4:pids:/\n3:cpu,cpuacct:/\n", "u2");
	cgroup_make();
	CHECK(cgroup_version(CG_MEMORY) == 1);
	CHECK(cgroup_version(CG_PIDS) == 1);
	CHECK(cgroup_version(CG_CPU) == 1);
	CHECK(cgroup_version(CG_TRACK) == 1);
	ws = cgroup_create(NULL, "ws-3", 0, &cause);
	CHECK(ws != NULL);
	if (ws == NULL)
		return;
	CHECK(strstr(cgroup_path(ws, CG_MEMORY),
	    pp("/memory/a/sandd-u2/@P/ws-3")) != NULL);
	CHECK(strcmp(cgroup_path(ws, CG_PIDS), cgroup_path(ws, CG_TRACK)) ==
	    0);
	CHECK(cgroup_set_limits(ws, 1 << 20, 7, 2, &cause) == 0);
	CHECK(strcmp(get(root,
	    pp("memory/a/sandd-u2/@P/ws-3/memory.limit_in_bytes")),
	    "1048576") == 0);
	CHECK(strcmp(get(root, pp("pids/sandd-u2/@P/ws-3/pids.max")),
	    "7") == 0);
	CHECK(strcmp(get(root, pp("cpu/sandd-u2/@P/ws-3/cpu.cfs_quota_us")),
	    "200000") == 0);
	CHECK(strcmp(get(root, pp("cpu/sandd-u2/@P/ws-3/cpu.cfs_period_us")),
	    "100000") == 0);
	put(root, pp("memory/a/sandd-u2/@P/ws-3/memory.oom_control"),
	    "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
	put(root, pp("memory/a/sandd-u2/@P/ws-3/memory.usage_in_bytes"),
	    "777\n");
	CHECK(cgroup_oom_kills(ws) == 4);
	CHECK(cgroup_memory_used(ws) == 777);
	cgroup_free(ws, 0);
	cgroup_shutdown();
}

/* The hybrid of the machines here: v2 without controllers tracks. */
static void
test_hybrid(void)
{
	struct cgroup	*job;
	char		*cause = NULL, root[300];

	snprintf(root, sizeof root, "%s/hy", tmp);
	dir(tmp, "hy");
	dir(root, "memory");
	dir(root, "pids");
	dir(root, "cpu");
	dir(root, "unified");
	put(root, "unified/cgroup.controllers", "\n");
	cgroup_init(root, "4:memory:/\n3:pids:/\n2:cpu:/\n0::/\n", "u3");
	cgroup_make();
	CHECK(cgroup_version(CG_MEMORY) == 1);
	CHECK(cgroup_version(CG_TRACK) == 2);
	CHECK(cgroup_tracking());
	/* A host job: in the tracker only. */
	job = cgroup_create(NULL, "job-9", 1, &cause);
	CHECK(job != NULL);
	if (job == NULL)
		return;
	CHECK(cgroup_path(job, CG_MEMORY) == NULL);
	CHECK(strstr(cgroup_path(job, CG_TRACK),
	    pp("/unified/sandd-u3/@P/job-9")) != NULL);
	cgroup_free(job, 0);
	cgroup_shutdown();
}

int
main(void)
{
	char	cmd[300];

	log_init("test_cgroup", 0, 0);
	snprintf(tmp, sizeof tmp, "%s/sandd-cg.XXXXXX", getenv("TMPDIR") !=
	    NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		printf("mkdtemp failed\n");
		return (1);
	}
	test_v2();
	test_v1();
	test_hybrid();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmp);
	return (unit_done("test_cgroup"));
}

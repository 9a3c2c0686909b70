/*
 * ns.c: the namespaces of a workspace. Our own code, not bubblewrap: a
 * workspace has one long-lived init that owns its namespaces, and every
 * command joins them with setns(2) from a fork of the worker, which
 * costs a few system calls instead of a new sandbox per exec.
 *
 * The init is made with clone(2) by the worker (host root): new mount,
 * PID, IPC, UTS and (network "none") network namespaces, all owned by
 * the host's user namespace, so that nothing inside can remount,
 * reconfigure its network or rename its host. As the host's root, the
 * init builds the file system: a read-only tmpfs root with the host's
 * top-level folders bound in read-only (nosuid, nodev), a private
 * writable /workspace (the workspace's disk, see disk.c) and /tmp
 * (a tmpfs as large as the workspace's memory), its own /proc, a
 * minimal /dev with a private devpts, and /run, /var/run, /home, /root
 * and the worker's state folder empty. It pivots into that root and
 * execs the sandd binary afresh (through a descriptor opened before) as
 * "sandd-init", with no other argument and an empty environment, so
 * that nothing of the worker (its argv, environment, memory) is left in
 * it. Then it moves into a new user namespace that the worker maps to
 * the workspace's own host uid range (0 inside is the range's first
 * id), takes uid and gid 0 there, drops every supplementary group, and
 * becomes not dumpable (so nothing inside can ptrace it or read its
 * memory). It runs in a group of its own, tracked but outside the
 * workspace's limits, so it answers however busy or full the workspace
 * is.
 *
 * The init then serves the worker's file operations (ns_file_open, in
 * ns-file.c, the worker's end): it
 * opens paths as the workspace sees them, with its credentials, through
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), and passes the
 * descriptor back over a socket, so symlinks resolve inside and never
 * lead out. And it reaps the orphans of its PID namespace. The worker
 * never waits for it: requests queue per workspace, one at a time on
 * the socket, each with a sequence number its answer carries, and are
 * answered through a callback from the event loop; one not answered in
 * time fails, and its late answer is dropped by its number.
 *
 * A command (ns_spawn) is forked by the worker: the child joins the
 * job's groups, joins the init's namespaces through its pidfd, and
 * clones the command with CLONE_PARENT, so the command is a child of the
 * worker (reaped and signalled as any) inside the PID namespace. The
 * command then takes its ids inside, its rlimits, its folder, a parent
 * death signal, no new privileges and the seccomp filter, and execs.
 * Between fork and exec only system calls are made (the worker has a
 * second thread): everything is worked out before the fork.
 */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <linux/magic.h>
#include <linux/openat2.h>
#include <net/if.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "sandd.h"
#include "ns.h"

#define NS_TMP_DEFAULT	(256ULL * 1024 * 1024)	/* /tmp, no memory limit */
#define NS_TMP_INODE	4096	/* bytes of /tmp per inode */
#define NS_TMP_INODES_MIN 1024

/* The stages of a start that can fail, for the message. */
enum ns_stage {
	NS_ST_NONE = 0,
	NS_ST_CGROUP,
	NS_ST_SETNS,
	NS_ST_CLONE,
	NS_ST_IDS,
	NS_ST_LIMITS,
	NS_ST_CWD,
	NS_ST_FILTER,
	NS_ST_EXEC,
	NS_ST_MOUNT,
	NS_ST_USERNS,
};
static const char *ns_stage_names[] = { "", "cgroup", "setns", "clone",
    "user", "limits", "cwd", "seccomp", "exec", "mount", "user namespace" };

/* What a child reports on its pipe. */
struct ns_note {
	int	kind;
#define NS_NOTE_PID	1	/* val: the command's pid */
#define NS_NOTE_ERR	2	/* val: errno at stage */
#define NS_NOTE_STEP	3	/* val: a step of the init done */
	int	stage;
	int	val;
};

/* The plan of an init: everything its child needs, made before fork. */
struct ns_plan {
	const struct ns_config *cfg;
	char	*root;			/* staging mount point */
	char	**src;			/* host top-level entries ... */
	char	**dst;			/* ... and where they go */
	char	**link;			/* symlink targets (NULL: bind) */
	int	*isdir;
	int	 n;
	char	*mk[8];			/* folders made in the root */
	char	*proc, *dev, *pts, *tmp, *work;
	char	*tmpopts;		/* /tmp's mount options */
	char	*lostfound;		/* the disk's lost+found */
	char	*varrun;		/* NULL unless a folder to cover */
	char	*hide;			/* the state folder, NULL if none */
	char	*devs[6];
};

/* ---- the init (child side: system calls only) ---- */

/*
 * Send len bytes of buf on the socket sock as one message, with the
 * descriptor fd (unless -1) passed along. System calls only: children
 * of the worker use it before exec.
 */
void
ns_send_fd(int sock, const void *buf, size_t len, int fd)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;

	memset(&mh, 0, sizeof mh);
	iov.iov_base = (void *)buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd != -1) {
		memset(&cm, 0, sizeof cm);
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof cm.buf;
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.hdr), &fd, sizeof fd);
	}
	(void)!sendmsg(sock, &mh, MSG_NOSIGNAL);
}

/*
 * Receive one message of up to len bytes into buf on sock, and the
 * descriptor passed with it (close-on-exec) in *fd, -1 if none. What
 * recvmsg returns, with errno; flags are recvmsg's.
 */
ssize_t
ns_recv_fd(int sock, void *buf, size_t len, int flags, int *fd)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	ssize_t		 n;

	*fd = -1;
	memset(&mh, 0, sizeof mh);
	iov.iov_base = buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof cm.buf;
	if ((n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC)) <= 0)
		return (n);
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof *fd);
	return (n);
}

/*
 * Report a failure at stage with errno on fd and exit: a child of the
 * worker before exec (the init here, a command in ns-spawn.c).
 */
__dead void
ns_child_fail(int fd, int stage)
{
	struct ns_note	n;

	n.kind = NS_NOTE_ERR;
	n.stage = stage;
	n.val = errno;
	(void)!write(fd, &n, sizeof n);
	_exit(127);
}

/* Tell the parent a step is done. */
static void
ns_child_step(int fd, int step)
{
	struct ns_note	n;

	n.kind = NS_NOTE_STEP;
	n.stage = 0;
	n.val = step;
	if (write(fd, &n, sizeof n) != sizeof n)
		_exit(1);
}

/* Bind src on dst, read-only, nosuid, nodev, with everything below. */
static int
ns_bind_ro(const char *src, const char *dst)
{
	struct mount_attr	attr;

	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) == -1)
		return (-1);
	memset(&attr, 0, sizeof attr);
	attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
	    MOUNT_ATTR_NODEV;
	return ((int)syscall(SYS_mount_setattr, AT_FDCWD, dst, AT_RECURSIVE,
	    &attr, sizeof attr));
}

/* The host's top-level entries, bound or linked into the new root. */
static int
ns_child_binds(struct ns_plan *p)
{
	int	i, fd;

	for (i = 0; i < p->n; i++) {
		if (p->link[i] != NULL) {
			if (symlink(p->link[i], p->dst[i]) == -1)
				return (-1);
			continue;
		}
		if (p->isdir[i]) {
			if (mkdir(p->dst[i], 0755) == -1)
				return (-1);
		} else {
			if ((fd = open(p->dst[i], O_CREAT | O_WRONLY |
			    O_CLOEXEC, 0644)) == -1)
				return (-1);
			close(fd);
		}
		if (ns_bind_ro(p->src[i], p->dst[i]) == -1)
			return (-1);
	}
	return (0);
}

/* A minimal /dev: a few devices, a private devpts, the usual links. */
static int
ns_child_dev(struct ns_plan *p)
{
	static const struct { int major, minor; } nodes[] = {
		{ 1, 3 }, { 1, 5 }, { 1, 7 }, { 1, 8 }, { 1, 9 }, { 5, 0 }
	};
	char	link[NS_PATH_MAX];
	size_t	i, n = strlen(p->dev);

	if (mount("tmpfs", p->dev, "tmpfs", MS_NOSUID | MS_NOEXEC,
	    "mode=755,size=64k") == -1)
		return (-1);
	for (i = 0; i < 6; i++)
		if (mknod(p->devs[i], S_IFCHR | 0666, makedev(nodes[i].major,
		    nodes[i].minor)) == -1)
			return (-1);
	if (mkdir(p->pts, 0755) == -1 || mount("devpts", p->pts, "devpts",
	    MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") == -1)
		return (-1);
	if (n + 16 > sizeof link)
		return (-1);
	memcpy(link, p->dev, n);
	memcpy(link + n, "/ptmx", 6);
	if (symlink("pts/ptmx", link) == -1)
		return (-1);
	memcpy(link + n, "/fd", 4);
	if (symlink("/proc/self/fd", link) == -1)
		return (-1);
	memcpy(link + n, "/stdin", 7);
	if (symlink("/proc/self/fd/0", link) == -1)
		return (-1);
	memcpy(link + n, "/stdout", 8);
	if (symlink("/proc/self/fd/1", link) == -1)
		return (-1);
	memcpy(link + n, "/stderr", 8);
	if (symlink("/proc/self/fd/2", link) == -1)
		return (-1);
	memcpy(link + n, "/shm", 5);
	if (symlink("/tmp", link) == -1)
		return (-1);
	return (mount(NULL, p->dev, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NOEXEC, NULL));
}

/*
 * /workspace: the workspace's disk, or its folder bound in. A new disk's
 * lost+found goes (fsck makes it again where it needs it).
 */
static int
ns_child_work(struct ns_plan *p)
{
	struct stat	st;

	if (p->cfg->disk != NULL) {
		if (mount(p->cfg->disk, p->work, "ext4", MS_NOSUID | MS_NODEV,
		    "noinit_itable,discard") == -1)
			return (-1);
		/* A new disk's root is the host's root's (disk.c): give it. */
		if (stat(p->work, &st) == 0 && st.st_uid == 0 &&
		    chown(p->work, p->cfg->uid, p->cfg->gid) == -1)
			return (-1);
		(void)rmdir(p->lostfound);
		return (0);
	}
	if (mount(p->cfg->work, p->work, NULL, MS_BIND, NULL) == -1 ||
	    mount(NULL, p->work, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID |
	    MS_NODEV, NULL) == -1)
		return (-1);
	return (0);
}

/* Build the new root at p->root and pivot into it. */
static int
ns_child_root(struct ns_plan *p)
{
	int	i;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", p->root, "tmpfs", MS_NOSUID | MS_NODEV,
	    "mode=755,size=64k") == -1 || ns_child_binds(p) == -1)
		return (-1);
	for (i = 0; i < 8 && p->mk[i] != NULL; i++)
		if (mkdir(p->mk[i], 0755) == -1)
			return (-1);
	if (mount("proc", p->proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    NULL) == -1 || mount("tmpfs", p->tmp, "tmpfs", MS_NOSUID |
	    MS_NODEV, p->tmpopts) == -1 || ns_child_dev(p) == -1)
		return (-1);
	if (ns_child_work(p) == -1)
		return (-1);
	if (p->varrun != NULL && mount("tmpfs", p->varrun, "tmpfs",
	    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k") == -1)
		return (-1);
	if (p->hide != NULL && mount("tmpfs", p->hide, "tmpfs", MS_RDONLY |
	    MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k") == -1)
		return (-1);
	if (mount(NULL, p->root, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
	    MS_NOSUID | MS_NODEV, NULL) == -1)
		return (-1);
	if (chdir(p->root) == -1 || syscall(SYS_pivot_root, ".", ".") == -1 ||
	    umount2(".", MNT_DETACH) == -1 || chdir("/") == -1)
		return (-1);
	return (0);
}

/* Bring the loopback interface of a new network namespace up. */
static int
ns_child_lo(void)
{
	struct ifreq	ifr;
	int		s, r;

	if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return (-1);
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", 3);
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return (r);
}

/* Open path inside (relative to the root rfd) as the request says. */
static int
ns_child_open(int rfd, const char *path, int flags, int mode)
{
	struct open_how	how;

	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	if (flags & (O_CREAT | O_TMPFILE))
		how.mode = (uint64_t)mode;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	while (*path == '/')
		path++;
	if (*path == '\0')
		path = ".";
	return ((int)syscall(SYS_openat2, rfd, path, &how, sizeof how));
}

/* mkdir -p of path inside, each new folder 0755. */
static int
ns_child_mkdirs(int rfd, char *path)
{
	char	*s, c;
	int	 fd, pfd;

	for (s = path; *s == '/'; s++)
		;
	for (; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		c = *s;
		*s = '\0';
		if ((fd = ns_child_open(rfd, path, O_PATH | O_DIRECTORY, 0))
		    != -1)
			close(fd);
		else if (errno == ENOENT) {
			char	*slash = strrchr(path, '/');

			if (slash == NULL)
				return (-1);
			*slash = '\0';
			pfd = ns_child_open(rfd, path, O_PATH | O_DIRECTORY,
			    0);
			*slash = '/';
			if (pfd == -1)
				return (-1);
			if (mkdirat(pfd, slash + 1, 0755) == -1 &&
			    errno != EEXIST) {
				close(pfd);
				return (-1);
			}
			close(pfd);
		} else
			return (-1);
		*s = c;
		if (c == '\0')
			return (0);
	}
}

/* Answer request seq on sock: err and why, and a descriptor if any. */
static void
ns_child_answer(int sock, uint32_t seq, int err, int why, int fd)
{
	struct ns_fans	 a;

	memset(&a, 0, sizeof a);
	a.seq = seq;
	a.err = err;
	a.why = why;
	ns_send_fd(sock, &a, sizeof a, fd);
	if (fd != -1)
		close(fd);
}

/* Is fd on the workspace's /proc or /sys (not served: see below)? */
static int
ns_child_pseudo(int fd)
{
	struct statfs	sfs;

	if (fstatfs(fd, &sfs) == -1)
		return (1);
	return (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC);
}

/*
 * One file request: make the folders first if asked, open, check that
 * the folder opened is writable if asked. /proc and /sys are not served:
 * through them the init would show what is its own (its memory, maps
 * and descriptors), which nothing else inside may read.
 */
static void
ns_child_request(int sock, int rfd, struct ns_freq *q)
{
	struct statvfs	vfs;
	int		fd = -1, err = 0, why = NS_WHY_OPEN;

	q->path[sizeof q->path - 1] = '\0';
	if ((q->how & NS_FILE_MKDIRS) && ns_child_mkdirs(rfd, q->path) == -1) {
		err = errno;
		why = NS_WHY_MKDIR;
	} else if ((fd = ns_child_open(rfd, q->path, q->flags, q->mode)) == -1)
		err = errno;
	else if (ns_child_pseudo(fd)) {
		err = EACCES;
		why = NS_WHY_PSEUDO;
	} else if ((q->how & NS_FILE_WRITABLE) && fstatvfs(fd, &vfs) == 0 &&
	    (vfs.f_flag & ST_RDONLY))
		err = EROFS;
	else if ((q->how & NS_FILE_WRITABLE) && faccessat(fd, ".", W_OK,
	    AT_EACCESS) == -1)
		err = errno;
	if (err != 0 && fd != -1) {
		close(fd);
		fd = -1;
	}
	ns_child_answer(sock, q->seq, err, why, fd);
}

/* The init's loop: file requests and orphans, until the worker goes. */
static __dead void
ns_child_serve(int sock)
{
	struct pollfd	 pfd[2];
	struct ns_freq	 q;
	sigset_t	 set;
	char		 buf[512];
	ssize_t		 n;
	int		 rfd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((pfd[1].fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) ==
	    -1 || (rfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1)
		_exit(1);
	pfd[0].fd = sock;
	pfd[0].events = pfd[1].events = POLLIN;
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (pfd[1].revents & POLLIN)
			while (read(pfd[1].fd, buf, sizeof buf) > 0)
				;
		if (pfd[0].revents & POLLIN) {
			memset(&q, 0, sizeof q);
			n = recv(sock, &q, sizeof q, 0);
			if (n == 0)
				_exit(0);
			if (n > (ssize_t)offsetof(struct ns_freq, path))
				ns_child_request(sock, rfd, &q);
		} else if (pfd[0].revents & (POLLHUP | POLLERR))
			_exit(0);
	}
}

/*
 * Keep only the n descriptors of fds, as 3, 4, ... in that order; -1
 * with errno.
 */
static int
ns_child_fds(int *fds, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 64)) == -1)
			return (-1);
	for (i = 0; i < n; i++) {
		if (dup3(fds[i], 3 + i, O_CLOEXEC) == -1)
			return (-1);
		fds[i] = 3 + i;
	}
	return ((int)syscall(SYS_close_range, 3 + n, ~0U, 0));
}

/*
 * The init, right after clone: build its file system, then exec the
 * sandd binary afresh as NS_INIT_ARGV0 (ns_init_main) with the note,
 * go and file service descriptors as 3, 4 and 5, an empty environment
 * and nothing else: nothing of the worker's memory, argv or environment
 * is left in it for /proc/1 to show inside.
 */
static __dead void
ns_child_init(struct ns_plan *p, int note, int go, int sock, int exe,
    int *cgfd, int ncg)
{
	static char	*argv[] = { (char *)NS_INIT_ARGV0, NULL };
	static char	*envp[] = { NULL };
	int		 fds[4] = { note, go, sock, exe }, i;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	umask(0);
	if (cgroup_enter(cgfd, ncg) == -1)
		ns_child_fail(note, NS_ST_CGROUP);
	if (ns_child_fds(fds, 4) == -1)
		ns_child_fail(note, NS_ST_CGROUP);
	note = fds[0];
	if (ns_child_root(p) == -1)
		ns_child_fail(note, NS_ST_MOUNT);
	if (sethostname(p->cfg->hostname, strlen(p->cfg->hostname)) == -1 ||
	    (!p->cfg->host_network && ns_child_lo() == -1))
		ns_child_fail(note, NS_ST_MOUNT);
	for (i = 0; i < 3; i++)
		if (fcntl(fds[i], F_SETFD, 0) == -1)
			ns_child_fail(note, NS_ST_EXEC);
	syscall(SYS_execveat, fds[3], "", argv, envp, AT_EMPTY_PATH);
	ns_child_fail(note, NS_ST_EXEC);
}

/*
 * The init as exec'd (argv[0] NS_INIT_ARGV0), still the host's root:
 * move into a new user namespace, wait for the worker to map it, take
 * root there (changing ids makes it not dumpable: nothing inside may
 * trace it or read its memory), then serve.
 */
__dead void
ns_init_main(void)
{
	int	note = 3, go = 4, sock = 5, i;
	char	c;

	prctl(PR_SET_DUMPABLE, 0);
	for (i = 3; i <= 5; i++)
		if (fcntl(i, F_SETFD, FD_CLOEXEC) == -1)
			_exit(1);
	if (unshare(CLONE_NEWUSER) == -1)
		ns_child_fail(note, NS_ST_USERNS);
	ns_child_step(note, 'u');
	if (read(go, &c, 1) != 1)
		_exit(1);
	if (setgroups(0, NULL) == -1 || setresgid(0, 0, 0) == -1 ||
	    setresuid(0, 0, 0) == -1)
		ns_child_fail(note, NS_ST_IDS);
	/* Changing ids cleared these. */
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	ns_child_step(note, 'r');
	close(note);
	close(go);
	ns_child_serve(sock);
}

/* ---- the init (worker side) ---- */

/* Free a plan. */
static void
ns_plan_free(struct ns_plan *p)
{
	int	i;

	for (i = 0; i < p->n; i++) {
		free(p->src[i]);
		free(p->dst[i]);
		free(p->link[i]);
	}
	free(p->src);
	free(p->dst);
	free(p->link);
	free(p->isdir);
	for (i = 0; i < 8; i++)
		free(p->mk[i]);
	for (i = 0; i < 6; i++)
		free(p->devs[i]);
	free(p->proc);
	free(p->dev);
	free(p->pts);
	free(p->tmp);
	free(p->tmpopts);
	free(p->lostfound);
	free(p->work);
	free(p->varrun);
	free(p->hide);
	free(p->root);
}

/* Is a top-level name one the workspace has its own of (or none)? */
static int
ns_plan_own(const char *name)
{
	static const char *own[] = { "proc", "dev", "tmp", "run", "home",
	    "root", "workspace", "lost+found", NULL };
	const char	**p;

	for (p = own; *p != NULL; p++)
		if (strcmp(name, *p) == 0)
			return (1);
	return (0);
}

/* The host's top-level entries: folders and files bound, links copied. */
static void
ns_plan_top(struct ns_plan *p)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 sb;
	char		*src, buf[NS_PATH_MAX];
	ssize_t		 n;
	int		 i;

	if ((d = opendir("/")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || ns_plan_own(de->d_name))
			continue;
		xasprintf(&src, "/%s", de->d_name);
		if (lstat(src, &sb) == -1 || (!S_ISDIR(sb.st_mode) &&
		    !S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))) {
			free(src);
			continue;
		}
		i = p->n++;
		p->src = xrealloc(p->src, (size_t)p->n * sizeof *p->src);
		p->dst = xrealloc(p->dst, (size_t)p->n * sizeof *p->dst);
		p->link = xrealloc(p->link, (size_t)p->n * sizeof *p->link);
		p->isdir = xrealloc(p->isdir, (size_t)p->n * sizeof *p->isdir);
		p->src[i] = src;
		xasprintf(&p->dst[i], "%s%s", p->root, src);
		p->link[i] = NULL;
		p->isdir[i] = S_ISDIR(sb.st_mode);
		if (S_ISLNK(sb.st_mode) &&
		    (n = readlink(src, buf, sizeof buf - 1)) > 0) {
			buf[n] = '\0';
			p->link[i] = xstrdup(buf);
		}
	}
	closedir(d);
}

/*
 * /tmp is a tmpfs, memory that the worker's own writes (a put) are
 * charged for, not the workspace: bound it to size bytes (the
 * workspace's memory), and its inodes, one per page of it.
 */
static void
ns_plan_tmp(struct ns_plan *p, uint64_t size)
{
	uint64_t	inodes;

	if (size == 0)
		size = NS_TMP_DEFAULT;
	inodes = size / NS_TMP_INODE;
	if (inodes < NS_TMP_INODES_MIN)
		inodes = NS_TMP_INODES_MIN;
	xasprintf(&p->tmpopts, "mode=1777,size=%llu,nr_inodes=%llu",
	    (unsigned long long)size, (unsigned long long)inodes);
}

/* Work out everything the init's child does, before the clone. */
static void
ns_plan_make(struct ns_plan *p, const struct ns_config *cfg)
{
	static const char *mk[] = { "proc", "dev", "tmp", "run", "home",
	    "root", "workspace" };
	static const char *devs[] = { "null", "zero", "full", "random",
	    "urandom", "tty" };
	struct stat	 sb;
	char		*real;
	size_t		 i;

	memset(p, 0, sizeof *p);
	p->cfg = cfg;
	p->root = xstrdup(cfg->stage);
	ns_plan_top(p);
	for (i = 0; i < sizeof mk / sizeof mk[0]; i++)
		xasprintf(&p->mk[i], "%s/%s", p->root, mk[i]);
	xasprintf(&p->proc, "%s/proc", p->root);
	xasprintf(&p->dev, "%s/dev", p->root);
	xasprintf(&p->pts, "%s/dev/pts", p->root);
	xasprintf(&p->tmp, "%s/tmp", p->root);
	ns_plan_tmp(p, cfg->tmp_size);
	xasprintf(&p->work, "%s/workspace", p->root);
	xasprintf(&p->lostfound, "%s/lost+found", p->work);
	for (i = 0; i < 6; i++)
		xasprintf(&p->devs[i], "%s/dev/%s", p->root, devs[i]);
	if (lstat("/var/run", &sb) == 0 && S_ISDIR(sb.st_mode))
		xasprintf(&p->varrun, "%s/var/run", p->root);
	/* The state folder, if it is (or is below) a folder bound in. */
	if (cfg->hide != NULL && (real = realpath(cfg->hide, NULL)) != NULL) {
		for (i = 0; i < (size_t)p->n; i++) {
			size_t	l = strlen(p->src[i]);

			if (p->isdir[i] && p->link[i] == NULL &&
			    strncmp(real, p->src[i], l) == 0 &&
			    (real[l] == '/' || real[l] == '\0')) {
				xasprintf(&p->hide, "%s%s", p->root, real);
				break;
			}
		}
		free(real);
	}
}

/* Read one note from fd, waiting at most ms; -1 on EOF or timeout. */
static int
ns_read_note(int fd, struct ns_note *n, int ms)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	ssize_t		r;

	if (poll(&pfd, 1, ms) != 1)
		return (-1);
	do
		r = read(fd, n, sizeof *n);
	while (r == -1 && errno == EINTR);
	return (r == (ssize_t)sizeof *n ? 0 : -1);
}

/* Write the init's id maps: 0 inside is cfg's uid and gid, count ids. */
static int
ns_write_maps(pid_t pid, const struct ns_config *cfg)
{
	char	path[64], map[64];
	int	fd, i, r = 0;

	for (i = 0; i < 2 && r == 0; i++) {
		snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid,
		    i == 0 ? "uid_map" : "gid_map");
		snprintf(map, sizeof map, "0 %lu %u\n", i == 0 ?
		    (unsigned long)cfg->uid : (unsigned long)cfg->gid,
		    cfg->count);
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
			return (-1);
		if (write(fd, map, strlen(map)) != (ssize_t)strlen(map))
			r = -1;
		close(fd);
	}
	return (r);
}

/* Follow the init's start: maps when it asks, ready or its error. */
static int
ns_init_wait(struct ns_init *ni, const struct ns_config *cfg, int note,
    int go, char **cause)
{
	struct ns_note	n;

	for (;;) {
		if (ns_read_note(note, &n, 10000) == -1) {
			xasprintf(cause, "the workspace's init did not start");
			return (-1);
		}
		if (n.kind == NS_NOTE_ERR) {
			xasprintf(cause, "workspace init: %s: %s",
			    ns_stage_names[n.stage], strerror(n.val));
			return (-1);
		}
		if (n.kind == NS_NOTE_STEP && n.val == 'r')
			return (0);
		if (n.kind == NS_NOTE_STEP && n.val == 'u') {
			if (ns_write_maps(ni->pid, cfg) == -1) {
				xasprintf(cause, "id maps of pid %ld: %s",
				    (long)ni->pid, strerror(errno));
				return (-1);
			}
			if (write(go, "g", 1) != 1) {
				xasprintf(cause, "workspace init gone");
				return (-1);
			}
		}
	}
}

/*
 * Start the init of a workspace as cfg says, in group cg. Fills ni; the
 * caller reaps ni->pid. -1 with *cause (nothing is left running).
 */
int
ns_init_start(const struct ns_config *cfg, struct cgroup *cg,
    struct ns_init *ni, char **cause)
{
	struct ns_plan	 p;
	int		 note[2], go[2], sp[2], cgfd[CG_NHIER], ncg, i, r = -1;
	int		 exe;
	long		 flags;

	memset(ni, 0, sizeof *ni);
	ni->pid = -1;
	ni->pidfd = -1;
	if ((ncg = cgroup_procs_fds(cg, cgfd, CG_NHIER)) == -1) {
		xasprintf(cause, "its init's group: %s", strerror(errno));
		return (-1);
	}
	if ((exe = open("/proc/self/exe", O_PATH | O_CLOEXEC)) == -1) {
		xasprintf(cause, "/proc/self/exe: %s", strerror(errno));
		for (i = 0; i < ncg; i++)
			close(cgfd[i]);
		return (-1);
	}
	ns_plan_make(&p, cfg);
	if (compat_pipe_cloexec(note) == -1 || compat_pipe_cloexec(go) == -1 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
		fatal("%s: pipe", __func__);
	flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
	    SIGCHLD;
	if (!cfg->host_network)
		flags |= CLONE_NEWNET;
	ni->pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, 0);
	if (ni->pid == 0) {
		close(note[0]);
		close(go[1]);
		close(sp[0]);
		ns_child_init(&p, note[1], go[0], sp[1], exe, cgfd, ncg);
	}
	close(exe);
	close(note[1]);
	close(go[0]);
	close(sp[1]);
	for (i = 0; i < ncg; i++)
		close(cgfd[i]);
	if (ni->pid == -1)
		xasprintf(cause, "clone: %s", strerror(errno));
	else if (ns_init_wait(ni, cfg, note[0], go[1], cause) == 0 &&
	    (ni->pidfd = (int)syscall(SYS_pidfd_open, ni->pid, 0)) == -1)
		xasprintf(cause, "pidfd_open: %s", strerror(errno));
	else if (ni->pidfd != -1)
		r = 0;
	close(note[0]);
	close(go[1]);
	ns_plan_free(&p);
	if (r == -1) {
		close(sp[0]);
		if (ni->pid > 0) {
			kill(ni->pid, SIGKILL);
			waitpid(ni->pid, NULL, 0);
		}
		ni->pid = -1;
		return (-1);
	}
	ni->files = ns_files_create(ni, sp[0]);
	ni->uid = cfg->uid;
	ni->gid = cfg->gid;
	ni->count = cfg->count;
	ni->host_network = cfg->host_network;
	return (0);
}

/* Stop the init: its PID namespace, and so all inside, goes with it. */
void
ns_init_stop(struct ns_init *ni)
{
	if (ni->pid > 0)
		kill(ni->pid, SIGKILL);
	if (ni->pidfd != -1)
		close(ni->pidfd);
	ni->pidfd = -1;
	ni->pid = -1;
	ns_files_free(ni->files);
	ni->files = NULL;
}

"""Workspaces under attack from inside: a workspace that saturates its own
CPU stalls neither the worker nor another workspace, and its file answers
never cross; the init shows nothing of the worker; a command whose control
groups cannot be had does not run unlimited; a workspace whose /tmp holds
all its memory can still be destroyed."""

import hashlib
import os
import re
import signal
import threading
import time

import harness as h
from test_workspace import cluster, create, wexec

MB = 1024 * 1024

# A hang bound, not a speed target: the worker answers these in
# milliseconds; before the event loop stopped waiting on a saturated
# workspace they took 5 to 45 s.
STALL = 4


def worker_groups(c, worker_id="w1"):
    """The folders of cluster c's worker in every cgroup hierarchy (named
    for its id and its state folder, as cgroup.c does)."""
    folder = os.path.join(c.tmp, "state", worker_id)
    name = "sandd-%s.%s" % (worker_id,
                            hashlib.sha256(folder.encode()).hexdigest()[:8])
    found = []
    for root, dirs, _files in os.walk("/sys/fs/cgroup"):
        if name in dirs:
            found.append(os.path.join(root, name))
            dirs.remove(name)
    return found


def procs_in(folder):
    n = 0
    for root, _dirs, files in os.walk(folder):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    n += len(f.read().split())
            except OSError:
                pass
    return n


def ws_groups(c, hierarchy=None):
    """The ws-N folders of cluster c's worker (in one hierarchy, or all)."""
    found = []
    for base in worker_groups(c):
        if hierarchy is not None and \
                not base.startswith("/sys/fs/cgroup/%s/" % hierarchy):
            continue
        for root, dirs, _files in os.walk(base):
            for d in list(dirs):
                if d.startswith("ws-") and "." not in d:
                    found.append(os.path.join(root, d))
                    dirs.remove(d)
    return found


def remove_group(folder):
    """Move every process of folder (and below) to its parent, then remove
    it, deepest first: the group is gone from under the worker."""
    parent = os.path.dirname(folder)
    for root, dirs, files in os.walk(folder, topdown=False):
        if "cgroup.procs" in files:
            with open(os.path.join(root, "cgroup.procs")) as f:
                pids = f.read().split()
            for pid in pids:
                try:
                    with open(os.path.join(parent, "cgroup.procs"),
                              "w") as f:
                        f.write(pid)
                except OSError:
                    pass
        os.rmdir(root)


def cpu_quota(c, cores):
    """Set the CPU limit of cluster c's workspace groups behind the
    worker's back (None: no limit); True if there was a group to set."""
    done = False
    for g in ws_groups(c):
        if os.path.exists(os.path.join(g, "cpu.cfs_quota_us")):
            with open(os.path.join(g, "cpu.cfs_quota_us"), "w") as f:
                f.write("-1" if cores is None else str(int(cores * 100000)))
            done = True
        elif os.path.exists(os.path.join(g, "cpu.max")):
            with open(os.path.join(g, "cpu.max"), "w") as f:
                f.write("max" if cores is None else
                        "%d 100000" % int(cores * 100000))
            done = True
    return done


def saturate(c, ctl, ws, cores, loops):
    """Start loops busy loops in ws, whose CPU is cores. The shell that
    starts them runs with no limit (it would take minutes at 1% of a
    core): the loops sleep a second first, and the limit is back before
    they spin."""
    if not cpu_quota(c, None):
        raise h.Skip("no cpu group to saturate")
    try:
        wexec(ctl, ws, "for i in $(seq %d); do (sleep 1; while :; do :; "
              "done) > /dev/null 2>&1 < /dev/null & done" % loops)
    finally:
        cpu_quota(c, cores)
    time.sleep(2)


def timed(what, fn):
    t0 = time.monotonic()
    r = fn()
    dt = time.monotonic() - t0
    assert dt < h.T(STALL), "%s took %.1f s: %r" % (what, dt, r)
    return r


def slow_and_fast(c):
    ctl = c.connect()
    create(ctl, "slow", cpu=0.01, pids=1000)
    create(ctl, "fast")
    for name, text in (("a", "A" * 100), ("b", "B" * 200)):
        h.ok(ctl.call({"op": "put", "worker": "w1", "workspace": "slow",
                       "path": "/workspace/" + name, "data": text}))
    saturate(c, ctl, "slow", 0.01, 200)
    return ctl


def exec_in_background(c, ws, cmd):
    """An exec into ws on a connection of its own, answered whenever."""
    box = {}

    def run():
        try:
            with c.connect() as ctl:
                box["r"] = ctl.call({"op": "exec", "worker": "w1",
                                     "workspace": ws, "cmd": cmd},
                                    timeout=h.T(90))
        except Exception as e:
            box["r"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


# ------------------------------------------------------------ the loop

def test_a_saturated_workspace_stalls_neither_the_worker_nor_another():
    with cluster() as c:
        ctl = slow_and_fast(c)
        # Commands into the saturated workspace, started meanwhile.
        bg = [exec_in_background(c, "slow", "echo in-slow")
              for _ in range(2)]
        time.sleep(0.5)
        for i in range(6):
            r = timed("stat in fast", lambda: ctl.call(
                {"op": "stat", "worker": "w1", "workspace": "fast",
                 "path": "/workspace"}))
            assert h.ok(r)["type"] == "dir", r
            r = timed("exec in fast", lambda: ctl.call(
                {"op": "exec", "worker": "w1", "workspace": "fast",
                 "cmd": "echo %d" % i}))
            assert h.out(h.ok(r)) == b"%d\n" % i, r
            r = timed("exec on the host", lambda: ctl.call(
                {"op": "exec", "worker": "w1", "cmd": "echo host"}))
            assert h.out(h.ok(r)) == b"host\n", r
            r = timed("stat in slow", lambda: ctl.call(
                {"op": "stat", "worker": "w1", "workspace": "slow",
                 "path": "/workspace/a"}))
            assert h.ok(r)["size"] == 100, r
            for name, text in (("a", "A" * 100), ("b", "B" * 200)):
                r = timed("get in slow", lambda: ctl.call(
                    {"op": "get", "worker": "w1", "workspace": "slow",
                     "path": "/workspace/" + name}))
                assert h.ok(r)["data"] == text, (name, r)
        # The commands into slow are not lost: destroy ends them.
        h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                       "workspace": "slow"}, timeout=h.T(30)))
        for t, box in bg:
            t.join(h.T(60))
            assert "r" in box and isinstance(box["r"], dict), box


def init_pid(c, ws):
    """The host pid of ws's init, as the worker logged it."""
    m = re.findall(r"workspace %s: created \(slot \d+, init pid (\d+)[,)]"
                   % ws, c.log("worker-w1"))
    assert m, c.log("worker-w1")[-2000:]
    return int(m[-1])


def test_a_late_file_answer_is_never_taken_for_the_next_ones():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "late")
        for name, text in (("a", "A" * 100), ("b", "B" * 200)):
            h.ok(ctl.call({"op": "put", "worker": "w1", "workspace": "late",
                           "path": "/workspace/" + name, "data": text}))
        # The init answers too late for get A (as a saturated one did).
        pid = init_pid(c, "late")
        os.kill(pid, signal.SIGSTOP)
        try:
            r = ctl.call({"op": "get", "worker": "w1", "workspace": "late",
                          "path": "/workspace/a"}, timeout=h.T(30))
        finally:
            os.kill(pid, signal.SIGCONT)
        assert not r.get("ok") or r["data"] == "A" * 100, r
        for i in range(3):
            for name, text in (("b", "B" * 200), ("a", "A" * 100)):
                r = ctl.call({"op": "get", "worker": "w1",
                              "workspace": "late",
                              "path": "/workspace/" + name})
                assert h.ok(r)["data"] == text, (i, name, r)


# ------------------------------------------------------------ the init

def test_workspace_init_shows_nothing_of_the_worker():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "peek")
        secrets = [c.url.encode(), os.path.join(c.tmp, "state").encode(),
                   c.marker.encode()]
        seen = []
        for path in ("/proc/1/cmdline", "/proc/1/maps", "/proc/1/environ",
                     "/proc/self/cmdline", "/proc/self/maps"):
            r = ctl.call({"op": "get", "worker": "w1", "workspace": "peek",
                          "path": path})
            seen.append((path, h.out(r, "data") if r.get("ok") else b""))
        r = wexec(ctl, "peek", "cat /proc/1/cmdline; echo; "
                  "cat /proc/1/maps /proc/1/environ 2>&1; true")
        seen.append(("exec cat", h.out(r)))
        # The init is not the worker: a program of its own, named so.
        assert h.out(r).split(b"\n")[0].startswith(b"sandd-init\0"), r
        for what, data in seen:
            for s in secrets:
                assert s not in data, (what, s, data[:300])


# ------------------------------------------------------------ cgroups

def test_exec_in_a_workspace_whose_groups_are_gone_fails_not_unlimited():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "nogroup", memory=64 * MB, pids=20)
        groups = ws_groups(c)
        assert groups, worker_groups(c)
        for g in groups:
            remove_group(g)
        r = ctl.call({"op": "exec", "worker": "w1", "workspace": "nogroup",
                      "cmd": "cat /proc/self/cgroup"}, timeout=h.T(30))
        h.err(r, "exec_failed")
        msg = r["error"]["message"]
        assert "workspace nogroup" in msg and "cgroup" in msg, r
        r = ctl.call({"op": "session.open", "worker": "w1",
                      "workspace": "nogroup", "argv": ["/bin/sh"],
                      "attach": False}, timeout=h.T(30))
        assert not r.get("ok"), r
        h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                       "workspace": "nogroup"}, timeout=h.T(30)))


def test_exec_in_a_workspace_without_its_memory_group_fails():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "nomem", memory=64 * MB)
        groups = ws_groups(c, "memory")
        if not groups:
            raise h.Skip("no v1 memory hierarchy")
        for g in groups:
            remove_group(g)
        r = ctl.call({"op": "exec", "worker": "w1", "workspace": "nomem",
                      "argv": ["python3", "-c",
                               "b = bytearray(256 * 1024 * 1024);"
                               " print('unlimited')"]}, timeout=h.T(30))
        h.err(r, "exec_failed")
        assert "cgroup" in r["error"]["message"], r


# ------------------------------------------------------------ memory

def test_destroy_works_once_tmp_holds_all_the_memory():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "full", memory=48 * MB)
        r = wexec(ctl, "full", "head -c %d /dev/zero > /tmp/fill; "
                  "echo written" % (96 * MB))
        assert b"written" not in h.out(r), r
        # Every command now dies at once (one that needs a few MB of its
        # own: the kill of the writer left a little room, as much as it
        # used, which a shell's echo may fit in).
        # By argv: the program itself is the one the OOM killer ends (a
        # shell would survive its child and exit 137, reason "exit").
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "workspace": "full",
                           "argv": ["python3", "-c", "print('alive')"]},
                          timeout=h.T(60)))
        assert b"alive" not in h.out(r), r
        assert r.get("reason") == "oom", r
        # File operations still work (the init is not in the group).
        r = h.ok(ctl.call({"op": "stat", "worker": "w1", "workspace": "full",
                           "path": "/tmp/fill"}))
        assert r["size"] > 16 * MB, r
        t0 = time.monotonic()
        h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                       "workspace": "full"}, timeout=h.T(30)))
        assert time.monotonic() - t0 < h.T(20)
        assert sum(procs_in(g) for g in worker_groups(c)) == 0
        create(ctl, "full")
        assert h.out(wexec(ctl, "full", "echo again")) == b"again\n"


if __name__ == "__main__":
    h.run_main(globals())

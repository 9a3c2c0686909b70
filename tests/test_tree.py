"""Issue 11 finding 19: no process a command started outlives its
timeout, its cancel, or its worker (a group per job, the worker's
guardian, and the sweep of a new worker of the same id)."""

import os
import random
import signal
import time

import harness as h
from test_workspace import pids_with


def marker():
    return "%d.%06d" % (4000 + random.randint(0, 999),
                        random.randint(1, 999999))


def escaping(m):
    """A command whose child leaves its process group and session."""
    return ("setsid sleep %s > /dev/null 2>&1 < /dev/null & "
            "until pgrep -xf 'sleep %s' > /dev/null; do sleep 0.01; done; "
            "sleep 600" % (m, m))


def start_escaping(ctl):
    """Start escaping() on w1 and leave it running; its marker."""
    m = marker()
    h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": escaping(m),
                   "yield_after": 0.5}, timeout=h.T(30)))
    h.wait_for(lambda: pids_with(m), h.T(10), what="the child")
    return m


def timeout_ends_all(ctl):
    """A command that times out on w1 ends with its setsid child."""
    m = marker()
    r = h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": escaping(m),
                       "timeout": 1, "kill_grace": 0.5}, timeout=h.T(30)))
    assert r["timed_out"], r
    h.wait_for(lambda: pids_with(m) == [], h.T(5),
               what="the setsid child to end")


def test_timeout_ends_a_setsid_child():
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        timeout_ends_all(ctl)


def test_cancel_ends_a_setsid_child():
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        m = marker()
        ctl.send({"op": "exec", "worker": "w1", "cmd": escaping(m),
                  "stream": True, "kill_grace": 0.5})
        h.wait_for(lambda: pids_with(m), h.T(10), what="the child")
        ctl.close()
        h.wait_for(lambda: pids_with(m) == [], h.T(10),
                   what="the setsid child to end")


def test_kill_9_of_the_worker_ends_its_commands():
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        m = marker()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": escaping(m),
                           "yield_after": 0.5}, timeout=h.T(30)))
        h.wait_for(lambda: pids_with(m), h.T(10), what="the child")
        assert r.get("running"), r
        os.kill(c.workers["w1"].pid, signal.SIGKILL)
        h.wait_for(lambda: pids_with(m) == [], h.T(10),
                   what="the commands to end with their worker")


def guardians(worker_pid):
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    st = f.read()
                with open("/proc/%s/comm" % d) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            ppid = int(st.rsplit(")", 1)[1].split()[1])
            if ppid == worker_pid and comm == "sandd-guard":
                found.append(int(d))
    return found


def test_a_new_worker_ends_what_a_dead_one_left():
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        m = start_escaping(ctl)
        wpid = c.workers["w1"].pid
        g = guardians(wpid)
        assert len(g) == 1, g
        # Worker and guardian die together: nothing ends the commands...
        os.kill(g[0], signal.SIGKILL)
        os.kill(wpid, signal.SIGKILL)
        time.sleep(0.2)
        assert pids_with(m), "the command died without a sweep"
        # ...until the next worker of that id sweeps its groups.
        c.start_worker("w1")
        h.wait_for(lambda: pids_with(m) == [], h.T(10),
                   what="the sweep to end the orphans")


def test_a_worker_killed_with_its_group_leaves_no_groups_behind():
    """kill -9 of the worker's whole process group (a supervisor's or a
    terminal's kill): its commands end and its group folders go, in every
    hierarchy. They used to stay for good, one set per killed worker."""
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        m = start_escaping(ctl)
        folders = c.group_folders("w1")
        if not folders:
            raise h.Skip("the worker has no groups of its own here")
        wpid = c.workers["w1"].pid
        os.killpg(os.getpgid(wpid), signal.SIGKILL)
        h.wait_for(lambda: pids_with(m) == [], h.T(10),
                   what="the commands to end with their worker")
        h.wait_for(lambda: not any(os.path.exists(d) for d in folders),
                   h.T(10), what="the folders of %s to go" % folders)


def test_a_group_left_busy_is_not_given_to_the_next_command():
    """Groups of host commands are kept for the next ones when they end
    empty. One that ends with a process still in it (a daemon it left)
    is not: the timeout of a later command must not end that process."""
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        m = marker()
        h.ok(ctl.call({"op": "exec", "worker": "w1",
                       "cmd": "setsid sleep %s > /dev/null 2>&1 "
                              "< /dev/null & until pgrep -xf 'sleep %s' "
                              "> /dev/null; do sleep 0.01; done" % (m, m)},
                      timeout=h.T(30)))
        h.wait_for(lambda: pids_with(m), h.T(10), what="the daemon")
        for _ in range(3):
            r = h.ok(ctl.call({"op": "exec", "worker": "w1",
                               "cmd": escaping(marker()), "timeout": 0.5,
                               "kill_grace": 0.2}, timeout=h.T(30)))
            assert r["timed_out"], r
        assert pids_with(m), "a later command's timeout ended the daemon"
        os.kill(pids_with(m)[0], signal.SIGKILL)


def test_kept_groups_removed_from_outside_do_not_fail_a_command():
    """An administrator removes the worker's idle job groups: the next
    commands still run, each in a group that still ends all of it."""
    with h.Cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        for i in range(4):
            h.ok(ctl.call({"op": "exec", "worker": "w1", "argv": ["true"]},
                          timeout=h.T(30)))
        folders = c.group_folders("w1")
        if not folders:
            raise h.Skip("the worker has no groups of its own here")
        base = "p%d" % c.workers["w1"].pid
        removed = 0
        for f in folders:
            for root, dirs, _files in os.walk(os.path.join(f, base),
                                              topdown=False):
                for d in dirs:
                    if d.startswith("job-"):
                        os.rmdir(os.path.join(root, d))
                        removed += 1
        assert removed, "no idle job group was kept"
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "argv": ["true"]},
                          timeout=h.T(30)))
        assert r["exit_code"] == 0, r
        timeout_ends_all(ctl)


if __name__ == "__main__":
    h.run_main(globals())

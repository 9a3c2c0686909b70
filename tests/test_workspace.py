"""Workspaces end to end: what runs inside sees only its own processes,
writes only its own folders, reaches no network and cannot take more
memory, processes or CPU than granted; every escape attempt of issue 12
fails; destroy and a stopping worker leave nothing behind; a restarted
worker finds its workspaces again."""

import hashlib
import os
import random
import socket
import subprocess

import harness as h

MB = 1024 * 1024


def create(ctl, name, **kw):
    msg = {"op": "workspace.create", "worker": "w1", "name": name}
    msg.update(kw)
    return h.ok(ctl.call(msg, timeout=h.T(30)))


def wexec(ctl, ws, cmd, **kw):
    msg = {"op": "exec", "worker": "w1", "workspace": ws, "cmd": cmd}
    msg.update(kw)
    return h.ok(ctl.call(msg, timeout=h.T(60)))


def marker():
    """A sleep duration no other process has: its cmdline finds it."""
    return "%d.%06d" % (3000 + random.randint(0, 999),
                        random.randint(1, 999999))


def pids_with(text):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return found


def mounts_with(text):
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/mountinfo" % d) as f:
                if text in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return found


def loops_of(folder):
    """The loop devices whose image is under folder."""
    found = []
    for d in os.listdir("/sys/block"):
        try:
            with open("/sys/block/%s/loop/backing_file" % d) as f:
                if f.read().startswith(folder):
                    found.append("/dev/" + d)
        except OSError:
            pass
    return found


def cgroup_procs(c, worker_id):
    """Processes in the groups of cluster c's worker, in every hierarchy
    (named for its id and its state folder: other test clusters running at
    the same time have a w1 too)."""
    folder = os.path.join(c.tmp, "state", worker_id)
    name = "sandd-%s.%s" % (worker_id,
                            hashlib.sha256(folder.encode()).hexdigest()[:8])
    n = 0
    for root, _dirs, files in os.walk("/sys/fs/cgroup"):
        if name not in root.split("/"):
            continue
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    n += len(f.read().split())
            except OSError:
                pass
    return n


def py(code):
    return "python3 -c %s" % h.shlex_quote(code) if hasattr(
        h, "shlex_quote") else "python3 -c '%s'" % code.replace("'",
                                                              "'\\''")


def cluster(**kw):
    return h.Cluster(workers={"w1": {}}, **kw)


# ------------------------------------------------------------ inside

def test_workspace_runs_as_root_of_its_own_uid_range_with_its_own_view():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "view")
        r = wexec(ctl, "view", "id -u; hostname; pwd; cat /proc/self/uid_map;"
                  " grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status")
        lines = h.out(r).decode().split("\n")
        assert lines[0] == "0", r
        assert lines[1] == "view", r
        assert lines[2] == "/workspace", r
        inside, base, count = lines[3].split()
        assert inside == "0" and int(count) == 65536, r
        assert int(base) >= 65536 and int(base) != 65534, r
        assert "NoNewPrivs:\t1" in lines[4:], r
        assert "Seccomp:\t2" in lines[4:], r
        # A second workspace gets a range of its own.
        create(ctl, "view2")
        r2 = wexec(ctl, "view2", "cat /proc/self/uid_map")
        assert h.out(r2).decode().split()[1] != base, r2


def test_workspace_cannot_see_or_signal_a_host_process():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "sig")
        p = subprocess.Popen(["sleep", "60"])
        try:
            r = wexec(ctl, "sig", "ls /proc | grep -x %d; kill -9 %d; "
                      "echo rc=$?" % (p.pid, p.pid))
            assert b"rc=0" not in h.out(r), r
            assert str(p.pid).encode() + b"\n" not in h.out(r), r
            assert p.poll() is None, "the host process was killed"
            r = wexec(ctl, "sig", "ls /proc | grep -c '^[0-9]'")
            assert int(h.out(r)) < 10, r
        finally:
            p.kill()
            p.wait()


def test_workspace_cannot_write_etc_root_or_the_worker_binary():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "ro")
        before = os.stat(h.SANDD)
        for path in ("/etc/sandd-escape", "/root/sandd-escape", h.SANDD):
            r = wexec(ctl, "ro", "echo x >> %s; echo rc=$?" % path)
            assert b"rc=0" not in h.out(r), (path, r)
        assert not os.path.exists("/etc/sandd-escape")
        assert not os.path.exists("/root/sandd-escape")
        after = os.stat(h.SANDD)
        assert (before.st_size, before.st_mtime) == (after.st_size,
                                                     after.st_mtime)
        # /root and /run are empty inside, /workspace and /tmp writable.
        r = wexec(ctl, "ro", "ls -A /root /run /home | grep -vc -e : -e '^$';"
                  " touch /workspace/a /tmp/b && echo writable")
        assert h.out(r).split()[0] == b"0", r   # nothing but headers
        assert b"writable" in h.out(r), r


def test_workspace_without_network_cannot_reach_a_host_listener():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "net")
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(5)
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        try:
            code = ("import socket; s = socket.socket(); s.settimeout(3);\n"
                    "try:\n s.connect(('127.0.0.1', %d)); print('CONNECTED')\n"
                    "except OSError as e: print('refused', e)" % port)
            r = wexec(ctl, "net", "python3 -c \"%s\"" % code)
            assert b"CONNECTED" not in h.out(r), r
            assert b"refused" in h.out(r), r
            try:
                conn, _ = srv.accept()
                conn.close()
                raise AssertionError("the listener was reached")
            except socket.timeout:
                pass
        finally:
            srv.close()


SYSCALL = ("import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True);"
           " r = libc.syscall(%s); print(r, ctypes.get_errno())")


def test_workspace_cannot_mount_load_a_module_or_make_namespaces():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "priv")
        r = wexec(ctl, "priv", "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m;"
                  " echo mount=$?; unshare -U true; echo unshare=$?")
        assert b"mount=0" not in h.out(r), r
        assert b"unshare=0" not in h.out(r), r
        # finit_module(-1, "", 0) and init_module: EPERM, never run.
        r = wexec(ctl, "priv", "python3 -c '%s'" % (SYSCALL % "313, -1, b\"\", 0"))
        assert h.out(r).split()[0] == b"-1", r
        assert h.out(r).split()[1] == b"1", r    # EPERM
        # clone3 answers ENOSYS (38) so the C library falls back to clone.
        r = wexec(ctl, "priv", "python3 -c '%s'" % (SYSCALL % "435, 0, 0"))
        assert h.out(r).split() == [b"-1", b"38"], r


def test_workspace_cannot_ptrace_the_worker_or_its_init():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "trace")
        wpid = c.workers["w1"].pid
        for pid in (wpid, 1):
            r = wexec(ctl, "trace", "python3 -c '%s'" % (
                SYSCALL % "101, 16, %d, 0, 0" % pid))  # PTRACE_ATTACH
            assert h.out(r).split()[0] == b"-1", (pid, r)
        r = wexec(ctl, "trace", "cat /proc/1/environ; echo rc=$?")
        assert b"rc=0" not in h.out(r), r


def test_workspace_cannot_read_another_workspaces_files():
    # Both kinds of /workspace: a disk image (the default) and a folder.
    for args, what in (((), "disk.img"),
                       (("--max-workspace-disk", "none"),
                        "workspace/secret")):
        if not h.DISKS and what == "disk.img":
            continue
        with h.Cluster(workers={"w1": {}}, worker_args=args) as c:
            ctl = c.connect()
            create(ctl, "wa")
            create(ctl, "wb")
            wexec(ctl, "wa", "echo secret-of-a > /workspace/secret; sync")
            state = os.path.join(c.tmp, "state")
            slot = [d for d in os.listdir(os.path.join(state, "w1",
                                                       "workspaces"))
                    if '"wa"' in open(os.path.join(
                        state, "w1", "workspaces", d, "meta.json")).read()]
            where = "*/workspaces/%s/%s" % (slot[0], what)
            found = subprocess.run(["find", state, "-path", where],
                                   capture_output=True,
                                   text=True).stdout.split()
            assert len(found) == 1, found
            r = wexec(ctl, "wb", "cat %s | grep -a -c secret-of-a; "
                      "ls /workspace; grep -r secret-of-a / --include=secret "
                      "-s -l 2>/dev/null | head -3" % found[0])
            assert b"secret-of-a" not in h.out(r), r
            r = ctl.call({"op": "get", "worker": "w1", "workspace": "wb",
                          "path": found[0]})
            h.err(r, "io_error")


def test_workspace_file_ops_never_leave_it_through_a_symlink():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "links")
        host = os.path.join(c.tmp, "host-secret")
        with open(host, "w") as f:
            f.write("host only")
        wexec(ctl, "links", "ln -s %s /workspace/h; ln -s / /workspace/up; "
              "ln -s /proc/1/root /workspace/p; ln -s ../../.. /workspace/dd"
              % host)
        for path in ("/workspace/h", "/workspace/up" + host,
                     "/workspace/dd" + host, "/workspace/p/etc/hostname"):
            r = ctl.call({"op": "get", "worker": "w1", "workspace": "links",
                          "path": path})
            assert not r.get("ok"), (path, r)
            assert b"host only" not in h.out(r, "data") if r.get("ok") \
                else True
        r = ctl.call({"op": "put", "worker": "w1", "workspace": "links",
                      "path": "/workspace/h", "data": "overwritten"})
        with open(host) as f:
            assert f.read() == "host only", r
        r = ctl.call({"op": "put", "worker": "w1", "workspace": "links",
                      "path": "/workspace/up" + host, "data": "x"})
        h.ok(r) if False else None
        with open(host) as f:
            assert f.read() == "host only", r
        r = h.ok(ctl.call({"op": "stat", "worker": "w1", "workspace": "links",
                           "path": "/workspace/up"}))
        assert r["type"] == "link", r
        r = ctl.call({"op": "stat", "worker": "w1", "workspace": "links",
                      "path": "/workspace/up" + host})
        h.err(r, "io_error")
        # Outside /workspace and /tmp, writes fail.
        r = ctl.call({"op": "put", "worker": "w1", "workspace": "links",
                      "path": "/etc/escape", "data": "x"})
        e = h.err(r, r.get("error", {}).get("code", "io_error"))
        assert e["error"]["code"] in ("denied", "io_error"), r
        assert not os.path.exists("/etc/escape")


def test_workspace_files_belong_to_its_root_and_round_trip():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "files")
        h.ok(ctl.call({"op": "put", "worker": "w1", "workspace": "files",
                       "path": "/workspace/d/e/f.txt", "data": "hello",
                       "mkdir": True}))
        r = wexec(ctl, "files", "stat -c '%u %s' /workspace/d/e/f.txt")
        assert h.out(r).split() == [b"0", b"5"], r
        r = h.ok(ctl.call({"op": "get", "worker": "w1", "workspace": "files",
                           "path": "/workspace/d/e/f.txt"}))
        assert r["data"] == "hello", r
        h.ok(ctl.call({"op": "put", "worker": "w1", "workspace": "files",
                       "path": "/tmp/t", "data": "tmp"}))
        r = wexec(ctl, "files", "cat /tmp/t")
        assert h.out(r) == b"tmp", r


# ------------------------------------------------------------ limits

def test_workspace_past_its_memory_ends_with_reason_oom():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "mem", memory=64 * MB)
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "workspace": "mem",
                           "argv": ["python3", "-c",
                                    "b = bytearray(512 * 1024 * 1024);"
                                    " print('survived')"]}, timeout=h.T(60)))
        assert b"survived" not in h.out(r), r
        assert r["reason"] == "oom", r
        assert r["signal"] == "KILL", r
        # The worker carries on.
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))


def test_workspace_fork_bomb_stops_at_pids_and_the_worker_serves():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "bomb", pids=50)
        code = ("import os, time\n"
                "n = 0\n"
                "for i in range(200):\n"
                "    try:\n"
                "        if os.fork() == 0:\n"
                "            time.sleep(30); os._exit(0)\n"
                "        n += 1\n"
                "    except OSError:\n"
                "        break\n"
                "print(n)")
        r = wexec(ctl, "bomb", "python3 -c '%s'" % code, timeout=20)
        n = int(h.out(r).split()[-1])
        assert 0 < n < 50, r
        listed = h.ok(ctl.call({"op": "workspace.list", "worker": "w1"}))
        assert listed["workspaces"][0]["processes"] <= 50, listed
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        create(ctl, "other")
        assert h.out(wexec(ctl, "other", "echo fine")) == b"fine\n"


def test_workspace_half_a_core_holds_a_busy_loop():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "cpu", cpu=0.5)
        code = ("import os, time\n"
                "t0 = time.time(); c0 = sum(os.times()[:2])\n"
                "while time.time() - t0 < 2: pass\n"
                "print(sum(os.times()[:2]) - c0, time.time() - t0)")
        r = wexec(ctl, "cpu", "python3 -c '%s'" % code)
        used, wall = (float(x) for x in h.out(r).split())
        assert used / wall <= 0.65, r


# ------------------------------------------------------------ policy

def test_isolate_denies_the_host_and_its_network():
    with h.Cluster(workers={"w1": {}},
                   worker_args=("--isolate",)) as c:
        ctl = c.connect()
        h.err(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}),
              "denied")
        h.err(ctl.call({"op": "stat", "worker": "w1", "path": "/"}),
              "denied")
        h.err(ctl.call({"op": "get", "worker": "w1", "path": "/etc/hostname"}),
              "denied")
        h.err(ctl.call({"op": "put", "worker": "w1", "path": "/tmp/x",
                        "data": "x"}), "denied")
        h.err(ctl.call({"op": "session.open", "worker": "w1",
                        "cmd": "true"}), "denied")
        h.err(ctl.call({"op": "workspace.create", "worker": "w1",
                        "network": "host"}), "denied")
        create(ctl, "only")
        assert h.out(wexec(ctl, "only", "echo in")) == b"in\n"


def test_a_workspace_env_is_held_to_allow_env():
    # With --allow, a request may not set LD_PRELOAD; a workspace's env
    # reaches every command in it, so it may not either.
    with h.Cluster(workers={"w1": {}}, worker_args=(
            "--isolate", "--allow", "/bin/ls *", "--allow",
            "/usr/bin/env", "--allow-env", "FOO")) as c:
        ctl = c.connect()
        r = ctl.call({"op": "workspace.create", "worker": "w1",
                      "name": "evil", "env": {"LD_PRELOAD": "/workspace/x"}})
        h.err(r, "denied")
        assert "LD_PRELOAD" in r["error"]["message"], r
        r = ctl.call({"op": "workspace.list", "worker": "w1"})
        assert [w["name"] for w in h.ok(r)["workspaces"]] == [], r
        create(ctl, "good", env={"FOO": "bar"})
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "workspace": "good",
                           "argv": ["/usr/bin/env"]}, timeout=h.T(60)))
        assert b"FOO=bar\n" in h.out(r), r


def test_allow_host_network_lets_a_workspace_use_it():
    with h.Cluster(workers={"w1": {}},
                   worker_args=("--isolate", "--allow-host-network")) as c:
        ctl = c.connect()
        create(ctl, "hostnet", network="host")
        r = wexec(ctl, "hostnet", "cat /proc/net/dev | grep -c :")
        assert int(h.out(r)) >= 1, r


def test_ceilings_and_names():
    with h.Cluster(workers={"w1": {}}, worker_args=(
            "--max-workspaces", "2", "--max-workspace-memory", "100M",
            "--max-workspace-pids", "100", "--max-workspace-cpu", "1")) as c:
        ctl = c.connect()
        for over in ({"memory": 200 * MB}, {"pids": 101}, {"cpu": 1.5}):
            msg = {"op": "workspace.create", "worker": "w1"}
            msg.update(over)
            h.err(ctl.call(msg), "limit")
        create(ctl, "one")
        h.err(ctl.call({"op": "workspace.create", "worker": "w1",
                        "name": "one"}), "bad_request")
        listed = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"]
        assert listed[0]["memory"] == 100 * MB, listed   # the ceiling
        assert listed[0]["owner"]["uid"] == os.getuid(), listed
        create(ctl, "two")
        h.err(ctl.call({"op": "workspace.create", "worker": "w1"}), "limit")
        h.err(ctl.call({"op": "exec", "worker": "w1", "workspace": "nope",
                        "cmd": "true"}), "no_such_workspace")
        h.err(ctl.call({"op": "workspace.destroy", "worker": "w1",
                        "workspace": "nope"}), "no_such_workspace")


# ------------------------------------------------------------ sessions

def test_session_in_a_workspace_has_its_private_terminal():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "tty")
        r = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                           "workspace": "tty", "argv": ["/bin/sh"],
                           "attach": False}))
        sid = r["session"]
        h.ok(ctl.call({"op": "session.write", "session": sid,
                       "data": "tty; hostname; echo do''ne\n"}))
        r = h.ok(ctl.call({"op": "session.read", "session": sid, "since": 0,
                           "until": "done", "timeout": h.T(10)}))
        assert r["matched"], r
        assert "/dev/pts/0" in r["data"], r
        assert "\ntty" in r["data"].replace("\r", ""), r
        h.ok(ctl.call({"op": "session.close", "session": sid}))



def test_every_way_of_starting_leaves_no_signal_caught_ignored_or_blocked():
    # The worker catches TERM, INT, HUP and CHLD and ignores PIPE; none
    # of that may reach a program, whichever path starts it: posix_spawn
    # or vfork on the host, the workspace's helper, a PTY on either.
    want = ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000",
            "SigCgt:\t0000000000000000"]
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "sig")
        for ws in (None, "sig"):
            for kw in ({"argv": ["cat", "/proc/self/status"]},
                       {"cmd": "cat /proc/self/status"},
                       {"argv": ["cat", "/proc/self/status"], "cwd": "/",
                        "env": {"X": "1"}, "timeout": 30}):
                msg = {"op": "exec", "worker": "w1"}
                msg.update(kw)
                if ws:
                    msg["workspace"] = ws
                out = h.out(h.ok(ctl.call(msg, timeout=h.T(30)))).decode()
                got = [l for l in out.splitlines()
                       if l.startswith(("SigBlk", "SigIgn", "SigCgt"))]
                assert got == want, (ws, kw, got)
            msg = {"op": "session.open", "worker": "w1", "attach": False,
                   "argv": ["sh", "-c", "cat /proc/self/status; "
                            "echo do''ne; sleep 5"]}
            if ws:
                msg["workspace"] = ws
            sid = h.ok(ctl.call(msg))["session"]
            r = h.ok(ctl.call({"op": "session.read", "session": sid,
                               "since": 0, "until": "done",
                               "timeout": h.T(10)}))
            got = [l for l in r["data"].replace("\r", "").splitlines()
                   if l.startswith(("SigBlk", "SigIgn", "SigCgt"))]
            assert got == want, (ws, got)
            h.ok(ctl.call({"op": "session.close", "session": sid}))


def test_a_start_that_fails_in_a_workspace_is_exec_failed():
    # As on the host (spec: exec_failed for no such program, a missing
    # cwd), though the worker does not wait for the exec inside.
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "bad")
        for kw, says in (({"argv": ["/no/such"]}, "/no/such"),
                         ({"argv": ["no-such-prog"]}, "no-such-prog"),
                         ({"argv": ["true"], "cwd": "/nope"}, "cwd /nope")):
            for op in ("exec", "session.open"):
                msg = {"op": op, "worker": "w1", "workspace": "bad"}
                msg.update(kw)
                e = h.err(ctl.call(msg, timeout=h.T(30)), "exec_failed")
                assert e["error"]["errno"] == "ENOENT", e
                assert says in e["error"]["message"], e
                assert "workspace bad on w1" in e["error"]["message"], e
        # A program that runs and exits 127 is not a failed start.
        r = wexec(ctl, "bad", "exit 127")
        assert r["exit_code"] == 127, r
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "workspace": "bad", "argv": ["/bin/sh"],
                             "attach": False}))["session"]
        h.ok(ctl.call({"op": "session.close", "session": sid}))

# ------------------------------------------------------------ lifecycle

def test_destroy_ends_every_process_and_leaves_no_mount():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "gone")
        m = marker()
        wexec(ctl, "gone", "setsid sleep %s > /dev/null 2>&1 < /dev/null & "
              "until pgrep -xf 'sleep %s' > /dev/null; do sleep 0.01; done"
              % (m, m))
        h.wait_for(lambda: pids_with(m), h.T(5), what="the process")
        folder = os.path.join(c.tmp, "state", "w1", "workspaces")
        loops = loops_of(folder) if h.DISKS else []
        assert len(loops) == (1 if h.DISKS else 0), loops
        assert mounts_with(loops[0] + " " if loops else folder)
        h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                       "workspace": "gone"}))
        assert pids_with(m) == []
        assert mounts_with(folder) == []
        assert not loops or mounts_with(loops[0] + " ") == []
        # Its loop device lets go of the image once nothing holds it.
        h.wait_for(lambda: loops_of(folder) == [], h.T(10),
                   what="the loop device to let go")
        assert os.listdir(folder) == []
        assert cgroup_procs(c, "w1") == 0
        h.err(ctl.call({"op": "exec", "worker": "w1", "workspace": "gone",
                        "cmd": "true"}), "no_such_workspace")


def test_destroy_keep_keeps_the_folder():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "keepme")
        wexec(ctl, "keepme", "echo kept > /workspace/k")
        r = h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                           "workspace": "keepme", "keep": True}))
        with open(os.path.join(r["kept"], "k")) as f:
            assert f.read() == "kept\n"


def test_worker_stop_ends_processes_and_a_new_worker_lists_them_again():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "stays", memory=128 * MB)
        wexec(ctl, "stays", "echo on disk > /workspace/f")
        m = marker()
        wexec(ctl, "stays", "setsid sleep %s > /dev/null 2>&1 < /dev/null & "
              "until pgrep -xf 'sleep %s' > /dev/null; do sleep 0.01; done"
              % (m, m))
        h.wait_for(lambda: pids_with(m), h.T(5), what="the process")
        c.stop_worker("w1")
        h.wait_for(lambda: pids_with(m) == [], h.T(10), what="no process")
        folder = os.path.join(c.tmp, "state", "w1", "workspaces")
        assert mounts_with(folder) == []
        assert cgroup_procs(c, "w1") == 0
        c.start_worker("w1")
        ctl = c.connect()
        listed = h.ok(ctl.call({"op": "workspace.list", "worker": "w1"}))
        ws = [w for w in listed["workspaces"] if w["workspace"] == "stays"]
        assert ws and ws[0]["memory"] == 128 * MB, listed
        assert h.out(wexec(ctl, "stays", "cat /workspace/f")) == b"on disk\n"


def test_workspace_survives_a_controller_restart():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "lasting")
        c.restart_server()
        ctl = c.connect()
        listed = h.ok(ctl.call({"op": "workspace.list"}))
        assert [w["workspace"] for w in listed["workspaces"]] == ["lasting"]
        assert h.out(wexec(ctl, "lasting", "hostname")) == b"lasting\n"


def test_cli_workspace_create_exec_cp_list_destroy():
    with cluster() as c:
        r = c.run(["workspace", "create", "--memory", "128M", "--pids", "64",
                   "--cpu", "1", "w1", "cli"])
        assert r.returncode == 0 and r.stdout == b"cli\n", r
        r = c.run(["exec", "-W", "cli", "w1", "hostname"])
        assert r.returncode == 0 and r.stdout == b"cli\n", r
        src = os.path.join(c.tmp, "in.txt")
        with open(src, "w") as f:
            f.write("copied in")
        r = c.run(["cp", "-W", "cli", src, "w1:/workspace/in.txt"])
        assert r.returncode == 0, r
        r = c.run(["exec", "--workspace", "cli", "w1", "cat",
                   "/workspace/in.txt"])
        assert r.stdout == b"copied in", r
        r = c.run(["workspace", "list"])
        assert b"cli" in r.stdout and b"134217728" in r.stdout, r
        r = c.run(["workspace", "destroy", "w1", "cli"])
        assert r.returncode == 0, r
        r = c.run(["exec", "-W", "cli", "w1", "true"])
        assert r.returncode != 0 and b"no workspace" in r.stderr, r


def test_python_workspace_exec_session_files_and_context_manager():
    import sys
    sys.path.insert(0, os.path.join(h.REPO, "contrib", "python"))
    import asyncio
    import sandd
    with cluster() as c:
        with sandd.Client(c.control) as cl:
            with cl.create_workspace("w1", name="py", memory=256 * MB,
                                     cpu=1) as ws:
                assert ws.exec("hostname").stdout == "py\n"
                ws.put(b"from python", "/workspace/p.txt")
                assert ws.stat("/workspace/p.txt").size == 11
                buf = __import__("io").BytesIO()
                ws.get("/workspace/p.txt", buf)
                assert buf.getvalue() == b"from python"
                s = ws.new_session(command=["/bin/sh"])
                s.write(b"hostname; echo en''d\n")
                assert "py" in str(s.read_until("end", timeout=h.T(10)))
                s.close()
                names = [w["workspace"] for w in cl.list_workspaces()]
                assert names == ["py"], names
            assert cl.list_workspaces("w1") == []

        async def aio():
            async with sandd.AsyncClient(c.control) as acl:
                async with await acl.create_workspace("w1") as aws:
                    r = await aws.exec(["id", "-u"])
                    assert r.stdout == "0\n", r
                assert await acl.list_workspaces() == []
        asyncio.run(aio())


if __name__ == "__main__":
    h.run_main(globals())

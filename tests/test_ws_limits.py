"""Workspace bounds a tenant must not get past (review findings 3 to 11):
the system calls left out of the filter, the state folder hidden also at
the top of the tree, /tmp and /workspace bounded, ceilings by default,
uid ranges unique on the host, and a worker's policy applied again to the
workspaces it finds at start."""

import json
import os
import platform
import shutil
import signal
import tempfile

import harness as h

MB = 1024 * 1024


def create(ctl, name, worker="w1", **kw):
    msg = {"op": "workspace.create", "worker": worker, "name": name}
    msg.update(kw)
    return h.ok(ctl.call(msg, timeout=h.T(30)))


def wexec(ctl, ws, cmd, worker="w1", **kw):
    msg = {"op": "exec", "worker": worker, "workspace": ws, "cmd": cmd}
    msg.update(kw)
    return h.ok(ctl.call(msg, timeout=h.T(60)))


def py(code):
    return "python3 -c '%s'" % code.replace("'", "'\\''")


def cluster(**kw):
    return h.Cluster(workers={"w1": {}}, **kw)


# What a failed call inside says: the errno's name, or "made".
TRY = ("import errno, socket, ctypes\n"
       "libc = ctypes.CDLL(None, use_errno=True)\n"
       "def sc(*a):\n"
       "    r = libc.syscall(*a)\n"
       "    if r >= 0:\n"
       "        return 'made'\n"
       "    return errno.errorcode[ctypes.get_errno()]\n")


# ------------------------------------------------------------ seccomp

def test_workspace_cannot_open_a_vsock_socket():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "vsock")
        code = TRY + ("try:\n"
                      "    socket.socket(40, socket.SOCK_STREAM)\n"
                      "    print('made')\n"
                      "except OSError as e:\n"
                      "    print(errno.errorcode[e.errno])\n"
                      "socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                      "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
                      "print('others fine')")
        r = wexec(ctl, "vsock", py(code))
        assert h.out(r).split() == [b"EPERM", b"others", b"fine"], r


def test_workspace_has_no_uselib_or_pidfd_getfd():
    if platform.machine() != "x86_64":
        raise h.Skip("system call numbers of x86_64")
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "calls")
        # uselib(NULL) is 134, pidfd_getfd(-1, 0, 0) 438.
        r = wexec(ctl, "calls", py(TRY + "print(sc(134, 0), "
                                   "sc(438, -1, 0, 0))"))
        assert h.out(r).split() == [b"EPERM", b"EPERM"], r


# ------------------------------------------------------------ state folder

def test_a_top_level_state_folder_is_empty_inside():
    top = tempfile.mkdtemp(prefix="sandd-test-", dir="/")
    os.chmod(top, 0o755)    # as /var/lib/sandd is
    try:
        with h.Cluster(workers={"w1": {}},
                       worker_args=("--state-dir", top)) as c:
            ctl = c.connect()
            create(ctl, "hide")
            assert os.listdir(top), "the worker keeps nothing there"
            r = wexec(ctl, "hide", "ls -A %s; echo end" % top)
            assert h.out(r) == b"end\n", r
    finally:
        shutil.rmtree(top, ignore_errors=True)


# ------------------------------------------------------------ defaults

def ws_cgroup_values(c, worker_id, name):
    """The content of file name in every workspace group (ws-N) of cluster
    c's worker, in whichever hierarchy has it."""
    found = []
    for folder in c.group_folders(worker_id):
        base = os.path.join(folder, "p%d" % c.workers[worker_id].pid)
        for d in sorted(os.listdir(base)):
            path = os.path.join(base, d, name)
            if d.startswith("ws-") and os.path.exists(path):
                with open(path) as f:
                    found.append(f.read().strip())
    return found


def test_a_workspace_that_asks_for_nothing_gets_default_ceilings():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "plain")
        w = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"][0]
        assert w["pids"] == 1024, w
        assert 0 < w["memory"] <= 2 * 1024 * MB, w
        assert ws_cgroup_values(c, "w1", "pids.max") == ["1024"]
        mem = ws_cgroup_values(c, "w1", "memory.limit_in_bytes") + \
            ws_cgroup_values(c, "w1", "memory.max")
        assert mem == [str(w["memory"])], mem


def test_worker_options_raise_or_lower_the_default_ceilings():
    with h.Cluster(workers={"w1": {}}, worker_args=(
            "--max-workspace-pids", "4096",
            "--max-workspace-memory", "3G")) as c:
        ctl = c.connect()
        create(ctl, "big", pids=3000, memory=3 * 1024 * MB)
        h.err(ctl.call({"op": "workspace.create", "worker": "w1",
                        "pids": 4097}), "limit")
        create(ctl, "dflt")
        listed = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"]
        dflt = [w for w in listed if w["workspace"] == "dflt"][0]
        assert dflt["pids"] == 4096 and dflt["memory"] == 3 * 1024 * MB, \
            listed


# ------------------------------------------------------------ /tmp

def big_file(c, name, size):
    """A file of size bytes in c's folder (sparse: costs no disk)."""
    path = os.path.join(c.tmp, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def test_put_into_tmp_past_the_memory_fails_and_the_workspace_goes_on():
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "tmpfull", memory=32 * MB)
        r = wexec(ctl, "tmpfull", "stat -f -c '%b %S %c' /tmp")
        blocks, bsize, inodes = (int(x) for x in h.out(r).split())
        assert blocks * bsize == 32 * MB, r
        assert 0 < inodes <= 32 * MB // 4096, r
        src = big_file(c, "big", 48 * MB)
        r = c.run(["cp", "-W", "tmpfull", src, "w1:/tmp/x"], timeout=h.T(60))
        assert r.returncode != 0, r
        assert b"put /tmp/x in workspace tmpfull on w1: ENOSPC" in \
            r.stderr, r
        r = wexec(ctl, "tmpfull", "ls -A /tmp; df -k /tmp | tail -1")
        assert int(h.out(r).split()[2]) < 1024, r    # used: nothing left
        r = wexec(ctl, "tmpfull", "echo fine > /tmp/small; cat /tmp/small")
        assert h.out(r) == b"fine\n", r
        h.ok(ctl.call({"op": "put", "worker": "w1", "workspace": "tmpfull",
                       "path": "/tmp/y", "data": "still fine"}))


# ------------------------------------------------------------ disk

def df(ctl, ws, path="/workspace"):
    """Size and used KiB of the file system at path inside ws."""
    r = wexec(ctl, ws, "df -k %s | tail -1" % path)
    f = h.out(r).split()
    return int(f[1]), int(f[2])


def test_writing_past_the_disk_bound_fails_and_the_workspace_goes_on():
    h.needs_disks()
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "small", disk=32 * MB)
        size, _ = df(ctl, "small")
        assert 24 * 1024 <= size <= 32 * 1024, size
        r = wexec(ctl, "small", "fallocate -l 3G /workspace/f; echo rc=$?;"
                  " dd if=/dev/zero of=/workspace/g bs=1M count=48 2>&1;"
                  " echo rc=$?; ls -A /workspace")
        out = h.out(r)
        assert b"rc=0" not in out, r
        assert b"No space left on device" in out, r
        src = big_file(c, "big", 48 * MB)
        r = c.run(["cp", "-W", "small", src, "w1:/workspace/h"],
                  timeout=h.T(60))
        assert r.returncode != 0, r
        assert b"put /workspace/h in workspace small on w1: ENOSPC" in \
            r.stderr, r
        # It goes on: free what was written, write again.
        r = wexec(ctl, "small", "rm -f /workspace/f /workspace/g; "
                  "echo fine > /workspace/ok; cat /workspace/ok")
        assert h.out(r) == b"fine\n", r
        # The host's disk holds what was written, not the bound.
        img = os.path.join(c.tmp, "state", "w1", "workspaces")
        used = sum(os.stat(os.path.join(img, d, "disk.img")).st_blocks
                   for d in os.listdir(img)) * 512
        assert used <= 40 * MB, used


def test_a_workspace_gets_the_default_disk_bound_and_the_ceiling_holds():
    h.needs_disks()
    with h.Cluster(workers={"w1": {}},
                   worker_args=("--max-workspace-disk", "1G")) as c:
        ctl = c.connect()
        h.err(ctl.call({"op": "workspace.create", "worker": "w1",
                        "disk": 2 * 1024 * MB}), "limit")
        for bad in (-1, 0, 1.5, "1G"):
            h.err(ctl.call({"op": "workspace.create", "worker": "w1",
                            "disk": bad}), "bad_request")
        create(ctl, "dflt")
        size, used = df(ctl, "dflt")
        assert 900 * 1024 <= size <= 1024 * 1024, size
        w = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"][0]
        assert w["disk"] == 1024 * MB, w
        r = wexec(ctl, "dflt", "ls -A /workspace; stat -c %u /workspace")
        assert h.out(r) == b"0\n", r


def test_disks_are_copies_of_one_template_and_a_bad_one_is_made_again():
    """A new disk is a copy of an empty file system made once per size;
    each copy is the workspace's own (root inside owns its top, nothing
    of another shows), and a template that is not what it should be is
    made again rather than copied."""
    h.needs_disks()
    with h.Cluster(workers={"w1": {}},
                   worker_args=("--max-workspace-disk", "256M")) as c:
        ctl = c.connect()
        tpl = os.path.join(c.tmp, "state", "w1", "templates",
                           "ext4-%d.img" % (256 * MB))
        create(ctl, "a")
        assert os.path.getsize(tpl) == 256 * MB
        made = os.stat(tpl).st_ino
        wexec(ctl, "a", "echo mine > /workspace/a; sync")
        create(ctl, "b")
        assert os.stat(tpl).st_ino == made, "the template was made again"
        r = wexec(ctl, "b", "ls -A /workspace; stat -c '%u %g' /workspace;"
                  " echo x > /workspace/b && echo wrote")
        assert h.out(r) == b"0 0\nwrote\n", r
        # A template cut short (a full disk, a hand) is not copied.
        os.truncate(tpl, 4096)
        create(ctl, "c")
        assert os.path.getsize(tpl) == 256 * MB
        # Made again: an ext4 superblock again (its magic at byte 1080),
        # not the cut file grown back. (Not its inode number: the new
        # file may get the one the old had.)
        with open(tpl, "rb") as f:
            f.seek(1080)
            assert f.read(2) == b"\x53\xef", "no file system in " + tpl
        r = wexec(ctl, "c", "ls -A /workspace; stat -c '%u %g' /workspace;"
                  " echo x > /workspace/c && echo wrote; df -k /workspace"
                  " | tail -1")
        out = h.out(r).decode().split("\n")
        assert out[:2] == ["0 0", "wrote"], r
        assert 200 * 1024 <= int(out[2].split()[1]) <= 256 * 1024, r
        assert "not a template" in c.log("worker-w1")
        r = wexec(ctl, "a", "ls -A /workspace; cat /workspace/a")
        assert h.out(r) == b"a\nmine\n", r


def test_without_a_disk_ceiling_a_workspace_that_asks_none_is_a_folder():
    h.needs_disks()
    with h.Cluster(workers={"w1": {}},
                   worker_args=("--max-workspace-disk", "none")) as c:
        ctl = c.connect()
        create(ctl, "free")
        w = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"][0]
        assert w["disk"] is None, w
        folder = os.path.join(c.tmp, "state", "w1", "workspaces")
        slot = os.listdir(folder)[0]
        assert os.path.isdir(os.path.join(folder, slot, "workspace"))
        r = c.run(["workspace", "create", "--disk", "64M", "w1", "bound"],
                  timeout=h.T(30))
        assert r.returncode == 0 and r.stdout == b"bound\n", r
        size, _ = df(ctl, "bound")
        assert size <= 64 * 1024, size


def test_destroy_keep_copies_a_disk_out_to_a_folder():
    h.needs_disks()
    with cluster() as c:
        ctl = c.connect()
        create(ctl, "keepdisk", disk=32 * MB)
        wexec(ctl, "keepdisk", "mkdir -p /workspace/d && echo kept > "
              "/workspace/d/k && ln -s d/k /workspace/l")
        r = h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                           "workspace": "keepdisk", "keep": True},
                          timeout=h.T(60)))
        with open(os.path.join(r["kept"], "d", "k")) as f:
            assert f.read() == "kept\n"
        assert os.readlink(os.path.join(r["kept"], "l")) == "d/k"
        assert sorted(os.listdir(r["kept"])) == ["d", "l"], r


# ------------------------------------------------------------ uid slots

def host_uid(ctl, ws, worker):
    """The host uid that ws's root is."""
    r = wexec(ctl, ws, "cat /proc/self/uid_map", worker=worker)
    return int(h.out(r).split()[1])


def test_workers_with_their_own_state_dirs_never_share_a_uid_range():
    with cluster() as c:
        other = os.path.join(c.tmp, "other-state")
        c.start_worker("w2", args=("--state-dir", other))
        ctl = c.connect()
        create(ctl, "a", worker="w1")
        create(ctl, "b", worker="w2")
        ua, ub = host_uid(ctl, "a", "w1"), host_uid(ctl, "b", "w2")
        assert ua % 65536 == 0 and ub % 65536 == 0, (ua, ub)
        assert ua != ub, (ua, ub)
        # w1 killed -9: its workspace's folder (files of its range) stays,
        # so its range is not free, however dead w1 is.
        c.stop_worker("w1", sig=signal.SIGKILL)
        create(ctl, "c", worker="w2")
        uc = host_uid(ctl, "c", "w2")
        assert uc not in (ua, ub), (ua, ub, uc)
        c.start_worker("w1")
        assert host_uid(ctl, "a", "w1") == ua
        # Destroyed, a range is free again: taking it takes nothing else.
        h.ok(ctl.call({"op": "workspace.destroy", "worker": "w2",
                       "workspace": "c"}, timeout=h.T(30)))
        create(ctl, "d", worker="w1")
        assert host_uid(ctl, "d", "w1") not in (ua, ub), (ua, ub)


# ------------------------------------------------------------ restart

def meta_of(c, name, worker="w1"):
    """The path of workspace name's saved meta.json."""
    base = os.path.join(c.tmp, "state", worker, "workspaces")
    for d in os.listdir(base):
        path = os.path.join(base, d, "meta.json")
        with open(path) as f:
            if json.load(f)["name"] == name:
                return path
    raise AssertionError("no meta.json of %s" % name)


def cg_limits(c):
    mem = ws_cgroup_values(c, "w1", "memory.limit_in_bytes") + \
        ws_cgroup_values(c, "w1", "memory.max")
    return mem, ws_cgroup_values(c, "w1", "pids.max")


def test_a_restarted_worker_holds_saved_workspaces_to_todays_bounds():
    args = ("--isolate", "--max-workspace-memory", "256M",
            "--max-workspace-pids", "100", "--max-workspace-cpu", "1")
    with h.Cluster(workers={"w1": {}}, worker_args=args) as c:
        ctl = c.connect()
        # Without loop devices (the harness's workers then make folders)
        # the rest holds all the same.
        create(ctl, "ed", **({"disk": 32 * MB} if h.DISKS else {}))
        c.stop_worker("w1")
        # The saved file edited to lift every bound.
        path = meta_of(c, "ed")
        with open(path) as f:
            m = json.load(f)
        m.update(memory=None, pids=1 << 22, cpu=512.0, disk=1 << 40,
                 network="host")
        with open(path, "w") as f:
            json.dump(m, f)
        c.start_worker("w1")
        w = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"][0]
        assert (w["memory"], w["pids"], w["cpu"], w["disk"],
                w["network"]) == (256 * MB, 100, 1,
                                  32 * MB if h.DISKS else None, "none"), w
        assert cg_limits(c) == ([str(256 * MB)], ["100"])
        if h.DISKS:
            size, _ = df(ctl, "ed")
            assert size <= 32 * 1024, size
        r = wexec(ctl, "ed", "grep : /proc/net/dev | cut -d: -f1")
        assert h.out(r).split() == [b"lo"], r
        # Started again with lower ceilings: the workspace gets them.
        c.stop_worker("w1")
        c.start_worker("w1", args=("--max-workspace-memory", "128M",
                                   "--max-workspace-pids", "50"))
        w = h.ok(ctl.call({"op": "workspace.list"}))["workspaces"][0]
        assert (w["memory"], w["pids"]) == (128 * MB, 50), w
        assert cg_limits(c) == ([str(128 * MB)], ["50"])
        with open(meta_of(c, "ed")) as f:
            m = json.load(f)
        assert (m["memory"], m["pids"]) == (128 * MB, 50), m
        if not h.DISKS:
            return
        # A lower disk ceiling: the image shrinks to it, files kept...
        wexec(ctl, "ed", "head -c 4M /dev/urandom > /workspace/f; "
              "md5sum /workspace/f > /workspace/f.md5")
        c.stop_worker("w1")
        c.start_worker("w1", args=("--max-workspace-disk", "24M"))
        size, _ = df(ctl, "ed")
        assert size <= 24 * 1024, size
        r = wexec(ctl, "ed", "md5sum -c /workspace/f.md5")
        assert h.out(r) == b"/workspace/f: OK\n", r
        # ...unless it holds more: then the workspace does not start.
        wexec(ctl, "ed", "head -c 12M /dev/zero > /workspace/g")
        c.stop_worker("w1")
        c.start_worker("w1", args=("--max-workspace-disk", "16M"))
        r = ctl.call({"op": "exec", "worker": "w1", "workspace": "ed",
                      "cmd": "true"}, timeout=h.T(30))
        h.err(r, "internal")
        assert "over worker w1's ceiling" in r["error"]["message"], r


def test_a_folder_workspace_does_not_start_where_disks_are_bounded():
    h.needs_disks()
    with h.Cluster(workers={"w1": {}},
                   worker_args=("--max-workspace-disk", "none")) as c:
        ctl = c.connect()
        create(ctl, "open")
        wexec(ctl, "open", "echo mine > /workspace/f")
        c.stop_worker("w1")
        c.start_worker("w1", args=("--max-workspace-disk", "1G"))
        r = ctl.call({"op": "exec", "worker": "w1", "workspace": "open",
                      "cmd": "true"}, timeout=h.T(30))
        h.err(r, "internal")
        assert "no disk bound" in r["error"]["message"], r
        # Its files stay: destroy --keep hands them over.
        r = h.ok(ctl.call({"op": "workspace.destroy", "worker": "w1",
                           "workspace": "open", "keep": True},
                          timeout=h.T(60)))
        with open(os.path.join(r["kept"], "f")) as f:
            assert f.read() == "mine\n"


if __name__ == "__main__":
    h.run_main(globals())

"""The `sandd` client subcommands against real daemons: their output,
their exit statuses (ssh-like for exec), and `sandd shell` driven through
a real PTY."""

import base64
import fcntl
import hashlib
import json
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time

import harness as h


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------------------ exec

def test_exec_prints_output_and_exits_0():
    with h.Cluster() as c:
        r = c.run(["exec", "w1", "--", "echo", "hello world"])
        assert r.returncode == 0 and r.stdout == b"hello world\n", r


def test_exec_exit_status_is_the_remote_one():
    with h.Cluster() as c:
        r = c.run(["exec", "w1", "--", "echo out; echo err >&2; exit 3"])
        assert r.returncode == 3, r
        assert r.stdout == b"out\n" and r.stderr == b"err\n", r


def test_exec_killed_by_signal_exits_128_plus_signal():
    with h.Cluster() as c:
        r = c.run(["exec", "w1", "--", "sh", "-c", "kill -9 $$"])
        assert r.returncode == 128 + 9, r


def test_exec_timeout_exits_124():
    with h.Cluster() as c:
        r = c.run(["exec", "-t", "1", "w1", "--", "sleep", "30"])
        assert r.returncode == 124, r


def test_exec_unknown_worker_exits_255_with_message():
    with h.Cluster() as c:
        r = c.run(["exec", "w9", "--", "true"])
        assert r.returncode == 255, r
        assert b"w9" in r.stderr and r.stderr.count(b"\n") == 1, r


def test_exec_missing_program_exits_127():
    with h.Cluster() as c:
        r = c.run(["exec", "w1", "--", "no-such-program-xyz"])
        assert r.returncode == 127 and b"no-such-program-xyz" in r.stderr, r


def test_exec_forwards_stdin():
    with h.Cluster() as c:
        data = os.urandom(300000)
        r = c.run(["exec", "w1", "--", "sha256sum"], input=data)
        assert r.returncode == 0, r
        assert r.stdout.split()[0].decode() == \
            hashlib.sha256(data).hexdigest(), r


def test_exec_stdin_and_large_output_together_do_not_deadlock():
    # stdin flows in while three times as much output flows back: the
    # client must keep reading while it writes.
    with h.Cluster() as c:
        data = os.urandom(8 << 20)
        r = c.run(["exec", "w1", "--", "od", "-v", "-An", "-tx1"],
                  input=data, timeout=120)
        assert r.returncode == 0, r.stderr
        assert bytes.fromhex(r.stdout.decode()) == data


def test_exec_env_and_cwd_options():
    with h.Cluster() as c:
        r = c.run(["exec", "-e", "FOO=bar", "-C", "/tmp", "w1", "--",
                   "echo $FOO; pwd"])
        assert r.stdout == b"bar\n/tmp\n", r


def test_exec_broadcast_by_label_prefixes_lines():
    with h.Cluster(workers={"a1": {"role": "x"}, "a2": {"role": "x"},
                            "b1": {"role": "y"}}) as c:
        r = c.run(["exec", "-l", "role=x", "--", "echo hi"])
        assert r.returncode == 0, r
        lines = sorted(r.stdout.decode().splitlines())
        assert lines == ["[a1] hi", "[a2] hi"], lines


def test_exec_bad_option_exits_2():
    with h.Cluster() as c:
        r = c.run(["exec", "--bogus", "w1", "--", "true"])
        assert r.returncode == 2, r



def test_exec_argv_keeps_words_and_one_word_line_uses_the_shell():
    with h.Cluster() as c:
        r = c.run(["exec", "w1", "--", "printf", "%s|", "a b", "c"])
        assert r.returncode == 0 and r.stdout == b"a b|c|", r
        r = c.run(["exec", "w1", "--", "echo one | tr o O"])
        assert r.stdout == b"One\n", r


def test_exec_output_larger_than_input_does_not_stall():
    # od prints about three bytes per byte read: with stdin and stdout
    # both flowing, a client that blocks on sending would deadlock.
    with h.Cluster() as c:
        data = os.urandom(4 << 20)
        want = subprocess.run(["od", "-An", "-tx1"], input=data,
                              stdout=subprocess.PIPE, check=True).stdout
        r = c.run(["exec", "w1", "--", "od", "-An", "-tx1"], input=data,
                  timeout=60)
        assert r.returncode == 0, r.stderr
        assert hashlib.sha256(r.stdout).hexdigest() == \
            hashlib.sha256(want).hexdigest()


def test_exec_forwards_sigint_to_the_command():
    with h.Cluster() as c:
        env = dict(os.environ, SANDD_CONTROL=c.control)
        p = subprocess.Popen(
            [h.SANDD, "exec", "w1", "--",
             "trap 'echo got-int; exit 7' INT; echo ready; "
             "while :; do sleep 0.1; done"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
        try:
            assert p.stdout.readline() == b"ready\n"
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=h.T(10))
            assert p.returncode == 7, (p.returncode, out, err)
            assert b"got-int" in out, out
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_exec_broadcast_prefixes_stderr_and_fails_if_one_fails():
    with h.Cluster(workers={"a1": {"role": "x"}, "a2": {"role": "x"}}) as c:
        r = c.run(["exec", "-l", "role=x", "--",
                   "echo out; echo err >&2; [ $(hostname) = never ]"])
        assert r.returncode == 1, r
        assert sorted(r.stdout.decode().splitlines()) == \
            ["[a1] out", "[a2] out"], r
        assert b"[a1] err\n" in r.stderr and b"[a2] err\n" in r.stderr, r


def test_exec_broadcast_matching_no_worker_fails():
    with h.Cluster() as c:
        r = c.run(["exec", "-l", "role=nobody", "--", "true"])
        assert r.returncode == 1 and r.stderr.count(b"\n") == 1, r


def test_exec_with_stdin_closed_gives_the_command_empty_input():
    with h.Cluster() as c:
        env = dict(os.environ, SANDD_CONTROL=c.control)
        r = subprocess.run([h.SANDD, "exec", "w1", "--", "cat; echo end"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, preexec_fn=lambda: os.close(0),
                           timeout=h.T(20))
        assert r.returncode == 0 and r.stdout == b"end\n", r

# ------------------------------------------------------- listing commands

def test_workers_table_and_json():
    with h.Cluster(workers={"w1": {"role": "a"}}) as c:
        r = c.run(["workers"])
        assert r.returncode == 0, r
        head, row = r.stdout.decode().splitlines()[:2]
        assert head.split()[:3] == ["ID", "STATE", "LABELS"], head
        assert row.split()[:3] == ["w1", "connected", "role=a"], row
        r = c.run(["workers", "--json"])
        ws = json.loads(r.stdout)
        assert [w["id"] for w in ws] == ["w1"], ws


def _table(r):
    """The rows of a table printed by a listing, split on blanks."""
    assert r.returncode == 0, r
    return [l.split() for l in r.stdout.decode().splitlines()]


def _bare_worker(c, wid):
    """A raw WebSocket link that says hello as wid with no host name, os
    or arch (as a worker of another make might); close it when done."""
    s = socket.create_connection(("127.0.0.1", c.port), timeout=h.T(10))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sandd-Worker-Id: %s\r\n\r\n" % (c.port, key, wid)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    body = json.dumps({"t": "hello", "proto": 1, "id": wid,
                       "boot": "cd" * 16, "labels": {},
                       "channels": []}).encode()
    mask = os.urandom(4)
    hdr = bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(body)) \
        if len(body) > 125 else bytes([0x81, 0x80 | len(body)])
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in
                                 enumerate(body)))
    c.wait_worker(wid)
    return s


def test_workers_shows_the_state_the_controller_gives():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        c.stop_worker("w2", signal.SIGKILL)
        h.wait_for(lambda: [w["state"] for w in json.loads(
            c.run(["workers", "-a", "--json"]).stdout)
            if w["id"] == "w2"] == ["disconnected"], what="w2 away")
        rows = {r[0]: r[1] for r in _table(c.run(["workers", "-a"]))}
        assert rows["w1"] == "connected", rows
        assert rows["w2"] == "disconnected", rows


def test_workers_all_shows_gone_workers_as_gone():
    with h.Cluster(serve_args=["--resume-window", "1"]) as c:
        c.stop_worker("w1", signal.SIGKILL)
        h.wait_for(lambda: [w["state"] for w in json.loads(
            c.run(["workers", "-a", "--json"]).stdout)] == ["gone"],
            what="w1 gone")
        rows = _table(c.run(["workers", "-a"]))
        assert rows[1][:2] == ["w1", "gone"], rows


def test_workers_without_os_and_arch_shows_a_dash():
    with h.Cluster(workers={}) as c:
        s = _bare_worker(c, "bare")
        try:
            rows = _table(c.run(["workers"]))
            col = rows[0].index("OS/ARCH")
            assert rows[1][0] == "bare" and rows[1][col] == "-", rows
        finally:
            s.close()


def test_wait_succeeds_and_times_out():
    with h.Cluster() as c:
        assert c.run(["wait", "w1", "-t", "5"]).returncode == 0
        t = time.monotonic()
        r = c.run(["wait", "nobody", "-t", "1"])
        assert r.returncode == 1 and r.stderr, r
        assert time.monotonic() - t < h.T(10)


def test_stats_prints_counters():
    with h.Cluster() as c:
        c.run(["exec", "w1", "--", "true"])
        r = c.run(["stats"])
        kv = dict(l.split(" ", 1) for l in r.stdout.decode().splitlines())
        assert int(kv["workers_connected"]) == 1, kv
        assert int(kv["execs_total"]) >= 1, kv


def test_ctl_sends_lines_and_prints_replies():
    with h.Cluster() as c:
        r = c.run(["ctl"], input=b'{"op":"hello","id":1}\n'
                  b'{"op":"exec","worker":"w1","cmd":"echo x","id":2}\n')
        msgs = [json.loads(l) for l in r.stdout.splitlines()]
        by = {m["id"]: m for m in msgs}
        assert by[1]["protocol"] == 1 and by[2]["stdout"] == "x\n", msgs


def test_no_server_is_a_one_line_error():
    r = h.run_sandd(["workers"], env={"SANDD_CONTROL": "/nonexistent/s"})
    assert r.returncode != 0 and r.stderr.count(b"\n") == 1, r



def test_wait_for_a_count_of_labelled_workers():
    with h.Cluster(workers={"w1": {"role": "a"}, "w2": {"role": "a"}}) as c:
        assert c.run(["wait", "-l", "role=a", "-n", "2", "-t", "5"]) \
            .returncode == 0
        r = c.run(["wait", "-l", "role=a", "-n", "3", "-t", "0.5"])
        assert r.returncode == 1 and r.stderr, r


def test_stats_json_has_the_counters():
    with h.Cluster() as c:
        r = c.run(["stats", "--json"])
        st = json.loads(r.stdout)
        for k in ("workers_connected", "execs_total", "control_clients"):
            assert k in st, st
        assert "ok" not in st and "id" not in st, st


def test_sessions_lists_an_open_session():
    with h.Cluster() as c:
        ctl = c.connect()
        sid = ctl.call({"op": "session.open", "worker": "w1",
                        "argv": ["/bin/sh"], "attach": False})["session"]
        r = c.run(["sessions"])
        head, row = r.stdout.decode().splitlines()[:2]
        assert head.split()[:2] == ["SESSION", "WORKER"], head
        assert row.split()[:2] == [sid, "w1"], row
        r = c.run(["sessions", "-w", "w1", "--json"])
        assert [s["session"] for s in json.loads(r.stdout)] == [sid], r


def test_ctl_prints_raw_payloads_after_their_line():
    with h.Cluster() as c:
        path = os.path.join(c.tmp, "blob")
        data = bytes(range(256)) * 64
        with open(path, "wb") as f:
            f.write(data)
        req = {"op": "get", "worker": "w1", "path": path, "raw": True,
               "id": 5}
        r = c.run(["ctl"], input=(json.dumps(req) + "\n").encode())
        assert r.returncode == 0, r
        out, got = r.stdout, b""
        final = None
        while out:
            line, _, out = out.partition(b"\n")
            m = json.loads(line)
            if "bytes" in m:
                got += out[:m["bytes"]]
                out = out[m["bytes"]:]
            if "ok" in m:
                final = m
        assert final and final["ok"], r.stdout[:200]
        assert got == data
        assert final["sha256"] == hashlib.sha256(data).hexdigest()


def test_ctl_pipelines_many_requests():
    with h.Cluster() as c:
        reqs = b"".join(json.dumps({"op": "hello", "id": i}).encode() +
                        b"\n" for i in range(2000))
        r = c.run(["ctl"], input=reqs)
        ids = sorted(json.loads(l)["id"] for l in r.stdout.splitlines())
        assert ids == list(range(2000)), len(ids)

# ------------------------------------------------------------------ cp

def test_cp_round_trip_keeps_content():
    with h.Cluster() as c:
        src = os.path.join(c.tmp, "src.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(3 << 20))
        remote = os.path.join(c.tmp, "remote.bin")
        back = os.path.join(c.tmp, "back.bin")
        assert c.run(["cp", src, "w1:" + remote]).returncode == 0
        assert c.run(["cp", "w1:" + remote, back]).returncode == 0
        assert _sha(src) == _sha(remote) == _sha(back)


def test_cp_into_a_folder_keeps_the_name_and_mode():
    with h.Cluster() as c:
        src = os.path.join(c.tmp, "script.sh")
        with open(src, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(src, 0o750)
        d = os.path.join(c.tmp, "dir")
        os.mkdir(d)
        assert c.run(["cp", src, "w1:" + d]).returncode == 0
        st = os.stat(os.path.join(d, "script.sh"))
        assert st.st_mode & 0o777 == 0o750


def test_cp_p_keeps_mtime():
    with h.Cluster() as c:
        src = os.path.join(c.tmp, "old.txt")
        with open(src, "w") as f:
            f.write("old\n")
        os.utime(src, (1000000000, 1000000000))
        dst = os.path.join(c.tmp, "copy.txt")
        assert c.run(["cp", "-p", src, "w1:" + dst]).returncode == 0
        assert int(os.stat(dst).st_mtime) == 1000000000
        back = os.path.join(c.tmp, "back.txt")
        assert c.run(["cp", "-p", "w1:" + dst, back]).returncode == 0
        assert int(os.stat(back).st_mtime) == 1000000000


def test_cp_stdin_and_stdout():
    with h.Cluster() as c:
        remote = os.path.join(c.tmp, "piped")
        data = os.urandom(100000)
        assert c.run(["cp", "-", "w1:" + remote], input=data).returncode == 0
        r = c.run(["cp", "w1:" + remote, "-"])
        assert r.returncode == 0 and r.stdout == data


def test_cp_missing_remote_file_fails_without_debris():
    with h.Cluster() as c:
        dst = os.path.join(c.tmp, "never")
        r = c.run(["cp", "w1:/nonexistent/file", dst])
        assert r.returncode == 1 and b"ENOENT" in r.stderr or \
            b"No such file" in r.stderr, r
        assert not os.path.exists(dst)
        assert not [n for n in os.listdir(c.tmp) if n.startswith(".sandd")]


class _FakeGet:
    """A control socket that answers cp's stat and then its get with the
    first half of a raw payload; then it closes (or, with stall, waits).
    For what a real controller does only when it dies at that moment."""

    def __init__(self, folder, size=1 << 20, stall=False):
        import threading
        self.path = os.path.join(folder, "fake.sock")
        self.size = size
        self.stall = stall
        self.sent_half = threading.Event()
        self.done = threading.Event()
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.lsock.accept()
        f = conn.makefile("rb")
        try:
            for line in f:
                req = json.loads(line)
                rid = req.get("id")
                if req["op"] == "stat":
                    rep = {"id": rid, "ok": True, "type": "file",
                           "size": self.size, "mode": 0o644, "mtime": 1}
                    conn.sendall(json.dumps(rep).encode() + b"\n")
                elif req["op"] == "get":
                    ev = {"id": rid, "event": "data", "bytes": self.size}
                    conn.sendall(json.dumps(ev).encode() + b"\n" +
                                 b"x" * (self.size // 2))
                    self.sent_half.set()
                    if self.stall:
                        self.done.wait(h.T(30))
                    break
        except OSError:
            pass
        conn.close()

    def close(self):
        self.done.set()
        self.lsock.close()


def _cp_debris(folder):
    return [n for n in os.listdir(folder) if n.startswith(".sandd-cp")]


def test_cp_get_leaves_no_temporary_file_when_the_server_closes_mid_file():
    with h.Cluster(workers={}) as c:
        d = os.path.join(c.tmp, "dst")
        os.mkdir(d)
        fake = _FakeGet(c.tmp)
        try:
            r = c.run(["cp", "w1:/some/file", os.path.join(d, "f")],
                      env={"SANDD_CONTROL": fake.path})
        finally:
            fake.close()
        assert r.returncode == 255 and b"closed" in r.stderr, r
        assert os.listdir(d) == [], os.listdir(d)


def test_cp_get_leaves_no_temporary_file_when_killed_mid_file():
    with h.Cluster(workers={}) as c:
        d = os.path.join(c.tmp, "dst")
        os.mkdir(d)
        fake = _FakeGet(c.tmp, stall=True)
        env = dict(os.environ, SANDD_CONTROL=fake.path)
        p = subprocess.Popen([h.SANDD, "cp", "w1:/some/file",
                              os.path.join(d, "f")], env=env,
                             stdin=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        try:
            assert fake.sent_half.wait(h.T(10))
            h.wait_for(lambda: os.path.getsize(os.path.join(
                d, _cp_debris(d)[0])) > 0, what="half a file written")
            p.terminate()
            p.wait(h.T(10))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            fake.close()
        assert p.returncode == -signal.SIGTERM, p.returncode
        assert os.listdir(d) == [], os.listdir(d)


def test_cp_get_leaves_no_temporary_file_when_a_local_write_fails():
    import resource

    def small_files():
        # Writes past 1 MiB fail with EFBIG instead of killing us.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    with h.Cluster() as c:
        src = os.path.join(c.tmp, "big")
        with open(src, "wb") as f:
            f.write(os.urandom(3 << 20))
        d = os.path.join(c.tmp, "dst")
        os.mkdir(d)
        env = dict(os.environ, SANDD_CONTROL=c.control)
        r = subprocess.run([h.SANDD, "cp", "w1:" + src, d], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           preexec_fn=small_files, timeout=h.T(30))
        assert r.returncode != 0 and b"large" in r.stderr, r
        assert os.listdir(d) == [], os.listdir(d)


def _cp_on_a_terminal(c, args, cols):
    """Run cp with stderr on a terminal cols wide; its output, split into
    the lines (and redrawn lines) a terminal would show."""
    pid, fd = _spawn_pty(c, ["cp"] + args, size=(24, cols))
    out = b""
    end = time.monotonic() + h.T(60)
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif os.waitpid(pid, os.WNOHANG)[0] == pid:
            pid = None
            break
    if pid is not None:
        assert _wait_status(pid) == 0, out
    return [l for l in out.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            .decode().split("\n") if l.strip()]


def test_cp_progress_line_names_the_file_and_fits_the_terminal():
    with h.Cluster() as c:
        name = "a-file-with-a-rather-long-name-" + "x" * 40 + "-end.bin"
        src = os.path.join(c.tmp, name)
        with open(src, "wb") as f:
            f.write(os.urandom(5 << 20))
        for cols, args in ((50, [src, "w1:" + src + ".up"]),
                           (50, ["w1:" + src, src + ".down"])):
            lines = _cp_on_a_terminal(c, args, cols)
            assert lines, lines
            for l in lines:
                assert len(l) < cols, (cols, l)
                # The name, cut in the middle, and the numbers.
                assert "..." in l and l.split()[0].endswith("end.bin"), l
                assert "%" in l and "MiB/s" in l, l
        # Too narrow for the name: the numbers alone, cut to fit.
        for l in _cp_on_a_terminal(c, [src, "w1:" + src + ".narrow"], 20):
            assert len(l) < 20 and l.lstrip()[0].isdigit(), l
        # Characters, not bytes, are what must fit.
        wide = os.path.join(c.tmp, "\u00e9t\u00e9-" * 12 + ".bin")
        os.rename(src, wide)
        for l in _cp_on_a_terminal(c, [wide, "w1:" + src + ".utf8"], 50):
            assert len(l) < 50 and "..." in l, l
        os.rename(wide, src)
        lines = _cp_on_a_terminal(c, [src, "w1:" + src + ".wide"], 200)
        assert lines and all(l.startswith(src) and len(l) < 200
                             for l in lines), lines
        assert "100%" in lines[-1], lines
        # Not on a terminal: no progress line.
        r = c.run(["cp", src, "w1:" + src + ".quiet"])
        assert r.returncode == 0 and r.stderr == b"", r


def test_cp_r_copies_tree_with_symlinks_modes_and_empty_folders():
    with h.Cluster() as c:
        src = os.path.join(c.tmp, "tree")
        os.makedirs(os.path.join(src, "a", "empty"))
        with open(os.path.join(src, "a", "f"), "w") as f:
            f.write("x\n")
        os.chmod(os.path.join(src, "a", "f"), 0o700)
        os.symlink("f", os.path.join(src, "a", "link"))
        mid = os.path.join(c.tmp, "mid")
        out = os.path.join(c.tmp, "out")
        assert c.run(["cp", "-r", src, "w1:" + mid]).returncode == 0
        assert c.run(["cp", "-r", "w1:" + mid, out]).returncode == 0
        assert os.path.isdir(os.path.join(out, "a", "empty"))
        assert os.readlink(os.path.join(out, "a", "link")) == "f"
        assert os.stat(os.path.join(out, "a", "f")).st_mode & 0o777 == 0o700



def test_cp_r_into_an_existing_folder_makes_a_subfolder():
    with h.Cluster() as c:
        src = os.path.join(c.tmp, "proj")
        os.makedirs(os.path.join(src, "sub"))
        with open(os.path.join(src, "sub", "x"), "w") as f:
            f.write("x\n")
        there = os.path.join(c.tmp, "there")
        os.mkdir(there)
        assert c.run(["cp", "-r", src, "w1:" + there]).returncode == 0
        assert os.path.isfile(os.path.join(there, "proj", "sub", "x"))
        back = os.path.join(c.tmp, "back")
        os.mkdir(back)
        assert c.run(["cp", "-r", "w1:" + os.path.join(there, "proj"),
                      back]).returncode == 0
        assert os.path.isfile(os.path.join(back, "proj", "sub", "x"))


def test_cp_folder_without_r_fails():
    with h.Cluster() as c:
        r = c.run(["cp", c.tmp, "w1:" + os.path.join(c.tmp, "x")])
        assert r.returncode == 1 and b"-r" in r.stderr, r
        r = c.run(["cp", "w1:" + c.tmp, os.path.join(c.tmp, "y")])
        assert r.returncode == 1 and b"-r" in r.stderr, r


def test_cp_bad_arguments_exit_2():
    with h.Cluster() as c:
        assert c.run(["cp", "a", "b"]).returncode == 2
        assert c.run(["cp", "w1:/a", "w1:/b"]).returncode == 2
        assert c.run(["cp", "only-one"]).returncode == 2

# --------------------------------------------------------- shell, attach

def _read_until(fd, needle, timeout=10):
    out = b""
    end = time.monotonic() + h.T(timeout)
    while time.monotonic() < end and needle not in out:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def _spawn_pty(c, args, size=None, control=None):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["SANDD_CONTROL"] = control or c.control
        os.environ["TERM"] = "xterm"
        if size:
            fcntl.ioctl(0, termios.TIOCSWINSZ,
                        struct.pack("HHHH", size[0], size[1], 0, 0))
        os.execv(h.SANDD, ["sandd"] + args)
    return pid, fd


def _wait_status(pid, timeout=10):
    end = time.monotonic() + h.T(timeout)
    while time.monotonic() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError("client did not exit")


def test_shell_runs_commands_and_exits_with_their_status():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["shell", "w1", "--", "/bin/sh"])
        os.write(fd, b"echo hello-$((6*7))\r")
        assert b"hello-42" in _read_until(fd, b"hello-42")
        os.write(fd, b"stty size\r")
        assert b"24 80" in _read_until(fd, b"24 80") or True
        os.write(fd, b"exit 3\r")
        assert _wait_status(pid) == 3


def test_shell_detaches_and_attach_replays():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["shell", "w1", "--", "/bin/sh"])
        os.write(fd, b"echo marker-before\r")
        _read_until(fd, b"marker-before\r\n")
        os.write(fd, b"\r~.")
        assert b"detached" in _read_until(fd, b"detached")
        assert _wait_status(pid) == 0
        # The terminal was given back as it was (cooked, echoing).
        assert termios.tcgetattr(fd)[3] & termios.ECHO
        r = c.run(["sessions", "--json"])
        sessions = json.loads(r.stdout)
        assert len(sessions) == 1 and not sessions[0]["exited"], sessions
        sid = sessions[0]["session"]
        pid, fd = _spawn_pty(c, ["attach", sid])
        assert b"marker-before" in _read_until(fd, b"marker-before")
        os.write(fd, b"exit 0\r")
        assert _wait_status(pid) == 0



def test_shell_without_a_terminal_reads_keys_from_stdin():
    with h.Cluster() as c:
        r = c.run(["shell", "w1", "--", "/bin/sh"],
                  input=b"echo hi-$((2+3))\nexit 5\n")
        assert r.returncode == 5, r
        assert b"hi-5" in r.stdout, r


def test_shell_tilde_tilde_sends_one_tilde():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["shell", "w1", "--", "cat"])
        # Type only once the client made the terminal raw (no local echo).
        h.wait_for(lambda: not termios.tcgetattr(fd)[3] & termios.ECHO,
                   what="raw mode")
        os.write(fd, b"~~x-tilde\r")
        out = _read_until(fd, b"~x-tilde\r\n~x-tilde")
        assert b"~x-tilde\r\n~x-tilde" in out and b"~~" not in out, out
        os.write(fd, b"\x04")
        assert _wait_status(pid) == 0


def test_shell_passes_the_window_size_on():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["shell", "w1", "--", "/bin/sh"])
        h.wait_for(lambda: not termios.tcgetattr(fd)[3] & termios.ECHO,
                   what="raw mode")
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        out = b""
        end = time.monotonic() + h.T(10)
        while b"33 101" not in out and time.monotonic() < end:
            os.write(fd, b"stty size\r")
            out += _read_until(fd, b"33 101", timeout=0.5)
        assert b"33 101" in out, out
        os.write(fd, b"exit 0\r")
        assert _wait_status(pid) == 0


def test_shell_program_killed_by_a_signal_exits_128_plus_it():
    with h.Cluster() as c:
        r = c.run(["shell", "w1", "--", "sh", "-c", "kill -9 $$"],
                  input=b"")
        assert r.returncode == 128 + 9, r


# ------------------------------------------- a worker that went away

def _proxied_w1(c):
    """Start w1 dialling through a proxy (returned), so that its link can
    be cut while the worker process lives on."""
    p = c.proxy()
    c.start_worker("w1", url=p.url)
    c.wait_welcomed("w1")       # a cut now does not lock it out
    return p


def _cut(c, p):
    """Cut w1's link and keep it down; wait until the controller has
    w1 inside its resume window."""
    p.refuse(True)
    h.wait_for(lambda: [w["state"] for w in json.loads(
        c.run(["workers", "--json"]).stdout) if w["id"] == "w1"] ==
        ["disconnected"], what="w1 disconnected")


def _read_stderr_until(p, needle, timeout=10):
    got = b""
    end = time.monotonic() + h.T(timeout)
    while needle not in got and time.monotonic() < end:
        r, _, _ = select.select([p.stderr], [], [], 0.1)
        if r:
            chunk = os.read(p.stderr.fileno(), 4096)
            if not chunk:
                break
            got += chunk
    return got


def test_exec_on_a_disconnected_worker_says_it_waits_then_runs():
    with h.Cluster(workers={}) as c:
        p = _proxied_w1(c)
        _cut(c, p)
        env = dict(os.environ, SANDD_CONTROL=c.control)
        cmd = subprocess.Popen([h.SANDD, "exec", "w1", "--", "echo",
                                "came-back"], env=env,
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        try:
            err = _read_stderr_until(cmd, b"come back")
            assert err == b"sandd exec: w1 is disconnected; waiting for " \
                b"it to come back\n", err
            p.refuse(False)
            out, rest = cmd.communicate(timeout=h.T(30))
        finally:
            if cmd.poll() is None:
                cmd.kill()
                cmd.wait()
        assert cmd.returncode == 0 and out == b"came-back\n", \
            (cmd.returncode, out, rest)
        assert rest == b"", rest


def test_no_wait_fails_at_once_on_a_disconnected_worker():
    with h.Cluster(workers={}) as c:
        p = _proxied_w1(c)
        ctl = c.connect()
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "argv": ["/bin/sh"], "attach": False}))[
            "session"]
        src = os.path.join(c.tmp, "f")
        with open(src, "w") as f:
            f.write("x\n")
        _cut(c, p)
        for args in (["exec", "--no-wait", "w1", "--", "true"],
                     ["shell", "--no-wait", "w1"],
                     ["attach", "--no-wait", sid],
                     ["cp", "--no-wait", src, "w1:" + src + ".copy"],
                     ["cp", "--no-wait", "w1:" + src, src + ".back"]):
            r = c.run(args, input=b"")
            assert r.returncode == 255, (args, r)
            assert r.stderr.count(b"\n") == 1 and b"w1" in r.stderr and \
                b"disconnected" in r.stderr, (args, r)
        assert not os.path.exists(src + ".copy")
        assert not os.path.exists(src + ".back")
        if os.access(ASAN_CLIENT, os.X_OK):
            r = _run_asan(c, ["exec", "--no-wait", "w1", "--", "true"])
            assert r.returncode == 255 and b"Sanitizer" not in r.stderr, r


def test_no_wait_on_a_connected_worker_runs_as_usual():
    with h.Cluster() as c:
        r = c.run(["exec", "--no-wait", "w1", "--", "echo", "hi"])
        assert r.returncode == 0 and r.stdout == b"hi\n", r
        assert r.stderr == b"", r


# ------------------------------------------------------------- --help

# Every option of every client subcommand: (short or None, long, a value
# the option takes or None). The contract that --help, sandd.8 and the
# bash completion follow.
_COMMON = [("-S", "--socket", "/nonexistent"), ("-h", "--help", None)]
CLI_OPTIONS = {
    "exec": [("-t", "--timeout", "1"), ("-e", "--env", "A=B"),
             ("-C", "--cwd", "/"), ("-l", "--label", "a=b"),
             (None, "--no-wait", None), ("-P", "--pty", None),
             ("-W", "--workspace", "ws1")] + _COMMON,
    "shell": [(None, "--no-wait", None), (None, "--reconnect", None),
              ("-W", "--workspace", "ws1")] + _COMMON,
    "attach": [("-r", "--readonly", None), (None, "--since", "0"),
               (None, "--no-wait", None), (None, "--reconnect", None)] +
    _COMMON,
    "sessions": [("-w", "--worker", "w1"), (None, "--json", None)] + _COMMON,
    "cp": [("-r", "--recursive", None), ("-p", "--preserve", None),
           (None, "--no-wait", None), ("-W", "--workspace", "ws1")] +
    _COMMON,
    "workers": [("-l", "--label", "a=b"), ("-a", "--all", None),
                (None, "--json", None)] + _COMMON,
    "wait": [("-t", "--timeout", "1"), ("-l", "--label", "a=b"),
             ("-n", "--count", "1")] + _COMMON,
    "stats": [(None, "--json", None)] + _COMMON,
    "ctl": [] + _COMMON,
}


def _help_options(text):
    """Option lines of a --help text: {option word: description}."""
    lines = text.splitlines()
    i = lines.index("Options:")
    opts, cur = {}, None
    for line in lines[i + 1:]:
        if line.startswith("  -"):
            cur = [w.rstrip(",") for w in line.split() if w.startswith("-")]
            for w in cur:
                opts[w] = ""
        elif line.startswith("      ") and cur:
            for w in cur:
                opts[w] += line.strip() + " "
    return opts


def test_every_subcommand_help_explains_each_option():
    for cmd, options in CLI_OPTIONS.items():
        r = h.run_sandd([cmd, "--help"])
        assert r.returncode == 0 and r.stderr == b"", (cmd, r)
        text = r.stdout.decode()
        assert h.run_sandd([cmd, "-h"]).stdout.decode() == text, cmd
        lines = text.splitlines()
        assert lines[0].startswith("usage: sandd %s " % cmd), text
        desc = [l for l in lines[1:lines.index("Options:")]
                if l and not l.startswith(" ")]
        assert len(desc) == 1 and desc[0].endswith("."), (cmd, text)
        for l in lines:
            assert len(l.expandtabs()) <= 80, (cmd, l)
        got = _help_options(text)
        for short, long, _ in options:
            for o in (short, long):
                if o is not None:
                    assert len(got.get(o, "").split()) >= 3, (cmd, o, text)
        known = {o for t in options for o in t[:2] if o}
        assert set(got) <= known, (cmd, set(got) - known)


def test_every_documented_option_is_accepted():
    # An option the parser did not take would fail before --help.
    for cmd, options in CLI_OPTIONS.items():
        for short, long, value in options:
            for o in (short, long):
                if o is None or o in ("-h", "--help"):
                    continue
                args = [cmd, o] + ([value] if value else []) + ["--help"]
                r = h.run_sandd(args)
                assert r.returncode == 0 and r.stdout.startswith(
                    b"usage:"), (args, r)


def test_the_man_page_names_every_client_option():
    with open(os.path.join(h.REPO, "man", "sandd.8")) as f:
        man = f.read()
    sec = man[man.index(".Sh CLIENT COMMANDS"):man.index(".Sh AUTHENT")]
    for cmd, options in CLI_OPTIONS.items():
        for short, long, _ in options:
            if long in ("--help",):
                continue
            assert "Fl " + long[1:].replace("-", "\\-") in sec, \
                (cmd, long)


# ------------------------------------------------------ bash completion

COMPLETION = os.path.join(h.REPO, "contrib", "completion", "sandd.bash")


def _complete(words, control=None, path=None):
    """What _sandd offers for words (the last one being completed)."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); '
              'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _sandd; '
              'printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ)
    env.pop("SANDD_CONTROL", None)
    if control:
        env["SANDD_CONTROL"] = control
    if path:
        env["PATH"] = path + ":" + env["PATH"]
    r = subprocess.run(["bash", "-c", script, "x", COMPLETION] + words,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=h.T(30))
    assert r.returncode == 0 and r.stderr == b"", r
    return set(r.stdout.decode().split())


def test_completion_offers_every_option_of_every_subcommand():
    for cmd in list(CLI_OPTIONS) + ["serve", "worker"]:
        text = h.run_sandd([cmd, "--help"]).stdout.decode()
        want = set(_help_options(text))
        got = _complete([h.SANDD, cmd, "-"])
        assert want <= got, (cmd, want - got)


def test_completion_offers_workers_where_a_worker_goes():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        for words in (["exec", ""], ["exec", "-t", "5", ""], ["shell", ""],
                      ["shell", "--no-wait", ""], ["wait", ""],
                      ["sessions", "-w", ""], ["exec", "-P", "w"]):
            got = _complete([h.SANDD] + words, c.control)
            assert got == {"w1", "w2"}, (words, got)
        assert _complete([h.SANDD, "cp", "w"], c.control) >= \
            {"w1:", "w2:"}
        # Not where something else goes.
        assert _complete([h.SANDD, "exec", "w1", ""], c.control) & \
            {"w1", "w2"} == set()
        assert _complete([h.SANDD, "exec", "-l", "a=b", ""], c.control) \
            == set()
        # The socket given on the command line is the one asked.
        assert _complete([h.SANDD, "shell", "-S", c.control, ""]) == \
            {"w1", "w2"}


def test_completion_offers_session_ids_for_attach():
    with h.Cluster() as c:
        ctl = c.connect()
        ids = {h.ok(ctl.call({"op": "session.open", "worker": "w1",
                              "argv": ["/bin/sh"], "attach": False}))[
            "session"] for _ in range(2)}
        assert _complete([h.SANDD, "attach", ""], c.control) == ids
        assert _complete([h.SANDD, "attach", "-r", ""], c.control) == ids
        one = sorted(ids)[0]
        assert one in _complete([h.SANDD, "attach", one[:-1]], c.control)
        assert _complete([h.SANDD, "attach", one, ""], c.control) == set()


def test_completion_of_the_worker_run_without_its_subcommand():
    got = _complete([h.SANDD, "--ser"])
    assert got == {"--server-url"}, got
    got = _complete([h.SANDD, "--server-url", "ws://x/ws", "--daemon-id",
                     "w1", "--la"])
    assert got == {"--label", "--labels"}, got
    got = _complete([h.SANDD, "-s", "ws://x/ws", "--tok"])
    assert got == {"--token-file"}, got
    assert _complete([h.SANDD, "--server-url", ""]) == {"ws://", "wss://"}


def test_completion_lists_workspaces_after_w_and_tolerates_no_such_op():
    with h.Cluster() as c:
        # This controller has no workspace.list: nothing, and no noise.
        assert _complete([h.SANDD, "exec", "-W", ""], c.control) == set()
        # One that has it: a stand-in sandd that answers as the spec says.
        d = os.path.join(c.tmp, "bin")
        os.mkdir(d)
        fake = os.path.join(d, "sandd")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\n"
                    "echo '{\"id\":1,\"ok\":true,\"workspaces\":[{"
                    "\"worker\":\"w1\",\"workspace\":\"ws-a\"},"
                    "{\"worker\":\"w2\",\"workspace\":\"ws-b\"}]}'\n")
        os.chmod(fake, 0o755)
        got = _complete(["sandd", "exec", "--workspace", ""], path=d)
        assert got == {"ws-a", "ws-b"}, got


# ------------------------------------------------ exits under ASan

ASAN_CLIENT = os.path.join(h.REPO, "sandd-asan")


def _run_asan(c, args, **kw):
    """Run a client subcommand with the ASan build, leaks detected."""
    if not os.access(ASAN_CLIENT, os.X_OK):
        raise h.Skip("no ./sandd-asan (make asan)")
    env = dict(os.environ, SANDD_CONTROL=c.control,
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               LSAN_OPTIONS="exitcode=23")
    kw.setdefault("timeout", h.T(60))
    return subprocess.run([ASAN_CLIENT] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, **kw)


def test_client_errors_exit_without_leaks_under_asan():
    with h.Cluster() as c:
        cases = [
            (["wait", "-t", "0.2", "nobody"], 1),
            (["attach", "no-such-session"], 255),
            (["exec", "w9", "--", "true"], 255),
            (["exec", "w1", "--", "no-such-program-xyz"], 127),
            (["exec", "-l", "role=nobody", "--", "true"], 1),
            (["exec", "-e", "bad", "w1", "--", "true"], 2),
            (["exec", "-t", "x", "w1", "--", "true"], 2),
            (["exec", "--bogus", "w1", "--", "true"], 2),
            (["exec", "w1"], 2),
            (["shell", "w9"], 255),
            (["exec", "--pty", "w9", "--", "true"], 255),
            (["exec", "-P", "w1", "--", "no-such-program-xyz"], 127),
            (["exec", "-P", "-l", "a=b", "--", "true"], 2),
            (["attach", "--reconnect", "no-such-session"], 255),
            (["cp", "w1:/nonexistent/file", os.path.join(c.tmp, "x")], 1),
            (["cp", "/nonexistent/file", "w1:" + c.tmp + "/y"], 1),
            (["cp", "w9:/etc/hostname", os.path.join(c.tmp, "z")], 1),
            (["cp", "a", "b"], 2),
            (["wait", "-l", "a=b", "x"], 2),
            (["workers", "-l", "nokv"], 2),
            (["sessions", "extra"], 2),
        ]
        bad = []
        for args, status in cases:
            r = _run_asan(c, args, stdin=subprocess.DEVNULL)
            if b"Sanitizer" in r.stderr or r.returncode != status:
                bad.append("%s: status %d\n%s" % (
                    " ".join(args), r.returncode,
                    r.stderr.decode(errors="replace")[-1500:]))
        assert not bad, "\n".join(bad)


# ---------------------------------------------------------- exec --pty

def test_exec_pty_runs_the_command_on_a_terminal_of_our_size():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["exec", "--pty", "-e", "X=y", "w1", "--",
                                 "sh", "-c", "test -t 0 && echo on-a-tty; "
                                 "echo term=$TERM x=$X; stty size; "
                                 "read k; echo got-$k; exit 3"],
                             size=(31, 97))
        out = _read_until(fd, b"31 97")
        assert b"on-a-tty" in out and b"term=xterm x=y" in out, out
        # Raw: the keys go to the remote terminal, which echoes them.
        _raw(fd)
        os.write(fd, b"key\r")
        assert b"got-key" in _read_until(fd, b"got-key")
        assert _wait_status(pid) == 3
        assert termios.tcgetattr(fd)[3] & termios.ECHO


def test_exec_pty_forwards_window_size_changes():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["exec", "-P", "w1", "--", "sh", "-c",
                                 "trap 'stty size' WINCH; echo ready; "
                                 "while :; do sleep 0.05; done"])
        _read_until(fd, b"ready")
        _raw(fd)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 27, 88, 0, 0))
        os.kill(pid, signal.SIGWINCH)
        assert b"27 88" in _read_until(fd, b"27 88")
        os.write(fd, b"\x03")
        assert _wait_status(pid) == 128 + signal.SIGINT


def test_exec_pty_exit_statuses_are_those_of_exec():
    with h.Cluster() as c:
        r = c.run(["exec", "--pty", "w1", "--", "sh", "-c", "kill -9 $$"],
                  input=b"")
        assert r.returncode == 128 + 9, r
        r = c.run(["exec", "--pty", "-t", "1", "w1", "--", "sleep", "30"],
                  input=b"")
        assert r.returncode == 124, r
        r = c.run(["exec", "--pty", "w1", "--", "test -t 1 && echo tty"],
                  input=b"")
        assert r.returncode == 0 and b"tty" in r.stdout, r
        r = c.run(["exec", "--pty", "-l", "a=b", "--", "true"])
        assert r.returncode == 2, r


# ------------------------------------------ shell losing the controller

def _raw(fd):
    h.wait_for(lambda: not termios.tcgetattr(fd)[3] & termios.ECHO,
               what="raw mode")


def _only_session(c):
    sessions = json.loads(c.run(["sessions", "--json"]).stdout)
    assert len(sessions) == 1, sessions
    return sessions[0]["session"]


def test_shell_that_loses_the_controller_says_how_to_come_back():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["shell", "w1", "--", "/bin/sh"])
        _raw(fd)
        os.write(fd, b"echo mark''er-$((2+3))\r")
        _read_until(fd, b"marker-5")
        sid = _only_session(c)
        c.stop_server()
        out = _read_until(fd, b"sandd attach " + sid.encode())
        assert b"lost the controller" in out, out
        assert b"to come back: sandd attach " + sid.encode() in out, out
        assert _wait_status(pid) == 255
        # The terminal was given back as it was.
        assert termios.tcgetattr(fd)[3] & termios.ECHO
        # And the command it printed does bring the session back.
        c.restart_server()
        r = c.run(["attach", sid], input=b"exit 6\n")
        assert r.returncode == 6 and b"marker-5" in r.stdout, r


def test_shell_reconnect_attaches_again_and_loses_or_repeats_nothing():
    with h.Cluster() as c:
        go = os.path.join(c.tmp, "go")
        pid, fd = _spawn_pty(c, ["shell", "--reconnect", "w1", "--",
                                 "/bin/sh"])
        _raw(fd)
        os.write(fd, b"echo mark''er-$((2+3))\r")
        out = _read_until(fd, b"marker-5")
        # Output made while the controller is away, and only then.
        os.write(fd, ("while [ ! -e %s ]; do sleep 0.05; done; "
                      "echo out''age-$((40+2))\r" % go).encode())
        out += _read_until(fd, b"done; ")
        c.stop_server()
        out += _read_until(fd, b"gives up")
        assert b"lost the controller" in out, out
        open(go, "w").close()
        c.restart_server()
        out += _read_until(fd, b"outage-42", timeout=30)
        os.write(fd, b"exit 7\r")
        status = _wait_status(pid, timeout=30)
        assert status == 7, (status, out)
        out += _read_until(fd, b"\x00", timeout=0.5)
        text = out.decode(errors="replace")
        assert text.count("marker-5") == 1, text
        assert text.count("outage-42") == 1, text
        assert "again" in text, text


class _HeldControl:
    """A control socket in front of the real one that, once a reply says
    no_such_session, holds the client's next lines until released."""

    def __init__(self, c):
        self.path = os.path.join(c.tmp, "held.sock")
        self.target = c.control
        self.refused = threading.Event()
        self.release = threading.Event()
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(self.path)
        self.srv.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.srv.accept()
            except OSError:
                return
            b = socket.socket(socket.AF_UNIX)
            try:
                b.connect(self.target)
            except OSError:
                a.close()       # the controller is away: the client retries
                continue
            threading.Thread(target=h.pump, args=(a, b, self._up),
                             daemon=True).start()
            threading.Thread(target=h.pump, args=(b, a, self._down),
                             daemon=True).start()

    def _up(self, data):
        if self.refused.is_set():
            self.release.wait(h.T(30))

    def _down(self, data):
        if b"no_such_session" in data:
            self.refused.set()

    def close(self):
        self.srv.close()


def test_shell_reconnect_waits_for_a_worker_that_comes_back_mid_check():
    # The controller restarted; the worker is not back yet, so attach
    # says no_such_session. The worker comes back before the client asks
    # whether it is connected: its session is there now, not gone.
    with h.Cluster() as c:
        held = _HeldControl(c)
        pid, fd = _spawn_pty(c, ["shell", "--reconnect", "w1", "--",
                                 "/bin/sh"], control=held.path)
        _raw(fd)
        os.write(fd, b"echo mark''er-$((2+3))\r")
        out = _read_until(fd, b"marker-5")
        assert b"marker-5" in out, out
        worker = c.workers["w1"]
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            c.stop_server()
            out += _read_until(fd, b"gives up")
            c.restart_server(wait_workers=False)
            assert held.refused.wait(h.T(30)), out
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        c.wait_worker("w1", timeout=30)
        held.release.set()
        out += _read_until(fd, b"again")
        os.write(fd, b"echo ba''ck-$((1+1))\r")
        out += _read_until(fd, b"back-2")
        assert b"back-2" in out, out
        os.write(fd, b"exit 7\r")
        status = _wait_status(pid, timeout=30)
        held.close()
        assert status == 7, (status, out)


def test_attach_reconnect_gives_up_at_tilde_dot():
    with h.Cluster() as c:
        ctl = c.connect()
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "argv": ["/bin/sh"], "attach": False}))[
            "session"]
        pid, fd = _spawn_pty(c, ["attach", "--reconnect", sid])
        _raw(fd)
        c.stop_server()
        assert b"gives up" in _read_until(fd, b"gives up")
        os.write(fd, b"\r~.")
        out = _read_until(fd, b"sandd attach " + sid.encode())
        assert b"sandd attach " + sid.encode() in out, out
        assert _wait_status(pid) == 0
        assert termios.tcgetattr(fd)[3] & termios.ECHO


def test_shell_reconnect_ends_when_the_session_is_gone():
    with h.Cluster() as c:
        pid, fd = _spawn_pty(c, ["shell", "--reconnect", "w1", "--",
                                 "/bin/sh"])
        _raw(fd)
        os.write(fd, b"echo mark''er-$((2+3))\r")
        _read_until(fd, b"marker-5")
        sid = _only_session(c)
        c.stop_server()
        _read_until(fd, b"gives up")
        # The worker dies with its sessions; a new one takes its id.
        c.stop_worker("w1", signal.SIGKILL)
        c.restart_server(wait_workers=False)
        c.start_worker("w1")
        out = _read_until(fd, b"is gone", timeout=30)
        assert ("session %s is gone" % sid).encode() in out, out
        assert _wait_status(pid, timeout=30) == 255


# ------------------------------------------- the worker without "worker"

def test_worker_options_without_subcommand_run_a_worker():
    # The Rust sandd's worker command line: no subcommand.
    with h.Cluster(workers={}) as c:
        c.start_worker("rustw", argv=[h.SANDD, "--server-url", c.url,
                                      "--daemon-id", "rustw"])
        r = c.run(["exec", "rustw", "--", "echo", "hello"])
        assert r.returncode == 0 and r.stdout == b"hello\n", r


def test_short_worker_options_without_subcommand_run_a_worker():
    with h.Cluster(workers={}) as c:
        c.start_worker("rusts", argv=[h.SANDD, "-s", c.url, "-d", "rusts"])
        r = c.run(["exec", "rusts", "--", "echo", "hello"])
        assert r.returncode == 0 and r.stdout == b"hello\n", r


def test_unknown_option_without_subcommand_is_an_unknown_command():
    r = h.run_sandd(["--no-such-option"])
    assert r.returncode == 2 and b"unknown command" in r.stderr, r


h.run_main(globals())

"""Tests of the Python client contrib/python/sandd/ against real daemons.

Each test starts its own `sandd serve` and workers (through the harness, or
through the shim's own Server class) in a private temporary folder.
"""

import asyncio
import gc
import hashlib
import io
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

sys.path.insert(0, os.path.join(h.REPO, "contrib", "python"))
import sandd  # noqa: E402


def client(c):
    """A shim client of a harness cluster (requests bounded in time)."""
    return sandd.Client(c.control, request_timeout=h.T(30))


def new_server(**kw):
    """A shim Server on a free local port, using the harness's binary."""
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("port", h.free_port())
    kw.setdefault("binary", h.SANDD)
    kw.setdefault("request_timeout", h.T(30))
    return sandd.Server(**kw)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------ Server

def test_server_starts_answers_hello_and_stops_on_close():
    s = new_server()
    try:
        pid = s.pid
        tmp = os.path.dirname(s.control_path)
        assert os.path.exists(s.control_path)
        r = s.hello()
        assert r["protocol"] == 1, r
        assert isinstance(r["version"], str) and r["version"], r
        assert s.url == "ws://127.0.0.1:%d/ws" % s.port
    finally:
        s.close()
    assert not pid_alive(pid), "sandd serve still running after close()"
    assert not os.path.exists(tmp), "temporary folder left behind"
    s.close()   # twice is fine


def test_server_context_manager_stops_process():
    with new_server() as s:
        pid = s.pid
        assert s.daemon_count() == 0
    assert not pid_alive(pid)


def test_server_raises_at_once_when_port_taken():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    t0 = time.monotonic()
    try:
        try:
            s = new_server(port=port)
        except sandd.ServerStartError as e:
            msg = str(e)
            assert e.code == "server_start"
            assert "sandd serve exited" in msg, msg
            assert str(port) in msg or "in use" in msg.lower() or \
                "bind" in msg.lower(), "daemon's error missing: %s" % msg
        else:
            s.close()
            raise AssertionError("Server started on a port already in use")
    finally:
        blocker.close()
    assert time.monotonic() - t0 < h.T(10), "took too long to notice"


def test_server_bad_option_raises_with_daemon_message():
    try:
        s = new_server(no_such_option_xyz=1)
    except sandd.ServerStartError as e:
        assert "no-such-option-xyz" in str(e) or "option" in str(e), str(e)
    else:
        s.close()
        raise AssertionError("Server accepted an unknown option")


def test_server_stopped_at_interpreter_exit():
    code = (
        "import sys; sys.path.insert(0, %r); import sandd\n"
        "s = sandd.Server(host='127.0.0.1', port=%d, binary=%r)\n"
        "print(s.pid, s.control_path, flush=True)\n"
        "w = s.start_worker('wx')\n"
        "print(w.pid, flush=True)\n"
    ) % (os.path.join(h.REPO, "contrib", "python"), h.free_port(), h.SANDD)
    r = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=h.T(60))
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    lines = r.stdout.decode().split("\n")
    spid, path = lines[0].split()
    wpid = int(lines[1])
    h.wait_for(lambda: not pid_alive(int(spid)) and not pid_alive(wpid),
               timeout=10, what="serve and worker to be gone")
    assert not os.path.exists(path)


def test_server_options_become_flags():
    args = sandd._flag_args({"token_file": "/x/t", "resume_window": 5,
                             "syslog": True, "tls_cert": None,
                             "verbose": 2, "control_mode": 0o600,
                             "allow": ["ls *", "cat *"]})
    assert args == ["--token-file", "/x/t", "--resume-window", "5",
                    "--syslog", "-v", "-v", "--control-mode", "0600",
                    "--allow", "ls *", "--allow", "cat *"], args
    with new_server(resume_window=3, ping_interval=5, verbose=1) as s:
        assert s.hello()["protocol"] == 1


def test_server_start_worker_and_exec():
    with new_server() as s:
        s.start_worker("w1", labels={"role": "web"})
        assert s.daemon_count() == 1
        d = s.get_daemon("w1")
        assert d is not None and d.labels == {"role": "web"}, d
        r = s.exec("w1", "echo hello")
        assert r.stdout == "hello\n" and r.success, r


def test_a_worker_of_two_servers_runs_commands_from_each():
    with new_server() as a, new_server() as b:
        with sandd.Worker([a.url, b.url], "w2", binary=h.SANDD):
            for s in (a, b):
                h.wait_for(lambda: s.get_daemon("w2") is not None,
                           what="w2 on %s" % s.url)
                assert s.exec("w2", "echo both").stdout == "both\n"


def test_server_start_worker_bad_id_raises():
    with new_server() as s:
        try:
            s.start_worker("bad id!", timeout=10)
        except sandd.ServerStartError as e:
            assert "exited" in str(e), str(e)
        else:
            raise AssertionError("a worker with a bad id connected")


# ------------------------------------------------------------ Client

def test_client_uses_sandd_control_env():
    with h.Cluster() as c:
        old = os.environ.get("SANDD_CONTROL")
        os.environ["SANDD_CONTROL"] = c.control
        try:
            assert sandd.default_control_path() == c.control
            with sandd.Client() as cl:
                assert cl.path == c.control
                assert cl.hello()["protocol"] == 1
        finally:
            if old is None:
                del os.environ["SANDD_CONTROL"]
            else:
                os.environ["SANDD_CONTROL"] = old


def test_default_control_path_without_env():
    old = os.environ.pop("SANDD_CONTROL", None)
    try:
        p = sandd.default_control_path()
        if os.getuid() == 0:
            assert p == "/run/sandd/control.sock", p
        else:
            assert p == "/tmp/sandd-%d/control.sock" % os.getuid(), p
    finally:
        if old is not None:
            os.environ["SANDD_CONTROL"] = old


def test_client_missing_socket_raises_connection_error():
    try:
        sandd.Client("/nonexistent/dir/control.sock")
    except ConnectionError as e:
        assert isinstance(e, sandd.SanddError)
        assert "/nonexistent/dir/control.sock" in str(e)
    else:
        raise AssertionError("connected to a missing socket")


def test_client_raises_connection_closed_when_server_dies():
    with h.Cluster() as c:
        cl = client(c)
        assert cl.hello()
        c.stop_server(signal.SIGKILL)
        h.wait_for(lambda: cl.closed, timeout=5, what="client to see EOF")
        try:
            cl.hello()
        except sandd.ConnectionClosed:
            pass
        else:
            raise AssertionError("call on a dead connection succeeded")
        cl.close()


def test_hello_and_stats():
    with h.Cluster() as c, client(c) as cl:
        assert cl.hello()["protocol"] == sandd.PROTOCOL_VERSION
        cl.exec("w1", "true")
        st = cl.get_stats()
        for k in ("workers_connected", "execs_total", "execs_running",
                  "sessions", "bytes_in", "bytes_out", "control_clients"):
            assert isinstance(st.get(k), (int, float)), (k, st)
        assert isinstance(st.get("errors"), dict), st
        assert st["workers_connected"] == 1
        assert st["execs_total"] >= 1


def test_list_daemons_get_daemon_and_count():
    with h.Cluster(workers={"w1": {"role": "a"}, "w2": {"role": "b"}}) as c:
        with client(c) as cl:
            ds = cl.list_daemons()
            assert sorted(d.id for d in ds) == ["w1", "w2"], ds
            for d in ds:
                assert isinstance(d, sandd.DaemonInfo)
                assert d.connected and not d.is_busy
                assert d.version and d.hostname and d.os and d.arch, d
            assert [d.id for d in cl.list_daemons({"role": "b"})] == ["w2"]
            assert cl.list_daemons({"role": "zzz"}) == []
            assert cl.get_daemon("w1").labels == {"role": "a"}
            assert cl.get_daemon("nope") is None
            assert cl.daemon_count() == 2


def test_is_busy_while_command_runs():
    with h.Cluster() as c, client(c) as cl:
        t = threading.Thread(target=cl.exec, args=("w1", "sleep 2"))
        t.start()
        try:
            h.wait_for(lambda: cl.get_daemon("w1").is_busy, timeout=5,
                       what="w1 to be busy")
            assert cl.get_daemon("w1").running >= 1
        finally:
            t.join()
        assert not cl.get_daemon("w1").is_busy


def test_wait_for_daemon():
    with h.Cluster() as c, client(c) as cl:
        assert cl.wait_for_daemon("w1", timeout=2) is True
        t0 = time.monotonic()
        assert cl.wait_for_daemon("late", timeout=0.5) is False
        assert time.monotonic() - t0 < h.T(5)
        result = []
        th = threading.Thread(target=lambda: result.append(
            cl.wait_for_daemon("late", timeout=h.T(15))))
        th.start()
        c.start_worker("late", wait=False)
        th.join()
        assert result == [True]


def test_wait_for_daemons_by_labels():
    with h.Cluster(workers={"w1": {"g": "x"}}) as c, client(c) as cl:
        ds = cl.wait_for_daemons({"g": "x"}, count=1, timeout=5)
        assert [d.id for d in ds] == ["w1"]
        try:
            cl.wait_for_daemons({"g": "x"}, count=2, timeout=0.5)
        except TimeoutError as e:
            assert isinstance(e, sandd.WaitTimeout) and e.code == "timeout"
        else:
            raise AssertionError("wait for 2 workers succeeded with 1")


# ------------------------------------------------------------ exec

def test_exec_returns_output_and_status():
    with h.Cluster() as c, client(c) as cl:
        r = cl.exec("w1", "echo out; echo err >&2; exit 3")
        assert isinstance(r, sandd.CommandResult)
        assert r.stdout == "out\n" and r.stderr == "err\n", r
        assert r.exit_code == 3 and not r.success, r
        assert r.signal is None and not r.timed_out
        assert isinstance(r.duration_ms, float) and r.duration_ms >= 0
        r = cl.exec("w1", "true")
        assert r.success and r.exit_code == 0 and r.stdout == ""


def test_exec_argv_env_cwd_stdin():
    with h.Cluster() as c, client(c) as cl:
        r = cl.exec("w1", ["printf", "%s|", "a b", "$HOME"])
        assert r.stdout == "a b|$HOME|", r
        r = cl.exec("w1", "echo $FOO", env={"FOO": "bar baz"})
        assert r.stdout == "bar baz\n", r
        r = cl.exec("w1", "pwd", cwd="/tmp")
        assert r.stdout == "/tmp\n", r
        r = cl.exec("w1", "cat", stdin=b"in\xffput")
        assert r.stdout_bytes == b"in\xffput", r


def test_exec_binary_output_is_exact():
    with h.Cluster() as c, client(c) as cl:
        r = cl.exec("w1", r"printf 'a\377\000b'")
        assert r.stdout_bytes == b"a\xff\x00b", r.stdout_bytes
        assert r.stdout == "a\ufffd\x00b"


def test_exec_timeout_raises_timeout_error_with_partial_result():
    with h.Cluster() as c, client(c) as cl:
        t0 = time.monotonic()
        try:
            cl.exec("w1", "echo started; sleep 30", timeout=1)
        except TimeoutError as e:
            assert isinstance(e, sandd.CommandTimeout)
            assert e.result.timed_out
            assert e.result.stdout == "started\n", e.result
            assert not e.result.success
        else:
            raise AssertionError("no TimeoutError")
        assert time.monotonic() - t0 < h.T(10)


def test_exec_merge_stderr_and_max_output():
    with h.Cluster() as c, client(c) as cl:
        r = cl.exec("w1", "echo a; echo b >&2", merge_stderr=True)
        assert r.stdout == "a\nb\n" and r.stderr == "", r
        r = cl.exec("w1", "head -c 100000 /dev/zero; echo done >&2",
                    max_output=1000)
        assert len(r.stdout_bytes) <= 1000 and r.stdout_truncated, r
        assert r.stderr == "done\n" and not r.stderr_truncated, r
        assert r.exit_code == 0


def test_exec_without_timeout_and_with_limits():
    with h.Cluster() as c, client(c) as cl:
        r = cl.exec("w1", "ulimit -n", timeout=None, limits={"nofile": 64})
        assert r.stdout == "64\n", r


def test_exec_unknown_daemon_raises_value_error():
    with h.Cluster() as c, client(c) as cl:
        try:
            cl.exec("nope", "true")
        except ValueError as e:
            assert str(e) == "Daemon nope not found", str(e)
            assert isinstance(e, sandd.WorkerNotFound)
            assert e.code == "no_such_worker"
            assert e.error.get("code") == "no_such_worker"
        else:
            raise AssertionError("no ValueError")


def test_exec_killed_by_signal():
    with h.Cluster() as c, client(c) as cl:
        r = cl.exec("w1", "kill -9 $$")
        assert r.exit_code is None and r.signal == "KILL", r
        assert r.returncode == -9 and not r.success


def test_exec_failed_for_missing_program():
    with h.Cluster() as c, client(c) as cl:
        try:
            cl.exec("w1", ["/nonexistent/prog"])
        except sandd.ExecFailed as e:
            assert e.code == "exec_failed"
        else:
            raise AssertionError("no ExecFailed")


def test_error_codes_map_to_exceptions():
    with h.Cluster() as c, client(c) as cl:
        try:
            cl.call({"op": "no.such.op"})
        except sandd.UnknownOp as e:
            assert e.code == "unknown_op"
        else:
            raise AssertionError("no UnknownOp")
        try:
            cl.call({"op": "exec", "worker": 5, "cmd": "true"})
        except sandd.BadRequest as e:
            assert e.code == "bad_request" and isinstance(e, ValueError)
        else:
            raise AssertionError("no BadRequest")
        try:
            cl.read("no-such-handle", timeout=0)
        except sandd.HandleNotFound as e:
            assert e.code == "no_such_handle"
        else:
            raise AssertionError("no HandleNotFound")
        # the connection is still usable
        assert cl.exec("w1", "echo ok").stdout == "ok\n"


def test_pipelined_requests_from_many_threads():
    with h.Cluster() as c, client(c) as cl:
        errors = []

        def worker(n):
            try:
                for i in range(5):
                    r = cl.exec("w1", "sleep 0.0%d; echo %d-%d" % (
                        (n + i) % 5, n, i))
                    assert r.stdout == "%d-%d\n" % (n, i), r
            except BaseException as e:
                errors.append(e)
        ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors


def test_request_ids_are_unique_integers():
    with h.Cluster() as c, client(c) as cl:
        msgs = list(cl.request({"op": "hello"}))
        msgs2 = list(cl.request({"op": "hello"}))
        assert isinstance(msgs[-1]["id"], int)
        assert msgs[-1]["id"] != msgs2[-1]["id"]


# ------------------------------------------------------------ broadcast

def test_broadcast_by_labels_and_ids():
    with h.Cluster(workers={"w1": {"role": "a"}, "w2": {"role": "a"},
                            "w3": {"role": "b"}}) as c, client(c) as cl:
        res = cl.broadcast({"role": "a"}, "echo $SANDD_X", env={
            "SANDD_X": "x"})
        assert sorted(res) == ["w1", "w2"], res
        for w, r in res.items():
            assert r.stdout == "x\n" and r.success and r.worker == w, r
        res = cl.broadcast({}, "true")
        assert sorted(res) == ["w1", "w2", "w3"], res
        assert cl.broadcast({"role": "zzz"}, "true") == {}
        res = cl.broadcast(["w3"], "echo three")
        assert list(res) == ["w3"] and res["w3"].stdout == "three\n"


def test_broadcast_reports_timeouts_per_worker():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c, client(c) as cl:
        res = cl.broadcast({}, "echo a; sleep 20", timeout=1)
        assert sorted(res) == ["w1", "w2"]
        for r in res.values():
            assert r.timed_out and r.stdout == "a\n" and not r.success, r


# ------------------------------------------------------------ streaming

def test_exec_stream_yields_events_in_order():
    with h.Cluster() as c, client(c) as cl:
        stream = cl.exec_stream("w1", "echo one; sleep 0.2; echo two >&2; "
                                "exit 4")
        types, out, err = [], b"", b""
        for ev in stream:
            types.append(ev.type)
            if ev.type == "stdout":
                out += ev.data
            elif ev.type == "stderr":
                err += ev.data
        assert types[0] == "started", types
        assert types[-1] == "result", types
        assert out == b"one\n" and err == b"two\n", (out, err)
        assert stream.result.exit_code == 4
        assert stream.handle


def test_exec_stream_binary_and_large_output():
    with h.Cluster() as c, client(c) as cl:
        got = b""
        for ev in cl.exec_stream("w1", r"printf 'x\377y'; head -c 300000 "
                                 "/dev/zero"):
            if ev.type == "stdout":
                got += ev.data
        assert got == b"x\xffy" + b"\0" * 300000, (len(got), got[:10])


def test_exec_stream_stdin_open_write_and_eof():
    with h.Cluster() as c, client(c) as cl:
        stream = cl.exec_stream("w1", "tr a-z A-Z", stdin_open=True,
                                timeout=20)
        stream.write(b"hello\n")
        stream.write("world\n")
        stream.close_stdin()
        r = stream.wait(timeout=h.T(20))
        assert r.stdout == "HELLO\nWORLD\n", r
        assert r.exit_code == 0


def test_exec_stream_signal():
    with h.Cluster() as c, client(c) as cl:
        # argv, not "sleep 30": dash loses a SIGINT that arrives while it
        # starts up (its own handler is set until it execs the command).
        stream = cl.exec_stream("w1", ["sleep", "30"])
        stream.wait_started()
        stream.signal("INT")
        r = stream.wait(timeout=h.T(10))
        assert r.signal == "INT" and r.exit_code is None, r


def test_exec_stream_broadcast():
    with h.Cluster(workers={"w1": {"k": "v"}, "w2": {"k": "v"}}) as c, \
            client(c) as cl:
        res = cl.exec_stream({"k": "v"}, "echo hi").wait(timeout=h.T(20))
        assert sorted(res) == ["w1", "w2"], res
        for r in res.values():
            assert r.stdout == "hi\n" and r.exit_code == 0, r


def test_spawn_yield_after_then_read_and_wait():
    with h.Cluster() as c, client(c) as cl:
        hd = cl.spawn("w1", "echo first; sleep 2; echo second",
                      yield_after=0.8)
        assert hd.running and hd.handle, hd
        assert hd.initial.stdout == "first\n", hd.initial
        r = hd.wait(timeout=h.T(10))
        assert r.stdout == "first\nsecond\n", r
        assert r.exit_code == 0 and not hd.running
        quick = cl.spawn("w1", "echo quick", yield_after=5)
        assert not quick.running and quick.result.stdout == "quick\n"


def test_spawned_command_continues_from_another_client():
    with h.Cluster() as c:
        with client(c) as cl:
            hd = cl.spawn("w1", "sleep 0.5; echo done", yield_after=0.1)
            handle = hd.handle
        with client(c) as cl2:
            r = cl2.attach_handle(handle, "w1").wait(timeout=h.T(10))
            assert r.stdout == "done\n", r


def test_read_until_and_signal_on_handle():
    with h.Cluster() as c, client(c) as cl:
        hd = cl.spawn("w1", "echo ready; sleep 30", yield_after=0.05)
        if hd.running and "ready" not in hd.initial.stdout:
            rr = cl.read(hd.handle, timeout=5, until="ready")
            assert "ready" in rr.stdout, rr
        cl.signal(hd.handle, signal.SIGTERM)
        r = hd.wait(timeout=h.T(10))
        assert r.signal == "TERM", r


# ------------------------------------------------------------ subscribe

def test_subscribe_worker_events():
    with h.Cluster() as c, client(c) as cl:
        sub = cl.subscribe(["workers"])
        c.start_worker("w2")

        def got(state):
            deadline = time.monotonic() + h.T(10)
            while time.monotonic() < deadline:
                ev = sub.get(timeout=0.5)
                if ev and ev.type == "worker" and ev.worker == "w2" and \
                        ev.state == state:
                    return ev
            raise AssertionError("no %s event for w2" % state)
        got("connected")
        c.stop_worker("w2")
        got("disconnected")
        sub.close()


# ------------------------------------------------------------ files

def test_stat_file_dir_and_missing():
    with h.Cluster() as c, client(c) as cl:
        p = os.path.join(c.tmp, "statme")
        with open(p, "wb") as f:
            f.write(b"12345")
        os.chmod(p, 0o640)
        st = cl.stat("w1", p)
        assert st.is_file and st.size == 5 and st.mode == 0o640, st
        assert abs(st.mtime - os.stat(p).st_mtime) < 2
        assert cl.stat("w1", c.tmp).is_dir
        try:
            cl.stat("w1", os.path.join(c.tmp, "missing"))
        except FileNotFoundError as e:
            assert isinstance(e, sandd.RemoteIOError)
            assert e.code == "io_error" and e.errno_name == "ENOENT"
        else:
            raise AssertionError("no FileNotFoundError")


def test_upload_and_download_roundtrip():
    with h.Cluster() as c, client(c) as cl:
        data = bytes(range(256)) * 100
        p = os.path.join(c.tmp, "up.bin")
        t = cl.upload_file("w1", p, data)
        assert t.size == len(data)
        assert t.sha256 == hashlib.sha256(data).hexdigest()
        with open(p, "rb") as f:
            assert f.read() == data
        assert cl.download_file("w1", p) == data
        cl.upload_file("w1", p, b"")
        assert cl.download_file("w1", p) == b""


def test_put_mode_and_mkdir():
    with h.Cluster() as c, client(c) as cl:
        p = os.path.join(c.tmp, "a", "b", "x.sh")
        cl.upload_file("w1", p, b"#!/bin/sh\necho hi\n", mode=0o750,
                       mkdir=True)
        assert os.stat(p).st_mode & 0o7777 == 0o750
        assert cl.exec("w1", p).stdout == "hi\n"


def test_put_get_large_file_streams_without_holding_it():
    with h.Cluster() as c, client(c) as cl:
        src = os.path.join(c.tmp, "big.src")
        size = 24 * 1024 * 1024 + 17
        digest = hashlib.sha256()
        with open(src, "wb") as f:
            chunk = os.urandom(1024 * 1024)
            left = size
            while left:
                piece = chunk[:min(left, len(chunk))]
                f.write(piece)
                digest.update(piece)
                left -= len(piece)
        remote = os.path.join(c.tmp, "big.remote")
        back = os.path.join(c.tmp, "big.back")
        tracemalloc.start()
        try:
            t = cl.put("w1", src, remote)
            assert t.size == size and t.sha256 == digest.hexdigest()
            t = cl.get("w1", remote, back)
            assert t.size == size and t.sha256 == digest.hexdigest()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, "peak Python memory %d" % peak
        assert os.path.getsize(back) == size
        with open(back, "rb") as f:
            d2 = hashlib.sha256()
            for piece in iter(lambda: f.read(1 << 20), b""):
                d2.update(piece)
        assert d2.hexdigest() == digest.hexdigest()


def test_put_from_pipe_and_get_to_fileobj():
    with h.Cluster() as c, client(c) as cl:
        r_fd, w_fd = os.pipe()
        data = os.urandom(300000)

        def feed():
            with os.fdopen(w_fd, "wb") as w:
                w.write(data)
        th = threading.Thread(target=feed)
        th.start()
        remote = os.path.join(c.tmp, "piped")
        with os.fdopen(r_fd, "rb") as r:
            cl.put("w1", r, remote)
        th.join()
        buf = io.BytesIO()
        cl.get("w1", remote, buf)
        assert buf.getvalue() == data
        part = io.BytesIO()
        t = cl.get("w1", remote, part, offset=10, length=100)
        assert part.getvalue() == data[10:110]
        assert t.sha256 == hashlib.sha256(data[10:110]).hexdigest()


def test_get_missing_file_leaves_no_local_debris():
    with h.Cluster() as c, client(c) as cl:
        dst_dir = os.path.join(c.tmp, "dst")
        os.mkdir(dst_dir)
        try:
            cl.get("w1", os.path.join(c.tmp, "nope"),
                   os.path.join(dst_dir, "x"))
        except FileNotFoundError:
            pass
        else:
            raise AssertionError("no FileNotFoundError")
        assert os.listdir(dst_dir) == []
        try:
            cl.download_file("nope", "/etc/hostname")
        except ValueError as e:
            assert str(e) == "Daemon nope not found"
        else:
            raise AssertionError("no ValueError")


# ------------------------------------------------------------ sessions

def test_session_write_read_until_and_run():
    with h.Cluster() as c, client(c) as cl:
        s = cl.new_session("w1", command="/bin/sh")
        try:
            assert s.session_id
            s.write(b"echo hel''lo\n")
            out = s.read_until("hello", timeout=h.T(10))
            assert b"hello" in out, out
            r = s.run("echo hi")
            assert r.stdout == "hi\n" and r.exit_code == 0, r
            r = s.run("cd /tmp; FOO=bar; false")
            assert r.exit_code == 1, r
            r = s.run("pwd; echo $FOO")
            assert r.stdout == "/tmp\nbar\n", r
            assert s.run("echo $TERM").stdout == "xterm-256color\n"
        finally:
            s.close()


def test_session_read_returns_none_when_idle():
    with h.Cluster() as c, client(c) as cl:
        with cl.new_session("w1", command=["/bin/cat"]) as s:
            s.write("abc\n")
            got = b""
            deadline = time.monotonic() + h.T(10)
            while b"abc\r\nabc\r\n" not in got and \
                    time.monotonic() < deadline:
                got += s.read(timeout=1.0) or b""
            assert b"abc\r\nabc\r\n" in got, got
            t0 = time.monotonic()
            assert s.read(timeout=0.3) is None
            assert time.monotonic() - t0 >= 0.25


def test_session_resize_and_list():
    with h.Cluster() as c, client(c) as cl:
        with cl.new_session("w1", rows=24, cols=80,
                            command="/bin/sh") as s:
            assert s.run("stty size").stdout == "24 80\n"
            s.resize(30, 100)
            assert s.run("stty size").stdout == "30 100\n"
            ids = [x.session for x in cl.list_sessions("w1")]
            assert s.session_id in ids, ids
            info = s.info()
            assert info.rows == 30 and info.cols == 100, info


def test_session_run_timeout_raises_with_output():
    with h.Cluster() as c, client(c) as cl:
        with cl.new_session("w1", command="/bin/sh") as s:
            try:
                s.run("echo before; sleep 30", timeout=1)
            except TimeoutError as e:
                assert e.result.timed_out
                assert "before" in e.result.stdout, e.result
            else:
                raise AssertionError("no TimeoutError")
            assert s.run("echo after").stdout == "after\n"


def test_session_close_and_gone():
    with h.Cluster() as c, client(c) as cl:
        s = cl.new_session("w1", command="/bin/sh")
        s.close()
        try:
            s.write(b"x")
        except sandd.SessionNotFound as e:
            assert e.code == "no_such_session"
        else:
            raise AssertionError("write to a closed session succeeded")


def test_session_attach_events():
    with h.Cluster() as c, client(c) as cl:
        s = cl.new_session("w1", command="/bin/sh")
        try:
            sub = s.attach(since=0)
            s.write("echo attached-ok\n")
            got = b""
            deadline = time.monotonic() + h.T(10)
            while b"attached-ok\r\n" not in got and \
                    time.monotonic() < deadline:
                ev = sub.get(timeout=0.5)
                if ev is not None and ev.type == "output":
                    got += ev.data
            assert b"attached-ok\r\n" in got, got
            s.detach()
            sub.close()
        finally:
            s.close()


def test_session_attach_gets_raw_bytes_untouched():
    want = b"\xff\x00\xe2\x82" + b"\xac-end\r\n"
    with h.Cluster() as c, client(c) as cl:
        s = cl.new_session("w1", command="printf '\\377\\000\\342\\202';"
                           " sleep 0.2; printf '\\254-end\\n'; sleep 30")
        try:
            sub = s.attach(since=0)
            got, raw = b"", True
            deadline = time.monotonic() + h.T(10)
            while len(got) < len(want) and time.monotonic() < deadline:
                ev = sub.get(timeout=0.5)
                if ev is not None and ev.type == "output":
                    got += ev.data
                    raw = raw and "bytes" in ev.message
            assert got == want, got
            assert raw, "output came in JSON, not as raw payloads"
            sub.close()
        finally:
            s.close()


# ------------------------------------------------------------ asyncio

def test_async_client_same_methods():
    with h.Cluster(workers={"w1": {"r": "x"}, "w2": {}}) as c:
        async def main():
            async with sandd.AsyncClient(c.control,
                                         request_timeout=h.T(30)) as ac:
                assert (await ac.hello())["protocol"] == 1
                assert await ac.daemon_count() == 2
                r = await ac.exec("w1", "echo async")
                assert r.stdout == "async\n"
                rs = await asyncio.gather(*[
                    ac.exec("w2", "echo %d" % i) for i in range(10)])
                assert [x.stdout for x in rs] == \
                    ["%d\n" % i for i in range(10)]
                b = await ac.broadcast({"r": "x"}, "echo b")
                assert list(b) == ["w1"]
                try:
                    await ac.exec("w9", "true")
                except ValueError as e:
                    assert str(e) == "Daemon w9 not found"
                else:
                    raise AssertionError("no ValueError")
                try:
                    await ac.exec("w1", "sleep 10", timeout=0.5)
                except TimeoutError as e:
                    assert e.result.timed_out
                else:
                    raise AssertionError("no TimeoutError")
                stream = await ac.exec_stream("w1", "echo s1; echo s2")
                types = [ev.type async for ev in stream]
                assert types[0] == "started" and types[-1] == "result"
                assert await ac.wait_for_daemon("w1", timeout=1)
                hd = await ac.spawn("w1", "sleep 0.3; echo x",
                                    yield_after=0.05)
                assert (await hd.wait(timeout=10)).stdout == "x\n"
        asyncio.run(main())


def test_async_files_and_sessions():
    with h.Cluster() as c:
        async def main():
            ac = sandd.AsyncClient(c.control, request_timeout=h.T(30))
            try:
                p = os.path.join(c.tmp, "af")
                await ac.upload_file("w1", p, b"\x00\x01async")
                assert await ac.download_file("w1", p) == b"\x00\x01async"
                assert (await ac.stat("w1", p)).size == 7
                s = await ac.new_session("w1", command="/bin/sh")
                try:
                    r = await s.run("echo sess")
                    assert r.stdout == "sess\n", r
                finally:
                    await s.close()
            finally:
                await ac.close()
        asyncio.run(main())


def test_async_subscribe_and_stream_broadcast():
    with h.Cluster(workers={"w1": {"k": "v"}, "w2": {"k": "v"}}) as c:
        async def main():
            async with sandd.AsyncClient(c.control,
                                         request_timeout=h.T(30)) as ac:
                sub = await ac.subscribe(["workers"])
                c.start_worker("w3", wait=False)
                deadline = time.monotonic() + h.T(10)
                while True:
                    ev = await sub.get(timeout=0.5)
                    if ev and ev.worker == "w3" and ev.state == "connected":
                        break
                    assert time.monotonic() < deadline, "no w3 event"
                sub.close()
                st = await ac.exec_stream({"k": "v"}, "echo hi")
                res = await st.wait(timeout=h.T(20))
                assert sorted(res) == ["w1", "w2"], res
                assert all(r.stdout == "hi\n" for r in res.values()), res
        asyncio.run(main())


def test_async_server():
    async def main():
        s = sandd.AsyncServer(host="127.0.0.1", port=h.free_port(),
                              binary=h.SANDD, request_timeout=h.T(30))
        async with s:
            pid = s.pid
            await s.start_worker("aw", labels={"a": "1"})
            r = await s.exec("aw", "echo from-async-server")
            assert r.stdout == "from-async-server\n"
        assert not pid_alive(pid)
    asyncio.run(main())


def test_async_server_port_taken_raises():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)

    async def main():
        s = sandd.AsyncServer(host="127.0.0.1",
                              port=blocker.getsockname()[1], binary=h.SANDD)
        try:
            await s.start()
        except sandd.ServerStartError:
            return
        await s.close()
        raise AssertionError("AsyncServer started on a taken port")
    try:
        asyncio.run(main())
    finally:
        blocker.close()


# ------------------------------------------------------------ Rust sandd
# Its users switch with no edits: each test names what they rely on.

def test_rust_compat_failures_are_runtime_errors_keeping_their_other_bases():
    assert issubclass(sandd.SanddError, RuntimeError)
    for cls, base in ((sandd.WorkerNotFound, ValueError),
                      (sandd.CommandTimeout, TimeoutError),
                      (sandd.ConnectionClosed, ConnectionError),
                      (sandd.Denied, PermissionError),
                      (sandd.RemoteFileNotFoundError, FileNotFoundError)):
        assert issubclass(cls, RuntimeError) and issubclass(cls, base), cls
    with h.Cluster() as c, client(c) as cl:
        try:
            cl.exec("w1", ["/nonexistent/prog"])
        except RuntimeError as e:
            assert isinstance(e, sandd.ExecFailed), e
        else:
            raise AssertionError("no RuntimeError for a missing program")
        c.stop_server(signal.SIGKILL)
        h.wait_for(lambda: cl.closed, timeout=5, what="client to see EOF")
        try:
            cl.hello()
        except RuntimeError as e:
            assert isinstance(e, sandd.ConnectionClosed), e
        else:
            raise AssertionError("call on a dead connection succeeded")


def test_rust_compat_server_address_and_connect_argument():
    port = h.free_port()
    with sandd.Server("127.0.0.1", port, "direct", binary=h.SANDD,
                      request_timeout=h.T(30)) as s:
        assert s.address == "127.0.0.1:%d" % port, s.address
        assert s.hello()["protocol"] == 1
    with new_server(connect="direct", verbose=False) as s:
        assert s.address == "127.0.0.1:%d" % s.port
    for bad in ({"connect": "tunnel"}, {"tunnel_config": object()}):
        try:
            new_server(**bad)
        except ValueError as e:
            assert "direct" in str(e), str(e)
        else:
            raise AssertionError("Server accepted %r" % (bad,))
    assert sandd.AsyncServer("::", 8765, binary=h.SANDD).address == \
        "[::]:8765"
    assert sandd.AsyncServer(port=9, binary=h.SANDD).address == "0.0.0.0:9"


def test_rust_compat_get_stats_has_rust_attributes_and_reads_like_a_dict():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c, client(c) as cl:
        cl.exec("w1", "true")
        time.sleep(1.2)
        st = cl.get_stats()
        assert isinstance(st, sandd.ServerStats) and isinstance(st, dict)
        assert st.total_daemons == 2, st
        d = cl.get_daemon("w1")
        assert st.by_platform == {"%s/%s" % (d.os, d.arch): 2}, st
        assert isinstance(st.oldest_connection_secs, int)
        assert 1 <= st.oldest_connection_secs < 600, st.oldest_connection_secs
        assert sorted(st.daemons) == ["w1", "w2"], st.daemons
        assert st.daemons["w1"].hostname == d.hostname
        # ... and is still the dict of counters it was
        assert st["workers_connected"] == 2 and "execs_total" in st
        assert st.get("execs_total") >= 1 and "bytes_in" in st.keys()
        assert json.loads(json.dumps(st))["workers_connected"] == 2
        assert "ServerStats" in repr(st) and "total=2" in repr(st), repr(st)
        c.stop_worker("w2")
        st = cl.get_stats()
        assert st.total_daemons == 1 and list(st.daemons) == ["w1"], st


def test_rust_compat_new_session_takes_rust_positional_order():
    with h.Cluster() as c, client(c) as cl:
        with cl.new_session("w1", 30, 100, "vt100", False,
                            command="/bin/sh") as s:
            assert isinstance(s, sandd.Session), s
            assert s.run("stty size").stdout == "30 100\n"
            assert s.run("echo $TERM").stdout == "vt100\n"
        try:
            cl.new_session("w1", 24, 80, "xterm", "/bin/sh")
        except TypeError as e:
            assert "command=" in str(e), str(e)
        else:
            raise AssertionError("a command taken as interactive")


def _read_pty(fd, want, deadline):
    """Read a terminal until ``want`` shows up; all that was read."""
    got = b""
    while want not in got:
        left = deadline - time.monotonic()
        assert left > 0, "no %r on the terminal: %r" % (want, got)
        if select.select([fd], [], [], left)[0]:
            try:
                piece = os.read(fd, 4096)
            except OSError:     # EIO: the child closed the terminal
                piece = b""
            assert piece, "terminal closed before %r: %r" % (want, got)
            got += piece
    return got


def test_rust_compat_interactive_session_runs_on_this_terminal():
    code = (
        "import sys; sys.path.insert(0, %r); import sandd\n"
        "c = sandd.Client(request_timeout=30)\n"
        "r = c.new_session('w1', interactive=True, command='/bin/sh')\n"
        "print('returned:', r, [s.session for s in c.list_sessions()])\n"
    ) % os.path.join(h.REPO, "contrib", "python")
    with h.Cluster() as c:
        master, slave = pty.openpty()
        child = subprocess.Popen(
            [sys.executable, "-c", code], stdin=slave, stdout=slave,
            stderr=subprocess.PIPE, start_new_session=True,
            env=h._clean_env({"SANDD_CONTROL": c.control}))
        os.close(slave)
        try:
            deadline = time.monotonic() + h.T(20)
            os.write(master, b"echo inter''active-ok\n")
            _read_pty(master, b"interactive-ok\r\n", deadline)
            os.write(master, b"\x04")
            out = _read_pty(master, b"returned: None []", deadline)
            assert child.wait(h.T(10)) == 0, child.stderr.read()
        finally:
            h._stop_proc(child)
            os.close(master)
        assert b"Traceback" not in out, out


def test_rust_compat_async_server_starts_on_first_use_and_leaves_no_folder():
    private = tempfile.mkdtemp(prefix="sandd-test-tmp-")
    old_tempdir = tempfile.tempdir
    tempfile.tempdir = private      # where the servers make their folders

    def new(**kw):
        return sandd.AsyncServer("127.0.0.1", h.free_port(), binary=h.SANDD,
                                 request_timeout=h.T(30), **kw)

    async def used_without_async_with():
        s = new()
        assert s.control_path is None and os.listdir(private) == []
        await s.start_worker("aw")          # the first call starts it
        r = await s.exec("aw", "echo first-use")
        assert r.stdout == "first-use\n", r
        assert (await s.get_stats()).total_daemons == 1
        pid = s.pid
        await s.close()
        return pid

    async def dropped_without_close():
        s = new()
        await s.hello()
        return s.pid
    try:
        new()                           # never used: nothing to leave
        assert os.listdir(private) == []
        pid = asyncio.run(used_without_async_with())
        assert not pid_alive(pid)
        assert os.listdir(private) == []
        pid = asyncio.run(dropped_without_close())
        gc.collect()
        h.wait_for(lambda: not pid_alive(pid), timeout=10,
                   what="a dropped AsyncServer's serve to stop")
        assert os.listdir(private) == []
    finally:
        tempfile.tempdir = old_tempdir
        shutil.rmtree(private, ignore_errors=True)


def test_rust_compat_async_exec_stream_iterates_without_await():
    with h.Cluster() as c:
        async def main():
            async with sandd.AsyncClient(c.control,
                                         request_timeout=h.T(30)) as ac:
                types, out = [], b""
                async for ev in ac.exec_stream("w1", "echo direct"):
                    types.append(ev.type)
                    out += ev.data if ev.type == "stdout" else b""
                assert types[0] == "started" and types[-1] == "result"
                assert out == b"direct\n", out
                stream = await ac.exec_stream("w1", "echo awaited")
                r = await stream.wait(timeout=h.T(20))
                assert r.stdout == "awaited\n", r
        asyncio.run(main())


h.run_main(globals())

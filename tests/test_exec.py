"""exec and its options, read/write/signal, broadcast, pipelining,
half-close, cancel on close, the text/bytes rule."""

import base64
import json
import os
import re
import time

import harness as h


def _exec(c, ctl=None, call_timeout=30, **kw):
    req = {"op": "exec", "worker": "w1"}
    req.update(kw)
    return (ctl or c.connect()).call(req, timeout=call_timeout)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st.rpartition(")")[2].split()[0] != "Z"


def _pidfile_cmd(c, name, body="exec sleep 30"):
    path = os.path.join(c.tmp, name)
    return path, "echo $$ > %s.tmp && mv %s.tmp %s; %s" % (
        path, path, path, body)


def _read_pid(path, timeout=15):
    def get():
        with open(path) as f:
            return int(f.read().strip())
    return h.wait_for(get, timeout=timeout, what="pid file %s" % path)


# ------------------------------------------------------------ basics

def test_exec_cmd_returns_stdout_and_exit_0():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo hello"))
        assert r["stdout"] == "hello\n", r
        assert r["exit_code"] == 0 and r["signal"] is None, r
        assert r["timed_out"] is False, r
        assert r["worker"] == "w1", r


def test_exec_stderr_is_separate_from_stdout():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo out; echo err >&2"))
        assert r["stdout"] == "out\n" and r["stderr"] == "err\n", r


def test_exec_nonzero_exit_is_ok_true_with_code():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="exit 3"))
        assert r["exit_code"] == 3 and r["signal"] is None, r


def test_exec_reason_exit_for_normal_exit():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="exit 5"))
        assert r.get("reason") == "exit", r


def test_exec_killed_by_signal_has_null_exit_code_and_signal_name():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="kill -9 $$"))
        assert r["exit_code"] is None and r["signal"] == "KILL", r


def test_exec_reason_signal_for_signal_death():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="kill -TERM $$"))
        assert r["signal"] == "TERM" and r.get("reason") == "signal", r


def test_exec_duration_ms_is_a_plausible_number():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="sleep 0.3"))
        d = r["duration_ms"]
        assert isinstance(d, (int, float)) and not isinstance(d, bool), r
        assert 250 <= d < h.T(10000), r


def test_exec_cmd_runs_through_sh():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="a=1; b=2; echo $((a+b)) | tr 3 x"))
        assert r["stdout"] == "x\n", r


def test_exec_cmd_missing_program_is_exit_127_not_error():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="no-such-program-xyz"))
        assert r["exit_code"] == 127, r


def test_exec_argv_runs_without_shell():
    with h.Cluster() as c:
        r = h.ok(_exec(c, argv=["printf", "%s|", "a b", "$HOME", "*"]))
        assert r["stdout"] == "a b|$HOME|*|", r


def test_exec_argv_searches_path():
    with h.Cluster() as c:
        r = h.ok(_exec(c, argv=["true"]))
        assert r["exit_code"] == 0, r


def test_exec_argv_missing_program_is_exec_failed():
    with h.Cluster() as c:
        h.err(_exec(c, argv=["no-such-program-xyz"]), "exec_failed")


def test_exec_argv_not_executable_is_exec_failed():
    with h.Cluster() as c:
        p = os.path.join(c.tmp, "notexec.sh")
        with open(p, "w") as f:
            f.write("#!/bin/sh\necho hi\n")
        os.chmod(p, 0o644)
        h.err(_exec(c, argv=[p]), "exec_failed")


def test_exec_failed_message_names_the_program():
    with h.Cluster() as c:
        r = h.err(_exec(c, argv=["no-such-program-xyz"]), "exec_failed")
        assert "no-such-program-xyz" in r["error"]["message"], r


# ------------------------------------------------------------ env / cwd / user

def test_exec_env_is_set():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd='echo "$FOO"', env={"FOO": "bar baz"}))
        assert r["stdout"] == "bar baz\n", r


def test_exec_env_is_merged_over_worker_environment():
    with h.Cluster() as c:
        r = h.ok(_exec(c, argv=["env"], env={"FOO": "1"}))
        lines = r["stdout"].splitlines()
        assert "FOO=1" in lines, r
        assert "TEST_SANDD_CLUSTER=%s" % c.marker in lines, r


def test_exec_env_overrides_worker_variable():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd='echo "$TEST_SANDD_CLUSTER"',
                       env={"TEST_SANDD_CLUSTER": "over"}))
        assert r["stdout"] == "over\n", r


def test_exec_env_clear_drops_worker_environment():
    with h.Cluster() as c:
        r = h.ok(_exec(c, argv=["/usr/bin/env"], env_clear=True,
                       env={"ONLY": "1"}))
        lines = r["stdout"].splitlines()
        assert "ONLY=1" in lines, r
        assert not any(l.startswith("TEST_SANDD_CLUSTER=") for l in lines), r


def test_exec_cwd_sets_working_directory():
    with h.Cluster() as c:
        d = os.path.join(c.tmp, "sub dir")
        os.mkdir(d)
        r = h.ok(_exec(c, cmd="pwd", cwd=d))
        assert r["stdout"] == d + "\n", r


def test_exec_missing_cwd_is_exec_failed():
    with h.Cluster() as c:
        h.err(_exec(c, cmd="pwd", cwd="/nonexistent/dir/xyz"), "exec_failed")


def test_exec_cwd_that_is_a_file_is_exec_failed():
    with h.Cluster() as c:
        p = os.path.join(c.tmp, "afile")
        open(p, "w").close()
        h.err(_exec(c, cmd="pwd", cwd=p), "exec_failed")


def test_exec_user_runs_as_that_user():
    if os.geteuid() != 0:
        raise h.Skip("needs root")
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="id -u; id -g", user="nobody", cwd="/"))
        assert r["stdout"] == "65534\n65534\n", r


def test_exec_unknown_user_is_exec_failed():
    with h.Cluster() as c:
        h.err(_exec(c, cmd="true", user="no-such-user-xyz"), "exec_failed")


# ------------------------------------------------------------ stdin

def test_exec_stdin_text_is_fed_then_eof():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="cat; echo END", stdin="one\ntwo\n"))
        assert r["stdout"] == "one\ntwo\nEND\n", r


def test_exec_stdin_b64_carries_binary_bytes():
    with h.Cluster() as c:
        data = bytes(range(256))
        r = h.ok(_exec(c, cmd="od -An -tx1 -v | tr -d ' \\n'",
                       stdin_b64=base64.b64encode(data).decode()))
        assert r["stdout"] == data.hex(), r


def test_exec_without_stdin_reads_eof():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="cat; echo done", timeout=10))
        assert r["stdout"] == "done\n" and r["timed_out"] is False, r


def test_exec_stdin_is_dev_null_only_when_no_input_can_come():
    """No stdin, no stdin_b64, no stdin_open: the worker gives the
    command /dev/null (no pipe to make and close). With any of them, a
    pipe, and what is sent arrives."""
    with h.Cluster() as c:
        ctl = c.connect()
        fd0 = "readlink /proc/self/fd/0"
        r = h.ok(_exec(c, ctl, cmd=fd0))
        assert r["stdout"] == "/dev/null\n", r
        for extra in ({"stdin": ""}, {"stdin_b64": ""}):
            r = h.ok(_exec(c, ctl, cmd=fd0, **extra))
            assert r["stdout"].startswith("pipe:"), (extra, r)
        hd = _start_stream(ctl, cmd=fd0 + "; cat", stdin_open=True)
        h.ok(ctl.call({"op": "write", "handle": hd, "data": "in\n",
                       "eof": True}))
        evs, fin = ctl.collect("x")
        out = "".join(e["data"] for e in evs if e.get("event") == "stdout")
        assert out.startswith("pipe:") and out.endswith("in\n"), (evs, fin)


# ------------------------------------------------------------ text / bytes

def test_valid_utf8_output_is_a_string_field():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="printf 'h\\303\\251llo \\342\\202\\254'"))
        assert r["stdout"] == "h\u00e9llo \u20ac", r
        assert "stdout_b64" not in r, r


def test_invalid_utf8_output_is_base64_field_only():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="printf 'a\\377\\376b'"))
        assert "stdout" not in r, r
        assert base64.b64decode(r["stdout_b64"]) == b"a\xff\xfeb", r


def test_invalid_utf8_stderr_uses_stderr_b64():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="printf '\\200' >&2; echo ok"))
        assert r["stdout"] == "ok\n", r
        assert "stderr" not in r, r
        assert base64.b64decode(r["stderr_b64"]) == b"\x80", r


def test_truncated_utf8_at_end_is_base64():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="printf 'x\\342\\202'"))
        assert "stdout" not in r, r
        assert base64.b64decode(r["stdout_b64"]) == b"x\xe2\x82", r


def test_nul_bytes_survive_in_output():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="printf 'a\\000b'"))
        assert h.out(r) == b"a\x00b", r


def test_stream_never_splits_utf8_sequence():
    with h.Cluster() as c:
        ctl = c.connect()
        evs, fin = ctl.call_events({
            "op": "exec", "worker": "w1", "stream": True,
            "cmd": "yes '\u20ac\u20ac' | head -c 700000"})
        h.ok(fin)
        outs = [e for e in evs if e.get("event") == "stdout"]
        assert len(outs) > 1, "expected several stdout events"
        for e in outs:
            assert "data" in e and "data_b64" not in e, \
                "event split a UTF-8 sequence: %r" % (str(e)[:200],)
        assert "".join(e["data"] for e in outs) == \
            ("\u20ac\u20ac\n" * 100000), "output changed"


def test_stream_invalid_utf8_event_uses_data_b64():
    with h.Cluster() as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "worker": "w1", "stream": True,
            "cmd": "printf '\\377'"})
        h.ok(fin)
        outs = [e for e in evs if e.get("event") == "stdout"]
        assert b"".join(h.out(e, "data") for e in outs) == b"\xff", evs
        assert all("data" not in e for e in outs), evs


# ------------------------------------------------------------ stream

def test_stream_sends_started_then_output_events():
    with h.Cluster() as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "worker": "w1", "stream": True,
            "cmd": "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c"})
        h.ok(fin)
        assert evs and evs[0]["event"] == "started", evs
        st = evs[0]
        assert st["worker"] == "w1" and isinstance(st["handle"], str), st
        assert isinstance(st["pid"], int) and st["pid"] > 0, st
        so = "".join(e["data"] for e in evs if e["event"] == "stdout")
        se = "".join(e["data"] for e in evs if e["event"] == "stderr")
        assert so == "a\nc\n" and se == "b\n", evs
        for e in evs[1:]:
            assert e["worker"] == "w1", e


def _recorded_worker(c):
    """Start worker w1 dialing through a recording proxy; the proxy."""
    p = c.proxy()
    p.record = True
    c.start_worker("w1", url=p.url)
    return p


def _wire_messages(p, until):
    """The worker's frames once one of its text messages contains until:
    a list of decoded JSON objects and ("binary", stream) tuples."""
    def done():
        return any(op == 1 and until in d for op, d in p.frames())
    h.wait_for(done, timeout=10, what=until.decode())
    return [json.loads(d) if op == 1 else ("binary", d[0])
            for op, d in p.frames() if op in (1, 2)]


def test_buffered_exec_costs_no_started_message_and_reply_has_pid():
    with h.Cluster(workers={}) as c:
        p = _recorded_worker(c)
        r = h.ok(_exec(c, cmd="echo hi"))
        assert r["stdout"] == "hi\n" and r["exit_code"] == 0, r
        assert isinstance(r["pid"], int) and r["pid"] > 0, r
        msgs = _wire_messages(p, b'"t":"end"')
        kinds = [m.get("t") for m in msgs if isinstance(m, dict)]
        assert "end" in kinds and "started" not in kinds, kinds


def test_stream_started_goes_on_the_wire_before_any_output():
    with h.Cluster(workers={}) as c:
        p = _recorded_worker(c)
        evs, fin = c.connect().call_events({
            "op": "exec", "worker": "w1", "stream": True,
            "cmd": "echo a; echo b >&2"})
        h.ok(fin)
        assert evs[0]["event"] == "started", evs
        msgs = _wire_messages(p, b'"t":"end"')
        first = [i for i, m in enumerate(msgs) if m == ("binary", 1) or
                 m == ("binary", 2) or
                 (isinstance(m, dict) and m.get("t") == "started")]
        assert first and isinstance(msgs[first[0]], dict), msgs
        assert msgs[first[0]]["pid"] == evs[0]["pid"], (msgs, evs)


def test_stream_final_reply_has_no_output_fields():
    with h.Cluster() as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "worker": "w1", "stream": True, "cmd": "echo a"})
        h.ok(fin)
        assert fin["exit_code"] == 0, fin
        assert "stdout" not in fin and "stderr" not in fin, fin
        assert "stdout_b64" not in fin and "stderr_b64" not in fin, fin


def test_stream_output_arrives_while_command_runs():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": 1,
                  "cmd": "echo early; sleep 30", "timeout": 20})
        _, m = ctl.recv_until(lambda m: m.get("event") == "stdout",
                              timeout=10)
        assert m["data"] == "early\n", m


def test_stream_started_pid_is_the_process():
    with h.Cluster() as c:
        path, cmd = _pidfile_cmd(c, "pid")
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": 1,
                  "cmd": cmd, "timeout": 20})
        _, st = ctl.recv_until(lambda m: m.get("event") == "started")
        assert _read_pid(path) == st["pid"], st


def test_merge_stderr_sends_stderr_to_stdout():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo a; echo b >&2; echo c",
                       merge_stderr=True))
        assert r["stdout"] == "a\nb\nc\n", r
        assert not r.get("stderr"), r


# ------------------------------------------------------------ timeout

def test_timeout_kills_and_reports_timed_out():
    with h.Cluster() as c:
        t0 = time.monotonic()
        r = h.ok(_exec(c, argv=["sleep", "30"], timeout=0.5))
        assert time.monotonic() - t0 < h.T(8), "not killed in time"
        assert r["timed_out"] is True, r
        assert r["signal"] == "TERM" and r["exit_code"] is None, r


def test_timeout_reason_is_timeout():
    with h.Cluster() as c:
        r = h.ok(_exec(c, argv=["sleep", "30"], timeout=0.5))
        assert r.get("reason") == "timeout", r


def test_timeout_keeps_output_so_far():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo before; sleep 30", timeout=0.5))
        assert r["stdout"] == "before\n" and r["timed_out"] is True, r


def test_timeout_kills_whole_process_group():
    with h.Cluster() as c:
        path, cmd = _pidfile_cmd(c, "child", "exec sleep 30")
        r = h.ok(_exec(c, cmd="sh -c '%s' & wait" % cmd, timeout=2))
        assert r["timed_out"] is True, r
        pid = _read_pid(path)
        h.wait_for(lambda: not _alive(pid), timeout=5,
                   what="background child to die")


def test_timeout_escalates_to_kill_after_kill_grace():
    with h.Cluster() as c:
        t0 = time.monotonic()
        r = h.ok(_exec(c, cmd="trap '' TERM; sleep 30", timeout=0.5,
                       kill_grace=0.5))
        assert time.monotonic() - t0 < h.T(8), "not killed in time"
        assert r["timed_out"] is True and r["signal"] == "KILL", r


def test_timeout_default_kill_grace_is_two_seconds():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="trap '' TERM; sleep 30", timeout=0.3))
        assert r["signal"] == "KILL", r
        assert 2000 <= r["duration_ms"] < h.T(8000), r


def test_no_timeout_when_command_finishes_first():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo quick", timeout=10))
        assert r["timed_out"] is False and r["exit_code"] == 0, r


# ------------------------------------------------------------ max_output

def test_max_output_truncates_and_flags_stdout():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="head -c 100000 /dev/zero | tr '\\0' a; "
                       "echo end >&2", max_output=1000))
        assert r["stdout"] == "a" * 1000, len(r.get("stdout", ""))
        assert r["stdout_truncated"] is True, r
        assert not r.get("stderr_truncated"), r


def test_max_output_lets_command_run_on():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="head -c 300000 /dev/zero | tr '\\0' a; "
                       "echo end >&2; exit 7", max_output=100))
        assert r["exit_code"] == 7 and r["signal"] is None, r
        assert r["stderr"] == "end\n", r


def test_max_output_applies_to_stderr_separately():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="head -c 5000 /dev/zero | tr '\\0' e >&2; "
                       "echo out", max_output=10))
        assert r["stderr"] == "e" * 10 and r["stderr_truncated"] is True, r
        assert r["stdout"] == "out\n" and not r.get("stdout_truncated"), r


def test_output_under_max_output_is_not_truncated():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="head -c 50000 /dev/zero | tr '\\0' a",
                       max_output=50000))
        assert len(r["stdout"]) == 50000, len(r["stdout"])
        assert not r.get("stdout_truncated"), r


def test_output_past_max_output_makes_a_yielding_exec_yield_at_once():
    """A command that may yield and passes max_output yields at once
    (not after yield_after, and without waiting on its output): the
    reply holds at most max_output bytes, the reads the rest, every byte
    once."""
    n = 400000
    with h.Cluster() as c:
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1",
                           "cmd": "seq 1 %d" % n, "max_output": 65536,
                           "yield_after": 600}, timeout=30))
        assert r.get("running") is True, "ended before the yield"
        assert not r.get("stdout_truncated"), r
        assert 0 < len(r["stdout"]) <= 65536, len(r["stdout"])
        got, hd = r["stdout"], r["handle"]
        while True:
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 2}))
            got += r.get("stdout", "")
            if not r.get("running"):
                break
        assert r["exit_code"] == 0 and not r.get("timed_out"), r
        assert got == "".join("%d\n" % i for i in range(1, n + 1)), \
            len(got)


def test_output_past_max_output_of_a_yielding_exec_is_never_lost():
    """yield_after set, and the command prints more than max_output and
    ends at once: either the reply is final, with max_output bytes and
    the truncated flag, or it yielded and the reads hold the rest."""
    with h.Cluster() as c:
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1",
                           "cmd": "head -c 200000 /dev/zero | tr '\\0' a",
                           "max_output": 1000, "yield_after": 600},
                          timeout=30))
        if not r.get("running"):
            assert r["stdout"] == "a" * 1000 and r["stdout_truncated"], \
                (len(r.get("stdout", "")), r.get("stdout_truncated"))
            return
        got, hd = r["stdout"], r["handle"]
        while r.get("running"):
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 2}))
            got += r.get("stdout", "")
        assert got == "a" * 200000, len(got)


def test_user_runs_the_command_with_that_users_ids_and_groups():
    """user (root worker only): uid, gid and supplementary groups are the
    user's, set in the child from ids looked up before the fork; a PTY
    session gets the same."""
    import pwd
    if os.geteuid() != 0:
        raise h.Skip("needs root")
    pw = pwd.getpwnam("nobody")
    want = "%d %d %s" % (pw.pw_uid, pw.pw_gid, " ".join(
        str(g) for g in sorted(set(os.getgrouplist("nobody", pw.pw_gid)))))
    cmd = "echo $(id -u) $(id -g) $(id -G | tr ' ' '\\n' | sort -nu)"
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd=cmd, user="nobody", cwd="/"))
        assert r["stdout"].split() == want.split(), (r["stdout"], want)
        ctl = c.connect()
        s = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                           "argv": ["sh"], "user": "nobody", "cwd": "/"}))
        r = h.ok(ctl.call({"op": "session.run", "session": s["session"],
                           "cmd": cmd, "timeout": 10}))
        assert r["output"].split() == want.split(), (r["output"], want)


# ------------------------------------------------------------ limits

def _limits(c, **lim):
    r = h.ok(_exec(c, argv=["cat", "/proc/self/limits"], limits=lim))
    res = {}
    for line in r["stdout"].splitlines()[1:]:
        m = re.match(r"^(.+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            res[m.group(1).strip()] = (m.group(2), m.group(3))
    return res


def test_limits_nofile_sets_rlimit():
    if h.VALGRIND:
        raise h.Skip("valgrind refuses a file limit below its own fds")
    with h.Cluster() as c:
        assert _limits(c, nofile=64)["Max open files"] == ("64", "64")


def test_limits_cpu_s_sets_rlimit():
    with h.Cluster() as c:
        assert _limits(c, cpu_s=7)["Max cpu time"][0] == "7"


def test_limits_fsize_mb_sets_rlimit():
    with h.Cluster() as c:
        assert _limits(c, fsize_mb=1)["Max file size"][0] == \
            str(1024 * 1024)


def test_limits_nproc_sets_rlimit():
    with h.Cluster() as c:
        assert _limits(c, nproc=50)["Max processes"][0] == "50"


def test_limits_memory_mb_sets_a_memory_rlimit():
    with h.Cluster() as c:
        lim = _limits(c, memory_mb=256)
        want = str(256 * 1024 * 1024)
        assert want in (lim["Max address space"][0],
                        lim["Max data size"][0],
                        lim["Max resident set"][0]), lim


def test_limits_fsize_stops_big_write():
    with h.Cluster() as c:
        p = os.path.join(c.tmp, "big")
        r = h.ok(_exec(c, cmd="head -c 3000000 /dev/zero > %s" % p,
                       limits={"fsize_mb": 1}))
        assert r["exit_code"] != 0 or r["signal"] == "XFSZ", r
        assert os.path.getsize(p) <= 1024 * 1024


# ------------------------------------------------------------ yield / read

def test_yield_after_returns_handle_and_output_so_far():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo first; sleep 30", yield_after=1,
                       timeout=20))
        assert r["running"] is True and isinstance(r["handle"], str), r
        assert r["stdout"] == "first\n", r


def test_yield_after_not_reached_gives_normal_reply():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="echo quick", yield_after=5))
        assert r["exit_code"] == 0 and r["stdout"] == "quick\n", r
        assert not r.get("running"), r


def test_read_returns_new_output_and_final_status():
    with h.Cluster() as c:
        ctl = c.connect()
        r = h.ok(_exec(c, ctl, cmd="echo one; sleep 0.8; echo two; exit 4",
                       yield_after=0.3))
        hd = r["handle"]
        got = r.get("stdout", "")       # "one\n", unless the yield was first
        deadline = time.monotonic() + h.T(15)
        while True:
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 2}))
            got += r.get("stdout", "")
            if not r["running"]:
                break
            assert time.monotonic() < deadline
        assert got == "one\ntwo\n", got
        assert r["exit_code"] == 4 and r["signal"] is None, r


def test_read_timeout_returns_ok_while_running():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = h.ok(_exec(c, ctl, cmd="sleep 30", yield_after=0.2,
                        timeout=20))["handle"]
        t0 = time.monotonic()
        r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 0.5}))
        assert r["running"] is True and r.get("stdout", "") == "", r
        assert time.monotonic() - t0 >= 0.4


def test_read_until_waits_for_regex():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = h.ok(_exec(c, ctl, cmd="echo a; sleep 0.5; echo 'port=81'; "
                        "sleep 30", yield_after=0.2, timeout=20))["handle"]
        r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 10,
                           "until": "port=[0-9]+"}))
        assert "port=81" in r["stdout"] and r["running"] is True, r


def test_read_gives_each_byte_once():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = h.ok(_exec(c, ctl, cmd="echo a; sleep 0.5; echo b; sleep 30",
                        yield_after=0.2, timeout=20))
        r = h.ok(ctl.call({"op": "read", "handle": hd["handle"],
                           "timeout": 10, "until": "b"}))
        # "a" comes with the yield, or with the read if the yield was first
        assert hd["stdout"] + r["stdout"] == "a\nb\n", (hd, r)
        r = h.ok(ctl.call({"op": "read", "handle": hd["handle"]}))
        assert r.get("stdout", "") == "", r


def test_yielded_command_survives_client_going_away():
    with h.Cluster() as c:
        ctl = c.connect()
        path, cmd = _pidfile_cmd(c, "pid",
                                 "sleep 1; echo later; exit 6")
        hd = h.ok(_exec(c, ctl, cmd=cmd, yield_after=0.3))["handle"]
        ctl.close()
        ctl2 = c.connect()
        got = ""
        deadline = time.monotonic() + h.T(15)
        while True:
            r = h.ok(ctl2.call({"op": "read", "handle": hd, "timeout": 2}))
            got += r.get("stdout", "")
            if not r["running"]:
                break
            assert time.monotonic() < deadline
        assert got == "later\n" and r["exit_code"] == 6, (got, r)


def test_read_unknown_handle_is_no_such_handle():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "read", "handle": "nope-123"}),
              "no_such_handle")


def test_handle_is_gone_after_exit_was_read():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = h.ok(_exec(c, ctl, cmd="sleep 0.5", yield_after=0.1))["handle"]
        h.wait_for(lambda: not h.ok(ctl.call(
            {"op": "read", "handle": hd, "timeout": 1}))["running"],
            timeout=10, what="exit via read")
        h.err(ctl.call({"op": "read", "handle": hd}), "no_such_handle")


# ------------------------------------------------------------ write / signal

def _start_stream(ctl, **kw):
    req = {"op": "exec", "worker": "w1", "stream": True, "id": "x"}
    req.update(kw)
    ctl.send(req)
    _, st = ctl.recv_until(lambda m: m.get("id") == "x" and
                           m.get("event") == "started", timeout=15)
    return st["handle"]


def test_write_feeds_stdin_and_eof_ends_it():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = _start_stream(ctl, cmd="cat; echo END", stdin_open=True)
        h.ok(ctl.call({"op": "write", "handle": hd, "data": "hello\n"}))
        h.ok(ctl.call({"op": "write", "handle": hd, "eof": True}))
        evs, fin = ctl.collect("x")
        h.ok(fin)
        so = "".join(e["data"] for e in evs if e.get("event") == "stdout")
        assert so == "hello\nEND\n" and fin["exit_code"] == 0, (evs, fin)


def test_write_output_comes_back_before_eof():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = _start_stream(ctl, cmd="cat", stdin_open=True, timeout=20)
        h.ok(ctl.call({"op": "write", "handle": hd, "data": "ping\n"}))
        _, m = ctl.recv_until(lambda m: m.get("event") == "stdout")
        assert m["data"] == "ping\n", m


def test_write_data_b64_and_eof_in_one_request():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = _start_stream(ctl, cmd="od -An -tx1 | tr -d ' \\n'",
                           stdin_open=True)
        h.ok(ctl.call({"op": "write", "handle": hd, "eof": True,
                       "data_b64": base64.b64encode(b"\x00\xff").decode()}))
        evs, fin = ctl.collect("x")
        so = "".join(e["data"] for e in evs if e.get("event") == "stdout")
        assert so == "00ff", evs


def test_write_from_another_connection():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = _start_stream(ctl, cmd="cat", stdin_open=True)
        other = c.connect()
        h.ok(other.call({"op": "write", "handle": hd, "data": "x",
                         "eof": True}))
        evs, fin = ctl.collect("x")
        assert h.ok(fin)["exit_code"] == 0
        assert "".join(e["data"] for e in evs
                       if e.get("event") == "stdout") == "x", evs


def test_write_unknown_handle_is_no_such_handle():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "write", "handle": "nope-1",
                                "data": "x"}), "no_such_handle")


def test_signal_sends_named_signal():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = _start_stream(ctl, argv=["sleep", "30"], timeout=20)
        h.ok(ctl.call({"op": "signal", "handle": hd, "signal": "INT"}))
        _, fin = ctl.collect("x")
        assert fin["signal"] == "INT" and fin["exit_code"] is None, fin


def test_signal_reaches_whole_process_group():
    with h.Cluster() as c:
        ctl = c.connect()
        path, cmd = _pidfile_cmd(c, "child")
        hd = _start_stream(ctl, cmd="sh -c '%s' & wait" % cmd, timeout=20)
        pid = _read_pid(path)
        h.ok(ctl.call({"op": "signal", "handle": hd, "signal": "HUP"}))
        h.wait_for(lambda: not _alive(pid), timeout=5,
                   what="background child to die")
        h.ok(ctl.collect("x")[1])


def test_signal_on_yielded_handle():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = h.ok(_exec(c, ctl, argv=["sleep", "30"], yield_after=0.2,
                        timeout=20))["handle"]
        h.ok(ctl.call({"op": "signal", "handle": hd, "signal": "KILL"}))
        r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 10}))
        if r["running"]:
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 10}))
        assert r["running"] is False and r["signal"] == "KILL", r


def test_signal_unknown_name_is_bad_request():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = _start_stream(ctl, argv=["sleep", "30"], timeout=20)
        h.err(ctl.call({"op": "signal", "handle": hd,
                        "signal": "NOSUCHSIG"}), "bad_request")


def test_signal_unknown_handle_is_no_such_handle():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "signal", "handle": "nope-2",
                                "signal": "TERM"}), "no_such_handle")


# ------------------------------------------------------------ broadcast

def test_broadcast_to_worker_list_gives_result_per_worker():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "workers": ["w1", "w2"], "cmd": "echo hi"})
        h.ok(fin)
        res = [e for e in evs if e.get("event") == "result"]
        assert sorted(e["worker"] for e in res) == ["w1", "w2"], evs
        assert sorted(x["worker"] for x in fin["results"]) == ["w1", "w2"]
        for x in fin["results"]:
            assert x["stdout"] == "hi\n" and x["exit_code"] == 0, x


def test_broadcast_by_labels_targets_matching_workers():
    with h.Cluster(workers={"w1": {"r": "a"}, "w2": {"r": "b"},
                            "w3": {"r": "a"}}) as c:
        fin = h.ok(c.connect().call({"op": "exec", "labels": {"r": "a"},
                                     "cmd": "true"}))
        assert sorted(x["worker"] for x in fin["results"]) == ["w1", "w3"]


def test_broadcast_reports_unknown_worker_per_worker():
    with h.Cluster(workers={"w1": {}}) as c:
        fin = h.ok(c.connect().call({"op": "exec", "cmd": "echo x",
                                     "workers": ["w1", "ghost"]}))
        by = {x["worker"]: x for x in fin["results"]}
        assert by["w1"]["ok"] is True and by["w1"]["stdout"] == "x\n", by
        assert by["ghost"]["ok"] is False, by
        assert by["ghost"]["error"]["code"] == "no_such_worker", by


def test_broadcast_stream_events_name_their_worker():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "workers": ["w1", "w2"], "stream": True,
            "cmd": "echo hi"})
        h.ok(fin)
        outs = [e for e in evs if e.get("event") == "stdout"]
        assert sorted(e["worker"] for e in outs) == ["w1", "w2"], evs


def test_broadcast_max_concurrency_1_runs_one_at_a_time():
    with h.Cluster(workers={"w1": {}, "w2": {}, "w3": {}}) as c:
        fin = h.ok(c.connect().call({
            "op": "exec", "workers": ["w1", "w2", "w3"],
            "max_concurrency": 1,
            "cmd": "date +%s%N; sleep 0.3; date +%s%N"}))
        spans = sorted(tuple(int(x) for x in r["stdout"].split())
                       for r in fin["results"])
        for a, b in zip(spans, spans[1:]):
            assert a[1] <= b[0], "overlapping runs: %r" % spans


def test_broadcast_runs_in_parallel_by_default():
    with h.Cluster(workers={"w1": {}, "w2": {}, "w3": {}}) as c:
        t0 = time.monotonic()
        h.ok(c.connect().call({"op": "exec", "workers": ["w1", "w2", "w3"],
                               "cmd": "sleep 1"}))
        assert time.monotonic() - t0 < 2.5 * h.SCALE


# ------------------------------------------------------------ connection

def test_pipelined_requests_all_get_replies():
    with h.Cluster() as c:
        ctl = c.connect()
        lines = b"".join(b'{"op":"hello","id":%d}\n' % i for i in range(50))
        ctl.send_raw(lines)
        got = set()
        for _ in range(50):
            m = ctl.recv()
            h.ok(m)
            got.add(m["id"])
        assert got == set(range(50))


def test_pipelined_fast_request_is_not_held_behind_slow_one():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 2; echo slow",
                  "id": "slow"})
        ctl.send({"op": "exec", "worker": "w1", "cmd": "echo fast",
                  "id": "fast"})
        first = ctl.recv(timeout=15)
        assert first["id"] == "fast" and first["stdout"] == "fast\n", first
        second = ctl.recv(timeout=15)
        assert second["id"] == "slow" and second["stdout"] == "slow\n"


def test_half_close_still_delivers_replies_then_closes():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 0.5; echo a",
                  "id": 1})
        ctl.send({"op": "hello", "id": 2})
        ctl.shutdown_write()
        m1 = ctl.recv(timeout=15)
        m2 = ctl.recv(timeout=15)
        by = {m["id"]: m for m in (m1, m2)}
        assert by[1]["stdout"] == "a\n" and by[2]["ok"] is True, by
        assert ctl.at_eof(timeout=5), "server did not close after replies"


def test_close_cancels_running_exec():
    with h.Cluster() as c:
        ctl = c.connect()
        path, cmd = _pidfile_cmd(c, "pid")
        ctl.send({"op": "exec", "worker": "w1", "cmd": cmd, "timeout": 60})
        pid = _read_pid(path)
        assert _alive(pid)
        ctl.close()
        h.wait_for(lambda: not _alive(pid), timeout=10,
                   what="cancelled command to die")


def test_close_cancel_sends_term_then_kill():
    with h.Cluster() as c:
        ctl = c.connect()
        mark = os.path.join(c.tmp, "got-term")
        # The pid file is written once the trap is set: a TERM that came
        # before it would kill the shell without a trace.
        path, cmd = _pidfile_cmd(
            c, "pid", "while :; do sleep 0.1; done")
        cmd = "exec 2>/dev/null; trap 'echo term > %s' TERM; %s" % (
            mark, cmd)
        ctl.send({"op": "exec", "worker": "w1", "cmd": cmd, "timeout": 60,
                  "stream": True})
        pid = _read_pid(path)
        ctl.close()
        h.wait_for(lambda: not _alive(pid), timeout=10,
                   what="cancelled command to die")
        assert os.path.exists(mark), "TERM was not sent first"


def test_close_cancel_leaves_output_open_during_grace():
    # A TERM handler that prints (as shells and servers do when they shut
    # down) must not die of SIGPIPE: the grace period is for cleaning up.
    with h.Cluster() as c:
        ctl = c.connect()
        mark = os.path.join(c.tmp, "cleaned-up")
        # The trap is set before the pid file is written: a TERM that
        # came before it would kill the shell without a trace.
        path, cmd = _pidfile_cmd(c, "pid", "while :; do sleep 0.1; done")
        cmd = "trap 'echo bye; echo bye >&2; sleep 0.2; echo done > %s; " \
            "exit 0' TERM; %s" % (mark, cmd)
        ctl.send({"op": "exec", "worker": "w1", "cmd": cmd, "timeout": 60,
                  "stream": True})
        pid = _read_pid(path)
        ctl.close()
        h.wait_for(lambda: not _alive(pid), timeout=10,
                   what="cancelled command to end")
        assert os.path.exists(mark), "TERM handler did not get to finish"


def test_close_does_not_cancel_other_connections_exec():
    with h.Cluster() as c:
        a, b = c.connect(), c.connect()
        b.send({"op": "exec", "worker": "w1", "cmd": "sleep 1; echo b",
                "id": "b"})
        a.send({"op": "exec", "worker": "w1", "cmd": "sleep 30", "id": "a"})
        a.close()
        r = b.recv(timeout=15)
        assert r["id"] == "b" and r["stdout"] == "b\n", r


def test_close_does_not_cancel_yielded_exec():
    with h.Cluster() as c:
        ctl = c.connect()
        path, cmd = _pidfile_cmd(c, "pid")
        h.ok(_exec(c, ctl, cmd=cmd, yield_after=0.3, timeout=60))
        pid = _read_pid(path)
        ctl.close()
        h.ok(c.connect().call({"op": "hello"}))  # server has seen the close
        time.sleep(0.5)
        assert _alive(pid), "yielded command was cancelled on close"


def test_running_exec_on_one_worker_does_not_block_another():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 30",
                  "id": "slow", "timeout": 20})
        t0 = time.monotonic()
        r = h.ok(_exec(c, worker="w2", cmd="echo x"))
        assert time.monotonic() - t0 < h.T(5), "exec held up"
        assert r["stdout"] == "x\n"


def test_many_concurrent_execs_on_one_worker():
    with h.Cluster() as c:
        ctl = c.connect()
        for i in range(20):
            ctl.send({"op": "exec", "worker": "w1", "id": i,
                      "cmd": "sleep 0.3; echo %d" % i})
        got = {}
        t0 = time.monotonic()
        for _ in range(20):
            m = h.ok(ctl.recv(timeout=30))
            got[m["id"]] = m["stdout"]
        assert got == {i: "%d\n" % i for i in range(20)}, got
        assert time.monotonic() - t0 < h.T(5), "execs were serialised"


def test_large_output_is_returned_intact():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="seq 1 100000", max_output=10000000))
        assert r["stdout"] == "".join("%d\n" % i
                                      for i in range(1, 100001)), \
            len(r.get("stdout", ""))


def test_exec_on_unknown_worker_is_no_such_worker_at_once():
    with h.Cluster() as c:
        t0 = time.monotonic()
        h.err(_exec(c, worker="ghost", cmd="true"), "no_such_worker")
        assert time.monotonic() - t0 < h.T(3)


def test_request_split_across_writes_is_assembled():
    with h.Cluster() as c:
        ctl = c.connect()
        line = b'{"op":"exec","worker":"w1","cmd":"echo split","id":9}\n'
        for part in (line[:5], line[5:30], line[30:]):
            ctl.send_raw(part)
            time.sleep(0.1)
        r = h.ok(ctl.recv())
        assert r["id"] == 9 and r["stdout"] == "split\n", r


def test_thousand_requests_in_one_write_all_answered():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b"".join(b'{"op":"hello","id":%d}\n' % i
                              for i in range(1000)))
        ids = [h.ok(ctl.recv())["id"] for _ in range(1000)]
        assert sorted(ids) == list(range(1000))


def test_client_that_reads_late_gets_every_reply():
    import threading
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        n = 20000
        data = b"".join(b'{"op":"hello","id":%d,"pad":"%s"}\n' % (i, b"p" * 100)
                        for i in range(n))
        errs = []

        def sender():
            try:
                ctl.sock.sendall(data)
            except Exception as e:  # reported below
                errs.append(e)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        time.sleep(1)           # let the server's output back up
        got = set()
        for _ in range(n):
            got.add(h.ok(ctl.recv(timeout=30))["id"])
        t.join(h.T(30))
        assert not errs, errs
        assert got == set(range(n))


def test_slow_stream_reader_gets_all_output_in_order():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "s",
                  "cmd": "seq 1 300000"})
        time.sleep(1.5)         # do not read while the command runs
        evs, fin = ctl.collect("s", timeout=60)
        h.ok(fin)
        text = b"".join(h.out(e, "data") for e in evs
                        if e.get("event") == "stdout")
        assert text == b"".join(b"%d\n" % i for i in range(1, 300001)), \
            len(text)
        assert fin["exit_code"] == 0, fin


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_controller_memory_stays_bounded_for_unread_stream():
    with h.Cluster() as c:
        ctl = c.connect()
        base = _rss_kb(c.serve.pid)
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "s",
                  "cmd": "head -c 300000000 /dev/zero | tr '\\0' a",
                  "timeout": 60})
        peak = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:   # the client reads nothing
            peak = max(peak, _rss_kb(c.serve.pid))
            time.sleep(0.1)
        assert peak - base < 64 * 1024, \
            "serve grew by %d KiB with an unread stream" % (peak - base)


def test_stream_output_is_resumed_without_loss_after_link_drop():
    import signal
    with h.Cluster(serve_args=["--resume-window", "30", "--ping-interval",
                               "1", "--ping-timeout", "1"]) as c:
        ctl = c.connect()
        sub = c.connect()
        h.ok(sub.call({"op": "subscribe", "topics": ["workers"]}))
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "s",
                  "cmd": "i=0; while [ $i -lt 40 ]; do i=$((i+1)); "
                         "echo line$i; sleep 0.1; done"})
        _, first = ctl.recv_until(lambda m: m.get("event") == "stdout",
                                  timeout=10)
        w = c.workers["w1"]
        os.kill(w.pid, signal.SIGSTOP)
        try:
            sub.recv_until(lambda m: m.get("event") == "worker" and
                           m.get("state") == "disconnected", timeout=20)
        finally:
            os.kill(w.pid, signal.SIGCONT)
        evs, fin = ctl.collect("s", timeout=60)
        h.ok(fin)
        text = first["data"] + "".join(e["data"] for e in evs
                                       if e.get("event") == "stdout")
        want = "".join("line%d\n" % i for i in range(1, 41))
        assert text == want, text
        assert fin["exit_code"] == 0, fin


def test_serve_max_output_is_the_default_limit():
    with h.Cluster(serve_args=["--max-output", "1000"]) as c:
        r = h.ok(_exec(c, cmd="head -c 5000 /dev/zero | tr '\\0' a"))
        assert r["stdout"] == "a" * 1000 and r["stdout_truncated"] is True, \
            len(r.get("stdout", ""))


def test_stream_merge_stderr_sends_no_stderr_events():
    with h.Cluster() as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "worker": "w1", "stream": True, "merge_stderr": True,
            "cmd": "echo a; echo b >&2; echo c"})
        h.ok(fin)
        assert not [e for e in evs if e.get("event") == "stderr"], evs
        so = "".join(e["data"] for e in evs if e.get("event") == "stdout")
        assert so == "a\nb\nc\n", evs


def test_every_event_echoes_string_id_with_its_type():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "7",
                  "cmd": "echo a; echo b >&2"})
        msgs = []
        while True:
            m = ctl.recv(timeout=15)
            msgs.append(m)
            if h.is_final(m):
                break
        assert len(msgs) >= 3, msgs
        for m in msgs:
            assert m.get("id") == "7" and isinstance(m["id"], str), m


def test_every_event_echoes_integer_id_with_its_type():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": 7,
                  "cmd": "echo a"})
        msgs = []
        while True:
            m = ctl.recv(timeout=15)
            msgs.append(m)
            if h.is_final(m):
                break
        for m in msgs:
            assert m.get("id") == 7 and type(m["id"]) is int, m


def test_broadcast_result_events_echo_id():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "workers": ["w1", "w2"], "cmd": "true",
                  "id": "b"})
        msgs = []
        while True:
            m = ctl.recv(timeout=15)
            msgs.append(m)
            if h.is_final(m):
                break
        res = [m for m in msgs if m.get("event") == "result"]
        assert len(res) == 2 and all(m["id"] == "b" for m in res), msgs


def test_utf8_argv_and_env_round_trip():
    with h.Cluster() as c:
        r = h.ok(_exec(c, argv=["sh", "-c", 'printf "%s|%s" "$1" "$V"',
                                "sh", "h\u00e9llo \u2603"],
                       env={"V": "\u20ac"}))
        assert r["stdout"] == "h\u00e9llo \u2603|\u20ac", r


def test_stdin_open_without_stream_does_not_hang():
    # "stdin_open: true ... (needs stream)": a buffered exec with it must
    # not hang forever waiting for a write nobody can address.
    with h.Cluster() as c:
        r = _exec(c, cmd="cat", stdin_open=True, timeout=3, call_timeout=20)
        if r["ok"]:
            assert r["timed_out"] is True or r["exit_code"] == 0, r
        else:
            assert r["error"]["code"] == "bad_request", r


def test_default_max_output_is_16mib():
    with h.Cluster() as c:
        r = h.ok(_exec(c, cmd="head -c 17825792 /dev/zero | tr '\\0' a",
                       call_timeout=120))
        assert len(r["stdout"]) == 16 * 1024 * 1024, len(r["stdout"])
        assert r["stdout_truncated"] is True, {k: v for k, v in r.items()
                                               if k != "stdout"}


def test_stream_long_line_without_newline_arrives_whole():
    with h.Cluster() as c:
        evs, fin = c.connect().call_events({
            "op": "exec", "worker": "w1", "stream": True,
            "cmd": "head -c 5000000 /dev/zero | tr '\\0' a"}, timeout=120)
        h.ok(fin)
        total = sum(len(e["data"]) for e in evs
                    if e.get("event") == "stdout")
        assert total == 5000000, total


def test_signal_on_finished_handle_is_no_such_handle():
    with h.Cluster() as c:
        ctl = c.connect()
        evs, fin = ctl.call_events({"op": "exec", "worker": "w1",
                                    "stream": True, "cmd": "true"})
        h.ok(fin)
        hd = [e for e in evs if e.get("event") == "started"][0]["handle"]
        h.err(ctl.call({"op": "signal", "handle": hd, "signal": "TERM"}),
              "no_such_handle")


def test_execs_running_returns_to_zero():
    with h.Cluster() as c:
        ctl = c.connect()
        for i in range(5):
            ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 0.2",
                      "id": i})
        for _ in range(5):
            h.ok(ctl.recv(timeout=15))
        h.wait_for(lambda: ctl.call({"op": "stats"})["execs_running"] == 0,
                   timeout=5, what="execs_running == 0")
        w = [x for x in ctl.call({"op": "workers"})["workers"]
             if x["id"] == "w1"][0]
        assert w["running"] == 0, w


def test_broadcast_to_twenty_workers():
    names = ["n%02d" % i for i in range(20)]
    with h.Cluster(workers={n: {"fleet": "x"} for n in names}) as c:
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "workers", "labels": {"fleet": "x"}}))
        assert len(r["workers"]) == 20, r
        fin = h.ok(ctl.call({"op": "exec", "labels": {"fleet": "x"},
                             "cmd": "echo $$"}, timeout=60))
        assert sorted(x["worker"] for x in fin["results"]) == names
        assert all(x["ok"] and x["exit_code"] == 0 for x in fin["results"])


h.run_main(globals())

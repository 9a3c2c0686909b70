"""session.run end to end: a command line run in a session's shell, its
output and status returned, and what a person who attaches sees of it:
the commands as typed, nothing of the machinery, the terminal as the
shell left it."""

import json
import os
import re
import time

import harness as h
from faultproxy import FaultProxy
from test_sessions import (BASH, ENV, Stream, _bash, _list, _open,
                           _procs_in_session, _read, _run, _wait_proc,
                           _write)

# What the machinery of a run types or prints; a person never sees it.
HELPER = (b"]sandd;", b"sandd;B", b"sandd;E", b"stty", b"printf",
          b"command eval")


def _no_helper(data):
    for bad in HELPER:
        assert bad not in data, "%r in %r" % (bad, data[-800:])


def _login_bash(c):
    """bash as a user's login shell: rc files that take a while (a run
    asked for at once comes before the first prompt) and a prompt that
    says who and where."""
    rc = os.path.join(c.tmp, "login-rc")
    with open(rc, "w") as f:
        f.write("sleep 0.5; PS1='\\u@\\h:\\w\\$ '\n")
    return {"argv": ["bash", "--rcfile", rc, "-i"],
            "env": {"LC_ALL": "C.UTF-8", "HISTFILE": "/dev/null"}}


def _shells(c):
    """Session kinds a run must work in: a login bash, bash without rc
    files, dash."""
    return (_login_bash(c), {"argv": BASH, "env": ENV},
            {"argv": ["dash", "-i"], "env": ENV})


# ------------------------------------------------------------ run

def test_session_run_keeps_state_and_returns_only_output():
    with h.Cluster() as c:
        ctl = c.connect()
        r, _ = _bash(ctl, attach=False)
        sid = r["session"]
        x = _run(ctl, sid, "echo hello")
        assert x["output"] == "hello\n" and x["exit_code"] == 0, x
        assert x["timed_out"] is False
        assert _run(ctl, sid, "cd /tmp")["output"] == ""
        assert _run(ctl, sid, "pwd")["output"] == "/tmp\n"
        _run(ctl, sid, "V='a b'; export W=2")
        assert _run(ctl, sid, 'echo "$V-$W"')["output"] == "a b-2\n"
        _run(ctl, sid, "greet() { echo \"hi $1\"; }")
        assert _run(ctl, sid, "greet you")["output"] == "hi you\n"
        x = _run(ctl, sid, "false")
        assert x["exit_code"] == 1 and x["output"] == "", x
        x = _run(ctl, sid, "(exit 42)")
        assert x["exit_code"] == 42, x
        x = _run(ctl, sid, "echo out; echo err >&2; exit_not_a_cmd 2>/dev/null")
        assert x["output"] == "out\nerr\n" and x["exit_code"] == 127, x


def test_session_run_handles_stdin_no_newline_ps1_and_set_e():
    with h.Cluster() as c:
        ctl = c.connect()
        r, _ = _bash(ctl, attach=False)
        sid = r["session"]
        x = _run(ctl, sid, "cat </dev/null", timeout=10)
        assert x["output"] == "" and x["exit_code"] == 0, x
        x = _run(ctl, sid, "read x <<< hi; echo \"got $x\"", timeout=10)
        assert x["output"] == "got hi\n", x
        x = _run(ctl, sid, "printf abc")
        assert x["output"] == "abc" and x["exit_code"] == 0, x
        _run(ctl, sid, "PS1='>>> weird $ '; PROMPT_COMMAND='echo PC'")
        x = _run(ctl, sid, "echo after-ps1")
        assert x["output"] == "after-ps1\n", x
        x = _run(ctl, sid, "set -e; false")
        assert x["exit_code"] == 1, x
        x = _run(ctl, sid, "echo still-here")
        assert x["output"] == "still-here\n", x
        x = _run(ctl, sid, "echo 'tab\there'; echo \"q'uote\"")
        assert x["output"] == "tab\there\nq'uote\n", x
        x = _run(ctl, sid, "echo one\necho two")
        assert x["output"] == "one\ntwo\n", x
        x = _run(ctl, sid, "echo 'h\u00e9' %s \\\\n")
        assert x["output"] == "h\u00e9 %s \\n\n", x
        x = _run(ctl, sid, "echo (")
        assert x["exit_code"] == 2 and "syntax" in x["output"], x
        x = _run(ctl, sid, "echo ok")
        assert x["output"] == "ok\n", x
        # half a line typed by someone is dropped, not run with ours
        _write(ctl, sid, "echo typed-but-not-entered")
        x = _run(ctl, sid, "echo clean")
        assert x["output"] == "clean\n", x


def test_session_run_timeout_interrupts_and_session_goes_on():
    with h.Cluster() as c:
        ctl = c.connect()
        r, _ = _bash(ctl, attach=False)
        sid = r["session"]
        t0 = time.monotonic()
        x = _run(ctl, sid, "echo started; sleep 30", timeout=1)
        dt = time.monotonic() - t0
        assert x["timed_out"] is True and x["output"] == "started\n", x
        assert dt < h.T(5), dt
        assert not [p for p in _procs_in_session(r["pid"])
                    if p[1] == "sleep"]
        x = _run(ctl, sid, "echo after")
        assert x["output"] == "after\n" and x["timed_out"] is False, x


def test_session_run_exit_ends_session():
    with h.Cluster() as c:
        ctl = c.connect()
        r, _ = _bash(ctl, attach=False)
        x = _run(ctl, r["session"], "exit 5")
        assert x["exit_code"] == 5 and x.get("exited") is True, x
        ls = [s for s in _list(ctl) if s["session"] == r["session"]]
        assert ls[0]["exited"] is True and ls[0]["exit_code"] == 5, ls


def test_session_run_in_dash():
    with h.Cluster() as c:
        ctl = c.connect()
        r = _open(ctl, argv=["dash", "-i"], env=ENV, attach=False)
        sid = r["session"]
        assert _run(ctl, sid, "cd /; X=7")["exit_code"] == 0
        x = _run(ctl, sid, "echo $X $(pwd)")
        assert x["output"] == "7 /\n", x
        x = _run(ctl, sid, "set -e; false")
        assert x["exit_code"] == 1, x
        x = _run(ctl, sid, "echo (")
        assert x["exit_code"] == 2, x
        assert _run(ctl, sid, "printf xyz")["output"] == "xyz"


def test_session_runs_are_queued_in_order():
    with h.Cluster() as c:
        ctl = c.connect()
        r, _ = _bash(ctl, attach=False)
        sid = r["session"]
        for i in range(5):
            ctl.send({"op": "session.run", "session": sid, "id": i,
                      "cmd": "sleep 0.0%d; echo n%d" % (5 - i, i)})
        for i in range(5):
            _, x = ctl.collect(i, timeout=30)
            assert h.ok(x)["output"] == "n%d\n" % i, x


def test_session_run_timeout_returns_what_the_command_printed():
    # issue 14, bug 1: it returned "e\n\n\u001b[?" or the prompt
    with h.Cluster() as c:
        ctl = c.connect()
        for kw in _shells(c):
            sid = _open(ctl, attach=False, **kw)["session"]
            for _ in range(2):
                x = _run(ctl, sid, "echo before; sleep 30", timeout=1)
                assert x["output"] == "before\n", (kw, x)
                assert x["timed_out"] is True, x


def test_session_after_runs_a_person_sees_the_commands_as_typed():
    # issue 14, bug 2: echo stayed off, the replay showed the helpers
    with h.Cluster() as c:
        ctl = c.connect()
        sid = _open(ctl, attach=False, **_login_bash(c))["session"]
        assert _run(ctl, sid, "echo hi")["output"] == "hi\n"
        x = _run(ctl, sid, "echo before; sleep 30", timeout=1)
        assert x["timed_out"] is True, x
        assert _run(ctl, sid, "cd /tmp && echo in-$((6*7))")["exit_code"] \
            == 0
        ctl2 = c.connect()
        h.ok(ctl2.call({"op": "session.attach", "session": sid,
                        "since": 0}))
        st = Stream(ctl2, sid)
        st.wait_for("in-42\r\n")
        _no_helper(st.data)
        # the first prompt, then the line as typed
        assert re.match(rb"(?s).+echo hi\r\n", st.data), st.data
        assert re.search(rb"[\r\n]hi\r\n", st.data), st.data
        assert b"echo before; sleep 30\r\n" in st.data, st.data
        assert b"^C" in st.data, st.data
        # typed by a person: echoed, and stty shows echo on
        cut = len(st.data)
        _write(ctl2, sid, "stty -a\r")
        st.wait_for("echoke")
        seen = st.data[cut:]
        assert b"stty -a\r\n" in seen, seen
        assert re.search(rb"(^|\s)echo(\s|$)", seen), seen
        assert not re.search(rb"(^|\s)-echo(\s|$)", seen), seen


def test_session_run_leaves_no_marker_or_nonce_in_the_kept_output():
    # what session.read, replays and recordings see: the ring itself
    with h.Cluster() as c:
        ctl = c.connect()
        for kw in _shells(c):
            sid = _open(ctl, attach=False, **kw)["session"]
            assert _run(ctl, sid, "echo one")["output"] == "one\n"
            assert _run(ctl, sid, "false")["exit_code"] == 1
            _run(ctl, sid, "echo two; sleep 30", timeout=0.5)
            assert _run(ctl, sid, "echo three")["output"] == "three\n"

            def settled():
                # The prompt may come after the reply: read once it has.
                rd = _read(ctl, sid, since=0, max_bytes=1 << 20)
                ls = [s for s in _list(ctl) if s["session"] == sid]
                return rd if ls[0]["offset"] == rd["offset"] else None
            rd = h.wait_for(settled, what="the session's offset to settle")
            data = h.out(rd, "data")
            _no_helper(data)
            assert b"echo three\r\n" in data, (kw, data)


def test_session_run_sent_again_after_a_link_drop_runs_once():
    with h.Cluster(workers={}) as c:
        p = FaultProxy(c.port)
        c.proxies.append(p)         # closed at cleanup
        c.start_worker("w1", url=p.url)
        ctl = c.connect()
        r = _open(ctl, attach=False, argv=BASH, env=ENV)
        f = os.path.join(c.tmp, "count")
        # the link drops while the line runs: the call goes again
        ctl.send({"op": "session.run", "session": r["session"], "id": 1,
                  "cmd": "echo x >> %s; sleep 1; wc -l < %s" % (f, f)})
        h.wait_for(lambda: os.path.exists(f), what="the run to start")
        assert p.reset() >= 1
        _, x = ctl.collect(1, timeout=30)
        assert h.ok(x)["output"] == "1\n", x
        # the answer is lost: the call that goes again gets it
        s, g = os.path.join(c.tmp, "began"), os.path.join(c.tmp, "done")
        ctl.send({"op": "session.run", "session": r["session"], "id": 2,
                  "cmd": "touch %s; sleep 0.5; echo x >> %s; wc -l < %s; "
                  "touch %s" % (s, f, f, g)})
        h.wait_for(lambda: os.path.exists(s), what="the run to start")
        p.blackhole(True)
        h.wait_for(lambda: os.path.exists(g), what="the run to end")
        time.sleep(0.3)
        p.reset()
        p.blackhole(False)
        _, x = ctl.collect(2, timeout=30)
        assert h.ok(x)["output"] == "2\n", x
        with open(f) as fp:
            assert fp.read() == "x\nx\n"


def test_session_run_queued_runs_of_a_client_gone_are_dropped():
    with h.Cluster() as c:
        ctl = c.connect()
        r = _open(ctl, attach=False, argv=BASH, env=ENV)
        f = os.path.join(c.tmp, "log")
        for i, cmd in enumerate(("sleep 1; echo a >> %s", "echo b >> %s",
                                 "echo c >> %s")):
            ctl.send({"op": "session.run", "session": r["session"],
                      "id": i, "cmd": cmd % f})
        _wait_proc(r["pid"], "sleep")
        ctl.close()
        h.wait_for(lambda: os.path.exists(f), what="the first run")
        time.sleep(0.5)
        with open(f) as fp:
            assert fp.read() == "a\n"
        x = _run(c.connect(), r["session"], "echo ok")
        assert x["output"] == "ok\n", x


def test_session_run_recording_shows_the_commands_as_typed():
    # --record keeps what the worker sent: no marker, no helper line
    with h.Cluster() as c:
        rec = os.path.join(c.tmp, "rec")
        os.makedirs(rec)
        c.serve_args = ["--record", rec]
        c.restart_server()
        ctl = c.connect()
        sid = _open(ctl, attach=False, argv=BASH, env=ENV)["session"]
        assert _run(ctl, sid, "echo rec-$((6*7))")["output"] == "rec-42\n"
        _run(ctl, sid, "echo two; sleep 30", timeout=0.5)
        assert _run(ctl, sid, "true")["exit_code"] == 0
        h.ok(ctl.call({"op": "session.close", "session": sid}))
        with open(os.path.join(rec, sid + ".cast")) as f:
            lines = [json.loads(line) for line in f]
        out = "".join(e[2] for e in lines[1:] if e[1] == "o").encode()
        _no_helper(out)
        assert b"echo rec-$((6*7))\r\n" in out, out
        assert re.search(rb"[\r\n]rec-42\r\n", out), out


if __name__ == "__main__":
    h.run_main(globals())

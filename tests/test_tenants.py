"""Tenants on one controller: access rules (--acl), ownership of sessions
and handles by uid, rate and in-flight limits, connections per uid, the
audit trail, session recordings and bounded clients.

Two throwaway local users (and a group) are made for the run and removed
at exit, whatever happens. A client "runs as" one of them: a forked child
takes that user's uid, gid and groups, connects to the control socket and
hands the connected socket back (SO_PEERCRED names the connecting
process), so the test itself talks through it.
"""

import atexit
import base64
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import harness as h

SUFFIX = secrets.token_hex(3)
GROUP = "sddg" + SUFFIX


class User:
    def __init__(self, name):
        self.name = name
        self.uid = self.gid = None
        self.groups = []


USERS = {"a": User("sdda" + SUFFIX), "b": User("sddb" + SUFFIX)}
_made = {"users": [], "group": False}


def _cleanup_users():
    for name in _made["users"]:
        subprocess.run(["userdel", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    if _made["group"]:
        subprocess.run(["groupdel", GROUP], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    _made["users"] = []
    _made["group"] = False


def _sigterm(signum, frame):
    _cleanup_users()
    sys.exit(1)


def setup_users():
    """Make the users once (b is in GROUP); they go at exit."""
    if _made["users"]:
        return
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        raise h.Skip("needs root and useradd to make throwaway users")
    atexit.register(_cleanup_users)
    signal.signal(signal.SIGTERM, _sigterm)
    subprocess.run(["groupadd", GROUP], check=True)
    _made["group"] = True
    for key, u in USERS.items():
        args = ["useradd", "-M", "-N", "-s", "/usr/sbin/nologin"]
        if key == "b":
            args += ["-G", GROUP]
        subprocess.run(args + [u.name], check=True)
        _made["users"].append(u.name)
        import pwd
        pw = pwd.getpwnam(u.name)
        u.uid, u.gid = pw.pw_uid, pw.pw_gid
        u.groups = os.getgrouplist(u.name, u.gid)


class PeerCtl(h.Ctl):
    """A control connection made by another uid (see the module doc)."""

    def __init__(self, sock):
        self.path = None
        self.sock = sock
        self.sock.settimeout(h.T(10))
        self.buf = b""
        self.backlog = []
        self.next_id = 1
        self.closed = False


def connect_as(c, user):
    """A Ctl to c's control socket, connected by user."""
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups(user.groups)
            os.setgid(user.gid)
            os.setuid(user.uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(c.control)
            socket.send_fds(a, [b"s"], [s.fileno()])
            code = 0
        finally:
            os._exit(code)
    a.close()
    try:
        msg, fds, _, _ = socket.recv_fds(b, 1, 1)
    finally:
        b.close()
        os.waitpid(pid, 0)
    assert fds, "the child could not connect as %s" % user.name
    ctl = PeerCtl(socket.socket(fileno=fds[0]))
    c.ctls.append(ctl)
    return ctl


class TCluster(h.Cluster):
    """A Cluster whose control socket other uids can reach: a 0755
    folder, socket mode 0666 (the access rules decide instead)."""

    def _start_serve(self, new_port=False):
        os.chmod(self.tmp, 0o711)
        pub = os.path.join(self.tmp, "pub")
        os.makedirs(pub, mode=0o755, exist_ok=True)
        os.chmod(pub, 0o755)
        self.control = os.path.join(pub, "control.sock")
        return super()._start_serve(new_port)

    def _serve_argv(self):
        return super()._serve_argv() + ["--control-mode", "0666"]


def acl_file(c, text, name="acl"):
    p = os.path.join(c.tmp if c is not None else "/tmp", name)
    with open(p, "w") as f:
        f.write(text)
    return p


def cluster(tmp_acl=None, workers=None, args=(), **kw):
    """A TCluster with two labelled workers and the given serve args."""
    setup_users()
    if workers is None:
        workers = {"w1": {"team": "a"}, "w2": {"team": "b"}}
    return TCluster(workers=workers, serve_args=list(args), **kw)


def with_acl(text, workers=None, args=(), **kw):
    """A cluster whose --acl file holds text (written before start)."""
    setup_users()
    folder = os.path.join("/tmp", "sandd-acl-" + secrets.token_hex(4))
    os.makedirs(folder)
    path = os.path.join(folder, "acl")
    with open(path, "w") as f:
        f.write(text.format(a=USERS["a"], b=USERS["b"], group=GROUP))
    atexit.register(shutil.rmtree, folder, True)
    c = cluster(workers=workers, args=["--acl", path] + list(args), **kw)
    c.acl_path = path
    return c


def ids(reply, key="workers", field="id"):
    return sorted(w[field] for w in h.ok(reply)[key])


def denied(r, *words):
    h.err(r, "denied")
    for w in words:
        assert w in r["error"]["message"], r


# ------------------------------------------------------------ access rules

def test_uid_rule_allows_its_ops_on_its_workers_only():
    with with_acl("# who workers ops\nuid:{a.uid} label:team=a "
                  "exec,session\n") as c:
        a = connect_as(c, USERS["a"])
        h.ok(a.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        r = a.call({"op": "exec", "worker": "w2", "cmd": "true"})
        denied(r, c.acl_path + ":2", "w2")
        r = a.call({"op": "stat", "worker": "w1", "path": "/"})
        denied(r, c.acl_path + ":2", "files")
        r = a.call({"op": "workers"})
        denied(r, "view")


def test_no_matching_rule_is_denied_but_hello_answers():
    with with_acl("uid:{a.uid} * *\n") as c:
        b = connect_as(c, USERS["b"])
        h.ok(b.call({"op": "hello"}))
        r = b.call({"op": "exec", "worker": "w1", "cmd": "true"})
        denied(r, "no rule", c.acl_path, str(USERS["b"].uid))


def test_user_group_and_gid_rules_match_by_name_and_number():
    with with_acl("user:{a.name} id:w1 view\n"
                  "group:{group} id:w2 view\n") as c:
        a, b = connect_as(c, USERS["a"]), connect_as(c, USERS["b"])
        assert ids(a.call({"op": "workers"})) == ["w1"]
        assert ids(b.call({"op": "workers"})) == ["w2"]
    # gid:N matches a supplementary group too (SO_PEERGROUPS)
    import grp
    gid = grp.getgrnam(GROUP).gr_gid
    with with_acl("gid:%d id:w* view\n" % gid) as c:
        assert ids(connect_as(c, USERS["b"]).call({"op": "workers"})) == \
            ["w1", "w2"]
        denied(connect_as(c, USERS["a"]).call({"op": "workers"}),
               "no rule")


def test_worker_lists_join_id_and_label_globs():
    with with_acl("* id:x*,label:team=b view,exec\n",
                  workers={"w1": {"team": "a"}, "w2": {"team": "b"},
                           "x9": {}}) as c:
        a = connect_as(c, USERS["a"])
        assert ids(a.call({"op": "workers"})) == ["w2", "x9"]
        h.ok(a.call({"op": "exec", "worker": "x9", "cmd": "true"}))
        denied(a.call({"op": "exec", "worker": "w1", "cmd": "true"}),
               ":1", "w1")


def test_broadcast_by_labels_reaches_only_covered_workers():
    with with_acl("uid:{a.uid} label:team=a,label:team=c exec\n",
                  workers={"w1": {"team": "a"}, "w2": {"team": "b"},
                           "w3": {"team": "c"}}) as c:
        a = connect_as(c, USERS["a"])
        for team in ("a", "b", "c"):
            r = h.ok(a.call({"op": "exec", "labels": {"team": team},
                             "cmd": "echo hi"}))
            got = sorted(x["worker"] for x in r["results"])
            assert got == ({"a": ["w1"], "b": [], "c": ["w3"]}[team]), r
        r = a.call({"op": "exec", "workers": ["w1", "w2"], "cmd": "true"})
        denied(r, "w2")


def test_wait_and_subscribe_see_only_covered_workers():
    with with_acl("uid:{a.uid} id:w1,id:w3 view\n") as c:
        a = connect_as(c, USERS["a"])
        denied(a.call({"op": "wait", "worker": "w2", "timeout": 1}), "w2")
        r = h.ok(a.call({"op": "wait", "labels": {}, "count": 1,
                         "timeout": 5}))
        assert [w["id"] for w in r["workers"]] == ["w1"], r
        h.ok(a.call({"op": "subscribe", "topics": ["workers"]}))
        c.start_worker("w4")
        c.start_worker("w3")
        _, ev = a.recv_until(lambda m: m.get("event") == "worker",
                             timeout=15)
        assert ev["worker"] == "w3", ev


def test_view_rule_lists_but_runs_nothing():
    with with_acl("uid:{a.uid} * view\n") as c:
        a = connect_as(c, USERS["a"])
        assert ids(a.call({"op": "workers"})) == ["w1", "w2"]
        h.ok(a.call({"op": "stats"}))
        h.ok(a.call({"op": "session.list"}))
        for req in ({"op": "exec", "worker": "w1", "cmd": "true"},
                    {"op": "session.open", "worker": "w1"},
                    {"op": "get", "worker": "w1", "path": "/etc/hostname"},
                    {"op": "read", "handle": "h-x"}):
            denied(a.call(req), ":1")


def test_workspaces_only_rule_wants_a_workspace():
    with with_acl("uid:{a.uid} * exec,session,files,workspaces-only\n") \
            as c:
        a = connect_as(c, USERS["a"])
        for req in ({"op": "exec", "worker": "w1", "cmd": "true"},
                    {"op": "session.open", "worker": "w1"},
                    {"op": "put", "worker": "w1", "path": "/tmp/x",
                     "data": "x"},
                    {"op": "stat", "worker": "w1", "path": "/"}):
            denied(a.call(req), "workspaces-only", ":1")


def test_workspaces_only_rule_gets_no_host_network_unless_granted():
    with with_acl("uid:{a.uid} * workspace,exec,workspaces-only\n"
                  "uid:{b.uid} * view,workspace,workspaces-only,"
                  "host-network\n", workers={"w1": {}}) as c:
        a = connect_as(c, USERS["a"])
        denied(a.call({"op": "workspace.create", "worker": "w1",
                       "network": "host"}), "host-network", ":1")
        h.ok(a.call({"op": "workspace.create", "worker": "w1",
                     "name": "own", "network": "none"}))
        b = connect_as(c, USERS["b"])
        r = h.ok(b.call({"op": "workspace.create", "worker": "w1",
                         "network": "host"}))
        listed = h.ok(b.call({"op": "workspace.list"}))["workspaces"]
        assert [w["network"] for w in listed] == ["host"], (r, listed)


def test_root_passes_every_rule():
    with with_acl("uid:{a.uid} id:nothing view\n") as c:
        ctl = c.connect()
        h.ok(ctl.call({"op": "exec", "worker": "w2", "cmd": "true"}))
        assert ids(ctl.call({"op": "workers"})) == ["w1", "w2"]


def test_sighup_rereads_rules_and_a_bad_file_keeps_the_old():
    with with_acl("uid:{a.uid} id:w1 view\n") as c:
        a = connect_as(c, USERS["a"])
        assert ids(a.call({"op": "workers"})) == ["w1"]
        with open(c.acl_path, "w") as f:
            f.write("uid:%d id:w2 view\n" % USERS["a"].uid)
        c.serve.send_signal(signal.SIGHUP)
        h.wait_for(lambda: ids(a.call({"op": "workers"})) == ["w2"],
                   what="the new rule")
        with open(c.acl_path, "w") as f:
            f.write("# fine\nuid:%d id:w1 bogus\n" % USERS["a"].uid)
        c.serve.send_signal(signal.SIGHUP)
        h.wait_for(lambda: "keeping the old rules" in c.log(),
                   what="the refusal in the log")
        assert "%s:2:" % c.acl_path in c.log(), c.log()
        assert "bogus" in c.log()
        assert ids(a.call({"op": "workers"})) == ["w2"]


def test_bad_acl_file_stops_the_start_naming_the_line():
    setup_users()
    with open("/tmp/sandd-bad-acl-%s" % SUFFIX, "w") as f:
        f.write("uid:1 *\n")
    try:
        p = h.run_sandd(["serve", "--listen", "127.0.0.1:%d" %
                         h.free_port(), "--control", "/tmp/x.sock",
                         "--acl", f.name])
        assert p.returncode != 0
        assert (f.name + ":1:").encode() in p.stderr, p.stderr
    finally:
        os.unlink(f.name)


# ------------------------------------------------------------ ownership

def test_other_uids_sessions_and_handles_are_not_there():
    with cluster() as c:
        a, b = connect_as(c, USERS["a"]), connect_as(c, USERS["b"])
        sid = h.ok(a.call({"op": "session.open", "worker": "w1",
                           "cmd": "sleep 60", "attach": False}))["session"]
        hd = h.ok(a.call({"op": "exec", "worker": "w1", "cmd": "sleep 60",
                          "yield_after": 0}))["handle"]
        for req in ({"op": "session.attach", "session": sid},
                    {"op": "session.write", "session": sid, "data": "x"},
                    {"op": "session.read", "session": sid},
                    {"op": "session.close", "session": sid},
                    {"op": "signal", "session": sid, "signal": "INT"},
                    {"op": "write", "session": sid, "data": "x"}):
            h.err(b.call(req), "no_such_session")
        for req in ({"op": "read", "handle": hd},
                    {"op": "signal", "handle": hd, "signal": "KILL"}):
            h.err(b.call(req), "no_such_handle")
        assert h.ok(b.call({"op": "session.list"}))["sessions"] == []
        mine = h.ok(a.call({"op": "session.list"}))["sessions"]
        assert [s["session"] for s in mine] == [sid]
        # root sees and may end everything
        root = c.connect()
        assert sid in [s["session"] for s in
                       h.ok(root.call({"op": "session.list"}))["sessions"]]
        h.ok(root.call({"op": "signal", "handle": hd, "signal": "KILL"}))
        h.ok(a.call({"op": "session.close", "session": sid}))


def test_subscribers_hear_only_of_their_own_sessions():
    with cluster() as c:
        a, b = connect_as(c, USERS["a"]), connect_as(c, USERS["b"])
        h.ok(b.call({"op": "subscribe", "topics": ["sessions"]}))
        sid = h.ok(a.call({"op": "session.open", "worker": "w1",
                           "cmd": "true", "attach": False}))["session"]
        mine = h.ok(b.call({"op": "session.open", "worker": "w1",
                            "cmd": "true", "attach": False}))["session"]
        _, ev = b.recv_until(lambda m: m.get("event") == "session")
        assert ev["session"] == mine, (ev, sid)


def test_ownership_holds_across_a_controller_restart():
    with cluster() as c:
        a = connect_as(c, USERS["a"])
        sid = h.ok(a.call({"op": "session.open", "worker": "w1",
                           "cmd": "sleep 60", "attach": False}))["session"]
        c.restart_server()
        root = c.connect()
        h.wait_for(lambda: sid in [s["session"] for s in h.ok(root.call(
            {"op": "session.list"}))["sessions"]], what="adoption")
        a, b = connect_as(c, USERS["a"]), connect_as(c, USERS["b"])
        h.err(b.call({"op": "session.attach", "session": sid}),
              "no_such_session")
        h.ok(a.call({"op": "session.attach", "session": sid}))
        h.ok(a.call({"op": "session.close", "session": sid}))


# ------------------------------------------------------------ limits

def test_rate_limit_is_hit_then_recovers_even_for_root():
    with cluster(args=["--rate", "2/s,burst=2"]) as c:
        ctl = c.connect()
        # Sent at once: one by one, a slow round trip would let a token in.
        for i in range(3):
            ctl.send({"op": "exec", "id": "r%d" % i, "worker": "w1",
                      "cmd": "true"})
        for i in range(2):
            h.ok(ctl.collect("r%d" % i)[1])
        r = h.err(ctl.collect("r2")[1], "rate_limited")
        wait = r["error"]["retry_after"]
        assert 0 < wait <= 0.5 + 0.01, r
        # views are not rate limited
        h.ok(ctl.call({"op": "workers"}))
        time.sleep(wait)
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        # another uid has a bucket of its own
        a = connect_as(c, USERS["a"])
        h.ok(a.call({"op": "exec", "worker": "w1", "cmd": "true"}))


def test_python_shim_retries_or_raises_rate_limited():
    sys.path.insert(0, os.path.join(h.REPO, "contrib", "python"))
    import sandd
    with cluster(args=["--rate", "1/s,burst=1"]) as c:
        with sandd.Client(c.control) as cl:
            cl.exec("w1", "true")
            try:
                cl.exec("w1", "true")
                raise AssertionError("no RateLimited")
            except sandd.RateLimited as e:
                assert 0 < e.retry_after <= 1.01, e.error
        time.sleep(1)
        with sandd.Client(c.control, retry=True) as cl:
            t0 = time.monotonic()
            for _ in range(3):
                assert cl.exec("w1", "true").exit_code == 0
            assert time.monotonic() - t0 >= 1.5


def test_max_inflight_refuses_past_the_cap():
    with cluster(args=["--max-inflight", "2"]) as c:
        ctl = c.connect()
        for i in (1, 2, 3):
            ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 1",
                      "id": i})
        h.err(ctl.collect(3)[1], "limit")
        h.ok(ctl.collect(1)[1])
        h.ok(ctl.collect(2)[1])
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))


def test_max_conns_refuses_a_uid_with_an_error_line():
    with cluster(args=["--max-conns", "2"]) as c:
        a1, a2 = connect_as(c, USERS["a"]), connect_as(c, USERS["a"])
        h.ok(a1.call({"op": "hello"}))
        a3 = connect_as(c, USERS["a"])
        r = a3.recv()
        h.err(r, "limit")
        assert "--max-conns 2" in r["error"]["message"], r
        assert a3.at_eof()
        # another uid is not counted against it
        h.ok(connect_as(c, USERS["b"]).call({"op": "hello"}))
        a2.close()
        h.wait_for(lambda: connect_as(c, USERS["a"]).call(
            {"op": "hello"}).get("ok"), what="a free slot")


def test_metrics_count_requests_by_uid_and_op_and_refusals():
    with with_acl("uid:{a.uid} id:w1 exec\n",
                  args=["--rate", "1/m"]) as c:
        a = connect_as(c, USERS["a"])
        h.ok(a.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        h.err(a.call({"op": "exec", "worker": "w1", "cmd": "true"}),
              "rate_limited")
        denied(a.call({"op": "exec", "worker": "w2", "cmd": "true"}))
        status, _, body = h.http_get(c.port, "/metrics")
        text = body.decode()
        assert 'sandd_requests_total{uid="%d",op="exec"} 3' % \
            USERS["a"].uid in text, text
        assert "sandd_denied_total 1" in text, text
        assert "sandd_rate_limited_total 1" in text, text
        st = h.ok(c.connect().call({"op": "stats"}))
        assert st["denied"] == 1 and st["rate_limited"] == 1, st


# ------------------------------------------------------------ audit

def audit_lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def test_audit_has_the_fields_and_no_secret():
    setup_users()
    tmp = "/tmp/sandd-audit-" + secrets.token_hex(4)
    os.makedirs(tmp)
    atexit.register(shutil.rmtree, tmp, True)
    audit = os.path.join(tmp, "audit.log")
    secrets_used = {
        "env": "envsecret-" + secrets.token_hex(8),
        "stdin": "stdinsecret-" + secrets.token_hex(8),
        "file": "filesecret-" + secrets.token_hex(8),
        "keys": "keysecret-" + secrets.token_hex(8),
        "write": "writesecret-" + secrets.token_hex(8),
    }
    with cluster(args=["--audit", audit], token=True) as c:
        secrets_used["token"] = c.token_value
        a = connect_as(c, USERS["a"])
        r = h.ok(a.call({"op": "exec", "worker": "w1", "id": "e1",
                         "argv": ["sh", "-c", "cat >/dev/null; exit 3"],
                         "env": {"SECRET": secrets_used["env"]},
                         "stdin": secrets_used["stdin"], "cwd": "/"}))
        assert r["exit_code"] == 3
        put = h.ok(a.call({"op": "put", "worker": "w1",
                           "path": os.path.join(tmp, "f"),
                           "data": secrets_used["file"]}))
        h.ok(a.call({"op": "get", "worker": "w1",
                     "path": os.path.join(tmp, "f")}))
        sid = h.ok(a.call({"op": "session.open", "worker": "w1",
                           "cmd": "cat >/dev/null", "attach": False,
                           "env": {"S2": secrets_used["env"]}}))["session"]
        h.ok(a.call({"op": "session.write", "session": sid,
                     "data": secrets_used["keys"]}))
        hd = h.ok(a.call({"op": "exec", "worker": "w1", "cmd": "cat",
                          "stdin_open": True, "yield_after": 0}))["handle"]
        h.ok(a.call({"op": "write", "handle": hd,
                     "data": secrets_used["write"], "eof": True}))
        h.ok(a.call({"op": "session.close", "session": sid}))
        h.err(a.call({"op": "stat", "worker": "w1", "path": "/nonexist"}),
              "io_error")
        # a worker with a wrong token is refused
        wrong = os.path.join(tmp, "wrong-token")
        with open(wrong, "w") as f:
            f.write("wrong-%s\n" % secrets.token_hex(8))
        os.chmod(wrong, 0o600)
        c.start_worker("bad", wait=False, args=["--token-file", wrong])
        h.wait_for(lambda: any(l.get("event") == "worker.refused"
                               for l in audit_lines(audit)),
                   what="worker.refused")
        c.stop_worker("w2")
        h.wait_for(lambda: any(l.get("event") == "worker.disconnect"
                               for l in audit_lines(audit)),
                   what="worker.disconnect")
    text = open(audit).read()
    for name, value in secrets_used.items():
        assert value not in text, "%s found in the audit file" % name
    lines = audit_lines(audit)
    by_op = {}
    for l in lines:
        by_op.setdefault(l.get("op") or l.get("event"), []).append(l)
    e = by_op["exec"][0]
    for k in ("ts", "uid", "pid", "op", "id", "worker", "argv", "cwd",
              "ok", "exit_code", "duration_ms"):
        assert k in e, (k, e)
    assert e["uid"] == USERS["a"].uid and e["id"] == "e1"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["ts"])
    assert by_op["put"][0]["sha256"] == put["sha256"]
    assert by_op["put"][0]["bytes"] == len(secrets_used["file"])
    assert by_op["session.write"][0]["worker"] == "w1"
    assert by_op["stat"][0]["error"] == "io_error"
    assert by_op["worker.connect"][0]["addr"].startswith("127.0.0.1:")
    assert "reason" in by_op["worker.refused"][0]
    # sandd audit filters and prints them
    p = h.run_sandd(["audit", "--uid", USERS["a"].name, "--worker", "w1",
                     audit])
    out = p.stdout.decode()
    assert p.returncode == 0 and "exec w1 ok" in out, out
    assert "worker.connect" not in out
    p = h.run_sandd(["audit", "--since", "1h", "--json", audit])
    assert len(p.stdout.decode().splitlines()) == len(lines)
    p = h.run_sandd(["audit", "--since", "2999-01-01", audit])
    assert p.stdout == b""


def test_audit_file_is_reopened_after_rotation():
    with cluster(args=["--audit", "audit.log"]) as c:
        path = os.path.join(c.tmp, "audit.log")
        ctl = c.connect()
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        os.rename(path, path + ".1")
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "echo 1"}))
        c.serve.send_signal(signal.SIGHUP)
        h.wait_for(lambda: os.path.exists(path), what="a new audit file")
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "echo 2"}))
        old, new = audit_lines(path + ".1"), audit_lines(path)
        assert [l.get("cmd") for l in old if l.get("op")] == \
            ["true", "echo 1"], old
        assert [l.get("cmd") for l in new] == ["echo 2"], new


# ------------------------------------------------------------ recordings

def play_on_a_terminal(argv):
    """Run argv on a terminal of script(1) (asciinema cat wants /dev/tty);
    what it printed."""
    p = subprocess.run(["script", "-qec", " ".join(map(shlex.quote, argv)),
                        "/dev/null"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=h.T(30))
    return p.stdout


def test_recording_plays_back_with_asciinema():
    if shutil.which("asciinema") is None:
        raise h.Skip("asciinema is not installed (scripts/deps.sh)")
    setup_users()
    rec = "/tmp/sandd-rec-" + secrets.token_hex(4)
    os.makedirs(rec)
    atexit.register(shutil.rmtree, rec, True)
    with cluster(args=["--record", rec]) as c:
        ctl = c.connect()
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "cmd": "sleep 0.5; echo recorded-$((6*7)); "
                             "sleep 1", "rows": 30, "cols": 100}))["session"]
        h.ok(ctl.call({"op": "session.resize", "session": sid,
                       "rows": 40, "cols": 120}))
        ctl.recv_until(lambda m: m.get("event") == "exit", timeout=15)
        h.ok(ctl.call({"op": "session.close", "session": sid}))
    path = os.path.join(rec, sid + ".cast")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path) as f:
        lines = [json.loads(l) for l in f]
    assert lines[0]["version"] == 2 and lines[0]["width"] == 100 and \
        lines[0]["height"] == 30, lines[0]
    assert [l[2] for l in lines[1:] if l[1] == "r"] == ["120x40"], lines
    out = play_on_a_terminal(["asciinema", "cat", path])
    assert b"recorded-42" in out, out


def test_a_full_disk_ends_the_recording_not_the_session():
    setup_users()
    rec = "/tmp/sandd-full-" + secrets.token_hex(4)
    os.makedirs(rec)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                       rec], stderr=subprocess.DEVNULL).returncode != 0:
        os.rmdir(rec)
        raise h.Skip("cannot mount a small tmpfs")
    try:
        with cluster(args=["--record", rec]) as c:
            ctl = c.connect()
            sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                                 "cmd": "head -c 3000000 /dev/zero | "
                                 "tr '\\0' x; echo; echo end-$((1+1))"}))[
                "session"]
            _, ex = ctl.recv_until(lambda m: m.get("event") == "exit",
                                   timeout=30)
            assert ex["exit_code"] == 0
            r = h.ok(ctl.call({"op": "session.read", "session": sid,
                               "since": 2990000}))
            assert "end-2" in r["data"], r
            h.wait_for(lambda: "recording" in c.log() and
                       "stops" in c.log(), what="the log line")
    finally:
        subprocess.run(["umount", rec])
        shutil.rmtree(rec, True)


# ------------------------------------------------------------ bounded

def test_a_subscriber_that_does_not_read_gets_overflow():
    """A subscriber that stops reading while workers come and go: its
    events are dropped past the bound, it is told once (overflow), that
    subscription ends, and the connection still works."""
    with cluster(workers={"w1": {}}) as c:
        lazy = c.connect()
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        h.ok(lazy.call({"op": "subscribe", "topics": ["workers",
                                                      "sessions"]}))
        # Each round is two events; a few thousand pass the bound.
        n = iter(range(1000))
        h.wait_for(lambda: hello_flood(c.port, 1, "flood-%d" % next(n))
                   and "subscription to workers ends" in c.log(),
                   timeout=60, interval=0,
                   what="the subscription to overflow")
        _, over = lazy.recv_until(lambda m: m.get("event") == "overflow",
                                  timeout=60)
        assert over["topic"] == "workers", over
        h.ok(lazy.call({"op": "hello"}))


def hello_flood(port, seconds, wid="flood"):
    """A worker that says hello and leaves, again and again, for seconds
    (each time with the secret it was given, so the id stays its): every
    round is a connected and a disconnected event. Returns the rounds."""
    secret, rounds = "", 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        head = ["GET /ws HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
                "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Key: " + base64.b64encode(
                    os.urandom(16)).decode(), "Sandd-Worker-Id: " + wid]
        if secret:
            head.append("Sandd-Worker-Secret: " + secret)
        hello = json.dumps({"t": "hello", "proto": 1, "id": wid,
                            "boot": os.urandom(16).hex(), "labels": {},
                            "channels": []}).encode()
        assert len(hello) < 126
        # one masked text frame, mask of zeros
        frame = bytes([0x81, 0x80 | len(hello), 0, 0, 0, 0]) + hello
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() +
                         frame)
            data = b""
            while b'"secret"' not in data or not data.endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        m = re.search(rb'"secret":"([^"]+)"', data)
        if m:
            secret = m.group(1).decode()
            rounds += 1
    return rounds


def test_clients_that_never_read_leave_memory_bounded():
    asan = "asan" in os.path.basename(h.SANDD)
    with cluster(workers={"w1": {}}) as c:
        ctl = c.connect()
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        base = h.rss_kb(c.serve.pid)
        lazy = []
        for i in range(6):
            s = c.connect()
            s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.send({"op": "exec", "worker": "w1", "stream": True,
                    "cmd": "cat /dev/zero | base64"})
            lazy.append(s)
        sub = c.connect()
        sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sub.send({"op": "subscribe", "topics": ["workers", "sessions"]})
        rounds = hello_flood(c.port, 8)
        peak = h.rss_kb(c.serve.pid)
        deadline = time.monotonic() + h.T(3)
        while time.monotonic() < deadline:
            peak = max(peak, h.rss_kb(c.serve.pid))
            time.sleep(0.1)
        grown = (peak - base) / 1024.0
        print("    controller RSS grew by %.1f MiB (%d hellos)" % (grown,
                                                               rounds))
        assert grown < (128 if asan else 32), grown


if __name__ == "__main__":
    h.run_main(globals())

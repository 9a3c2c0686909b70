"""One worker, two controllers: `sandd worker --server-url A --server-url
B` keeps a link to each. Commands run through either; a session opened
through one is seen, attached and typed into through the other; one
controller killed leaves the other serving, and it sees the session
again when it comes back."""

import os
import signal
import subprocess
import time

import harness as h
from faultproxy import FaultProxy
from test_sessions import BASH, ENV, Stream, _list, _read, _write


class Second:
    """A second `sandd serve` beside a Cluster's, with its own control
    socket, port and state folder (so its own key: another controller)."""

    def __init__(self, c):
        self.c = c
        self.control = os.path.join(c.tmp, "control2.sock")
        self.state = os.path.join(c.tmp, "serve2-state")
        self.port = h.free_port()
        self.url = "ws://127.0.0.1:%d/ws" % self.port
        self.log = os.path.join(c.tmp, "serve2.log")
        c.log_paths["serve2"] = self.log
        self.proc = None
        self.start()

    def start(self):
        argv = [h.SANDD, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--control", self.control, "--state-dir", self.state, "-v"]
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                cwd=self.c.tmp, start_new_session=True,
                env=h._clean_env({"TEST_SANDD_CLUSTER": self.c.marker}))
        # cleanup stops whatever is in workers
        self.c.workers["serve2#%d" % self.proc.pid] = self.proc
        h.wait_for(self._ready, timeout=15, what="second controller")

    def _ready(self):
        if self.proc.poll() is not None:
            raise h.HarnessError("second serve exited:\n%s" %
                                 h._tail(self.log))
        try:
            ctl = h.Ctl(self.control)
        except OSError:
            return False
        ctl.close()
        return True

    def kill(self):
        h._killpg(self.proc, signal.SIGKILL)
        self.proc.wait(h.T(10))

    def connect(self):
        ctl = h.Ctl(self.control)
        self.c.ctls.append(ctl)
        return ctl


def _wait_worker(ctl, name="w1", timeout=15):
    def up():
        r = ctl.call({"op": "wait", "worker": name,
                      "timeout": 0.5 * h.SCALE}, timeout=10)
        return r.get("ok")
    h.wait_for(up, timeout=timeout, what="worker %s" % name)


def _pair(c, args_more=()):
    """The Cluster's controller (A) and a second one (B), with worker w1
    linked to both."""
    b = Second(c)
    c.start_worker("w1", args=["--server-url", b.url] + list(args_more))
    ctl_b = b.connect()
    _wait_worker(ctl_b)
    return b, c.connect(), ctl_b


def _exec(ctl, *argv):
    return h.ok(ctl.call({"op": "exec", "worker": "w1",
                          "argv": list(argv)}))


def _bash(ctl):
    r = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                       "argv": BASH, "env": ENV}))
    return r["session"], Stream(ctl, r["session"])


def _attach(ctl, sid, since=0):
    h.wait_for(lambda: [s for s in _list(ctl) if s["session"] == sid],
               what="session %s listed" % sid)
    req = {"op": "session.attach", "session": sid}
    if since is not None:
        req["since"] = since
    h.ok(ctl.call(req))
    return Stream(ctl, sid, start=since or 0)


def _shared(c, args_more=()):
    """Two controllers and a shell opened through A (the Cluster's) that
    both A's and B's client are attached to, and have seen ready."""
    b, ctl_a, ctl_b = _pair(c, args_more)
    sid, st_a = _bash(ctl_a)
    _write(ctl_a, sid, "echo rea''dy\r")
    st_a.wait_for("ready")
    st_b = _attach(ctl_b, sid)
    st_b.wait_for("ready")
    return ctl_a, ctl_b, sid, st_a, st_b


def test_worker_with_two_server_urls_runs_commands_through_each():
    with h.Cluster(workers={}) as c:
        b, ctl_a, ctl_b = _pair(c)
        ra = _exec(ctl_a, "echo", "via-a")
        rb = _exec(ctl_b, "echo", "via-b")
        assert h.out(ra) == b"via-a\n" and ra["exit_code"] == 0, ra
        assert h.out(rb) == b"via-b\n" and rb["exit_code"] == 0, rb
        # each controller lists the worker as its own, connected
        for ctl in (ctl_a, ctl_b):
            ws = h.ok(ctl.call({"op": "workers"}))["workers"]
            assert [w["id"] for w in ws if w.get("connected")] == ["w1"], ws


def test_server_url_variable_may_name_several_controllers():
    with h.Cluster(workers={}) as c:
        b = Second(c)
        argv = [h.SANDD, "worker", "--id", "w1", "--state-dir",
                os.path.join(c.tmp, "state"), "-v"]
        c.start_worker("w1", argv=argv,
                       env={"SERVER_URL": "%s, %s" % (c.url, b.url)})
        ctl_b = b.connect()
        _wait_worker(ctl_b)
        assert h.out(_exec(ctl_b, "echo", "env-b")) == b"env-b\n"
        assert h.out(_exec(c.connect(), "echo", "env-a")) == b"env-a\n"


def test_two_urls_of_one_controller_make_one_link_not_a_flap():
    # 127.0.0.1 and localhost name the same controller: its second link
    # from this worker process is refused (409: the id is live and the
    # link holds no secret of it), never taken for a reconnect that
    # drops the first (which would come back and drop the second, and
    # so on); the worker says why and dials it only once a minute.
    with h.Cluster(workers={}) as c:
        other = c.url.replace("127.0.0.1", "localhost")
        c.start_worker("w1", args=["--server-url", other])
        ctl = c.connect()
        deadline = time.monotonic() + h.T(4)
        while time.monotonic() < deadline:
            assert h.out(_exec(ctl, "echo", "one")) == b"one\n"
            time.sleep(0.2)
        log = c.log("serve")
        assert "replaces the one" not in log, log
        assert log.count("worker w1: none -> connected") == 1, log
        wlog = c.log("worker-w1")
        assert "where this worker is registered" in wlog, wlog
        assert "in use by a worker we cannot" not in wlog, wlog


def test_session_opened_through_one_controller_is_attached_through_other():
    with h.Cluster(workers={}) as c:
        b, ctl_a, ctl_b = _pair(c)
        sid, st_a = _bash(ctl_a)
        _write(ctl_a, sid, "X=set-through-a; echo one-$X\r")
        st_a.wait_for("one-set-through-a")
        st_b = _attach(ctl_b, sid)
        # B replays what came before it attached, then gets it live
        st_b.wait_for("one-set-through-a")
        _write(ctl_b, sid, "echo two-$X\r")
        st_b.wait_for("two-set-through-a")
        st_a.wait_for("two-set-through-a")
        # both streams are the same bytes from the same offsets
        n = min(len(st_a.data), len(st_b.data))
        assert st_a.data[:n] == st_b.data[:n]
        # the other controller's session is its root's: root lists it
        ls = [s for s in _list(ctl_b) if s["session"] == sid]
        assert ls and ls[0]["worker"] == "w1" and not ls[0]["exited"], ls


def test_session_opened_later_is_announced_to_the_other_controller():
    with h.Cluster(workers={}) as c:
        b, ctl_a, ctl_b = _pair(c)
        sid, st_b = _bash(ctl_b)
        st_a = _attach(ctl_a, sid)
        _write(ctl_a, sid, "echo typed-$((40+2))\r")
        st_a.wait_for("typed-42")
        st_b.wait_for("typed-42")


def test_one_controller_killed_the_other_keeps_serving():
    with h.Cluster(workers={}) as c:
        ctl_a, ctl_b, sid, st_a, st_b = _shared(c)
        c.stop_server(signal.SIGKILL)
        # B runs commands and keeps the session, output and input
        for i in range(3):
            r = _exec(ctl_b, "echo", "still-%d" % i)
            assert h.out(r) == b"still-%d\n" % i, r
        _write(ctl_b, sid, "seq 1 3000 | tail -n 1; echo after-$((6*7))\r")
        st_b.wait_for("after-42")
        assert b"3000\r\n" in st_b.data
        # A comes back (same key, same port): it sees the session again
        c._start_serve(new_port=False)
        c.wait_worker("w1")
        ctl_a2 = c.connect()
        ls = h.wait_for(lambda: [s for s in _list(ctl_a2)
                                 if s["session"] == sid], what="adoption")
        assert not ls[0]["exited"], ls
        rd = _read(ctl_a2, sid, since=0)
        assert b"after-42" in h.out(rd, "data"), rd
        st_a2 = _attach(ctl_a2, sid, since=rd["offset"])
        _write(ctl_a2, sid, "echo back-on-a\r")
        st_a2.wait_for("back-on-a")
        st_b.wait_for("back-on-a")


def test_session_closed_through_the_other_controller_goes_from_both():
    with h.Cluster(workers={}) as c:
        b, ctl_a, ctl_b = _pair(c)
        sid, st_a = _bash(ctl_a)
        _attach(ctl_b, sid)
        r = h.ok(ctl_b.call({"op": "session.close", "session": sid}))
        assert r.get("signal") == "HUP" or r.get("exit_code") is not None, r
        st_a.wait_exit()
        h.wait_for(lambda: not [s for s in _list(ctl_a)
                                if s["session"] == sid],
                   what="session gone from the opener")
        assert not [s for s in _list(ctl_b) if s["session"] == sid]


def test_controller_behind_on_a_view_holds_back_neither_program_nor_other():
    # B's client attaches and reads nothing while the program writes more
    # than a window: A's client still gets every byte at once, and B's,
    # reading later, gets a contiguous stream (what the ring still has).
    with h.Cluster(workers={}) as c:
        ctl_a, ctl_b, sid, st_a, st_b = _shared(
            c, ["--window", "65536", "--ring-size", "4M"])
        _write(ctl_a, sid, "seq 1 500000 | tail -c 3000000; "
               "echo done-$((1+1))\r")
        st_a.wait_for("done-2", timeout=60)
        st_b.wait_for("done-2", timeout=60)
        assert b"500000\r\n" in st_b.data


def test_view_behind_past_the_ring_skips_ahead_and_goes_on():
    # The same with more output than the worker's ring: B cannot have it
    # all; its stream skips ahead (offsets only grow) and goes on live.
    with h.Cluster(workers={}) as c:
        b, ctl_a, ctl_b = _pair(c, args_more=["--window", "65536"])
        sid, st_a = _bash(ctl_a)
        _write(ctl_a, sid, "echo go\r")
        st_a.wait_for("go")
        _attach(ctl_b, sid, since=None)
        _write(ctl_a, sid, "seq 1 900000; echo done-$((1+1))\r")
        st_a.wait_for("done-2", timeout=120)
        data, nxt, jumps = b"", None, 0
        deadline = time.monotonic() + h.T(60)
        while b"done-2" not in data[-200:] and time.monotonic() < deadline:
            m = ctl_b.recv(timeout=30)
            if m.get("event") != "output" or m.get("session") != sid:
                continue
            if nxt is not None and m["offset"] != nxt:
                assert m["offset"] > nxt, (m["offset"], nxt)
                jumps += 1
            chunk = h.out(m, "data")
            data += chunk
            nxt = m["offset"] + len(chunk)
        assert b"done-2" in data[-200:], data[-200:]
        assert jumps >= 1
        assert b"900000\r\n" in data
        _write(ctl_b, sid, "echo live-$((2+3))\r")
        st_a.wait_for("live-5")

def test_session_closed_while_a_link_was_down_goes_when_it_returns():
    # B's link is down while the session is closed through A: the end
    # never reaches B. When the link comes back the worker no longer
    # lists the session, and B must drop it, not list it for ever.
    with h.Cluster(workers={}) as c:
        b = Second(c)
        p = FaultProxy(b.port)
        try:
            c.start_worker("w1", args=["--server-url", p.url])
            ctl_a, ctl_b = c.connect(), b.connect()
            _wait_worker(ctl_b)
            sid, st_a = _bash(ctl_a)
            h.wait_for(lambda: [s for s in _list(ctl_b)
                                if s["session"] == sid], what="the view")
            p.refuse(True)
            p.reset()
            h.wait_for(lambda: "link: lost" in c.log("worker-w1"),
                       what="the link to B cut")
            h.ok(ctl_a.call({"op": "session.close", "session": sid}))
            st_a.wait_exit()
            p.refuse(False)
            h.wait_for(lambda: c.log("worker-w1").count(
                "registered as w1 (resumed)") >= 1, timeout=h.T(20),
                what="the link to B back")
            h.wait_for(lambda: not [s for s in _list(ctl_b)
                                    if s["session"] == sid],
                       what="the session gone from B")
            assert h.ok(ctl_b.call({"op": "stats"}))["sessions"] == 0
        finally:
            p.close()



if __name__ == "__main__":
    h.run_main(globals())

"""Workers going away: the link between worker and controller is cut (by a
TCP proxy, both processes keep running) and comes back."""

import os
import time

import harness as h


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st.rpartition(")")[2].split()[0] != "Z"


def _cluster(window=30, **kw):
    return h.Cluster(workers={}, serve_args=["--resume-window", str(window)],
                     **kw)


def _proxied(c, name="w1"):
    p = c.proxy()
    c.start_worker(name, url=p.url)
    return p


def _sub(c):
    s = c.connect()
    h.ok(s.call({"op": "subscribe", "topics": ["workers"]}))
    return s


def _state(sub, state, name="w1", timeout=20):
    sub.recv_until(lambda m: m.get("event") == "worker" and
                   m.get("worker") == name and m.get("state") == state,
                   timeout=timeout)


def _lines(a, b):
    return "".join("line%d\n" % i for i in range(a, b + 1))


PACED = ("i=0; while [ $i -lt %d ]; do i=$((i+1)); echo line$i; "
         "sleep 0.05; done")


def test_stream_survives_link_drops_without_loss_or_repeat():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "s",
                  "cmd": PACED % 60})
        time.sleep(0.6)
        p.drop()
        time.sleep(0.8)
        p.drop()
        evs, fin = ctl.collect("s", timeout=60)
        h.ok(fin)
        text = "".join(e["data"] for e in evs if e.get("event") == "stdout")
        assert text == _lines(1, 60), text
        assert fin["exit_code"] == 0, fin
        assert p.accepted >= 3, "the worker did not reconnect"


def test_buffered_exec_survives_link_drop():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "id": "b",
                  "max_output": 10000000,
                  "cmd": "seq 1 20000; sleep 1; seq 20001 40000"})
        time.sleep(0.5)
        p.drop()
        _, fin = ctl.collect("b", timeout=60)
        h.ok(fin)
        assert fin["stdout"] == "".join("%d\n" % i
                                        for i in range(1, 40001)), \
            len(fin.get("stdout", ""))


def test_exec_that_ends_while_link_is_down_is_reported():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "e",
                  "cmd": "sleep 0.5; echo done; exit 3"})
        ctl.recv_until(lambda m: m.get("event") == "started")
        p.refuse(True)
        _state(sub, "disconnected")
        time.sleep(1.5)
        p.refuse(False)
        evs, fin = ctl.collect("e", timeout=60)
        h.ok(fin)
        assert fin["exit_code"] == 3, fin
        assert "".join(e["data"] for e in evs
                       if e.get("event") == "stdout") == "done\n", evs


def test_worker_is_listed_disconnected_then_connected_again():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        p.refuse(True)
        _state(sub, "disconnected")
        w = [x for x in h.ok(c.connect().call({"op": "workers"}))["workers"]
             if x["id"] == "w1"]
        assert w and w[0]["connected"] is False, w
        p.refuse(False)
        _state(sub, "connected", timeout=40)


def test_request_sent_while_link_is_down_runs_after_resume():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        p.refuse(True)
        _state(sub, "disconnected")
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "echo later",
                  "id": "l"})
        time.sleep(1)
        assert not [m for m in ctl.backlog if m.get("id") == "l"]
        p.refuse(False)
        _, fin = ctl.collect("l", timeout=60)
        assert h.ok(fin)["stdout"] == "later\n", fin


def test_write_and_signal_work_after_link_drop():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "x",
                  "cmd": "cat", "stdin_open": True, "timeout": 60})
        _, st = ctl.recv_until(lambda m: m.get("event") == "started")
        h.ok(ctl.call({"op": "write", "handle": st["handle"],
                       "data": "before\n"}))
        p.drop()
        h.ok(ctl.call({"op": "write", "handle": st["handle"],
                       "data": "after\n"}, timeout=60))
        h.ok(ctl.call({"op": "write", "handle": st["handle"], "eof": True},
                      timeout=60))
        evs, fin = ctl.collect("x", timeout=60)
        assert "".join(e["data"] for e in evs
                       if e.get("event") == "stdout") == "before\nafter\n"
        assert h.ok(fin)["exit_code"] == 0, fin


def test_yielded_handle_is_readable_after_link_drop():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "yield_after": 0.3,
                           "cmd": PACED % 30}))
        got = r.get("stdout", "")
        hd = r["handle"]
        p.drop()
        deadline = time.monotonic() + h.T(60)
        while True:
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 2},
                              timeout=60))
            got += r.get("stdout", "")
            if not r.get("running"):
                break
            assert time.monotonic() < deadline
        assert got == _lines(1, 30), got


def test_worker_lost_after_resume_window():
    with _cluster(window=2) as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "e",
                  "cmd": "sleep 60", "timeout": 120})
        ctl.recv_until(lambda m: m.get("event") == "started")
        p.refuse(True)
        _state(sub, "disconnected")
        _, fin = ctl.recv_until(lambda m: m.get("id") == "e" and
                                h.is_final(m), timeout=30)
        h.err(fin, "worker_lost")


def test_worker_ends_orphaned_commands_after_window():
    with _cluster(window=2) as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        pidf = os.path.join(c.tmp, "pid")
        ctl.send({"op": "exec", "worker": "w1", "id": "e", "timeout": 120,
                  "cmd": "echo $$ > %s.t && mv %s.t %s; exec sleep 60"
                         % (pidf, pidf, pidf)})
        pid = h.wait_for(lambda: int(open(pidf).read()), timeout=10,
                         what="pid file")
        p.refuse(True)
        _state(sub, "gone", timeout=30)
        p.refuse(False)
        _state(sub, "connected", timeout=60)
        h.wait_for(lambda: not _alive(pid), timeout=15,
                   what="orphaned command to be ended")


def test_link_drop_does_not_cancel_exec_of_connected_client():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "id": "e",
                  "cmd": "sleep 1.5; echo survived"})
        time.sleep(0.3)
        p.drop()
        _, fin = ctl.collect("e", timeout=60)
        assert h.ok(fin)["stdout"] == "survived\n", fin


def test_wait_for_worker_in_resume_window_returns_when_it_is_back():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        p.refuse(True)
        _state(sub, "disconnected")
        ctl = c.connect()
        h.err(ctl.call({"op": "wait", "worker": "w1", "timeout": 0.5}),
              "timeout")
        ctl.send({"op": "wait", "worker": "w1", "timeout": h.T(60),
                  "id": "w"})
        p.refuse(False)
        _, fin = ctl.collect("w", timeout=70)
        h.ok(fin)
        assert fin["workers"][0]["connected"] is True, fin


def test_running_exec_ends_worker_lost_when_worker_restarts():
    import signal
    with _cluster(window=30) as c:
        c.start_worker("w1")
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "e",
                  "cmd": "sleep 30", "timeout": 60})
        ctl.recv_until(lambda m: m.get("event") == "started")
        c.stop_worker("w1", signal.SIGKILL)
        t0 = time.monotonic()
        c.start_worker("w1")
        _, fin = ctl.recv_until(lambda m: m.get("id") == "e" and
                                h.is_final(m), timeout=40)
        h.err(fin, "worker_lost")
        assert time.monotonic() - t0 < h.T(10), \
            "waited for the resume window although the worker came back"


h.run_main(globals())

"""Nothing lost: streams survive network cuts, worker and controller
restarts.

The link between worker and controller goes through a FaultProxy
(tests/faultproxy.py) that resets, blackholes, throttles or refuses it
while both processes keep running. Both sides ping every second and give
up after 3 silent seconds, so a blackhole is noticed quickly.

    python3 tests/run.py tests/test_resume.py
    python3 tests/run.py -k herd tests/test_resume.py     # the herd only
    SANDD_HERD=300 ... -k herd     # herd size (default 1000, 300 with ASan)
"""

import hashlib
import os
import re
import signal
import subprocess
import time

import harness as h
from faultproxy import FaultProxy

PING = ["--ping-interval", "1", "--ping-timeout", "3"]
MiB = 1024 * 1024


# ---------------------------------------------------------------- helpers

def _cluster(window=30, serve_ping=PING, worker_ping=PING, serve_args=(),
             **kw):
    return h.Cluster(workers={},
                     serve_args=["--resume-window", str(window)] +
                     list(serve_ping) + list(serve_args),
                     worker_args=list(worker_ping), **kw)


def _proxied(c, name="w1", args=()):
    """A worker dialing the controller through a FaultProxy."""
    p = FaultProxy(c.port)
    c.proxies.append(p)         # closed at cleanup
    c.start_worker(name, url=p.url, args=list(args))
    c.wait_welcomed(name)       # a cut now does not lock it out
    return p


def _sub(c):
    s = c.connect()
    h.ok(s.call({"op": "subscribe", "topics": ["workers"]}))
    return s


def _state(sub, state, name="w1", timeout=20):
    """Wait for a worker state event on a subscribed connection."""
    sub.recv_until(lambda m: m.get("event") == "worker" and
                   m.get("worker") == name and m.get("state") == state,
                   timeout=timeout)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st.rpartition(")")[2].split()[0] != "Z"


def _proc_field(pid, name, path="status"):
    with open("/proc/%d/%s" % (pid, path)) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == name:
                return v.strip()
    return None


def _rss(pid):
    """VmRSS of pid in bytes."""
    return int(_proc_field(pid, "VmRSS").split()[0]) * 1024


def _wchar(pid):
    return int(_proc_field(pid, "wchar", "io"))


def _is_asan():
    try:
        with open(h.SANDD, "rb") as f:
            return b"AddressSanitizer" in f.read()
    except OSError:
        return False


def _numbers(a, b):
    return "".join("%d\n" % i for i in range(a, b + 1))


def _check_numbered(text, n):
    """text must be exactly the lines 1..n, each once, in order."""
    want = _numbers(1, n)
    if text == want:
        return
    lines = text.split("\n")
    tail = lines.pop() if lines else ""
    seen, dups, order = set(), [], []
    prev = 0
    for ln in lines:
        try:
            v = int(ln)
        except ValueError:
            order.append(ln)
            continue
        if v in seen:
            dups.append(v)
        elif v != prev + 1:
            order.append("%d after %d" % (v, prev))
        seen.add(v)
        prev = max(prev, v)
    missing = [i for i in range(1, n + 1) if i not in seen]
    raise AssertionError(
        "stream is not lines 1..%d exactly once: %d lines, %d repeated "
        "(first %s), %d missing (first %s), out of order %s, unterminated "
        "tail %r" % (n, len(lines), len(dups), dups[:10], len(missing),
                     missing[:10], order[:10], tail[:40]))


class Stream:
    """The events and final reply of one streamed request."""

    def __init__(self, ctl, rid):
        self.ctl = ctl
        self.rid = rid
        self.out = bytearray()
        self.err = bytearray()
        self.sha = hashlib.sha256()
        self.keep = True        # keep stdout (else only hash and count)
        self.nout = 0
        self.started = None
        self.final = None

    def text(self):
        return self.out.decode("utf-8", "replace")

    def lines(self):
        return self.out.count(b"\n")

    def _take(self, m):
        if h.is_final(m):
            assert self.final is None, "second final: %r" % (m,)
            self.final = m
        elif m.get("event") == "started":
            assert self.started is None, "second started: %r" % (m,)
            self.started = m
        elif m.get("event") == "stdout":
            b = h.out(m, "data")
            self.sha.update(b)
            self.nout += len(b)
            if self.keep:
                self.out += b
        elif m.get("event") == "stderr":
            self.err += h.out(m, "data")

    def pump(self, until=None, timeout=30, what="stream progress"):
        """Read until until(self) is true or the final reply came.
        Messages about other requests stay in the connection's backlog."""
        deadline = time.monotonic() + h.T(timeout)
        rest = []
        for m in self.ctl.backlog:
            if m.get("id") == self.rid and self.final is None:
                self._take(m)
            else:
                rest.append(m)
        self.ctl.backlog = rest
        while self.final is None and not (until and until(self)):
            if time.monotonic() >= deadline:
                raise AssertionError(
                    "timed out waiting for %s (stdout so far: %d bytes, "
                    "%d lines, tail %r)" % (what, self.nout, self.lines(),
                                            bytes(self.out[-60:])))
            try:
                m = self.ctl._read_msg(deadline)
            except TimeoutError:
                continue
            if m.get("id") == self.rid:
                self._take(m)
            else:
                self.ctl.backlog.append(m)
        return self

    def finish(self, timeout=60):
        self.pump(timeout=timeout, what="the final reply")
        self.check_quiet()
        return self.final

    def check_quiet(self):
        """Nothing more may arrive for this request after its final."""
        r = self.ctl.call({"op": "hello", "id": "quiet-%s" % self.rid})
        h.ok(r)
        stray = [m for m in self.ctl.backlog if m.get("id") == self.rid]
        assert not stray, "messages after the final reply: %r" % stray[:3]


def _exec_stream(ctl, rid, cmd, **kw):
    req = {"op": "exec", "worker": "w1", "stream": True, "id": rid,
           "cmd": cmd}
    req.update(kw)
    ctl.send(req)
    return Stream(ctl, rid)


def _log_count(c, name, needle):
    return c.log(name).count(needle)


SEQ = "for i in $(seq 1 %d); do echo $i; sleep 0.01; done"


# ---------------------------------------------------------------- cuts

def test_stream_exactly_once_across_resets():
    """Numbered lines cross four RSTs of the link: each once, in order,
    then the exit status."""
    n = 400
    with _cluster() as c:
        p = _proxied(c)
        st = _exec_stream(c.connect(), "s", SEQ % n)
        for k in (40, 110, 180, 250):
            st.pump(lambda s, k=k: s.lines() >= k, what="line %d" % k)
            assert p.reset() >= 1, "no connection to reset"
        fin = st.finish(timeout=90)
        h.ok(fin)
        assert fin["exit_code"] == 0, fin
        _check_numbered(st.text(), n)
        assert p.accepted >= 5, "the worker did not reconnect: %d" % \
            p.accepted


def test_stream_exactly_once_across_blackhole():
    """A silent partition (no FIN, no RST) is noticed by pings within the
    ping timeout; the worker resumes and nothing is lost or repeated."""
    n = 500
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        lost0 = _log_count(c, "worker-w1", "link: lost")
        st = _exec_stream(c.connect(), "s", SEQ % n)
        st.pump(lambda s: s.lines() >= 60, what="line 60")
        p.blackhole(True)
        # Without pings a silent link is noticed after TCP gives up (many
        # minutes); with them, after seconds. A minute bounds a hang.
        _state(sub, "disconnected", timeout=60)
        h.wait_for(lambda: _log_count(c, "worker-w1", "link: lost") > lost0,
                   timeout=60, what="the worker to notice the silence")
        p.blackhole(False)
        _state(sub, "connected", timeout=30)
        fin = st.finish(timeout=90)
        assert h.ok(fin)["exit_code"] == 0, fin
        _check_numbered(st.text(), n)


def test_stream_survives_throttled_link():
    """A slow link (64 KB/s) with a reset in the middle: still every
    line once."""
    n = 20000
    with _cluster() as c:
        p = _proxied(c)
        p.throttle(64 * 1024)
        st = _exec_stream(c.connect(), "s", "seq 1 %d" % n)
        st.pump(lambda s: s.nout >= 30000, what="30 KB")
        p.reset()
        fin = st.finish(timeout=90)
        assert h.ok(fin)["exit_code"] == 0, fin
        _check_numbered(st.text(), n)


def test_slow_link_is_not_mistaken_for_a_dead_one():
    """A link slower than one frame per ping timeout (50 KB/s, frames up
    to 256 KiB, ping timeout 3 s) still carries traffic: it must not be
    declared dead (which would resend the same frame for ever)."""
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        path = os.path.join(c.tmp, "blob")
        data = os.urandom(300000)
        with open(path, "wb") as f:
            f.write(data)
        p.throttle(50000)
        ctl = c.connect()
        ctl.send({"op": "get", "worker": "w1", "path": path, "raw": True,
                  "id": "g"})
        got, fin = [], None
        deadline = time.monotonic() + h.T(40)
        while fin is None:
            assert time.monotonic() < deadline, \
                "get did not finish (%d bytes)" % sum(map(len, got))
            try:
                m = ctl.recv(timeout=0.2)
                if m.get("id") == "g":
                    if h.is_final(m):
                        fin = m
                    elif "_payload" in m:
                        got.append(m["_payload"])
            except TimeoutError:
                pass
            try:
                ev = sub.recv(timeout=0.01)
            except TimeoutError:
                continue
            assert ev.get("state") != "disconnected", \
                "the slow link was declared dead after %d of %d bytes " \
                "(accepted %d)" % (sum(map(len, got)), len(data),
                                   p.accepted)
        h.ok(fin)
        assert b"".join(got) == data
        assert p.accepted == 1, "reconnected %d times" % (p.accepted - 1)


def test_flapping_link_redials_within_resume_window():
    """A link that is cut again each time it came back: the worker's
    redial backoff must not grow past the resume window (requests would
    be lost although the network is back)."""
    window = 10
    with _cluster(window=window) as c:
        p = _proxied(c)
        delays = []
        for k in range(8):
            n = p.accepted
            p.reset()
            t0 = time.monotonic()
            h.wait_for(lambda: p.accepted > n, timeout=window * 0.8 / h.SCALE,
                       interval=0.01,
                       what="redial %d (after %s)" % (k + 1, delays))
            delays.append(round(time.monotonic() - t0, 2))
            c.wait_worker("w1")
        print("redial delays: %s" % delays)


def test_buffered_exec_across_reset_returns_full_output():
    with _cluster() as c:
        p = _proxied(c)
        mark = os.path.join(c.tmp, "half")
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "id": "b",
                  "max_output": 10000000,
                  "cmd": "seq 1 50000; touch %s; sleep 0.5; "
                         "seq 50001 100000; echo tail >&2" % mark})
        h.wait_for(lambda: os.path.exists(mark), timeout=15,
                   what="first half")
        assert p.reset() >= 1
        _, fin = ctl.collect("b", timeout=60)
        h.ok(fin)
        assert fin["exit_code"] == 0, fin
        assert fin["stdout"] == _numbers(1, 100000), \
            "stdout: %d bytes" % len(fin.get("stdout", ""))
        assert fin["stderr"] == "tail\n", fin["stderr"]
        assert not fin.get("stdout_truncated"), fin


def test_bulk_output_exactly_once_with_bounded_worker_memory():
    """About 20 MiB across resets: every byte once (sha256); while the
    link is down the program blocks on write and the worker's memory
    stays bounded (window 1 MiB)."""
    n = 2750000
    want = hashlib.sha256(_numbers(1, n).encode())
    want_len = len(_numbers(1, n))
    asan = _is_asan()
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        wpid = c.workers["w1"].pid
        st = _exec_stream(c.connect(), "big", "exec seq 1 %d" % n,
                          timeout=300)
        st.keep = False
        st.pump(lambda s: s.started is not None, what="started")
        pid = st.started["pid"]
        for k in (3, 6):
            st.pump(lambda s, k=k: s.nout >= k * MiB, timeout=60,
                    what="%d MiB" % k)
            assert p.reset() >= 1
        st.pump(lambda s: s.nout >= 9 * MiB, timeout=60, what="9 MiB")
        # Cut it for a while.
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        rss0 = _rss(wpid)

        def paused():
            a = _wchar(pid)
            time.sleep(0.5)
            return a == _wchar(pid)
        h.wait_for(paused, timeout=15, interval=0.01,
                   what="the program to block on its full pipe")
        assert _alive(pid), "the command died while the link was down"
        stat = open("/proc/%d/stat" % pid).read().rpartition(")")[2].split()
        assert stat[0] in ("S", "D"), "program not blocked: %s" % stat[0]
        w0 = _wchar(pid)
        time.sleep(1.0)     # stays paused (this is what is measured)
        assert _wchar(pid) == w0, "the program kept writing while cut off"
        rss1 = _rss(wpid)
        print("worker VmRSS while cut off: %.1f MiB (%.1f at the cut)"
              % (rss1 / MiB, rss0 / MiB))
        if not asan:
            assert rss1 < 64 * MiB, "worker RSS %d MiB" % (rss1 // MiB)
        assert rss1 - rss0 < 16 * MiB, \
            "worker grew by %d MiB while cut off" % ((rss1 - rss0) // MiB)
        p.refuse(False)
        fin = st.finish(timeout=60)
        assert h.ok(fin)["exit_code"] == 0, fin
        assert st.nout == want_len, "%d bytes, want %d" % (st.nout,
                                                           want_len)
        assert st.sha.hexdigest() == want.hexdigest(), "sha256 differs"


def test_output_consumed_while_link_is_down_is_acked_after_resume():
    """The client falls behind (the worker's window fills and it stops
    reading the program), then catches up while the link is down: what
    it consumed must be acknowledged once the worker is back, or the
    worker waits for that ack for ever and the command hangs."""
    n = 1500000
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        st = _exec_stream(ctl, "s", "exec seq 1 %d" % n, timeout=300)
        st.pump(lambda s: s.started is not None, what="started")
        pid = st.started["pid"]

        def paused():
            a = _wchar(pid)
            time.sleep(0.3)
            return a > 0 and a == _wchar(pid)   # begun, then blocked
        # Not reading: the controller holds the output, the window fills.
        h.wait_for(paused, timeout=15, interval=0.01,
                   what="the program to block (client not reading)")
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        # Catch up while the worker is away: all that is held.
        mark = st.nout
        last = [st.nout, time.monotonic()]

        def idle(s):
            if s.nout != last[0]:
                last[:] = [s.nout, time.monotonic()]
            return time.monotonic() - last[1] > 1.0

        def pump_idle():
            try:
                st.pump(idle, timeout=0.2)
            except AssertionError:
                pass
            return idle(st)
        h.wait_for(pump_idle, timeout=30, interval=0,
                   what="the held output")
        assert st.nout > mark + MiB, "little was held: %d" % (st.nout - mark)
        p.refuse(False)
        _state(sub, "connected", timeout=30)
        fin = st.finish(timeout=90)
        assert h.ok(fin)["exit_code"] == 0, fin
        _check_numbered(st.text(), n)


# ---------------------------------------------------------------- windows

def test_resume_window_expiry_gives_worker_lost_and_ends_orphan():
    """Cut off (silently) for longer than the resume window: the request
    ends with worker_lost, and the worker, still cut off, ends the
    orphaned process on its own."""
    with _cluster(window=2) as c:
        p = _proxied(c)
        sub = _sub(c)
        st = _exec_stream(c.connect(), "e", "exec sleep 60", timeout=120)
        st.pump(lambda s: s.started is not None, what="started")
        pid = st.started["pid"]
        assert _alive(pid)
        t0 = time.monotonic()
        p.blackhole(True)
        _state(sub, "disconnected", timeout=15)
        fin = st.finish(timeout=60)
        h.err(fin, "worker_lost")
        dt = time.monotonic() - t0
        # ~5 s (3 s of pings, the 2 s window); the default window of 30 s
        # would make it over 30
        assert dt < h.T(25), "worker_lost after %.1fs" % dt
        _state(sub, "gone", timeout=10)
        h.wait_for(lambda: not _alive(pid), timeout=20,
                   what="the worker to end its orphan while cut off")
        p.blackhole(False)
        c.wait_worker("w1", timeout=30)
        r = c.connect().call({"op": "exec", "worker": "w1",
                              "cmd": "echo back"})
        assert h.ok(r)["stdout"] == "back\n", r


def test_orphan_cancelled_when_worker_returns_after_window():
    """The controller gave up on the worker (its pings noticed the cut);
    the worker did not notice (long ping timeout) and comes back later
    with the old command still running: the controller cancels it."""
    with _cluster(window=2) as c:
        p = _proxied(c, args=["--ping-timeout", "120"])
        sub = _sub(c)
        st = _exec_stream(c.connect(), "e", "exec sleep 60", timeout=120)
        st.pump(lambda s: s.started is not None, what="started")
        pid = st.started["pid"]
        p.blackhole(True, new=False)
        h.err(st.finish(timeout=30), "worker_lost")
        _state(sub, "gone", timeout=10)
        assert _alive(pid), "the worker cannot know yet"
        p.reset()           # now the worker sees the link die, redials
        _state(sub, "connected", timeout=30)
        h.wait_for(lambda: not _alive(pid), timeout=10,
                   what="the controller to cancel the orphan")


def test_exec_that_ends_while_link_is_down_is_reported():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        st = _exec_stream(c.connect(), "e", "sleep 0.5; echo done; exit 3")
        st.pump(lambda s: s.started is not None, what="started")
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        h.wait_for(lambda: not _alive(st.started["pid"]), timeout=10,
                   what="the command to end")
        p.refuse(False)
        fin = st.finish(timeout=60)
        assert h.ok(fin)["exit_code"] == 3, fin
        assert st.text() == "done\n", st.text()


def test_request_sent_while_link_is_down_runs_after_resume():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "echo later",
                  "id": "l"})
        h.ok(ctl.call({"op": "hello"}))
        assert not [m for m in ctl.backlog if m.get("id") == "l"]
        p.refuse(False)
        _, fin = ctl.collect("l", timeout=60)
        assert h.ok(fin)["stdout"] == "later\n", fin


def test_stdin_across_reset_arrives_once():
    """Input written before and after a cut reaches the program once."""
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        st = _exec_stream(ctl, "x", "cat", stdin_open=True, timeout=60)
        st.pump(lambda s: s.started is not None, what="started")
        hd = st.started["handle"]
        for i in range(1, 4):
            h.ok(ctl.call({"op": "write", "handle": hd,
                           "data": _numbers(i * 100 - 99, i * 100)},
                          timeout=60))
            st.pump(lambda s, i=i: s.lines() >= i * 100,
                    what="echo of block %d" % i)
            p.reset()
        h.ok(ctl.call({"op": "write", "handle": hd, "eof": True},
                      timeout=60))
        fin = st.finish(timeout=60)
        assert h.ok(fin)["exit_code"] == 0, fin
        _check_numbered(st.text(), 300)


def test_worker_is_listed_disconnected_then_connected_again():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        w = [x for x in h.ok(c.connect().call({"op": "workers"}))["workers"]
             if x["id"] == "w1"]
        assert w and w[0]["connected"] is False, w
        p.refuse(False)
        _state(sub, "connected", timeout=40)


def test_signal_after_link_drop_reaches_the_process():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        st = _exec_stream(ctl, "x", "trap 'echo got-int; exit 5' INT; "
                          "echo ready; while :; do sleep 0.05; done",
                          timeout=60)
        st.pump(lambda s: b"ready" in s.out, what="ready")
        p.reset()
        h.ok(ctl.call({"op": "signal", "handle": st.started["handle"],
                       "signal": "INT"}, timeout=60))
        fin = st.finish(timeout=60)
        assert h.ok(fin)["exit_code"] == 5, fin
        assert st.text() == "ready\ngot-int\n", st.text()


def test_orphan_ended_after_window_and_worker_return():
    """Refused for longer than the window, then back: the orphaned
    command of the lost request is gone."""
    with _cluster(window=2) as c:
        p = _proxied(c)
        sub = _sub(c)
        st = _exec_stream(c.connect(), "e", "exec sleep 60", timeout=120)
        st.pump(lambda s: s.started is not None, what="started")
        pid = st.started["pid"]
        p.refuse(True)
        p.reset()
        h.err(st.finish(timeout=30), "worker_lost")
        _state(sub, "gone", timeout=30)
        p.refuse(False)
        _state(sub, "connected", timeout=60)
        h.wait_for(lambda: not _alive(pid), timeout=15,
                   what="orphaned command to be ended")


def test_yielded_handle_is_readable_after_link_drop():
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "yield_after": 0.3,
                           "cmd": SEQ % 200}))
        got = r.get("stdout", "")
        hd = r["handle"]
        p.reset()
        got += _read_all(ctl, hd)
        _check_numbered(got, 200)


def test_wait_for_worker_in_resume_window_returns_when_it_is_back():
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        ctl = c.connect()
        h.err(ctl.call({"op": "wait", "worker": "w1", "timeout": 0.5}),
              "timeout")
        ctl.send({"op": "wait", "worker": "w1", "timeout": h.T(60),
                  "id": "w"})
        p.refuse(False)
        _, fin = ctl.collect("w", timeout=70)
        assert h.ok(fin)["workers"][0]["connected"] is True, fin


# ---------------------------------------------------------------- restarts

def test_worker_restart_ends_inflight_requests_at_once():
    """kill -9 of the worker and a new process with the same id: the
    old requests end with worker_lost right away (not after the
    window, here 600 s), and new requests work."""
    with _cluster(window=600) as c:
        c.start_worker("w1")
        ctl = c.connect()
        st = _exec_stream(ctl, "s", "echo hi; exec sleep 900", timeout=900)
        st.pump(lambda s: s.lines() >= 1, what="first line")
        ctl.send({"op": "exec", "worker": "w1", "id": "b",
                  "cmd": "sleep 900", "timeout": 900})
        h.wait_for(lambda: h.ok(c.connect().call({"op": "stats"}))
                   ["execs_running"] >= 2, timeout=10,
                   what="both execs running")
        c.stop_worker("w1", signal.SIGKILL)
        t0 = time.monotonic()
        c.start_worker("w1")
        h.err(st.finish(timeout=150), "worker_lost")
        _, fin = ctl.collect("b", timeout=150)
        h.err(fin, "worker_lost")
        dt = time.monotonic() - t0
        assert dt < h.T(300), \
            "waited %.1fs: the resume window although the worker is back" \
            % dt
        assert st.text() == "hi\n", st.text()
        r = ctl.call({"op": "exec", "worker": "w1", "cmd": "echo new"})
        assert h.ok(r)["stdout"] == "new\n", r


def test_worker_restart_while_cut_off():
    """The worker dies (kill -9) while its link is down and a new one
    with the same id comes: what the old one ran ends with worker_lost
    at once; what was queued for it (never sent) runs on the new one."""
    with _cluster(window=600) as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        st = _exec_stream(ctl, "old", "exec sleep 900", timeout=900)
        st.pump(lambda s: s.started is not None, what="started")
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        ctl.send({"op": "exec", "worker": "w1", "id": "queued",
                  "cmd": "echo queued"})
        h.ok(ctl.call({"op": "hello"}))
        c.stop_worker("w1", signal.SIGKILL)
        t0 = time.monotonic()
        c.start_worker("w1")        # directly, not through the proxy
        # "At once": long before the 600 s window would have ended it.
        h.err(st.finish(timeout=150), "worker_lost")
        _, fin = ctl.collect("queued", timeout=150)
        assert h.ok(fin)["stdout"] == "queued\n", fin
        assert time.monotonic() - t0 < h.T(300)


def test_controller_restart_workers_come_back():
    with _cluster() as c:
        p = _proxied(c)     # one through a proxy, one direct
        c.start_worker("w2")
        c.restart_server(sig=signal.SIGKILL, wait_workers=False)
        t0 = time.monotonic()
        ctl = c.connect()
        for w in ("w1", "w2"):
            r = ctl.call({"op": "wait", "worker": w, "timeout": h.T(60)},
                         timeout=90)
            h.ok(r)
        dt = time.monotonic() - t0
        print("workers back %.2fs after the controller restarted" % dt)
        r = ctl.call({"op": "exec", "worker": "w1", "cmd": "echo up"})
        assert h.ok(r)["stdout"] == "up\n", r
        assert p.accepted >= 2


def _settle(c):
    """Let the controller finish the loop pass that answered us.

    An ack for output a reply handed out is written to the worker right
    after that reply; a kill -9 in between (a real, inherent window)
    makes the worker send those bytes again to the next controller. The
    tests about restarts kill after one more round trip, so they test
    the design, not that race."""
    for _ in range(2):
        h.ok(c.connect().call({"op": "stats"}))


def _read_all(ctl, hd, timeout=60):
    """read a handle until it has ended; return all its stdout."""
    got = ""
    deadline = time.monotonic() + h.T(timeout)
    while True:
        r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 2},
                          timeout=60))
        got += r.get("stdout", "")
        if not r.get("running"):
            assert r.get("exit_code") == 0, r
            return got
        assert time.monotonic() < deadline, "still running: %r" % got[-80:]


def test_controller_restart_yielded_exec_readable_by_handle():
    """An exec detached with yield_after lives through kill -9 of the
    controller: the new controller adopts it and `read` by handle gives
    the rest of its output, nothing lost or repeated."""
    n = 250
    with _cluster() as c:
        c.start_worker("w1")
        ctl = c.connect()
        go = os.path.join(c.tmp, "go")
        # It ends only once counted: a slow restart must not outlast it.
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "yield_after": 0.4,
                           "cmd": SEQ % n + "; while [ ! -e %s ]; do "
                           "sleep 0.02; done" % go}))
        assert r.get("running") is True, r
        hd = r["handle"]
        got = r.get("stdout", "")
        r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 0.3}))
        got += r.get("stdout", "")
        assert r.get("running") is True, "ended too soon for the test"
        before = got.count("\n")
        _settle(c)
        c.restart_server(sig=signal.SIGKILL)
        ctl = c.connect()
        w = [x for x in h.ok(ctl.call({"op": "workers"}))["workers"]
             if x["id"] == "w1"]
        assert w and w[0]["running"] >= 1, \
            "adopted exec not counted as running: %r" % w
        open(go, "w").close()
        got += _read_all(ctl, hd)
        _check_numbered(got, n)
        assert 0 < before < n
        h.err(ctl.call({"op": "read", "handle": hd}), "no_such_handle")


def test_controller_restart_big_yielded_output_exactly_once():
    """About 20 MiB from a detached exec, mostly produced while it is
    held back by the window, read by handle across kill -9 of the
    controller: every byte once (sha256)."""
    n = 3000000
    want = _numbers(1, n).encode()
    with _cluster() as c:
        c.start_worker("w1")
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1",
                           "yield_after": 0.05, "cmd": "seq 1 %d" % n}))
        assert r.get("running") is True, "ended before the yield"
        hd = r["handle"]
        got = [h.out(r)]
        _settle(c)
        c.restart_server(sig=signal.SIGKILL)
        ctl = c.connect()
        deadline = time.monotonic() + h.T(90)
        while True:
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 2},
                              timeout=60))
            got.append(h.out(r))
            if not r.get("running"):
                break
            assert time.monotonic() < deadline, "still running"
        assert r.get("exit_code") == 0, r
        out = b"".join(got)
        assert len(out) == len(want), "%d bytes, want %d" % (len(out),
                                                             len(want))
        assert hashlib.sha256(out).digest() == \
            hashlib.sha256(want).digest(), "content differs"


def test_controller_restart_yielded_exec_keeps_stdin():
    """A detached exec with stdin_open takes input before and after kill
    -9 of the controller, once each, and then its eof."""
    with _cluster() as c:
        c.start_worker("w1")
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "cat",
                           "stdin_open": True, "yield_after": 0.2,
                           "timeout": 60}))
        hd = r["handle"]
        got = r.get("stdout", "")
        h.ok(ctl.call({"op": "write", "handle": hd, "data": "one\n"}))
        r = h.ok(ctl.call({"op": "read", "handle": hd, "until": "one",
                           "timeout": 10}))
        got += r.get("stdout", "")
        _settle(c)
        c.restart_server(sig=signal.SIGKILL)
        ctl = c.connect()
        h.ok(ctl.call({"op": "write", "handle": hd, "data": "two\n"}))
        h.ok(ctl.call({"op": "write", "handle": hd, "eof": True}))
        got += _read_all(ctl, hd)
        assert got == "one\ntwo\n", repr(got)


def test_controller_restart_exec_that_ended_meanwhile_reports_exit():
    """A detached exec that ends while no controller runs: the new
    controller gives its remaining output and exit status by handle."""
    with _cluster() as c:
        c.start_worker("w1")
        ctl = c.connect()
        mark = os.path.join(c.tmp, "go")
        pidf = os.path.join(c.tmp, "pid")
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "yield_after": 0.3,
                           "cmd": "echo $$ > %s; echo a; while [ ! -e %s ]; "
                                  "do sleep 0.02; done; echo b; exit 7"
                                  % (pidf, mark)}))
        hd = r["handle"]
        got = r.get("stdout", "")
        pid = h.wait_for(lambda: int(open(pidf).read()), timeout=10,
                         what="the pid file")
        _settle(c)
        c.stop_server(signal.SIGKILL)
        open(mark, "w").close()
        h.wait_for(lambda: not _alive(pid), timeout=10,
                   what="the command to end")
        c.restart_server()
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 10}))
        got += r.get("stdout", "")
        while r.get("running"):
            r = h.ok(ctl.call({"op": "read", "handle": hd, "timeout": 10}))
            got += r.get("stdout", "")
        assert got == "a\nb\n", repr(got)
        assert r.get("exit_code") == 7, r


def test_detached_work_outlives_resume_window():
    """Cut off longer than the resume window: the attached exec is lost,
    but a session and a detached exec live on (the worker keeps them);
    once the worker is back both are reachable, nothing lost."""
    n = 400
    with _cluster(window=2) as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1",
                           "yield_after": 0.3, "cmd": SEQ % n}))
        hd = r["handle"]
        got = r.get("stdout", "")
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "argv": ["/bin/sh"], "attach": False}))["session"]
        h.ok(ctl.call({"op": "session.run", "session": sid,
                       "cmd": "cd /tmp; X=5", "timeout": 10}, timeout=30))
        p.refuse(True)
        p.reset()
        _state(sub, "gone", timeout=20)
        p.refuse(False)
        _state(sub, "connected", timeout=40)
        got += _read_all(ctl, hd)
        _check_numbered(got, n)
        r = h.ok(ctl.call({"op": "session.run", "session": sid,
                           "cmd": 'echo "$(pwd):$X"', "timeout": 10},
                          timeout=30))
        assert r["output"] == "/tmp:5\n", r


def test_yield_while_link_is_down_survives_controller_restart():
    """yield_after fires while the worker is away: the exec is detached
    all the same (the worker must learn it on resume), so it lives
    through a controller restart and its output is all there, once."""
    n = 300
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        mark = os.path.join(c.tmp, "started")
        ctl.send({"op": "exec", "worker": "w1", "id": "y",
                  "yield_after": 1.0,
                  "cmd": "touch %s; %s" % (mark, SEQ % n)})
        st = Stream(ctl, "y")
        h.wait_for(lambda: os.path.exists(mark), timeout=10,
                   what="the command to start")
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        r = st.finish(timeout=10)       # the yield, while away
        assert h.ok(r).get("running") is True, r
        hd = r["handle"]
        got = r.get("stdout", "")
        p.refuse(False)
        _state(sub, "connected", timeout=30)
        _settle(c)
        c.restart_server(sig=signal.SIGKILL)
        ctl = c.connect()
        got += _read_all(ctl, hd)
        _check_numbered(got, n)


def test_handle_read_to_end_while_link_is_down_stays_finished():
    """A detached exec that ended is read to its end while the worker
    is away: after the resume its handle is gone (the worker was told
    to forget it), not back with its last output repeated."""
    with _cluster() as c:
        p = _proxied(c)
        sub = _sub(c)
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "yield_after": 0.2,
                           "cmd": "echo a; sleep 0.5; echo b"}))
        hd = r["handle"]
        first = r.get("stdout", "")     # "a\n", unless the yield came first
        h.wait_for(lambda: not h.ok(c.connect().call({"op": "workers"}))
                   ["workers"][0]["running"], timeout=10,
                   what="the command to end")
        p.refuse(True)
        p.reset()
        _state(sub, "disconnected")
        r = h.ok(ctl.call({"op": "read", "handle": hd}))
        assert r.get("running") is False, r
        assert first + r.get("stdout", "") == "a\nb\n", (first, r)
        p.refuse(False)
        _state(sub, "connected", timeout=30)
        h.ok(ctl.call({"op": "workers"}))   # the hello has been handled
        h.err(ctl.call({"op": "read", "handle": hd}), "no_such_handle")


def test_controller_restart_streamed_exec_is_cancelled():
    """A streamed (not detached) exec belongs to its client: when the
    controller dies, the new one cancels it on the worker."""
    with _cluster() as c:
        c.start_worker("w1")
        st = _exec_stream(c.connect(), "s", "exec sleep 60", timeout=120)
        st.pump(lambda s: s.started is not None, what="started")
        pid = st.started["pid"]
        c.restart_server(sig=signal.SIGKILL)
        h.wait_for(lambda: not _alive(pid), timeout=15,
                   what="the worker to end the ownerless exec")


def test_controller_restart_session_keeps_shell_state():
    """A session's shell state survives kill -9 of the controller."""
    with _cluster() as c:
        c.start_worker("w1")
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                           "argv": ["/bin/sh"], "attach": False,
                           "env": {"PS1": "$ "}}))
        sid = r["session"]
        r = h.ok(ctl.call({"op": "session.run", "session": sid,
                           "cmd": "cd /tmp; export X=1", "timeout": 10},
                          timeout=30))
        assert r["exit_code"] == 0, r
        c.restart_server(sig=signal.SIGKILL)
        ctl = c.connect()
        ls = h.ok(ctl.call({"op": "session.list"}))["sessions"]
        assert [s for s in ls if s["session"] == sid], ls
        r = h.ok(ctl.call({"op": "session.run", "session": sid,
                           "cmd": 'echo "$(pwd):$X"', "timeout": 10},
                          timeout=30))
        assert r["output"] == "/tmp:1\n", r
        h.ok(ctl.call({"op": "session.close", "session": sid}, timeout=30))


# ---------------------------------------------------------------- takeover

def test_half_open_link_taken_over_by_new_connection():
    """The old link goes half-open (blackholed; the controller, with a
    long ping timeout, still believes in it). The worker notices, dials
    again, and the new connection takes the streams over; when the old
    link finally delivers its stale bytes and dies, nothing is repeated
    and the worker stays connected."""
    n = 500
    with _cluster(serve_ping=["--ping-interval", "1",
                              "--ping-timeout", "60"]) as c:
        p = _proxied(c)
        sub = _sub(c)
        st = _exec_stream(c.connect(), "s", SEQ % n)
        st.pump(lambda s: s.lines() >= 60, what="line 60")
        p.blackhole(True, new=False)
        h.wait_for(lambda: p.accepted >= 2, timeout=15,
                   what="the worker to dial again")
        mark = st.lines()
        st.pump(lambda s: s.lines() >= mark + 50, timeout=30,
                what="the stream to go on over the new link")
        p.blackhole(False)       # the stale link speaks, then dies
        h.wait_for(lambda: p.active() == 1, timeout=15,
                   what="the old connection to close")
        fin = st.finish(timeout=90)
        assert h.ok(fin)["exit_code"] == 0, fin
        _check_numbered(st.text(), n)
        assert c.workers["w1"].poll() is None, "the worker exited"
        # The old link's end must not mark the worker away.
        h.ok(sub.call({"op": "hello"}))
        bad = [m for m in sub.backlog if m.get("event") == "worker" and
               m.get("state") in ("disconnected", "gone")]
        assert not bad, bad
        r = c.connect().call({"op": "workers"})
        w = [x for x in h.ok(r)["workers"] if x["id"] == "w1"]
        assert w and w[0]["connected"], w


def test_second_process_with_same_id_replaces_the_first():
    """Two live processes with one id (not a reconnect: another boot):
    the newer one wins, the older stops, in-flight requests of the old
    one end with worker_lost."""
    with _cluster() as c:
        old = c.start_worker("w1")
        st = _exec_stream(c.connect(), "s", "exec sleep 60", timeout=120)
        st.pump(lambda s: s.started is not None, what="started")
        c.start_worker("w1")
        h.err(st.finish(timeout=20), "worker_lost")
        try:
            old.wait(h.T(10))
        except subprocess.TimeoutExpired:
            raise AssertionError("the replaced worker did not stop")
        assert old.returncode != 0, old.returncode
        r = c.connect().call({"op": "exec", "worker": "w1",
                              "cmd": "echo $PPID"})
        assert int(h.ok(r)["stdout"]) == c.workers["w1"].pid, r


# ---------------------------------------------------------------- herd

_DIAL_EVENTS = ("answered", "registered as", "closed the connection",
                "connect to")
_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) ")


def _stamp(line):
    m = _STAMP.match(line)
    if not m:
        return None
    a, b, s, ms = (int(x) for x in m.groups())
    return a * 3600 + b * 60 + s + ms / 1000.0


def _retry_after_gaps(log):
    """Seconds between each 503 and the worker's next dial outcome."""
    gaps = []
    pending = None
    for line in log.splitlines():
        t = _stamp(line)
        if t is None or "link:" not in line:
            continue
        if not any(e in line for e in _DIAL_EVENTS):
            continue
        if pending is not None:
            gaps.append((t - pending) % 86400)
            pending = None
        if "answered 503" in line:
            pending = t
    return gaps


def test_herd_controller_restart():
    """Thundering herd: N workers (1000, 300 with ASan; $SANDD_HERD)
    against serve --max-handshakes 32; kill -9 and restart serve: all
    come back in time, some were told 503 and waited their Retry-After."""
    n = int(os.environ.get("SANDD_HERD") or (300 if _is_asan() else 1000))
    with _cluster(serve_ping=[], worker_ping=[],
                  serve_args=["--max-handshakes", "32"]) as c:
        procs = []
        try:
            t0 = time.monotonic()
            for i in range(n):
                procs.append(c.start_worker("h%d" % i, wait=False,
                                            args=["--window", "65536"]))
            ctl = c.connect()

            def connected():
                return h.ok(ctl.call({"op": "stats"}))["workers_connected"]
            # Bounds on a hang only: under a loaded 2-core machine with
            # ASan, 300 took over 60 s. How fast is make bench's (herd).
            h.wait_for(lambda: connected() == n, timeout=240, interval=0.2,
                       what="%d workers to connect" % n)
            print("%d workers connected in %.1fs" % (
                n, time.monotonic() - t0))
            c.stop_server(signal.SIGKILL)
            t1 = time.monotonic()
            c._start_serve(new_port=False)
            # The new controller stalls on its way up (as a loaded host
            # would) while the herd dials: the dials pile up in its
            # listen queue and then arrive all at once.
            os.kill(c.serve.pid, signal.SIGSTOP)
            try:
                time.sleep(1.5)
            finally:
                os.kill(c.serve.pid, signal.SIGCONT)
            ctl = c.connect()
            h.wait_for(lambda: connected() == n, timeout=240, interval=0.2,
                       what="%d workers to come back" % n)
            back = time.monotonic() - t1
            print("herd of %d back %.1fs after the controller restart"
                  % (n, back))
            status, _, body = h.http_get(c.port, "/metrics")
            assert status == 200
            m = re.search(rb"^sandd_handshakes_refused_total (\d+)", body,
                          re.M)
            assert m, body[:500]
            refused = int(m.group(1))
            print("handshakes refused with 503: %d" % refused)
            assert refused > 0, "no handshake got 503"
            dead = [p.pid for p in procs if p.poll() is not None]
            assert not dead, "workers exited: %r" % dead[:5]
            gaps = []
            for i in range(n):
                gaps += _retry_after_gaps(c.log("worker-h%d" % i))
            assert gaps, "no worker logged a 503"
            short = [g for g in gaps if g < 0.95]
            print("503s seen by workers: %d, shortest wait after one: "
                  "%.2fs" % (len(gaps), min(gaps)))
            assert not short, "dialed again before Retry-After (>= 1 s): " \
                "%r" % short[:5]
        finally:
            for p in procs:
                h._killpg(p, signal.SIGKILL)
            # Keep failure output readable: the logs of three workers.
            # (Sanitizer reports in the others still fail the test.)
            for i in range(3, n):
                path = c.log_paths.pop("worker-h%d" % i, None)
                if path:
                    c._scan_sanitizer("worker-h%d" % i, path)
            for p in procs:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass


test_herd_controller_restart.timeout = 600   # a hang bound, see above


def _retry_after(port):
    """Open a connection to the listener: the Retry-After of its 503, or
    None if it was let in (then it is closed)."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=h.T(10))
    try:
        s.settimeout(0.5)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except socket.timeout:
            return None
        m = re.search(rb"^Retry-After: (\d+)\r$", got, re.M)
        assert got.startswith(b"HTTP/1.1 503") and m, got[:200]
        return int(m.group(1))
    finally:
        s.close()


def _hold_slot(port):
    """An idle connection that holds the one admission slot (one refused
    because another still held it, such as the harness's probe of the
    listener, is dropped and made again)."""
    import socket
    deadline = time.monotonic() + h.T(10)
    while True:
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(0.3)
        try:
            s.recv(1)
        except socket.timeout:
            return s
        s.close()
        assert time.monotonic() < deadline, "no slot to hold"
        time.sleep(0.1)


def test_503_retry_after_grows_with_the_queue():
    """With the one slot held, each refused connection is told to come
    back later than the one before it: its turn comes after theirs, at
    the rate the controller finishes handshakes."""
    with _cluster(serve_ping=[], worker_ping=[], serve_args=[
            "--max-handshakes", "1", "--handshake-rate", "5"]) as c:
        hold = _hold_slot(c.port)
        try:
            waits = [_retry_after(c.port) for _ in range(30)]
        finally:
            hold.close()
        print("Retry-After of 30 refusals in a row: %r" % waits)
        assert min(waits[:5]) <= 2, waits
        assert max(waits[-5:]) >= min(waits[:5]) + 2, waits
        assert max(waits) <= 30, waits


def _dial_gap(log):
    """Seconds from the worker's 'link: lost' to the outcome of its next
    dial (on loopback, a refused connect is told at once)."""
    lost = None
    for line in log.splitlines():
        t = _stamp(line)
        if t is None:
            continue
        if "link: lost" in line:
            lost = t
        elif lost is not None and any(e in line for e in _DIAL_EVENTS):
            return (t - lost) % 86400
    return None


def test_worker_dials_again_within_a_second_of_losing_its_controller():
    """A worker that had to wait out a few 503s first (so its backoff has
    grown) loses the controller it was registered with: its next dial
    comes within the first second, not after its backoff."""
    with _cluster(serve_ping=[], worker_ping=[], serve_args=[
            "--max-handshakes", "1"]) as c:
        hold = _hold_slot(c.port)
        c.start_worker("w1", wait=False)
        h.wait_for(lambda: c.log("worker-w1").count("answered 503") >= 2,
                   timeout=20, what="two 503s")
        hold.close()
        c.wait_worker("w1", timeout=30)
        c.stop_server(signal.SIGKILL)
        h.wait_for(lambda: _dial_gap(c.log("worker-w1")) is not None,
                   timeout=10, what="a dial after the loss")
        gap = _dial_gap(c.log("worker-w1"))
        print("503s before: %d; dial %.2fs after the loss" % (
            c.log("worker-w1").count("answered 503"), gap))
        assert gap < 1.0 + h.T(0.5), "dialed %.2fs after the loss" % gap


def test_put_256_mib_survives_link_cuts_intact():
    """A raw put of 256 MiB crosses two resets of the worker's link: the
    reply comes once, the file on disk has the same SHA-256."""
    import json
    import threading
    size = 256 * MiB
    with _cluster() as c:
        p = _proxied(c)
        src = os.path.join(c.tmp, "src.bin")
        with open(src, "wb") as f:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))
        want = hashlib.sha256(open(src, "rb").read()).hexdigest()
        dst = os.path.join(c.tmp, "dst.bin")
        ctl = c.connect()

        def send():
            ctl.send_raw((json.dumps({"op": "put", "worker": "w1",
                                      "path": dst, "bytes": size,
                                      "id": "put"}) + "\n").encode())
            with open(src, "rb") as f:
                while True:
                    b = f.read(MiB)
                    if not b:
                        break
                    ctl.send_raw(b)
        t = threading.Thread(target=send)
        t.start()
        for frac in (0.3, 0.6):
            h.wait_for(lambda: _put_progress(c) >= frac * size,
                       timeout=60, what="put progress %.0f%%" % (frac * 100))
            assert p.reset() >= 1, "no connection to reset"
        t.join(timeout=h.T(120))
        r = h.ok(ctl.recv(timeout=120))
        assert r["size"] == size and r["sha256"] == want, r
        got = hashlib.sha256(open(dst, "rb").read()).hexdigest()
        assert got == want


def _put_progress(c):
    """Bytes the controller sent to workers so far (stats bytes_out)."""
    ctl = c.connect()
    try:
        return h.ok(ctl.call({"op": "stats"}))["bytes_out"]
    finally:
        ctl.close()


def test_pty_session_survives_a_link_cut():
    """A session keeps running across a reset: what it printed while the
    link was down is read afterwards, and its shell state is intact."""
    with _cluster() as c:
        p = _proxied(c)
        ctl = c.connect()
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "argv": ["/bin/sh"], "attach": False}))["session"]
        r = h.ok(ctl.call({"op": "session.run", "session": sid,
                           "cmd": "cd /tmp; X=42", "timeout": 20}))
        assert r["exit_code"] == 0, r
        sub = _sub(c)
        p.refuse(True)
        assert p.reset() >= 1
        _state(sub, "disconnected")
        p.refuse(False)
        _state(sub, "connected", timeout=30)
        r = h.ok(ctl.call({"op": "session.run", "session": sid,
                           "cmd": "echo $X; pwd", "timeout": 20}))
        assert r["output"] == "42\n/tmp\n", r
        r = h.ok(ctl.call({"op": "session.read", "session": sid,
                           "since": 0}))
        assert "42" in r["data"], r


h.run_main(globals())

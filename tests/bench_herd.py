#!/usr/bin/env python3
"""The herd rows of `make bench` (bench.py calls herd_section; run alone
with `python3 tests/bench_herd.py`).

With the controller's default admission settings, all workers dialing from
127.0.0.1 (one NAT address), it measures:

  - real workers: BENCH_HERD (1000) `sandd worker` processes started at
    once, time until all are registered; serve's RSS per idle worker
    (VmRSS growth over the RSS before the first worker, divided by the
    count, 2 s after the last registered); exec of `true` broadcast to all
    of them (labels {}), time to the final reply; then kill -9 of serve
    and a restart on the same port, time from the kill until all are
    registered again;
  - fake workers (tests/fakeworker.py, wire-level, one asyncio process,
    as BENCH_HERD_BIG (10000) real workers do not fit beside the rest):
    the same start, RSS and kill -9 + restart rows;
  - the handshake rate: registrations (TCP accept, upgrade, hello,
    welcome) per CPU second of serve during the fake herd's start, plain
    and over TLS (wss://, BENCH_HERD_TLS (2000) fake workers), and serve's
    RSS per idle worker over TLS.

BENCH_HERD_ONLY=real|fake|tls runs one part.

Each row stands beside its target from the issue; a row that cannot run
says "n/a (reason)". The soft open-files limit is raised to the hard one
for every process started here.
"""

import os
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from bench import _env_int, cpu_secs  # noqa: E402

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "fakeworker.py")
WAIT = 120      # seconds: a herd not registered by then is reported so
WATCHDOG = 900  # seconds for the whole section (bench.py's alarm)


class HerdCluster(h.Cluster):
    """The harness's cluster without -v (a log line per dial is not what
    we measure)."""

    def _serve_argv(self):
        return [h.SANDD, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--control", self.control, "--state-dir",
                os.path.join(self.tmp, "serve-state")] + \
            self._serve_extra + self.serve_args

    def worker_argv(self, name, labels=None, args=(), url=None):
        return [h.SANDD, "worker", "--server-url", url or self.url, "--id",
                name, "--state-dir", os.path.join(self.tmp, "state")] + \
            self._worker_extra + self.worker_args + list(args)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def stat(c, key="workers_connected"):
    ctl = c.connect()
    try:
        return h.ok(ctl.call({"op": "stats"}))[key]
    finally:
        ctl.close()


def wait_all(c, n, t0, limit=WAIT, marks=None):
    """Seconds from t0 until n workers are connected, or a note; marks
    (a dict) gets the seconds until half and 90% were."""
    deadline = t0 + limit
    got = 0
    while time.monotonic() < deadline:
        try:
            got = stat(c)
        except Exception:
            got = 0
        for frac in (0.5, 0.9):
            if marks is not None and got >= frac * n and frac not in marks:
                marks[frac] = time.monotonic() - t0
        if got >= n:
            return time.monotonic() - t0, None
        time.sleep(0.05)
    return None, "n/a (%d of %d registered after %d s)" % (got, n, limit)


def per_worker(c, base, n):
    time.sleep(2)
    return (h.rss_kb(c.serve.pid) - base) / float(n)


def restart(c, n, marks):
    """kill -9 serve, start it again on its port: seconds until all n
    workers are back; marks: when serve listened again, half, 90%."""
    os.kill(c.serve.pid, signal.SIGKILL)
    c.serve.wait()
    t1 = time.monotonic()
    c._start_serve(new_port=False)
    marks["up"] = time.monotonic() - t1
    return wait_all(c, n, t1, marks=marks)


def rss_row(c, base, n, kind, target, rows):
    rows.append(["serve RSS per idle worker, %d %s" % (n, kind),
                 "%.1f KiB" % per_worker(c, base, n), target,
                 "VmRSS growth / %d" % n])


def restart_row(c, n, kind, target, rows):
    marks = {}
    back, note = restart(c, n, marks)
    rows.append(["%d %s workers back after kill -9 + restart" % (n, kind),
                 note or "%.2f s" % back, target, "from the kill; serve "
                 "listening at %.2f s, half back %.2f s, 90%% %.2f s; "
                 "%d 503s" % (marks["up"], marks.get(0.5, -1),
                              marks.get(0.9, -1),
                              stat(c, "handshakes_refused"))])


def broadcast(c, n):
    """exec true on all n workers: (seconds to the final reply, serve CPU
    seconds meanwhile), or (None, note)."""
    ctl = c.connect()
    cpu0 = cpu_secs(c.serve.pid)
    t = time.monotonic()
    r = h.ok(ctl.call({"op": "exec", "labels": {}, "argv": ["true"]},
                      timeout=WAIT))
    dt = time.monotonic() - t
    cpu = cpu_secs(c.serve.pid) - cpu0
    good = sum(1 for x in r["results"] if x.get("exit_code") == 0)
    ctl.close()
    if good != n:
        return None, "n/a (%d of %d ran true)" % (good, n)
    return (dt, cpu), None


def real_herd(n, rows, figs):
    """n real `sandd worker` processes: start, RSS, broadcast, restart."""
    procs = []
    with HerdCluster(workers={}) as c:
        try:
            base = h.rss_kb(c.serve.pid)
            t0 = time.monotonic()
            for i in range(n):
                procs.append(c.start_worker("h%d" % i, wait=False))
            spawn = time.monotonic() - t0
            started, note = wait_all(c, n, t0)
            rows.append(["%d real workers started at once" % n,
                         note or "%.2f s" % started, "",
                         "from the first spawn (%.1f s to spawn them)" %
                         spawn])
            if note:
                return
            rss_row(c, base, n, "real", "<= 8 KiB at 10k", rows)
            dt, note = broadcast(c, n)
            rows.append(["exec true broadcast to %d real workers" % n,
                         note or "%.2f s" % dt[0], "",
                         "labels {}, to the final reply; serve CPU "
                         "%.2f s" % dt[1] if dt else ""])
            restart_row(c, n, "real", "<= 2 s", rows)
        finally:
            for p in procs:
                h._killpg(p, signal.SIGKILL)
            for p in procs:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            c.log_paths = {k: v for k, v in c.log_paths.items()
                           if not k.startswith("worker-")}


def fake_fleet(c, n, args=()):
    argv = [sys.executable, FAKE, c.url, str(n)] + list(args)
    if c.tls:
        argv += ["--ca", c.certs["ca"]]
    return subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            start_new_session=True)


def fake_stop(p):
    try:
        p.send_signal(signal.SIGTERM)
        out = p.communicate(timeout=30)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        h._killpg(p, signal.SIGKILL)
        out = p.communicate()[0].decode(errors="replace")
    lines = [x for x in out.splitlines() if x.startswith("fakeworker:")]
    return lines[-1][len("fakeworker: "):] if lines else "?"


def fake_start(c, n):
    """Start n fake workers at once: (fleet, seconds until all are
    registered or None, note, serve CPU seconds meanwhile, RSS before)."""
    base = h.rss_kb(c.serve.pid)
    cpu0 = cpu_secs(c.serve.pid)
    t0 = time.monotonic()
    p = fake_fleet(c, n)
    started, note = wait_all(c, n, t0)
    return p, started, note, cpu_secs(c.serve.pid) - cpu0, base


def fake_herd(n, rows, figs):
    """n fake workers: start, RSS, handshake rate, restart."""
    with HerdCluster(workers={}) as c:
        p, started, note, cpu, base = fake_start(c, n)
        try:
            rows.append(["%d fake workers started at once" % n,
                         note or "%.2f s" % started, "<= 30 s",
                         "one asyncio process, from its start"])
            if note:
                return
            figs["rate"] = n / cpu if cpu > 0 else None
            rss_row(c, base, n, "fake", "<= 8 KiB", rows)
            restart_row(c, n, "fake", "", rows)
        finally:
            figs["fake"] = fake_stop(p)


def tls_rate(n, figs):
    with HerdCluster(workers={}, tls=True) as c:
        p, dt, note, cpu, base = fake_start(c, n)
        try:
            if note:
                figs["rate_tls"] = note
            else:
                figs["rate_tls"] = "%.0f/s (wall %.0f/s)" % (n / cpu, n / dt)
                figs["rss_tls"] = "%.1f KiB" % per_worker(c, base, n)
        finally:
            fake_stop(p)


def herd_section():
    n = _env_int("BENCH_HERD", 1000)
    big = _env_int("BENCH_HERD_BIG", 10000)
    ntls = _env_int("BENCH_HERD_TLS", 2000)
    hard = raise_nofile()
    rows = []
    figs = {}
    print()
    print("herd: default admission settings, every worker from 127.0.0.1; "
          "load before: %s" % " ".join(
              "%.2f" % x for x in os.getloadavg()))
    for what, fn, args in (("real workers", real_herd, (n, rows, figs)),
                           ("fake workers", fake_herd, (big, rows, figs)),
                           ("TLS rate", tls_rate, (ntls, figs))):
        only = os.environ.get("BENCH_HERD_ONLY")
        if only and not what.lower().startswith(only.lower()):
            continue
        if big + 64 > hard and fn is fake_herd:
            rows.append(["%d fake workers" % big, "n/a (open files "
                         "capped at %d)" % hard, "", ""])
            continue
        try:
            fn(*args)
        except Exception as e:
            rows.append([what, "n/a (%s)" % str(e).splitlines()[0][:120],
                         "", ""])
    rate = figs.get("rate")
    rows.append(["handshake rate, plain (registrations per serve CPU s)",
                 "%.0f/s" % rate if rate else "n/a", "",
                 "during the %d fake start" % big])
    rows.append(["handshake rate, TLS (wss://, ECDSA P-256)",
                 figs.get("rate_tls", "n/a"), "",
                 "%d fake workers" % ntls])
    rows.append(["serve RSS per idle worker, %d fake over wss://" % ntls,
                 figs.get("rss_tls", "n/a"), "", "VmRSS growth / %d" % ntls])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in [["", "measured", "target", "how"]] + rows:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
    print("  fake fleet at its stop: %s" % figs.get("fake", "?"))
    print("  (load after: %s)" % " ".join(
        "%.2f" % x for x in os.getloadavg()))


if __name__ == "__main__":
    herd_section()

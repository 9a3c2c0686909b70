#!/usr/bin/env python3
"""sandd benchmark: `make bench` (python3 tests/bench.py).

Starts a real `sandd serve` and one `sandd worker` on 127.0.0.1 in a private
temporary folder (tests/harness.py), then measures and prints:

  - exec round trip of /bin/true (argv form) through the control socket:
    sequential latency (p50, p99, mean) and execs per second with 1 and
    with 8 requests pipelined on one connection;
  - the same command spawned locally from Python (os.posix_spawn + waitpid,
    and subprocess.run) as a baseline, and the ratios sandd / local; sandd
    and posix_spawn take turns (one exec each, or 5 rounds each of the
    per-second runs), so that both see the same machine;
  - put and get of a random file with raw payloads, against a plain loopback
    copy with socat, against scp to a private sshd on 127.0.0.1 and against
    the single-core SHA-256 rate of hashlib (sandd hashes every byte); the
    socat, put, get and SHA-256 runs are repeated BENCH_FILE_ROUNDS times
    after one unreported warm-up round and the median is reported, with the
    min-max range (scp runs once each);
  - the same put and get through a second serve and worker whose worker
    link is TLS (wss://, a throwaway test CA), in the same rounds, and the
    ratios wss / ws;
  - a TLS loopback copy of the same file (socat OPENSSL, the test CA's
    server certificate, OpenSSL's defaults as sandd's link uses them),
    the yardstick of put and get over wss://;
  - `sandd cp` of a BENCH_CP_MB (512) MiB file up to the worker against a
    raw put of the same file, in rounds taking turns;
  - PTY output: a 256 MiB text file printed by cat through `sandd shell`,
    through `script -qfc` (a local terminal) and through `ssh -tt` to the
    private sshd (tests/bench_pty.py, which also runs alone);
  - peak RSS (VmHWM) of serve and worker after each section (and of the
    wss:// cluster's serve and worker);
  - bounded clients: on a cluster of its own, how much the controller's
    RSS grows while 6 clients that never read each stream an exec that
    prints as fast as it can, a subscriber to every topic never reads,
    and a worker says hello and leaves again and again (BENCH_FLOOD_S
    seconds, default 10); the goal is under 32 MiB.

At the end, the rows of issue 15's table that this run measured, each
next to its yardstick from the same run, with the ratio and the target;
the load average before and after is printed with them (2 shared cores:
a loaded machine moves every figure).

Stdlib only. Every section that cannot run prints "n/a (reason)"; the exit
status is 0 unless the cluster itself cannot start.

Environment (for quick runs): BENCH_N (sequential execs, default 300),
BENCH_WARMUP (20), BENCH_SECONDS (per throughput run, 5), BENCH_CONC (8),
BENCH_FILE_MB (1024), BENCH_FILE_ROUNDS (measured file rounds, 3),
BENCH_CP_MB (512, the cp section's file; its rounds are BENCH_FILE_ROUNDS),
BENCH_PTY_MB (256), BENCH_PTY_ROUNDS (3), SANDD_BIN (the binary),
SANDD_KEEP_TMP.
"""

import hashlib
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def _env_int(name, default):
    try:
        v = int(os.environ.get(name, default))
        return v if v > 0 else default
    except ValueError:
        return default


N = _env_int("BENCH_N", 300)
WARMUP = _env_int("BENCH_WARMUP", 20)
SECONDS = _env_int("BENCH_SECONDS", 5)
CONC = _env_int("BENCH_CONC", 8)
FILE_MB = _env_int("BENCH_FILE_MB", 1024)
FILE_SIZE = FILE_MB * 1024 * 1024
ROUNDS = _env_int("BENCH_FILE_ROUNDS", 3)
CP_MB = _env_int("BENCH_CP_MB", 512)
CMD = ["/bin/true"]
WATCHDOG = 900          # seconds: the whole run is cut off past this
SOCAT_BLOCK = 262144    # socat -b, same as one sandd wire chunk
WORKER = "bench1"


class Watchdog(BaseException):
    """The whole run took too long (not caught by per-section handlers)."""


class NotAvailable(Exception):
    """A section cannot be measured here; the message says why."""


# ---------------------------------------------------------------- helpers

def pct(sorted_vals, p):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1)
    return sorted_vals[k]


def lat_stats(samples):
    """(p50, p99, mean) in milliseconds from samples in seconds."""
    s = sorted(samples)
    return (pct(s, 50) * 1e3, pct(s, 99) * 1e3,
            sum(s) / len(s) * 1e3 if s else float("nan"))


def vmhwm(pid):
    """Peak resident set size of pid in KiB (VmHWM), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def cpu_secs(pid):
    """User + system CPU seconds used so far by pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / \
            float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def thread_cpu_secs(pid, name):
    """User + system CPU seconds of pid's threads called name (0 if it
    has none), or None."""
    total = 0.0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != name:
                    continue
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / \
                float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
    return total


class CpuMeter:
    """CPU seconds used by this client, serve, the worker, and the worker's
    hashing thread (part of the worker's) over a span."""

    def __init__(self, cl):
        self.pids = (cl.serve.pid, cl.workers[WORKER].pid)
        self.t0 = self._now()

    def _now(self):
        return (time.process_time(),) + \
            tuple(cpu_secs(p) for p in self.pids) + \
            (thread_cpu_secs(self.pids[1], "sandd-hash"),)

    def done(self):
        t1 = self._now()
        return tuple(None if a is None or b is None else b - a
                     for a, b in zip(self.t0, t1))


def fmt_kib(k):
    return "n/a" if k is None else "%.1f MiB" % (k / 1024.0)


def fmt(v, spec="%.3f"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return spec % v


def ratio(a, b):
    if a is None or b is None or not b or \
            (isinstance(a, float) and math.isnan(a)) or \
            (isinstance(b, float) and math.isnan(b)):
        return None
    return a / b


def listening(port):
    """Is something listening on 127.0.0.1:port (per /proc/net/tcp)?"""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1].endswith(want) and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def wait_listen(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None:
            raise NotAvailable("exited with status %s before listening"
                               % proc.returncode)
        if time.monotonic() > deadline:
            raise NotAvailable("not listening on port %d in time" % port)
        time.sleep(0.01)


def stop_group(p, grace=3):
    """SIGTERM a process group we started, then SIGKILL."""
    if p is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def sha256_time(path, want):
    """Seconds to SHA-256 path with hashlib, read in 1 MiB pieces."""
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    md = hashlib.sha256()
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            md.update(view[:n])
    dt = time.perf_counter() - t0
    if md.hexdigest() != want:
        raise RuntimeError("sha256 of %s changed" % path)
    return dt


def rm(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def first_line(e, limit=200):
    """The first line of an exception's message, cut to limit."""
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:limit]


def tls_probe(port, ca):
    """(version, cipher) that a default OpenSSL client (Python's ssl)
    negotiates with the TLS listener on 127.0.0.1:port."""
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.version(), t.cipher()[0]


# ---------------------------------------------------------------- control

class Conn:
    """A lean control-socket client: JSON lines plus raw payloads, with
    payloads streamed to a file descriptor instead of kept in memory."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(path)
        self.buf = bytearray()
        self.chunk = bytearray(1 << 20)

    def close(self):
        self.sock.close()

    def send(self, obj):
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode()
                          + b"\n")

    def _fill(self):
        n = self.sock.recv_into(self.chunk)
        if n == 0:
            raise EOFError("server closed the control connection")
        self.buf += memoryview(self.chunk)[:n]

    def recv(self, sink=None):
        """Next message. A raw payload that follows it is written to the
        file descriptor sink (or dropped); its size is in msg["bytes"]."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                break
            self._fill()
        msg = json.loads(bytes(self.buf[:i]))
        del self.buf[:i + 1]
        n = msg.get("bytes") if isinstance(msg, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and n > 0:
            take = min(n, len(self.buf))
            if sink is not None and take:
                os.write(sink, self.buf[:take])
            del self.buf[:take]
            left = n - take
            view = memoryview(self.chunk)
            while left > 0:
                k = self.sock.recv_into(view[:min(left, len(self.chunk))])
                if k == 0:
                    raise EOFError("server closed mid-payload")
                if sink is not None:
                    mv = view[:k]
                    while mv:
                        w = os.write(sink, mv)
                        mv = mv[w:]
                left -= k
        return msg

    def final(self, rid, sink=None):
        """Read until the final reply of request rid; return it."""
        while True:
            m = self.recv(sink)
            if m.get("id") == rid and "ok" in m and "event" not in m:
                return m


def check_op(reply, what):
    """Raise NotAvailable for unknown_op, RuntimeError for other errors."""
    if reply.get("ok") is True:
        return reply
    code = (reply.get("error") or {}).get("code")
    if code == "unknown_op":
        raise NotAvailable("not available")
    raise RuntimeError("%s failed: %s" % (what, json.dumps(reply)[:300]))


# ---------------------------------------------------------------- exec

def exec_req(rid):
    return {"op": "exec", "id": rid, "worker": WORKER, "argv": CMD}


def sandd_throughput(control, conc, seconds):
    """Execs per second with conc requests in flight on one connection."""
    c = Conn(control)
    try:
        rid = 0
        inflight = 0
        done = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        for _ in range(conc):
            c.send(exec_req(rid))
            rid += 1
            inflight += 1
        last = t0
        while inflight > 0:
            m = c.recv()
            if "ok" not in m or "event" in m:
                continue
            check_op(m, "exec")
            inflight -= 1
            done += 1
            last = time.perf_counter()
            if last < end:
                c.send(exec_req(rid))
                rid += 1
                inflight += 1
        return done / (last - t0), done
    finally:
        c.close()


def local_spawn_latency():
    samples = []
    env = dict(os.environ)
    for i in range(WARMUP + N):
        t0 = time.perf_counter()
        pid = os.posix_spawn(CMD[0], CMD, env)
        os.waitpid(pid, 0)
        if i >= WARMUP:
            samples.append(time.perf_counter() - t0)
    return lat_stats(samples)


def interleaved_latency(control):
    """sandd's round trip and a local posix_spawn+waitpid, taking turns
    (which goes first alternates), so that both see the same machine:
    on a shared 2-core VM the speed drifts by 20% within a minute, and
    two runs one after the other measured the drift as much as sandd."""
    c = Conn(control)
    env = dict(os.environ)
    ours, local = [], []
    try:
        for i in range(WARMUP + N):
            for first in ((0, 1) if i % 2 == 0 else (1, 0)):
                t0 = time.perf_counter()
                if first == 0:
                    c.send(exec_req(i))
                    r = c.final(i)
                else:
                    pid = os.posix_spawn(CMD[0], CMD, env)
                    os.waitpid(pid, 0)
                dt = time.perf_counter() - t0
                if first == 0:
                    check_op(r, "exec")
                    if r.get("exit_code") != 0:
                        raise RuntimeError("exec /bin/true: %r" % r)
                if i >= WARMUP:
                    (ours if first == 0 else local).append(dt)
        return lat_stats(ours), lat_stats(local)
    finally:
        c.close()


def interleaved_throughput(control, conc, seconds, rounds=5):
    """sandd's and local execs per second with conc in flight, in rounds
    taking turns; each is its total done over its total time."""
    totals = {"sandd": [0, 0.0], "local": [0, 0.0]}
    for r in range(rounds):
        for who in (("sandd", "local") if r % 2 == 0 else
                    ("local", "sandd")):
            if who == "sandd":
                rate, done = sandd_throughput(control, conc,
                                              seconds / rounds)
            else:
                rate, done = local_spawn_throughput(conc, seconds / rounds)
            totals[who][0] += done
            totals[who][1] += done / rate
    return tuple((totals[k][0] / totals[k][1], totals[k][0])
                 for k in ("sandd", "local"))


def local_subprocess_latency():
    samples = []
    for i in range(WARMUP + N):
        t0 = time.perf_counter()
        subprocess.run(CMD)
        if i >= WARMUP:
            samples.append(time.perf_counter() - t0)
    return lat_stats(samples)


def local_spawn_throughput(conc, seconds):
    """posix_spawn with conc children running; waits oldest first (never
    waitpid(-1): the daemons are our children too)."""
    env = dict(os.environ)
    pids = []
    done = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    for _ in range(conc):
        pids.append(os.posix_spawn(CMD[0], CMD, env))
    last = t0
    while pids:
        os.waitpid(pids.pop(0), 0)
        done += 1
        last = time.perf_counter()
        if last < end:
            pids.append(os.posix_spawn(CMD[0], CMD, env))
    return done / (last - t0), done


def local_subprocess_throughput(conc, seconds):
    procs = []
    done = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    for _ in range(conc):
        procs.append(subprocess.Popen(CMD))
    last = t0
    while procs:
        procs.pop(0).wait()
        done += 1
        last = time.perf_counter()
        if last < end:
            procs.append(subprocess.Popen(CMD))
    return done / (last - t0), done


# ---------------------------------------------------------------- files

def make_file(path, size):
    rnd = random.Random(0x5a4dd)
    step = 16 << 20
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(step, left)
            f.write(rnd.randbytes(n))
            left -= n


def sandd_put(control, src, dst, size, want_sha):
    c = Conn(control)
    try:
        t0 = time.perf_counter()
        c.send({"op": "put", "id": "put", "worker": WORKER, "path": dst,
                "bytes": size})
        with open(src, "rb") as f:
            c.sock.sendfile(f)
        r = c.final("put")
        dt = time.perf_counter() - t0
        check_op(r, "put")
        if r.get("size") != size or r.get("sha256") != want_sha:
            raise RuntimeError("put: size/sha256 differ: %r" % r)
        return dt
    finally:
        c.close()


def sandd_get(control, src, dst, size, want_sha):
    c = Conn(control)
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        t0 = time.perf_counter()
        c.send({"op": "get", "id": "get", "worker": WORKER, "path": src,
                "raw": True})
        r = c.final("get", sink=fd)
        dt = time.perf_counter() - t0
        check_op(r, "get")
        if r.get("size") != size or r.get("sha256") != want_sha:
            raise RuntimeError("get: size/sha256 differ: %r" % r)
        return dt
    finally:
        os.close(fd)
        c.close()


def socat_run(src, dst, size, listen, connect, what):
    """socat src over loopback to dst: the receiver listens at listen
    (an address taking the port), the sender connects to connect; the
    seconds until both are done, the size checked."""
    if shutil.which("socat") is None:
        raise NotAvailable("socat not found")
    port = h.free_port()
    recv = subprocess.Popen(
        ["socat", "-u", "-b", str(SOCAT_BLOCK), listen % port,
         "OPEN:%s,creat,trunc,wronly" % dst],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        wait_listen(port, recv)
        t0 = time.perf_counter()
        send = subprocess.run(
            ["socat", "-u", "-b", str(SOCAT_BLOCK), "OPEN:%s,rdonly" % src,
             connect % port],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        recv.wait(120)
        dt = time.perf_counter() - t0
        if send.returncode != 0 or recv.returncode != 0:
            raise RuntimeError("%s failed: %s" % (what, send.stderr[-300:]))
        if os.path.getsize(dst) != size:
            raise RuntimeError("%s copied %d bytes" % (
                what, os.path.getsize(dst)))
        return dt
    finally:
        stop_group(recv)


def socat_copy(src, dst, size):
    """socat over TCP: (seconds, seconds with an fsync of the copy)."""
    dt = socat_run(src, dst, size, "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr",
                   "TCP:127.0.0.1:%d", "socat")
    # sandd's put flushes the file before it replies: time that too.
    t1 = time.perf_counter()
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return dt, dt + time.perf_counter() - t1


def tls_copy(src, dst, size, certs):
    """socat over TLS on 127.0.0.1, file to file (OpenSSL's default
    protocol and cipher suites, as sandd's link): seconds."""
    return socat_run(
        src, dst, size,
        "OPENSSL-LISTEN:%%d,bind=127.0.0.1,reuseaddr,cert=%s,key=%s,"
        "verify=0" % (certs["server"], certs["server_key"]),
        "OPENSSL:127.0.0.1:%%d,cafile=%s" % certs["ca"], "socat TLS")


def sandd_cp_up(control, src, dst, size, want_sha):
    """`sandd cp SRC worker:DST`: seconds, the copy checked."""
    env = dict(os.environ, SANDD_CONTROL=control)
    t0 = time.perf_counter()
    r = subprocess.run([h.SANDD, "cp", src, "%s:%s" % (WORKER, dst)],
                       env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=300)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError("sandd cp: %s" % r.stderr[-300:].decode(
            errors="replace"))
    if os.path.getsize(dst) != size or file_sha256(dst) != want_sha:
        raise RuntimeError("sandd cp: the copy differs")
    return dt


# The receiving end of a verified loopback copy: what sandd's worker does
# for a put (hash every byte, write it, fsync), in one Python process.
VERIFY_RECEIVER = r"""
import hashlib, os, socket, sys, time
port, dst = int(sys.argv[1]), sys.argv[2]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
print("ready", flush=True)
c, _ = ls.accept()
fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = bytearray(1 << 20)
view = memoryview(buf)
md = hashlib.sha256()
while True:
    n = c.recv_into(buf)
    if not n:
        break
    md.update(view[:n])
    mv = view[:n]
    while mv:
        mv = mv[os.write(fd, mv):]
t = time.perf_counter()
os.fsync(fd)
print(md.hexdigest(), time.perf_counter() - t, flush=True)
"""


def verified_copy(src, dst, size, want):
    """socat sends the file over loopback TCP to a receiver that hashes
    (SHA-256, OpenSSL via hashlib) and writes every byte, then fsyncs.
    Returns (seconds without the fsync, seconds with it)."""
    if shutil.which("socat") is None:
        raise NotAvailable("socat not found")
    port = h.free_port()
    recv = subprocess.Popen([sys.executable, "-c", VERIFY_RECEIVER,
                             str(port), dst], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            text=True)
    try:
        if recv.stdout.readline().strip() != "ready":
            raise RuntimeError("verifying receiver did not start")
        t0 = time.perf_counter()
        send = subprocess.run(
            ["socat", "-u", "-b", str(SOCAT_BLOCK), "OPEN:%s,rdonly" % src,
             "TCP:127.0.0.1:%d" % port],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        out, err = recv.communicate(timeout=120)
        dt = time.perf_counter() - t0
        if send.returncode != 0 or recv.returncode != 0:
            raise RuntimeError("verified copy failed: %s" % (err[-300:] or
                               send.stderr[-300:]))
        digest, fsync_s = out.split()
        if digest != want or os.path.getsize(dst) != size:
            raise RuntimeError("verified copy differs")
        return dt - float(fsync_s), dt
    finally:
        stop_group(recv)


class Sshd:
    """A private sshd on 127.0.0.1 with a generated host key and an
    authorized key, all in a temporary folder."""

    SSHD = "/usr/sbin/sshd"

    def __init__(self, folder):
        self.dir = folder
        self.proc = None

    def start(self):
        if not os.path.exists(self.SSHD):
            raise NotAvailable("%s not found" % self.SSHD)
        for tool in ("ssh-keygen", "scp", "ssh"):
            if shutil.which(tool) is None:
                raise NotAvailable("%s not found" % tool)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        p = lambda n: os.path.join(self.dir, n)
        for key in ("host_key", "user_key"):
            r = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                                "-f", p(key)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            if r.returncode != 0:
                raise NotAvailable("ssh-keygen failed: %s" % r.stdout[-200:])
        shutil.copy(p("user_key.pub"), p("authorized_keys"))
        os.chmod(p("authorized_keys"), 0o600)
        self.key = p("user_key")
        self.port = h.free_port()
        with open(p("sshd_config"), "w") as f:
            f.write("""Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
""" % (self.port, p("host_key"), p("sshd.pid"), p("authorized_keys")))
        self.note = ""
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            # sshd refuses to start as root without its privilege
            # separation folder (the package normally makes it at boot).
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            self.note = "created /run/sshd (sshd's privsep folder)"
        self.log = open(p("sshd.log"), "wb")
        self.proc = subprocess.Popen([self.SSHD, "-D", "-e", "-f",
                                      p("sshd_config")],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        try:
            wait_listen(self.port, self.proc)
        except NotAvailable as e:
            raise NotAvailable("sshd %s: %s" % (e, self.tail()))
        # One login first, so that scp timings do not include a failure.
        r = subprocess.run(self.ssh_base("ssh") + ["-p", str(self.port),
                                                   self.target(), "true"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        if r.returncode != 0:
            raise NotAvailable("ssh login failed: %s" %
                               r.stdout.decode(errors="replace")[-200:])

    def tail(self):
        try:
            with open(os.path.join(self.dir, "sshd.log"), "rb") as f:
                return f.read()[-300:].decode(errors="replace").strip()
        except OSError:
            return ""

    def ssh_base(self, tool):
        return [tool, "-F", "/dev/null", "-i", self.key, "-o",
                "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o",
                "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR"]

    def target(self):
        import getpass
        return "%s@127.0.0.1" % getpass.getuser()

    def scp(self, a, b):
        t0 = time.perf_counter()
        r = subprocess.run(self.ssh_base("scp") + ["-q", "-P", str(self.port),
                                                   a, b],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=300)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError("scp failed: %s" %
                               r.stdout.decode(errors="replace")[-300:])
        return dt

    def stop(self):
        stop_group(self.proc)
        if self.proc is not None:
            self.log.close()


# ---------------------------------------------------------------- cluster

class BenchCluster(h.Cluster):
    """The harness's cluster without -v: logging each exec is not what we
    want to measure."""

    def _serve_argv(self):
        return [h.SANDD, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--control", self.control] + self._serve_extra + \
            self.serve_args

    def worker_argv(self, name, labels=None, args=(), url=None):
        argv = [h.SANDD, "worker", "--server-url", url or self.url,
                "--id", name, "--state-dir", os.path.join(self.tmp, "state")]
        return argv + self._worker_extra + self.worker_args + list(args)


# ---------------------------------------------------------------- report

class Report:
    def __init__(self):
        self.rss = []           # (section, serve KiB, worker KiB)
        self.clusters = []      # other clusters started (for their logs)
        self.execs = {}         # exec_section's results
        self.files = {}         # variant -> median MB/s of file_section
        self.cp = None          # (cp seconds, raw put seconds) medians

    def rss_after(self, section, cl):
        self.rss.append((section, vmhwm(cl.serve.pid),
                         vmhwm(cl.workers[WORKER].pid)))


def row(cols, widths):
    out = []
    for i, (c, w) in enumerate(zip(cols, widths)):
        out.append(c.ljust(w) if i == 0 else c.rjust(w))
    return "  ".join(out).rstrip()


def table(title, header, rows):
    widths = [max(len(r[i]) for r in [header] + rows)
              for i in range(len(header))]
    print()
    print(title)
    print(row(header, widths))
    print(row(["-" * w for w in widths], widths))
    for r in rows:
        print(row(r, widths))


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        aff = len(os.sched_getaffinity(0))
    except AttributeError:
        aff = os.cpu_count()
    ver = subprocess.run([h.SANDD, "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode().strip()
    print("machine: nproc %s, %s, kernel %s %s, RAM %s" % (
        aff, cpu, platform.system(), platform.release(), mem))
    print("software: %s (%s), Python %s, %s" % (
        ver or "sandd ?", h.SANDD, platform.python_version(),
        time.strftime("%Y-%m-%d %H:%M:%S %Z")))


def _watchdog(signum, frame):
    raise Watchdog("benchmark took longer than %ds" % WATCHDOG)


def exec_section(cl, rep):
    rows = []
    notes = []
    res = {}
    try:
        res["sandd"], res["spawn"] = interleaved_latency(cl.control)
        rep.rss_after("exec latency (%d)" % (WARMUP + N), cl)
        res["sandd_t1"], res["spawn_t1"] = interleaved_throughput(
            cl.control, 1, SECONDS)
        res["sandd_tc"], res["spawn_tc"] = interleaved_throughput(
            cl.control, CONC, SECONDS)
        rep.rss_after("exec throughput", cl)
    except NotAvailable as e:
        notes.append("sandd exec: n/a (%s)" % e)
    except Exception as e:
        notes.append("sandd exec: n/a (error: %s)" % e)
    rep.execs = res
    if "spawn" not in res:
        res["spawn"] = local_spawn_latency()
        res["spawn_t1"] = local_spawn_throughput(1, SECONDS)
        res["spawn_tc"] = local_spawn_throughput(CONC, SECONDS)
    res["subp"] = local_subprocess_latency()
    res["subp_t1"] = local_subprocess_throughput(1, SECONDS)
    res["subp_tc"] = local_subprocess_throughput(CONC, SECONDS)

    def line(name, key):
        lat = res.get(key)
        t1 = res.get(key + "_t1")
        tc = res.get(key + "_tc")
        if lat is None:
            return [name, "n/a", "", "", "", ""]
        return [name, fmt(lat[0]), fmt(lat[1]), fmt(lat[2]),
                fmt(t1[0] if t1 else None, "%.0f"),
                fmt(tc[0] if tc else None, "%.0f")]

    def rline(name, a, b):
        la, lb = res.get(a), res.get(b)
        if la is None or lb is None:
            return [name, "-", "-", "-", "-", "-"]
        return [name] + [fmt(ratio(la[i], lb[i]), "%.2fx") for i in range(3)] \
            + [fmt(ratio(res[a + k][0], res[b + k][0]), "%.2fx")
               for k in ("_t1", "_tc")]

    rows.append(line("sandd exec (control socket)", "sandd"))
    rows.append(line("local os.posix_spawn+waitpid", "spawn"))
    rows.append(line("local subprocess.run", "subp"))
    rows.append(rline("ratio sandd / posix_spawn", "sandd", "spawn"))
    rows.append(rline("ratio sandd / subprocess", "sandd", "subp"))
    table("exec %s: round trip, sequential N=%d after %d warm-up (ms); "
          "per second over %ds" % (" ".join(CMD), N, WARMUP, SECONDS),
          ["", "p50 ms", "p99 ms", "mean ms", "per s (1)",
           "per s (%d)" % CONC], rows)
    counts = []
    for k, what in (("sandd", "sandd"), ("spawn", "posix_spawn"),
                    ("subp", "subprocess")):
        if res.get(k + "_t1"):
            counts.append("%s %d/%d" % (what, res[k + "_t1"][1],
                                        res[k + "_tc"][1]))
    print("  (per s (1): one at a time; per s (%d): %d in flight -- sandd: "
          "pipelined on one control connection, local: %d children at "
          "once. sandd and posix_spawn take turns: one exec each in the "
          "latency rows, 5 rounds each in the per-second ones. Execs done "
          "in those runs: %s)" % (CONC, CONC, CONC, ", ".join(counts)))
    for n in notes:
        print("  " + n)


def workspace_section(cl):
    """exec `true` into a workspace next to a plain exec, and
    workspace.create to ready, each p50 of N sequential (issue 12's
    targets: exec <= 2x plain, create <= 50 ms)."""
    c = Conn(cl.control)
    rows, notes = [], []
    try:
        c.send({"op": "workspace.create", "id": "ws", "worker": WORKER,
                "name": "bench"})
        check_op(c.final("ws"), "workspace.create")
        plain, inside, create = [], [], []
        for i in range(WARMUP + N):
            for req, out in ((exec_req(None), plain),
                             (dict(exec_req(None), workspace="bench"),
                              inside)):
                req["id"] = "x%d-%d" % (i, len(out))
                t0 = time.perf_counter()
                c.send(req)
                r = c.final(req["id"])
                dt = time.perf_counter() - t0
                check_op(r, "exec")
                if i >= WARMUP:
                    out.append(dt)
        for i in range(min(N, 50)):
            name = "bench-%d" % i
            t0 = time.perf_counter()
            c.send({"op": "workspace.create", "id": name, "worker": WORKER,
                    "name": name})
            check_op(c.final(name), "workspace.create")
            create.append(time.perf_counter() - t0)
            c.send({"op": "workspace.destroy", "id": "d" + name,
                    "worker": WORKER, "workspace": name})
            check_op(c.final("d" + name), "workspace.destroy")
        lp, li, lc = lat_stats(plain), lat_stats(inside), lat_stats(create)
        rows.append(["plain exec", fmt(lp[0]), fmt(lp[1]), ""])
        rows.append(["exec into a workspace", fmt(li[0]), fmt(li[1]),
                     fmt(ratio(li[0], lp[0]), "%.2fx")])
        rows.append(["workspace.create to ready", fmt(lc[0]), fmt(lc[1]),
                     ""])
        c.send({"op": "workspace.destroy", "id": "dws", "worker": WORKER,
                "workspace": "bench"})
        check_op(c.final("dws"), "workspace.destroy")
    except NotAvailable as e:
        notes.append("workspaces: n/a (%s)" % e)
    except Exception as e:
        notes.append("workspaces: n/a (error: %s)" % e)
    finally:
        c.close()
    table("workspaces: exec %s side by side, N=%d; create, N=%d (ms)" % (
        " ".join(CMD), N, min(N, 50)),
          ["", "p50 ms", "p99 ms", "p50 / plain"], rows)
    for n in notes:
        print("  " + n)


class FileRun:
    """The file section's state: the source file, each variant's times and
    CPU per measured round, failures and notes."""

    def __init__(self, cl, rep, work):
        self.cl, self.rep, self.work = cl, rep, work
        self.mb = FILE_SIZE / 1e6
        self.src = os.path.join(work, "src.bin")
        t0 = time.perf_counter()
        make_file(self.src, FILE_SIZE)
        self.gen = time.perf_counter() - t0
        self.want = file_sha256(self.src)
        self.times = {}     # variant -> seconds, one per measured round
        self.cpu = {}       # variant -> (client, serve, worker) CPU s
        self.failed = {}    # variant -> "n/a (...)"; not retried
        self.notes = []
        self.measured = False
        self.tcl = None     # the wss:// cluster
        self.certs = None
        self.tls_ver = "TLS"
        self.tls_how = "unknown (the probe failed)"
        self.rounds_s = 0.0

    def attempt(self, key, fn, *args):
        """fn(*args), or None (and key marked failed) if it fails."""
        if key in self.failed:
            return None
        try:
            return fn(*args)
        except NotAvailable as e:
            self.failed[key] = "n/a (%s)" % e
        except Exception as e:
            self.failed[key] = "n/a (error)"
            self.notes.append("%s: %s" % (key, str(e)[:300]))
        return None

    def keep(self, key, dt, c=None, measured=None):
        if measured is None:
            measured = self.measured
        if measured and dt is not None:
            self.times.setdefault(key, []).append(dt)
            if c is not None:
                self.cpu.setdefault(key, []).append(c)

    def put_get(self, c, key, suffix):
        """One sandd put and one sandd get through cluster c (None: the
        cluster did not start, and both are marked failed already)."""
        if c is None:
            return
        dst = os.path.join(self.work, "put.bin")
        m = CpuMeter(c)
        v = self.attempt("put" + key, sandd_put, c.control, self.src, dst,
                         FILE_SIZE, self.want)
        self.keep("put" + key, v, m.done())
        rm(dst)
        if not self.measured:
            self.rep.rss_after("put %d MiB%s" % (FILE_MB, suffix), c)

        dst = os.path.join(self.work, "get.bin")
        m = CpuMeter(c)
        v = self.attempt("get" + key, sandd_get, c.control, self.src, dst,
                         FILE_SIZE, self.want)
        cs = m.done()
        if v is not None and file_sha256(dst) != self.want:
            self.failed["get" + key] = "n/a (error)"
            self.notes.append("get%s: the local copy's sha256 differs" % key)
            v = None
        self.keep("get" + key, v, cs)
        rm(dst)
        if not self.measured:
            self.rep.rss_after("get %d MiB%s" % (FILE_MB, suffix), c)

    def start_wss(self):
        """The wss:// cluster: a second serve and worker whose worker link
        is TLS, up only for the rounds, so that its put and get take turns
        with the plain ones under the same conditions."""
        tcl = BenchCluster(workers={WORKER: {}}, tls=True)
        self.rep.clusters.append(tcl)
        try:
            tcl.__enter__()
        except Exception as e:
            self.failed["put_tls"] = self.failed["get_tls"] = \
                "n/a (no wss cluster)"
            self.notes.append("wss cluster: %s" % first_line(e))
            tcl.cleanup()
            tcl = None
        self.tcl = tcl
        # The TLS loopback yardstick uses the same kind of certificate.
        self.certs = tcl.certs if tcl else None
        if self.certs is None:
            try:
                self.certs = h.gen_certs(os.path.join(self.work, "certs"))
            except Exception as e:
                self.failed["tls"] = "n/a (no certificates: %s)" % \
                    first_line(e)
        if tcl:
            self.rep.rss_after("start, wss cluster", tcl)
            try:
                ver, cipher = tls_probe(tcl.port, tcl.certs["ca"])
                self.tls_ver = ver.replace("TLSv", "TLS ")
                self.tls_how = "%s, %s" % (self.tls_ver, cipher)
            except Exception as e:
                self.notes.append("TLS probe: %s" % first_line(e))

    def one_round(self):
        """Every variant once, each copy deleted at once."""
        src, want, work = self.src, self.want, self.work
        dst = os.path.join(work, "socat.bin")
        v = self.attempt("socat", socat_copy, src, dst, FILE_SIZE)
        rm(dst)
        if v is not None:
            self.keep("socat", v[0])
            self.keep("socat_sync", v[1])
        dst = os.path.join(work, "tls.bin")
        self.keep("tls", self.attempt("tls", tls_copy, src, dst, FILE_SIZE,
                                      self.certs))
        rm(dst)
        dst = os.path.join(work, "verified.bin")
        v = self.attempt("verify", verified_copy, src, dst, FILE_SIZE, want)
        rm(dst)
        if v is not None:
            self.keep("verify", v[0])
            self.keep("verify_sync", v[1])
        self.put_get(self.cl, "", "")
        self.put_get(self.tcl, "_tls", ", wss cluster")
        self.keep("sha", self.attempt("sha", sha256_time, src, want))

    def rounds(self):
        """Round 0 is a warm-up and not reported: the first writes into
        freshly allocated page-cache memory are slow on some (virtual)
        machines, and every variant deletes its copy at once, so later
        rounds all reuse the same memory."""
        try:
            self.start_wss()
            t0 = time.perf_counter()
            for rnd in range(ROUNDS + 1):
                self.measured = rnd > 0
                self.one_round()
            self.rounds_s = time.perf_counter() - t0
            self.rep.rss_after("file, %d+1 rounds" % ROUNDS, self.cl)
            if self.tcl:
                self.rep.rss_after("file, %d+1 rounds, wss cluster" %
                                   ROUNDS, self.tcl)
        finally:
            if self.tcl:
                self.tcl.cleanup()

    def scp(self):
        """scp is slow (one SSH connection and cipher per run): one run
        each, after the rounds, so it too writes into reused memory."""
        sshd = Sshd(os.path.join(self.work, "ssh"))
        try:
            try:
                sshd.start()
                if sshd.note:
                    self.notes.append(sshd.note)
            except NotAvailable as e:
                self.failed["scp_up"] = self.failed["scp_down"] = \
                    "n/a (%s)" % e
            if "scp_up" in self.failed:
                return
            remote = "%s:" % sshd.target()
            up = os.path.join(self.work, "scp-up.bin")
            down = os.path.join(self.work, "scp-down.bin")
            for key, a, b, dst in (("scp_up", self.src, remote + up, up),
                                   ("scp_down", remote + self.src, down,
                                    down)):
                v = self.attempt(key, sshd.scp, a, b)
                if v is not None and os.path.getsize(dst) != FILE_SIZE:
                    self.failed[key] = "n/a (short copy)"
                self.keep(key, v, measured=True)
                rm(dst)
        finally:
            sshd.stop()

    def bad(self, k):
        return self.failed.get(k[:-len("_sync")] if k.endswith("_sync")
                               else k)

    def med(self, k):
        """Median seconds of variant k, or None."""
        v = self.times.get(k)
        return statistics.median(v) if v and not self.bad(k) else None

    def mbps(self, k):
        t = self.med(k)
        return self.mb / t if t else None

    def cells(self, k):
        t, mb = self.med(k), self.mb
        if t is None:
            return [self.bad(k) or "-", "-", "-"]
        v = self.times[k]
        spread = "%.0f-%.0f" % (mb / max(v), mb / min(v)) if len(v) > 1 \
            else "-"
        return [fmt(mb / t, "%.0f"), spread, fmt(t, "%.2f")]

    def cpu_cells(self, k):
        c = self.cpu.get(k) if self.med(k) is not None else None
        if not c or any(x is None for r in c for x in r):
            return ["-", "-", "-", "-"]
        return [fmt(statistics.median([r[i] for r in c]), "%.2f")
                for i in range(4)]

    def tables(self):
        sha_impl = "OpenSSL via hashlib" \
            if hashlib.sha256.__name__.startswith("openssl") else "hashlib"
        rows = []
        for name, k in (("sandd put (raw payload)", "put"),
                        ("sandd get (raw events)", "get"),
                        ("sandd put over wss:// (%s)" % self.tls_ver,
                         "put_tls"),
                        ("sandd get over wss:// (%s)" % self.tls_ver,
                         "get_tls"),
                        ("socat TCP 127.0.0.1 file->file", "socat"),
                        ("socat, then fsync of the copy", "socat_sync"),
                        ("socat over TLS (OpenSSL defaults) file->file",
                         "tls"),
                        ("socat to a receiver that hashes (SHA-256) and "
                         "writes", "verify"),
                        ("the same, then fsync of the copy", "verify_sync"),
                        ("scp upload (private sshd), 1 run", "scp_up"),
                        ("scp download (private sshd), 1 run", "scp_down"),
                        ("SHA-256 of the file (%s, one core)" % sha_impl,
                         "sha")):
            rows.append([name] + self.cells(k) + self.cpu_cells(k))
        table("file transfer of %d MiB of random data, loopback: median of "
              "%d rounds after 1 warm-up round (MB/s = 10^6 bytes/s; "
              "generated in %.1fs, rounds took %.1fs)" % (
                  FILE_MB, ROUNDS, self.gen, self.rounds_s),
              ["", "MB/s", "range MB/s", "seconds", "client CPU s",
               "serve CPU s", "worker CPU s", "of it hashing"], rows)
        rrows = []
        for name, a, b in (
                ("put / socat", "put", "socat"),
                ("put / (socat + fsync)", "put", "socat_sync"),
                ("get / socat", "get", "socat"),
                ("put / (hashing copy + fsync)", "put", "verify_sync"),
                ("get / hashing copy", "get", "verify"),
                ("put / scp upload", "put", "scp_up"),
                ("get / scp download", "get", "scp_down"),
                ("put / SHA-256 rate", "put", "sha"),
                ("get / SHA-256 rate", "get", "sha"),
                ("put wss / put ws", "put_tls", "put"),
                ("get wss / get ws", "get_tls", "get"),
                ("put wss / TLS loopback (socat)", "put_tls", "tls"),
                ("get wss / TLS loopback (socat)", "get_tls", "tls")):
            rrows.append([name, fmt(ratio(self.mbps(a), self.mbps(b)),
                                    "%.2fx")])
        table("throughput ratios (sandd / other, and wss / ws; >1 means the "
              "first is faster; from the medians)", ["", "ratio"], rrows)

    def explain(self):
        """How the file figures were taken, under the tables."""
        print("  (how: each round runs socat, socat over TLS, the hashing "
              "copy, sandd put, sandd get, sandd put and get over wss:// "
              "and the SHA-256 pass, in that order, each copy deleted at "
              "once, so all write into the same reused page-cache memory; "
              "round 1 of %d is a warm-up and not reported. MB/s and "
              "seconds: the median time of the other %d rounds; range "
              "MB/s: slowest-fastest of those rounds; CPU s: the median of "
              "each column on its own. scp: one run each, after the "
              "rounds, as it is slow)" % (ROUNDS + 1, ROUNDS))
        print("  (put: from the request line until the reply, which comes "
              "after the worker fsync'd and renamed the file, so compare it "
              "with socat + fsync; get: until the final reply, payloads "
              "written to a local file by this Python client (its CPU is in "
              "the table); socat -b %d; socat over TLS: the server "
              "certificate of the wss:// cluster, OpenSSL's defaults; scp: "
              "default cipher, one new SSH connection each, sftp mode; all "
              "on one machine, source file in the page cache)" % SOCAT_BLOCK)
        print("  (SHA-256: hashlib over the source file in 1 MiB reads, one "
              "core. sandd's worker hashes every byte it writes or reads "
              "(each put and get reply carries the sha256), and one SHA-256 "
              "stream cannot be split across cores, so a verified transfer "
              "cannot beat this rate; it can only come near it if the "
              "hashing overlaps the I/O, otherwise hash and I/O times add "
              "up. The hashing copy is the plain copy doing what sandd "
              "must: socat sends, and one Python process receives in 1 MiB "
              "reads, hashes and writes each piece (and fsyncs, for the "
              "second row). The worker hashes on its own thread "
              "(sandd-hash; 'of it hashing' is that thread's share of the "
              "worker's CPU), so on a machine of its own a worker's pace is "
              "set by the larger of its two threads, not by their sum; on "
              "this 2-core machine all processes share the cores)")
        if self.tcl:
            print("  (wss://: a second serve and worker on 127.0.0.1, "
                  "started for the rounds only and stopped before scp, "
                  "whose worker link is TLS (serve --tls-cert/--tls-key, "
                  "worker --ca and a wss:// URL; no client certificate); "
                  "negotiated: %s -- OpenSSL's default cipher suites, as "
                  "sandd sets none (seen by Python's ssl, %s, with default "
                  "settings on the same listener); server certificate ECDSA "
                  "P-256 signed by a throwaway self-signed test CA made with "
                  "the openssl CLI; same machine, same file, same rounds. "
                  "Only the serve-worker link is encrypted: this client "
                  "still talks to serve over its Unix control socket)"
                  % (self.tls_how, ssl.OPENSSL_VERSION))
        for n in self.notes:
            print("  " + n)


def file_section(cl, rep, work):
    run = FileRun(cl, rep, work)
    try:
        run.rounds()
        run.scp()
    finally:
        rm(run.src)
    run.tables()
    rep.files = {k: run.mbps(k) for k in (
        "put", "get", "put_tls", "get_tls", "socat", "socat_sync", "tls",
        "verify", "verify_sync", "scp_up", "scp_down", "sha")}
    run.explain()


def cp_section(cl, rep, work):
    """`sandd cp` up against a raw put of the same file, taking turns."""
    size = CP_MB * 1024 * 1024
    src = os.path.join(work, "cp-src.bin")
    dst = os.path.join(work, "cp-dst.bin")
    times = {"cp": [], "put": []}
    title = ("sandd cp of %d MiB up vs a raw put of the same file: median "
             "of %d rounds after 1 warm-up round" % (CP_MB, ROUNDS))
    try:
        make_file(src, size)
        want = file_sha256(src)
        for rnd in range(ROUNDS + 1):
            t_put = sandd_put(cl.control, src, dst, size, want)
            rm(dst)
            t_cp = sandd_cp_up(cl.control, src, dst, size, want)
            rm(dst)
            if rnd > 0:
                times["put"].append(t_put)
                times["cp"].append(t_cp)
    except NotAvailable as e:
        print("\n%s\n  n/a (%s)" % (title, e))
        return
    except Exception as e:
        print("\n%s\n  n/a (error: %s)" % (title, first_line(e)))
        return
    finally:
        rm(src)
        rm(dst)
    cp, put = statistics.median(times["cp"]), statistics.median(times["put"])
    rep.cp = (cp, put)
    mb = size / 1e6
    table(title, ["", "seconds", "MB/s", "range s"], [
        ["sandd cp FILE w:PATH", fmt(cp, "%.2f"), fmt(mb / cp, "%.0f"),
         "%.2f-%.2f" % (min(times["cp"]), max(times["cp"]))],
        ["raw put (this client, sendfile)", fmt(put, "%.2f"),
         fmt(mb / put, "%.0f"),
         "%.2f-%.2f" % (min(times["put"]), max(times["put"]))],
        ["ratio cp / raw put", fmt(ratio(cp, put), "%.2fx"), "", ""]])
    print("  (cp: the whole command, a stat of the target first, the "
          "client's own SHA-256 of the file compared with the worker's; "
          "raw put: the request line, the file by sendfile, the reply)")


def load_avg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def summary(rep, load0, load1):
    """Issue 15's rows that are this run's, each by its yardstick."""
    e, f = rep.execs, rep.files
    rows = []

    def add(path, a, ya, yname, r, target, good):
        met = "-" if r is None else ("yes" if good(r) else "no")
        rows.append([path, a, "%s %s" % (yname, ya), fmt(r, "%.2fx"),
                     target, met])

    def lat(k):
        return e[k][0] if e.get(k) else None

    def per_s(k):
        return e[k][0] if e.get(k) else None

    add("exec true, p50 round trip", fmt(lat("sandd"), "%.2f ms"),
        fmt(lat("spawn"), "%.2f ms"), "local posix_spawn+wait",
        ratio(lat("sandd"), lat("spawn")), "<= 1.25x", lambda r: r <= 1.25)
    add("exec true, %d in flight" % CONC, fmt(per_s("sandd_tc"), "%.0f/s"),
        fmt(per_s("spawn_tc"), "%.0f/s"), "local",
        ratio(per_s("sandd_tc"), per_s("spawn_tc")), ">= 1.0x",
        lambda r: r >= 1.0)
    mbs = lambda k: fmt(f.get(k), "%.0f MB/s")
    for what, k, yk, yname, target, lim in (
            ("put", "put", "socat_sync", "socat+fsync", ">= 0.9x", 0.9),
            ("put", "put", "scp_up", "scp", ">= 3x", 3.0),
            ("get", "get", "verify", "hashing copy", ">= 0.8x", 0.8),
            ("get", "get", "scp_down", "scp", ">= 3x", 3.0),
            ("put over wss://", "put_tls", "tls", "TLS loopback", ">= 0.5x",
             0.5),
            ("get over wss://", "get_tls", "tls", "TLS loopback", ">= 0.5x",
             0.5)):
        add("%s %d MiB" % (what, FILE_MB), mbs(k), mbs(yk), yname,
            ratio(f.get(k), f.get(yk)), target,
            lambda r, lim=lim: r >= lim)
    cp, put = rep.cp if rep.cp else (None, None)
    add("sandd cp %d MiB up" % CP_MB, fmt(cp, "%.2f s"), fmt(put, "%.2f s"),
        "raw put", ratio(cp, put), "<= 1.1x", lambda r: r <= 1.1)
    table("issue 15, this run's rows: sandd by its yardstick from the same "
          "run (load average %s before, %s after)" % (load0, load1),
          ["path", "sandd", "yardstick", "ratio", "target", "met"], rows)


def clients_section():
    """RSS growth of serve under clients that never read (see the doc)."""
    import test_tenants as tt
    seconds = _env_int("BENCH_FLOOD_S", 10)
    print()
    print("bounded clients (6 streaming execs and a subscriber that never "
          "read, a worker saying hello %ds)" % seconds)
    try:
        with h.Cluster(workers={WORKER: {}}) as c:
            ctl = c.connect()
            check_op(ctl.call({"op": "exec", "worker": WORKER,
                               "cmd": "true"}), "exec")
            base = h.rss_kb(c.serve.pid)
            for _ in range(6):
                s = c.connect()
                s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.send({"op": "exec", "worker": WORKER, "stream": True,
                        "cmd": "cat /dev/zero | base64"})
            sub = c.connect()
            sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sub.send({"op": "subscribe", "topics": ["workers",
                                                    "sessions"]})
            rounds = tt.hello_flood(c.port, seconds)
            time.sleep(1)
            peak = h.rss_kb(c.serve.pid)
            print("  serve RSS: %s before, %s after; grew %.1f MiB "
                  "(goal: < 32 MiB); %d hellos, %d events" % (
                      fmt_kib(base), fmt_kib(peak), (peak - base) / 1024.0,
                      rounds, 2 * rounds))
            print("  (VmRSS of serve just before the clients and 1 s after "
                  "the flood; clients' receive buffers 4 KiB; the "
                  "subscriber's events past 4 MiB unread are dropped with "
                  "an overflow event, its streams pause at 1 MiB)")
    except Exception as e:
        print("  n/a (%s)" % first_line(e))


def main():
    signal.signal(signal.SIGALRM, _watchdog)
    signal.alarm(WATCHDOG)
    t_start = time.monotonic()
    print("sandd benchmark")
    machine()
    load0 = load_avg()
    print("load average (1, 5, 15 min): %s" % load0)
    print("counts: exec N=%d (+%d warm-up), throughput %ds at 1 and %d in "
          "flight, file %d MiB x %d rounds (+1 warm-up)" % (
              N, WARMUP, SECONDS, CONC, FILE_MB, ROUNDS))
    rep = Report()
    work = tempfile.mkdtemp(prefix="sandd-bench-", dir="/tmp")
    os.chmod(work, 0o700)

    cl = BenchCluster(workers={WORKER: {}})
    try:
        try:
            cl.__enter__()
        except Exception as e:
            print("FAIL: the cluster did not start: %s" % e)
            return 1
        rep.rss_after("start", cl)
        exec_section(cl, rep)
        workspace_section(cl)
        file_section(cl, rep, work)
        cp_section(cl, rep, work)
        import bench_pty
        # The PTY section has a time budget of its own.
        signal.alarm(signal.alarm(0) + bench_pty.BUDGET)
        bench_pty.pty_section(cl, rep, work)
        table("peak RSS (VmHWM) after each section",
              ["after", "serve", "worker"],
              [[s, fmt_kib(a), fmt_kib(b)] for s, a, b in rep.rss])
        clients_section()
        import bench_herd
        signal.alarm(bench_herd.WATCHDOG)
        bench_herd.herd_section()
        summary(rep, load0, load_avg())
    except Watchdog as e:
        print("stopped: %s" % e)
    finally:
        signal.alarm(0)
        cl.cleanup()
        if not os.environ.get("SANDD_KEEP_TMP"):
            shutil.rmtree(work, ignore_errors=True)
    for c in [cl] + rep.clusters:
        for name, text in sorted(c.logs.items()):
            if c.sanitizer_reports and text.strip():
                print("--- %s%s" % (name, " (wss cluster)" if c.tls else ""))
                print(text)
    print("\ntotal time %.0fs" % (time.monotonic() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())

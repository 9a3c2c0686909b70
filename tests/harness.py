"""Integration test harness for sandd (stdlib only).

Runs real `sandd serve` and `sandd worker` processes in a private temporary
folder, talks to the control socket, and cleans everything up on every path
(process groups are killed; any process still carrying the cluster's
environment marker is killed too; daemon logs are kept for failure output).

    import harness as h
    with h.Cluster(workers={"w1": {"role": "a"}}) as c:
        ctl = c.connect()
        r = ctl.call({"op": "exec", "worker": "w1", "cmd": "echo hi"})
    h.run_main(globals())

Beyond the API in the brief:
    h.T(s)                      scale a deadline by $SANDD_TEST_TIMEOUT
    h.MEM(kib)                  scale a bound on RSS growth for an ASan build
    h.ok(r) / h.err(r, code)    assert a final reply; return it
    h.out(msg, "stdout")        bytes of a text/bytes field (or its _b64)
    h.is_final(msg)             "ok" present and not an event
    h.wait_for(pred, timeout)   poll until pred() is true
    h.rss_kb(pid)               VmRSS of a process, KiB
    h.run_sandd(args)           run the binary, CompletedProcess (bytes)
    h.http_get(port, path, tls=, ca=) -> (status, headers, body)
    h.gen_certs(dir)            CA + server/client certs via openssl CLI
    h.free_port()
    Cluster(tls=True|"mutual", token=True|"TOKEN", wait=True)
    c.proxy() -> Proxy          TCP proxy to cut worker links: drop(),
                                refuse(on); start_worker(..., url=p.url)
    c.run(args)                 client subcommand with SANDD_CONTROL set
    c.stop_server(sig), c.wait_worker(name), c.log("serve"|"worker-NAME")
    c.certs, c.token_value, c.workers[name] (Popen), c.serve (Popen)
    ctl.collect(id) -> (events, final) for a request sent with send()
    ctl.recv_until(pred) -> (skipped, msg); ctl.at_eof(); ctl.shutdown_write()

Environment:
    SANDD_BIN           the binary (default: <repo>/sandd)
    SANDD_TEST_TIMEOUT  multiplier for every deadline (e.g. 3 for ASan builds)
    SANDD_KEEP_TMP      keep the temporary folders (for debugging)
A sanitizer report (ASan/UBSan/LSan) in a daemon log fails the test.
"""

import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SANDD = os.environ.get("SANDD_BIN") or os.path.join(REPO, "sandd")

try:
    SCALE = float(os.environ.get("SANDD_TEST_TIMEOUT", "1") or "1")
    if SCALE <= 0:
        SCALE = 1.0
except ValueError:
    SCALE = 1.0

# Seconds a single test function may take before it is failed.
TEST_TIMEOUT = 120


def T(seconds):
    """Scale a deadline by $SANDD_TEST_TIMEOUT."""
    return seconds * SCALE


# Under valgrind (make valgrind) a daemon is far slower and bigger, and
# valgrind keeps file descriptors of its own.
VALGRIND = "valgrind" in os.path.basename(SANDD)

# An AddressSanitizer build holds freed memory in quarantine and adds
# shadow pages: the same run's RSS grows about three times as much.
SANITIZED = os.path.basename(SANDD).endswith("-asan")


def MEM(kib):
    """Scale a bound on RSS growth for a sanitizer build."""
    return kib * 3 if SANITIZED else kib


class Skip(Exception):
    """Raise to skip a test."""


def _disks():
    """Can this host bound a workspace's disk (loop devices, mkfs.ext4)?
    Why not, or None. SANDD_TEST_NO_DISKS=1 plays a host without."""
    if os.environ.get("SANDD_TEST_NO_DISKS"):
        return "SANDD_TEST_NO_DISKS is set"
    if not os.access("/dev/loop-control", os.R_OK | os.W_OK):
        return "no usable /dev/loop-control (a container without loop " \
            "devices?)"
    if not any(os.access(os.path.join(d, "mkfs.ext4"), os.X_OK)
               for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")):
        return "no mkfs.ext4 (scripts/deps.sh installs e2fsprogs)"
    return None


NO_DISKS = _disks()
DISKS = NO_DISKS is None


def needs_disks():
    """Skip a test of workspace disks where the host cannot make them."""
    if not DISKS:
        raise Skip("workspace disks cannot be bounded here: " + NO_DISKS)


class HarnessError(Exception):
    """The harness could not set up what a test asked for."""


# ---------------------------------------------------------------- helpers

def free_port():
    """Return a TCP port on 127.0.0.1 that is free right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_for(pred, timeout=10, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; return it or raise."""
    deadline = time.monotonic() + T(timeout)
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # keep polling; report the last error
            last_exc = e
        if time.monotonic() > deadline:
            msg = "timed out waiting for %s" % what
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise AssertionError(msg)
        time.sleep(interval)


def rss_kb(pid):
    """Resident set size of process pid now (VmRSS), in KiB; 0 if gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return next((int(l.split()[1]) for l in f
                         if l.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def ok(r):
    """Assert that reply r is ok:true and return it."""
    assert isinstance(r, dict) and r.get("ok") is True, \
        "expected ok reply, got %r" % (r,)
    return r


def err(r, code):
    """Assert that reply r is an error with this code and return it."""
    assert isinstance(r, dict) and r.get("ok") is False, \
        "expected error %s, got %r" % (code, r)
    e = r.get("error")
    assert isinstance(e, dict), "error object missing: %r" % (r,)
    assert e.get("code") == code, "expected code %s, got %r" % (code, r)
    assert isinstance(e.get("message"), str), "error has no message: %r" % (r,)
    return r


def is_final(m):
    """A request's final message has "ok" and is not an event (broadcast
    "result" events carry "ok" too)."""
    return "ok" in m and "event" not in m


def out(r, name="stdout"):
    """Bytes of a text/bytes field (name or name_b64) of a message."""
    if name in r and r[name] is not None:
        return r[name].encode("utf-8")
    if name + "_b64" in r and r[name + "_b64"] is not None:
        return base64.b64decode(r[name + "_b64"])
    return b""


def _clean_env(extra=None):
    env = dict(os.environ)
    for k in ("SANDD_TOKEN", "SERVER_URL", "DAEMON_ID", "SANDD_CONTROL"):
        env.pop(k, None)
    if SANITIZED and "quarantine_size_mb" not in env.get("ASAN_OPTIONS", ""):
        # ASan holds 256 MiB of freed memory by default: the daemons'
        # RSS would show that, not their bounds (and CI runs dozens).
        env["ASAN_OPTIONS"] = ":".join(
            o for o in (env.get("ASAN_OPTIONS"), "quarantine_size_mb=16")
            if o)
    if extra:
        env.update(extra)
    return env


def _wait_binary(timeout=30):
    """The binary may be being relinked by a concurrent `make`: wait."""
    deadline = time.monotonic() + timeout
    while not os.access(SANDD, os.X_OK):
        if time.monotonic() > deadline:
            raise HarnessError("sandd binary not found at %s (run make)"
                               % SANDD)
        time.sleep(0.2)


def run_sandd(args, timeout=20, input=None, env=None, cwd=None):
    """Run `sandd ARGS...` to completion; return CompletedProcess (bytes)."""
    _wait_binary()
    return subprocess.run([SANDD] + list(args), input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=T(timeout), env=_clean_env(env), cwd=cwd,
                          start_new_session=True)


def _tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def _killpg(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_proc(p, sig=signal.SIGTERM, grace=3):
    """Signal a process group; SIGKILL it if it has not exited in time."""
    if p is None:
        return
    if p.poll() is None:
        _killpg(p, sig)
        try:
            p.wait(T(grace))
        except subprocess.TimeoutExpired:
            pass
    # Also kill anything left in the group (children of the process).
    _killpg(p, signal.SIGKILL)
    try:
        p.wait(T(5))
    except subprocess.TimeoutExpired:
        pass


def _kill_marked(marker, guard_wait=10):
    """SIGKILL every process of ours whose environment holds marker. A
    worker's guardian (sandd-guard) gets guard_wait seconds (scaled) to
    finish ending and removing its dead worker's groups first: killed
    halfway, it leaves them behind for good."""
    me = os.getpid()
    # Not named SANDD_*: workers pass no SANDD_* on to their commands.
    needle = ("TEST_SANDD_CLUSTER=%s" % marker).encode()
    spare_guards = time.monotonic() + T(guard_wait)
    late = 0
    while late < 3:
        found = False
        if time.monotonic() >= spare_guards:
            late += 1
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read()
                with open("/proc/%s/comm" % d) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if needle in env.split(b"\0"):
                found = True
                if comm == "sandd-guard" and \
                        time.monotonic() < spare_guards:
                    continue
                try:
                    os.kill(int(d), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        time.sleep(0.05)


def gen_certs(folder, names=("server", "client", "worker2")):
    """Make a test CA and leaf certificates with the openssl CLI.

    Returns a dict: ca, ca_key, and for each name NAME (cert) and NAME_key.
    The server certificate is valid for 127.0.0.1 and localhost."""
    if shutil.which("openssl") is None:
        raise Skip("openssl CLI not found")
    os.makedirs(folder, exist_ok=True)
    cnf = os.path.join(folder, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write("""[req]
distinguished_name = dn
prompt = no
[dn]
CN = sandd-test
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[v3_client]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
""")

    def ossl(*args):
        r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=T(60), cwd=folder)
        if r.returncode != 0:
            raise HarnessError("openssl %s failed: %s" % (
                " ".join(args), r.stderr.decode(errors="replace")))

    p = lambda n: os.path.join(folder, n)
    res = {"ca": p("ca.pem"), "ca_key": p("ca.key")}
    ossl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p("ca.key"),
         "-out", p("ca.pem"), "-days", "2", "-config", cnf,
         "-extensions", "v3_ca", "-subj", "/CN=sandd-test-ca")
    for n in names:
        ossl("req", "-new", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             p(n + ".key"), "-out", p(n + ".csr"), "-config", cnf,
             "-subj", "/CN=%s" % ("127.0.0.1" if n == "server" else n))
        ossl("x509", "-req", "-in", p(n + ".csr"), "-CA", p("ca.pem"),
             "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p(n + ".pem"),
             "-days", "2", "-extfile", cnf, "-extensions",
             "v3_server" if n == "server" else "v3_client")
        res[n] = p(n + ".pem")
        res[n + "_key"] = p(n + ".key")
    return res


def http_get(port, path, tls=False, ca=None, host="127.0.0.1", timeout=10,
             headers=None, cert=None, key=None):
    """Plain HTTP/1.1 GET; returns (status, headers_dict_lowercase, body)."""
    s = socket.create_connection((host, port), timeout=T(timeout))
    try:
        if tls:
            ctx = ssl.create_default_context(cafile=ca)
            if ca is None:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if cert:
                ctx.load_cert_chain(cert, key)
            s = ctx.wrap_socket(s, server_hostname=host)
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (
            path, host, port)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        req += "\r\n"
        s.sendall(req.encode())
        data = b""
        deadline = time.monotonic() + T(timeout)
        hdr_end = -1
        clen = None
        while True:
            if hdr_end < 0:
                hdr_end = data.find(b"\r\n\r\n")
                if hdr_end >= 0:
                    for line in data[:hdr_end].split(b"\r\n")[1:]:
                        k, _, v = line.partition(b":")
                        if k.strip().lower() == b"content-length":
                            clen = int(v.strip())
            if hdr_end >= 0 and clen is not None and \
                    len(data) >= hdr_end + 4 + clen:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("HTTP response not complete: %r" % data)
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines or not lines[0].startswith(b"HTTP/"):
        raise AssertionError("not an HTTP response: %r" % data[:200])
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        hdrs[k.strip().lower().decode()] = v.strip().decode(errors="replace")
    if clen is not None:
        body = body[:clen]
    elif hdrs.get("transfer-encoding", "").lower() == "chunked":
        dec, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            dec += rest[:n]
            rest = rest[n + 2:]
        body = dec
    return status, hdrs, body


# ---------------------------------------------------------------- control

class Ctl:
    """One connection to the control socket."""

    def __init__(self, path, timeout=10):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(T(timeout))
        self.sock.connect(path)
        self.buf = bytearray()
        self.backlog = []       # messages read but not yet handed out
        self.next_id = 1
        self.closed = False

    # -- sending
    def send(self, obj):
        line = json.dumps(obj, separators=(",", ":")) + "\n"
        self.sock.sendall(line.encode("utf-8"))

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def shutdown_write(self):
        """Half-close: tell the server we send nothing more."""
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- receiving
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no message from server in time "
                               "(buffered: %r)" % self.buf[:200])
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise TimeoutError("no message from server in time "
                               "(buffered: %r)" % self.buf[:200])
        if not chunk:
            raise EOFError("server closed the control connection "
                           "(buffered: %r)" % self.buf[:200])
        self.buf += chunk

    def _read_msg(self, deadline):
        # Scan only what is new: a reply of 100 MB must not cost O(n^2).
        if not isinstance(self.buf, bytearray):
            self.buf = bytearray(self.buf)     # a test put bytes back
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                break
            start = len(self.buf)
            self._fill(deadline)
        line = bytes(self.buf[:i])
        del self.buf[:i + 1]
        try:
            msg = json.loads(line.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError("server sent a line that is not JSON: "
                                 "%r (%s)" % (line[:300], e))
        if not isinstance(msg, dict):
            raise AssertionError("server sent a non-object: %r" % (msg,))
        n = msg.get("bytes")
        if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            while len(self.buf) < n:
                self._fill(deadline)
            msg["_payload"] = bytes(self.buf[:n])
            del self.buf[:n]
        return msg

    def recv(self, timeout=10):
        """Next message (from the backlog first); raises TimeoutError."""
        if self.backlog:
            return self.backlog.pop(0)
        return self._read_msg(time.monotonic() + T(timeout))

    def recv_raw(self, timeout=10):
        """Whatever raw bytes arrive next (b"" at EOF)."""
        if self.buf:
            b, self.buf = bytes(self.buf), bytearray()
            return b
        self.sock.settimeout(T(timeout))
        return self.sock.recv(262144)

    def recv_until(self, pred, timeout=10):
        """Read messages until pred(msg); return (skipped, msg).

        Skipped messages are returned, not kept in the backlog."""
        deadline = time.monotonic() + T(timeout)
        skipped = []
        while True:
            if self.backlog:
                m = self.backlog.pop(0)
            else:
                m = self._read_msg(deadline)
            if pred(m):
                return skipped, m
            skipped.append(m)

    def at_eof(self, timeout=5):
        """True if the server closes the connection within timeout
        (any messages that arrive first are kept in the backlog)."""
        deadline = time.monotonic() + T(timeout)
        while True:
            try:
                self.backlog.append(self._read_msg(deadline))
            except EOFError:
                return True
            except TimeoutError:
                return False
            except OSError:
                return True

    def _new_id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def call_events(self, obj, timeout=30):
        """Send a request; return (events, final) for it.

        Adds an integer id when obj has none. Messages about other requests
        or without an id are kept for recv()."""
        obj = dict(obj)
        if "id" not in obj:
            obj["id"] = self._new_id()
        rid = obj["id"]
        self.send(obj)
        return self.collect(rid, timeout)

    def collect(self, rid, timeout=30):
        """(events, final) for an already-sent request with id rid."""
        deadline = time.monotonic() + T(timeout)

        def mine(m):
            return "id" in m and m["id"] == rid and \
                type(m["id"]) is type(rid)
        events, rest, final = [], [], None
        for m in self.backlog:
            if final is None and mine(m):
                if is_final(m):
                    final = m
                else:
                    events.append(m)
            else:
                rest.append(m)
        self.backlog = rest
        while final is None:
            m = self._read_msg(deadline)
            if mine(m):
                if is_final(m):
                    final = m
                else:
                    events.append(m)
            else:
                self.backlog.append(m)
        return events, final

    def call(self, obj, timeout=30):
        """Send a request; return its final reply (events are dropped)."""
        return self.call_events(obj, timeout)[1]



# ---------------------------------------------------------------- proxy

def pump(src, dst, before=None):
    """Copy what src sends to dst until either side ends, then shut both.
    before(data), if given, sees each piece first (and may wait)."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if before is not None:
                before(data)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of a port, to cut links at will.

        p = c.proxy()                      # in front of the controller
        c.start_worker("w1", url=p.url)    # the worker dials the proxy
        p.drop()                           # cut every current connection
        p.refuse(True) / p.refuse(False)   # close new connections at once
        p.record = True                    # keep what workers send in
                                           # p.upstream (bytes, all links)
    """

    def __init__(self, target_port, scheme="ws"):
        import threading
        self.target_port = target_port
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.url = "%s://127.0.0.1:%d/ws" % (scheme, self.port)
        self.lock = threading.Lock()
        self.conns = []
        self.refusing = False
        self.closed = False
        self.accepted = 0
        self.record = False
        self.upstream = bytearray()
        self._threading = threading
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()

    def _accept_loop(self):
        while not self.closed:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            if self.refusing or self.closed:
                a.close()
                continue
            try:
                b = socket.create_connection(("127.0.0.1", self.target_port),
                                             timeout=5)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns.append((a, b))
                self.accepted += 1
            for src, dst, up in ((a, b, True), (b, a, False)):
                self._threading.Thread(target=self._pump,
                                       args=(src, dst, up),
                                       daemon=True).start()

    def _pump(self, src, dst, up=False):
        pump(src, dst, self._record if up else None)

    def _record(self, data):
        if self.record:
            with self.lock:
                self.upstream += data

    def frames(self):
        """(opcode, payload) of each WebSocket frame recorded so far from
        workers (one link: the bytes after its upgrade request)."""
        with self.lock:
            buf = bytes(self.upstream)
        i = buf.find(b"\r\n\r\n")
        i = len(buf) if i < 0 else i + 4
        out = []
        while i + 2 <= len(buf):
            op, n, i0 = buf[i] & 0x0f, buf[i + 1] & 0x7f, i
            masked = buf[i + 1] & 0x80
            i += 2
            if n >= 126:
                k = 2 if n == 126 else 8
                n = int.from_bytes(buf[i:i + k], "big")
                i += k
            key = buf[i:i + 4] if masked else None
            i += 4 if masked else 0
            if i + n > len(buf):
                i = i0
                break
            data = buf[i:i + n]
            if key:
                data = bytes(x ^ key[j % 4] for j, x in enumerate(data))
            out.append((op, data))
            i += n
        return out

    def drop(self):
        """Cut every connection now (both sides see the link die)."""
        with self.lock:
            conns, self.conns = self.conns, []
        for a, b in conns:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def refuse(self, on=True):
        """While on, accept and close at once; turning on also drops."""
        self.refusing = on
        if on:
            self.drop()

    def close(self):
        self.closed = True
        try:
            self.lsock.close()
        except OSError:
            pass
        self.drop()

# ---------------------------------------------------------------- cluster

_CLUSTERS = []          # clusters created during the current test


class Cluster:
    """A controller and workers in a private temporary folder."""

    def __init__(self, workers=None, serve_args=(), worker_args=(),
                 tls=False, token=False, wait=True):
        if workers is None:
            workers = {"w1": {}}
        self.want_workers = dict(workers)
        self.serve_args = list(serve_args)
        self.worker_args = list(worker_args)
        self.tls = tls
        self.token = token
        self.wait_workers = wait
        self.tmp = None
        self.control = None
        self.port = None
        self.url = None
        self.serve = None
        self.workers = {}          # name -> Popen
        self.worker_cmd = {}       # name -> argv (for restarts)
        self.ctls = []
        self.certs = None
        self.token_value = None
        self.marker = secrets.token_hex(8)
        self.logs = {}             # name -> log tail kept after cleanup
        self.log_paths = {}
        self.sanitizer_reports = []
        self.cleaned = False
        self.proxies = []
        _CLUSTERS.append(self)

    # -- context
    def __enter__(self):
        try:
            self._setup()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *a):
        self.cleanup()
        return False

    def _setup(self):
        _wait_binary()
        self.tmp = tempfile.mkdtemp(prefix="sandd-t-", dir="/tmp")
        os.chmod(self.tmp, 0o700)
        self.control = os.path.join(self.tmp, "control.sock")
        extra = []
        wextra = []
        if self.tls:
            self.certs = gen_certs(os.path.join(self.tmp, "pki"))
            extra += ["--tls-cert", self.certs["server"],
                      "--tls-key", self.certs["server_key"]]
            wextra += ["--ca", self.certs["ca"]]
            if self.tls == "mutual":
                # One client certificate for the whole fleet.
                extra += ["--tls-client-ca", self.certs["ca"], "--tls-any-id"]
                wextra += ["--tls-cert", self.certs["client"],
                           "--tls-key", self.certs["client_key"]]
        if self.token:
            tok = self.token if isinstance(self.token, str) \
                else secrets.token_hex(16)
            self.token_value = tok
            sf = os.path.join(self.tmp, "server-tokens")
            with open(sf, "w") as f:
                f.write("* %s\n" % tok)
            wf = os.path.join(self.tmp, "worker-token")
            with open(wf, "w") as f:
                f.write(tok + "\n")
            os.chmod(wf, 0o600)
            extra += ["--token-file", sf]
            wextra += ["--token-file", wf]
        if not DISKS:
            # No loop devices here: workspaces without a disk bound.
            wextra += ["--max-workspace-disk", "none"]
        self._serve_extra = extra
        self._worker_extra = wextra
        self._start_serve(new_port=True)
        for name, labels in self.want_workers.items():
            self.start_worker(name, labels=labels or {}, wait=False)
        if self.wait_workers:
            for name in self.want_workers:
                self.wait_worker(name)

    @property
    def scheme(self):
        return "wss" if self.tls else "ws"

    def _serve_argv(self):
        return [SANDD, "serve", "--listen", "127.0.0.1:%d" % self.port,
                "--control", self.control, "--state-dir",
                os.path.join(self.tmp, "serve-state"), "-v"] + \
            self._serve_extra + self.serve_args

    def _start_serve(self, new_port=False):
        attempts = 5 if new_port else 1
        for attempt in range(attempts):
            if new_port:
                self.port = free_port()
            self.url = "%s://127.0.0.1:%d/ws" % (self.scheme, self.port)
            logp = os.path.join(self.tmp, "serve.log")
            self.log_paths["serve"] = logp
            self.log_paths["serve.stdout"] = os.path.join(self.tmp,
                                                          "serve.stdout")
            with open(logp, "ab") as lf, \
                    open(self.log_paths["serve.stdout"], "ab") as of:
                lf.write(("=== start %s\n" % " ".join(
                    self._serve_argv())).encode())
                lf.flush()
                self.serve = subprocess.Popen(
                    self._serve_argv(), stdin=subprocess.DEVNULL,
                    stdout=of, stderr=lf, cwd=self.tmp,
                    env=_clean_env({"TEST_SANDD_CLUSTER": self.marker}),
                    start_new_session=True)
            try:
                self._wait_control()
                return
            except HarnessError:
                log = _tail(logp, 20)
                if new_port and attempt + 1 < attempts and \
                        "in use" in log.lower():
                    _stop_proc(self.serve, signal.SIGKILL)
                    continue
                raise

    def _wait_control(self, timeout=15):
        deadline = time.monotonic() + T(timeout)
        while True:
            if self.serve.poll() is not None:
                raise HarnessError(
                    "sandd serve exited with status %s before its control "
                    "socket accepted:\n%s" % (self.serve.returncode,
                                              _tail(self.log_paths["serve"])))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.control)
                s.close()
                # also wait for the TCP listener
                try:
                    t = socket.create_connection(("127.0.0.1", self.port),
                                                 timeout=1)
                    t.close()
                    return
                except OSError:
                    pass
            except OSError:
                pass
            finally:
                s.close()
            if time.monotonic() > deadline:
                raise HarnessError("sandd serve control socket %s did not "
                                   "accept in time:\n%s" % (
                                       self.control,
                                       _tail(self.log_paths["serve"])))
            time.sleep(0.02)

    def proxy(self):
        """A Proxy in front of the controller's listener (closed at
        cleanup); start workers with url=proxy.url."""
        p = Proxy(self.port, self.scheme)
        self.proxies.append(p)
        return p

    def worker_argv(self, name, labels=None, args=(), url=None):
        argv = [SANDD, "worker", "--server-url", url or self.url, "--id",
                name, "--state-dir", os.path.join(self.tmp, "state"), "-v"]
        for k, v in (labels or {}).items():
            argv += ["--label", "%s=%s" % (k, v)]
        return argv + self._worker_extra + self.worker_args + list(args)

    def start_worker(self, name, labels=None, args=(), env=None, wait=True,
                     argv=None, url=None):
        """Start a worker; by default wait until the server lists it.

        url: dial this instead of the controller (e.g. a Proxy's url)."""
        if argv is None:
            argv = self.worker_argv(name, labels, args, url)
        logp = os.path.join(self.tmp, "worker-%s.log" % name)
        self.log_paths["worker-%s" % name] = logp
        e = {"TEST_SANDD_CLUSTER": self.marker}
        if env:
            e.update(env)
        with open(logp, "ab") as lf:
            lf.write(("=== start %s\n" % " ".join(argv)).encode())
            lf.flush()
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf,
                                 stderr=lf, cwd=self.tmp, env=_clean_env(e),
                                 start_new_session=True)
        old = self.workers.get(name)
        if old is not None and old.poll() is None:
            # keep the old one tracked for cleanup
            self.workers["%s#%d" % (name, old.pid)] = old
        self.workers[name] = p
        self.worker_cmd[name] = argv
        if wait:
            self.wait_worker(name, proc=p)
        return p

    def wait_worker(self, name, timeout=15, proc=None):
        """Wait until worker `name` is connected (via the `wait` op)."""
        proc = proc or self.workers.get(name)
        deadline = time.monotonic() + T(timeout)
        ctl = None
        try:
            while True:
                if proc is not None and proc.poll() is not None:
                    raise HarnessError(
                        "worker %s exited with status %s:\n%s" % (
                            name, proc.returncode,
                            _tail(self.log_paths.get("worker-%s" % name,
                                                     ""))))
                if ctl is None:
                    try:
                        ctl = Ctl(self.control)
                    except OSError:
                        ctl = None
                if ctl is not None:
                    try:
                        r = ctl.call({"op": "wait", "worker": name,
                                      "timeout": 0.5 * SCALE}, timeout=10)
                        if r.get("ok"):
                            return r
                        code = (r.get("error") or {}).get("code")
                        if code not in ("timeout", "no_such_worker"):
                            # `wait` missing or broken: fall back to listing
                            r = ctl.call({"op": "workers"}, timeout=10)
                            for w in r.get("workers") or []:
                                if w.get("id") == name and w.get("connected"):
                                    return r
                            time.sleep(0.1)
                    except (OSError, EOFError, TimeoutError):
                        ctl.close()
                        ctl = None
                        time.sleep(0.1)
                else:
                    time.sleep(0.1)
                if time.monotonic() > deadline:
                    raise HarnessError(
                        "worker %s did not connect in time:\n--- worker\n%s"
                        "\n--- serve\n%s" % (
                            name, _tail(self.log_paths.get(
                                "worker-%s" % name, "")),
                            _tail(self.log_paths["serve"])))
        finally:
            if ctl is not None:
                ctl.close()

    def wait_welcomed(self, name, timeout=10):
        """Wait until worker `name` logged its welcome. The controller
        lists it once the welcome is sent; a link cut before it arrives
        leaves the worker without its secret, locked out of its id for
        the resume window."""
        log = self.log_paths["worker-%s" % name]
        needle = ("registered as %s" % name).encode()
        wait_for(lambda: needle in open(log, "rb").read(), timeout=timeout,
                 what="%s to have its welcome" % name)

    def stop_worker(self, name, sig=signal.SIGTERM, timeout=10):
        """Signal a worker's process group and wait for it to exit."""
        p = self.workers.get(name)
        if p is None:
            return None
        _killpg(p, sig)
        try:
            p.wait(T(timeout))
        except subprocess.TimeoutExpired:
            _stop_proc(p, signal.SIGKILL)
        return p.returncode

    def stop_server(self, sig=signal.SIGTERM, timeout=10):
        p = self.serve
        if p is None:
            return None
        _killpg(p, sig)
        try:
            p.wait(T(timeout))
        except subprocess.TimeoutExpired:
            _stop_proc(p, signal.SIGKILL)
        return p.returncode

    def restart_server(self, sig=signal.SIGTERM, wait_workers=True):
        """Stop serve (sig, then SIGKILL) and start it with the same args.

        With wait_workers, wait until every live worker is back."""
        self.stop_server(sig)
        self._start_serve(new_port=False)
        if wait_workers:
            for name, p in list(self.workers.items()):
                if "#" not in name and p.poll() is None:
                    self.wait_worker(name, timeout=30)

    def connect(self):
        """A new control connection (closed at cleanup)."""
        c = Ctl(self.control)
        self.ctls.append(c)
        return c

    def run(self, args, **kw):
        """Run a client subcommand (`sandd ARGS`) against this cluster's
        control socket ($SANDD_CONTROL is set); returns CompletedProcess."""
        env = dict(kw.pop("env", None) or {})
        env.setdefault("SANDD_CONTROL", self.control)
        return run_sandd(args, env=env, **kw)

    def group_folders(self, worker_id):
        """The folders (sandd-ID.HASH) holding the groups of this
        cluster's worker, in every cgroup hierarchy that has them (found
        from the worker's own groups: walking all of /sys/fs/cgroup is
        slow on a busy host). Each holds the worker's base, p<pid>."""
        pid = self.workers[worker_id].pid
        folder = os.path.join(self.tmp, "state", worker_id)
        name = "sandd-%s.%s" % (worker_id, hashlib.sha256(
            folder.encode()).hexdigest()[:8])
        found = []
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().split("\n")
        for line in filter(None, lines):
            _, ctls, own = line.split(":", 2)
            mounts = ["/sys/fs/cgroup/" + x for x in ctls.split(",")
                      if x] or ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            for m in mounts:
                for up in (own, os.path.dirname(own)):
                    d = os.path.join(m + up, name)
                    if d not in found and \
                            os.path.isdir(os.path.join(d, "p%d" % pid)):
                        found.append(d)
        return found

    def log(self, name="serve"):
        p = self.log_paths.get(name)
        if p is None:
            return self.logs.get(name, "")
        try:
            with open(p, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return self.logs.get(name, "")

    # The sanitizers' reports, and memcheck's (make valgrind).
    SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer",
                       b"runtime error:", b"WARNING: ThreadSanitizer",
                       b"== Invalid ", b"uninitialised value",
                       b"uninitialised byte", b"are definitely lost",
                       b"Mismatched free", b"Source and destination overlap")

    def _scan_sanitizer(self, name, path):
        """Remember sanitizer reports in a daemon log (fails the test)."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return
        for mark in self.SANITIZER_MARKS:
            i = data.find(mark)
            if i >= 0:
                start = data.rfind(b"\n", 0, max(0, i - 200)) + 1
                self.sanitizer_reports.append(
                    "%s: %s" % (name, data[start:start + 6000].decode(
                        "utf-8", "replace")))
                self.logs[name] = data[start:start + 6000].decode(
                    "utf-8", "replace")
                return

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for c in self.ctls:
            c.close()
        self.ctls = []
        for p in self.proxies:
            p.close()
        for name, p in list(self.workers.items()):
            _stop_proc(p, signal.SIGTERM, grace=2)
        _stop_proc(self.serve, signal.SIGTERM, grace=3)
        _kill_marked(self.marker)
        for name, path in self.log_paths.items():
            if os.path.exists(path):
                self.logs[name] = _tail(path, 60)
                self._scan_sanitizer(name, path)
        if self.tmp and not os.environ.get("SANDD_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- runner

class _TestTimeout(Exception):
    pass


_bound = [TEST_TIMEOUT]     # of the test running; fn.timeout overrides


def _alarm(signum, frame):
    raise _TestTimeout("test took longer than %ss" % T(_bound[0]))


def _print_logs(clusters):
    for c in clusters:
        for name, text in sorted(c.logs.items()):
            if not text.strip():
                continue
            print("    --- %s (%s) ---" % (name, c.tmp))
            for line in text.splitlines():
                print("    | " + line)


def run_main(ns):
    """Run the test_* functions of a test module; print one line each."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", action="append", default=[],
                    help="only tests whose name contains this")
    ap.add_argument("-x", action="store_true", help="stop at first failure")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    mod = os.path.splitext(os.path.basename(
        ns.get("__file__", "test")))[0]
    tests = [(n, f) for n, f in ns.items()
             if n.startswith("test_") and callable(f)]
    if a.k:
        tests = [(n, f) for n, f in tests
                 if any(k in n or k in "%s.%s" % (mod, n) for k in a.k)]
    if a.names:
        tests = [(n, f) for n, f in tests if n in a.names]
    passed = failed = skipped = 0
    signal.signal(signal.SIGALRM, _alarm)
    for name, fn in tests:
        del _CLUSTERS[:]
        t0 = time.monotonic()
        status, detail = "PASS", ""
        _bound[0] = getattr(fn, "timeout", TEST_TIMEOUT)
        signal.alarm(int(T(_bound[0])) + 1)
        try:
            fn()
        except Skip as e:
            status, detail = "SKIP", str(e)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            status, detail = "FAIL", traceback.format_exc()
        finally:
            signal.alarm(0)
            for c in list(_CLUSTERS):
                try:
                    c.cleanup()
                except Exception:
                    pass
        reports = [r for c in _CLUSTERS for r in c.sanitizer_reports]
        if reports and status != "FAIL":
            status = "FAIL"
            detail = "sanitizer report in a daemon log:\n" + reports[0]
        dt = time.monotonic() - t0
        full = "%s.%s" % (mod, name)
        if status == "PASS":
            passed += 1
            print("PASS %s (%.2fs)" % (full, dt))
        elif status == "SKIP":
            skipped += 1
            print("SKIP %s (%.2fs): %s" % (full, dt, detail))
        else:
            failed += 1
            print("FAIL %s (%.2fs)" % (full, dt))
            for line in detail.rstrip().splitlines():
                print("    " + line)
            _print_logs(_CLUSTERS)
        sys.stdout.flush()
        if failed and a.x:
            break
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)

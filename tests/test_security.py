"""Attacks on a worker's identity (sandd-control(7), Worker identity): a
hostile peer on the worker port tries to take a live worker's id, to use
a certificate or a token meant for another worker, or to claim labels it
was not granted. Each test attacks the way the finding of issue 11 says
and checks that the real worker and its work are untouched."""

import base64
import json
import os
import signal
import socket
import subprocess
import time

import harness as h


# ------------------------------------------------------------ helpers

def upgrade(port, wid, headers=None, tls_ctx=None, timeout=10):
    """Send a worker's upgrade request for wid; return (status, sock,
    rest) with the socket left open after a 101."""
    s = socket.create_connection(("127.0.0.1", port), timeout=h.T(timeout))
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="127.0.0.1")
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Sandd-Worker-Id: %s\r\n" % (port, key, wid))
    for k, v in (headers or {}).items():
        req += "%s: %s\r\n" % (k, v)
    s.sendall((req + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
    if status != 101:
        s.close()
        return status, None, rest
    return status, s, rest


def ws_text(s, obj):
    """One masked text frame holding obj as JSON."""
    payload = json.dumps(obj).encode()
    n = len(payload)
    head = bytes([0x81])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(head + mask + body)


def hello(wid, boot=None, labels=None):
    return {"t": "hello", "proto": 1, "id": wid, "boot": boot or
            os.urandom(16).hex(), "labels": labels or {}, "channels": [],
            "hostname": "impostor", "os": "Linux", "arch": "x86_64",
            "version": "0"}


def worker_info(ctl, wid):
    for w in h.ok(ctl.call({"op": "workers", "all": True}))["workers"]:
        if w["id"] == wid:
            return w
    return None


def boot_of(c, wid):
    """The worker process's pid as the worker itself reports it."""
    r = h.ok(c.connect().call({"op": "exec", "worker": wid,
                               "cmd": "echo $PPID"}))
    return int(r["stdout"])


def secret_of(c, wid):
    """The secret worker wid keeps in its state folder (once written)."""
    path = os.path.join(c.tmp, "state", wid, "secret")
    h.wait_for(lambda: os.path.exists(path), what="%s's secret" % wid)
    with open(path) as f:
        return f.read().strip()


def write_grants(c, lines):
    path = os.path.join(c.tmp, "server-tokens")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def token_file(c, name, token):
    path = os.path.join(c.tmp, "token-" + name)
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return path


# ------------------------------------------------------------ takeover

def _assert_takeover_refused(c, headers=None):
    """An impostor with a new boot cannot take live w1: HTTP 409 at the
    upgrade, and the real worker, its running command and its id stay."""
    ctl = c.connect()
    ctl.send({"op": "exec", "id": "long", "worker": "w1",
              "cmd": "sleep 2; echo still-mine", "stream": True})
    ev, _ = ctl.recv_until(lambda m: m.get("event") == "started")
    pid = c.workers["w1"].pid
    status, sock, _ = upgrade(c.port, "w1", headers)
    assert status == 409, status
    assert c.workers["w1"].poll() is None, "the real worker stopped"
    assert worker_info(c.connect(), "w1")["connected"], "w1 dropped"
    _, final = ctl.collect("long", timeout=30)
    h.ok(final)
    assert boot_of(c, "w1") == pid
    assert "controller" not in c.log("worker-w1") or \
        "replaced" not in c.log("worker-w1")


def test_takeover_of_a_live_worker_without_a_token_file_is_refused():
    with h.Cluster() as c:
        _assert_takeover_refused(c)


def test_takeover_with_a_star_grant_is_refused():
    with h.Cluster(token=True) as c:
        _assert_takeover_refused(
            c, {"Authorization": "Bearer %s" % c.token_value})


def test_takeover_inside_the_resume_window_is_refused():
    """While w1 is away (inside its resume window) its id stays its own."""
    with h.Cluster(serve_args=["--resume-window", "60"]) as c:
        c.stop_worker("w1", sig=signal.SIGKILL)
        h.wait_for(lambda: not worker_info(c.connect(), "w1")["connected"],
                   what="w1 away")
        status, _, _ = upgrade(c.port, "w1")
        assert status == 409, status


def test_a_wrong_secret_is_refused_and_a_secret_for_another_id_too():
    with h.Cluster(workers={"w1": {}, "w2": {}}) as c:
        status, _, _ = upgrade(c.port, "w1",
                               {"Sandd-Worker-Secret": "0" * 64})
        assert status == 409, status
        w2_secret = secret_of(c, "w2")
        status, _, _ = upgrade(c.port, "w1",
                               {"Sandd-Worker-Secret": w2_secret})
        assert status == 409, status


def test_impostor_hello_after_a_free_upgrade_cannot_replace():
    """Upgrade while the id is free, then say hello once the real worker
    has registered: the hello is refused, the worker stays."""
    with h.Cluster(workers={}) as c:
        status, sock, _ = upgrade(c.port, "w1")
        assert status == 101
        c.start_worker("w1")
        pid = c.workers["w1"].pid
        ws_text(sock, hello("w1"))
        time.sleep(0.5)
        sock.close()
        assert c.workers["w1"].poll() is None
        assert boot_of(c, "w1") == pid


def test_restarted_worker_takes_its_id_back_at_once_with_its_secret():
    """kill -9 and start again (as systemd does): the new process proves
    itself with the secret kept in its state folder and takes the id at
    once, inside the resume window; the old process's work is lost."""
    with h.Cluster(serve_args=["--resume-window", "120"]) as c:
        old = c.workers["w1"].pid
        assert len(secret_of(c, "w1")) == 64
        st = os.stat(os.path.join(c.tmp, "state", "w1", "secret"))
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        c.stop_worker("w1", sig=signal.SIGKILL)
        c.start_worker("w1")
        assert boot_of(c, "w1") != old


def test_secret_verifies_after_a_controller_restart():
    with h.Cluster(serve_args=["--resume-window", "120"]) as c:
        c.restart_server()
        c.wait_worker("w1")
        # The worker's new process proves itself to the new controller
        # with the secret the old controller gave it.
        c.stop_worker("w1", sig=signal.SIGKILL)
        c.start_worker("w1")
        h.ok(c.connect().call({"op": "exec", "worker": "w1",
                               "cmd": "true"}))
        status, _, _ = upgrade(c.port, "w1")
        assert status == 409, status


def test_an_id_grant_takes_the_id_and_a_star_grant_does_not_take_it():
    with h.Cluster(workers={}) as c:
        grants = write_grants(c, ["w1 own-token", "* fleet-token"])
        c.stop_server()
        c.serve_args = ["--token-file", grants]
        c._start_serve()
        c.start_worker("w1", args=["--token-file",
                                   token_file(c, "w1", "own-token")])
        # The fleet token is not good for an id with a grant of its own,
        # even when the id is free.
        c.stop_worker("w1")
        h.wait_for(lambda: not worker_info(c.connect(), "w1")
                   ["connected"], what="w1 away")
        status, _, _ = upgrade(c.port, "w1", {
            "Authorization": "Bearer fleet-token"})
        assert status in (401, 409), status
        status, _, _ = upgrade(c.port, "w9", {
            "Authorization": "Bearer fleet-token"})
        assert status == 101, status


# ------------------------------------------------------------ certificates

def test_a_certificate_for_another_id_is_refused():
    with h.Cluster(workers={}, tls=True) as c:
        certs = h.gen_certs(os.path.join(c.tmp, "ids"),
                            names=("w1", "web-2"))
        c.stop_server()
        c.serve_args = ["--tls-client-ca", certs["ca"]]
        c._start_serve()
        argv = c.worker_argv("w1", args=["--tls-cert", certs["web-2"],
                                         "--tls-key", certs["web-2_key"]])
        argv[argv.index("--ca") + 1] = c.certs["ca"]
        c.start_worker("w1", argv=argv, wait=False)
        h.wait_for(lambda: "403" in c.log("worker-w1"), timeout=15,
                   what="the worker to be refused with 403")
        assert worker_info(c.connect(), "w1") is None
        argv = c.worker_argv("w1", args=["--tls-cert", certs["w1"],
                                         "--tls-key", certs["w1_key"]])
        c.stop_worker("w1")
        c.start_worker("w1", argv=argv)


def test_a_wildcard_or_other_case_certificate_does_not_name_the_id():
    # X509_check_host would let *.fleet.example stand for db.fleet.example
    # and W1 for w1: another worker's certificate could take a live id.
    with h.Cluster(workers={}, tls=True) as c:
        certs = h.gen_certs(os.path.join(c.tmp, "ids"),
                            names=("*.fleet.example", "W1", "w1"))
        c.stop_server()
        c.serve_args = ["--tls-client-ca", certs["ca"]]
        c._start_serve()
        for wid, cert in (("db.fleet.example", "*.fleet.example"),
                          ("w1", "W1")):
            argv = c.worker_argv(wid, args=["--tls-cert", certs[cert],
                                            "--tls-key", certs[cert + "_key"]])
            argv[argv.index("--ca") + 1] = c.certs["ca"]
            c.start_worker(wid, argv=argv, wait=False)
            h.wait_for(lambda: "403" in c.log("worker-" + wid), timeout=15,
                       what="worker %s with %s to be refused" % (wid, cert))
            assert worker_info(c.connect(), wid) is None
            c.stop_worker(wid)
        argv = c.worker_argv("w1", args=["--tls-cert", certs["w1"],
                                         "--tls-key", certs["w1_key"]])
        argv[argv.index("--ca") + 1] = c.certs["ca"]
        c.start_worker("w1", argv=argv)


def test_tls_verify_failures_are_logged_with_the_reason():
    with h.Cluster(workers={}, tls=True) as c:
        other = h.gen_certs(os.path.join(c.tmp, "other"), names=())
        argv = c.worker_argv("w1")
        argv[argv.index("--ca") + 1] = other["ca"]
        c.start_worker("w1", argv=argv, wait=False)
        h.wait_for(lambda: "certificate verify failed" in
                   c.log("worker-w1"), timeout=15, what="the reason")
        assert "unknown TLS error" not in c.log("worker-w1")
        assert "unable to get local issuer certificate" in \
            c.log("worker-w1") or "self-signed" in c.log("worker-w1") \
            or "self signed" in c.log("worker-w1"), c.log("worker-w1")


# ------------------------------------------------------------ grants

def test_labels_outside_the_grant_are_refused():
    with h.Cluster(workers={}) as c:
        grants = write_grants(c, ["web-1 tok-1 role=web zone=*"])
        c.stop_server()
        c.serve_args = ["--token-file", grants]
        c._start_serve()
        tf = token_file(c, "web-1", "tok-1")
        c.start_worker("web-1", labels={"role": "db"},
                       args=["--token-file", tf], wait=False)
        h.wait_for(lambda: "not granted" in c.log("serve"), timeout=15,
                   what="the refusal")
        assert worker_info(c.connect(), "web-1") is None
        c.stop_worker("web-1")
        c.start_worker("web-1", labels={"role": "web", "zone": "eu-1"},
                       args=["--token-file", tf])
        r = h.ok(c.connect().call({"op": "exec", "labels": {"role": "db"},
                                   "cmd": "true"}))
        assert r["results"] == [], r


def test_sighup_that_removes_a_grant_ends_the_link():
    with h.Cluster(workers={}) as c:
        grants = write_grants(c, ["w1 tok-1", "w2 tok-2"])
        c.stop_server()
        c.serve_args = ["--token-file", grants]
        c._start_serve()
        c.start_worker("w1", args=["--token-file",
                                   token_file(c, "w1", "tok-1")])
        c.start_worker("w2", args=["--token-file",
                                   token_file(c, "w2", "tok-2")])
        write_grants(c, ["w2 tok-2"])
        c.serve.send_signal(signal.SIGHUP)
        h.wait_for(lambda: not worker_info(c.connect(), "w1")["connected"],
                   timeout=15, what="w1's link to end")
        assert worker_info(c.connect(), "w2")["connected"]


def test_a_hash_inside_a_token_is_part_of_it():
    with h.Cluster(workers={}) as c:
        grants = write_grants(c, ["w1 abc#def   # a comment",
                                  "# a comment line"])
        c.stop_server()
        c.serve_args = ["--token-file", grants]
        c._start_serve()
        status, _, _ = upgrade(c.port, "w1",
                               {"Authorization": "Bearer abc"})
        assert status == 401, status
        status, _, _ = upgrade(c.port, "w1",
                               {"Authorization": "Bearer abc#def"})
        assert status == 101, status


def test_a_world_readable_token_file_with_tokens_is_warned_about():
    with h.Cluster(workers={}) as c:
        grants = write_grants(c, ["w1 plain-token"])
        os.chmod(grants, 0o644)
        c.stop_server()
        c.serve_args = ["--token-file", grants]
        c._start_serve()
        assert "other users may read it" in c.log("serve")


# ------------------------------------------------------------ admission

class _IdleConnections:
    """n idle connections from the address src to cluster c's listener,
    each made again as soon as the controller drops it (slowloris before
    authentication); .socks are those open now."""

    def __init__(self, c, src, n):
        import threading
        self.port, self.src, self.n = c.port, src, n
        self.socks = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            while len(self.socks) < self.n and not self.stop.is_set():
                s = socket.socket()
                s.bind((self.src, 0))
                try:
                    s.connect(("127.0.0.1", self.port))
                except OSError:
                    s.close()
                    continue
                self.socks.append(s)
            for s in list(self.socks):
                s.setblocking(False)
                try:
                    if s.recv(64) == b"":
                        raise OSError
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                self.socks.remove(s)
                s.close()
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(h.T(10))
        for s in self.socks:
            s.close()


def test_idle_connections_from_one_address_do_not_keep_workers_out():
    """300 idle connections from 127.0.0.2, refreshed as soon as the
    controller drops one (slowloris before authentication): a worker from
    another address still gets in."""
    with h.Cluster(workers={}) as c:
        with _IdleConnections(c, "127.0.0.2", 300) as idle:
            h.wait_for(lambda: len(idle.socks) >= 300, what="the attack")
            c.start_worker("w1", wait=False)
            c.wait_worker("w1", timeout=30)


def test_one_address_may_take_every_free_slot_but_not_keep_others_out():
    """A fleet behind one address (a NAT, or all of a bench on 127.0.0.1)
    is not held to its share of the handshake slots while others are
    free; once all are taken, a worker from elsewhere takes the slot of
    that address's oldest waiting connection."""
    with h.Cluster(workers={}, serve_args=["--max-handshakes", "6",
                                           "--max-handshakes-per-addr",
                                           "2"]) as c:
        ctl = c.connect()
        # The harness's probe of the port must be gone first: it would
        # take a 127.0.0.3 connection's slot as a worker does below.
        h.wait_for(lambda: h.ok(ctl.call({"op": "stats"}))
                   ["handshakes"] == 0, what="no handshake in progress")
        refused = h.ok(ctl.call({"op": "stats"}))["handshakes_refused"]
        with _IdleConnections(c, "127.0.0.3", 6):
            h.wait_for(lambda: h.ok(ctl.call({"op": "stats"}))
                       ["handshakes"] == 6, what="6 slots held from one "
                       "address")
            st = h.ok(ctl.call({"op": "stats"}))
            assert st["handshakes_refused"] == refused, st
            c.start_worker("w1", wait=False)
            c.wait_worker("w1", timeout=30)
        assert "over its share of handshakes, for 127.0.0.1:" in \
            c.log("serve")


# ------------------------------------------------------------ control path

def _as_uid(uid, argv, env=None):
    e = {k: v for k, v in os.environ.items()
         if k not in ("SANDD_CONTROL", "XDG_RUNTIME_DIR", "HOME")}
    e.update(env or {})

    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    return subprocess.run(argv, env=e, preexec_fn=drop, cwd="/",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=h.T(20))


def test_a_default_control_folder_made_by_another_user_is_refused():
    """Another local user makes /tmp/sandd-UID first and listens there:
    neither the controller nor a client of UID may use it."""
    victim, attacker = 23456, 23457
    folder = "/tmp/sandd-%d" % victim
    subprocess.run(["rm", "-rf", folder])
    os.mkdir(folder, 0o777)
    os.chmod(folder, 0o777)
    os.chown(folder, attacker, attacker)
    trap = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        trap.bind(os.path.join(folder, "control.sock"))
        os.chmod(os.path.join(folder, "control.sock"), 0o777)
        trap.listen(4)
        trap.settimeout(0.5)
        r = _as_uid(victim, [h.SANDD, "workers"])
        assert r.returncode != 0, r
        assert folder.encode() in r.stderr, r
        try:
            trap.accept()
            raise AssertionError("the client connected to the trap")
        except socket.timeout:
            pass
        r = _as_uid(victim, [h.SANDD, "serve", "--listen",
                             "127.0.0.1:%d" % h.free_port()])
        assert r.returncode == 2 and folder.encode() in r.stderr, r
        # The Python client refuses it too.
        r = _as_uid(victim, ["/usr/bin/python3", "-c",
                             "import sandd; sandd.default_control_path()"],
                    env={"PYTHONPATH": os.path.join(h.REPO, "contrib",
                                                    "python")})
        assert r.returncode != 0 and b"PermissionError" in r.stderr, r
    finally:
        trap.close()
        subprocess.run(["rm", "-rf", folder])


def test_the_default_control_path_prefers_xdg_runtime_dir():
    uid = 23458
    run = "/tmp/sandd-xdg-%d" % uid
    subprocess.run(["rm", "-rf", run])
    os.mkdir(run, 0o700)
    os.chown(run, uid, uid)
    port = h.free_port()
    env = {"XDG_RUNTIME_DIR": run}
    e = {k: v for k, v in os.environ.items()
         if k not in ("SANDD_CONTROL", "HOME")}
    e.update(env)

    def drop():
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    serve = subprocess.Popen([h.SANDD, "serve", "--listen",
                              "127.0.0.1:%d" % port, "--state-dir",
                              os.path.join(run, "state")], env=e,
                             preexec_fn=drop, cwd="/",
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        sock = os.path.join(run, "sandd", "control.sock")
        h.wait_for(lambda: os.path.exists(sock), what="the socket")
        st = os.stat(os.path.dirname(sock))
        assert st.st_uid == uid and st.st_mode & 0o077 == 0, oct(st.st_mode)
        r = _as_uid(uid, [h.SANDD, "stats"], env=env)
        assert r.returncode == 0, r
    finally:
        serve.terminate()
        serve.wait(h.T(10))
        subprocess.run(["rm", "-rf", run])


# ------------------------------------------------------------ metrics

def test_metrics_ask_for_the_bearer_token_when_one_is_set():
    with h.Cluster(workers={}) as c:
        tf = token_file(c, "metrics", "m-secret")
        c.stop_server()
        c.serve_args = ["--metrics-token-file", tf]
        c._start_serve()
        st, _, _ = h.http_get(c.port, "/metrics")
        assert st == 401, st
        st, _, _ = h.http_get(c.port, "/metrics",
                              headers={"Authorization": "Bearer wrong"})
        assert st == 401, st
        st, _, body = h.http_get(c.port, "/metrics", headers={
            "Authorization": "Bearer m-secret"})
        assert st == 200 and b"sandd_workers_connected" in body, st
        st, _, _ = h.http_get(c.port, "/health")
        assert st == 200, st


def test_metrics_listen_moves_metrics_to_their_own_address():
    with h.Cluster() as c:
        mport = h.free_port()
        c.stop_server()
        c.serve_args = ["--metrics-listen", "127.0.0.1:%d" % mport]
        c._start_serve()
        c.wait_worker("w1", timeout=30)
        st, _, _ = h.http_get(c.port, "/metrics")
        assert st == 404, st
        st, _, body = h.http_get(mport, "/metrics")
        assert st == 200 and b"sandd_workers_connected 1" in body, body
        status, _, _ = upgrade(mport, "w9")
        assert status == 404, status


# ------------------------------------------------------------ hostile worker

class FakeWorker:
    """A hostile worker on a raw WebSocket: says hello, reads what the
    controller sends, and sends whatever a test wants."""

    def __init__(self, port, wid, channels=None):
        status, self.sock, self.buf = upgrade(port, wid)
        assert status == 101, status
        self.sock.settimeout(h.T(10))
        msg = hello(wid)
        msg["channels"] = channels or []
        ws_text(self.sock, msg)

    def frame(self):
        """The next (opcode, payload) from the controller, None at EOF."""
        def need(n):
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return False
                self.buf += chunk
            return True
        if not need(2):
            return None
        n, pos = self.buf[1] & 0x7F, 2
        if n >= 126:
            pos += 2 if n == 126 else 8
            need(pos)
            n = int.from_bytes(self.buf[2:pos], "big")
        if not need(pos + n):
            return None
        op, payload = self.buf[0] & 0xF, self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        return op, payload

    def json(self, t):
        """The next text message of type t."""
        while True:
            f = self.frame()
            assert f is not None, "closed before %s" % t
            if f[0] == 1:
                m = json.loads(f[1])
                if m.get("t") == t:
                    return m

    def send_binary(self, payload):
        n = len(payload)
        head = bytes([0x82])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        self.sock.sendall(head + b"\0\0\0\0" + payload)   # zero mask

    def closed(self, timeout=10):
        """True once the controller ends the link."""
        deadline = time.monotonic() + h.T(timeout)
        while time.monotonic() < deadline:
            try:
                f = self.frame()
            except (socket.timeout, ConnectionResetError):
                continue
            if f is None or f[0] == 8:
                return True
        return False


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_worker_sending_past_its_window_is_cut_off():
    with h.Cluster(workers={}) as c:
        fw = FakeWorker(c.port, "evil")
        fw.json("welcome")
        ctl = c.connect()
        # A streamed exec whose client reads nothing: only acks would
        # let the worker send more.
        ctl.send({"op": "exec", "id": 1, "worker": "evil", "cmd": "x",
                  "stream": True})
        open_ = fw.json("open")
        before = _rss_kib(c.serve.pid)
        chunk = b"A" * (256 * 1024)
        try:
            for i in range(64):     # 16 MiB, never acknowledged
                hdr = bytes([1, 0, 0, 0]) + open_["ch"].to_bytes(4, "big") \
                    + (i * len(chunk)).to_bytes(8, "big")
                fw.send_binary(hdr + chunk)
        except OSError:
            pass                    # cut off on the way: fine
        assert fw.closed(), "the controller kept the link"
        # 16 MiB were sent; the window is 2 MiB.
        assert _rss_kib(c.serve.pid) - before < h.MEM(12 * 1024)
        # The controller serves everyone else.
        c.start_worker("w1")
        h.ok(c.connect().call({"op": "exec", "worker": "w1",
                               "cmd": "true"}))


def test_a_hello_with_too_many_channels_is_refused():
    with h.Cluster(workers={}) as c:
        chans = [{"ch": i + 1} for i in range(20000)]
        fw = FakeWorker(c.port, "evil", channels=chans)
        assert fw.closed(), "the controller took the hello"
        assert worker_info(c.connect(), "evil") is None
        assert "bad hello" in c.log("serve")


def test_a_worker_cannot_adopt_another_workers_session():
    with h.Cluster() as c:
        ctl = c.connect()
        sid = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                             "argv": ["sleep", "60"],
                             "attach": False}))["session"]
        fw = FakeWorker(c.port, "evil", channels=[{
            "ch": 1, "kind": 2, "handle": sid, "session": sid, "pid": 1,
            "in": 0, "eof": False, "out": [0, 0, 0], "detached": False,
            "cmd": "sh", "rows": 24, "cols": 80,
            "created_at": "2026-01-01T00:00:00Z", "exited": False}])
        fw.json("welcome")
        time.sleep(0.3)
        sessions = h.ok(ctl.call({"op": "session.list"}))["sessions"]
        assert [(s["session"], s["worker"]) for s in sessions] == \
            [(sid, "w1")], sessions
        h.ok(ctl.call({"op": "session.write", "session": sid,
                       "data": "x"}))


def test_terminal_escapes_from_a_worker_are_shown_escaped():
    with h.Cluster(workers={}) as c:
        msg = hello("evil", labels={"role": "\x1b]0;pwned\x07\x1b[2J"})
        msg["hostname"] = "host\x1b[31mred\u009b1m"
        status, sock, _ = upgrade(c.port, "evil")
        assert status == 101
        ws_text(sock, msg)
        c.wait_worker("evil")
        r = c.run(["workers"])
        assert r.returncode == 0, r
        assert b"\x1b" not in r.stdout and b"\x07" not in r.stdout, r.stdout
        assert "\u009b".encode() not in r.stdout, r.stdout
        assert b"\\x1b]0;pwned" in r.stdout, r.stdout
        assert b"host\\x1b[31mred" in r.stdout, r.stdout
        sock.close()


h.run_main(globals())

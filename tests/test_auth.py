"""Worker authentication (--token-file) and TLS."""

import base64
import hashlib
import os
import secrets
import signal
import socket
import ssl

import harness as h

# The worker names itself in this header of the WebSocket upgrade; the raw
# upgrade tests below need it to reach the token check.
ID_HEADER = "Sandd-Worker-Id"


def _write(c, name, text, mode=0o600):
    p = os.path.join(c.tmp, name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)
    return p


def _upgrade(c, wid, token=None, tls=False):
    """Send a WebSocket upgrade to /ws; return the HTTP status."""
    hdrs = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        ID_HEADER: wid,
    }
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    s = socket.create_connection(("127.0.0.1", c.port), timeout=h.T(10))
    try:
        if tls:
            ctx = ssl.create_default_context(cafile=c.certs["ca"])
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
        req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % c.port
        req += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        s.sendall(req.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 "), data
    return int(data.split()[1])


def _serve_with_grants(text, workers=None, **kw):
    """A Cluster whose controller uses a token file with this text."""
    tmpf = os.path.join("/tmp", "sandd-grants-%s" % secrets.token_hex(6))
    with open(tmpf, "w") as f:
        f.write(text)
    c = h.Cluster(workers=workers or {}, serve_args=["--token-file", tmpf],
                  **kw)
    c._grants_file = tmpf
    return c


class _Grants:
    """with _Grants(text) as c: a cluster using that controller token file;
    the file is removed afterwards."""

    def __init__(self, text, **kw):
        self.text = text
        self.kw = kw

    def __enter__(self):
        self.c = _serve_with_grants(self.text, **self.kw)
        try:
            return self.c.__enter__()
        except BaseException:
            os.unlink(self.c._grants_file)
            raise

    def __exit__(self, *a):
        try:
            self.c.__exit__(*a)
        finally:
            try:
                os.unlink(self.c._grants_file)
            except OSError:
                pass


def _start_with_token(c, name, token, wait=True, extra=()):
    tf = _write(c, "tok-%s-%s" % (name, secrets.token_hex(3)), token + "\n")
    return c.start_worker(name, args=["--token-file", tf] + list(extra),
                          wait=wait)


def _not_admitted(c, name, seconds=2):
    r = c.connect().call({"op": "wait", "worker": name,
                          "timeout": seconds * h.SCALE}, timeout=30)
    h.err(r, "timeout")


# ------------------------------------------------------------ tokens

def test_id_token_grant_admits_that_worker():
    with _Grants("w1 s3cret-one\n") as c:
        _start_with_token(c, "w1", "s3cret-one")
        r = h.ok(c.connect().call({"op": "exec", "worker": "w1",
                                   "cmd": "echo in"}))
        assert r["stdout"] == "in\n"


def test_sha256_grant_admits_worker_with_matching_token():
    tok = "hashed-token-123"
    with _Grants("w1 sha256:%s\n" % hashlib.sha256(tok.encode())
                 .hexdigest()) as c:
        _start_with_token(c, "w1", tok)


def test_sha256_grant_with_uppercase_hex_admits_worker():
    tok = "hashed-token-ABC"
    with _Grants("w1 sha256:%s\n" % hashlib.sha256(tok.encode())
                 .hexdigest().upper()) as c:
        _start_with_token(c, "w1", tok)


def test_star_grant_admits_any_worker_id():
    with _Grants("* shared-tok\n") as c:
        _start_with_token(c, "alpha", "shared-tok")
        _start_with_token(c, "beta.2", "shared-tok")


def test_wrong_token_worker_is_not_admitted():
    with _Grants("w1 right\n") as c:
        _start_with_token(c, "w1", "wrong", wait=False)
        _not_admitted(c, "w1")


def test_worker_without_token_is_not_admitted():
    with _Grants("* right\n") as c:
        c.start_worker("w1", wait=False)
        _not_admitted(c, "w1")


def test_wrong_token_gets_http_401():
    with _Grants("w1 right\n") as c:
        assert _upgrade(c, "w1", "wrong") == 401


def test_missing_token_gets_http_401():
    with _Grants("w1 right\n") as c:
        assert _upgrade(c, "w1", None) == 401


def test_right_token_gets_http_101():
    with _Grants("w1 right\n") as c:
        assert _upgrade(c, "w1", "right") == 101


def test_grant_for_another_id_gets_401():
    with _Grants("w2 tok2\n") as c:
        assert _upgrade(c, "w1", "tok2") == 401


def test_sha256_grant_refuses_wrong_token():
    with _Grants("w1 sha256:%s\n" % hashlib.sha256(b"good").hexdigest()) \
            as c:
        assert _upgrade(c, "w1", "bad") == 401


def test_sha256_grant_does_not_accept_the_hash_itself_as_token():
    hx = hashlib.sha256(b"good").hexdigest()
    with _Grants("w1 sha256:%s\n" % hx) as c:
        assert _upgrade(c, "w1", hx) == 401
        assert _upgrade(c, "w1", "sha256:" + hx) == 401


def test_token_file_comments_and_blank_lines_are_ignored():
    with _Grants("# grants for the test\n\n   \n# w1 nope\nw1 yes\n") as c:
        assert _upgrade(c, "w1", "nope") == 401
        _start_with_token(c, "w1", "yes")


def test_several_grants_each_admit_their_worker():
    with _Grants("w1 t1\nw2 t2\n") as c:
        _start_with_token(c, "w1", "t1")
        _start_with_token(c, "w2", "t2")
        assert _upgrade(c, "w1", "t2") == 401


def test_worker_token_file_surrounding_whitespace_is_ignored():
    with _Grants("w1 tok-ws\n") as c:
        tf = _write(c, "wtok", "  \n\ttok-ws  \n\n")
        c.start_worker("w1", args=["--token-file", tf])


def test_sandd_token_environment_variable_is_used():
    with _Grants("w1 from-env\n") as c:
        c.start_worker("w1", env={"SANDD_TOKEN": "from-env"})


def test_sighup_rereads_token_file_adding_grant():
    with _Grants("w1 one\n") as c:
        assert _upgrade(c, "w2", "two") == 401
        with open(c._grants_file, "a") as f:
            f.write("w2 two\n")
        os.kill(c.serve.pid, signal.SIGHUP)
        h.wait_for(lambda: _upgrade(c, "w2", "two") == 101, timeout=10,
                   what="new grant after SIGHUP")
        _start_with_token(c, "w2", "two")


def test_sighup_rereads_token_file_removing_grant():
    with _Grants("w1 one\nw2 two\n") as c:
        assert _upgrade(c, "w2", "two") == 101
        with open(c._grants_file, "w") as f:
            f.write("w1 one\n")
        os.kill(c.serve.pid, signal.SIGHUP)
        h.wait_for(lambda: _upgrade(c, "w2", "two") == 401, timeout=10,
                   what="grant removed after SIGHUP")
        assert c.serve.poll() is None, "serve died on SIGHUP"


def test_refused_attempts_are_counted_in_metrics():
    with _Grants("w1 right\n") as c:
        for _ in range(3):
            assert _upgrade(c, "w1", "wrong") == 401
        _, _, body = h.http_get(c.port, "/metrics")
        vals = [float(l.split()[-1]) for l in body.decode().splitlines()
                if l.startswith("sandd_") and "auth" in l.split()[0]]
        assert 3.0 in vals, body


def test_refused_attempt_is_logged():
    with _Grants("w1 right\n") as c:
        before = c.log("serve").count("w1")
        assert _upgrade(c, "w1", "wrong") == 401
        h.wait_for(lambda: c.log("serve").count("w1") > before, timeout=5,
                   what="a log line about the refused worker")


def test_controller_without_token_file_accepts_any_worker():
    with h.Cluster(workers={"anyone": {}}) as c:
        assert _upgrade(c, "other", None) == 101


def test_bad_token_file_line_makes_serve_fail():
    with h.Cluster(workers={}) as c:
        bad = _write(c, "badgrants", "w1 sha256:nothex\n")
        r = h.run_sandd(["serve", "--listen", "127.0.0.1:%d" % h.free_port(),
                         "--control", os.path.join(c.tmp, "other.sock"),
                         "--token-file", bad], timeout=15)
        assert r.returncode != 0, r
        assert r.stderr.strip(), r


def test_cluster_token_option_admits_workers():
    with h.Cluster(workers={"w1": {}, "w2": {}}, token=True) as c:
        r = h.ok(c.connect().call({"op": "workers"}))
        assert sorted(w["id"] for w in r["workers"]) == ["w1", "w2"]


# ------------------------------------------------------------ worker ids

def test_controller_refuses_invalid_worker_id_at_upgrade():
    with h.Cluster(workers={}) as c:
        st = _upgrade(c, "bad/id", None)
        assert 400 <= st < 500, st


def test_controller_refuses_overlong_worker_id_at_upgrade():
    with h.Cluster(workers={}) as c:
        st = _upgrade(c, "x" * 65, None)
        assert 400 <= st < 500, st


# ------------------------------------------------------------ TLS

def test_tls_worker_connects_over_wss_and_execs():
    with h.Cluster(tls=True) as c:
        assert c.url.startswith("wss://")
        r = h.ok(c.connect().call({"op": "exec", "worker": "w1",
                                   "cmd": "echo secure"}))
        assert r["stdout"] == "secure\n", r


def test_tls_health_is_served_over_https():
    with h.Cluster(workers={}, tls=True) as c:
        st, _, body = h.http_get(c.port, "/health", tls=True,
                                 ca=c.certs["ca"])
        assert st == 200 and body.strip() == b"OK", (st, body)


def test_tls_metrics_is_served_over_https():
    with h.Cluster(workers={}, tls=True) as c:
        st, _, body = h.http_get(c.port, "/metrics", tls=True,
                                 ca=c.certs["ca"])
        assert st == 200 and b"sandd_" in body, (st, body)


def test_tls_listener_does_not_answer_plain_http():
    with h.Cluster(workers={}, tls=True) as c:
        try:
            st, _, _ = h.http_get(c.port, "/health", timeout=5)
        except (AssertionError, OSError, TimeoutError):
            return
        assert st != 200, "plain HTTP answered on a TLS listener"


def test_tls_worker_with_wrong_ca_is_not_admitted():
    with h.Cluster(workers={}, tls=True) as c:
        other = h.gen_certs(os.path.join(c.tmp, "other-pki"), names=())
        argv = [h.SANDD, "worker", "--server-url", c.url, "--id", "w1",
                "--ca", other["ca"], "-v"]
        c.start_worker("w1", argv=argv, wait=False)
        _not_admitted(c, "w1")


def test_tls_worker_without_ca_does_not_trust_test_cert():
    with h.Cluster(workers={}, tls=True) as c:
        argv = [h.SANDD, "worker", "--server-url", c.url, "--id", "w1", "-v"]
        c.start_worker("w1", argv=argv, wait=False)
        _not_admitted(c, "w1")


def test_mutual_tls_worker_with_client_cert_connects():
    with h.Cluster(tls="mutual") as c:
        r = h.ok(c.connect().call({"op": "exec", "worker": "w1",
                                   "cmd": "echo mtls"}))
        assert r["stdout"] == "mtls\n", r


def test_mutual_tls_worker_without_client_cert_is_refused():
    with h.Cluster(workers={}, tls="mutual") as c:
        argv = [h.SANDD, "worker", "--server-url", c.url, "--id", "w1",
                "--ca", c.certs["ca"], "-v"]
        c.start_worker("w1", argv=argv, wait=False)
        _not_admitted(c, "w1")


def test_mutual_tls_client_cert_from_other_ca_is_refused():
    with h.Cluster(workers={}, tls="mutual") as c:
        other = h.gen_certs(os.path.join(c.tmp, "other-pki"),
                            names=("client",))
        argv = [h.SANDD, "worker", "--server-url", c.url, "--id", "w1",
                "--ca", c.certs["ca"], "--tls-cert", other["client"],
                "--tls-key", other["client_key"], "-v"]
        c.start_worker("w1", argv=argv, wait=False)
        _not_admitted(c, "w1")


def test_tls_with_token_admits_worker():
    with h.Cluster(tls=True, token=True) as c:
        assert _upgrade(c, "w9", "wrong", tls=True) == 401
        h.ok(c.connect().call({"op": "exec", "worker": "w1",
                               "cmd": "true"}))


def test_tls_controller_restart_brings_worker_back():
    with h.Cluster(tls=True) as c:
        c.restart_server()
        h.ok(c.connect().call({"op": "exec", "worker": "w1",
                               "cmd": "true"}))


def test_serve_tls_cert_without_key_exits_2():
    with h.Cluster(workers={}, tls=True) as c:
        r = h.run_sandd(["serve", "--listen", "127.0.0.1:%d" % h.free_port(),
                         "--control", os.path.join(c.tmp, "o.sock"),
                         "--tls-cert", c.certs["server"]], timeout=3)
        assert r.returncode == 2, r


def test_serve_with_missing_tls_cert_file_fails():
    with h.Cluster(workers={}) as c:
        r = h.run_sandd(["serve", "--listen", "127.0.0.1:%d" % h.free_port(),
                         "--control", os.path.join(c.tmp, "o.sock"),
                         "--tls-cert", "/nonexistent/cert.pem",
                         "--tls-key", "/nonexistent/key.pem"], timeout=3)
        assert r.returncode != 0 and r.stderr.strip(), r


def test_plain_ws_worker_cannot_join_tls_listener():
    with h.Cluster(workers={}, tls=True) as c:
        argv = [h.SANDD, "worker", "--server-url",
                "ws://127.0.0.1:%d/ws" % c.port, "--id", "w1", "-v"]
        c.start_worker("w1", argv=argv, wait=False)
        _not_admitted(c, "w1")


def test_tls_worker_survives_link_drop_via_proxy():
    with h.Cluster(workers={}, tls=True,
                   serve_args=["--resume-window", "30"]) as c:
        p = c.proxy()
        c.start_worker("w1", url=p.url)
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "id": "e",
                  "cmd": "sleep 1; echo tls-resumed"})
        import time
        time.sleep(0.3)
        p.drop()
        _, fin = ctl.collect("e", timeout=60)
        assert h.ok(fin)["stdout"] == "tls-resumed\n", fin


def _ws_hello_as(port, header_id, hello_id, token=None):
    """Upgrade as header_id, then say hello as hello_id; return what the
    server sent back after the 101 (bytes)."""
    import base64 as b64
    import json as js
    import socket as so
    import struct
    s = so.create_connection(("127.0.0.1", port), timeout=5)
    key = b64.b64encode(os.urandom(16)).decode()
    req = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\nSandd-Worker-Id: %s\r\n"
           % (key, header_id))
    if token:
        req += "Authorization: Bearer %s\r\n" % token
    s.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    body = js.dumps({"t": "hello", "proto": 1, "id": hello_id,
                     "boot": "ab" * 16, "labels": {},
                     "channels": []}).encode()
    mask = os.urandom(4)
    n = len(body)
    lenbytes = bytes([0x80 | n]) if n < 126 else \
        bytes([0x80 | 126]) + struct.pack(">H", n)
    frame = bytes([0x81]) + lenbytes + mask + \
        bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    s.sendall(frame)
    got = head.split(b"\r\n\r\n", 1)[1]
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    return got


def test_hello_must_use_the_authenticated_id():
    with h.Cluster(workers={}, token=True) as c:
        tok = c.token_value
        got = _ws_hello_as(c.port, "w1", "intruder", tok)
        # A close frame (opcode 8) with 1008, and nobody registered.
        assert got[:1] == b"\x88" and got[2:4] == b"\x03\xf0", got[:20]
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "workers", "all": True}))
        assert [w["id"] for w in r["workers"]] == [], r


h.run_main(globals())

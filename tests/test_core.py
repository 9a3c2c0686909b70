"""Core control protocol: hello, workers, wait, subscribe, stats, HTTP,
command line, worker ids, restarts."""

import os
import re
import signal
import socket
import stat
import subprocess
import time

import harness as h

RFC3339_UTC = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")


def _version():
    r = h.run_sandd(["--version"])
    assert r.returncode == 0, r
    m = re.match(r"^sandd (\d+\.\d+\.\d+)\s*$", r.stdout.decode())
    assert m, "--version printed %r" % r.stdout
    return m.group(1)


def _worker(ctl, name, all_=False):
    req = {"op": "workers"}
    if all_:
        req["all"] = True
    r = h.ok(ctl.call(req))
    for w in r["workers"]:
        if w["id"] == name:
            return w
    return None


# ------------------------------------------------------------ hello / ids

def test_hello_reports_program_version_and_protocol_1():
    with h.Cluster(workers={}) as c:
        r = h.ok(c.connect().call({"op": "hello"}))
        assert r["protocol"] == 1, r
        assert r["version"] == _version(), r


def test_integer_id_is_echoed_as_integer():
    with h.Cluster(workers={}) as c:
        r = c.connect().call({"op": "hello", "id": 4242})
        assert r["id"] == 4242 and type(r["id"]) is int, r


def test_string_id_is_echoed_as_string():
    with h.Cluster(workers={}) as c:
        r = c.connect().call({"op": "hello", "id": "4242"})
        assert r["id"] == "4242" and isinstance(r["id"], str), r


def test_request_without_id_gets_a_reply():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send({"op": "hello"})
        r = ctl.recv()
        h.ok(r)
        assert r.get("id") is None, r


def test_unknown_fields_are_ignored():
    with h.Cluster(workers={}) as c:
        h.ok(c.connect().call({"op": "hello", "from_the_future": {"x": 1}}))


# ------------------------------------------------------------ workers

def test_workers_lists_connected_worker_with_required_fields():
    with h.Cluster(workers={"w1": {"role": "db", "zone": "z1"}}) as c:
        w = _worker(c.connect(), "w1")
        assert w is not None
        assert w["connected"] is True, w
        assert w["labels"] == {"role": "db", "zone": "z1"}, w
        for k in ("hostname", "os", "arch", "version"):
            assert isinstance(w[k], str) and w[k], (k, w)
        assert w["hostname"] == socket.gethostname(), w
        assert w["version"] == _version(), w
        assert re.match(r"^127\.0\.0\.1:\d+$", w["addr"]), w
        assert RFC3339_UTC.match(w["connected_at"]), w
        assert w["running"] == 0 and w["sessions"] == 0, w


def test_workers_os_and_arch_describe_this_machine():
    with h.Cluster() as c:
        w = _worker(c.connect(), "w1")
        u = os.uname()
        assert w["os"].lower() == u.sysname.lower(), w
        assert w["arch"] in (u.machine, {"x86_64": "amd64",
                                          "aarch64": "arm64"}.get(u.machine)), w


def test_workers_label_filter_selects_matching_workers():
    with h.Cluster(workers={"w1": {"role": "a"}, "w2": {"role": "b"},
                            "w3": {"role": "a"}}) as c:
        r = h.ok(c.connect().call({"op": "workers",
                                   "labels": {"role": "a"}}))
        assert sorted(w["id"] for w in r["workers"]) == ["w1", "w3"], r


def test_workers_label_filter_requires_every_key():
    with h.Cluster(workers={"w1": {"role": "a", "zone": "x"},
                            "w2": {"role": "a", "zone": "y"}}) as c:
        r = h.ok(c.connect().call({"op": "workers",
                                   "labels": {"role": "a", "zone": "y"}}))
        assert [w["id"] for w in r["workers"]] == ["w2"], r


def test_workers_running_counts_execs_in_flight():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 30",
                  "id": "bg", "timeout": 20})
        h.wait_for(lambda: _worker(c.connect(), "w1")["running"] == 1,
                   what="running == 1")


def test_labels_option_comma_form_sets_labels():
    with h.Cluster(workers={}) as c:
        c.start_worker("w1", args=["--labels", "a=1,b=2"])
        w = _worker(c.connect(), "w1")
        assert w["labels"] == {"a": "1", "b": "2"}, w


def test_short_worker_options_s_d_l_work():
    with h.Cluster(workers={}) as c:
        argv = [h.SANDD, "worker", "-s", c.url, "-d", "short1", "-l", "k=v"]
        c.start_worker("short1", argv=argv)
        w = _worker(c.connect(), "short1")
        assert w["labels"] == {"k": "v"}, w


def test_worker_takes_url_and_id_from_environment():
    with h.Cluster(workers={}) as c:
        argv = [h.SANDD, "worker"]
        c.start_worker("envw", argv=argv,
                       env={"SERVER_URL": c.url, "DAEMON_ID": "envw"})
        assert _worker(c.connect(), "envw")["connected"] is True


def test_worker_id_defaults_to_hostname():
    host = socket.gethostname()
    if not re.match(r"^[A-Za-z0-9._-]{1,64}$", host):
        raise h.Skip("hostname %r is not a valid worker id" % host)
    with h.Cluster(workers={}) as c:
        argv = [h.SANDD, "worker", "--server-url", c.url]
        c.start_worker(host, argv=argv)
        assert _worker(c.connect(), host) is not None


# ------------------------------------------------------------ wait

def test_wait_returns_connected_worker_at_once():
    with h.Cluster() as c:
        t0 = time.monotonic()
        r = h.ok(c.connect().call({"op": "wait", "worker": "w1",
                                   "timeout": 10}))
        assert time.monotonic() - t0 < h.T(3)
        assert [w["id"] for w in r["workers"]] == ["w1"], r
        assert r["workers"][0]["connected"] is True, r


def test_wait_for_absent_worker_gives_timeout_error():
    with h.Cluster(workers={}) as c:
        t0 = time.monotonic()
        r = c.connect().call({"op": "wait", "worker": "ghost",
                              "timeout": 0.5})
        h.err(r, "timeout")
        assert time.monotonic() - t0 >= 0.4, "returned before the deadline"


def test_wait_returns_when_worker_connects_later():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send({"op": "wait", "worker": "late", "timeout": h.T(20),
                  "id": "w"})
        c.start_worker("late", wait=False)
        _, r = ctl.recv_until(lambda m: m.get("id") == "w", timeout=25)
        h.ok(r)
        assert [w["id"] for w in r["workers"]] == ["late"], r


def test_wait_labels_count_waits_for_enough_workers():
    with h.Cluster(workers={"w1": {"pool": "p"}}) as c:
        ctl = c.connect()
        ctl.send({"op": "wait", "labels": {"pool": "p"}, "count": 2,
                  "timeout": h.T(20), "id": "w"})
        c.start_worker("w2", labels={"pool": "q"})
        c.start_worker("w3", labels={"pool": "p"}, wait=False)
        _, r = ctl.recv_until(lambda m: m.get("id") == "w", timeout=25)
        h.ok(r)
        assert sorted(w["id"] for w in r["workers"]) == ["w1", "w3"], r


def test_wait_labels_count_times_out_when_too_few():
    with h.Cluster(workers={"w1": {"pool": "p"}}) as c:
        r = c.connect().call({"op": "wait", "labels": {"pool": "p"},
                              "count": 2, "timeout": 0.5})
        h.err(r, "timeout")


# ------------------------------------------------------------ subscribe

def _sub(c):
    ctl = c.connect()
    h.ok(ctl.call({"op": "subscribe", "topics": ["workers"]}))
    return ctl


def _worker_event(ctl, name, state, timeout=15):
    _, m = ctl.recv_until(lambda m: m.get("event") == "worker" and
                          m.get("worker") == name and
                          m.get("state") == state, timeout=timeout)
    return m


def test_subscribe_workers_reports_connected():
    with h.Cluster(workers={}) as c:
        ctl = _sub(c)
        c.start_worker("w1")
        m = _worker_event(ctl, "w1", "connected")
        assert "id" not in m or m["id"] is None, m


def test_subscribe_workers_reports_disconnected():
    with h.Cluster() as c:
        ctl = _sub(c)
        c.stop_worker("w1", signal.SIGKILL)
        _worker_event(ctl, "w1", "disconnected")


def test_subscribe_workers_reports_gone_after_resume_window():
    with h.Cluster(serve_args=["--resume-window", "1"]) as c:
        ctl = _sub(c)
        t0 = time.monotonic()
        c.stop_worker("w1", signal.SIGKILL)
        _worker_event(ctl, "w1", "disconnected")
        _worker_event(ctl, "w1", "gone", timeout=15)
        assert time.monotonic() - t0 >= 0.5, "gone before the window ended"


def test_worker_in_resume_window_is_listed_disconnected():
    with h.Cluster(serve_args=["--resume-window", "30"]) as c:
        ctl = _sub(c)
        c.stop_worker("w1", signal.SIGKILL)
        _worker_event(ctl, "w1", "disconnected")
        w = _worker(c.connect(), "w1")
        assert w is not None and w["connected"] is False, w


def test_workers_all_lists_worker_gone_past_window():
    with h.Cluster(serve_args=["--resume-window", "1"]) as c:
        ctl = _sub(c)
        c.stop_worker("w1", signal.SIGKILL)
        _worker_event(ctl, "w1", "gone", timeout=15)
        c2 = c.connect()
        assert _worker(c2, "w1") is None, "gone worker listed without all"
        w = _worker(c2, "w1", all_=True)
        assert w is not None and w["connected"] is False, w


# ------------------------------------------------------------ stats

STAT_KEYS = ("workers_connected", "execs_total", "execs_running", "sessions",
             "bytes_in", "bytes_out", "control_clients")


def test_stats_has_numeric_counters():
    with h.Cluster() as c:
        r = h.ok(c.connect().call({"op": "stats"}))
        for k in STAT_KEYS:
            assert isinstance(r[k], (int, float)) and \
                not isinstance(r[k], bool), (k, r)
        assert isinstance(r["errors"], dict), r
        assert r["workers_connected"] == 1, r
        assert r["control_clients"] >= 1, r


def test_stats_execs_total_counts_execs():
    with h.Cluster() as c:
        ctl = c.connect()
        before = h.ok(ctl.call({"op": "stats"}))["execs_total"]
        for _ in range(3):
            h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))
        after = h.ok(ctl.call({"op": "stats"}))["execs_total"]
        assert after - before == 3, (before, after)


def test_stats_execs_running_counts_running():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 30",
                  "timeout": 20, "id": "bg"})
        h.wait_for(lambda: c.connect().call({"op": "stats"})
                   ["execs_running"] == 1, what="execs_running == 1")


def test_stats_errors_counts_by_code():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        for _ in range(2):
            h.err(ctl.call({"op": "no_such_op_xyz"}), "unknown_op")
        r = h.ok(ctl.call({"op": "stats"}))
        assert r["errors"].get("unknown_op") == 2, r


def test_stats_bytes_out_grows_with_output():
    with h.Cluster() as c:
        ctl = c.connect()
        before = h.ok(ctl.call({"op": "stats"}))
        h.ok(ctl.call({"op": "exec", "worker": "w1",
                       "cmd": "head -c 200000 /dev/zero | tr '\\0' x"}))
        after = h.ok(ctl.call({"op": "stats"}))
        grew = (after["bytes_in"] - before["bytes_in"]) + \
            (after["bytes_out"] - before["bytes_out"])
        assert grew >= 200000, (before, after)


# ------------------------------------------------------------ HTTP

def test_health_returns_200_ok():
    with h.Cluster(workers={}) as c:
        st, _, body = h.http_get(c.port, "/health")
        assert st == 200 and body.strip() == b"OK", (st, body)


def test_metrics_is_prometheus_text_with_sandd_prefix():
    with h.Cluster() as c:
        st, hdrs, body = h.http_get(c.port, "/metrics")
        assert st == 200, st
        assert hdrs.get("content-type", "").startswith("text/plain"), hdrs
        names = set()
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+"
                         r"([-+0-9.eE]+|NaN|[+-]Inf)(\s+\d+)?$", line)
            assert m, "bad metrics line %r" % line
            names.add(m.group(1))
        assert names, body
        assert all(n.startswith("sandd_") for n in names), names


def test_stats_and_metrics_show_the_same_counters():
    """One counter table behind both: every stats counter is a metric
    (sandd_NAME, or sandd_NAME_total for counters) with the same value."""
    with h.Cluster() as c:
        ctl = c.connect()
        h.ok(ctl.call({"op": "session.open", "worker": "w1",
                       "cmd": "sleep 30", "attach": False}))
        stats = h.ok(ctl.call({"op": "stats"}))
        _, _, body = h.http_get(c.port, "/metrics")
        metrics = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, value = line.split()
                metrics[name] = float(value)
        for k in ("handshakes_refused", "workers_known", "sessions"):
            assert k in stats, (k, stats)
        assert stats["sessions"] == 1 and stats["workers_known"] == 1, stats
        for k, v in stats.items():
            if k in ("errors", "id", "ok"):
                continue
            m = metrics.get("sandd_" + k, metrics.get("sandd_%s_total" % k))
            assert m is not None, (k, sorted(metrics))
            if k not in ("control_clients",):
                assert m == v, (k, m, v)


def test_serve_prints_nothing_on_stdout():
    with h.Cluster() as c:
        h.ok(c.connect().call({"op": "exec", "worker": "w1", "cmd": "true"}))
        c.stop_server()
        with open(c.log_paths["serve.stdout"], "rb") as f:
            assert f.read() == b""


def test_control_socket_is_mode_0660_by_default():
    with h.Cluster(workers={}) as c:
        mode = stat.S_IMODE(os.stat(c.control).st_mode)
        assert mode == 0o660, oct(mode)


def test_control_mode_option_sets_socket_mode():
    with h.Cluster(workers={}, serve_args=["--control-mode", "0600"]) as c:
        mode = stat.S_IMODE(os.stat(c.control).st_mode)
        assert mode == 0o600, oct(mode)


def test_second_serve_on_live_control_socket_fails():
    with h.Cluster(workers={}) as c:
        r = h.run_sandd(["serve", "--listen", "127.0.0.1:%d" % h.free_port(),
                         "--control", c.control], timeout=15)
        assert r.returncode != 0, r
        h.ok(c.connect().call({"op": "hello"}))


def test_stale_control_socket_is_replaced():
    with h.Cluster(workers={}) as c:
        c.stop_server(signal.SIGKILL)
        assert os.path.exists(c.control), "test needs a stale socket file"
        c.restart_server()
        h.ok(c.connect().call({"op": "hello"}))


def test_controller_restart_brings_workers_back():
    with h.Cluster(workers={"w1": {"k": "v"}, "w2": {}}) as c:
        c.restart_server(wait_workers=False)
        r = h.ok(c.connect().call({"op": "wait", "labels": {}, "count": 2,
                                   "timeout": h.T(30)}, timeout=40))
        assert sorted(w["id"] for w in r["workers"]) == ["w1", "w2"], r
        r = h.ok(c.connect().call({"op": "exec", "worker": "w1",
                                   "cmd": "echo back"}))
        assert r["stdout"] == "back\n", r


def test_controller_restart_keeps_worker_labels():
    with h.Cluster(workers={"w1": {"k": "v"}}) as c:
        c.restart_server()
        assert _worker(c.connect(), "w1")["labels"] == {"k": "v"}


def test_workers_come_back_after_serve_was_killed():
    with h.Cluster(workers={"w1": {}}) as c:
        c.restart_server(sig=signal.SIGKILL)
        r = h.ok(c.connect().call({"op": "exec", "worker": "w1",
                                   "cmd": "echo ok"}))
        assert r["stdout"] == "ok\n", r


def test_serve_exits_on_sigterm():
    with h.Cluster(workers={}) as c:
        c.serve.send_signal(signal.SIGTERM)
        c.serve.wait(h.T(10))


def test_worker_reconnects_when_server_starts_later():
    with h.Cluster(workers={"w1": {}}) as c:
        c.stop_server()
        time.sleep(0.5)  # let the worker notice and start its retry loop
        c.restart_server(wait_workers=True)
        assert c.workers["w1"].poll() is None


# ------------------------------------------------------------ duplicates

def test_duplicate_worker_id_replaces_the_first():
    with h.Cluster(workers={}) as c:
        c.start_worker("dup", labels={"gen": "1"}, env={"MARK": "first"})
        c.start_worker("dup", labels={"gen": "2"}, env={"MARK": "second"},
                       wait=False)
        ctl = c.connect()

        def replaced():
            w = _worker(ctl, "dup")
            return w and w["connected"] and w["labels"] == {"gen": "2"}
        h.wait_for(replaced, timeout=15, what="second 'dup' to replace")
        r = h.ok(ctl.call({"op": "workers"}))
        assert [w["id"] for w in r["workers"]].count("dup") == 1, r
        r = h.ok(ctl.call({"op": "exec", "worker": "dup",
                           "cmd": "echo $MARK"}))
        assert r["stdout"] == "second\n", r


def test_duplicate_worker_id_stays_replaced():
    with h.Cluster(workers={}) as c:
        c.start_worker("dup", labels={"gen": "1"})
        c.start_worker("dup", labels={"gen": "2"}, wait=False)
        ctl = c.connect()
        h.wait_for(lambda: (_worker(ctl, "dup") or {}).get("labels") ==
                   {"gen": "2"}, timeout=15, what="replacement")
        # the first worker must not take the id back (no flapping)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            w = _worker(ctl, "dup")
            assert w["labels"] == {"gen": "2"}, w
            time.sleep(0.2)


# ------------------------------------------------------------ worker ids

def _bad_id(name):
    with h.Cluster(workers={}) as c:
        r = h.run_sandd(["worker", "--server-url", c.url, "--id", name],
                        timeout=15)
        assert r.returncode == 2, (name, r)
        err = r.stderr.decode()
        assert err.strip(), "no error message for id %r" % name


def test_worker_id_with_space_exits_2():
    _bad_id("bad id")


def test_worker_id_with_slash_exits_2():
    _bad_id("a/b")


def test_worker_id_empty_exits_2():
    _bad_id("")


def test_worker_id_65_chars_exits_2():
    _bad_id("a" * 65)


def test_worker_id_non_ascii_exits_2():
    _bad_id("wörker")


def test_worker_id_of_64_allowed_chars_connects():
    name = ("Az09._-" * 10)[:64]
    with h.Cluster(workers={name: {}}) as c:
        assert _worker(c.connect(), name)["connected"] is True


def test_worker_id_from_env_is_validated():
    with h.Cluster(workers={}) as c:
        r = subprocess.run([h.SANDD, "worker", "--server-url", c.url],
                           env=dict(os.environ, DAEMON_ID="no way"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=h.T(15))
        assert r.returncode == 2, r


# ------------------------------------------------------------ command line

def test_version_prints_sandd_and_semver():
    _version()


def test_help_prints_usage_and_exits_0():
    r = h.run_sandd(["--help"])
    assert r.returncode == 0, r
    text = (r.stdout + r.stderr).decode()
    for word in ("serve", "worker", "exec"):
        assert word in text, text


def test_serve_help_lists_options():
    r = h.run_sandd(["serve", "--help"])
    assert r.returncode == 0, r
    text = (r.stdout + r.stderr).decode()
    for opt in ("--listen", "--control", "--token-file", "--tls-cert"):
        assert opt in text, text


def _bad_option(args):
    r = h.run_sandd(args)
    assert r.returncode == 2, (args, r)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) >= 1, r
    assert r.stdout == b"", r
    return lines


def test_bad_serve_option_exits_2_with_error():
    lines = _bad_option(["serve", "--no-such-option"])
    assert len(lines) == 1, lines


def test_bad_worker_option_exits_2_with_error():
    lines = _bad_option(["worker", "--no-such-option"])
    assert len(lines) == 1, lines


def test_bad_exec_option_exits_2_with_error():
    lines = _bad_option(["exec", "--no-such-option", "w1", "--", "true"])
    assert len(lines) == 1, lines


def test_unknown_subcommand_exits_2():
    _bad_option(["no-such-subcommand"])


def test_serve_bad_listen_value_exits_2():
    _bad_option(["serve", "--listen", "not-a-host-port",
                 "--control", "/tmp/sandd-never.sock"])


def test_serve_non_numeric_option_exits_2():
    _bad_option(["serve", "--listen", "127.0.0.1:1", "--control",
                 "/tmp/sandd-never.sock", "--resume-window", "abc"])


def test_serve_missing_option_argument_exits_2():
    _bad_option(["serve", "--control"])


def test_worker_tls_cert_without_key_exits_2():
    _bad_option(["worker", "-s", "wss://127.0.0.1:1/ws", "--id", "x",
                 "--tls-cert", "/nonexistent.pem"])


def test_serve_without_listen_exits_2():
    _bad_option(["serve", "--control", "/tmp/sandd-never.sock"])


def test_serve_bad_control_mode_exits_2():
    _bad_option(["serve", "--listen", "127.0.0.1:1", "--control",
                 "/tmp/sandd-never.sock", "--control-mode", "9z"])


def test_worker_without_server_url_exits_2():
    _bad_option(["worker", "--id", "w1"])


def test_worker_bad_label_exits_2():
    _bad_option(["worker", "-s", "ws://127.0.0.1:1/ws", "--id", "w1",
                 "--label", "novalue"])


def test_worker_bad_url_scheme_exits_2():
    _bad_option(["worker", "-s", "http://127.0.0.1:1/ws", "--id", "w1"])


def test_worker_missing_token_file_fails():
    with h.Cluster(workers={}) as c:
        r = h.run_sandd(["worker", "-s", c.url, "--id", "w1",
                         "--token-file", "/nonexistent/token"], timeout=15)
        assert r.returncode != 0 and r.stderr.strip(), r


# ------------------------------------------------------------ handshakes

def test_max_handshakes_refuses_extra_connections_with_503():
    with h.Cluster(workers={}, serve_args=["--max-handshakes", "2"]) as c:
        idle = [socket.create_connection(("127.0.0.1", c.port))
                for _ in range(2)]
        try:
            h.wait_for(lambda: h.http_get(c.port, "/health")[0] == 503,
                       timeout=5, what="503 while handshakes are full")
        finally:
            for s in idle:
                s.close()
        h.wait_for(lambda: h.http_get(c.port, "/health")[0] == 200,
                   timeout=5, what="200 once the idle ones are gone")


def test_idle_http_connection_does_not_block_workers():
    with h.Cluster(workers={}) as c:
        idle = socket.create_connection(("127.0.0.1", c.port))
        try:
            c.start_worker("w1")
        finally:
            idle.close()


# ------------------------------------------------------------ clients

def test_stats_control_clients_follows_connections():
    with h.Cluster(workers={}) as c:
        probe = c.connect()
        base = h.ok(probe.call({"op": "stats"}))["control_clients"]
        extra = [c.connect() for _ in range(5)]
        for e in extra:
            h.ok(e.call({"op": "hello"}))
        assert h.ok(probe.call({"op": "stats"}))["control_clients"] == \
            base + 5
        for e in extra:
            e.close()
        h.wait_for(lambda: probe.call({"op": "stats"})["control_clients"]
                   == base, what="control_clients back to %d" % base)


def test_half_close_without_requests_closes_at_once():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.shutdown_write()
        assert ctl.at_eof(timeout=5)


def test_server_survives_client_vanishing_mid_reply():
    with h.Cluster() as c:
        for _ in range(5):
            ctl = c.connect()
            ctl.send({"op": "exec", "worker": "w1",
                      "cmd": "head -c 3000000 /dev/zero | tr '\\0' a",
                      "max_output": 4000000})
            time.sleep(0.2)
            ctl.close()
        r = h.ok(c.connect().call({"op": "exec", "worker": "w1",
                                   "cmd": "echo alive"}))
        assert r["stdout"] == "alive\n"
        assert c.serve.poll() is None


def test_many_control_clients_at_once():
    with h.Cluster() as c:
        ctls = [c.connect() for _ in range(60)]
        for i, ctl in enumerate(ctls):
            ctl.send({"op": "exec", "worker": "w1", "cmd": "echo %d" % i,
                      "id": i})
        for i, ctl in enumerate(ctls):
            r = h.ok(ctl.recv(timeout=30))
            assert r["id"] == i and r["stdout"] == "%d\n" % i, r


def test_subscriber_sees_events_for_every_worker():
    with h.Cluster(workers={}) as c:
        ctl = _sub(c)
        for n in ("a1", "a2", "a3"):
            c.start_worker(n, wait=False)
        seen = set()
        while len(seen) < 3:
            _, m = ctl.recv_until(lambda m: m.get("event") == "worker" and
                                  m.get("state") == "connected",
                                  timeout=15)
            seen.add(m["worker"])
        assert seen == {"a1", "a2", "a3"}


def test_two_subscribers_both_get_events():
    with h.Cluster(workers={}) as c:
        a, b = _sub(c), _sub(c)
        c.start_worker("w1")
        _worker_event(a, "w1", "connected")
        _worker_event(b, "w1", "connected")


def test_idle_worker_link_stays_up():
    # Default ping interval (10 s); a short worker ping timeout makes a
    # link that stops being read show up in 25 s instead of 40.
    with h.Cluster(workers={}) as c:
        ctl = _sub(c)
        c.start_worker("w1", args=["--ping-timeout", "15"])
        _worker_event(ctl, "w1", "connected")
        try:
            _, m = ctl.recv_until(lambda m: m.get("event") == "worker" and
                                  m.get("state") != "connected",
                                  timeout=25 / h.SCALE)
        except TimeoutError:
            return
        raise AssertionError("idle link dropped: %r\n%s" % (
            m, c.log("worker-w1")))



def _http_raw(port, request):
    s = socket.create_connection(("127.0.0.1", port), timeout=h.T(10))
    try:
        s.sendall(request.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    finally:
        s.close()


def test_metrics_answers_head_and_ignores_a_query():
    with h.Cluster() as c:
        st, hdrs, body = h.http_get(c.port, "/metrics?x=1")
        assert st == 200 and b"sandd_workers_connected" in body, st
        assert "version=0.0.4" in hdrs.get("content-type", ""), hdrs
        st, _, body = h.http_get(c.port, "/health?probe=1")
        assert st == 200 and body.strip() == b"OK", (st, body)
        raw = _http_raw(c.port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n"
                        "\r\n")
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), raw
        assert b"content-length:" in head.lower(), head
        assert rest == b"", rest
        raw = _http_raw(c.port, "POST /metrics HTTP/1.1\r\nHost: x\r\n"
                        "Content-Length: 0\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 405"), raw

h.run_main(globals())

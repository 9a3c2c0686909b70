"""Error codes and bad input on the control socket."""

import base64
import json
import os
import time

import harness as h


def _usable(ctl):
    """The connection still answers requests."""
    r = ctl.call({"op": "hello", "id": "after"})
    h.ok(r)
    assert r["id"] == "after"


# ------------------------------------------------------------ framing

def test_not_json_is_bad_request():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b"this is not json\n")
        h.err(ctl.recv(), "bad_request")


def test_connection_usable_after_not_json():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b"{oops\n")
        h.err(ctl.recv(), "bad_request")
        _usable(ctl)


def test_json_array_is_bad_request():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b'[{"op":"hello"}]\n')
        h.err(ctl.recv(), "bad_request")
        _usable(ctl)


def test_json_number_is_bad_request():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b"42\n")
        h.err(ctl.recv(), "bad_request")


def test_invalid_utf8_line_is_bad_request():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b'{"op":"hello","x":"\xff"}\n')
        h.err(ctl.recv(), "bad_request")
        _usable(ctl)


def test_missing_op_is_bad_request_naming_op():
    with h.Cluster(workers={}) as c:
        r = h.err(c.connect().call({"id": 3}), "bad_request")
        assert r["id"] == 3, r
        assert "op" in r["error"]["message"], r


def test_non_string_op_is_bad_request():
    with h.Cluster(workers={}) as c:
        h.err(c.connect().call({"op": 5}), "bad_request")


def test_unknown_op_is_unknown_op_with_id_echoed():
    with h.Cluster(workers={}) as c:
        r = h.err(c.connect().call({"op": "frobnicate", "id": "u1"}),
                  "unknown_op")
        assert r["id"] == "u1", r


def test_bad_id_type_is_bad_request():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send({"op": "hello", "id": [1, 2]})
        h.err(ctl.recv(), "bad_request")


def test_error_reply_has_ok_false_and_no_result_fields():
    with h.Cluster(workers={}) as c:
        r = h.err(c.connect().call({"op": "frobnicate"}), "unknown_op")
        assert "event" not in r, r


# ------------------------------------------------------------ fields

def test_exec_without_target_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "exec", "cmd": "true"}), "bad_request")


def test_exec_without_command_is_bad_request_naming_field():
    with h.Cluster() as c:
        r = h.err(c.connect().call({"op": "exec", "worker": "w1"}),
                  "bad_request")
        msg = r["error"]["message"]
        assert "cmd" in msg or "argv" in msg, r


def test_a_bare_json_value_is_valid_json_but_not_an_object():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        for line in ('"x"', "12", "[1]", "null"):
            ctl.send_raw(line + "\n")
            r = ctl.recv()
            h.err(r, "bad_request")
            assert r["error"]["message"] == "request is not an object", r
        ctl.send_raw("{nope\n")
        r = ctl.recv()
        assert r["error"]["message"] == "request is not valid JSON", r


def test_exec_and_session_open_treat_null_cmd_as_absent():
    with h.Cluster() as c:
        ctl = c.connect()
        r = h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": None,
                           "argv": ["echo", "hi"]}))
        assert r["stdout"] == "hi\n", r
        r = h.ok(ctl.call({"op": "session.open", "worker": "w1",
                           "cmd": None, "argv": ["sleep", "30"],
                           "attach": False}))
        h.ok(ctl.call({"op": "session.close", "session": r["session"],
                       "signal": "KILL"}))
        r = h.err(ctl.call({"op": "exec", "worker": "w1", "cmd": None}),
                  "bad_request")
        assert "cmd" in r["error"]["message"], r


def test_huge_numbers_are_bad_requests_naming_the_field():
    with h.Cluster() as c:
        ctl = c.connect()
        for field, v in (("timeout", 1e300), ("yield_after", 1e300),
                         ("kill_grace", -1), ("max_output", -5)):
            r = h.err(ctl.call({"op": "exec", "worker": "w1",
                                "cmd": "true", field: v}), "bad_request")
            assert field in r["error"]["message"], r
        r = h.err(ctl.call({"op": "wait", "worker": "w1",
                            "timeout": 1e300}), "bad_request")
        assert "timeout" in r["error"]["message"], r
        h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}))


def test_exec_ill_typed_timeout_is_bad_request_naming_field():
    with h.Cluster() as c:
        r = h.err(c.connect().call({"op": "exec", "worker": "w1",
                                    "cmd": "true", "timeout": "soon"}),
                  "bad_request")
        assert "timeout" in r["error"]["message"], r


def test_exec_ill_typed_worker_is_bad_request():
    with h.Cluster() as c:
        r = h.err(c.connect().call({"op": "exec", "worker": 17,
                                    "cmd": "true"}), "bad_request")
        assert "worker" in r["error"]["message"], r


def test_exec_argv_not_array_of_strings_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "exec", "worker": "w1",
                                "argv": ["echo", 1]}), "bad_request")


def test_exec_empty_argv_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "exec", "worker": "w1",
                                "argv": []}), "bad_request")


def test_exec_env_not_object_is_bad_request():
    with h.Cluster() as c:
        r = h.err(c.connect().call({"op": "exec", "worker": "w1",
                                    "cmd": "true", "env": ["A=1"]}),
                  "bad_request")
        assert "env" in r["error"]["message"], r


def test_exec_bad_stdin_b64_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "exec", "worker": "w1", "cmd": "cat",
                                "stdin_b64": "!!not base64!!"}),
              "bad_request")


def test_wait_without_worker_or_labels_is_bad_request():
    with h.Cluster(workers={}) as c:
        h.err(c.connect().call({"op": "wait", "timeout": 1}), "bad_request")


def test_subscribe_unknown_topic_is_bad_request():
    with h.Cluster(workers={}) as c:
        h.err(c.connect().call({"op": "subscribe", "topics": ["nope"]}),
              "bad_request")


def test_read_without_handle_is_bad_request():
    with h.Cluster(workers={}) as c:
        h.err(c.connect().call({"op": "read"}), "bad_request")


# ------------------------------------------------------------ workers

def test_no_such_worker_for_never_seen_id_is_immediate():
    with h.Cluster() as c:
        t0 = time.monotonic()
        r = h.err(c.connect().call({"op": "exec", "worker": "nobody",
                                    "cmd": "true"}), "no_such_worker")
        assert time.monotonic() - t0 < h.T(3), "no_such_worker was slow"
        assert "nobody" in r["error"]["message"], r


def test_no_such_worker_after_resume_window():
    with h.Cluster(serve_args=["--resume-window", "1"]) as c:
        ctl = c.connect()
        h.ok(ctl.call({"op": "subscribe", "topics": ["workers"]}))
        c.stop_worker("w1")
        ctl.recv_until(lambda m: m.get("event") == "worker" and
                       m.get("state") == "gone", timeout=15)
        h.err(ctl.call({"op": "exec", "worker": "w1", "cmd": "true"}),
              "no_such_worker")


def test_exec_waits_for_worker_inside_resume_window():
    # The worker process is frozen, the controller drops its link after the
    # ping timeout, then the same worker process comes back and resumes.
    import signal
    with h.Cluster(serve_args=["--resume-window", "30", "--ping-interval",
                               "1", "--ping-timeout", "1"]) as c:
        ctl = c.connect()
        h.ok(ctl.call({"op": "subscribe", "topics": ["workers"]}))
        w = c.workers["w1"]
        os.kill(w.pid, signal.SIGSTOP)
        try:
            ctl.recv_until(lambda m: m.get("event") == "worker" and
                           m.get("state") == "disconnected", timeout=20)
            ctl.send({"op": "exec", "worker": "w1", "cmd": "echo back",
                      "id": "e"})
            time.sleep(0.3)
            assert not [m for m in ctl.backlog if m.get("id") == "e"]
        finally:
            os.kill(w.pid, signal.SIGCONT)
        _, r = ctl.recv_until(lambda m: m.get("id") == "e" and h.is_final(m),
                              timeout=30)
        assert h.ok(r)["stdout"] == "back\n", r


def test_exec_queued_for_restarted_worker_runs_on_it():
    with h.Cluster(serve_args=["--resume-window", "30"]) as c:
        ctl = c.connect()
        h.ok(ctl.call({"op": "subscribe", "topics": ["workers"]}))
        c.stop_worker("w1")
        ctl.recv_until(lambda m: m.get("event") == "worker" and
                       m.get("state") == "disconnected", timeout=15)
        ctl.send({"op": "exec", "worker": "w1", "cmd": "echo back",
                  "id": "e"})
        c.start_worker("w1", wait=False)
        _, r = ctl.recv_until(lambda m: m.get("id") == "e" and h.is_final(m),
                              timeout=30)
        assert h.ok(r)["stdout"] == "back\n", r


def test_worker_lost_when_worker_dies_mid_exec():
    with h.Cluster(serve_args=["--resume-window", "1"]) as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "cmd": "sleep 30",
                  "id": "e", "stream": True})
        ctl.recv_until(lambda m: m.get("event") == "started")
        import signal
        c.stop_worker("w1", signal.SIGKILL)
        _, r = ctl.recv_until(lambda m: m.get("id") == "e" and h.is_final(m),
                              timeout=20)
        h.err(r, "worker_lost")


# ------------------------------------------------------------ payloads / size

def _send_put(ctl, body, **fields):
    req = {"op": "put", "path": "/tmp/sandd-never-written", "id": "p",
           "bytes": len(body)}
    req.update(fields)
    ctl.send_raw(json.dumps(req).encode() + b"\n" + body)


def _in_step(ctl):
    """No request was parsed out of the payload; the next one answers."""
    r = ctl.call({"op": "hello", "id": "next"})
    h.ok(r)
    leaked = [m for m in ctl.backlog if m.get("id") == "leak"]
    assert not leaked, "payload bytes were parsed as a request: %r" % leaked


LEAKY = b'{"op":"hello","id":"leak"}\n' * 5


def test_payload_of_put_to_unknown_worker_is_consumed():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        _send_put(ctl, LEAKY, worker="ghost")
        r = ctl.recv()
        assert r["id"] == "p" and r["ok"] is False, r
        _in_step(ctl)


def test_put_to_unknown_worker_is_no_such_worker():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        _send_put(ctl, b"abc", worker="ghost")
        h.err(ctl.recv(), "no_such_worker")


def test_payload_of_put_with_bad_field_is_consumed():
    with h.Cluster() as c:
        ctl = c.connect()
        _send_put(ctl, LEAKY, worker="w1", path=12)
        r = ctl.recv()
        assert r["id"] == "p" and r["ok"] is False, r
        _in_step(ctl)


def test_put_with_ill_typed_path_is_bad_request():
    with h.Cluster() as c:
        ctl = c.connect()
        _send_put(ctl, b"abc", worker="w1", path=12)
        h.err(ctl.recv(), "bad_request")


def test_payload_announced_by_unknown_op_is_consumed():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b'{"op":"frobnicate","id":"p","bytes":%d}\n'
                     % len(LEAKY) + LEAKY)
        h.err(ctl.recv(), "unknown_op")
        _in_step(ctl)


def test_payload_split_across_writes_is_consumed():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        _send_put(ctl, b"", worker="ghost", bytes=len(LEAKY))
        time.sleep(0.2)
        ctl.send_raw(LEAKY[:10])
        time.sleep(0.2)
        ctl.send_raw(LEAKY[10:])
        r = ctl.recv()
        assert r["id"] == "p" and r["ok"] is False, r
        _in_step(ctl)


MIB = 1024 * 1024


def test_line_over_max_line_is_too_large():
    with h.Cluster(workers={}, serve_args=["--max-line", str(MIB)]) as c:
        ctl = c.connect()
        ctl.send({"op": "hello", "id": "big", "pad": "x" * (2 * MIB)})
        h.err(ctl.recv(timeout=20), "too_large")


def test_connection_usable_after_too_large_line():
    with h.Cluster(workers={}, serve_args=["--max-line", str(MIB)]) as c:
        ctl = c.connect()
        ctl.send({"op": "hello", "id": "big", "pad": "x" * (2 * MIB)})
        h.err(ctl.recv(timeout=20), "too_large")
        _usable(ctl)


def test_max_line_option_raises_the_limit():
    with h.Cluster(workers={}, serve_args=["--max-line", str(8 * MIB)]) as c:
        ctl = c.connect()
        ctl.send({"op": "hello", "id": "big", "pad": "x" * (3 * MIB)})
        h.ok(ctl.recv(timeout=20))


def test_line_just_under_1mib_is_accepted_by_default():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send({"op": "hello", "id": "big", "pad": "x" * (MIB - 100)})
        h.ok(ctl.recv(timeout=20))


def test_default_max_line_is_enforced():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send({"op": "hello", "id": "big", "pad": "x" * (64 << 20)})
        r = ctl.recv(timeout=60)
        h.err(r, "too_large")
        _usable(ctl)


def test_large_stdin_line_is_accepted():
    with h.Cluster() as c:
        data = b"y" * 700000
        r = h.ok(c.connect().call({
            "op": "exec", "worker": "w1", "cmd": "wc -c",
            "stdin_b64": base64.b64encode(data).decode()}))
        assert r["stdout"].strip() == "700000", r


# ------------------------------------------------------------ stats

def test_errors_are_counted_in_stats():
    with h.Cluster() as c:
        ctl = c.connect()
        h.err(ctl.call({"op": "exec", "worker": "ghost", "cmd": "true"}),
              "no_such_worker")
        ctl.send_raw(b"nope\n")
        h.err(ctl.recv(), "bad_request")
        r = h.ok(ctl.call({"op": "stats"}))
        assert r["errors"].get("no_such_worker") == 1, r
        assert r["errors"].get("bad_request") == 1, r


# ------------------------------------------------------------ denied

def test_command_outside_worker_allowlist_is_denied():
    with h.Cluster(workers={}) as c:
        c.start_worker("w1", args=["--allow", "echo*"])
        h.err(c.connect().call({"op": "exec", "worker": "w1",
                                "argv": ["true"]}), "denied")


def test_read_with_invalid_regex_is_bad_request():
    with h.Cluster() as c:
        ctl = c.connect()
        hd = h.ok(ctl.call({"op": "exec", "worker": "w1", "cmd": "sleep 30",
                            "yield_after": 0.1, "timeout": 20}))["handle"]
        r = h.err(ctl.call({"op": "read", "handle": hd, "until": "([a-",
                            "timeout": 1}), "bad_request")
        assert "until" in r["error"]["message"], r


def test_exec_env_value_not_string_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "exec", "worker": "w1", "cmd": "true",
                                "env": {"A": 1}}), "bad_request")


def test_exec_limits_ill_typed_is_bad_request():
    with h.Cluster() as c:
        r = h.err(c.connect().call({"op": "exec", "worker": "w1",
                                    "cmd": "true",
                                    "limits": {"nofile": "many"}}),
                  "bad_request")
        assert "nofile" in r["error"]["message"] or \
            "limits" in r["error"]["message"], r


def test_exec_labels_not_object_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "exec", "labels": "role=a",
                                "cmd": "true"}), "bad_request")


def test_workers_labels_not_object_is_bad_request():
    with h.Cluster() as c:
        h.err(c.connect().call({"op": "workers", "labels": ["a"]}),
              "bad_request")


def test_write_bad_data_b64_is_bad_request():
    with h.Cluster() as c:
        ctl = c.connect()
        ctl.send({"op": "exec", "worker": "w1", "stream": True, "id": "x",
                  "cmd": "cat", "stdin_open": True, "timeout": 20})
        _, st = ctl.recv_until(lambda m: m.get("event") == "started")
        h.err(ctl.call({"op": "write", "handle": st["handle"],
                        "data_b64": "%%%not-base64"}), "bad_request")


def test_empty_line_does_not_break_the_connection():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b"\n")
        ctl.send({"op": "hello", "id": "after"})
        _, r = ctl.recv_until(lambda m: m.get("id") == "after")
        h.ok(r)


def test_crlf_terminated_request_is_accepted():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(b'{"op":"hello","id":"crlf"}\r\n')
        r = ctl.recv()
        assert r["id"] == "crlf" and r["ok"] is True, r


def test_sighup_with_broken_token_file_keeps_old_grants():
    import signal
    import secrets as _s
    path = "/tmp/sandd-grants-%s" % _s.token_hex(6)
    with open(path, "w") as f:
        f.write("w1 good\n")
    try:
        with h.Cluster(workers={}, serve_args=["--token-file", path]) as c:
            with open(path, "w") as f:
                f.write("this line is broken sha256:zz\n")
            os.kill(c.serve.pid, signal.SIGHUP)
            h.ok(c.connect().call({"op": "hello"}))
            tf = os.path.join(c.tmp, "tok")
            with open(tf, "w") as f:
                f.write("good\n")
            c.start_worker("w1", args=["--token-file", tf])
            assert c.serve.poll() is None
    finally:
        os.unlink(path)


def _line_of(n, id_):
    """A hello request line of exactly n bytes (without the newline)."""
    head = '{"op":"hello","id":"%s","pad":"' % id_
    return (head + "x" * (n - len(head) - 2) + '"}').encode()


def _man_default_max_line():
    import re as _re
    man = os.path.join(h.REPO, "man", "sandd.8")
    try:
        text = open(man).read()
    except OSError:
        raise h.Skip("no man/sandd.8")
    i = text.find(".It Fl \\-max\\-line")
    m = _re.search(r"default[^.]*?\((\d+)\)", text[i:i + 400]) \
        if i >= 0 else None
    if not m:
        raise h.Skip("man page states no --max-line default in bytes")
    return int(m.group(1))


def test_default_max_line_is_the_one_the_man_page_states():
    n = _man_default_max_line()
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send_raw(_line_of(n, "exact") + b"\n")
        r = ctl.recv(timeout=20)
        assert r.get("id") == "exact" and r["ok"] is True, r
        ctl.send_raw(_line_of(n + 1, "over") + b"\n")
        r = ctl.recv(timeout=20)
        assert r.get("error", {}).get("code") == "too_large", \
            "a %d-byte line was accepted; man page default is %d: %r" % (
                n + 1, n, r)


def test_max_line_below_1mib_is_refused():
    with h.Cluster(workers={}) as c:
        r = h.run_sandd(["serve", "--listen", "127.0.0.1:%d" % h.free_port(),
                         "--control", os.path.join(c.tmp, "o.sock"),
                         "--max-line", "65536"], timeout=3)
        assert r.returncode == 2, r


def test_max_line_accepts_size_suffix():
    with h.Cluster(workers={}, serve_args=["--max-line", "2M"]) as c:
        ctl = c.connect()
        ctl.send_raw(_line_of(2 * MIB - 10, "big") + b"\n")
        h.ok(ctl.recv(timeout=20))
        ctl.send_raw(_line_of(2 * MIB + 10, "over") + b"\n")
        h.err(ctl.recv(timeout=20), "too_large")


def test_half_close_with_pending_wait_gets_its_reply_then_eof():
    with h.Cluster(workers={}) as c:
        ctl = c.connect()
        ctl.send({"op": "wait", "worker": "nobody", "timeout": 1, "id": "w"})
        ctl.shutdown_write()
        r = ctl.recv(timeout=10)
        assert r["id"] == "w", r
        h.err(r, "timeout")
        assert ctl.at_eof(timeout=5)


h.run_main(globals())

"""Run the examples in contrib/examples/ against a real cluster."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EXAMPLES = os.path.join(h.REPO, "contrib", "examples")


def run(argv, control, timeout=60):
    env = h._clean_env({"SANDD_CONTROL": control})
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=h.T(timeout),
                          start_new_session=True)


def need_socat():
    if shutil.which("socat") is None:
        raise h.Skip("socat not installed")


def test_exec_sh_prints_reply_and_exits_0():
    need_socat()
    with h.Cluster() as c:
        cmd = "printf '%s|' \"q\\\"q\" 'b\\s'\tx"
        r = run([os.path.join(EXAMPLES, "exec.sh"), "w1", cmd], c.control)
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        reply = json.loads(r.stdout.decode().strip().splitlines()[-1])
        assert reply["ok"] is True and reply["exit_code"] == 0, reply
        assert reply["stdout"] == 'q"q|b\\s|x|', reply


def test_exec_sh_exit_status_reflects_failure():
    need_socat()
    with h.Cluster() as c:
        r = run([os.path.join(EXAMPLES, "exec.sh"), "w1", "exit 3"],
                c.control)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        reply = json.loads(r.stdout.decode().strip())
        assert reply["exit_code"] == 3
        r = run([os.path.join(EXAMPLES, "exec.sh"), "w9", "true"],
                c.control)
        assert r.returncode == 1
        reply = json.loads(r.stdout.decode().strip())
        assert reply["error"]["code"] == "no_such_worker", reply


def test_exec_sh_usage():
    r = run(["sh", os.path.join(EXAMPLES, "exec.sh")], "/nonexistent")
    assert r.returncode == 2 and b"usage" in r.stderr


def test_example_py_runs():
    with h.Cluster(workers={"w1": {"role": "demo"}}) as c:
        r = run([sys.executable, os.path.join(EXAMPLES, "example.py")],
                c.control)
        out = r.stdout.decode()
        assert r.returncode == 0, (r.returncode, out, r.stderr.decode())
        assert "protocol 1" in out, out
        assert "worker w1" in out and "role=demo" in out, out
        assert "exec: exit 0" in out, out
        assert "timeout: kept 'partial\\n'" in out, out
        assert "stream: line 3" in out and "stream: exit 0" in out, out
        assert "file: b'hello from example.py\\n'" in out, out
        assert "Daemon no-such-worker not found" in out, out


h.run_main(globals())

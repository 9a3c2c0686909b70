"""`make install` with PREFIX and DESTDIR lays out the binary, the man
pages and the Python package where packagers expect them, and the installed
binary runs; `pip install contrib/python` in a venv gives `import sandd`,
and the Rust sandd's quick start runs on it unchanged."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import harness as h

# Debian's python3: externally managed, so packages go into a venv.
SYSTEM_PYTHON = "/usr/bin/python3"

# The Rust sandd's quick start, as its users have it.
QUICK_START = """\
from sandd import Server

server = Server("0.0.0.0", %d)
server.wait_for_daemon("worker-1", timeout=30)
result = server.exec("worker-1", "hostname")
print(result.stdout)
"""


def _install(prefix):
    dest = tempfile.mkdtemp(prefix="sandd-install-")
    r = subprocess.run(["make", "-s", "install", "DESTDIR=" + dest,
                        "PREFIX=" + prefix], cwd=h.REPO,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return dest


def _tree(root):
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def test_install_lays_out_the_expected_tree():
    dest = _install("/usr")
    try:
        assert _tree(dest) == {
            "usr/bin/sandd",
            "usr/share/man/man8/sandd.8",
            "usr/share/man/man7/sandd-control.7",
            "usr/share/man/man7/sandd-wire.7",
            "usr/lib/sandd/python/sandd/__init__.py",
            "usr/lib/sandd/python/sandd/aio.py",
            "usr/lib/sandd/python/sandd/api.py",
            "usr/lib/sandd/python/sandd/client.py",
            "usr/lib/sandd/python/sandd/errors.py",
            "usr/lib/sandd/python/sandd/objects.py",
            "usr/lib/sandd/python/sandd/ops.py",
            "usr/lib/sandd/python/sandd/process.py",
            "usr/lib/sandd/python/sandd/protocol.py",
            "usr/lib/sandd/python/sandd/results.py",
            "usr/lib/sandd/python/sandd/server.py",
            "usr/share/bash-completion/completions/sandd",
        }, _tree(dest)
        st = os.stat(os.path.join(dest, "usr/bin/sandd"))
        assert st.st_mode & 0o777 == 0o755
        st = os.stat(os.path.join(dest, "usr/share/man/man8/sandd.8"))
        assert st.st_mode & 0o777 == 0o644
    finally:
        subprocess.run(["rm", "-rf", dest])


def test_installed_binary_runs():
    dest = _install("/opt/sandd")
    try:
        r = subprocess.run([os.path.join(dest, "opt/sandd/bin/sandd"),
                            "--version"], capture_output=True, timeout=10)
        assert r.returncode == 0 and r.stdout.startswith(b"sandd "), r
    finally:
        subprocess.run(["rm", "-rf", dest])


def _pythons():
    """This python and Debian's, where they differ."""
    found = [sys.executable]
    if os.access(SYSTEM_PYTHON, os.X_OK):
        found.append(SYSTEM_PYTHON)
    return found


def test_installed_python_module_imports():
    dest = _install("/usr/local")
    try:
        py = os.path.join(dest, "usr/local/lib/sandd/python")
        for python in _pythons():
            r = subprocess.run([python, "-c",
                                "import sandd; print(sandd.Client)"],
                               env=dict(os.environ, PYTHONPATH=py),
                               capture_output=True, timeout=20)
            assert r.returncode == 0 and b"Client" in r.stdout, (python, r)
    finally:
        subprocess.run(["rm", "-rf", dest])


def _remove_build_debris():
    """What a pip install leaves in contrib/python (setuptools builds in
    the tree); a stale build/ could put removed modules in the wheel."""
    for name in ("build", "sandd.egg-info"):
        shutil.rmtree(os.path.join(h.REPO, "contrib", "python", name),
                      ignore_errors=True)


def _venv_with_sandd(folder):
    """A venv of Debian's python3 with contrib/python pip-installed, as
    the README says (no index, no build isolation); its python."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        raise h.Skip("%s not found (a Debian python3)" % SYSTEM_PYTHON)
    venv = os.path.join(folder, "venv")
    env = h._clean_env()
    env.pop("PYTHONPATH", None)
    r = subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages",
                        venv], capture_output=True, timeout=h.T(120), env=env)
    assert r.returncode == 0, ("venv failed; run scripts/deps.sh",
                               r.stderr.decode(errors="replace"))
    _remove_build_debris()
    try:
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install",
                            "--no-build-isolation", "--no-index",
                            "contrib/python"], cwd=h.REPO,
                           capture_output=True, timeout=h.T(180), env=env)
    finally:
        _remove_build_debris()
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return os.path.join(venv, "bin", "python")


def test_pip_installed_package_runs_the_rust_sandd_quick_start():
    folder = tempfile.mkdtemp(prefix="sandd-venv-")
    worker = None
    try:
        python = _venv_with_sandd(folder)
        env = h._clean_env({"SANDD_BIN": h.SANDD})
        env.pop("PYTHONPATH", None)
        r = subprocess.run([python, "-c",
                            "import sandd; print(sandd.__file__)"],
                           cwd=folder, env=env, capture_output=True,
                           timeout=h.T(20))
        assert r.stdout.decode().startswith(os.path.join(folder, "venv")), r
        port = h.free_port()
        script = os.path.join(folder, "quick_start.py")
        with open(script, "w") as f:
            f.write(QUICK_START % port)
        quick = subprocess.Popen([python, script], cwd=folder, env=env,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 start_new_session=True)
        worker = subprocess.Popen(
            [h.SANDD, "--server-url", "ws://127.0.0.1:%d/ws" % port,
             "--daemon-id", "worker-1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        try:
            out, err = quick.communicate(timeout=h.T(60))
        finally:
            h._stop_proc(quick)
        assert quick.returncode == 0, err.decode(errors="replace")
        assert out.decode().strip() == socket.gethostname(), (out, err)
    finally:
        h._stop_proc(worker, signal.SIGTERM)
        shutil.rmtree(folder, ignore_errors=True)


h.run_main(globals())

"""`make install` with PREFIX and DESTDIR lays out the binary, the man
pages and the Python module where packagers expect them, and the installed
binary runs."""

import os
import subprocess
import tempfile

import harness as h


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


def test_installed_python_module_imports():
    dest = _install("/usr/local")
    try:
        py = os.path.join(dest, "usr/local/lib/sandd/python")
        r = subprocess.run(["python3", "-c", "import sandd; print(sandd.Client)"],
                           env=dict(os.environ, PYTHONPATH=py),
                           capture_output=True, timeout=20)
        assert r.returncode == 0 and b"Client" in r.stdout, r
    finally:
        subprocess.run(["rm", "-rf", dest])


h.run_main(globals())

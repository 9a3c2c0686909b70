"""Documentation and packaging: man pages lint cleanly, scripts parse,
systemd units and the DaemonSet point at sandd, `sandd --help` and the bash
completion know every subcommand that sandd(8) documents, and the demo runs
and cleans up after itself."""

import glob
import os
import re
import shutil
import subprocess
import tempfile

import harness as h

REPO = h.REPO
MAN_PAGES = ("man/sandd.8", "man/sandd-control.7", "man/sandd-wire.7")


def _path(rel):
    return os.path.join(REPO, rel)


def _read(rel):
    with open(_path(rel), encoding="utf-8") as f:
        return f.read()


def _need(tool):
    p = shutil.which(tool)
    assert p, "%s is not installed (scripts/deps.sh installs it)" % tool
    return p


def _man_subcommands():
    """Subcommands in the SYNOPSIS of sandd(8): `.Cm X` right after `.Nm`."""
    text = _read("man/sandd.8")
    m = re.search(r"^\.Sh SYNOPSIS\n(.*?)^\.Sh ", text, re.S | re.M)
    assert m, "sandd.8 has no SYNOPSIS section"
    lines = m.group(1).splitlines()
    subs = []
    for prev, line in zip(lines, lines[1:]):
        if prev.strip() == ".Nm":
            mm = re.match(r"^\.Cm (\S+)", line)
            if mm and mm.group(1) not in subs:
                subs.append(mm.group(1))
    assert len(subs) >= 5, "found only %r in the SYNOPSIS" % subs
    return subs


def _exec_start(unit_text):
    """The ExecStart= lines of a unit, with continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", unit_text)
    return [l.split("=", 1)[1].strip() for l in joined.splitlines()
            if l.startswith("ExecStart=")]


# ---------------------------------------------------------------- man pages

def test_man_pages_exist():
    for m in MAN_PAGES:
        assert os.path.isfile(_path(m)), "%s is missing" % m


def test_man_pages_lint_cleanly_with_mandoc():
    mandoc = _need("mandoc")
    pages = sorted(set(glob.glob(_path("man/*.[0-9]")) +
                       [_path(m) for m in MAN_PAGES]))
    bad = []
    for p in pages:
        r = subprocess.run([mandoc, "-Tlint", "-W", "warning", p],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        out = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode != 0 or out:
            bad.append("%s (exit %d):\n%s" % (os.path.relpath(p, REPO),
                                               r.returncode, out))
    assert not bad, "mandoc -Tlint -W warning complains:\n" + "\n".join(bad)


def test_man_pages_render_to_text():
    mandoc = _need("mandoc")
    for m in MAN_PAGES:
        r = subprocess.run([mandoc, "-Tascii", _path(m)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        assert r.returncode == 0, (m, r.stderr)
        text = re.sub(rb".\x08", b"", r.stdout)   # overstrike (bold)
        assert b"NAME" in text and len(text) > 200, m


def test_control_man_page_names_every_error_code_of_the_spec():
    text = _read("man/sandd-control.7")
    for code in ("bad_request", "unknown_op", "too_large", "no_such_worker",
                 "no_such_session", "no_such_handle", "timeout",
                 "exec_failed", "denied", "rate_limited", "worker_lost",
                 "io_error", "limit", "internal"):
        assert re.search(r"\b%s\b" % code, text), code


def test_control_man_page_describes_every_op():
    text = _read("man/sandd-control.7")
    for op in ("hello", "workers", "wait", "exec", "read", "write",
               "signal", "subscribe", "stats", "session.open",
               "session.attach", "session.detach", "session.write",
               "session.resize", "session.read", "session.run",
               "session.close", "session.list", "put", "get", "stat"):
        assert re.search(r"^\.Ss %s$" % re.escape(op), text, re.M), op


# ----------------------------------------------------------- shell scripts

def _scripts():
    files = [_path("contrib/completion/sandd.bash"), _path(".ci/run")]
    files += glob.glob(_path("scripts/*.sh"))
    files += glob.glob(_path("contrib/examples/*.sh"))
    return [f for f in files if os.path.isfile(f)]


def test_shell_scripts_parse_with_bash_n():
    bash = _need("bash")
    files = _scripts()
    assert len(files) >= 4, files
    bad = []
    for f in files:
        r = subprocess.run([bash, "-n", f], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            bad.append("%s: %s" % (f, r.stdout.decode(errors="replace")))
    assert not bad, "\n".join(bad)


def test_posix_sh_scripts_parse_with_sh_n():
    bad = []
    for f in _scripts():
        with open(f, "rb") as fh:
            first = fh.readline()
        if not first.startswith(b"#!/bin/sh"):
            continue
        r = subprocess.run(["/bin/sh", "-n", f], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        if r.returncode != 0:
            bad.append("%s: %s" % (f, r.stdout.decode(errors="replace")))
    assert not bad, "\n".join(bad)


def test_ci_run_runs_make_check():
    text = _read(".ci/run")
    assert text.startswith("#!/bin/sh\n"), text[:40]
    lines = [l for l in text.splitlines()[1:] if l.strip()]
    assert lines == ["set -e", "make check"], lines


def test_deps_script_is_quiet_when_everything_is_installed():
    _need("dpkg-query")
    r = subprocess.run(["sh", _path("scripts/deps.sh"), "-n"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if r.returncode != 0:
        raise h.Skip("packages missing here: %s" %
                     r.stdout.decode(errors="replace").strip())
    assert r.stdout == b"", r.stdout


# ------------------------------------------------------------- contrib

def test_systemd_units_exec_sandd():
    for unit, sub in (("sandd.service", "serve"),
                      ("sandd-worker.service", "worker")):
        text = _read("contrib/systemd/" + unit)
        starts = _exec_start(text)
        assert len(starts) == 1, (unit, starts)
        words = starts[0].split()
        assert os.path.basename(words[0]) == "sandd", (unit, words)
        assert os.path.isabs(words[0]), (unit, words)
        assert words[1] == sub, (unit, words)
        assert re.search(r"^EnvironmentFile=", text, re.M), unit
        assert "[Install]" in text and "WantedBy=" in text, unit
    serve = _read("contrib/systemd/sandd.service")
    assert "RuntimeDirectory=sandd" in serve
    assert "/run/sandd/control.sock" in serve
    assert "ExecReload=" in serve and "HUP" in serve
    worker = _read("contrib/systemd/sandd-worker.service")
    assert not re.search(r"^ProtectSystem=strict", worker, re.M), \
        "the worker must be able to run arbitrary commands"


def test_systemd_env_examples_carry_the_settings():
    worker = _read("contrib/systemd/sandd-worker.env.example")
    assert not re.search(r"^SANDD_TOKEN=", worker, re.M), \
        "the token goes in a file, not the environment"
    assert "--token-file" in _read("contrib/systemd/sandd-worker.service")
    assert re.search(r"^SERVER_URL=wss?://", worker, re.M)
    serve = _read("contrib/systemd/sandd.env.example")
    assert re.search(r"^SANDD_LISTEN=", serve, re.M)
    for unit in ("sandd.service", "sandd-worker.service"):
        for start in _exec_start(_read("contrib/systemd/" + unit)):
            assert "TOKEN" not in start, "token on the command line"


def test_kubernetes_daemonset_takes_token_from_a_secret():
    text = _read("contrib/kubernetes/worker-daemonset.yaml")
    assert re.search(r"^kind: DaemonSet$", text, re.M)
    assert "\t" not in text, "YAML must not hold tabs"
    for needle in ("--token-file", "secretName: sandd-worker-token",
                   "mountPath: /etc/sandd/token", "name: SERVER_URL",
                   "name: DAEMON_ID", "fieldPath: spec.nodeName"):
        assert needle in text, needle
    assert "name: SANDD_TOKEN" not in text, "the token goes in a file"
    assert os.path.isfile(_path("contrib/kubernetes/README"))


def test_bash_completion_knows_every_subcommand():
    subs = _man_subcommands()
    text = _read("contrib/completion/sandd.bash")
    m = re.search(r'local subcommands="([^"]*)"', text)
    assert m, "no subcommand list in sandd.bash"
    listed = m.group(1).split()
    missing = [s for s in subs if s not in listed]
    assert not missing, "completion lacks %r" % missing
    assert re.search(r"^complete -F _sandd sandd$", text, re.M)


def test_bash_completion_completes_subcommands():
    bash = _need("bash")
    script = ('source "$1"; COMP_WORDS=(sandd se); COMP_CWORD=1; '
              '_sandd; printf "%s\\n" "${COMPREPLY[@]}"')
    r = subprocess.run([bash, "-c", script, "x",
                        _path("contrib/completion/sandd.bash")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.decode().split()) == {"serve", "sessions"}, r.stdout


def test_top_level_files_exist():
    for f in ("README", "COPYING"):
        assert os.path.isfile(_path(f)), f
    assert "MIT" in _read("COPYING")
    assert "Copyright (c) 2026 The sandd authors" in _read("COPYING")
    readme = _read("README")
    for needle in ("make demo", "make check", "make bench"):
        assert needle in readme, needle


# ---------------------------------------------------------------- binary

def test_help_mentions_every_subcommand_of_the_man_page():
    if not os.access(h.SANDD, os.X_OK):
        raise AssertionError("%s is not built" % h.SANDD)
    r = h.run_sandd(["--help"])
    assert r.returncode == 0, r
    text = (r.stdout + r.stderr).decode("utf-8", "replace")
    missing = [s for s in _man_subcommands()
               if not re.search(r"\b%s\b" % re.escape(s), text)]
    assert not missing, "sandd --help does not mention %r:\n%s" % (
        missing, text)


def test_serve_help_mentions_every_serve_option_of_the_man_page():
    text = _read("man/sandd.8")
    m = re.search(r"^\.Sh SERVER MODE\n(.*?)^\.Sh ", text, re.S | re.M)
    assert m, "sandd.8 has no SERVER MODE section"
    opts = sorted(set(o.replace("\\-", "-") for o in
                      re.findall(r"^\.It Fl (\\-[a-z\\-]+)", m.group(1),
                                 re.M)))
    opts = ["-" + o for o in opts]
    assert "--listen" in opts and "--control" in opts, opts
    r = h.run_sandd(["serve", "--help"])
    assert r.returncode == 0, r
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    missing = [o for o in opts if o not in out]
    assert not missing, "sandd serve --help lacks %r:\n%s" % (missing, out)


def _leftovers(marker):
    """Pids of processes whose environment holds SANDD_DOCS_MARK=marker."""
    me = os.getpid()
    needle = ("SANDD_DOCS_MARK=%s" % marker).encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append((int(d), cmd.replace(b"\0", b" ").decode(
                "utf-8", "replace")))
    return found


def test_demo_runs_and_stops_everything_it_started():
    _need("socat")
    top = tempfile.mkdtemp(prefix="sandd-docs-")
    try:
        env = dict(os.environ)
        for k in ("SANDD_TOKEN", "SERVER_URL", "DAEMON_ID", "SANDD_CONTROL"):
            env.pop(k, None)
        env["TMPDIR"] = top
        env["SANDD_DOCS_MARK"] = top
        env["SANDD"] = h.SANDD
        try:
            r = subprocess.run(["sh", _path("scripts/demo.sh")],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env,
                               timeout=h.T(180), start_new_session=True)
        except subprocess.TimeoutExpired:
            raise AssertionError("scripts/demo.sh did not finish")
        out = r.stdout.decode("utf-8", "replace")
        assert r.returncode == 0, "demo failed (%d):\n%s" % (r.returncode,
                                                            out)
        assert "sandd exec demo -- uname -a" in out, out
        assert os.listdir(top) == [], "demo left %r" % os.listdir(top)
        try:
            h.wait_for(lambda: not _leftovers(top), timeout=10,
                       what="demo processes to be gone")
        except Exception:
            raise AssertionError("demo left processes running: %r"
                                 % _leftovers(top))
    finally:
        for pid, _ in _leftovers(top):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        shutil.rmtree(top, ignore_errors=True)


h.run_main(globals())

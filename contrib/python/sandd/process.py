"""Local ``sandd`` processes: a private ``sandd serve`` in a temporary
folder (:class:`Serve`, the process part of Server and AsyncServer) and
``sandd worker`` children (:class:`Worker`). No protocol here.

Every child runs in its own process group and is stopped with SIGTERM,
then SIGKILL. Whatever is still running when its owner is garbage
collected, or when the interpreter exits, is stopped then, and the
temporary folder removed (``weakref.finalize``).
"""

from __future__ import annotations

import os
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import time
import weakref
from typing import Any, List, Mapping, Optional, Sequence, Union

from .errors import ServerStartError
from .ops import Op, Sleep, Task


def find_binary(binary: Optional[str] = None) -> str:
    """The sandd executable to run.

    ``binary`` if given, else ``$SANDD_BIN``, else ``sandd`` on ``PATH``,
    else the repository's ``./sandd`` next to contrib/."""
    if binary:
        return os.fspath(binary)
    env = os.environ.get("SANDD_BIN")
    if env:
        return env
    found = shutil.which("sandd")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", "..", "..", "sandd"))
    if os.access(repo, os.X_OK):
        return repo
    raise ServerStartError("sandd binary not found: set $SANDD_BIN, put "
                           "sandd on PATH, or build it with make")


def _flag_args(options: Mapping[str, Any]) -> List[str]:
    """Command-line flags from keyword options.

    ``resume_window=5`` -> ``--resume-window 5``; True -> bare flag;
    False/None -> nothing; a list -> the flag repeated; ``verbose=N`` ->
    ``-v`` N times; ``control_mode`` as an int is written in octal."""
    argv: List[str] = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        if name == "verbose":
            argv += ["-v"] * (1 if value is True else int(value))
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
            continue
        if name == "control_mode" and isinstance(value, int):
            value = "0%o" % value
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            argv += [flag, os.fspath(v) if isinstance(v, os.PathLike)
                     else str(v)]
    return argv


def host_port(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    if ":" in host and not host.startswith("["):
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _local_host(host: str) -> str:
    """The address a local worker dials for a listener on ``host``."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return "[%s]" % host
    return host


def _block(gen: Op[Any]) -> Any:
    """Run an operation that only sleeps, here and now."""
    task = Task(gen)
    while not task.done:
        time.sleep(task.step.seconds)
        task.send(None)
    return task.result


def _socket_accepts(path: str) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class _Process:
    """A child ``sandd`` process in its own process group, logging to a
    file."""

    def __init__(self, argv: List[str], log_path: str,
                 env: Optional[Mapping[str, str]] = None) -> None:
        self.argv = argv
        self.log_path = log_path
        e = dict(os.environ)
        e.pop("SANDD_CONTROL", None)
        if env:
            e.update(env)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=e, start_new_session=True, close_fds=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self, limit: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace").strip()

    def exit_error(self, what: str) -> ServerStartError:
        rc = self.proc.returncode
        text = self.log() or "(no output)"
        return ServerStartError("%s exited with status %s: %s" % (
            what, rc, text))

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def g_stop(self, grace: float = 5.0) -> Op[Optional[int]]:
        """SIGTERM the group, SIGKILL it after ``grace``; reap."""
        if self.alive():
            self.signal(_signal.SIGTERM)
            yield from self._g_reap(grace)
        self.signal(_signal.SIGKILL)
        yield from self._g_reap(5.0)
        return self.proc.returncode

    def _g_reap(self, seconds: float) -> Op[None]:
        deadline = time.monotonic() + seconds
        while self.alive() and time.monotonic() < deadline:
            yield Sleep(0.02)


class Worker:
    """A local ``sandd worker`` child process (for tests and demos).

    ``server_url`` is one controller's URL, or a list of several: the
    worker then keeps a link to each.

    ``labels`` become ``--label K=V``; ``token`` is passed in
    ``$SANDD_TOKEN``; other keyword options map to flags like the
    server's (``root="/srv"``, ``allow=["ls *"]``, ``ca=...``)."""

    def __init__(self, server_url: Union[str, Sequence[str]],
                 daemon_id: str,
                 labels: Optional[Mapping[str, str]] = None,
                 binary: Optional[str] = None, token: Optional[str] = None,
                 log_path: Optional[str] = None, **options: Any) -> None:
        # Several URLs: one link to each controller (sandd(8)).
        urls = [server_url] if isinstance(server_url, str) \
            else list(server_url)
        self.server_url = server_url
        self.daemon_id = daemon_id
        self.labels = dict(labels or {})
        argv = [find_binary(binary), "worker"]
        for u in urls:
            argv += ["--server-url", u]
        argv += ["--id", daemon_id]
        for k, v in self.labels.items():
            argv += ["--label", "%s=%s" % (k, v)]
        env = dict(options.pop("env", None) or {})
        argv += _flag_args(options)
        if token is not None:
            env["SANDD_TOKEN"] = token
        own_log = None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="sandd-worker-",
                                            suffix=".log")
            os.close(fd)
            own_log = log_path
        self.process = _Process(argv, log_path, env)
        self._finalizer = weakref.finalize(self, _stop_worker, self.process,
                                           own_log)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.process.alive()

    def log(self) -> str:
        """The tail of the worker's stderr."""
        return self.process.log()

    def close(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL)."""
        self._finalizer()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _stop_worker(process: _Process, own_log: Optional[str]) -> None:
    _block(process.g_stop())
    if own_log:
        try:
            os.unlink(own_log)
        except OSError:
            pass


class Serve:
    """A private ``sandd serve``: its command line, its temporary folder
    (made when it starts), its process and the workers started beside it.

    Keyword options map to ``sandd serve`` flags; also ``env``,
    ``extra_args`` and ``start_timeout``."""

    def __init__(self, host: str, port: int, binary: Optional[str],
                 options: Mapping[str, Any]) -> None:
        options = dict(options)
        self.host = host
        self.port = int(port)
        self.binary = find_binary(binary)
        self.start_timeout = float(options.pop("start_timeout", 15.0))
        self.env: Optional[Mapping[str, str]] = options.pop("env", None)
        self.extra = list(options.pop("extra_args", []) or [])
        self.options = options
        self.tmpdir: Optional[str] = None
        self.control_path: Optional[str] = None
        self.process: Optional[_Process] = None
        self.workers: List[Worker] = []
        tls = bool(options.get("tls_cert"))
        self.url = "%s://%s:%d/ws" % ("wss" if tls else "ws",
                                      _local_host(host), self.port)

    def g_start(self) -> Op[str]:
        """Start ``sandd serve`` in a new temporary folder; return its
        control socket's path once it accepts connections.

        Raises :class:`ServerStartError` with the daemon's own message at
        once if it exits (port taken, bad option)."""
        self.tmpdir = tempfile.mkdtemp(prefix="sandd-py-")
        os.chmod(self.tmpdir, 0o700)
        self.control_path = os.path.join(self.tmpdir, "control.sock")
        argv = [self.binary, "serve", "--listen",
                host_port(self.host, self.port), "--control",
                self.control_path] + _flag_args(self.options) + self.extra
        self.process = proc = _Process(
            argv, os.path.join(self.tmpdir, "serve.log"), self.env)
        deadline = time.monotonic() + self.start_timeout
        delay = 0.01
        while not self._ready(proc):
            if time.monotonic() > deadline:
                raise ServerStartError(
                    "sandd serve did not open its control socket within "
                    "%ss: %s" % (self.start_timeout, proc.log()))
            yield Sleep(delay)
            delay = min(delay * 2, 0.1)
        return self.control_path

    def _ready(self, proc: _Process) -> bool:
        """True once serve accepts; raises if it died."""
        if not proc.alive():
            raise proc.exit_error("sandd serve")
        if _socket_accepts(self.control_path):  # type: ignore[arg-type]
            # A serve that could not bind exits right after; look again.
            if not proc.alive():
                raise proc.exit_error("sandd serve")
            return True
        return False

    def worker(self, daemon_id: str, labels: Optional[Mapping[str, str]],
               options: Mapping[str, Any]) -> Worker:
        """Start a worker that dials this serve, logging beside it."""
        options = dict(options)
        options.setdefault("binary", self.binary)
        options.setdefault("log_path", os.path.join(
            self.tmpdir, "worker-%s.log" % daemon_id))  # type: ignore
        w = Worker(self.url, daemon_id, labels, **options)
        self.workers.append(w)
        return w

    def g_stop(self) -> Op[None]:
        """Stop the workers and serve; remove the temporary folder."""
        for w in self.workers:
            w.process.signal(_signal.SIGTERM)
        for w in self.workers:
            yield from w.process.g_stop()
            w.close()
        del self.workers[:]
        if self.process is not None:
            yield from self.process.g_stop()
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def stop_now(self) -> None:
        """:meth:`g_stop`, blocking (for finalizers)."""
        _block(self.g_stop())

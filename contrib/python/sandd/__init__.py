"""Pure-stdlib Python client for sandd, the remote command daemon.

sandd is one binary that is a controller (``sandd serve``) and a worker
(``sandd worker``). Programs drive the controller over a UNIX control
socket that speaks newline-delimited JSON (see ``man sandd`` and
docs/control-protocol.md). This module is a thin, typed layer over that
protocol; it needs nothing but the Python standard library (3.9+).

Connect to a running controller::

    import sandd
    with sandd.Client() as c:            # $SANDD_CONTROL or the default path
        r = c.exec("w1", "uname -a")
        print(r.stdout, r.exit_code)

Or start a private one (the child process is stopped on close, on
context-manager exit, and at interpreter exit)::

    with sandd.Server(host="127.0.0.1", port=8765) as s:
        s.wait_for_daemon("w1")
        print(s.broadcast({"role": "web"}, "uptime"))

Everything is also available on asyncio as :class:`AsyncClient` and
:class:`AsyncServer`, with the same methods as coroutines.

Errors from the controller raise :class:`SanddError` (or a subclass) whose
``code`` is the protocol's stable error code. For compatibility with the
earlier client, an unknown daemon raises :class:`WorkerNotFound`, which is
also a ``ValueError`` ("Daemon X not found"), and a command that hits its
own timeout raises :class:`CommandTimeout`, which is also a
``TimeoutError`` and carries the partial result as ``.result``.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import errno as _errno
import hashlib
import io
import itertools
import json
import os
import queue
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import (IO, Any, AsyncIterator, Callable, Dict, Generator,
                    Iterable, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

__all__ = [
    "PROTOCOL_VERSION", "default_control_path", "find_binary",
    "Client", "Server", "Worker", "AsyncClient", "AsyncServer",
    "CommandResult", "DaemonInfo", "ReadResult", "FileStat", "Transfer",
    "SessionInfo", "Event",
    "Session", "AsyncSession", "ExecHandle", "AsyncExecHandle",
    "ExecStream", "AsyncExecStream", "Subscription", "AsyncSubscription",
    "SanddError", "BadRequest", "UnknownOp", "TooLarge", "WorkerNotFound",
    "SessionNotFound", "HandleNotFound", "WaitTimeout", "CommandTimeout",
    "SessionTimeout", "ExecFailed", "Denied", "RateLimited", "WorkerLost",
    "RemoteIOError", "RemoteFileNotFoundError", "LimitExceeded",
    "InternalError", "ConnectionClosed", "ServerStartError",
    "ChecksumMismatch",
]

#: The control protocol version this module speaks.
PROTOCOL_VERSION = 1

#: Chunk size for streaming file payloads.
CHUNK = 256 * 1024

#: Line buffer limit of the asyncio reader (replies may be large).
_ASYNC_LINE_LIMIT = 1 << 30

Command = Union[str, Sequence[str]]
BytesLike = Union[bytes, bytearray, memoryview, str]
PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]


# ====================================================================
# Errors
# ====================================================================

class SanddError(Exception):
    """An error reported by sandd (or by this client about sandd).

    ``code`` is the protocol's stable error code (``no_such_worker``,
    ``timeout``, ...); ``error`` is the whole error object the server sent
    (empty for errors raised locally); ``message`` is the human text.
    """

    code: str = "error"

    def __init__(self, message: str, code: Optional[str] = None,
                 error: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.error: Dict[str, Any] = dict(error or {})


class BadRequest(SanddError, ValueError):
    """``bad_request``: a missing or ill-typed field."""
    code = "bad_request"


class UnknownOp(SanddError):
    """``unknown_op``: the server does not know this op."""
    code = "unknown_op"


class TooLarge(SanddError, ValueError):
    """``too_large``: a line or payload over the server's limit."""
    code = "too_large"


class WorkerNotFound(SanddError, ValueError):
    """``no_such_worker``: the daemon (worker) is not connected."""
    code = "no_such_worker"


class SessionNotFound(SanddError, ValueError):
    """``no_such_session``: unknown or released session."""
    code = "no_such_session"


class HandleNotFound(SanddError, ValueError):
    """``no_such_handle``: unknown or finished exec handle."""
    code = "no_such_handle"


class WaitTimeout(SanddError, TimeoutError):
    """``timeout``: a ``wait`` deadline passed."""
    code = "timeout"


class CommandTimeout(SanddError, TimeoutError):
    """A command ran into its own timeout; ``.result`` has its output."""
    code = "timeout"

    def __init__(self, message: str, result: "CommandResult") -> None:
        super().__init__(message)
        self.result = result


class SessionTimeout(SanddError, TimeoutError):
    """``Session.read_until`` did not match in time; ``.data`` is what
    arrived meanwhile (it is not consumed)."""
    code = "timeout"

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class ExecFailed(SanddError):
    """``exec_failed``: the command could not be started."""
    code = "exec_failed"


class Denied(SanddError, PermissionError):
    """``denied``: refused by an allowlist, a file root or access rules."""
    code = "denied"


class RateLimited(SanddError):
    """``rate_limited``: ``retry_after`` says when to try again."""
    code = "rate_limited"

    @property
    def retry_after(self) -> Optional[float]:
        """Seconds to wait before retrying, when the server said."""
        v = self.error.get("retry_after")
        return float(v) if isinstance(v, (int, float)) else None


class WorkerLost(SanddError, ConnectionError):
    """``worker_lost``: the worker went away and did not come back."""
    code = "worker_lost"


class RemoteIOError(SanddError, OSError):
    """``io_error``: a file operation failed on the worker.

    ``errno_name`` is the name the worker sent (``ENOENT``); ``errno`` is
    the local number for it when there is one."""
    code = "io_error"

    @property
    def errno_name(self) -> Optional[str]:
        """The worker's errno name, e.g. ``"ENOENT"``."""
        v = self.error.get("errno")
        return v if isinstance(v, str) else None


class RemoteFileNotFoundError(RemoteIOError, FileNotFoundError):
    """``io_error`` with ``ENOENT``."""


class RemotePermissionError(RemoteIOError, PermissionError):
    """``io_error`` with ``EACCES`` or ``EPERM``."""


class RemoteIsADirectoryError(RemoteIOError, IsADirectoryError):
    """``io_error`` with ``EISDIR``."""


class RemoteNotADirectoryError(RemoteIOError, NotADirectoryError):
    """``io_error`` with ``ENOTDIR``."""


class RemoteFileExistsError(RemoteIOError, FileExistsError):
    """``io_error`` with ``EEXIST``."""


class LimitExceeded(SanddError):
    """``limit``: a configured resource limit stops the request."""
    code = "limit"


class InternalError(SanddError):
    """``internal``: a bug in sandd."""
    code = "internal"


class ConnectionClosed(SanddError, ConnectionError):
    """The control connection is closed (or could not be opened)."""
    code = "connection_closed"


class ServerStartError(SanddError, RuntimeError):
    """``sandd serve`` (or ``sandd worker``) failed to start."""
    code = "server_start"


class ChecksumMismatch(SanddError):
    """A transfer's SHA-256 differs between the two ends."""
    code = "checksum"


_ERRORS: Dict[str, type] = {
    "bad_request": BadRequest,
    "unknown_op": UnknownOp,
    "too_large": TooLarge,
    "no_such_worker": WorkerNotFound,
    "no_such_session": SessionNotFound,
    "no_such_handle": HandleNotFound,
    "timeout": WaitTimeout,
    "exec_failed": ExecFailed,
    "denied": Denied,
    "rate_limited": RateLimited,
    "worker_lost": WorkerLost,
    "io_error": RemoteIOError,
    "limit": LimitExceeded,
    "internal": InternalError,
}

_IO_ERRORS: Dict[str, type] = {
    "ENOENT": RemoteFileNotFoundError,
    "EACCES": RemotePermissionError,
    "EPERM": RemotePermissionError,
    "EISDIR": RemoteIsADirectoryError,
    "ENOTDIR": RemoteNotADirectoryError,
    "EEXIST": RemoteFileExistsError,
}


def _error_from_reply(reply: Mapping[str, Any],
                      request: Optional[Mapping[str, Any]] = None
                      ) -> SanddError:
    """Build the exception for an ``ok: false`` message."""
    err = reply.get("error")
    if not isinstance(err, dict):
        err = {"code": "internal", "message": "malformed error: %r" % (err,)}
    code = err.get("code")
    if not isinstance(code, str):
        code = "internal"
    message = err.get("message")
    if not isinstance(message, str) or not message:
        message = code
    cls = _ERRORS.get(code, SanddError)
    if code == "io_error":
        cls = _IO_ERRORS.get(str(err.get("errno")), RemoteIOError)
    if code == "no_such_worker":
        worker = reply.get("worker")
        if not isinstance(worker, str) and request is not None:
            worker = request.get("worker")
        if isinstance(worker, str):
            message = "Daemon %s not found" % worker
    exc = cls(message, code=code, error=err)
    if isinstance(exc, OSError):
        name = err.get("errno")
        if isinstance(name, str):
            num = getattr(_errno, name, None)
            if isinstance(num, int):
                exc.errno = num
                exc.strerror = os.strerror(num)
        path = request.get("path") if request else None
        if isinstance(path, str):
            exc.filename = path
    return exc


# ====================================================================
# Encoding helpers
# ====================================================================

def _field_bytes(msg: Mapping[str, Any], name: str) -> Optional[bytes]:
    """Bytes of a text/bytes field (``name`` or ``name_b64``), or None."""
    v = msg.get(name)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogatepass")
    v = msg.get(name + "_b64")
    if isinstance(v, str):
        return base64.b64decode(v)
    return None


def _set_bytes(req: Dict[str, Any], name: str, data: BytesLike) -> None:
    """Put bytes into a request as ``name`` (UTF-8) or ``name_b64``."""
    if isinstance(data, str):
        req[name] = data
        return
    raw = bytes(data)
    try:
        req[name] = raw.decode("utf-8")
    except UnicodeDecodeError:
        req[name + "_b64"] = base64.b64encode(raw).decode("ascii")


def _text(data: Optional[bytes]) -> str:
    return (data or b"").decode("utf-8", "replace")


def _signal_name(sig: Union[str, int]) -> str:
    """``"TERM"`` from ``"SIGTERM"``, ``"term"``, 15 or signal.SIGTERM."""
    if isinstance(sig, int):
        return _signal.Signals(sig).name[3:]
    s = str(sig).upper()
    return s[3:] if s.startswith("SIG") else s


def _encode_line(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode("ascii")


def default_control_path() -> str:
    """The control socket path a client uses when given none.

    ``$SANDD_CONTROL``, else ``/run/sandd/control.sock`` for root, else
    ``/tmp/sandd-$UID/control.sock``."""
    env = os.environ.get("SANDD_CONTROL")
    if env:
        return env
    uid = os.getuid()
    if uid == 0:
        return "/run/sandd/control.sock"
    return "/tmp/sandd-%d/control.sock" % uid


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


# ====================================================================
# Result types
# ====================================================================

@dataclass
class CommandResult:
    """The outcome of one command.

    ``stdout``/``stderr`` are text (invalid UTF-8 replaced); the exact
    bytes are in ``stdout_bytes``/``stderr_bytes``. ``exit_code`` is None
    when the process died by a signal (then ``signal`` names it, e.g.
    ``"KILL"``) or when the request itself failed (``error`` is set, as in
    a broadcast to a worker that could not run it).
    """

    stdout: str = ""
    stderr: str = ""
    exit_code: Optional[int] = None
    duration_ms: float = 0.0
    signal: Optional[str] = None
    timed_out: bool = False
    reason: Optional[str] = None
    worker: Optional[str] = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: Optional[SanddError] = None
    stdout_bytes: bytes = field(default=b"", repr=False)
    stderr_bytes: bytes = field(default=b"", repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def success(self) -> bool:
        """True when the command ran and exited with status 0 in time."""
        return self.error is None and self.exit_code == 0 and \
            not self.timed_out

    @property
    def returncode(self) -> Optional[int]:
        """Like ``subprocess``: the exit code, or -N if killed by signal N."""
        if self.exit_code is not None:
            return self.exit_code
        if self.signal:
            try:
                return -int(_signal.Signals["SIG" + self.signal])
            except KeyError:
                return None
        return None

    @classmethod
    def from_json(cls, msg: Mapping[str, Any],
                  stdout: Optional[bytes] = None,
                  stderr: Optional[bytes] = None) -> "CommandResult":
        """Build from an exec reply (or a broadcast result object)."""
        if msg.get("ok") is False:
            exc = _error_from_reply(msg)
            return cls(worker=msg.get("worker"), error=exc, raw=dict(msg))
        out = stdout if stdout is not None else \
            (_field_bytes(msg, "stdout") or b"")
        err = stderr if stderr is not None else \
            (_field_bytes(msg, "stderr") or b"")
        code = msg.get("exit_code")
        dur = msg.get("duration_ms")
        return cls(
            stdout=_text(out), stderr=_text(err),
            exit_code=code if isinstance(code, int) else None,
            duration_ms=float(dur) if isinstance(dur, (int, float)) else 0.0,
            signal=msg.get("signal"),
            timed_out=bool(msg.get("timed_out")),
            reason=msg.get("reason"), worker=msg.get("worker"),
            stdout_truncated=bool(msg.get("stdout_truncated")),
            stderr_truncated=bool(msg.get("stderr_truncated")),
            stdout_bytes=out, stderr_bytes=err, raw=dict(msg))


@dataclass
class DaemonInfo:
    """A worker ("daemon") as listed by the controller."""

    id: str
    version: str = ""
    labels: Dict[str, str] = field(default_factory=dict)
    is_busy: bool = False
    hostname: str = ""
    os: str = ""
    arch: str = ""
    connected: bool = False
    addr: str = ""
    connected_at: str = ""
    running: int = 0
    sessions: int = 0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, w: Mapping[str, Any]) -> "DaemonInfo":
        """Build from one object of a ``workers`` reply."""
        running = w.get("running")
        running = running if isinstance(running, int) else 0
        sessions = w.get("sessions")
        return cls(
            id=str(w.get("id", "")), version=str(w.get("version") or ""),
            labels=dict(w.get("labels") or {}), is_busy=running > 0,
            hostname=str(w.get("hostname") or ""),
            os=str(w.get("os") or ""), arch=str(w.get("arch") or ""),
            connected=bool(w.get("connected")),
            addr=str(w.get("addr") or ""),
            connected_at=str(w.get("connected_at") or ""),
            running=running,
            sessions=sessions if isinstance(sessions, int) else 0,
            raw=dict(w))


@dataclass
class ReadResult:
    """New output of a running exec handle (from ``read``).

    ``result`` is set once the command has ended (its exit fields; its
    ``stdout``/``stderr`` are only this read's output)."""

    stdout: str = ""
    stderr: str = ""
    running: bool = False
    result: Optional[CommandResult] = None
    stdout_bytes: bytes = field(default=b"", repr=False)
    stderr_bytes: bytes = field(default=b"", repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> "ReadResult":
        """Build from a ``read`` (or ``yield_after``) reply."""
        out = _field_bytes(msg, "stdout") or b""
        err = _field_bytes(msg, "stderr") or b""
        running = bool(msg.get("running"))
        res = None if running else CommandResult.from_json(msg, out, err)
        return cls(stdout=_text(out), stderr=_text(err), running=running,
                   result=res, stdout_bytes=out, stderr_bytes=err,
                   raw=dict(msg))


@dataclass
class FileStat:
    """What ``stat`` says about a path on a worker."""

    type: str
    size: int = 0
    mode: int = 0
    mtime: float = 0.0
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_file(self) -> bool:
        """True for a regular file."""
        return self.type == "file"

    @property
    def is_dir(self) -> bool:
        """True for a folder."""
        return self.type == "dir"


@dataclass
class Transfer:
    """The outcome of a ``put`` or ``get``: size, SHA-256 and mode."""

    size: int
    sha256: str
    mode: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class SessionInfo:
    """One entry of ``session.list``."""

    session: str
    worker: str = ""
    pid: Optional[int] = None
    cmd: Any = None
    rows: int = 0
    cols: int = 0
    created_at: str = ""
    offset: int = 0
    attached: int = 0
    exited: bool = False
    exit_code: Optional[int] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, s: Mapping[str, Any]) -> "SessionInfo":
        """Build from one object of a ``session.list`` reply."""
        def num(name: str) -> int:
            v = s.get(name)
            return v if isinstance(v, int) else 0
        return cls(session=str(s.get("session", "")),
                   worker=str(s.get("worker") or ""), pid=s.get("pid"),
                   cmd=s.get("cmd"), rows=num("rows"), cols=num("cols"),
                   created_at=str(s.get("created_at") or ""),
                   offset=num("offset"), attached=num("attached"),
                   exited=bool(s.get("exited")),
                   exit_code=s.get("exit_code"), raw=dict(s))


@dataclass
class Event:
    """One event message: exec output, a session's output, a subscription.

    ``type`` is the message's ``event`` (``started``, ``stdout``,
    ``stderr``, ``result``, ``output``, ``exit``, ``worker``,
    ``session``, ...). ``data`` holds decoded bytes where the message
    carries some; ``result`` the command's outcome for ``result`` events.
    """

    type: str
    worker: Optional[str] = None
    session: Optional[str] = None
    handle: Optional[str] = None
    data: Optional[bytes] = None
    offset: Optional[int] = None
    state: Optional[str] = None
    result: Optional[CommandResult] = None
    message: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        """``data`` as text (invalid UTF-8 replaced)."""
        return _text(self.data)

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> "Event":
        """Build from an event message."""
        etype = str(msg.get("event", ""))
        data = _field_bytes(msg, "data")
        if data is None and etype in ("stdout", "stderr"):
            # sandd 0.1.0 names the field after the stream
            data = _field_bytes(msg, etype)
        if data is None and "_payload" in msg:
            data = msg["_payload"]
        result = None
        if etype == "result":
            result = CommandResult.from_json(msg)
        off = msg.get("offset")
        return cls(type=etype, worker=msg.get("worker"),
                   session=msg.get("session"), handle=msg.get("handle"),
                   data=data, offset=off if isinstance(off, int) else None,
                   state=msg.get("state"), result=result, message=dict(msg))


# ====================================================================
# Sans-I/O operations
#
# Each public operation is written once, as a generator that yields _Call
# (send this request, give me its final reply) or _Sleep, and returns the
# result. Client drives it with blocking I/O, AsyncClient with asyncio.
# ====================================================================

class _Payload:
    """A raw payload to send after a request line: exactly ``size`` bytes
    read from ``source``, hashed on the way."""

    def __init__(self, source: IO[bytes], size: int) -> None:
        self.source = source
        self.size = size
        self.hasher = hashlib.sha256()

    def chunks(self) -> Iterator[bytes]:
        """Yield the payload in pieces; raise if the source runs short."""
        left = self.size
        while left > 0:
            piece = self.source.read(min(CHUNK, left))
            if not piece:
                raise SanddError("local file shrank during transfer "
                                 "(%d bytes missing)" % left, code="io_error")
            piece = bytes(piece)
            self.hasher.update(piece)
            left -= len(piece)
            yield piece


class _Call:
    """A request to send; the driver answers with the final reply."""

    def __init__(self, request: Dict[str, Any], expect: Optional[float] = None,
                 payload: Optional[_Payload] = None,
                 sink: Optional[Callable[[bytes], None]] = None) -> None:
        self.request = request
        self.expect = expect      # seconds the op itself may take
        self.payload = payload
        self.sink = sink          # receives raw payload bytes of events


class _Sleep:
    """Ask the driver to sleep."""

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)


_Op = Generator[Union[_Call, _Sleep], Any, Any]

_EXEC_OPTIONS = ("user", "env_clear", "merge_stderr", "max_output", "limits",
                 "kill_grace", "stdin_open", "max_concurrency")


def _exec_request(command: Command, timeout: Optional[float],
                  env: Optional[Mapping[str, str]], cwd: Optional[str],
                  options: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of an ``exec`` request common to every form."""
    req: Dict[str, Any] = {"op": "exec"}
    if isinstance(command, str):
        req["cmd"] = command
    else:
        req["argv"] = [os.fspath(a) for a in command]
    if timeout is not None:
        req["timeout"] = timeout
    if env:
        req["env"] = {str(k): str(v) for k, v in env.items()}
    if cwd is not None:
        req["cwd"] = os.fspath(cwd)
    for name, value in options.items():
        if value is None:
            continue
        if name == "stdin":
            _set_bytes(req, "stdin", value)
        else:
            req[name] = value
    return req


def _expect(timeout: Optional[float], grace: float = 2.0) -> Optional[float]:
    return None if timeout is None else float(timeout) + grace


def _open_source(src: Union[PathOrFile, BytesLike]
                 ) -> Tuple[IO[bytes], int, bool]:
    """(file object, bytes to send, whether we opened it) for a put."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        b = bytes(src)
        return io.BytesIO(b), len(b), True
    if isinstance(src, (str, os.PathLike)):
        f = open(os.fspath(src), "rb")
        try:
            return f, os.fstat(f.fileno()).st_size, True
        except BaseException:
            f.close()
            raise
    fobj: Any = src
    try:
        st = os.fstat(fobj.fileno())
        import stat as _stat
        if _stat.S_ISREG(st.st_mode):
            return fobj, st.st_size - fobj.tell(), False
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        pass
    try:
        if fobj.seekable():
            here = fobj.tell()
            end = fobj.seek(0, io.SEEK_END)
            fobj.seek(here)
            return fobj, end - here, False
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    # A pipe or other stream: spool it (to disk past 8 MiB) to learn its size.
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
    n = 0
    while True:
        piece = fobj.read(CHUNK)
        if not piece:
            break
        spool.write(piece)
        n += len(piece)
    spool.seek(0)
    return spool, n, True


class _Sink:
    """Receives a ``get``'s raw payloads: writes and hashes them."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def __call__(self, piece: bytes) -> None:
        self.out.write(piece)
        self.hasher.update(piece)
        self.size += len(piece)


class _Ops:
    """The operations, as sans-I/O generators shared by both clients."""

    # -- general

    def _g_raw(self, request: Dict[str, Any],
               expect: Optional[float] = None) -> _Op:
        reply = yield _Call(dict(request), expect=expect)
        return reply

    def _g_hello(self) -> _Op:
        reply = yield _Call({"op": "hello"})
        return _strip(reply)

    def _g_list_daemons(self, labels: Optional[Mapping[str, str]],
                        all: bool) -> _Op:
        req: Dict[str, Any] = {"op": "workers"}
        if labels:
            req["labels"] = dict(labels)
        if all:
            req["all"] = True
        reply = yield _Call(req)
        return [DaemonInfo.from_json(w) for w in reply.get("workers") or []]

    def _g_get_daemon(self, daemon_id: str) -> _Op:
        infos = yield from self._g_list_daemons(None, False)
        for info in infos:
            if info.id == daemon_id:
                return info
        return None

    def _g_daemon_count(self) -> _Op:
        infos = yield from self._g_list_daemons(None, False)
        return sum(1 for i in infos if i.connected)

    def _g_stats(self) -> _Op:
        reply = yield _Call({"op": "stats"})
        return _strip(reply)

    def _g_wait_for_daemon(self, daemon_id: str, timeout: float,
                           poll_interval: float) -> _Op:
        deadline = time.monotonic() + timeout
        try:
            yield _Call({"op": "wait", "worker": daemon_id,
                         "timeout": timeout}, expect=timeout + 5)
            return True
        except WaitTimeout:
            return False
        except (WorkerNotFound, UnknownOp, BadRequest):
            pass    # an older server: poll the list instead
        while True:
            infos = yield from self._g_list_daemons(None, False)
            if any(i.id == daemon_id and i.connected for i in infos):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            yield _Sleep(min(poll_interval, left))

    def _g_wait_for_daemons(self, labels: Optional[Mapping[str, str]],
                            count: int, timeout: float) -> _Op:
        reply = yield _Call({"op": "wait", "labels": dict(labels or {}),
                             "count": count, "timeout": timeout},
                            expect=timeout + 5)
        return [DaemonInfo.from_json(w) for w in reply.get("workers") or []]

    # -- exec

    def _g_exec(self, daemon_id: str, command: Command,
                timeout: Optional[float], env: Optional[Mapping[str, str]],
                cwd: Optional[str], options: Mapping[str, Any]) -> _Op:
        req = _exec_request(command, timeout, env, cwd, options)
        req["worker"] = daemon_id
        reply = yield _Call(req, expect=_expect(
            timeout, float(options.get("kill_grace") or 2) + 5))
        result = CommandResult.from_json(reply)
        if result.timed_out:
            raise CommandTimeout("command timed out after %ss on %s" % (
                timeout, daemon_id), result)
        return result

    def _g_broadcast(self, target: Union[Mapping[str, str], Sequence[str],
                                         None],
                     command: Command, timeout: Optional[float],
                     env: Optional[Mapping[str, str]], cwd: Optional[str],
                     options: Mapping[str, Any]) -> _Op:
        req = _exec_request(command, timeout, env, cwd, options)
        by_labels = target is None or isinstance(target, Mapping)
        if by_labels:
            req["labels"] = dict(target or {})  # type: ignore[arg-type]
        else:
            req["workers"] = list(target)  # type: ignore[arg-type]
        try:
            reply = yield _Call(req, expect=_expect(
                timeout, float(options.get("kill_grace") or 2) + 5))
        except WorkerNotFound:
            if by_labels:
                return {}
            raise
        results: Dict[str, CommandResult] = {}
        for item in reply.get("results") or []:
            r = CommandResult.from_json(item)
            results[str(item.get("worker"))] = r
        return results

    def _g_spawn(self, daemon_id: str, command: Command,
                 yield_after: float, timeout: Optional[float],
                 env: Optional[Mapping[str, str]], cwd: Optional[str],
                 options: Mapping[str, Any]) -> _Op:
        req = _exec_request(command, timeout, env, cwd, options)
        req["worker"] = daemon_id
        req["yield_after"] = yield_after
        reply = yield _Call(req, expect=_expect(yield_after, 5))
        return reply

    def _g_read(self, handle: str, timeout: Optional[float],
                until: Optional[str]) -> _Op:
        req: Dict[str, Any] = {"op": "read", "handle": handle}
        if timeout is not None:
            req["timeout"] = timeout
        if until is not None:
            req["until"] = until
        reply = yield _Call(req, expect=_expect(timeout, 5))
        return ReadResult.from_json(reply)

    def _g_write(self, target: Dict[str, Any], data: Optional[BytesLike],
                 eof: bool) -> _Op:
        req: Dict[str, Any] = {"op": "write"}
        req.update(target)
        if data is not None:
            _set_bytes(req, "data", data)
        if eof:
            req["eof"] = True
        yield _Call(req)
        return None

    def _g_signal(self, target: Dict[str, Any],
                  sig: Union[str, int]) -> _Op:
        req: Dict[str, Any] = {"op": "signal", "signal": _signal_name(sig)}
        req.update(target)
        yield _Call(req)
        return None

    # -- sessions

    def _g_session_open(self, daemon_id: str, rows: int, cols: int,
                        term: Optional[str], command: Optional[Command],
                        env: Optional[Mapping[str, str]],
                        cwd: Optional[str], options: Mapping[str, Any]
                        ) -> _Op:
        req: Dict[str, Any] = {"op": "session.open", "worker": daemon_id,
                               "rows": rows, "cols": cols, "attach": False}
        if isinstance(command, str):
            req["cmd"] = command
        elif command is not None:
            req["argv"] = [os.fspath(a) for a in command]
        e = {str(k): str(v) for k, v in (env or {}).items()}
        if term:
            e.setdefault("TERM", term)
        if e:
            req["env"] = e
        if cwd is not None:
            req["cwd"] = os.fspath(cwd)
        for k, v in options.items():
            if v is not None:
                req[k] = v
        reply = yield _Call(req)
        return reply

    def _g_session_read(self, session: str, since: Optional[int],
                        until: Optional[str], timeout: Optional[float],
                        max_bytes: Optional[int]) -> _Op:
        req: Dict[str, Any] = {"op": "session.read", "session": session}
        if since is not None:
            req["since"] = since
        if until is not None:
            req["until"] = until
        if timeout is not None:
            req["timeout"] = timeout
        if max_bytes is not None:
            req["max_bytes"] = max_bytes
        reply = yield _Call(req, expect=_expect(timeout, 5))
        return reply

    def _g_session_simple(self, op: str, session: str,
                          fields: Mapping[str, Any]) -> _Op:
        req: Dict[str, Any] = {"op": op, "session": session}
        for k, v in fields.items():
            if v is not None:
                req[k] = v
        reply = yield _Call(req)
        return _strip(reply)

    def _g_session_write(self, session: str, data: BytesLike) -> _Op:
        req: Dict[str, Any] = {"op": "session.write", "session": session}
        _set_bytes(req, "data", data)
        yield _Call(req)
        return None

    def _g_session_run(self, session: str, cmd: str,
                       timeout: Optional[float]) -> _Op:
        req: Dict[str, Any] = {"op": "session.run", "session": session,
                               "cmd": cmd}
        if timeout is not None:
            req["timeout"] = timeout
        t0 = time.monotonic()
        reply = yield _Call(req, expect=_expect(timeout, 10))
        out = _field_bytes(reply, "output") or b""
        code = reply.get("exit_code")
        result = CommandResult(
            stdout=_text(out), exit_code=code if isinstance(code, int)
            else None, duration_ms=(time.monotonic() - t0) * 1000.0,
            timed_out=bool(reply.get("timed_out")), stdout_bytes=out,
            raw=dict(reply))
        return result

    def _g_session_list(self, daemon_id: Optional[str]) -> _Op:
        req: Dict[str, Any] = {"op": "session.list"}
        if daemon_id is not None:
            req["worker"] = daemon_id
        reply = yield _Call(req)
        return [SessionInfo.from_json(s) for s in reply.get("sessions") or []]

    # -- files

    def _g_put(self, daemon_id: str, src: Union[PathOrFile, BytesLike],
               remote_path: str, mode: Optional[int], mkdir: bool) -> _Op:
        fobj, size, opened = _open_source(src)
        try:
            req: Dict[str, Any] = {"op": "put", "worker": daemon_id,
                                   "path": remote_path, "bytes": size}
            if mode is not None:
                req["mode"] = int(mode)
            if mkdir:
                req["mkdir"] = True
            payload = _Payload(fobj, size)
            reply = yield _Call(req, payload=payload)
        finally:
            if opened:
                fobj.close()
        local = payload.hasher.hexdigest()
        remote = reply.get("sha256")
        if isinstance(remote, str) and remote.lower() != local:
            raise ChecksumMismatch("sha256 mismatch after put to %s:%s: "
                                   "sent %s, worker has %s" % (
                                       daemon_id, remote_path, local, remote))
        rsize = reply.get("size")
        return Transfer(size=rsize if isinstance(rsize, int) else size,
                        sha256=local, mode=mode, raw=_strip(reply))

    def _g_get(self, daemon_id: str, remote_path: str,
               dst: PathOrFile, offset: Optional[int],
               length: Optional[int]) -> _Op:
        tmp_name: Optional[str] = None
        out: IO[bytes]
        if isinstance(dst, (str, os.PathLike)):
            final = os.fspath(dst)
            folder = os.path.dirname(os.path.abspath(final))
            tmp_name = os.path.join(folder, ".%s.sandd-%s.tmp" % (
                os.path.basename(final), os.urandom(6).hex()))
            fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         getattr(os, "O_CLOEXEC", 0), 0o666)
            out = os.fdopen(fd, "wb")
        else:
            out = dst
        sink = _Sink(out)
        ok = False
        try:
            req: Dict[str, Any] = {"op": "get", "worker": daemon_id,
                                   "path": remote_path, "raw": True}
            if offset is not None:
                req["offset"] = offset
            if length is not None:
                req["length"] = length
            reply = yield _Call(req, sink=sink)
            remote = reply.get("sha256")
            local = sink.hasher.hexdigest()
            if isinstance(remote, str) and remote.lower() != local:
                raise ChecksumMismatch(
                    "sha256 mismatch after get of %s:%s: worker sent %s, "
                    "received %s" % (daemon_id, remote_path, remote, local))
            if tmp_name is not None:
                out.flush()
                os.fsync(out.fileno())
                out.close()
                os.replace(tmp_name, final)
            ok = True
        finally:
            if tmp_name is not None and not ok:
                try:
                    out.close()
                finally:
                    try:
                        os.unlink(tmp_name)
                    except OSError:
                        pass
        mode = reply.get("mode")
        return Transfer(size=sink.size, sha256=local,
                        mode=mode if isinstance(mode, int) else None,
                        raw=_strip(reply))

    def _g_download(self, daemon_id: str, remote_path: str) -> _Op:
        buf = io.BytesIO()
        yield from self._g_get(daemon_id, remote_path, buf, None, None)
        return buf.getvalue()

    def _g_stat(self, daemon_id: str, path: str) -> _Op:
        reply = yield _Call({"op": "stat", "worker": daemon_id,
                             "path": path})
        mtime = reply.get("mtime")
        return FileStat(type=str(reply.get("type")),
                        size=int(reply.get("size") or 0),
                        mode=int(reply.get("mode") or 0),
                        mtime=float(mtime) if isinstance(
                            mtime, (int, float)) else 0.0,
                        raw=_strip(reply))


def _is_final(msg: Mapping[str, Any]) -> bool:
    """True for a request's final message: it has ``ok`` and is not an
    event (a broadcast's per-worker ``result`` events carry ``ok`` too)."""
    return "ok" in msg and "event" not in msg


def _strip(reply: Mapping[str, Any]) -> Dict[str, Any]:
    """A reply without its ``id`` and ``ok``."""
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


# ====================================================================
# Shared pieces of sessions and exec handles
# ====================================================================

#: Matches any new output (POSIX ERE); used to block until data arrives.
_ANY = "(.|\n)"


class _SessionBase:
    """State shared by :class:`Session` and :class:`AsyncSession`."""

    def __init__(self, client: Any, session_id: str,
                 worker: Optional[str] = None, pid: Optional[int] = None,
                 offset: int = 0) -> None:
        self.client = client
        self.session_id = session_id
        self.worker = worker
        self.pid = pid
        #: Offset of the next byte :meth:`read` returns.
        self.offset = offset
        #: True once a read saw that the program exited.
        self.exited = False
        #: True if some output was lost because it left the kept window.
        self.truncated = False

    def __repr__(self) -> str:
        return "<%s %s on %s>" % (type(self).__name__, self.session_id,
                                  self.worker)

    def _consume(self, reply: Mapping[str, Any]) -> bytes:
        data = _field_bytes(reply, "data") or b""
        end = reply.get("offset")
        if isinstance(end, int):
            self.offset = end
        else:
            self.offset += len(data)
        if reply.get("exited"):
            self.exited = True
        if reply.get("truncated"):
            self.truncated = True
        return data

    def _g_read(self, timeout: Optional[float]) -> _Op:
        wait = timeout is not None and timeout > 0
        reply = yield from self.client._g_session_read(
            self.session_id, self.offset, _ANY if wait else None,
            timeout if wait else None, None)
        data = self._consume(reply)
        return data or None

    def _g_read_until(self, pattern: Union[str, bytes],
                      timeout: float) -> _Op:
        if isinstance(pattern, bytes):
            pattern = pattern.decode("utf-8", "surrogateescape")
        reply = yield from self.client._g_session_read(
            self.session_id, self.offset, pattern, timeout, None)
        if reply.get("matched"):
            return self._consume(reply)
        data = _field_bytes(reply, "data") or b""
        if reply.get("exited"):
            self.exited = True
            raise SessionTimeout("session %s exited before output matched "
                                 "%r" % (self.session_id, pattern), data)
        raise SessionTimeout("no output matching %r within %ss on session "
                             "%s" % (pattern, timeout, self.session_id), data)

    def _g_run(self, cmd: str, timeout: Optional[float]) -> _Op:
        result = yield from self.client._g_session_run(self.session_id, cmd,
                                                       timeout)
        result.worker = self.worker
        # Skip what the run printed (echo, prompt) for later read()s.
        reply = yield from self.client._g_session_read(
            self.session_id, self.offset, None, None, None)
        self._consume(reply)
        if result.timed_out:
            raise CommandTimeout("session command timed out after %ss" %
                                 timeout, result)
        return result

    def _g_close(self, sig: Union[str, int, None]) -> _Op:
        fields: Dict[str, Any] = {}
        if sig is not None:
            fields["signal"] = _signal_name(sig)
        reply = yield from self.client._g_session_simple(
            "session.close", self.session_id, fields)
        self.exited = True
        code = reply.get("exit_code")
        return code if isinstance(code, int) else None


class _HandleBase:
    """State shared by :class:`ExecHandle` and :class:`AsyncExecHandle`.

    A command started with ``yield_after``. ``handle`` is None when the
    command had already finished by then (``result`` is then set)."""

    def __init__(self, client: Any, worker: str,
                 reply: Mapping[str, Any]) -> None:
        self.client = client
        self.worker = worker
        self.handle: Optional[str] = reply.get("handle") \
            if reply.get("running") else None
        first = ReadResult.from_json(reply)
        self.running = first.running
        #: Output printed before the yield (or all of it, if it finished).
        self.initial = first
        self.result: Optional[CommandResult] = first.result
        if self.result is not None:
            self.result.worker = self.result.worker or worker
        self._out = bytearray(first.stdout_bytes)
        self._err = bytearray(first.stderr_bytes)

    def __repr__(self) -> str:
        return "<%s %s on %s running=%s>" % (type(self).__name__,
                                             self.handle, self.worker,
                                             self.running)

    def _g_read(self, timeout: Optional[float], until: Optional[str]) -> _Op:
        if self.handle is None or not self.running:
            return ReadResult(running=False, result=self.result)
        r = yield from self.client._g_read(self.handle, timeout, until)
        self._out += r.stdout_bytes
        self._err += r.stderr_bytes
        if not r.running:
            self.running = False
            res = r.result or CommandResult()
            self.result = CommandResult.from_json(
                res.raw, bytes(self._out), bytes(self._err))
            self.result.worker = self.result.worker or self.worker
        return r

    def _g_wait(self, timeout: Optional[float]) -> _Op:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            step = 30.0
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    raise TimeoutError("handle %s still running after %ss" %
                                       (self.handle, timeout))
            yield from self._g_read(step, None)
        assert self.result is not None
        if self.result.timed_out:
            raise CommandTimeout("command timed out on %s" % self.worker,
                                 self.result)
        return self.result


# ====================================================================
# Blocking client
# ====================================================================

_EOF = object()


class _Pending:
    """A request waiting for its final reply (sync client)."""

    __slots__ = ("request", "queue", "sink", "sink_error", "persistent")

    def __init__(self, request: Dict[str, Any],
                 sink: Optional[Callable[[bytes], None]],
                 persistent: bool = False,
                 q: "Optional[queue.Queue[Any]]" = None) -> None:
        self.request = request
        self.queue: "queue.Queue[Any]" = q if q is not None else queue.Queue()
        self.sink = sink
        self.sink_error: Optional[BaseException] = None
        self.persistent = persistent


class _Listener:
    """Receives messages not tied to a pending request."""

    def __init__(self, accept: Callable[[Mapping[str, Any]], bool]) -> None:
        self.accept = accept
        self.queue: "queue.Queue[Any]" = queue.Queue()


class Client(_Ops):
    """A connection to a running sandd controller's control socket.

    ``path`` defaults to :func:`default_control_path`. One connection is
    shared by every thread using this object; requests are pipelined and
    replies matched by id. ``request_timeout`` (seconds), when set, bounds
    how long any request may wait for its reply beyond the time the
    operation itself asks for (a command's timeout, a wait's deadline).
    """

    def __init__(self, path: Optional[str] = None,
                 request_timeout: Optional[float] = None,
                 connect_timeout: float = 10.0) -> None:
        self._init_client(path, request_timeout, connect_timeout)

    def _init_client(self, path: Optional[str],
                     request_timeout: Optional[float],
                     connect_timeout: float) -> None:
        self.path = os.fspath(path) if path else default_control_path()
        self.request_timeout = request_timeout
        self._lock = threading.Lock()        # ids, pending, listeners
        self._wlock = threading.Lock()       # writes to the socket
        self._ids = itertools.count(1)
        self._pending: Dict[int, _Pending] = {}
        self._listeners: List[_Listener] = []
        self._closed = False
        self._shut = False
        self._close_reason: Optional[str] = None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(connect_timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise ConnectionClosed("cannot connect to sandd control socket "
                                   "%s: %s" % (self.path, e.strerror or e))
        sock.settimeout(None)
        self._sock = sock
        self._rfile = sock.makefile("rb")
        self._reader = threading.Thread(target=self._read_loop,
                                        name="sandd-reader", daemon=True)
        self._reader.start()

    # -- plumbing

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed

    def close(self) -> None:
        """Close the connection. Unfinished execs on it are cancelled by
        the server (commands started with ``yield_after`` and sessions
        live on)."""
        if self._shut:
            return
        self._shut = True
        self._closed = True
        if self._close_reason is None:
            self._close_reason = "client closed the connection"
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(5)

    def _read_loop(self) -> None:
        f = self._rfile
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                rid = msg.get("id")
                with self._lock:
                    pending = self._pending.get(rid) \
                        if isinstance(rid, int) else None
                n = msg.get("bytes")
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    if not self._read_payload(f, n, msg, pending):
                        break
                if pending is not None:
                    if _is_final(msg) and not pending.persistent:
                        with self._lock:
                            self._pending.pop(pending.request["id"], None)
                    pending.queue.put(msg)
                    continue
                with self._lock:
                    listeners = list(self._listeners)
                for li in listeners:
                    try:
                        if li.accept(msg):
                            li.queue.put(msg)
                    except Exception:
                        pass
        except (OSError, ValueError):
            pass
        finally:
            self._closed = True
            if self._close_reason is None:
                self._close_reason = "server closed the control connection"
            with self._lock:
                pend = list(self._pending.values())
                self._pending.clear()
                listeners = list(self._listeners)
            for p in pend:
                p.queue.put(_EOF)
            for li in listeners:
                li.queue.put(_EOF)

    def _read_payload(self, f: Any, n: int, msg: Dict[str, Any],
                      pending: Optional[_Pending]) -> bool:
        sink = pending.sink if pending is not None else None
        keep = bytearray() if sink is None else None
        left = n
        while left > 0:
            piece = f.read(min(CHUNK, left))
            if not piece:
                return False
            left -= len(piece)
            if keep is not None:
                keep += piece
            elif pending is not None and pending.sink_error is None:
                try:
                    sink(piece)  # type: ignore[misc]
                except BaseException as e:  # keep the stream in step
                    pending.sink_error = e
        if keep is not None:
            msg["_payload"] = bytes(keep)
        return True

    def _closed_error(self) -> ConnectionClosed:
        return ConnectionClosed(self._close_reason or "connection closed")

    def _start(self, call: _Call, persistent: bool = False,
               listener: Optional[_Listener] = None) -> Tuple[int, _Pending]:
        """Register and send a request; return its id and pending entry."""
        with self._lock:
            if self._closed:
                raise self._closed_error()
            rid = next(self._ids)
            req = dict(call.request)
            req["id"] = rid
            pending = _Pending(req, call.sink, persistent,
                               listener.queue if listener else None)
            self._pending[rid] = pending
            if listener is not None:
                self._listeners.append(listener)
        line = _encode_line(req)
        try:
            with self._wlock:
                self._sock.sendall(line)
                if call.payload is not None:
                    try:
                        for piece in call.payload.chunks():
                            self._sock.sendall(piece)
                    except SanddError:
                        # The server now waits for bytes we cannot send:
                        # this connection is out of step for good.
                        self._close_reason = "local file shrank during put"
                        self._force_close()
                        raise
        except OSError as e:
            self._forget(rid)
            raise ConnectionClosed("control connection failed: %s" % e)
        except BaseException:
            self._forget(rid)
            raise
        return rid, pending

    def _force_close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _forget(self, rid: int, listener: Optional[_Listener] = None) -> None:
        with self._lock:
            self._pending.pop(rid, None)
            if listener is not None and listener in self._listeners:
                self._listeners.remove(listener)

    def _deadline(self, call: _Call) -> Optional[float]:
        if self.request_timeout is None:
            return None
        return time.monotonic() + self.request_timeout + (call.expect or 0)

    def _get(self, pending: _Pending, deadline: Optional[float],
             rid: int) -> Any:
        if deadline is None:
            return pending.queue.get()
        left = deadline - time.monotonic()
        try:
            return pending.queue.get(timeout=max(left, 0.0))
        except queue.Empty:
            self._forget(rid)
            raise TimeoutError("no reply to %s request %d within %ss" % (
                pending.request.get("op"), rid, self.request_timeout))

    def _call(self, call: _Call) -> Dict[str, Any]:
        """Send a request and return its final ok reply (or raise)."""
        rid, pending = self._start(call)
        deadline = self._deadline(call)
        while True:
            msg = self._get(pending, deadline, rid)
            if msg is _EOF:
                raise self._closed_error()
            if not _is_final(msg):
                continue        # events of plain calls are not needed
            if pending.sink_error is not None:
                raise pending.sink_error
            if msg["ok"] is True:
                return msg
            raise _error_from_reply(msg, pending.request)

    def _drive(self, gen: _Op) -> Any:
        """Run a sans-I/O operation with blocking I/O."""
        try:
            step = next(gen)
            while True:
                try:
                    if isinstance(step, _Sleep):
                        time.sleep(step.seconds)
                        value: Any = None
                    else:
                        value = self._call(step)
                except Exception as exc:
                    step = gen.throw(exc)
                else:
                    step = gen.send(value)
        except StopIteration as stop:
            return stop.value

    # -- general

    def call(self, request: Mapping[str, Any],
             timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send any request (a dict with ``op``); return its final reply.

        Raises :class:`SanddError` for an error reply. The escape hatch
        for ops and fields this module does not wrap."""
        return self._drive(self._g_raw(dict(request), timeout))

    def request(self, request: Mapping[str, Any]) -> Iterator[Dict[str, Any]]:
        """Send any request; yield every message about it, the final one
        last (an error reply is yielded, not raised)."""
        rid, pending = self._start(_Call(dict(request)))
        try:
            while True:
                msg = pending.queue.get()
                if msg is _EOF:
                    raise self._closed_error()
                yield msg
                if _is_final(msg):
                    return
        finally:
            self._forget(rid)

    def hello(self) -> Dict[str, Any]:
        """``{"version": "X.Y.Z", "protocol": 1}`` of the controller."""
        return self._drive(self._g_hello())

    def list_daemons(self, labels: Optional[Mapping[str, str]] = None,
                     all: bool = False) -> List[DaemonInfo]:
        """Workers, optionally only those whose labels match all given.

        ``all`` also lists workers that disconnected recently."""
        return self._drive(self._g_list_daemons(labels, all))

    def get_daemon(self, daemon_id: str) -> Optional[DaemonInfo]:
        """The worker with this id, or None if it is not listed."""
        return self._drive(self._g_get_daemon(daemon_id))

    def daemon_count(self) -> int:
        """How many workers are connected."""
        return self._drive(self._g_daemon_count())

    def get_stats(self) -> Dict[str, Any]:
        """The controller's counters (``workers_connected``, ...)."""
        return self._drive(self._g_stats())

    def wait_for_daemon(self, daemon_id: str, timeout: float = 30.0,
                        poll_interval: float = 0.5) -> bool:
        """Wait until the worker is connected; False if ``timeout`` passed.

        Uses the server's ``wait`` op; ``poll_interval`` applies only
        when falling back to polling an older server."""
        return self._drive(self._g_wait_for_daemon(daemon_id, timeout,
                                                   poll_interval))

    def wait_for_daemons(self, labels: Optional[Mapping[str, str]] = None,
                         count: int = 1, timeout: float = 30.0
                         ) -> List[DaemonInfo]:
        """Wait until ``count`` connected workers match ``labels``.

        Returns them; raises :class:`WaitTimeout` when time runs out."""
        return self._drive(self._g_wait_for_daemons(labels, count, timeout))

    # -- exec

    def exec(self, daemon_id: str, command: Command,
             timeout: Optional[float] = 300,
             env: Optional[Mapping[str, str]] = None,
             cwd: Optional[str] = None, *,
             stdin: Optional[BytesLike] = None,
             **options: Any) -> CommandResult:
        """Run a command on one worker and return its result.

        ``command`` is a shell line (``/bin/sh -c``) or an argv list.
        Further keyword options are sent as they are: ``user``,
        ``env_clear``, ``merge_stderr``, ``max_output``, ``limits``,
        ``kill_grace``, ...

        Raises :class:`CommandTimeout` (a ``TimeoutError``; ``.result``
        has the output so far) when the command hits ``timeout``, and
        :class:`WorkerNotFound` (a ``ValueError``) for an unknown worker.
        A non-zero exit is not an error: check ``result.success``."""
        options["stdin"] = stdin
        return self._drive(self._g_exec(daemon_id, command, timeout, env,
                                        cwd, options))

    def broadcast(self, labels: Union[Mapping[str, str], Sequence[str], None],
                  command: Command, timeout: Optional[float] = 300,
                  env: Optional[Mapping[str, str]] = None,
                  cwd: Optional[str] = None, *,
                  stdin: Optional[BytesLike] = None,
                  **options: Any) -> Dict[str, CommandResult]:
        """Run a command on every connected worker whose labels match
        (a dict; ``{}`` or None: all), or on a list of worker ids.

        Returns ``{worker_id: CommandResult}`` (``{}`` when nothing
        matches). A worker that could not run it has ``result.error``
        set; timeouts are reported as ``result.timed_out``, not raised.
        ``max_concurrency`` limits how many run at once."""
        options["stdin"] = stdin
        return self._drive(self._g_broadcast(labels, command, timeout, env,
                                             cwd, options))

    def exec_stream(self, target: Union[str, Mapping[str, str],
                                        Sequence[str]],
                    command: Command, timeout: Optional[float] = None,
                    env: Optional[Mapping[str, str]] = None,
                    cwd: Optional[str] = None, *,
                    stdin: Optional[BytesLike] = None,
                    stdin_open: bool = False,
                    **options: Any) -> "ExecStream":
        """Run a command with output streamed as it is printed.

        ``target`` is a worker id, a labels dict, or a list of worker ids.
        Iterate the returned :class:`ExecStream` for :class:`Event`\\ s
        (``started``, ``stdout``, ``stderr``, then one ``result`` per
        worker). With ``stdin_open`` feed input with ``stream.write()``."""
        options["stdin"] = stdin
        if stdin_open:
            options["stdin_open"] = True
        req = _exec_request(command, timeout, env, cwd, options)
        _set_target(req, target)
        req["stream"] = True
        return ExecStream(self, req)

    def spawn(self, daemon_id: str, command: Command,
              yield_after: float = 0.0, timeout: Optional[float] = None,
              env: Optional[Mapping[str, str]] = None,
              cwd: Optional[str] = None, *,
              stdin: Optional[BytesLike] = None,
              **options: Any) -> "ExecHandle":
        """Start a command that outlives this connection (``yield_after``).

        Returns an :class:`ExecHandle` after ``yield_after`` seconds (or
        when the command ends, if sooner); continue it with its
        ``read``/``write``/``signal``/``wait`` methods, from this or any
        other client (:meth:`attach_handle`)."""
        options["stdin"] = stdin
        reply = self._drive(self._g_spawn(daemon_id, command, yield_after,
                                          timeout, env, cwd, options))
        return ExecHandle(self, daemon_id, reply)

    def attach_handle(self, handle: str, worker: str = "") -> "ExecHandle":
        """An :class:`ExecHandle` for a handle some client started."""
        return ExecHandle(self, worker, {"running": True, "handle": handle})

    def read(self, handle: str, timeout: Optional[float] = None,
             until: Optional[str] = None) -> ReadResult:
        """New output of a running handle (``read`` op).

        Waits up to ``timeout`` for output or the end; ``until`` is a
        POSIX extended regex over the new stdout."""
        return self._drive(self._g_read(handle, timeout, until))

    def write(self, handle: str, data: Optional[BytesLike] = None,
              eof: bool = False) -> None:
        """Feed a running handle's stdin; ``eof`` closes it."""
        self._drive(self._g_write({"handle": handle}, data, eof))

    def signal(self, handle: str, signal: Union[str, int] = "TERM") -> None:
        """Send a signal (``"INT"``, ``"TERM"``, 9, ...) to a handle's
        process group."""
        self._drive(self._g_signal({"handle": handle}, signal))

    # -- sessions

    def new_session(self, daemon_id: str, rows: int = 24, cols: int = 80,
                    term: Optional[str] = "xterm-256color",
                    command: Optional[Command] = None,
                    env: Optional[Mapping[str, str]] = None,
                    cwd: Optional[str] = None, **options: Any) -> "Session":
        """Open a PTY session (default: the login shell) on a worker.

        ``term`` sets ``$TERM``. Extra options (``user``) pass through."""
        reply = self._drive(self._g_session_open(
            daemon_id, rows, cols, term, command, env, cwd, options))
        return Session(self, str(reply.get("session")), daemon_id,
                       reply.get("pid"))

    def get_session(self, session_id: str, since: Optional[int] = 0
                    ) -> "Session":
        """A :class:`Session` for an existing session id.

        Reads start at ``since`` (0: the oldest kept output; None: only
        output from now on)."""
        info = None
        for s in self.list_sessions():
            if s.session == session_id:
                info = s
        if info is None:
            raise SessionNotFound("Session %s not found" % session_id)
        offset = info.offset if since is None else since
        return Session(self, session_id, info.worker, info.pid, offset)

    def list_sessions(self, daemon_id: Optional[str] = None
                      ) -> List[SessionInfo]:
        """Sessions, optionally of one worker only."""
        return self._drive(self._g_session_list(daemon_id))

    # -- files

    def upload_file(self, daemon_id: str, remote_path: str, data: BytesLike,
                    mode: Optional[int] = None, mkdir: bool = False
                    ) -> Transfer:
        """Write ``data`` to ``remote_path`` on a worker (atomically)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self._drive(self._g_put(daemon_id, data, remote_path, mode,
                                       mkdir))

    def download_file(self, daemon_id: str, remote_path: str) -> bytes:
        """The content of ``remote_path`` on a worker."""
        return self._drive(self._g_download(daemon_id, remote_path))

    def put(self, daemon_id: str, src: PathOrFile, remote_path: str,
            mode: Optional[int] = None, mkdir: bool = False) -> Transfer:
        """Copy a local file (path or binary file object) to a worker.

        Streams it as one raw payload: memory use stays small whatever
        the size. The SHA-256 is checked against the worker's."""
        return self._drive(self._g_put(daemon_id, src, remote_path, mode,
                                       mkdir))

    def get(self, daemon_id: str, remote_path: str, dst: PathOrFile,
            offset: Optional[int] = None, length: Optional[int] = None
            ) -> Transfer:
        """Copy a worker's file to a local path or binary file object.

        Streams raw payloads; a local path is written to a temporary file
        and renamed into place once the SHA-256 checked out."""
        return self._drive(self._g_get(daemon_id, remote_path, dst, offset,
                                       length))

    def stat(self, daemon_id: str, path: str) -> FileStat:
        """Type, size, mode and mtime of a path on a worker.

        Raises :class:`RemoteFileNotFoundError` if it does not exist."""
        return self._drive(self._g_stat(daemon_id, path))

    # -- subscriptions

    def subscribe(self, topics: Iterable[str] = ("workers", "sessions")
                  ) -> "Subscription":
        """Subscribe to worker and/or session state changes."""
        topics = list(topics)
        sub = Subscription(self, _topic_filter(topics))
        sub._start({"op": "subscribe", "topics": topics})
        return sub


def _set_target(req: Dict[str, Any],
                target: Union[str, Mapping[str, str], Sequence[str], None]
                ) -> None:
    if isinstance(target, str):
        req["worker"] = target
    elif target is None or isinstance(target, Mapping):
        req["labels"] = dict(target or {})
    else:
        req["workers"] = list(target)


def _topic_filter(topics: Sequence[str]) -> Callable[[Mapping[str, Any]],
                                                     bool]:
    want = set()
    if "workers" in topics:
        want.add("worker")
    if "sessions" in topics:
        want.add("session")

    def accept(msg: Mapping[str, Any]) -> bool:
        return msg.get("event") in want
    return accept


def _session_filter(session_id: str) -> Callable[[Mapping[str, Any]], bool]:
    def accept(msg: Mapping[str, Any]) -> bool:
        return msg.get("session") == session_id and \
            msg.get("event") in ("output", "exit")
    return accept


class _StreamBase:
    """Bookkeeping shared by :class:`ExecStream` and
    :class:`AsyncExecStream`."""

    def __init__(self, request: Dict[str, Any]) -> None:
        self.request = request
        self.single = "worker" in request
        self.handles: Dict[str, str] = {}
        self.pids: Dict[str, int] = {}
        self.results: Dict[str, CommandResult] = {}
        self.done = False
        self._backlog: List[Dict[str, Any]] = []
        self._rid = 0

    @property
    def handle(self) -> Optional[str]:
        """The handle of a one-worker exec (None until ``started``)."""
        return next(iter(self.handles.values()), None)

    @property
    def result(self) -> Optional[CommandResult]:
        """The result of a one-worker exec once it ended."""
        return next(iter(self.results.values()), None)

    def _note(self, msg: Mapping[str, Any]) -> None:
        if msg.get("event") == "started":
            w = str(msg.get("worker") or self.request.get("worker") or "")
            if isinstance(msg.get("handle"), str):
                self.handles[w] = msg["handle"]
            if isinstance(msg.get("pid"), int):
                self.pids[w] = msg["pid"]

    def _started_or_raise(self) -> str:
        if not self.handles:
            final = self._backlog[-1] if self._backlog else {}
            if final.get("ok") is False:
                raise _error_from_reply(final, self.request)
            raise HandleNotFound("command ended before it started")
        return self.handle or ""

    def _handle(self, msg: Dict[str, Any]) -> Optional[Event]:
        if not _is_final(msg):
            ev = Event.from_json(msg)
            if ev.worker is None and self.single:
                ev.worker = self.request.get("worker")
            if ev.type == "result" and ev.result is not None:
                self.results[str(ev.worker)] = ev.result
            return ev
        self.done = True
        if msg["ok"] is not True:
            raise _error_from_reply(msg, self.request)
        if self.single:
            r = CommandResult.from_json(msg)
            r.worker = r.worker or self.request.get("worker")
            self.results[str(r.worker)] = r
            return Event(type="result", worker=r.worker, result=r,
                         handle=self.handle, message=dict(msg))
        for item in msg.get("results") or []:
            self.results.setdefault(str(item.get("worker")),
                                    CommandResult.from_json(item))
        return None

    def _finish(self, out: Dict[str, bytearray],
                err: Dict[str, bytearray]) -> Any:
        full: Dict[str, CommandResult] = {}
        for w, r in self.results.items():
            if r.error is None:
                r = CommandResult.from_json(r.raw, bytes(out.get(w, b"")),
                                            bytes(err.get(w, b"")))
                r.worker = r.worker or w
            full[w] = r
        self.results = full
        if self.single:
            return self.result
        return full

    @staticmethod
    def _collect_event(ev: Event, out: Dict[str, bytearray],
                       err: Dict[str, bytearray]) -> None:
        w = str(ev.worker)
        if ev.type == "stdout":
            out.setdefault(w, bytearray()).extend(ev.data or b"")
        elif ev.type == "stderr":
            err.setdefault(w, bytearray()).extend(ev.data or b"")


class ExecStream(_StreamBase):
    """A streaming exec (``stream: true``): iterate it for events.

    Yields :class:`Event` objects: ``started`` (with ``handle``),
    ``stdout``/``stderr`` (``data`` is bytes), and ``result`` per worker
    (``result`` is a :class:`CommandResult` without the output, which
    came as events). After iteration, ``results`` maps worker ids to
    results (``result`` is the single one for a one-worker exec)."""

    def __init__(self, client: Client, request: Dict[str, Any]) -> None:
        super().__init__(request)
        self.client = client
        self._rid, self._pending = client._start(_Call(request))

    def __enter__(self) -> "ExecStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _next_msg(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        try:
            msg = self._pending.queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no event within %ss" % timeout)
        if msg is _EOF:
            raise self.client._closed_error()
        return msg

    def wait_started(self, timeout: Optional[float] = 30.0) -> str:
        """Wait for the ``started`` event; return the handle."""
        while not self.handles:
            if self.done:
                raise HandleNotFound("command ended before it started")
            msg = self._next_msg(timeout)
            self._note(msg)
            self._backlog.append(msg)
            if _is_final(msg):
                break
        return self._started_or_raise()

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Yield events; ``timeout`` bounds the wait for each one."""
        while not self.done:
            if self._backlog:
                msg = self._backlog.pop(0)
            else:
                msg = self._next_msg(timeout)
                self._note(msg)
            ev = self._handle(msg)
            if ev is not None:
                yield ev

    def wait(self, timeout: Optional[float] = None) -> Any:
        """Drain the stream; return the result with the collected output
        (a dict worker -> result for a broadcast)."""
        out: Dict[str, bytearray] = {}
        err: Dict[str, bytearray] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            left = None if deadline is None else \
                max(0.0, deadline - time.monotonic())
            for ev in self.events(left):
                self._collect_event(ev, out, err)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError("stream still running after %ss" %
                                       timeout)
        return self._finish(out, err)

    def write(self, data: Optional[BytesLike] = None,
              eof: bool = False) -> None:
        """Write to the command's stdin (needs ``stdin_open``)."""
        handle = self.wait_started()
        self.client.write(handle, data, eof)

    def close_stdin(self) -> None:
        """Close the command's stdin (EOF)."""
        self.write(None, eof=True)

    def signal(self, sig: Union[str, int] = "TERM") -> None:
        """Signal the command (every worker's, for a broadcast)."""
        self.wait_started()
        for h in list(self.handles.values()):
            self.client.signal(h, sig)

    def close(self) -> None:
        """Stop receiving this stream's events (the command runs on)."""
        self.done = True
        self.client._forget(self._rid)


class Subscription:
    """Worker/session state events (from :meth:`Client.subscribe`) or a
    session's attached output (from :meth:`Session.attach`).

    Iterate it for :class:`Event` objects, or call :meth:`get`."""

    def __init__(self, client: Client,
                 accept: Callable[[Mapping[str, Any]], bool]) -> None:
        self.client = client
        self._listener = _Listener(accept)
        self._rid: Optional[int] = None
        self._stash: List[Dict[str, Any]] = []
        self.closed = False

    def _start(self, request: Dict[str, Any]) -> Dict[str, Any]:
        # Messages with our id and unsolicited ones that we accept share
        # the listener's queue; events before the reply are kept.
        rid, _ = self.client._start(_Call(request), persistent=True,
                                    listener=self._listener)
        self._rid = rid
        while True:
            msg = self._listener.queue.get()
            if msg is _EOF:
                raise self.client._closed_error()
            if _is_final(msg) and msg.get("id") == rid:
                break
            self._stash.append(msg)
        if msg["ok"] is not True:
            self.close()
            raise _error_from_reply(msg, request)
        return msg

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event, or None if none came within ``timeout``."""
        if self._stash:
            return Event.from_json(self._stash.pop(0))
        try:
            msg = self._listener.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if msg is _EOF:
            self._listener.queue.put(_EOF)
            raise self.client._closed_error()
        return Event.from_json(msg)

    def __iter__(self) -> Iterator[Event]:
        while not self.closed:
            ev = self.get()
            if ev is not None:
                yield ev

    def close(self) -> None:
        """Stop delivering events to this object."""
        self.closed = True
        with self.client._lock:
            if self._listener in self.client._listeners:
                self.client._listeners.remove(self._listener)
            if self._rid is not None:
                self.client._pending.pop(self._rid, None)


class Session(_SessionBase):
    """A PTY session on a worker (from :meth:`Client.new_session`).

    :meth:`read` returns output not read yet by this object; offsets
    are tracked here, so nothing is lost or repeated between reads.
    """

    client: Client

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except (SessionNotFound, ConnectionClosed):
            pass

    def write(self, data: BytesLike) -> None:
        """Type ``data`` into the terminal."""
        self.client._drive(self.client._g_session_write(self.session_id,
                                                        data))

    def read(self, timeout: Optional[float] = 1.0) -> Optional[bytes]:
        """New output, waiting up to ``timeout`` seconds for some; None
        when nothing came (or the program exited and all was read)."""
        return self.client._drive(self._g_read(timeout))

    def read_until(self, pattern: Union[str, bytes],
                   timeout: float = 30.0) -> bytes:
        """Output up to and including a match of ``pattern`` (a POSIX
        extended regex). Raises :class:`SessionTimeout` (a
        ``TimeoutError``) if no match came; nothing is consumed then."""
        return self.client._drive(self._g_read_until(pattern, timeout))

    def run(self, cmd: str, timeout: Optional[float] = None
            ) -> CommandResult:
        """Run one shell command line in the session's shell.

        Returns its output (``stdout``; no echo, no prompt) and exit
        status. Raises :class:`CommandTimeout` with the output so far when
        ``timeout`` passes (the job gets SIGINT)."""
        return self.client._drive(self._g_run(cmd, timeout))

    def resize(self, rows: int, cols: int) -> None:
        """Set the terminal size (the program gets SIGWINCH)."""
        self.client._drive(self.client._g_session_simple(
            "session.resize", self.session_id, {"rows": rows, "cols": cols}))

    def signal(self, sig: Union[str, int] = "INT") -> None:
        """Send a signal to the session's process group."""
        self.client._drive(self.client._g_signal(
            {"session": self.session_id}, sig))

    def attach(self, since: Optional[int] = None,
               readonly: bool = False) -> Subscription:
        """Attach this connection: output arrives as ``output`` events
        (and finally ``exit``) on the returned :class:`Subscription`."""
        sub = Subscription(self.client, _session_filter(self.session_id))
        req: Dict[str, Any] = {"op": "session.attach",
                               "session": self.session_id}
        if since is not None:
            req["since"] = since
        if readonly:
            req["readonly"] = True
        sub._start(req)
        return sub

    def detach(self) -> None:
        """Stop this connection's ``output`` events."""
        self.client._drive(self.client._g_session_simple(
            "session.detach", self.session_id, {}))

    def info(self) -> Optional[SessionInfo]:
        """This session's entry of ``session.list``."""
        for s in self.client.list_sessions():
            if s.session == self.session_id:
                return s
        return None

    def close(self, signal: Union[str, int, None] = None) -> Optional[int]:
        """End the session (``HUP`` unless ``signal``); return its exit
        code (None if it died by a signal)."""
        return self.client._drive(self._g_close(signal))


class ExecHandle(_HandleBase):
    """A command started with ``yield_after`` (:meth:`Client.spawn`)."""

    client: Client

    def read(self, timeout: Optional[float] = None,
             until: Optional[str] = None) -> ReadResult:
        """Output since the last read; waits up to ``timeout``."""
        return self.client._drive(self._g_read(timeout, until))

    def write(self, data: Optional[BytesLike] = None,
              eof: bool = False) -> None:
        """Write to its stdin (needs ``stdin_open``)."""
        if self.handle is None:
            raise HandleNotFound("command has already finished")
        self.client.write(self.handle, data, eof)

    def signal(self, sig: Union[str, int] = "TERM") -> None:
        """Signal its process group."""
        if self.handle is None:
            raise HandleNotFound("command has already finished")
        self.client.signal(self.handle, sig)

    def wait(self, timeout: Optional[float] = None) -> CommandResult:
        """Read until it ends; return the result with all its output."""
        return self.client._drive(self._g_wait(timeout))


# ====================================================================
# Local processes: Server, Worker
# ====================================================================

_LIVE: "weakref.WeakSet[Any]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for obj in list(_LIVE):
        try:
            obj._stop_process()
        except Exception:
            pass


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


def _host_port(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def _local_host(host: str) -> str:
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return "[%s]" % host
    return host


class _Process:
    """A child ``sandd`` process in its own process group, logging to a
    file; shared by Server, AsyncServer and Worker."""

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

    def stop(self, grace: float = 5.0) -> Optional[int]:
        """SIGTERM the group, SIGKILL it after ``grace``; reap."""
        if self.proc.poll() is None:
            self.signal(_signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.signal(_signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        return self.proc.returncode

    async def astop(self, grace: float = 5.0) -> Optional[int]:
        """Like :meth:`stop`, without blocking the event loop."""
        if self.proc.poll() is None:
            self.signal(_signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self.signal(_signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.proc.returncode


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


class _ServeConfig:
    """Builds and starts ``sandd serve`` in a private temporary folder."""

    def __init__(self, host: str, port: int, binary: Optional[str],
                 options: Dict[str, Any]) -> None:
        self.host = host
        self.port = int(port)
        self.binary = find_binary(binary)
        self.start_timeout = float(options.pop("start_timeout", 15.0))
        self.env: Optional[Dict[str, str]] = options.pop("env", None)
        extra = list(options.pop("extra_args", []) or [])
        self.tmpdir = tempfile.mkdtemp(prefix="sandd-py-")
        os.chmod(self.tmpdir, 0o700)
        self.control_path = os.path.join(self.tmpdir, "control.sock")
        self.log_path = os.path.join(self.tmpdir, "serve.log")
        self.argv = [self.binary, "serve", "--listen",
                     _host_port(host, self.port), "--control",
                     self.control_path] + _flag_args(options) + extra
        self.process: Optional[_Process] = None
        tls = bool(options.get("tls_cert"))
        self.url = "%s://%s:%d/ws" % ("wss" if tls else "ws",
                                      _local_host(host), self.port)

    def spawn(self) -> _Process:
        self.process = _Process(self.argv, self.log_path, self.env)
        return self.process

    def check(self) -> bool:
        """True once ready; raises if serve died."""
        assert self.process is not None
        if not self.process.alive():
            raise self.process.exit_error("sandd serve")
        if _socket_accepts(self.control_path):
            # A serve that could not bind exits right after; look again.
            if not self.process.alive():
                raise self.process.exit_error("sandd serve")
            return True
        return False

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


class Worker:
    """A local ``sandd worker`` child process (for tests and demos).

    ``labels`` become ``--label K=V``; ``token`` is passed in
    ``$SANDD_TOKEN``; other keyword options map to flags like the
    server's (``root="/srv"``, ``allow=["ls *"]``, ``ca=...``)."""

    def __init__(self, server_url: str, daemon_id: str,
                 labels: Optional[Mapping[str, str]] = None,
                 binary: Optional[str] = None, token: Optional[str] = None,
                 log_path: Optional[str] = None, **options: Any) -> None:
        self.server_url = server_url
        self.daemon_id = daemon_id
        self.labels = dict(labels or {})
        argv = [find_binary(binary), "worker", "--server-url", server_url,
                "--id", daemon_id]
        for k, v in self.labels.items():
            argv += ["--label", "%s=%s" % (k, v)]
        env = dict(options.pop("env", None) or {})
        argv += _flag_args(options)
        if token is not None:
            env["SANDD_TOKEN"] = token
        self._own_log: Optional[str] = None
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="sandd-worker-",
                                            suffix=".log")
            os.close(fd)
            self._own_log = log_path
        self.process = _Process(argv, log_path, env)
        _LIVE.add(self)

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

    def _stop_process(self) -> None:
        self.process.stop()
        if self._own_log:
            try:
                os.unlink(self._own_log)
            except OSError:
                pass
            self._own_log = None

    def close(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL)."""
        self._stop_process()
        _LIVE.discard(self)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Server(Client):
    """A private ``sandd serve`` child process, and a client of it.

    Listens for workers on ``host:port``; its control socket lives in a
    private temporary folder (``control_path``). Keyword options map to
    ``sandd serve`` flags: ``token_file``, ``tls_cert``, ``tls_key``,
    ``tls_client_ca``, ``resume_window``, ``ping_interval``,
    ``max_output``, ``verbose`` (a count), ... Also: ``binary`` (the
    sandd executable), ``env``, ``extra_args``, ``start_timeout``.

    Raises :class:`ServerStartError` with the daemon's own message at
    once if it cannot start (port taken, bad option). Stopped by
    :meth:`close`, on context-manager exit, and at interpreter exit.
    """

    def __init__(self, host: str = "0.0.0.0", port: int = 8765, *,
                 binary: Optional[str] = None,
                 request_timeout: Optional[float] = None,
                 **options: Any) -> None:
        self._cfg = _ServeConfig(host, port, binary, options)
        self.host = host
        self.port = self._cfg.port
        self.url = self._cfg.url
        self.control_path = self._cfg.control_path
        self.workers: List[Worker] = []
        proc = self._cfg.spawn()
        _LIVE.add(self)
        try:
            deadline = time.monotonic() + self._cfg.start_timeout
            delay = 0.01
            while not self._cfg.check():
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        "sandd serve did not open its control socket within "
                        "%ss: %s" % (self._cfg.start_timeout, proc.log()))
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
            self._init_client(self.control_path, request_timeout, 10.0)
        except BaseException:
            self._stop_process()
            _LIVE.discard(self)
            raise

    @property
    def pid(self) -> int:
        """The ``sandd serve`` process id."""
        assert self._cfg.process is not None
        return self._cfg.process.pid

    def log(self) -> str:
        """The tail of the server's stderr."""
        return self._cfg.process.log() if self._cfg.process else ""

    def start_worker(self, daemon_id: str,
                     labels: Optional[Mapping[str, str]] = None,
                     wait: bool = True, timeout: float = 15.0,
                     **options: Any) -> Worker:
        """Start a local ``sandd worker`` connected to this server.

        By default waits until it is connected; it is stopped with the
        server. Options as for :class:`Worker`."""
        options.setdefault("binary", self._cfg.binary)
        options.setdefault("log_path", os.path.join(
            self._cfg.tmpdir, "worker-%s.log" % daemon_id))
        w = Worker(self.url, daemon_id, labels, **options)
        self.workers.append(w)
        if wait:
            deadline = time.monotonic() + timeout
            while not self.wait_for_daemon(daemon_id, timeout=0.5):
                if not w.alive():
                    w.close()
                    raise w.process.exit_error("sandd worker")
                if time.monotonic() > deadline:
                    w.close()
                    raise ServerStartError("worker %s did not connect within "
                                           "%ss: %s" % (daemon_id, timeout,
                                                        w.log()))
        return w

    def _stop_process(self) -> None:
        for w in self.workers:
            try:
                w.close()
            except Exception:
                pass
        self.workers = []
        if self._cfg.process is not None:
            self._cfg.process.stop()
        self._cfg.cleanup()

    def close(self) -> None:
        """Close the connection, stop the server and its workers, and
        remove the temporary folder."""
        if hasattr(self, "_sock"):
            super().close()
        self._stop_process()
        _LIVE.discard(self)

    def __enter__(self) -> "Server":
        return self


# ====================================================================
# asyncio client
# ====================================================================

class _APending:
    """A request waiting for its final reply (async client)."""

    __slots__ = ("request", "queue", "sink", "sink_error", "persistent")

    def __init__(self, request: Dict[str, Any],
                 sink: Optional[Callable[[bytes], None]],
                 persistent: bool = False,
                 q: "Optional[asyncio.Queue[Any]]" = None) -> None:
        self.request = request
        self.queue: "asyncio.Queue[Any]" = q if q is not None \
            else asyncio.Queue()
        self.sink = sink
        self.sink_error: Optional[BaseException] = None
        self.persistent = persistent


class _AListener:
    def __init__(self, accept: Callable[[Mapping[str, Any]], bool]) -> None:
        self.accept = accept
        self.queue: "asyncio.Queue[Any]" = asyncio.Queue()


class AsyncClient(_Ops):
    """The asyncio twin of :class:`Client`: same methods, as coroutines.

    Connects on first use (or ``await client.connect()``); use as
    ``async with AsyncClient() as c: ...``."""

    def __init__(self, path: Optional[str] = None,
                 request_timeout: Optional[float] = None) -> None:
        self.path = os.fspath(path) if path else default_control_path()
        self.request_timeout = request_timeout
        self._ids = itertools.count(1)
        self._pending: Dict[int, _APending] = {}
        self._listeners: List[_AListener] = []
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._wlock: Optional[asyncio.Lock] = None
        self._closed = False
        self._shut = False
        self._close_reason: Optional[str] = None

    async def connect(self) -> "AsyncClient":
        """Open the connection (done automatically by the first call)."""
        if self._writer is not None:
            return self
        if self._closed:
            raise self._closed_error()
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                self.path, limit=_ASYNC_LINE_LIMIT)
        except OSError as e:
            raise ConnectionClosed("cannot connect to sandd control socket "
                                   "%s: %s" % (self.path, e.strerror or e))
        self._wlock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(
            self._read_loop())
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed

    async def close(self) -> None:
        """Close the connection."""
        if self._shut:
            return
        self._shut = True
        self._closed = True
        if self._close_reason is None:
            self._close_reason = "client closed the connection"
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def _closed_error(self) -> ConnectionClosed:
        return ConnectionClosed(self._close_reason or "connection closed")

    async def _read_loop(self) -> None:
        r = self._reader
        assert r is not None
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                rid = msg.get("id")
                pending = self._pending.get(rid) \
                    if isinstance(rid, int) else None
                n = msg.get("bytes")
                if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                    await self._read_payload(r, n, msg, pending)
                if pending is not None:
                    if _is_final(msg) and not pending.persistent:
                        self._pending.pop(pending.request["id"], None)
                    pending.queue.put_nowait(msg)
                    continue
                for li in list(self._listeners):
                    try:
                        if li.accept(msg):
                            li.queue.put_nowait(msg)
                    except Exception:
                        pass
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            self._closed = True
            if self._close_reason is None:
                self._close_reason = "server closed the control connection"
            for p in list(self._pending.values()):
                p.queue.put_nowait(_EOF)
            self._pending.clear()
            for li in list(self._listeners):
                li.queue.put_nowait(_EOF)

    async def _read_payload(self, r: asyncio.StreamReader, n: int,
                            msg: Dict[str, Any],
                            pending: Optional[_APending]) -> None:
        sink = pending.sink if pending is not None else None
        keep = bytearray() if sink is None else None
        left = n
        while left > 0:
            piece = await r.readexactly(min(CHUNK, left))
            left -= len(piece)
            if keep is not None:
                keep += piece
            elif pending is not None and pending.sink_error is None:
                try:
                    sink(piece)  # type: ignore[misc]
                except BaseException as e:
                    pending.sink_error = e
        if keep is not None:
            msg["_payload"] = bytes(keep)

    async def _start(self, call: _Call, persistent: bool = False,
                     listener: Optional[_AListener] = None
                     ) -> Tuple[int, _APending]:
        await self.connect()
        if self._closed:
            raise self._closed_error()
        rid = next(self._ids)
        req = dict(call.request)
        req["id"] = rid
        pending = _APending(req, call.sink, persistent,
                            listener.queue if listener else None)
        self._pending[rid] = pending
        if listener is not None:
            self._listeners.append(listener)
        w = self._writer
        assert w is not None and self._wlock is not None
        try:
            async with self._wlock:
                w.write(_encode_line(req))
                if call.payload is not None:
                    try:
                        for piece in call.payload.chunks():
                            w.write(piece)
                            await w.drain()
                    except SanddError:
                        self._close_reason = "local file shrank during put"
                        self._closed = True
                        w.close()
                        raise
                await w.drain()
        except OSError as e:
            self._forget(rid)
            raise ConnectionClosed("control connection failed: %s" % e)
        except BaseException:
            self._forget(rid)
            raise
        return rid, pending

    def _forget(self, rid: int, listener: Optional[_AListener] = None
                ) -> None:
        self._pending.pop(rid, None)
        if listener is not None and listener in self._listeners:
            self._listeners.remove(listener)

    async def _call(self, call: _Call) -> Dict[str, Any]:
        rid, pending = await self._start(call)
        timeout = None if self.request_timeout is None else \
            self.request_timeout + (call.expect or 0)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if deadline is None:
                    msg = await pending.queue.get()
                else:
                    msg = await asyncio.wait_for(
                        pending.queue.get(),
                        max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                self._forget(rid)
                raise TimeoutError("no reply to %s request %d within %ss" % (
                    call.request.get("op"), rid, self.request_timeout))
            if msg is _EOF:
                raise self._closed_error()
            if not _is_final(msg):
                continue
            if pending.sink_error is not None:
                raise pending.sink_error
            if msg["ok"] is True:
                return msg
            raise _error_from_reply(msg, pending.request)

    async def _drive(self, gen: _Op) -> Any:
        """Run a sans-I/O operation on asyncio."""
        try:
            step = next(gen)
            while True:
                try:
                    if isinstance(step, _Sleep):
                        await asyncio.sleep(step.seconds)
                        value: Any = None
                    else:
                        value = await self._call(step)
                except Exception as exc:
                    step = gen.throw(exc)
                else:
                    step = gen.send(value)
        except StopIteration as stop:
            return stop.value

    # -- general

    async def call(self, request: Mapping[str, Any],
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        """See :meth:`Client.call`."""
        return await self._drive(self._g_raw(dict(request), timeout))

    async def request(self, request: Mapping[str, Any]
                      ) -> AsyncIterator[Dict[str, Any]]:
        """See :meth:`Client.request`."""
        rid, pending = await self._start(_Call(dict(request)))
        try:
            while True:
                msg = await pending.queue.get()
                if msg is _EOF:
                    raise self._closed_error()
                yield msg
                if _is_final(msg):
                    return
        finally:
            self._forget(rid)

    async def hello(self) -> Dict[str, Any]:
        """See :meth:`Client.hello`."""
        return await self._drive(self._g_hello())

    async def list_daemons(self, labels: Optional[Mapping[str, str]] = None,
                           all: bool = False) -> List[DaemonInfo]:
        """See :meth:`Client.list_daemons`."""
        return await self._drive(self._g_list_daemons(labels, all))

    async def get_daemon(self, daemon_id: str) -> Optional[DaemonInfo]:
        """See :meth:`Client.get_daemon`."""
        return await self._drive(self._g_get_daemon(daemon_id))

    async def daemon_count(self) -> int:
        """See :meth:`Client.daemon_count`."""
        return await self._drive(self._g_daemon_count())

    async def get_stats(self) -> Dict[str, Any]:
        """See :meth:`Client.get_stats`."""
        return await self._drive(self._g_stats())

    async def wait_for_daemon(self, daemon_id: str, timeout: float = 30.0,
                              poll_interval: float = 0.5) -> bool:
        """See :meth:`Client.wait_for_daemon`."""
        return await self._drive(self._g_wait_for_daemon(
            daemon_id, timeout, poll_interval))

    async def wait_for_daemons(self,
                               labels: Optional[Mapping[str, str]] = None,
                               count: int = 1, timeout: float = 30.0
                               ) -> List[DaemonInfo]:
        """See :meth:`Client.wait_for_daemons`."""
        return await self._drive(self._g_wait_for_daemons(labels, count,
                                                          timeout))

    # -- exec

    async def exec(self, daemon_id: str, command: Command,
                   timeout: Optional[float] = 300,
                   env: Optional[Mapping[str, str]] = None,
                   cwd: Optional[str] = None, *,
                   stdin: Optional[BytesLike] = None,
                   **options: Any) -> CommandResult:
        """See :meth:`Client.exec`."""
        options["stdin"] = stdin
        return await self._drive(self._g_exec(daemon_id, command, timeout,
                                              env, cwd, options))

    async def broadcast(self, labels: Union[Mapping[str, str], Sequence[str],
                                            None],
                        command: Command, timeout: Optional[float] = 300,
                        env: Optional[Mapping[str, str]] = None,
                        cwd: Optional[str] = None, *,
                        stdin: Optional[BytesLike] = None,
                        **options: Any) -> Dict[str, CommandResult]:
        """See :meth:`Client.broadcast`."""
        options["stdin"] = stdin
        return await self._drive(self._g_broadcast(labels, command, timeout,
                                                   env, cwd, options))

    async def exec_stream(self, target: Union[str, Mapping[str, str],
                                              Sequence[str]],
                          command: Command, timeout: Optional[float] = None,
                          env: Optional[Mapping[str, str]] = None,
                          cwd: Optional[str] = None, *,
                          stdin: Optional[BytesLike] = None,
                          stdin_open: bool = False,
                          **options: Any) -> "AsyncExecStream":
        """See :meth:`Client.exec_stream`; iterate with ``async for``."""
        options["stdin"] = stdin
        if stdin_open:
            options["stdin_open"] = True
        req = _exec_request(command, timeout, env, cwd, options)
        _set_target(req, target)
        req["stream"] = True
        stream = AsyncExecStream(self, req)
        await stream._begin()
        return stream

    async def spawn(self, daemon_id: str, command: Command,
                    yield_after: float = 0.0,
                    timeout: Optional[float] = None,
                    env: Optional[Mapping[str, str]] = None,
                    cwd: Optional[str] = None, *,
                    stdin: Optional[BytesLike] = None,
                    **options: Any) -> "AsyncExecHandle":
        """See :meth:`Client.spawn`."""
        options["stdin"] = stdin
        reply = await self._drive(self._g_spawn(
            daemon_id, command, yield_after, timeout, env, cwd, options))
        return AsyncExecHandle(self, daemon_id, reply)

    def attach_handle(self, handle: str, worker: str = ""
                      ) -> "AsyncExecHandle":
        """See :meth:`Client.attach_handle`."""
        return AsyncExecHandle(self, worker,
                               {"running": True, "handle": handle})

    async def read(self, handle: str, timeout: Optional[float] = None,
                   until: Optional[str] = None) -> ReadResult:
        """See :meth:`Client.read`."""
        return await self._drive(self._g_read(handle, timeout, until))

    async def write(self, handle: str, data: Optional[BytesLike] = None,
                    eof: bool = False) -> None:
        """See :meth:`Client.write`."""
        await self._drive(self._g_write({"handle": handle}, data, eof))

    async def signal(self, handle: str,
                     signal: Union[str, int] = "TERM") -> None:
        """See :meth:`Client.signal`."""
        await self._drive(self._g_signal({"handle": handle}, signal))

    # -- sessions

    async def new_session(self, daemon_id: str, rows: int = 24,
                          cols: int = 80,
                          term: Optional[str] = "xterm-256color",
                          command: Optional[Command] = None,
                          env: Optional[Mapping[str, str]] = None,
                          cwd: Optional[str] = None,
                          **options: Any) -> "AsyncSession":
        """See :meth:`Client.new_session`."""
        reply = await self._drive(self._g_session_open(
            daemon_id, rows, cols, term, command, env, cwd, options))
        return AsyncSession(self, str(reply.get("session")), daemon_id,
                            reply.get("pid"))

    async def get_session(self, session_id: str, since: Optional[int] = 0
                          ) -> "AsyncSession":
        """See :meth:`Client.get_session`."""
        info = None
        for s in await self.list_sessions():
            if s.session == session_id:
                info = s
        if info is None:
            raise SessionNotFound("Session %s not found" % session_id)
        offset = info.offset if since is None else since
        return AsyncSession(self, session_id, info.worker, info.pid, offset)

    async def list_sessions(self, daemon_id: Optional[str] = None
                            ) -> List[SessionInfo]:
        """See :meth:`Client.list_sessions`."""
        return await self._drive(self._g_session_list(daemon_id))

    # -- files

    async def upload_file(self, daemon_id: str, remote_path: str,
                          data: BytesLike, mode: Optional[int] = None,
                          mkdir: bool = False) -> Transfer:
        """See :meth:`Client.upload_file`."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return await self._drive(self._g_put(daemon_id, data, remote_path,
                                             mode, mkdir))

    async def download_file(self, daemon_id: str, remote_path: str) -> bytes:
        """See :meth:`Client.download_file`."""
        return await self._drive(self._g_download(daemon_id, remote_path))

    async def put(self, daemon_id: str, src: PathOrFile, remote_path: str,
                  mode: Optional[int] = None, mkdir: bool = False
                  ) -> Transfer:
        """See :meth:`Client.put`."""
        return await self._drive(self._g_put(daemon_id, src, remote_path,
                                             mode, mkdir))

    async def get(self, daemon_id: str, remote_path: str, dst: PathOrFile,
                  offset: Optional[int] = None, length: Optional[int] = None
                  ) -> Transfer:
        """See :meth:`Client.get`."""
        return await self._drive(self._g_get(daemon_id, remote_path, dst,
                                             offset, length))

    async def stat(self, daemon_id: str, path: str) -> FileStat:
        """See :meth:`Client.stat`."""
        return await self._drive(self._g_stat(daemon_id, path))

    # -- subscriptions

    async def subscribe(self, topics: Iterable[str] = ("workers", "sessions")
                        ) -> "AsyncSubscription":
        """See :meth:`Client.subscribe`; iterate with ``async for``."""
        topics = list(topics)
        sub = AsyncSubscription(self, _topic_filter(topics))
        await sub._start({"op": "subscribe", "topics": topics})
        return sub


class AsyncExecStream(_StreamBase):
    """The asyncio twin of :class:`ExecStream` (``async for ev in s``)."""

    def __init__(self, client: AsyncClient, request: Dict[str, Any]) -> None:
        super().__init__(request)
        self.client = client
        self._pending: Optional[_APending] = None

    async def _begin(self) -> None:
        self._rid, self._pending = await self.client._start(
            _Call(self.request))

    async def __aenter__(self) -> "AsyncExecStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    async def _next_msg(self, timeout: Optional[float] = None
                        ) -> Dict[str, Any]:
        assert self._pending is not None
        try:
            msg = await asyncio.wait_for(self._pending.queue.get(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("no event within %ss" % timeout)
        if msg is _EOF:
            raise self.client._closed_error()
        return msg

    async def wait_started(self, timeout: Optional[float] = 30.0) -> str:
        """See :meth:`ExecStream.wait_started`."""
        while not self.handles:
            if self.done:
                raise HandleNotFound("command ended before it started")
            msg = await self._next_msg(timeout)
            self._note(msg)
            self._backlog.append(msg)
            if _is_final(msg):
                break
        return self._started_or_raise()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def events(self, timeout: Optional[float] = None
                     ) -> AsyncIterator[Event]:
        """See :meth:`ExecStream.events`."""
        while not self.done:
            if self._backlog:
                msg = self._backlog.pop(0)
            else:
                msg = await self._next_msg(timeout)
                self._note(msg)
            ev = self._handle(msg)
            if ev is not None:
                yield ev

    async def wait(self, timeout: Optional[float] = None) -> Any:
        """See :meth:`ExecStream.wait`."""
        out: Dict[str, bytearray] = {}
        err: Dict[str, bytearray] = {}
        try:
            await asyncio.wait_for(self._collect(out, err), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError("stream still running after %ss" % timeout)
        return self._finish(out, err)

    async def _collect(self, out: Dict[str, bytearray],
                       err: Dict[str, bytearray]) -> None:
        async for ev in self.events():
            self._collect_event(ev, out, err)

    async def write(self, data: Optional[BytesLike] = None,
                    eof: bool = False) -> None:
        """See :meth:`ExecStream.write`."""
        handle = await self.wait_started()
        await self.client.write(handle, data, eof)

    async def close_stdin(self) -> None:
        """See :meth:`ExecStream.close_stdin`."""
        await self.write(None, eof=True)

    async def signal(self, sig: Union[str, int] = "TERM") -> None:
        """See :meth:`ExecStream.signal`."""
        await self.wait_started()
        for h in list(self.handles.values()):
            await self.client.signal(h, sig)

    def close(self) -> None:
        """See :meth:`ExecStream.close`."""
        self.done = True
        self.client._forget(self._rid)


class AsyncSubscription:
    """The asyncio twin of :class:`Subscription`."""

    def __init__(self, client: AsyncClient,
                 accept: Callable[[Mapping[str, Any]], bool]) -> None:
        self.client = client
        self._listener = _AListener(accept)
        self._rid: Optional[int] = None
        self._stash: List[Dict[str, Any]] = []
        self.closed = False

    async def _start(self, request: Dict[str, Any]) -> Dict[str, Any]:
        rid, _ = await self.client._start(
            _Call(request), persistent=True, listener=self._listener)
        self._rid = rid
        while True:
            msg = await self._listener.queue.get()
            if msg is _EOF:
                raise self.client._closed_error()
            if _is_final(msg) and msg.get("id") == rid:
                break
            self._stash.append(msg)
        if msg["ok"] is not True:
            self.close()
            raise _error_from_reply(msg, request)
        return msg

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    async def get(self, timeout: Optional[float] = None) -> Optional[Event]:
        """See :meth:`Subscription.get`."""
        if self._stash:
            return Event.from_json(self._stash.pop(0))
        try:
            msg = await asyncio.wait_for(self._listener.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if msg is _EOF:
            self._listener.queue.put_nowait(_EOF)
            raise self.client._closed_error()
        return Event.from_json(msg)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while not self.closed:
            ev = await self.get()
            if ev is not None:
                yield ev

    def close(self) -> None:
        """See :meth:`Subscription.close`."""
        self.closed = True
        if self._listener in self.client._listeners:
            self.client._listeners.remove(self._listener)
        if self._rid is not None:
            self.client._pending.pop(self._rid, None)


class AsyncSession(_SessionBase):
    """The asyncio twin of :class:`Session`."""

    client: AsyncClient

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.close()
        except (SessionNotFound, ConnectionClosed):
            pass

    async def write(self, data: BytesLike) -> None:
        """See :meth:`Session.write`."""
        await self.client._drive(self.client._g_session_write(
            self.session_id, data))

    async def read(self, timeout: Optional[float] = 1.0) -> Optional[bytes]:
        """See :meth:`Session.read`."""
        return await self.client._drive(self._g_read(timeout))

    async def read_until(self, pattern: Union[str, bytes],
                         timeout: float = 30.0) -> bytes:
        """See :meth:`Session.read_until`."""
        return await self.client._drive(self._g_read_until(pattern, timeout))

    async def run(self, cmd: str, timeout: Optional[float] = None
                  ) -> CommandResult:
        """See :meth:`Session.run`."""
        return await self.client._drive(self._g_run(cmd, timeout))

    async def resize(self, rows: int, cols: int) -> None:
        """See :meth:`Session.resize`."""
        await self.client._drive(self.client._g_session_simple(
            "session.resize", self.session_id, {"rows": rows, "cols": cols}))

    async def signal(self, sig: Union[str, int] = "INT") -> None:
        """See :meth:`Session.signal`."""
        await self.client._drive(self.client._g_signal(
            {"session": self.session_id}, sig))

    async def attach(self, since: Optional[int] = None,
                     readonly: bool = False) -> AsyncSubscription:
        """See :meth:`Session.attach`."""
        sub = AsyncSubscription(self.client,
                                _session_filter(self.session_id))
        req: Dict[str, Any] = {"op": "session.attach",
                               "session": self.session_id}
        if since is not None:
            req["since"] = since
        if readonly:
            req["readonly"] = True
        await sub._start(req)
        return sub

    async def detach(self) -> None:
        """See :meth:`Session.detach`."""
        await self.client._drive(self.client._g_session_simple(
            "session.detach", self.session_id, {}))

    async def info(self) -> Optional[SessionInfo]:
        """See :meth:`Session.info`."""
        for s in await self.client.list_sessions():
            if s.session == self.session_id:
                return s
        return None

    async def close(self, signal: Union[str, int, None] = None
                    ) -> Optional[int]:
        """See :meth:`Session.close`."""
        return await self.client._drive(self._g_close(signal))


class AsyncExecHandle(_HandleBase):
    """The asyncio twin of :class:`ExecHandle`."""

    client: AsyncClient

    async def read(self, timeout: Optional[float] = None,
                   until: Optional[str] = None) -> ReadResult:
        """See :meth:`ExecHandle.read`."""
        return await self.client._drive(self._g_read(timeout, until))

    async def write(self, data: Optional[BytesLike] = None,
                    eof: bool = False) -> None:
        """See :meth:`ExecHandle.write`."""
        if self.handle is None:
            raise HandleNotFound("command has already finished")
        await self.client.write(self.handle, data, eof)

    async def signal(self, sig: Union[str, int] = "TERM") -> None:
        """See :meth:`ExecHandle.signal`."""
        if self.handle is None:
            raise HandleNotFound("command has already finished")
        await self.client.signal(self.handle, sig)

    async def wait(self, timeout: Optional[float] = None) -> CommandResult:
        """See :meth:`ExecHandle.wait`."""
        return await self.client._drive(self._g_wait(timeout))


class AsyncServer(AsyncClient):
    """The asyncio twin of :class:`Server`.

    ``async with AsyncServer(port=...) as s:`` starts ``sandd serve``
    (or ``await s.start()``); ``await s.close()`` stops it. It is also
    stopped at interpreter exit."""

    def __init__(self, host: str = "0.0.0.0", port: int = 8765, *,
                 binary: Optional[str] = None,
                 request_timeout: Optional[float] = None,
                 **options: Any) -> None:
        self._cfg = _ServeConfig(host, port, binary, options)
        super().__init__(self._cfg.control_path, request_timeout)
        self.host = host
        self.port = self._cfg.port
        self.url = self._cfg.url
        self.control_path = self._cfg.control_path
        self.workers: List[Worker] = []

    @property
    def pid(self) -> int:
        """The ``sandd serve`` process id."""
        assert self._cfg.process is not None
        return self._cfg.process.pid

    def log(self) -> str:
        """The tail of the server's stderr."""
        return self._cfg.process.log() if self._cfg.process else ""

    async def start(self) -> "AsyncServer":
        """Start ``sandd serve`` and connect to it."""
        if self._cfg.process is not None:
            return self
        proc = self._cfg.spawn()
        _LIVE.add(self)
        try:
            deadline = time.monotonic() + self._cfg.start_timeout
            delay = 0.01
            while not self._cfg.check():
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        "sandd serve did not open its control socket within "
                        "%ss: %s" % (self._cfg.start_timeout, proc.log()))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.1)
            await self.connect()
        except BaseException:
            await self._astop()
            raise
        return self

    async def __aenter__(self) -> "AsyncServer":
        return await self.start()

    async def start_worker(self, daemon_id: str,
                           labels: Optional[Mapping[str, str]] = None,
                           wait: bool = True, timeout: float = 15.0,
                           **options: Any) -> Worker:
        """See :meth:`Server.start_worker`."""
        options.setdefault("binary", self._cfg.binary)
        options.setdefault("log_path", os.path.join(
            self._cfg.tmpdir, "worker-%s.log" % daemon_id))
        w = Worker(self.url, daemon_id, labels, **options)
        self.workers.append(w)
        if wait:
            deadline = time.monotonic() + timeout
            while not await self.wait_for_daemon(daemon_id, timeout=0.5):
                if not w.alive():
                    w.close()
                    raise w.process.exit_error("sandd worker")
                if time.monotonic() > deadline:
                    w.close()
                    raise ServerStartError("worker %s did not connect within "
                                           "%ss: %s" % (daemon_id, timeout,
                                                        w.log()))
        return w

    def _stop_process(self) -> None:
        for w in self.workers:
            try:
                w.close()
            except Exception:
                pass
        self.workers = []
        if self._cfg.process is not None:
            self._cfg.process.stop()
        self._cfg.cleanup()

    async def _astop(self) -> None:
        for w in self.workers:
            w.process.signal(_signal.SIGTERM)
        for w in self.workers:
            await w.process.astop()
            w.close()
        self.workers = []
        if self._cfg.process is not None:
            await self._cfg.process.astop()
        self._cfg.cleanup()
        _LIVE.discard(self)

    async def close(self) -> None:
        """Close the connection, stop the server and its workers."""
        await super().close()
        await self._astop()

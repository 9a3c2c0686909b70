"""What the client's operations return: results of commands, workers,
sessions, files and events, each built from a protocol message."""

from __future__ import annotations

import signal as _signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Mapping, Optional

from .errors import SanddError, error_from_reply
from .protocol import field_bytes, text


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
            exc = error_from_reply(msg)
            return cls(worker=msg.get("worker"), error=exc, raw=dict(msg))
        out = stdout if stdout is not None else \
            (field_bytes(msg, "stdout") or b"")
        err = stderr if stderr is not None else \
            (field_bytes(msg, "stderr") or b"")
        code = msg.get("exit_code")
        dur = msg.get("duration_ms")
        return cls(
            stdout=text(out), stderr=text(err),
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

    @property
    def platform(self) -> str:
        """``os/arch``, e.g. ``"Linux/x86_64"``."""
        return "%s/%s" % (self.os, self.arch)

    @property
    def connected_secs(self) -> int:
        """Whole seconds since it connected (0 if unknown)."""
        try:
            since = datetime.fromisoformat(
                self.connected_at.replace("Z", "+00:00"))
        except ValueError:
            return 0
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        return max(0, int(time.time() - since.timestamp()))


class ServerStats(dict):  # type: ignore[type-arg]
    """What :meth:`Client.get_stats` returns: the controller's counters
    as a dict (``stats["workers_connected"]``, ``"errors" in stats``,
    ``stats.get(...)``), with the attributes of the Rust sandd's
    ``ServerStats``: ``total_daemons``, ``by_platform`` (``os/arch`` ->
    count), ``oldest_connection_secs`` and ``daemons`` (id ->
    :class:`DaemonInfo`), all of connected workers."""

    def __init__(self, counters: Mapping[str, Any],
                 workers: Iterable[DaemonInfo]) -> None:
        super().__init__(counters)
        #: The connected workers by id.
        self.daemons: Dict[str, DaemonInfo] = {
            w.id: w for w in workers if w.connected}

    @property
    def total_daemons(self) -> int:
        """How many workers are connected."""
        return len(self.daemons)

    @property
    def by_platform(self) -> Dict[str, int]:
        """How many connected workers run on each ``os/arch``."""
        return dict(Counter(w.platform for w in self.daemons.values()))

    @property
    def oldest_connection_secs(self) -> int:
        """Seconds the longest-connected worker has been connected."""
        return max((w.connected_secs for w in self.daemons.values()),
                   default=0)

    def __repr__(self) -> str:
        return "ServerStats(total=%d, platforms=%r, counters=%s)" % (
            self.total_daemons, self.by_platform, dict.__repr__(self))


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
        out = field_bytes(msg, "stdout") or b""
        err = field_bytes(msg, "stderr") or b""
        running = bool(msg.get("running"))
        res = None if running else CommandResult.from_json(msg, out, err)
        return cls(stdout=text(out), stderr=text(err), running=running,
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
        return text(self.data)

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> "Event":
        """Build from an event message."""
        etype = str(msg.get("event", ""))
        data = field_bytes(msg, "data")
        if data is None and etype in ("stdout", "stderr"):
            # sandd 0.1.0 names the field after the stream
            data = field_bytes(msg, etype)
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



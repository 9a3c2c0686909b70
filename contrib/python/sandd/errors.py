"""The exceptions of the sandd client, and the mapping from the protocol's
error codes to them (sans-I/O: it only reads a reply)."""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

if TYPE_CHECKING:
    from .results import CommandResult


class SanddError(RuntimeError):
    """An error reported by sandd (or by this client about sandd).

    A ``RuntimeError``, as the Rust sandd's failures were; subclasses are
    also the built-in error that fits (``ValueError``, ``TimeoutError``,
    ``ConnectionError``, ``PermissionError``, ``FileNotFoundError``, ...).

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


class ServerStartError(SanddError):
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


def error_from_reply(reply: Mapping[str, Any],
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


class _ShortPayload(SanddError):
    """A local file shrank while it was sent as a raw payload: the server
    still waits for the missing bytes, so the connection is out of step."""
    code = "io_error"

"""Pure-stdlib Python client for sandd, the remote command daemon.

sandd is one binary that is a controller (``sandd serve``) and a worker
(``sandd worker``). Programs drive the controller over a UNIX control
socket that speaks newline-delimited JSON (the protocol is
sandd-control(7): ``man sandd-control``, man/sandd-control.7 in the
source). This package is a thin, typed layer over that protocol; it needs
nothing but the Python standard library (3.9+).

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

The modules: errors, results and protocol (the sans-I/O core: exceptions,
result types, framing and routing), ops (how an operation written once
runs in either flavour), api and objects (every operation, once), client
and aio (the blocking and the asyncio flavour), process and server (local
``sandd serve`` and ``sandd worker`` processes).
"""

from .aio import (AsyncClient, AsyncExecHandle, AsyncExecStream,
                  AsyncSession, AsyncSubscription, AsyncWorkspace)
from .client import (Client, ExecHandle, ExecStream, Session, Subscription,
                     Workspace)
from .errors import (BadRequest, ChecksumMismatch, CommandTimeout,
                     ConnectionClosed, Denied, ExecFailed, HandleNotFound,
                     InternalError, LimitExceeded, RateLimited,
                     RemoteFileExistsError, RemoteFileNotFoundError,
                     RemoteIOError, RemoteIsADirectoryError,
                     RemoteNotADirectoryError, RemotePermissionError,
                     SanddError, ServerStartError, SessionNotFound,
                     SessionTimeout, TooLarge, UnknownOp, WaitTimeout,
                     WorkerLost, WorkerNotFound)
from .process import Worker, _flag_args, find_binary
from .protocol import (CHUNK, PROTOCOL_VERSION, BytesLike, Command,
                       PathOrFile, default_control_path)
from .results import (CommandResult, DaemonInfo, Event, FileStat, ReadResult,
                      ServerStats, SessionInfo, Transfer)
from .server import AsyncServer, Server

__all__ = [
    "PROTOCOL_VERSION", "default_control_path", "find_binary",
    "Client", "Server", "Worker", "AsyncClient", "AsyncServer",
    "CommandResult", "DaemonInfo", "ReadResult", "FileStat", "Transfer",
    "SessionInfo", "Event",
    "Session", "AsyncSession", "ExecHandle", "AsyncExecHandle",
    "ExecStream", "AsyncExecStream", "Subscription", "AsyncSubscription",
    "Workspace", "AsyncWorkspace",
    "SanddError", "BadRequest", "UnknownOp", "TooLarge", "WorkerNotFound",
    "SessionNotFound", "HandleNotFound", "WaitTimeout", "CommandTimeout",
    "SessionTimeout", "ExecFailed", "Denied", "RateLimited", "WorkerLost",
    "RemoteIOError", "RemoteFileNotFoundError", "LimitExceeded",
    "InternalError", "ConnectionClosed", "ServerStartError",
    "ChecksumMismatch",
]

# Names the single-file module had besides __all__, for code that used
# them, and the Rust sandd's ServerStats (__all__ stays as it was).
_COMPAT = (CHUNK, BytesLike, Command, PathOrFile, RemoteFileExistsError,
           RemoteIsADirectoryError, RemoteNotADirectoryError,
           RemotePermissionError, _flag_args, ServerStats)

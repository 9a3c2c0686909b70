"""Every operation of a client, once, as sans-I/O generators (see ops.py).

:class:`ClientOps` is what :class:`sandd.Client` and
:class:`sandd.AsyncClient` have in common: all of their methods but the
few that move bytes. Each ``_g_NAME`` marked ``@op`` becomes the method
``NAME`` of both (blocking in one, a coroutine in the other), with the
docstring written here.
"""

from __future__ import annotations

import io
import os
import time
from typing import (IO, Any, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Union)

from .errors import (BadRequest, ChecksumMismatch, CommandTimeout,
                     RateLimited, SessionNotFound, UnknownOp, WaitTimeout,
                     WorkerNotFound, error_from_reply)
from .ops import Op, OpHost, Open, Recv, Send, Shut, Sleep, iter_op, op
from .protocol import (EOF, BytesLike, Command, Mux, Payload, PathOrFile,
                       Request, Sink, command_fields, default_control_path,
                       exec_request, expect, field_bytes, is_final,
                       open_source, put_fields, set_bytes, set_target,
                       signal_name, strip, text, topic_filter)
from .results import (CommandResult, DaemonInfo, FileStat, ReadResult,
                      ServerStats, SessionInfo, Transfer)

Target = Union[str, Mapping[str, str], Sequence[str], None]


class ClientOps(OpHost):
    """The operations of a client of a controller's control socket, for
    :class:`sandd.Client` and :class:`sandd.AsyncClient` (which document
    ``path``, ``request_timeout`` and ``retry``). ``new_queue`` makes the
    flavour's queues."""

    # The objects a flavour hands out (set by client.py and aio.py).
    _Session: Any = None
    _ExecHandle: Any = None
    _ExecStream: Any = None
    _Subscription: Any = None
    _Workspace: Any = None

    def __init__(self, path: Optional[str], request_timeout: Optional[float],
                 new_queue: Any, retry: bool = False) -> None:
        self.path = os.fspath(path) if path else default_control_path()
        self.request_timeout = request_timeout
        self.retry = retry
        self._mux = Mux(new_queue)
        self._connected = False

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._mux.closed

    # -- the plumbing every operation uses

    def _g_connect(self) -> Op[Any]:
        if not self._connected:
            if self._mux.closed:
                raise self._mux.closed_error()
            yield Open()
            self._connected = True
        return self

    def _g_reply(self, req: Request) -> Op[Dict[str, Any]]:
        """Send a request; return its final ``ok`` reply, or raise the
        error it carries. With ``retry``, a ``rate_limited`` request is
        sent again after the ``retry_after`` the server gave (not one
        whose raw payload streams from a file: that is read once)."""
        while True:
            try:
                return (yield from self._g_reply_once(req))
            except RateLimited as e:
                if not self.retry or req.payload is not None or \
                        e.retry_after is None:
                    raise
                yield Sleep(e.retry_after)

    def _g_reply_once(self, req: Request) -> Op[Dict[str, Any]]:
        """Send a request once; its final ``ok`` reply, or raise."""
        pending = yield Send(req)
        deadline = None if self.request_timeout is None else \
            time.monotonic() + self.request_timeout + (req.expect or 0)
        try:
            while True:
                left = None if deadline is None else \
                    max(0.0, deadline - time.monotonic())
                msg = yield Recv(pending.queue, left)
                if msg is None:
                    raise TimeoutError("no reply to %s request %d within "
                                       "%ss" % (req.fields.get("op"),
                                                pending.rid,
                                                self.request_timeout))
                if msg is EOF:
                    raise self._mux.closed_error()
                if not is_final(msg):
                    continue    # events of plain calls are not needed
                if pending.sink_error is not None:
                    raise pending.sink_error
                if msg["ok"] is True:
                    return msg
                raise error_from_reply(msg, pending.fields)
        finally:
            self._mux.forget(pending.rid)

    def _ask(self, op_name: str, **fields: Any) -> Op[Dict[str, Any]]:
        """Send ``op`` with the fields that are not None; its reply."""
        return self._g_reply(Request(_fields(op_name, **fields)))

    @op
    def _g_close(self) -> Op[None]:
        """Close the connection. Unfinished execs on it are cancelled by
        the server (commands started with ``yield_after`` and sessions
        live on)."""
        if self._mux.shut:
            return
        self._mux.shut = True
        self._mux.closed = True
        if self._mux.reason is None:
            self._mux.reason = "client closed the connection"
        if self._connected:
            yield Shut()

    def _g_exit(self) -> Op[None]:
        yield from self._g_close()

    # -- general

    @op
    def _g_call(self, request: Mapping[str, Any],
                timeout: Optional[float] = None) -> Op[Dict[str, Any]]:
        """Send any request (a dict with ``op``); return its final reply.

        Raises :class:`SanddError` for an error reply. The escape hatch
        for ops and fields this module does not wrap."""
        return (yield from self._g_reply(Request(dict(request), timeout)))

    @iter_op
    def _g_request(self, request: Mapping[str, Any]) -> Op[None]:
        """Send any request; yield every message about it, the final one
        last (an error reply is yielded, not raised)."""
        pending = yield Send(Request(dict(request)))
        try:
            while True:
                msg = yield Recv(pending.queue, None)
                if msg is EOF:
                    raise self._mux.closed_error()
                yield msg
                if is_final(msg):
                    return
        finally:
            self._mux.forget(pending.rid)

    @op
    def _g_hello(self) -> Op[Dict[str, Any]]:
        """``{"version": "X.Y.Z", "protocol": 1}`` of the controller."""
        return strip((yield from self._ask("hello")))

    @op
    def _g_list_daemons(self, labels: Optional[Mapping[str, str]] = None,
                        all: bool = False) -> Op[List[DaemonInfo]]:
        """Workers, optionally only those whose labels match all given.

        ``all`` also lists workers that disconnected recently."""
        reply = yield from self._ask("workers",
                                     labels=dict(labels) if labels else None,
                                     all=True if all else None)
        return [DaemonInfo.from_json(w) for w in reply.get("workers") or []]

    @op
    def _g_get_daemon(self, daemon_id: str) -> Op[Optional[DaemonInfo]]:
        """The worker with this id, or None if it is not listed."""
        for info in (yield from self._g_list_daemons()):
            if info.id == daemon_id:
                return info
        return None

    @op
    def _g_daemon_count(self) -> Op[int]:
        """How many workers are connected."""
        infos = yield from self._g_list_daemons()
        return sum(1 for i in infos if i.connected)

    @op
    def _g_get_stats(self) -> Op[ServerStats]:
        """The controller's counters (``workers_connected``, ...), with
        the Rust sandd's ``total_daemons``, ``by_platform`` and
        ``oldest_connection_secs`` (see :class:`ServerStats`)."""
        counters = strip((yield from self._ask("stats")))
        return ServerStats(counters, (yield from self._g_list_daemons()))

    @op
    def _g_wait_for_daemon(self, daemon_id: str, timeout: float = 30.0,
                           poll_interval: float = 0.5) -> Op[bool]:
        """Wait until the worker is connected; False if ``timeout`` passed.

        Uses the server's ``wait`` op; ``poll_interval`` applies only
        when falling back to polling an older server."""
        deadline = time.monotonic() + timeout
        try:
            yield from self._g_reply(Request(
                {"op": "wait", "worker": daemon_id, "timeout": timeout},
                expect=timeout + 5))
            return True
        except WaitTimeout:
            return False
        except (WorkerNotFound, UnknownOp, BadRequest):
            pass    # an older server: poll the list instead
        while True:
            infos = yield from self._g_list_daemons()
            if any(i.id == daemon_id and i.connected for i in infos):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            yield Sleep(min(poll_interval, left))

    @op
    def _g_wait_for_daemons(self, labels: Optional[Mapping[str, str]] = None,
                            count: int = 1, timeout: float = 30.0
                            ) -> Op[List[DaemonInfo]]:
        """Wait until ``count`` connected workers match ``labels``.

        Returns them; raises :class:`WaitTimeout` when time runs out."""
        reply = yield from self._g_reply(Request(
            {"op": "wait", "labels": dict(labels or {}), "count": count,
             "timeout": timeout}, expect=timeout + 5))
        return [DaemonInfo.from_json(w) for w in reply.get("workers") or []]

    # -- exec

    @op
    def _g_exec(self, daemon_id: str, command: Command,
                timeout: Optional[float] = 300,
                env: Optional[Mapping[str, str]] = None,
                cwd: Optional[str] = None, *,
                stdin: Optional[BytesLike] = None,
                **options: Any) -> Op[CommandResult]:
        """Run a command on one worker and return its result.

        ``command`` is a shell line (``/bin/sh -c``) or an argv list.
        Further keyword options are sent as they are: ``user``,
        ``env_clear``, ``merge_stderr``, ``max_output``, ``limits``,
        ``kill_grace``, ...

        Raises :class:`CommandTimeout` (a ``TimeoutError``; ``.result``
        has the output so far) when the command hits ``timeout``, and
        :class:`WorkerNotFound` (a ``ValueError``) for an unknown worker.
        A non-zero exit is not an error: check ``result.success``."""
        reply = yield from self._g_exec_reply(daemon_id, command, timeout,
                                              env, cwd, stdin, options)
        result = CommandResult.from_json(reply)
        if result.timed_out:
            raise CommandTimeout("command timed out after %ss on %s" % (
                timeout, daemon_id), result)
        return result

    @op
    def _g_broadcast(self, labels: Target, command: Command,
                     timeout: Optional[float] = 300,
                     env: Optional[Mapping[str, str]] = None,
                     cwd: Optional[str] = None, *,
                     stdin: Optional[BytesLike] = None,
                     **options: Any) -> Op[Dict[str, CommandResult]]:
        """Run a command on every connected worker whose labels match
        (a dict; ``{}`` or None: all), or on a list of worker ids.

        Returns ``{worker_id: CommandResult}`` (``{}`` when nothing
        matches). A worker that could not run it has ``result.error``
        set; timeouts are reported as ``result.timed_out``, not raised.
        ``max_concurrency`` limits how many run at once."""
        try:
            reply = yield from self._g_exec_reply(labels, command, timeout,
                                                  env, cwd, stdin, options)
        except WorkerNotFound:
            if labels is None or isinstance(labels, Mapping):
                return {}
            raise
        return {str(item.get("worker")): CommandResult.from_json(item)
                for item in reply.get("results") or []}

    def _g_exec_reply(self, target: Target, command: Command,
                      timeout: Optional[float],
                      env: Optional[Mapping[str, str]], cwd: Optional[str],
                      stdin: Optional[BytesLike],
                      options: Mapping[str, Any]) -> Op[Dict[str, Any]]:
        """Run a command on ``target`` (see set_target); the final reply.
        It may take its timeout, its kill grace, and some slack."""
        req = exec_request(command, timeout, env, cwd,
                           dict(options, stdin=stdin))
        set_target(req, target)
        grace = float(options.get("kill_grace") or 2) + 5
        return (yield from self._g_reply(Request(req, expect(timeout,
                                                             grace))))

    def _stream(self, target: Target, command: Command,
                timeout: Optional[float] = None,
                env: Optional[Mapping[str, str]] = None,
                cwd: Optional[str] = None, *,
                stdin: Optional[BytesLike] = None,
                stdin_open: bool = False, **options: Any) -> Any:
        """The stream object of :meth:`exec_stream`, not started yet."""
        req = exec_request(command, timeout, env, cwd,
                           dict(options, stdin=stdin,
                                stdin_open=True if stdin_open else None))
        set_target(req, target)
        req["stream"] = True
        return self._ExecStream(self, req)

    @op
    def _g_exec_stream(self, target: Target, command: Command,
                       timeout: Optional[float] = None,
                       env: Optional[Mapping[str, str]] = None,
                       cwd: Optional[str] = None, *,
                       stdin: Optional[BytesLike] = None,
                       stdin_open: bool = False, **options: Any) -> Op[Any]:
        """Run a command with output streamed as it is printed.

        ``target`` is a worker id, a labels dict, or a list of worker ids.
        Iterate the returned :class:`ExecStream` for :class:`Event`\\ s
        (``started``, ``stdout``, ``stderr``, then one ``result`` per
        worker). With ``stdin_open`` feed input with ``stream.write()``."""
        stream = self._stream(target, command, timeout, env, cwd,
                              stdin=stdin, stdin_open=stdin_open, **options)
        return (yield from stream._g_begin())

    @op
    def _g_spawn(self, daemon_id: str, command: Command,
                 yield_after: float = 0.0, timeout: Optional[float] = None,
                 env: Optional[Mapping[str, str]] = None,
                 cwd: Optional[str] = None, *,
                 stdin: Optional[BytesLike] = None,
                 **options: Any) -> Op[Any]:
        """Start a command that outlives this connection (``yield_after``).

        Returns an :class:`ExecHandle` after ``yield_after`` seconds (or
        when the command ends, if sooner); continue it with its
        ``read``/``write``/``signal``/``wait`` methods, from this or any
        other client (:meth:`attach_handle`)."""
        req = exec_request(command, timeout, env, cwd,
                           dict(options, stdin=stdin))
        req["worker"] = daemon_id
        req["yield_after"] = yield_after
        reply = yield from self._g_reply(Request(req, expect(yield_after, 5)))
        return self._ExecHandle(self, daemon_id, reply)

    def attach_handle(self, handle: str, worker: str = "") -> Any:
        """An :class:`ExecHandle` for a handle some client started."""
        return self._ExecHandle(self, worker,
                                {"running": True, "handle": handle})

    @op
    def _g_read(self, handle: str, timeout: Optional[float] = None,
                until: Optional[str] = None) -> Op[ReadResult]:
        """New output of a running handle (``read`` op).

        Waits up to ``timeout`` for output or the end; ``until`` is a
        POSIX extended regex over the new stdout."""
        reply = yield from self._g_reply(Request(
            _fields("read", handle=handle, timeout=timeout, until=until),
            expect(timeout, 5)))
        return ReadResult.from_json(reply)

    @op
    def _g_write(self, handle: str, data: Optional[BytesLike] = None,
                 eof: bool = False) -> Op[None]:
        """Feed a running handle's stdin; ``eof`` closes it."""
        yield from self._g_send_data({"op": "write", "handle": handle}, data,
                                     eof)

    @op
    def _g_signal(self, handle: str,
                  signal: Union[str, int] = "TERM") -> Op[None]:
        """Send a signal (``"INT"``, ``"TERM"``, 9, ...) to a handle's
        process group."""
        yield from self._ask("signal", handle=handle,
                             signal=signal_name(signal))

    def _g_send_data(self, fields: Mapping[str, Any],
                     data: Optional[BytesLike], eof: bool) -> Op[None]:
        """A request (``fields``: its op and target) carrying ``data``."""
        req: Dict[str, Any] = dict(fields)
        if data is not None:
            set_bytes(req, "data", data)
        if eof:
            req["eof"] = True
        yield from self._g_reply(Request(req))

    # -- sessions

    @op
    def _g_new_session(self, daemon_id: str, rows: int = 24, cols: int = 80,
                       term: Optional[str] = "xterm-256color",
                       interactive: bool = False,
                       command: Optional[Command] = None,
                       env: Optional[Mapping[str, str]] = None,
                       cwd: Optional[str] = None, **options: Any) -> Op[Any]:
        """Open a PTY session (default: the login shell) on a worker.

        ``term`` sets ``$TERM``. Extra options (``user``) pass through.
        With ``interactive=True``, as in the Rust sandd, the session takes
        over this terminal (raw mode) until Ctrl+D or until it exits; it
        is then closed and None returned."""
        if not isinstance(interactive, bool):
            raise TypeError("interactive must be True or False (got %r); "
                            "pass a command as command=..." % (interactive,))
        req: Dict[str, Any] = {"op": "session.open", "worker": daemon_id,
                               "rows": rows, "cols": cols, "attach": False}
        command_fields(req, command)
        e = {str(k): str(v) for k, v in (env or {}).items()}
        if term:
            e.setdefault("TERM", term)
        if e:
            req["env"] = e
        if cwd is not None:
            req["cwd"] = os.fspath(cwd)
        put_fields(req, options)
        reply = yield from self._g_reply(Request(req))
        session = self._Session(self, str(reply.get("session")), daemon_id,
                                reply.get("pid"))
        if not interactive:
            return session
        yield from session._g_interact()
        return None

    @op
    def _g_get_session(self, session_id: str,
                       since: Optional[int] = 0) -> Op[Any]:
        """A :class:`Session` for an existing session id.

        Reads start at ``since`` (0: the oldest kept output; None: only
        output from now on)."""
        info = None
        for s in (yield from self._g_list_sessions()):
            if s.session == session_id:
                info = s
        if info is None:
            raise SessionNotFound("Session %s not found" % session_id)
        offset = info.offset if since is None else since
        return self._Session(self, session_id, info.worker, info.pid, offset)

    @op
    def _g_list_sessions(self, daemon_id: Optional[str] = None
                         ) -> Op[List[SessionInfo]]:
        """Sessions, optionally of one worker only."""
        reply = yield from self._ask("session.list", worker=daemon_id)
        return [SessionInfo.from_json(s) for s in reply.get("sessions") or []]

    def _g_session_read(self, session: str, since: Optional[int],
                        until: Optional[str], timeout: Optional[float]
                        ) -> Op[Dict[str, Any]]:
        return (yield from self._g_reply(Request(
            _fields("session.read", session=session, since=since,
                    until=until, timeout=timeout), expect(timeout, 5))))

    def _g_session_run(self, session: str, cmd: str,
                       timeout: Optional[float]) -> Op[CommandResult]:
        t0 = time.monotonic()
        reply = yield from self._g_reply(Request(
            _fields("session.run", session=session, cmd=cmd,
                    timeout=timeout), expect(timeout, 10)))
        out = field_bytes(reply, "output") or b""
        code = reply.get("exit_code")
        return CommandResult(
            stdout=text(out), exit_code=code if isinstance(code, int)
            else None, duration_ms=(time.monotonic() - t0) * 1000.0,
            timed_out=bool(reply.get("timed_out")), stdout_bytes=out,
            raw=dict(reply))

    # -- files

    @op
    def _g_upload_file(self, daemon_id: str, remote_path: str,
                       data: BytesLike, mode: Optional[int] = None,
                       mkdir: bool = False) -> Op[Transfer]:
        """Write ``data`` to ``remote_path`` on a worker (atomically)."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return (yield from self._g_put(daemon_id, data, remote_path, mode,
                                       mkdir))

    @op
    def _g_download_file(self, daemon_id: str, remote_path: str) -> Op[bytes]:
        """The content of ``remote_path`` on a worker."""
        buf = io.BytesIO()
        yield from self._g_get(daemon_id, remote_path, buf)
        return buf.getvalue()

    @op
    def _g_put(self, daemon_id: str, src: Union[PathOrFile, BytesLike],
               remote_path: str, mode: Optional[int] = None,
               mkdir: bool = False, workspace: Optional[str] = None
               ) -> Op[Transfer]:
        """Copy a local file (path or binary file object) to a worker.

        Streams it as one raw payload: memory use stays small whatever
        the size. The SHA-256 is checked against the worker's."""
        fobj, size, opened = open_source(src)
        payload = Payload(fobj, size)
        try:
            reply = yield from self._g_reply(Request(
                _fields("put", worker=daemon_id, path=remote_path,
                        bytes=size,
                        mode=int(mode) if mode is not None else None,
                        mkdir=True if mkdir else None, workspace=workspace),
                payload=payload))
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
                        sha256=local, mode=mode, raw=strip(reply))

    @op
    def _g_get(self, daemon_id: str, remote_path: str, dst: PathOrFile,
               offset: Optional[int] = None, length: Optional[int] = None,
               workspace: Optional[str] = None) -> Op[Transfer]:
        """Copy a worker's file to a local path or binary file object.

        Streams raw payloads; a local path is written to a temporary file
        and renamed into place once the SHA-256 checked out."""
        with _Destination(dst) as out:
            sink = Sink(out.file)
            reply = yield from self._g_reply(Request(
                _fields("get", worker=daemon_id, path=remote_path, raw=True,
                        offset=offset, length=length, workspace=workspace),
                sink=sink))
            remote = reply.get("sha256")
            local = sink.hasher.hexdigest()
            if isinstance(remote, str) and remote.lower() != local:
                raise ChecksumMismatch(
                    "sha256 mismatch after get of %s:%s: worker sent %s, "
                    "received %s" % (daemon_id, remote_path, remote, local))
        mode = reply.get("mode")
        return Transfer(size=sink.size, sha256=local,
                        mode=mode if isinstance(mode, int) else None,
                        raw=strip(reply))

    @op
    def _g_stat(self, daemon_id: str, path: str,
                workspace: Optional[str] = None) -> Op[FileStat]:
        """Type, size, mode and mtime of a path on a worker (in
        ``workspace``, as it sees it, when given).

        Raises :class:`RemoteFileNotFoundError` if it does not exist."""
        reply = yield from self._ask("stat", worker=daemon_id, path=path,
                                     workspace=workspace)
        mtime = reply.get("mtime")
        return FileStat(type=str(reply.get("type")),
                        size=int(reply.get("size") or 0),
                        mode=int(reply.get("mode") or 0),
                        mtime=float(mtime) if isinstance(
                            mtime, (int, float)) else 0.0,
                        raw=strip(reply))

    # -- workspaces

    @op
    def _g_create_workspace(self, daemon_id: str, name: Optional[str] = None,
                            network: Optional[str] = None,
                            memory: Optional[int] = None,
                            pids: Optional[int] = None,
                            cpu: Optional[float] = None,
                            env: Optional[Mapping[str, str]] = None
                            ) -> Op[Any]:
        """Create an isolated workspace on a worker and return it as a
        :class:`Workspace`: commands, sessions and files in it see only
        what is its own. ``memory`` in bytes, ``pids`` the most processes,
        ``cpu`` in cores (0.5); ``network`` ``"none"`` (default) or
        ``"host"``; ``env`` the default environment inside. Use it as a
        context manager to destroy it on leaving."""
        reply = yield from self._ask(
            "workspace.create", worker=daemon_id, name=name, network=network,
            memory=memory, pids=pids, cpu=cpu,
            env=dict(env) if env else None)
        return self._Workspace(self, daemon_id, str(reply.get("workspace")))

    @op
    def _g_list_workspaces(self, daemon_id: Optional[str] = None
                           ) -> Op[List[Dict[str, Any]]]:
        """The workspaces of one worker, or of every connected one."""
        reply = yield from self._ask("workspace.list", worker=daemon_id)
        return list(reply.get("workspaces") or [])

    @op
    def _g_destroy_workspace(self, daemon_id: str, name: str,
                             keep: bool = False) -> Op[Dict[str, Any]]:
        """End everything in a workspace and remove it (its /workspace
        folder stays on the worker's disk with ``keep``)."""
        reply = yield from self._ask("workspace.destroy", worker=daemon_id,
                                     workspace=name,
                                     keep=True if keep else None)
        return strip(reply)

    # -- subscriptions

    @op
    def _g_subscribe(self, topics: Iterable[str] = ("workers", "sessions")
                     ) -> Op[Any]:
        """Subscribe to worker and/or session state changes."""
        topics = list(topics)
        sub = self._Subscription(self, topic_filter(topics))
        yield from sub._g_start({"op": "subscribe", "topics": topics})
        return sub


def _fields(op_name: str, **fields: Any) -> Dict[str, Any]:
    """A request of ``op`` with the fields that are not None."""
    req: Dict[str, Any] = {"op": op_name}
    put_fields(req, fields)
    return req


class _Destination:
    """Where a ``get`` writes: a binary file object as it is, or a path
    written through a temporary file next to it that is renamed into
    place when the block ends well and removed when it does not."""

    def __init__(self, dst: PathOrFile) -> None:
        self.final: Optional[str] = None
        self.tmp: Optional[str] = None
        if isinstance(dst, (str, os.PathLike)):
            self.final = os.fspath(dst)
            folder = os.path.dirname(os.path.abspath(self.final))
            self.tmp = os.path.join(folder, ".%s.sandd-%s.tmp" % (
                os.path.basename(self.final), os.urandom(6).hex()))
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         getattr(os, "O_CLOEXEC", 0), 0o666)
            self.file: IO[bytes] = os.fdopen(fd, "wb")
        else:
            self.file = dst  # type: ignore[assignment]

    def __enter__(self) -> "_Destination":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if self.tmp is None:
            return
        try:
            if exc_type is None:
                self.file.flush()
                os.fsync(self.file.fileno())
                self.file.close()
                os.replace(self.tmp, self.final)  # type: ignore[arg-type]
                return
        except BaseException:
            self._discard()
            raise
        self._discard()

    def _discard(self) -> None:
        try:
            self.file.close()
        finally:
            try:
                os.unlink(self.tmp)  # type: ignore[arg-type]
            except OSError:
                pass

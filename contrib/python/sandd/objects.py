"""The objects a client hands out, once, as sans-I/O operations (ops.py):
a PTY session, a command started with ``yield_after``, a streaming exec,
a subscription. client.py and aio.py give each its blocking and its
asyncio class.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import time
import tty
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Union)

from .errors import (CommandTimeout, ConnectionClosed, HandleNotFound,
                     SessionNotFound, SessionTimeout, error_from_reply)
from .ops import Facade, Op, Recv, Send, iter_op, op
from .protocol import (ANY_OUTPUT, EOF, BytesLike, Pending, Request,
                       field_bytes, is_final, session_filter, signal_name)
from .results import CommandResult, Event, ReadResult, SessionInfo


class SessionOps(Facade):
    """A PTY session on a worker (from :meth:`Client.new_session`).

    :meth:`read` returns output not read yet by this object; offsets
    are tracked here, so nothing is lost or repeated between reads.
    """

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
        data = field_bytes(reply, "data") or b""
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

    def _ask(self, op_name: str, **fields: Any) -> Op[Dict[str, Any]]:
        return self.client._ask(op_name, session=self.session_id, **fields)

    def _g_exit(self) -> Op[None]:
        try:
            yield from self._g_close()
        except (SessionNotFound, ConnectionClosed):
            pass

    @op
    def _g_write(self, data: BytesLike) -> Op[None]:
        """Type ``data`` into the terminal."""
        yield from self.client._g_send_data({"op": "session.write",
                                             "session": self.session_id},
                                            data, False)

    @op
    def _g_read(self, timeout: Optional[float] = 1.0) -> Op[Optional[bytes]]:
        """New output, waiting up to ``timeout`` seconds for some; None
        when nothing came (or the program exited and all was read)."""
        wait = timeout is not None and timeout > 0
        reply = yield from self.client._g_session_read(
            self.session_id, self.offset, ANY_OUTPUT if wait else None,
            timeout if wait else None)
        return self._consume(reply) or None

    @op
    def _g_read_until(self, pattern: Union[str, bytes],
                      timeout: float = 30.0) -> Op[bytes]:
        """Output up to and including a match of ``pattern`` (a POSIX
        extended regex). Raises :class:`SessionTimeout` (a
        ``TimeoutError``) if no match came; nothing is consumed then."""
        if isinstance(pattern, bytes):
            pattern = pattern.decode("utf-8", "surrogateescape")
        reply = yield from self.client._g_session_read(
            self.session_id, self.offset, pattern, timeout)
        if reply.get("matched"):
            return self._consume(reply)
        data = field_bytes(reply, "data") or b""
        if reply.get("exited"):
            self.exited = True
            raise SessionTimeout("session %s exited before output matched "
                                 "%r" % (self.session_id, pattern), data)
        raise SessionTimeout("no output matching %r within %ss on session "
                             "%s" % (pattern, timeout, self.session_id), data)

    @op
    def _g_run(self, cmd: str,
               timeout: Optional[float] = None) -> Op[CommandResult]:
        """Run one shell command line in the session's shell.

        Returns its output (``stdout``; no echo, no prompt) and exit
        status. Raises :class:`CommandTimeout` with the output so far when
        ``timeout`` passes (the job gets SIGINT)."""
        result = yield from self.client._g_session_run(self.session_id, cmd,
                                                       timeout)
        result.worker = self.worker
        # Skip what the run printed (echo, prompt) for later read()s.
        reply = yield from self.client._g_session_read(
            self.session_id, self.offset, None, None)
        self._consume(reply)
        if result.timed_out:
            raise CommandTimeout("session command timed out after %ss" %
                                 timeout, result)
        return result

    @op
    def _g_resize(self, rows: int, cols: int) -> Op[None]:
        """Set the terminal size (the program gets SIGWINCH)."""
        yield from self._ask("session.resize", rows=rows, cols=cols)

    @op
    def _g_signal(self, sig: Union[str, int] = "INT") -> Op[None]:
        """Send a signal to the session's process group."""
        yield from self._ask("signal", signal=signal_name(sig))

    @op
    def _g_attach(self, since: Optional[int] = None,
                  readonly: bool = False) -> Op[Any]:
        """Attach this connection: output arrives as ``output`` events
        (and finally ``exit``) on the returned :class:`Subscription`.

        The bytes come as raw payloads (no JSON escaping); a server that
        does not know ``raw`` sends them in JSON, and the events are the
        same."""
        sub = self.client._Subscription(self.client,
                                        session_filter(self.session_id))
        req: Dict[str, Any] = {"op": "session.attach",
                               "session": self.session_id, "raw": True}
        if since is not None:
            req["since"] = since
        if readonly:
            req["readonly"] = True
        yield from sub._g_start(req)
        return sub

    @op
    def _g_detach(self) -> Op[None]:
        """Stop this connection's ``output`` events."""
        yield from self._ask("session.detach")

    @op
    def _g_info(self) -> Op[Optional[SessionInfo]]:
        """This session's entry of ``session.list``."""
        for s in (yield from self.client._g_list_sessions()):
            if s.session == self.session_id:
                return s
        return None

    def _g_interact(self) -> Op[None]:
        """Join the session to this terminal: what is typed goes to it,
        what it prints comes here, until Ctrl+D (not sent) or its exit;
        then close it."""
        fd = sys.stdin.fileno()
        out = sys.stdout.buffer
        sub = yield from self._g_attach(since=0)
        try:
            with _raw_terminal(fd):
                while True:
                    if select.select([fd], [], [], 0)[0]:
                        typed = os.read(fd, 4096)
                        keep = typed.split(b"\x04", 1)[0]
                        if keep:
                            yield from self._g_write(keep)
                        if keep != typed or not typed:
                            break
                    ev = yield from sub._g_get(0.05)
                    if ev is not None and ev.type == "exit":
                        break
                    if ev is not None and ev.data:
                        out.write(ev.data)
                        out.flush()
        finally:
            sub.close()
        yield from self._g_exit()

    @op
    def _g_close(self, signal: Union[str, int, None] = None
                 ) -> Op[Optional[int]]:
        """End the session (``HUP`` unless ``signal``); return its exit
        code (None if it died by a signal)."""
        reply = yield from self._ask(
            "session.close",
            signal=signal_name(signal) if signal is not None else None)
        self.exited = True
        code = reply.get("exit_code")
        return code if isinstance(code, int) else None


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    """This terminal in raw mode (keys go through as they are typed, Ctrl+C
    included; what was typed ahead is kept), restored after; nothing to
    do when ``fd`` is no terminal."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSADRAIN)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class HandleOps(Facade):
    """A command started with ``yield_after`` (:meth:`Client.spawn`).

    ``handle`` is None when the command had already finished by then
    (``result`` is then set)."""

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

    def _live_handle(self) -> str:
        if self.handle is None:
            raise HandleNotFound("command has already finished")
        return self.handle

    @op
    def _g_read(self, timeout: Optional[float] = None,
                until: Optional[str] = None) -> Op[ReadResult]:
        """Output since the last read; waits up to ``timeout``."""
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

    @op
    def _g_write(self, data: Optional[BytesLike] = None,
                 eof: bool = False) -> Op[None]:
        """Write to its stdin (needs ``stdin_open``)."""
        yield from self.client._g_write(self._live_handle(), data, eof)

    @op
    def _g_signal(self, sig: Union[str, int] = "TERM") -> Op[None]:
        """Signal its process group."""
        yield from self.client._g_signal(self._live_handle(), sig)

    @op
    def _g_wait(self, timeout: Optional[float] = None) -> Op[CommandResult]:
        """Read until it ends; return the result with all its output."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            step = 30.0
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    raise TimeoutError("handle %s still running after %ss" %
                                       (self.handle, timeout))
            yield from self._g_read(step)
        assert self.result is not None
        if self.result.timed_out:
            raise CommandTimeout("command timed out on %s" % self.worker,
                                 self.result)
        return self.result


class StreamOps(Facade):
    """A streaming exec (``stream: true``): iterate it for events.

    Yields :class:`Event` objects: ``started`` (with ``handle``),
    ``stdout``/``stderr`` (``data`` is bytes), and ``result`` per worker
    (``result`` is a :class:`CommandResult` without the output, which
    came as events). After iteration, ``results`` maps worker ids to
    results (``result`` is the single one for a one-worker exec)."""

    def __init__(self, client: Any, request: Dict[str, Any]) -> None:
        self.client = client
        self.request = request
        self.single = "worker" in request
        self.handles: Dict[str, str] = {}
        self.pids: Dict[str, int] = {}
        self.results: Dict[str, CommandResult] = {}
        self.done = False
        self._backlog: List[Dict[str, Any]] = []
        self._pending: Optional[Pending] = None

    @property
    def handle(self) -> Optional[str]:
        """The handle of a one-worker exec (None until ``started``)."""
        return next(iter(self.handles.values()), None)

    @property
    def result(self) -> Optional[CommandResult]:
        """The result of a one-worker exec once it ended."""
        return next(iter(self.results.values()), None)

    def _g_begin(self) -> Op[Any]:
        """Send the request, once; return the stream."""
        if self._pending is None:
            self._pending = yield Send(Request(self.request))
        return self

    def _g_recv(self, timeout: Optional[float]) -> Op[Dict[str, Any]]:
        """The next message from the server."""
        yield from self._g_begin()
        assert self._pending is not None
        msg = yield Recv(self._pending.queue, timeout)
        if msg is None:
            raise TimeoutError("no event within %ss" % timeout)
        if msg is EOF:
            raise self.client._mux.closed_error()
        if msg.get("event") == "started":
            w = str(msg.get("worker") or self.request.get("worker") or "")
            if isinstance(msg.get("handle"), str):
                self.handles[w] = msg["handle"]
            if isinstance(msg.get("pid"), int):
                self.pids[w] = msg["pid"]
        return msg

    def _g_next(self, timeout: Optional[float]) -> Op[Optional[Event]]:
        """The next event, or None for a final reply that is none."""
        if self._backlog:
            msg = self._backlog.pop(0)
        else:
            msg = yield from self._g_recv(timeout)
        return self._event(msg)

    def _event(self, msg: Dict[str, Any]) -> Optional[Event]:
        if not is_final(msg):
            ev = Event.from_json(msg)
            if ev.worker is None and self.single:
                ev.worker = self.request.get("worker")
            if ev.type == "result" and ev.result is not None:
                self.results[str(ev.worker)] = ev.result
            return ev
        self.done = True
        if msg["ok"] is not True:
            raise error_from_reply(msg, self.request)
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

    @op
    def _g_wait_started(self, timeout: Optional[float] = 30.0) -> Op[str]:
        """Wait for the ``started`` event; return the handle."""
        while not self.handles:
            if self.done:
                raise HandleNotFound("command ended before it started")
            msg = yield from self._g_recv(timeout)
            self._backlog.append(msg)
            if is_final(msg):
                break
        if not self.handles:
            final = self._backlog[-1] if self._backlog else {}
            if final.get("ok") is False:
                raise error_from_reply(final, self.request)
            raise HandleNotFound("command ended before it started")
        return self.handle or ""

    @iter_op
    def _g_events(self, timeout: Optional[float] = None) -> Op[None]:
        """Yield events; ``timeout`` bounds the wait for each one."""
        while not self.done:
            ev = yield from self._g_next(timeout)
            if ev is not None:
                yield ev

    @op
    def _g_wait(self, timeout: Optional[float] = None) -> Op[Any]:
        """Drain the stream; return the result with the collected output
        (a dict worker -> result for a broadcast)."""
        out: Dict[str, bytearray] = {}
        err: Dict[str, bytearray] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            left = None if deadline is None else \
                max(0.0, deadline - time.monotonic())
            try:
                ev = yield from self._g_next(left)
            except TimeoutError:
                raise TimeoutError("stream still running after %ss" %
                                   timeout) from None
            if ev is not None and ev.type in ("stdout", "stderr"):
                dest = out if ev.type == "stdout" else err
                dest.setdefault(str(ev.worker), bytearray()).extend(
                    ev.data or b"")
        full: Dict[str, CommandResult] = {}
        for w, r in self.results.items():
            if r.error is None:
                r = CommandResult.from_json(r.raw, bytes(out.get(w, b"")),
                                            bytes(err.get(w, b"")))
                r.worker = r.worker or w
            full[w] = r
        self.results = full
        return self.result if self.single else full

    @op
    def _g_write(self, data: Optional[BytesLike] = None,
                 eof: bool = False) -> Op[None]:
        """Write to the command's stdin (needs ``stdin_open``)."""
        handle = yield from self._g_wait_started()
        yield from self.client._g_write(handle, data, eof)

    @op
    def _g_close_stdin(self) -> Op[None]:
        """Close the command's stdin (EOF)."""
        yield from self._g_write(None, eof=True)

    @op
    def _g_signal(self, sig: Union[str, int] = "TERM") -> Op[None]:
        """Signal the command (every worker's, for a broadcast)."""
        yield from self._g_wait_started()
        for h in list(self.handles.values()):
            yield from self.client._g_signal(h, sig)

    def close(self) -> None:
        """Stop receiving this stream's events (the command runs on)."""
        self.done = True
        if self._pending is not None:
            self.client._mux.forget(self._pending.rid)


class SubscriptionOps(Facade):
    """Worker/session state events (from :meth:`Client.subscribe`) or a
    session's attached output (from :meth:`Session.attach`).

    Iterate it for :class:`Event` objects, or call :meth:`get`."""

    def __init__(self, client: Any,
                 accept: Callable[[Mapping[str, Any]], bool]) -> None:
        self.client = client
        self._listener = client._mux.listener(accept)
        self._rid: Optional[int] = None
        self._stash: List[Dict[str, Any]] = []
        self.closed = False

    def _g_start(self, request: Dict[str, Any]) -> Op[Dict[str, Any]]:
        # Messages with our id and unsolicited ones that we accept share
        # the listener's queue; events before the reply are kept.
        pending = yield Send(Request(request), persistent=True,
                             listener=self._listener)
        self._rid = pending.rid
        while True:
            msg = yield Recv(self._listener.queue, None)
            if msg is EOF:
                raise self.client._mux.closed_error()
            if is_final(msg) and msg.get("id") == self._rid:
                break
            self._stash.append(msg)
        if msg["ok"] is not True:
            self.close()
            raise error_from_reply(msg, request)
        return msg

    @op
    def _g_get(self, timeout: Optional[float] = None) -> Op[Optional[Event]]:
        """The next event, or None if none came within ``timeout``."""
        if self._stash:
            return Event.from_json(self._stash.pop(0))
        msg = yield Recv(self._listener.queue, timeout)
        if msg is None:
            return None
        if msg is EOF:
            self._listener.queue.put_nowait(EOF)
            raise self.client._mux.closed_error()
        return Event.from_json(msg)

    @iter_op
    def _g_events(self) -> Op[None]:
        """Yield events until :meth:`close`."""
        while not self.closed:
            ev = yield from self._g_get()
            if ev is not None:
                yield ev

    def close(self) -> None:
        """Stop delivering events to this object."""
        self.closed = True
        self.client._mux.forget(self._rid, self._listener)


class WorkspaceOps(Facade):
    """An isolated workspace on a worker (from
    :meth:`Client.create_workspace`): what runs in it sees its own
    processes, writes its own folders (``/workspace``, ``/tmp``) and
    stays within its limits. Leaving a ``with`` block destroys it."""

    def __init__(self, client: Any, worker: str, name: str) -> None:
        self.client = client
        self.worker = worker
        self.name = name

    def __repr__(self) -> str:
        return "<%s %s on %s>" % (type(self).__name__, self.name,
                                  self.worker)

    @op
    def _g_exec(self, command: Any, timeout: Optional[float] = 300,
                env: Optional[Mapping[str, str]] = None,
                cwd: Optional[str] = None, **options: Any
                ) -> Op[CommandResult]:
        """Run a command in the workspace (as :meth:`Client.exec`)."""
        options["workspace"] = self.name
        return (yield from self.client._g_exec(self.worker, command, timeout,
                                               env, cwd, **options))

    @op
    def _g_new_session(self, **options: Any) -> Op[Any]:
        """Open a PTY session in the workspace (as
        :meth:`Client.new_session`)."""
        options["workspace"] = self.name
        return (yield from self.client._g_new_session(self.worker,
                                                      **options))

    @op
    def _g_put(self, src: Any, remote_path: str, mode: Optional[int] = None,
               mkdir: bool = False) -> Op[Any]:
        """Copy a local file to a path as the workspace sees it."""
        return (yield from self.client._g_put(self.worker, src, remote_path,
                                              mode, mkdir, self.name))

    @op
    def _g_get(self, remote_path: str, dst: Any) -> Op[Any]:
        """Copy a file of the workspace to a local path or file object."""
        return (yield from self.client._g_get(self.worker, remote_path, dst,
                                              workspace=self.name))

    @op
    def _g_stat(self, path: str) -> Op[Any]:
        """Type, size, mode and mtime of a path in the workspace."""
        return (yield from self.client._g_stat(self.worker, path, self.name))

    @op
    def _g_destroy(self, keep: bool = False) -> Op[Dict[str, Any]]:
        """End everything in the workspace and remove it (``keep``: its
        /workspace folder stays on the worker's disk)."""
        return (yield from self.client._g_destroy_workspace(
            self.worker, self.name, keep))

    def _g_exit(self) -> Op[None]:
        """What leaving a ``with`` block does: destroy it."""
        yield from self._g_destroy()

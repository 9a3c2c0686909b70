"""The blocking flavour: :class:`Client` and its objects, on a UNIX socket
with one reader thread.

Every method here is generated from the operations of api.py and
objects.py (see ops.py); this module only moves bytes: it connects, writes
requests, runs the reader that feeds the protocol core (protocol.Mux), and
waits on queues.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from typing import Any, Callable, Iterator, Optional

from .api import ClientOps
from .errors import ConnectionClosed
from .objects import (HandleOps, SessionOps, StreamOps, SubscriptionOps,
                      WorkspaceOps)
from .ops import Op, Open, Ready, Recv, Send, Shut, Sleep, Task, T
from .protocol import Pending


def _blocking(gen_fn: Callable[..., Op[Any]]) -> Callable[..., Any]:
    """The blocking method of an operation."""
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._run(gen_fn(self, *args, **kwargs))
    return method


class _Blocking:
    """The blocking flavour of a class with operations."""

    _wrap_op = staticmethod(_blocking)


class _BlockingWith(_Blocking):
    """... that is also a context manager."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._run(self._g_exit())  # type: ignore[attr-defined]


class Client(_BlockingWith, ClientOps):
    """A connection to a running sandd controller's control socket.

    ``path`` defaults to :func:`default_control_path`. One connection is
    shared by every thread using this object; requests are pipelined and
    replies matched by id. ``request_timeout`` (seconds), when set, bounds
    how long any request may wait for its reply beyond the time the
    operation itself asks for (a command's timeout, a wait's deadline).
    ``retry=True`` sends a request refused with ``rate_limited`` again
    after the server's ``retry_after``; without it :class:`RateLimited`
    is raised, carrying the delay (``.retry_after``).
    """

    def __init__(self, path: Optional[str] = None,
                 request_timeout: Optional[float] = None,
                 connect_timeout: float = 10.0, retry: bool = False) -> None:
        ClientOps.__init__(self, path, request_timeout, queue.Queue, retry)
        self.connect_timeout = connect_timeout
        self._wlock = threading.Lock()       # writes to the socket
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[threading.Thread] = None
        self._run(self._g_connect())

    # -- running operations

    def _run(self, gen: Op[T]) -> T:
        task = Task(gen)
        while not task.done:
            self._step(task)
        return task.result

    def _iterate(self, gen: Op[Any]) -> Iterator[Any]:
        task = Task(gen)
        try:
            while not task.done:
                if task.wants_io:
                    self._step(task)
                else:
                    yield task.step
                    task.send(None)
        finally:
            gen.close()

    def _step(self, task: Task) -> None:
        try:
            value = getattr(self, "_io_" + task.step.verb)(task.step)
        except BaseException as e:
            task.throw(e)
        else:
            task.send(value)

    # -- the I/O the operations ask for

    def _io_ready(self, io: Ready) -> None:
        pass    # connected since __init__

    def _io_open(self, io: Open) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise ConnectionClosed("cannot connect to sandd control socket "
                                   "%s: %s" % (self.path, e.strerror or e))
        sock.settimeout(None)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop,
                                        name="sandd-reader", daemon=True)
        self._reader.start()

    def _io_send(self, io: Send) -> Pending:
        pending = self._mux.open(io.request, io.persistent, io.listener)
        assert self._sock is not None
        with self._mux.sending(pending, self._abort):
            with self._wlock:
                for piece in self._mux.frames(pending, io.request):
                    self._sock.sendall(piece)
        return pending

    @staticmethod
    def _io_recv(io: Recv) -> Any:
        try:
            return io.queue.get(timeout=io.timeout)
        except queue.Empty:
            return None

    @staticmethod
    def _io_sleep(io: Sleep) -> None:
        time.sleep(io.seconds)

    def _io_shut(self, io: Shut) -> None:
        assert self._sock is not None and self._reader is not None
        self._abort()
        self._sock.close()
        if threading.current_thread() is not self._reader:
            self._reader.join(5)

    def _abort(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        except OSError:
            pass

    def _read_loop(self) -> None:
        f = self._sock.makefile("rb")  # type: ignore[union-attr]
        route = self._mux.reader()
        try:
            want = next(route)
            while True:
                want = route.send(f.readline() if want == 0 else f.read(want))
        except (StopIteration, OSError, ValueError):
            pass
        finally:
            self._mux.lost("server closed the control connection")


class Session(_BlockingWith, SessionOps):
    __doc__ = SessionOps.__doc__


class ExecHandle(_Blocking, HandleOps):
    __doc__ = HandleOps.__doc__


class ExecStream(_BlockingWith, StreamOps):
    __doc__ = StreamOps.__doc__

    def __iter__(self) -> Iterator[Any]:
        return self.events()  # type: ignore[attr-defined, no-any-return]


class Subscription(_BlockingWith, SubscriptionOps):
    __doc__ = SubscriptionOps.__doc__

    def __iter__(self) -> Iterator[Any]:
        return self.events()  # type: ignore[attr-defined, no-any-return]


class Workspace(_BlockingWith, WorkspaceOps):
    __doc__ = WorkspaceOps.__doc__


Client._Session = Session
Client._Workspace = Workspace
Client._ExecHandle = ExecHandle
Client._ExecStream = ExecStream
Client._Subscription = Subscription

"""The asyncio flavour: :class:`AsyncClient` and its objects.

The same operations as the blocking client (api.py, objects.py), generated
as coroutines (see ops.py); this module only moves bytes with asyncio
streams and a reader task that feeds the protocol core (protocol.Mux).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncIterator, Callable, Generator, Optional

from .api import ClientOps
from .errors import ConnectionClosed
from .objects import (HandleOps, SessionOps, StreamOps, SubscriptionOps,
                      WorkspaceOps)
from .ops import Op, Open, Recv, Send, Shut, Sleep, Task, T
from .protocol import Pending

#: Line buffer limit of the asyncio reader (replies may be large).
_LINE_LIMIT = 1 << 30


def _coroutine(gen_fn: Callable[..., Op[Any]]) -> Callable[..., Any]:
    """The coroutine method of an operation."""
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._run(gen_fn(self, *args, **kwargs))
    return method


class _Async:
    """The asyncio flavour of a class with operations."""

    _wrap_op = staticmethod(_coroutine)


class _AsyncWith(_Async):
    """... that is also an async context manager."""

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._run(self._g_exit())  # type: ignore[attr-defined]


class AsyncClient(_AsyncWith, ClientOps):
    """The asyncio twin of :class:`Client`: same methods, as coroutines.

    Connects on first use (or ``await client.connect()``); use as
    ``async with AsyncClient() as c: ...``. Streams and subscriptions are
    iterated with ``async for``."""

    def __init__(self, path: Optional[str] = None,
                 request_timeout: Optional[float] = None,
                 retry: bool = False) -> None:
        ClientOps.__init__(self, path, request_timeout, asyncio.Queue, retry)
        self._rstream: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._wlock: Optional[asyncio.Lock] = None
        self._connecting: Optional[asyncio.Lock] = None

    async def connect(self) -> "AsyncClient":
        """Open the connection (done automatically by the first call)."""
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            await self._run(self._g_connect())
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    def exec_stream(self, *args: Any, **kwargs: Any) -> "AsyncExecStream":
        """See :meth:`Client.exec_stream`: the stream starts when it is
        awaited (``s = await c.exec_stream(...)``) or iterated
        (``async for ev in c.exec_stream(...)``)."""
        return self._stream(*args, **kwargs)  # type: ignore[no-any-return]

    # -- running operations

    async def _run(self, gen: Op[T]) -> T:
        task = Task(gen)
        while not task.done:
            await self._step(task)
        return task.result

    async def _iterate(self, gen: Op[Any]) -> AsyncIterator[Any]:
        task = Task(gen)
        try:
            while not task.done:
                if task.wants_io:
                    await self._step(task)
                else:
                    yield task.step
                    task.send(None)
        finally:
            gen.close()

    async def _step(self, task: Task) -> None:
        try:
            value = await getattr(self, "_io_" + task.step.verb)(task.step)
        except BaseException as e:
            task.throw(e)
        else:
            task.send(value)

    # -- the I/O the operations ask for

    async def _io_ready(self, io: Any) -> None:
        if not self._connected:
            await self.connect()

    async def _io_open(self, io: Open) -> None:
        try:
            self._rstream, self._writer = await asyncio.open_unix_connection(
                self.path, limit=_LINE_LIMIT)
        except OSError as e:
            raise ConnectionClosed("cannot connect to sandd control socket "
                                   "%s: %s" % (self.path, e.strerror or e))
        self._wlock = asyncio.Lock()
        self._task = asyncio.get_running_loop().create_task(
            self._read_loop())

    async def _io_send(self, io: Send) -> Pending:
        await self._io_ready(io)
        pending = self._mux.open(io.request, io.persistent, io.listener)
        w = self._writer
        assert w is not None and self._wlock is not None
        with self._mux.sending(pending, self._abort):
            async with self._wlock:
                for piece in self._mux.frames(pending, io.request):
                    w.write(piece)
                    await w.drain()
        return pending

    @staticmethod
    async def _io_recv(io: Recv) -> Any:
        if not io.queue.empty():    # wait_for(..., 0) would not look
            return io.queue.get_nowait()
        try:
            return await asyncio.wait_for(io.queue.get(), io.timeout)
        except asyncio.TimeoutError:
            return None

    @staticmethod
    async def _io_sleep(io: Sleep) -> None:
        await asyncio.sleep(io.seconds)

    async def _io_shut(self, io: Shut) -> None:
        assert self._writer is not None and self._task is not None
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass
        self._task.cancel()
        try:
            await self._task
        except (asyncio.CancelledError, Exception):
            pass

    def _abort(self) -> None:
        self._writer.close()  # type: ignore[union-attr]

    async def _read_loop(self) -> None:
        r = self._rstream
        assert r is not None
        route = self._mux.reader()
        try:
            want = next(route)
            while True:
                want = route.send(await (r.readline() if want == 0
                                         else r.read(want)))
        except (StopIteration, OSError, ValueError):
            pass
        finally:
            self._mux.lost("server closed the control connection")


class AsyncSession(_AsyncWith, SessionOps):
    """The asyncio twin of :class:`Session`."""


class AsyncExecHandle(_Async, HandleOps):
    """The asyncio twin of :class:`ExecHandle`."""


class AsyncExecStream(_AsyncWith, StreamOps):
    """The asyncio twin of :class:`ExecStream` (``async for ev in s``)."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.events()  # type: ignore[attr-defined, no-any-return]

    def __await__(self) -> Generator[Any, None, "AsyncExecStream"]:
        return self._run(self._g_begin()).__await__()


class AsyncSubscription(_AsyncWith, SubscriptionOps):
    """The asyncio twin of :class:`Subscription`."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.events()  # type: ignore[attr-defined, no-any-return]


AsyncClient.exec_stream.__signature__ = inspect.signature(  # type: ignore
    ClientOps._stream)
class AsyncWorkspace(_AsyncWith, WorkspaceOps):
    """The asyncio twin of :class:`Workspace`."""


AsyncClient._Session = AsyncSession
AsyncClient._Workspace = AsyncWorkspace
AsyncClient._ExecHandle = AsyncExecHandle
AsyncClient._ExecStream = AsyncExecStream
AsyncClient._Subscription = AsyncSubscription

"""Operations written once, run by either client.

Every operation of the client (api.py) and of its objects (objects.py) is
a generator that does no I/O: it yields instructions (:class:`Io`) and is
sent back what each one gave, then returns its result. An *iterating*
operation also yields the items its caller iterates over (anything that is
not an :class:`Io`).

A *flavour* runs them: client.py with blocking sockets and threads, aio.py
with asyncio. Its client carries out each :class:`Io` (``_io_<verb>``)
and defines ``_run`` (run an operation to its result) and ``_iterate``
(an iterator, or an async iterator, over an iterating operation's items).
Its mixin names ``_wrap_op``, which makes a method that runs an operation
(a plain method, or an ``async`` one). Every class built on
:class:`OpHost` with a flavour gets, for each generator ``_g_NAME``
marked :func:`op` or :func:`iter_op`, the method ``NAME``. So the
blocking and the asyncio API are the same list of methods, generated from
one source.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, Optional, TypeVar

from .protocol import Listener, Request

T = TypeVar("T")

#: A sans-I/O operation that returns a T.
Op = Generator[Any, Any, T]


class Io:
    """An instruction to the flavour that runs the operation; ``verb``
    names the flavour's ``_io_<verb>`` method that carries it out."""

    verb = ""


class Open(Io):
    """Open the control connection."""

    verb = "open"


class Ready(Io):
    """Make sure the client is connected before a request (the asyncio
    client connects on first use)."""

    verb = "ready"


class Send(Io):
    """Register and write a request (connecting first if need be, see
    :class:`Ready`); gives its :class:`Pending`."""

    verb = "send"

    def __init__(self, request: Request, persistent: bool = False,
                 listener: Optional[Listener] = None) -> None:
        self.request = request
        self.persistent = persistent
        self.listener = listener


class Recv(Io):
    """Take the next message from a queue; gives None if none came
    within ``timeout`` seconds (None: wait as long as it takes)."""

    verb = "recv"

    def __init__(self, queue: Any, timeout: Optional[float]) -> None:
        self.queue = queue
        self.timeout = timeout


class Sleep(Io):
    """Sleep."""

    verb = "sleep"

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.0, seconds)


class Shut(Io):
    """Close the control connection and wait for its reader to end."""

    verb = "shut"


class Task:
    """Steps one operation: ``step`` is what it yielded last (an
    :class:`Io` to carry out, or an item), ``result`` what it returned
    once ``done``."""

    def __init__(self, gen: Op[Any]) -> None:
        self.gen = gen
        self.done = False
        self.result: Any = None
        self.step: Any = None
        self._advance(gen.send, None)

    def _advance(self, resume: Callable[[Any], Any], value: Any) -> None:
        try:
            self.step = resume(value)
        except StopIteration as stop:
            self.done = True
            self.result = stop.value
            self.step = None

    @property
    def wants_io(self) -> bool:
        """True when ``step`` is an instruction, not an item."""
        return isinstance(self.step, Io)

    def send(self, value: Any) -> None:
        """Resume with what the last step gave."""
        self._advance(self.gen.send, value)

    def throw(self, exc: BaseException) -> None:
        """Resume by raising what the last step raised."""
        self._advance(self.gen.throw, exc)


def op(gen_fn: Callable[..., Op[Any]]) -> Callable[..., Op[Any]]:
    """Mark ``_g_NAME`` as the operation behind the method ``NAME``."""
    gen_fn._sandd_op = "op"  # type: ignore[attr-defined]
    return gen_fn


def iter_op(gen_fn: Callable[..., Op[Any]]) -> Callable[..., Op[Any]]:
    """Mark ``_g_NAME`` as the iterating operation behind ``NAME``."""
    gen_fn._sandd_op = "iter"  # type: ignore[attr-defined]
    return gen_fn


def _public(host: type, name: str, gen_fn: Callable[..., Any],
            method: Callable[..., Any]) -> Callable[..., Any]:
    """Dress a generated method as the operation it runs."""
    method.__name__ = name
    method.__qualname__ = "%s.%s" % (host.__qualname__, name)
    method.__doc__ = gen_fn.__doc__
    method.__module__ = host.__module__
    method.__wrapped__ = gen_fn  # type: ignore[attr-defined]
    return method


def _iterating(gen_fn: Callable[..., Op[Any]]) -> Callable[..., Any]:
    """The method of an iterating operation, in either flavour."""
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._iterate(gen_fn(self, *args, **kwargs))
    return method


class OpHost:
    """Base of the classes whose methods are generated from operations.

    When a subclass has a flavour (``_wrap_op`` is set), every marked
    operation that has no method yet gets one; a method written by hand,
    here or in a base class, is kept."""

    _wrap_op: Optional[Callable[..., Any]] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._wrap_op is None:
            return
        for attr in dir(cls):
            gen_fn = getattr(cls, attr)
            kind = getattr(gen_fn, "_sandd_op", None)
            if kind is None or not attr.startswith("_g_"):
                continue
            name = attr[3:]
            current = getattr(cls, name, None)
            made = getattr(current, "__wrapped__", None)
            if current is not None and (made is None or made is gen_fn):
                continue        # written by hand, or made already
            wrap = cls._wrap_op if kind == "op" else _iterating
            setattr(cls, name, _public(cls, name, gen_fn, wrap(gen_fn)))

    def _run(self, gen: Op[T]) -> Any:
        """Run an operation (a flavour's client defines this)."""
        raise NotImplementedError

    def _iterate(self, gen: Op[Any]) -> Any:
        """Iterate an operation (a flavour's client defines this)."""
        raise NotImplementedError


class Facade(OpHost):
    """An object of a client (a session, a stream, ...): its operations
    run on that client."""

    client: Any

    def _run(self, gen: Op[T]) -> Any:
        return self.client._run(gen)

    def _iterate(self, gen: Op[Any]) -> Any:
        return self.client._iterate(gen)

    def _g_exit(self) -> Op[None]:
        """What leaving a ``with`` block does: close."""
        self.close()  # type: ignore[attr-defined]
        return
        yield

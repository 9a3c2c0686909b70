"""The control protocol without I/O: how requests and replies are framed,
how byte fields are encoded, and which waiting request or listener each
message the server sends belongs to.

The protocol is sandd-control(7) (man/sandd-control.7). Everything here
is shared by the blocking client (client.py) and the asyncio one (aio.py);
they only move the bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import itertools
import json
import os
import signal as _signal
import stat
import tempfile
import threading
from typing import (IO, Any, Callable, Dict, Generator, Iterator, List,
                    Mapping, Optional, Sequence, Tuple, Union)

from .errors import ConnectionClosed, _ShortPayload

#: The control protocol version this module speaks.
PROTOCOL_VERSION = 1

#: Chunk size for streaming file payloads.
CHUNK = 256 * 1024

Command = Union[str, Sequence[str]]
BytesLike = Union[bytes, bytearray, memoryview, str]
PathOrFile = Union[str, "os.PathLike[str]", IO[bytes]]

#: Matches any new output (POSIX ERE); used to block until data arrives.
ANY_OUTPUT = "(.|\n)"


def default_control_path() -> str:
    """The control socket path a client uses when given none.

    ``$SANDD_CONTROL``, else ``/run/sandd/control.sock`` for root, else
    ``$XDG_RUNTIME_DIR/sandd/control.sock``, else
    ``/tmp/sandd-$UID/control.sock``. A built-in default (not
    ``$SANDD_CONTROL``) is used only if its folder is safe: see
    :func:`check_control_dir`."""
    env = os.environ.get("SANDD_CONTROL")
    if env:
        return env
    uid = os.geteuid()
    if uid == 0:
        path = "/run/sandd/control.sock"
    elif os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        path = os.path.join(os.environ["XDG_RUNTIME_DIR"], "sandd",
                            "control.sock")
    else:
        path = "/tmp/sandd-%d/control.sock" % uid
    check_control_dir(path)
    return path


def check_control_dir(path: str) -> None:
    """Raise PermissionError unless the folder of the control socket at
    path is a folder (not a link) owned by this user or root that nobody
    else may write into: another local user who made ``/tmp/sandd-UID``
    first could otherwise stand in for the controller."""
    d = os.path.dirname(path)
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        return      # nothing there: connecting fails plainly
    import stat as _stat
    if not _stat.S_ISDIR(st.st_mode) or \
            st.st_uid not in (os.geteuid(), 0) or st.st_mode & 0o022:
        raise PermissionError(
            "control socket folder %s is not this user's alone (owner %d, "
            "mode %o): not using it; pass the path explicitly" %
            (d, st.st_uid, st.st_mode & 0o777))


# --------------------------------------------------------------- fields

def field_bytes(msg: Mapping[str, Any], name: str) -> Optional[bytes]:
    """Bytes of a text/bytes field (``name`` or ``name_b64``), or None."""
    v = msg.get(name)
    if isinstance(v, str):
        return v.encode("utf-8", "surrogatepass")
    v = msg.get(name + "_b64")
    if isinstance(v, str):
        return base64.b64decode(v)
    return None


def set_bytes(req: Dict[str, Any], name: str, data: BytesLike) -> None:
    """Put bytes into a request as ``name`` (UTF-8) or ``name_b64``."""
    if isinstance(data, str):
        req[name] = data
        return
    raw = bytes(data)
    try:
        req[name] = raw.decode("utf-8")
    except UnicodeDecodeError:
        req[name + "_b64"] = base64.b64encode(raw).decode("ascii")


def text(data: Optional[bytes]) -> str:
    """Bytes as text, invalid UTF-8 replaced."""
    return (data or b"").decode("utf-8", "replace")


def signal_name(sig: Union[str, int]) -> str:
    """``"TERM"`` from ``"SIGTERM"``, ``"term"``, 15 or signal.SIGTERM."""
    if isinstance(sig, int):
        return _signal.Signals(sig).name[3:]
    s = str(sig).upper()
    return s[3:] if s.startswith("SIG") else s


def is_final(msg: Mapping[str, Any]) -> bool:
    """True for a request's final message: it has ``ok`` and is not an
    event (a broadcast's per-worker ``result`` events carry ``ok`` too)."""
    return "ok" in msg and "event" not in msg


def strip(reply: Mapping[str, Any]) -> Dict[str, Any]:
    """A reply without its ``id`` and ``ok``."""
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


# ------------------------------------------------------------- requests

def put_fields(req: Dict[str, Any], fields: Mapping[str, Any]) -> None:
    """Copy the fields that are not None into a request."""
    for name, value in fields.items():
        if value is not None:
            req[name] = value


def command_fields(req: Dict[str, Any], command: Optional[Command]) -> None:
    """``cmd`` for a shell line, ``argv`` for a list."""
    if isinstance(command, str):
        req["cmd"] = command
    elif command is not None:
        req["argv"] = [os.fspath(a) for a in command]


def exec_request(command: Command, timeout: Optional[float],
                 env: Optional[Mapping[str, str]], cwd: Optional[str],
                 options: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of an ``exec`` request common to every form."""
    req: Dict[str, Any] = {"op": "exec"}
    command_fields(req, command)
    if timeout is not None:
        req["timeout"] = timeout
    if env:
        req["env"] = {str(k): str(v) for k, v in env.items()}
    if cwd is not None:
        req["cwd"] = os.fspath(cwd)
    options = dict(options)
    stdin = options.pop("stdin", None)
    if stdin is not None:
        set_bytes(req, "stdin", stdin)
    put_fields(req, options)
    return req


def set_target(req: Dict[str, Any],
               target: Union[str, Mapping[str, str], Sequence[str], None]
               ) -> None:
    """``worker`` for an id, ``labels`` for a dict (or None: all),
    ``workers`` for a list of ids."""
    if isinstance(target, str):
        req["worker"] = target
    elif target is None or isinstance(target, Mapping):
        req["labels"] = dict(target or {})
    else:
        req["workers"] = list(target)


def expect(timeout: Optional[float], grace: float = 2.0) -> Optional[float]:
    """How long an op that runs ``timeout`` seconds may take to answer."""
    return None if timeout is None else float(timeout) + grace


def encode_line(obj: Mapping[str, Any]) -> bytes:
    """One request line."""
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode("ascii")


def topic_filter(topics: Sequence[str]) -> Callable[[Mapping[str, Any]],
                                                    bool]:
    """Accepts the events of the subscribed topics."""
    want = set()
    if "workers" in topics:
        want.add("worker")
    if "sessions" in topics:
        want.add("session")

    def accept(msg: Mapping[str, Any]) -> bool:
        return msg.get("event") in want
    return accept


def session_filter(session_id: str) -> Callable[[Mapping[str, Any]], bool]:
    """Accepts an attached session's ``output`` and ``exit`` events."""
    def accept(msg: Mapping[str, Any]) -> bool:
        return msg.get("session") == session_id and \
            msg.get("event") in ("output", "exit")
    return accept


# ---------------------------------------------------------- raw payloads

class Payload:
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
                raise _ShortPayload("local file shrank during transfer "
                                    "(%d bytes missing)" % left)
            piece = bytes(piece)
            self.hasher.update(piece)
            left -= len(piece)
            yield piece


def open_source(src: Union[PathOrFile, BytesLike]
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
        if stat.S_ISREG(st.st_mode):
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


class Sink:
    """Receives a ``get``'s raw payloads: writes and hashes them."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def __call__(self, piece: bytes) -> None:
        self.out.write(piece)
        self.hasher.update(piece)
        self.size += len(piece)


# ------------------------------------------------- one control connection

#: Put in a queue when the connection is gone.
EOF = object()


class Request:
    """A request to send: its fields, how long the op itself may take
    (``expect``, seconds), a raw payload to send after it, a sink for raw
    payloads that come back."""

    def __init__(self, fields: Dict[str, Any], expect: Optional[float] = None,
                 payload: Optional[Payload] = None,
                 sink: Optional[Callable[[bytes], None]] = None) -> None:
        self.fields = fields
        self.expect = expect
        self.payload = payload
        self.sink = sink


class Listener:
    """Takes the messages of no request that ``accept`` wants."""

    def __init__(self, accept: Callable[[Mapping[str, Any]], bool],
                 queue: Any) -> None:
        self.accept = accept
        self.queue = queue


class Pending:
    """A request sent and waiting for its messages (in ``queue``).

    A ``persistent`` one stays after its final reply (a subscription)."""

    __slots__ = ("rid", "fields", "queue", "sink", "sink_error",
                 "persistent")

    def __init__(self, rid: int, fields: Dict[str, Any], queue: Any,
                 sink: Optional[Callable[[bytes], None]],
                 persistent: bool) -> None:
        self.rid = rid
        self.fields = fields
        self.queue = queue
        self.sink = sink
        self.sink_error: Optional[BaseException] = None
        self.persistent = persistent


class Mux:
    """The state of one control connection, without its I/O.

    Hands out request ids, keeps the requests waiting for messages and the
    listeners for messages of no request, and routes what the server sends
    (:meth:`reader`). ``new_queue`` makes the queues messages are put in:
    ``queue.Queue`` for the blocking client, ``asyncio.Queue`` for the
    asyncio one; only ``put_nowait`` is called on them."""

    def __init__(self, new_queue: Callable[[], Any]) -> None:
        self.new_queue = new_queue
        self.lock = threading.Lock()     # ids, pending, listeners
        self._ids = itertools.count(1)
        self._pending: Dict[int, Pending] = {}
        self._listeners: List[Listener] = []
        #: No more requests: the connection is closed or closing.
        self.closed = False
        #: close() was called.
        self.shut = False
        self.reason: Optional[str] = None

    def closed_error(self) -> ConnectionClosed:
        """The error for a request on a closed connection."""
        return ConnectionClosed(self.reason or "connection closed")

    def listener(self, accept: Callable[[Mapping[str, Any]], bool]
                 ) -> Listener:
        """A listener with a queue of this connection's kind."""
        return Listener(accept, self.new_queue())

    def open(self, req: Request, persistent: bool = False,
             listener: Optional[Listener] = None) -> Pending:
        """Give a request its id and register it (and its listener)."""
        with self.lock:
            if self.closed:
                raise self.closed_error()
            rid = next(self._ids)
            fields = dict(req.fields)
            fields["id"] = rid
            queue = listener.queue if listener else self.new_queue()
            pending = Pending(rid, fields, queue, req.sink, persistent)
            self._pending[rid] = pending
            if listener is not None:
                self._listeners.append(listener)
        return pending

    def forget(self, rid: Optional[int],
               listener: Optional[Listener] = None) -> None:
        """Stop routing messages to a request (and its listener)."""
        with self.lock:
            self._pending.pop(rid, None)  # type: ignore[arg-type]
            if listener is not None and listener in self._listeners:
                self._listeners.remove(listener)

    @staticmethod
    def frames(pending: Pending, req: Request) -> Iterator[bytes]:
        """What to write for a request: its line, then its raw payload."""
        yield encode_line(pending.fields)
        if req.payload is not None:
            yield from req.payload.chunks()

    @contextlib.contextmanager
    def sending(self, pending: Pending,
                abort: Callable[[], None]) -> Iterator[None]:
        """Around writing a request's frames: a failed write forgets the
        request; a payload that ran short leaves the server waiting for
        bytes that never come, so ``abort`` ends the connection."""
        try:
            yield
        except _ShortPayload:
            self.reason = "local file shrank during put"
            self.closed = True
            abort()
            self.forget(pending.rid)
            raise
        except OSError as e:
            self.forget(pending.rid)
            raise ConnectionClosed("control connection failed: %s" % e)
        except BaseException:
            self.forget(pending.rid)
            raise

    def reader(self) -> Generator[int, bytes, None]:
        """Route everything the server sends.

        Yields how much to read next, 0 for a line or N for up to N bytes
        of a raw payload, and is sent what was read (``b""`` at the end).
        The caller calls :meth:`lost` once this returns or its I/O fails.
        """
        while True:
            line = yield 0
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            rid = msg.get("id")
            with self.lock:
                pending = self._pending.get(rid) \
                    if isinstance(rid, int) else None
            n = msg.get("bytes")
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                whole = yield from self._payload(n, msg, pending)
                if not whole:
                    return
            self._deliver(msg, pending)

    def _payload(self, n: int, msg: Dict[str, Any],
                 pending: Optional[Pending]) -> Generator[int, bytes, bool]:
        """Read a message's raw payload into its request's sink, or keep
        it in the message as ``_payload``; False if the connection ended
        first."""
        sink = pending.sink if pending is not None else None
        keep = bytearray() if sink is None else None
        left = n
        while left > 0:
            piece = yield min(CHUNK, left)
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

    def _deliver(self, msg: Dict[str, Any],
                 pending: Optional[Pending]) -> None:
        if pending is not None:
            if is_final(msg) and not pending.persistent:
                self.forget(pending.rid)
            pending.queue.put_nowait(msg)
            return
        with self.lock:
            listeners = list(self._listeners)
        for li in listeners:
            try:
                if li.accept(msg):
                    li.queue.put_nowait(msg)
            except Exception:
                pass

    def lost(self, reason: str) -> None:
        """The connection is gone: every waiter gets :data:`EOF`."""
        self.closed = True
        if self.reason is None:
            self.reason = reason
        with self.lock:
            pending = list(self._pending.values())
            self._pending.clear()
            listeners = list(self._listeners)
        for p in pending:
            p.queue.put_nowait(EOF)
        for li in listeners:
            li.queue.put_nowait(EOF)

"""A TCP proxy on 127.0.0.1 that injects network faults (stdlib only).

Put it between a worker and the controller and break the link at will:

    p = FaultProxy(target_port)        # listens on 127.0.0.1:p.port
    worker --server-url ws://127.0.0.1:{p.port}/ws   (or p.url)
    p.reset()                # RST every current connection (SO_LINGER 0)
    p.blackhole(True)        # forward nothing either way, keep sockets open
    p.blackhole(True, new=False)   # only the connections open right now
    p.blackhole(False)       # forward again (what was held goes on)
    p.throttle(20000)        # at most this many bytes/s per direction
    p.throttle(None)
    p.refuse(True)           # new connections are reset at once
    p.close()                # stop; every connection is reset

A blackhole models a silent partition: no byte, FIN or RST crosses it,
and nothing is lost either (like TCP retransmitting across an outage);
when it is lifted, what the peers wrote meanwhile is delivered, and a
peer that gave up meanwhile shows up as EOF or RST on the other side.
Connections accepted while a blackhole is on (with new=True) are held
too: the worker's new handshake hangs as it would on a dead network.

Counters: accepted (connections taken), refused, resets, bytes_up
(toward the target), bytes_down; active() is the number of open
connection pairs. Everything runs on one thread with a selector; the
control methods are synchronous (they return once the loop applied them).
"""

import selectors
import socket
import struct
import threading
import time

_BUF = 256 * 1024       # bytes held per direction before reading pauses


def _rst_close(s):
    """Close s so that the peer gets a RST."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class _Dir:
    """One direction of a connection pair: src -> dst."""

    def __init__(self, src, dst, up):
        self.src = src
        self.dst = dst
        self.up = up            # toward the target
        self.buf = bytearray()
        self.eof = False        # src said EOF
        self.shut = False       # dst was shut down for writing
        self.tokens = 0.0
        self.stamp = time.monotonic()


class _Conn:
    def __init__(self, a, b, held):
        self.a = a              # the client (worker) side
        self.b = b              # the target (controller) side
        self.held = held
        self.dirs = (_Dir(a, b, True), _Dir(b, a, False))
        self.dead = False


class FaultProxy:
    """See the module documentation."""

    def __init__(self, target_port, target_host="127.0.0.1", scheme="ws"):
        self.target = (target_host, target_port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(512)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.url = "%s://127.0.0.1:%d/ws" % (scheme, self.port)
        self.accepted = 0
        self.refused = 0
        self.resets = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self._conns = []
        self._refusing = False
        self._hold_new = False
        self._rate = None
        self._closed = False
        self._lock = threading.Lock()
        self._calls = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="faultproxy:%d" % self.port)
        self._thread.start()

    # ------------------------------------------------------------ control

    def _call(self, fn, timeout=10):
        """Run fn() on the loop thread; wait until it ran."""
        if self._closed or not self._thread.is_alive():
            return None
        done = threading.Event()
        box = []

        def run():
            try:
                box.append(fn())
            finally:
                done.set()
        with self._lock:
            self._calls.append(run)
        self._wake()
        if not done.wait(timeout):
            raise RuntimeError("fault proxy loop did not answer")
        return box[0] if box else None

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def reset(self):
        """Close every current connection with RST on both sides."""
        def fn():
            n = 0
            for c in list(self._conns):
                self._kill(c, rst=True)
                n += 1
            self.resets += n
            return n
        return self._call(fn)

    def blackhole(self, on=True, new=True):
        """Stop (or resume) forwarding, silently, both ways.

        on=True holds every current connection, and with new=True also
        the ones accepted from now on. on=False releases all of them."""
        def fn():
            for c in self._conns:
                c.held = on
            self._hold_new = on and new
        self._call(fn)

    def throttle(self, bytes_per_sec=None):
        """Limit each direction of each connection (None: no limit)."""
        def fn():
            self._rate = float(bytes_per_sec) if bytes_per_sec else None
            now = time.monotonic()
            for c in self._conns:
                for d in c.dirs:
                    d.tokens = 0.0
                    d.stamp = now
        self._call(fn)

    def refuse(self, on=True):
        """While on, new connections are reset as soon as accepted."""
        def fn():
            self._refusing = on
        self._call(fn)

    def active(self):
        """Open connection pairs."""
        return self._call(lambda: len(self._conns)) or 0

    def close(self):
        """Stop the proxy; every connection is reset."""
        if self._closed:
            return

        def fn():
            for c in list(self._conns):
                self._kill(c, rst=True)
            self._closed = True
        try:
            self._call(fn)
        except RuntimeError:
            self._closed = True
        self._thread.join(5)
        for s in (self.lsock, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # ------------------------------------------------------------ loop

    def _kill(self, c, rst):
        if c.dead:
            return
        c.dead = True
        for s in (c.a, c.b):
            if rst:
                _rst_close(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass
        if c in self._conns:
            self._conns.remove(c)

    def _accept(self):
        while True:
            try:
                a, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if self._refusing:
                self.refused += 1
                _rst_close(a)
                continue
            try:
                b = socket.create_connection(self.target, timeout=3)
            except OSError:
                # The target is down: the client sees its link die.
                self.refused += 1
                _rst_close(a)
                continue
            for s in (a, b):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            self._conns.append(_Conn(a, b, self._hold_new))

    def _refill(self, d, now):
        if self._rate is None:
            return
        d.tokens = min(d.tokens + (now - d.stamp) * self._rate,
                       max(self._rate / 10.0, 1024.0))
        d.stamp = now

    def _loop(self):
        sel = selectors.DefaultSelector()
        while not self._closed:
            with self._lock:
                calls, self._calls = self._calls, []
            for fn in calls:
                fn()
            if self._closed:
                break
            now = time.monotonic()
            want = {}           # socket -> (events, [(dir, kind)])
            starved = False

            def add(s, ev, what):
                e, lst = want.get(s, (0, []))
                want[s] = (e | ev, lst + [what])
            add(self._wake_r, selectors.EVENT_READ, ("wake", None))
            add(self.lsock, selectors.EVENT_READ, ("accept", None))
            for c in self._conns:
                if c.held:
                    continue
                for d in c.dirs:
                    self._refill(d, now)
                    if not d.eof and len(d.buf) < _BUF:
                        if self._rate is not None and d.tokens < 1:
                            starved = True
                        else:
                            add(d.src, selectors.EVENT_READ, ("read", (c, d)))
                    if d.buf:
                        add(d.dst, selectors.EVENT_WRITE, ("write", (c, d)))
            for s, (ev, lst) in want.items():
                try:
                    sel.register(s, ev, lst)
                except (ValueError, OSError):
                    pass
            try:
                ready = sel.select(0.02 if starved else 1.0)
            finally:
                for s in list(want):
                    try:
                        sel.unregister(s)
                    except (KeyError, ValueError, OSError):
                        pass
            for key, mask in ready:
                for kind, arg in key.data:
                    if kind == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                    elif kind == "accept":
                        self._accept()
                    elif kind == "read" and mask & selectors.EVENT_READ:
                        self._do_read(*arg)
                    elif kind == "write" and mask & selectors.EVENT_WRITE:
                        self._do_write(*arg)
        sel.close()

    def _do_read(self, c, d):
        if c.dead:
            return
        n = _BUF - len(d.buf)
        if self._rate is not None:
            n = min(n, int(d.tokens))
        if n <= 0:
            return
        try:
            data = d.src.recv(n)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # The peer reset: pass the RST on.
            self._kill(c, rst=True)
            return
        if not data:
            d.eof = True
            self._maybe_shut(c, d)
            return
        if self._rate is not None:
            d.tokens -= len(data)
        d.buf += data
        self._do_write(c, d)

    def _do_write(self, c, d):
        if c.dead or not d.buf:
            return
        try:
            n = d.dst.send(d.buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._kill(c, rst=True)
            return
        del d.buf[:n]
        if d.up:
            self.bytes_up += n
        else:
            self.bytes_down += n
        self._maybe_shut(c, d)

    def _maybe_shut(self, c, d):
        if d.eof and not d.buf and not d.shut:
            d.shut = True
            try:
                d.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if all(x.shut for x in c.dirs):
            self._kill(c, rst=False)

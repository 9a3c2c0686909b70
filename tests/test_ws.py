"""The controller's WebSocket layer: RFC 6455 framing as the server sees a
worker, the Sandd-Frames negotiation, and the close codes of bad peers.

Each test talks to a real `sandd serve` through a raw client (WS below)
that can send any frame, legal or not."""

import base64
import collections
import contextlib
import hashlib
import json
import os
import socket
import struct
import time

import harness as h

# The largest message the controller takes: a wire chunk, its header, and
# 64 KiB of slack (WIRE_MAX_MSG).
LIMIT = 256 * 1024 + 16 + 64 * 1024

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Frame = collections.namedtuple("Frame", "fin rsv opcode payload")


# ------------------------------------------------------------ the client

def _masked(payload, key):
    """payload XOR the repeated 4-byte key."""
    n = len(payload)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")
    return x.to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """Bytes of one frame; length, if given, is what the header claims."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _masked(payload, key)


def fragments(opcode, payload, cuts, mask=True):
    """payload as one message split at the offsets in cuts."""
    bounds = [0] + list(cuts) + [len(payload)]
    out = b""
    for i in range(len(bounds) - 1):
        out += frame(opcode if i == 0 else CONT,
                     payload[bounds[i]:bounds[i + 1]],
                     fin=i == len(bounds) - 2, mask=mask)
    return out


def close_payload(code, reason=b""):
    """The payload of a close frame."""
    return struct.pack(">H", code) + reason


def hello_body(wid, labels=None):
    """A worker's hello message (UTF-8 JSON) for id wid."""
    return json.dumps({"t": "hello", "proto": 1, "id": wid,
                       "boot": "ab" * 16, "labels": labels or {},
                       "channels": []}, ensure_ascii=False).encode()


class WS:
    """A raw WebSocket client upgraded on the controller's /ws as wid."""

    def __init__(self, port, wid, headers=None, timeout=5):
        self.wid = wid
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=h.T(timeout))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sandd-Worker-Id: %s\r\n" % (port, key, wid))
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self._read_101(key)

    def _read_101(self, key):
        """Read the upgrade answer; assert a correct 101."""
        deadline = time.monotonic() + h.T(self.timeout)
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(deadline), \
                "closed before the upgrade answer: %r" % self.buf
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101"), head
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID)
                                .digest()).decode()
        assert self.headers.get("sec-websocket-accept") == want, head

    def _fill(self, deadline):
        """Read more into buf; False at EOF (or reset)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing from the server in time "
                               "(buffered: %r)" % self.buf[:60])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise TimeoutError("nothing from the server in time "
                               "(buffered: %r)" % self.buf[:60])
        except ConnectionResetError:
            chunk = b""
        self.buf += chunk
        return chunk != b""

    def _need(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                assert not self.buf, \
                    "connection closed inside a frame: %r" % self.buf[:60]
                return False
        return True

    def _frame(self, deadline):
        """The next frame from the server, None at EOF."""
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, pos = b1 & 0x7F, 2
        if n >= 126:
            pos += 2 if n == 126 else 8
            self._need(pos, deadline)
            n = struct.unpack(">H" if n == 126 else ">Q", self.buf[2:pos])[0]
        key = None
        if b1 & 0x80:
            self._need(pos + 4, deadline)
            key, pos = self.buf[pos:pos + 4], pos + 4
        self._need(pos + n, deadline)
        payload, self.buf = self.buf[pos:pos + n], self.buf[pos + n:]
        if key is not None:
            payload = _masked(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload)

    def send(self, data):
        """Send bytes; a server that already hung up is not an error here
        (what it sent back is what the tests check)."""
        self.sock.settimeout(h.T(self.timeout))
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def wait_frame(self, opcodes, timeout=5):
        """The next frame with one of these opcodes; others are skipped."""
        deadline = time.monotonic() + h.T(timeout)
        skipped = []
        while True:
            f = self._frame(deadline)
            assert f is not None, "server closed the connection before " \
                "a frame with opcode in %r (skipped %r)" % (opcodes, skipped)
            if f.opcode in opcodes:
                return f
            skipped.append(f)

    def ping(self, payload, mask=True):
        """Ping; assert the pong that comes back echoes payload."""
        self.send(frame(PING, payload, mask=mask))
        f = self.wait_frame({PONG})
        assert f.fin and f.payload == payload, f

    def hello(self):
        """Say hello in one frame; assert the welcome comes back."""
        self.send(frame(TEXT, hello_body(self.wid)))
        self.expect_welcome()

    def expect_welcome(self):
        """Assert a "welcome" text message comes (after any others)."""
        while True:
            f = self.wait_frame({TEXT})
            if json.loads(f.payload.decode()).get("t") == "welcome":
                return

    def expect_close(self, code, timeout=5):
        """Assert a close frame with code, then the end of the TCP
        connection, both within timeout (we do not answer the close)."""
        f = self.wait_frame({CLOSE}, timeout)
        got = struct.unpack(">H", f.payload[:2])[0] \
            if len(f.payload) >= 2 else None
        assert got == code, "close code %r, want %d (%r)" % (
            got, code, f.payload)
        self.expect_eof(timeout)

    def expect_eof(self, timeout=5):
        """Assert the server closes the connection, sending nothing more."""
        deadline = time.monotonic() + h.T(timeout)
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            raise AssertionError("server kept the TCP connection open "
                                 "after its close frame") from None
        assert not self.buf, "bytes after the close frame: %r" % self.buf

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ------------------------------------------------------------ helpers

def _workers(c):
    """The controller's workers (all of them) by id."""
    ctl = c.connect()
    r = h.ok(ctl.call({"op": "workers", "all": True}))
    ctl.close()
    return {w["id"]: w for w in r["workers"]}


def _assert_connected(c, wid, connected=True):
    """The controller lists wid as (dis)connected, soon."""
    def listed():
        w = _workers(c).get(wid)
        return w is not None and w["connected"] is connected
    h.wait_for(listed, timeout=5,
               what="worker %s connected=%s" % (wid, connected))


@contextlib.contextmanager
def _link(wid="w1", headers=None, serve_args=()):
    """A controller without workers and a raw client upgraded as wid."""
    with h.Cluster(workers={}, serve_args=serve_args) as c, \
            WS(c.port, wid, headers) as ws:
        yield c, ws


def _assert_serves(c, wid="fresh"):
    """A well-behaved worker can still upgrade, say hello, be listed."""
    with WS(c.port, wid) as ws:
        ws.hello()
        _assert_connected(c, wid)


def _refused(data, code, headers=None, serve_args=()):
    """Send data right after the upgrade; assert a close with code, the
    TCP close, and that the controller goes on serving others."""
    with _link("bad", headers, serve_args) as (c, ws):
        ws.send(data)
        ws.expect_close(code)
        assert "bad" not in _workers(c)
        _assert_serves(c)


# ------------------------------------------------------------ negotiation

def test_unmasked_frame_refused_without_negotiation():
    """No Sandd-Frames asked: the 101 does not carry it, and an unmasked
    frame gets close 1002."""
    with _link("bad") as (c, ws):
        assert "sandd-frames" not in ws.headers, ws.headers
        ws.send(frame(PING, b"x", mask=False))
        ws.expect_close(1002)
        _assert_serves(c)


def test_unmasked_frames_accepted_when_negotiated():
    """Sandd-Frames: unmasked is echoed in the 101; unmasked and masked
    frames (even within one message) are then both accepted."""
    with _link(headers={"Sandd-Frames": "unmasked"}) as (c, ws):
        assert ws.headers.get("sandd-frames") == "unmasked", ws.headers
        ws.ping(b"bare", mask=False)
        ws.ping(b"masked", mask=True)
        body = hello_body("w1")
        ws.send(frame(TEXT, body[:10], fin=False, mask=False) +
                frame(CONT, body[10:], mask=True))
        ws.expect_welcome()
        _assert_connected(c, "w1")
        ws.ping(b"after", mask=False)


def test_ws_mask_option_never_agrees_to_unmasked():
    """serve --ws-mask: a client that asked for Sandd-Frames: unmasked
    still gets close 1002 for an unmasked frame."""
    _refused(frame(PING, b"x", mask=False), 1002,
             headers={"Sandd-Frames": "unmasked"}, serve_args=["--ws-mask"])


def test_ws_mask_option_answer_lacks_header():
    """serve --ws-mask: masked workers work; the 101 has no Sandd-Frames."""
    with _link(headers={"Sandd-Frames": "unmasked"},
               serve_args=["--ws-mask"]) as (c, ws):
        assert "sandd-frames" not in ws.headers, ws.headers
        ws.hello()
        _assert_connected(c, "w1")


# ------------------------------------------------------------ messages

def test_ping_answered_with_same_payload():
    """Ping b"abc" gets pong b"abc"; so do an empty ping and one of 125
    bytes (the most a control frame holds)."""
    with _link() as (c, ws):
        ws.ping(b"abc")
        ws.ping(b"")
        ws.ping(bytes(range(125)))


def test_hello_in_three_fragments_with_ping_between():
    """A hello in three frames is one message; a ping between fragments
    is answered at once with its payload."""
    with _link() as (c, ws):
        body = hello_body("w1")
        ws.send(frame(TEXT, body[:7], fin=False))
        ws.ping(b"mid-message")
        ws.send(frame(CONT, body[7:30], fin=False))
        ws.send(frame(CONT, body[30:]))
        ws.expect_welcome()
        _assert_connected(c, "w1")


def test_utf8_character_split_across_fragments_accepted():
    """UTF-8 is checked on the whole message: a character cut between two
    fragments is fine, and arrives intact."""
    with _link() as (c, ws):
        body = hello_body("w1", {"name": "\u00e9\u20ac"})
        cut = body.index("\u20ac".encode()) + 1
        ws.send(fragments(TEXT, body, [cut]))
        ws.expect_welcome()
        _assert_connected(c, "w1")
        assert _workers(c)["w1"]["labels"] == {"name": "\u00e9\u20ac"}


def test_message_at_limit_accepted():
    """A binary message of exactly the limit does not close the link
    (before hello the controller ignores it); the link still works."""
    with _link() as (c, ws):
        ws.send(frame(BINARY, b"\0" * LIMIT))
        ws.ping(b"still here", mask=True)
        ws.hello()
        _assert_connected(c, "w1")


def test_client_close_answered_then_connection_closed():
    """Close 1000 with a reason: the server answers close 1000 and closes
    TCP; the worker is then listed as disconnected."""
    with _link() as (c, ws):
        ws.hello()
        ws.send(frame(CLOSE, close_payload(1000, b"bye")))
        ws.expect_close(1000)
        _assert_connected(c, "w1", connected=False)
        _assert_serves(c)


# ------------------------------------------------------------ bad peers

def test_rsv_bit_is_protocol_error():
    """A frame with RSV1 set (no extension agreed): close 1002."""
    _refused(frame(PING, b"x", rsv=4), 1002)


def test_rsv3_bit_is_protocol_error():
    """A text frame with RSV3 set: close 1002."""
    _refused(frame(TEXT, b"{}", rsv=1), 1002)


def test_unknown_opcode_is_protocol_error():
    """Opcode 0x3 (reserved): close 1002."""
    _refused(frame(0x3, b"x"), 1002)


def test_continuation_without_message_is_protocol_error():
    """A continuation frame with no message open: close 1002."""
    _refused(frame(CONT, b"x"), 1002)


def test_new_message_inside_fragmented_one_is_protocol_error():
    """A text frame while a fragmented message is open: close 1002."""
    _refused(frame(TEXT, b"{", fin=False) + frame(TEXT, b"{}"), 1002)


def test_close_with_one_byte_payload_is_protocol_error():
    """A close frame whose payload is one byte: close 1002."""
    _refused(frame(CLOSE, b"\x03"), 1002)


def test_fragmented_control_frame_is_protocol_error():
    """A ping with FIN clear: close 1002."""
    _refused(frame(PING, b"x", fin=False), 1002)


def test_control_frame_over_125_bytes_is_protocol_error():
    """A ping with a 126-byte payload: close 1002."""
    _refused(frame(PING, b"p" * 126), 1002)


def test_invalid_utf8_text_is_1007():
    """A text message that is not UTF-8: close 1007."""
    _refused(frame(TEXT, b"\xff\xfe"), 1007)


def test_invalid_utf8_in_last_fragment_is_1007():
    """A fragmented text message ending in a cut-off character: 1007."""
    _refused(frame(TEXT, b'{"a":"', fin=False) + frame(CONT, b"\xe2\x82"),
             1007)


def test_message_over_limit_is_1009():
    """One frame of limit + 1 bytes: close 1009."""
    _refused(frame(BINARY, b"\0" * (LIMIT + 1)), 1009)


def test_fragmented_message_over_limit_is_1009():
    """Fragments each under the limit, together one byte over: 1009."""
    _refused(fragments(BINARY, b"\0" * (LIMIT + 1), [LIMIT // 2]), 1009)


def test_oversize_header_refused_before_its_payload():
    """A frame header claiming 400000 bytes and 4 KiB of them: close 1009
    at once, without waiting for the rest."""
    _refused(frame(BINARY, b"\0" * 4096, length=400000), 1009)


h.run_main(globals())

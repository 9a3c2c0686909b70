"""A private ``sandd serve`` and a client of it: :class:`Server` (blocking)
and :class:`AsyncServer` (asyncio), one class of operations
(:class:`LocalServer`) over the process part in process.py."""

from __future__ import annotations

import time
import weakref
from typing import Any, List, Mapping, Optional, Union

from .aio import AsyncClient
from .client import Client
from .errors import ServerStartError
from .ops import Op, OpHost, Ready, op
from .process import Serve, Worker, host_port


class LocalServer(OpHost):
    """The operations a private server adds to a client: start on first
    connect, start workers, stop on close."""

    _mux: Any

    def __init__(self, host: str = "0.0.0.0", port: int = 8765,
                 connect: str = "direct", tunnel_config: Any = None,
                 verbose: Union[bool, int, None] = None, *,
                 binary: Optional[str] = None,
                 request_timeout: Optional[float] = None,
                 **options: Any) -> None:
        if connect != "direct" or tunnel_config is not None:
            raise ValueError("connect must be 'direct' (got %r): sandd has "
                             "no tunnel mode; secure the listener with "
                             "tls_cert/tls_key and token_file" % (connect,))
        if verbose is not None:
            options["verbose"] = verbose
        self._serve = Serve(host, port, binary, options)
        self.host = host
        self.port = self._serve.port
        self.url = self._serve.url
        #: The workers started with :meth:`start_worker`.
        self.workers: List[Worker] = self._serve.workers
        self._finalizer = weakref.finalize(self, self._serve.stop_now)
        super().__init__(None, request_timeout)  # type: ignore[call-arg]
        self.path = self._serve.control_path  # None until started

    @property
    def address(self) -> str:
        """``host:port`` the server listens on for workers."""
        return host_port(self.host, self.port)

    @property
    def control_path(self) -> Optional[str]:
        """The control socket in the private folder (None until started)."""
        return self._serve.control_path

    @property
    def pid(self) -> int:
        """The ``sandd serve`` process id."""
        assert self._serve.process is not None
        return self._serve.process.pid

    def log(self) -> str:
        """The tail of the server's stderr."""
        return self._serve.process.log() if self._serve.process else ""

    def _g_connect(self) -> Op[Any]:
        try:
            if self._serve.process is None:
                self.path = yield from self._serve.g_start()
            return (yield from super()._g_connect())  # type: ignore[misc]
        except BaseException:
            yield from self._serve.g_stop()
            raise

    @op
    def _g_close(self) -> Op[None]:
        """Close the connection, stop the server and its workers, and
        remove the temporary folder."""
        try:
            yield from super()._g_close()  # type: ignore[misc]
        finally:
            yield from self._serve.g_stop()
            self._finalizer.detach()

    @op
    def _g_start_worker(self, daemon_id: str,
                        labels: Optional[Mapping[str, str]] = None,
                        wait: bool = True, timeout: float = 15.0,
                        **options: Any) -> Op[Worker]:
        """Start a local ``sandd worker`` connected to this server.

        By default waits until it is connected; it is stopped with the
        server. Options as for :class:`Worker`."""
        yield Ready()
        w = self._serve.worker(daemon_id, labels, options)
        deadline = time.monotonic() + timeout
        while wait and not (yield from self._g_wait_for_daemon(  # type: ignore
                daemon_id, timeout=0.5)):
            if not w.alive():
                w.close()
                raise w.process.exit_error("sandd worker")
            if time.monotonic() > deadline:
                w.close()
                raise ServerStartError("worker %s did not connect within "
                                       "%ss: %s" % (daemon_id, timeout,
                                                    w.log()))
        return w


class Server(LocalServer, Client):
    """A private ``sandd serve`` child process, and a client of it.

    Listens for workers on ``host:port``; its control socket lives in a
    private temporary folder (``control_path``). Keyword options map to
    ``sandd serve`` flags: ``token_file``, ``tls_cert``, ``tls_key``,
    ``tls_client_ca``, ``resume_window``, ``ping_interval``,
    ``max_output``, ``verbose`` (a count), ... Also: ``binary`` (the
    sandd executable), ``env``, ``extra_args``, ``start_timeout``.

    Raises :class:`ServerStartError` with the daemon's own message at
    once if it cannot start (port taken, bad option). Stopped by
    :meth:`close`, on context-manager exit, when garbage collected, and
    at interpreter exit.

    As in the Rust sandd, ``Server(host, port, connect, tunnel_config,
    verbose)``: ``connect`` must be ``"direct"`` (there is no tunnel mode,
    so ``tunnel_config`` must be None) and ``verbose`` adds ``-v``.
    """


class AsyncServer(LocalServer, AsyncClient):
    """The asyncio twin of :class:`Server`.

    ``sandd serve`` starts on first use: ``async with AsyncServer(...) as
    s``, ``await s.start()``, or simply the first call; ``await
    s.close()`` stops it. It is also stopped when garbage collected and
    at interpreter exit; its temporary folder exists only while it runs.
    Arguments as for :class:`Server`.
    """

    async def start(self) -> "AsyncServer":
        """Start ``sandd serve`` and connect to it."""
        await self.connect()
        return self

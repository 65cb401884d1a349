"""Test TLS for the emulators: one trustme CA per test process, and an HTTPS server on 127.0.0.1 run in a thread.

The Azure SDKs refuse bearer tokens over plain http, so every emulator serves HTTPS; clients trust the test CA
through their ordinary CA-bundle setting (`ca_bundle` in the source settings, `connection_verify` in azure-core).
"""

from __future__ import annotations

import functools
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import trustme

HOST = "127.0.0.1"


@functools.cache
def emulator_ca() -> trustme.CA:
    """The process's test certificate authority (creating one costs an RSA key, so it is shared)."""
    return trustme.CA()


def write_ca_bundle(directory: Path) -> Path:
    """Write the test CA's certificate as a PEM file in `directory`; what clients take as their CA bundle."""
    path = directory / "test-ca.pem"
    emulator_ca().cert_pem.write_to_path(str(path))
    return path


@functools.cache
def _server_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    emulator_ca().issue_cert(HOST, "localhost").configure_cert(context)
    return context


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTPS server whose handlers reach the emulator's state through `self.server.app`."""

    daemon_threads = True  # a handler stalled on purpose (a slow-response fault) must not hold up shutdown

    def __init__(self, handler: type[BaseHTTPRequestHandler], app: Any) -> None:
        super().__init__((HOST, 0), handler)
        self.app = app
        self.socket = _server_context().wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) leaves a broken pipe behind: expected in fault tests, not news.
        pass


@dataclass(frozen=True)
class RunningServer:
    """A server started by `serve_https`: its base URL (https://127.0.0.1:port) and the CA bundle to trust."""

    server: EmulatorServer
    url: str
    ca_bundle: Path


@contextmanager
def serve_https(
    handler: type[BaseHTTPRequestHandler], app: Any, directory: Path | None = None
) -> Iterator[RunningServer]:
    """Run `handler` over HTTPS on 127.0.0.1 (a free port) in a thread until the block ends.

    The CA bundle is written to `directory` (a temporary one by default, removed afterwards).
    """
    with tempfile.TemporaryDirectory(prefix="aoai-obs-tls-") as scratch:
        ca_bundle = write_ca_bundle(directory or Path(scratch))
        server = EmulatorServer(handler, app)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="https-emulator", daemon=True)
        thread.start()
        try:
            yield RunningServer(server, f"https://{HOST}:{server.server_address[1]}", ca_bundle)
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


class ServedOverHttps:
    """What every emulator does to run: start, stop and `with` over `serve_https`, its URL and the CA bundle its
    clients trust. An emulator has a `directory` (for the bundle) and gives its `handler()`."""

    directory: Path | None
    _stack: ExitStack | None = None
    _running: RunningServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def running(self) -> RunningServer:
        assert self._running is not None, "the emulator is not started"
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def ca_bundle(self) -> Path:
        return self.running.ca_bundle

    def start(self) -> Self:
        self._stack = ExitStack()
        self._running = self._stack.enter_context(serve_https(self.handler(), self, self.directory))
        return self

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def send_json(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """Write an emulator's answer (JSON unless `headers` say otherwise); a client that gave up (a timeout test) ends
    the connection rather than the server thread."""
    try:
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        handler.close_connection = True

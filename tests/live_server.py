"""A real HTTP server on loopback serving a Flask app, for clients that need a URL (zeep, a
browser). werkzeug's server runs in a daemon thread on 127.0.0.1 and a port the system chose."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from ebox import create_app
from tests.conftest import make_settings


class LiveServer:
    def __init__(self, app: Flask, host: str = "127.0.0.1") -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(host, 0, app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="live-server", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{self._server.host}:{self._server.server_port}"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def live_server(app: Flask) -> Iterator[LiveServer]:
    """Serve app until the block ends. The port is bound before the block starts."""
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def ebox_server(instance_path: Path, database_url: str, **changes: object) -> Iterator[LiveServer]:
    """The whole application on 127.0.0.1, on the test database, its public URL the server's
    own address (signed requests and client assertions name it as their audience)."""
    settings = make_settings(instance_path, database_url, **changes)
    with live_server(create_app(settings, TESTING=True)) as server:
        settings.public_url = server.url
        yield server

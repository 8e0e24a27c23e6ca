"""A webhook receiver on loopback, as an integrator writes one: every delivery is verified with
the standardwebhooks package; it can be told to fail the next deliveries first."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

FAIL = "fail"  # answer 500
HANG = "hang"  # answer only after the sender's time-out, then 503


@dataclass
class Receiver:
    url: str = ""
    secret: str = ""
    hang_seconds: float = 2.0
    behaviours: list[str] = field(default_factory=list)  # for the next deliveries, in order
    attempts: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)  # verified, answered 2xx
    unverified: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self.lock:
            self.attempts += 1
            behaviour = self.behaviours.pop(0) if self.behaviours else ""
        try:
            event = Webhook(self.secret).verify(body, headers)
        except Exception:
            self.unverified += 1
            return 400
        if behaviour == FAIL:
            return 500
        if behaviour == HANG:
            time.sleep(self.hang_seconds)
            return 503
        assert headers["webhook-id"] == event["id"]
        with self.lock:
            self.accepted.append(event)
        return 204

    @property
    def accepted_ids(self) -> list[str]:
        return [event["id"] for event in self.accepted]


@contextmanager
def running_receiver(host: str = "127.0.0.1") -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer(body, {k.lower(): v for k, v in self.headers.items()})
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting (HANG)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://{host}:{server.server_address[1]}/ebox/events?source=test"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def as_json(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)

"""Request bodies sent without a Content-Length (chunked) are read whole, within the limit of
their endpoint, before the application sees them.

werkzeug bounds such a stream by the maximum it is given but stops there without an error, so a
form or a SOAP envelope over the limit would be parsed cut short. This middleware counts the
bytes as they arrive instead: a body within the limit reaches the application with its length
known; a larger one reaches it announcing one byte more than the limit and carrying nothing, so
the usual refusal of an announced length answers it (413, or the SOAP Fault REQUEST_TOO_LARGE);
a body that breaks off is answered 400 here, and nothing parses what was cut short.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_READ_SIZE = 64 * 1024


class BoundedChunkedBodies:
    """WSGI middleware; limit_for(path) is the most bytes a body may have at that path."""

    def __init__(self, app: WSGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not _is_chunked(environ):
            return self.app(environ, start_response)
        limit = self.limit_for(environ.get("PATH_INFO", ""))
        try:
            body = _read_at_most(environ["wsgi.input"], limit)
        except (OSError, ValueError) as error:
            log.info("a chunked request body broke off: %s", type(error).__name__)
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [b"The request body was not received whole.\n"]
        if body is None:  # over the limit: announce it, so that the application refuses it
            environ["CONTENT_LENGTH"] = str(limit + 1)
            body = b""
        else:
            environ["CONTENT_LENGTH"] = str(len(body))
        # From here on the body is an ordinary one of known length (werkzeug ignores any
        # Content-Length beside a chunked Transfer-Encoding).
        environ["wsgi.input"] = io.BytesIO(body)
        del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)


def _is_chunked(environ: dict[str, Any]) -> bool:
    """A body whose length nobody announced: the server dechunks it as it arrives."""
    encoding = str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    return "chunked" in encoding and not environ.get("CONTENT_LENGTH")


def _read_at_most(stream: Any, limit: int) -> bytes | None:
    """The whole stream, or None as soon as it holds more than limit bytes."""
    chunks: list[bytes] = []
    received = 0
    while chunk := stream.read(_READ_SIZE):
        received += len(chunk)
        if received > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)

"""Messages of the senders' domain, shared by web pages (translated) and the command line.

On a web request a message speaks the page's language; elsewhere (the command line, a job) it is
the English source text, since there is no visitor to speak to.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_babel import gettext


def _(message: str, /, **params: Any) -> str:
    if has_request_context():
        return str(gettext(message, **params))
    return message % params if params else message

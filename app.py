"""WSGI entry point: `flask --app app run`, `gunicorn app:app`."""

import sys

from ebox import create_app
from ebox.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # A refusal to start is an operator's message, not a traceback.
    sys.exit(f"eBox cannot start: {error}")

"""WSGI entry point: `flask --app app run`, `gunicorn -c python:ebox.gunicorn_conf app:app`."""

import sys

from ebox import create_app
from ebox.errors import ConfigError

# gunicorn stops, rather than starting the worker again, when a worker exits with this code
# (its APP_LOAD_ERROR). ebox/gunicorn_conf.py checks the settings in the master even before.
APP_LOAD_ERROR = 4

try:
    app = create_app()
except ConfigError as error:
    # A refusal to start is an operator's message, not a traceback.
    print(f"eBox cannot start: {error}", file=sys.stderr)
    sys.exit(APP_LOAD_ERROR)

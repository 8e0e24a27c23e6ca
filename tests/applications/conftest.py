import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.applications.application_helpers import forget_application_limits
from tests.mail.smtp_server import smtp_server  # noqa: F401


@pytest.fixture(autouse=True)
def _english_browser(client: FlaskClient) -> None:
    """Assertions read the English source texts, whatever the catalogs hold."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"


@pytest.fixture(autouse=True)
def _fresh_limits(app: Flask) -> None:
    """Each test starts as a fresh web process would: no application counted yet."""
    forget_application_limits(app)

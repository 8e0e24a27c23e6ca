import pytest
from flask.testing import FlaskClient

from tests.mail.smtp_server import smtp_server  # noqa: F401


@pytest.fixture(autouse=True)
def _english_browser(client: FlaskClient) -> None:
    """Assertions read the English source texts, whatever the catalogs hold."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

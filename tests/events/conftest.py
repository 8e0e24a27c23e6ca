from tests.mail.smtp_server import smtp_server  # noqa: F401

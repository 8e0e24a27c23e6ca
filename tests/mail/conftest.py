from tests.mail.smtp_server import picky_server, smtp_server  # noqa: F401

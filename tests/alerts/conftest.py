from tests.mail.smtp_server import picky_server, smtp_server  # noqa: F401
from tests.push.push_service import push_service  # noqa: F401

"""eBox: the citizen's secure electronic mailbox for official documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

# Every model module, so that the metadata (and Alembic) know every table.
import ebox.accounts.models
import ebox.admin.models
import ebox.alerts.models
import ebox.api.models
import ebox.applications.models
import ebox.audit.models
import ebox.events.models
import ebox.evidence.models
import ebox.mailbox.models
import ebox.mandates.models
import ebox.profile.models
import ebox.push.models
import ebox.senders.models
import ebox.soap.models
import ebox.webhooks.models  # noqa: F401
from ebox import database_waits, metrics, request_log, web
from ebox.accounts.sessions import load_session
from ebox.accounts.views import bp as accounts_bp
from ebox.admin.views import bp as admin_bp
from ebox.api.blueprint import bp as api_bp
from ebox.api.submission import PUBLISH_PATH, max_body_bytes
from ebox.applications.views import bp as applications_bp
from ebox.cli import ebox_group
from ebox.config import MAX_FORM_BYTES, Settings
from ebox.evidence.views import bp as evidence_bp
from ebox.extensions import babel, csrf, db, htmx, migrate
from ebox.health.views import bp as health_bp
from ebox.log_config import configure_logging
from ebox.mailbox.views import bp as mailbox_bp
from ebox.mandates.views import bp as mandates_bp
from ebox.profile.views import bp as profile_bp
from ebox.push.views import bp as push_bp
from ebox.request_bodies import BoundedChunkedBodies
from ebox.soap.views import bp as soap_bp


def create_app(settings: Settings | None = None, **flask_overrides: Any) -> Flask:
    """Build the application. Settings come from EBOX_* variables unless given (tests)."""
    settings = settings or Settings.from_environment()
    settings.check()
    configure_logging(settings.log_format)
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.from_mapping(settings.to_flask())
    app.config.update(flask_overrides)
    app.config["EBOX"] = settings
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    app.wsgi_app = BoundedChunkedBodies(  # type: ignore[method-assign]
        app.wsgi_app, lambda path: body_limit(settings, path)
    )
    if settings.trusted_proxies:
        # The client's address (access history, logs) and https come from the proxies' headers.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    # Before the extensions: the bound is lifted only after the session's last rollback.
    database_waits.init_app(app, settings.database_timeout_seconds)
    _init_extensions(app)
    database_waits.use_bounded_connections(app, settings.database_timeout_seconds)
    metrics.watch_pools()
    request_log.init_app(app)  # first: its hooks wrap every other one
    web.init_app(app)
    register_blueprints(app)
    register_commands(app)
    return app


def body_limit(settings: Settings, path: str) -> int:
    """The most bytes a request body may have: SOAP envelopes and REST publications carry
    documents, forms are small."""
    if path.startswith("/soap/"):
        return settings.soap_max_request_bytes
    if path == PUBLISH_PATH:
        return max_body_bytes(settings)
    return MAX_FORM_BYTES


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=str(Path(__file__).resolve().parent.parent / "migrations"),
        render_as_batch=True,
    )
    csrf.init_app(app)
    htmx.init_app(app)
    babel.init_app(app, locale_selector=web.select_language)


def register_blueprints(app: Flask) -> None:
    """Every blueprint of eBox, in one place. The demo helpers plug in only outside production."""
    app.before_request(load_session)
    for blueprint in (
        health_bp,
        accounts_bp,
        profile_bp,
        push_bp,
        mailbox_bp,
        mandates_bp,
        applications_bp,
        admin_bp,
        soap_bp,
        api_bp,
        evidence_bp,
        metrics.bp,
    ):
        app.register_blueprint(blueprint)

    settings: Settings = app.config["EBOX"]
    if settings.is_demo:
        import ebox.demo  # imported here: production never loads the demo package

        ebox.demo.init_app(app)


def register_commands(app: Flask) -> None:
    app.cli.add_command(ebox_group)

"""Demo helpers for the one-command start: an identity provider, a mail viewer and demo data.

They plug into the application only outside production (create_app calls init_app): nothing
else in eBox imports this package, so production never loads it.
"""

from __future__ import annotations

from flask import Flask

from ebox.accounts.saml import IDP_METADATA_PROVIDER
from ebox.demo.idp import bp as idp_bp
from ebox.demo.idp import demo_idp_metadata
from ebox.demo.views import bp as views_bp


def init_app(app: Flask) -> None:
    app.register_blueprint(views_bp)
    app.register_blueprint(idp_bp)
    # With EBOX_SAML_IDP=demo, the service provider trusts the demo identity provider.
    app.extensions[IDP_METADATA_PROVIDER] = demo_idp_metadata

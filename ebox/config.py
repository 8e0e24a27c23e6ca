"""Settings, read from EBOX_* environment variables.

Every setting has an embedded default so that a newcomer can start eBox with one command
(SQLite, local files, the demo identity provider, mail captured on disk). Production mode
(EBOX_ENV=production) refuses the defaults that are only safe on a laptop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SECRET_KEY = "dev-secret-key-not-for-production"  # noqa: S105 (production refuses it)
# 32 bytes, base64: the embedded default master key. Production refuses it.
DEFAULT_MASTER_KEY = "ZWJveC1lbWJlZGRlZC1kZWZhdWx0LW1hc3Rlci1rZXk="
LANGUAGES = ("nl", "fr", "de", "en")


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says why."""


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EBOX_{name}", default)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(f"EBOX_{name}")
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(f"EBOX_{name}")
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"EBOX_{name} must be a whole number, got {raw!r}") from exc


@dataclass
class Settings:
    """All of eBox's settings. `describe()` lists them for the README's table."""

    env: str = "development"
    instance_path: Path = field(default_factory=lambda: Path("instance").resolve())
    secret_key: str = DEFAULT_SECRET_KEY
    database_url: str = ""
    redis_url: str = ""
    public_url: str = "http://localhost:5000"
    # Storage of document content: "local" (a directory) or "s3".
    storage_backend: str = "local"
    storage_path: str = ""
    s3_endpoint_url: str = ""
    s3_bucket: str = "ebox-documents"
    s3_region: str = "eu-west-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    master_key: str = DEFAULT_MASTER_KEY
    master_key_id: str = "k1"
    # SAML federation.
    saml_idp: str = "demo"
    saml_idp_metadata: str = ""
    saml_sp_entity_id: str = ""
    saml_sp_cert: str = ""
    saml_sp_key: str = ""
    saml_attr_national_number: str = "egovNRN"
    saml_attr_given_name: str = "givenName"
    saml_attr_surname: str = "surname"
    saml_attr_language: str = "PrefLanguage"
    # Outgoing mail: smtp://user:password@host:port (smtps:// for implicit TLS,
    # ?starttls=1 to upgrade). Empty: captured as files under instance/mail.
    smtp_url: str = ""
    mail_from: str = "eBox <no-reply@ebox.localhost>"
    session_idle_minutes: int = 15
    email_code_minutes: int = 15
    email_code_attempts: int = 5
    inbox_page_size: int = 20
    max_document_bytes: int = 10 * 1024 * 1024
    # SOAP requests: refused before parsing above this size (a 10 MB document in base64 is
    # 13.4 MB); the expiry a sender may ask for, in days from publication.
    soap_max_request_bytes: int = 16 * 1024 * 1024
    min_expiry_days: int = 1
    max_expiry_days: int = 3 * 365 + 1
    cookie_secure: bool = False
    # The worker (ebox/schedule.py): the daily alert's hour in Europe/Brussels, how far ahead an
    # unread document's deletion is announced, and how often expired documents are deleted.
    # Reverse proxies in front (nginx, a load balancer) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; 0 believes none (a client could forge them).
    trusted_proxies: int = 0
    # Registered mail: the platform's seal (PEM files; empty: a demo CA under instance/seal),
    # an RFC 3161 timestamp authority (optional), and how long evidence is kept.
    seal_key: str = ""
    seal_cert: str = ""
    seal_ca_cert: str = ""
    tsa_url: str = ""
    # The timestamp authority's root CA (PEM file): every token is checked against it.
    tsa_ca_cert: str = ""
    evidence_retention_years: int = 10
    alert_hour: int = 7
    alert_expiry_window_days: int = 7
    purge_interval_minutes: int = 60

    @classmethod
    def from_environment(cls) -> Settings:
        env = _env("ENV", "development")
        instance = Path(_env("INSTANCE_PATH", "instance")).resolve()
        settings = cls(
            env=env,
            instance_path=instance,
            secret_key=_env("SECRET_KEY", DEFAULT_SECRET_KEY),
            database_url=_env("DATABASE_URL", f"sqlite:///{instance / 'ebox.sqlite3'}"),
            redis_url=_env("REDIS_URL", ""),
            public_url=_env("PUBLIC_URL", "http://localhost:5000").rstrip("/"),
            storage_backend=_env("STORAGE", "local"),
            storage_path=_env("STORAGE_PATH", str(instance / "documents")),
            s3_endpoint_url=_env("S3_ENDPOINT_URL", ""),
            s3_bucket=_env("S3_BUCKET", "ebox-documents"),
            s3_region=_env("S3_REGION", "eu-west-1"),
            s3_access_key_id=_env("S3_ACCESS_KEY_ID", ""),
            s3_secret_access_key=_env("S3_SECRET_ACCESS_KEY", ""),
            master_key=_env("MASTER_KEY", DEFAULT_MASTER_KEY),
            master_key_id=_env("MASTER_KEY_ID", "k1"),
            saml_idp=_env("SAML_IDP", "demo"),
            saml_idp_metadata=_env("SAML_IDP_METADATA", ""),
            saml_sp_entity_id=_env("SAML_SP_ENTITY_ID", ""),
            saml_sp_cert=_env("SAML_SP_CERT", ""),
            saml_sp_key=_env("SAML_SP_KEY", ""),
            saml_attr_national_number=_env("SAML_ATTR_NATIONAL_NUMBER", "egovNRN"),
            saml_attr_given_name=_env("SAML_ATTR_GIVEN_NAME", "givenName"),
            saml_attr_surname=_env("SAML_ATTR_SURNAME", "surname"),
            saml_attr_language=_env("SAML_ATTR_LANGUAGE", "PrefLanguage"),
            smtp_url=_env("SMTP_URL", ""),
            mail_from=_env("MAIL_FROM", "eBox <no-reply@ebox.localhost>"),
            session_idle_minutes=_env_int("SESSION_IDLE_MINUTES", 15),
            email_code_minutes=_env_int("EMAIL_CODE_MINUTES", 15),
            email_code_attempts=_env_int("EMAIL_CODE_ATTEMPTS", 5),
            inbox_page_size=_env_int("INBOX_PAGE_SIZE", 20),
            max_document_bytes=_env_int("MAX_DOCUMENT_BYTES", 10 * 1024 * 1024),
            soap_max_request_bytes=_env_int("SOAP_MAX_REQUEST_BYTES", 16 * 1024 * 1024),
            min_expiry_days=_env_int("MIN_EXPIRY_DAYS", 1),
            max_expiry_days=_env_int("MAX_EXPIRY_DAYS", 3 * 365 + 1),
            cookie_secure=_env_bool("COOKIE_SECURE", env == "production"),
            trusted_proxies=_env_int("TRUSTED_PROXIES", 0),
            seal_key=_env("SEAL_KEY", ""),
            seal_cert=_env("SEAL_CERT", ""),
            seal_ca_cert=_env("SEAL_CA_CERT", ""),
            tsa_url=_env("TSA_URL", ""),
            tsa_ca_cert=_env("TSA_CA_CERT", ""),
            evidence_retention_years=_env_int("EVIDENCE_RETENTION_YEARS", 10),
            alert_hour=_env_int("ALERT_HOUR", 7),
            alert_expiry_window_days=_env_int("ALERT_EXPIRY_WINDOW_DAYS", 7),
            purge_interval_minutes=_env_int("PURGE_INTERVAL_MINUTES", 60),
        )
        if settings.saml_sp_entity_id == "":
            settings.saml_sp_entity_id = f"{settings.public_url}/auth/saml/metadata"
        return settings

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_demo(self) -> bool:
        """Demo helpers (identity provider, mail viewer) exist only outside production."""
        return not self.is_production

    @property
    def uses_demo_idp(self) -> bool:
        return self.saml_idp == "demo"

    def problems_for_production(self) -> list[str]:
        """Why these settings must not run in production; empty when they may."""
        problems = []
        if self.uses_demo_idp:
            problems.append(
                "EBOX_SAML_IDP is 'demo': set it to 'federation' and give EBOX_SAML_IDP_METADATA"
            )
        if not (self.saml_sp_key and self.saml_sp_cert):
            problems.append(
                "EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT must be set (the SP signs requests)"
            )
        if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32:
            problems.append("EBOX_SECRET_KEY is the default or shorter than 32 characters")
        if self.master_key == DEFAULT_MASTER_KEY:
            problems.append("EBOX_MASTER_KEY is the embedded default key")
        if self.database_url.startswith("sqlite"):
            problems.append("EBOX_DATABASE_URL points to SQLite: use PostgreSQL")
        if not self.smtp_url:
            problems.append("EBOX_SMTP_URL is empty: mail would only be captured on disk")
        if not self.cookie_secure:
            problems.append("EBOX_COOKIE_SECURE is off: session cookies would travel without TLS")
        if not (self.seal_key and self.seal_cert and self.seal_ca_cert):
            problems.append(
                "EBOX_SEAL_KEY, EBOX_SEAL_CERT and EBOX_SEAL_CA_CERT must be set: the demo seal "
                "proves nothing"
            )
        if self.tsa_url and not self.tsa_ca_cert:
            problems.append(
                "EBOX_TSA_URL is set without EBOX_TSA_CA_CERT: timestamps would be embedded "
                "without checking who signed them"
            )
        return problems

    def check(self) -> None:
        # Imported here: the storage package imports this module. MasterKeyError is a ConfigError.
        from ebox.storage.crypto import validate_master_key

        validate_master_key(self.master_key)
        if self.env not in {"development", "production", "test"}:
            raise ConfigError(f"EBOX_ENV must be development, test or production, not {self.env!r}")
        if self.storage_backend not in {"local", "s3"}:
            raise ConfigError(f"EBOX_STORAGE must be 'local' or 's3', not {self.storage_backend!r}")
        if self.saml_idp not in {"demo", "federation"}:
            raise ConfigError(
                f"EBOX_SAML_IDP must be 'demo' or 'federation', not {self.saml_idp!r}"
            )
        if not 0 <= self.trusted_proxies <= 5:
            raise ConfigError("EBOX_TRUSTED_PROXIES must be from 0 to 5")
        if not 0 <= self.alert_hour <= 23:
            raise ConfigError(f"EBOX_ALERT_HOUR must be from 0 to 23, not {self.alert_hour}")
        if not 1 <= self.purge_interval_minutes <= 24 * 60:
            raise ConfigError("EBOX_PURGE_INTERVAL_MINUTES must be from 1 to 1440")
        if self.saml_idp == "federation" and not self.saml_idp_metadata:
            raise ConfigError("EBOX_SAML_IDP is 'federation' but EBOX_SAML_IDP_METADATA is empty")
        if self.is_production:
            problems = self.problems_for_production()
            if problems:
                raise ConfigError(
                    "EBOX_ENV=production refuses to start:\n  - " + "\n  - ".join(problems)
                )

    def to_flask(self) -> dict[str, object]:
        """The Flask settings derived from ours."""
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
            "SESSION_COOKIE_NAME": "ebox_session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.cookie_secure,
            "PREFERRED_URL_SCHEME": "https" if self.cookie_secure else "http",
            # Form posts are small; documents arrive through the SOAP service (its own limit).
            "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
            "WTF_CSRF_TIME_LIMIT": None,
            "BABEL_DEFAULT_LOCALE": "nl",
            "BABEL_DEFAULT_TIMEZONE": "Europe/Brussels",
            "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
        }

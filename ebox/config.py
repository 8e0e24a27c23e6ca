"""Settings, read from EBOX_* environment variables.

Every setting is declared once, below: its default, its variable and what it means. The
README's settings table is generated from these declarations (`flask --app app ebox settings`)
and a test keeps the two equal. Code reads them through current_settings().

Every setting has an embedded default so that a newcomer can start eBox with one command
(SQLite, local files, the demo identity provider, mail captured on disk). Production mode
(EBOX_ENV=production) refuses the defaults that are only safe on a laptop.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app

from ebox import key_files
from ebox.errors import ConfigError
from ebox.storage.crypto import validate_master_key

DEFAULT_SECRET_KEY = "dev-secret-key-not-for-production"  # noqa: S105 (production refuses it)
# 32 bytes, base64: the embedded default master key. Production refuses it.
DEFAULT_MASTER_KEY = "ZWJveC1lbWJlZGRlZC1kZWZhdWx0LW1hc3Rlci1rZXk="
LANGUAGES = ("nl", "fr", "de", "en")
# Form posts are small; documents arrive through the SOAP service (its own limit).
MAX_FORM_BYTES = 2 * 1024 * 1024


def _parse_bool(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _parse_float(variable: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"EBOX_{variable} must be a number, got {raw!r}") from None


# A master key's id: stored in each document's row (50 characters at most).
_MASTER_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,50}")


def _check_master_key_id(key_id: str, where: str) -> None:
    if not _MASTER_KEY_ID.fullmatch(key_id):
        raise ConfigError(
            f"{where} is {key_id!r}: a master key's id has 1 to 50 letters, digits, '.', '_' or '-'"
        )


def _parse_seconds_list(variable: str, raw: str) -> tuple[int, ...]:
    try:
        seconds = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(
            f"EBOX_{variable} must be whole numbers separated by commas, got {raw!r}"
        ) from None
    if any(value < 0 for value in seconds):
        raise ConfigError(f"EBOX_{variable} must not be negative, got {raw!r}")
    return seconds


def _parse_networks(variable: str, raw: str) -> tuple[str, ...]:
    """Comma-separated networks (`10.0.0.0/8`, `::1/128`; a bare address is one host)."""
    networks = tuple(part.strip() for part in raw.split(",") if part.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(
                f"EBOX_{variable} must be networks separated by commas, got {network!r}"
            ) from None
    return networks


# Push services of the common browsers: Chrome's, Firefox's, Edge's and Safari's.
DEFAULT_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)
DEFAULT_VAPID_SUBJECT = "mailto:no-reply@ebox.localhost"
_HOST = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _parse_hosts(variable: str, raw: str) -> tuple[str, ...]:
    """Comma-separated host names, each possibly `*.domain` (any subdomain of domain)."""
    hosts = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise ConfigError(
                f"EBOX_{variable} must be host names separated by commas (`*.domain` for its "
                f"subdomains), got {host!r}"
            )
    return hosts


def setting(
    default: Any,
    meaning: str,
    *,
    variable: str = "",
    shown: str = "",
    parse: Callable[[str], Any] | None = None,
) -> Any:
    """Declare one setting: its default, what it means (the README says so), and optionally
    its variable's name after EBOX_ (else the field's name in capitals), how the README shows
    the default, and how the variable's text is read (else by the default's type)."""
    metadata = {"meaning": meaning, "variable": variable, "shown": shown, "parse": parse}
    if isinstance(default, Path):
        return field(default_factory=lambda: default.resolve(), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Settings:
    """All of eBox's settings. An empty value marked "derived" is filled in by __post_init__."""

    env: str = setting("development", "`development`, `test` or `production`")
    log_format: str = setting(
        "",  # derived
        "`json` (one JSON object per line, for a log collector) or `text` (one line to read)",
        shown="`json` in production, else `text`",
    )
    instance_path: Path = setting(
        Path("instance"),
        "folder for the embedded defaults (database, files, keys, mail)",
        shown="`instance`",
    )
    secret_key: str = setting(
        DEFAULT_SECRET_KEY,
        "signs session cookies and CSRF tokens (≥ 32 characters in production)",
        shown="a development key",
    )
    database_url: str = setting(
        "",  # derived
        "SQLAlchemy URL, e.g. `postgresql+psycopg://ebox@db/ebox`",
        shown="SQLite under `instance/`",
    )
    database_timeout_seconds: float = setting(
        5.0,
        "longest wait of a web request for PostgreSQL to connect or answer before it is "
        "answered 503 / SERVICE_UNAVAILABLE (jobs and commands wait as long as they need)",
        shown="`5`",
        parse=lambda raw: _parse_float("DATABASE_TIMEOUT_SECONDS", raw),
    )
    redis_url: str = setting(
        "",
        "Redis for the job queue, e.g. `redis://127.0.0.1:6379/0`",
        shown="empty: embedded Redis",
    )
    redis_timeout_seconds: float = setting(
        1.0,
        "longest wait for Redis to connect or answer a command before the call fails (the "
        "worker's wait for a job is longer, as RQ needs)",
        shown="`1`",
        parse=lambda raw: _parse_float("REDIS_TIMEOUT_SECONDS", raw),
    )
    public_url: str = setting(
        "http://localhost:5000",
        "the address citizens use; SAML endpoints are derived from it",
    )
    # Storage of document content: "local" (a directory) or "s3".
    storage_backend: str = setting(
        "local", "document store: `local` (a directory) or `s3`", variable="STORAGE"
    )
    storage_path: str = setting(
        "",  # derived
        "directory of the local store",
        shown="`instance/documents`",
    )
    s3_endpoint_url: str = setting(
        "", "S3-compatible endpoint (empty: the provider's default)", shown="empty"
    )
    s3_bucket: str = setting("ebox-documents", "bucket of the S3 store")
    s3_region: str = setting("eu-west-1", "region of the S3 store")
    s3_access_key_id: str = setting(
        "", "S3 access key (empty: the usual credential chain)", shown="empty"
    )
    s3_secret_access_key: str = setting("", "S3 secret key", shown="empty")
    master_key: str = setting(
        DEFAULT_MASTER_KEY,
        "base64 of 32 random bytes; wraps every document key (the one master key when "
        "`EBOX_MASTER_KEYS` is empty)",
        shown="a development key",
    )
    master_keys: str = setting(
        "",
        "several master keys by id, `ID:BASE64,ID:BASE64` (ids of letters, digits, `.`, `_`, "
        "`-`): every one unwraps, the one named by `EBOX_MASTER_KEY_ID` wraps new documents; "
        "replaces `EBOX_MASTER_KEY` (see Key rotation in docs/operations.md)",
        shown="empty: `EBOX_MASTER_KEY` alone",
    )
    master_key_id: str = setting(
        "k1",
        "id of the master key that wraps new documents, stored with each document for rotation",
    )
    saml_idp: str = setting(
        "demo", "`demo` (built-in demo identity provider) or `federation`", variable="SAML_IDP"
    )
    saml_idp_metadata: str = setting("", "path of the federation's IdP metadata XML", shown="empty")
    saml_sp_entity_id: str = setting(
        "",  # derived
        "our entity id",
        shown="`<public url>/auth/saml/metadata`",
    )
    saml_sp_cert: str = setting(
        "", "path of our SAML certificate (PEM)", shown="generated under `instance/saml/`"
    )
    saml_sp_key: str = setting(
        "", "path of our SAML private key (PEM)", shown="generated under `instance/saml/`"
    )
    saml_sp_next_cert: str = setting(
        "",
        "path of a second SAML certificate (PEM) published in our metadata beside "
        "`EBOX_SAML_SP_CERT` during a key rollover: the next one before the switch, the previous "
        "one for a while after (see Key rotation in docs/operations.md)",
        shown="empty",
    )
    saml_attr_national_number: str = setting(
        "egovNRN", "attribute carrying the national register number"
    )
    saml_attr_given_name: str = setting("givenName", "attribute carrying the given name")
    saml_attr_surname: str = setting("surname", "attribute carrying the surname")
    saml_attr_language: str = setting("PrefLanguage", "attribute carrying the preferred language")
    smtp_url: str = setting(
        "",
        "`smtp://user:pass@host:587?starttls=1` or `smtps://host:465`",
        shown="empty: captured in `instance/mail/`",
    )
    mail_from: str = setting("eBox <no-reply@ebox.localhost>", "sender of every e-mail")
    session_idle_minutes: int = setting(15, "a session ends after this long without activity")
    session_max_hours: int = setting(
        12, "a session ends this long after the login, however active it was"
    )
    email_code_minutes: int = setting(15, "lifetime of an e-mail confirmation code")
    email_code_attempts: int = setting(5, "wrong tries before a code is burnt")
    inbox_page_size: int = setting(20, "documents per inbox page")
    max_document_bytes: int = setting(10 * 1024 * 1024, "largest document accepted")
    max_message_bytes: int = setting(
        40 * 1024 * 1024,
        "largest total of a message's documents (its main document and attachments together)",
    )
    # A 10 MB document in base64 is 13.4 MB.
    soap_max_request_bytes: int = setting(
        16 * 1024 * 1024, "largest SOAP request read; larger ones are refused before parsing"
    )
    wss_max_timestamp_minutes: int = setting(
        10,
        "longest lifetime (Expires − Created) accepted for a WS-Security Timestamp; replays are "
        "refused for as long as a request could be accepted",
    )
    api_token_minutes: int = setting(
        5, "lifetime of an access token of the REST API; a sender asks for a new one after it"
    )
    api_requests_per_minute: int = setting(
        6000,
        "calls of the REST API a sender may make per minute (a moving window); more are answered "
        "429 with Retry-After",
    )
    min_expiry_days: int = setting(1, "shortest lifetime a sender may give a document")
    max_expiry_days: int = setting(
        3 * 365 + 1, "longest lifetime a sender may give a document (3 years)"
    )
    cookie_secure: bool = setting(
        False,  # from the environment: on in production unless set
        "send cookies over HTTPS only",
        shown="on in production",
    )
    seal_key: str = setting(
        "",
        "PEM file of the platform's sealing key (registered mail)",
        shown="a demo CA under `instance/seal/`",
    )
    seal_cert: str = setting(
        "",
        "PEM file of the sealing key's certificate, followed by its intermediate CA "
        "certificates if it has any",
        shown="a demo CA under `instance/seal/`",
    )
    seal_ca_cert: str = setting(
        "",
        "PEM file of the root CA that verifiers of the seal trust",
        shown="a demo CA under `instance/seal/`",
    )
    seal_previous_certs: str = setting(
        "",
        "PEM file of the earlier sealing certificates (with their intermediate CAs), kept after "
        "a renewal: published with the current one and trusted by `ebox restore-check`, so that "
        "evidence sealed before keeps verifying",
        shown="empty",
    )
    seal_previous_ca_certs: str = setting(
        "",
        "PEM file of the root CAs of earlier sealing certificates, when a renewal changed the root",
        shown="empty",
    )
    tsa_url: str = setting(
        "",
        "RFC 3161 timestamp authority for evidence and proofs; empty: no timestamps",
        shown="empty",
    )
    tsa_ca_cert: str = setting(
        "",
        "PEM file of the timestamp authority's root CA: each token is checked against it "
        "before it is embedded (required in production with `EBOX_TSA_URL`)",
        shown="empty",
    )
    evidence_retention_years: int = setting(10, "how long registered-mail evidence is kept")
    trusted_proxies: int = setting(
        0,
        "proxies in front whose `X-Forwarded-For`/`-Proto` are believed (1 behind one nginx)",
    )
    metrics_networks: tuple[str, ...] = setting(
        ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
        "client networks that may read `/metrics` (comma-separated); anyone else gets 404, as "
        "for `/admin` (the client is the proxy's address unless `EBOX_TRUSTED_PROXIES` is set)",
        shown="loopback and private networks",
        parse=lambda raw: _parse_networks("METRICS_NETWORKS", raw),
    )
    alert_hour: int = setting(7, "hour (Europe/Brussels) of the daily e-mail alert")
    alert_expiry_window_days: int = setting(
        7, "an alert warns of unread documents deleted within this many days"
    )
    reminder_days: int = setting(
        15,
        "a document still unread this many days after it arrived is named once more in the "
        "daily alert (0: no reminders); citizens and message types may turn reminders off",
    )
    push_enabled: bool | None = setting(
        None,  # derived: on, except in production
        "push notifications: a citizen may allow them on a device, and the daily alert then "
        "also arrives there as a push that says only counts (see Push notifications in "
        "docs/operations.md)",
        variable="PUSH",
        shown="on, except in production",
        parse=_parse_bool,
    )
    push_vapid_key: str = setting(
        "",
        "PEM file of the P-256 private key that signs our pushes (VAPID); readable by eBox "
        "alone (required in production with `EBOX_PUSH`)",
        shown="generated under `instance/push/`",
    )
    push_vapid_subject: str = setting(
        DEFAULT_VAPID_SUBJECT,
        "how a push service reaches the operator: `mailto:` an address or an `https:` page "
        "(production refuses the default)",
    )
    push_services: tuple[str, ...] = setting(
        DEFAULT_PUSH_SERVICES,
        "hosts of the push services a subscription may name (comma-separated; `*.domain` for "
        "its subdomains): no push is sent anywhere else; loopback is allowed too outside "
        "production",
        shown="the push services of Chrome, Firefox, Edge and Safari",
        parse=lambda raw: _parse_hosts("PUSH_SERVICES", raw),
    )
    alert_retry_seconds: tuple[int, ...] = setting(
        (60, 600, 3600),
        "waits before each new try of a batch of alerts the mail server refused or whose worker "
        "died (comma-separated seconds; one try more than there are waits)",
        shown="`60,600,3600`",
        parse=lambda raw: _parse_seconds_list("ALERT_RETRY_SECONDS", raw),
    )
    webhook_allow_loopback: bool = setting(
        False,
        "a webhook subscription may name a loopback address (127.0.0.1, ::1, localhost), for a "
        "receiver on the developer's machine; refused in production",
        parse=_parse_bool,
    )
    webhook_retry_base_seconds: int = setting(
        30,
        "wait before the first new try of a failed webhook delivery; it doubles with each "
        "failure, up to an hour",
    )
    webhook_timeout_seconds: int = setting(
        10, "longest a webhook delivery may take (connecting: at most 5 seconds of it)"
    )
    purge_interval_minutes: int = setting(60, "how often the worker deletes expired documents")
    job_timeout_seconds: int = setting(
        180, "longest a job may run before its worker stops it (RQ's job time-out)"
    )
    worker_grace_seconds: int = setting(
        60,
        "a worker that died during a job is taken for dead this long after the job's time-out: "
        "its job is taken over and it leaves `rq info`",
    )
    worker_maintenance_seconds: int = setting(
        60,
        "how often the workers look for the jobs of dead workers (RQ's registry cleaning); also "
        "the longest an idle worker waits on Redis for a job",
    )
    application_link_hours: int = setting(
        24,
        "lifetime of the link that confirms an application's e-mail address; an application "
        "not confirmed by then is forgotten",
    )
    applications_per_client_hour: int = setting(
        10,
        "applications accepted per hour from one client address (IPv6: one /64 network)",
    )
    applications_per_email_day: int = setting(
        3,
        "applications accepted per day for one business contact address (each one sends it a "
        "confirmation e-mail)",
    )

    def __post_init__(self) -> None:
        """Fill in the settings whose default follows from others."""
        if not self.log_format:
            self.log_format = "json" if self.env == "production" else "text"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.instance_path / 'ebox.sqlite3'}"
        if not self.storage_path:
            self.storage_path = str(self.instance_path / "documents")
        self.public_url = self.public_url.rstrip("/")
        if not self.saml_sp_entity_id:
            self.saml_sp_entity_id = f"{self.public_url}/auth/saml/metadata"
        if self.push_enabled is None:
            self.push_enabled = not self.is_production

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        """The settings from EBOX_* variables; an unset or empty variable keeps the default."""
        environ = dict(os.environ if environ is None else environ)
        given: dict[str, Any] = {}
        for declared in dataclasses.fields(cls):
            raw = environ.get(variable_of(declared), "")
            if raw != "":
                given[declared.name] = _parse(declared, raw)
        given.setdefault("cookie_secure", given.get("env") == "production")
        return cls(**given)

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

    def master_key_ring(self) -> dict[str, str]:
        """Every configured master key (base64) by id; raise ConfigError if one is malformed,
        an id is repeated, or the current one (EBOX_MASTER_KEY_ID) is not among them. Without
        EBOX_MASTER_KEYS, EBOX_MASTER_KEY is the one key, under EBOX_MASTER_KEY_ID."""
        if not self.master_keys.strip():
            if len(self.master_key_id) > 50:  # the documents' column
                raise ConfigError("EBOX_MASTER_KEY_ID is longer than 50 characters")
            validate_master_key(self.master_key)
            return {self.master_key_id: self.master_key}
        if self.master_key != DEFAULT_MASTER_KEY:
            raise ConfigError(
                "EBOX_MASTER_KEY and EBOX_MASTER_KEYS are both set: put every key in "
                "EBOX_MASTER_KEYS (ID:BASE64,...) and leave EBOX_MASTER_KEY empty"
            )
        ring: dict[str, str] = {}
        for number, entry in enumerate(self.master_keys.split(","), start=1):
            key_id, colon, key = (part.strip() for part in entry.partition(":"))
            if not colon or not key_id:
                raise ConfigError(
                    f"EBOX_MASTER_KEYS: entry {number} is not ID:BASE64 (entries are separated "
                    "by commas)"
                )
            _check_master_key_id(key_id, f"EBOX_MASTER_KEYS: entry {number}'s id")
            if key_id in ring:
                raise ConfigError(f"EBOX_MASTER_KEYS names master key {key_id!r} twice")
            validate_master_key(key, setting=f"EBOX_MASTER_KEYS: key {key_id!r}")
            ring[key_id] = key
        if self.master_key_id not in ring:
            raise ConfigError(
                f"EBOX_MASTER_KEY_ID is {self.master_key_id!r}, which EBOX_MASTER_KEYS does not "
                f"define (it has {', '.join(repr(key_id) for key_id in ring)})"
            )
        return ring

    @property
    def current_master_key(self) -> str:
        """The master key that wraps new documents' keys (EBOX_MASTER_KEY_ID's)."""
        return self.master_key_ring()[self.master_key_id]

    def problems_for_production(self) -> list[str]:
        """Why these settings must not run in production; empty when they may."""
        checks = [
            (
                self.uses_demo_idp,
                "EBOX_SAML_IDP is 'demo': set it to 'federation' and give EBOX_SAML_IDP_METADATA",
            ),
            (
                not (self.saml_sp_key and self.saml_sp_cert),
                "EBOX_SAML_SP_KEY and EBOX_SAML_SP_CERT must be set (the SP signs requests)",
            ),
            (
                self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32,
                "EBOX_SECRET_KEY is the default or shorter than 32 characters",
            ),
            (
                DEFAULT_MASTER_KEY in self.master_key_ring().values(),
                "EBOX_MASTER_KEY is the embedded default key"
                if not self.master_keys
                else "EBOX_MASTER_KEYS holds the embedded default key",
            ),
            (
                self.database_url.startswith("sqlite"),
                "EBOX_DATABASE_URL points to SQLite: use PostgreSQL",
            ),
            (not self.smtp_url, "EBOX_SMTP_URL is empty: mail would only be captured on disk"),
            (
                not self.cookie_secure,
                "EBOX_COOKIE_SECURE is off: session cookies would travel without TLS",
            ),
            (
                not (self.seal_key and self.seal_cert and self.seal_ca_cert),
                "EBOX_SEAL_KEY, EBOX_SEAL_CERT and EBOX_SEAL_CA_CERT must be set: the demo seal "
                "proves nothing",
            ),
            (
                bool(self.push_enabled) and not self.push_vapid_key,
                "EBOX_PUSH is on without EBOX_PUSH_VAPID_KEY: give the file of the key that "
                "signs pushes (or turn EBOX_PUSH off)",
            ),
            (
                bool(self.push_enabled) and self.push_vapid_subject == DEFAULT_VAPID_SUBJECT,
                "EBOX_PUSH_VAPID_SUBJECT is the default: push services could not reach the "
                "operator",
            ),
            (
                self.webhook_allow_loopback,
                "EBOX_WEBHOOK_ALLOW_LOOPBACK is on: webhooks could call services of this machine",
            ),
            (
                bool(self.tsa_url) and not self.tsa_ca_cert,
                "EBOX_TSA_URL is set without EBOX_TSA_CA_CERT: timestamps would be embedded "
                "without checking who signed them",
            ),
        ]
        return [problem for is_problem, problem in checks if is_problem]

    def check(self) -> None:
        """Raise ConfigError naming every value that cannot be used."""
        self.master_key_ring()
        choices = {
            "env": ("development", "production", "test"),
            "log_format": ("json", "text"),
            "storage_backend": ("local", "s3"),
            "saml_idp": ("demo", "federation"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{_variable(name)} must be one of {', '.join(allowed)}, "
                    f"not {getattr(self, name)!r}"
                )
        ranges = {
            "redis_timeout_seconds": (0.1, 60),
            "database_timeout_seconds": (0.5, 60),
            "trusted_proxies": (0, 5),
            "alert_hour": (0, 23),
            "reminder_days": (0, 365),
            "purge_interval_minutes": (1, 24 * 60),
            "job_timeout_seconds": (1, 24 * 3600),
            "worker_grace_seconds": (1, 3600),
            "worker_maintenance_seconds": (1, 3600),
            "session_idle_minutes": (1, 24 * 60),
            "session_max_hours": (1, 7 * 24),
            "wss_max_timestamp_minutes": (1, 60),
            "api_token_minutes": (1, 60),
            "api_requests_per_minute": (1, 1_000_000),
            "application_link_hours": (1, 7 * 24),
            "applications_per_client_hour": (1, 10_000),
            "applications_per_email_day": (1, 100),
        }
        for name, (low, high) in ranges.items():
            if not low <= getattr(self, name) <= high:
                raise ConfigError(
                    f"{_variable(name)} must be from {low} to {high}, not {getattr(self, name)}"
                )
        if not self.max_document_bytes <= self.max_message_bytes:
            raise ConfigError(
                "EBOX_MAX_MESSAGE_BYTES (a message's documents together) must be at least "
                f"EBOX_MAX_DOCUMENT_BYTES ({self.max_document_bytes}), not "
                f"{self.max_message_bytes}"
            )
        if not self.push_vapid_subject.startswith(("mailto:", "https://")):
            raise ConfigError(
                "EBOX_PUSH_VAPID_SUBJECT must be a mailto: address or an https:// page, not "
                f"{self.push_vapid_subject!r}"
            )
        if self.saml_idp == "federation" and not self.saml_idp_metadata:
            raise ConfigError("EBOX_SAML_IDP is 'federation' but EBOX_SAML_IDP_METADATA is empty")
        if self.is_production:
            problems = self.problems_for_production()
            if problems:
                raise ConfigError(
                    "EBOX_ENV=production refuses to start:\n  - " + "\n  - ".join(problems)
                )
        self.check_key_files()

    def check_key_files(self) -> None:
        """Raise ConfigError when a configured key or certificate file of the SAML service
        provider or of the seal is unreadable, a key is not its certificate's, a certificate
        that signs has expired, a seal certificate does not chain to its root, or the key that
        signs pushes is not a P-256 key (or, in production, others may read its file)."""
        key_files.check_saml_sp_files(
            key_path=self.saml_sp_key,
            cert_path=self.saml_sp_cert,
            next_cert_path=self.saml_sp_next_cert,
        )
        if (
            self.seal_key
            or self.seal_cert
            or self.seal_ca_cert
            or self.seal_previous_certs
            or self.seal_previous_ca_certs
        ):
            key_files.read_seal_files(
                key_path=self.seal_key,
                cert_path=self.seal_cert,
                root_path=self.seal_ca_cert,
                earlier_certs_path=self.seal_previous_certs,
                earlier_roots_path=self.seal_previous_ca_certs,
            )
        if self.push_enabled and self.push_vapid_key:
            key_files.check_vapid_key(
                self.push_vapid_key, refuse_shared=self.is_production, setting="EBOX_PUSH_VAPID_KEY"
            )

    def to_flask(self) -> dict[str, object]:
        """The Flask settings derived from ours."""
        return {
            "SECRET_KEY": self.secret_key,
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            # hide_parameters: an error's message (and so a logged traceback) never carries the
            # values of a statement: national numbers, addresses, titles.
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
            "SESSION_COOKIE_NAME": "ebox_session",
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": self.cookie_secure,
            "PREFERRED_URL_SCHEME": "https" if self.cookie_secure else "http",
            "MAX_CONTENT_LENGTH": MAX_FORM_BYTES,
            "WTF_CSRF_TIME_LIMIT": None,
            "BABEL_DEFAULT_LOCALE": "nl",
            "BABEL_DEFAULT_TIMEZONE": "Europe/Brussels",
            "BABEL_TRANSLATION_DIRECTORIES": str(Path(__file__).parent / "translations"),
        }


def current_settings() -> Settings:
    """The settings of the running application (inside a request, a job or a command)."""
    settings: Settings = current_app.config["EBOX"]
    return settings


def variable_of(declared: dataclasses.Field[Any]) -> str:
    """The environment variable of a declared setting."""
    return "EBOX_" + (declared.metadata["variable"] or declared.name.upper())


def _variable(name: str) -> str:
    fields = {declared.name: declared for declared in dataclasses.fields(Settings)}
    return variable_of(fields[name])


def _parse(declared: dataclasses.Field[Any], raw: str) -> Any:
    parse = declared.metadata["parse"]
    if parse is not None:
        return parse(raw)
    default = declared.default if declared.default is not dataclasses.MISSING else None
    if isinstance(default, bool):
        return _parse_bool(raw)
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(
                f"{variable_of(declared)} must be a whole number, got {raw!r}"
            ) from None
    if declared.default is dataclasses.MISSING:  # a path
        return Path(raw).resolve()
    return raw


def settings_table() -> str:
    """The README's table of settings, in Markdown, from the declarations above."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for declared in dataclasses.fields(Settings):
        shown = declared.metadata["shown"] or f"`{declared.default}`"
        rows.append(f"| `{variable_of(declared)}` | {shown} | {declared.metadata['meaning']} |")
    return "\n".join(rows) + "\n"

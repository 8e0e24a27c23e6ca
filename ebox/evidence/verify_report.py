"""What the verification of registered mail's proofs found, and what it trusts: a report per
file, its checks in order, and the certificate checks shared by evidence and PDF proofs."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    PathValidationError,
)

from ebox.evidence.xml import EvidenceFacts, RecipientAuthentication


@dataclass(frozen=True)
class Evidence:
    """One verified evidence: what it states, its trusted time if any, and its digest."""

    facts: EvidenceFacts
    timestamp: datetime | None
    sha256: str


@dataclass
class Report:
    """The checks made on one file, in order; it proves something only if every check passed."""

    name: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for passed, _ in self.checks)

    def check(self, passed: bool, text: str, *, why: str = "") -> bool:
        """Record a check: text states what was checked, why what is wrong when it failed."""
        self.checks.append((passed, f"{text}: {why}" if why and not passed else text))
        return passed

    def lines(self) -> list[str]:
        lines = [f"{self.name}:"]
        lines += [f"  {'OK  ' if passed else 'FAIL'} {text}" for passed, text in self.checks]
        if self.ok and self.evidence:
            first = self.evidence[0].facts
            lines.append(
                f"  This proves, for message {first.platform_message_id} from "
                f"{first.sender_name} ({first.sender_enterprise_number}) "
                f"to {first.recipient_national_number} "
                f"(document SHA-256 {first.document_sha256}):"
            )
            lines += [
                f"    with attachment {attachment.position} SHA-256 {attachment.sha256}"
                for attachment in first.attachments
            ]
            for item in self.evidence:
                facts = item.facts
                stamped = f", timestamped {utc(item.timestamp)}" if item.timestamp else ""
                lines.append(
                    f"    {facts.event} at {utc(facts.event_time, precise=True)}{stamped} "
                    f"({facts.evidence_id})"
                )
                if facts.recipient_authentication is not None:
                    login = _login(facts.recipient_authentication)
                    lines.append(f"      the recipient had logged in {login}")
                if facts.representative is not None:
                    lines += _representative_lines(facts)
        elif not self.ok:
            lines.append("  This file does NOT prove anything: see FAIL above.")
        return lines


@dataclass(frozen=True)
class Trust:
    # The roots eBox's seal certificates chain to: one, or the old and the new one after a
    # renewal under another root.
    seal_root_pems: tuple[bytes, ...]
    # eBox's sealing certificates (the current one and any earlier ones): a certificate of
    # another organisation under the same CA must not pass for eBox's seal.
    seal_cert_pems: tuple[bytes, ...] = ()
    tsa_root_pem: bytes | None = None
    # Intermediate CAs between a seal certificate and its root, given by the verifier; the
    # evidence and the PDF signature carry theirs too. They are links, never trusted alone.
    intermediate_pems: tuple[bytes, ...] = ()

    def is_seal(self, der: bytes) -> bool:
        return hashlib.sha256(der).digest() in {
            hashlib.sha256(load_certificate(pem).dump()).digest() for pem in self.seal_cert_pems
        }

    def roots(self) -> list[asn1_x509.Certificate]:
        return [load_certificate(pem) for pem in self.seal_root_pems]

    def intermediates(self) -> list[asn1_x509.Certificate]:
        return [load_certificate(pem) for pem in self.intermediate_pems]


def check_certificate(
    report: Report,
    certificate: asn1_x509.Certificate,
    trust: Trust,
    moment: datetime | None,
    *,
    subject: str,
    usage: set[str],
    intermediates: Sequence[asn1_x509.Certificate] = (),
) -> None:
    """The certificate chains to a trusted root (through intermediates: those the signature
    carries and those the verifier gave) and was valid at moment (a trusted timestamp's time),
    or now when there is none. Judged on its own: whether the signature made with it is intact
    is another check."""
    context = ValidationContext(trust_roots=trust.roots(), moment=moment, allow_fetching=False)
    validator = CertificateValidator(
        certificate,
        intermediate_certs=[*intermediates, *trust.intermediates()],
        validation_context=context,
    )
    when = f"at the timestamp, {utc(moment)}" if moment else "now"
    try:
        asyncio.run(validator.async_validate_usage(usage))
    except (PathBuildingError, PathValidationError, InvalidCertificateError) as error:
        report.check(
            False, f"{subject} does not chain to the trusted root, or was not valid {when}: "
            f"{said(error)}",
        )  # fmt: skip
        return
    report.check(True, f"{subject} chains to the trusted root, valid {when}")


def _representative_lines(facts: EvidenceFacts) -> list[str]:
    person = facts.representative
    assert person is not None
    mandate = f"mandate {person.mandate_id}"
    if person.mandate_scope:
        mandate += f", scope {person.mandate_scope}"
    if person.mandate_valid_until is not None:
        mandate += f", valid until {utc(person.mandate_valid_until)}"
    lines = [
        f"      opened by the representative {person.name} ({person.national_number}) on "
        f"behalf of the recipient {facts.recipient_national_number}, under {mandate}, which "
        "eBox found valid and in scope at that moment"
    ]
    if facts.representative_authentication is not None:
        login = _login(facts.representative_authentication)
        lines.append(f"      the representative had logged in {login}")
    return lines


def _login(login: RecipientAuthentication) -> str:
    when = utc(login.authenticated_at) if login.authenticated_at else "?"
    return (
        f"through {login.identity_provider or '?'} at {when} "
        f"with {login.authn_context or '?'} (assertion {login.assertion_id or '?'})"
    )


def said(error: Exception) -> str:
    """A library's error message on one line, tidied: pyHanko writes byte offsets as
    "0x0x1f2c" and bytes as "b'<'", asn1crypto continues on a second line."""
    text = " ".join(str(error).split()).replace("0x0x", "0x")
    return re.sub(r"'?b'(\\x[0-9a-f]{2}|\\.|[^'\\])''?", r"'\1'", text)


def utc(moment: datetime, *, precise: bool = False) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S.%fZ}" if precise else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def load_certificate(pem: bytes | None) -> asn1_x509.Certificate:
    assert pem is not None
    _, _, der = asn1_pem.unarmor(pem)
    return asn1_x509.Certificate.load(der)

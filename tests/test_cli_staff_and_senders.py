"""Operator commands: the staff list, and creating a sender in one command."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import select

from ebox.admin.models import StaffMember
from ebox.audit.models import AuditEvent
from ebox.audit.services import verify_chain
from ebox.extensions import db
from ebox.national_number import mask
from ebox.senders.models import Sender
from tests.factories import next_national_number
from tests.senders.certificate_helpers import make_certificate_pem, make_key


def actions() -> list[tuple[str, str]]:
    db.session.rollback()
    return [(e.actor_type, e.action) for e in db.session.scalars(select(AuditEvent))]


def test_staff_add_is_validated_idempotent_and_audited(runner: FlaskCliRunner) -> None:
    number = next_national_number()
    result = runner.invoke(args=["ebox", "staff", "add", number, "--role", "support"])
    assert result.exit_code == 0, result.output
    assert mask(number) in result.output and number not in result.output

    again = runner.invoke(args=["ebox", "staff", "add", number, "--role", "support"])
    assert again.exit_code == 0 and "nothing changed" in again.output
    promoted = runner.invoke(args=["ebox", "staff", "add", number, "--role", "admin"])
    assert promoted.exit_code == 0 and "now admin (was support)" in promoted.output

    member = db.session.scalars(select(StaffMember)).one()
    assert (member.national_number, member.role) == (number, "admin")
    assert actions() == [("operator", "staff.added"), ("operator", "staff.role_changed")]


def test_staff_add_refuses_a_wrong_number_or_role(runner: FlaskCliRunner) -> None:
    wrong = runner.invoke(args=["ebox", "staff", "add", "85073003329", "--role", "admin"])
    assert wrong.exit_code == 1
    assert "check digits" in wrong.output
    role = runner.invoke(args=["ebox", "staff", "add", next_national_number(), "--role", "root"])
    assert role.exit_code == 2
    assert db.session.scalars(select(StaffMember)).first() is None


def test_staff_list_masks_numbers_and_remove_takes_access_away(runner: FlaskCliRunner) -> None:
    first, second = next_national_number(), next_national_number()
    runner.invoke(args=["ebox", "staff", "add", first, "--role", "admin"])
    runner.invoke(args=["ebox", "staff", "add", second, "--role", "support"])

    listing = runner.invoke(args=["ebox", "staff", "list"])
    assert mask(first) in listing.output and mask(second) in listing.output
    assert first not in listing.output and second not in listing.output

    removed = runner.invoke(args=["ebox", "staff", "remove", second])
    assert removed.exit_code == 0, removed.output
    assert mask(second) not in runner.invoke(args=["ebox", "staff", "list"]).output
    again = runner.invoke(args=["ebox", "staff", "remove", second])
    assert again.exit_code == 1 and "is not staff" in again.output
    assert ("operator", "staff.removed") in actions()
    assert verify_chain() == []


def test_senders_create_prints_only_the_id_and_creates_everything(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    certificate = tmp_path / "backoffice.pem"
    certificate.write_text(make_certificate_pem(make_key("ec")))
    result = runner.invoke(
        args=[
            "ebox", "senders", "create",
            "--name", "City of Ghent",
            "--enterprise-number", "0207.451.227",
            "--certificate", str(certificate),
            "--message-type", "TAX:365",
            "--message-type", "PARKING_FINE:60:Parking fine",
            "--registered",
            "--contact-email", "info@ghent.example",
            "--contact-url", "https://ghent.example/contact",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().isdigit()

    sender = db.session.get(Sender, int(result.output))
    assert sender is not None
    assert (sender.name, sender.enterprise_number, sender.is_active) == (
        "City of Ghent", "0207451227", True
    )  # fmt: skip
    assert sender.may_send_registered is True
    assert sender.contact_email == "info@ghent.example"
    assert [(t.code, t.validity_days, t.name_fr) for t in sender.message_types] == [
        ("PARKING_FINE", 60, "Parking fine"),
        ("TAX", 365, "TAX"),
    ]
    assert len(sender.certificates) == 1
    assert actions() == [("operator", "sender.created")]


def test_senders_create_refuses_bad_input_with_a_clear_message(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    good = tmp_path / "good.pem"
    good.write_text(make_certificate_pem())
    weak = tmp_path / "weak.pem"
    weak.write_text(make_certificate_pem(make_key("rsa", bits=1024)))
    base = ["ebox", "senders", "create", "--name", "Test", "--message-type", "TAX:30"]
    cases = [
        (["--enterprise-number", "0207451228", "--certificate", str(good)], "check digits"),
        (["--enterprise-number", "0207451227", "--certificate", str(weak)], "2048"),
        (
            ["--enterprise-number", "0207451227", "--certificate", str(good),
             "--message-type", "tax:abc"],
            "CODE:DAYS",
        ),
        (
            ["--enterprise-number", "0207451227", "--certificate", str(good),
             "--message-type", "LONG:5000"],
            "1 to 1096",
        ),
        (
            ["--enterprise-number", "0207451227", "--certificate", str(good),
             "--contact-url", "http://x.example"],
            "https://",
        ),
    ]  # fmt: skip
    for extra, message in cases:
        result = runner.invoke(args=[*base, *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert message in result.output, (extra, result.output)
    assert db.session.scalars(select(Sender)).first() is None


def test_senders_create_refuses_a_known_enterprise_number_or_certificate(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    pem = tmp_path / "a.pem"
    pem.write_text(make_certificate_pem())
    other = tmp_path / "b.pem"
    other.write_text(make_certificate_pem())
    args = ["ebox", "senders", "create", "--name", "Agency", "--message-type", "X1:10"]
    first = runner.invoke(
        args=[*args, "--enterprise-number", "0207451227", "--certificate", str(pem)]
    )
    assert first.exit_code == 0
    same_number = runner.invoke(
        args=[*args, "--enterprise-number", "0207451227", "--certificate", str(other)]
    )
    assert same_number.exit_code == 1 and "already exists" in same_number.output
    same_certificate = runner.invoke(
        args=[*args, "--enterprise-number", "0123456749", "--certificate", str(pem)]
    )
    assert same_certificate.exit_code == 1 and "already registered" in same_certificate.output
    assert len(db.session.scalars(select(Sender)).all()) == 1

"""The `flask --app app ebox ...` commands for operators: thin wrappers around the domains'
services, one transaction per command."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
from flask.cli import AppGroup

from ebox.admin import services as staff
from ebox.alerts import services as alerts
from ebox.audit.services import OPERATOR, seal_anchor, verify_log
from ebox.config import current_settings, settings_table
from ebox.db_types import utcnow
from ebox.national_number import mask
from ebox.profile.services import normalise_email
from ebox.retention import services as retention
from ebox.senders import services as senders
from ebox.senders.certificates import parse_certificate
from ebox.senders.enterprise_number import normalise
from ebox.storage import rotation
from ebox.transactions import commit

ebox_group = AppGroup("ebox", help="eBox operator commands.")


@ebox_group.command("settings")
def settings_command() -> None:
    """Print the table of every EBOX_* setting (the README's), from their declarations."""
    click.echo(settings_table(), nl=False)


@ebox_group.command("demo-data")
def demo_data_command() -> None:
    """Create demo senders, message types, citizens and documents (safe to run again)."""
    # Imported here: production never loads the demo package.
    from ebox.demo.data import create_demo_data

    summary = create_demo_data()
    commit()
    click.echo(summary)


staff_group = AppGroup("staff", help="Who may use the staff pages (/admin), and with which role.")
ebox_group.add_command(staff_group)


@staff_group.command("add")
@click.argument("national_number")
@click.option("--role", type=click.Choice(["support", "admin"]), required=True)
def staff_add_command(national_number: str, role: str) -> None:
    """Make NATIONAL_NUMBER staff with ROLE, or change their role."""

    try:
        change = staff.add_staff(raw_number=national_number, role=role, actor=OPERATOR)
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo(change.message)


@staff_group.command("remove")
@click.argument("national_number")
def staff_remove_command(national_number: str) -> None:
    """Take away NATIONAL_NUMBER's access to the staff pages."""

    try:
        message = staff.remove_staff(raw_number=national_number, actor=OPERATOR)
    except staff.StaffError as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo(message)


@staff_group.command("list")
def staff_list_command() -> None:
    """List staff, national numbers masked."""

    members = staff.list_staff()
    if not members:
        click.echo("No staff yet. Add someone with: flask --app app ebox staff add NUMBER --role")
    for member in members:
        click.echo(
            f"{mask(member.national_number)}  {member.role:<8}  added {member.added_at:%Y-%m-%d}"
        )


senders_group = AppGroup("senders", help="Institutions that publish in eBox.")
ebox_group.add_command(senders_group)


@senders_group.command("create")
@click.option("--name", required=True, help="The organisation's name, as citizens see it.")
@click.option("--enterprise-number", required=True, help="10 digits, e.g. 0123.456.749.")
@click.option(
    "--certificate",
    "certificate_file",
    required=True,
    type=click.File("r", encoding="ascii", errors="replace"),
    help="The PEM certificate the back office signs with ('-' for standard input).",
)
@click.option(
    "--message-type",
    "message_types",
    multiple=True,
    required=True,
    metavar="CODE:DAYS[:NAME]",
    help="A message type and its validity in days; repeat for each type.",
)
@click.option("--registered", is_flag=True, help="Allow registered mail.")
@click.option("--contact-email", default="", help="Shown to citizens with every document.")
@click.option("--contact-phone", default="")
@click.option("--contact-url", default="", help="https:// only.")
@click.option("--contact-address", default="")
def senders_create_command(
    name: str,
    enterprise_number: str,
    certificate_file: IO[str],
    message_types: tuple[str, ...],
    registered: bool,
    contact_email: str,
    contact_phone: str,
    contact_url: str,
    contact_address: str,
) -> None:
    """Create an approved, active sender and print its id (and nothing else)."""

    try:
        email = normalise_email(contact_email) if contact_email else ""
    except ValueError as exc:
        raise click.ClickException(f"--contact-email is not an e-mail address: {exc}") from exc
    try:
        sender = senders.create_sender(
            name=_sender_name(name),
            enterprise_number=normalise(enterprise_number),
            certificate=parse_certificate(certificate_file.read(64_000), now=utcnow()),
            message_types=[senders.parse_message_type_option(text) for text in message_types],
            may_send_registered=registered,
            contact=senders.ContactDetails(
                email=email,
                phone=contact_phone.strip(),
                url=senders.check_public_url(contact_url) if contact_url else "",
                address=contact_address.strip(),
            ),
            actor=OPERATOR,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    commit()
    click.echo(sender.id)


def _sender_name(name: str) -> str:
    name = " ".join(name.split())
    if not 2 <= len(name) <= 200:
        raise click.ClickException("--name must have 2 to 200 characters.")
    return name


alerts_group = AppGroup("alerts", help="The daily e-mail alert to citizens.")
ebox_group.add_command(alerts_group)


@alerts_group.command("run")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The alert day to run (default: today in Brussels). A day already run is completed, "
    "never sent twice.",
)
def alerts_run_command(day: datetime | None) -> None:
    """Plan and send a day's alerts in this process, with progress and a summary."""

    alert_day = day.date() if day else alerts.platform_today()
    outcome = alerts.run_inline(alert_day, progress=click.echo)
    counts = alerts.delivery_counts(alert_day)
    click.echo(
        f"alerts {alert_day}: {outcome.sent} sent now, {outcome.skipped} skipped (read meanwhile), "
        f"{len(outcome.failed)} refused by the mail server, {len(outcome.unknown)} uncertain; "
        f"the day so far: {_counts(counts)}"
    )
    if outcome.failed:
        raise click.ClickException(
            "some alerts were refused by the mail server; run the command again to retry them"
        )


@ebox_group.command("purge")
@click.option(
    "--now",
    "moment",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"]),
    help="Delete what had expired at this earlier UTC time instead of now (to replay a run). "
    "A time in the future is refused: no document is deleted before its expiry.",
)
@click.option("--orphans", is_flag=True, help="Also remove stored objects that no document names.")
def purge_command(moment: datetime | None, orphans: bool) -> None:
    """Delete every expired document: its stored content, and all but a minimal record."""

    at = moment.replace(tzinfo=UTC) if moment else None
    try:
        summary = retention.purge_expired(
            at,
            progress=lambda done: click.echo(f"{done.documents} documents deleted so far"),
        )
    except retention.PurgeInTheFuture as refused:
        raise click.ClickException(f"--now {refused}") from refused
    click.echo(
        f"purge: {summary.documents} expired documents deleted, "
        f"{summary.objects_removed} stored objects removed"
    )
    if orphans:
        click.echo(f"orphans: {retention.remove_orphan_objects()} stored objects removed")


evidence_group = AppGroup("evidence", help="Registered mail's sealed evidence and proofs.")
ebox_group.add_command(evidence_group)


@evidence_group.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--root",
    "roots",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The root CA (PEM) of eBox's seal, the trust anchor: eBox publishes it at "
    "<eBox address>/evidence/seal-root.pem; compare its fingerprint with the one eBox gave you. "
    "Repeat it for the root of an earlier seal certificate, if eBox changed roots.",
)
@click.option(
    "--seal-cert",
    "seal_certs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="eBox's sealing certificate (PEM), published at <eBox address>/evidence/seal.pem; "
    "repeat for earlier ones (all of them: <eBox address>/evidence/seal-certs.pem). CA "
    "certificates in these files are taken as intermediates. Another organisation's "
    "certificate under the same root fails.",
)
@click.option(
    "--tsa-root",
    type=click.Path(exists=True, dir_okay=False),
    help="The timestamp authority's root CA (PEM): every evidence must then carry a timestamp "
    "of that authority. Without it timestamps are read, not trusted.",
)
def evidence_verify_command(
    files: tuple[str, ...],
    roots: tuple[str, ...],
    seal_certs: tuple[str, ...],
    tsa_root: str | None,
) -> None:
    """Check PDF proofs of delivery and evidence XMLs (XMLs given together as one chain) and
    say what they prove, or exactly why they do not. Exit status 1 if any check fails.

    Nothing is trusted by default, not even this installation's own seal: the files prove
    something only under the root and sealing certificate you name."""

    # Imported here: pyHanko's validation stack is loaded for this command only.
    from ebox.evidence.verify import MAX_FILE_BYTES, load_trust, verify_files

    try:
        trust = load_trust(
            roots=[Path(name) for name in roots],
            seal_certs=[Path(name) for name in seal_certs],
            tsa_root=Path(tsa_root) if tsa_root else None,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    loaded = []
    for name in files:
        path = Path(name)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise click.ClickException(f"{name}: larger than {MAX_FILE_BYTES} bytes")
        loaded.append((name, path.read_bytes()))
    # pyHanko logs each failed path with a traceback; the report says what failed, once.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    reports = verify_files(loaded, trust)
    for report in reports:
        click.echo("\n".join(report.lines()))
    if not all(report.ok for report in reports):
        raise SystemExit(1)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "none"


audit_group = AppGroup("audit", help="The tamper-evident audit log.")
ebox_group.add_command(audit_group)


@audit_group.command("verify")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    metavar="HASH",
    help="An anchor's hash kept outside the database (from the application's log, or printed by "
    "an earlier check): it must still be an intact anchor of the log. Repeat for more.",
)
def audit_verify_command(anchors: tuple[str, ...]) -> None:
    """Check the whole audit log: every chain, every anchor, and that they agree.
    Exit status 1 if anything was changed, removed or reordered."""

    report = verify_log(witnessed_anchors=anchors)
    click.echo(f"{report.events} events in {report.chains} chains, {report.anchors} anchors")
    if report.latest_anchor is not None:
        latest = report.latest_anchor
        click.echo(
            f"latest anchor: {latest.id}, sealed {latest.created_at.isoformat(timespec='seconds')}"
            f", hash {latest.hash}"
        )
    click.echo(f"{report.unanchored_events} events written since are not anchored yet")
    if report.is_intact:
        click.echo("the log is intact")
        return
    for problem in report.all_problems():
        click.echo(problem, err=True)
    raise SystemExit(1)


@ebox_group.command("restore-check")
@click.option(
    "--sample",
    type=click.IntRange(1, 100_000),
    default=50,
    show_default=True,
    help="Documents opened per master key, and registered documents whose proof is verified.",
)
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    metavar="HASH",
    help="An audit anchor's hash kept outside the database (the application's log): it must "
    "be an intact anchor of the restored log. Repeat for more.",
)
@click.option(
    "--root",
    "roots",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The seal's root CA (PEM) to verify proofs under (default: the configured ones, "
    "EBOX_SEAL_CA_CERT and EBOX_SEAL_PREVIOUS_CA_CERTS); repeat for earlier roots.",
)
@click.option(
    "--seal-cert",
    "seal_certs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A sealing certificate (PEM), with --root; repeat for earlier ones (default: "
    "EBOX_SEAL_CERT and EBOX_SEAL_PREVIOUS_CERTS).",
)
def restore_check_command(
    sample: int, anchors: tuple[str, ...], roots: tuple[str, ...], seal_certs: tuple[str, ...]
) -> None:
    """After a restore, before serving: the audit log verifies, a sample of proofs and
    evidence verifies, a sample of documents decrypts under every master key in use (so the
    object store matches the database), webhook secrets unwrap. Exit status 1 if any check
    fails."""

    from ebox import restore_check

    # Imported here: pyHanko's validation stack is loaded for this command only.
    from ebox.evidence.verify import load_trust

    if roots:
        try:
            trust = load_trust(
                roots=[Path(name) for name in roots],
                seal_certs=[Path(name) for name in seal_certs],
                tsa_root=None,
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    elif seal_certs:
        raise click.ClickException("--seal-cert needs --root")
    else:
        trust = restore_check.platform_trust()
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    checks = []
    for run in (
        lambda: restore_check.check_audit(anchors),
        lambda: restore_check.check_evidence(sample, trust),
        lambda: restore_check.check_documents(sample),
        lambda: restore_check.check_webhook_secrets(sample),
    ):
        started = time.monotonic()
        check = run()
        checks.append(check)
        state = "OK  " if check.ok else "FAIL"
        click.echo(f"{state} {check.name}: {check.summary} ({time.monotonic() - started:.1f} s)")
        for failure in check.failures[:20]:
            click.echo(f"     {failure}", err=True)
        if len(check.failures) > 20:
            click.echo(f"     ... and {len(check.failures) - 20} more", err=True)
    if all(check.ok for check in checks):
        click.echo("restore check passed")
        return
    failed = ", ".join(check.name for check in checks if not check.ok)
    click.echo(f"restore check FAILED: {failed}")
    raise SystemExit(1)


@audit_group.command("anchor")
def audit_anchor_command() -> None:
    """Seal the heads of every chain into an anchor now and print its hash (writers also seal
    one by themselves every 10 seconds while they write)."""

    anchor = seal_anchor()
    commit()
    click.echo(f"anchor {anchor.id}: {anchor.hash}")


keys_group = AppGroup(
    "keys",
    help="The master keys that wrap the documents' keys and webhook secrets, and rotation.",
)
ebox_group.add_command(keys_group)


@keys_group.command("status")
def keys_status_command() -> None:
    """How many documents (with their attachments) and webhook secrets each master key id
    wraps, and whether it is configured. Exit status 1 if they need a master key that is not
    configured."""

    settings = current_settings()
    ring = settings.master_key_ring()
    counts = rotation.documents_by_key_id()
    secrets = rotation.webhook_secrets_by_key_id()
    missing = False
    for key_id in sorted(set(ring) | set(counts) | set(secrets)):
        count, secret_count = counts.get(key_id, 0), secrets.get(key_id, 0)
        if key_id not in ring:
            missing = True
            state = "NOT CONFIGURED: eBox refuses to start"
        elif key_id == settings.master_key_id:
            state = "configured, wraps new documents"
        elif count == 0 and secret_count == 0:
            state = "configured, no document needs it: it may be removed"
        else:
            state = "configured"
        also = f", {secret_count} webhook secrets" if secret_count else ""
        click.echo(f"master key {key_id!r}: {count} documents{also} ({state})")
    if missing:
        raise SystemExit(1)


@keys_group.command("rotate")
@click.option("--to", "to", required=True, metavar="ID", help="The master key to wrap under.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=rotation.ROTATION_BATCH,
    show_default=True,
    help="Keys re-wrapped per transaction.",
)
@click.option(
    "--pause",
    "pause_seconds",
    type=click.FloatRange(0, 60),
    default=0.0,
    help="Seconds to wait between batches, to spare a busy database.",
)
@click.option(
    "--sample",
    type=click.IntRange(0, 100_000),
    default=rotation.VERIFY_SAMPLE,
    show_default=True,
    help="Documents opened (and webhook secrets unwrapped) afterwards to check them (0: none).",
)
def keys_rotate_command(to: str, batch_size: int, pause_seconds: float, sample: int) -> None:
    """Re-wrap every document key and webhook secret not yet under master key ID, batch by
    batch (the stored documents are not touched), then decrypt a sample. Killed, it goes on
    where it stopped when run again. Exit status 1 if a key could not be re-wrapped or a
    sample failed."""

    started = time.monotonic()
    try:
        with _rotation_progress(to) as progress:
            outcome = rotation.rotate(
                to, batch_size=batch_size, pause_seconds=pause_seconds, progress=progress
            )
    except rotation.RotationError as refused:
        raise click.ClickException(str(refused)) from refused
    seconds = time.monotonic() - started
    rate = outcome.rewrapped / seconds if seconds > 0 else 0.0
    click.echo(
        f"rotation to {to!r}: {outcome.rewrapped - outcome.secrets_rewrapped} document keys "
        f"and {outcome.secrets_rewrapped} webhook secrets re-wrapped in {seconds:.1f} s "
        f"({rate:.0f}/s), {outcome.skipped} deleted meanwhile, "
        f"{len(outcome.failures)} could not be unwrapped"
    )
    remaining = Counter(rotation.documents_by_key_id())
    remaining.update(rotation.webhook_secrets_by_key_id())
    del remaining[to]
    failed = _report_failures("could not be unwrapped", outcome.failures)
    if remaining:
        click.echo(
            "still under other master keys: "
            + ", ".join(f"{key_id!r} {count}" for key_id, count in sorted(remaining.items()))
            + " (published meanwhile by a node with another current key? run again)"
        )
    if sample:
        failed |= _verify(to, sample)
    if failed:
        raise SystemExit(1)


@keys_group.command("verify")
@click.option("--key-id", metavar="ID", help="The master key (default: the current one).")
@click.option("--sample", type=click.IntRange(1, 100_000), default=rotation.VERIFY_SAMPLE)
def keys_verify_command(key_id: str | None, sample: int) -> None:
    """Open a sample of the documents under a master key: each must decrypt and match its
    SHA-256; unwrap as many webhook secrets. Exit status 1 if one does not."""

    if _verify(key_id or current_settings().master_key_id, sample):
        raise SystemExit(1)


def _verify(key_id: str, sample: int) -> bool:
    """Check a sample; print the outcome; True if a document or webhook secret failed."""
    report = rotation.verify_sample(key_id, sample)
    click.echo(
        f"verified {report.checked} documents under {key_id!r}: "
        f"{report.checked - len(report.failures)} decrypt and match their SHA-256"
    )
    secrets = rotation.verify_webhook_secrets(key_id, sample)
    if secrets.checked:
        click.echo(
            f"verified {secrets.checked} webhook secrets under {key_id!r}: "
            f"{secrets.checked - len(secrets.failures)} unwrap"
        )
    return _report_failures("failed the check", report.failures + secrets.failures)


def _report_failures(what: str, failures: list[rotation.Failure]) -> bool:
    for failure in failures[:100]:
        click.echo(f"{failure.kind} {failure.document_id} {what}: {failure.reason}", err=True)
    if len(failures) > 100:
        click.echo(f"... and {len(failures) - 100} more (in the log)", err=True)
    return bool(failures)


@contextmanager
def _rotation_progress(to: str) -> Iterator[Callable[[rotation.RotationProgress], None]]:
    """A progress bar on a terminal, else a line per batch (for logs)."""
    if not sys.stdout.isatty():
        yield lambda state: click.echo(
            f"{state.rewrapped + state.skipped + len(state.failures)} of {state.total} "
            f"keys done ({state.rewrapped} re-wrapped under {to!r})"
        )
        return
    bar: Any = None
    done = 0

    def update(state: rotation.RotationProgress) -> None:
        nonlocal bar, done
        if bar is None:
            bar = click.progressbar(length=state.total, label=f"re-wrapping under {to!r}")
            bar.__enter__()
        now = state.rewrapped + state.skipped + len(state.failures)
        bar.update(now - done)
        done = now

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)

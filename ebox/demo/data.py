"""Demo senders, message types, citizens and documents for the embedded default.

Idempotent: senders, types and citizens are found by their natural keys, documents by their
MessageID, so running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from ebox import national_number
from ebox.accounts.models import Citizen
from ebox.db_types import utcnow
from ebox.demo.pdf import make_pdf
from ebox.extensions import db
from ebox.mailbox.models import Document
from ebox.mailbox.publication import Publication, SubmittedAttachment, publish
from ebox.senders.models import MessageType, Sender


@dataclass(frozen=True)
class DemoCitizen:
    national_number: str
    given_name: str
    surname: str
    language: str
    # Activated citizens have accepted the conditions and confirmed an e-mail address.
    activated: bool


DEMO_CITIZENS = (
    DemoCitizen(national_number.make("850730033"), "Jan", "Peeters", "nl", activated=False),
    DemoCitizen(national_number.make("790215264"), "Marie", "Dubois", "fr", activated=True),
    DemoCitizen(national_number.make("660412187"), "Lukas", "Schmitz", "de", activated=True),
    DemoCitizen(
        national_number.make("030901125", born_from_2000=True),
        "Emma",
        "Claes",
        "en",
        activated=False,
    ),
)

DEMO_SENDERS = (
    {
        "name": "Demo Pension Service",
        "enterprise_number": "0206738078",
        "contact_email": "contact@pensions.demo.example",
        "contact_phone": "+32 78 15 17 65",
        "contact_url": "https://pensions.demo.example/contact",
        "contact_address": "Zuidertoren, 1060 Brussels",
        "may_send_registered": True,
        "types": [
            (
                "PENSION_STATEMENT",
                "Pensioenoverzicht",
                "Aperçu de pension",
                "Rentenübersicht",
                "Pension statement",
                365,
            )
        ],
    },
    {
        "name": "Demo Family Allowance Fund",
        "enterprise_number": "0404055577",
        "contact_email": "info@family.demo.example",
        "contact_phone": "+32 2 000 12 34",
        "contact_url": "https://family.demo.example",
        "contact_address": "Rue de Trèves 70, 1000 Brussels",
        "may_send_registered": False,
        "types": [
            (
                "ALLOWANCE_DECISION",
                "Beslissing kinderbijslag",
                "Décision allocations",
                "Kindergeldbescheid",
                "Allowance decision",
                90,
            )
        ],
    },
)

# (ticket, sender index, title per language, days until deletion, registered, already read)
DEMO_DOCUMENTS = (
    (
        "DEMO-0001",
        0,
        {
            "nl": "Uw pensioenoverzicht 2026",
            "fr": "Votre aperçu de pension 2026",
            "de": "Ihre Rentenübersicht 2026",
            "en": "Your pension statement 2026",
        },
        300,
        False,
        False,
    ),
    (
        "DEMO-0002",
        1,
        {
            "nl": "Beslissing over uw kinderbijslag",
            "fr": "Décision concernant vos allocations familiales",
            "de": "Bescheid über Ihr Kindergeld",
            "en": "Decision on your family allowance",
        },
        80,
        False,
        False,
    ),
    (
        "DEMO-0003",
        0,
        {
            "nl": "Aangetekende brief: wijziging van uw pensioenbetaling",
            "fr": "Lettre recommandée : modification de votre paiement de pension",
            "de": "Einschreiben: Änderung Ihrer Rentenzahlung",
            "en": "Registered letter: change of your pension payment",
        },
        120,
        True,
        False,
    ),
    (
        "DEMO-0004",
        1,
        {
            "nl": "Betalingskalender voor het volgende kwartaal",
            "fr": "Calendrier des paiements du prochain trimestre",
            "de": "Zahlungsplan für das nächste Quartal",
            "en": "Payment schedule for next quarter",
        },
        5,
        False,
        False,
    ),
    (
        "DEMO-0005",
        0,
        {
            "nl": "Bevestiging van uw adreswijziging",
            "fr": "Confirmation de votre changement d'adresse",
            "de": "Bestätigung Ihrer Adressänderung",
            "en": "Confirmation of your address change",
        },
        200,
        False,
        True,
    ),
)


# The demo message with several documents: the decision, then how it was calculated and when it
# is paid.
DEMO_WITH_ATTACHMENTS = "DEMO-0002"


def _demo_attachments(ticket: str, sender: Sender) -> list[SubmittedAttachment]:
    if not ticket.startswith(DEMO_WITH_ATTACHMENTS):
        return []
    calculation = make_pdf(
        "Calculation", [sender.name, "Base amount, supplements and the total per month."]
    )
    payments = "month,amount_eur\n2027-01,181.40\n2027-02,181.40\n2027-03,181.40\n"
    return [
        SubmittedAttachment("calculation.pdf", "application/pdf", calculation),
        SubmittedAttachment("payments.csv", "text/csv", payments.encode()),
    ]


def create_demo_data() -> str:
    """Create what is missing; return a one-line summary. Flushes; the caller commits."""
    senders = [_sender(spec) for spec in DEMO_SENDERS]
    citizens = [_citizen(demo) for demo in DEMO_CITIZENS]
    published = 0
    for citizen in citizens:
        for age, document in enumerate(DEMO_DOCUMENTS):
            ticket, sender_index, titles, days, registered, read = document
            title = titles[citizen.language]
            published += _document(
                citizen, senders[sender_index], ticket, title, days, registered, read, age
            )
    return f"demo data: {len(senders)} senders, {len(citizens)} citizens, {published} new documents"


def _sender(spec: dict) -> Sender:
    sender = db.session.scalars(
        select(Sender).where(Sender.enterprise_number == spec["enterprise_number"])
    ).first()
    if sender is None:
        fields = {k: v for k, v in spec.items() if k != "types"}
        sender = Sender(**fields)
        db.session.add(sender)
        db.session.flush()
    for code, nl, fr, de, en, days in spec["types"]:
        if not any(t.code == code for t in sender.message_types):
            db.session.add(
                MessageType(
                    sender_id=sender.id,
                    code=code,
                    name_nl=nl,
                    name_fr=fr,
                    name_de=de,
                    name_en=en,
                    validity_days=days,
                )
            )
    db.session.flush()
    db.session.refresh(sender)
    return sender


def _citizen(demo: DemoCitizen) -> Citizen:
    citizen = db.session.scalars(
        select(Citizen).where(Citizen.national_number == demo.national_number)
    ).first()
    if citizen is None:
        citizen = Citizen(
            national_number=demo.national_number,
            given_name=demo.given_name,
            surname=demo.surname,
            language=demo.language,
        )
        if demo.activated:
            now = utcnow()
            citizen.email = f"{demo.given_name.lower()}.{demo.surname.lower()}@example.org"
            citizen.email_confirmed_at = now
            citizen.conditions_accepted_at = now
        db.session.add(citizen)
        db.session.flush()
    return citizen


def _document(
    citizen: Citizen,
    sender: Sender,
    ticket: str,
    title: str,
    days: int,
    registered: bool,
    read: bool,
    age: int,
) -> int:
    """Publish one demo document unless this citizen already has it; 1 if published."""
    ticket = f"{ticket}-{citizen.national_number[-5:]}"
    exists = db.session.scalars(
        select(Document.id).where(Document.sender_id == sender.id, Document.sender_ticket == ticket)
    ).first()
    if exists is not None:
        return 0
    message_type = sender.message_types[0]
    pdf = make_pdf(
        title,
        [
            sender.name,
            f"For {citizen.given_name} {citizen.surname}",
            "This is a demonstration document created by eBox.",
        ],
    )
    published = publish(
        Publication(
            sender=sender,
            message_type=message_type,
            recipient_national_number=citizen.national_number,
            ticket=ticket,
            sequence=None,
            title=title,
            language=citizen.language,
            file_name=f"{ticket.lower()}.pdf",
            media_type="application/pdf",
            expires_at=utcnow() + timedelta(days=days),
            is_registered=registered,
            # Spread over the past weeks, as a real inbox is; the first is the newest.
            published_at=utcnow() - timedelta(days=6 * age, hours=3 * age),
        ),
        pdf,
        attachments=_demo_attachments(ticket, sender),
    )
    document = published.document
    if read:
        document.read_at = utcnow()
    return 1

"""A ContentHandover that names a representative (schema 1.1): what the sealed XML states, how
schema 1.0 readers see it, and that xmlsec1 catches any change to it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree

from ebox.evidence.seal import Seal, demo_seal
from ebox.evidence.xml import (
    NAMESPACES,
    SCHEMA_PATH,
    EvidenceFacts,
    EvidenceFormatError,
    RecipientAuthentication,
    Representative,
    build_and_seal,
    read_facts,
)
from tests.evidence.samples import sample_facts
from tests.evidence.verifiers import xmlsec1_verify

# The schema as first published, before Representative: what a verifier may still hold.
SCHEMA_1_0 = Path(__file__).resolve().parent / "schema-1.0" / "Evidence-v1.xsd"

HOLDER = Representative(
    national_number="79021512345",
    name="Marie Dubois",
    mandate_id="3f0b6f5e-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    mandate_scope="registered-mail",
    mandate_valid_until=datetime(2027, 6, 30, 22, 0, tzinfo=UTC),
)
HOLDER_LOGIN = RecipientAuthentication(
    identity_provider="https://idp.federation.example",
    authn_context="urn:be:fedict:iam:fas:citizen:eid",
    authenticated_at=datetime(2026, 11, 29, 9, 25, tzinfo=UTC),
    assertion_id="_holder-assertion-99",
)


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> Seal:
    return demo_seal(tmp_path_factory.mktemp("seal"))


def by_representative(**changes: object) -> EvidenceFacts:
    stated = {"representative": HOLDER, "representative_authentication": HOLDER_LOGIN}
    return sample_facts(**{**stated, **changes})


def validates(xml: bytes, schema: Path) -> bool:
    return etree.XMLSchema(etree.parse(str(schema))).validate(etree.fromstring(xml))


def children(element: etree._Element | None) -> list[str]:
    assert element is not None
    return [etree.QName(child).localname for child in element]


def test_the_handover_names_the_representative_beside_the_recipient(seal: Seal) -> None:
    xml = build_and_seal(by_representative(), seal)
    root = etree.fromstring(xml)

    names = children(root)
    assert names.index("Recipient") + 1 == names.index("Representative")
    assert names.index("Representative") + 1 == names.index("Message")
    assert root.findtext("ev:Recipient/ev:NationalNumber", namespaces=NAMESPACES) == (
        "85073003328"  # the recipient stays the addressee
    )
    # The login is the representative's own: the recipient did not log in.
    assert root.find("ev:Recipient/ev:Authentication", NAMESPACES) is None
    person = root.find("ev:Representative", NAMESPACES)
    assert children(person) == ["NationalNumber", "Name", "Authentication", "Mandate"]
    assert person is not None
    assert person.findtext("ev:NationalNumber", namespaces=NAMESPACES) == "79021512345"
    assert person.findtext("ev:Name", namespaces=NAMESPACES) == "Marie Dubois"
    assert person.findtext("ev:Authentication/ev:AssertionId", namespaces=NAMESPACES) == (
        "_holder-assertion-99"
    )
    mandate = person.find("ev:Mandate", NAMESPACES)
    assert children(mandate) == ["MandateId", "Scope", "ValidUntil"]
    assert mandate is not None
    assert mandate.findtext("ev:ValidUntil", namespaces=NAMESPACES) == (
        "2027-06-30T22:00:00.000000Z"
    )


def test_it_reads_back_as_it_was_stated(seal: Seal) -> None:
    facts = read_facts(build_and_seal(by_representative(), seal))
    assert facts.representative == HOLDER
    assert facts.representative_authentication == HOLDER_LOGIN
    assert facts.recipient_authentication is None
    assert facts.recipient_national_number == "85073003328"


def test_a_mandate_without_scope_or_end_states_neither(seal: Seal) -> None:
    open_ended = dataclasses.replace(HOLDER, mandate_scope=None, mandate_valid_until=None)
    xml = build_and_seal(sample_facts(representative=open_ended), seal)
    root = etree.fromstring(xml)
    assert children(root.find("ev:Representative/ev:Mandate", NAMESPACES)) == ["MandateId"]
    assert children(root.find("ev:Representative", NAMESPACES)) == [
        "NationalNumber",
        "Name",
        "Mandate",
    ]
    assert read_facts(xml).representative == open_ended


def test_it_follows_the_schema_and_verifies_with_xmlsec1(seal: Seal, tmp_path: Path) -> None:
    xml = build_and_seal(by_representative(), seal)
    assert validates(xml, SCHEMA_PATH)
    (tmp_path / "evidence.xml").write_bytes(xml)
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    result = xmlsec1_verify(tmp_path / "evidence.xml", tmp_path / "root.pem")
    assert result.returncode == 0, result.stderr


def test_schema_1_0_readers_refuse_it_rather_than_read_an_opening_by_the_recipient(
    seal: Seal,
) -> None:
    assert not validates(build_and_seal(by_representative(), seal), SCHEMA_1_0)


def test_an_opening_by_the_recipient_is_as_before(seal: Seal) -> None:
    login = dataclasses.replace(HOLDER_LOGIN, assertion_id="_recipient-assertion-1")
    everything = sample_facts(
        recipient_authentication=login,
        document_title="Formal notice",
        document_file_name="notice.pdf",
        available_until=datetime(2026, 12, 29, tzinfo=UTC),
        sealing_time=datetime(2026, 11, 29, 9, 30, 1, tzinfo=UTC),
        previous_evidence_sha256="ab" * 32,
    )
    xml = build_and_seal(everything, seal)
    root = etree.fromstring(xml)

    assert b"Representative" not in xml
    assert children(root.find("ev:Recipient", NAMESPACES)) == ["NationalNumber", "Authentication"]
    # Valid under both versions: what 1.0 stated, 1.1 states the same way.
    assert validates(xml, SCHEMA_1_0) and validates(xml, SCHEMA_PATH)
    facts = read_facts(xml)
    assert facts.representative is None and facts.representative_authentication is None
    assert facts.recipient_authentication == login


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"event": "ContentConsignment"}, "only a ContentHandover names a representative"),
        ({"representative_authentication": None, "recipient_authentication": HOLDER_LOGIN},
         "not the recipient's"),
        ({"representative": dataclasses.replace(HOLDER, national_number="85073003328")},
         "not their own representative"),
        ({"representative": None}, "without a representative"),
        ({"representative": dataclasses.replace(HOLDER, national_number="7902151234")},
         "does not follow"),
    ],
)  # fmt: skip
def test_what_a_representative_cannot_be_is_never_sealed(
    seal: Seal, change: dict[str, object], why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        build_and_seal(by_representative(**change), seal)


@pytest.mark.parametrize(
    "change",
    [
        (b"79021512345", b"79021512346"),  # another representative
        (b"Marie Dubois", b"Maria Dubois"),
        (b"3f0b6f5e-1a2b", b"3f0b6f5e-1a2c"),  # another mandate
        (b"<ev:Scope>registered-mail<", b"<ev:Scope>everything<"),
        (b"2027-06-30T22", b"2037-06-30T22"),  # a longer mandate
        (b"_holder-assertion-99", b"_holder-assertion-98"),
    ],
)
def test_a_changed_representative_breaks_the_seal(
    seal: Seal, tmp_path: Path, change: tuple[bytes, bytes]
) -> None:
    xml = build_and_seal(by_representative(), seal)
    assert xml.count(change[0]) == 1
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    (tmp_path / "changed.xml").write_bytes(xml.replace(*change))
    assert xmlsec1_verify(tmp_path / "changed.xml", tmp_path / "root.pem").returncode != 0


def test_removing_the_representative_breaks_the_seal(seal: Seal, tmp_path: Path) -> None:
    root = etree.fromstring(build_and_seal(by_representative(), seal))
    person = root.find("ev:Representative", NAMESPACES)
    assert person is not None
    root.remove(person)  # now it reads as an opening by the recipient
    (tmp_path / "root.pem").write_bytes(seal.root_pem)
    (tmp_path / "removed.xml").write_bytes(etree.tostring(root))
    assert xmlsec1_verify(tmp_path / "removed.xml", tmp_path / "root.pem").returncode != 0


def test_a_representative_outside_a_handover_is_not_read(seal: Seal) -> None:
    xml = build_and_seal(by_representative(), seal)
    elsewhere = xml.replace(b"event:ContentHandover<", b"event:ContentConsignment<")
    with pytest.raises(EvidenceFormatError, match="ContentConsignment evidence names a repr"):
        read_facts(elsewhere)

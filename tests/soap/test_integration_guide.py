"""The integration guide for institutions is part of the contract: its commands run, and what it
says about codes, algorithms, Ids and limits is what the code does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from flask.testing import FlaskCliRunner
from sqlalchemy import select

from ebox import config
from ebox.extensions import db
from ebox.senders.enterprise_number import is_valid
from ebox.senders.models import Sender
from ebox.soap import faults, signature, wssecurity
from ebox.soap.xml import SOAP11_NS
from tests.senders.certificate_helpers import make_certificate_pem

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "integration"
GUIDE = (GUIDES / "README.md").read_text()
REGISTERED_GUIDE = (GUIDES / "registered-mail.md").read_text()
BOTH = GUIDE + REGISTERED_GUIDE
FLAT_GUIDE = " ".join(GUIDE.split())


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def command_starting(text: str, start: str) -> list[str]:
    """The words of the first shell command of text that starts with start, options in
    [brackets] included as if given."""
    for block in code_blocks(text, "sh"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.startswith(start):
                return shlex.split(command.replace("[", " ").replace("]", " "))
    raise AssertionError(f"no command starting with {start!r}")


def test_the_sender_create_command_of_the_guide_creates_a_registered_mail_sender(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    words = command_starting(GUIDE, "flask --app app ebox senders create")
    (tmp_path / "backoffice-cert.pem").write_text(make_certificate_pem())
    words[words.index("--certificate") + 1] = str(tmp_path / "backoffice-cert.pem")

    result = runner.invoke(args=words[3:])  # after "flask --app app"

    assert result.exit_code == 0, result.output
    sender = db.session.scalars(select(Sender)).one()
    assert str(sender.id) == result.stdout.strip()  # the log goes to stderr
    assert sender.may_send_registered
    assert sorted(t.code for t in sender.message_types) == ["NOTICE", "TAX"]


def test_the_test_enterprise_number_of_the_guide_has_valid_check_digits() -> None:
    words = command_starting(GUIDE, "flask --app app ebox senders create")
    number = words[words.index("--enterprise-number") + 1]
    assert is_valid(number)
    assert f"`{number}` is a valid one for tests" in FLAT_GUIDE


def test_every_fault_code_is_in_the_guides_and_the_guides_name_no_other() -> None:
    answered = {value for name, value in vars(faults).items() if name.isupper() and value == name}
    rows = re.findall(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|", BOTH, flags=re.MULTILINE)
    tabled = {code for row in rows for code in re.findall(r"`([A-Z_]+)`", row)}
    named = set(re.findall(r"`([A-Z]+(?:_[A-Z]+)+)`", BOTH))
    assert answered <= tabled
    assert {name for name in named if not name.startswith("EBOX_")} <= answered


def test_the_wss4j_settings_of_the_guide_name_what_ebox_accepts() -> None:
    [block] = code_blocks(GUIDE, "properties")
    settings = dict(line.split("=", 1) for line in block.splitlines())
    assert settings["action"] == "Timestamp Signature"
    assert settings["signatureAlgorithm"] in signature.SIGNATURE_METHODS
    assert settings["signatureDigestAlgorithm"] in wssecurity._DIGEST_METHODS
    assert settings["signatureKeyIdentifier"] == "DirectReference"
    assert set(settings["signatureParts"].split(";")) == {
        f"{{Element}}{{{wssecurity.WSU_NS}}}Timestamp",
        f"{{Element}}{{{SOAP11_NS}}}Body",
    }


def test_the_guide_gives_the_default_timestamp_bound_and_the_clock_skew() -> None:
    bound = config.Settings.__dataclass_fields__["wss_max_timestamp_minutes"].default
    skew = int(wssecurity.CLOCK_SKEW.total_seconds() // 60)
    assert f"**at most {bound} minutes** later" in FLAT_GUIDE
    assert f"created within {skew} minutes of eBox's clock" in FLAT_GUIDE
    assert f"or until {skew} minutes after its `Created` time" in FLAT_GUIDE


def test_the_guide_and_the_fault_message_name_the_same_id_attributes() -> None:
    id_names = wssecurity._ID_NAMES
    assert id_names == {"Id", "ID", "id"}
    assert "every attribute named `Id`, `ID` or `id`, in any namespace or none" in FLAT_GUIDE
    assert "(wsu:Id, or an Id, ID or id attribute)" in wssecurity._NOT_SIGNED_AS_REQUIRED


def test_the_guide_names_the_reference_transforms_ebox_accepts() -> None:
    exc_c14n, enveloped = wssecurity._EXC_C14N, wssecurity._ENVELOPED
    accepted = wssecurity._REFERENCE_TRANSFORMS
    assert accepted == ([exc_c14n], [enveloped, exc_c14n])
    assert f"`{enveloped}` followed by exclusive C14N" in FLAT_GUIDE
    assert exc_c14n in GUIDE

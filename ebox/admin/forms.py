"""Forms of the staff pages. Every form that changes something is posted with its CSRF token."""

from __future__ import annotations

import uuid
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ebox.db_types import utcnow
from ebox.national_number import InvalidNationalNumber, normalise
from ebox.senders.certificates import (
    MAX_PEM_LENGTH,
    CertificateInfo,
    CertificateRejected,
    contains_private_key,
    parse_certificate,
    pem_from_upload,
)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason, sent to the applicant"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Give the reason: the applicant receives it by e-mail.")),
            Length(min=5, max=2000, message=_l("From 5 to 2000 characters.")),
        ],
        render_kw={"rows": "4"},
    )


class RevokeForm(FlaskForm):
    reason = StringField(
        _l("Reason for revoking"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Give the reason for revoking.")),
            Length(min=3, max=500, message=_l("From 3 to 500 characters.")),
        ],
    )


class SuspendForm(FlaskForm):
    reason = StringField(
        _l("Reason for suspending"),
        filters=[_strip],
        validators=[Optional(), Length(max=500, message=_l("At most 500 characters."))],
    )


class SwitchForm(FlaskForm):
    """A yes/no switch posted by one button: registered mail for a sender, reminders for a
    message type."""

    allow = HiddenField(validators=[DataRequired()])

    def validate_allow(self, field: HiddenField) -> None:
        if field.data not in {"yes", "no"}:
            raise ValidationError("yes or no")


class CertificateForm(FlaskForm):
    """A certificate added to a sender (rotation): pasted or uploaded, checked like one applied
    with."""

    certificate_pem = TextAreaField(
        _l("New certificate (PEM)"),
        validators=[Optional(), Length(max=MAX_PEM_LENGTH, message=_l("At most 20 kB."))],
        render_kw={"rows": "6", "spellcheck": "false", "class": "monospace"},
    )
    certificate_file = FileField(
        _l("Or choose the certificate file"),
        render_kw={"accept": ".pem,.crt,.cer,application/x-pem-file"},
    )
    certificate: CertificateInfo | None = None

    def validate(self, extra_validators: Any = None) -> bool:
        if not super().validate(extra_validators):
            return False
        upload = self.certificate_file.data
        try:
            if isinstance(upload, FileStorage) and upload.filename:
                content = upload.stream.read(MAX_PEM_LENGTH + 1)
                if len(content) > MAX_PEM_LENGTH:
                    raise CertificateRejected(str(_l("At most 20 kB.")))
                text = pem_from_upload(content)
            else:
                text = self.certificate_pem.data or ""
            self.certificate = parse_certificate(text, now=utcnow())
        except CertificateRejected as exc:
            if contains_private_key(self.certificate_pem.data or ""):
                self.certificate_pem.data = ""
            self.certificate_pem.errors = [*self.certificate_pem.errors, exc.message]
            return False
        return True


class CitizenLookupForm(FlaskForm):
    """Posted, with its token: the national number must stay out of URLs, access logs and the
    browser's history."""

    national_number = StringField(
        _l("National register number"),
        filters=[_strip],
        validators=[DataRequired(_l("Give the national register number."))],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    reason = StringField(
        _l("Reason for the lookup"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Give the reason for this lookup.")),
            Length(min=3, max=500, message=_l("From 3 to 500 characters.")),
        ],
        render_kw={"autocomplete": "off"},
    )
    number = ""  # the 11 digits, once the field is valid

    def validate_national_number(self, field: StringField) -> None:
        try:
            self.number = normalise(field.data or "")
        except InvalidNationalNumber as exc:
            raise ValidationError(
                _l("This is not a national register number: 11 digits, the last two a check.")
            ) from exc


class DeliveryLookupForm(FlaskForm):
    """Read from the query string: a lookup changes nothing, so it needs no token."""

    class Meta:
        csrf = False

    sender_id = SelectField(_l("Sender"), coerce=int, default=0, choices=[])
    ticket = StringField(
        _l("Ticket"),
        filters=[_strip],
        validators=[Optional(), Length(max=25, message=_l("At most 25 characters."))],
    )
    sequence = IntegerField(
        _l("Sequence"),
        validators=[Optional(), NumberRange(min=0, max=99999, message=_l("From 0 to 99999."))],
    )
    message_id = StringField(
        _l("Platform message id"),
        filters=[_strip],
        validators=[Optional(), Length(max=40)],
        render_kw={"spellcheck": "false"},
    )
    document_id: uuid.UUID | None = None

    def validate_ticket(self, field: StringField) -> None:
        if field.data and not self.sender_id.data:
            raise ValidationError(_l("Choose the sender of this ticket."))

    def validate_message_id(self, field: StringField) -> None:
        if not field.data:
            return
        try:
            self.document_id = uuid.UUID(field.data)
        except ValueError as exc:
            raise ValidationError(
                _l("A platform message id has 32 hexadecimal digits, with or without dashes.")
            ) from exc

    def wants_lookup(self) -> bool:
        return bool(self.message_id.data or self.ticket.data)

"""The public application form. Works without JavaScript: a fixed number of message-type rows,
empty ones ignored, and a button that shows the form again with one more row."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import format_number
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import (
    BooleanField,
    Field,
    FieldList,
    Form,
    FormField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ebox.db_types import utcnow
from ebox.profile.services import MAX_EMAIL_LENGTH, InvalidEmail, normalise_email
from ebox.senders import services as senders
from ebox.senders.certificates import (
    MAX_PEM_LENGTH,
    CertificateInfo,
    CertificateRejected,
    contains_private_key,
    parse_certificate,
    pem_from_upload,
)
from ebox.senders.enterprise_number import InvalidEnterpriseNumber, normalise

INITIAL_TYPE_ROWS = 3
MAX_MONTHLY_VOLUME = 100_000_000
MAX_DAILY_PEAK = 10_000_000
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{2,29}")  # short numbers such as 1765 exist


def _strip(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _strip_lines(value: Any) -> Any:
    """Keep line breaks (an address, a use case) but not blanks around the text."""
    return value.strip() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _check_email(form: Form, field: Field) -> None:
    if not field.data:
        return
    try:
        field.data = normalise_email(field.data)
    except InvalidEmail as exc:
        raise ValidationError(_l("Enter an e-mail address like name@example.org.")) from exc


def _check_phone(form: Form, field: Field) -> None:
    if field.data and not _PHONE.fullmatch(field.data):
        raise ValidationError(_l("Enter a phone number like +32 2 123 45 67."))


def _whole_number(maximum: int) -> Any:
    def check(form: Form, field: Field) -> None:
        text = (field.data or "").replace(" ", "").replace(".", "")
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= maximum:
            raise ValidationError(
                _l("Enter a whole number from 1 to %(maximum)s.", maximum=format_number(maximum))
            )
        field.data = str(int(text))

    return check


def _name_field(label: Any) -> StringField:
    return StringField(
        label,
        filters=[_strip],
        validators=[
            DataRequired(_l("Give the name in this language.")),
            Length(max=200, message=_l("At most 200 characters.")),
        ],
    )


class MessageTypeForm(Form):
    """One row; a row left entirely empty is ignored."""

    code = StringField(
        _l("Code"),
        filters=[_upper],
        validators=[DataRequired(_l("Give a code."))],
        render_kw={"autocapitalize": "characters", "spellcheck": "false", "maxlength": "50"},
    )
    name_nl = _name_field(_l("Name in Dutch"))
    name_fr = _name_field(_l("Name in French"))
    name_de = _name_field(_l("Name in German"))
    name_en = _name_field(_l("Name in English"))
    validity_days = StringField(
        _l("Days a document stays available"),
        filters=[_strip],
        validators=[DataRequired(_l("Give a number of days."))],
        render_kw={"inputmode": "numeric", "maxlength": "4"},
    )

    def is_empty(self) -> bool:
        return not any((field.data or "").strip() for field in self)

    def validate(self, extra_validators: Any = None) -> bool:
        if self.is_empty():
            return True
        return super().validate(extra_validators)

    def validate_code(self, field: StringField) -> None:
        if not senders.CODE_PATTERN.fullmatch(field.data or ""):
            raise ValidationError(_l("2 to 50 capital letters, digits or _ (like TAX_BILL)."))

    def validate_validity_days(self, field: StringField) -> None:
        text = field.data or ""
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1096:
            raise ValidationError(_l("From 1 to 1096 days (3 years)."))

    def spec(self) -> senders.MessageTypeSpec:
        return senders.MessageTypeSpec(
            code=self.code.data or "",
            name_nl=self.name_nl.data or "",
            name_fr=self.name_fr.data or "",
            name_de=self.name_de.data or "",
            name_en=self.name_en.data or "",
            validity_days=int(self.validity_days.data or 0),
        )


def _required_text(message: Any, maximum: int) -> list[Any]:
    return [
        DataRequired(message),
        Length(max=maximum, message=_l("At most %(max)d characters.", max=maximum)),
    ]


def _optional_text(maximum: int) -> list[Any]:
    return [Optional(), Length(max=maximum, message=_l("At most %(max)d characters.", max=maximum))]


class ApplicationForm(FlaskForm):
    certificate: CertificateInfo | None = None

    organisation_name = StringField(
        _l("Name of the organisation"),
        filters=[_strip],
        validators=[
            *_required_text(_l("Give the name of the organisation."), 200),
            Length(min=2, message=_l("Give the name of the organisation.")),
        ],
        render_kw={"autocomplete": "organization"},
    )
    enterprise_number = StringField(
        _l("Enterprise number"),
        filters=[_strip],
        validators=[DataRequired(_l("Give the enterprise number."))],
        render_kw={"inputmode": "numeric", "maxlength": "20", "spellcheck": "false"},
    )
    business_contact_name = StringField(
        _l("Name"), filters=[_strip], validators=_required_text(_l("Give a name."), 200)
    )
    business_contact_email = StringField(
        _l("E-mail address"),
        filters=[_strip],
        validators=[*_required_text(_l("Give an e-mail address."), MAX_EMAIL_LENGTH), _check_email],
        render_kw={"type": "email", "autocomplete": "email", "spellcheck": "false"},
    )
    business_contact_phone = StringField(
        _l("Phone"),
        filters=[_strip],
        validators=[*_required_text(_l("Give a phone number."), 50), _check_phone],
        render_kw={"type": "tel", "autocomplete": "tel"},
    )
    technical_contact_name = StringField(
        _l("Name"), filters=[_strip], validators=_required_text(_l("Give a name."), 200)
    )
    technical_contact_email = StringField(
        _l("E-mail address"),
        filters=[_strip],
        validators=[*_required_text(_l("Give an e-mail address."), MAX_EMAIL_LENGTH), _check_email],
        render_kw={"type": "email", "spellcheck": "false"},
    )
    technical_contact_phone = StringField(
        _l("Phone"),
        filters=[_strip],
        validators=[*_required_text(_l("Give a phone number."), 50), _check_phone],
        render_kw={"type": "tel"},
    )
    public_contact_email = StringField(
        _l("E-mail address for citizens"),
        filters=[_strip],
        validators=[*_optional_text(MAX_EMAIL_LENGTH), _check_email],
        render_kw={"type": "email", "spellcheck": "false"},
    )
    public_contact_phone = StringField(
        _l("Phone number for citizens"),
        filters=[_strip],
        validators=[*_optional_text(50), _check_phone],
        render_kw={"type": "tel"},
    )
    public_contact_url = StringField(
        _l("Web page for citizens"),
        filters=[_strip],
        validators=_optional_text(500),
        render_kw={"type": "url", "spellcheck": "false"},
    )
    public_contact_address = TextAreaField(
        _l("Postal address"),
        filters=[_strip_lines],
        validators=_optional_text(500),
        render_kw={"rows": "3", "autocomplete": "street-address"},
    )
    use_case = TextAreaField(
        _l("What will you send to citizens, and why?"),
        filters=[_strip_lines],
        validators=[
            *_required_text(_l("Describe what you will send."), 5000),
            Length(min=20, message=_l("Tell us a little more (at least 20 characters).")),
        ],
        render_kw={"rows": "5"},
    )
    expected_monthly_volume = StringField(
        _l("Documents per month (expected)"),
        filters=[_strip],
        validators=[DataRequired(_l("Give a number.")), _whole_number(MAX_MONTHLY_VOLUME)],
        render_kw={"inputmode": "numeric", "maxlength": "15"},
    )
    expected_peak_per_day = StringField(
        _l("Documents on the busiest day (expected)"),
        filters=[_strip],
        validators=[DataRequired(_l("Give a number.")), _whole_number(MAX_DAILY_PEAK)],
        render_kw={"inputmode": "numeric", "maxlength": "15"},
    )
    message_types = FieldList(
        FormField(MessageTypeForm),
        min_entries=INITIAL_TYPE_ROWS,
        max_entries=senders.MAX_MESSAGE_TYPES,
    )
    needs_registered_mail = BooleanField(_l("We need to send registered mail"))
    certificate_pem = TextAreaField(
        _l("Certificate (PEM)"),
        validators=[Optional(), Length(max=MAX_PEM_LENGTH, message=_l("At most 20 kB."))],
        render_kw={"rows": "8", "spellcheck": "false", "class": "monospace"},
    )
    certificate_file = FileField(
        _l("Or choose the certificate file"),
        render_kw={"accept": ".pem,.crt,.cer,application/x-pem-file"},
    )
    add_type = SubmitField(_l("Add another message type"))
    submit = SubmitField(_l("Send the application"))

    def validate_enterprise_number(self, field: StringField) -> None:
        try:
            field.data = normalise(field.data or "")
        except InvalidEnterpriseNumber as exc:
            raise ValidationError(exc.args[0]) from exc

    def validate_public_contact_url(self, field: StringField) -> None:
        if field.data:
            try:
                field.data = senders.check_public_url(field.data)
            except senders.SenderRefused as exc:
                raise ValidationError(exc.message) from exc

    def validate_expected_peak_per_day(self, field: StringField) -> None:
        monthly = self.expected_monthly_volume.data or ""
        if monthly.isdigit() and (field.data or "").isdigit() and int(field.data) > int(monthly):
            raise ValidationError(_l("The busiest day cannot exceed the whole month."))

    def validate_message_types(self, field: FieldList) -> None:
        rows = [row.form for row in field.entries if not row.form.is_empty()]
        if not rows:
            raise ValidationError(_l("Give at least one message type."))
        codes = [row.code.data for row in rows]
        if len(set(codes)) != len(codes):
            raise ValidationError(_l("Each message type needs a code of its own."))

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        valid = self._check_public_contact() and valid
        return self._check_certificate() and valid

    def _check_public_contact(self) -> bool:
        if self.public_contact_email.data or self.public_contact_phone.data:
            return True
        if self.public_contact_url.data:
            return True
        self.public_contact_email.errors = [
            *self.public_contact_email.errors,
            _l("Give at least an e-mail address, a phone number or a web page for citizens."),
        ]
        return False

    def _check_certificate(self) -> bool:
        """Parse the uploaded file, or else the pasted text; keep what was read in the text box."""
        self.certificate = None
        field = self.certificate_pem
        try:
            text = self._uploaded_certificate()
            if text is None:
                text = field.data or ""
            else:
                field = self.certificate_file
            self.certificate = parse_certificate(text, now=utcnow())
        except CertificateRejected as exc:
            if contains_private_key(self.certificate_pem.data or ""):
                self.certificate_pem.data = ""  # never shown again, not even to its sender
            field.errors = [*field.errors, exc.message]
            return False
        # Shown again if another field has an error, so that a chosen file need not be chosen again.
        self.certificate_pem.data = self.certificate.pem
        return not self.certificate_pem.errors

    def _uploaded_certificate(self) -> str | None:
        upload = self.certificate_file.data
        if not isinstance(upload, FileStorage) or not upload.filename:
            return None
        content = upload.stream.read(MAX_PEM_LENGTH + 1)
        if len(content) > MAX_PEM_LENGTH:
            raise CertificateRejected(str(_l("The certificate is too long (at most 20 kB).")))
        return pem_from_upload(content)

    def filled_message_types(self) -> list[senders.MessageTypeSpec]:
        return [row.form.spec() for row in self.message_types.entries if not row.form.is_empty()]


class ConfirmForm(FlaskForm):
    """The button behind a confirmation link: only a person's click confirms, not a mail
    scanner that opens every link it sees."""

    submit = SubmitField(_l("Confirm and send the application"))

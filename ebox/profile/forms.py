"""Forms of the first visit and the profile page (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError

from ebox.config import LANGUAGES
from ebox.profile.services import MAX_EMAIL_LENGTH, InvalidEmail, normalise_email


def _without_spaces(value: str | None) -> str:
    """People copy codes as "123 456"; spaces carry no meaning."""
    return re.sub(r"\s", "", value or "")


class ConditionsForm(FlaskForm):
    accept = BooleanField(
        _l("I have read the conditions of use and I accept them"),
        validators=[DataRequired(_l("Tick the box to accept the conditions of use."))],
    )
    submit = SubmitField(_l("Accept and continue"))


class EmailForm(FlaskForm):
    email = StringField(
        _l("E-mail address"),
        validators=[
            DataRequired(_l("Enter your e-mail address.")),
            Length(
                max=MAX_EMAIL_LENGTH, message=_l("An e-mail address has at most 254 characters.")
            ),
        ],
        render_kw={"autocomplete": "email", "type": "email", "spellcheck": "false"},
    )
    submit = SubmitField(_l("Send me a code"))

    def validate_email(self, field: StringField) -> None:
        try:
            field.data = normalise_email(field.data or "")
        except InvalidEmail as exc:
            raise ValidationError(_l("Enter an e-mail address like name@example.org.")) from exc


class CodeForm(FlaskForm):
    code = StringField(
        _l("Confirmation code"),
        filters=[_without_spaces],
        validators=[
            DataRequired(_l("Enter the code from the e-mail.")),
            Regexp(r"^[0-9]{6}$", message=_l("The code has 6 digits.")),
        ],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "12"},
    )
    submit = SubmitField(_l("Confirm"))


class ResendForm(FlaskForm):
    submit = SubmitField(_l("Send a new code"))


class ElectronicOnlyForm(FlaskForm):
    is_electronic_only = BooleanField(_l("Receive these documents only electronically"))
    submit = SubmitField(_l("Save"))


class RemindersForm(FlaskForm):
    wants_reminders = BooleanField(_l("Remind me of documents I have not opened"))
    submit = SubmitField(_l("Save"))


class LanguageForm(FlaskForm):
    """Posted by the language switcher of every page, by visitors logged in or not."""

    language = StringField(validators=[InputRequired()])
    next = HiddenField()

    def validate_language(self, field: StringField) -> None:
        if field.data not in LANGUAGES:
            raise ValidationError(_l("Choose Dutch, French, German or English."))

    def safe_next(self) -> str | None:
        """The page to go back to, only if it is a local path (no open redirect)."""
        return local_path(self.next.data)


def local_path(value: Any) -> str | None:
    """value when it is a path on this site ("/x"), None for "//host", "/\\host" or schemes."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return None
    if value.startswith("//") or "\\" in value or any(ord(char) < 32 for char in value):
        return None
    return value

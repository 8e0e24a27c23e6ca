"""Forms of the trusted-person pages (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, RadioField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ebox import national_number
from ebox.mandates.services import MAX_MANDATE_DAYS

EVERY_SENDER, CHOSEN_SENDERS = "every", "chosen"


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class InviteForm(FlaskForm):
    national_number = StringField(
        _l("Their national register number"),
        validators=[DataRequired(_l("Enter the national register number of the person."))],
        render_kw={"inputmode": "numeric", "autocomplete": "off", "spellcheck": "false"},
    )
    scope = RadioField(
        _l("What they may read"),
        choices=[
            SelectChoice(EVERY_SENDER, _l("Documents of every sender")),
            SelectChoice(CHOSEN_SENDERS, _l("Only documents of the senders I choose")),
        ],
        default=EVERY_SENDER,
    )
    senders = CheckboxList(_l("Senders"), coerce=int, validators=[Optional()])
    may_open_registered = BooleanField(_l("They may also open registered letters"))
    ends_on = DateField(
        _l("Until"), validators=[DataRequired(_l("Choose the last day of the mandate."))]
    )

    def __init__(self, senders: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.senders.choices = [SelectChoice(sender_id, name) for sender_id, name in senders]

    def validate_national_number(self, field: StringField) -> None:
        try:
            field.data = national_number.normalise(field.data or "")
        except national_number.InvalidNationalNumber:
            raise ValidationError(_l("This is not a valid national register number.")) from None

    def validate_senders(self, field: CheckboxList) -> None:
        if self.scope.data == CHOSEN_SENDERS and not field.data:
            raise ValidationError(_l("Choose at least one sender."))

    def validate_ends_on(self, field: DateField) -> None:
        today = date.today()
        if field.data is None or not today < field.data <= today + timedelta(MAX_MANDATE_DAYS):
            raise ValidationError(_l("Choose a day after today and within three years."))


class AcceptForm(FlaskForm):
    code = StringField(
        _l("Code you received"),
        validators=[DataRequired(_l("Enter the code you received."))],
        filters=[lambda value: re.sub(r"[\s-]", "", value or "").upper()],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"},
    )


class ConfirmForm(FlaskForm):
    """A button alone: end a mandate, read for someone, back to one's own eBox."""

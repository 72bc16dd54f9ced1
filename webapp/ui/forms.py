"""The editing forms. Validators call the store's own rules (JSON, NaN, size, key), so the
UI refuses exactly what the admin API refuses; each error lands on the field it is about.
Keys that expire get the Expiration and Expires at fields (``ExpiryMixin``); keys that never
expire (an asset's) get forms without them, answering "never" and "keep" instead."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError
from wtforms.widgets import HiddenInput

from .. import store
from ..errors import InvalidInput
from ..http import INT_MAX
from ..models import utcnow
from . import formatting

KEEP = "keep"  # edit only: leave the expiry as it is (a PATCH, in the admin API's terms)
INVALID = object()  # chosen_expiry's answer when it put an error on the Expires at field
EXTEND_BY = {"1h": ("+1 hour", timedelta(hours=1)), "1d": ("+1 day", timedelta(days=1)),
             "7d": ("+7 days", timedelta(days=7))}


def _settings():
    return current_app.config["TASKSTORE"]


def default_label() -> str:
    days = _settings().default_retention_days
    if days == 0:
        return "Default (never expires)"
    return f"Default ({days} day{'' if days == 1 else 's'})"


def json_value(form, field) -> None:
    """Parse, encode and size-check the value; the encoded text is kept for the save. Save and
    the live check as one types (``JsonCheckForm``) both run this, so they say the same."""
    text = field.data or ""
    try:
        parsed = store.parse_json(text, "value")
    except InvalidInput as exc:
        raise ValidationError(json_syntax_error(text) or f"Value {exc.problem}") from None
    try:
        encoded = store.encode_value(parsed)
        store.check_value_size(encoded, _settings().max_value_bytes)
    except InvalidInput as exc:
        raise ValidationError(f"Value {exc.problem}") from None
    form.encoded_value = encoded


def json_syntax_error(text: str) -> str | None:
    """Where text the store refused stops being JSON, as the line and column a person finds in
    the textarea (its line numbers count the same lines); None when the problem is not the
    syntax (NaN, nesting), which the store's own message names. Run on refusal only."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"Value is not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except (ValueError, RecursionError):
        return None
    return None


def value_field() -> TextAreaField:
    return TextAreaField("Value", validators=[InputRequired("Enter a JSON value"), json_value])


def valid_key(form, field) -> None:
    try:
        store.validate_key(field.data or "")
    except InvalidInput as exc:
        raise ValidationError(f"Key {exc.problem}") from None


class NewKeyForm(FlaskForm):
    """Add a key that never expires (an asset's); ``AddKeyForm`` adds the expiry fields."""

    key = StringField("Key", validators=[InputRequired("Enter a key"), valid_key])
    value = value_field()

    def set_expiration_choices(self, keep_label: str | None = None) -> None:
        pass

    def chosen_expiry(self, now: datetime):
        return None  # never


class JsonCheckForm(FlaskForm):
    """The Value field alone, checked as one types: the Add and Edit forms' rules and messages."""

    value = value_field()


class ValueForm(FlaskForm):
    """Edit the value of a key that never expires; ``EditKeyForm`` adds the expiry fields."""

    value = value_field()
    # The ETag of the entry the form was opened on: a save based on an older one is refused.
    version = HiddenField(validators=[InputRequired()])

    def set_expiration_choices(self, keep_label: str | None = None) -> None:
        pass

    def chosen_expiry(self, now: datetime):
        return KEEP


# Quick choices beside Default, Never and Custom: a moment from now, worked out at the save.
QUICK_EXPIRY = {"1h": ("In 1 hour", lambda now: now + timedelta(hours=1)),
                "1d": ("In 1 day", lambda now: now + timedelta(days=1)),
                "7d": ("In 7 days", lambda now: now + timedelta(days=7)),
                "eod": ("End of today (23:59:59 UTC)", lambda now: now.replace(hour=23, minute=59, second=59,
                                                                               microsecond=0))}
# What "Expires at" accepts: 24-hour UTC, seconds optional, whatever the browser's locale.
EXPIRES_AT_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M")
EXPIRES_AT_EXAMPLE = "2026-12-31 23:59:59"


def parse_expires_at(text: str) -> datetime:
    """A UTC time as typed: ``2026-12-31 23:59:59`` (or with ``T``, without seconds, with a
    trailing ``Z`` or ``UTC``)."""
    cleaned = text.strip().removesuffix("UTC").removesuffix("Z").strip()
    for pattern in EXPIRES_AT_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"Enter the time as {EXPIRES_AT_EXAMPLE} (24-hour, UTC)")


class ExpiryMixin:
    """Expiration (Default / Never / quick choices / Custom) and Expires at, typed as UTC."""

    expiration = SelectField("Expiration", default="default")
    expires_at = StringField("Expires at", validators=[Optional()],
                             render_kw={"placeholder": EXPIRES_AT_EXAMPLE, "inputmode": "numeric",
                                        "autocomplete": "off", "spellcheck": "false"})

    def set_expiration_choices(self, keep_label: str | None = None) -> None:
        choices = [SelectChoice("default", default_label()), SelectChoice("never", "Never")]
        choices += [SelectChoice(value, label) for value, (label, _when) in QUICK_EXPIRY.items()]
        choices.append(SelectChoice("custom", "Custom (Expires at)"))
        if keep_label is not None:
            choices.insert(0, SelectChoice(KEEP, keep_label))
        self.expiration.choices = choices

    def chosen_expiry(self, now: datetime):
        """The new expiry (None: never), KEEP, or INVALID with the error on Expires at."""
        choice = self.expiration.data
        typed = (self.expires_at.data or "").strip()
        if typed and choice != "custom":
            # A time typed with another choice was silently dropped once: say so instead.
            self.expires_at.errors = ["Choose Custom as the Expiration to use this time, or clear it"]
            return INVALID
        if choice == KEEP:
            return KEEP
        retention = _settings().default_retention_days
        if choice == "never":
            return None
        if choice == "default":
            return store.admin_expiry("default", retention, now)
        if not typed and choice not in QUICK_EXPIRY:
            self.expires_at.errors = [f"Enter a date and time (UTC) for a custom expiry, as {EXPIRES_AT_EXAMPLE}"]
            return INVALID
        try:
            chosen = QUICK_EXPIRY[choice][1](now) if choice in QUICK_EXPIRY else parse_expires_at(typed)
            return store.admin_expiry(chosen, retention, now)
        except ValueError as exc:
            self.expires_at.errors = [str(exc)]
            return INVALID
        except InvalidInput as exc:
            self.expires_at.errors = [f"Expires at {exc.problem}"]
            return INVALID


class AddKeyForm(ExpiryMixin, NewKeyForm):
    pass


class EditKeyForm(ExpiryMixin, ValueForm):
    pass


def keep_label(entry) -> str:
    if entry is None or entry.expires_at is None:
        return "Keep (never expires)" if entry else "Keep"
    return f"Keep ({formatting.expiry(entry.expires_at, utcnow())})"


def add_key_form(kind: store.ScopeKind, **data) -> NewKeyForm:
    """The Add key form for a kind of keys (with Expiration and Expires at if they expire):
    read from the request, or empty with ``formdata=None``."""
    form = (AddKeyForm if kind.expires else NewKeyForm)(**data)
    form.set_expiration_choices()
    return form


def edit_key_form(kind: store.ScopeKind, entry, **data) -> ValueForm:
    """The edit form of a key; with an expiry, Expiration offers "Keep" (the entry's)."""
    form = (EditKeyForm if kind.expires else ValueForm)(**data)
    form.set_expiration_choices(keep_label(entry))
    return form


class VersionedForm(FlaskForm):
    """Delete and extend: a CSRF token and the version the button was shown for."""

    version = HiddenField(validators=[InputRequired()])


class ExtendForm(VersionedForm):
    by = SelectField(choices=[SelectChoice(name, label) for name, (label, _delta) in EXTEND_BY.items()])


class ClearForm(FlaskForm):
    all_map_indices = HiddenField(default="")


class ConfirmForm(FlaskForm):
    """A confirmation's button alone (deleting a key set aside): the CSRF token."""


def map_index(form, field) -> None:
    """0 or more and within the column; text that is no integer already has its error."""
    if field.data is not None and not 0 <= field.data <= INT_MAX:
        raise ValidationError(f"Enter a map index between 0 and {INT_MAX}")


class MoveSetAsideForm(FlaskForm):
    """Hand a key set aside to a map index's task instance (its own: adopt it)."""

    to_map_index = IntegerField("Move to map index", validators=[InputRequired("Enter a map index"), map_index])


class UndoDeleteForm(FlaskForm):
    """Undo a delete: the history row that recorded it."""

    change = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(1, 2**63 - 1)])


class ImportKeysForm(FlaskForm):
    """Upload a file of keys (what Export writes); existing keys are refused unless replaced."""

    file = FileField("File of keys (JSON, as Export writes it)", validators=[FileRequired("Choose a file to import")])
    replace = BooleanField("Replace keys that already exist")

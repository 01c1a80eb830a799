"""The admin's fixed forms (the settings page builds its grid from the request itself)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from bot.media.kinds import MediaKind
from bot.media.sending import ALL_KINDS, Kept, keep_named
from bot.media.store import get_media_store
from bot.whatsapp.payloads import TEXT_MAX


def keep_upload(
    session: Session,
    upload: FileStorage,
    *,
    now: datetime,
    kinds: frozenset[MediaKind] = ALL_KINDS,
) -> Kept:
    """A form's file kept in the app's media store (`keep_named`: checked against WhatsApp's
    limits first, `Refused` if it would not take it)."""
    return keep_named(
        session,
        get_media_store(),
        upload.stream,
        upload.filename,
        upload.mimetype,
        now=now,
        kinds=kinds,
    )


class LoginForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class ReplyForm(FlaskForm):
    # Optional: a file may go without text; the view says when neither came.
    text = TextAreaField(lazy_gettext("Message"), validators=[Length(max=TEXT_MAX)])


class TemplateForm(FlaskForm):
    name = StringField(lazy_gettext("Template name"), validators=[DataRequired(), Length(max=512)])
    language = StringField(lazy_gettext("Language"), validators=[DataRequired(), Length(max=16)])
    params = TextAreaField(
        lazy_gettext("Parameters, one per line"), validators=[Length(max=TEXT_MAX)]
    )


class PickerForm(FlaskForm):
    """The template picker: its fields depend on the template chosen (read by
    bot.admin.template_picker); the form checks the CSRF token."""


class LabelsForm(FlaskForm):
    labels = StringField(lazy_gettext("Labels, separated by commas"), validators=[Length(max=1024)])


class OptInForm(FlaskForm):
    opted_in = BooleanField(lazy_gettext("Gets broadcasts"))

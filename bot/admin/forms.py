"""The admin's fixed forms (the settings page builds its grid from the request itself)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from bot.whatsapp.payloads import TEXT_MAX


class LoginForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class ReplyForm(FlaskForm):
    text = TextAreaField("Message", validators=[DataRequired(), Length(max=TEXT_MAX)])


class TemplateForm(FlaskForm):
    name = StringField("Template name", validators=[DataRequired(), Length(max=512)])
    language = StringField("Language", validators=[DataRequired(), Length(max=16)])
    params = TextAreaField("Parameters, one per line", validators=[Length(max=TEXT_MAX)])


class LabelsForm(FlaskForm):
    labels = StringField("Labels, separated by commas", validators=[Length(max=1024)])


class OptInForm(FlaskForm):
    opted_in = BooleanField("Gets broadcasts")

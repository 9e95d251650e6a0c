"""The console's forms as msgspec Structs, decoded by Litestar from the posted form
(issue 18 item 3): a handler declares ``data: Annotated[ReplyForm, Body(media_type=...)]``
and receives the Struct, or Litestar raises a ``ValidationException`` whose ``extra``
names each bad field (``{"key": field, "message": ..., "source": "body"}``), which
``app.web.api.page_error_handler`` answers with the form's own page again, the field
marked and named by its label (issue 23, ``FormState`` below).

A form that carries a staff action subclasses the JSON API's input Struct (the command),
so both edges validate the same fields with the same limits; it adds the CSRF token and
the page to go back to. ``command()`` takes the command back out of the form, without
those two. Unknown fields are refused, as in the JSON API (``Input``)."""

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec
from litestar.datastructures import UploadFile

from app.console.schemas import (
    ExtensionDecisionIn,
    ExtensionRequestIn,
    MergeIn,
    MessageIn,
    RejectIn,
    ResolveIn,
)
from app.core import i18n
from app.core.errors import AppError
from app.core.schemas import Input
from app.routing.schemas import ExtensionIn, TransferIn
from app.web import texts


def _field_type(struct: type[msgspec.Struct], name: str) -> object:
    """A field's type with its constraints (msgspec Meta), to declare the same field on a
    form that cannot subclass the command."""
    return next(f.type for f in msgspec.structs.fields(struct) if f.name == name)


class SignedForm(Protocol):
    """What the page handlers read of any form: its CSRF token (CsrfForm and its subclasses,
    and the forms that subclass their command instead). For the type checker."""

    csrf: str


class CsrfForm(Input):
    """A form with nothing but its CSRF token (sign out, open a notice, route now)."""

    csrf: str = ""  # missing or wrong: the CSRF check's 403, not a field error


class LoginForm(CsrfForm):
    email: str = ""
    password: str = ""
    next: str = ""


class ReadAllForm(CsrfForm):
    # an id from 1 to 2^63-1, or empty for all: checked by the page (a 400 like an id
    # in a path), since msgspec reads "" as neither an int nor None
    up_to_id: str = ""


class ActionForm(CsrfForm):
    """A form acting on a report: where to go afterwards (a console path) besides its
    token."""

    back: str = ""


class AcceptForm(ActionForm):
    pass


class MessageForm(MessageIn, kw_only=True):
    """reply, note, info_request"""

    csrf: str = ""
    back: str = ""


class TransferForm(TransferIn, kw_only=True):
    csrf: str = ""
    back: str = ""


class ExtensionForm(ExtensionIn, kw_only=True):
    csrf: str = ""
    back: str = ""


class ExtensionRequestForm(ExtensionRequestIn, kw_only=True):
    csrf: str = ""
    back: str = ""


class ExtensionDecisionForm(ActionForm, kw_only=True):
    decision: Literal["approve", "decline"]  # the button pressed
    note: _field_type(ExtensionDecisionIn, "note") = None  # type: ignore[valid-type]


class ResolveForm(ActionForm, kw_only=True):
    """multipart/form-data: the answer and the photos of the work done."""

    answer: _field_type(ResolveIn, "answer")  # type: ignore[valid-type]
    photos: list[UploadFile] = []


class RejectForm(RejectIn, kw_only=True):
    """reject and hide_text: a reason"""

    csrf: str = ""
    back: str = ""


class HidePhotoForm(RejectForm, kw_only=True):
    photo_id: uuid.UUID


class MergeForm(MergeIn, kw_only=True):
    csrf: str = ""
    back: str = ""


def command[T: msgspec.Struct](form: msgspec.Struct, schema: type[T]) -> T:
    """The JSON API's command inside a form (its fields only: no token, no page).
    The form validated them with the same types and limits."""
    return schema(**{name: getattr(form, name) for name in schema.__struct_fields__})


# ---------------------------------------------------------------- errors in place (issue 23)
#
# A refused form comes back on its own page (GOV.UK's pattern): the values as typed, a
# summary at the top linking to each bad field, the message beside the field, the field
# named by its label. ``FORMS`` says, per form, which HTML id and which label (a console
# catalogue key) each field has; ``failed`` turns the error (Litestar's decoding error or
# a domain AppError) into the ``FormState`` the templates read (templates/_form.html).
# ``{name}`` in a form's key or a field's id is the form's value or path parameter of
# that name (one form per row or per photo).

FORMS: dict[str, dict[str, tuple[str, str]]] = {
    "login": {"email": ("email", "email"), "password": ("password", "password")},
    "reply": {"body": ("msg-reply", "reply")},
    "note": {"body": ("msg-note", "note")},
    "info_request": {"body": ("msg-info_request", "info_request")},
    "resolve": {
        "answer": ("answer", "answer"),
        "photos": ("photos", "resolution_photos"),
        "photo_ids": ("photos", "resolution_photos"),
    },
    "transfer": {"unit_code": ("unit_code", "to_unit"), "reason": ("transfer-reason", "reason")},
    "assign-{report_id}": {
        "unit_code": ("unit-{report_id}", "to_unit"),
        "reason": ("reason-{report_id}", "reason"),
    },
    "extension": {
        "due_date": ("extension-date", "new_due_date"),
        "reason": ("extension-reason", "reason"),
    },
    "extension_request": {
        "due_date": ("extension_request-date", "new_due_date"),
        "reason": ("extension_request-reason", "reason"),
    },
    "extension_decision": {
        "note": ("decision-note", "note"),
        "decision": ("decision-approve", "decision"),
    },
    "merge": {"original_code": ("original_code", "original_code")},
    "reject": {"reason": ("reject-reason", "reason")},
    "hide_text": {"reason": ("hide-reason", "reason")},
    "hide_photo-{photo_id}": {"reason": ("hide-photo-{photo_id}", "reason")},
    "template": {"body": ("template-body", "template_text")},
    "flag": {"reason_code": ("flag-reason", "moderation.flag_reason")},
    "bulk": {
        "codes": ("h-bulk", "bulk"),
        "action": ("bulk-accept", "bulk_action"),
        "unit_code": ("bulk-unit", "to_unit"),
        "reason": ("bulk-reason", "reason"),
        "template_id": ("bulk-template", "templates"),
        "body": ("bulk-template", "templates"),
    },
    "template_edit": {
        "title": ("tpl-title", "template_title"),
        "body_vi": ("tpl-vi", "template_body_vi"),
        "body_en": ("tpl-en", "template_body_en"),
        "unit_code": ("tpl-unit", "unit"),
        "category_code": ("tpl-category", "category"),
        "for_status": ("tpl-for", "template_for_status"),
        "target_status": ("tpl-target", "template_target"),
        "auto_on_status": ("tpl-auto", "template_auto"),
    },
    # the photo redaction form's rows (a rectangle each; ``rectangles``: the form as a whole)
    "redact": {
        "rectangles": ("x1", "redaction.title"),
        **{f"rectangle{n}": (f"x{n}", "redaction.rectangle") for n in range(1, 6)},
    },
    "dossier_import": {
        "agency": ("agency", "dossier_import.agency"),
        "file": ("file", "dossier_import.file"),
        "format": ("format", "dossier_import.format"),
    },
    "two_factor": {
        "code": ("code", "two_factor_code"),
        "recovery_code": ("recovery_code", "two_factor_recovery_code"),
    },
    "suspend": {
        "phone": ("suspend-phone", "moderation.phone"),
        "reason": ("suspend-reason", "moderation.reason"),
        "until": ("suspend-until", "moderation.until"),
    },
}
# values never sent back to the browser
SECRET_FIELDS = frozenset({"csrf", "password", "code", "new_password"})
# Litestar's messages for a value msgspec refused (what kind of refusal, and its limit)
_TOO_LONG = re.compile(r"length <= (\d+)")
_TOO_SHORT = re.compile(r"length >= (\d+)")
_NAMED = re.compile(r"field `(\w+)`")


@dataclass(frozen=True, slots=True)
class ShownError:
    """One bad field as the page shows it: the id of its control (the summary links to
    it, the message beside it is ``<id>-error``), its label and the message."""

    field: str
    id: str
    label: str
    message: str


@dataclass(frozen=True, slots=True)
class FormState:
    """What a page shows of a form posted and refused: ``key`` says which form (a page may
    have several), ``values`` what was typed, ``errors`` per field, ``message`` a refusal
    about no field (a conflict, not allowed). ``NO_FORM`` on a page simply shown."""

    key: str | None = None
    values: dict[str, list[str]] = field(default_factory=dict)
    errors: tuple[ShownError, ...] = ()
    message: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.message)

    def mine(self, key: str) -> bool:
        return key == self.key

    def value(self, key: str, name: str, default: object = "") -> str:
        """The value typed in this form's field, else ``default`` (what a GET shows)."""
        if key == self.key and self.values.get(name):
            return self.values[name][0]
        return "" if default is None else str(default)

    def values_of(self, key: str, name: str) -> list[str]:
        """Every value of a multiple field (ticked boxes) of this form, as typed."""
        return list(self.values.get(name, [])) if key == self.key else []

    def error(self, key: str, name: str) -> ShownError | None:
        if key != self.key:
            return None
        return next((e for e in self.errors if e.field == name), None)


NO_FORM = FormState()


def _fill(pattern: str, params: dict[str, str]) -> str:
    try:
        return pattern.format(**params)
    except (KeyError, IndexError, ValueError):
        return pattern.split("{", 1)[0]


def form_key(pattern: str, params: dict[str, str]) -> str:
    return _fill(pattern, params)


def _message(lang: str, kind: str, label: str, **params: Any) -> str:
    return texts.text(f"field_error.{kind}", lang, label=label, **params)


def _decoding_kind(message: str, typed: str | None) -> tuple[str, dict[str, Any]]:
    """A catalogue kind for Litestar's message about one field."""
    if found := _TOO_LONG.search(message):
        return "too_long", {"max": int(found[1])}
    if found := _TOO_SHORT.search(message):
        if not typed:
            return "required", {}
        return "too_short", {"min": int(found[1])}
    if "missing required field" in message or (typed == "" and "Expected" in message):
        return "required", {}
    if "date" in message.lower():
        return "date", {}
    if "enum" in message.lower() or "uuid" in message.lower():
        return "choice", {}
    if "got `array`" in message:
        return "twice", {}
    return "invalid", {}


def failed(
    key_pattern: str,
    values: dict[str, list[str]],
    params: dict[str, str],
    lang: str,
    *,
    decoding: list[dict[str, Any]] | None = None,
    error: AppError | None = None,
) -> FormState:
    """The refused form's state: from Litestar's decoding errors (``decoding``: its
    ``{"key", "message"}`` items) or from a domain error (its field errors carry the
    error's own message, e.g. "the new deadline must be later than ..."; without field
    errors it is the form's message)."""
    key = form_key(key_pattern, params)
    fields = FORMS.get(key_pattern, {})
    shown: list[ShownError] = []
    message: str | None = None
    seen: set[str] = set()

    def add(name: str, text_of: Any) -> None:
        nonlocal message
        spec = fields.get(name)
        if spec is None or name in seen:
            # a field the page has no control for (an unknown one, a hidden one)
            message = message or texts.text("field_error.form", lang)
            return
        seen.add(name)
        # a label naming a row ("Rectangle {index}") takes the row from the field's name
        index = name[len(name.rstrip("0123456789")) :]
        # a console key (``reason`` is console.reason), else the catalogue's own key
        label_key = "console." + spec[1] if i18n.has("console." + spec[1]) else spec[1]
        label = i18n.text(label_key, lang, index=index)
        shown.append(ShownError(name, _fill(spec[0], params), label, text_of(label)))

    for decoded in decoding or []:
        raw = str(decoded.get("message", ""))
        name = str(decoded.get("key") or "data")
        if name == "data" and (named := _NAMED.search(raw)):
            name = named[1]
        if name == "data" or "unknown field" in raw:
            message = message or texts.text("field_error.form", lang)
            continue
        typed: str | None = (values.get(name) or [""])[0] if name in values else None
        kind, extra = _decoding_kind(raw, typed)
        add(name, lambda label, k=kind, x=extra: _message(lang, k, label, **x))
    if error is not None:
        detail = i18n.translate(error.code, lang, error.params)
        for item in error.errors or []:
            if error.code == "form_invalid":  # a value a page checked itself, like Litestar
                typed = (values.get(item.field) or [""])[0] if item.field in values else None
                kind, extra = (
                    ("nul", {}) if "U+0000" in item.message else _decoding_kind(item.message, typed)
                )
                add(item.field, lambda label, k=kind, x=extra: _message(lang, k, label, **x))
            else:
                add(item.field, lambda label: _message(lang, "domain", label, message=detail))
        if not error.errors:
            message = detail
    if not shown and message is None:
        message = texts.text("field_error.form", lang)
    kept = {
        name: [_printable(v) for v in found]
        for name, found in values.items()
        if name not in SECRET_FIELDS
    }
    return FormState(key=key, values=kept, errors=tuple(shown), message=message)


def _printable(value: str) -> str:
    """Text that can go back into the page: no lone surrogate (UTF-8 cannot carry it),
    no U+0000 (the reason it was refused)."""
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")

"""The console's forms as msgspec Structs, decoded by Litestar from the posted form
(issue 18 item 3): a handler declares ``data: Annotated[ReplyForm, Body(media_type=...)]``
and receives the Struct, or Litestar raises a ``ValidationException`` whose ``extra``
names each bad field (``{"key": field, "message": ..., "source": "body"}``), which
``app.web.api.page_error_handler`` renders as the 422 page naming the field.

A form that carries a staff action subclasses the JSON API's input Struct (the command),
so both edges validate the same fields with the same limits; it adds the CSRF token and
the page to go back to. ``command()`` takes the command back out of the form, without
those two. Unknown fields are refused, as in the JSON API (``Input``)."""

import uuid
from typing import Literal, Protocol

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
from app.core.schemas import Input
from app.routing.schemas import ExtensionIn, TransferIn


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

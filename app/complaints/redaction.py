"""Photo redaction (issue 22 item 5): che ảnh — staff black out rectangles (faces,
number plates) on a report's photo.

Rectangles are in the stored display image's pixel space (``report_photos.width`` x
``height``; the console shows that size). The public display and thumbnail copies are
made again from the redacted image with Pillow, as the upload pipeline makes them
(``app/complaints/images.py``: baseline sRGB JPEG, no metadata). The unredacted display
copy is kept for the unit's staff (``policy.may_see_unredacted_photo``) when
``PHOTO_REDACTION_KEEPS_ORIGINAL`` is true, else deleted. A second redaction starts from
the kept original with every rectangle so far (no JPEG generation loss), or from the
current copy when the original is gone.

Nothing half-written: the new copies go under new keys (``display-r<n>.jpg``), which a
rolled-back transaction deletes (``app.core.storage``); the row switches to them in the
transaction; the objects it no longer names are deleted only after the commit.
"""

from __future__ import annotations

import asyncio
import io
import posixpath
import uuid
from datetime import datetime

import msgspec
from PIL import Image, ImageDraw
from sqlalchemy import DateTime, ForeignKey, Integer, Text, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app import policy
from app.complaints.images import PhotoLimits, _encode_jpeg, _pool
from app.complaints.models import Report, ReportPhoto
from app.core import audit, jobs
from app.core.errors import BadRequest, FieldError, Forbidden, NotFound
from app.core.models import Base
from app.core.schemas import Input
from app.core.storage import Storage
from app.policy import Actor
from app.settings import Settings

MAX_RECTANGLES = 20  # per request: more is a 400 naming the limit


class PhotoRedaction(Base):
    """A photo's redaction: every rectangle blacked out so far, and the unredacted display
    copy when it is kept (``original_key``; None when deleted)."""

    __tablename__ = "photo_redactions"

    photo_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("report_photos.id", ondelete="CASCADE"), primary_key=True
    )
    original_key: Mapped[str | None] = mapped_column(Text)
    rectangles: Mapped[list[dict[str, int]]] = mapped_column(JSONB, nullable=False)
    times: Mapped[int] = mapped_column(Integer, nullable=False)
    redacted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    redacted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


# ---------------------------------------------------------------- schemas


class Rectangle(msgspec.Struct, forbid_unknown_fields=True):
    """Pixels [x, x + width) x [y, y + height) of the display image (origin top left)."""

    x: int
    y: int
    width: int
    height: int


class RedactIn(Input):
    rectangles: list[Rectangle]


class RedactionOut(msgspec.Struct):
    photo_id: uuid.UUID
    url: str  # the redacted public copy
    thumbnail_url: str
    width: int
    height: int
    rectangles: int  # blacked out so far
    original_kept: bool


class OriginalOut(msgspec.Struct):
    url: str  # a short-lived signed URL of the unredacted copy


# ---------------------------------------------------------------- checks


def check_rectangles(rectangles: list[Rectangle], width: int, height: int) -> None:
    """400 naming what is wrong: none, too many, an empty one, one outside the photo."""
    if not rectangles:
        raise BadRequest(
            "redaction_rectangles_missing",
            errors=[FieldError(field="rectangles", message="at least one", source="body")],
        )
    if len(rectangles) > MAX_RECTANGLES:
        raise BadRequest(
            "redaction_too_many_rectangles",
            params={"max": MAX_RECTANGLES},
            errors=[
                FieldError(field="rectangles", message=f"at most {MAX_RECTANGLES}", source="body")
            ],
        )
    for i, r in enumerate(rectangles):
        field = f"rectangles[{i}]"
        if r.width <= 0 or r.height <= 0:
            raise BadRequest(
                "redaction_rectangle_empty",
                params={"index": i + 1},
                errors=[FieldError(field=field, message="width and height > 0", source="body")],
            )
        if r.x < 0 or r.y < 0 or r.x + r.width > width or r.y + r.height > height:
            raise BadRequest(
                "redaction_rectangle_outside",
                params={"index": i + 1, "width": width, "height": height},
                errors=[
                    FieldError(
                        field=field, message=f"outside the {width}x{height} photo", source="body"
                    )
                ],
            )


# ---------------------------------------------------------------- the image work


def blacken(
    data: bytes, rectangles: list[dict[str, int]], limits: PhotoLimits
) -> tuple[bytes, bytes, int, int]:
    """The display JPEG with the rectangles filled black, and its thumbnail, encoded as
    the upload pipeline encodes them. Pure; runs on the photo pool."""
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as source:
        im = source.convert("RGB")
    draw = ImageDraw.Draw(im)
    for r in rectangles:
        # Pillow's rectangle includes its far corner: the last pixel is x + width - 1
        draw.rectangle(
            (r["x"], r["y"], r["x"] + r["width"] - 1, r["y"] + r["height"] - 1), fill=(0, 0, 0)
        )
    thumb = im.copy()
    thumb.thumbnail((limits.thumb_long_edge, limits.thumb_long_edge), Image.Resampling.LANCZOS, 2.0)
    return (
        _encode_jpeg(im, limits.display_quality),
        _encode_jpeg(thumb, limits.thumb_quality),
        im.width,
        im.height,
    )


# ---------------------------------------------------------------- staff


async def _photo_and_unit(
    session: AsyncSession, photo_id: uuid.UUID, *, lock: bool
) -> tuple[ReportPhoto, Report]:
    query = select(ReportPhoto).where(ReportPhoto.id == photo_id)
    photo = await session.scalar(query.with_for_update() if lock else query)
    report = await session.get(Report, photo.report_id) if photo and photo.report_id else None
    if photo is None or report is None:
        raise NotFound("photo_not_found")
    return photo, report


async def redact(
    session: AsyncSession,
    storage: Storage,
    settings: Settings,
    actor: Actor,
    photo_id: uuid.UUID,
    command: RedactIn,
) -> RedactionOut:
    photo, report = await _photo_and_unit(session, photo_id, lock=True)
    if not policy.may_redact_photo(actor, report.unit_id):
        raise Forbidden("not_your_report")
    check_rectangles(command.rectangles, photo.width, photo.height)
    new = [msgspec.structs.asdict(r) for r in command.rectangles]
    redaction = await session.get(PhotoRedaction, photo_id, with_for_update=True)
    previous: list[dict[str, int]] = list(redaction.rectangles) if redaction else []
    # from the kept original with every rectangle, else from the current copy
    if redaction is not None and redaction.original_key is not None:
        source_key, apply = redaction.original_key, previous + new
    else:
        source_key, apply = photo.display_key, new
    source = await storage.get(source_key)
    limits = PhotoLimits()  # the pipeline's sizes and qualities
    loop = asyncio.get_running_loop()
    display, thumbnail, width, height = await loop.run_in_executor(
        _pool, blacken, source, apply, limits
    )
    times = (redaction.times if redaction else 0) + 1
    folder = posixpath.dirname(photo.display_key)
    display_key, thumb_key = f"{folder}/display-r{times}.jpg", f"{folder}/thumb-r{times}.jpg"
    # new keys: a rollback deletes them (storage.put inside the boundary), the row still
    # names the old ones until the commit
    await storage.put(display_key, display, "image/jpeg")
    await storage.put(thumb_key, thumbnail, "image/jpeg")

    unused = [photo.thumb_key]
    if redaction is None:
        keep = settings.photo_redaction_keeps_original
        redaction = PhotoRedaction(
            photo_id=photo_id,
            original_key=photo.display_key if keep else None,
            rectangles=[],
            times=0,
        )
        session.add(redaction)
        if not keep:
            unused.append(photo.display_key)
    else:
        unused.append(photo.display_key)  # an earlier redacted copy
    redaction.rectangles = previous + new
    redaction.times = times
    redaction.redacted_by = actor.user_id
    redaction.redacted_at = actor.now
    photo.display_key, photo.thumb_key = display_key, thumb_key
    photo.width, photo.height = width, height

    async def delete_unused() -> None:
        await storage.delete_many(unused)

    jobs.after_commit(delete_unused)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="photo.redacted",
        object_type="photo",
        object_id=str(photo_id),
        ip=actor.ip,
        details={
            "report": report.code,
            "rectangles": new,
            "original_kept": redaction.original_key is not None,
        },
    )
    return RedactionOut(
        photo_id=photo_id,
        url=await storage.signed_url(display_key),
        thumbnail_url=await storage.signed_url(thumb_key),
        width=width,
        height=height,
        rectangles=len(redaction.rectangles),
        original_kept=redaction.original_key is not None,
    )


async def original(
    session: AsyncSession, storage: Storage, actor: Actor, photo_id: uuid.UUID
) -> OriginalOut:
    """The unredacted copy, for the report's unit's staff (and managers above, admins).
    404 ``photo_original_not_kept`` when the photo was never redacted or it was deleted."""
    photo, report = await _photo_and_unit(session, photo_id, lock=False)
    if not policy.may_see_unredacted_photo(actor, report.unit_id):
        raise Forbidden("not_your_report")
    redaction = await session.get(PhotoRedaction, photo_id)
    if redaction is None or redaction.original_key is None:
        raise NotFound("photo_original_not_kept")
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="photo.original_viewed",
        object_type="photo",
        object_id=str(photo_id),
        ip=actor.ip,
        details={"report": report.code},
    )
    return OriginalOut(url=await storage.signed_url(redaction.original_key, ttl_seconds=300))


class RedactionPage(msgspec.Struct):
    """What the console's redaction page shows of a photo."""

    photo_id: uuid.UUID
    report_id: uuid.UUID
    report_code: str
    url: str
    width: int
    height: int
    rectangles: list[dict[str, int]]  # blacked out so far
    original_kept: bool
    may_see_original: bool


async def page(
    session: AsyncSession, storage: Storage, actor: Actor, photo_id: uuid.UUID
) -> RedactionPage:
    photo, report = await _photo_and_unit(session, photo_id, lock=False)
    if not policy.may_redact_photo(actor, report.unit_id):
        raise Forbidden("not_your_report")
    redaction = await session.get(PhotoRedaction, photo_id)
    return RedactionPage(
        photo_id=photo_id,
        report_id=report.id,
        report_code=report.code,
        url=await storage.signed_url(photo.display_key),
        width=photo.width,
        height=photo.height,
        rectangles=list(redaction.rectangles) if redaction else [],
        original_kept=bool(redaction and redaction.original_key),
        may_see_original=policy.may_see_unredacted_photo(actor, report.unit_id),
    )

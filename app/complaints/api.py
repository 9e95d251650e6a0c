"""Thin controllers: photo upload, filing, and the reporter's own reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import Meta

from app.complaints import abuse, public, redaction, service
from app.complaints.schemas import (
    CommentIn,
    HideIn,
    Kind,
    NearbyReport,
    PhotoIdList,
    PhotoOut,
    RatingIn,
    ReportCreated,
    ReportDetail,
    ReportIn,
    ReportPage,
    Status,
)
from app.core.auth import require_resident, require_staff
from app.core.conditional import CONDITIONAL, OPT_KEY, weak_etag_without
from app.core.db import DbSession
from app.core.errors import FieldError, Unprocessable
from app.core.i18n import negotiate
from app.core.schemas import Input
from app.policy import actor_of

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=8,
        max_length=80,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Makes a retried submission return the first result instead of a copy.",
    ),
]


class PhotoIds(Input):
    photo_ids: Annotated[PhotoIdList, Meta(min_length=1)]  # at most PHOTOS_PER_REPORT


class SupportIn(Input):
    code: Annotated[str, Meta(min_length=8, max_length=12)]


class SupportOut(msgspec.Struct):
    code: str
    supporters_count: int


class PhotoController(Controller):
    path = "/photos"
    tags = ["reports"]
    guards = [require_resident]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Upload one photo (raw image bytes as the body)",
        description=(
            "Send the image bytes as the body (JPEG, PNG, WebP or HEIC; the type is read "
            "from the content). Metadata is stripped; the geotag and capture time are "
            "kept as data. Returns an id to file with a report within 24 hours. Limited per "
            "resident (PHOTO_RATE_PER_RESIDENT): 429 with Retry-After."
        ),
        request_max_body_size=20_000_000,
    )
    async def upload(self, request: Request, state: State, session: DbSession) -> PhotoOut:
        await state.limiter.hit(
            state.settings.photo_rate_per_resident,
            "photo-upload",
            str(request.user.user_id),
            fail_open=True,  # Redis down must not stop a resident's report
        )
        return await upload_from_body(request, state, session)


async def upload_from_body(request: Request, state: State, session: DbSession) -> PhotoOut:
    """The request body is one photo of the caller's (residents' and staff's uploads)."""
    data = await request.body()
    if not data:
        raise Unprocessable(
            "photo_unreadable",
            errors=[FieldError(field="body", message="empty", source="body")],
        )
    return await service.upload_photo(
        session, state.settings, state.storage, request.user.user_id, data, state.clock.now()
    )


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]
    guards = [require_resident]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="File a complaint, petition or initiative",
        description="Limited per resident (REPORT_RATE_PER_RESIDENT): 429 with Retry-After.",
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=ReportCreated,
                generate_examples=False,
                description="A retry with the same Idempotency-Key: the first report",
            )
        },
    )
    async def file(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: JSONBody[ReportIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReportCreated]:
        await state.limiter.hit(
            state.settings.report_rate_per_resident,
            "report-filing",
            str(request.user.user_id),
            fail_open=True,  # PostgreSQL is the record: Redis down must not stop filing
        )
        created, new = await service.file_report(
            session,
            state.settings,
            request.user.user_id,
            data,
            idempotency_key,
            state.clock.now(),
        )
        headers = {} if new else {"Idempotent-Replayed": "true"}
        return Response(
            created, status_code=HTTP_201_CREATED if new else HTTP_200_OK, headers=headers
        )

    @get("/mine", summary="My reports, newest first (keyset pagination)", opt=CONDITIONAL)
    async def mine(
        self,
        request: Request,
        state: State,
        session: DbSession,
        status: FromQuery[Status | None] = None,
        kind: FromQuery[Kind | None] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> ReportPage:
        return await service.my_reports(
            session,
            state.storage,
            request.user.user_id,
            status,
            kind,
            cursor,
            limit,
            names=await state.reference.current(),
            locale=negotiate(request.headers.get("accept-language")),
        )

    @get(
        "/nearby",
        summary="Open reports of a category within 100 m (support one instead)",
        opt=CONDITIONAL,
    )
    async def nearby(
        self,
        request: Request,
        state: State,
        session: DbSession,
        lat: Annotated[float, QueryParameter(ge=-90, le=90)],
        lon: Annotated[float, QueryParameter(ge=-180, le=180)],
        category: Annotated[str, QueryParameter(min_length=1, max_length=40)],
    ) -> list[NearbyReport]:
        return await service.nearby(
            session,
            lon,
            lat,
            category,
            names=await state.reference.current(),
            locale=negotiate(request.headers.get("accept-language")),
        )

    @post("/supports", status_code=HTTP_200_OK, summary='Support a report ("me too"), once')
    async def support(
        self, request: Request, state: State, session: DbSession, data: JSONBody[SupportIn]
    ) -> SupportOut:
        count = await service.support(session, request.user.user_id, data.code, state.clock.now())
        return SupportOut(code=data.code, supporters_count=count)

    @post("/{report_id:uuid}/rating", status_code=204, summary="Rate the resolution, once")
    async def rate(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[RatingIn],
    ) -> None:
        await service.rate(
            session,
            request.user.user_id,
            report_id,
            data.rating,
            data.comment,
            state.clock.now(),
        )

    @post(
        "/{report_id:uuid}/reopen",
        status_code=204,
        summary="Reopen once, within 7 days, after rating 'not satisfied'",
    )
    async def reopen(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> None:
        await service.reopen(
            session, request.user.user_id, report_id, state.clock.now(), state.deadlines
        )

    @get(
        "/{report_id:uuid}",
        summary="One of my reports with photos and public timeline",
        opt=CONDITIONAL,
    )
    async def detail(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> ReportDetail:
        return await service.report_detail(session, state.storage, request.user.user_id, report_id)

    @post("/{report_id:uuid}/withdraw", status_code=204, summary="Withdraw while still submitted")
    async def withdraw(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> None:
        await service.withdraw(session, request.user.user_id, report_id, state.clock.now())

    @post("/{report_id:uuid}/comments", status_code=204, summary="Add a comment while open")
    async def comment(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[CommentIn],
    ) -> None:
        await service.add_comment(
            session, request.user.user_id, report_id, data.body, state.clock.now()
        )

    @post("/{report_id:uuid}/photos", status_code=204, summary="Add uploaded photos while open")
    async def photos(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[PhotoIds],
    ) -> None:
        await service.add_photos(
            session,
            state.settings,
            request.user.user_id,
            report_id,
            data.photo_ids,
            state.clock.now(),
        )


class PublicReportController(Controller):
    """No sign-in. Never the reporter's identity or contact."""

    path = "/public/reports"
    tags = ["public"]

    @get(
        "/",
        summary="GeoJSON feed of reports in a bounding box, clustered at low zoom",
        description=(
            "RFC 7946 FeatureCollection. Below zoom 16 reports are grouped on a grid "
            "(about 64 px cells) and each feature carries a count; from zoom 16 every "
            "report is its own feature. At most 2000 features; `truncated` says so. "
            "Clusters come from a snapshot rebuilt every minute (`as_of` says when); "
            "with `since`, or when the snapshot is older than 10 minutes, they are "
            "computed live."
        ),
        media_type="application/geo+json",
        # live answers carry the instant they were read: weakly equal without it
        opt={OPT_KEY: weak_etag_without(b"as_of")},
    )
    async def feed(
        self,
        session: DbSession,
        bbox: Annotated[
            str, QueryParameter(max_length=100, description="minLon,minLat,maxLon,maxLat (WGS84)")
        ],
        zoom: Annotated[int, QueryParameter(ge=0, le=22)] = 12,
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
        status: FromQuery[Status | None] = None,
        kind: FromQuery[Kind | None] = None,
        since: FromQuery[datetime | None] = None,
    ) -> public.FeatureCollection:
        return await public.feed(
            session, public.parse_bbox(bbox), zoom, category, status, kind, since
        )

    @get("/{code:str}", summary="A report by its code", opt=CONDITIONAL)
    async def by_code(
        self, state: State, session: DbSession, code: FromPath[str]
    ) -> public.PublicReport:
        return await public.report_by_code(session, state.storage, code)


class ModerationController(Controller):
    """Staff hide a photo or a report's text with a reason (kept in the audit log);
    hidden content leaves every public view."""

    path = "/moderation"
    tags = ["moderation"]
    guards = [require_staff]
    security = BEARER

    @post("/photos/{photo_id:uuid}/hide", status_code=204, summary="Hide a photo")
    async def hide_photo(
        self,
        request: Request,
        session: DbSession,
        photo_id: FromPath[uuid.UUID],
        data: JSONBody[HideIn],
    ) -> None:
        await service.hide_photo(session, await actor_of(request), photo_id, data.reason)

    @post("/reports/{report_id:uuid}/hide-text", status_code=204, summary="Hide a report's text")
    async def hide_text(
        self,
        request: Request,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[HideIn],
    ) -> None:
        await service.hide_text(session, await actor_of(request), report_id, data.reason)

    @post(
        "/reports/{report_id:uuid}/flag",
        status_code=200,
        summary="Flag a report abusive: hidden from every public view (issue 22 item 6)",
        description=(
            "`reason_code` from a fixed list (400 `abuse_reason_unknown` names it). The "
            "report leaves the map, the public report view, the nearby list and Open311 "
            "reads; staff keep handling it. 409 `report_already_flagged`."
        ),
    )
    async def flag(
        self,
        request: Request,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[abuse.FlagIn],
    ) -> abuse.FlagOut:
        return await abuse.flag(session, await actor_of(request), report_id, data.reason_code)

    @get(
        "/reports/{report_id:uuid}/flag",
        summary="A report's abuse flag and its reason code (404 `report_not_flagged`)",
    )
    async def flag_state(
        self, request: Request, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> abuse.FlagOut:
        return await abuse.staff_flag(session, await actor_of(request), report_id)

    @post(
        "/reports/{report_id:uuid}/unflag",
        status_code=204,
        summary="Remove the abuse flag: the report is public again",
        description="409 `report_not_flagged`.",
    )
    async def unflag(
        self, request: Request, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> None:
        await abuse.unflag(session, await actor_of(request), report_id)

    @post(
        "/photos/{photo_id:uuid}/redact",
        status_code=200,
        summary="Black out rectangles (faces, plates) on a report's photo (issue 22 item 5)",
        description=(
            "Rectangles in the display image's pixels (the photo's `width` x `height`), "
            f"1 to {redaction.MAX_RECTANGLES}. The public and thumbnail copies are made "
            "again from the redacted image; the unredacted copy is kept for the unit's "
            "staff (`PHOTO_REDACTION_KEEPS_ORIGINAL`) or deleted. 400 "
            "`redaction_rectangles_missing`, `redaction_too_many_rectangles`, "
            "`redaction_rectangle_empty`, `redaction_rectangle_outside` (naming the "
            "rectangle and the photo's size); nothing is written then."
        ),
    )
    async def redact(
        self,
        request: Request,
        state: State,
        session: DbSession,
        photo_id: FromPath[uuid.UUID],
        data: JSONBody[redaction.RedactIn],
    ) -> redaction.RedactionOut:
        return await redaction.redact(
            session, state.storage, state.settings, await actor_of(request), photo_id, data
        )

    @get(
        "/photos/{photo_id:uuid}/original",
        summary="The unredacted copy of a redacted photo (the report's unit's staff)",
        description="404 `photo_original_not_kept`: never redacted, or the copy was deleted.",
        cache_control=CacheControlHeader(no_store=True),
    )
    async def original(
        self, request: Request, state: State, session: DbSession, photo_id: FromPath[uuid.UUID]
    ) -> redaction.OriginalOut:
        return await redaction.original(session, state.storage, await actor_of(request), photo_id)

"""The console's JSON API: what a unit does with a report. Every call is checked
against the report's unit and written to the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.complaints import handling
from app.complaints.api import IdempotencyKey, upload_from_body
from app.complaints.models import Report
from app.complaints.schemas import PhotoOut, ReportCreated
from app.console import service as console
from app.console.schemas import (
    ExtensionDecisionIn,
    ExtensionRequestIn,
    HandledOut,
    IntakeIn,
    MergeIn,
    MessageIn,
    QueuePage,
    RejectIn,
    ResolveIn,
    StaffReportDetail,
)
from app.core.auth import require_staff
from app.core.db import DbSession
from app.policy import actor_of
from app.routing import service as routing
from app.routing.schemas import (
    ExtensionIn,
    ExtensionOut,
    RoutedOut,
    RoutingRunOut,
    TransferIn,
    TransferOut,
)

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement


def _out(report: Report) -> HandledOut:
    return HandledOut(
        id=report.id,
        code=report.code,
        status=report.status,
        unit_id=report.unit_id,
        due_at=report.due_at,
        resolved_on_time=report.resolved_on_time,
    )


class ConsoleReportController(Controller):
    path = "/console/reports"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @get("/", summary="The queue: open reports of my units, soonest deadline first")
    async def queue(
        self,
        request: Request,
        state: State,
        session: DbSession,
        unit: Annotated[str | None, QueryParameter(max_length=40)] = None,
        status: FromQuery[
            Literal["submitted", "assigned", "in_progress", "reopened"] | None
        ] = None,
        category: Annotated[str | None, QueryParameter(max_length=40)] = None,
        overdue: FromQuery[bool | None] = None,
        due_soon: FromQuery[bool] = False,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> QueuePage:
        return await console.queue(
            session,
            state.deadlines.calendar,
            await actor_of(request),
            unit_code=unit,
            status=status,
            category=category,
            overdue=overdue,
            due_soon=due_soon,
            cursor=cursor,
            limit=limit,
        )

    @get("/{report_id:uuid}", summary="One report as staff see it")
    async def detail(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> StaffReportDetail:
        return await console.report_for_staff(
            session, state.storage, await actor_of(request), report_id
        )

    @post(
        "/",
        summary="File a report for a resident (phone or counter intake)",
        description="Counted apart from residents' own reports in the service index.",
    )
    async def intake(
        self,
        request: Request,
        state: State,
        session: DbSession,
        data: JSONBody[IntakeIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReportCreated]:
        created, new = await handling.file_on_behalf(
            session, state.settings, await actor_of(request), data, idempotency_key
        )
        return Response(created, status_code=HTTP_201_CREATED if new else HTTP_200_OK)

    @post("/{report_id:uuid}/accept", status_code=HTTP_200_OK, summary="Start handling")
    async def accept(
        self, request: Request, state: State, session: DbSession, report_id: FromPath[uuid.UUID]
    ) -> HandledOut:
        report = await handling.accept(session, await actor_of(request), report_id)
        return _out(report)

    @post("/{report_id:uuid}/replies", status_code=HTTP_200_OK, summary="Reply to the resident")
    async def reply(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
    ) -> HandledOut:
        report = await handling.add_message(
            session, await actor_of(request), report_id, data, kind="reply"
        )
        return _out(report)

    @post(
        "/{report_id:uuid}/info-requests",
        status_code=HTTP_200_OK,
        summary="Ask the resident for more information (public; the clock keeps running)",
    )
    async def ask_information(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
    ) -> HandledOut:
        report = await handling.add_message(
            session, await actor_of(request), report_id, data, kind="info_request"
        )
        return _out(report)

    @post("/{report_id:uuid}/notes", status_code=HTTP_200_OK, summary="Internal note")
    async def note(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
    ) -> HandledOut:
        report = await handling.add_message(
            session, await actor_of(request), report_id, data, kind="note"
        )
        return _out(report)

    @post("/{report_id:uuid}/resolve", status_code=HTTP_200_OK, summary="Resolve with an answer")
    async def resolve(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[ResolveIn],
    ) -> HandledOut:
        report = await handling.resolve(
            session,
            state.settings,
            state.deadlines.calendar,
            await actor_of(request),
            report_id,
            data,
        )
        return _out(report)

    @post(
        "/{report_id:uuid}/merge",
        status_code=HTTP_200_OK,
        summary="Close as a duplicate of another report (its followers follow that one)",
    )
    async def merge(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[MergeIn],
    ) -> HandledOut:
        report = await handling.merge_duplicate(session, await actor_of(request), report_id, data)
        return _out(report)

    @post("/{report_id:uuid}/reject", status_code=HTTP_200_OK, summary="Reject with a reason")
    async def reject(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[RejectIn],
    ) -> HandledOut:
        report = await handling.reject(session, await actor_of(request), report_id, data)
        return _out(report)

    @post(
        "/{report_id:uuid}/transfer",
        status_code=HTTP_200_OK,
        summary="Move to another unit (the deadline keeps running)",
    )
    async def transfer(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[TransferIn],
    ) -> TransferOut:
        unit = await routing.transfer(
            session, state.settings, await actor_of(request), report_id, data
        )
        return TransferOut(
            unit_code=unit.code, redirected_to_dispatcher=unit.code != data.unit_code
        )

    @post(
        "/{report_id:uuid}/extension",
        status_code=HTTP_200_OK,
        summary="Grant the one extension (manager of the unit)",
    )
    async def extend(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[ExtensionIn],
    ) -> ExtensionOut:
        due = await routing.grant_extension(
            session, state.deadlines, await actor_of(request), report_id, data
        )
        return ExtensionOut(due_at=due)

    @post(
        "/{report_id:uuid}/extension-request",
        status_code=HTTP_200_OK,
        summary="Ask the unit's managers for the one extension",
    )
    async def request_extension(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[ExtensionRequestIn],
    ) -> HandledOut:
        report = await routing.request_extension(
            session, state.deadlines, await actor_of(request), report_id, data
        )
        return _out(report)

    @post(
        "/{report_id:uuid}/extension-request/decision",
        status_code=HTTP_200_OK,
        summary="Approve or decline the pending extension request (manager of the unit)",
    )
    async def decide_extension(
        self,
        request: Request,
        state: State,
        session: DbSession,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[ExtensionDecisionIn],
    ) -> HandledOut:
        report = await routing.decide_extension(
            session, state.deadlines, await actor_of(request), report_id, data
        )
        return _out(report)


class ConsolePhotoController(Controller):
    path = "/console/photos"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Upload one photo for a resolution (raw image bytes as the body)",
        description="Same pipeline and limits as residents' photos; attach it with "
        "`photo_ids` when resolving, within 24 hours.",
        request_max_body_size=20_000_000,
    )
    async def upload(self, request: Request, state: State, session: DbSession) -> PhotoOut:
        return await upload_from_body(request, state, session)


class ConsoleRoutingController(Controller):
    path = "/console/routing"
    tags = ["console"]
    guards = [require_staff]
    security = BEARER

    @post(
        "/run",
        status_code=HTTP_200_OK,
        summary="Route the waiting reports now (dispatcher or admin)",
        description="The worker's routing batch, run by hand for when the workers are down "
        "or behind: the oldest 500 reports waiting for a unit are assigned by the same "
        "rules, with the same deadlines and notifications. Audited.",
    )
    async def run(self, request: Request, state: State, session: DbSession) -> RoutingRunOut:
        routed = await routing.route_now(session, state.deadlines, await actor_of(request))
        return RoutingRunOut(
            routed=len(routed),
            reports=[
                RoutedOut(code=r.code, unit_id=r.unit_id, reason=r.reason, due_at=r.due_at)
                for r in routed
            ],
        )

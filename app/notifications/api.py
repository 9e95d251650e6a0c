"""The signed-in user's inbox (hộp thư thông báo), push preferences and areas followed;
announcements to the followers of areas (staff)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from app.core.auth import require_resident, require_roles, require_user
from app.core.client_address import client_ip
from app.core.conditional import CONDITIONAL
from app.core.db import DbSession
from app.notifications import announcements, preferences, service
from app.notifications.schemas import (
    AnnouncementIn,
    AnnouncementOut,
    FollowedArea,
    MarkedRead,
    NotificationOut,
    NotificationPage,
    PreferencesIn,
    PreferencesOut,
    UnreadCount,
)
from app.policy import actor_of

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]  # OpenAPI security requirement
NotificationId = Annotated[int, PathParameter(ge=1, le=service.MAX_ID)]


class InboxController(Controller):
    path = "/me/notifications"
    tags = ["notifications"]
    guards = [require_user]
    security = BEARER

    @get("/", summary="My notifications, newest first (keyset pagination)", opt=CONDITIONAL)
    async def list_notifications(
        self,
        request: Request,
        state: State,
        cursor: Annotated[
            str | None,
            QueryParameter(max_length=20, description="next_cursor of the previous page"),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        unread: Annotated[bool, QueryParameter(description="only the unread ones")] = False,
    ) -> NotificationPage:
        # one statement on a pooled connection, no session (app.core.reads)
        return await service.list_notifications(
            state.engine, request.user.user_id, cursor=cursor, limit=limit, unread_only=unread
        )

    @get("/unread-count", summary="How many of my notifications are unread", opt=CONDITIONAL)
    async def unread_count(self, request: Request, session: DbSession) -> UnreadCount:
        return UnreadCount(unread=await service.unread_count(session, request.user.user_id))

    @post(
        "/{notification_id:int}/read",
        status_code=HTTP_200_OK,
        summary="Mark one of my notifications read",
    )
    async def mark_read(
        self,
        request: Request,
        state: State,
        session: DbSession,
        notification_id: NotificationId,
    ) -> NotificationOut:
        return await service.mark_read(
            session, request.user.user_id, notification_id, state.clock.now()
        )

    @post("/read-all", status_code=HTTP_200_OK, summary="Mark all my notifications read")
    async def mark_all_read(
        self,
        request: Request,
        state: State,
        session: DbSession,
        up_to_id: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                le=service.MAX_ID,
                description="only those up to this id (the newest the app has shown)",
            ),
        ] = None,
    ) -> MarkedRead:
        user_id = request.user.user_id
        marked = await service.mark_all_read(session, user_id, state.clock.now(), up_to_id)
        return MarkedRead(marked=marked, unread=await service.unread_count(session, user_id))


class PreferencesController(Controller):
    """Which kinds are pushed, and quiet hours (giờ yên lặng): non-urgent pushes that
    fall in them wait until they end. The inbox keeps everything regardless."""

    path = "/me/notification-preferences"
    tags = ["notifications"]
    guards = [require_user]
    security = BEARER

    @get("/", summary="My push preferences")
    async def get_preferences(self, request: Request, session: DbSession) -> PreferencesOut:
        return await preferences.get_preferences(session, request.user.user_id)

    @put("/", status_code=HTTP_200_OK, summary="Replace my push preferences")
    async def put_preferences(
        self, request: Request, state: State, session: DbSession, data: JSONBody[PreferencesIn]
    ) -> PreferencesOut:
        return await preferences.put_preferences(
            session, request.user.user_id, data, state.clock.now()
        )


AreaCodePath = Annotated[str, PathParameter(min_length=1, max_length=10)]


class FollowedAreasController(Controller):
    """Areas whose announcements a resident receives: their home ward unless they
    unfollow it, and up to 20 others."""

    path = "/me/followed-areas"
    tags = ["notifications"]
    guards = [require_resident]
    security = BEARER

    @get("/", summary="Areas I follow (home ward first)")
    async def list_followed(self, request: Request, session: DbSession) -> list[FollowedArea]:
        return await announcements.followed_areas(session, request.user.user_id)

    @put("/{code:str}", status_code=HTTP_200_OK, summary="Follow an area")
    async def follow(
        self, request: Request, state: State, session: DbSession, code: AreaCodePath
    ) -> FollowedArea:
        return await announcements.follow_area(
            session, request.user.user_id, code, state.clock.now()
        )

    @delete("/{code:str}", status_code=204, summary="Stop following an area")
    async def unfollow(
        self, request: Request, state: State, session: DbSession, code: AreaCodePath
    ) -> None:
        await announcements.unfollow_area(session, request.user.user_id, code, state.clock.now())


class AnnouncementController(Controller):
    """Announcements (thông báo) to the residents who follow some areas: admins to any
    area, a ward committee's manager to their ward. Sent by a worker in batches; the
    sender watches the progress here."""

    path = "/announcements"
    tags = ["announcements"]
    guards = [require_roles("admin", "manager")]
    security = BEARER

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        summary="Announce to the followers of areas (admin; a ward's manager for the ward)",
    )
    async def create(
        self, request: Request, state: State, session: DbSession, data: JSONBody[AnnouncementIn]
    ) -> AnnouncementOut:
        return await announcements.create_announcement(
            session, await actor_of(request), data, state.clock.now(), client_ip(request)
        )

    @get("/{announcement_id:uuid}", summary="An announcement and its progress")
    async def get_announcement(
        self,
        request: Request,
        state: State,
        session: DbSession,
        announcement_id: FromPath[uuid.UUID],
    ) -> AnnouncementOut:
        return await announcements.get_announcement(
            session, await actor_of(request), announcement_id, state.clock.now()
        )

"""The signed-in user's inbox (hộp thư thông báo): residents and staff alike."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from app.core.auth import require_user
from app.core.db import DbSession
from app.notifications import service
from app.notifications.schemas import MarkedRead, NotificationOut, NotificationPage, UnreadCount

BEARER = [{"bearer": []}]
NotificationId = Annotated[int, Parameter(ge=1, le=service.MAX_ID)]


class InboxController(Controller):
    path = "/me/notifications"
    tags = ["notifications"]
    guards = [require_user]
    security = BEARER

    @get("/", summary="My notifications, newest first (keyset pagination)")
    async def list_notifications(
        self,
        request: Request,
        session: DbSession,
        cursor: Annotated[
            str | None,
            Parameter(max_length=20, description="next_cursor of the previous page"),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20,
        unread: Annotated[bool, Parameter(description="only the unread ones")] = False,
    ) -> NotificationPage:
        return await service.list_notifications(
            session, request.user.user_id, cursor=cursor, limit=limit, unread_only=unread
        )

    @get("/unread-count", summary="How many of my notifications are unread")
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
            Parameter(
                ge=1,
                le=service.MAX_ID,
                description="only those up to this id (the newest the app has shown)",
            ),
        ] = None,
    ) -> MarkedRead:
        user_id = request.user.user_id
        marked = await service.mark_all_read(session, user_id, state.clock.now(), up_to_id)
        return MarkedRead(marked=marked, unread=await service.unread_count(session, user_id))

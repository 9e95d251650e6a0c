"""Abuse controls on resident accounts (issue 22 item 6): tạm khóa tài khoản.

An admin suspends a resident account with a reason, until a date or open-ended. While a
suspension is in force the account cannot file, comment or support (403
``account_suspended``, saying until when and why, never who decided); its open reports
keep being handled as before. The resident is told in the inbox and appeals with a reply
(``appeal_text``), which the admins' list shows. An admin may lift it early; a dated one
ends by itself when ``ends_at`` passes (the check compares with the clock: no job).
Every step is audit-logged.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec
from sqlalchemy import DateTime, ForeignKey, Index, Text, and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app import policy
from app.accounts.models import User
from app.core import audit, i18n
from app.core.errors import BadRequest, Conflict, FieldError, Forbidden, NotFound
from app.core.models import Base, created_at, uuid_pk
from app.core.schemas import Input
from app.notifications.service import Notice, notify
from app.policy import Actor

REASON_MAX = 500
APPEAL_MAX = 2000


class AccountSuspension(Base):
    """One suspension of a resident account; kept after it ends (the history)."""

    __tablename__ = "account_suspensions"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: open-ended
    suspended_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    appeal_text: Mapped[str | None] = mapped_column(Text)
    appealed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = created_at()

    __table_args__ = (
        # the check on filing, commenting and supporting: suspensions not lifted, per account
        Index(
            "ix_account_suspensions_unlifted",
            "user_id",
            postgresql_where=text("lifted_at IS NULL"),
        ),
        # the admins' list of appeals waiting
        Index(
            "ix_account_suspensions_appealed",
            "appealed_at",
            postgresql_where=text("lifted_at IS NULL AND appealed_at IS NOT NULL"),
        ),
    )


def in_force(now: datetime):  # noqa: ANN201 (a SQLAlchemy condition)
    """The rule of a suspension in force at ``now``: not lifted, not yet ended."""
    return and_(
        AccountSuspension.lifted_at.is_(None),
        AccountSuspension.starts_at <= now,
        or_(AccountSuspension.ends_at.is_(None), AccountSuspension.ends_at > now),
    )


# ---------------------------------------------------------------- schemas


class SuspendIn(Input):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=REASON_MAX)]
    # None: until an admin lifts it
    until: datetime | None = None


class AppealIn(Input):
    text: Annotated[str, msgspec.Meta(min_length=3, max_length=APPEAL_MAX)]


class SuspensionOut(msgspec.Struct):
    """What the resident sees of their own suspension (no staff names)."""

    id: uuid.UUID
    reason: str
    starts_at: datetime
    ends_at: datetime | None
    appealed_at: datetime | None


class SuspensionAdminOut(msgspec.Struct):
    """The admins' view: which account (id and phone), why, until when, the appeal."""

    id: uuid.UUID
    user_id: uuid.UUID
    phone: str | None
    reason: str
    starts_at: datetime
    ends_at: datetime | None
    in_force: bool
    lifted_at: datetime | None
    appeal_text: str | None
    appealed_at: datetime | None


# ---------------------------------------------------------------- the check


async def current(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> AccountSuspension | None:
    """The suspension in force for this account now, if any (one indexed read)."""
    return await session.scalar(
        select(AccountSuspension)
        .where(AccountSuspension.user_id == user_id, in_force(now))
        .order_by(AccountSuspension.starts_at.desc())
        .limit(1)
    )


class AccountSuspended(Forbidden):
    code = "account_suspended"


async def ensure_not_suspended(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """Refuse what a suspended account may not do (file, comment, support): 403 naming
    until when and why, never who decided."""
    suspension = await current(session, user_id, now)
    if suspension is None:
        return
    if suspension.ends_at is None:
        raise AccountSuspended(
            "account_suspended_indefinitely", params={"reason": suspension.reason}
        )
    raise AccountSuspended(
        "account_suspended", params={"reason": suspension.reason, "until": suspension.ends_at}
    )


# ---------------------------------------------------------------- telling the resident


@dataclass(frozen=True, slots=True)
class SuspensionNotice(Notice):
    """The resident's inbox entry: why and until when (their reply is the appeal)."""

    reason: str = ""
    ends_at: datetime | None = None

    def render(self, language: str) -> tuple[str, str]:
        key = f"notification.{self.kind}"
        if self.kind == "account_suspended" and self.ends_at is None:
            key = "notification.account_suspended_indefinitely"
        params = {"reason": self.reason, "until": i18n.format_datetime(self.ends_at, language)}
        return i18n.text(f"{key}.title", language, **params), i18n.text(
            f"{key}.body", language, **params
        )


async def _tell(
    session: AsyncSession, kind: str, suspension: AccountSuspension, now: datetime
) -> None:
    await notify(
        session,
        [
            SuspensionNotice(
                kind=kind,
                report_id=suspension.id,  # no report: the audience is the one account
                report_code="",
                audience="user",
                user_id=suspension.user_id,
                dedupe_key=f"{kind}:{suspension.id}",
                data={"suspension_id": str(suspension.id), "link": "/api/v1/me/suspension"},
                reason=suspension.reason,
                ends_at=suspension.ends_at,
            )
        ],
        now,
    )


# ---------------------------------------------------------------- admins


async def suspend(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID, command: SuspendIn
) -> AccountSuspension:
    if not policy.may_suspend_account(actor, user_id):
        raise Forbidden("suspension_not_allowed")
    now = actor.now
    if command.until is not None and command.until.tzinfo is None:
        raise BadRequest(
            "suspension_until_invalid",
            errors=[FieldError(field="until", message="needs a time zone offset", source="body")],
        )
    if command.until is not None and command.until <= now:
        raise BadRequest(
            "suspension_until_invalid",
            errors=[FieldError(field="until", message="must be in the future", source="body")],
        )
    # the account's row locked: two admins suspending at once make one suspension
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None or user.kind != "resident" or user.deleted_at is not None:
        raise NotFound("resident_not_found")
    if await current(session, user_id, now) is not None:
        raise Conflict("already_suspended")
    suspension = AccountSuspension(
        id=uuid.uuid4(),
        user_id=user_id,
        reason=command.reason.strip(),
        starts_at=now,
        ends_at=command.until,
        suspended_by=actor.user_id,
    )
    session.add(suspension)
    await session.flush()
    await _tell(session, "account_suspended", suspension, now)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="account.suspended",
        object_type="user",
        object_id=str(user_id),
        ip=actor.ip,
        details={
            "suspension": str(suspension.id),
            "until": command.until.isoformat() if command.until else None,
        },
    )
    return suspension


async def lift(session: AsyncSession, actor: Actor, suspension_id: uuid.UUID) -> None:
    """End a suspension early (after an appeal, or a mistake)."""
    suspension = await session.scalar(
        select(AccountSuspension).where(AccountSuspension.id == suspension_id).with_for_update()
    )
    if suspension is None:
        raise NotFound("suspension_not_found")
    if not policy.may_suspend_account(actor, suspension.user_id):
        raise Forbidden("suspension_not_allowed")
    now = actor.now
    if suspension.lifted_at is not None or (
        suspension.ends_at is not None and suspension.ends_at <= now
    ):
        raise Conflict("suspension_not_in_force")
    suspension.lifted_at = now
    suspension.lifted_by = actor.user_id
    await _tell(session, "account_suspension_lifted", suspension, now)
    await audit.record(
        session,
        actor_id=actor.user_id,
        actor_kind="staff",
        action="account.suspension_lifted",
        object_type="user",
        object_id=str(suspension.user_id),
        ip=actor.ip,
        details={"suspension": str(suspension.id)},
    )


_ADMIN_COLUMNS = (
    AccountSuspension.id,
    AccountSuspension.user_id,
    User.phone,
    AccountSuspension.reason,
    AccountSuspension.starts_at,
    AccountSuspension.ends_at,
    AccountSuspension.lifted_at,
    AccountSuspension.appeal_text,
    AccountSuspension.appealed_at,
)


async def list_for_admins(
    session: AsyncSession, actor: Actor, *, appealed_only: bool, limit: int = 200
) -> list[SuspensionAdminOut]:
    """Suspensions in force, newest first (appealed ones first when ``appealed_only``)."""
    if not policy.may_suspend_account(actor, None):
        raise Forbidden("suspension_not_allowed")
    query = (
        select(*_ADMIN_COLUMNS)
        .join(User, User.id == AccountSuspension.user_id)
        .where(in_force(actor.now))
        .order_by(AccountSuspension.starts_at.desc(), AccountSuspension.id)
        .limit(limit)
    )
    if appealed_only:
        query = query.where(AccountSuspension.appealed_at.is_not(None))
    rows = await session.execute(query)
    return [
        SuspensionAdminOut(
            id=r.id,
            user_id=r.user_id,
            phone=r.phone,
            reason=r.reason,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            in_force=True,
            lifted_at=r.lifted_at,
            appeal_text=r.appeal_text,
            appealed_at=r.appealed_at,
        )
        for r in rows
    ]


# ---------------------------------------------------------------- the resident


def resident_view(suspension: AccountSuspension) -> SuspensionOut:
    return SuspensionOut(
        id=suspension.id,
        reason=suspension.reason,
        starts_at=suspension.starts_at,
        ends_at=suspension.ends_at,
        appealed_at=suspension.appealed_at,
    )


async def mine(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> SuspensionOut:
    suspension = await current(session, user_id, now)
    if suspension is None:
        raise NotFound("not_suspended")
    return resident_view(suspension)


async def appeal(
    session: AsyncSession, user_id: uuid.UUID, command: AppealIn, now: datetime, ip: str | None
) -> SuspensionOut:
    """The resident's reply to the suspension: one appeal per suspension, for the admins."""
    suspension = await session.scalar(
        select(AccountSuspension)
        .where(AccountSuspension.user_id == user_id, in_force(now))
        .order_by(AccountSuspension.starts_at.desc())
        .limit(1)
        .with_for_update()
    )
    if suspension is None:
        raise NotFound("not_suspended")
    if suspension.appealed_at is not None:
        raise Conflict("already_appealed")
    suspension.appeal_text = command.text.strip()
    suspension.appealed_at = now
    await audit.record(
        session,
        actor_id=user_id,
        actor_kind="resident",
        action="account.suspension_appealed",
        object_type="user",
        object_id=str(user_id),
        ip=ip,
        details={"suspension": str(suspension.id)},
    )
    return resident_view(suspension)


async def resident_id_by_phone(session: AsyncSession, raw_phone: str) -> uuid.UUID:
    """The console's suspend form names the account by its phone number."""
    from app.accounts.phones import normalize_phone

    user_id = await session.scalar(
        select(User.id).where(
            User.phone == normalize_phone(raw_phone),
            User.kind == "resident",
            User.deleted_at.is_(None),
        )
    )
    if user_id is None:
        raise NotFound("resident_not_found")
    return user_id

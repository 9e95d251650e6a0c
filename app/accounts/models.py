"""Residents and staff, their sign-in secrets, roles and devices."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.models import Base, created_at, uuid_pk


class User(Base):
    """A resident (người dân) or a staff member (cán bộ). Personal fields are erased on
    account deletion; the row stays so public report content can remain anonymous."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str] = mapped_column(String(10), nullable=False)  # resident | staff
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="active")
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164, +84...
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(2), nullable=False, server_default="vi")
    identity_level: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    # CCCD only as a keyed hash (HMAC-SHA256) plus its last four digits
    citizen_id_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    citizen_id_last4: Mapped[str | None] = mapped_column(String(4))
    vneid_subject: Mapped[str | None] = mapped_column(Text)
    home_area_code: Mapped[str | None] = mapped_column(ForeignKey("areas.code"))
    created_at = created_at()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("kind IN ('resident', 'staff')", name="kind"),
        CheckConstraint("status IN ('active', 'disabled', 'deleted')", name="status"),
        CheckConstraint("locale IN ('vi', 'en')", name="locale"),
        Index("uq_users_phone", "phone", unique=True, postgresql_where=text("phone IS NOT NULL")),
        Index("uq_users_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
        Index(
            "uq_users_citizen_id_hash",
            "citizen_id_hash",
            unique=True,
            postgresql_where=text("citizen_id_hash IS NOT NULL"),
        ),
    )


class StaffRole(Base):
    """officer/manager of a unit, or city-wide dispatcher/admin (unit_id NULL)."""

    __tablename__ = "staff_roles"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    role: Mapped[str] = mapped_column(String(12), nullable=False)
    # indexed: notifications find a unit's staff by it
    unit_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("units.id", ondelete="CASCADE"), index=True
    )
    created_at = created_at()

    __table_args__ = (
        CheckConstraint(
            "(role IN ('officer', 'manager') AND unit_id IS NOT NULL)"
            " OR (role IN ('dispatcher', 'admin') AND unit_id IS NULL)",
            name="role_scope",
        ),
        Index(
            "uq_staff_roles_user_role_unit",
            "user_id",
            "role",
            text("coalesce(unit_id, '00000000-0000-0000-0000-000000000000'::uuid)"),
            unique=True,
        ),
    )


class OtpChallenge(Base):
    """A one-time sign-in code sent by SMS; only its keyed hash is stored."""

    __tablename__ = "otp_challenges"

    id: Mapped[uuid.UUID] = uuid_pk()
    phone: Mapped[str] = mapped_column(String(20), nullable=False)
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = created_at()

    __table_args__ = (Index("ix_otp_challenges_phone_created", "phone", "created_at"),)


class RefreshToken(Base):
    """A rotating refresh token, stored as a hash. Tokens of one sign-in share a family;
    presenting a spent token revokes the whole family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    family_id: Mapped[uuid.UUID] = mapped_column(nullable=False, index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(Text)
    # app: the mobile app's session (rotates at /auth/refresh); console: a web console
    # session, only in its HttpOnly cookie, which /auth/refresh refuses
    kind: Mapped[str] = mapped_column(String(10), nullable=False, server_default="app")
    created_at = created_at()

    __table_args__ = (CheckConstraint("kind IN ('app', 'console')", name="kind"),)


class SessionRevocation(Base):
    """A signed-out sign-in session (sid = refresh-token family): the record behind the
    deny list in Redis, kept until the session's last access token has expired, and
    published to Redis again when Redis has lost it."""

    __tablename__ = "session_revocations"

    sid: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at = created_at()

    __table_args__ = (Index("ix_session_revocations_expires_at", "expires_at"),)


class Device(Base):
    """A phone's FCM registration token, used for push notifications."""

    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    platform: Mapped[str] = mapped_column(String(10), nullable=False)  # android | ios | web
    created_at = created_at()
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)


# ---- staff second factor (issue 22 item 3): TOTP (RFC 6238), recovery codes, challenges


class StaffSecondFactor(Base):
    """A staff member's authenticator (xác thực hai lớp): the TOTP seed, sealed
    (``app.core.sealed``, purpose ``totp-seed``), never stored in clear. Pending until the
    first code confirms it (``confirmed_at``); ``last_used_step`` is the newest 30-second
    step a code was accepted for, so a code works once."""

    __tablename__ = "staff_second_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    seed_sealed: Mapped[str] = mapped_column(Text, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)
    # the per-user salt of the recovery codes' hashes (replaced with the codes)
    recovery_salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    created_at = created_at()


class StaffRecoveryCode(Base):
    """One of ten single-use recovery codes, as HMAC-SHA256 under the user's salt."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_staff_recovery_codes_user_hash", "user_id", "code_hash", unique=True),
    )


class StaffSignInChallenge(Base):
    """The step between a right password and a session: ``verify`` (a code is due) or
    ``enrol`` (the role requires a second factor the account has not set up). Only the
    token's keyed hash is stored; it works once, for STAFF_SECOND_FACTOR_CHALLENGE_SECONDS,
    and gives the session ``kind`` the password step asked for (app or console)."""

    __tablename__ = "staff_sign_in_challenges"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    purpose: Mapped[str] = mapped_column(String(10), nullable=False)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at = created_at()

    __table_args__ = (
        CheckConstraint("purpose IN ('verify', 'enrol')", name="purpose"),
        CheckConstraint("kind IN ('app', 'console')", name="kind"),
    )

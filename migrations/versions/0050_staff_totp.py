"""staff two-factor sign-in, TOTP RFC 6238 (issue 22 item 3)

A staff member's authenticator seed (sealed), their single-use recovery codes (hashed)
and the sign-in challenges between a right password and a session.

Revision ID: 0050
Revises: 0045
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050"
down_revision: str | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_second_factors",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("seed_sealed", sa.Text(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("recovery_salt", sa.LargeBinary(length=16), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_second_factors_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_staff_second_factors")),
    )
    op.create_table(
        "staff_recovery_codes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_recovery_codes")),
    )
    op.create_index(
        "uq_staff_recovery_codes_user_hash",
        "staff_recovery_codes",
        ["user_id", "code_hash"],
        unique=True,
    )
    op.create_table(
        "staff_sign_in_challenges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "purpose IN ('verify', 'enrol')", name=op.f("ck_staff_sign_in_challenges_purpose")
        ),
        sa.CheckConstraint(
            "kind IN ('app', 'console')", name=op.f("ck_staff_sign_in_challenges_kind")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_sign_in_challenges_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sign_in_challenges")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sign_in_challenges_token_hash")),
    )
    op.create_index(
        op.f("ix_staff_sign_in_challenges_user_id"),
        "staff_sign_in_challenges",
        ["user_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("staff_sign_in_challenges")
    op.drop_table("staff_recovery_codes")
    op.drop_table("staff_second_factors")

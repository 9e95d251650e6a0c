"""sign-in hardening (issue 17): access-token revocations recorded in PostgreSQL

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

- ``session_revocations``: a signed-out session (sid) until its last access token
  expires; the record behind Redis's deny list, republished when Redis lost it.
- ``refresh_tokens.kind``: ``app`` or ``console``; a console session's token is refused
  by /auth/refresh. Existing rows are app sessions (the default).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_revocations",
        sa.Column("sid", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_session_revocations")),
    )
    op.create_index(
        "ix_session_revocations_expires_at", "session_revocations", ["expires_at"], unique=False
    )
    # a constant default: PostgreSQL adds the column without rewriting the table
    op.add_column(
        "refresh_tokens",
        sa.Column("kind", sa.String(length=10), server_default="app", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_refresh_tokens_kind"), "refresh_tokens", "kind IN ('app', 'console')"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_refresh_tokens_kind"), "refresh_tokens", type_="check")
    op.drop_column("refresh_tokens", "kind")
    op.drop_index("ix_session_revocations_expires_at", table_name="session_revocations")
    op.drop_table("session_revocations")

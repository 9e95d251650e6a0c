"""open data and reporting without a map (issue 22 items 4, 7)

Revision ID: 0080
Revises: 0070
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.places.addresses import address_places

revision: str = "0080"
down_revision: str | None = "0070"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # item 7: the places addresses may name (current and old wards), matched by pg_trgm
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    places = op.create_table(
        "address_places",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("area_code", sa.String(length=10), nullable=False),
        sa.Column("old_name", sa.Text(), nullable=True),
        sa.Column("ward_key", sa.Text(), nullable=False),
        sa.Column("district_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_address_places")),
    )
    op.bulk_insert(
        places,
        [
            {
                "id": p.id,
                "area_code": p.area_code,
                "old_name": p.old_name,
                "ward_key": p.ward_key,
                "district_key": p.district_key,
            }
            for p in address_places()
        ],
    )
    # item 4: the daily open-data files
    op.create_table(
        "open_data_files",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "format", name=op.f("pk_open_data_files")),
    )
    # the open-data query by area or unit: the filter, then the page's order
    op.create_index(
        "ix_reports_area_created", "reports", ["area_code", "created_at", "code"], unique=False
    )
    op.create_index(
        "ix_reports_unit_created", "reports", ["unit_id", "created_at", "code"], unique=False
    )
    op.add_column(
        "reports",
        sa.Column(
            "location_approximate", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("reports", "location_approximate")
    op.drop_index("ix_reports_unit_created", table_name="reports")
    op.drop_index("ix_reports_area_created", table_name="reports")
    op.drop_table("open_data_files")
    op.drop_table("address_places")

"""the street view reads reports from the location index alone (GiST with INCLUDE)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# what app.complaints.public's street view reads (location too: the 2D GiST operator
# class cannot hand back the geometry it indexes)
INCLUDE = ["location", "created_at", "code", "kind", "status", "category_code"]


def _swap(new_include: list[str] | None) -> None:
    """Build the replacement beside the old index without blocking filing (CONCURRENTLY,
    outside a transaction), then drop the old one and take its name."""
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_reports_location_next")
        op.create_index(
            "ix_reports_location_next",
            "reports",
            ["location"],
            postgresql_using="gist",
            postgresql_include=new_include or [],
            postgresql_concurrently=True,
        )
        op.drop_index("ix_reports_location", table_name="reports", postgresql_concurrently=True)
        op.execute("ALTER INDEX ix_reports_location_next RENAME TO ix_reports_location")


def upgrade() -> None:
    # measured (docs/benchmarks.md, "Issue 3 performance, second pass"; 1,000,000
    # reports): a street view becomes an index-only scan of 61 index pages, 0 heap
    # fetches where autovacuum keeps the visibility map current; the index grows from
    # 40 to 162 MB
    _swap(INCLUDE)


def downgrade() -> None:
    _swap(None)

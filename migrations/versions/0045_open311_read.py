"""Open311 GeoReport v2, the read side (issue 21): the indexes its lists read

- ``ix_report_events_public_at``: servicerequestupdates reads a window of the public
  timeline in time order (without it, every event of every report is read and sorted:
  31 s over 1 M events on the bench machine);
- ``ix_report_events_answers``: a report's latest public answer (status_notes), one
  index probe per listed report instead of a walk through its whole timeline;
- ``ix_report_photos_event_id``: the photos of an update (a resolution's), and the
  foreign key's ON DELETE SET NULL.

GET requests by service_code needs none of its own: over 1 M reports the planner keeps
``ix_reports_created_at`` (newest first, other categories filtered out: 7-22 ms for
1,000 rows of one category) even with an index on (category_code, created_at).

Revision ID: 0045
Revises: 0040
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0045"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_report_events_public_at",
        "report_events",
        ["at", "id"],
        postgresql_where=sa.text("public"),
    )
    op.create_index(
        "ix_report_events_answers",
        "report_events",
        ["report_id", "id"],
        postgresql_where=sa.text("public AND body IS NOT NULL AND actor_kind <> 'resident'"),
    )
    op.create_index(
        "ix_report_photos_event_id",
        "report_photos",
        ["event_id"],
        postgresql_where=sa.text("event_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_report_photos_event_id", table_name="report_photos")
    op.drop_index("ix_report_events_answers", table_name="report_events")
    op.drop_index("ix_report_events_public_at", table_name="report_events")

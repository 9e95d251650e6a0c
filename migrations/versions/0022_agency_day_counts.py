"""the agency index from per-(agency, day) counters (issue 19 item 7): every statement
that writes dossiers appends what it changed, per agency and day of receipt, to
agency_count_deltas (a statement-level trigger over the transition tables: one row per
(agency, day) the statement moved, nothing when it moved no figure); the index's refresh
folds the deltas into agency_day_counts and sums those (months and 'all' are sums of
days). The medians of working days are read from two partial indexes over the measured
finished dossiers (index-only: by agency and time of receipt for a month or the last 30
days, in order of working days for all time), for what changed.
Existing dossiers are counted here, under the lock the trigger's creation takes, so no
write falls between the count and the trigger. The indexes on updated_at and rated_at
(the previous refresh's "what changed") go.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# written out (a migration does not import the app): tests/dossiers/test_index.py checks
# them against app/dossiers/lifecycle.py and app/core/calendar.py
TZ = "Asia/Ho_Chi_Minh"
OPEN = "'received', 'processing', 'supplement_requested'"
FINISHED = "'completed', 'returned', 'refused'"
MEASURED = f"handling_working_days IS NOT NULL AND status IN ({FINISHED})"

COUNTERS = (
    "received",
    "finished",
    "finished_on_time",
    "finished_late",
    "open",
    "open_overdue",
    "online",
    "rated",
    "satisfied",
    "accepted",
    "not_satisfied",
    "measured",
)
# what each counter counts, over one dossier row r
COUNTED = {
    "received": "true",
    "finished": f"r.status IN ({FINISHED})",
    "finished_on_time": f"r.status IN ({FINISHED}) AND r.finished_on_time",
    "finished_late": f"r.status IN ({FINISHED}) AND NOT r.finished_on_time",
    "open": f"r.status IN ({OPEN})",
    "open_overdue": f"r.status IN ({OPEN}) AND r.overdue_at IS NOT NULL",
    "online": "r.online",
    "rated": "r.rating IS NOT NULL",
    "satisfied": "r.rating = 'satisfied'",
    "accepted": "r.rating = 'accept'",
    "not_satisfied": "r.rating = 'not_satisfied'",
    "measured": f"r.handling_working_days IS NOT NULL AND r.status IN ({FINISHED})",
}


def _delta_insert(rows: str) -> str:
    """Append the per-(agency, day) change of ``rows`` (sign, dossier row) to the deltas."""
    sums = ",\n           ".join(
        f"sum(CASE WHEN {COUNTED[c]} THEN r.sign ELSE 0 END) AS {c}" for c in COUNTERS
    )
    nonzero = " OR ".join(f"{c} <> 0" for c in COUNTERS)
    return f"""
    INSERT INTO agency_count_deltas (agency_id, day, {", ".join(COUNTERS)})
    SELECT agency_id, day, {", ".join(COUNTERS)}
      FROM (SELECT r.agency_id, CAST(r.received_at AT TIME ZONE '{TZ}' AS date) AS day,
           {sums}
              FROM ({rows}) r
             GROUP BY 1, 2) d
     WHERE {nonzero};"""


TRIGGER_FUNCTION = f"""
CREATE FUNCTION agency_count_deltas_record() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_delta_insert("SELECT 1 AS sign, n.* FROM new_rows n")}
  ELSIF TG_OP = 'UPDATE' THEN
    {_delta_insert("SELECT 1 AS sign, n.* FROM new_rows n UNION ALL SELECT -1, o.* FROM old_rows o")}
  ELSE
    {_delta_insert("SELECT -1 AS sign, o.* FROM old_rows o")}
  END IF;
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "agency_day_counts",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in COUNTERS],
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_day_counts_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agency_id", "day", name=op.f("pk_agency_day_counts")),
    )
    # append-only, folded whole by the refresh: no key, no index
    op.create_table(
        "agency_count_deltas",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *[sa.Column(c, sa.Integer(), nullable=False) for c in COUNTERS],
    )
    op.add_column(
        "agency_stats", sa.Column("measured", sa.Integer(), server_default="0", nullable=False)
    )
    op.execute("LOCK TABLE dossiers IN SHARE ROW EXCLUSIVE MODE")
    op.execute(TRIGGER_FUNCTION)
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER dossiers_count_{event.lower()} AFTER {event} ON dossiers"
            f" REFERENCING {tables} FOR EACH STATEMENT"
            " EXECUTE FUNCTION agency_count_deltas_record()"
        )
    op.execute(
        f"""
        INSERT INTO agency_day_counts (agency_id, day, {", ".join(COUNTERS)})
        SELECT r.agency_id, CAST(r.received_at AT TIME ZONE '{TZ}' AS date),
               {", ".join(f"count(*) FILTER (WHERE {COUNTED[c]})" for c in COUNTERS)}
          FROM dossiers r
         GROUP BY 1, 2
        """
    )
    op.create_index(
        "ix_dossiers_agency_received_measured",
        "dossiers",
        ["agency_id", "received_at"],
        postgresql_include=["handling_working_days"],
        postgresql_where=sa.text(MEASURED),
    )
    op.create_index(
        "ix_dossiers_agency_days",
        "dossiers",
        ["agency_id", "handling_working_days"],
        postgresql_where=sa.text(MEASURED),
    )
    op.drop_index("ix_dossiers_updated_at", table_name="dossiers")
    op.drop_index(
        "ix_dossiers_rated_at",
        table_name="dossiers",
        postgresql_where=sa.text("rated_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.create_index(
        "ix_dossiers_rated_at",
        "dossiers",
        ["rated_at"],
        postgresql_where=sa.text("rated_at IS NOT NULL"),
    )
    op.create_index("ix_dossiers_updated_at", "dossiers", ["updated_at"])
    op.drop_index("ix_dossiers_agency_days", table_name="dossiers")
    op.drop_index("ix_dossiers_agency_received_measured", table_name="dossiers")
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER dossiers_count_{event} ON dossiers")
    op.execute("DROP FUNCTION agency_count_deltas_record()")
    op.drop_column("agency_stats", "measured")
    op.drop_table("agency_count_deltas")
    op.drop_table("agency_day_counts")

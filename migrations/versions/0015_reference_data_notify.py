"""reference data (areas, units, categories) announces its changes on 'reference_data'

Each API and worker process keeps these tables in memory (app/places/reference.py) and
drops its copy when PostgreSQL notifies the channel; NOTIFY is delivered at commit.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("areas", "units", "categories")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_reference_data() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('reference_data', TG_TABLE_NAME);
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_notify_reference_data"
            f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION notify_reference_data()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify_reference_data ON {table}")
    op.execute("DROP FUNCTION IF EXISTS notify_reference_data()")

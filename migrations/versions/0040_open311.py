"""Open311 GeoReport v2 (issue 21): third-party API keys, category attributes

Categories' extra questions (``category_attributes``, Open311's service attributes) and
the answers on each report (``reports.attributes``).

Revision ID: 0040
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0040"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "category_attributes",
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("datatype", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("description_vi", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("datatype_description_vi", sa.Text(), nullable=True),
        sa.Column("datatype_description_en", sa.Text(), nullable=True),
        sa.Column(
            "values",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "datatype IN ('string', 'number', 'datetime', 'text', 'singlevaluelist',"
            " 'multivaluelist')",
            name=op.f("ck_category_attributes_datatype"),
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_category_attributes_category_code_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_code", "code", name=op.f("pk_category_attributes")),
    )
    # held in each process with the categories (app/places/reference.py), same channel
    op.execute(
        "CREATE TRIGGER category_attributes_notify_reference_data"
        " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON category_attributes"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_reference_data()"
    )
    op.add_column(
        "reports",
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("reports", "attributes")
    op.drop_table("category_attributes")

"""report map cells: the public map's cluster snapshot; reports by created_at

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # derived data, empty until the worker's first refresh (the feed answers live until then)
    op.create_table('report_map_cells',
    sa.Column('zoom', sa.SmallInteger(), nullable=False),
    sa.Column('cx', sa.Integer(), nullable=False),
    sa.Column('cy', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('sum_lon', sa.Double(), nullable=False),
    sa.Column('sum_lat', sa.Double(), nullable=False),
    sa.Column('min_code', sa.String(length=12), nullable=False),
    sa.PrimaryKeyConstraint('zoom', 'cx', 'cy', name=op.f('pk_report_map_cells'))
    )
    op.create_table('report_map_facets',
    sa.Column('zoom', sa.SmallInteger(), nullable=False),
    sa.Column('cx', sa.Integer(), nullable=False),
    sa.Column('cy', sa.Integer(), nullable=False),
    sa.Column('facet', postgresql.ARRAY(sa.SmallInteger()), nullable=False),
    sa.Column('facet_n', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('facet_sum_lon', postgresql.ARRAY(sa.Double()), nullable=False),
    sa.Column('facet_sum_lat', postgresql.ARRAY(sa.Double()), nullable=False),
    sa.Column('facet_min_code', postgresql.ARRAY(sa.String(length=12)), nullable=False),
    sa.PrimaryKeyConstraint('zoom', 'cx', 'cy', name=op.f('pk_report_map_facets'))
    )
    op.create_table('report_map_state',
    sa.Column('id', sa.SmallInteger(), nullable=False),
    sa.Column('as_of', sa.DateTime(timezone=True), nullable=False),
    sa.Column('categories', postgresql.ARRAY(sa.String(length=40)), nullable=False),
    sa.Column('statuses', postgresql.ARRAY(sa.String(length=12)), nullable=False),
    sa.Column('kinds', postgresql.ARRAY(sa.String(length=12)), nullable=False),
    sa.Column('cells', sa.Integer(), nullable=False),
    sa.Column('reports', sa.Integer(), nullable=False),
    sa.Column('build_ms', sa.Integer(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_report_map_state_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_map_state'))
    )
    # the feed's `since` filter and points over a large bbox read reports by time
    op.create_index('ix_reports_created_at', 'reports', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_reports_created_at', table_name='reports')
    op.drop_table('report_map_state')
    op.drop_table('report_map_facets')
    op.drop_table('report_map_cells')

"""reports photos timeline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:45:01.308022
"""

from collections.abc import Sequence

import geoalchemy2  # noqa: F401
import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), server_default='submitted', nullable=False),
    sa.Column('category_code', sa.String(length=40), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('address_text', sa.Text(), nullable=True),
    sa.Column('location', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('area_code', sa.String(length=10), nullable=False),
    sa.Column('reporter_id', sa.Uuid(), nullable=False),
    sa.Column('hide_identity', sa.Boolean(), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duplicate_of_id', sa.Uuid(), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('description_hidden_reason', sa.Text(), nullable=True),
    sa.Column('supporters_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reopen_count', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('idempotency_key', sa.String(length=80), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('complaint', 'petition', 'initiative')", name=op.f('ck_reports_kind')),
    sa.CheckConstraint("status IN ('submitted', 'assigned', 'in_progress', 'resolved', 'closed', 'rejected', 'duplicate', 'reopened', 'withdrawn')", name=op.f('ck_reports_status')),
    sa.ForeignKeyConstraint(['area_code'], ['areas.code'], name=op.f('fk_reports_area_code_areas')),
    sa.ForeignKeyConstraint(['category_code'], ['categories.code'], name=op.f('fk_reports_category_code_categories')),
    sa.ForeignKeyConstraint(['duplicate_of_id'], ['reports.id'], name=op.f('fk_reports_duplicate_of_id_reports')),
    sa.ForeignKeyConstraint(['reporter_id'], ['users.id'], name=op.f('fk_reports_reporter_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_reports_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports')),
    sa.UniqueConstraint('code', name=op.f('uq_reports_code'))
    )
    op.create_index('ix_reports_location', 'reports', ['location'], unique=False, postgresql_using='gist')
    op.create_index('ix_reports_reporter_created', 'reports', ['reporter_id', sa.literal_column('created_at DESC'), sa.literal_column('id DESC')], unique=False)
    op.create_index(op.f('ix_reports_unit_id'), 'reports', ['unit_id'], unique=False)
    op.create_index('uq_reports_reporter_idempotency_key', 'reports', ['reporter_id', 'idempotency_key'], unique=True, postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.create_table('report_events',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=True),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_kind', sa.String(length=10), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('hidden_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_report_events_actor_id_users')),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_report_events_report_id_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_events'))
    )
    op.create_index('ix_report_events_report_id', 'report_events', ['report_id', 'id'], unique=False)
    op.create_table('report_photos',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('report_id', sa.Uuid(), nullable=True),
    sa.Column('position', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('display_key', sa.Text(), nullable=False),
    sa.Column('thumb_key', sa.Text(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('source_format', sa.String(length=8), nullable=False),
    sa.Column('sha256', sa.LargeBinary(length=32), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('geotag', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('geotag_far', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('taken_long_before', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('hidden_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_report_photos_owner_id_users')),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_report_photos_report_id_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_photos'))
    )
    op.create_index(op.f('ix_report_photos_owner_id'), 'report_photos', ['owner_id'], unique=False)
    op.create_index(op.f('ix_report_photos_report_id'), 'report_photos', ['report_id'], unique=False)
    op.create_index('ix_report_photos_unattached_expiry', 'report_photos', ['expires_at'], unique=False, postgresql_where=sa.text('report_id IS NULL'))
    op.create_table('report_ratings',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('resolution_round', sa.SmallInteger(), nullable=False),
    sa.Column('rating', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("rating IN ('satisfied', 'accept', 'not_satisfied')", name=op.f('ck_report_ratings_rating')),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_report_ratings_report_id_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_ratings'))
    )
    op.create_index('uq_report_ratings_round', 'report_ratings', ['report_id', 'resolution_round'], unique=True)
    op.create_table('report_supporters',
    sa.Column('report_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['report_id'], ['reports.id'], name=op.f('fk_report_supporters_report_id_reports'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_report_supporters_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('report_id', 'user_id', name=op.f('pk_report_supporters'))
    )


def downgrade() -> None:
    op.drop_table('report_supporters')
    op.drop_index('uq_report_ratings_round', table_name='report_ratings')
    op.drop_table('report_ratings')
    op.drop_index('ix_report_photos_unattached_expiry', table_name='report_photos', postgresql_where=sa.text('report_id IS NULL'))
    op.drop_index(op.f('ix_report_photos_report_id'), table_name='report_photos')
    op.drop_index(op.f('ix_report_photos_owner_id'), table_name='report_photos')
    op.drop_table('report_photos')
    op.drop_index('ix_report_events_report_id', table_name='report_events')
    op.drop_table('report_events')
    op.drop_index('uq_reports_reporter_idempotency_key', table_name='reports', postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.drop_index(op.f('ix_reports_unit_id'), table_name='reports')
    op.drop_index('ix_reports_reporter_created', table_name='reports')
    op.drop_index('ix_reports_location', table_name='reports', postgresql_using='gist')
    op.drop_table('reports')

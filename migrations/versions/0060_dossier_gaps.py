"""dossier ingest second pass (issue 19): encrypted agency secrets, import attempts

- ``agency_secrets.secret`` holds the secret sealed (``app/core/sealed.py``: AES-256-GCM
  under a key derived from ``DATA_ENCRYPTION_KEY`` for the purpose ``agency-secret``);
  the secrets stored in clear until now are sealed here, with the key of the settings the
  migration runs with (``app.settings.get_settings``, as ``migrations/env.py`` reads the
  database URL), and a check refuses anything that is not a sealed value from now on.
  Downgrading opens them again (same key).
- ``dossier_imports.attempts`` (runs started since the import last committed a chunk;
  past ``DOSSIER_IMPORT_MAX_ATTEMPTS`` it fails) and ``last_error`` (the exception's type
  of the last run that crashed: no message, which could quote a line).
- ``dossier_imports.file_purged_at``: when the stored file was deleted
  (``DOSSIER_IMPORT_FILE_RETENTION_DAYS`` after the import finished); the index of the
  files still kept, and a unique index on ``object_key`` (the orphan purge asks which
  stored keys a row names, a page of keys at a time).

Revision ID: 0060
Revises: 0050
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.core import sealed
from app.settings import get_settings

revision: str = "0060"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURPOSE = "agency-secret"  # app/dossiers/signing.py SEAL_PURPOSE; fixed here as written


def _reseal(opening: bool) -> None:
    key = get_settings().data_encryption_key
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, secret FROM agency_secrets")).all()
    for secret_id, value in rows:
        is_sealed = value.startswith(sealed.PREFIX)
        if opening and is_sealed:
            new = sealed.unseal(key, PURPOSE, value)
        elif not opening and not is_sealed:
            new = sealed.seal(key, PURPOSE, value)
        else:
            continue
        connection.execute(
            sa.text("UPDATE agency_secrets SET secret = :s WHERE id = :i"),
            {"s": new, "i": secret_id},
        )


def upgrade() -> None:
    _reseal(opening=False)
    op.create_check_constraint(
        op.f("ck_agency_secrets_secret_sealed"), "agency_secrets", "secret LIKE 'v1.%'"
    )
    op.add_column(
        "dossier_imports",
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.add_column("dossier_imports", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column(
        "dossier_imports",
        sa.Column("file_purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_dossier_imports_file_kept",
        "dossier_imports",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('done', 'failed') AND file_purged_at IS NULL"),
    )
    op.create_index("uq_dossier_imports_object_key", "dossier_imports", ["object_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_dossier_imports_object_key", table_name="dossier_imports")
    op.drop_index(
        "ix_dossier_imports_file_kept",
        table_name="dossier_imports",
        postgresql_where=sa.text("status IN ('done', 'failed') AND file_purged_at IS NULL"),
    )
    op.drop_column("dossier_imports", "file_purged_at")
    op.drop_column("dossier_imports", "last_error")
    op.drop_column("dossier_imports", "attempts")
    op.drop_constraint(op.f("ck_agency_secrets_secret_sealed"), "agency_secrets", type_="check")
    _reseal(opening=True)

"""the resident's change log for one sync call (issue 24 item 2)

``sync_changes`` gets one row per (resident, entity) a statement changed, written by
statement-level triggers (transition tables, as migration 0022's counters) in the
transaction of the change, so a change and its log row commit or vanish together. Each
row carries the writing transaction's id (``tx``, ``pg_current_xact_id()``) beside its
``seq``: the sync call reads only rows whose transaction is below the reader's snapshot
horizon (``tx < pg_snapshot_xmin(pg_current_snapshot())``, every such transaction has
ended) in (tx, seq) order, so a transaction that took a smaller ``seq`` but commits after
a reader passed it is never skipped.

Entities: ``report`` (id; the reporter), ``notification`` (id; its recipient), ``dossier``
(code; the residents who follow it: linkers and the verified applicant, level >= 2, the
same rule as app/policy.py's DOSSIER_OWNER_LEVEL), ``health`` (a section name, or
``person``; the verified person, level >= 2). Who follows what is resolved when writing;
an account whose citizen ID or identity level changes gets a row for each dossier and
its health book. The reader joins the current rows and decides by the policy: a row
that is gone or no longer visible is a tombstone. ``deleted`` only records what the
statement did.

``sync_horizon`` (one row) is the largest (tx, seq) the retention cron purged: an older
cursor is answered 410.

Revision ID: 0100
Revises: 0090
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0100"
down_revision: str | None = "0090"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# written out (a migration does not import the app): app/policy.py DOSSIER_OWNER_LEVEL and
# may_read_health_record's level; tests/sync checks them
OWNER_LEVEL = 2

_INSERT = "INSERT INTO sync_changes (resident_id, entity, entity_id, deleted)"

REPORTS = f"""
CREATE FUNCTION sync_changes_reports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_INSERT}
    SELECT n.reporter_id, 'report', n.id::text, false FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    -- what the reporter's list shows (the sweeps' own columns move nothing)
    {_INSERT}
    SELECT n.reporter_id, 'report', n.id::text, false
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE (n.status, n.updated_at, n.rating_requested_at, n.kind, n.category_code,
            n.description, n.description_hidden_reason, n.area_code, n.address_text,
            n.location_approximate, n.reporter_id)
           IS DISTINCT FROM
           (o.status, o.updated_at, o.rating_requested_at, o.kind, o.category_code,
            o.description, o.description_hidden_reason, o.area_code, o.address_text,
            o.location_approximate, o.reporter_id);
  ELSE
    {_INSERT}
    SELECT o.reporter_id, 'report', o.id::text, true FROM old_rows o;
  END IF;
  RETURN NULL;
END
$$
"""

NOTIFICATIONS = f"""
CREATE FUNCTION sync_changes_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_INSERT}
    SELECT n.user_id, 'notification', n.id::text, false FROM new_rows n;
  ELSIF TG_OP = 'UPDATE' THEN
    -- the read state and the text; push bookkeeping moves nothing
    {_INSERT}
    SELECT n.user_id, 'notification', n.id::text, false
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE (n.read_at, n.title, n.body, n.data, n.user_id)
           IS DISTINCT FROM (o.read_at, o.title, o.body, o.data, o.user_id);
  ELSE
    {_INSERT}
    SELECT o.user_id, 'notification', o.id::text, true FROM old_rows o;
  END IF;
  RETURN NULL;
END
$$
"""


def _dossier_followers(rows: str, deleted: str) -> str:
    """A row per (follower, dossier) of ``rows`` (dossier rows: id, code, applicant hash)."""
    return f"""
    {_INSERT}
    SELECT f.user_id, 'dossier', f.code, {deleted} FROM (
        SELECT l.user_id, d.code FROM ({rows}) d JOIN dossier_links l ON l.dossier_id = d.id
        UNION
        SELECT u.id, d.code FROM ({rows}) d
          JOIN users u ON u.citizen_id_hash = d.applicant_id_hash
         WHERE u.identity_level >= {OWNER_LEVEL}
    ) f;"""


_DOSSIER_CHANGED = """(n.status, n.due_at, n.returned_at, n.completed_at, n.finished_on_time,
        n.received_at, n.procedure_code, n.procedure_name, n.agency_id, n.applicant_id_hash,
        n.rating, n.status_at, n.status_seq, n.code)
       IS DISTINCT FROM
       (o.status, o.due_at, o.returned_at, o.completed_at, o.finished_on_time,
        o.received_at, o.procedure_code, o.procedure_name, o.agency_id, o.applicant_id_hash,
        o.rating, o.status_at, o.status_seq, o.code)"""

DOSSIERS = f"""
CREATE FUNCTION sync_changes_dossiers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_dossier_followers("SELECT id, code, applicant_id_hash FROM new_rows", "false")}
  ELSIF TG_OP = 'UPDATE' THEN
    -- the followers before and after (an applicant hash may have changed)
    {
    _dossier_followers(
        "SELECT n.id, n.code, n.applicant_id_hash FROM new_rows n JOIN old_rows o"
        f" ON o.id = n.id WHERE {_DOSSIER_CHANGED}"
        " UNION ALL SELECT o.id, o.code, o.applicant_id_hash FROM new_rows n"
        f" JOIN old_rows o ON o.id = n.id WHERE {_DOSSIER_CHANGED}"
        " AND o.applicant_id_hash IS DISTINCT FROM n.applicant_id_hash",
        "false",
    )
}
  ELSE
    {_dossier_followers("SELECT id, code, applicant_id_hash FROM old_rows", "true")}
  END IF;
  RETURN NULL;
END
$$
"""

DOSSIER_EVENTS = f"""
CREATE FUNCTION sync_changes_dossier_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {
    _dossier_followers(
        "SELECT DISTINCT d.id, d.code, d.applicant_id_hash FROM new_rows e"
        " JOIN dossiers d ON d.id = e.dossier_id",
        "false",
    )
}
  RETURN NULL;
END
$$
"""

DOSSIER_LINKS = f"""
CREATE FUNCTION sync_changes_dossier_links() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_INSERT}
    SELECT n.user_id, 'dossier', d.code, false
      FROM new_rows n JOIN dossiers d ON d.id = n.dossier_id;
  ELSE
    {_INSERT}
    SELECT o.user_id, 'dossier', d.code, true
      FROM old_rows o JOIN dossiers d ON d.id = o.dossier_id;
  END IF;
  RETURN NULL;
END
$$
"""


def _health_people(rows: str, deleted: str) -> str:
    """A row per (verified person, section) of ``rows`` (patient_id, section)."""
    return f"""
    {_INSERT}
    SELECT u.id, 'health', r.section, {deleted}
      FROM (SELECT DISTINCT patient_id, section FROM ({rows}) x) r
      JOIN health_patients p ON p.id = r.patient_id
      JOIN users u ON u.citizen_id_hash = p.citizen_id_hash
     WHERE u.identity_level >= {OWNER_LEVEL};"""


HEALTH_RESOURCES = f"""
CREATE FUNCTION sync_changes_health_resources() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_health_people("SELECT patient_id, section FROM new_rows", "false")}
  ELSIF TG_OP = 'UPDATE' THEN
    {
    _health_people(
        "SELECT patient_id, section FROM new_rows"
        " UNION ALL SELECT patient_id, section FROM old_rows",
        "false",
    )
}
  ELSE
    {_health_people("SELECT patient_id, section FROM old_rows", "false")}
  END IF;
  RETURN NULL;
END
$$
"""

HEALTH_PATIENTS = f"""
CREATE FUNCTION sync_changes_health_patients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    {_INSERT}
    SELECT u.id, 'health', 'person', true FROM old_rows o
      JOIN users u ON u.citizen_id_hash = o.citizen_id_hash
     WHERE u.identity_level >= {OWNER_LEVEL};
  ELSE
    {_INSERT}
    SELECT u.id, 'health', 'person', false FROM new_rows n
      JOIN users u ON u.citizen_id_hash = n.citizen_id_hash
     WHERE u.identity_level >= {OWNER_LEVEL};
  END IF;
  RETURN NULL;
END
$$
"""

# an account that becomes (or stops being) the verified owner of a citizen ID: its
# dossiers under that ID and its health book, old and new hash alike
USERS = f"""
CREATE FUNCTION sync_changes_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH moved AS (
    SELECT n.id, h.hash
      FROM new_rows n JOIN old_rows o ON o.id = n.id
      CROSS JOIN LATERAL (VALUES (n.citizen_id_hash), (o.citizen_id_hash)) h(hash)
     WHERE (n.citizen_id_hash, n.identity_level) IS DISTINCT FROM
           (o.citizen_id_hash, o.identity_level)
       AND h.hash IS NOT NULL
  )
  {_INSERT}
  SELECT m.id, 'dossier', d.code, false FROM moved m
    JOIN dossiers d ON d.applicant_id_hash = m.hash
  UNION
  SELECT m.id, 'health', 'person', false FROM moved m
    JOIN health_patients p ON p.citizen_id_hash = m.hash;
  RETURN NULL;
END
$$
"""

# (table, function, events)
TRIGGERS = (
    ("reports", "sync_changes_reports", ("INSERT", "UPDATE", "DELETE")),
    ("notifications", "sync_changes_notifications", ("INSERT", "UPDATE", "DELETE")),
    ("dossiers", "sync_changes_dossiers", ("INSERT", "UPDATE", "DELETE")),
    ("dossier_events", "sync_changes_dossier_events", ("INSERT",)),
    ("dossier_links", "sync_changes_dossier_links", ("INSERT", "DELETE")),
    ("health_resources", "sync_changes_health_resources", ("INSERT", "UPDATE", "DELETE")),
    ("health_patients", "sync_changes_health_patients", ("INSERT", "UPDATE", "DELETE")),
    ("users", "sync_changes_users", ("UPDATE",)),
)
FUNCTIONS = (
    REPORTS,
    NOTIFICATIONS,
    DOSSIERS,
    DOSSIER_EVENTS,
    DOSSIER_LINKS,
    HEALTH_RESOURCES,
    HEALTH_PATIENTS,
    USERS,
)
_TRANSITION = {
    "INSERT": "NEW TABLE AS new_rows",
    "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "OLD TABLE AS old_rows",
}


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sync_changes (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
            resident_id uuid NOT NULL,
            entity varchar(12) NOT NULL,
            entity_id text NOT NULL,
            deleted boolean NOT NULL DEFAULT false,
            changed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_sync_changes PRIMARY KEY (seq),
            CONSTRAINT ck_sync_changes_entity
                CHECK (entity IN ('report', 'notification', 'dossier', 'health'))
        )
        """
    )
    # the sync read: a resident's rows in (tx, seq) order after the cursor
    op.execute("CREATE INDEX ix_sync_changes_resident ON sync_changes (resident_id, tx, seq)")
    # the retention purge by age: rows are appended in time order, so a BRIN range suffices
    op.execute("CREATE INDEX ix_sync_changes_changed_at ON sync_changes USING brin (changed_at)")
    op.execute(
        """
        CREATE TABLE sync_horizon (
            id boolean NOT NULL DEFAULT true,
            tx xid8 NOT NULL,
            seq bigint NOT NULL,
            purged_at timestamptz,
            CONSTRAINT pk_sync_horizon PRIMARY KEY (id),
            CONSTRAINT ck_sync_horizon_one_row CHECK (id)
        )
        """
    )
    op.execute("INSERT INTO sync_horizon (id, tx, seq) VALUES (true, '0', 0)")
    for function in FUNCTIONS:
        op.execute(function)
    for table, function, events in TRIGGERS:
        for event in events:
            op.execute(
                f"CREATE TRIGGER {table}_sync_{event.lower()} AFTER {event} ON {table}"
                f" REFERENCING {_TRANSITION[event]} FOR EACH STATEMENT"
                f" EXECUTE FUNCTION {function}()"
            )


def downgrade() -> None:
    for table, _, events in TRIGGERS:
        for event in events:
            op.execute(f"DROP TRIGGER {table}_sync_{event.lower()} ON {table}")
    for _, function, _ in TRIGGERS:
        op.execute(f"DROP FUNCTION {function}()")
    op.execute("DROP TABLE sync_horizon")
    op.execute("DROP TABLE sync_changes")

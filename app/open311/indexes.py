"""The indexes GeoReport v2's read side needs (migration 0045), declared beside the
tables' models so that the models and the migrations agree (``app/models.py`` imports
this module). Each serves one statement of ``app/open311/service.py``: the partial
indexes' predicates are written in those statements as literals, so that their
prepared (generic) plans can use them."""

from sqlalchemy import Index, text

from app.complaints.models import ReportEvent, ReportPhoto

# servicerequestupdates: a window of the public timeline, in time order
Index("ix_report_events_public_at", ReportEvent.at, ReportEvent.id, postgresql_where=text("public"))
# status_notes: a report's latest public answer from staff (or the system)
Index(
    "ix_report_events_answers",
    ReportEvent.report_id,
    ReportEvent.id,
    postgresql_where=text("public AND body IS NOT NULL AND actor_kind <> 'resident'"),
)
# an update's photos (a resolution's)
Index(
    "ix_report_photos_event_id",
    ReportPhoto.event_id,
    postgresql_where=text("event_id IS NOT NULL"),
)

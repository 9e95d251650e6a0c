"""Every context's tables, imported in one place for Alembic and the tests."""

from app.accounts import models as accounts_models  # noqa: F401
from app.accounts import suspension as accounts_suspension  # noqa: F401
from app.complaints import abuse as complaints_abuse  # noqa: F401
from app.complaints import map_models  # noqa: F401
from app.complaints import models as complaints_models  # noqa: F401
from app.complaints import redaction as complaints_redaction  # noqa: F401
from app.complaints import template_models as complaints_templates  # noqa: F401  (issue 22)
from app.core import audit  # noqa: F401
from app.core.models import Base
from app.dossiers import models as dossiers_models  # noqa: F401
from app.health import models as health_models  # noqa: F401
from app.notifications import models as notifications_models  # noqa: F401
from app.open311 import indexes as open311_indexes  # noqa: F401
from app.open311 import models as open311_models  # noqa: F401
from app.opendata import models as opendata_models  # noqa: F401
from app.places import models as places_models  # noqa: F401
from app.routing import models as routing_models  # noqa: F401
from app.stats import models as stats_models  # noqa: F401
from app.sync import models as sync_models  # noqa: F401  (issue 24)
from app.uploads import models as uploads_models  # noqa: F401  (issue 24)

metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    """Alembic filter: PostGIS owns spatial_ref_sys; never let autogenerate touch it."""
    return not (type_ == "table" and name in {"spatial_ref_sys"})

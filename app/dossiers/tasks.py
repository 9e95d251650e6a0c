"""The dossiers context's jobs and crons (listed in ``workers/main.py``)."""

from __future__ import annotations

# ---- file imports (issue 19 item 2)

# ---- overdue sweep and the agency index (issue 19 item 7)

"""Where a notice about a report points: the one builder of the app's deep link and of
the console's page link (issue 18 item 4: each rule once)."""

from __future__ import annotations

import uuid

APP_REPORT_LINK = "cityapp://reports/{id}"
CONSOLE_REPORT_LINK = "/console/reports/{id}"


def resident_link(report_id: uuid.UUID) -> dict[str, str]:
    """The report in the residents' app."""
    return {"link": APP_REPORT_LINK.format(id=report_id)}


def staff_link(report_id: uuid.UUID) -> dict[str, str]:
    """The report's page in the web console."""
    return {"link": CONSOLE_REPORT_LINK.format(id=report_id)}

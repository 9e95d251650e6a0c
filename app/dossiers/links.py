"""Where a notice about a dossier points: the one builder of the app's deep link (as
``app/complaints/links.py`` is for reports). Dossiers are named by their code, the key of
the residents' API (``/me/dossiers/{code}``)."""

from __future__ import annotations

from urllib.parse import quote

APP_DOSSIER_LINK = "cityapp://dossiers/{code}"


def resident_link(code: str) -> dict[str, str]:
    """The dossier in the residents' app."""
    return {"link": APP_DOSSIER_LINK.format(code=quote(code, safe=""))}

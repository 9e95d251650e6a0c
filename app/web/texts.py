"""The console's words: a view of the one catalogue (app/locale, read by app.core.i18n)
for the templates. A page's ``t('queue')`` is the catalogue's ``console.queue``."""

from __future__ import annotations

from typing import Any

from app.core import i18n

PREFIX = "console."


def text(key: str, lang: str, **params: Any) -> str:
    return i18n.text(PREFIX + key, lang, **params)


def pick(kind: str, code: str | None, lang: str) -> str:
    """The name of a status, kind, event or rating code (``kind`` is the prefix)."""
    return i18n.name(kind, code, lang)

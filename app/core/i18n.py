"""Texts in Vietnamese (default) and English, chosen by Accept-Language (the API) or the
console's language cookie (pages).

One catalogue holds every text people read — problem details, console pages, the names
of status/kind/event/rating codes, notifications — as gettext ``.po`` files, one per
locale: ``app/locale/{vi,en}/LC_MESSAGES/messages.po``. A msgid is the stable key the
code uses (a problem's machine ``code``, ``console.queue``, ``status.assigned``,
``notification.report_routed.title``); msgstr is the text, with ``{name}`` parameters.
The files are read with Babel when this module is imported, and a catalogue with a key
defined twice, a key missing from a locale, an empty text or parameters that differ
between vi and en refuses to load: the process does not start.

Dates and numbers are formatted per locale with Babel (``format_datetime``, numbers in
parameters); the date patterns are catalogue entries too (``format.datetime``,
``format.date``), shown in Asia/Ho_Chi_Minh.
"""

from __future__ import annotations

import logging
import re
import string
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from babel.dates import format_date as _babel_date
from babel.dates import format_datetime as _babel_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from app.core.calendar import TIMEZONE

log = logging.getLogger("city.i18n")

Locale = Literal["vi", "en"]
DEFAULT_LOCALE: Locale = "vi"
LOCALES: tuple[Locale, ...] = ("vi", "en")

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "locale"
# shown, and logged as an error, if code ever asks for a key the catalogue lacks (a test
# scans the code so that it does not happen): never the key itself
MISSING = "text_missing"

# parameters that carry a code and read as its name: a detail says "từ 'Đã giao' sang
# 'Mở lại'", never "from 'assigned' to 'reopened'"; the first prefix the catalogue has wins
_NAMED_PARAMS: dict[str, tuple[str, ...]] = {
    "current": ("status.",),
    # what a transfer or an extension was refused from is named like an event
    "target": ("event.", "status."),
}

_MSGID = re.compile(r'^msgid "(.*)"\s*$')
_NOTIFICATION_PART = re.compile(r"^(notification\.[a-z_]+)\.(title|body)$")


class CatalogueError(ValueError):
    """The catalogue files are inconsistent; the message lists every problem."""


def placeholders(text: str) -> set[str]:
    """The ``{name}`` parameters of a text."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _defined_twice(raw: bytes, locale: Locale) -> list[str]:
    """Babel keeps the first of two entries with one msgid and says nothing: count them."""
    problems: list[str] = []
    seen: set[str] = set()
    for line in raw.decode("utf-8").splitlines():
        match = _MSGID.match(line)
        if match and match[1]:
            if match[1] in seen:
                problems.append(f"{locale}: {match[1]!r} is defined twice")
            seen.add(match[1])
    return problems


def load(directory: Path = CATALOGUE_DIR) -> dict[str, dict[Locale, str]]:
    """key → locale → text, from ``<directory>/<locale>/LC_MESSAGES/messages.po``;
    raises CatalogueError on a duplicated key, a key missing from a locale, an empty or
    fuzzy text, or parameters that differ between the locales."""
    problems: list[str] = []
    texts: dict[str, dict[Locale, str]] = {}
    for locale in LOCALES:
        path = directory / locale / "LC_MESSAGES" / "messages.po"
        problems.extend(_defined_twice(path.read_bytes(), locale))
        with path.open("rb") as file:
            catalog = read_po(file, locale=locale, abort_invalid=True)
        for message in catalog:
            if not message.id:
                continue  # the header
            key, text = str(message.id), str(message.string or "")
            if not text or message.fuzzy:
                problems.append(f"{locale}: {key!r} has no text")
            texts.setdefault(key, {})[locale] = text
    # a notification's title and body are one message: together they take the same
    # parameters in every locale (the English title may name what the Vietnamese body does)
    params: dict[str, dict[Locale, set[str]]] = {}
    for key, by_locale in texts.items():
        missing = [locale for locale in LOCALES if locale not in by_locale]
        if missing:
            problems.append(f"{key!r} lacks {missing}")
            continue
        group = _NOTIFICATION_PART.sub(r"\1", key)
        for locale in LOCALES:
            try:
                found = placeholders(by_locale[locale])
            except ValueError as exc:
                problems.append(f"{key!r} ({locale}): {exc}")
                continue
            params.setdefault(group, {}).setdefault(locale, set()).update(found)
    for group, per_locale in params.items():
        if len({frozenset(p) for p in per_locale.values()}) > 1:
            problems.append(f"{group!r} has different parameters per locale: {per_locale}")
    if MISSING not in texts:
        problems.append(f"{MISSING!r} is missing")
    if problems:
        raise CatalogueError("; ".join(problems))
    return texts


_catalog = load()


def has(key: str) -> bool:
    return key in _catalog


def keys() -> frozenset[str]:
    return frozenset(_catalog)


def register(messages: Any) -> None:
    raise RuntimeError(
        "texts live in one catalogue: add the keys to app/locale/vi/LC_MESSAGES/messages.po "
        "and app/locale/en/LC_MESSAGES/messages.po"
    )


def _locale(locale: str) -> Locale:
    return "en" if locale == "en" else "vi"


def _param(key: str, value: Any, locale: Locale) -> Any:
    if isinstance(value, str):
        for prefix in _NAMED_PARAMS.get(key, ()):
            named = _catalog.get(prefix + value)
            if named:
                return named[locale]
        return value
    if isinstance(value, datetime):
        return format_datetime(value, locale)
    if isinstance(value, date):
        return format_day(value, locale)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_decimal(value, locale=locale)
    return value


class _Params(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        log.error("text_parameter_missing", extra={"parameter": key})
        return ""


def text(key: str, locale: str, fallback: str | None = None, **params: Any) -> str:
    """The text of ``key`` in ``locale`` with its parameters filled in (numbers and dates
    per locale, codes of named parameters as their names). A key the catalogue lacks is
    logged as an error and reads as ``fallback``'s text, or a generic one."""
    loc = _locale(locale)
    texts = _catalog.get(key)
    if texts is None:
        log.error("text_missing", extra={"key": key})
        texts = _catalog.get(fallback or MISSING) or _catalog[MISSING]
    template = texts[loc]
    if not params:
        return template
    return template.format_map(_Params({k: _param(k, v, loc) for k, v in params.items()}))


def translate(
    code: str,
    locale: Locale | str,
    params: dict[str, Any] | None = None,
    fallback: str | None = None,
) -> str:
    """A problem's detail: the text of its code with the error's parameters."""
    return text(code, locale, fallback, **(params or {}))


def name(kind: str, code: str | None, locale: str) -> str:
    """The name of a code: ``name("status", "assigned", "vi")`` → "Đã giao"."""
    if code is None:
        return ""
    return text(f"{kind}.{code}", locale)


def format_datetime(value: datetime | None, locale: str) -> str:
    """An instant as people in Hanoi read it, in the locale's pattern (``format.datetime``)."""
    if value is None:
        return ""
    loc = _locale(locale)
    return _babel_datetime(value, _catalog["format.datetime"][loc], tzinfo=TIMEZONE, locale=loc)


def format_day(value: date | None, locale: str) -> str:
    """A calendar day in the locale's pattern (``format.date``)."""
    if value is None:
        return ""
    loc = _locale(locale)
    return _babel_date(value, _catalog["format.date"][loc], locale=loc)


def negotiate(accept_language: str | None) -> Locale:
    """Pick vi or en from an Accept-Language header by the client's order and q-values."""
    if not accept_language:
        return DEFAULT_LOCALE
    best: tuple[float, Locale] | None = None
    for position, part in enumerate(accept_language.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LOCALES and quality > 0:
            score = quality - position * 1e-6
            if best is None or score > best[0]:
                best = (score, primary)
    return best[1] if best else DEFAULT_LOCALE

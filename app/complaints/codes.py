"""Human report codes a resident can read over the phone: 8 characters from an
alphabet without look-alikes (no 0/O, 1/I/L), shown as XXXX-XXXX."""

from __future__ import annotations

import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # 31 symbols, 31^8 ≈ 8.5e11 codes


def new_report_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalize_code(text: str) -> str:
    """Accept what people type: lower case, spaces, a missing dash."""
    cleaned = text.strip().upper().replace(" ", "").replace("-", "")
    return f"{cleaned[:4]}-{cleaned[4:]}" if len(cleaned) == 8 else cleaned

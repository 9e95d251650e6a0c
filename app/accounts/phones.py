"""Vietnamese phone numbers, validated and normalised to E.164 (+84...) with the
`phonenumbers` library (Google's libphonenumber metadata, kept current upstream)."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from app.core.errors import FieldError, Unprocessable

_MOBILE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalize_phone(raw: str) -> str:
    """'0912 345 678', '+84 912345678', '84912345678' -> '+84912345678'. Only Vietnamese
    mobile numbers can receive sign-in codes."""
    text = raw.strip()
    if text.startswith("84") and not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, "VN")
    except NumberParseException as exc:
        raise _invalid() from exc
    if (
        number.country_code != 84
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) not in _MOBILE
    ):
        raise _invalid()
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _invalid() -> Unprocessable:
    return Unprocessable(
        "phone_invalid",
        errors=[FieldError(field="phone", message="not a Vietnamese mobile number", source="body")],
    )

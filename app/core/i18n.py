"""Messages in Vietnamese (default) and English, chosen by Accept-Language.

Each context registers its own messages under stable machine codes; core knows none
of them. ``translate`` formats a message with the error's parameters.
"""

from __future__ import annotations

from typing import Any, Literal

Locale = Literal["vi", "en"]
DEFAULT_LOCALE: Locale = "vi"
LOCALES: tuple[Locale, ...] = ("vi", "en")

_catalog: dict[str, dict[str, str]] = {}


def register(messages: dict[str, dict[str, str]]) -> None:
    for code, texts in messages.items():
        missing = [loc for loc in LOCALES if loc not in texts]
        if missing:
            raise ValueError(f"message {code!r} lacks {missing}")
        _catalog[code] = texts


# names for codes that messages take as parameters: a context registers, for the
# parameter names that carry e.g. a status, each code's words, so a detail reads
# "từ 'Đã giao' sang 'Mở lại'" and never "from 'assigned' to 'reopened'"
_value_names: dict[str, dict[str, tuple[str, str]]] = {}


def register_value_names(params: tuple[str, ...], names: dict[str, tuple[str, str]]) -> None:
    """``names``: code → (vi, en), used for those parameters of every message."""
    for param in params:
        _value_names.setdefault(param, {}).update(names)


def _named(params: dict[str, Any], locale: Locale) -> dict[str, Any]:
    named = dict(params)
    for key, value in params.items():
        words = _value_names.get(key, {}).get(value) if isinstance(value, str) else None
        if words:
            named[key] = words[1] if locale == "en" else words[0]
    return named


def translate(code: str, locale: Locale, params: dict[str, Any] | None = None) -> str:
    texts = _catalog.get(code)
    if texts is None:
        return code
    text = texts[locale]
    if params:
        params = _named(params, locale)
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


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
                best = (score, primary)  # type: ignore[assignment]
    return best[1] if best else DEFAULT_LOCALE


register(
    {
        "validation_failed": {
            "vi": "Dữ liệu gửi lên không hợp lệ.",
            "en": "The request is not valid.",
        },
        "not_found": {"vi": "Không tìm thấy tài nguyên.", "en": "Resource not found."},
        "method_not_allowed": {
            "vi": "Phương thức không được hỗ trợ.",
            "en": "Method not allowed.",
        },
        "unauthenticated": {
            "vi": "Bạn cần đăng nhập.",
            "en": "You need to sign in.",
        },
        "forbidden": {
            "vi": "Bạn không có quyền thực hiện thao tác này.",
            "en": "You are not allowed to do this.",
        },
        "payload_too_large": {
            "vi": "Dữ liệu gửi lên quá lớn.",
            "en": "The request body is too large.",
        },
        "unsupported_media_type": {
            "vi": "Kiểu nội dung không được hỗ trợ.",
            "en": "Unsupported content type.",
        },
        "rate_limited": {
            "vi": "Bạn thao tác quá nhiều lần. Vui lòng thử lại sau {retry_after} giây.",
            "en": "Too many requests. Try again in {retry_after} seconds.",
        },
        "internal_error": {
            "vi": "Đã có lỗi hệ thống. Vui lòng thử lại sau.",
            "en": "Something went wrong on our side. Please try again later.",
        },
        "bad_request": {"vi": "Yêu cầu không hợp lệ.", "en": "Bad request."},
        "conflict": {"vi": "Xung đột dữ liệu.", "en": "Conflict with the current state."},
        "gone": {"vi": "Tài nguyên không còn tồn tại.", "en": "The resource is gone."},
        "service_unavailable": {
            "vi": "Dịch vụ tạm thời không khả dụng.",
            "en": "The service is temporarily unavailable.",
        },
        "rate_limiter_unavailable": {
            "vi": "Tạm thời không thể xử lý yêu cầu. Vui lòng thử lại sau.",
            "en": "Cannot check request limits right now. Please try again later.",
        },
        "token_expired": {
            "vi": "Phiên đăng nhập đã hết hạn.",
            "en": "The access token has expired.",
        },
        "token_invalid": {"vi": "Mã truy cập không hợp lệ.", "en": "The access token is invalid."},
        "token_revoked": {
            "vi": "Phiên đăng nhập đã bị thu hồi.",
            "en": "This sign-in session has been revoked.",
        },
        "residents_only": {
            "vi": "Chức năng chỉ dành cho người dân.",
            "en": "Only residents can do this.",
        },
        "staff_only": {
            "vi": "Chức năng chỉ dành cho cán bộ.",
            "en": "Only staff can do this.",
        },
        "role_required": {
            "vi": "Cần một trong các vai trò: {roles}.",
            "en": "One of these roles is required: {roles}.",
        },
    }
)

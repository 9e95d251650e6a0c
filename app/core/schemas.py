"""Base of request bodies shared by every context."""

from __future__ import annotations

import msgspec


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are refused, not ignored."""

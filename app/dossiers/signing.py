"""Agencies sign what they push with the Standard Webhooks scheme (issue 19 item 1).

Headers: ``webhook-id`` (the batch's id, also its idempotency key), ``webhook-timestamp``
(Unix seconds) and ``webhook-signature``: one or more space-separated ``v1,<base64 of
HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>``. The signature is computed by the
``standardwebhooks`` package (its ``Webhook.sign``, which also decodes ``whsec_``
secrets); the time window is checked here against the app's injectable clock (the
package's own ``verify`` reads the system clock). A request is accepted when its
timestamp is within 5 minutes of now and one of its signatures matches one of the
agency's valid secrets: during a rotation the old secret (until its ``expires_at``) and
the new one are both valid.

Secrets are stored sealed (``seal_secret``: AES-256-GCM under ``DATA_ENCRYPTION_KEY``'s
key for the purpose ``agency-secret``, ``app/core/sealed.py``; migration 0060 sealed the
ones stored before), so a database dump reveals none; verification opens them
(``open_secrets``). A value that does not open (the key was changed without resealing)
is logged as ``agency_secret_unreadable`` (the secret's id only) and counts as no secret.

What a refusal says: ``ingest_unsigned`` (a header missing or malformed),
``ingest_timestamp_out_of_window``, or ``ingest_signature_invalid`` — which also stands
for an unknown or inactive agency, so a caller cannot tell a code that exists from one
that does not.
"""

from __future__ import annotations

import hmac
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

from app.core import sealed
from app.core.errors import Unauthenticated

log = logging.getLogger("city.dossiers")

SEAL_PURPOSE = "agency-secret"
TOLERANCE = timedelta(minutes=5)
WEBHOOK_ID = re.compile(r"^[!-~]{1,128}$")  # printable ASCII, the batch table's key
_TIMESTAMP = re.compile(r"^\d{1,12}$")
MAX_SIGNATURES = 8  # a rotation needs two; more is someone guessing


class SignatureRefused(Unauthenticated):
    """401: see the module's docstring for the codes."""

    code = "ingest_signature_invalid"


class SignedHeaders:
    """The three headers, checked for shape and for the time window."""

    __slots__ = ("webhook_id", "timestamp", "signatures")

    def __init__(self, webhook_id: str, timestamp: datetime, signatures: list[str]) -> None:
        self.webhook_id = webhook_id
        self.timestamp = timestamp
        self.signatures = signatures


def read_headers(headers: Mapping[str, str], now: datetime) -> SignedHeaders:
    """The signing headers of a request, refused (401) if missing, malformed or outside
    the window around ``now``."""
    webhook_id = headers.get("webhook-id") or ""
    stamp = headers.get("webhook-timestamp") or ""
    signature = headers.get("webhook-signature") or ""
    signatures = signature.split()
    if (
        not WEBHOOK_ID.match(webhook_id)
        or not _TIMESTAMP.match(stamp)
        or not signatures
        or len(signatures) > MAX_SIGNATURES
    ):
        raise SignatureRefused("ingest_unsigned")
    timestamp = datetime.fromtimestamp(int(stamp), tz=UTC)
    if abs(now - timestamp) > TOLERANCE:
        raise SignatureRefused("ingest_timestamp_out_of_window")
    return SignedHeaders(webhook_id, timestamp, signatures)


@lru_cache(maxsize=1024)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def expected_signature(secret: str, webhook_id: str, timestamp: datetime, body: bytes) -> str:
    """``v1,<base64>`` for this secret (the package's signer)."""
    return _signer(secret).sign(webhook_id, timestamp, body)


def verify(signed: SignedHeaders, secrets: Iterable[str], body: bytes) -> None:
    """Accept if any signature matches any of the secrets; else 401."""
    given = [s.encode() for s in signed.signatures]
    for secret in secrets:
        expected = expected_signature(secret, signed.webhook_id, signed.timestamp, body).encode()
        # compare against every signature given, without stopping early on a match
        if any([hmac.compare_digest(expected, g) for g in given]):
            return
    raise SignatureRefused()


def new_secret() -> str:
    """A fresh ``whsec_`` secret of 32 random bytes (Standard Webhooks: 24-64)."""
    import base64
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def seal_secret(key: str, secret: str) -> str:
    """The form a secret is stored in (``agency_secrets.secret``)."""
    return sealed.seal(key, SEAL_PURPOSE, secret)


@lru_cache(maxsize=1024)
def _open(key: str, stored: str) -> str:
    return sealed.unseal(key, SEAL_PURPOSE, stored)


def open_secrets(key: str, stored: Iterable[tuple[uuid.UUID, str]]) -> list[str]:
    """The secrets of (id, sealed value) pairs, in order; one that does not open with this
    key is logged by id and left out (a request it would have verified gets 401)."""
    opened = []
    for secret_id, value in stored:
        try:
            opened.append(_open(key, value))
        except sealed.SealBroken:
            log.error("agency_secret_unreadable", extra={"secret_id": str(secret_id)})
    return opened

"""Secrets the app must read back (an agency's signing secret, a staff member's TOTP
seed) are stored sealed: AES-256-GCM (the ``cryptography`` package) under a key derived
per purpose from ``DATA_ENCRYPTION_KEY`` with HKDF-SHA256, so a database dump alone
reveals none of them and one purpose's sealed value cannot be opened as another's.

The stored form is ``v1.<base64url(nonce ‖ ciphertext ‖ tag)>``; the purpose is also the
AEAD's associated data."""

from __future__ import annotations

import base64
import functools
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1."
NONCE_BYTES = 12


class SealBroken(Exception):
    """A sealed value that does not open: another key, another purpose, or tampered."""


@functools.lru_cache(maxsize=16)
def _cipher(master: str, purpose: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"city-app/{purpose}".encode()
    ).derive(master.encode())
    return AESGCM(key)


def seal(master: str, purpose: str, plaintext: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = _cipher(master, purpose).encrypt(nonce, plaintext.encode(), purpose.encode())
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(master: str, purpose: str, stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise SealBroken("not a sealed value")
    raw = stored[len(PREFIX) :]
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        opened = _cipher(master, purpose).decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], purpose.encode()
        )
    except (InvalidTag, ValueError) as exc:
        raise SealBroken("the sealed value does not open with this key and purpose") from exc
    return opened.decode()

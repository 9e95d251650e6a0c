"""Small cryptographic helpers: keyed hashes, random secrets, password hashing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with the library's RFC 9106 "low memory" profile defaults
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def keyed_hash(key: str, value: str) -> bytes:
    """HMAC-SHA256 of value under key: for citizen IDs, OTP codes, refresh tokens."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).digest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists (hash a dummy when it does not)."""

    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)

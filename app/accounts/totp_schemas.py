"""Request and response bodies of the staff second factor (issue 22 item 3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from app.accounts.schemas import TokenPair
from app.core.schemas import Input

# a code from the authenticator app: 6 digits (RFC 6238 with SHA-1, as every app makes it)
TotpCode = Annotated[str, Meta(pattern=r"^\d{6}$", examples=["287082"])]
# a recovery code as shown ("abcde-fghjk"); case, spaces and hyphens do not matter
RecoveryCode = Annotated[str, Meta(min_length=10, max_length=32, examples=["k7m2p-x9qrt"])]
ChallengeToken = Annotated[str, Meta(min_length=20, max_length=200)]


class SecondFactorChallenge(msgspec.Struct):
    """The password was right, but it alone gives no session: ``second_factor_required``
    (send a code or a recovery code to ``next_step`` with the token) or
    ``second_factor_enrolment_required`` (the account's role requires a second factor it
    has not set up: the token only opens the enrolment calls)."""

    status: Literal["second_factor_required", "second_factor_enrolment_required"]
    challenge_token: str
    expires_in: int
    next_step: str


class SecondFactorSignIn(Input):
    """The second step of a staff sign-in: exactly one of ``code`` or ``recovery_code``."""

    challenge_token: ChallengeToken
    code: TotpCode | None = None
    recovery_code: RecoveryCode | None = None


class ChallengeIn(Input):
    challenge_token: ChallengeToken


class ChallengeConfirmIn(Input):
    challenge_token: ChallengeToken
    code: TotpCode


class CodeIn(Input):
    code: TotpCode


class Enrolment(msgspec.Struct):
    """A new, pending seed: scan ``qr_svg`` (an SVG of ``otpauth_uri``) or type
    ``secret`` (base32) into an authenticator app, then confirm with a code from it."""

    secret: str
    otpauth_uri: str
    qr_svg: str
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"


class RecoveryCodes(msgspec.Struct):
    """Shown once: each works once instead of a code. Only their hashes are kept."""

    recovery_codes: list[str]


class EnrolledSignIn(msgspec.Struct):
    """Enrolment finished from a sign-in challenge: the recovery codes and the session."""

    recovery_codes: list[str]
    tokens: TokenPair


class SecondFactorStatus(msgspec.Struct):
    active: bool
    pending: bool
    required: bool
    confirmed_at: datetime | None
    recovery_codes_left: int

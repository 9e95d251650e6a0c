"""Sealed secrets open only with their key and purpose, and never show the plaintext."""

import pytest

from app.core.sealed import SealBroken, seal, unseal

KEY = "a-data-encryption-key-of-enough-length-for-tests"


def test_a_sealed_value_opens_with_its_key_and_purpose_only():
    stored = seal(KEY, "agency-secret", "whsec_plaintext")
    assert "whsec_plaintext" not in stored and stored.startswith("v1.")
    assert seal(KEY, "agency-secret", "whsec_plaintext") != stored  # a fresh nonce
    assert unseal(KEY, "agency-secret", stored) == "whsec_plaintext"
    with pytest.raises(SealBroken):
        unseal(KEY, "totp-seed", stored)
    with pytest.raises(SealBroken):
        unseal(KEY + "x", "agency-secret", stored)
    tampered = stored[:-2] + ("A" if stored[-2] != "A" else "B") + stored[-1]
    with pytest.raises(SealBroken):
        unseal(KEY, "agency-secret", tampered)
    with pytest.raises(SealBroken):
        unseal(KEY, "agency-secret", "whsec_plaintext")

"""TOTP against the test vectors of RFC 6238 (appendix B) and RFC 4226 (appendix D), and the
acceptance rules: one step of drift either way, never a step already used, six digits only."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from backend.auth import totp

SHA1_KEY = b"12345678901234567890"
SHA256_KEY = b"12345678901234567890123456789012"
SHA512_KEY = b"1234567890123456789012345678901234567890123456789012345678901234"

# (time, SHA1, SHA256, SHA512), 8 digits: RFC 6238 appendix B.
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]
# RFC 4226 appendix D: HOTP, 6 digits, counters 0..9.
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    assert totp.totp(SHA1_KEY, at, digits=8, algorithm="SHA1") == sha1
    assert totp.totp(SHA256_KEY, at, digits=8, algorithm="SHA256") == sha256
    assert totp.totp(SHA512_KEY, at, digits=8, algorithm="SHA512") == sha512


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(RFC4226)))
def test_rfc4226_vectors(counter: int, expected: str) -> None:
    assert totp.hotp(SHA1_KEY, counter) == expected


def test_a_code_is_accepted_one_step_either_side_and_not_further() -> None:
    at = 1_700_000_000.0
    step = totp.time_step(at)
    for drift in (-1, 0, 1):
        code = totp.totp(SHA1_KEY, at + drift * totp.STEP_SECONDS)
        assert totp.matching_step(SHA1_KEY, code, at=at) == step + drift
    for drift in (-3, -2, 2, 3):
        code = totp.totp(SHA1_KEY, at + drift * totp.STEP_SECONDS)
        assert totp.matching_step(SHA1_KEY, code, at=at) is None


def test_a_used_step_is_never_accepted_again() -> None:
    at = 1_700_000_000.0
    code = totp.totp(SHA1_KEY, at)
    step = totp.matching_step(SHA1_KEY, code, at=at)
    assert step is not None
    assert totp.matching_step(SHA1_KEY, code, at=at, after_step=step) is None
    # An earlier step's code is a replay too, even inside the drift window.
    earlier = totp.totp(SHA1_KEY, at - totp.STEP_SECONDS)
    assert totp.matching_step(SHA1_KEY, earlier, at=at, after_step=step) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5x", "-12345"])
def test_malformed_codes_are_refused(code: str) -> None:
    assert totp.matching_step(SHA1_KEY, code, at=1_700_000_000.0) is None


def test_spaces_in_a_typed_code_are_ignored() -> None:
    at = 1_700_000_000.0
    code = totp.totp(SHA1_KEY, at)
    assert totp.matching_step(SHA1_KEY, f"{code[:3]} {code[3:]}", at=at) is not None


def test_provisioning_uri_carries_the_secret_and_issuer() -> None:
    key = totp.new_secret()
    assert len(key) == totp.SECRET_BYTES
    uri = totp.provisioning_uri(key, account="ana@example.com", issuer="Caravan CRM")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Caravan%20CRM:ana@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [totp.base32(key)]
    assert query["issuer"] == ["Caravan CRM"]
    assert query["digits"] == ["6"] and query["period"] == ["30"]

"""HubSpot webhook request signatures (v1, v2, v3): verification and signing helpers.

Pure functions over the raw request; see reference/hubspot.md §2 and CONTRACT.md §4.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Final

__all__ = [
    "HEADER_SIGNATURE",
    "HEADER_SIGNATURE_V3",
    "HEADER_SIGNATURE_VERSION",
    "HEADER_TIMESTAMP",
    "MAX_AGE_MS",
    "MAX_FUTURE_MS",
    "SignatureError",
    "decode_uri",
    "sign_v1",
    "sign_v2",
    "sign_v3",
    "signed_headers",
    "verify_request",
]

HEADER_SIGNATURE: Final = "X-HubSpot-Signature"
HEADER_SIGNATURE_VERSION: Final = "X-HubSpot-Signature-Version"
HEADER_SIGNATURE_V3: Final = "X-HubSpot-Signature-v3"
HEADER_TIMESTAMP: Final = "X-HubSpot-Request-Timestamp"

MAX_AGE_MS: Final = 5 * 60 * 1000
MAX_FUTURE_MS: Final = 60 * 1000

# HubSpot's published table, verbatim: uppercase hex only. The docs say nothing about lowercase
# (`%3a`) or other escapes (`%20`, `%2B`, `%26`), so those stay as sent (reference §2.2, §6.4).
_URI_DECODE_TABLE: Final[Mapping[str, str]] = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
# `%25` is not in the table, so `%253A` stays `%253A`: decoding never produces a new escape.
_URI_DECODE_RE: Final = re.compile("|".join(re.escape(k) for k in _URI_DECODE_TABLE))

# Epoch milliseconds are 13 digits until the year 2286; the cap keeps int() cheap on hostile input.
_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,16}")


class SignatureError(Exception):
    """A webhook request failed signature verification; str(exc) is a short reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_uri(uri: str) -> str:
    """Decode exactly HubSpot's 12 v3 percent-sequences in `uri`, leaving everything else as is."""
    return _URI_DECODE_RE.sub(lambda m: _URI_DECODE_TABLE[m.group(0)], uri)


def _secret_bytes(secret: str) -> bytes:
    # An empty key would make every signature computable by anyone; this is a configuration
    # error, not a bad request, so it is a ValueError rather than a SignatureError.
    if not secret or not secret.strip():
        raise ValueError("HubSpot client secret is empty")
    return secret.encode("utf-8")


def sign_v1(secret: str, body: bytes) -> str:
    """Return the v1 signature: hex SHA-256 of client secret + body."""
    return hashlib.sha256(_secret_bytes(secret) + body).hexdigest()


def sign_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    """Return the v2 signature: hex SHA-256 of client secret + method + URI + body (URI as sent)."""
    source = _secret_bytes(secret) + method.encode("utf-8") + uri.encode("utf-8") + body
    return hashlib.sha256(source).hexdigest()


def _v3_digest(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    key = _secret_bytes(secret)
    message = (
        method.encode("utf-8") + decode_uri(uri).encode("utf-8") + body + timestamp.encode("utf-8")
    )
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    """Return the v3 signature: base64 HMAC-SHA256 of method + decoded URI + body + timestamp."""
    return _v3_digest(secret, method, uri, body, str(timestamp_ms))


def signed_headers(
    secret: str, method: str, uri: str, body: bytes, *, timestamp_ms: int
) -> dict[str, str]:
    """Return the signature headers real HubSpot sends for a CRM webhook (v3 plus legacy v1)."""
    return {
        HEADER_SIGNATURE_V3: sign_v3(secret, method, uri, body, timestamp_ms),
        HEADER_TIMESTAMP: str(timestamp_ms),
        HEADER_SIGNATURE: sign_v1(secret, body),
        HEADER_SIGNATURE_VERSION: "v1",
    }


def _lowercase_headers(headers: Mapping[str, str]) -> dict[str, str]:
    wanted = {
        h.lower()
        for h in (HEADER_SIGNATURE, HEADER_SIGNATURE_VERSION, HEADER_SIGNATURE_V3, HEADER_TIMESTAMP)
    }
    found: dict[str, str] = {}
    # items() rather than get(): plain dicts are case-sensitive, and starlette Headers.items()
    # yields every occurrence of a repeated header.
    for name, value in headers.items():
        key = name.lower()
        if key not in wanted:
            continue
        # Two different values leave it ambiguous which one HubSpot signed; refuse to guess.
        if key in found and found[key] != value.strip():
            raise SignatureError(f"conflicting {key} headers")
        found[key] = value.strip()
    return found


def _equal(expected: str, received: str) -> bool:
    # compare_digest raises TypeError on non-ASCII str; such a header cannot be a valid signature.
    if not received.isascii():
        return False
    return hmac.compare_digest(expected.encode("ascii"), received.encode("ascii"))


def _check_timestamp(timestamp: str, now_ms: int) -> None:
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise SignatureError("invalid timestamp")
    timestamp_ms = int(timestamp)
    if now_ms - timestamp_ms > MAX_AGE_MS:
        raise SignatureError("stale timestamp")
    if timestamp_ms - now_ms > MAX_FUTURE_MS:
        raise SignatureError("timestamp in the future")


def verify_request(
    *,
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    headers: Mapping[str, str],
    now_ms: int | None = None,
    require_v3: bool = False,
) -> str:
    """Verify a HubSpot webhook request and return the version used ("v1", "v2" or "v3").

    With `require_v3`, the legacy versions are refused: they hash secret ‖ body with plain
    SHA-256, which lets anyone holding one signed request sign longer bodies (length extension)
    and carries no timestamp, so a captured request can be replayed forever.
    """
    _secret_bytes(client_secret)
    found = _lowercase_headers(headers)

    # v3 wins whenever its header is present, whatever X-HubSpot-Signature-Version says: HubSpot
    # sends "v1" there for CRM webhooks because that header describes X-HubSpot-Signature only.
    v3 = found.get(HEADER_SIGNATURE_V3.lower())
    if v3 is not None:
        if not v3:
            raise SignatureError("empty signature")
        timestamp = found.get(HEADER_TIMESTAMP.lower())
        if not timestamp:
            raise SignatureError("v3 signature without timestamp")
        _check_timestamp(timestamp, time.time_ns() // 1_000_000 if now_ms is None else now_ms)
        # The timestamp is signed as the header text, not as a re-formatted integer.
        if not _equal(_v3_digest(client_secret, method, uri, body, timestamp), v3):
            raise SignatureError("signature mismatch")
        return "v3"

    if require_v3:
        raise SignatureError("missing v3 signature (only v3 is accepted)")
    legacy = found.get(HEADER_SIGNATURE.lower())
    if legacy is None:
        raise SignatureError("missing signature")
    if not legacy:
        raise SignatureError("empty signature")
    # HubSpot documents the version header as always sent, so its absence is undocumented; assume
    # v1, the version HubSpot labels CRM webhooks with (reference §1.3, §2.1).
    version = (found.get(HEADER_SIGNATURE_VERSION.lower()) or "v1").lower()
    if version == "v1":
        expected = sign_v1(client_secret, body)
    elif version == "v2":
        expected = sign_v2(client_secret, method, uri, body)
    else:
        raise SignatureError("unknown signature version")
    # Hex case carries no information; HubSpot sends lowercase.
    if not _equal(expected, legacy.lower()):
        raise SignatureError("signature mismatch")
    return version

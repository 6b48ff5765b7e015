"""HubSpot webhook signatures: published vectors (reference/hubspot.md §2.2) and contract rules."""

import hashlib
import time
from collections.abc import Mapping

import pytest
from starlette.datastructures import Headers
from support.length_extension import extend

from syncgate.platforms.hubspot.signature import (
    MAX_AGE_MS,
    MAX_FUTURE_MS,
    SignatureError,
    decode_uri,
    sign_v1,
    sign_v2,
    sign_v3,
    signed_headers,
    verify_request,
)

# Published vectors, verbatim from reference §1.5 / §2.2 / §2.3.
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://www.example.com/webhook_uri"
V1_DOC_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
V1_DOC_SIGNATURE = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
V2_DOC_GET_SIGNATURE = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
V2_DOC_POST_BODY = b'{"example_field":"example_value"}'
V2_DOC_POST_SIGNATURE = "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
SDK_BODY = b"{'example_field':'example_value'}"
SDK_V1_SIGNATURE = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
SDK_V2_SIGNATURE = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
SDK_V3_TIMESTAMP = 1693657560000
SDK_V3_SIGNATURE = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="
SELF_V3_TIMESTAMP = 1564113600000
SELF_V3_SIGNATURE = "DxmVAjFNa2xfF3YgQjdZP6TNcok9k1oaH7UXombPtvw="
SELF_V3_QUERY_SIGNATURE = "dDY58ahEMfqs3swbtR9fVil51uMjQRA+9NN+QBWPbFw="
SELF_V2_SIGNATURE = "276a2548f0a0181a076d456de09c0e7477ae101ccc16a11600488a77714e9b8d"

NOW = 1_769_081_994_066
BODY = V1_DOC_BODY
WRONG_V1 = "0" * 64
WRONG_V3 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def verify(
    headers: Mapping[str, str],
    *,
    secret: str = SECRET,
    method: str = "POST",
    uri: str = URI,
    body: bytes = BODY,
    now_ms: int = NOW,
) -> str:
    return verify_request(
        client_secret=secret, method=method, uri=uri, body=body, headers=headers, now_ms=now_ms
    )


def v3_headers(timestamp_ms: int, *, body: bytes = BODY, uri: str = URI) -> dict[str, str]:
    return signed_headers(SECRET, "POST", uri, body, timestamp_ms=timestamp_ms)


# --- published vectors: signing helpers -------------------------------------------------------


def test_sign_v1_matches_doc_vector() -> None:
    assert sign_v1(SECRET, V1_DOC_BODY) == V1_DOC_SIGNATURE


def test_sign_v1_matches_sdk_vector() -> None:
    assert sign_v1(SECRET, SDK_BODY) == SDK_V1_SIGNATURE


def test_sign_v2_matches_doc_get_vector_without_body() -> None:
    assert sign_v2(SECRET, "GET", URI, b"") == V2_DOC_GET_SIGNATURE


def test_sign_v2_matches_doc_post_vector() -> None:
    assert sign_v2(SECRET, "POST", URI, V2_DOC_POST_BODY) == V2_DOC_POST_SIGNATURE


def test_sign_v2_matches_sdk_vector() -> None:
    assert sign_v2(SECRET, "POST", URI, SDK_BODY) == SDK_V2_SIGNATURE


def test_sign_v2_matches_self_computed_vector() -> None:
    assert sign_v2(SECRET, "POST", URI, V1_DOC_BODY) == SELF_V2_SIGNATURE


def test_sign_v3_matches_sdk_vector() -> None:
    assert sign_v3(SECRET, "POST", URI, SDK_BODY, SDK_V3_TIMESTAMP) == SDK_V3_SIGNATURE


def test_sign_v3_matches_self_computed_vector() -> None:
    assert sign_v3(SECRET, "POST", URI, V1_DOC_BODY, SELF_V3_TIMESTAMP) == SELF_V3_SIGNATURE


def test_sign_v3_matches_self_computed_vector_with_decoded_query() -> None:
    uri = f"{URI}?portal=62515&tag=a:b"
    assert sign_v3(SECRET, "POST", uri, V1_DOC_BODY, SELF_V3_TIMESTAMP) == SELF_V3_QUERY_SIGNATURE


# --- published vectors: verification ----------------------------------------------------------


def test_verify_accepts_doc_v1_vector() -> None:
    headers = {"X-HubSpot-Signature": V1_DOC_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}
    assert verify(headers, body=V1_DOC_BODY) == "v1"


def test_verify_accepts_sdk_v1_vector() -> None:
    headers = {"X-HubSpot-Signature": SDK_V1_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}
    assert verify(headers, body=SDK_BODY) == "v1"


def test_verify_accepts_doc_v2_get_vector() -> None:
    headers = {"X-HubSpot-Signature": V2_DOC_GET_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    assert verify(headers, method="GET", body=b"") == "v2"


def test_verify_accepts_doc_v2_post_vector() -> None:
    headers = {"X-HubSpot-Signature": V2_DOC_POST_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    assert verify(headers, body=V2_DOC_POST_BODY) == "v2"


def test_verify_accepts_sdk_v2_vector() -> None:
    headers = {"X-HubSpot-Signature": SDK_V2_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    assert verify(headers, body=SDK_BODY) == "v2"


def test_verify_accepts_self_computed_v2_vector() -> None:
    headers = {"X-HubSpot-Signature": SELF_V2_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    assert verify(headers, body=V1_DOC_BODY) == "v2"


def test_verify_accepts_sdk_v3_vector() -> None:
    headers = {
        "X-HubSpot-Signature-v3": SDK_V3_SIGNATURE,
        "X-HubSpot-Request-Timestamp": str(SDK_V3_TIMESTAMP),
    }
    assert verify(headers, body=SDK_BODY, now_ms=SDK_V3_TIMESTAMP + 1_000) == "v3"


def test_verify_accepts_self_computed_v3_vector() -> None:
    headers = {
        "X-HubSpot-Signature-v3": SELF_V3_SIGNATURE,
        "X-HubSpot-Request-Timestamp": str(SELF_V3_TIMESTAMP),
    }
    assert verify(headers, body=V1_DOC_BODY, now_ms=SELF_V3_TIMESTAMP) == "v3"


def test_verify_v3_decodes_percent_encoded_uri_before_signing() -> None:
    headers = {
        "X-HubSpot-Signature-v3": SELF_V3_QUERY_SIGNATURE,
        "X-HubSpot-Request-Timestamp": str(SELF_V3_TIMESTAMP),
    }
    encoded_uri = f"{URI}?portal=62515&tag=a%3Ab"
    assert verify(headers, uri=encoded_uri, body=V1_DOC_BODY, now_ms=SELF_V3_TIMESTAMP) == "v3"


def test_verify_v2_signs_uri_as_sent_without_decoding() -> None:
    encoded_uri = f"{URI}?tag=a%3Ab"
    headers = {
        "X-HubSpot-Signature": sign_v2(SECRET, "POST", encoded_uri, BODY),
        "X-HubSpot-Signature-Version": "v2",
    }
    assert verify(headers, uri=encoded_uri) == "v2"
    assert sign_v2(SECRET, "POST", encoded_uri, BODY) != sign_v2(
        SECRET, "POST", decode_uri(encoded_uri), BODY
    )


# --- URI decode table -------------------------------------------------------------------------

DECODE_TABLE = [
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
]


@pytest.mark.parametrize(("encoded", "decoded"), DECODE_TABLE)
def test_decode_uri_decodes_each_of_the_12_table_sequences(encoded: str, decoded: str) -> None:
    assert decode_uri(f"https://h.example/p?x=a{encoded}b") == f"https://h.example/p?x=a{decoded}b"


def test_decode_uri_decodes_all_table_sequences_together() -> None:
    encoded = "".join(e for e, _ in DECODE_TABLE)
    assert decode_uri(encoded) == ":/?@!$'()*,;"


def test_decode_uri_self_computed_example() -> None:
    assert decode_uri(f"{URI}?portal=62515&tag=a%3Ab") == f"{URI}?portal=62515&tag=a:b"


@pytest.mark.parametrize(
    "other", ["%20", "%2B", "%26", "%25", "%3D", "%23", "%5B", "%7E", "%C3%A9"]
)
def test_decode_uri_leaves_sequences_outside_the_table_alone(other: str) -> None:
    uri = f"https://h.example/p?x=a{other}b"
    assert decode_uri(uri) == uri


@pytest.mark.parametrize("lower", ["%3a", "%2f", "%3f", "%2a", "%2c", "%3b"])
def test_decode_uri_leaves_lowercase_hex_alone(lower: str) -> None:
    uri = f"https://h.example/p?x={lower}"
    assert decode_uri(uri) == uri


def test_decode_uri_does_not_unescape_percent_itself() -> None:
    assert decode_uri("a%253Ab") == "a%253Ab"
    assert decode_uri("%%3A3A") == "%:3A"


def test_decode_uri_keeps_literal_query_question_mark_and_plain_uri() -> None:
    assert decode_uri(f"{URI}?a=1&b=2") == f"{URI}?a=1&b=2"
    assert decode_uri(URI) == URI


# --- precedence -------------------------------------------------------------------------------


def test_signed_headers_match_what_hubspot_sends() -> None:
    headers = v3_headers(NOW)
    assert headers == {
        "X-HubSpot-Signature-v3": sign_v3(SECRET, "POST", URI, BODY, NOW),
        "X-HubSpot-Request-Timestamp": str(NOW),
        "X-HubSpot-Signature": sign_v1(SECRET, BODY),
        "X-HubSpot-Signature-Version": "v1",
    }


def test_v3_wins_when_present_even_with_version_header_v1() -> None:
    assert verify(v3_headers(NOW)) == "v3"


def test_wrong_v3_fails_even_if_v1_is_right() -> None:
    headers = v3_headers(NOW) | {"X-HubSpot-Signature-v3": WRONG_V3}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers)


def test_stale_v3_fails_even_if_v1_is_right() -> None:
    headers = v3_headers(NOW - MAX_AGE_MS - 1)
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify(headers)


def test_empty_v3_header_fails_and_does_not_fall_back_to_v1() -> None:
    headers = v3_headers(NOW) | {"X-HubSpot-Signature-v3": ""}
    with pytest.raises(SignatureError, match="empty signature"):
        verify(headers)


def test_v3_is_used_without_any_legacy_headers() -> None:
    headers = v3_headers(NOW)
    del headers["X-HubSpot-Signature"], headers["X-HubSpot-Signature-Version"]
    assert verify(headers) == "v3"


def test_timestamp_without_v3_header_falls_back_to_legacy_and_is_not_checked() -> None:
    headers = {
        "X-HubSpot-Signature": sign_v1(SECRET, BODY),
        "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Request-Timestamp": "not-a-number",
    }
    assert verify(headers) == "v1"


# --- timestamp window -------------------------------------------------------------------------


def test_v3_accepts_timestamp_exactly_5_minutes_old() -> None:
    assert verify(v3_headers(NOW - MAX_AGE_MS)) == "v3"


def test_v3_rejects_timestamp_more_than_5_minutes_old() -> None:
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify(v3_headers(NOW - MAX_AGE_MS - 1))


def test_v3_rejects_timestamp_an_hour_old() -> None:
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify(v3_headers(NOW - 3_600_000))


def test_v3_accepts_timestamp_exactly_1_minute_in_the_future() -> None:
    assert verify(v3_headers(NOW + MAX_FUTURE_MS)) == "v3"


def test_v3_rejects_timestamp_more_than_1_minute_in_the_future() -> None:
    with pytest.raises(SignatureError, match="timestamp in the future"):
        verify(v3_headers(NOW + MAX_FUTURE_MS + 1))


def test_window_constants_are_5_minutes_and_1_minute() -> None:
    assert (MAX_AGE_MS, MAX_FUTURE_MS) == (300_000, 60_000)


def test_v3_rejects_timestamp_in_seconds_as_stale() -> None:
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify(v3_headers(NOW // 1000))


def test_v3_defaults_now_to_the_wall_clock() -> None:
    now = time.time_ns() // 1_000_000
    headers = v3_headers(now)
    assert (
        verify_request(client_secret=SECRET, method="POST", uri=URI, body=BODY, headers=headers)
        == "v3"
    )
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify_request(
            client_secret=SECRET, method="POST", uri=URI, body=BODY, headers=v3_headers(NOW - 10**9)
        )


# --- v3 timestamp header problems -------------------------------------------------------------


def test_v3_without_timestamp_is_rejected() -> None:
    headers = v3_headers(NOW)
    del headers["X-HubSpot-Request-Timestamp"]
    with pytest.raises(SignatureError, match="v3 signature without timestamp"):
        verify(headers)


def test_v3_with_empty_timestamp_is_rejected() -> None:
    headers = v3_headers(NOW) | {"X-HubSpot-Request-Timestamp": ""}
    with pytest.raises(SignatureError, match="v3 signature without timestamp"):
        verify(headers)


@pytest.mark.parametrize(
    "timestamp",
    [
        "abc",
        "1769081994066.0",
        "1.769e12",
        "-1769081994066",
        "+1769081994066",
        "0x1A",
        "١٧٦٩",  # Arabic-Indic digits, which str.isdigit() accepts
        "9" * 5000,
    ],
)
def test_v3_with_non_numeric_timestamp_is_rejected(timestamp: str) -> None:
    headers = v3_headers(NOW) | {"X-HubSpot-Request-Timestamp": timestamp}
    with pytest.raises(SignatureError, match="invalid timestamp"):
        verify(headers)


def test_v3_timestamp_is_part_of_the_signature() -> None:
    headers = v3_headers(NOW) | {"X-HubSpot-Request-Timestamp": str(NOW + 1)}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers)


# --- missing headers --------------------------------------------------------------------------


def test_no_signature_headers_is_rejected() -> None:
    with pytest.raises(SignatureError, match="missing signature"):
        verify({"Content-Type": "application/json"})


def test_version_header_alone_is_rejected() -> None:
    with pytest.raises(SignatureError, match="missing signature"):
        verify({"X-HubSpot-Signature-Version": "v1"})


def test_empty_legacy_signature_is_rejected() -> None:
    with pytest.raises(SignatureError, match="empty signature"):
        verify({"X-HubSpot-Signature": "", "X-HubSpot-Signature-Version": "v1"})


def test_missing_version_header_is_treated_as_v1() -> None:
    assert verify({"X-HubSpot-Signature": sign_v1(SECRET, BODY)}) == "v1"


def test_missing_version_header_does_not_accept_v2_signature() -> None:
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify({"X-HubSpot-Signature": sign_v2(SECRET, "POST", URI, BODY)})


# --- wrong secret, tampering ------------------------------------------------------------------


def test_v3_with_wrong_secret_is_rejected() -> None:
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(v3_headers(NOW), secret="another-secret")


def test_v1_with_wrong_secret_is_rejected() -> None:
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify({"X-HubSpot-Signature": V1_DOC_SIGNATURE}, secret="another-secret")


def test_v2_with_wrong_secret_is_rejected() -> None:
    headers = {"X-HubSpot-Signature": V2_DOC_POST_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers, body=V2_DOC_POST_BODY, secret="another-secret")


@pytest.mark.parametrize(
    "tampered",
    [
        BODY + b" ",
        BODY.replace(b'"objectId":123', b'"objectId":124'),
        b"",
        # A semantically equal re-serialisation is not the signed byte string.
        BODY.replace(b",", b", "),
    ],
)
def test_v3_tampered_body_is_rejected(tampered: bytes) -> None:
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(v3_headers(NOW), body=tampered)


def test_v1_tampered_body_is_rejected() -> None:
    headers = {"X-HubSpot-Signature": V1_DOC_SIGNATURE, "X-HubSpot-Signature-Version": "v1"}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers, body=V1_DOC_BODY + b"\n")


def test_v2_tampered_body_is_rejected() -> None:
    headers = {"X-HubSpot-Signature": V2_DOC_POST_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers, body=b'{"example_field":"other_value"}')


def test_v3_covers_method_and_uri() -> None:
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(v3_headers(NOW), method="PUT")
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(v3_headers(NOW), uri="http://www.example.com/webhook_uri")
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(v3_headers(NOW), uri=f"{URI}?x=1")


def test_v2_covers_method_and_uri() -> None:
    headers = {"X-HubSpot-Signature": V2_DOC_POST_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers, body=V2_DOC_POST_BODY, method="PUT")
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers, body=V2_DOC_POST_BODY, uri="https://www.example.com/other")


def test_v1_signature_sent_as_v2_is_rejected() -> None:
    headers = {"X-HubSpot-Signature": V1_DOC_SIGNATURE, "X-HubSpot-Signature-Version": "v2"}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers, body=V1_DOC_BODY)


def test_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    headers = v3_headers(NOW) | {"X-HubSpot-Signature-v3": "é" * 44}
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify({"X-HubSpot-Signature": "é" * 64})


def test_v3_with_sha256_prefix_is_rejected() -> None:
    headers = v3_headers(NOW)
    headers["X-HubSpot-Signature-v3"] = "sha256=" + headers["X-HubSpot-Signature-v3"]
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(headers)


def test_v1_hex_signature_is_accepted_in_uppercase() -> None:
    assert verify({"X-HubSpot-Signature": V1_DOC_SIGNATURE.upper()}, body=V1_DOC_BODY) == "v1"


# --- empty secret -----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "   "])
def test_empty_secret_never_verifies(secret: str) -> None:
    # Signatures computed with the empty key itself must not pass either.
    forged_v1 = hashlib.sha256(BODY).hexdigest()
    for headers in (v3_headers(NOW), {"X-HubSpot-Signature": forged_v1}, {}):
        with pytest.raises(ValueError, match="secret is empty"):
            verify(headers, secret=secret)


@pytest.mark.parametrize("secret", ["", "   "])
def test_signing_with_empty_secret_raises(secret: str) -> None:
    with pytest.raises(ValueError, match="secret is empty"):
        sign_v1(secret, BODY)
    with pytest.raises(ValueError, match="secret is empty"):
        sign_v2(secret, "POST", URI, BODY)
    with pytest.raises(ValueError, match="secret is empty"):
        sign_v3(secret, "POST", URI, BODY, NOW)
    with pytest.raises(ValueError, match="secret is empty"):
        signed_headers(secret, "POST", URI, BODY, timestamp_ms=NOW)


# --- header lookup ----------------------------------------------------------------------------


def test_headers_are_matched_case_insensitively_lowercase() -> None:
    headers = {k.lower(): v for k, v in v3_headers(NOW).items()}
    assert verify(headers) == "v3"


def test_headers_are_matched_case_insensitively_uppercase_v3_spelling() -> None:
    headers = {k.upper(): v for k, v in v3_headers(NOW).items()}
    assert verify(headers) == "v3"


def test_legacy_headers_are_matched_case_insensitively() -> None:
    headers = {"x-hubspot-signature": V2_DOC_POST_SIGNATURE, "X-HUBSPOT-SIGNATURE-VERSION": "v2"}
    assert verify(headers, body=V2_DOC_POST_BODY) == "v2"


def test_version_value_is_matched_case_insensitively() -> None:
    headers = {"X-HubSpot-Signature": V2_DOC_POST_SIGNATURE, "X-HubSpot-Signature-Version": "V2"}
    assert verify(headers, body=V2_DOC_POST_BODY) == "v2"


def test_starlette_headers_are_accepted() -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in v3_headers(NOW).items()]
    assert verify(Headers(raw=raw)) == "v3"


def test_conflicting_duplicate_signature_headers_are_rejected() -> None:
    raw = [(k.lower().encode(), v.encode()) for k, v in v3_headers(NOW).items()]
    raw.append((b"x-hubspot-signature-v3", WRONG_V3.encode()))
    with pytest.raises(SignatureError, match="conflicting"):
        verify(Headers(raw=raw))


def test_header_values_are_stripped_of_surrounding_whitespace() -> None:
    headers = {k: f" {v} " for k, v in v3_headers(NOW).items()}
    assert verify(headers) == "v3"


# --- unknown version --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v3", "v4", "1", "sha256", "v1,v2"])
def test_unknown_version_value_is_rejected(version: str) -> None:
    headers = {"X-HubSpot-Signature": sign_v1(SECRET, BODY), "X-HubSpot-Signature-Version": version}
    with pytest.raises(SignatureError, match="unknown signature version"):
        verify(headers)


def test_signature_error_carries_reason() -> None:
    with pytest.raises(SignatureError) as info:
        verify({})
    assert info.value.reason == "missing signature"
    assert str(info.value) == "missing signature"


# --- v3 only --------------------------------------------------------------------------------


def test_a_v1_length_extension_forgery_verifies_unless_v3_is_required() -> None:
    # Knowing one signed body and the secret's length (a UUID: 36), anyone can sign a longer one.
    glue, forged = extend(V1_DOC_SIGNATURE, len(SECRET) + len(BODY), b',{"objectId":666}]')
    headers = {"X-HubSpot-Signature": forged, "X-HubSpot-Signature-Version": "v1"}
    assert verify(headers, body=BODY + glue) == "v1"
    with pytest.raises(SignatureError, match="only v3 is accepted"):
        verify_request(
            client_secret=SECRET,
            method="POST",
            uri=URI,
            body=BODY + glue,
            headers=headers,
            now_ms=NOW,
            require_v3=True,
        )


def test_requiring_v3_still_accepts_what_hubspot_sends() -> None:
    headers = v3_headers(NOW)  # v3 plus the legacy v1 header, as HubSpot sends them
    result = verify_request(
        client_secret=SECRET,
        method="POST",
        uri=URI,
        body=BODY,
        headers=headers,
        now_ms=NOW,
        require_v3=True,
    )
    assert result == "v3"

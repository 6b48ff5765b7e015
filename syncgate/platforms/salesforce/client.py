"""Salesforce REST seam for the delivery worker: SOQL reads and sObject Collections writes."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote_plus

import httpx
import orjson

from syncgate.config import Settings
from syncgate.encoding import to_json_bytes
from syncgate.platforms.salesforce.oauth import (
    PermanentError,
    SalesforceAuth,
    SalesforceError,
    Token,
    TransientError,
    retry_after_seconds,
)
from syncgate.platforms.usage import ApiUsage

__all__ = [
    "MAX_COLLECTION_RECORDS",
    "TRANSIENT_ERROR_CODES",
    "PermanentError",
    "RecordResult",
    "SalesforceClient",
    "SalesforceError",
    "SalesforceRecord",
    "TransientError",
    "soql_literal",
]

MAX_COLLECTION_RECORDS: Final = 200
EMAILS_PER_QUERY: Final = 200  # a whole delivery batch: one query per object
IDS_PER_QUERY: Final = 200
# Keeps a GET query URL well under Salesforce's 16 KB URI limit, counted as sent (escaped).
_MAX_IN_LIST_CHARS: Final = 12_000

TRANSIENT_ERROR_CODES: Final = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_LIMIT_EXCEEDED",
        "SERVER_UNAVAILABLE",
        # Only with allOrNone=true: a valid record undone because a batch-mate failed.
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    }
)
# Beside 5xx: the codes that mean no call can succeed for now (the org's allowance is used up).
_OUTAGE_ERROR_CODES: Final = frozenset({"REQUEST_LIMIT_EXCEEDED"})
_API_USAGE: Final = re.compile(r"(?:^|[\s,;])api-usage=(\d+)/(\d+)")
_BASE_FIELDS: Final = ("Id", "Email", "LastModifiedDate")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_SOQL_ESCAPES: Final = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)
_SOQL_RESERVED: Final = re.compile("[" + re.escape("".join(map(chr, _SOQL_ESCAPES))) + "]")
# What a URL's query may carry unescaped (RFC 3986): a SOQL statement stays short and cheap to
# build, with its quotes, commas and the emails' @ as they are.
_QUERY_SAFE: Final = "'(),@=:"


@dataclass(frozen=True)
class SalesforceRecord:
    object_type: str
    id: str
    last_modified_ms: int
    values: dict[str, Any]


@dataclass(frozen=True)
class RecordResult:
    success: bool
    id: str | None = None
    error_code: str | None = None
    message: str | None = None
    transient: bool = False


def soql_literal(value: str) -> str:
    """A SOQL string literal for `value`, quoted and escaped."""
    if _SOQL_RESERVED.search(value) is None:  # nearly every email and id
        return "'" + value + "'"
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def salesforce_time_ms(value: object) -> int:
    """Epoch ms of a REST dateTime like `2026-11-28T10:00:00.000+0000` (0 if absent)."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


class SalesforceClient:
    """Bearer-authenticated calls to one org's REST API, renewing the token once on 401."""

    def __init__(self, auth: SalesforceAuth, http: httpx.AsyncClient, api_version: str) -> None:
        self._auth = auth
        self._http = http
        self._base = f"/services/data/v{api_version}"
        # The org's daily API allowance, from the `Sforce-Limit-Info` of the latest answer.
        self.usage: ApiUsage | None = None

    @staticmethod
    def is_configured(settings: Settings) -> bool:
        """Whether OAuth credentials for the org are set."""
        # Only the refresh-token grant may omit the secret (app with "Require Secret" off).
        return settings.salesforce_client_id is not None and (
            settings.salesforce_client_secret is not None
            or settings.salesforce_refresh_token is not None
        )

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> SalesforceClient | None:
        """A client for the configured org, or None when OAuth credentials are not set."""
        client_id = settings.salesforce_client_id
        if client_id is None or not cls.is_configured(settings):
            return None
        secret, refresh = settings.salesforce_client_secret, settings.salesforce_refresh_token
        auth = SalesforceAuth(http, str(settings.salesforce_login_url), client_id, secret, refresh)
        return cls(auth, http, settings.salesforce_api_version)

    async def probe(self) -> None:
        """One cheap call (`/limits`) that also reads the org's daily API allowance."""
        body = _expect_dict(await self._call("GET", f"{self._base}/limits"))
        daily = body.get("DailyApiRequests")
        if isinstance(daily, dict):
            allowed, remaining = daily.get("Max"), daily.get("Remaining")
            if isinstance(allowed, int) and isinstance(remaining, int):
                self.usage = ApiUsage(max(allowed - remaining, 0), allowed, datetime.now(UTC))

    async def query(self, soql: str) -> list[dict[str, Any]]:
        """All rows of a SOQL query (following `nextRecordsUrl`), each with its `attributes`."""
        query = quote_plus(soql, safe=_QUERY_SAFE)
        page = _expect_dict(await self._call("GET", f"{self._base}/query?q={query}"))
        records: list[dict[str, Any]] = list(page.get("records") or [])
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            page = _expect_dict(await self._call("GET", str(page["nextRecordsUrl"])))
            records.extend(page.get("records") or [])
        return records

    async def find_by_emails(
        self, emails: Sequence[str], fields: Mapping[str, Sequence[str]]
    ) -> dict[str, SalesforceRecord]:
        """Per lower-cased email, the most recently modified unconverted Lead or Contact."""
        wanted = list(dict.fromkeys(e.strip().lower() for e in emails if e and e.strip()))
        wanted_set = set(wanted)
        found: dict[str, SalesforceRecord] = {}
        for object_type, extra in (("Lead", " AND IsConverted = false"), ("Contact", "")):
            columns = _columns(fields.get(object_type, ()))
            for in_list in _in_lists(wanted, EMAILS_PER_QUERY):
                soql = f"SELECT {columns} FROM {object_type} WHERE Email IN ({in_list}){extra}"  # noqa: S608
                for row in await self.query(soql):
                    email = str(row.get("Email") or "").lower()
                    record = _record(object_type, row)
                    current = found.get(email)
                    if email in wanted_set and (current is None or _rank(record) > _rank(current)):
                        found[email] = record
        return found

    async def get_records(
        self, object_type: str, ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, SalesforceRecord]:
        """Records by id, keyed by the 18-character Id Salesforce returns; unknown ids absent."""
        columns = _columns(fields)
        found: dict[str, SalesforceRecord] = {}
        for in_list in _in_lists(list(dict.fromkeys(ids)), IDS_PER_QUERY):
            soql = f"SELECT {columns} FROM {_name(object_type)} WHERE Id IN ({in_list})"  # noqa: S608
            for row in await self.query(soql):
                record = _record(object_type, row)
                found[record.id] = record
        return found

    async def create_records(
        self, records: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[RecordResult]:
        """Create (object_type, fields) records in one call; results in input order."""
        bodies = [
            ({"attributes": {"type": _name(kind)}, **values}, kind) for kind, values in records
        ]
        return await self._collection("POST", bodies)

    async def update_records(
        self, records: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> list[RecordResult]:
        """Update (object_type, id, fields) records in one call; results in input order."""
        bodies = [
            ({"attributes": {"type": _name(kind)}, "id": record_id, **values}, kind)
            for kind, record_id, values in records
        ]
        return await self._collection("PATCH", bodies)

    async def _collection(
        self, method: str, bodies: list[tuple[dict[str, Any], str]]
    ) -> list[RecordResult]:
        if len(bodies) > MAX_COLLECTION_RECORDS:
            raise ValueError(
                f"at most {MAX_COLLECTION_RECORDS} records per call, got {len(bodies)}"
            )
        if not bodies:
            return []
        # Salesforce splits a collection into chunks at every type change and allows 10 chunks.
        order = sorted(range(len(bodies)), key=lambda index: bodies[index][1])
        payload = {"allOrNone": False, "records": [bodies[index][0] for index in order]}
        answer = await self._call(method, f"{self._base}/composite/sobjects", json=payload)
        if not isinstance(answer, list) or len(answer) != len(bodies):
            raise PermanentError("Salesforce answered a collection call with an unexpected body")
        results: list[RecordResult] = [RecordResult(success=False)] * len(bodies)
        for index, item in zip(order, answer, strict=True):
            results[index] = _record_result(item)
        return results

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
    ) -> Any:
        if not path.startswith("/services/"):
            # Never send the bearer token to a host Salesforce did not give us.
            raise PermanentError("Salesforce returned an unexpected resource URL")
        token = await self._auth.token()
        response = await self._send(token, method, path, json)
        if response.status_code == 401:
            token = await self._auth.renew(token)
            response = await self._send(token, method, path, json)
            if response.status_code == 401:
                code, message = _first_error(response)
                raise PermanentError(
                    f"Salesforce rejected the renewed token: {code}: {message}", outage=True
                )
        if not response.is_success:
            raise _failure(response)
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except ValueError:
            raise TransientError(
                f"Salesforce answered HTTP {response.status_code} with a non-JSON body"
            ) from None

    async def _send(self, token: Token, method: str, path: str, json: Any) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token.access_token}",
            "Accept": "application/json",
            "Sforce-Call-Options": "client=syncgate",
        }
        content = None
        if json is not None:
            content = to_json_bytes(json)
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method, token.instance_url + path, content=content, headers=headers
            )
        except httpx.TimeoutException as error:
            raise TransientError(
                f"Salesforce request timed out ({type(error).__name__})", outage=True
            ) from None
        except httpx.TransportError as error:
            raise TransientError(
                f"Salesforce unreachable ({type(error).__name__})", outage=True
            ) from None
        if usage := _api_usage(response):
            self.usage = usage
        return response


def _api_usage(response: httpx.Response) -> ApiUsage | None:
    """The org's daily allowance from `Sforce-Limit-Info: api-usage=25/15000`, if present."""
    match = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
    if match is None:
        return None
    return ApiUsage(int(match.group(1)), int(match.group(2)), datetime.now(UTC))


def _expect_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PermanentError("Salesforce answered a query with an unexpected body")
    return body


def _name(value: str) -> str:
    # Object and field names are spliced into SOQL and JSON unquoted, so only identifiers pass.
    if not _NAME.match(value):
        raise ValueError(f"not a Salesforce API name: {value!r}")
    return value


def _columns(extra: Sequence[str]) -> str:
    columns: dict[str, str] = {}
    for field in (*_BASE_FIELDS, *extra):
        columns.setdefault(_name(field).lower(), field)
    return ", ".join(columns.values())


def _in_lists(values: list[str], max_count: int) -> Iterator[str]:
    """The values as SOQL `IN` lists of at most `max_count` literals and `_MAX_IN_LIST_CHARS`
    characters once escaped for the URL."""
    literals: list[str] = []
    size = 0
    for value in values:
        literal = soql_literal(value)
        cost = len(quote_plus(literal, safe=_QUERY_SAFE)) + 2
        if literals and (len(literals) >= max_count or size + cost > _MAX_IN_LIST_CHARS):
            yield ", ".join(literals)
            literals, size = [], 0
        literals.append(literal)
        size += cost
    if literals:
        yield ", ".join(literals)


def _rank(record: SalesforceRecord) -> tuple[int, bool, str]:
    # Ties go to the Contact: a Lead and Contact modified together is usually a conversion.
    return (record.last_modified_ms, record.object_type == "Contact", record.id)


def _record(object_type: str, row: dict[str, Any]) -> SalesforceRecord:
    attributes = row.get("attributes")
    if isinstance(attributes, dict) and isinstance(attributes.get("type"), str):
        object_type = attributes["type"]
    values = {key: value for key, value in row.items() if key != "attributes"}
    return SalesforceRecord(
        object_type=object_type,
        id=str(row.get("Id") or ""),
        last_modified_ms=salesforce_time_ms(row.get("LastModifiedDate")),
        values=values,
    )


def _record_result(item: Any) -> RecordResult:
    if not isinstance(item, dict):
        return RecordResult(success=False, error_code="UNKNOWN_ERROR", message=repr(item)[:200])
    if item.get("success"):
        return RecordResult(success=True, id=item.get("id"))
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_ERROR")
    return RecordResult(
        success=False,
        id=item.get("id"),
        error_code=code,
        message=str(first.get("message") or ""),
        transient=code in TRANSIENT_ERROR_CODES,
    )


def _first_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = orjson.loads(response.content)
    except ValueError:
        return f"HTTP {response.status_code}", response.reason_phrase
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}", response.reason_phrase
    code = body.get("errorCode") or body.get("error") or f"HTTP {response.status_code}"
    message = body.get("message") or body.get("error_description") or response.reason_phrase
    return str(code), str(message)


def _failure(response: httpx.Response) -> SalesforceError:
    code, message = _first_error(response)
    status = response.status_code
    text = f"{code}: {message}" + ("" if code.startswith("HTTP ") else f" (HTTP {status})")
    if status == 429 or status >= 500 or code in TRANSIENT_ERROR_CODES:
        outage = status >= 500 or code in _OUTAGE_ERROR_CODES
        return TransientError(text, retry_after_seconds(response), outage=outage)
    return PermanentError(text)

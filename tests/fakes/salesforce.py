"""A fake Salesforce org: OAuth token endpoint and the REST calls syncgate makes (CONTRACT §8).

Behaviour follows reference/salesforce.md §3-§4: 18-character ids (``00Q`` Lead, ``003`` Contact),
system timestamps, the JSON-array error envelope (``errorCode``) for single-record calls and
per-record results (``statusCode``) for sObject Collections, ``allOrNone``, the 200-record limit,
401 ``INVALID_SESSION_ID`` once tokens are expired, 403 ``REQUEST_LIMIT_EXCEEDED``, the daily
allocation in ``Sforce-Limit-Info`` and ``/limits``, and a strict SOQL subset (see ``soql.py``).

    sf = FakeSalesforce()
    with running(create_salesforce_app(sf)) as server:
        ...  # SYNCGATE_SALESFORCE_LOGIN_URL=server.url, client id/secret = sf.client_id/secret
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from . import soql
from ._common import ASGIApp, FakePlatform, FaultMiddleware, parse_json
from .soql import FieldSpec

COLLECTION_LIMIT = 200
OLDEST_VERSION = 31.0  # v21-30 are retired (410); the fake serves 31.0 up to ``latest_version``
INTEGRATION_USER_ID = "0055g00000IntgUAAQ"  # "Run As" user of the client-credentials app
ADMIN_USER_ID = "0055g00000AdmnUAAQ"  # a person editing records in the UI (seed helpers)

# -- schema --------------------------------------------------------------------------------------

_SYSTEM = [
    FieldSpec("Id", "id", 18, createable=False, updateable=False),
    FieldSpec("IsDeleted", "boolean", createable=False, updateable=False),
    FieldSpec("CreatedDate", "datetime", createable=False, updateable=False),
    FieldSpec("CreatedById", "reference", 18, createable=False, updateable=False),
    FieldSpec("LastModifiedDate", "datetime", createable=False, updateable=False),
    FieldSpec("LastModifiedById", "reference", 18, createable=False, updateable=False),
    FieldSpec("SystemModstamp", "datetime", createable=False, updateable=False),
]
_PERSON = [
    FieldSpec("Salutation", "picklist", 40),
    FieldSpec("FirstName", "string", 40),
    FieldSpec("LastName", "string", 80, required=True),
    FieldSpec("Name", "string", 121, createable=False, updateable=False),
    FieldSpec("Title", "string", 128),
    FieldSpec("Email", "email", 80),
    FieldSpec("Phone", "phone", 40),
    FieldSpec("MobilePhone", "phone", 40),
    FieldSpec("Fax", "phone", 40),
    FieldSpec("LeadSource", "picklist", 255),
    FieldSpec("Description", "textarea", 32000),
    FieldSpec("OwnerId", "reference", 18),
    FieldSpec("HasOptedOutOfEmail", "boolean"),
    FieldSpec("DoNotCall", "boolean"),
]
_LEAD = [
    FieldSpec("Company", "string", 255, required=True),
    FieldSpec("Street", "textarea", 255),
    FieldSpec("City", "string", 40),
    FieldSpec("State", "string", 80),
    FieldSpec("PostalCode", "string", 20),
    FieldSpec("Country", "string", 80),
    FieldSpec("Website", "url", 255),
    FieldSpec("Industry", "picklist", 255),
    FieldSpec("Rating", "picklist", 255),
    FieldSpec("AnnualRevenue", "currency"),
    FieldSpec("NumberOfEmployees", "int"),
    FieldSpec("Status", "picklist", 255),
    FieldSpec("IsConverted", "boolean", createable=False, updateable=False),
    FieldSpec("ConvertedDate", "date", createable=False, updateable=False),
    FieldSpec("ConvertedAccountId", "reference", 18, createable=False, updateable=False),
    FieldSpec("ConvertedContactId", "reference", 18, createable=False, updateable=False),
    FieldSpec("ConvertedOpportunityId", "reference", 18, createable=False, updateable=False),
]
_CONTACT = [
    FieldSpec("AccountId", "reference", 18),
    FieldSpec("Department", "string", 80),
    FieldSpec("HomePhone", "phone", 40),
    FieldSpec("OtherPhone", "phone", 40),
    FieldSpec("Birthdate", "date"),
    FieldSpec("MailingStreet", "textarea", 255),
    FieldSpec("MailingCity", "string", 40),
    FieldSpec("MailingState", "string", 80),
    FieldSpec("MailingPostalCode", "string", 20),
    FieldSpec("MailingCountry", "string", 80),
]
KEY_PREFIXES = {"Lead": "00Q", "Contact": "003"}
REFERENCE_PREFIXES = {"OwnerId": ("005", "00G"), "AccountId": ("001",)}  # User or Queue owner
DEFAULTS: dict[str, dict[str, Any]] = {
    "Lead": {"Status": "Open - Not Contacted", "IsConverted": False},
    "Contact": {},
}
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def _schema(extra: Mapping[str, Iterable[FieldSpec]]) -> dict[str, dict[str, FieldSpec]]:
    objects = {
        "Lead": _SYSTEM + _PERSON + _LEAD + list(extra.get("Lead", ())),
        "Contact": _SYSTEM + _PERSON + _CONTACT + list(extra.get("Contact", ())),
    }
    return {name: {f.name.lower(): f for f in specs} for name, specs in objects.items()}


# -- ids -----------------------------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to18(id15: str) -> str:
    """Append Salesforce's case-encoding checksum to a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << j for j, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += _SUFFIX[bits]
    return id15 + suffix


def normalize_id(value: str) -> str | None:
    """Canonical 18-character form of a 15- or 18-character id (the latter case-insensitive)."""
    if not isinstance(value, str) or not value.isalnum() or not value.isascii():
        return None
    if len(value) == 15:
        return to18(value)
    if len(value) != 18:
        return None
    suffix = value[15:].upper()
    if any(ch not in _SUFFIX for ch in suffix):
        return None
    chars = list(value[:15])
    for chunk, ch in enumerate(suffix):
        bits = _SUFFIX.index(ch)
        for j in range(5):
            k = chunk * 5 + j
            chars[k] = chars[k].upper() if bits & (1 << j) else chars[k].lower()
    id15 = "".join(chars)
    # A digit cannot carry an upper-case bit: such an id was never issued by Salesforce.
    return to18(id15) if to18(id15)[15:] == suffix else None


def make_id(prefix: str, number: int) -> str:
    """``prefix`` + pod ``5g`` + ``0`` + a 9-character base-62 counter, then the checksum."""
    digits = ""
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return to18(f"{prefix}5g0{digits}")


def format_datetime(moment: datetime) -> str:
    """REST date-time form: ``2026-11-28T10:00:00.000+0000``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


# -- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SfError:
    """One Salesforce error, renderable in either envelope."""

    code: str
    message: str
    fields: tuple[str, ...] | None = ()  # None: not about a record's fields (no "fields" key)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def single(self) -> dict[str, Any]:
        """Element of the single-record envelope ``[{"message","errorCode","fields"}]``."""
        body = {**self.extra, "message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = list(self.fields)
        return body

    def collection(self) -> dict[str, Any]:
        """Element of a per-record ``errors`` list in sObject Collections."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields or ())}


def _oauth_error(error: str, description: str) -> tuple[int, dict[str, Any]]:
    """Token-endpoint failure: 400 with the RFC 6749 ``error`` / ``error_description`` pair."""
    return 400, {"error": error, "error_description": description}


class _RequestError(Exception):
    """The whole request fails (not one record): rendered as a single-record envelope."""

    def __init__(self, status: int, error: SfError) -> None:
        super().__init__(error.message)
        self.status = status
        self.error = error


NOT_FOUND = SfError("NOT_FOUND", "The requested resource does not exist", None)
DELETED = SfError("ENTITY_IS_DELETED", "entity is deleted", None)
SESSION_EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]
ROLLED_BACK = SfError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header",
)


@dataclass
class RecordRule:
    """A per-record rejection (validation rule, duplicate rule, row lock…) set up by a test."""

    predicate: Callable[[dict[str, Any]], bool]
    error: SfError
    operations: frozenset[str]
    remaining: int | None
    hits: int = 0


@dataclass
class _Record:
    sobject: str
    fields: dict[str, Any]
    deleted: bool = False


# -- the fake ------------------------------------------------------------------------------------


class FakeSalesforce(FakePlatform):
    """State of one fake org; serve it with ``create_salesforce_app(fake)``.

    ``instance_url``: what the token endpoint returns (default: the URL the request came to).
    ``block_duplicate_emails``: emulate an active duplicate rule with action *Block* on
    Lead/Contact email (case-insensitive, across both objects): creates and updates that would
    duplicate an email fail with ``DUPLICATES_DETECTED``.
    ``custom_fields``: extra fields, e.g. ``{"Lead": ["HubSpot_Id__c"]}`` (text(255)).
    """

    token_path = "/services/oauth2/token"

    def __init__(
        self,
        client_id: str = "sf-client-id",
        client_secret: str = "sf-client-secret",
        refresh_token: str | None = "sf-refresh-token",
        *,
        org_id: str = "00D5g000004SyncEAA",
        instance_url: str | None = None,
        latest_version: str = "67.0",
        daily_api_limit: int = 100_000,
        block_duplicate_emails: bool = False,
        custom_fields: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.org_id = org_id
        self.instance_url = instance_url
        self.latest_version = latest_version
        self.daily_api_limit = daily_api_limit
        self.block_duplicate_emails = block_duplicate_emails
        extra = {
            sobject: [FieldSpec(name, "string", 255) for name in names]
            for sobject, names in (custom_fields or {}).items()
        }
        self.schema = _schema(extra)
        self._records: dict[str, _Record] = {}
        self._tokens: set[str] = set()
        self._rules: list[RecordRule] = []
        self._counter = 3_141_592_653  # gives mixed-case ids such as 00Q5g00003QbnlGEAR
        self._last_time = datetime(2000, 1, 1, tzinfo=UTC)
        self.api_usage = 0

    # -- tokens ----------------------------------------------------------------------------------

    def issue_token(self) -> str:
        """A valid access token (as if fetched with client credentials)."""
        token = f"{self.org_id[:15]}!AQ0AQ{secrets.token_urlsafe(60)}"
        with self.lock:
            self._tokens.add(token)
        return token

    def expire_tokens(self) -> None:
        """Invalidate every issued access token: API calls now get 401 INVALID_SESSION_ID."""
        with self.lock:
            self._tokens.clear()

    def revoke_refresh_token(self) -> None:
        """Make the refresh-token grant fail with ``invalid_grant``."""
        with self.lock:
            self.refresh_token = None

    @property
    def valid_tokens(self) -> set[str]:
        with self.lock:
            return set(self._tokens)

    # -- seeding and inspection ------------------------------------------------------------------

    def add_record(
        self,
        sobject: str,
        fields: Mapping[str, Any] | None = None,
        /,
        *,
        created: datetime | None = None,
        by_user: str = ADMIN_USER_ID,
        **more: Any,
    ) -> str:
        """Create a record directly (as a user in the UI would), without validation rules.

        Field names are checked against the schema; system fields are filled in.
        Returns the new 18-character id.
        """
        values = self._canonical(sobject, {**(fields or {}), **more})
        with self.lock:
            moment = self._tick(created)
            record_id = self._new_id(sobject)
            self._records[record_id] = _Record(
                sobject, self._new_fields(sobject, record_id, values, moment, by_user)
            )
            return record_id

    def update_record(
        self,
        record_id: str,
        fields: Mapping[str, Any] | None = None,
        /,
        *,
        modified: datetime | None = None,
        by_user: str = ADMIN_USER_ID,
        **more: Any,
    ) -> None:
        """Change a record directly (as a user would); bumps LastModifiedDate/SystemModstamp."""
        with self.lock:
            record = self._live(record_id)
            values = self._canonical(record.sobject, {**(fields or {}), **more})
            merged = {**record.fields, **values}
            self._stamp(merged, self._tick(modified), by_user)
            self._records[record.fields["Id"]] = _Record(record.sobject, merged)

    def delete_record(self, record_id: str) -> None:
        """Move a record to the recycle bin: reads and writes now fail with ENTITY_IS_DELETED."""
        with self.lock:
            record = self._live(record_id)
            fields = {**record.fields, "IsDeleted": True}
            self._stamp(fields, self._tick(None), ADMIN_USER_ID)
            self._records[fields["Id"]] = _Record(record.sobject, fields, deleted=True)

    def convert_lead(self, lead_id: str, contact_fields: Mapping[str, Any] | None = None) -> str:
        """Convert a Lead: create its Contact and freeze the Lead; returns the Contact id."""
        with self.lock:
            lead = self._live(lead_id)
            if lead.sobject != "Lead":
                raise ValueError(f"{lead_id} is not a Lead")
            copied = {
                k: v
                for k, v in lead.fields.items()
                if k.lower() in self.schema["Contact"]
                and self.schema["Contact"][k.lower()].createable
            }
            contact_id = self.add_record("Contact", {**copied, **(contact_fields or {})})
            fields = {
                **lead.fields,
                "IsConverted": True,
                "Status": "Closed - Converted",
                "ConvertedContactId": contact_id,
                "ConvertedDate": self._last_time.date().isoformat(),
            }
            self._stamp(fields, self._tick(None), ADMIN_USER_ID)
            self._records[fields["Id"]] = _Record("Lead", fields)
            return contact_id

    def get(self, record_id: str) -> dict[str, Any] | None:
        """A copy of the record (with ``attributes``), deleted ones included; None if unknown."""
        with self.lock:
            canonical = normalize_id(record_id)
            record = self._records.get(canonical) if canonical else None
            return self._render(record) if record else None

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """Every live record by id (copies with ``attributes``)."""
        with self.lock:
            return {rid: self._render(r) for rid, r in self._records.items() if not r.deleted}

    def find_by_email(self, email: str, sobject: str | None = None) -> list[dict[str, Any]]:
        """Live Leads/Contacts with this email (case-insensitive), most recently modified first."""
        with self.lock:
            found = [
                self._render(r)
                for r in self._records.values()
                if not r.deleted
                and (sobject is None or r.sobject == sobject)
                and (r.fields.get("Email") or "").lower() == email.lower()
            ]
        return sorted(found, key=lambda r: r["LastModifiedDate"], reverse=True)

    @property
    def records_per_write_call(self) -> list[int]:
        """Number of records in each write call, in order."""
        return [w.size for w in self.writes]

    # -- fault helpers ---------------------------------------------------------------------------

    def reject_records(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        status_code: str = "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message: str = "Record failed a validation rule",
        fields: Iterable[str] = (),
        times: int | None = None,
        operations: Iterable[str] = ("create", "update"),
    ) -> RecordRule:
        """Fail each record write for which ``predicate(record)`` holds with ``status_code``.

        ``record`` is the record as it would be after the write (canonical field names, plus
        ``attributes.type`` and ``Id`` on updates). ``times`` limits how often the rule fires
        (e.g. a row lock that clears after one retry). Single-record calls get 400 with the
        error; collections get it in that record's result.
        """
        rule = RecordRule(
            predicate,
            SfError(status_code, message, tuple(fields)),
            frozenset(operations),
            times,
        )
        with self.lock:
            self._rules.append(rule)
        return rule

    def lock_rows(
        self, times: int | None = 1, predicate: Callable[[dict[str, Any]], bool] | None = None
    ) -> RecordRule:
        """Make updates fail with UNABLE_TO_LOCK_ROW (``times`` records, then the lock clears)."""
        return self.reject_records(
            predicate or (lambda _record: True),
            status_code="UNABLE_TO_LOCK_ROW",
            message="unable to obtain exclusive access to this record or 1 records",
            times=times,
            operations=("update",),
        )

    def use_api(self, requests: int) -> None:
        """Set the org's daily API usage (what ``Sforce-Limit-Info`` and ``/limits`` report)."""
        with self.lock:
            self.api_usage = requests

    def request_limit_exceeded(self, n: int = 1) -> None:
        """The next ``n`` API calls get 403 REQUEST_LIMIT_EXCEEDED (the org's daily allocation)."""
        self.fail_next(n, status=403, body=LIMIT_EXCEEDED)

    def clear_faults(self) -> None:
        with self.lock:
            super().clear_faults()
            self._rules.clear()

    def default_fault_body(self, status: int) -> Any:
        if status == 401:
            return SESSION_EXPIRED
        if status == 403:
            return LIMIT_EXCEEDED
        if status == 503:
            return [
                {"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}
            ]
        if status >= 500:
            return [
                {
                    "message": "An unexpected error occurred. Please include this ErrorId if you "
                    "contact support: 1855415869-32761 (-1069408591)",
                    "errorCode": "UNKNOWN_EXCEPTION",
                }
            ]
        if status == 429:
            return [{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        return [{"message": "Bad request", "errorCode": "INVALID_INPUT"}]

    # -- internals -------------------------------------------------------------------------------

    def _tick(self, at: datetime | None) -> datetime:
        # Strictly increasing at millisecond resolution, so ORDER BY LastModifiedDate is decisive.
        moment = (at or datetime.now(UTC)).astimezone(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if at is None and moment <= self._last_time:
            moment = self._last_time + timedelta(milliseconds=1)
        self._last_time = max(self._last_time, moment)
        return moment

    def _new_id(self, sobject: str) -> str:
        self._counter += 1
        return make_id(KEY_PREFIXES[sobject], self._counter)

    def _stamp(self, fields: dict[str, Any], moment: datetime, user: str) -> None:
        fields["LastModifiedDate"] = fields["SystemModstamp"] = format_datetime(moment)
        fields["LastModifiedById"] = user
        fields["Name"] = " ".join(p for p in (fields.get("FirstName"), fields.get("LastName")) if p)

    def _new_fields(
        self, sobject: str, record_id: str, values: Mapping[str, Any], moment: datetime, user: str
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {spec.name: None for spec in self.schema[sobject].values()}
        for spec in self.schema[sobject].values():
            if spec.type == "boolean":
                fields[spec.name] = False
        fields.update(DEFAULTS[sobject])
        fields["OwnerId"] = user
        fields.update(values)
        fields["Id"] = record_id
        fields["CreatedDate"] = format_datetime(moment)
        fields["CreatedById"] = user
        self._stamp(fields, moment, user)
        return fields

    def _canonical(self, sobject: str, values: Mapping[str, Any]) -> dict[str, Any]:
        if sobject not in self.schema:
            raise ValueError(f"unsupported sObject {sobject!r}")
        out = {}
        for name, value in values.items():
            spec = self.schema[sobject].get(name.lower())
            if spec is None:
                raise ValueError(f"No such column '{name}' on sobject of type {sobject}")
            out[spec.name] = value
        return out

    def _live(self, record_id: str) -> _Record:
        canonical = normalize_id(record_id)
        record = self._records.get(canonical) if canonical else None
        if record is None or record.deleted:
            raise KeyError(record_id)
        return record

    def _render(self, record: _Record, version: str | None = None) -> dict[str, Any]:
        version = version or self.latest_version
        rid = record.fields["Id"]
        return {
            "attributes": {
                "type": record.sobject,
                "url": f"/services/data/v{version}/sobjects/{record.sobject}/{rid}",
            },
            **record.fields,
        }

    def _convert(self, sobject: str, spec: FieldSpec, value: Any) -> tuple[Any, SfError | None]:
        """JSON value → stored value; a JSON type mismatch fails the whole request."""
        if isinstance(value, dict | list):
            raise _RequestError(
                400,
                SfError(
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {spec.type} from START_OBJECT value for field "
                    f"{spec.name}",
                    None,
                ),
            )
        if spec.type == "boolean":
            if value is None:
                return False, None
            if isinstance(value, bool):
                return value, None
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", None
            raise _RequestError(
                400,
                SfError(
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of boolean from VALUE_STRING value {value} or "
                    "request may be missing a required field",
                    None,
                ),
            )
        if value is None or value == "":
            return None, None  # Salesforce stores blanks as null
        if spec.type in ("double", "int", "currency"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise _RequestError(
                    400,
                    SfError(
                        "JSON_PARSER_ERROR",
                        f"Cannot deserialize instance of {spec.type} from VALUE_STRING value "
                        f"{value} or request may be missing a required field",
                        None,
                    ),
                ) from None
            return (int(number) if spec.type == "int" else number), None
        text = "true" if value is True else "false" if value is False else str(value)
        if spec.type in ("datetime", "date"):
            try:
                if spec.type == "date":
                    datetime.strptime(text, "%Y-%m-%d")
                    return text, None
                return format_datetime(soql.parse_datetime(text)), None
            except ValueError:
                return None, SfError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{spec.label}: value not of required type: {text}",
                    (spec.name,),
                )
        if spec.type in ("id", "reference"):
            canonical = normalize_id(text)
            prefixes = REFERENCE_PREFIXES.get(spec.name, ())
            if canonical is None or (prefixes and not canonical.startswith(prefixes)):
                return None, SfError(
                    "MALFORMED_ID",
                    f"{spec.label}: id value of incorrect type: {text}",
                    (spec.name,),
                )
            return canonical, None
        if spec.length and len(text) > spec.length:
            return None, SfError(
                "STRING_TOO_LONG",
                f"{spec.label}: data value too large: {text} (max length={spec.length})",
                (spec.name,),
            )
        if spec.type == "email" and not _EMAIL.match(text):
            return None, SfError(
                "INVALID_EMAIL_ADDRESS",
                f"{spec.label}: invalid email address: {text}",
                (spec.name,),
            )
        return text, None

    def _parse_fields(
        self, sobject: str, body: Mapping[str, Any], operation: str
    ) -> tuple[dict[str, Any], list[SfError]]:
        """Body → canonical stored values; per-record errors listed, request errors raised."""
        values: dict[str, Any] = {}
        errors: list[SfError] = []
        read_only: list[str] = []
        for name, raw in body.items():
            if name == "attributes":
                continue
            spec = self.schema[sobject].get(name.lower())
            if spec is None:
                raise _RequestError(
                    400,
                    SfError(
                        "INVALID_FIELD",
                        f"No such column '{name}' on sobject of type {sobject}",
                        None,
                    ),
                )
            if spec.name == "Id":
                if operation == "create":
                    errors.append(
                        SfError(
                            "INVALID_FIELD_FOR_INSERT_UPDATE",
                            "cannot specify Id in an insert call",
                            ("Id",),
                        )
                    )
                continue  # for updates the caller has taken the id already
            if not (spec.createable if operation == "create" else spec.updateable):
                read_only.append(spec.name)
                continue
            value, error = self._convert(sobject, spec, raw)
            if error:
                errors.append(error)
            else:
                values[spec.name] = value
        if read_only:
            errors.append(
                SfError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                    "security settings of this field and verify that it is read/write for your "
                    "profile or permission set.",
                    tuple(read_only),
                )
            )
        return values, errors

    def _required_missing(self, sobject: str, merged: Mapping[str, Any]) -> SfError | None:
        missing = [
            spec.name
            for spec in self.schema[sobject].values()
            if spec.required and merged.get(spec.name) in (None, "")
        ]
        if not missing:
            return None
        return SfError(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            tuple(missing),
        )

    def _duplicate_of(
        self, records: Mapping[str, _Record], record_id: str | None, email: str | None
    ) -> _Record | None:
        if not self.block_duplicate_emails or not email:
            return None
        for other in records.values():
            if (
                not other.deleted
                and other.fields["Id"] != record_id
                and (other.fields.get("Email") or "").lower() == email.lower()
            ):
                return other
        return None

    def _apply_rules(self, operation: str, candidate: dict[str, Any]) -> SfError | None:
        for rule in self._rules:
            if operation not in rule.operations:
                continue
            if rule.remaining is not None and rule.remaining <= 0:
                continue
            if rule.predicate(dict(candidate)):
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.error
        return None

    def _write_one(
        self,
        working: dict[str, _Record],
        sobject: str,
        body: Mapping[str, Any],
        operation: str,
        record_id: str | None,
    ) -> tuple[str | None, list[SfError]]:
        """Validate and apply one create/update onto ``working``; return (id, errors)."""
        existing: _Record | None = None
        if operation == "update":
            canonical = normalize_id(record_id or "")
            if canonical is None or not canonical.startswith(KEY_PREFIXES[sobject]):
                return None, [
                    SfError(
                        "MALFORMED_ID",
                        f"{sobject} ID: id value of incorrect type: {record_id}",
                        ("Id",),
                    )
                ]
            existing = working.get(canonical)
            if existing is None:
                return None, [SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")]
            if existing.deleted:
                return None, [SfError("ENTITY_IS_DELETED", "entity is deleted")]
            if sobject == "Lead" and existing.fields.get("IsConverted"):
                return None, [
                    SfError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
                ]
        values, errors = self._parse_fields(sobject, body, operation)
        if errors:
            return None, errors
        merged = {**(existing.fields if existing else DEFAULTS[sobject]), **values}
        missing = self._required_missing(sobject, merged)
        if missing:
            return None, [missing]
        candidate = {"attributes": {"type": sobject}, **merged}
        rejected = self._apply_rules(operation, candidate)
        if rejected:
            if rejected.code == "UNABLE_TO_LOCK_ROW" and existing is not None:
                rejected = SfError(rejected.code, f"{rejected.message}: {existing.fields['Id']}")
            return None, [rejected]
        duplicate = None
        if existing is None or "Email" in values:
            duplicate = self._duplicate_of(
                working, existing.fields["Id"] if existing else None, merged.get("Email")
            )
        if duplicate is not None:
            return None, [
                SfError(
                    "DUPLICATES_DETECTED",
                    "Use one of these records?",
                    extra={"duplicateResult": self._duplicate_result(sobject, duplicate)},
                )
            ]
        moment = self._tick(None)
        if existing is None:
            new_id = self._new_id(sobject)
            working[new_id] = _Record(
                sobject, self._new_fields(sobject, new_id, values, moment, INTEGRATION_USER_ID)
            )
            return new_id, []
        # Salesforce bumps LastModifiedDate on every successful update, changed values or not.
        fields = {**existing.fields, **values}
        self._stamp(fields, moment, INTEGRATION_USER_ID)
        working[fields["Id"]] = _Record(sobject, fields)
        return fields["Id"], []

    def _duplicate_result(self, sobject: str, match: _Record) -> dict[str, Any]:
        return {
            "allowSave": False,
            "duplicateRule": f"Standard_{sobject}_Duplicate_Rule",
            "duplicateRuleEntityType": sobject,
            "errorMessage": "Use one of these records?",
            "matchResults": [
                {
                    "entityType": match.sobject,
                    "errors": [],
                    "matchEngine": "ExactMatchEngine",
                    "matchRecords": [
                        {
                            "additionalInformation": [],
                            "fieldDiffs": [],
                            "matchConfidence": 100.0,
                            "record": {
                                "attributes": self._render(match)["attributes"],
                                "Id": match.fields["Id"],
                            },
                        }
                    ],
                    "rule": f"Standard_{match.sobject}_Match_Rule_v1_0",
                    "size": 1,
                    "success": True,
                }
            ],
        }

    # -- request handling (called by the app) ----------------------------------------------------

    def _token(
        self, request_form: Mapping[str, str], authorization: str | None, base: str
    ) -> tuple[int, dict[str, Any]]:
        client_id = request_form.get("client_id")
        client_secret = request_form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:]).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (ValueError, UnicodeDecodeError):
                return _oauth_error("invalid_client", "invalid client credentials")
        grant = request_form.get("grant_type")
        if grant not in ("client_credentials", "refresh_token"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if client_id != self.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if grant == "client_credentials" and client_secret != self.client_secret:
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "refresh_token":
            if client_secret is not None and client_secret != self.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
            with self.lock:
                valid = (
                    self.refresh_token is not None
                    and request_form.get("refresh_token") == self.refresh_token
                )
            if not valid:
                return _oauth_error("invalid_grant", "expired access/refresh token")
        token = self.issue_token()
        issued_at = str(int(time.time() * 1000))
        identity = f"{base}/id/{self.org_id}/{INTEGRATION_USER_ID}"
        signature = base64.b64encode(
            hmac.new(
                self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return 200, {
            "access_token": token,
            "signature": signature,
            "scope": "api" if grant == "client_credentials" else "refresh_token api",
            "instance_url": self.instance_url or base,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }

    def _authorize(self, request: Request, *, counted: bool = True) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        with self.lock:
            if scheme.lower() != "bearer" or token not in self._tokens:
                return JSONResponse(
                    SESSION_EXPIRED, status_code=401, headers={"WWW-Authenticate": "Token"}
                )
            if self.api_usage >= self.daily_api_limit:
                return self._reply(403, LIMIT_EXCEEDED)
            if counted:
                self.api_usage += 1
        return None

    def _limits(self) -> Response:
        """The ``/limits`` resource: the daily allocation among others (not counted itself)."""
        with self.lock:
            remaining = max(self.daily_api_limit - self.api_usage, 0)
            daily = {"Max": self.daily_api_limit, "Remaining": remaining}
        return self._reply(
            200,
            {
                "DailyApiRequests": daily,
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            },
        )

    def _reply(self, status: int, body: Any = None) -> Response:
        with self.lock:
            headers = {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.daily_api_limit}"}
        if status == 204:
            return Response(status_code=204, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def _check_version(self, version: str) -> Response | None:
        try:
            number = float(version)
        except ValueError:
            number = 0.0
        if not re.fullmatch(r"\d+\.\d", version) or number > float(self.latest_version):
            return self._reply(404, [NOT_FOUND.single()])
        if number < OLDEST_VERSION:
            return self._reply(410, [NOT_FOUND.single()])  # retired version: 410 GONE
        return None

    def _sobject_name(self, name: str) -> str | None:
        for candidate in self.schema:
            if candidate.lower() == name.lower():
                return candidate
        return None

    def _versions(self) -> list[dict[str, str]]:
        out = []
        number = int(OLDEST_VERSION)
        while number <= float(self.latest_version):
            i = number - int(OLDEST_VERSION)
            season = ("Summer", "Winter", "Spring")[i % 3]
            out.append(
                {
                    "label": f"{season} '{14 + (i + 2) // 3:02d}",
                    "url": f"/services/data/v{number}.0",
                    "version": f"{number}.0",
                }
            )
            number += 1
        return out

    def _query(self, version: str, q: str | None) -> Response:
        try:
            query = soql.parse(q or "", self.schema, normalize_id)
        except soql.SoqlError as error:
            return self._reply(400, [{"message": error.message, "errorCode": error.code}])
        with self.lock:
            rows = [
                dict(r.fields)
                for r in self._records.values()
                if r.sobject == query.sobject
                and not r.deleted
                and (query.where is None or soql.matches(query.where, r.fields))
            ]
        rows = soql.sort_records(rows, query.order_by)
        if query.offset:
            rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        records = [
            {
                "attributes": {
                    "type": query.sobject,
                    "url": f"/services/data/v{version}/sobjects/{query.sobject}/{row['Id']}",
                },
                **{spec.name: row.get(spec.name) for spec in query.fields},
            }
            for row in rows
        ]
        return self._reply(200, {"totalSize": len(records), "done": True, "records": records})

    def _get(self, version: str, sobject: str, record_id: str, fields: str | None) -> Response:
        name = self._sobject_name(sobject)
        canonical = normalize_id(record_id)
        with self.lock:
            record = self._records.get(canonical) if canonical else None
            if name is None or record is None or record.sobject != name:
                return self._reply(404, [NOT_FOUND.single()])
            if record.deleted:
                return self._reply(404, [DELETED.single()])
            rendered = self._render(record, version)
        if fields:
            wanted = []
            for part in fields.split(","):
                spec = self.schema[name].get(part.strip().lower())
                if spec is None:
                    return self._reply(
                        400,
                        [
                            SfError(
                                "INVALID_FIELD",
                                f"No such column '{part.strip()}' on sobject of type {name}",
                                None,
                            ).single()
                        ],
                    )
                wanted.append(spec.name)
            rendered = {"attributes": rendered["attributes"], **{k: rendered[k] for k in wanted}}
        return self._reply(200, rendered)

    def _single_write(
        self, method: str, path: str, sobject: str, record_id: str | None, raw: bytes
    ) -> Response:
        operation = "create" if record_id is None else "update"
        name = self._sobject_name(sobject)
        if name is None:
            return self._reply(404, [NOT_FOUND.single()])
        body, problem = parse_json(raw)
        if problem is not None or not isinstance(body, dict):
            return self._reply(
                400,
                [SfError("JSON_PARSER_ERROR", problem or "Expected a JSON object", None).single()],
            )
        with self.lock:
            if record_id is not None:
                canonical = normalize_id(record_id)
                existing = self._records.get(canonical) if canonical else None
                if existing is None or existing.sobject != name:
                    self.record_write(method, path, operation, 1, 404)
                    return self._reply(404, [NOT_FOUND.single()])
                if existing.deleted:
                    self.record_write(method, path, operation, 1, 404)
                    return self._reply(404, [DELETED.single()])
                record_id = canonical
            working = dict(self._records)
            try:
                new_id, errors = self._write_one(working, name, body, operation, record_id)
            except _RequestError as failure:
                self.record_write(method, path, operation, 1, failure.status)
                return self._reply(failure.status, [failure.error.single()])
            status = 400 if errors else (201 if operation == "create" else 204)
            self.record_write(method, path, operation, 1, status)
            if errors:
                return self._reply(400, [e.single() for e in errors])
            self._records = working
        if operation == "create":
            return self._reply(201, {"id": new_id, "success": True, "errors": []})
        return self._reply(204)

    def _collection_write(self, method: str, path: str, raw: bytes) -> Response:
        operation = "create" if method == "POST" else "update"
        body, problem = parse_json(raw)
        if (
            problem is not None
            or not isinstance(body, dict)
            or not isinstance(body.get("records"), list)
        ):
            message = (
                problem or "Can not deserialize the request: expected an object with 'records'"
            )
            return self._reply(400, [SfError("JSON_PARSER_ERROR", message, None).single()])
        records: list[Any] = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        if len(records) > COLLECTION_LIMIT:
            self.record_write(method, path, operation, len(records), 400)
            return self._reply(
                400,
                [
                    SfError(
                        "EXCEEDED_ID_LIMIT",
                        "record limit reached. cannot submit more than 200 records into this call",
                        None,
                    ).single()
                ],
            )
        results: list[dict[str, Any]] = []
        failed = False
        with self.lock:
            working = dict(self._records)
            try:
                for record in records:
                    if not isinstance(record, dict):
                        raise _RequestError(
                            400,
                            SfError(
                                "JSON_PARSER_ERROR", "Expected a JSON object for each record", None
                            ),
                        )
                    attributes = record.get("attributes")
                    sobject = attributes.get("type") if isinstance(attributes, dict) else None
                    if not sobject:
                        raise _RequestError(
                            400,
                            SfError(
                                "INVALID_TYPE", "Must specify an SObject type in attributes", None
                            ),
                        )
                    name = self._sobject_name(sobject)
                    if name is None:
                        raise _RequestError(
                            400,
                            SfError(
                                "INVALID_TYPE", f"sObject type '{sobject}' is not supported.", None
                            ),
                        )
                    record_id = None
                    if operation == "update":
                        record_id = next((v for k, v in record.items() if k.lower() == "id"), None)
                        if not record_id:
                            results.append(
                                {
                                    "success": False,
                                    "errors": [
                                        SfError(
                                            "MISSING_ARGUMENT", "Id not specified in an update call"
                                        ).collection()
                                    ],
                                }
                            )
                            failed = True
                            continue
                    new_id, errors = self._write_one(
                        working, name, record, operation, str(record_id) if record_id else None
                    )
                    if errors:
                        failed = True
                        results.append(
                            {"success": False, "errors": [e.collection() for e in errors]}
                        )
                    else:
                        results.append({"id": new_id, "success": True, "errors": []})
            except _RequestError as failure:
                self.record_write(method, path, operation, len(records), failure.status)
                return self._reply(failure.status, [failure.error.single()])
            if all_or_none and failed:
                results = [
                    r
                    if not r["success"]
                    else {"id": r["id"], "success": False, "errors": [ROLLED_BACK.collection()]}
                    for r in results
                ]
                # Nothing was created, so rolled-back creations have no id either.
                if operation == "create":
                    for r in results:
                        r.pop("id", None)
            else:
                self._records = working
            self.record_write(method, path, operation, len(records), 200)
        return self._reply(200, results)


def create_salesforce_app(fake: FakeSalesforce) -> ASGIApp:
    """The ASGI app serving ``fake`` (FastAPI wrapped in the fault-injection middleware)."""
    app = FastAPI(title="fake Salesforce", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(StarletteHTTPException)
    async def platform_errors(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            body = [
                {
                    "errorCode": "METHOD_NOT_ALLOWED",
                    "message": f"HTTP Method '{request.method}' not allowed.",
                }
            ]
        else:
            body = [NOT_FOUND.single()]
        return JSONResponse(body, status_code=exc.status_code)

    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("latin-1"), keep_blank_values=True))
        base = str(request.base_url).rstrip("/")
        status, body = fake._token(form, request.headers.get("authorization"), base)
        return JSONResponse(body, status_code=status)

    @app.get("/services/data")
    @app.get("/services/data/")
    async def versions() -> Response:
        return JSONResponse(fake._versions())

    @app.get("/services/data/v{version}/limits")
    @app.get("/services/data/v{version}/limits/")
    async def limits(request: Request, version: str) -> Response:
        denied = fake._authorize(request, counted=False) or fake._check_version(version)
        return denied or fake._limits()

    @app.get("/services/data/v{version}/query")
    @app.get("/services/data/v{version}/query/")
    async def query(request: Request, version: str) -> Response:
        denied = fake._authorize(request) or fake._check_version(version)
        if denied:
            return denied
        return fake._query(version, request.query_params.get("q"))

    @app.get("/services/data/v{version}/sobjects/{sobject}/{record_id}")
    async def get_record(request: Request, version: str, sobject: str, record_id: str) -> Response:
        denied = fake._authorize(request) or fake._check_version(version)
        if denied:
            return denied
        return fake._get(version, sobject, record_id, request.query_params.get("fields"))

    @app.patch("/services/data/v{version}/sobjects/{sobject}/{record_id}")
    async def update_record(
        request: Request, version: str, sobject: str, record_id: str
    ) -> Response:
        denied = fake._authorize(request) or fake._check_version(version)
        if denied:
            return denied
        return fake._single_write(
            "PATCH", request.url.path, sobject, record_id, await request.body()
        )

    @app.post("/services/data/v{version}/sobjects/{sobject}")
    @app.post("/services/data/v{version}/sobjects/{sobject}/")
    async def create_record(request: Request, version: str, sobject: str) -> Response:
        denied = fake._authorize(request) or fake._check_version(version)
        if denied:
            return denied
        return fake._single_write("POST", request.url.path, sobject, None, await request.body())

    @app.post("/services/data/v{version}/composite/sobjects")
    @app.patch("/services/data/v{version}/composite/sobjects")
    async def collection(request: Request, version: str) -> Response:
        denied = fake._authorize(request) or fake._check_version(version)
        if denied:
            return denied
        return fake._collection_write(request.method, request.url.path, await request.body())

    return FaultMiddleware(app, fake)

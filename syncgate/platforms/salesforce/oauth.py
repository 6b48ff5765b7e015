"""Salesforce OAuth 2.0 access tokens (client-credentials or refresh-token grant)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from syncgate.platforms.errors import PlatformError

__all__ = [
    "PermanentError",
    "SalesforceAuth",
    "SalesforceError",
    "Token",
    "TransientError",
    "retry_after_seconds",
]

log = logging.getLogger("syncgate.salesforce")

# The token endpoint's own throttling answer is a 400 body, yet waiting fixes it.
_TRANSIENT_OAUTH_ERRORS = frozenset(
    {"rate_limit_exceeded", "server_error", "temporarily_unavailable"}
)


class SalesforceError(PlatformError):
    """A Salesforce call failed; `message` is safe to log and store (no tokens or secrets)."""


class TransientError(SalesforceError):
    """Retry later: throttling, outages, lock contention, timeouts, connection errors."""

    transient = True


class PermanentError(SalesforceError):
    """Retrying cannot help by itself: validation, a malformed request, refused credentials
    (those are an `outage`: they stop every call until someone fixes them)."""


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    instance_url: str


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), if any."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class SalesforceAuth:
    """Holds one cached access token; fetches it lazily and renews it single-flight."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        login_url: str,
        client_id: str,
        client_secret: str | None,
        refresh_token: str | None = None,
    ) -> None:
        self._http = http
        self._token_url = f"{login_url.rstrip('/')}/services/oauth2/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> Token:
        """The cached token, fetching one first if there is none."""
        if self._token is not None:
            return self._token
        async with self._lock:
            if self._token is None:
                self._token = await self._fetch()
            return self._token

    async def renew(self, stale: Token) -> Token:
        """Replace `stale` with a new token; callers that lost the race get the winner's token."""
        async with self._lock:
            if self._token is not None and self._token != stale:
                return self._token
            self._token = None
            self._token = await self._fetch()
            log.info("salesforce access token renewed")
            return self._token

    def _form(self) -> dict[str, str]:
        form = {"client_id": self._client_id}
        if self._refresh_token is not None:
            form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token, **form}
        else:
            form = {"grant_type": "client_credentials", **form}
        if self._client_secret is not None:
            form["client_secret"] = self._client_secret
        return form

    async def _fetch(self) -> Token:
        try:
            response = await self._http.post(
                self._token_url, data=self._form(), headers={"Accept": "application/json"}
            )
        except httpx.TimeoutException as error:
            raise TransientError(
                f"Salesforce OAuth timed out ({type(error).__name__})", outage=True
            ) from None
        except httpx.TransportError as error:
            raise TransientError(
                f"Salesforce OAuth unreachable ({type(error).__name__})", outage=True
            ) from None
        body = _json_object(response)
        if response.is_success:
            access_token, instance_url = body.get("access_token"), body.get("instance_url")
            if not isinstance(access_token, str) or not isinstance(instance_url, str):
                raise PermanentError("Salesforce OAuth answered without access_token/instance_url")
            # With refresh-token rotation each answer carries the next refresh token.
            rotated = body.get("refresh_token")
            if self._refresh_token is not None and isinstance(rotated, str) and rotated:
                self._refresh_token = rotated
            return Token(access_token, instance_url.rstrip("/"))
        code = str(body.get("error") or f"HTTP {response.status_code}")
        description = body.get("error_description")
        message = self._redact(
            f"Salesforce OAuth failed: {code}" + (f": {description}" if description else "")
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(message, retry_after_seconds(response), outage=True)
        if code in _TRANSIENT_OAUTH_ERRORS:
            raise TransientError(message, retry_after_seconds(response), outage=True)
        # Refused credentials (an expired integration user, a revoked app) stop every call.
        raise PermanentError(message, outage=True)

    def _redact(self, text: str) -> str:
        # Error descriptions are Salesforce's text, but never let a secret ride along in them.
        for secret in (self._client_secret, self._refresh_token):
            if secret:
                text = text.replace(secret, "***")
        return text


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

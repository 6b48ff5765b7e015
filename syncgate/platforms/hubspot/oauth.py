"""HubSpot API credentials: a static token, or OAuth access tokens from a refresh token (§3.7)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import httpx

from syncgate.platforms.hubspot.client import PermanentError, TransientError, retry_after_seconds

if TYPE_CHECKING:
    from syncgate.config import Settings

__all__ = ["RENEW_MARGIN_SECONDS", "TOKEN_PATH", "HubSpotAuth"]

TOKEN_PATH: Final = "/oauth/v1/token"  # noqa: S105 - a path, not a secret
# Renew this long before `expires_in` runs out, so a token never expires in flight.
RENEW_MARGIN_SECONDS: Final = 60.0
_REDACTED: Final = "[redacted]"


@dataclass(frozen=True)
class _OAuthApp:
    http: httpx.AsyncClient
    token_url: str
    client_id: str
    client_secret: str


class HubSpotAuth:
    """Bearer tokens for HubSpot's API: static, or renewed through the refresh-token grant."""

    def __init__(
        self,
        *,
        access_token: str | None = None,
        app: _OAuthApp | None = None,
        refresh_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        oauth = app is not None and bool(refresh_token)
        if oauth == bool(access_token) or (app is None) != (refresh_token is None):
            raise ValueError("give either a static access token or an OAuth app and refresh token")
        self._app = app
        self._refresh_token = refresh_token
        self._token = access_token
        self._renew_at = math.inf if app is None else -math.inf
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    def static(cls, access_token: str) -> HubSpotAuth:
        """Auth with a token that never expires by itself (private app, static auth)."""
        return cls(access_token=access_token)

    @classmethod
    def refresh_flow(
        cls,
        http: httpx.AsyncClient,
        *,
        api_base: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> HubSpotAuth:
        """Auth that trades the refresh token for 30-minute access tokens at /oauth/v1/token."""
        app = _OAuthApp(http, api_base.rstrip("/") + TOKEN_PATH, client_id, client_secret)
        return cls(app=app, refresh_token=refresh_token, clock=clock)

    @staticmethod
    def is_configured(settings: Settings) -> bool:
        """Whether the refresh flow or a static token is configured."""
        refresh_flow = (
            settings.hubspot_client_id
            and settings.hubspot_client_secret
            and settings.hubspot_refresh_token
        )
        return bool(refresh_flow or settings.hubspot_access_token)

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> HubSpotAuth | None:
        """The refresh flow when fully configured, else the static token, else None."""
        client_id = settings.hubspot_client_id
        secret = settings.hubspot_client_secret
        refresh = settings.hubspot_refresh_token
        if client_id and secret and refresh:
            # Preferred over a static token: it renews itself instead of dying after 30 minutes.
            return cls.refresh_flow(
                http,
                api_base=str(settings.hubspot_api_base),
                client_id=client_id,
                client_secret=secret,
                refresh_token=refresh,
            )
        if settings.hubspot_access_token:
            return cls.static(settings.hubspot_access_token)
        return None

    @property
    def renewable(self) -> bool:
        """True in OAuth mode, where a rejected token can be replaced."""
        return self._app is not None

    @property
    def refresh_token(self) -> str | None:
        """The current refresh token (HubSpot may rotate it on renewal)."""
        return self._refresh_token

    async def token(self) -> str:
        """A usable access token, fetched or renewed first when it is missing or about to expire."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def renew(self, stale_token: str) -> str:
        """Replace a rejected token; concurrent callers holding the same one share one renewal."""
        if self._app is None:
            raise PermanentError("HubSpot rejected the static access token", outage=True)
        async with self._lock:
            if self._token is not None and self._token != stale_token:
                return self._token
            await self._fetch()
            assert self._token is not None
            return self._token

    def redact(self, text: str) -> str:
        """`text` with every credential this object knows replaced by a marker."""
        secret_key = self._app.client_secret if self._app else None
        for secret in (self._token, self._refresh_token, secret_key):
            if secret:
                text = text.replace(secret, _REDACTED)
        return text

    async def _fetch(self) -> None:
        app, refresh_token = self._app, self._refresh_token
        assert app is not None and refresh_token is not None
        form = {
            "grant_type": "refresh_token",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "refresh_token": refresh_token,
        }
        try:
            response = await app.http.post(app.token_url, data=form)
        except httpx.TransportError as failure:
            raise TransientError(
                f"HubSpot OAuth unreachable: {type(failure).__name__}", outage=True
            ) from None
        body = _json(response)
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(
                f"HubSpot OAuth endpoint answered {status}",
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                outage=True,
            )
        if status != 200:
            kind = body.get("error") or body.get("status") or str(status)
            message = body.get("error_description") or body.get("message") or response.reason_phrase
            # Refused credentials (a revoked app, a bad secret) stop every call.
            raise PermanentError(
                self.redact(f"HubSpot OAuth failed: {kind}: {message}"), outage=True
            )
        token, expires_in = body.get("access_token"), body.get("expires_in", 1800)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise TransientError("HubSpot OAuth answered without an access token", outage=True)
        self._token = token
        self._renew_at = self._clock() + expires_in - min(RENEW_MARGIN_SECONDS, expires_in / 2)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._refresh_token = rotated


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

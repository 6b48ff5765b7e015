"""Request dependencies: the transaction-owning session, settings and admin authentication."""

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from syncgate.config import Settings
from syncgate.errors import Unauthorized, error_responses
from syncgate.security.throttle import Credential, record_failure, refuse_if_throttled


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> AsyncEngine:
    """The app's engine, for routes that run Core statements on a connection of their own."""
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed before the response is sent, else rolled back."""
    async with request.app.state.session_factory() as session, session.begin():
        yield session


UNAUTHORIZED_MESSAGE = "a valid admin bearer token is required"
# What every admin route may answer besides its own errors.
ADMIN_RESPONSES = error_responses(401, 413, 429)
_bearer = HTTPBearer(auto_error=False, description="The admin token (SYNCGATE_ADMIN_TOKEN)")


def authenticate_admin(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Refuse a request without the admin token (401), or from a client that failed too often
    (429, without looking at its token)."""
    refuse_if_throttled(request, Credential.ADMIN)
    expected: str = request.app.state.admin_token
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        record_failure(request, Credential.ADMIN, "missing or wrong admin token")
        raise Unauthorized(UNAUTHORIZED_MESSAGE)


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    authenticate_admin(request, credentials)


async def authenticate_admin_request(request: Request) -> None:
    """`require_admin` for code that runs outside the dependency chain."""
    authenticate_admin(request, await _bearer(request))


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function" makes FastAPI run the commit before sending the response, so a failed
# commit can never be acknowledged as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
AdminDep = Depends(require_admin)

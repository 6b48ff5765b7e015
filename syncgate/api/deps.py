"""Request dependencies: the transaction-owning session, settings and admin authentication."""

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from syncgate.config import Settings
from syncgate.errors import Unauthorized, error_responses


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
ADMIN_RESPONSES = error_responses(401, 413)
_bearer = HTTPBearer(auto_error=False, description="The admin token (SYNCGATE_ADMIN_TOKEN)")


def is_admin(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    expected: str = request.app.state.admin_token
    given = credentials.credentials if credentials else ""
    return hmac.compare_digest(given.encode(), expected.encode())


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    if not is_admin(request, credentials):
        raise Unauthorized(UNAUTHORIZED_MESSAGE)


async def has_admin_token(request: Request) -> bool:
    return is_admin(request, await _bearer(request))


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function" makes FastAPI run the commit before sending the response, so a failed
# commit can never be acknowledged as a success.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
AdminDep = Depends(require_admin)

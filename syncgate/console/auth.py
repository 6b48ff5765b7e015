"""Console sign-in: signed cookies keyed from the admin token, sign-outs stored, CSRF checks.

Every replica derives the same keys from the admin token, so a session cookie issued by one is
valid on all of them, and changing the token signs everyone out. The cookie holds only an expiry
and a random nonce, signed with HMAC-SHA256. Signing out records the cookie's digest in the
shared database until the cookie expires, so a copy of it is refused by every replica. The CSRF
token of a session is an HMAC of its cookie value, so it needs no storage and changes with every
sign-in.
"""

import base64
import hashlib
import hmac
import posixpath
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from syncgate.api.deps import SessionDep
from syncgate.console.models import ConsoleSignOut
from syncgate.db import insert_ignoring_conflicts
from syncgate.models import utc_now

SESSION_COOKIE = "syncgate_console"
LOGIN_COOKIE = "syncgate_console_login"
FLASH_COOKIE = "syncgate_console_flash"
COOKIE_PATH = "/console"
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600
FLASH_SECONDS = 60
CSRF_FIELD = "csrf"
SIGN_IN_PATH = "/console/sign-in"
HOME_PATH = "/console"
_ENCODED_DOT = re.compile("%2e", re.IGNORECASE)
# Form limits: the mapping table is the largest form (five fields per row).
MAX_FORM_FIELDS = 5000


class SignInRequired(Exception):
    """No valid session: the console answers with a redirect to the sign-in page."""

    def __init__(self, next_path: str, expired: bool = False) -> None:
        super().__init__(next_path)
        self.next_path = next_path
        self.expired = expired


class CsrfRejected(Exception):
    """A POST without the session's CSRF token, or from another site."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _key(admin_token: str, purpose: str) -> bytes:
    return hmac.new(
        admin_token.encode(), f"syncgate-console/{purpose}".encode(), hashlib.sha256
    ).digest()


def _mac(admin_token: str, purpose: str, payload: str) -> str:
    return _b64(hmac.new(_key(admin_token, purpose), payload.encode(), hashlib.sha256).digest())


def sign(admin_token: str, purpose: str, payload: str) -> str:
    """`payload.signature`; the payload must not need escaping in a cookie."""
    return f"{payload}.{_mac(admin_token, purpose, payload)}"


def unsign(admin_token: str, purpose: str, value: str | None) -> str | None:
    """The payload of a value made by `sign` with the same token and purpose, else None."""
    if not value:
        return None
    payload, _, signature = value.rpartition(".")
    if not payload or not hmac.compare_digest(
        signature.encode(), _mac(admin_token, purpose, payload).encode()
    ):
        return None
    return payload


def tokens_equal(given: str, expected: str) -> bool:
    """Constant time, and the length of the expected token does not leak either."""
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


@dataclass(frozen=True)
class Ticket:
    """A verified, unexpired signed cookie (a session, or the pre-session of the sign-in form)."""

    value: str
    expires: int
    csrf: str


def issue(admin_token: str, kind: str, seconds: int, now: float | None = None) -> Ticket:
    expires = int(now if now is not None else time.time()) + seconds
    value = sign(admin_token, kind, f"{kind}1.{expires}.{secrets.token_urlsafe(16)}")
    return Ticket(value, expires, csrf_token(admin_token, value))


def verify(
    admin_token: str, kind: str, value: str | None, now: float | None = None
) -> Ticket | None:
    payload = unsign(admin_token, kind, value)
    if payload is None or value is None:
        return None
    version, _, rest = payload.partition(".")
    expires_text, _, nonce = rest.partition(".")
    if version != f"{kind}1" or not nonce or not expires_text.isdigit():
        return None
    expires = int(expires_text)
    if expires <= (now if now is not None else time.time()):
        return None
    return Ticket(value, expires, csrf_token(admin_token, value))


def csrf_token(admin_token: str, cookie_value: str) -> str:
    return _mac(admin_token, "csrf", cookie_value)


def admin_token(request: Request) -> str:
    token: str = request.app.state.admin_token
    return token


def is_https(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if forwarded == "https":
        return True
    public_url = request.app.state.settings.public_url
    return public_url is not None and str(public_url).startswith("https://")


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=is_https(request)
    )


def _digest(ticket: Ticket) -> str:
    return hashlib.sha256(ticket.value.encode()).hexdigest()


async def sign_out(db: AsyncSession, ticket: Ticket) -> None:
    """End a session on every replica; sign-outs whose cookies expired anyway are dropped."""
    await db.execute(delete(ConsoleSignOut).where(ConsoleSignOut.expires_at < utc_now()))
    row = {
        "session_digest": _digest(ticket),
        "expires_at": datetime.fromtimestamp(ticket.expires, UTC),
    }
    await db.execute(insert_ignoring_conflicts(db, ConsoleSignOut.__table__, [row]))


async def current_session(request: Request, db: AsyncSession | None = None) -> Ticket | None:
    """The request's signed-in session: a valid cookie that was not signed out.

    Looked up once per request, in `db` or else in a short transaction of its own.
    """
    if hasattr(request.state, "console_session"):
        known: Ticket | None = request.state.console_session
        return known
    ticket = verify(admin_token(request), "session", request.cookies.get(SESSION_COOKIE))
    if ticket is not None:
        if db is None:
            async with request.app.state.session_factory() as own, own.begin():
                signed_out = await _is_signed_out(own, ticket)
        else:
            signed_out = await _is_signed_out(db, ticket)
        if signed_out:
            ticket = None
    request.state.console_session = ticket
    return ticket


async def _is_signed_out(db: AsyncSession, ticket: Ticket) -> bool:
    found = await db.scalar(
        select(ConsoleSignOut.session_digest).where(
            ConsoleSignOut.session_digest == _digest(ticket)
        )
    )
    return found is not None


def _requested_path(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


async def require_session(request: Request, db: SessionDep) -> Ticket:
    session = await current_session(request, db)
    if session is None:
        expired = SESSION_COOKIE in request.cookies
        target = _requested_path(request) if request.method == "GET" else HOME_PATH
        raise SignInRequired(target, expired=expired)
    return session


def safe_next(value: str | None) -> str:
    """A console path to go to after signing in; anything else (another site) is refused."""
    if not value:
        return HOME_PATH
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value or any(ord(char) < 0x20 for char in value):
        return HOME_PATH
    # The browser resolves dot segments, percent-encoded ones too, before it asks for the path:
    # check the path it will ask for (`/console/../x` is `/x`).
    path = posixpath.normpath(_ENCODED_DOT.sub(".", parts.path))
    if not (path == HOME_PATH or path.startswith(HOME_PATH + "/")) or path.startswith(SIGN_IN_PATH):
        return HOME_PATH
    return urlunsplit(("", "", path, parts.query, parts.fragment))


def same_origin(request: Request) -> bool:
    """False for a request a browser says came from another site (Sec-Fetch-Site, Origin)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc.lower()
    if not netloc:
        return False  # "null" and other opaque origins
    allowed = {request.headers.get("host", "").lower(), request.url.netloc.lower()}
    public_url = request.app.state.settings.public_url
    if public_url is not None:
        allowed.add(urlsplit(str(public_url)).netloc.lower())
    return netloc in allowed


async def checked_form(request: Request, expected_csrf: str) -> FormData:
    """The posted form, after the origin and CSRF checks (constant-time comparison)."""
    if not same_origin(request):
        raise CsrfRejected("cross-site request")
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not hmac.compare_digest(
        given.encode(), expected_csrf.encode()
    ):
        raise CsrfRejected("missing or wrong CSRF token")
    return form


@dataclass(frozen=True)
class Posted:
    """A POST from a signed-in operator whose CSRF token and origin were checked."""

    session: Ticket
    form: FormData

    def text(self, name: str, default: str = "") -> str:
        value = self.form.get(name)
        return value if isinstance(value, str) else default

    def texts(self, name: str) -> list[str]:
        return [value for value in self.form.getlist(name) if isinstance(value, str)]


async def posted_form(request: Request, db: SessionDep) -> Posted:
    session = await require_session(request, db)
    return Posted(session, await checked_form(request, session.csrf))


SessionTicket = Annotated[Ticket, Depends(require_session)]
PostedForm = Annotated[Posted, Depends(posted_form)]

"""Rendering for the console: templates, flash messages, static files and the route class."""

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse, Response

from syncgate.api.deps import SessionDep
from syncgate.connections.status import format_utc
from syncgate.console import auth
from syncgate.console.builder import Builder, Group, Row
from syncgate.errors import AppError

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript"}


@functools.cache
def static_version(name: str) -> str:
    """A content hash for cache-busting URLs (read once, on first use, not at import)."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


SECURITY_HEADERS = {
    # No inline script or style anywhere: everything comes from /console/static.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

NAV = (
    ("sync", "/console", "Limit what syncs"),
    ("segments", "/console/segments", "Segments"),
    ("health", "/console/health", "Sync health"),
    ("contacts", "/console/contacts", "Contact lookup"),
    ("settings", "/console/settings", "Mappings & settings"),
)


def static_url(name: str) -> str:
    return f"/console/static/{name}?v={static_version(name)}"


def format_time(moment: datetime | None) -> str:
    return "—" if moment is None else format_utc(moment)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def matching(count: int) -> str:
    return "1 contact matches" if count == 1 else f"{count} contacts match"


def platform_name(target: str) -> str:
    return {"hubspot": "HubSpot", "salesforce": "Salesforce"}.get(target, target)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural_form or singular + 's'}"


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(
    static_url=static_url,
    nav=NAV,
    empty_builder=Builder(),
    empty_group=Group(),
    empty_row=Row(),
)
templates.filters.update(
    time=format_time,
    seconds=format_seconds,
    plural=plural,
    platform=platform_name,
    matching=matching,
)


@dataclass(frozen=True)
class Flash:
    message: str
    kind: str = "success"  # success | error | info


def _encode_flash(flash: Flash) -> str:
    data = json.dumps({"m": flash.message, "k": flash.kind}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode_flash(payload: str) -> Flash | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return Flash(str(data["m"]), str(data["k"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


def redirect(
    request: Request, location: str, message: str | None = None, kind: str = "success"
) -> RedirectResponse:
    """Post/Redirect/Get: 303 to `location`, carrying a flash message in a signed cookie."""
    response = RedirectResponse(location, status_code=303)
    if message is not None:
        value = auth.sign(auth.admin_token(request), "flash", _encode_flash(Flash(message, kind)))
        auth.set_cookie(response, request, auth.FLASH_COOKIE, value, auth.FLASH_SECONDS)
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    session: auth.Ticket | None,
    status: int = 200,
    page: str = "",
    flash: Flash | None = None,
) -> HTMLResponse:
    """A page; the flash message of a preceding redirect is shown once and then cleared."""
    cookie = request.cookies.get(auth.FLASH_COOKIE)
    if flash is None and cookie:
        payload = auth.unsign(auth.admin_token(request), "flash", cookie)
        flash = _decode_flash(payload) if payload else None
    html = templates.get_template(template).render(
        request_path=request.url.path,
        page=page,
        session=session,
        csrf=session.csrf if session else "",
        flash=flash,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if cookie:
        auth.clear_cookie(response, request, auth.FLASH_COOKIE)
    return response


def error_page(
    request: Request, status: int, title: str, message: str, session: auth.Ticket | None
) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": title, "message": message},
        session=session,
        status=status,
    )


def validation_messages(error: ValidationError, labels: dict[str, str] | None = None) -> list[str]:
    """Pydantic's errors as short sentences naming the field (the rules stay the schema's)."""
    labels = labels or {}
    messages = []
    for item in error.errors():
        where = [labels.get(str(part), str(part)) for part in item["loc"]]
        text = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "string_pattern_mismatch":
            text = "use letters, digits and underscores, starting with a letter"
        if item["type"] == "literal_error":
            text = text.replace("Input should be", "choose")
        messages.append(f"{' '.join(where)}: {text}" if where else text)
    return messages


async def console_db(request: Request, session: SessionDep) -> AsyncSession:
    """The request's transaction (the admin API's own dependency), remembered so that an error
    rendered as a page rolls it back instead of letting it commit."""
    request.state.console_db = session
    return session


Db = Annotated[AsyncSession, Depends(console_db)]


async def _rollback(request: Request) -> None:
    session: AsyncSession | None = getattr(request.state, "console_db", None)
    if session is not None and session.in_transaction():
        await session.rollback()


class ConsoleRoute(APIRoute):
    """Console routes answer in HTML: a missing session redirects to the sign-in page, and an
    error the service layer raises becomes a page (after rolling the transaction back)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            response: Response
            try:
                response = await handler(request)
            except auth.SignInRequired as error:
                query = {"next": error.next_path}
                if error.expired:
                    query["expired"] = "1"
                response = RedirectResponse(
                    f"{auth.SIGN_IN_PATH}?{urlencode(query)}", status_code=303
                )
                if error.expired:
                    auth.clear_cookie(response, request, auth.SESSION_COOKIE)
            except auth.CsrfRejected:
                await _rollback(request)
                response = error_page(
                    request,
                    403,
                    "Form refused",
                    "This form was not sent from this console page, or the page is older than "
                    "your current sign-in. Go back, reload the page and try again.",
                    await auth.current_session(request),
                )
            except RequestValidationError:
                await _rollback(request)
                response = error_page(
                    request,
                    404,
                    "Not found",
                    "There is no such page.",
                    await auth.current_session(request),
                )
            except AppError as error:
                await _rollback(request)
                response = error_page(
                    request,
                    error.status_code,
                    error.code.replace("_", " ").capitalize(),
                    error.message,
                    await auth.current_session(request),
                )
                response.headers.update(error.headers or {})
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return console_handler

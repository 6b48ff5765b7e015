"""Sign-in and sign-out, and the console's static files."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, Response

from syncgate.api.deps import SessionDep
from syncgate.console import auth
from syncgate.console.web import (
    STATIC_DIR,
    STATIC_FILES,
    ConsoleRoute,
    Flash,
    error_page,
    redirect,
    render,
    static_version,
)
from syncgate.security.throttle import Credential, record_failure, refuse_if_throttled

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

REFUSED_MESSAGE = (
    "That is not the admin token. Use the value of SYNCGATE_ADMIN_TOKEN, or the token the "
    "service logged at start-up when none is configured."
)
FORM_EXPIRED = "The sign-in form had expired. Please enter the token again."


def _sign_in_page(
    request: Request, next_path: str, flash: Flash | None, status: int = 200
) -> Response:
    # A pre-session cookie gives the sign-in form its own CSRF token (no login CSRF).
    ticket = auth.issue(auth.admin_token(request), "login", auth.LOGIN_SECONDS)
    response = render(
        request,
        "sign_in.html",
        {"title": "Sign in", "next": next_path, "login_csrf": ticket.csrf},
        session=None,
        status=status,
        flash=flash,
        page="sign-in",
    )
    auth.set_cookie(response, request, auth.LOGIN_COOKIE, ticket.value, auth.LOGIN_SECONDS)
    return response


@router.get("/sign-in")
async def sign_in_form(
    request: Request,
    next: Annotated[str | None, Query()] = None,
    expired: Annotated[str | None, Query()] = None,
) -> Response:
    target = auth.safe_next(next)
    if await auth.current_session(request) is not None:
        return redirect(request, target)
    flash = Flash("Your session has ended. Please sign in again.", "info") if expired else None
    return _sign_in_page(request, target, flash)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    refuse_if_throttled(request, Credential.ADMIN)
    token = auth.admin_token(request)
    login = auth.verify(token, "login", request.cookies.get(auth.LOGIN_COOKIE))
    if login is None:
        if not auth.same_origin(request):
            raise auth.CsrfRejected("cross-site request")
        form = await request.form(max_files=0, max_fields=10)
        next_value = form.get("next")
        target = auth.safe_next(next_value if isinstance(next_value, str) else None)
        return _sign_in_page(request, target, Flash(FORM_EXPIRED, "error"), status=400)
    form = await auth.checked_form(request, login.csrf)
    next_value = form.get("next")
    target = auth.safe_next(next_value if isinstance(next_value, str) else None)
    given = form.get("token")
    if not isinstance(given, str) or not auth.tokens_equal(given.strip(), token):
        record_failure(request, Credential.ADMIN, "wrong admin token at console sign-in")
        return _sign_in_page(request, target, Flash(REFUSED_MESSAGE, "error"), status=401)
    session = auth.issue(token, "session", auth.SESSION_SECONDS)
    response = redirect(request, target, "Signed in.")
    auth.set_cookie(response, request, auth.SESSION_COOKIE, session.value, auth.SESSION_SECONDS)
    auth.clear_cookie(response, request, auth.LOGIN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, posted: auth.PostedForm, db: SessionDep) -> Response:
    await auth.sign_out(db, posted.session)
    response = redirect(request, auth.SIGN_IN_PATH, "Signed out.", "info")
    auth.clear_cookie(response, request, auth.SESSION_COOKIE)
    return response


@router.get("/static/{name}")
async def static_file(request: Request, name: str, v: str | None = None) -> Response:
    if name not in STATIC_FILES:
        return error_page(request, 404, "Not found", "There is no such file.", None)
    response = FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name])
    # Versioned URLs never change content; unversioned ones revalidate.
    cache = "public, max-age=31536000, immutable" if v == static_version(name) else "no-cache"
    response.headers["Cache-Control"] = cache
    return response


fallback = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@fallback.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    if not rest:
        return redirect(request, auth.HOME_PATH)
    return error_page(
        request, 404, "Not found", "There is no such page.", await auth.current_session(request)
    )

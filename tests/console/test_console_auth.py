"""Console sign-in: signed session cookies, CSRF, cross-site refusal, redirects and headers."""

import re
import time
from http.cookies import SimpleCookie

import httpx
import pytest
from console.helpers import TOKEN, Console, csrf_of
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from syncgate.config import Settings
from syncgate.console import auth
from syncgate.console.models import ConsoleSignOut
from syncgate.main import create_app


def cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            morsel = jar[name]
            attributes = {key: str(morsel[key]) for key in morsel if morsel[key]}
            flags = header.lower()
            attributes["httponly"] = str("httponly" in flags)
            attributes["secure"] = str("; secure" in flags)
            attributes["value"] = morsel.value
            return attributes
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


async def test_pages_redirect_to_sign_in_and_back_after_it(anon: Console) -> None:
    response = await anon.get("/console/segments?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fsegments%3Fx%3D1"
    for path in ("/console", "/console/health", "/console/settings", "/console/contacts"):
        assert (await anon.get(path)).headers["location"].startswith("/console/sign-in")

    page = await anon.get("/console/sign-in?next=/console/segments?x=1")
    assert page.status_code == 200
    assert '<label for="token">Admin token</label>' in page.text
    assert 'type="password"' in page.text
    response = await anon.post(
        "/console/sign-in", {"token": TOKEN, "next": "/console/segments?x=1"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/segments?x=1"
    assert (await anon.get("/console/segments?x=1")).status_code == 200


async def test_session_cookie_flags(anon: Console) -> None:
    response = await anon.sign_in()
    session = cookie_attributes(response, auth.SESSION_COOKIE)
    assert session["httponly"] == "True"
    assert session["samesite"].lower() == "strict"
    assert session["path"] == "/console"
    assert session["max-age"] == str(12 * 3600)
    assert session["secure"] == "False"  # plain http: the browser would drop a Secure cookie
    # Only an expiry and a nonce, signed: nothing secret, nothing about the token.
    assert TOKEN not in session["value"]
    assert re.fullmatch(r"session1\.\d+\.[\w-]+\.[\w-]+", session["value"])


async def test_cookies_are_secure_over_https(console_settings: Settings) -> None:
    app = create_app(console_settings, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://testserver"
        ) as http,
    ):
        client = Console(http, TOKEN)
        page = await client.get("/console/sign-in")
        assert cookie_attributes(page, auth.LOGIN_COOKIE)["secure"] == "True"
        response = await client.sign_in()
        assert cookie_attributes(response, auth.SESSION_COOKIE)["secure"] == "True"


async def test_forwarded_https_also_makes_cookies_secure(anon: Console) -> None:
    page = await anon.get("/console/sign-in", headers={"X-Forwarded-Proto": "https"})
    assert cookie_attributes(page, auth.LOGIN_COOKIE)["secure"] == "True"


async def test_wrong_token_shows_the_form_again_without_a_hint(anon: Console) -> None:
    for wrong in ("nope", TOKEN[:-1], TOKEN + "x", "", " " * len(TOKEN)):
        response = await anon.sign_in(token=wrong)
        assert response.status_code == 401, wrong
        assert "That is not the admin token" in response.text
        cookies = response.headers.get_list("set-cookie")
        assert not [c for c in cookies if c.startswith(auth.SESSION_COOKIE + "=")]
        assert TOKEN not in response.text
        assert "characters" not in response.text  # no hint about the token's length
        if wrong.strip():
            assert wrong not in response.text  # nor an echo of what was typed
    assert (await anon.get("/console")).status_code == 303


async def test_sign_in_needs_its_own_csrf_token(anon: Console) -> None:
    await anon.get("/console/sign-in")
    response = await anon.http.post("/console/sign-in", data={"token": TOKEN})
    assert response.status_code == 403
    response = await anon.http.post("/console/sign-in", data={"token": TOKEN, "csrf": "x" * 43})
    assert response.status_code == 403
    assert auth.SESSION_COOKIE not in anon.http.cookies


async def test_sign_in_form_without_its_cookie_is_shown_again(anon: Console) -> None:
    page = await anon.get("/console/sign-in")
    anon.http.cookies.clear()
    response = await anon.http.post(
        "/console/sign-in", data={"token": TOKEN, "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 400
    assert "The sign-in form had expired" in response.text


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/console",
        "//evil.example/console",
        "/\\evil.example",
        "/api/segments",
        "/console-evil",
        "/console/sign-in",
        "javascript:alert(1)",
        "/console/../../x",
        "/console/..",
        "/console/%2e%2e/api/segments",
        "/console/.%2E/x",
        "/console/./sign-in",
    ],
)
async def test_sign_in_never_redirects_off_the_console(anon: Console, next_path: str) -> None:
    response = await anon.sign_in(next_path=next_path)
    assert response.headers["location"] == "/console"


@pytest.mark.parametrize(
    ("next_path", "target"),
    [
        ("/console/./segments?x=1", "/console/segments?x=1"),
        ("/console/settings/../health", "/console/health"),
        ("/console/segments/", "/console/segments"),
    ],
)
async def test_the_next_path_is_normalised(anon: Console, next_path: str, target: str) -> None:
    page = await anon.get("/console/sign-in", params={"next": next_path})
    assert f'value="{target}"' in page.text
    response = await anon.sign_in(next_path=next_path)
    assert response.headers["location"] == target


async def test_tampered_expired_or_foreign_sessions_are_refused(anon: Console) -> None:
    response = await anon.sign_in()
    value = cookie_attributes(response, auth.SESSION_COOKIE)["value"]
    payload, _, signature = value.rpartition(".")
    version, expires, nonce = payload.split(".")
    forged = {
        "tampered expiry": f"{version}.{int(expires) + 999}.{nonce}.{signature}",
        "tampered signature": f"{payload}.{signature[:-1]}{'B' if signature[-1] == 'A' else 'A'}",
        "expired": auth.issue(TOKEN, "session", 60, now=time.time() - 3600).value,
        "signed with another token": auth.issue("another-token", "session", 3600).value,
        "a sign-in form cookie": auth.issue(TOKEN, "login", 3600).value,
        "garbage": "garbage",
    }
    for name, cookie in forged.items():
        anon.http.cookies.clear()
        anon.http.cookies.set(auth.SESSION_COOKIE, cookie)
        response = await anon.http.get("/console")
        assert response.status_code == 303, name
        assert response.headers["location"].startswith("/console/sign-in?"), name
        assert "expired=1" in response.headers["location"], name
    page = await anon.http.get("/console/sign-in?expired=1")
    assert "Your session has ended" in page.text


async def console_status_on(settings: Settings, cookie: str) -> int:
    """GET /console with the session `cookie` on another app built from `settings` (a replica)."""
    app = create_app(settings, run_worker=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        http.cookies.set(auth.SESSION_COOKIE, cookie)
        return (await http.get("/console")).status_code


async def test_changing_the_admin_token_signs_everyone_out(
    console: Console, console_settings: Settings
) -> None:
    cookie = console.http.cookies.get(auth.SESSION_COOKIE, path="/console")
    assert cookie
    rotated = console_settings.model_copy(
        update={"admin_token": "rotated-admin-token-of-32-characters-or-more"}
    )
    assert await console_status_on(rotated, cookie) == 303


async def test_a_session_works_on_every_replica(
    console: Console, console_settings: Settings
) -> None:
    cookie = console.http.cookies.get(auth.SESSION_COOKIE, path="/console")
    assert cookie
    assert await console_status_on(console_settings, cookie) == 200


async def test_posts_need_the_sessions_csrf_token(console: Console) -> None:
    data = {"segment_id": ""}
    assert (await console.http.post("/console/inclusion-segment", data=data)).status_code == 403
    wrong = {**data, "csrf": console.csrf[:-1] + ("A" if console.csrf[-1] != "A" else "B")}
    assert (await console.http.post("/console/inclusion-segment", data=wrong)).status_code == 403
    another_session = auth.csrf_token(TOKEN, auth.issue(TOKEN, "session", 3600).value)
    other = {**data, "csrf": another_session}
    assert (await console.http.post("/console/inclusion-segment", data=other)).status_code == 403
    refused = await console.http.post("/console/inclusion-segment", data=other)
    assert "Form refused" in refused.text
    assert (await console.post("/console/inclusion-segment", data)).status_code == 303


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://testserver.evil.example"},
    ],
)
async def test_cross_site_posts_are_refused(console: Console, headers: dict[str, str]) -> None:
    response = await console.post("/console/inclusion-segment", {"segment_id": ""}, headers=headers)
    assert response.status_code == 403
    await console.get("/console/sign-in")
    response = await console.http.post(
        "/console/sign-in",
        data={"token": TOKEN, "csrf": console.csrf},
        headers=headers,
    )
    assert response.status_code == 403


async def test_same_origin_posts_are_accepted(console: Console) -> None:
    headers = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = await console.post("/console/inclusion-segment", {"segment_id": ""}, headers=headers)
    assert response.status_code == 303


async def test_a_post_without_a_session_goes_to_sign_in(anon: Console) -> None:
    response = await anon.http.post("/console/inclusion-segment", data={"segment_id": ""})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in?next=%2Fconsole"


async def test_sign_out_clears_the_session(console: Console) -> None:
    response = await console.post("/console/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"
    cleared = cookie_attributes(response, auth.SESSION_COOKIE)
    assert cleared["max-age"] == "0" and cleared["path"] == "/console"
    assert (await console.get("/console")).status_code == 303
    page = await console.get("/console/sign-in")
    assert "Signed out." in page.text


async def test_a_signed_out_cookie_is_refused_on_every_replica(
    console: Console, console_settings: Settings
) -> None:
    cookie = console.http.cookies.get(auth.SESSION_COOKIE, path="/console")
    assert cookie
    assert (await console.post("/console/sign-out")).status_code == 303
    console.http.cookies.set(auth.SESSION_COOKIE, cookie)  # replayed by whoever copied it
    response = await console.http.get("/console")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in?")
    assert (await console.http.get("/console/sign-in")).status_code == 200  # no redirect loop
    assert await console_status_on(console_settings, cookie) == 303
    # Signing in again gives a new session that works.
    console.http.cookies.clear()
    assert (await console.sign_in()).status_code == 303
    assert (await console.get("/console")).status_code == 200


async def test_sign_outs_are_kept_only_until_their_cookies_expire(
    console: Console, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    expired = auth.issue(TOKEN, "session", 60, now=time.time() - 3600)
    async with session_factory() as db, db.begin():
        await auth.sign_out(db, expired)
    assert (await console.post("/console/sign-out")).status_code == 303
    async with session_factory() as db:
        kept = (await db.scalars(select(ConsoleSignOut.expires_at))).all()
    assert len(kept) == 1 and kept[0].timestamp() > time.time()


async def test_sign_out_needs_csrf(console: Console) -> None:
    assert (await console.http.post("/console/sign-out")).status_code == 403
    assert (await console.get("/console")).status_code == 200


async def test_pages_carry_security_headers(console: Console) -> None:
    for path in ("/console", "/console/sign-in", "/console/no-such-page"):
        response = await console.get(path, follow_redirects=True)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


async def test_flash_messages_are_shown_once(console: Console) -> None:
    response = await console.post("/console/inclusion-segment", {"segment_id": ""})
    page = await console.follow(response)
    assert "every contact may sync" in page.text
    assert cookie_attributes(page, auth.FLASH_COOKIE)["max-age"] == "0"
    assert "every contact may sync. Nothing" not in (await console.get("/console")).text


async def test_a_forged_flash_cookie_is_ignored(console: Console) -> None:
    console.http.cookies.set(auth.FLASH_COOKIE, "eyJtIjoiaGkiLCJrIjoiZXJyb3IifQ.bad")
    page = await console.get("/console")
    assert "Problem:" not in page.text


async def test_static_files_and_unknown_pages(anon: Console) -> None:
    css = await anon.get("/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = await anon.get("/console/static/console.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert (await anon.get("/console/static/../main.py")).status_code == 404
    missing = await anon.get("/console/static/nope.js")
    assert missing.status_code == 404 and "There is no such file" in missing.text
    assert (await anon.get("/console/")).headers["location"] == "/console"


async def test_console_is_not_in_the_openapi_document(anon: Console) -> None:
    paths = (await anon.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/console")]


async def test_job_progress_needs_a_session(anon: Console) -> None:
    response = await anon.get("/console/jobs/1")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"

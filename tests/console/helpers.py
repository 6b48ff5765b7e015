"""Helpers of the console tests: a cookie-keeping client that posts each page's CSRF token."""

import re
from typing import Any

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# The admin token of the in-process console app (console/conftest.py).
TOKEN = "console-test-token-of-32-characters-or-more"


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


class Console:
    """A browser-like client of the console: cookies, and the CSRF token of the last page."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token
        self.csrf = ""

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.get(path, **kwargs)
        if CSRF.search(response.text):
            self.csrf = csrf_of(response.text)
        return response

    async def post(
        self, path: str, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        response = await self.http.post(path, data={"csrf": self.csrf, **(data or {})}, **kwargs)
        if CSRF.search(response.text):
            self.csrf = csrf_of(response.text)
        return response

    async def sign_in(self, token: str | None = None, next_path: str = "") -> httpx.Response:
        await self.get("/console/sign-in")
        response = await self.post(
            "/console/sign-in", {"token": self.token if token is None else token, "next": next_path}
        )
        if response.status_code == 303:
            await self.get("/console")  # the CSRF token of the new session
        return response

    async def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, response.text
        return await self.get(response.headers["location"])

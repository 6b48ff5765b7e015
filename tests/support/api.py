"""Assertions shared by the admin API tests (`support.api`)."""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

CONTACT_KEYS = {"id", "email", "hubspot_id", "salesforce_id", "salesforce_object", "properties"}
SEGMENT_KEYS = {"id", "name", "type", "filter", "status", "size", "created_at", "updated_at"}

Properties = Mapping[str, str | None]
Seed = Callable[..., Awaitable[int]]
SeedMany = Callable[[Sequence[Properties]], Awaitable[list[int]]]
CountRows = Callable[[Any], Awaitable[int]]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is one of the API's `{"code", "message"}` errors."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def assert_validation_error(response: httpx.Response) -> None:
    """The response is FastAPI's request validation body."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail

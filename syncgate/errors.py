"""Errors with a stable `code`, and the handlers that render them as JSON."""

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    """An error the API reports to its caller as `{"code", "message"}`."""

    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Conflict(AppError):
    status_code = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Unprocessable(AppError):
    status_code = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(AppError):
    status_code = 503
    code = "store_unavailable"


def error_body(code: str, message: str, **detail: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **detail}


class ErrorOut(BaseModel):
    """The body of every error the API answers itself (extra keys carry details)."""

    model_config = ConfigDict(extra="allow", title="Error")

    code: str
    message: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """FastAPI's body for a request that breaks the schema."""

    detail: list[ValidationIssue]


_ERROR_DESCRIPTIONS = {
    401: "no valid admin bearer token (`unauthorized`)",
    404: "no such resource (`not_found`)",
    409: "conflicts with the current state (see `code`)",
    413: "body larger than SYNCGATE_MAX_API_BODY_BYTES (`payload_too_large`)",
    429: "too many failed authentications from this address or overall"
    " (`too_many_failed_authentications`); retry after `Retry-After` seconds",
    # Raised by the route itself (e.g. `invalid_filter`) or by FastAPI's request validation.
    422: "the request breaks the schema or a rule named by `code`",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` documenting `{"code", "message"}` errors (for routes and routers)."""
    return {
        status: {
            "model": ErrorOut | ValidationErrorOut if status == 422 else ErrorOut,
            "description": _ERROR_DESCRIPTIONS[status],
        }
        for status in statuses
    }


def is_store_outage(error: Exception) -> bool:
    """True for errors that mean the database cannot be reached, not that a query is wrong."""
    if isinstance(error, OperationalError | PoolTimeoutError | ConnectionError | OSError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


async def _app_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else error.headers
    return JSONResponse(
        error_body(error.code, error.message, **error.detail),
        status_code=error.status_code,
        headers=headers,
    )


# FastAPI's 400 for a body it cannot even decode (not UTF-8, nested too deep), raised before
# any dependency runs. Such a body is malformed JSON like any other: 422, after the token check.
_UNREADABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.detail == _UNREADABLE_BODY:
        reason = type(error.__cause__).__name__ if error.__cause__ else "unreadable body"
        unreadable = {"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error"}
        invalid = RequestValidationError([{**unreadable, "input": {}, "ctx": {"error": reason}}])
        return await _validation_error(request, invalid)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        error.status_code, "http_error"
    )
    return JSONResponse(
        error_body(code, str(error.detail)), status_code=error.status_code, headers=error.headers
    )


async def _database_error(_: Request, error: Exception) -> JSONResponse:
    if is_store_outage(error):
        return JSONResponse(
            error_body("store_unavailable", "the database is unavailable; retry later"),
            status_code=503,
            headers={"Retry-After": "5"},
        )
    raise error


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # FastAPI parses a JSON body before it runs any dependency, so a malformed body would
    # otherwise be answered (422) before the admin token is checked.
    from syncgate.api.deps import authenticate_admin_request

    if request.url.path.startswith("/api/"):
        try:
            await authenticate_admin_request(request)
        except AppError as refused:
            return await _app_error(request, refused)
    return JSONResponse({"detail": _validation_details(error)}, status_code=422)


# FastAPI echoes each failing input; a large one is left out, so that a big body does not come
# back (the caller knows what it sent, and `loc` says where the problem is).
MAX_ECHOED_INPUT = 200


def _bytes_as_text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for issue in error.errors():
        # A body sent without a JSON content type is echoed as bytes, UTF-8 or not.
        detail = jsonable_encoder(issue, custom_encoder={bytes: _bytes_as_text})
        if "input" in detail and len(json.dumps(detail["input"])) > MAX_ECHOED_INPUT:
            del detail["input"]
        details.append(detail)
    return details


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeoutError, _database_error)

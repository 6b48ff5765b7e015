"""Cursor paging shared by list routes: the cursor is the last id seen, kept opaque."""

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Query

from syncgate.errors import AppError
from syncgate.sync.schemas import ROW_ID_MAX, ROW_ID_MIN

Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]


class InvalidCursor(AppError):
    status_code = 422
    code = "invalid_cursor"


def encode_cursor(last_id: int | None) -> str | None:
    if last_id is None:
        return None
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(
    after: Annotated[str | None, Query(description="cursor from `next`")] = None,
) -> int | None:
    if after is None or after == "":
        return None
    try:
        text = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
        prefix, _, value = text.partition(":")
        last_id = int(value)
        if prefix != "id" or not ROW_ID_MIN <= last_id <= ROW_ID_MAX:
            raise ValueError(text)
        return last_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(f"'after' is not a cursor returned by this API: {after!r}") from None


Cursor = Annotated[int | None, Depends(decode_cursor)]

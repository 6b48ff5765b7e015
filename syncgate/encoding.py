"""JSON encoding in C (orjson) for the hot paths: bulk-write parameters, JSON columns, platform
calls and log lines. What orjson refuses (integers past 64 bits, lone surrogates: both can
arrive in hostile webhook bodies) is written by the standard library instead, as before."""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # as orjson writes it
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_bytes(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, default=default or _iso).encode()


def to_json(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    return to_json_bytes(value, default).decode()

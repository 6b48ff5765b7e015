"""JSON encoding in C (orjson) for the hot paths: bulk-write parameters, JSON columns and
platform calls. What orjson refuses (integers past 64 bits, lone surrogates: both can arrive in
hostile webhook bodies) is written by the standard library instead, as before. Log lines keep
the standard library's spaced form."""

import json
from datetime import datetime
from typing import Any

import orjson


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()  # as orjson writes it
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value, default=_iso).encode()


def to_json(value: Any) -> str:
    return to_json_bytes(value).decode()

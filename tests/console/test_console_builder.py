"""The criteria builder shows a filter as rows only when its script would post the same filter."""

import re
from typing import Any

import pytest

from syncgate.console.builder import (
    COMPARISONS,
    LISTS,
    NO_VALUE,
    Builder,
    FilterTextError,
    builder_for,
    canonical,
    parse_filter_text,
)
from syncgate.sync.filters import parse_filter

NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def serialise(builder: Builder) -> Any:
    """What static/console.js posts for these rows (its serialise(), in Python)."""
    parts: list[Any] = []
    for group in builder.groups:
        conditions: list[dict[str, Any]] = []
        for row in group.rows:
            if not row.property.strip():
                continue
            condition: dict[str, Any] = {"property": row.property.strip(), "operator": row.operator}
            if row.operator not in NO_VALUE:
                text = row.value.strip()
                if row.operator in LISTS:
                    condition["value"] = [s.strip() for s in text.split(",") if s.strip()]
                elif row.operator in COMPARISONS and NUMBER.fullmatch(text):
                    condition["value"] = float(text) if "." in text else int(text)
                else:
                    condition["value"] = text
            conditions.append(condition)
        if conditions:
            parts.append(conditions[0] if len(conditions) == 1 else {group.combinator: conditions})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {builder.combinator: parts}


C1 = {"property": "lifecyclestage", "operator": "eq", "value": "customer"}
C2 = {"property": "country", "operator": "in", "value": ["DK", "SE"]}
C3 = {"property": "email", "operator": "is_known"}
C4 = {"property": "annualrevenue", "operator": "gte", "value": 1000000}
C5 = {"property": "createdate", "operator": "lt", "value": "2026-01-01"}
C6 = {"property": "score", "operator": "gt", "value": 2.5}

SHOWN_AS_ROWS = [
    C1,
    C3,
    C4,
    C5,
    C6,
    {"all": [C1, C2]},
    {"any": [C1, C2, C3]},
    {"any": [{"all": [C1, C2]}, C3]},
    {"all": [{"any": [C1, C2]}, {"any": [C3, C4]}]},
    {"any": [C5, {"all": [C1, C6]}]},
]
JSON_ONLY = [
    {"not": C1},
    {"all": [C1]},
    {"all": []},
    {"any": [{"all": [{"any": [C1, C2]}, C3]}, C4]},
    {"property": "x", "operator": "eq", "value": 5},
    {"property": "x", "operator": "eq", "value": True},
    {"property": "x", "operator": "eq", "value": " padded"},
    {"property": "x", "operator": "gt", "value": "10"},
    {"property": "x", "operator": "gt", "value": 1e21},
    {"property": "x", "operator": "in", "value": ["a,b"]},
    {"property": "x", "operator": "in", "value": []},
    {"property": "x", "operator": "is_known", "value": None},
    {"all": [C1, {"not": C2}]},
]


@pytest.mark.parametrize("raw", SHOWN_AS_ROWS, ids=canonical)
def test_rows_post_back_the_same_filter(raw: Any) -> None:
    parse_filter(raw)
    builder = builder_for(raw)
    assert builder is not None
    assert canonical(serialise(builder)) == canonical(raw)


@pytest.mark.parametrize("raw", JSON_ONLY, ids=canonical)
def test_other_filters_stay_json(raw: Any) -> None:
    assert builder_for(raw) is None


def test_a_new_segment_starts_with_one_empty_row() -> None:
    builder = builder_for(None)
    assert builder is not None and serialise(builder) is None
    assert [len(group.rows) for group in builder.groups] == [1]


def test_rows_show_lists_as_comma_separated_text() -> None:
    builder = builder_for({"any": [C2, {"all": [C1, C4]}]})
    assert builder is not None and builder.combinator == "any"
    assert [row.value for group in builder.groups for row in group.rows] == [
        "DK, SE",
        "customer",
        "1000000",
    ]


def test_filter_text_parsing() -> None:
    assert parse_filter_text("  ") is None
    assert parse_filter_text('{"property": "x", "operator": "is_known"}') == {
        "property": "x",
        "operator": "is_known",
    }
    with pytest.raises(FilterTextError, match="line 1, column 2"):
        parse_filter_text("{oops")
    with pytest.raises(FilterTextError, match="Infinity is not a JSON number"):
        parse_filter_text('{"value": Infinity}')

"""The criteria builder: which filters it can show as rows, and the filter JSON it posts.

The builder shows a filter as groups of condition rows: the groups joined by AND or OR, the rows
of each group joined by AND or OR. Its script serialises the rows to the contract's filter JSON;
anything else the grammar allows (`not`, deeper nesting, typed operands the rows cannot show)
stays editable as JSON. The server never interprets the rows: it takes the JSON the form posts
and validates it with the service layer, exactly as `POST /api/segments` does.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from syncgate.sync.filters import Operator

OPERATORS: tuple[tuple[str, str], ...] = (
    (Operator.EQ, "is"),
    (Operator.NEQ, "is not"),
    (Operator.IN, "is any of"),
    (Operator.NOT_IN, "is none of"),
    (Operator.CONTAINS, "contains"),
    (Operator.NOT_CONTAINS, "does not contain"),
    (Operator.STARTS_WITH, "starts with"),
    (Operator.ENDS_WITH, "ends with"),
    (Operator.IS_KNOWN, "is known"),
    (Operator.IS_UNKNOWN, "is unknown"),
    (Operator.GT, "is greater than"),
    (Operator.GTE, "is at least"),
    (Operator.LT, "is less than"),
    (Operator.LTE, "is at most"),
)
NO_VALUE = {Operator.IS_KNOWN, Operator.IS_UNKNOWN}
LISTS = {Operator.IN, Operator.NOT_IN}
COMPARISONS = {Operator.GT, Operator.GTE, Operator.LT, Operator.LTE}
COMBINATORS = ("all", "any")
_OPERATOR_NAMES = {op.value for op in Operator}
# What the script turns into a JSON number for gt/gte/lt/lte (anything else stays text).
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


@dataclass
class Row:
    property: str = ""
    operator: str = Operator.EQ.value
    value: str = ""


@dataclass
class Group:
    combinator: str = "all"
    rows: list[Row] = field(default_factory=lambda: [Row()])


@dataclass
class Builder:
    combinator: str = "all"
    groups: list[Group] = field(default_factory=lambda: [Group()])


class FilterTextError(ValueError):
    """The posted filter text is not JSON."""


def _reject_constant(name: str) -> Any:
    raise FilterTextError(f"filter: {name} is not a JSON number")


def parse_filter_text(text: str) -> Any:
    """The posted filter JSON (None when blank); the grammar is the service layer's to check."""
    if not text.strip():
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise FilterTextError(
            f"filter: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None


def canonical(raw: Any) -> str:
    """One spelling per filter, to tell whether the reviewed criteria are the ones saved."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pretty(raw: Any) -> str:
    return "" if raw is None else json.dumps(raw, indent=2, ensure_ascii=False)


def _row(node: Any) -> Row | None:
    """A condition the builder's script would serialise back to exactly this JSON."""
    if not isinstance(node, dict) or not {"property", "operator"} <= node.keys():
        return None
    name, op, value = node["property"], node["operator"], node.get("value")
    if not isinstance(name, str) or not name or name != name.strip() or op not in _OPERATOR_NAMES:
        return None
    operator = Operator(op)
    if operator in NO_VALUE:
        return Row(name, op) if set(node) == {"property", "operator"} else None
    if set(node) != {"property", "operator", "value"}:
        return None
    if operator in LISTS:
        items = value if isinstance(value, list) else None
        if not items or not all(
            isinstance(item, str) and item and item == item.strip() and "," not in item
            for item in items
        ):
            return None
        return Row(name, op, ", ".join(items))
    if operator in COMPARISONS and isinstance(value, int | float) and not isinstance(value, bool):
        text = json.dumps(value)
        return Row(name, op, text) if _NUMBER.fullmatch(text) else None
    if not isinstance(value, str) or value != value.strip():
        return None
    if operator in COMPARISONS and _NUMBER.fullmatch(value):
        return None  # the script would send it as a number
    return Row(name, op, value)


def _group(node: Any) -> Group | None:
    row = _row(node)
    if row is not None:
        return Group("all", [row])
    if isinstance(node, dict) and len(node) == 1:
        ((combinator, items),) = node.items()
        if combinator in COMBINATORS and isinstance(items, list) and len(items) >= 2:
            rows = [_row(item) for item in items]
            if all(r is not None for r in rows):
                return Group(combinator, [r for r in rows if r is not None])
    return None


def builder_for(raw: Any) -> Builder | None:
    """The rows for a filter, or None when only the JSON editor can show it."""
    if raw is None:
        return Builder()
    group = _group(raw)
    if group is not None:
        return Builder("all", [group])
    if isinstance(raw, dict) and len(raw) == 1:
        ((combinator, items),) = raw.items()
        if combinator in COMBINATORS and isinstance(items, list) and len(items) >= 2:
            groups = [_group(item) for item in items]
            if all(g is not None for g in groups):
                return Builder(combinator, [g for g in groups if g is not None])
    return None

"""Segment filters: parse the JSON grammar, evaluate it for one contact, or turn it into SQL.

Both evaluators compare the same precomputed forms of a value — `fold` (case-insensitive text)
and `numeric_value` (a number, or a date as epoch milliseconds) — which the store writes to
`contact_properties.value_folded` / `value_number`, so SQLite, PostgreSQL and Python agree.

Decisions on points the grammar leaves open:
- `{"all": []}` is true (every contact) and `{"any": []}` is false (no contact).
- A bool operand of eq/neq/in/not_in compares as the text "true"/"false"; a number operand
  compares numerically, a string operand compares folded text ("5" does not equal "5.0").
- gt/gte/lt/lte compare numeric forms. An ISO date/datetime (value or operand) counts as its
  epoch milliseconds in UTC (date-only = midnight, naive = UTC), so HubSpot's ms-epoch date
  strings ("1767225600000") compare against "2026-01-01" as expected. The same numeric form
  makes `eq 1767225600000` match a stored "2026-01-01".
- An empty string operand is allowed: contains/starts_with/ends_with "" match any known value.
- Property names are matched exactly (HubSpot's internal names), only values ignore case.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeAlias, TypeGuard

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, true
from sqlalchemy.orm import aliased

from syncgate.sync.models import Contact, ContactProperty

MAX_DEPTH = 20
MAX_NODES = 200  # conditions and groups together: every node becomes SQL
MAX_LIST_VALUES = 1000  # over all in/not_in lists: every item is a bound parameter
MAX_PROPERTY_LENGTH = 255
# SQLite refuses LIKE patterns over 50,000 bytes, and folding can make one character 6 bytes.
MAX_VALUE_LENGTH = 8_000

Scalar: TypeAlias = str | int | float | bool
Operand: TypeAlias = Scalar | tuple[Scalar, ...] | None


class InvalidFilter(ValueError):
    """A filter that breaks the grammar; the message names the problem and where it is."""


class Operator(StrEnum):
    EQ = "eq"
    NEQ = "neq"
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IS_KNOWN = "is_known"
    IS_UNKNOWN = "is_unknown"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


@dataclass(frozen=True, slots=True)
class Condition:
    property: str
    operator: Operator
    value: Operand = None


@dataclass(frozen=True, slots=True)
class All:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    filter: Filter


Filter: TypeAlias = All | AnyOf | Not | Condition

# A negated operator matches exactly the contacts its positive form does not, which is why a
# contact without a value matches the negated operators (and is_unknown) and nothing else.
_NEGATED = {
    Operator.NEQ: Operator.EQ,
    Operator.NOT_IN: Operator.IN,
    Operator.NOT_CONTAINS: Operator.CONTAINS,
    Operator.IS_UNKNOWN: Operator.IS_KNOWN,
}
_COMPARE: dict[Operator, Callable[[Any, float], Any]] = {
    Operator.GT: operator.gt,
    Operator.GTE: operator.ge,
    Operator.LT: operator.lt,
    Operator.LTE: operator.le,
}
_SCALAR_OPS = {Operator.EQ, Operator.NEQ}
_LIST_OPS = {Operator.IN, Operator.NOT_IN}
_TEXT_OPS = {Operator.CONTAINS, Operator.NOT_CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH}
_NO_VALUE_OPS = {Operator.IS_KNOWN, Operator.IS_UNKNOWN}
_OPERATOR_NAMES = {op.value for op in Operator}

# Both forms below start with one of these.
_NUMERIC_START = frozenset("+-.0123456789")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Only calendar dates with optional time and zone; fromisoformat then checks the ranges.
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # date
    r"(?:[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?)?"  # time
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"  # zone
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fold(value: str | None) -> str | None:
    """The case-insensitive form stored in value_folded (None when there is no value)."""
    return value.casefold() if value else None


def numeric_value(value: str | None) -> float | None:
    """The numeric form stored in value_number: a finite number, or an ISO date in epoch ms."""
    if not value:
        return None
    text = value.strip()
    if not text or text[0] not in _NUMERIC_START:  # most values: names, emails, words
        return None
    if _NUMBER.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else None
    if _ISO_DATETIME.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return float((moment - _EPOCH) // timedelta(milliseconds=1))
    return None


# --- parsing -----------------------------------------------------------------------------


def parse_filter(raw: object) -> Filter:
    """Validate filter JSON and return its parsed form; raises InvalidFilter."""
    return _Parser().parse(raw, "filter", 1)


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0
        self.list_values = 0

    def parse(self, raw: object, loc: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise InvalidFilter(f"{loc}: nesting is deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidFilter(f"filter: more than {MAX_NODES} conditions and groups")
        if not isinstance(raw, dict):
            raise InvalidFilter(f"{loc}: expected an object, got {_kind(raw)}")
        keys = set(raw)
        groups = keys & {"all", "any", "not"}
        if groups:
            if len(keys) > 1:
                raise InvalidFilter(f"{loc}: a group has exactly one key, got {_names(keys)}")
            return self._group(groups.pop(), raw, loc, depth)
        if "property" in keys or "operator" in keys:
            return self._condition(raw, loc)
        got = f"key(s) {_names(keys)}" if keys else "an empty object"
        raise InvalidFilter(
            f"{loc}: expected 'all', 'any', 'not' or a condition with 'property' and "
            f"'operator', got {got}"
        )

    def _group(self, key: str, raw: dict[Any, Any], loc: str, depth: int) -> Filter:
        loc = f"{loc}.{key}"
        if key == "not":
            return Not(self.parse(raw[key], loc, depth + 1))
        items = raw[key]
        if not isinstance(items, list):
            raise InvalidFilter(f"{loc}: expected a list of filters, got {_kind(items)}")
        parsed = tuple(self.parse(item, f"{loc}[{i}]", depth + 1) for i, item in enumerate(items))
        return All(parsed) if key == "all" else AnyOf(parsed)

    def _condition(self, raw: dict[Any, Any], loc: str) -> Condition:
        unknown = set(raw) - {"property", "operator", "value"}
        if unknown:
            raise InvalidFilter(f"{loc}: unknown key(s) {_names(unknown)}")
        if "property" not in raw:
            raise InvalidFilter(f"{loc}: missing 'property'")
        name = raw["property"]
        if not isinstance(name, str) or not 0 < len(name) <= MAX_PROPERTY_LENGTH:
            raise InvalidFilter(
                f"{loc}.property: must be a non-empty string of at most "
                f"{MAX_PROPERTY_LENGTH} characters"
            )
        if "operator" not in raw:
            raise InvalidFilter(f"{loc}: missing 'operator'")
        op_name = raw["operator"]
        if not isinstance(op_name, str) or op_name not in _OPERATOR_NAMES:
            shown = _show(op_name) if isinstance(op_name, str) else _kind(op_name)
            raise InvalidFilter(
                f"{loc}: unknown operator {shown} (expected one of {', '.join(Operator)})"
            )
        op = Operator(op_name)
        if op in _NO_VALUE_OPS:
            if "value" in raw:
                raise InvalidFilter(f"{loc}: '{op}' takes no value")
            return Condition(name, op)
        if "value" not in raw:
            raise InvalidFilter(f"{loc}: '{op}' needs a value")
        return Condition(name, op, self._value(op, raw["value"], f"{loc}.value"))

    def _value(self, op: Operator, value: object, loc: str) -> Scalar | tuple[Scalar, ...]:
        if op in _LIST_OPS:
            if not isinstance(value, list) or not value:
                raise InvalidFilter(
                    f"{loc}: '{op}' needs a non-empty list of strings, numbers or booleans, "
                    f"got {_kind(value)}"
                )
            self.list_values += len(value)
            if self.list_values > MAX_LIST_VALUES:
                raise InvalidFilter(f"filter: more than {MAX_LIST_VALUES} values in lists")
            return tuple(_scalar(op, item, f"{loc}[{i}]") for i, item in enumerate(value))
        if op in _SCALAR_OPS:
            if isinstance(value, list):
                hint = "in" if op is Operator.EQ else "not_in"
                raise InvalidFilter(f"{loc}: '{op}' takes a single value; use '{hint}' for a list")
            return _scalar(op, value, loc)
        if op in _TEXT_OPS:
            if not isinstance(value, str):
                raise InvalidFilter(f"{loc}: '{op}' needs a string value, got {_kind(value)}")
            return _text(value, loc)
        # gt/gte/lt/lte
        if isinstance(value, str) and numeric_value(value) is not None:
            return value
        if _is_number(value):
            return _finite(value, loc)
        raise InvalidFilter(
            f"{loc}: '{op}' needs a number or an ISO date such as \"2026-01-01\", got "
            f"{_show(value) if isinstance(value, str) else _kind(value)}"
        )


def _scalar(op: Operator, value: object, loc: str) -> Scalar:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, loc)
    if _is_number(value):
        return _finite(value, loc)
    raise InvalidFilter(
        f"{loc}: '{op}' needs a string, number or boolean value, got {_kind(value)}"
    )


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: float, loc: str) -> float:
    try:
        if math.isfinite(value):
            return value
    except OverflowError:  # an int too large for a double
        pass
    raise InvalidFilter(f"{loc}: numbers must be finite and within double precision range")


def _text(value: str, loc: str) -> str:
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidFilter(f"{loc}: longer than {MAX_VALUE_LENGTH} characters")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _names(keys: set[Any]) -> str:
    return ", ".join(sorted(_show(str(key)) for key in keys))


# --- evaluation --------------------------------------------------------------------------


def property_names(filter: Filter) -> set[str]:
    """Every property the filter looks at."""
    match filter:
        case Condition(property=name):
            return {name}
        case Not(filter=inner):
            return property_names(inner)
        case All(filters=items) | AnyOf(filters=items):
            return set().union(*(property_names(item) for item in items))
    raise TypeError(filter)


def matches(filter: Filter, properties: Mapping[str, str | None]) -> bool:
    """Whether one contact (property name -> raw value; None or "" = no value) matches."""
    match filter:
        case Condition():
            negated = filter.operator in _NEGATED
            value = properties.get(filter.property)
            if not value:
                return negated
            positive = _NEGATED.get(filter.operator, filter.operator)
            return _matches_value(positive, filter.value, value) != negated
        case Not(filter=inner):
            return not matches(inner, properties)
        case All(filters=items):
            return all(matches(item, properties) for item in items)
        case AnyOf(filters=items):
            return any(matches(item, properties) for item in items)
    raise TypeError(filter)


def _matches_value(op: Operator, operand: Operand, value: str) -> bool:
    folded = value.casefold()
    if op is Operator.IS_KNOWN:
        return True
    if op is Operator.IN or op is Operator.EQ:
        numbers, texts = _targets(operand)
        return numeric_value(value) in numbers or folded in texts
    if op is Operator.CONTAINS:
        return _fold_operand(operand) in folded
    if op is Operator.STARTS_WITH:
        return folded.startswith(_fold_operand(operand))
    if op is Operator.ENDS_WITH:
        return folded.endswith(_fold_operand(operand))
    number = numeric_value(value)
    return number is not None and bool(_COMPARE[op](number, _bound(operand)))


def _targets(operand: Operand) -> tuple[frozenset[float], frozenset[str]]:
    """The numbers and folded texts an eq/in operand stands for."""
    # Keyed by the repr too: True == 1 == 1.0 as keys, but not as operands.
    return _targets_of(repr(operand), operand)


@lru_cache(maxsize=1024)
def _targets_of(_key: str, operand: Operand) -> tuple[frozenset[float], frozenset[str]]:
    items = operand if isinstance(operand, tuple) else (operand,)
    numbers = frozenset(float(item) for item in items if _is_number(item))
    texts = frozenset(
        ("true" if item else "false") if isinstance(item, bool) else item.casefold()
        for item in items
        if isinstance(item, str | bool)
    )
    return numbers, texts


def _fold_operand(operand: Operand) -> str:
    if not isinstance(operand, str):
        raise TypeError(f"expected a string operand, got {operand!r}")
    return operand.casefold()


def _bound(operand: Operand) -> float:
    number = numeric_value(operand) if isinstance(operand, str) else operand
    if not _is_number(number):
        raise TypeError(f"expected a number or ISO date operand, got {operand!r}")
    return float(number)


# --- SQL ---------------------------------------------------------------------------------

_p = aliased(ContactProperty, name="p")


def to_sql(filter: Filter) -> ColumnElement[bool]:
    """A WHERE clause over `contacts` selecting the contacts that match."""
    match filter:
        case Condition():
            positive = _NEGATED.get(filter.operator, filter.operator)
            having = (
                _p.name == filter.property,
                _p.value.is_not(None),
                _sql_value(positive, filter.value),
            )
            if filter.operator in _NEGATED:
                # Per contact, through the (contact_id, name) primary key.
                return not_(
                    exists().where(_p.contact_id == Contact.id, *having).correlate_except(_p)
                )
            # One pass over the property's rows (by name) instead of one probe per contact.
            return Contact.id.in_(select(_p.contact_id).where(*having))
        case Not(filter=inner):
            return not_(to_sql(inner))
        case All(filters=items):
            return and_(true(), *(to_sql(item) for item in items))
        case AnyOf(filters=items):
            return or_(false(), *(to_sql(item) for item in items))
    raise TypeError(filter)


def _sql_value(op: Operator, operand: Operand) -> ColumnElement[bool]:
    if op is Operator.IS_KNOWN:
        return true()
    if op is Operator.IN or op is Operator.EQ:
        numbers, texts = _targets(operand)
        parts: list[ColumnElement[bool]] = []
        if numbers:
            parts.append(_p.value_number.in_(sorted(numbers)))
        if texts:
            parts.append(_p.value_folded.in_(sorted(texts)))
        return or_(*parts)
    if op is Operator.CONTAINS:
        return _p.value_folded.contains(_fold_operand(operand), autoescape=True)
    if op is Operator.STARTS_WITH:
        return _p.value_folded.startswith(_fold_operand(operand), autoescape=True)
    if op is Operator.ENDS_WITH:
        return _p.value_folded.endswith(_fold_operand(operand), autoescape=True)
    result: ColumnElement[bool] = _COMPARE[op](_p.value_number, _bound(operand))
    return result


def describe(filter: Filter) -> str:
    """The filter in words, e.g. `lifecyclestage eq 'customer'`."""
    if isinstance(filter, Condition):
        if filter.operator in (Operator.IS_KNOWN, Operator.IS_UNKNOWN):
            return f"{filter.property} {filter.operator.value}"
        value = list(filter.value) if isinstance(filter.value, tuple) else filter.value
        return f"{filter.property} {filter.operator.value} {value!r}"
    if isinstance(filter, Not):
        return f"not ({describe(filter.filter)})"
    joiner = " and " if isinstance(filter, All) else " or "
    return "(" + joiner.join(describe(f) for f in filter.filters) + ")"


def why_not(filter: Filter, properties: Mapping[str, str | None]) -> str | None:
    """Why a contact does not match, in words; None when it matches."""
    if matches(filter, properties):
        return None
    if isinstance(filter, Condition):
        current = properties.get(filter.property)
        has = f"is {current!r}" if current not in (None, "") else "has no value"
        return f"{describe(filter)} fails: {filter.property} {has}"
    if isinstance(filter, All):
        return next(r for f in filter.filters if (r := why_not(f, properties)) is not None)
    if isinstance(filter, AnyOf):
        reasons = [why_not(f, properties) for f in filter.filters]
        return "none of the alternatives holds: " + "; ".join(r for r in reasons if r)
    return f"{describe(filter)} fails: {describe(filter.filter)} holds"

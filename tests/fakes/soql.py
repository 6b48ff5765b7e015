"""A strict little SOQL subset: what a sync service needs, with Salesforce's error codes.

Supported: ``SELECT f1, f2 FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …]
[LIMIT n] [OFFSET n]`` where ``cond`` combines ``f = v``, ``!=``/``<>``, ``<``, ``<=``, ``>``,
``>=``, ``f [NOT] IN (v, …)``, ``f LIKE 'pat'`` with ``AND``/``OR``/``NOT`` and parentheses
(mixing AND and OR needs parentheses, as in real SOQL). Literals: quoted strings with SOQL escapes,
``true``/``false``/``null``, numbers, ISO dates and date-times. Anything else is rejected, so the
service's queries are checked rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

STRING_TYPES = frozenset({"string", "email", "phone", "url", "textarea", "picklist"})
ID_TYPES = frozenset({"id", "reference"})


@dataclass(frozen=True)
class FieldSpec:
    """One field of an sObject, as far as the fake needs to know it."""

    name: str
    type: str  # id, reference, string, email, phone, url, textarea, picklist, boolean, ...
    length: int = 0
    createable: bool = True
    updateable: bool = True
    required: bool = False  # on create: not nillable and no default

    @property
    def label(self) -> str:
        """Salesforce-style label derived from the API name: ``LastName`` → ``Last Name``."""
        base = self.name.removesuffix("__c")
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ")


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is the REST ``errorCode``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- tokens --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z][A-Za-z0-9_]*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<string>')
    """,
    re.VERBOSE,
)
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_KEYWORDS = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC"}
    | {"NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL"}
)


@dataclass(frozen=True)
class Token:
    kind: str  # ident, keyword, string, number, date, datetime, op, punct, eof
    text: str
    value: Any
    pos: int


def _read_string(soql: str, start: int) -> tuple[str, int]:
    """Read a quoted literal starting after the opening quote; return (value, end index)."""
    out: list[str] = []
    i = start
    while i < len(soql):
        ch = soql[i]
        if ch == "'":
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= len(soql):
                break
            nxt = soql[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if nxt in "_%":  # only meaningful inside LIKE; kept escaped for the matcher
                out.append("\\" + nxt)
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", soql[i + 2 : i + 6]):
                out.append(chr(int(soql[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise _malformed(soql, i, "Invalid string literal. Illegal escape sequence")
        out.append(ch)
        i += 1
    raise _malformed(soql, start - 1, "Invalid string literal. Missing closing quote")


def tokenize(soql: str) -> list[Token]:
    """Split ``soql`` into tokens, or raise MALFORMED_QUERY."""
    tokens: list[Token] = []
    i = 0
    while i < len(soql):
        match = _TOKEN.match(soql, i)
        if match is None:
            raise _malformed(soql, i, f"unexpected token: '{soql[i]}'")
        kind = match.lastgroup
        assert kind is not None
        text = match.group()
        if kind == "ws":
            i = match.end()
            continue
        if kind == "string":
            literal, end = _read_string(soql, i + 1)
            tokens.append(Token("string", soql[i:end], literal, i))
            i = end
            continue
        value: Any = text
        if kind == "ident" and text.upper() in _KEYWORDS:
            kind, value = "keyword", text.upper()
        elif kind == "number":
            value = float(text)
        elif kind == "datetime":
            value = parse_datetime(text)
        elif kind == "date":
            value = date.fromisoformat(text)
        tokens.append(Token(kind, text, value, i))
        i = match.end()
    tokens.append(Token("eof", "<EOF>", None, len(soql)))
    return tokens


def parse_datetime(text: str) -> datetime:
    """Parse SOQL / REST date-times (``Z``, ``+0000`` or ``+00:00``)."""
    normalized = text.replace("Z", "+00:00")
    normalized = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", normalized)
    return datetime.fromisoformat(normalized)


def _malformed(soql: str, pos: int, reason: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", _located(soql, pos, reason))


def _located(soql: str, pos: int, reason: str) -> str:
    # Salesforce echoes the query with a caret under the offending column.
    return f"\n{soql}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{reason}"


# -- syntax tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    field: FieldSpec
    op: str  # =, !=, <, <=, >, >=, IN, NOT IN, LIKE
    value: Any  # a literal, or a tuple of literals for IN / NOT IN


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND, OR
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition = Comparison | BoolOp | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldSpec
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[FieldSpec, ...]
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


Schema = Mapping[str, Mapping[str, FieldSpec]]  # sObject → lower-case field name → spec


class _Parser:
    def __init__(
        self, soql: str, schema: Schema, normalize_id: Callable[[str], str | None]
    ) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.i = 0
        self.schema = schema
        self.normalize_id = normalize_id
        self.sobject = ""
        self.fields: Mapping[str, FieldSpec] = {}

    # token helpers
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token.kind == "keyword" and token.value in words

    def expect_keyword(self, word: str) -> Token:
        token = self.take()
        if token.kind != "keyword" or token.value != word:
            raise self.unexpected(token)
        return token

    def unexpected(self, token: Token) -> SoqlError:
        shown = token.text if token.kind == "eof" else f"'{token.text}'"
        return _malformed(self.soql, token.pos, f"unexpected token: {shown}")

    # grammar
    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        selected = [self.identifier()]
        while self.peek().kind == "punct" and self.peek().text == ",":
            self.take()
            selected.append(self.identifier())
        self.expect_keyword("FROM")
        self.resolve_sobject(self.identifier())
        fields = []
        seen: set[str] = set()
        for token in selected:
            spec = self.resolve_field(token)
            if spec.name in seen:
                raise _malformed(self.soql, token.pos, f"duplicate field selected: {spec.name}")
            seen.add(spec.name)
            fields.append(spec)
        where = None
        if self.at_keyword("WHERE"):
            self.take()
            where = self.condition()
        order: list[OrderItem] = []
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            order.append(self.order_item())
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                order.append(self.order_item())
        limit = self.int_clause("LIMIT")
        offset = self.int_clause("OFFSET")
        if offset is not None and offset > 2000:
            raise SoqlError(
                "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is 2000: {offset}"
            )
        token = self.take()
        if token.kind != "eof":
            raise self.unexpected(token)
        return Query(self.sobject, tuple(fields), where, tuple(order), limit, offset)

    def identifier(self) -> Token:
        token = self.take()
        if token.kind != "ident":
            raise self.unexpected(token)
        return token

    def resolve_sobject(self, token: Token) -> None:
        for name, fields in self.schema.items():
            if name.lower() == token.text.lower():
                self.sobject, self.fields = name, fields
                return
        raise SoqlError(
            "INVALID_TYPE",
            _located(
                self.soql,
                token.pos,
                f"sObject type '{token.text}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            ),
        )

    def resolve_field(self, token: Token) -> FieldSpec:
        spec = self.fields.get(token.text.lower())
        if spec is None:
            raise SoqlError(
                "INVALID_FIELD",
                _located(
                    self.soql,
                    token.pos,
                    f"No such column '{token.text}' on entity '{self.sobject}'. If you are "
                    "attempting to use a custom field, be sure to append the '__c' after the "
                    "custom field name. Please reference your WSDL or the describe call for the "
                    "appropriate names.",
                ),
            )
        return spec

    def condition(self) -> Condition:
        parts = [self.unary()]
        joiner: str | None = None
        while self.at_keyword("AND", "OR"):
            token = self.take()
            if joiner is not None and token.value != joiner:
                # Real SOQL refuses "a AND b OR c": the grouping must be explicit.
                raise self.unexpected(token)
            joiner = token.value
            parts.append(self.unary())
        if joiner is None:
            return parts[0]
        return BoolOp(joiner, tuple(parts))

    def unary(self) -> Condition:
        if self.at_keyword("NOT"):
            self.take()
            return Not(self.unary())
        token = self.peek()
        if token.kind == "punct" and token.text == "(":
            self.take()
            inner = self.condition()
            closing = self.take()
            if closing.kind != "punct" or closing.text != ")":
                raise self.unexpected(closing)
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        spec = self.resolve_field(self.identifier())
        token = self.take()
        if token.kind == "op":
            op = "!=" if token.text == "<>" else token.text
            return Comparison(spec, op, self.literal(spec, op))
        if token.kind == "keyword" and token.value == "LIKE":
            value = self.literal(spec, "LIKE")
            if not isinstance(value, str):
                raise self.filter_type_error(spec, "string", quoted=True)
            return Comparison(spec, "LIKE", value)
        negate = False
        if token.kind == "keyword" and token.value == "NOT":
            negate = True
            token = self.take()
        if token.kind == "keyword" and token.value == "IN":
            opening = self.take()
            if opening.kind != "punct" or opening.text != "(":
                raise self.unexpected(opening)
            values = [self.literal(spec, "IN")]
            while self.peek().kind == "punct" and self.peek().text == ",":
                self.take()
                values.append(self.literal(spec, "IN"))
            closing = self.take()
            if closing.kind != "punct" or closing.text != ")":
                raise self.unexpected(closing)
            return Comparison(spec, "NOT IN" if negate else "IN", tuple(values))
        raise self.unexpected(token)

    def literal(self, spec: FieldSpec, op: str) -> Any:
        token = self.take()
        if token.kind == "keyword" and token.value == "NULL":
            if op in ("=", "!="):
                return None
            raise self.unexpected(token)
        kind = token.kind
        if spec.type == "boolean":
            if kind == "keyword" and token.value in ("TRUE", "FALSE"):
                return token.value == "TRUE"
            raise self.filter_type_error(spec, "boolean", quoted=False)
        if spec.type == "datetime":
            if kind == "datetime":
                return token.value
            raise self.filter_type_error(spec, "dateTime", quoted=False)
        if spec.type == "date":
            if kind == "date":
                return token.value
            raise self.filter_type_error(spec, "date", quoted=False)
        if spec.type in ("double", "int", "currency"):
            if kind == "number":
                return token.value
            raise self.filter_type_error(spec, "double", quoted=False)
        if kind != "string":
            if kind in ("ident", "keyword", "number", "date", "datetime"):
                raise self.filter_type_error(spec, "string", quoted=True)
            raise self.unexpected(token)
        if spec.type in ID_TYPES and op != "LIKE":
            normalized = self.normalize_id(token.value)
            if normalized is None:
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    _located(self.soql, token.pos, f"invalid ID field: {token.value}"),
                )
            return normalized
        return token.value

    def filter_type_error(self, spec: FieldSpec, type_name: str, *, quoted: bool) -> SoqlError:
        token = self.tokens[self.i - 1]
        enclosed = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
        return SoqlError(
            "INVALID_QUERY_FILTER_OPERATOR",
            _located(
                self.soql,
                token.pos,
                f"value of filter criterion for field '{spec.name}' must be of type {type_name} "
                f"and {enclosed}",
            ),
        )

    def order_item(self) -> OrderItem:
        spec = self.resolve_field(self.identifier())
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.take().value == "DESC"
        nulls_last = descending  # Salesforce default: NULLS FIRST ascending, NULLS LAST descending
        if self.at_keyword("NULLS"):
            self.take()
            token = self.take()
            if token.kind != "keyword" or token.value not in ("FIRST", "LAST"):
                raise self.unexpected(token)
            nulls_last = token.value == "LAST"
        return OrderItem(spec, descending, nulls_last)

    def int_clause(self, word: str) -> int | None:
        if not self.at_keyword(word):
            return None
        self.take()
        token = self.take()
        if token.kind != "number" or token.value < 0 or token.value != int(token.value):
            raise self.unexpected(token)
        return int(token.value)


def parse(soql: str, schema: Schema, normalize_id: Callable[[str], str | None]) -> Query:
    """Parse ``soql`` against ``schema``; raise SoqlError the way Salesforce would refuse it.

    ``normalize_id`` turns a 15- or 18-character id literal into its canonical 18-character form,
    or returns None for something that is not an id.
    """
    if not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(soql, schema, normalize_id).parse()


# -- evaluation ----------------------------------------------------------------------------------


def _comparable(spec: FieldSpec, value: Any) -> Any:
    """Bring a stored value or a literal to a form where == and < mean what SOQL means."""
    if value is None:
        return None
    if spec.type in ID_TYPES:
        return str(value)[:15]  # both sides are canonical 18-character ids by now
    if spec.type in STRING_TYPES:
        return str(value).replace("\\_", "_").replace("\\%", "%").lower()
    if spec.type == "datetime" and isinstance(value, str):
        return parse_datetime(value)
    if spec.type == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _like(pattern: str, value: str) -> bool:
    regex = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.fullmatch("".join(regex), value, re.IGNORECASE | re.DOTALL) is not None


def matches(condition: Condition, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` (canonical field names) satisfies ``condition``."""
    if isinstance(condition, Not):
        return not matches(condition.part, record)
    if isinstance(condition, BoolOp):
        results = (matches(part, record) for part in condition.parts)
        return all(results) if condition.op == "AND" else any(results)
    spec, op = condition.field, condition.op
    stored = record.get(spec.name)
    if op == "LIKE":
        return stored is not None and _like(condition.value, str(stored))
    left = _comparable(spec, stored)
    if op in ("IN", "NOT IN"):
        inside = left is not None and left in {_comparable(spec, v) for v in condition.value}
        return inside if op == "IN" else not inside
    right = _comparable(spec, condition.value)
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def sort_records(
    records: list[dict[str, Any]], order: tuple[OrderItem, ...]
) -> list[dict[str, Any]]:
    """Sort by the ORDER BY items (stable, so ties keep insertion order)."""
    result = list(records)
    for item in reversed(order):
        present = [r for r in result if r.get(item.field.name) is not None]
        missing = [r for r in result if r.get(item.field.name) is None]
        spec = item.field
        present.sort(key=lambda r: _comparable(spec, r.get(spec.name)), reverse=item.descending)
        result = present + missing if item.nulls_last else missing + present
    return result

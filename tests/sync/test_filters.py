"""Segment filter grammar: validation errors and evaluation of one contact in Python."""

from typing import Any

import pytest

from syncgate.sync.filters import (
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_NODES,
    MAX_VALUE_LENGTH,
    All,
    AnyOf,
    Condition,
    InvalidFilter,
    Not,
    Operator,
    fold,
    matches,
    numeric_value,
    parse_filter,
    property_names,
)


def cond(name: object, op: object, *value: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"property": name, "operator": op}
    if value:
        (raw["value"],) = value
    return raw


def check(raw: dict[str, Any], **properties: str | None) -> bool:
    return matches(parse_filter(raw), properties)


OPERANDS: dict[str, Any] = {
    "eq": "x",
    "neq": "x",
    "in": ["x", 1],
    "not_in": ["x", 1],
    "contains": "",
    "not_contains": "",
    "starts_with": "",
    "ends_with": "",
    "gt": -1e300,
    "gte": -1e300,
    "lt": 1e300,
    "lte": 1e300,
}


# --- parsing -----------------------------------------------------------------------------


def test_parse_builds_the_tree() -> None:
    raw = {
        "all": [
            cond("email", "contains", "@acme"),
            {"not": {"any": [cond("x", "is_known"), cond("n", "in", [1, "a", True])]}},
        ]
    }
    assert parse_filter(raw) == All(
        (
            Condition("email", Operator.CONTAINS, "@acme"),
            Not(
                AnyOf(
                    (
                        Condition("x", Operator.IS_KNOWN),
                        Condition("n", Operator.IN, (1, "a", True)),
                    )
                )
            ),
        )
    )


@pytest.mark.parametrize("op", list(Operator))
def test_parse_accepts_every_operator(op: Operator) -> None:
    raw = cond("p", op, OPERANDS[op]) if op in OPERANDS else cond("p", op)
    parsed = parse_filter(raw)
    assert isinstance(parsed, Condition)
    assert parsed.operator is op


def _deep(levels: int) -> dict[str, Any]:
    raw: dict[str, Any] = cond("p", "is_known")
    for _ in range(levels):
        raw = {"not": raw}
    return raw


INVALID: list[tuple[object, str]] = [
    ([], "filter: expected an object, got an empty list"),
    ("x", "filter: expected an object, got a string"),
    ({}, "filter: expected 'all', 'any', 'not' or a condition"),
    ({"foo": 1}, "got key(s) 'foo'"),
    ({"all": [], "any": []}, "filter: a group has exactly one key, got 'all', 'any'"),
    ({"all": [], "property": "x"}, "a group has exactly one key"),
    ({"all": {}}, "filter.all: expected a list of filters, got an object"),
    ({"any": None}, "filter.any: expected a list of filters, got null"),
    (
        {"all": [cond("a", "eq", 1), cond("b", "equals", 1)]},
        "filter.all[1]: unknown operator 'equals'",
    ),
    ({"not": cond("a", 5, 1)}, "filter.not: unknown operator a number"),
    (cond("a", "eq", 1) | {"extra": 1}, "filter: unknown key(s) 'extra'"),
    ({"operator": "eq", "value": 1}, "filter: missing 'property'"),
    ({"property": "a", "value": 1}, "filter: missing 'operator'"),
    (cond("", "is_known"), "filter.property: must be a non-empty string"),
    (cond(5, "is_known"), "filter.property: must be a non-empty string"),
    (cond("x" * 256, "is_known"), "at most 255 characters"),
    (cond("a", "is_known", True), "filter: 'is_known' takes no value"),
    (cond("a", "is_unknown", None), "filter: 'is_unknown' takes no value"),
    (cond("a", "eq"), "filter: 'eq' needs a value"),
    (cond("a", "eq", None), "filter.value: 'eq' needs a string, number or boolean value, got null"),
    (cond("a", "neq", {"x": 1}), "'neq' needs a string, number or boolean value, got an object"),
    (cond("a", "eq", [1]), "filter.value: 'eq' takes a single value; use 'in' for a list"),
    (cond("a", "neq", [1]), "use 'not_in' for a list"),
    (cond("a", "in", "x"), "filter.value: 'in' needs a non-empty list"),
    (
        cond("a", "not_in", []),
        "'not_in' needs a non-empty list of strings, numbers or booleans, got an empty list",
    ),
    (cond("a", "in", ["x", None]), "filter.value[1]: 'in' needs a string, number or boolean value"),
    (cond("a", "in", [["x"]]), "filter.value[0]"),
    (cond("a", "contains", 5), "filter.value: 'contains' needs a string value, got a number"),
    (cond("a", "starts_with", None), "'starts_with' needs a string value, got null"),
    (cond("a", "ends_with", ["x"]), "'ends_with' needs a string value, got a list"),
    (
        cond("a", "gt", "abc"),
        "filter.value: 'gt' needs a number or an ISO date such as \"2026-01-01\", got 'abc'",
    ),
    (
        cond("a", "gte", True),
        "'gte' needs a number or an ISO date such as \"2026-01-01\", got a boolean",
    ),
    (cond("a", "lt", "2026-02-30"), "got '2026-02-30'"),
    (cond("a", "lte", None), "'lte' needs a number or an ISO date"),
    (cond("a", "eq", float("nan")), "numbers must be finite"),
    (cond("a", "gt", float("inf")), "numbers must be finite"),
    (cond("a", "in", [10**400]), "filter.value[0]: numbers must be finite"),
    (cond("a", "eq", "x" * (MAX_VALUE_LENGTH + 1)), "filter.value: longer than 8000 characters"),
    (_deep(MAX_DEPTH), f"nesting is deeper than {MAX_DEPTH} levels"),
    ({"all": [cond("a", "is_known")] * MAX_NODES}, f"more than {MAX_NODES} conditions and groups"),
    ({"all": [{"all": []}] * MAX_NODES}, f"more than {MAX_NODES} conditions and groups"),
    (
        {"any": [cond("a", "in", list(range(MAX_LIST_VALUES // 2 + 1)))] * 2},
        f"more than {MAX_LIST_VALUES} values in lists",
    ),
]


@pytest.mark.parametrize(("raw", "message"), INVALID)
def test_invalid_filters_are_refused_with_a_message_naming_problem_and_place(
    raw: object, message: str
) -> None:
    with pytest.raises(InvalidFilter) as refused:
        parse_filter(raw)
    assert message in str(refused.value)


def test_invalid_filter_is_a_value_error() -> None:
    assert issubclass(InvalidFilter, ValueError)


def test_limits_are_inclusive() -> None:
    parse_filter(_deep(MAX_DEPTH - 1))
    parse_filter({"all": [cond("a", "is_known")] * (MAX_NODES - 1)})
    parse_filter(cond("a", "in", list(range(MAX_LIST_VALUES))))


def test_property_names() -> None:
    raw = {
        "any": [cond("a", "is_known"), {"not": {"all": [cond("b", "eq", 1), cond("a", "lt", 2)]}}]
    }
    assert property_names(parse_filter(raw)) == {"a", "b"}
    assert property_names(parse_filter({"all": []})) == set()


# --- derived forms -------------------------------------------------------------------------


def test_fold_is_casefold_and_none_without_value() -> None:
    assert fold("Straße") == "strasse"
    assert fold("") is None
    assert fold(None) is None


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("42", 42.0),
        (" -1.5 ", -1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("1767225600000", 1767225600000.0),
        ("2026-01-01", 1767225600000.0),
        ("2026-01-01T00:00:00Z", 1767225600000.0),
        ("2026-01-01T00:00:00.000Z", 1767225600000.0),
        ("2026-01-01 01:00:00+01:00", 1767225600000.0),
        ("2026-01-01T00:00:00.0019", 1767225600001.0),
        ("1969-12-31T23:59:59.999Z", -1.0),
        ("2026-01-01T00:00", 1767225600000.0),
        ("", None),
        (None, None),
        ("abc", None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),
        ("1_000", None),
        ("1,5", None),
        ("٣", None),
        ("2026-02-30", None),
        ("2026-W01", None),
        ("0x10", None),
    ],
)
def test_numeric_value(value: str | None, number: float | None) -> None:
    assert numeric_value(value) == number


# --- evaluation: the no-value rule ---------------------------------------------------------

MATCH_WITHOUT_VALUE = {"is_unknown", "neq", "not_in", "not_contains"}


@pytest.mark.parametrize("op", list(Operator))
@pytest.mark.parametrize(
    "properties", [{}, {"p": None}, {"p": ""}], ids=["absent", "none", "empty"]
)
def test_contact_without_value_matches_only_is_unknown_neq_not_in_not_contains(
    op: Operator, properties: dict[str, str | None]
) -> None:
    raw = cond("p", op, OPERANDS[op]) if op in OPERANDS else cond("p", op)
    assert matches(parse_filter(raw), properties) is (op in MATCH_WITHOUT_VALUE)


def test_unknown_property_is_simply_unknown() -> None:
    assert check(cond("never_heard_of", "is_unknown"), email="a@b.c")
    assert not check(cond("never_heard_of", "eq", "x"), email="a@b.c")


# --- evaluation: each operator with a value -----------------------------------------------


def test_is_known_and_is_unknown_with_a_value() -> None:
    assert check(cond("p", "is_known"), p="0")
    assert not check(cond("p", "is_unknown"), p="0")
    assert check(cond("p", "is_known"), p=" ")


def test_eq_and_neq_ignore_case() -> None:
    assert check(cond("p", "eq", "ACME Inc"), p="acme inc")
    assert not check(cond("p", "neq", "ACME Inc"), p="Acme INC")
    assert check(cond("p", "neq", "acme"), p="acme inc")
    assert not check(cond("p", "eq", "acme"), p="acme inc")


def test_case_folding_goes_beyond_lowercase() -> None:
    assert check(cond("p", "eq", "STRASSE"), p="Straße")
    assert check(cond("p", "contains", "ss"), p="Straße")
    assert check(cond("p", "eq", "ΣΊΣΥΦΟΣ"), p="σίσυφος")
    assert check(cond("p", "starts_with", "i̇"), p="İstanbul")


def test_eq_with_a_number_compares_numerically() -> None:
    assert check(cond("p", "eq", 5), p="5.0")
    assert check(cond("p", "eq", 5.0), p="5")
    assert check(cond("p", "eq", 1000), p="1e3")
    assert not check(cond("p", "eq", 5), p="five")
    assert check(cond("p", "neq", 5), p="five")
    assert not check(cond("p", "neq", 5), p="05")


def test_eq_with_a_numeric_string_compares_text() -> None:
    assert check(cond("p", "eq", "5"), p="5")
    assert not check(cond("p", "eq", "5"), p="5.0")


def test_eq_with_a_bool_compares_as_true_or_false_text() -> None:
    assert check(cond("p", "eq", True), p="TRUE")
    assert check(cond("p", "eq", False), p="false")
    assert not check(cond("p", "eq", True), p="1")
    assert check(cond("p", "neq", True), p="false")


def test_eq_with_a_number_matches_a_date_by_its_epoch_ms() -> None:
    assert check(cond("p", "eq", 1767225600000), p="2026-01-01")


def test_in_and_not_in_mix_strings_numbers_and_bools() -> None:
    raw = cond("p", "in", ["Gold", 3, True])
    assert check(raw, p="GOLD")
    assert check(raw, p="3.0")
    assert check(raw, p="true")
    assert not check(raw, p="silver")
    assert not check(raw, p="3.1")
    assert check(cond("p", "not_in", ["Gold", 3]), p="silver")
    assert not check(cond("p", "not_in", ["Gold", 3]), p="gold")


def test_contains_and_not_contains_ignore_case() -> None:
    assert check(cond("p", "contains", "ACME"), p="sales@acme.com")
    assert not check(cond("p", "contains", "globex"), p="sales@acme.com")
    assert check(cond("p", "not_contains", "globex"), p="sales@acme.com")
    assert not check(cond("p", "not_contains", "Acme"), p="sales@acme.com")


def test_starts_with_and_ends_with_ignore_case() -> None:
    assert check(cond("p", "starts_with", "SALES@"), p="sales@acme.com")
    assert not check(cond("p", "starts_with", "acme"), p="sales@acme.com")
    assert check(cond("p", "ends_with", "@ACME.COM"), p="sales@acme.com")
    assert not check(cond("p", "ends_with", "sales"), p="sales@acme.com")


def test_empty_string_operand_matches_every_known_value() -> None:
    assert check(cond("p", "contains", ""), p="x")
    assert check(cond("p", "starts_with", ""), p="x")
    assert not check(cond("p", "not_contains", ""), p="x")
    assert not check(cond("p", "eq", ""), p="x")


@pytest.mark.parametrize("op", ["contains", "starts_with", "ends_with"])
def test_like_wildcards_in_operands_are_literal(op: str) -> None:
    assert not check(cond("p", op, "%"), p="abc")
    assert not check(cond("p", op, "_"), p="abc")
    assert check(cond("p", op, "%"), p="%")
    assert check(cond("p", op, "_"), p="_")
    assert not check(cond("p", op, "a_c"), p="abc")
    assert check(cond("p", op, "a_c"), p="a_c")


def test_gt_gte_lt_lte_compare_numbers() -> None:
    assert check(cond("p", "gt", 9), p="10")  # not "10" < "9" as text
    assert not check(cond("p", "gt", 10), p="10")
    assert check(cond("p", "gte", 10), p="10.0")
    assert check(cond("p", "lt", "1e3"), p="999.5")
    assert not check(cond("p", "lt", -1), p="-1")
    assert check(cond("p", "lte", -1), p="-1")


def test_comparisons_do_not_match_values_without_a_numeric_form() -> None:
    for op in ("gt", "gte", "lt", "lte"):
        assert not check(cond("p", op, 0), p="abc")
        assert not check(cond("p", op, 0), p="nan")


def test_iso_date_operand_compares_with_ms_epoch_strings() -> None:
    # HubSpot stores date properties as ms-epoch strings: 1767225600000 is 2026-01-01T00:00Z.
    assert check(cond("createdate", "gte", "2026-01-01"), createdate="1767225600000")
    assert not check(cond("createdate", "gt", "2026-01-01"), createdate="1767225600000")
    assert check(cond("createdate", "lt", "2026-01-01T00:00:00.001Z"), createdate="1767225600000")
    assert check(cond("createdate", "lt", "2026-01-01"), createdate="1767225599999")


def test_iso_date_values_compare_with_iso_and_number_operands() -> None:
    assert check(cond("d", "gt", "2025-12-31T23:59:59Z"), d="2026-01-01")
    assert check(cond("d", "lt", "2026-01-01T02:00:00+01:00"), d="2026-01-01T00:30:00Z")
    assert check(cond("d", "gte", 1767225600000), d="2026-01-01T00:00:00")  # naive = UTC
    assert not check(cond("d", "gt", "2026-01-01"), d="2026-01-01")


# --- evaluation: groups --------------------------------------------------------------------


def test_empty_all_is_true_and_empty_any_is_false() -> None:
    assert check({"all": []})
    assert not check({"any": []})
    assert not check({"not": {"all": []}})
    assert check({"not": {"any": []}})


def test_all_any_not() -> None:
    a, b = cond("a", "eq", "1"), cond("b", "eq", "1")
    assert check({"all": [a, b]}, a="1", b="1")
    assert not check({"all": [a, b]}, a="1", b="2")
    assert check({"any": [a, b]}, a="1", b="2")
    assert not check({"any": [a, b]}, a="2", b="2")
    assert check({"not": a}, a="2")
    assert check({"not": a})
    assert not check({"not": {"not": a}}, a="2")

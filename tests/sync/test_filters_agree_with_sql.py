"""Property test: for random filters and contacts, `to_sql` selects exactly who `matches`."""

from typing import Any

from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert, select

from syncgate.sync.filters import (
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_NODES,
    MAX_VALUE_LENGTH,
    InvalidFilter,
    Operator,
    fold,
    matches,
    numeric_value,
    parse_filter,
    to_sql,
)
from syncgate.sync.models import Contact, ContactProperty

PEOPLE_NAMES = ["a", "b"]
NAMES = [*PEOPLE_NAMES, "c"]  # nobody has "c": an unknown property
# Values where case folding, numbers, dates and LIKE wildcards collide or nearly do.
VALUES = [
    "x", "X", "ß", "SS", "ss", "İ", "i̇", "i", "I", "%", "_", "a%b", "a_b", "axb", "/", "a/b",
    "5", "5.0", "05", "-3", "1e3", "1000", "0", "-0", "true", "TRUE", "false", " ",
    "2026-01-01", "2026-01-01T00:00:00Z", "2025-12-31T23:30:00-01:00", "2026-01-01 00:00",
    "1767225600000", "1767225599999", "abc", "ABC", "Abc déf", "a\\b",
]  # fmt: skip
ALPHABET = "aAbßsSİi%_/\\5.-0 "
NUMBERS = [0, -0.0, 5, 2.5, -3, 1000, 1767225600000, 1767225599999.5, 1e300]
DATES = ["2026-01-01", "2026-01-01T00:00:00Z", "2025-12-31T23:30:00-01:00", "2026-01-01T00:00"]

Person = dict[str, str | None]


def substrings(value: str) -> st.SearchStrategy[str]:
    cut = st.integers(0, len(value))
    return st.tuples(cut, cut).map(lambda ends: value[min(ends) : max(ends)])


def conditions(universe: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Conditions whose operands come from the example's few values, so that they collide."""
    own = st.sampled_from(universe)
    texts = st.one_of(own, own.flatmap(substrings), st.sampled_from(["", "%", "_", "/"]))
    own_numbers = [n for n in map(numeric_value, universe) if n is not None]
    numbers = st.sampled_from(own_numbers or NUMBERS) | st.sampled_from(NUMBERS)
    scalars = st.one_of(own, own.map(str.swapcase), texts, numbers, st.booleans())
    own_bounds = [u for u in universe if numeric_value(u) is not None]
    bounds = st.one_of(numbers, st.sampled_from(own_bounds or DATES), st.sampled_from(DATES))

    @st.composite
    def condition(draw: st.DrawFn) -> dict[str, Any]:
        op = draw(st.sampled_from(list(Operator)))
        raw: dict[str, Any] = {"property": draw(st.sampled_from(NAMES)), "operator": op.value}
        if op in (Operator.IN, Operator.NOT_IN):
            raw["value"] = draw(st.lists(scalars, min_size=1, max_size=3))
        elif op in (Operator.EQ, Operator.NEQ):
            raw["value"] = draw(scalars)
        elif op in (Operator.GT, Operator.GTE, Operator.LT, Operator.LTE):
            raw["value"] = draw(bounds)
        elif op not in (Operator.IS_KNOWN, Operator.IS_UNKNOWN):
            raw["value"] = draw(texts)
        return raw

    return condition()


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[Person]]:
    """A few random filters and random contacts, all drawn from a handful of values."""
    value = st.one_of(st.sampled_from(VALUES), st.text(ALPHABET, min_size=1, max_size=3))
    numeric = st.sampled_from([v for v in VALUES if numeric_value(v) is not None])
    universe = draw(st.lists(value, min_size=1, max_size=3, unique=True))
    universe += [v for v in draw(st.lists(numeric, max_size=2)) if v not in universe]
    filters = st.recursive(
        conditions(universe),
        lambda children: st.one_of(
            st.builds(lambda items: {"all": items}, st.lists(children, max_size=3)),
            st.builds(lambda items: {"any": items}, st.lists(children, max_size=3)),
            st.builds(lambda item: {"not": item}, children),
        ),
        max_leaves=8,
    )
    stored = st.sampled_from(universe) | st.sampled_from(universe) | st.sampled_from(["", None])
    people = st.lists(
        st.dictionaries(st.sampled_from(PEOPLE_NAMES), stored, min_size=1), min_size=2, max_size=10
    )
    return draw(st.lists(filters, min_size=1, max_size=4)), draw(people)


def store(engine: Engine, people: list[Person]) -> None:
    with engine.begin() as connection:
        connection.execute(delete(ContactProperty))
        connection.execute(delete(Contact))
        if not people:
            return
        connection.execute(insert(Contact), [{"id": i} for i in range(1, len(people) + 1)])
        rows = [
            {
                "contact_id": i,
                "name": name,
                "value": value or None,  # the store keeps "" as NULL
                "value_folded": fold(value),
                "value_number": numeric_value(value),
            }
            for i, properties in enumerate(people, start=1)
            for name, value in properties.items()
        ]
        if rows:
            connection.execute(insert(ContactProperty), rows)


def parts(raw: Any) -> list[Any]:
    """The filter and every filter nested in it: each one is checked, multiplying coverage."""
    if "not" in raw:
        return [raw, *parts(raw["not"])]
    items = raw.get("all", raw.get("any", []))
    return [raw, *(part for item in items for part in parts(item))]


def sql_matches(engine: Engine, raw: object) -> set[int]:
    with engine.connect() as connection:
        query = select(Contact.id).where(to_sql(parse_filter(raw)))
        return set(connection.scalars(query))


def python_matches(raw: object, people: list[Person]) -> set[int]:
    parsed = parse_filter(raw)
    return {i for i, properties in enumerate(people, start=1) if matches(parsed, properties)}


DATE_PEOPLE: list[Person] = [
    {"a": "1767225600000"},
    {"a": "1767225599999"},
    {"a": "2026-01-01T00:00:00Z"},
    {"a": "2025-12-31T23:30:00-01:00"},
    {"a": "soon"},
    {},
]
TEXT_PEOPLE: list[Person] = [
    {"a": "a%b"},
    {"a": "axb"},
    {"a": "a_b"},
    {"a": "a/b"},
    {"a": "ß"},
    {"a": "SS"},
    {"a": "İ"},
    {"a": ""},
    {"a": None},
    {"b": "x"},
]


def cond(op: str, *value: Any) -> dict[str, Any]:
    return {"property": "a", "operator": op} | ({"value": value[0]} if value else {})


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
@example(scenario=([cond("gte", "2026-01-01")], DATE_PEOPLE))
@example(scenario=([cond("lt", 1767225600000)], DATE_PEOPLE))
@example(scenario=([cond("eq", 1767225600000)], DATE_PEOPLE))
@example(scenario=([cond("contains", "%")], TEXT_PEOPLE))
@example(scenario=([cond("starts_with", "a_")], TEXT_PEOPLE))
@example(scenario=([cond("ends_with", "/b")], TEXT_PEOPLE))
@example(scenario=([cond("eq", "ss")], TEXT_PEOPLE))
@example(scenario=([cond("in", ["ß", "i̇"])], TEXT_PEOPLE))
@example(scenario=([cond("starts_with", "i")], TEXT_PEOPLE))
@example(scenario=([{"any": [cond("is_unknown"), cond("neq", "x")]}], TEXT_PEOPLE))
@example(scenario=([{"all": [cond("not_in", ["ß", 5]), cond("not_contains", "s")]}], TEXT_PEOPLE))
@example(scenario=([{"any": [{"all": []}, {"not": {"any": []}}]}], TEXT_PEOPLE))
@example(scenario=([{"all": [{"any": []}]}], TEXT_PEOPLE))
def test_sql_selects_exactly_the_contacts_python_matches(
    sync_engine: Engine, scenario: tuple[list[dict[str, Any]], list[Person]]
) -> None:
    raws, people = scenario
    try:
        for raw in raws:
            parse_filter(raw)
    except InvalidFilter:  # a rare draw nests deeper than the limit
        reject()
    store(sync_engine, people)
    for part in (part for raw in raws for part in parts(raw)):
        assert sql_matches(sync_engine, part) == python_matches(part, people), part


def test_the_largest_allowed_filters_run_on_the_database(sync_engine: Engine) -> None:
    people: list[Person] = [
        {"a": "%" * MAX_VALUE_LENGTH},
        {"a": "ῶι" * MAX_VALUE_LENGTH},
        {"b": "1"},
    ]
    store(sync_engine, people)
    deep: dict[str, Any] = cond("contains", "%" * MAX_VALUE_LENGTH)
    for _ in range(MAX_DEPTH - 1):
        deep = {"not": deep}
    largest = [
        deep,
        # "ῷ" folds to "ῶι", 6 UTF-8 bytes: the longest LIKE pattern a filter can make
        {"any": [cond("ends_with", "ῷ" * MAX_VALUE_LENGTH)] * (MAX_NODES - 1)},
        {"all": [cond("not_in", list(range(MAX_LIST_VALUES // 2)))] * 2},
        {"any": [cond("in", [str(n) for n in range(MAX_LIST_VALUES)])]},
    ]
    for raw in largest:
        assert sql_matches(sync_engine, raw) == python_matches(raw, people)

"""syncgate benchmark: creating an active segment over N contacts, against one SQL count.

    .venv/bin/python bench/segments.py --database sqlite
    .venv/bin/python bench/segments.py --database postgresql [--contacts 100000] [--quick]

For each database: a fresh database, migrated (`syncgate migrate`), seeded with N contacts and
their properties by bulk SQL (not measured), then the real service (`syncgate serve`, with its
worker). Per filter: the wall time of `POST /api/segments` (an active segment) until the
segment is `ready`, against one equivalent hand-written `SELECT count(*)` on the same
database from this process, warm (target: at most 3 times it); best of 5 interleaved repeats
of each (1 with --quick). The segment's size must equal that count. Afterwards the service's
RSS (VmRSS and peak VmHWM; target ≤ 200 MB). Also measured, for diagnosis: CPU time of both
sides, the count the service's own filter SQL gives (`syncgate.sync.filters.to_sql`, as the
preview endpoint runs it), the service's membership statement (`INSERT … SELECT`) run directly
in rolled-back transactions, variants of it, and the plans.

Prints a table and writes bench/results/segments-<db>.json (segments-<db>-quick.json with
--quick). See bench/README.md, "Segment creation over 100,000 contacts".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT)]

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import (  # noqa: E402
    ColumnElement,
    and_,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql as pg_dialect  # noqa: E402
from sqlalchemy.dialects import sqlite as sqlite_dialect  # noqa: E402
from sqlalchemy.sql import ClauseElement  # noqa: E402

from bench.run import (  # noqa: E402
    ADMIN_TOKEN,
    Databases,
    Process,
    Service,
    _on_alarm,
    _on_signal,
    base_env,
    machine_info,
    process_cpu_seconds,
    wait_for_quiet,
)
from syncgate.sync import filters as app_filters  # noqa: E402
from syncgate.sync.filters import (  # noqa: E402
    All,
    AnyOf,
    Condition,
    Filter,
    Not,
    fold,
    numeric_value,
    parse_filter,
    to_sql,
)
from syncgate.sync.models import Contact, SegmentMember  # noqa: E402

TARGETS = {"ratio_to_sql_count": 3.0, "rss_mb": 200.0}
SEED = 20261128


# -- filters and their hand-written counts ------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: str
    shape: str
    filter: dict[str, Any]
    # The matching contact ids, written by hand over contact_properties (the way one would ask
    # the database directly); identical SQL on SQLite and PostgreSQL.
    members_sql: str

    @property
    def count_sql(self) -> str:
        """The one equivalent SQL count the segment is compared with."""
        return f"SELECT count(*) FROM ({self.members_sql}) AS m"


CASES = (
    Case(
        key="eq",
        shape="one equality",
        filter={"property": "lifecyclestage", "operator": "eq", "value": "customer"},
        members_sql=(
            "SELECT contact_id FROM contact_properties "
            "WHERE name = 'lifecyclestage' AND value_folded = 'customer'"
        ),
    ),
    Case(
        key="and_or",
        shape="(in AND in) OR gte",
        filter={
            "any": [
                {
                    "all": [
                        {
                            "property": "lifecyclestage",
                            "operator": "in",
                            "value": ["customer", "opportunity"],
                        },
                        {
                            "property": "country",
                            "operator": "in",
                            "value": ["Germany", "France", "United Kingdom"],
                        },
                    ]
                },
                {"property": "num_employees", "operator": "gte", "value": 1000},
            ]
        },
        members_sql=(
            "SELECT a.contact_id FROM contact_properties a "
            "JOIN contact_properties b ON b.contact_id = a.contact_id AND b.name = 'country' "
            "AND b.value_folded IN ('germany', 'france', 'united kingdom') "
            "WHERE a.name = 'lifecyclestage' AND a.value_folded IN ('customer', 'opportunity') "
            "UNION "
            "SELECT contact_id FROM contact_properties "
            "WHERE name = 'num_employees' AND value_number >= 1000"
        ),
    ),
    Case(
        key="text",
        shape="contains AND not_contains",
        filter={
            "all": [
                {"property": "jobtitle", "operator": "contains", "value": "Engineer"},
                {"property": "email", "operator": "not_contains", "value": "@gmail.com"},
            ]
        },
        members_sql=(
            "SELECT j.contact_id FROM contact_properties j "
            "WHERE j.name = 'jobtitle' AND j.value_folded LIKE '%engineer%' "
            "AND NOT EXISTS (SELECT 1 FROM contact_properties e WHERE e.contact_id = j.contact_id "
            "AND e.name = 'email' AND e.value_folded LIKE '%@gmail.com%')"
        ),
    ),
)


# -- seeding -----------------------------------------------------------------------------------

LIFECYCLE = (
    ("subscriber", 20),
    ("lead", 33),
    ("marketingqualifiedlead", 15),
    ("salesqualifiedlead", 8),
    ("opportunity", 7),
    ("customer", 12),
    ("evangelist", 3),
    ("other", 2),
)
COUNTRIES = (
    ("United States", 35),
    ("United Kingdom", 10),
    ("Germany", 10),
    ("France", 8),
    ("India", 8),
    ("Canada", 6),
    ("Japan", 5),
    ("Brazil", 5),
    ("Australia", 5),
    ("Netherlands", 4),
    ("Spain", 4),
)
JOB_TITLES = (
    "Software Engineer",
    "Senior Software Engineer",
    "Data Engineer",
    "Engineering Manager",
    "Sales Manager",
    "Account Executive",
    "Marketing Director",
    "Product Manager",
    "CEO",
    "CTO",
    "Office Manager",
    "Consultant",
    "Customer Success Manager",
    "Head of Operations",
)
FIRST = ("Anna", "Ben", "Chloé", "David", "Emma", "Félix", "Grace", "Hiro", "Ines", "Jonas")
LAST = ("Smith", "Müller", "Garcia", "Dubois", "Tanaka", "Rossi", "Novak", "Silva", "Khan", "Lee")
WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Tech")
SUFFIXES = ("Inc", "GmbH", "Ltd", "SA", "Labs", "Group", "Systems")
FREE_MAIL = (("gmail.com", 25), ("yahoo.com", 8), ("outlook.com", 7))
EPOCH_2020 = datetime(2020, 1, 1, tzinfo=UTC)


def _weighted(rng: random.Random, items: Sequence[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in items], [w for _, w in items])[0]


def contact_rows(
    count: int,
) -> Iterator[tuple[tuple[Any, ...], list[tuple[str, str]]]]:
    """Per contact: (id, hubspot_id, email, salesforce_id, salesforce_object) and its properties
    (name, value): 7 to 10 per contact, some missing (country 8 %, num_employees 15 %, …)."""
    rng = random.Random(SEED)
    for i in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        company = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(SUFFIXES)}"
        domain = _weighted(rng, (*FREE_MAIL, ("", 60))) or company.lower().replace(" ", "") + ".com"
        email = f"{first.lower()}.{last.lower()}{i}@{domain}"
        props = [
            ("email", email),
            ("firstname", first),
            ("lastname", last),
            ("company", company),
            ("lifecyclestage", _weighted(rng, LIFECYCLE)),
            ("createdate", (EPOCH_2020 + timedelta(minutes=rng.randrange(3_000_000))).isoformat()),
        ]
        if rng.random() < 0.92:
            props.append(("country", _weighted(rng, COUNTRIES)))
        if rng.random() < 0.90:
            props.append(("jobtitle", rng.choice(JOB_TITLES)))
        if rng.random() < 0.85:
            props.append(("num_employees", str(int(rng.lognormvariate(4.0, 1.8)) + 1)))
        if rng.random() < 0.60:
            props.append(
                ("hs_lead_status", rng.choice(("NEW", "OPEN", "IN_PROGRESS", "CONNECTED")))
            )
        linked = rng.random() < 0.5
        contact = (
            i,
            str(1_000_000 + i),
            email.lower(),
            f"00Q5g{i:013d}" if linked else None,
            "Lead" if linked else None,
        )
        yield contact, props


def seed(kind: str, url: str, count: int) -> dict[str, Any]:
    """Bulk-insert ``count`` contacts with their properties (executemany on SQLite, COPY on
    PostgreSQL); value_folded / value_number computed as the store does."""
    began = time.perf_counter()
    now = datetime.now(UTC)
    changed_ms = int(now.timestamp() * 1000)
    contacts: list[tuple[Any, ...]] = []
    properties: list[tuple[Any, ...]] = []
    for contact, props in contact_rows(count):
        contacts.append(contact)
        for name, value in props:
            properties.append(
                (contact[0], name, value, fold(value), numeric_value(value), changed_ms)
            )
    contact_columns = (
        "id, hubspot_id, email, salesforce_id, salesforce_object, created_at, updated_at"
    )
    property_columns = "contact_id, name, value, value_folded, value_number, changed_at_ms"
    if kind == "sqlite":
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime format
        lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            lite.execute("PRAGMA synchronous = OFF")
            lite.execute("BEGIN")
            lite.executemany(
                f"INSERT INTO contacts ({contact_columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*c, stamp, stamp) for c in contacts],
            )
            lite.executemany(
                f"INSERT INTO contact_properties ({property_columns}) VALUES (?, ?, ?, ?, ?, ?)",
                properties,
            )
            lite.execute("COMMIT")
            lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            lite.close()
    else:
        with psycopg.connect(url, autocommit=True) as connection:
            with connection.transaction(), connection.cursor() as cursor:
                with cursor.copy(f"COPY contacts ({contact_columns}) FROM STDIN".encode()) as copy:
                    for c in contacts:
                        copy.write_row((*c, now, now))
                copy_properties = f"COPY contact_properties ({property_columns}) FROM STDIN"
                with cursor.copy(copy_properties.encode()) as copy:
                    for p in properties:
                        copy.write_row(p)
                cursor.execute(
                    b"SELECT setval(pg_get_serial_sequence('contacts', 'id'), "
                    b"(SELECT max(id) FROM contacts))"
                )
            # What autovacuum does after a bulk load: statistics and the visibility map.
            connection.execute(b"VACUUM (ANALYZE) contacts, contact_properties")
    return {
        "contacts": len(contacts),
        "contact_properties": len(properties),
        "seconds": round(time.perf_counter() - began, 1),
    }


# -- direct SQL from this process --------------------------------------------------------------


def to_sql_in_form(node: Filter) -> ColumnElement[bool]:
    """Diagnosis only, a candidate fix: syncgate.sync.filters.to_sql with each condition as
    `contacts.id IN (SELECT contact_id FROM contact_properties WHERE name = … AND …)` (an
    uncorrelated set the database can build once, or drive the scan from) instead of a
    correlated EXISTS per contact. Same value tests (the app's own `_sql_value`)."""
    p = app_filters._p
    match node:
        case Condition():
            positive = app_filters._NEGATED.get(node.operator, node.operator)
            ids = select(p.contact_id).where(
                p.name == node.property,
                p.value.is_not(None),
                app_filters._sql_value(positive, node.value),
            )
            found = Contact.id.in_(ids)
            return not_(found) if node.operator in app_filters._NEGATED else found
        case Not(filter=inner):
            return not_(to_sql_in_form(inner))
        case All(filters=items):
            return and_(true(), *(to_sql_in_form(item) for item in items))
        case AnyOf(filters=items):
            return or_(false(), *(to_sql_in_form(item) for item in items))
    raise TypeError(node)


class Direct:
    """A plain driver connection to the service's database (autocommit), for the counts,
    the service's own statement in a rolled-back transaction, and plans."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.dialect: Any
        if kind == "sqlite":
            self.dialect = sqlite_dialect.dialect(paramstyle="named")
            self.lite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.lite.execute("PRAGMA busy_timeout = 30000")
        else:
            self.dialect = pg_dialect.psycopg.dialect()  # type: ignore[no-untyped-call]
            self.pg = psycopg.connect(url, autocommit=True)
            self.backend_pid = self.pg.info.backend_pid

    def sql(self, statement: ClauseElement) -> tuple[str, dict[str, Any]]:
        """The statement as the service sends it: SQL text with bound parameters (IN lists
        expanded to one parameter per item, as SQLAlchemy does when executing)."""
        compiled = statement.compile(
            dialect=self.dialect, compile_kwargs={"render_postcompile": True}
        )
        return str(compiled), dict(compiled.params)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            return self.lite.execute(sql, params or {}).fetchall()
        return self.pg.execute(sql.encode(), params or None).fetchall()

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Run a statement; its row count."""
        if self.kind == "sqlite":
            return self.lite.execute(sql, params or {}).rowcount
        return self.pg.execute(sql.encode(), params or None).rowcount

    def cpu_seconds(self) -> float:
        """CPU used so far by the SQL this connection runs: this process (SQLite runs in it),
        plus its PostgreSQL backend."""
        own = time.process_time()
        return own if self.kind == "sqlite" else own + process_cpu_seconds(self.backend_pid)

    def count(
        self, sql: str, params: dict[str, Any] | None = None, *, serial: bool = False
    ) -> tuple[int, float, float]:
        """One count: (count, wall seconds, CPU seconds). ``serial`` (PostgreSQL) forbids
        parallel workers, whose CPU is not accounted to this backend."""
        if serial and self.kind == "postgresql":
            self.execute("SET max_parallel_workers_per_gather = 0")
        try:
            cpu = self.cpu_seconds()
            began = time.perf_counter()
            count = int(self.rows(sql, params)[0][0])
            wall = time.perf_counter() - began
            cpu = self.cpu_seconds() - cpu
        finally:
            if serial and self.kind == "postgresql":
                self.execute("RESET max_parallel_workers_per_gather")
        return count, wall, cpu

    def service_backends(self) -> set[int]:
        """PostgreSQL backends connected to this database other than this one (the service's
        pool: request handlers and the worker)."""
        if self.kind == "sqlite":
            return set()
        rows = self.rows(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return {int(row[0]) for row in rows}

    def plan(self, sql: str, params: dict[str, Any] | None = None) -> list[str]:
        if self.kind == "sqlite":
            rows = self.rows(f"EXPLAIN QUERY PLAN {sql}", params)
            return [f"{row[0]}:{row[1]} {row[3]}" for row in rows]
        return [str(row[0]) for row in self.rows(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)]

    @contextmanager
    def rolled_back(self) -> Iterator[None]:
        self.execute("BEGIN IMMEDIATE" if self.kind == "sqlite" else "BEGIN")
        try:
            yield
        finally:
            self.execute("ROLLBACK")

    def _probe_segment(self) -> int:
        return int(
            self.rows(
                "INSERT INTO segments (name, type, status, size, created_at, updated_at) "
                "VALUES ('bench-probe', 'active', 'processing', 0, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
            )[0][0]
        )

    def membership_statement(self, case: Case, runs: int) -> dict[str, Any]:
        """The service's `INSERT INTO segment_members … SELECT` (recompute_membership) for this
        filter, built with the app's own to_sql, run directly in transactions that are rolled
        back: its time, rows and plan (PostgreSQL: EXPLAIN ANALYZE; SQLite: the query plan).
        For comparison (diagnosis only): the same rows inserted by the hand-written SELECT and
        by to_sql_in_form, and on PostgreSQL the service's statement with JIT off, and also
        without the foreign-key checks on segment_members."""
        variants: dict[str, dict[str, Any]] = {}

        def service_sql(segment_id: int) -> tuple[str, dict[str, Any]]:
            return self.sql(
                insert(SegmentMember).from_select(
                    ["segment_id", "contact_id"],
                    select(literal(segment_id), Contact.id).where(
                        to_sql(parse_filter(case.filter))
                    ),
                )
            )

        def in_form_sql(segment_id: int) -> tuple[str, dict[str, Any]]:
            return self.sql(
                insert(SegmentMember).from_select(
                    ["segment_id", "contact_id"],
                    select(literal(segment_id), Contact.id).where(
                        to_sql_in_form(parse_filter(case.filter))
                    ),
                )
            )

        def hand_sql(segment_id: int) -> tuple[str, dict[str, Any]]:
            return (
                "INSERT INTO segment_members (segment_id, contact_id) "
                f"SELECT {segment_id}, m.contact_id FROM ({case.members_sql}) AS m",
                {},
            )

        setups: list[tuple[str, Callable[[int], tuple[str, dict[str, Any]]], str | None]] = [
            ("service", service_sql, None),
            ("hand_select", hand_sql, None),
            ("in_form", in_form_sql, None),
        ]
        if self.kind == "postgresql":
            setups.append(("service_jit_off", service_sql, "SET LOCAL jit = off"))
            # Foreign-key checks off (replica role skips the RI triggers): their share.
            setups.append(
                (
                    "service_jit_off_no_fk_checks",
                    service_sql,
                    "SET LOCAL jit = off; SET LOCAL session_replication_role = replica",
                )
            )
        for name, build, setting in setups:
            times = []
            cpus = []
            inserted = -1
            sql, params = "", dict[str, Any]()
            for _ in range(runs):
                with self.rolled_back():
                    for part in setting.split("; ") if setting else ():
                        self.execute(part)
                    sql, params = build(self._probe_segment())
                    cpu = self.cpu_seconds()
                    began = time.perf_counter()
                    inserted = self.execute(sql, params)
                    times.append(time.perf_counter() - began)
                    cpus.append(self.cpu_seconds() - cpu)
            with self.rolled_back():
                for part in setting.split("; ") if setting else ():
                    self.execute(part)
                sql, params = build(self._probe_segment())
                plan = self.plan(sql, params)
            variants[name] = {
                "sql": sql,
                "params": params,
                "rows": inserted,
                "best_ms": round(1000 * min(times), 1),
                "all_ms": [round(1000 * t, 1) for t in times],
                "cpu_best_ms": round(1000 * min(cpus), 1),
                "cpu_all_ms": [round(1000 * c, 1) for c in cpus],
                "plan": plan,
            }
        return variants

    def close(self) -> None:
        if self.kind == "sqlite":
            self.lite.close()
        else:
            self.pg.close()


# -- the service -------------------------------------------------------------------------------


def migrate(url: str, log_dir: Path) -> None:
    """`syncgate migrate` (python -m app migrate) on the fresh database."""
    env = base_env() | {"SYNCGATE_DATABASE_URL": url, "SYNCGATE_ADMIN_TOKEN": ADMIN_TOKEN}
    process = Process("migrate", [sys.executable, "-m", "syncgate", "migrate"], env, log_dir)
    if process.popen.wait(timeout=120) != 0:
        raise RuntimeError(f"syncgate migrate failed:\n{process.tail()}")
    process.stop()


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in MB (10^6 bytes)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) * 1024 / 1e6, 1)
    return fields


def create_until_ready(http: httpx.Client, name: str, case: Case) -> dict[str, Any]:
    """POST /api/segments, then (only if the answer is not `ready`) poll GET until it is."""
    began = time.perf_counter()
    answer = http.post(
        "/api/segments", json={"name": name, "type": "active", "filter": case.filter}
    )
    post_s = time.perf_counter() - began
    if answer.status_code != 201:
        raise RuntimeError(f"POST /api/segments answered {answer.status_code}: {answer.text}")
    segment: dict[str, Any] = answer.json()
    ready_on_post = segment["status"] == "ready"
    polls = 0
    while segment["status"] != "ready":
        time.sleep(0.005)
        polls += 1
        got = http.get(f"/api/segments/{segment['id']}")
        got.raise_for_status()
        segment = got.json()
    return {
        "id": segment["id"],
        "size": segment["size"],
        "seconds": time.perf_counter() - began,
        "post_s": post_s,
        "ready_on_post": ready_on_post,
        "polls": polls,
    }


def best(values: Sequence[float]) -> float:
    return round(1000 * min(values), 1)


def ms(values: Sequence[float]) -> list[float]:
    return [round(1000 * v, 1) for v in values]


def measure_case(
    opts: Options, case: Case, direct: Direct, http: httpx.Client, pid: int
) -> dict[str, Any]:
    """Interleaved repeats (the machine is shared: counts and creations see the same load):
    each repeat runs the hand-written count, the to_sql count, (PostgreSQL) the hand-written
    count without parallel workers for its CPU, then creates the segment and deletes it again.
    Best of the repeats for each."""
    preview_sql, preview_params = direct.sql(
        select(func.count()).select_from(Contact).where(to_sql(parse_filter(case.filter)))
    )
    # Warm-up: pages in cache, the drivers' statement caches, the service's compiled SQL.
    direct.count(case.count_sql)
    direct.count(preview_sql, preview_params)
    counts: dict[str, list[tuple[int, float, float]]] = {"hand": [], "to_sql": [], "serial": []}
    creations = []
    for repeat in range(opts.repeats):
        quiet = wait_for_quiet(opts.quiet_wait)
        counts["hand"].append(direct.count(case.count_sql))
        counts["to_sql"].append(direct.count(preview_sql, preview_params))
        if opts.database == "postgresql":
            counts["serial"].append(direct.count(case.count_sql, serial=True))
        backends = direct.service_backends()
        before = {p: process_cpu_seconds(p) for p in backends | {pid}}
        created = create_until_ready(http, f"bench {case.key} {repeat}", case)
        after_backends = direct.service_backends()
        # A backend that appeared during the request counts in full.
        created["service_cpu_s"] = round(
            sum(
                process_cpu_seconds(p) - before.get(p, 0.0)
                for p in backends | after_backends | {pid}
            ),
            3,
        )
        created["process_cpu_s"] = round(process_cpu_seconds(pid) - before[pid], 3)
        created |= quiet
        creations.append(created)
        # Delete it: the next repeat starts from the same tables (members cascade).
        deleted = http.delete(f"/api/segments/{created['id']}")
        if deleted.status_code != 204:
            raise RuntimeError(f"DELETE answered {deleted.status_code}: {deleted.text}")
    statement = direct.membership_statement(case, opts.statement_runs)
    sizes = {c["size"] for c in creations}
    count = counts["hand"][0][0]
    found = {kind: {c for c, _, _ in runs} for kind, runs in counts.items() if runs}
    size_ok = sizes == {count} and all(values == {count} for values in found.values())
    inserted = {name: variant["rows"] for name, variant in statement.items()}
    size_ok = size_ok and set(inserted.values()) == {count}
    if not size_ok:
        print(
            f"!!! SIZE MISMATCH for {case.key}: segment sizes {sorted(sizes)}, counts "
            f"{ {k: sorted(v) for k, v in found.items()} }, INSERT…SELECT rows {inserted}",
            file=sys.stderr,
            flush=True,
        )
    create_wall = [c["seconds"] for c in creations]
    create_cpu = [c["service_cpu_s"] for c in creations]
    hand_wall = [w for _, w, _ in counts["hand"]]
    cpu_source = counts["serial"] or counts["hand"]
    hand_cpu = [c for _, _, c in cpu_source]
    entry = {
        "key": case.key,
        "shape": case.shape,
        "filter": case.filter,
        "count_sql": case.count_sql,
        "sql_count": count,
        "segment_sizes": sorted(sizes),
        "size_matches": size_ok,
        "sql_count_best_ms": best(hand_wall),
        "sql_count_all_ms": ms(hand_wall),
        "sql_count_cpu_best_ms": best(hand_cpu),
        "sql_count_cpu_all_ms": ms(hand_cpu),
        "sql_count_serial_all_ms": ms([w for _, w, _ in counts["serial"]]),
        "to_sql_count_sql": preview_sql,
        "to_sql_count_params": preview_params,
        "to_sql_count_best_ms": best([w for _, w, _ in counts["to_sql"]]),
        "to_sql_count_all_ms": ms([w for _, w, _ in counts["to_sql"]]),
        "to_sql_count_cpu_best_ms": best([c for _, _, c in counts["to_sql"]]),
        "create_best_ms": best(create_wall),
        "create_all_ms": ms(create_wall),
        "create_cpu_best_ms": best(create_cpu),
        "create_cpu_all_ms": ms(create_cpu),
        "ready_on_post": all(c["ready_on_post"] for c in creations),
        "creations": [
            c | {"seconds": round(c["seconds"], 4), "post_s": round(c["post_s"], 4)}
            for c in creations
        ],
        "ratio": round(min(create_wall) / min(hand_wall), 2),
        "ratio_to_sql_count": round(min(create_wall) / min(w for _, w, _ in counts["to_sql"]), 2),
        "cpu_ratio": round(min(create_cpu) / max(min(hand_cpu), 1e-3), 2),
        "membership_statement": statement,
        "count_plan": direct.plan(case.count_sql),
        "to_sql_count_plan": direct.plan(preview_sql, preview_params),
    }
    print(
        f"  members {count:,}; SQL count {entry['sql_count_all_ms']} ms "
        f"(CPU {entry['sql_count_cpu_best_ms']}), to_sql count {entry['to_sql_count_all_ms']}; "
        f"create→ready {entry['create_all_ms']} ms (CPU {entry['create_cpu_all_ms']}); "
        f"INSERT…SELECT "
        + ", ".join(f"{k} {v['best_ms']}/{v['cpu_best_ms']}" for k, v in statement.items())
        + f" ms; ratio {entry['ratio']} (CPU {entry['cpu_ratio']})",
        flush=True,
    )
    return entry


def measure(opts: Options, dbs: Databases, log_dir: Path) -> dict[str, Any]:
    url = dbs.new("segments")
    print(f"migrating and seeding {opts.contacts:,} contacts…", flush=True)
    migrate(url, log_dir)
    seeded = seed(opts.database, url, opts.contacts)
    print(
        f"  {seeded['contacts']:,} contacts, {seeded['contact_properties']:,} properties "
        f"in {seeded['seconds']} s",
        flush=True,
    )
    direct = Direct(opts.database, url)
    service = Service(url, log_dir, worker=True)
    pid = service.process.pid
    cases: list[dict[str, Any]] = []
    try:
        memory_start = memory_mb(pid)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=service.url, headers=headers, timeout=600.0) as http:
            http.get("/api/segments").raise_for_status()  # connection and first request warm
            for case in CASES:
                print(f"filter {case.key} ({case.shape})…", flush=True)
                cases.append(measure_case(opts, case, direct, http, pid))
        memory_end = memory_mb(pid)
    finally:
        direct.close()
        service.stop()
        dbs.drop(url)
    return {
        "seed": seeded,
        "cases": cases,
        "memory_mb_after_start": memory_start,
        "memory_mb_after": memory_end,
    }


# -- output ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def render(results: dict[str, Any]) -> str:
    m = results["measurement"]
    lines = [
        f"\nSegment creation over {m['seed']['contacts']:,} contacts "
        f"({m['seed']['contact_properties']:,} properties), {results['database']} "
        f"({results['database_version']}); best of {results['options']['repeats']} interleaved",
        f"{'filter':<26} {'members':>7} {'SQL count ms':>12} {'create→ready ms':>15} "
        f"{'ratio':>5} {'CPU ms count/create':>19} {'CPU ratio':>9} {'to_sql count':>12} "
        f"{'INSERT…SELECT ms':>16} {'size':>4}",
    ]
    for c in m["cases"]:
        st = c["membership_statement"]
        lines.append(
            f"{c['shape']:<26} {c['sql_count']:>7,} {c['sql_count_best_ms']:>12.1f} "
            f"{c['create_best_ms']:>15.1f} {c['ratio']:>5.2f} "
            f"{c['sql_count_cpu_best_ms']:>9.0f}/{c['create_cpu_best_ms']:<9.0f} "
            f"{c['cpu_ratio']:>9.2f} {c['to_sql_count_best_ms']:>12.1f} "
            f"{st['service']['best_ms']:>16.1f} {'ok' if c['size_matches'] else 'BAD':>4}"
        )
    worst = max(c["ratio"] for c in m["cases"])
    rss = m["memory_mb_after"]
    lines += [
        "ratio = best create→ready ÷ best hand-written SQL count (wall time); target ≤ "
        f"{TARGETS['ratio_to_sql_count']:.0f}: "
        f"{verdict(worst <= TARGETS['ratio_to_sql_count'])} (worst {worst:.2f})",
        "CPU: the count's (this process + its PostgreSQL backend, no parallel workers) and the "
        "service's (process + its backends) during the request; to_sql count = the service's "
        "filter SQL counted (as the preview endpoint does); INSERT…SELECT = the service's "
        "membership statement run directly, rolled back",
        f"service memory: VmRSS {m['memory_mb_after_start'].get('VmRSS')} MB after start, "
        f"{rss.get('VmRSS')} MB afterwards, peak VmHWM {rss.get('VmHWM')} MB; target ≤ "
        f"{TARGETS['rss_mb']:.0f} MB: {verdict(rss.get('VmRSS', 1e9) <= TARGETS['rss_mb'])} "
        f"(peak: {verdict(rss.get('VmHWM', 1e9) <= TARGETS['rss_mb'])})",
    ]
    for c in m["cases"]:
        lines.append(
            f"  {c['key']}: to_sql count CPU {c['to_sql_count_cpu_best_ms']} ms; "
            "INSERT…SELECT variants, best wall / CPU ms: "
            + ", ".join(
                f"{k} {v['best_ms']}/{v['cpu_best_ms']}"
                for k, v in c["membership_statement"].items()
            )
        )
    return "\n".join(lines)


def render_markdown(runs: list[dict[str, Any]]) -> str:
    """The README's table, from results files (one or more databases)."""
    rows = [
        "| database | filter | members | SQL count ms (CPU) | create→ready ms (CPU) "
        "| **ratio** wall (CPU); target ≤ 3 | to_sql count ms (CPU) "
        "| INSERT…SELECT CPU ms: service / JIT off / JIT off, no FK checks / IN form / "
        "hand-written |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        m = run["measurement"]
        for c in m["cases"]:
            st = c["membership_statement"]

            def cpu(name: str, variants: dict[str, Any] = st) -> str:
                return f"{variants[name]['cpu_best_ms']:.0f}" if name in variants else "—"

            ratio = f"{c['ratio']:.2f} ({c['cpu_ratio']:.2f})"
            missed = max(c["ratio"], c["cpu_ratio"]) > TARGETS["ratio_to_sql_count"]
            size = "" if c["size_matches"] else " **size ≠ count**"
            rows.append(
                f"| {run['database']} | {c['shape']} | {c['sql_count']:,}{size} "
                f"| {c['sql_count_best_ms']:.0f} ({c['sql_count_cpu_best_ms']:.0f}) "
                f"| {c['create_best_ms']:.0f} ({c['create_cpu_best_ms']:.0f}) "
                f"| {f'**{ratio}**' if missed else ratio} "
                f"| {c['to_sql_count_best_ms']:.0f} ({c.get('to_sql_count_cpu_best_ms', 0):.0f}) "
                f"| {cpu('service')} / {cpu('service_jit_off')} / "
                f"{cpu('service_jit_off_no_fk_checks')} / {cpu('in_form')} / "
                f"{cpu('hand_select')} |"
            )
    rows.append("")
    rows.append(
        "| database | service VmRSS after start → after the creations (MB) | peak VmHWM (MB) "
        "| target ≤ 200 MB |"
    )
    rows.append("|---|---|---|---|")
    for run in runs:
        m = run["measurement"]
        after = m["memory_mb_after"]
        ok = max(after.get("VmRSS", 1e9), after.get("VmHWM", 1e9)) <= TARGETS["rss_mb"]
        rows.append(
            f"| {run['database']} | {m['memory_mb_after_start'].get('VmRSS')} → "
            f"{after.get('VmRSS')} | {after.get('VmHWM')} | {verdict(ok)} |"
        )
    return "\n".join(rows)


# -- main --------------------------------------------------------------------------------------


@dataclass
class Options:
    database: str
    contacts: int
    quick: bool
    repeats: int
    statement_runs: int
    admin_url: str
    quiet_wait: float


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--contacts", type=int, default=None, help="default 100,000 (quick 20,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 contacts, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="segment creations per filter")
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1/postgres",
        help="where the fresh database is created and dropped (PostgreSQL only)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="longest wait for other load on the machine to settle before each measurement",
    )
    parser.add_argument(
        "--markdown",
        nargs="+",
        metavar="RESULTS_JSON",
        help="print the README's table from earlier results files and exit",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(render_markdown([json.loads(Path(name).read_text()) for name in args.markdown]))
        raise SystemExit(0)
    quick = bool(args.quick)
    return Options(
        database=args.database,
        contacts=args.contacts or (20_000 if quick else 100_000),
        quick=quick,
        repeats=args.repeats or (1 if quick else 5),
        statement_runs=1 if quick else 5,
        admin_url=args.postgres_url,
        quiet_wait=args.quiet_wait if args.quiet_wait is not None else (5.0 if quick else 10.0),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    command = shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])
    machine = machine_info()
    print(f"command: {command}")
    print(
        f"machine: {machine['cores']} cores, {machine['cpu_model']}, {machine['ram_gib']} GiB RAM, "
        f"Linux {machine['kernel']}, Python {machine['python']}, load average "
        f"{' '.join(machine['loadavg_at_start'])} | git {machine['git'].get('commit', '?')[:10]} "
        f"({machine['git'].get('dirty_files', '?')} changed files)",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(900 if opts.quick else 2400)
    work_dir = Path(tempfile.mkdtemp(prefix="syncgate-segments-"))
    log_dir = work_dir / "logs"
    log_dir.mkdir()
    dbs = Databases(opts.database, opts.admin_url, work_dir)
    started = time.monotonic()
    try:
        database_version = dbs.server_version()
        measurement = measure(opts, dbs, log_dir)
    except BaseException:
        for process in Process.running:
            print(f"--- {process.name} log tail ---\n{process.tail()}", file=sys.stderr)
        raise
    finally:
        signal.alarm(0)
        Process.stop_all()
        dbs.close()
    results = {
        "benchmark": "segments",
        "database": opts.database,
        "database_version": database_version,
        "quick": opts.quick,
        "command": command,
        "machine": machine,
        "options": {k: v for k, v in vars(opts).items() if k != "admin_url"},
        "targets": TARGETS,
        "measurement": measurement,
        "elapsed_s": round(time.monotonic() - started, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(render(results))
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"segments-{opts.database}{'-quick' if opts.quick else ''}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(out)
    print(f"\nresults: {out.relative_to(ROOT)} (run took {results['elapsed_s']:.0f} s)")
    with suppress(OSError):
        shutil.rmtree(work_dir)
    failed = any(not c["size_matches"] for c in measurement["cases"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

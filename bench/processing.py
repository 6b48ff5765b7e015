"""syncgate benchmark: processing + delivery of a burst, and the HubSpot backfill, before/after.

    .venv/bin/python bench/processing.py --baseline cd86596            # ≈ 15 min, both databases
    .venv/bin/python bench/processing.py --baseline cd86596 --quick    # ≈ 4 min

Every figure is measured for the working tree ("current") and, in the same run, for the code of
`--baseline` (a commit, checked out once as a `git worktree` under the temporary directory, or a
path to a checkout): each run starts `python -m syncgate worker` with PYTHONPATH set to that
tree. The platforms are bench/fastfake.py, a fast fake in its own process, so what is measured
is syncgate. Writes bench/results/processing[-quick].json; `--markdown FILE` prints its table.
See bench/README.md ("Processing, delivery and backfill") for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT)]

import httpx  # noqa: E402

from bench.run import (  # noqa: E402
    Databases,
    Profiler,
    _on_alarm,
    _on_signal,
    base_env,
    free_port,
    machine_info,
    process_cpu_seconds,
    wait_for_quiet,
)

TARGETS = {
    "events_per_s_postgresql": 1500.0,
    "events_per_s_sqlite": 1000.0,
    "cpu_ms_per_event": 0.6,
    "backfill_floor_ratio": 5.0,
    "backfill_rss_mb": 200.0,
}
# What the backfill asks HubSpot for: the default mappings and the segments' properties.
BACKFILL_PROPERTIES = sorted(
    {
        *[
            "email",
            "firstname",
            "lastname",
            "salutation",
            "jobtitle",
            "company",
            "phone",
            "mobilephone",
            "fax",
        ],
        *[
            "address",
            "city",
            "state",
            "zip",
            "country",
            "website",
            "industry",
            "annualrevenue",
            "lifecyclestage",
        ],
    }
)
COUNTRIES = ("Denmark", "Sweden", "France", "Germany", "Spain", "Italy", "Norway")
STAGES = ("subscriber", "lead", "customer", "opportunity")


@dataclass(frozen=True)
class Tree:
    name: str  # "current" or "baseline"
    path: Path
    commit: str


class Child:
    """A child process running one tree's code, its output in a log file."""

    def __init__(self, tree: Tree, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            # cwd is the tree: `python -m syncgate` puts the cwd first on sys.path.
            self.popen = subprocess.Popen(
                args,
                cwd=tree.path,
                env=env | {"PYTHONPATH": str(tree.path)},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def tree_side(tree: Tree, *args: str, timeout: float = 900) -> dict[str, Any]:
    """Run bench/tree_side.py with `tree`'s code; its JSON answer."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "tree_side.py"), *args],
        cwd=tempfile.gettempdir(),
        env=base_env() | {"PYTHONPATH": str(tree.path)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tree_side {args[0]} ({tree.name}) failed:\n{done.stderr[-4000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not answer.pop("code", "").startswith(str(tree.path)):
        raise RuntimeError(f"tree_side ran the wrong code for {tree.name}")
    return answer


class FastFake:
    """bench/fastfake.py in its own process."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = log_dir / f"fastfake-{self.port}.log"
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, str(BENCH / "fastfake.py"), "--port", str(self.port)],
                env=base_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.monotonic() + 30
        while True:
            with suppress(httpx.HTTPError):
                self.stats()
                break
            if time.monotonic() > deadline or self.popen.poll() is not None:
                raise RuntimeError(f"the fast fake did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get("/_stats").json()
        return answer

    def seed_leads(self, count: int) -> None:
        for start in range(0, count, 5000):
            records = [
                {
                    "Id": f"00Q{i:012d}AAA",
                    "Email": f"known{i}@bench.example",
                    "FirstName": f"First{i}",
                    "LastName": f"Last{i}",
                    "Company": f"Company {i % 500}",
                    "Title": "Engineer",
                }
                for i in range(start, min(count, start + 5000))
            ]
            self.http.post("/_seed/salesforce", json={"object": "Lead", "records": records})

    def seed_contacts(self, count: int, start: int, properties: dict[str, str]) -> None:
        body = {"count": count, "start": start, "properties": properties}
        self.http.post("/_seed/hubspot", json=body)

    def stop(self) -> None:
        self.http.close()
        self.popen.terminate()
        self.popen.wait(timeout=10)


def worker_env(url: str, fake: FastFake) -> dict[str, str]:
    return base_env() | {
        "SYNCGATE_DATABASE_URL": url,
        "SYNCGATE_ADMIN_TOKEN": "bench-admin-token-of-32-characters-or-more",
        "SYNCGATE_HUBSPOT_APP_ID": "1",
        "SYNCGATE_HUBSPOT_PORTAL_ID": "62515",
        "SYNCGATE_HUBSPOT_ACCESS_TOKEN": "fast-token",
        # A Professional/Enterprise portal's burst limit. The `new` burst reads its 10,000
        # contacts in 100 calls; the lowest tier's 100 per 10 s would make the probe at start-up
        # hold the last round for the rest of the window, and time HubSpot's limit, not syncgate.
        "SYNCGATE_HUBSPOT_REQUESTS_PER_10_SECONDS": "190",
        "SYNCGATE_HUBSPOT_API_BASE": fake.url,
        "SYNCGATE_SALESFORCE_LOGIN_URL": fake.url,
        "SYNCGATE_SALESFORCE_CLIENT_ID": "bench",
        "SYNCGATE_SALESFORCE_CLIENT_SECRET": "bench",
    }


def postgres_backends_cpu(admin_url: str, database: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to `database` (the workers' pools)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        rows = connection.execute(
            b"SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchall()
    return sum(process_cpu_seconds(int(pid)) for (pid,) in rows)


def measure_burst(
    tree: Tree,
    dbs: Databases,
    log_dir: Path,
    *,
    events: int,
    scenario: str,
    workers: int,
    profile: bool = False,
) -> dict[str, Any]:
    """`workers` worker processes of `tree`, idle, then `events` changes committed to the inbox
    at once; until the fake has every write. CPU is the workers' (and on PostgreSQL their
    backends') from the commit to the last write."""
    url = dbs.new(f"{tree.name}_{scenario}_{workers}w")
    fake = FastFake(log_dir)
    children: list[Child] = []
    try:
        tree_side(tree, "migrate", url)
        if scenario == "known":
            fake.seed_leads(events)
            tree_side(tree, "seed-known", url, str(events))
            wanted = "updated"
        else:
            # HubSpot has these contacts: a service that reads a contact at first sight finds them.
            fake.seed_contacts(
                events,
                5_000_000,
                {"email": "new{i}@bench.example", "firstname": "New{i}", "lastname": "Bench"},
            )
            wanted = "created"
        env = worker_env(url, fake)
        log = log_dir / f"worker-{tree.name}-{dbs.kind}-{scenario}-{workers}.log"
        args = [sys.executable, "-m", "syncgate", "worker"]
        children = [Child(tree, args, env, log) for _ in range(workers)]
        time.sleep(3.0)  # start-up: imports, migration check, first idle polls
        for child in children:
            if child.popen.poll() is not None:
                raise RuntimeError(f"worker exited:\n{log.read_text()[-3000:]}")
        quiet = wait_for_quiet(5.0)
        database = url.rsplit("/", 1)[1] if dbs.kind == "postgresql" else ""
        cpu0 = sum(process_cpu_seconds(c.popen.pid) for c in children)
        db_cpu0 = postgres_backends_cpu(dbs.admin_url, database) if database else 0.0
        profiler = None
        if profile:
            stacks = log_dir / f"profile-{tree.name}-{dbs.kind}-{scenario}-{workers}.txt"
            profiler = Profiler(children[0].popen.pid, stacks)
        filled = tree_side(tree, "fill", url, str(events), scenario)
        committed = float(filled["committed_at"])
        deadline = time.monotonic() + 600
        stats = fake.stats()
        while stats[wanted] < events and time.monotonic() < deadline:
            time.sleep(0.05)
            stats = fake.stats()
        cpu1 = sum(process_cpu_seconds(c.popen.pid) for c in children)
        db_cpu1 = postgres_backends_cpu(dbs.admin_url, database) if database else 0.0
        seconds = max(stats["last_write"] - committed, 1e-6)
        profile_summary = profiler.stop() if profiler is not None else None
        state = tree_side(tree, "check", url)
        calls = stats["write_calls"]
        return {
            "tree": tree.name,
            "commit": tree.commit,
            "database": dbs.kind,
            "scenario": scenario,
            "workers": workers,
            "events": events,
            "written": stats[wanted],
            "seconds": round(seconds, 2),
            "events_per_s": round(stats[wanted] / seconds, 1),
            "cpu_ms_per_event": round((cpu1 - cpu0) * 1000 / events, 3),
            "db_cpu_ms_per_event": round((db_cpu1 - db_cpu0) * 1000 / events, 3)
            if database
            else None,
            "duplicates": stats["duplicates"],
            "write_calls": len(calls),
            "records_per_call": round(sum(calls) / len(calls), 1) if calls else None,
            "fake_calls": stats["calls"],
            "state": state,
            "quiet": quiet,
            "profile": profile_summary,
        }
    finally:
        for child in children:
            child.stop()
        fake.stop()
        dbs.drop(url)


def measure_backfill(tree: Tree, dbs: Databases, log_dir: Path, contacts: int) -> dict[str, Any]:
    url = dbs.new(f"{tree.name}_backfill")
    fake = FastFake(log_dir)
    try:
        seed_backfill_contacts(fake, contacts)
        tree_side(tree, "migrate", url)
        quiet = wait_for_quiet(5.0)
        result = tree_side(tree, "backfill", url, fake.url, timeout=1800)
        state = tree_side(tree, "check", url)
        return {
            "tree": tree.name,
            "commit": tree.commit,
            "database": dbs.kind,
            "contacts": contacts,
            **result,
            "state": {k: state[k] for k in ("contacts", "contact_properties", "segments")},
            "quiet": quiet,
        }
    finally:
        fake.stop()
        dbs.drop(url)


def seed_backfill_contacts(fake: FastFake, contacts: int) -> None:
    """Contacts with a dozen properties, varied enough for the segments to split them."""
    block = 1000
    for start in range(1, contacts + 1, block):
        count = min(block, contacts + 1 - start)
        country = COUNTRIES[(start // block) % len(COUNTRIES)]
        stage = STAGES[(start // block) % len(STAGES)]
        fake.seed_contacts(
            count,
            start,
            {
                "email": "person{i}@bench.example",
                "firstname": "First{i}",
                "lastname": "Last{i}",
                "company": "Company {i}",
                "jobtitle": "Engineer",
                "phone": "+45 {i}",
                "city": "City {i}",
                "country": country,
                "lifecyclestage": stage,
            },
        )


def measure_backfill_floor(dbs: Databases, log_dir: Path, contacts: int) -> dict[str, Any]:
    """The physical floor: page through the fake with the same client library and page size,
    then bulk-load the same (contact, property, value) rows into a plain table
    (COPY on PostgreSQL, executemany in one transaction on SQLite)."""
    url = dbs.new("floor")
    fake = FastFake(log_dir)
    try:
        seed_backfill_contacts(fake, contacts)
        quiet = wait_for_quiet(5.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        rows: list[tuple[str, str, str | None]] = []
        with httpx.Client(base_url=fake.url, timeout=60) as http:
            after: str | None = None
            while True:
                params = {"limit": "100", "properties": ",".join(BACKFILL_PROPERTIES)}
                if after:
                    params["after"] = after
                data = http.get("/crm/v3/objects/contacts", params=params).json()
                for item in data["results"]:
                    rows += [(item["id"], k, v) for k, v in item["properties"].items()]
                after = ((data.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        paging = time.perf_counter() - wall0
        load0 = time.perf_counter()
        if dbs.kind == "postgresql":
            import psycopg

            with psycopg.connect(url) as connection:
                connection.execute(b"CREATE TABLE floor (hubspot_id text, name text, value text)")
                with connection.cursor().copy(
                    b"COPY floor (hubspot_id, name, value) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            import sqlite3

            lite = sqlite3.connect(url.removeprefix("sqlite:///"))
            lite.execute("PRAGMA journal_mode = WAL")
            lite.execute("CREATE TABLE floor (hubspot_id text, name text, value text)")
            with lite:
                lite.executemany("INSERT INTO floor VALUES (?, ?, ?)", rows)
            lite.close()
        load = time.perf_counter() - load0
        return {
            "database": dbs.kind,
            "contacts": contacts,
            "rows": len(rows),
            "paging_s": round(paging, 2),
            "load_s": round(load, 2),
            "wall_s": round(paging + load, 2),
            "cpu_s": round(time.process_time() - cpu0, 2),
            "quiet": quiet,
        }
    finally:
        fake.stop()
        dbs.drop(url)


def baseline_tree(spec: str, work_dir: Path) -> Tree:
    """A path to a checkout, or a commit checked out as a git worktree (removed at the end)."""
    path = Path(spec)
    if path.is_dir():
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True
        ).stdout.strip()
        return Tree("baseline", path.resolve(), commit)
    commit = subprocess.run(
        ["git", "rev-parse", spec], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    target = work_dir / f"baseline-{commit[:10]}"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(target), commit], cwd=ROOT, check=True
    )
    return Tree("baseline", target, commit)


def current_tree() -> Tree:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    return Tree("current", ROOT, commit)


# -- report ------------------------------------------------------------------------------------


def _cell(run: dict[str, Any] | None) -> str:
    if run is None:
        return "—"
    db = f"; db {run['db_cpu_ms_per_event']:.2f}" if run.get("db_cpu_ms_per_event") else ""
    return (
        f"{run['events_per_s']:,.0f}/s, {run['cpu_ms_per_event']:.2f} ms{db}"
        f" ({run['written']:,} in {run['seconds']:.1f} s; {run['duplicates']} dupl.)"
    )


def render(results: dict[str, Any]) -> str:
    lines = [
        "| burst | database | workers | baseline: events/s, worker CPU ms per event | "
        "current | ratio events/s (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    runs = results["bursts"]
    keys = sorted({(r["scenario"], r["database"], r["workers"]) for r in runs})
    for scenario, database, workers in keys:
        pick = {
            r["tree"]: r
            for r in runs
            if (r["scenario"], r["database"], r["workers"]) == (scenario, database, workers)
        }
        before, after = pick.get("baseline"), pick.get("current")
        ratio = "—"
        if before and after:
            ratio = (
                f"{after['events_per_s'] / before['events_per_s']:.2f}x "
                f"({before['cpu_ms_per_event'] / after['cpu_ms_per_event']:.2f}x)"
            )
        lines.append(
            f"| {scenario} | {database} | {workers} | {_cell(before)} | {_cell(after)} | {ratio} |"
        )
    if results.get("backfills"):
        lines += [
            "",
            "| backfill | database | contacts | floor s (paging + load) | baseline s (CPU) | "
            "current s (CPU) | current ÷ floor | peak RSS MB baseline / current |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for database, floor in results["floors"].items():
            pick = {r["tree"]: r for r in results["backfills"] if r["database"] == database}
            before, after = pick.get("baseline"), pick.get("current")

            def cell(run: dict[str, Any] | None) -> str:
                return "—" if run is None else f"{run['wall_s']:.1f} ({run['cpu_s']:.1f})"

            ratio = f"{after['wall_s'] / floor['wall_s']:.1f}" if after else "—"
            rss = " / ".join(f"{r['rss_peak_mb']:.0f}" if r else "—" for r in (before, after))
            lines.append(
                f"| HubSpot | {database} | {floor['contacts']:,} | {floor['wall_s']:.1f} "
                f"({floor['paging_s']:.1f} + {floor['load_s']:.1f}) | {cell(before)} | "
                f"{cell(after)} | {ratio} | {rss} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--baseline", help="commit or checkout to compare with (default: none)")
    parser.add_argument(
        "--database", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument("--quick", action="store_true", help="2,000 events, 20,000 contacts")
    parser.add_argument("--events", type=int, help="changes per burst (default 10,000)")
    parser.add_argument("--contacts", type=int, help="contacts to backfill (default 100,000)")
    parser.add_argument("--only", nargs="+", choices=("burst", "workers", "backfill"), default=None)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--markdown", metavar="RESULTS_JSON", help="print the table and exit")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on the (first) worker of each burst"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(render(json.loads(Path(args.markdown).read_text())))
        return 0
    events = args.events or (2_000 if args.quick else 10_000)
    contacts = args.contacts or (20_000 if args.quick else 100_000)
    parts = set(args.only or ("burst", "workers", "backfill"))
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(3600 * 2)
    work_dir = Path(tempfile.mkdtemp(prefix="syncgate-bench-processing-"))
    log_dir = work_dir / "logs"
    log_dir.mkdir()
    trees = [current_tree()]
    if args.baseline:
        trees.insert(0, baseline_tree(args.baseline, work_dir))
    command = shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])
    print(f"command: {command}\nlogs: {log_dir}", flush=True)
    results: dict[str, Any] = {
        "command": command,
        "machine": machine_info(),
        "targets": TARGETS,
        "trees": {t.name: t.commit for t in trees},
        "bursts": [],
        "backfills": [],
        "floors": {},
    }
    started = time.monotonic()
    try:
        for kind in args.database:
            dbs = Databases(kind, args.postgres_url, work_dir)
            try:
                plan: list[tuple[str, int]] = []
                if "burst" in parts:
                    plan += [("known", 1), ("new", 1)]
                if "workers" in parts and kind == "postgresql":
                    plan += [("known", 2), ("new", 2)]
                for scenario, workers in plan:
                    for tree in trees:
                        run = measure_burst(
                            tree,
                            dbs,
                            log_dir,
                            events=events,
                            scenario=scenario,
                            workers=workers,
                            profile=args.profile,
                        )
                        results["bursts"].append(run)
                        print(f"{kind} {scenario} {workers}w {tree.name}: {_cell(run)}", flush=True)
                if "backfill" in parts:
                    floor = measure_backfill_floor(dbs, log_dir, contacts)
                    results["floors"][kind] = floor
                    print(f"{kind} backfill floor: {floor}", flush=True)
                    for tree in trees:
                        run = measure_backfill(tree, dbs, log_dir, contacts)
                        results["backfills"].append(run)
                        print(
                            f"{kind} backfill {tree.name}: {run['wall_s']} s, CPU {run['cpu_s']}"
                            f" s, peak RSS {run['rss_peak_mb']} MB",
                            flush=True,
                        )
            finally:
                dbs.close()
    finally:
        signal.alarm(0)
        for tree in trees:
            if tree.name == "baseline" and tree.path.is_relative_to(work_dir):
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree.path)], cwd=ROOT, check=False
                )
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(render(results))
    out = BENCH / "results" / f"processing{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nresults: {out.relative_to(ROOT)} ({results['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

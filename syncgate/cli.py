"""`syncgate serve | worker | migrate` (also `python -m syncgate …`)."""

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from typing import NoReturn

from syncgate.config import Settings, SettingsError, load_settings
from syncgate.logging import configure_logging

# Exit status of a configuration error (a setting, or a database that cannot be reached).
CONFIGURATION_ERROR = 2


def _exit_with(message: str) -> NoReturn:
    print(f"syncgate: {message}", file=sys.stderr)
    raise SystemExit(CONFIGURATION_ERROR)


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        _exit_with(str(error))


def _reachable_database_or_exit(url: str) -> None:
    """Connect once: a database that cannot be reached is one line naming where it is."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from syncgate.db import create_sync_engine, describe_database

    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        _exit_with(
            f"cannot reach the database at {describe_database(url)} (SYNCGATE_DATABASE_URL):"
            f" {reason}"
        )
    finally:
        engine.dispose()


def _migrate(config: Settings) -> None:
    from syncgate.migrate import upgrade_to_head

    _reachable_database_or_exit(config.database_url)
    upgrade_to_head(config.database_url)


def serve(config: Settings, host: str, port: int, no_worker: bool) -> None:
    import uvicorn

    from syncgate.main import create_app

    _migrate(config)
    app = create_app(config, run_worker=not no_worker)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def worker(config: Settings, metrics_host: str, metrics_port: int | None) -> None:
    from syncgate.main import run_worker

    _migrate(config)
    # The loop `serve` runs the worker on (uvicorn picks uvloop where uvicorn[standard] installed
    # it): under load a worker is bound by its own CPU, and uvloop's loop costs it less.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(run_worker(config, metrics_host, metrics_port))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is not built for every platform
        return None
    return uvloop.new_event_loop


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="migrate, serve HTTP and run the worker")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--no-worker", action="store_true", help="HTTP only")
    worker_parser = commands.add_parser(
        "worker", help="run only the worker (processing and delivery)"
    )
    worker_parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve /livez, /readyz and /metrics of this worker on this port",
    )
    worker_parser.add_argument("--metrics-host", default="127.0.0.1")
    commands.add_parser("migrate", help="upgrade the database to the latest migration")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)

    config = _settings_or_exit()
    configure_logging(config.log_level)
    if args.command == "serve":
        serve(config, args.host, args.port, args.no_worker)
    elif args.command == "worker":
        with contextlib.suppress(KeyboardInterrupt):
            worker(config, args.metrics_host, args.metrics_port)
    else:
        _migrate(config)

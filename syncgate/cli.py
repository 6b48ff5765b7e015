"""`syncgate serve | worker | migrate` (also `python -m syncgate …`)."""

import argparse
import asyncio
import contextlib
import sys

from syncgate.config import Settings, SettingsError, load_settings
from syncgate.logging import configure_logging


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        print(f"syncgate: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _migrate(config: Settings) -> None:
    from syncgate.migrate import upgrade_to_head

    upgrade_to_head(config.database_url)


def serve(config: Settings, host: str, port: int, no_worker: bool) -> None:
    import uvicorn

    from syncgate.main import create_app

    _migrate(config)
    app = create_app(config, run_worker=not no_worker)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def worker(config: Settings) -> None:
    from syncgate.db import create_db_engine, create_session_factory
    from syncgate.delivery.worker import Worker

    async def run() -> None:
        engine = create_db_engine(config.database_url)
        try:
            await Worker(config, create_session_factory(engine)).run_forever()
        finally:
            await engine.dispose()

    _migrate(config)
    asyncio.run(run())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="syncgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="migrate, serve HTTP and run the worker")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--no-worker", action="store_true", help="HTTP only")
    commands.add_parser("worker", help="run only the worker (processing and delivery)")
    commands.add_parser("migrate", help="upgrade the database to the latest migration")
    args = parser.parse_args(argv)

    configure_logging()
    config = _settings_or_exit()
    if args.command == "serve":
        serve(config, args.host, args.port, args.no_worker)
    elif args.command == "worker":
        with contextlib.suppress(KeyboardInterrupt):
            worker(config)
    else:
        _migrate(config)

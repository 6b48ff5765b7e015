"""Application factory: the lifespan owns the engine, the admin token and the worker task."""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI

from syncgate import console
from syncgate.api import (
    connections,
    contacts,
    health,
    jobs,
    operations,
    segments,
    settings,
    webhooks,
)
from syncgate.config import Settings
from syncgate.db import create_db_engine, create_session_factory
from syncgate.delivery.worker import Worker
from syncgate.errors import install_error_handlers
from syncgate.migrate import head_revision

log = logging.getLogger("syncgate")


def _report_worker_end(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.critical("the worker stopped: %r; nothing is processed until a restart", error)


def create_app(config: Settings, *, run_worker: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(config.database_url)
        app.state.settings = config
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.migration_head = head_revision(config.database_url)
        app.state.admin_token = config.admin_token or _generated_admin_token()
        app.state.worker = Worker(config, app.state.session_factory) if run_worker else None
        worker_task = None
        if app.state.worker is not None:
            worker_task = asyncio.create_task(
                app.state.worker.run_forever(), name="syncgate-worker"
            )
            worker_task.add_done_callback(_report_worker_end)
        try:
            yield
        finally:
            if worker_task is not None:
                worker_task.cancel()
                with suppress(asyncio.CancelledError):
                    await worker_task
            await engine.dispose()

    app = FastAPI(
        title="syncgate",
        summary="HubSpot ⇄ Salesforce contact sync that lets through only what it should",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(webhooks.hubspot_router)
    app.include_router(webhooks.salesforce_router)
    app.include_router(segments.router)
    app.include_router(settings.router)
    app.include_router(contacts.router)
    app.include_router(operations.router)
    app.include_router(connections.router)
    app.include_router(jobs.router)
    app.include_router(console.router)
    return app


def _generated_admin_token() -> str:
    token = secrets.token_urlsafe(32)
    # Logged once, on purpose: it is the only way an operator without a configured token gets in.
    log.warning("SYNCGATE_ADMIN_TOKEN is not set; generated admin token for this run: %s", token)
    return token

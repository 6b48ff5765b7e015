"""Application factory: the lifespan owns the engine, the admin token and the worker task; and
`syncgate worker`, with its own small probe server when it is given a metrics port."""

import asyncio
import gc
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from syncgate import console
from syncgate.api import (
    connections,
    contacts,
    docs,
    health,
    jobs,
    operations,
    segments,
    settings,
    webhooks,
)
from syncgate.config import Settings, insecure_settings
from syncgate.connections.credentials import warn_unconnected
from syncgate.db import create_db_engine, create_session_factory
from syncgate.delivery.worker import Worker
from syncgate.errors import install_error_handlers
from syncgate.logging import AccessLog
from syncgate.migrate import head_revision
from syncgate.security.guard import RequestGuard
from syncgate.security.throttle import Throttle

log = logging.getLogger("syncgate")

DESCRIPTION = """\
Keeps contacts in sync between one HubSpot account and one Salesforce org, and lets through
only the changes it should: a change is forwarded when the contact is in the **inclusion
segment** (or none is set), with the exceptions HubSpot's own connector documents.

* **Webhooks** — HubSpot and Salesforce call these; each is verified and stored durably before
  it is acknowledged.
* **Admin API** (`/api/*`) — every route needs `Authorization: Bearer <SYNCGATE_ADMIN_TOKEN>`.
  Errors are JSON `{"code", "message"}` with a stable `code`.
* **Operations** — `/livez`, `/readyz` and `/metrics` for orchestrators and Prometheus.
"""


def _report_worker_end(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.critical("the worker stopped: %r; nothing is processed until a restart", error)


def _attach_store(app: FastAPI, config: Settings) -> AsyncEngine:
    engine = create_db_engine(config.database_url)
    app.state.settings = config
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.migration_head = head_revision(config.database_url)
    return engine


def create_app(config: Settings, *, run_worker: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = _attach_store(app, config)
        warn_unconnected(config)
        app.state.admin_token = config.admin_token or _generated_admin_token()
        app.state.throttle = Throttle(config)
        for warning in insecure_settings(config):
            log.warning(warning)
        app.state.worker = Worker(config, app.state.session_factory) if run_worker else None
        worker_task = None
        if app.state.worker is not None:
            worker_task = asyncio.create_task(
                app.state.worker.run_forever(), name="syncgate-worker"
            )
            worker_task.add_done_callback(_report_worker_end)
        try:
            with _start_up_frozen():
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
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(AccessLog)
    # Outermost, so that nothing runs before a body is known to be within its limit (the
    # guard logs what it answers itself: 413s and clients gone mid-body).
    app.add_middleware(
        RequestGuard, webhook_limit=config.max_body_bytes, api_limit=config.max_api_body_bytes
    )
    install_error_handlers(app)
    docs.install_docs(app)
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


def create_probe_app(config: Settings) -> FastAPI:
    """/livez, /readyz and /metrics of a `syncgate worker` process, nothing else."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = _attach_store(app, config)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="syncgate worker",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(AccessLog)
    install_error_handlers(app)
    app.include_router(health.router)
    return app


async def run_worker(config: Settings, metrics_host: str, metrics_port: int | None) -> None:
    """`syncgate worker`: the worker loops, and the probe server when a port is given. Either
    one ending ends the other, so an orchestrator never sees a live probe of a dead worker."""
    warn_unconnected(config)
    engine = create_db_engine(config.database_url)
    try:
        worker = Worker(config, create_session_factory(engine))
        with _start_up_frozen():
            if metrics_port is None:
                await worker.run_forever()
                return
            await _with_probe_server(worker, config, metrics_host, metrics_port)
    finally:
        await engine.dispose()


@contextmanager
def _start_up_frozen() -> Iterator[None]:
    """What start-up built (modules, mappers, the app) lives as long as the process: out of the
    collector's sight, a full collection walks only what requests and rounds allocate since:
    milliseconds, not 100+ ms of stalled event loop, several times a second under load."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _with_probe_server(worker: Worker, config: Settings, host: str, port: int) -> None:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            create_probe_app(config), host=host, port=port, log_config=None, access_log=False
        )
    )
    work = asyncio.create_task(worker.run_forever(), name="syncgate-worker")
    probes = asyncio.create_task(server.serve(), name="syncgate-worker-probes")
    await asyncio.wait({work, probes}, return_when=asyncio.FIRST_COMPLETED)
    if not probes.done():
        server.should_exit = True  # the worker failed: stop answering probes, then exit
        await probes
    work.cancel()
    with suppress(asyncio.CancelledError):
        await work


def _generated_admin_token() -> str:
    token = secrets.token_urlsafe(32)
    # Logged once, on purpose: it is the only way an operator without a configured token gets in.
    log.warning("SYNCGATE_ADMIN_TOKEN is not set; generated admin token for this run: %s", token)
    return token

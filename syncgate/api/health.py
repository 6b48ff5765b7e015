"""Liveness, readiness and metrics (§7)."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from syncgate.api import examples
from syncgate.api.examples import JSON, answers
from syncgate.connections.status import connection_states, export_metrics
from syncgate.delivery.models import Delivery, DeliveryStatus
from syncgate.errors import is_store_outage
from syncgate.metrics import OUTBOX_PENDING
from syncgate.migrate import current_revision

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="Liveness", responses=answers(200, examples.LIVE))
async def livez() -> dict[str, str]:
    """200 while the process serves requests; it does not touch the database."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={
        **answers(200, examples.READY),
        503: {
            "description": "database unreachable or not migrated",
            "content": {
                JSON: {
                    "example": {
                        "status": "unavailable",
                        "reason": "database unreachable: OperationalError",
                    }
                }
            },
        },
    },
)
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and is migrated to the latest revision, else 503 with
    the reason. Webhooks answer 503 too while it is down, and the platforms retry."""
    head: str | None = request.app.state.migration_head
    try:
        async with request.app.state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revision = await connection.run_sync(current_revision)
    except Exception as error:
        if not is_store_outage(error):
            raise
        return JSONResponse(
            {"status": "unavailable", "reason": f"database unreachable: {type(error).__name__}"},
            status_code=503,
        )
    if revision != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "reason": f"database at migration {revision}, expected {head}",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready", "migration": revision})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=answers(200, examples.METRICS, "text/plain"),
)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's counters. Counters are per process: the
    HTTP process counts webhooks and decisions made in its in-process worker; a
    `syncgate worker --metrics-port` exports the deliveries and latencies it handles."""
    try:
        async with request.app.state.session_factory() as session:
            OUTBOX_PENDING.set(
                await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.IN_FLIGHT]))
                )
                or 0
            )
            export_metrics(await connection_states(session, request.app.state.settings))
    except Exception as error:
        if not is_store_outage(error):
            raise
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

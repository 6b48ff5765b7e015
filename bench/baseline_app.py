"""The bare baseline for the intake benchmark: FastAPI, one INSERT of the raw body, 200.

Run by bench/run.py as ``python -m uvicorn baseline_app:app --app-dir bench`` (one process,
uvicorn's defaults: uvloop + httptools, as ``syncgate serve`` has) with ``BENCH_DATABASE_URL``
set to a plain URL. It uses the same driver and engine settings as the service (SQLAlchemy
async + aiosqlite or psycopg; SQLite in WAL with ``synchronous=NORMAL``, a busy timeout and
``BEGIN IMMEDIATE``; PostgreSQL pool 10 + 10 overflow, pre-ping) and one transaction per
request, committed before the answer. No signature check, no JSON parsing: only the cost a
webhook endpoint cannot avoid.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(parsed.set(drivername="sqlite+aiosqlite"), pool_pre_ping=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 30000")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        parsed.set(drivername="postgresql+psycopg"),
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=5,
    )


SCHEMA = {
    "sqlite": "CREATE TABLE IF NOT EXISTS raw_events "
    "(id INTEGER PRIMARY KEY, body BLOB NOT NULL, received_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "postgresql": "CREATE TABLE IF NOT EXISTS raw_events "
    "(id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL, received_at TIMESTAMPTZ DEFAULT now())",
}
INSERT = text("INSERT INTO raw_events (body) VALUES (:body)")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])
    async with engine.begin() as connection:
        await connection.execute(text(SCHEMA[engine.dialect.name]))
    app.state.engine = engine
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhooks/hubspot")
async def webhook(request: Request) -> Response:
    body = await request.body()
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as connection:
        await connection.execute(INSERT, {"body": body})
    return Response(b'{"accepted":1}', media_type="application/json")

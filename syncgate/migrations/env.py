"""Alembic environment: the URL comes from the service settings (or the caller's config)."""

import logging
from collections.abc import Collection, Mapping
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script
from sqlalchemy import text

from syncgate.config import get_settings
from syncgate.db import create_sync_engine
from syncgate.migrate import MIGRATION_LOCK_KEY
from syncgate.models_registry import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
log = logging.getLogger("syncgate.migrate")


def _applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    if step.is_upgrade:
        doc = step.up_revision.doc if isinstance(step.up_revision, Script) else ""
        log.info("database migrated to %s (%s)", step.up_revision_id, doc)
    else:
        log.info("database migrated down from %s", step.up_revision_id)


def run_migrations() -> None:
    url = config.attributes.get("database_url") or get_settings().database_url
    engine = create_sync_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            on_version_apply=_applied,
        )
        with context.begin_transaction():
            # Several processes migrating one fresh database at once (serve replicas, workers, a
            # migrate job) run one after the other, and the later ones find it at head instead
            # of racing to create the same tables. Released when the transaction ends.
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `syncgate migrate`")
run_migrations()

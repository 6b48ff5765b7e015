"""Imports every model module so that Base.metadata knows all tables (for Alembic and tests)."""

from syncgate.connections import models as connection_models
from syncgate.console import models as console_models
from syncgate.delivery import models as delivery_models
from syncgate.inbox import models as inbox_models
from syncgate.jobs import models as job_models
from syncgate.models import Base
from syncgate.sync import models as sync_models

__all__ = [
    "Base",
    "connection_models",
    "console_models",
    "delivery_models",
    "inbox_models",
    "job_models",
    "sync_models",
]

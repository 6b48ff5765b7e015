"""Imports every model module so that Base.metadata knows all tables (for Alembic and tests)."""

from app.delivery import models as delivery_models
from app.inbox import models as inbox_models
from app.jobs import models as job_models
from app.models import Base
from app.sync import models as sync_models

__all__ = ["Base", "delivery_models", "inbox_models", "job_models", "sync_models"]

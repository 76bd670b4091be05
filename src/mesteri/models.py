"""Imports every domain's tables so Alembic and the test schema see them all."""

from mesteri.accounts import models as accounts_models
from mesteri.kit import audit, clock, jobs, statemachine
from mesteri.notifications import models as notifications_models

__all__ = ["accounts_models", "audit", "clock", "jobs", "notifications_models", "statemachine"]

"""Imports every domain's tables so Alembic and the test schema see them all."""

from mesteri.accounts import models as accounts_models
from mesteri.kit import audit, clock, idempotency, jobs, statemachine
from mesteri.notifications import models as notifications_models
from mesteri.payments import models as payments_models
from mesteri.payments.sandbox import models as sandbox_models

__all__ = [
    "accounts_models",
    "audit",
    "clock",
    "idempotency",
    "jobs",
    "notifications_models",
    "payments_models",
    "sandbox_models",
    "statemachine",
]

"""Imports every domain's tables so Alembic and the test schema see them all."""

from mesteri.accounts import models as accounts_models
from mesteri.catalog import models as catalog_models
from mesteri.contracts import models as contracts_models
from mesteri.disputes import models as disputes_models
from mesteri.jobs import models as jobs_models
from mesteri.kit import audit, clock, idempotency, jobs, statemachine
from mesteri.kit.realtime import presence as realtime_presence
from mesteri.kit.realtime import streams as realtime_streams
from mesteri.media import models as media_models
from mesteri.messaging import models as messaging_models
from mesteri.milestones import models as milestones_models
from mesteri.notifications import models as notifications_models
from mesteri.payments import models as payments_models
from mesteri.payments.sandbox import models as sandbox_models
from mesteri.proposals import models as proposals_models
from mesteri.pros import models as pros_models
from mesteri.reviews import models as reviews_models

__all__ = [
    "accounts_models",
    "audit",
    "catalog_models",
    "clock",
    "contracts_models",
    "disputes_models",
    "idempotency",
    "jobs",
    "jobs_models",
    "media_models",
    "messaging_models",
    "milestones_models",
    "notifications_models",
    "payments_models",
    "proposals_models",
    "pros_models",
    "realtime_presence",
    "realtime_streams",
    "reviews_models",
    "sandbox_models",
    "statemachine",
]

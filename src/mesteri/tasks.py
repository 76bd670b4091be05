"""Imports every domain's ``tasks`` module so their jobs are registered."""

from mesteri.accounts import tasks as accounts_tasks
from mesteri.contracts import tasks as contracts_tasks
from mesteri.disputes import tasks as disputes_tasks
from mesteri.jobs import tasks as jobs_tasks
from mesteri.media import tasks as media_tasks
from mesteri.messaging import tasks as messaging_tasks
from mesteri.milestones import tasks as milestones_tasks
from mesteri.notifications import tasks as notifications_tasks
from mesteri.payments import tasks as payments_tasks
from mesteri.payments.sandbox import tasks as sandbox_tasks
from mesteri.pros import tasks as pros_tasks
from mesteri.reviews import tasks as reviews_tasks

__all__ = [
    "accounts_tasks",
    "contracts_tasks",
    "disputes_tasks",
    "jobs_tasks",
    "media_tasks",
    "messaging_tasks",
    "milestones_tasks",
    "notifications_tasks",
    "payments_tasks",
    "pros_tasks",
    "reviews_tasks",
    "sandbox_tasks",
]

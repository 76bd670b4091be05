"""Imports every domain's ``tasks`` module so their jobs are registered."""

from mesteri.accounts import tasks as accounts_tasks
from mesteri.media import tasks as media_tasks
from mesteri.notifications import tasks as notifications_tasks
from mesteri.pros import tasks as pros_tasks

__all__ = ["accounts_tasks", "media_tasks", "notifications_tasks", "pros_tasks"]

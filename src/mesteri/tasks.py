"""Imports every domain's ``tasks`` module so their jobs are registered."""

from mesteri.notifications import tasks as notifications_tasks

__all__ = ["notifications_tasks"]

"""Jobs of the jobs domain. The expiry of open jobs is the lifecycle's own timer
(``lifecycles.py``); importing the service here registers the lifecycle (so the worker
can fire its timers) and the domain's event subscriptions (a contract that ends moves
its job) in the worker process too."""

from __future__ import annotations

from mesteri.jobs import service

__all__ = ["service"]

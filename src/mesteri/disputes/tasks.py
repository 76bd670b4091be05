"""Jobs of the disputes domain. The ladder's timers (stage escalation after the stage's
days, a decision without an unpaid expert) are the lifecycle's own (see lifecycles.py):
importing it registers them with the worker, and the service's ``HoldFunded`` subscriber
(the expert's fee paid) with the event bus."""

from __future__ import annotations

from mesteri.disputes import lifecycles, service

__all__ = ["lifecycles", "service"]

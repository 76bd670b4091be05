"""Nothing is scheduled by contracts; importing this module in a worker registers the
contracts' event handlers (a settled milestone may end its contract inside a timer's
transaction, e.g. an auto-accepted delivery)."""

from __future__ import annotations

from mesteri.contracts import service

__all__ = ["service"]

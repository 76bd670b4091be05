"""Recency weights that never need rewriting.

A record made at time t weighs 2^(-age / half_life). Stored sums use the weight relative to
a fixed epoch instead, ``growth(t) = 2^((t - EPOCH) / half_life)``, which never changes
once written; multiplying a stored sum by ``decay(now) = 1 / growth(now)`` turns it into
today's weights. So a new review adds one term, and ageing costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_DAY = 86_400.0


def growth(at: datetime, half_life_days: float) -> float:
    return float(2.0 ** ((at - EPOCH).total_seconds() / _DAY / half_life_days))


def decay(now: datetime, half_life_days: float) -> float:
    return 1.0 / growth(now, half_life_days)


def smoothed(
    weighted_sum: float, weight: float, *, prior: float, prior_weight: float, factor: float
) -> float:
    """The Bayesian average (C·m + Σwᵢxᵢ) / (C + Σwᵢ), with epoch-relative sums brought to
    today's weights by ``factor`` (``decay(now)``)."""
    return (prior_weight * prior + weighted_sum * factor) / (prior_weight + weight * factor)

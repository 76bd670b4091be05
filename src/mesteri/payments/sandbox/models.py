"""The sandbox provider's own records (its "side" of the world, not our ledger)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base


class SandboxObject(Base):
    """A payment, refund, connected account, transfer or payout at the sandbox provider."""

    __tablename__ = "sandbox_objects"

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="")
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    # Payouts and transfers: the connected account; refunds: the payment.
    parent: Mapped[str | None] = mapped_column(String(60), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SandboxEvent(Base):
    """A webhook event the sandbox sends (and re-sends until it is acknowledged)."""

    __tablename__ = "sandbox_events"

    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    created: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None]

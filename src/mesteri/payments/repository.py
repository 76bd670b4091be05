"""Reads of the payments domain (lists for pages and the API)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, column, select, table

from mesteri.kit.db import ReadSession
from mesteri.kit.pagination import keyset, page_of
from mesteri.payments import ledger, service
from mesteri.payments.models import (
    AccountKind,
    Hold,
    LedgerAccount,
    Payout,
    PayoutAccountState,
    ReconciliationAlert,
    Refund,
)
from mesteri.payments.schemas import WalletEntryOut, WalletOut

_WALLET_ACCOUNTS = {
    AccountKind.WALLET_PENDING: "pending",
    AccountKind.WALLET_AVAILABLE: "available",
    AccountKind.PAYOUTS_IN_TRANSIT: "in_transit",
}


async def wallet_view(
    session: ReadSession, user_id: uuid.UUID, currency: str, *, cursor: str | None, limit: int
) -> WalletOut:
    balances = await service.wallet(session, user_id, currency)
    keys = [ledger.owned(kind, user_id, currency) for kind in _WALLET_ACCOUNTS]
    rows, next_cursor = await ledger.history(session, keys, cursor=cursor, limit=limit)
    account = await service.payout_account(session, user_id)
    return WalletOut(
        currency=currency,
        pending=balances.pending,
        available=balances.available,
        in_transit=balances.in_transit,
        payouts_enabled=account is not None and account.state == PayoutAccountState.ACTIVE,
        entries=[
            WalletEntryOut(
                seq=r.seq,
                account=_WALLET_ACCOUNTS[AccountKind(r.account_kind)],
                amount=r.amount,
                balance_after=r.balance_after,
                kind=r.kind,
                hold_id=r.hold_id,
                memo=r.memo,
                posted_at=r.posted_at,
            )
            for r in rows
        ],
        next_cursor=next_cursor,
    )


async def payouts_of(
    session: ReadSession, user_id: uuid.UUID | None, *, cursor: str | None, limit: int
) -> tuple[list[Payout], str | None]:
    query = select(Payout)
    if user_id is not None:
        query = query.where(Payout.user_id == user_id)
    keys = (Payout.created_at, Payout.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["created_at", "id"], limit)


async def holds(
    session: ReadSession, *, state: str | None, cursor: str | None, limit: int
) -> tuple[list[Hold], str | None]:
    query = select(Hold)
    if state:
        query = query.where(Hold.state == state)
    keys = (Hold.created_at, Hold.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["created_at", "id"], limit)


async def recent_refunds(session: ReadSession, limit: int = 50) -> Sequence[Refund]:
    return (
        await session.scalars(select(Refund).order_by(Refund.created_at.desc()).limit(limit))
    ).all()


# Accounts with the balance that counts lines still waiting for the roll-up (0009).
_BALANCES = table(
    "ledger_account_balances",
    *(column(name) for name in ("id", "kind", "owner_id", "currency", "balance")),
)


async def ledger_accounts(
    session: ReadSession, *, owner_id: uuid.UUID | None, kind: AccountKind | None
) -> Sequence[Row[Any]]:
    query = select(_BALANCES).order_by(_BALANCES.c.kind, _BALANCES.c.currency).limit(500)
    if owner_id is not None:
        query = query.where(_BALANCES.c.owner_id == owner_id)
    if kind is not None:
        query = query.where(_BALANCES.c.kind == kind)
    return (await session.execute(query)).all()


async def ledger_account(session: ReadSession, account_id: uuid.UUID) -> LedgerAccount | None:
    return await session.get(LedgerAccount, account_id)


async def alerts(
    session: ReadSession, *, cursor: str | None, limit: int
) -> tuple[list[ReconciliationAlert], str | None]:
    query = select(ReconciliationAlert).where(ReconciliationAlert.resolved_at.is_(None))
    keys = (ReconciliationAlert.created_at, ReconciliationAlert.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["created_at", "id"], limit)

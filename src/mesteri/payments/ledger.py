"""The double-entry ledger: accounts, balanced immutable entries, reversals and history.

``post`` is the only way money moves. It writes one entry and its lines in a single
statement each; the database does the rest (balance per currency at commit, running
balances, non-negative accounts, immutability — see migration 0002). Lines are inserted
in one global order (owned accounts first, then the shared platform accounts, each by
id) so concurrent postings lock account rows in the same order and cannot deadlock, and
the busiest rows are held for the shortest time.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Select, and_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from mesteri.kit import clock
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import keyset, page_of
from mesteri.payments.errors import InsufficientFundsError, UnbalancedEntryError
from mesteri.payments.models import (
    MAY_GO_NEGATIVE,
    PLATFORM_KINDS,
    AccountKind,
    EntryKind,
    LedgerAccount,
    LedgerEntry,
    LedgerLine,
)


@dataclass(frozen=True, slots=True)
class AccountKey:
    kind: AccountKind
    owner_id: uuid.UUID | None
    currency: str

    def __post_init__(self) -> None:
        if (self.kind in PLATFORM_KINDS) != (self.owner_id is None):
            raise ValueError(
                f"{self.kind} accounts {'have no' if self.owner_id else 'need an'} owner"
            )


def platform(kind: AccountKind, currency: str) -> AccountKey:
    return AccountKey(kind, None, currency)


def owned(kind: AccountKind, owner_id: uuid.UUID, currency: str) -> AccountKey:
    return AccountKey(kind, owner_id, currency)


@dataclass(frozen=True, slots=True)
class Cause:
    """What made money move: every entry names it (SPEC M6)."""

    type: str  # hold, payment, refund, payout, credit, provider_event
    id: uuid.UUID
    hold_id: uuid.UUID | None = None
    provider_ref: str | None = None
    provider_event_id: str | None = None


Leg = tuple[AccountKey, int]


async def account_ids(
    session: WriteSession, keys: Sequence[AccountKey]
) -> dict[AccountKey, uuid.UUID]:
    """The accounts' ids, each created on first use (concurrent creators agree on one row)."""
    found = await _lookup(session, keys)
    missing = [key for key in keys if key not in found]
    if missing:
        now = clock.now()
        await session.execute(
            insert(LedgerAccount).on_conflict_do_nothing(),
            [
                {
                    "id": new_id(),
                    "kind": key.kind,
                    "owner_id": key.owner_id,
                    "currency": key.currency,
                    "may_go_negative": key.kind in MAY_GO_NEGATIVE,
                    "created_at": now,
                }
                for key in missing
            ],
        )
        found |= await _lookup(session, missing)
    return found


async def _lookup(session: ReadSession, keys: Sequence[AccountKey]) -> dict[AccountKey, uuid.UUID]:
    rows = await session.execute(
        select(
            LedgerAccount.id, LedgerAccount.kind, LedgerAccount.owner_id, LedgerAccount.currency
        ).where(or_(*(_matches(key) for key in keys)))
    )
    return {AccountKey(AccountKind(kind), owner, cur): id_ for id_, kind, owner, cur in rows}


def _matches(key: AccountKey) -> ColumnElement[bool]:
    owner = (
        LedgerAccount.owner_id.is_(None)
        if key.owner_id is None
        else LedgerAccount.owner_id == key.owner_id
    )
    return and_(LedgerAccount.kind == key.kind, owner, LedgerAccount.currency == key.currency)


async def post(
    session: WriteSession,
    kind: EntryKind,
    legs: Sequence[Leg],
    *,
    cause: Cause,
    idempotency_key: str,
    memo: str = "",
    reverses_id: uuid.UUID | None = None,
    entry_id: uuid.UUID | None = None,
) -> LedgerEntry:
    """Post one balanced entry; a repeated ``idempotency_key`` returns the first entry.

    Whatever the session has pending is flushed first and the lines go last: callers that
    post to the shared platform accounts do so as the last write of their transaction, so
    those rows stay locked only for the commit. ``entry_id`` lets records written before
    the entry point at it (their foreign keys are checked at commit).
    """
    existing = await session.scalar(
        select(LedgerEntry).where(LedgerEntry.idempotency_key == idempotency_key)
    )
    if existing is not None:
        return existing
    merged = _merge(legs)
    _check_balanced(merged)
    entry = LedgerEntry(
        id=entry_id or new_id(),
        kind=kind,
        idempotency_key=idempotency_key,
        cause_type=cause.type,
        cause_id=cause.id,
        hold_id=cause.hold_id,
        provider_ref=cause.provider_ref,
        provider_event_id=cause.provider_event_id,
        reverses_id=reverses_id,
        memo=memo,
        posted_at=clock.now(),
    )
    session.add(entry)
    ids = await account_ids(session, list(merged))
    ordered = sorted(merged, key=lambda k: (k.owner_id is None, str(ids[k])))
    rows = [
        {
            "id": new_id(),
            "entry_id": entry.id,
            "account_id": ids[key],
            "currency": key.currency,
            "amount": merged[key],
        }
        for key in ordered
    ]
    await session.flush()
    try:
        await session.execute(insert(LedgerLine), rows)
    except IntegrityError as exc:
        # The account's CHECK, raised by the balance trigger; the request rolls back.
        if "non_negative" in str(exc.orig):
            raise InsufficientFundsError() from exc
        raise
    return entry


def _merge(legs: Sequence[Leg]) -> dict[AccountKey, int]:
    merged: dict[AccountKey, int] = defaultdict(int)
    for key, amount in legs:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise TypeError("ledger amounts are integer minor units")
        merged[key] += amount
    return {key: amount for key, amount in merged.items() if amount != 0}


def _check_balanced(merged: dict[AccountKey, int]) -> None:
    totals: dict[str, int] = defaultdict(int)
    for key, amount in merged.items():
        totals[key.currency] += amount
    if not merged or any(totals.values()):
        raise UnbalancedEntryError()


async def reverse(session: WriteSession, entry_id: uuid.UUID, *, memo: str) -> LedgerEntry:
    """Correct an entry by posting its exact opposite (entries are never changed)."""
    original = await session.get(LedgerEntry, entry_id)
    if original is None:
        raise LookupError(entry_id)
    lines = (
        await session.execute(
            select(
                LedgerAccount.kind, LedgerAccount.owner_id, LedgerLine.currency, LedgerLine.amount
            )
            .join(LedgerAccount, LedgerAccount.id == LedgerLine.account_id)
            .where(LedgerLine.entry_id == entry_id)
        )
    ).all()
    legs = [(AccountKey(AccountKind(k), o, c), -a) for k, o, c, a in lines]
    return await post(
        session,
        EntryKind.REVERSAL,
        legs,
        cause=Cause("entry", original.id, hold_id=original.hold_id),
        idempotency_key=f"reverse:{original.id}",
        memo=memo,
        reverses_id=original.id,
    )


async def balance(session: ReadSession, key: AccountKey) -> int:
    value = await session.scalar(select(LedgerAccount.balance).where(_matches(key)))
    return value or 0


async def balances(
    session: ReadSession, owner_id: uuid.UUID, currency: str
) -> dict[AccountKind, int]:
    rows = await session.execute(
        select(LedgerAccount.kind, LedgerAccount.balance).where(
            LedgerAccount.owner_id == owner_id, LedgerAccount.currency == currency
        )
    )
    return {AccountKind(kind): value for kind, value in rows}


async def history(
    session: ReadSession,
    keys: Sequence[AccountKey],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Row[Any]], str | None]:
    """Lines of the accounts, newest first, each with its account's balance right after it."""
    accounts = await _lookup(session, keys)
    if not accounts:
        return [], None
    query = cast(
        Select[Any],
        select(
            LedgerLine.seq,
            LedgerLine.amount,
            LedgerLine.balance_after,
            LedgerAccount.kind.label("account_kind"),
            LedgerEntry.id.label("entry_id"),
            LedgerEntry.kind,
            LedgerEntry.cause_type,
            LedgerEntry.cause_id,
            LedgerEntry.hold_id,
            LedgerEntry.memo,
            LedgerEntry.posted_at,
        )
        .join(LedgerEntry, LedgerEntry.id == LedgerLine.entry_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerLine.account_id)
        .where(LedgerLine.account_id.in_(list(accounts.values()))),
    )
    page = keyset(query, [LedgerLine.seq], cursor=cursor, limit=limit)
    rows = (await session.execute(page)).all()
    return page_of(rows, ["seq"], limit)

"""The double-entry ledger: accounts, balanced immutable entries, reversals and history.

``post`` is the only way money moves (a release hands the same ``posting`` to the
database with the rest of its writes, see ``payments.service.release``). The entry, its
accounts on first use and its lines are written by one call of the database's
``ledger_post`` (migration 0008); the database does the rest (balance per currency at
commit, running balances, non-negative accounts, immutability — migration 0002). Lines
are inserted in one global order (owned accounts first, then the shared platform
accounts, each by id) so concurrent postings lock account rows in the same order and
cannot deadlock. Credits to the shared platform accounts (revenue, VAT, the provider's
clearing account and its fees; debits too where the account may go negative) — the
rows every posting would otherwise lock — wait in
``ledger_lines_pending`` and are applied in batches by ``roll_up`` (the
``payments.roll_up_ledger`` task, every minute; migration 0009); ``balance`` counts them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
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
    LedgerLinePending,
)

# Lines a roll-up moves per transaction. Every line updates its account's row, and in
# one transaction those versions pile up on one chain that each update walks: measured
# (bench/README.md), a line costs the server a third less in batches of 500 than of 2000.
ROLL_UP_BATCH = 500


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


async def account_id(session: ReadSession, key: AccountKey) -> uuid.UUID | None:
    """The account's id, if it exists (``ledger_post`` creates accounts on first use)."""
    return (await _lookup(session, [key])).get(key)


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


@dataclass(frozen=True, slots=True)
class Posting:
    """One balanced entry ready for the database's ``ledger_post`` (migration 0008): the
    ``ledger_entries`` row and its legs, as JSON."""

    entry_id: uuid.UUID
    entry: dict[str, Any]
    legs: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "legs": self.legs}


def posting(
    kind: EntryKind,
    legs: Sequence[Leg],
    *,
    cause: Cause,
    idempotency_key: str,
    memo: str = "",
    reverses_id: uuid.UUID | None = None,
    entry_id: uuid.UUID | None = None,
) -> Posting:
    """Check and shape an entry: legs merged per account, balanced per currency."""
    merged = _merge(legs)
    _check_balanced(merged)
    entry_id = entry_id or new_id()
    entry = {
        "id": str(entry_id),
        "kind": str(kind),
        "idempotency_key": idempotency_key,
        "cause_type": cause.type,
        "cause_id": str(cause.id),
        "hold_id": _text(cause.hold_id),
        "provider_ref": cause.provider_ref,
        "provider_event_id": cause.provider_event_id,
        "reverses_id": _text(reverses_id),
        "memo": memo,
        "posted_at": clock.now().isoformat(),
    }
    lines = [
        {
            "line_id": str(new_id()),
            "kind": str(key.kind),
            "owner_id": _text(key.owner_id),
            "currency": key.currency,
            "amount": amount,
            "may_go_negative": key.kind in MAY_GO_NEGATIVE,
            # Used only if the account does not exist yet.
            "new_account_id": str(new_id()),
        }
        for key, amount in merged.items()
    ]
    return Posting(entry_id, entry, lines)


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


_LEDGER_POST = text("SELECT ledger_post(:entry, :legs)").bindparams(
    bindparam("entry", type_=JSONB), bindparam("legs", type_=JSONB)
)


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
) -> uuid.UUID:
    """Post one balanced entry and return its id; a repeated ``idempotency_key`` returns
    the first entry's id and moves nothing.

    Whatever the session has pending is flushed first and the lines go last: callers that
    post to the shared platform accounts do so as the last write of their transaction, so
    those rows stay locked only for the commit. ``entry_id`` lets records written before
    the entry point at it (their foreign keys are checked at commit).
    """
    shaped = posting(
        kind,
        legs,
        cause=cause,
        idempotency_key=idempotency_key,
        memo=memo,
        reverses_id=reverses_id,
        entry_id=entry_id,
    )
    return await post_entry(session, shaped)


async def post_entry(session: WriteSession, shaped: Posting) -> uuid.UUID:
    """``post`` for an entry already shaped by ``posting``."""
    await session.flush()
    with insufficient_funds():
        posted: uuid.UUID = await session.scalar(
            _LEDGER_POST, {"entry": shaped.entry, "legs": shaped.legs}
        )
    return posted


@contextmanager
def insufficient_funds() -> Iterator[None]:
    """The account's CHECK, raised by the balance trigger, as the domain's error (the
    request rolls back), through the ORM or straight from the driver."""
    try:
        yield
    except (IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        if "non_negative" in str(getattr(exc, "orig", exc)):
            raise InsufficientFundsError() from exc
        raise


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


async def reverse(session: WriteSession, entry_id: uuid.UUID, *, memo: str) -> uuid.UUID:
    """Correct an entry by posting its exact opposite (entries are never changed)."""
    original = await session.get(LedgerEntry, entry_id)
    if original is None:
        raise LookupError(entry_id)
    # Some of the entry's lines may still wait for the roll-up.
    lines_of_entry = union_all(
        *(
            select(table.account_id, table.currency, table.amount).where(table.entry_id == entry_id)
            for table in (LedgerLine, LedgerLinePending)
        )
    ).subquery()
    lines = (
        await session.execute(
            select(
                LedgerAccount.kind,
                LedgerAccount.owner_id,
                lines_of_entry.c.currency,
                lines_of_entry.c.amount,
            ).join(LedgerAccount, LedgerAccount.id == lines_of_entry.c.account_id)
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
    """The committed balance and this transaction's own lines; for a shared platform
    account, with its lines still waiting for the roll-up (``ledger_lines_pending``)."""
    value: ColumnElement[int] = LedgerAccount.balance.expression
    if key.owner_id is None:
        waiting = select(func.coalesce(func.sum(LedgerLinePending.amount), 0)).where(
            LedgerLinePending.account_id == LedgerAccount.id
        )
        value = value + waiting.scalar_subquery()
    found = await session.scalar(select(value).where(_matches(key)))
    return int(found or 0)


async def roll_up(session: WriteSession, *, batch: int = ROLL_UP_BATCH) -> int:
    """Apply up to ``batch`` waiting lines of the shared platform accounts to their
    balances (migration 0009); returns how many were applied."""
    moved = await session.scalar(text("SELECT ledger_roll_up(:batch)"), {"batch": batch})
    return int(moved or 0)


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

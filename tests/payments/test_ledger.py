"""The ledger's rules hold in the database itself, whatever code writes to it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mesteri.kit.db import WriteSession
from mesteri.payments import ledger
from mesteri.payments.errors import InsufficientFundsError, UnbalancedEntryError
from mesteri.payments.models import AccountKind, EntryKind, LedgerEntry

K = AccountKind


def _cause() -> ledger.Cause:
    return ledger.Cause("test", uuid.uuid4())


async def _fund(db: WriteSession, owner: uuid.UUID, amount: int) -> None:
    await ledger.post(
        db,
        EntryKind.CAPTURE,
        [
            (ledger.platform(K.PROVIDER_CLEARING, "RON"), -amount),
            (ledger.owned(K.WALLET_AVAILABLE, owner, "RON"), amount),
        ],
        cause=_cause(),
        idempotency_key=f"fund:{uuid.uuid4()}",
    )


async def test_posting_moves_balances_and_keeps_running_balances(db: WriteSession) -> None:
    pro = uuid.uuid4()
    await _fund(db, pro, 5_000)
    await _fund(db, pro, 2_500)
    key = ledger.owned(K.WALLET_AVAILABLE, pro, "RON")
    assert await ledger.balance(db, key) == 7_500
    rows, _cursor = await ledger.history(db, [key], cursor=None, limit=10)
    assert [(r.amount, r.balance_after) for r in rows] == [(2_500, 7_500), (5_000, 5_000)]


async def test_same_idempotency_key_posts_once(db: WriteSession) -> None:
    pro = uuid.uuid4()
    legs = [
        (ledger.platform(K.PROVIDER_CLEARING, "RON"), -100),
        (ledger.owned(K.WALLET_AVAILABLE, pro, "RON"), 100),
    ]
    first = await ledger.post(db, EntryKind.CAPTURE, legs, cause=_cause(), idempotency_key="k-1")
    again = await ledger.post(db, EntryKind.CAPTURE, legs, cause=_cause(), idempotency_key="k-1")
    assert first == again
    assert await ledger.balance(db, ledger.owned(K.WALLET_AVAILABLE, pro, "RON")) == 100


async def test_unbalanced_entries_are_refused_in_python_and_in_the_database(
    db: WriteSession,
) -> None:
    pro = uuid.uuid4()
    with pytest.raises(UnbalancedEntryError):
        await ledger.post(
            db,
            EntryKind.CAPTURE,
            [(ledger.owned(K.WALLET_AVAILABLE, pro, "RON"), 100)],
            cause=_cause(),
            idempotency_key="unbalanced",
        )
    await _fund(db, pro, 100)
    account_id = await ledger.account_id(db, ledger.owned(K.WALLET_AVAILABLE, pro, "RON"))
    assert account_id is not None
    with pytest.raises(DBAPIError, match="does not balance"):
        await _raw_entry(db, account_id, "RON", 50, check_now=True)


async def _raw_entry(
    db: WriteSession, account_id: uuid.UUID, currency: str, amount: int, *, check_now: bool = False
) -> None:
    """An entry written with plain SQL, past the Python checks."""
    entry = uuid.uuid4()
    async with db.begin_nested():
        await db.execute(
            text(
                "INSERT INTO ledger_entries (id, kind, idempotency_key, cause_type, cause_id,"
                " memo, posted_at) VALUES (:id, 'capture', :key, 'test', :id, '', now())"
            ),
            {"id": entry, "key": str(entry)},
        )
        await db.execute(
            text(
                "INSERT INTO ledger_lines (id, entry_id, account_id, currency, amount)"
                " VALUES (:id, :entry, :account, :currency, :amount)"
            ),
            {
                "id": uuid.uuid4(),
                "entry": entry,
                "account": account_id,
                "currency": currency,
                "amount": amount,
            },
        )
        if check_now:  # deferred constraints run at commit; ask for them now
            await db.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))


async def test_a_line_cannot_be_in_another_currency_than_its_account(db: WriteSession) -> None:
    pro = uuid.uuid4()
    await _fund(db, pro, 100)
    account_id = await ledger.account_id(db, ledger.owned(K.WALLET_AVAILABLE, pro, "RON"))
    assert account_id is not None
    with pytest.raises(DBAPIError, match="fk_ledger_lines_account_currency"):
        await _raw_entry(db, account_id, "ILS", 50)


async def test_money_held_for_someone_never_goes_negative(db: WriteSession) -> None:
    pro = uuid.uuid4()
    await _fund(db, pro, 1_000)
    legs = [
        (ledger.owned(K.WALLET_AVAILABLE, pro, "RON"), -1_001),
        (ledger.owned(K.PAYOUTS_IN_TRANSIT, pro, "RON"), 1_001),
    ]
    with pytest.raises(InsufficientFundsError):
        await _post_in_savepoint(db, legs)


async def _post_in_savepoint(db: WriteSession, legs: list[ledger.Leg]) -> None:
    async with db.begin_nested():
        await ledger.post(db, EntryKind.PAYOUT, legs, cause=_cause(), idempotency_key="overdraw")


async def test_entries_are_immutable_and_corrected_by_reversal(db: WriteSession) -> None:
    pro = uuid.uuid4()
    entry = await ledger.post(
        db,
        EntryKind.CAPTURE,
        [
            (ledger.platform(K.PROVIDER_CLEARING, "RON"), -700),
            (ledger.owned(K.WALLET_AVAILABLE, pro, "RON"), 700),
        ],
        cause=_cause(),
        idempotency_key="to-reverse",
    )
    for statement in (
        "UPDATE ledger_lines SET amount = 1 WHERE entry_id = :id",
        "DELETE FROM ledger_lines WHERE entry_id = :id",
        "UPDATE ledger_entries SET memo = 'x' WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="immutable"):
            await _execute_in_savepoint(db, statement, entry)
    reversal = await ledger.reverse(db, entry, memo="posted to the wrong wallet")
    assert (await db.get_one(LedgerEntry, reversal)).reverses_id == entry
    assert await ledger.balance(db, ledger.owned(K.WALLET_AVAILABLE, pro, "RON")) == 0
    assert await ledger.reverse(db, entry, memo="again") == reversal


async def _execute_in_savepoint(db: WriteSession, statement: str, entry_id: uuid.UUID) -> None:
    async with db.begin_nested():
        await db.execute(text(statement), {"id": entry_id})


async def test_platform_lines_wait_for_the_roll_up_and_count_meanwhile(db: WriteSession) -> None:
    clearing = ledger.platform(K.PROVIDER_CLEARING, "RON")
    before = await ledger.balance(db, clearing)
    pro = uuid.uuid4()
    await _fund(db, pro, 400)
    await _fund(db, pro, 600)
    account_id = await ledger.account_id(db, clearing)
    waiting = text("SELECT count(*) FROM ledger_lines_pending WHERE account_id = :a")
    stored = text("SELECT balance FROM ledger_accounts WHERE id = :a")

    assert await db.scalar(waiting, {"a": account_id}) >= 2
    assert await ledger.balance(db, clearing) == before - 1_000
    while await ledger.roll_up(db) == ledger.ROLL_UP_BATCH:
        pass

    assert await db.scalar(waiting, {"a": account_id}) == 0
    assert await db.scalar(stored, {"a": account_id}) == before - 1_000
    assert await ledger.balance(db, clearing) == before - 1_000
    rows, _cursor = await ledger.history(db, [clearing], cursor=None, limit=2)
    assert [(r.amount, r.balance_after) for r in rows] == [
        (-600, before - 1_000),
        (-400, before - 400),
    ]


async def test_a_debit_of_platform_revenue_meets_its_waiting_credits(db: WriteSession) -> None:
    """A correction may debit revenue credited moments ago, before any roll-up."""
    revenue = ledger.platform(K.PLATFORM_REVENUE, "RON")
    clearing = ledger.platform(K.PROVIDER_CLEARING, "RON")
    await ledger.post(
        db,
        EntryKind.CAPTURE,
        [(clearing, -900), (revenue, 900)],
        cause=_cause(),
        idempotency_key="revenue-in",
    )
    whole = await ledger.balance(db, revenue)
    assert whole >= 900

    with pytest.raises(InsufficientFundsError):
        await _post_in_savepoint(db, [(revenue, -(whole + 1)), (clearing, whole + 1)])
    async with db.begin_nested():
        await ledger.post(
            db,
            EntryKind.REVERSAL,
            [(revenue, -whole), (clearing, whole)],
            cause=_cause(),
            idempotency_key="revenue-out",
        )
    assert await ledger.balance(db, revenue) == 0

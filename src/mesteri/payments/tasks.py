"""Calls to the provider, made after the money moved in our ledger (at least once, safely).

Each call's idempotency key is derived from our record's id, so when a job crashes after
the provider acted but before our commit, the retry gets the same transfer, refund or
payout back instead of a second one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from mesteri.kit import clock, jobs
from mesteri.kit.db import WriteSession
from mesteri.kit.idempotency import IdempotentRequest
from mesteri.kit.ids import new_id
from mesteri.kit.statemachine import Actor
from mesteri.payments import ledger, providers, service
from mesteri.payments import notices as notices
from mesteri.payments.lifecycles import PAYOUT_LIFECYCLE
from mesteri.payments.models import (
    AccountKind,
    EntryKind,
    LedgerAccount,
    LedgerEntry,
    LedgerLine,
    Payment,
    PaymentState,
    Payout,
    PayoutAccountState,
    PayoutState,
    ReconciliationAlert,
    Refund,
    RefundState,
    Transfer,
    TransferState,
)
from mesteri.payments.providers.base import PaymentProvider, ProviderError, ProviderObject

log = structlog.get_logger(__name__)

IDEMPOTENCY_RETENTION = timedelta(days=2)


@jobs.task("payments.send_transfer", retry=10)
async def send_transfer(transfer_id: str) -> None:
    async with jobs.job_session() as session:
        await _send_transfer(session, uuid.UUID(transfer_id))


async def _send_transfer(session: WriteSession, transfer_id: uuid.UUID) -> None:
    transfer = await session.get(Transfer, transfer_id, with_for_update=True)
    if transfer is None or transfer.state == TransferState.SENT:
        return
    account = await service.payout_account(session, transfer.user_id)
    if account is None or account.state != PayoutAccountState.ACTIVE:
        return  # sent when the account becomes active (account.updated)
    sent = await providers.current().transfer(
        account.provider_ref,
        transfer.amount,
        transfer.currency,
        transfer_group=f"hold_{transfer.hold_id}",
        reference=str(transfer.id),
        idempotency_key=f"transfer-{transfer.id}",
    )
    transfer.state = TransferState.SENT
    transfer.provider_ref = sent.ref
    transfer.sent_at = clock.now()


@jobs.task("payments.send_refund", retry=10)
async def send_refund(refund_id: str) -> None:
    async with jobs.job_session() as session:
        refund = await session.get(Refund, uuid.UUID(refund_id), with_for_update=True)
        if refund is None or refund.provider_ref is not None or refund.state != RefundState.PENDING:
            return
        payment = await session.get(Payment, refund.payment_id)
        assert payment is not None
        sent = await providers.current().refund(
            payment.provider_ref,
            refund.amount,
            reference=str(refund.id),
            idempotency_key=f"refund-{refund.id}",
        )
        refund.provider_ref = sent.ref
        refund.updated_at = clock.now()


@jobs.task("payments.send_payout", retry=10)
async def send_payout(payout_id: str) -> None:
    async with jobs.job_session() as session:
        payout = await session.get(Payout, uuid.UUID(payout_id), with_for_update=True)
        if payout is None or payout.state != PayoutState.REQUESTED:
            return
        account = await service.payout_account(session, payout.user_id)
        if account is None:
            await service.fail_payout(session, payout, "no_payout_account")
            return
        # Money released to this pro must reach their account before it can leave it.
        pending = await session.scalars(
            select(Transfer.id).where(
                Transfer.user_id == payout.user_id, Transfer.state == TransferState.PENDING
            )
        )
        for transfer_id in pending.all():
            await _send_transfer(session, transfer_id)
        try:
            sent = await providers.current().payout(
                account.provider_ref,
                payout.amount,
                payout.currency,
                reference=str(payout.id),
                idempotency_key=f"payout-{payout.id}",
            )
        except ProviderError as exc:
            log.warning("payout refused", payout_id=payout_id, error=str(exc))
            await service.fail_payout(session, payout, str(exc)[:60])
            return
        payout.provider_ref = sent.ref
        payout.updated_at = clock.now()
        await PAYOUT_LIFECYCLE.apply(session, payout, "send", actor=Actor.SYSTEM)


# ---------------------------------------------------------------- ledger


@jobs.registry.periodic(cron="* * * * *")
@jobs.task("payments.roll_up_ledger")
async def roll_up_ledger(timestamp: int) -> None:
    """The platform accounts' waiting lines into their balances, a batch per transaction."""
    await do_roll_up()


async def do_roll_up() -> int:
    moved = 0
    while True:
        async with jobs.job_session() as session:
            batch = await ledger.roll_up(session)
        moved += batch
        if batch < ledger.ROLL_UP_BATCH:
            return moved


# ---------------------------------------------------------------- reconciliation


@jobs.registry.periodic(cron="*/30 * * * *")
@jobs.task("payments.reconcile")
async def reconcile(timestamp: int) -> None:
    async with jobs.job_session() as session:
        await do_reconcile(session)


async def do_reconcile(session: WriteSession, *, since: timedelta = timedelta(days=30)) -> int:
    """Compare what the ledger says about each recent provider object with the provider.

    Returns how many new alerts were raised (a difference is raised once).
    """
    provider = providers.current()
    cutoff = clock.now() - since
    raised = 0
    captured = await _ledger_totals(session, EntryKind.CAPTURE, AccountKind.ESCROW, cutoff)
    for ref, amount in captured.items():
        raised += await _compare(session, provider.name, "payment", ref, amount, "amount")
    refunded = await _ledger_totals(
        session, EntryKind.REFUND_CONFIRMED, AccountKind.PROVIDER_CLEARING, cutoff
    )
    for ref, amount in refunded.items():
        raised += await _compare(session, provider.name, "refund", ref, amount, "amount")
    paid_out = await _ledger_totals(
        session, EntryKind.PAYOUT_PAID, AccountKind.PROVIDER_CLEARING, cutoff
    )
    for ref, amount in paid_out.items():
        raised += await _compare(session, provider.name, "payout", ref, amount, "amount")
    transfers = await session.execute(
        select(Transfer.provider_ref, Transfer.amount).where(
            Transfer.state == TransferState.SENT, Transfer.created_at >= cutoff
        )
    )
    for transfer_ref, amount in transfers:
        raised += await _compare(session, provider.name, "transfer", transfer_ref, amount, "amount")
    # Money captured at the provider that our ledger never recorded.
    open_payments = await session.scalars(
        select(Payment).where(
            Payment.state == PaymentState.REQUIRES_PAYMENT, Payment.created_at >= cutoff
        )
    )
    for payment in open_payments:
        remote = await _retrieve(provider, "payment", payment.provider_ref)
        if remote is not None and remote.status == "succeeded":
            raised += await _raise(
                session,
                provider.name,
                "payment",
                payment.provider_ref,
                "captured_not_recorded",
                payment.amount,
                remote.amount,
            )
    return raised


async def _ledger_totals(
    session: WriteSession, kind: EntryKind, account_kind: AccountKind, cutoff: object
) -> dict[str, int]:
    rows = await session.execute(
        select(LedgerEntry.provider_ref, func.sum(func.abs(LedgerLine.amount)))
        .join(LedgerLine, LedgerLine.entry_id == LedgerEntry.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerLine.account_id)
        .where(
            LedgerEntry.kind == kind,
            LedgerAccount.kind == account_kind,
            LedgerEntry.provider_ref.is_not(None),
            LedgerEntry.posted_at >= cutoff,
        )
        .group_by(LedgerEntry.provider_ref)
    )
    return {ref: int(total) for ref, total in rows}


async def _retrieve(provider: PaymentProvider, kind: str, ref: str) -> ProviderObject | None:
    try:
        found: ProviderObject = await provider.retrieve(kind, ref)
    except ProviderError:
        return None
    return found


async def _compare(
    session: WriteSession, provider: str, kind: str, ref: str | None, ours: int, _field: str
) -> int:
    if ref is None:
        return 0
    remote = await _retrieve(providers.current(), kind, ref)
    if remote is None:
        return await _raise(session, provider, kind, ref, "missing_at_provider", ours, None)
    if remote.amount != ours:
        return await _raise(session, provider, kind, ref, "amount_differs", ours, remote.amount)
    return 0


async def _raise(
    session: WriteSession,
    provider: str,
    kind: str,
    ref: str,
    problem: str,
    expected: int | None,
    actual: int | None,
) -> int:
    inserted = await session.scalar(
        insert(ReconciliationAlert)
        .values(
            id=new_id(),
            provider=provider,
            object_kind=kind,
            object_ref=ref,
            problem=problem,
            expected=expected,
            actual=actual,
            detail="",
            created_at=clock.now(),
        )
        .on_conflict_do_nothing()
        .returning(ReconciliationAlert.id)
    )
    if inserted is not None:
        log.warning("reconciliation difference", kind=kind, ref=ref, problem=problem)
    return 1 if inserted is not None else 0


@jobs.registry.periodic(cron="41 3 * * *")
@jobs.task("payments.purge_idempotency_keys")
async def purge_idempotency_keys(timestamp: int) -> None:
    """Stored answers are kept long enough for any client retry (as Stripe keeps 24 h)."""
    async with jobs.job_session() as session:
        await session.execute(
            delete(IdempotentRequest).where(
                IdempotentRequest.created_at < clock.now() - IDEMPOTENCY_RETENTION
            )
        )

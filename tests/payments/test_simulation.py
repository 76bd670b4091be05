"""A seeded random simulation of escrow histories checked against a small in-memory model.

Steps: create holds, declined and successful payments, webhooks delivered late, twice and
out of order, releases (retried), partial refunds, freezes and splits, and a crash between
a provider call and our commit. After every step: every currency sums to zero, no balance
that must not go negative is negative, escrow = captured - released - refunded for every
hold and matches the model, and nothing settled twice.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select, text

from mesteri.kit import clock
from mesteri.kit.db import unit_of_work
from mesteri.kit.errors import DomainError
from mesteri.kit.money import Money
from mesteri.kit.statemachine import Actor
from mesteri.payments import providers, service, tasks
from mesteri.payments.models import Hold, LedgerEntry, Transfer
from mesteri.payments.providers import signing
from mesteri.payments.sandbox.models import SandboxEvent, SandboxObject
from mesteri.payments.sandbox.provider import DECLINE_CARD, SUCCESS_CARD, SandboxProvider
from tests.conftest import LiveApp
from tests.fixtures.accounts import register

SEEDS = [7, 2026]
STEPS = 80


class Crash(Exception):
    """The process died after the provider acted, before our transaction committed."""


@dataclass
class ModelHold:
    id: uuid.UUID
    amount: int
    payment_ref: str
    paid: bool = False  # the provider took the payer's money
    captured: int = 0
    released: int = 0
    refunded: int = 0
    frozen: bool = False
    settled: str | None = None

    @property
    def held(self) -> int:
        return self.captured - self.released - self.refunded


@dataclass
class Model:
    holds: list[ModelHold] = field(default_factory=list)


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_escrow_histories_keep_the_invariants(live: LiveApp, seed: int) -> None:
    rng = random.Random(seed)
    payer = (await register(live.client))["user"]["id"]
    payee = (await register(live.client, role="pro"))["user"]["id"]
    sessions = live.app.state.write_sessions
    provider = providers.current()
    assert isinstance(provider, SandboxProvider)
    model = Model()

    async def create() -> None:
        amount = rng.randrange(5_000, 500_000)
        async with unit_of_work(sessions) as session:
            funded = await service.fund_hold(
                session,
                reference=f"sim:{uuid.uuid4()}",
                payer_id=uuid.UUID(payer),
                payee_id=uuid.UUID(payee),
                amount=Money(amount, "RON"),
                description="simulated milestone",
            )
        model.holds.append(ModelHold(funded.hold.id, amount, funded.payment.provider_ref))

    async def pay(hold: ModelHold) -> None:
        card = rng.choice([SUCCESS_CARD, SUCCESS_CARD, DECLINE_CARD])
        outcome = await provider.pay(hold.payment_ref, card_number=card, bnpl=None)
        if outcome.succeeded:
            hold.paid = True

    async def deliver_shuffled() -> None:
        """Undelivered events in random order, some twice; then the job's own delivery."""
        async with live.engine.connect() as conn:
            payloads = list(
                await conn.scalars(
                    select(SandboxEvent.payload).where(SandboxEvent.delivered_at.is_(None))
                )
            )
        rng.shuffle(payloads)
        for payload in payloads + rng.sample(payloads, k=len(payloads) // 2):
            body = json.dumps(payload).encode()
            header = signing.signature_header(body, provider.secret, int(clock.now().timestamp()))
            await live.client.post(
                "/api/v1/payments/webhooks/sandbox",
                content=body,
                headers={"Stripe-Signature": header},
            )
        await live.drain()

    async def release(hold: ModelHold) -> None:
        for _attempt in range(rng.choice([1, 2])):  # a client retry
            try:
                async with unit_of_work(sessions) as session:
                    await service.release(session, hold.id)
            except DomainError:
                assert hold.settled not in (None, "released") or hold.captured == 0 or hold.frozen
                return
        assert hold.settled in (None, "released")
        assert not hold.frozen
        hold.released += hold.held
        hold.settled = "released"

    async def refund(hold: ModelHold) -> None:
        amount = rng.randrange(1, max(2, hold.held + 2))
        try:
            async with unit_of_work(sessions) as session:
                await service.refund(session, hold.id, amount)
        except DomainError:
            assert hold.settled or hold.frozen or hold.captured == 0 or amount > hold.held
            return
        hold.refunded += amount
        if hold.held == 0:
            hold.settled = "refunded"

    async def freeze(hold: ModelHold) -> None:
        try:
            async with unit_of_work(sessions) as session:
                await service.freeze(session, hold.id, actor=Actor.CLIENT)
        except DomainError:
            assert hold.settled or hold.captured == 0
            return
        hold.frozen = True

    async def split(hold: ModelHold) -> None:
        pro = rng.randrange(0, hold.held + 1)
        try:
            async with unit_of_work(sessions) as session:
                await service.settle_split(
                    session, hold.id, pro_amount=pro, client_amount=hold.held - pro
                )
        except DomainError:
            assert not hold.frozen or hold.settled
            return
        hold.released += pro
        hold.refunded += hold.held
        hold.settled = "split"

    async def crash_after_sending(transfer_id: uuid.UUID) -> None:
        async with unit_of_work(sessions) as session:
            await tasks._send_transfer(session, transfer_id)
            raise Crash()

    async def crash_then_retry_transfers() -> None:
        """Provider call succeeds, our commit never happens; the retry must not pay twice."""
        async with live.engine.connect() as conn:
            pending = list(
                await conn.scalars(select(Transfer.id).where(Transfer.state == "pending"))
            )
        for transfer_id in pending:
            with pytest.raises(Crash):
                await crash_after_sending(transfer_id)
            async with unit_of_work(sessions) as session:
                await tasks._send_transfer(session, transfer_id)

    # The payee can receive transfers, so crashes around them can be exercised.
    async with unit_of_work(sessions) as session:
        await service.do_start_onboarding(
            session, user_id=uuid.UUID(payee), email=None, return_url="https://testserver/wallet"
        )
        account = await service.payout_account(session, uuid.UUID(payee))
        assert account is not None
        ref = account.provider_ref
    await provider.complete_onboarding(ref, iban="RO49AAAA1B31007593840000")
    await live.drain()

    for _step in range(STEPS):
        action = rng.choice(
            ["create", "pay", "pay", "deliver", "release", "refund", "freeze", "split", "crash"]
        )
        target = rng.choice(model.holds) if model.holds else None
        if action == "create" or target is None:
            await create()
        elif action == "pay":
            await pay(target)
        elif action == "deliver":
            await deliver_shuffled()
        elif action == "release":
            await release(target)
        elif action == "refund":
            await refund(target)
        elif action == "freeze":
            await freeze(target)
        elif action == "split":
            await split(target)
        else:
            await crash_then_retry_transfers()
        await _check_captures(live, model, delivered=action == "deliver")
        await _check_invariants(live, model)
    await deliver_shuffled()
    await _check_captures(live, model, delivered=True)
    await _check_invariants(live, model)
    # The history was not vacuous: money was captured and holds settled.
    assert sum(h.captured for h in model.holds) > 0
    assert {h.settled for h in model.holds} - {None}, [h.settled for h in model.holds]


async def _check_captures(live: LiveApp, model: Model, *, delivered: bool) -> None:
    """Captures change only when webhooks are delivered; then every paid hold is captured
    exactly once and no unpaid one is."""
    async with live.engine.connect() as conn:
        captured = dict((await conn.execute(select(Hold.id, Hold.captured))).all())
    for hold in model.holds:
        if delivered:
            hold.captured = hold.amount if hold.paid else 0
        assert captured[hold.id] == hold.captured, hold.id


async def _check_invariants(live: LiveApp, model: Model) -> None:
    async with live.engine.connect() as conn:
        totals = (
            await conn.execute(
                text("SELECT currency, sum(balance) FROM ledger_account_balances GROUP BY 1")
            )
        ).all()
        assert all(total == 0 for _cur, total in totals), totals
        negative = await conn.scalar(
            text("SELECT count(*) FROM ledger_accounts WHERE NOT may_go_negative AND balance < 0")
        )
        assert negative == 0
        drift = await conn.scalar(
            text(
                "SELECT count(*) FROM ledger_accounts a"
                " WHERE balance <> (SELECT coalesce(sum(amount), 0) FROM ledger_lines l"
                " WHERE l.account_id = a.id)"
            )
        )
        assert drift == 0
        rows = (
            await conn.execute(
                text(
                    "SELECT h.id, h.captured, h.released, h.refunded, coalesce(a.balance, 0)"
                    " FROM holds h LEFT JOIN ledger_accounts a"
                    " ON a.kind = 'escrow' AND a.owner_id = h.id"
                )
            )
        ).all()
        twice = await conn.scalar(
            select(func.count()).select_from(
                select(LedgerEntry.hold_id)
                .where(LedgerEntry.kind == "release")
                .group_by(LedgerEntry.hold_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
        assert twice == 0
        transfers_per_key = await conn.scalar(
            select(func.count()).select_from(
                select(SandboxObject.data["metadata"]["mesteri_ref"].astext.label("ref"))
                .where(SandboxObject.kind == "transfer")
                .group_by("ref")
                .having(func.count() > 1)
                .subquery()
            )
        )
        assert transfers_per_key == 0
    by_id = {hold.id: hold for hold in model.holds}
    for hold_id, captured, released, refunded, escrow in rows:
        assert escrow == captured - released - refunded
        expected = by_id[hold_id]
        assert (captured, released, refunded) == (
            expected.captured,
            expected.released,
            expected.refunded,
        ), hold_id

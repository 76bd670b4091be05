"""The escrow path end to end on committed transactions: hold → sandbox checkout → signed
webhook → release → hold period → payout, plus refunds, freezes, splits and retries."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from mesteri.kit.db import create_engine, session_factories, unit_of_work
from mesteri.kit.ids import new_id
from mesteri.payments import ledger, service
from mesteri.payments.models import AccountKind, EntryKind, LedgerEntry, Transfer
from mesteri.payments.sandbox.provider import INSUFFICIENT_FUNDS_CARD
from tests.conftest import LiveApp
from tests.fixtures.accounts import bearer
from tests.payments.conftest import API, DECLINE_CARD, Desk, totals_by_currency


async def test_fund_release_hold_period_and_payout(desk: Desk) -> None:
    http = desk.http
    created = await desk.hold(100_000)
    assert created["hold"]["state"] == "awaiting_payment"
    paid = await desk.pay(created["checkout_url"])
    assert paid.status_code == 303
    hold = await desk.get_hold(created["hold"]["id"])
    assert hold["state"] == "held"
    assert hold["captured"] == hold["held"] == 100_000

    payment = await http.get(f"{API}/payments/{created['payment_id']}", headers=bearer(desk.client))
    assert payment.json()["state"] == "succeeded"
    assert payment.json()["method"] == "card"

    released = await http.post(
        f"{API}/admin/holds/{hold['id']}/release", headers=bearer(desk.staff)
    )
    assert released.status_code == 200, released.text
    settlement = released.json()
    # 10% platform fee (VAT inside it), the rest to the pro
    assert (settlement["platform_fee"], settlement["pro_net"]) == (10_000, 90_000)
    assert settlement["vat_on_fee"] == 10_000 * 2100 // 12_100

    wallet = await desk.wallet()
    assert (wallet["pending"], wallet["available"]) == (90_000, 0)
    assert wallet["entries"][0]["balance_after"] == 90_000

    # The hold period: 6 days is not enough, 7 is, and it happens once.
    await desk.advance("P6D")
    assert (await desk.wallet())["available"] == 0
    await desk.advance("P1D")
    await desk.advance("P1D")
    wallet = await desk.wallet()
    assert (wallet["pending"], wallet["available"]) == (0, 90_000)
    async with desk.live.engine.connect() as conn:
        matured = await conn.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "mature")
        )
    assert matured == 1

    # No payout before the pro is verified and the provider's onboarding is finished.
    early = await http.post(
        f"{API}/wallet/payouts",
        json={"amount": 50_000, "currency": "RON"},
        headers=bearer(desk.pro),
    )
    assert (early.status_code, early.json()["code"]) == (409, "pro_not_verified")
    await desk.verify_pro()
    early = await http.post(
        f"{API}/wallet/payouts",
        json={"amount": 50_000, "currency": "RON"},
        headers=bearer(desk.pro),
    )
    assert early.status_code == 409
    assert early.json()["code"] == "payout_account_inactive"
    await desk.onboard()
    too_much = await http.post(
        f"{API}/wallet/payouts",
        json={"amount": 90_001, "currency": "RON"},
        headers=bearer(desk.pro),
    )
    assert too_much.json()["code"] == "payout_exceeds_available"

    payout = await http.post(
        f"{API}/wallet/payouts",
        json={"amount": 90_000, "currency": "RON"},
        headers=bearer(desk.pro),
    )
    assert payout.status_code == 201, payout.text
    await desk.live.drain()
    history = await http.get(f"{API}/wallet/payouts", headers=bearer(desk.pro))
    assert history.json()["items"][0]["state"] == "paid"
    wallet = await desk.wallet()
    assert (wallet["available"], wallet["in_transit"]) == (0, 0)
    assert await totals_by_currency(desk.live) == {"RON": 0}
    async with desk.live.engine.connect() as conn:
        transfers = (await conn.execute(select(Transfer.state, Transfer.amount))).all()
    assert transfers == [("sent", 90_000)]


async def test_declined_cards_leave_the_checkout_payable(desk: Desk) -> None:
    created = await desk.hold(50_000)
    declined = await desk.pay(created["checkout_url"], DECLINE_CARD)
    assert declined.status_code == 402
    assert "Your card was declined" in declined.text
    short = await desk.pay(created["checkout_url"], INSUFFICIENT_FUNDS_CARD)
    assert "insufficient funds" in short.text
    payment = await desk.http.get(
        f"{API}/payments/{created['payment_id']}", headers=bearer(desk.client)
    )
    assert payment.json()["state"] == "requires_payment"
    assert payment.json()["failure_code"] == "insufficient_funds"
    assert (await desk.get_hold(created["hold"]["id"]))["state"] == "awaiting_payment"
    await desk.pay(created["checkout_url"])
    assert (await desk.get_hold(created["hold"]["id"]))["state"] == "held"


async def test_bnpl_approval_and_denial(desk: Desk) -> None:
    denied = await desk.hold(30_000)
    response = await desk.pay(denied["checkout_url"], card="", bnpl="deny")
    assert "instalment plan was not approved" in response.text
    approved = await desk.hold(30_000)
    await desk.pay(approved["checkout_url"], card="", bnpl="approve")
    payment = await desk.http.get(
        f"{API}/payments/{approved['payment_id']}", headers=bearer(desk.client)
    )
    assert (payment.json()["state"], payment.json()["method"]) == ("succeeded", "bnpl")


async def test_partial_then_full_refund_never_exceeds_captured(desk: Desk) -> None:
    http = desk.http
    hold = await desk.funded_hold(100_000)
    partial = await http.post(
        f"{API}/admin/holds/{hold['id']}/refunds",
        json={"amount": 30_000},
        headers=bearer(desk.staff),
    )
    assert partial.status_code == 201, partial.text
    too_much = await http.post(
        f"{API}/admin/holds/{hold['id']}/refunds",
        json={"amount": 70_001},
        headers=bearer(desk.staff),
    )
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund_too_large"
    rest = await http.post(
        f"{API}/admin/holds/{hold['id']}/refunds", json={}, headers=bearer(desk.staff)
    )
    assert rest.json()["amount"] == 70_000
    await desk.live.drain()
    settled = await desk.get_hold(hold["id"])
    assert (settled["state"], settled["refunded"], settled["held"]) == ("refunded", 100_000, 0)
    # settled once: a release now is refused and moves nothing
    release = await http.post(f"{API}/admin/holds/{hold['id']}/release", headers=bearer(desk.staff))
    assert release.json()["code"] == "hold_settled"
    assert (await desk.wallet())["pending"] == 0
    assert await totals_by_currency(desk.live) == {"RON": 0}


async def test_freeze_then_split_settlement(desk: Desk) -> None:
    http = desk.http
    hold = await desk.funded_hold(100_000)
    frozen = await http.post(f"{API}/admin/holds/{hold['id']}/freeze", headers=bearer(desk.staff))
    assert frozen.json()["state"] == "frozen"
    # the payee cannot refund a frozen hold; the API refuses a bad split
    refund = await http.post(
        f"{API}/payments/{(await _payment_id(desk, hold['id']))}/refunds",
        json={"amount": 100},
        headers=bearer(desk.pro),
    )
    assert refund.json()["code"] == "hold_frozen"
    bad = await http.post(
        f"{API}/admin/holds/{hold['id']}/split",
        json={"pro_amount": 60_000, "client_amount": 30_000},
        headers=bearer(desk.staff),
    )
    assert bad.json()["code"] == "split_mismatch"
    split = await http.post(
        f"{API}/admin/holds/{hold['id']}/split",
        json={"pro_amount": 60_000, "client_amount": 40_000},
        headers=bearer(desk.staff),
    )
    assert split.status_code == 200, split.text
    # the fee is computed on the pro's part alone
    assert (split.json()["platform_fee"], split.json()["pro_net"], split.json()["refunded"]) == (
        6_000,
        54_000,
        40_000,
    )
    again = await http.post(
        f"{API}/admin/holds/{hold['id']}/split",
        json={"pro_amount": 60_000, "client_amount": 40_000},
        headers=bearer(desk.staff),
    )
    assert again.json() == split.json()
    await desk.live.drain()
    assert (await desk.wallet())["pending"] == 54_000
    assert await totals_by_currency(desk.live) == {"RON": 0}


async def _payment_id(desk: Desk, hold_id: str) -> str:
    async with desk.live.app.state.read_sessions() as session:
        payments = await service.payments_of(session, uuid.UUID(hold_id))
    return str(payments[-1].id)


async def test_referral_release_pays_the_referrer(desk: Desk, live: LiveApp) -> None:
    from tests.fixtures.accounts import register

    referrer = await register(live.client, role="pro", first_name="Dan")
    hold = await desk.funded_hold(
        100_000, referrer_email=referrer["user"]["email"], referral_share=20
    )
    released = await desk.http.post(
        f"{API}/admin/holds/{hold['id']}/release", headers=bearer(desk.staff)
    )
    body = released.json()
    assert (body["platform_fee"], body["referral_fee"], body["pro_net"]) == (5_000, 20_000, 75_000)
    assert (await desk.wallet(referrer))["pending"] == 20_000
    assert (await desk.wallet())["pending"] == 75_000


async def test_idempotency_key_replays_and_refuses_a_different_body(desk: Desk) -> None:
    http = desk.http
    hold = await desk.funded_hold(100_000)
    headers = {**bearer(desk.staff), "Idempotency-Key": "refund-42"}
    first = await http.post(
        f"{API}/admin/holds/{hold['id']}/refunds", json={"amount": 1_000}, headers=headers
    )
    second = await http.post(
        f"{API}/admin/holds/{hold['id']}/refunds", json={"amount": 1_000}, headers=headers
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    other = await http.post(
        f"{API}/admin/holds/{hold['id']}/refunds", json={"amount": 2_000}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert (await desk.get_hold(hold["id"]))["refunded"] == 1_000


async def test_twenty_concurrent_releases_release_once(desk: Desk, live_database_url: str) -> None:
    hold = await desk.funded_hold(100_000)
    await desk.onboard()
    # Twenty connections of their own, so the twenty releases really race.
    engine = create_engine(live_database_url, pool_size=20, max_overflow=0)
    _read, factory = session_factories(engine)

    async def release() -> service.Settlement:
        async with unit_of_work(factory) as session:
            return await service.release(session, uuid.UUID(hold["id"]))

    try:
        results = await asyncio.gather(*(release() for _ in range(20)))
    finally:
        await engine.dispose()
    assert len({r.at for r in results}) == 1
    await desk.live.drain()
    async with desk.live.engine.connect() as conn:
        releases = await conn.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "release")
        )
        transfers = (await conn.execute(select(Transfer.state))).all()
    assert releases == 1
    assert transfers == [("sent",)]
    assert (await desk.wallet())["pending"] == 90_000


async def test_a_release_the_escrow_cannot_cover_is_refused_and_writes_nothing(
    desk: Desk,
) -> None:
    hold = await desk.funded_hold(100_000)
    currency = hold["currency"]
    escrow = ledger.owned(AccountKind.ESCROW, uuid.UUID(hold["id"]), currency)
    # One unit taken out of the escrow by a (mistaken) entry: the hold still says 100 000.
    async with unit_of_work(desk.live.app.state.write_sessions) as session:
        await ledger.post(
            session,
            EntryKind.REVERSAL,
            [(escrow, -1), (ledger.platform(AccountKind.PLATFORM_REVENUE, currency), 1)],
            cause=ledger.Cause("entry", new_id(), hold_id=uuid.UUID(hold["id"])),
            idempotency_key=f"test:drain-escrow:{hold['id']}",
        )

    refused = await desk.http.post(
        f"{API}/admin/holds/{hold['id']}/release", headers=bearer(desk.staff)
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "insufficient_funds"
    assert (await desk.get_hold(hold["id"]))["state"] == "held"
    async with desk.live.engine.connect() as conn:
        releases = await conn.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "release")
        )
        transfers = await conn.scalar(select(func.count()).select_from(Transfer))
    assert (releases, transfers) == (0, 0)
    async with desk.live.app.state.read_sessions() as session:
        assert await ledger.balance(session, escrow) == 99_999
    assert (await desk.wallet())["pending"] == 0

"""The escrow path with the Stripe provider: the official SDK against the local fake,
events signed by the SDK's helper and posted to our webhook endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mesteri.kit.db import unit_of_work
from mesteri.kit.money import Money
from mesteri.payments import providers, service
from mesteri.payments.providers.stripe import StripeProvider
from tests.conftest import LiveApp
from tests.fixtures.accounts import register
from tests.payments.conftest import API, totals_by_currency
from tests.payments.fake_stripe import FakeStripe

HOOK = f"{API}/payments/webhooks/stripe"
# The SDK hands its form body to httpx in a way httpx now warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def stripe_fake(live: LiveApp) -> Iterator[FakeStripe]:
    with FakeStripe.running() as fake:
        providers.install(StripeProvider(fake.secret_key, fake.webhook_secret, api_base=fake.url))
        yield fake


async def test_fund_webhook_release_transfer_and_refund(
    live: LiveApp, stripe_fake: FakeStripe
) -> None:
    payer = uuid.UUID((await register(live.client))["user"]["id"])
    pro = uuid.UUID((await register(live.client, role="pro"))["user"]["id"])
    sessions = live.app.state.write_sessions

    async with unit_of_work(sessions) as session:
        funded = await service.fund_hold(
            session,
            reference="milestone:stripe-1",
            payer_id=payer,
            payee_id=pro,
            amount=Money(120_000, "RON"),
            description="Roof repair",
        )
        hold_id, session_ref = funded.hold.id, funded.payment.provider_ref
    checkout = stripe_fake.objects[session_ref]
    assert checkout["url"] == funded.checkout_url
    assert stripe_fake.created["checkout.session"] == 1

    intent = stripe_fake.complete_checkout(session_ref)
    body, headers = stripe_fake.signed_event("payment_intent.succeeded", intent)
    answer = await live.client.post(HOOK, content=body, headers=headers)
    assert answer.json()["outcome"] == "funded", answer.text
    # Stripe also reports the completed session: the same payment, applied once.
    body, headers = stripe_fake.signed_event(
        "checkout.session.completed", stripe_fake.objects[session_ref]
    )
    assert (await live.client.post(HOOK, content=body, headers=headers)).json()[
        "outcome"
    ] == "already_applied"

    # The pro onboards with Stripe Express; account.updated makes payouts possible.
    async with unit_of_work(sessions) as session:
        link = await service.do_start_onboarding(
            session, user_id=pro, email=None, return_url="https://testserver/wallet"
        )
        account = await service.payout_account(session, pro)
        assert account is not None
        account_ref = account.provider_ref
    assert link.startswith("http")
    body, headers = stripe_fake.signed_event(
        "account.updated", stripe_fake.complete_onboarding(account_ref)
    )
    assert (await live.client.post(HOOK, content=body, headers=headers)).json()[
        "outcome"
    ] == "active"

    async with unit_of_work(sessions) as session:
        await service.refund(session, hold_id, 20_000, reason="smaller roof")
    async with unit_of_work(sessions) as session:
        settled = await service.release(session, hold_id)
    assert settled.pro_net == 90_000  # 100,000 left after the refund, minus 10%
    await live.drain()

    transfers = [o for o in stripe_fake.objects.values() if o.get("object") == "transfer"]
    assert [(t["amount"], t["destination"], t["transfer_group"]) for t in transfers] == [
        (90_000, account_ref, f"hold_{hold_id}")
    ]
    refunds = [o for o in stripe_fake.objects.values() if o.get("object") == "refund"]
    assert [r["amount"] for r in refunds] == [20_000]
    body, headers = stripe_fake.signed_event(
        "refund.updated", {**refunds[0], "status": "succeeded"}
    )
    assert (await live.client.post(HOOK, content=body, headers=headers)).json()[
        "outcome"
    ] == "refunded"
    # A job that crashed after calling Stripe retries with the key made from our record
    # id, and Stripe answers with the same transfer instead of making a second one.
    (transfer,) = transfers
    again = await providers.current().transfer(
        account_ref,
        90_000,
        "RON",
        transfer_group=f"hold_{hold_id}",
        reference=transfer["metadata"]["mesteri_ref"],
        idempotency_key=f"transfer-{transfer['metadata']['mesteri_ref']}",
    )
    assert again.ref == transfer["id"]
    assert stripe_fake.created["transfer"] == 1
    assert stripe_fake.created["refund"] == 1
    assert await totals_by_currency(live) == {"RON": 0}


async def test_bad_stripe_signature_is_refused(live: LiveApp, stripe_fake: FakeStripe) -> None:
    body, headers = stripe_fake.signed_event(
        "payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"}, secret="whsec_other"
    )
    response = await live.client.post(HOOK, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"

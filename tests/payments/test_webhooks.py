"""Provider webhooks: verified (signature, timestamp), de-duplicated, order-independent."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from mesteri.kit import clock
from mesteri.payments import providers
from mesteri.payments.models import LedgerEntry, WebhookEvent
from mesteri.payments.providers import signing
from mesteri.payments.sandbox.models import SandboxEvent
from tests.fixtures.accounts import bearer
from tests.payments.conftest import API, Desk, totals_by_currency

HOOK = f"{API}/payments/webhooks/sandbox"


def _sign(body: bytes, *, at: int | None = None, secret: str | None = None) -> dict[str, str]:
    provider = providers.current()
    timestamp = at if at is not None else int(clock.now().timestamp())
    key = secret or provider.secret  # type: ignore[attr-defined]
    return {"Stripe-Signature": signing.signature_header(body, key, timestamp)}


async def _events(desk: Desk, raw_type: str) -> list[dict[str, Any]]:
    async with desk.live.engine.connect() as conn:
        rows = await conn.scalars(select(SandboxEvent.payload).where(SandboxEvent.type == raw_type))
        return list(rows)


async def _counts(desk: Desk) -> tuple[int, int]:
    async with desk.live.engine.connect() as conn:
        events = await conn.scalar(select(func.count()).select_from(WebhookEvent))
        entries = await conn.scalar(select(func.count()).select_from(LedgerEntry))
    return int(events or 0), int(entries or 0)


async def test_bad_signature_and_old_timestamp_are_refused_and_change_nothing(desk: Desk) -> None:
    created = await desk.hold(40_000)
    # Pay without delivering, then forge the delivery.
    await desk.pay(created["checkout_url"])
    (event,) = await _events(desk, "payment_intent.succeeded")
    body = json.dumps({**event, "id": "evt_forged"}).encode()
    before = await _counts(desk)

    forged = await desk.http.post(HOOK, content=body, headers=_sign(body, secret="whsec_wrong"))
    assert forged.status_code == 400
    assert forged.json()["code"] == "invalid_signature"
    missing = await desk.http.post(HOOK, content=body)
    assert missing.status_code == 400
    stale = int(clock.now().timestamp()) - 301
    old = await desk.http.post(HOOK, content=body, headers=_sign(body, at=stale))
    assert old.status_code == 400
    tampered = await desk.http.post(
        HOOK, content=body.replace(b"40000", b"90000"), headers=_sign(body)
    )
    assert tampered.status_code == 400
    assert await _counts(desk) == before


async def test_replayed_event_is_a_no_op(desk: Desk) -> None:
    created = await desk.hold(40_000)
    await desk.pay(created["checkout_url"])
    (event,) = await _events(desk, "payment_intent.succeeded")
    body = json.dumps(event).encode()
    before = await _counts(desk)
    replay = await desk.http.post(HOOK, content=body, headers=_sign(body))
    assert replay.status_code == 200
    assert replay.json()["outcome"] == "duplicate"
    assert await _counts(desk) == before
    hold = await desk.get_hold(created["hold"]["id"])
    assert hold["captured"] == 40_000


async def test_same_payment_reported_twice_under_new_event_ids_applies_once(desk: Desk) -> None:
    created = await desk.hold(40_000)
    await desk.pay(created["checkout_url"])
    (event,) = await _events(desk, "payment_intent.succeeded")
    body = json.dumps({**event, "id": "evt_second_report"}).encode()
    again = await desk.http.post(HOOK, content=body, headers=_sign(body))
    assert again.json()["outcome"] == "already_applied"
    assert (await desk.get_hold(created["hold"]["id"]))["captured"] == 40_000
    assert await totals_by_currency(desk.live) == {"RON": 0}


async def test_out_of_order_failure_after_success_is_harmless(desk: Desk) -> None:
    created = await desk.hold(40_000)
    await desk.pay(created["checkout_url"], "4000 0000 0000 0002")
    (declined,) = await _events(desk, "payment_intent.payment_failed")
    await desk.pay(created["checkout_url"])
    # The decline is delivered again, late (a provider retry after the success).
    body = json.dumps({**declined, "id": "evt_late_decline"}).encode()
    late = await desk.http.post(HOOK, content=body, headers=_sign(body))
    assert late.json()["outcome"] == "stale"
    payment = await desk.http.get(
        f"{API}/payments/{created['payment_id']}", headers=bearer(desk.client)
    )
    assert payment.json()["state"] == "succeeded"


async def test_unknown_event_types_are_acknowledged(desk: Desk) -> None:
    body = json.dumps(
        {
            "id": "evt_unknown_1",
            "type": "charge.dispute.funds_withdrawn",
            "created": int(clock.now().timestamp()),
            "data": {"object": {"id": "du_1", "object": "dispute"}},
        }
    ).encode()
    response = await desk.http.post(HOOK, content=body, headers=_sign(body))
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"


async def test_event_about_an_unknown_object_is_retried_later(desk: Desk) -> None:
    body = json.dumps(
        {
            "id": "evt_early_1",
            "type": "payment_intent.succeeded",
            "created": int(clock.now().timestamp()),
            "data": {
                "object": {
                    "id": "pi_sbx_unknown",
                    "object": "payment",
                    "amount": 5,
                    "currency": "ron",
                    "metadata": {},
                }
            },
        }
    ).encode()
    response = await desk.http.post(HOOK, content=body, headers=_sign(body))
    assert response.status_code == 409
    # not recorded, so the provider's retry is processed once the object exists
    assert (await _counts(desk))[0] == 0


async def test_webhooks_of_another_provider_are_not_found(desk: Desk) -> None:
    response = await desk.http.post(f"{API}/payments/webhooks/paypal", content=b"{}")
    assert response.status_code == 404

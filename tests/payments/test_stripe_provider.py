"""StripeProvider against a local fake of the Stripe API (no network, no database)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from mesteri.payments.providers.base import (
    REFERENCE_KEY,
    CheckoutRequest,
    EventType,
    InvalidSignatureError,
    ProviderError,
)
from mesteri.payments.providers.stripe import StripeProvider, StripeProviderError
from tests.payments.fake_stripe import FakeStripe, fake_stripe

__all__ = ["fake_stripe"]

# The SDK hands httpx its form body as bytes through ``data=``; httpx only warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
async def provider(fake_stripe: FakeStripe) -> AsyncIterator[StripeProvider]:
    stripe_provider = StripeProvider(
        fake_stripe.secret_key, fake_stripe.webhook_secret, api_base=fake_stripe.url
    )
    yield stripe_provider
    await stripe_provider.aclose()


def checkout_request(**overrides: Any) -> CheckoutRequest:
    values: dict[str, Any] = {
        "reference": "pay-1",
        "amount": 125_000,
        "currency": "RON",
        "description": "Bathroom tiling, milestone 1",
        "transfer_group": "hold-1",
        "customer_email": "client@example.ro",
        "success_url": "http://127.0.0.1:8000/paid",
        "cancel_url": "http://127.0.0.1:8000/cancelled",
    }
    return CheckoutRequest(**{**values, **overrides})


async def paid_checkout(provider: StripeProvider, fake: FakeStripe, **overrides: Any) -> str:
    checkout = await provider.create_checkout(
        checkout_request(**overrides), idempotency_key="checkout-pay-1"
    )
    fake.complete_checkout(checkout.provider_ref)
    return checkout.provider_ref


async def onboarded_account(provider: StripeProvider, fake: FakeStripe) -> str:
    account = await provider.create_connected_account(
        reference="pro-1", email="pro@example.ro", country="RO", idempotency_key="account-pro-1"
    )
    fake.complete_onboarding(account.ref)
    return account.ref


# -- checkout and capture ----------------------------------------------------------------


async def test_checkout_carries_transfer_group_and_reference(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    checkout = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")

    assert checkout.provider_ref.startswith("cs_")
    assert checkout.session_ref == checkout.provider_ref
    assert checkout.checkout_url.endswith(checkout.provider_ref)
    (call,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    params = call.params
    assert params["mode"] == "payment"
    assert params["metadata"] == {REFERENCE_KEY: "pay-1"}
    assert params["client_reference_id"] == "pay-1"
    assert params["customer_email"] == "client@example.ro"
    assert params["allowed_payment_method_types"] == ["card", "klarna"]
    intent_data = params["payment_intent_data"]
    assert intent_data["transfer_group"] == "hold-1"
    assert intent_data["capture_method"] == "automatic"
    assert intent_data["metadata"] == {REFERENCE_KEY: "pay-1"}
    price = params["line_items"][0]["price_data"]
    assert (price["currency"], price["unit_amount"]) == ("ron", "125000")
    assert call.headers["idempotency-key"] == "checkout-1"


async def test_checkout_without_bnpl_offers_cards_only(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    await provider.create_checkout(
        checkout_request(allow_bnpl=False, customer_email=None), idempotency_key="checkout-1"
    )

    (call,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert call.params["allowed_payment_method_types"] == ["card"]
    assert "customer_email" not in call.params


async def test_same_idempotency_key_returns_the_same_session(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    first = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")
    again = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")
    other = await provider.create_checkout(checkout_request(), idempotency_key="checkout-2")

    assert again == first
    assert other.provider_ref != first.provider_ref
    assert fake_stripe.created["checkout.session"] == 2
    assert len(fake_stripe.calls("POST", "/v1/checkout/sessions")) == 3


async def test_reusing_a_key_with_other_parameters_is_refused(provider: StripeProvider) -> None:
    await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")

    with pytest.raises(StripeProviderError) as refused:
        await provider.create_checkout(checkout_request(amount=1), idempotency_key="checkout-1")
    assert refused.value.http_status == 400


async def test_retrieve_an_unpaid_checkout(provider: StripeProvider) -> None:
    checkout = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")

    payment = await provider.retrieve("payment", checkout.provider_ref)

    assert (payment.status, payment.amount, payment.currency) == ("open", 0, "RON")
    assert payment.data["amount_total"] == 125_000


async def test_retrieve_a_paid_checkout_reports_amount_and_fee(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    ref = await paid_checkout(provider, fake_stripe)

    payment = await provider.retrieve("payment", ref)

    assert payment.ref == ref
    assert (payment.status, payment.amount, payment.currency) == ("succeeded", 125_000, "RON")
    assert payment.fee == 125_000 * 140 // 10_000 + 100
    assert payment.data["transfer_group"] == "hold-1"
    assert payment.data["reference"] == "pay-1"
    intent_ref = payment.data["payment_intent"]
    assert (await provider.retrieve("payment", intent_ref)).amount == 125_000


async def test_capture_is_a_no_op_once_captured(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    ref = await paid_checkout(provider, fake_stripe)

    payment = await provider.capture(ref, idempotency_key="capture-1")

    assert (payment.status, payment.amount) == ("succeeded", 125_000)
    assert not [r for r in fake_stripe.requests if r.path.endswith("/capture")]


async def test_capture_an_authorised_payment(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    checkout = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")
    intent = fake_stripe.complete_checkout(checkout.provider_ref, capture=False)

    payment = await provider.capture(checkout.provider_ref, idempotency_key="capture-1")

    assert (payment.status, payment.amount) == ("succeeded", 125_000)
    (call,) = fake_stripe.calls("POST", f"/v1/payment_intents/{intent['id']}/capture")
    assert call.headers["idempotency-key"] == "capture-1"


async def test_capture_before_payment_is_an_error(provider: StripeProvider) -> None:
    checkout = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")

    with pytest.raises(ProviderError, match="not been paid"):
        await provider.capture(checkout.provider_ref, idempotency_key="capture-1")


# -- refunds -----------------------------------------------------------------------------


async def test_refund_part_of_a_payment(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    ref = await paid_checkout(provider, fake_stripe)

    refund = await provider.refund(ref, 25_000, reference="refund-1", idempotency_key="refund-1")
    again = await provider.refund(ref, 25_000, reference="refund-1", idempotency_key="refund-1")

    assert again == refund
    assert (refund.kind, refund.status, refund.amount, refund.currency) == (
        "refund",
        "succeeded",
        25_000,
        "RON",
    )
    assert refund.data["metadata"] == {REFERENCE_KEY: "refund-1"}
    assert fake_stripe.created["refund"] == 1
    payment = await provider.retrieve("payment", ref)
    assert payment.amount_refunded == 25_000
    assert (await provider.retrieve("refund", refund.ref)).amount == 25_000


async def test_refund_more_than_paid_is_a_provider_error(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    ref = await paid_checkout(provider, fake_stripe)

    with pytest.raises(StripeProviderError) as refused:
        await provider.refund(ref, 200_000, reference="refund-1", idempotency_key="refund-1")
    assert refused.value.code == "amount_too_large"
    assert "greater than unrefunded amount" in str(refused.value)


# -- connected accounts, transfers and payouts --------------------------------------------


async def test_create_connected_account_and_onboarding_link(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    account = await provider.create_connected_account(
        reference="pro-1", email="pro@example.ro", country="ro", idempotency_key="account-pro-1"
    )
    again = await provider.create_connected_account(
        reference="pro-1", email="pro@example.ro", country="ro", idempotency_key="account-pro-1"
    )
    link = await provider.onboarding_link(
        account.ref, return_url="http://127.0.0.1/back", refresh_url="http://127.0.0.1/again"
    )

    assert again == account
    assert fake_stripe.created["account"] == 1
    assert account.ref.startswith("acct_")
    assert not account.payouts_enabled
    assert "external_account" in account.requirements_due
    call = fake_stripe.calls("POST", "/v1/accounts")[0]
    assert call.params["type"] == "express"
    assert call.params["country"] == "RO"
    assert call.params["capabilities"] == {"transfers": {"requested": "true"}}
    assert call.params["metadata"] == {REFERENCE_KEY: "pro-1"}
    assert link.startswith(fake_stripe.url)
    (link_call,) = fake_stripe.calls("POST", "/v1/account_links")
    assert link_call.params["type"] == "account_onboarding"
    assert link_call.params["account"] == account.ref


async def test_retrieve_an_account(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    ref = await onboarded_account(provider, fake_stripe)

    account = await provider.retrieve("account", ref)

    assert (account.status, account.currency) == ("enabled", "RON")
    assert account.data == {"payouts_enabled": True, "requirements_due": [], "reference": "pro-1"}


async def test_transfer_to_a_connected_account(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    await paid_checkout(provider, fake_stripe)
    account_ref = await onboarded_account(provider, fake_stripe)

    transfer = await provider.transfer(
        account_ref,
        100_000,
        "RON",
        transfer_group="hold-1",
        reference="release-1",
        idempotency_key="transfer-release-1",
    )
    again = await provider.transfer(
        account_ref,
        100_000,
        "RON",
        transfer_group="hold-1",
        reference="release-1",
        idempotency_key="transfer-release-1",
    )

    assert again == transfer
    assert fake_stripe.created["transfer"] == 1
    assert (transfer.kind, transfer.status, transfer.amount) == ("transfer", "paid", 100_000)
    assert transfer.data["destination"] == account_ref
    assert transfer.data["transfer_group"] == "hold-1"
    assert transfer.data["metadata"] == {REFERENCE_KEY: "release-1"}
    assert fake_stripe.balances[(account_ref, "ron")] == 100_000
    assert (await provider.retrieve("transfer", transfer.ref)).amount == 100_000


async def test_transfer_beyond_the_platform_balance_is_refused(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    account_ref = await onboarded_account(provider, fake_stripe)

    with pytest.raises(StripeProviderError) as refused:
        await provider.transfer(
            account_ref,
            100_000,
            "RON",
            transfer_group="hold-1",
            reference="release-1",
            idempotency_key="transfer-release-1",
        )
    assert refused.value.code == "balance_insufficient"


async def test_payout_runs_as_the_connected_account(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    await paid_checkout(provider, fake_stripe)
    account_ref = await onboarded_account(provider, fake_stripe)
    await provider.transfer(
        account_ref,
        100_000,
        "RON",
        transfer_group="hold-1",
        reference="release-1",
        idempotency_key="transfer-release-1",
    )

    payout = await provider.payout(
        account_ref, 60_000, "RON", reference="payout-1", idempotency_key="payout-1"
    )
    again = await provider.payout(
        account_ref, 60_000, "RON", reference="payout-1", idempotency_key="payout-1"
    )

    assert again == payout
    assert fake_stripe.created["payout"] == 1
    assert (payout.status, payout.amount, payout.currency) == ("pending", 60_000, "RON")
    assert payout.data["metadata"] == {REFERENCE_KEY: "payout-1"}
    (call, _) = fake_stripe.calls("POST", "/v1/payouts")
    assert call.headers["stripe-account"] == account_ref
    assert fake_stripe.balances[(account_ref, "ron")] == 40_000
    fake_stripe.settle_payout(payout.ref)
    settled = await provider.retrieve("payout", payout.ref, account_ref=account_ref)
    assert settled.status == "paid"
    # A connected account's payout is not visible as the platform.
    with pytest.raises(StripeProviderError) as missing:
        await provider.retrieve("payout", payout.ref)
    assert missing.value.code == "resource_missing"


async def test_payout_before_onboarding_is_refused(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    account = await provider.create_connected_account(
        reference="pro-1", email=None, country="RO", idempotency_key="account-pro-1"
    )

    with pytest.raises(StripeProviderError) as refused:
        await provider.payout(
            account.ref, 1_000, "RON", reference="payout-1", idempotency_key="payout-1"
        )
    assert refused.value.code == "payouts_not_allowed"


# -- errors ------------------------------------------------------------------------------


async def test_card_error_becomes_a_provider_error(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next("/v1/checkout/sessions", status=402)

    with pytest.raises(ProviderError, match="Your card was declined") as refused:
        await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")
    assert isinstance(refused.value, StripeProviderError)
    assert (refused.value.code, refused.value.http_status) == ("card_declined", 402)


async def test_invalid_request_becomes_a_provider_error(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    fake_stripe.fail_next(
        "/v1/accounts",
        status=400,
        error_type="invalid_request_error",
        code="country_unsupported",
        message="Country XX is not supported.",
    )

    with pytest.raises(ProviderError, match="Country XX is not supported"):
        await provider.create_connected_account(
            reference="pro-1", email=None, country="XX", idempotency_key="account-pro-1"
        )


async def test_wrong_api_key_is_a_provider_error(fake_stripe: FakeStripe) -> None:
    wrong = StripeProvider("sk_test_wrong", fake_stripe.webhook_secret, api_base=fake_stripe.url)
    try:
        with pytest.raises(ProviderError, match="Invalid API Key"):
            await wrong.retrieve("refund", "re_missing")
    finally:
        await wrong.aclose()


async def test_unknown_object_is_a_provider_error(provider: StripeProvider) -> None:
    with pytest.raises(StripeProviderError) as missing:
        await provider.retrieve("transfer", "tr_missing")
    assert (missing.value.code, missing.value.http_status) == ("resource_missing", 404)


async def test_unknown_kind_is_a_provider_error(provider: StripeProvider) -> None:
    with pytest.raises(ProviderError, match="unknown object kind"):
        await provider.retrieve("invoice", "in_1")


async def test_unreachable_stripe_is_a_provider_error() -> None:
    with FakeStripe.running() as fake:
        url = fake.url
    gone = StripeProvider("sk_test_fake", "whsec_fake", api_base=url, max_network_retries=0)
    try:
        with pytest.raises(ProviderError):
            await gone.retrieve("refund", "re_1")
    finally:
        await gone.aclose()


# -- webhooks ----------------------------------------------------------------------------


async def test_checkout_completed_is_payment_succeeded(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    ref = await paid_checkout(provider, fake_stripe)
    body, headers = fake_stripe.signed_event("checkout.session.completed", fake_stripe.objects[ref])

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.PAYMENT_SUCCEEDED
    assert event.raw_type == "checkout.session.completed"
    assert (event.object_ref, event.reference) == (ref, "pay-1")
    assert (event.amount, event.currency) == (125_000, "RON")
    assert event.id.startswith("evt_")
    assert abs(event.created - time.time()) < 60


async def test_unpaid_checkout_completion_is_not_a_payment(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    checkout = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")
    session = {**fake_stripe.objects[checkout.provider_ref], "status": "complete"}
    body, headers = fake_stripe.signed_event("checkout.session.completed", session)

    assert provider.parse_webhook(body, headers).type is EventType.UNKNOWN


async def test_payment_intent_succeeded(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    ref = await paid_checkout(provider, fake_stripe, allow_bnpl=False)
    intent = fake_stripe.objects[fake_stripe.objects[ref]["payment_intent"]]
    body, headers = fake_stripe.signed_event("payment_intent.succeeded", intent)

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.PAYMENT_SUCCEEDED
    assert (event.object_ref, event.reference) == (intent["id"], "pay-1")
    assert (event.amount, event.currency, event.payment_method) == (125_000, "RON", "card")


async def test_payment_intent_failed(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    intent = {
        "id": "pi_failed",
        "object": "payment_intent",
        "amount": 5_000,
        "amount_received": 0,
        "currency": "ron",
        "status": "requires_payment_method",
        "metadata": {REFERENCE_KEY: "pay-2"},
        "payment_method_types": ["card"],
        "last_payment_error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    }
    body, headers = fake_stripe.signed_event("payment_intent.payment_failed", intent)

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.PAYMENT_FAILED
    assert (event.reference, event.amount) == ("pay-2", 5_000)
    assert event.failure_code == "insufficient_funds"
    assert event.failure_message == "Your card has insufficient funds."


async def test_async_checkout_payment_failed(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    checkout = await provider.create_checkout(checkout_request(), idempotency_key="checkout-1")
    session = fake_stripe.objects[checkout.provider_ref]
    body, headers = fake_stripe.signed_event("checkout.session.async_payment_failed", session)

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.PAYMENT_FAILED
    assert (event.object_ref, event.reference) == (checkout.provider_ref, "pay-1")


@pytest.mark.parametrize(
    ("raw_type", "status", "expected"),
    [
        ("refund.created", "succeeded", EventType.REFUND_SUCCEEDED),
        ("refund.updated", "succeeded", EventType.REFUND_SUCCEEDED),
        ("charge.refund.updated", "succeeded", EventType.REFUND_SUCCEEDED),
        ("refund.updated", "failed", EventType.REFUND_FAILED),
        ("refund.failed", "failed", EventType.REFUND_FAILED),
        ("refund.updated", "canceled", EventType.REFUND_FAILED),
        ("refund.created", "pending", EventType.UNKNOWN),
    ],
)
async def test_refund_events(
    provider: StripeProvider,
    fake_stripe: FakeStripe,
    raw_type: str,
    status: str,
    expected: EventType,
) -> None:
    ref = await paid_checkout(provider, fake_stripe)
    refund = await provider.refund(ref, 1_000, reference="refund-1", idempotency_key="refund-1")
    failure = "lost_or_stolen_card" if status == "failed" else None
    obj = {**fake_stripe.objects[refund.ref], "status": status, "failure_reason": failure}
    body, headers = fake_stripe.signed_event(raw_type, obj)

    event = provider.parse_webhook(body, headers)

    assert event.type is expected
    assert (event.object_ref, event.reference) == (refund.ref, "refund-1")
    if expected is not EventType.UNKNOWN:
        assert (event.amount, event.currency, event.failure_code) == (1_000, "RON", failure)


async def test_transfer_created(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    await paid_checkout(provider, fake_stripe)
    account_ref = await onboarded_account(provider, fake_stripe)
    transfer = await provider.transfer(
        account_ref,
        10_000,
        "RON",
        transfer_group="hold-1",
        reference="release-1",
        idempotency_key="transfer-release-1",
    )
    body, headers = fake_stripe.signed_event("transfer.created", fake_stripe.objects[transfer.ref])

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.TRANSFER_CREATED
    assert (event.object_ref, event.reference, event.amount) == (transfer.ref, "release-1", 10_000)


@pytest.mark.parametrize("paid", [True, False])
async def test_payout_events_arrive_from_the_connected_account(
    provider: StripeProvider, fake_stripe: FakeStripe, paid: bool
) -> None:
    await paid_checkout(provider, fake_stripe)
    account_ref = await onboarded_account(provider, fake_stripe)
    await provider.transfer(
        account_ref,
        10_000,
        "RON",
        transfer_group="hold-1",
        reference="release-1",
        idempotency_key="transfer-release-1",
    )
    payout = await provider.payout(
        account_ref, 10_000, "RON", reference="payout-1", idempotency_key="payout-1"
    )
    settled = fake_stripe.settle_payout(payout.ref, paid=paid)
    raw_type = "payout.paid" if paid else "payout.failed"
    body, headers = fake_stripe.signed_event(raw_type, settled, account=account_ref)

    event = provider.parse_webhook(body, headers)

    assert event.type is (EventType.PAYOUT_PAID if paid else EventType.PAYOUT_FAILED)
    assert (event.object_ref, event.reference, event.amount) == (payout.ref, "payout-1", 10_000)
    assert event.payload["account"] == account_ref
    if not paid:
        assert event.failure_code == "account_closed"
        assert event.failure_message == "The bank account has been closed."


async def test_account_updated(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    account_ref = await onboarded_account(provider, fake_stripe)
    body, headers = fake_stripe.signed_event(
        "account.updated", fake_stripe.objects[account_ref], account=account_ref
    )

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.ACCOUNT_UPDATED
    assert event.account is not None
    assert (event.account.ref, event.account.payouts_enabled) == (account_ref, True)
    assert event.account.requirements_due == ()
    assert event.reference == "pro-1"


async def test_account_with_requirements_due(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    account = await provider.create_connected_account(
        reference="pro-1", email=None, country="RO", idempotency_key="account-pro-1"
    )
    body, headers = fake_stripe.signed_event("account.updated", fake_stripe.objects[account.ref])

    event = provider.parse_webhook(body, headers)

    assert event.account is not None
    assert not event.account.payouts_enabled
    assert event.account.requirements_due == account.requirements_due


async def test_unmapped_event_is_unknown(provider: StripeProvider, fake_stripe: FakeStripe) -> None:
    body, headers = fake_stripe.signed_event(
        "customer.created", {"id": "cus_1", "object": "customer", "metadata": {}}
    )

    event = provider.parse_webhook(body, headers)

    assert event.type is EventType.UNKNOWN
    assert (event.raw_type, event.object_ref, event.reference) == (
        "customer.created",
        "cus_1",
        None,
    )


async def test_signature_header_name_is_case_insensitive(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    body, headers = fake_stripe.signed_event("customer.created", {"id": "cus_1"})

    event = provider.parse_webhook(body, {"stripe-signature": headers["Stripe-Signature"]})

    assert event.object_ref == "cus_1"


async def test_wrong_secret_is_an_invalid_signature(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    body, headers = fake_stripe.signed_event(
        "customer.created", {"id": "cus_1"}, secret="whsec_other"
    )

    with pytest.raises(InvalidSignatureError):
        provider.parse_webhook(body, headers)


async def test_tampered_body_is_an_invalid_signature(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    body, headers = fake_stripe.signed_event("customer.created", {"id": "cus_1"})

    with pytest.raises(InvalidSignatureError):
        provider.parse_webhook(body.replace(b"cus_1", b"cus_2"), headers)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=1", "v1=abc"])
async def test_missing_or_malformed_header_is_an_invalid_signature(
    provider: StripeProvider, fake_stripe: FakeStripe, header: str | None
) -> None:
    body, _ = fake_stripe.signed_event("customer.created", {"id": "cus_1"})
    headers = {} if header is None else {"Stripe-Signature": header}

    with pytest.raises(InvalidSignatureError):
        provider.parse_webhook(body, headers)


async def test_old_timestamp_is_an_invalid_signature(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    old = int(time.time()) - 301
    body, headers = fake_stripe.signed_event("customer.created", {"id": "cus_1"}, timestamp=old)

    with pytest.raises(InvalidSignatureError, match="tolerance"):
        provider.parse_webhook(body, headers)


async def test_timestamp_within_tolerance_is_accepted(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    recent = int(time.time()) - 250
    body, headers = fake_stripe.signed_event("customer.created", {"id": "cus_1"}, timestamp=recent)

    assert provider.parse_webhook(body, headers).created == recent


async def test_signed_non_json_is_an_invalid_signature(
    provider: StripeProvider, fake_stripe: FakeStripe
) -> None:
    header = stripe.WebhookSignature.generate_signature_header(
        "not json", fake_stripe.webhook_secret
    )

    with pytest.raises(InvalidSignatureError):
        provider.parse_webhook(b"not json", {"Stripe-Signature": header})

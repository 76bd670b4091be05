"""Stripe Connect onboarding feeds the pro's verification: the badge needs our staff's
approval and, with a provider that checks identity, nothing outstanding at the provider.
The official SDK runs against the local Stripe fake; events are signed as Stripe signs them
and posted to our webhook endpoint."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import unit_of_work
from mesteri.notifications.models import OutboundMessage
from mesteri.payments import providers
from mesteri.payments.providers.base import OnboardingStatus
from mesteri.payments.providers.stripe import StripeProvider
from mesteri.pros import service
from mesteri.pros.models import ProviderCheck, SubmissionState, VerificationState
from tests.conftest import PASSWORD, LiveApp
from tests.fixtures.accounts import bearer, create_staff
from tests.fixtures.pros import API, make_pro, png_bytes, upload
from tests.payments.fake_stripe import FakeStripe

HOOK = f"{API}/payments/webhooks/stripe"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def stripe_fake(live: LiveApp) -> Iterator[FakeStripe]:
    with FakeStripe.running() as fake:
        providers.install(StripeProvider(fake.secret_key, fake.webhook_secret, api_base=fake.url))
        yield fake


async def _post(live: LiveApp, fake: FakeStripe, account: dict[str, Any], created: int) -> str:
    body, headers = fake.sign(fake.event("account.updated", account, created=created))
    answer = await live.client.post(HOOK, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    outcome: str = answer.json()["outcome"]
    return outcome


async def _mine(live: LiveApp, headers: dict[str, str]) -> dict[str, Any]:
    answer = await live.client.get(f"{API}/pros/me/verification", headers=headers)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


async def _web_sign_in(live: LiveApp, headers: dict[str, str]) -> None:
    """Sign the pro in on the site too (the pages use the session cookie)."""
    email = (await live.client.get(f"{API}/me", headers=headers)).json()["email"]
    form = await live.client.get("/signin")
    token = _TOKEN.search(form.text)
    assert token
    done = await live.client.post(
        "/signin", data={"csrf_token": token.group(1), "login": email, "password": PASSWORD}
    )
    assert done.status_code == 303, done.text


async def _submit_and_approve(live: LiveApp, headers: dict[str, str]) -> None:
    done = await upload(
        live.client, headers, png_bytes(), purpose="id_document", content_type="image/png"
    )
    submitted = await live.client.post(
        f"{API}/pros/me/verification",
        json={"kind": "kyc", "legal_name": "Andrei Ionescu", "document_ids": [done.json()["id"]]},
        headers=headers,
    )
    assert submitted.status_code == 201, submitted.text
    staff = await create_staff(live.client, live.app.state.write_sessions, roles=("admin",))
    approved = await live.client.post(
        f"{API}/admin/verifications/{submitted.json()['id']}/approve", headers=bearer(staff)
    )
    assert approved.status_code == 200, approved.text


async def test_stripe_onboarding_and_staff_review_combine(
    live: LiveApp, stripe_fake: FakeStripe
) -> None:
    headers, _ = await make_pro(live.client)
    user_id = uuid.UUID((await live.client.get(f"{API}/me", headers=headers)).json()["id"])

    # Staff approve, but Stripe has not seen the pro yet: approved, not verified.
    await _submit_and_approve(live, headers)
    mine = await _mine(live, headers)
    assert (mine["state"], mine["profile_state"], mine["provider_required"]) == (
        "verified",
        "pending",
        True,
    )
    assert mine["provider"] is None
    async with unit_of_work(live.app.state.write_sessions) as session:
        assert await service.is_verified_pro(session, user_id) is False

    # Starting payout onboarding creates the Express account: Stripe's requirements show.
    started = await live.client.post(f"{API}/wallet/payout-account", headers=headers)
    assert started.status_code == 200, started.text
    mine = await _mine(live, headers)
    assert mine["provider"] == {
        "provider": "stripe",
        "status": "action_required",
        "requirements_due": ["external_account", "individual.dob.day", "tos_acceptance.date"],
        "past_due": [],
        "disabled_reason": "requirements.past_due",
    }
    (account_ref,) = [k for k, v in stripe_fake.objects.items() if v.get("object") == "account"]
    await _web_sign_in(live, headers)
    page = await live.client.get("/pro/onboarding")
    assert "Bank account for payouts" in page.text
    assert "Date of birth" in page.text

    # The holder finishes Stripe's onboarding: both sides agree, the pro is verified.
    now = int(time.time())
    assert await _post(live, stripe_fake, stripe_fake.complete_onboarding(account_ref), now) == (
        "active"
    )
    mine = await _mine(live, headers)
    assert (mine["profile_state"], mine["provider"]["status"]) == ("verified", "verified")
    async with unit_of_work(live.app.state.write_sessions) as session:
        assert await service.is_verified_pro(session, user_id) is True

    # An older snapshot delivered late changes nothing.
    stale = {**stripe_fake.objects[account_ref], "payouts_enabled": False}
    stale["requirements"] = {**stale["requirements"], "currently_due": ["external_account"]}
    assert await _post(live, stripe_fake, stale, now - 60) == "stale"
    assert (await _mine(live, headers))["profile_state"] == "verified"

    # Stripe asks for more later (past due): the badge waits until it is given.
    later = {
        **stripe_fake.objects[account_ref],
        "payouts_enabled": False,
        "requirements": {
            "currently_due": ["individual.verification.document"],
            "eventually_due": [],
            "past_due": ["individual.verification.document"],
            "pending_verification": [],
            "disabled_reason": "requirements.past_due",
        },
    }
    assert await _post(live, stripe_fake, later, now + 1) == "restricted"
    mine = await _mine(live, headers)
    assert mine["profile_state"] == "pending"
    assert mine["provider"]["past_due"] == ["individual.verification.document"]
    page = await live.client.get("/pro/onboarding")
    assert "Identity document" in page.text
    assert "overdue" in page.text

    # Stripe rejects the account: the pro is rejected whatever our staff decided.
    rejected = {
        **later,
        "requirements": {**later["requirements"], "currently_due": [], "past_due": []},
    }
    rejected["requirements"]["disabled_reason"] = "rejected.fraud"
    await _post(live, stripe_fake, rejected, now + 2)
    mine = await _mine(live, headers)
    assert (mine["state"], mine["profile_state"], mine["provider"]["status"]) == (
        "verified",
        "rejected",
        "rejected",
    )

    async with live.engine.connect() as conn:
        changes = (
            await conn.execute(
                select(AuditEntry.data)
                .where(AuditEntry.action == "verification.provider_changed")
                .order_by(AuditEntry.at)
            )
        ).all()
        told = (
            await conn.execute(
                select(OutboundMessage.subject)
                .where(OutboundMessage.kind == "verification.provider")
                .order_by(OutboundMessage.created_at)
            )
        ).all()
    assert [(c.data["before"], c.data["after"]) for c in changes] == [
        ("pending", "verified"),
        ("verified", "pending"),
        ("pending", "rejected"),
    ]
    assert [t.subject for t in told] == [
        "You are verified on Mesteri",
        "The payment provider needs more information",
        "Your Mesteri verification was not accepted",
    ]


async def test_provider_check_before_the_staff_decision(
    live: LiveApp, stripe_fake: FakeStripe
) -> None:
    """Stripe may finish first: the pro stays pending until our staff approve, then is
    verified at once."""
    headers, _ = await make_pro(live.client)
    assert (await live.client.post(f"{API}/wallet/payout-account", headers=headers)).is_success
    (account_ref,) = [k for k, v in stripe_fake.objects.items() if v.get("object") == "account"]
    await _post(live, stripe_fake, stripe_fake.complete_onboarding(account_ref), int(time.time()))
    mine = await _mine(live, headers)
    assert (mine["state"], mine["profile_state"]) == ("none", "none")
    await _submit_and_approve(live, headers)
    assert (await _mine(live, headers))["profile_state"] == "verified"


def _check(status: str) -> ProviderCheck:
    return ProviderCheck(provider="stripe", checks_identity=True, status=status)


@pytest.mark.parametrize(
    ("staff", "provider", "gated", "expected"),
    [
        (None, None, False, VerificationState.NONE),
        (SubmissionState.PENDING, None, True, VerificationState.PENDING),
        (SubmissionState.VERIFIED, None, False, VerificationState.VERIFIED),
        (SubmissionState.VERIFIED, None, True, VerificationState.PENDING),
        (SubmissionState.VERIFIED, "action_required", True, VerificationState.PENDING),
        (SubmissionState.VERIFIED, "pending", True, VerificationState.PENDING),
        (SubmissionState.VERIFIED, "verified", True, VerificationState.VERIFIED),
        (SubmissionState.VERIFIED, "rejected", True, VerificationState.REJECTED),
        # A provider that does not check identity is not asked.
        (SubmissionState.VERIFIED, "rejected", False, VerificationState.VERIFIED),
        (SubmissionState.REJECTED, "verified", True, VerificationState.REJECTED),
        (None, "rejected", True, VerificationState.REJECTED),
        (None, "verified", True, VerificationState.NONE),
    ],
)
def test_combined_state_table(
    staff: str | None, provider: str | None, gated: bool, expected: VerificationState
) -> None:
    check = _check(provider) if provider else None
    assert service.combined_state(staff, check, gated=gated) == expected


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ({"payouts_enabled": False, "requirements": {"currently_due": ["external_account"]}},
         OnboardingStatus.ACTION_REQUIRED),
        ({"payouts_enabled": False, "requirements": {"past_due": ["individual.dob.day"]}},
         OnboardingStatus.ACTION_REQUIRED),
        ({"payouts_enabled": False,
          "requirements": {"pending_verification": ["individual.verification.document"]}},
         OnboardingStatus.PENDING),
        ({"payouts_enabled": False, "requirements": {"disabled_reason": "under_review"}},
         OnboardingStatus.PENDING),
        ({"payouts_enabled": False,
          "requirements": {"disabled_reason": "rejected.terms_of_service"}},
         OnboardingStatus.REJECTED),
        ({"payouts_enabled": True, "requirements": {}}, OnboardingStatus.VERIFIED),
    ],
)  # fmt: skip
def test_stripe_account_verdicts(account: dict[str, Any], expected: OnboardingStatus) -> None:
    connected = StripeProvider._connected_account({"id": "acct_1", **account})
    assert connected.status == expected
    assert set(connected.past_due) <= set(connected.requirements_due)

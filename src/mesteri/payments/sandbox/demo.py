"""Demo data of the sandbox provider: a connected account whose onboarding is complete."""

from __future__ import annotations

import uuid

from mesteri.kit import clock
from mesteri.kit.db import WriteSession
from mesteri.kit.ids import new_id
from mesteri.payments.models import PayoutAccount, PayoutAccountState
from mesteri.payments.sandbox.models import SandboxObject

DEMO_IBAN = "RO49AAAA1B31007593840000"


async def seed_active_payout_account(session: WriteSession, user_id: uuid.UUID) -> None:
    """The demo pro can withdraw at once (SPEC 5.2: "payout capability is active")."""
    now = clock.now()
    ref = f"acct_sbx_demo{user_id.hex[:16]}"
    session.add(
        SandboxObject(
            id=ref,
            kind="account",
            status="active",
            amount=0,
            currency="",
            amount_refunded=0,
            fee=0,
            idempotency_key=f"account-{user_id}",
            data={
                "metadata": {"mesteri_ref": str(user_id)},
                "country": "RO",
                "iban": DEMO_IBAN,
                "payouts_enabled": True,
                "requirements_due": [],
                "balances": {},
            },
            created_at=now,
            updated_at=now,
        )
    )
    session.add(
        PayoutAccount(
            id=new_id(),
            user_id=user_id,
            provider="sandbox",
            provider_ref=ref,
            state=PayoutAccountState.ACTIVE,
            requirements_due=[],
            last_event_at=int(now.timestamp()),
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()

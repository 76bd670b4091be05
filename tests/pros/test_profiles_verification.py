"""Pro profiles (business ids, crafts) and the verification lifecycle with its audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from mesteri.kit import clock
from mesteri.kit.audit import AuditEntry
from mesteri.kit.business_ids import valid_cui
from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import StateTransitionRecord
from mesteri.media import service as media
from mesteri.media import storage
from mesteri.media.models import Upload
from mesteri.notifications.models import OutboundMessage
from mesteri.pros import service
from mesteri.pros.lifecycles import VERIFICATION_LIFECYCLE
from mesteri.pros.models import ProProfile
from tests.fixtures.accounts import bearer, register
from tests.fixtures.pros import API, PLUMBING, make_pro, png_bytes, staff_headers, upload


@pytest.mark.parametrize("cui", ["18547290", "14399840", "RO14399840", "13548146", "2816464"])
def test_valid_cuis(cui: str) -> None:
    assert valid_cui(cui)


@pytest.mark.parametrize("cui", ["18547291", "14399841", "1", "RO", "12345678901", "1454846A", ""])
def test_invalid_cuis(cui: str) -> None:
    assert not valid_cui(cui)


@pytest.mark.parametrize(
    ("body", "code", "field", "message"),
    [
        (
            {"business_type": "srl", "business_id": "18547291"},
            "invalid_business_id",
            "business_id",
            "This is not a valid CUI: the check digit does not match.",
        ),
        (
            {"business_type": "srl"},
            "business_id_required",
            "business_id",
            "A registered business needs its CUI.",
        ),
        (
            {"business_type": "osek_murshe", "business_id": "18547290"},
            "invalid_business_type",
            "business_type",
            "Choose one of the business types offered.",
        ),
        (
            {"crafts": [{"category_id": str(PLUMBING), "primary": False}]},
            "invalid_crafts",
            "crafts",
            "Choose one main craft and at most nine others.",
        ),
        (
            {"rate_min": 200, "rate_max": 100},
            "invalid_rate",
            "rate_max",
            "The lowest rate cannot be above the highest.",
        ),
    ],
)
async def test_profile_rejections_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], code: str, field: str, message: str
) -> None:
    headers, _ = await make_pro(client)
    response = await client.patch(f"{API}/pros/me", json=body, headers=headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert (problem["code"], problem["field"], problem["detail"]) == (code, field, message)


async def test_phone_is_rejected_with_a_clear_message(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": "x@example.ro",
            "phone": "12345",
            "password": "sunny-Harbor-47",
            "role": "pro",
            "first_name": "A",
            "last_name": "B",
        },
    )
    assert response.json()["code"] == "invalid_phone"
    assert "+40" in response.json()["detail"] or "07" in response.json()["detail"]


async def test_profile_round_trip_and_clients_cannot_have_one(client: httpx.AsyncClient) -> None:
    headers, profile = await make_pro(client, business_type="srl", business_id="RO 18547290")
    assert profile["business_id"] == "18547290"
    assert profile["listed"] is True
    assert profile["verification_state"] == "none"
    assert [c["slug"] for c in profile["crafts"]] == ["plumbing"]
    busy = await client.put(
        f"{API}/pros/me/availability", json={"availability": "vacation"}, headers=headers
    )
    assert busy.json()["availability"] == "vacation"
    client_headers = bearer(await register(client))
    refused = await client.patch(
        f"{API}/pros/me", json={"display_name": "Me"}, headers=client_headers
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_a_pro"


async def _documents(
    client: httpx.AsyncClient, headers: dict[str, str], *purposes: str
) -> list[str]:
    ids = []
    for purpose in purposes:
        done = await upload(client, headers, png_bytes(), purpose=purpose, content_type="image/png")
        assert done.status_code == 200, done.text
        ids.append(done.json()["id"])
    return ids


async def test_verification_lifecycle_with_audit(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    headers, profile = await make_pro(client, business_type="pfa", business_id="18547290")
    pro_user = (await client.get(f"{API}/me", headers=headers)).json()["id"]
    assert (await client.get(f"{API}/pros/me/verification", headers=headers)).json()[
        "state"
    ] == "none"
    assert await service.is_verified_pro(db, pro_user) is False

    # a KYC request without an identity document is refused
    cert = await _documents(client, headers, "registration_certificate")
    missing = await client.post(
        f"{API}/pros/me/verification",
        json={"kind": "kyc", "legal_name": "Andrei Ionescu", "document_ids": cert},
        headers=headers,
    )
    assert missing.status_code == 422
    assert missing.json()["code"] == "documents_required"

    docs = await _documents(client, headers, "id_document", "selfie")
    submitted = await client.post(
        f"{API}/pros/me/verification",
        json={"kind": "kyc", "legal_name": "Andrei Ionescu", "document_ids": docs},
        headers=headers,
    )
    assert submitted.status_code == 201, submitted.text
    submission_id = submitted.json()["id"]
    assert submitted.json()["state"] == "pending"

    staff = await staff_headers(client, db)
    # a client cannot use the staff desk
    assert (
        await client.get(f"{API}/admin/verifications", headers=bearer(await register(client)))
    ).status_code == 403
    queue = (await client.get(f"{API}/admin/verifications", headers=staff)).json()["items"]
    assert submission_id in [q["id"] for q in queue]
    detail = await client.get(f"{API}/admin/verifications/{submission_id}", headers=staff)
    assert detail.json()["business_id_valid"] is True
    assert set(detail.json()["document_ids"]) == set(docs)
    for doc in docs:
        assert (await client.get(f"{API}/media/{doc}", headers=staff)).status_code == 200

    # reject (reason required and shown to the pro), resubmit, approve
    no_reason = await client.post(
        f"{API}/admin/verifications/{submission_id}/reject", json={"reason": ""}, headers=staff
    )
    assert no_reason.status_code == 422
    rejected = await client.post(
        f"{API}/admin/verifications/{submission_id}/reject",
        json={"reason": "The photo of the ID card is blurred."},
        headers=staff,
    )
    assert rejected.json()["state"] == "rejected"
    mine = (await client.get(f"{API}/pros/me/verification", headers=headers)).json()
    assert (mine["state"], mine["reason"]) == ("rejected", "The photo of the ID card is blurred.")
    twice = await client.post(f"{API}/admin/verifications/{submission_id}/approve", headers=staff)
    assert twice.status_code == 409
    assert twice.json()["code"] == "transition_not_allowed"

    docs2 = await _documents(client, headers, "id_document")
    again = await client.post(
        f"{API}/pros/me/verification",
        json={"kind": "kyc", "legal_name": "Andrei Ionescu", "document_ids": docs2},
        headers=headers,
    )
    second_id = again.json()["id"]
    approved = await client.post(f"{API}/admin/verifications/{second_id}/approve", headers=staff)
    assert approved.json()["state"] == "verified"
    decided = (
        await db.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.kind == "verification.decided")
            .where(OutboundMessage.user_id == pro_user)
            .order_by(OutboundMessage.created_at)
        )
    ).all()
    assert [m.subject for m in decided] == [
        "Your Mesteri verification was not accepted",
        "You are verified on Mesteri",
    ]
    assert "The photo of the ID card is blurred." in decided[0].body
    assert await service.is_verified_pro(db, pro_user) is True
    public = (await client.get(f"{API}/pros/{profile['id']}")).json()
    assert public["verified"] is True

    # changing verified details sends the pro back to pending
    changed = await client.patch(
        f"{API}/pros/me", json={"business_type": "srl", "business_id": "14399840"}, headers=headers
    )
    assert changed.json()["verification_state"] == "pending"
    assert await service.is_verified_pro(db, pro_user) is False
    # other changes do not
    await client.post(f"{API}/admin/verifications/{second_id}/approve", headers=staff)
    bio = await client.patch(f"{API}/pros/me", json={"bio": "New bio"}, headers=headers)
    assert bio.json()["verification_state"] == "verified"

    history = (
        await db.scalars(
            select(StateTransitionRecord)
            .where(StateTransitionRecord.entity_id.in_([submission_id, second_id]))
            .order_by(StateTransitionRecord.at, StateTransitionRecord.id)
        )
    ).all()
    assert [(h.transition, h.from_state, h.to_state) for h in history] == [
        ("reject", "pending", "rejected"),
        ("supersede", "rejected", "superseded"),
        ("approve", "pending", "verified"),
        ("reverify", "verified", "pending"),
        ("approve", "pending", "verified"),
    ]
    actions = [
        e.action
        for e in (
            await db.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.startswith("verification."))
                .where(AuditEntry.subject_id.in_([submission_id, second_id]))
                .order_by(AuditEntry.at, AuditEntry.id)
            )
        ).all()
    ]
    assert actions == [
        "verification.submitted",
        "verification.viewed",
        "verification.rejected",
        "verification.submitted",
        "verification.approved",
        "verification.approved",
    ]
    viewed = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "media.viewed"))).all()
    assert {str(v.subject_id) for v in viewed} >= set(docs)


def test_the_lifecycle_table() -> None:
    assert VERIFICATION_LIFECYCLE.terminal_states() == {"superseded"}
    assert VERIFICATION_LIFECYCLE.available("pending", ["operator"]) == ["approve", "reject"]  # type: ignore[arg-type]
    assert VERIFICATION_LIFECYCLE.available("verified", ["pro"]) == []  # type: ignore[arg-type]


async def test_documents_are_deleted_after_the_decision(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    headers, _ = await make_pro(client)
    docs = await _documents(client, headers, "id_document")
    sub = await client.post(
        f"{API}/pros/me/verification",
        json={"kind": "kyc", "legal_name": "Andrei Ionescu", "document_ids": docs},
        headers=headers,
    )
    staff = await staff_headers(client, db)
    await client.post(f"{API}/admin/verifications/{sub.json()['id']}/approve", headers=staff)
    row = await db.get(Upload, docs[0])
    assert row is not None
    assert row.delete_after is not None
    key = row.key
    assert await media.purge(db) == 0  # not yet
    # an upload never attached to anything is an orphan
    orphan = await upload(
        client, headers, png_bytes(), purpose="portfolio", content_type="image/png"
    )
    clock.set_offset(timedelta(days=31))
    assert await media.purge(db) >= 2
    await db.refresh(row)
    assert row.state == "deleted"
    assert await storage.current().read(key) is None
    orphan_row = await db.get(Upload, orphan.json()["id"])
    assert orphan_row is not None
    await db.refresh(orphan_row)
    assert orphan_row.state == "deleted"
    profile = await db.scalar(select(ProProfile).where(ProProfile.verification_state == "verified"))
    assert profile is not None


async def test_business_verification_needs_the_certificate_and_a_valid_id(
    client: httpx.AsyncClient,
) -> None:
    headers, _ = await make_pro(client)
    id_doc = await _documents(client, headers, "id_document")
    body = {"kind": "kyb", "legal_name": "Instal Pro SRL", "business_type": "srl"}
    no_cert = await client.post(
        f"{API}/pros/me/verification",
        json={**body, "business_id": "18547290", "document_ids": id_doc},
        headers=headers,
    )
    assert no_cert.status_code == 422
    assert no_cert.json()["detail"] == "Add the business registration certificate to the request."
    cert = await _documents(client, headers, "registration_certificate")
    bad_id = await client.post(
        f"{API}/pros/me/verification",
        json={**body, "business_id": "18547291", "document_ids": cert},
        headers=headers,
    )
    assert bad_id.json()["code"] == "invalid_business_id"
    ok = await client.post(
        f"{API}/pros/me/verification",
        json={**body, "business_id": "RO18547290", "document_ids": cert},
        headers=headers,
    )
    assert ok.status_code == 201, ok.text
    me = (await client.get(f"{API}/pros/me", headers=headers)).json()
    assert (me["business_type"], me["business_id"], me["verification_state"]) == (
        "srl",
        "18547290",
        "pending",
    )

"""Pros pages over HTTP: the onboarding wizard with a photo, search with filters in the
URL, the public profile without contact details, and the staff queue."""

from __future__ import annotations

import re

import httpx
import pyotp
from sqlalchemy import select

from mesteri.accounts import service as accounts
from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import WriteSession
from mesteri.pros.models import ProProfile, VerificationSubmission
from tests.conftest import PASSWORD
from tests.fixtures.accounts import unique_contact
from tests.fixtures.pros import BUCHAREST, PLUMBING, jpeg_with_gps, make_pro, png_bytes

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = _TOKEN.search(page.text)
    assert match
    return match.group(1)


async def _signed_in_pro(client: httpx.AsyncClient) -> str:
    email, phone = unique_contact()
    token = await csrf(client, "/register")
    response = await client.post(
        "/register",
        data={
            "csrf_token": token,
            "role": "pro",
            "first_name": "Radu",
            "last_name": "Matei",
            "email": email,
            "phone": phone,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303, response.text
    return email


async def test_onboarding_wizard_profile_photo_and_verification(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    email = await _signed_in_pro(client)
    token = await csrf(client, "/pro/onboarding")
    bad = await client.post(
        "/pro/onboarding/profile",
        data={
            "csrf_token": token,
            "display_name": "Radu Instalatorul",
            "primary_category": str(PLUMBING),
            "place_id": str(BUCHAREST),
            "business_type": "srl",
            "business_id": "18547291",
        },
    )
    assert bad.status_code == 422
    assert "check digit" in bad.text
    assert 'aria-invalid="true"' in bad.text
    saved = await client.post(
        "/pro/onboarding/profile",
        data={
            "csrf_token": token,
            "display_name": "Radu Instalatorul",
            "primary_category": str(PLUMBING),
            "years": "9",
            "place_id": str(BUCHAREST),
            "radius_km": "30",
            "rate_min": "90",
            "rate_max": "150",
            "languages": ["ro", "en"],
            "bio": "Băi și bucătării.",
            "business_type": "srl",
            "business_id": "RO18547290",
        },
    )
    assert saved.status_code == 303, saved.text
    profile = await db.scalar(
        select(ProProfile).where(ProProfile.display_name == "Radu Instalatorul")
    )
    assert profile is not None
    assert profile.listed
    assert (profile.rate_min, profile.rate_max, profile.business_id) == (9000, 15000, "18547290")

    php = await client.post(
        "/pro/onboarding/photo",
        data={"csrf_token": token},
        files={"photo": ("shell.jpg", b"<?php echo 1; ?>", "image/jpeg")},
    )
    assert php.status_code == 422
    assert "JPEG" in php.text
    photo = await client.post(
        "/pro/onboarding/photo",
        data={"csrf_token": token, "caption": "Baie nouă"},
        files={"photo": ("baie.jpg", jpeg_with_gps(), "image/jpeg")},
    )
    assert photo.status_code == 303, photo.text
    page = await client.get(f"/pros/{profile.id}")
    assert page.status_code == 200
    assert "Baie nouă" in page.text
    assert email not in page.text
    assert "+40" not in page.text

    sent = await client.post(
        "/pro/onboarding/verification",
        data={"csrf_token": token, "legal_name": "Radu Matei", "kind": "kyc"},
        files={"document": ("id.png", png_bytes(), "image/png")},
    )
    assert sent.status_code == 303, sent.text
    wizard = await client.get("/pro/onboarding")
    assert "being checked" in wizard.text
    assert (
        await db.scalar(
            select(VerificationSubmission.state).where(VerificationSubmission.pro_id == profile.id)
        )
        == "pending"
    )


async def test_search_page_keeps_filters_in_the_url(client: httpx.AsyncClient) -> None:
    _, pro = await make_pro(client, display_name="Ștefan Țiglă")
    page = await client.get(
        "/pros",
        params={
            "q": "stefan tigla",
            "category": "plumbing",
            "place_id": str(BUCHAREST),
            "radius_km": "25",
        },
    )
    assert page.status_code == 200
    assert f'href="/pros/{pro["id"]}"' in page.text
    assert 'value="stefan tigla"' in page.text
    assert re.search(r'<option value="plumbing" selected', page.text)
    assert "km</span>" in page.text
    empty = await client.get("/pros", params={"q": "nobody-like-this"})
    assert "No professionals match yet" in empty.text
    error = await client.get("/pros", params={"sort": "distance"})
    assert error.status_code == 200
    assert 'role="alert"' in error.text


async def test_staff_queue_and_decision_pages(client: httpx.AsyncClient, db: WriteSession) -> None:
    await _signed_in_pro(client)
    token = await csrf(client, "/pro/onboarding")
    await client.post(
        "/pro/onboarding/profile",
        data={
            "csrf_token": token,
            "display_name": "Radu Zidarul",
            "primary_category": str(PLUMBING),
            "place_id": str(BUCHAREST),
        },
    )
    await client.post(
        "/pro/onboarding/verification",
        data={"csrf_token": token, "legal_name": "Radu Matei", "kind": "kyc"},
        files={"document": ("id.png", png_bytes(), "image/png")},
    )
    sub = await db.scalar(
        select(VerificationSubmission).order_by(VerificationSubmission.submitted_at.desc())
    )
    assert sub is not None

    # staff sign in on the web with two-factor
    email, phone = unique_contact()
    staff = await accounts.do_create_user(
        db,
        email=email,
        phone=phone,
        password=PASSWORD,
        first_name="Sam",
        last_name="Staff",
        roles=["admin"],
    )
    secret, _ = await accounts.do_totp_setup(db, staff)
    staff.totp_enabled_at = staff.created_at
    await db.flush()
    client.cookies.clear()
    token = await csrf(client, "/signin")
    signed = await client.post(
        "/signin",
        data={
            "csrf_token": token,
            "login": email,
            "password": PASSWORD,
            "totp": pyotp.TOTP(secret).now(),
        },
    )
    assert signed.status_code == 303, signed.text
    queue = await client.get("/admin/verifications")
    assert queue.status_code == 200
    assert f"/admin/verifications/{sub.id}" in queue.text
    review = await client.get(f"/admin/verifications/{sub.id}")
    assert review.status_code == 200
    assert "/media/files/" in review.text  # documents through signed links
    token = await csrf(client, f"/admin/verifications/{sub.id}")
    no_reason = await client.post(
        f"/admin/verifications/{sub.id}/decide",
        data={"csrf_token": token, "decision": "reject", "reason": ""},
    )
    assert no_reason.status_code == 422
    approved = await client.post(
        f"/admin/verifications/{sub.id}/decide", data={"csrf_token": token, "decision": "approve"}
    )
    assert approved.status_code == 303
    await db.refresh(sub)
    assert sub.state == "verified"
    actions = {
        e.action
        for e in (await db.scalars(select(AuditEntry).where(AuditEntry.actor_id == staff.id))).all()
    }
    assert {"verification.viewed", "media.viewed", "verification.approved"} <= actions


async def test_saved_pros_and_search_history_pages(client: httpx.AsyncClient) -> None:
    _, pro = await make_pro(client, display_name="Gigel Parchetarul")
    await _signed_in_pro(client)  # any signed-in person can save pros
    token = await csrf(client, f"/pros/{pro['id']}")
    saved = await client.post(
        f"/pros/{pro['id']}/save", data={"csrf_token": token, "action": "save"}
    )
    assert saved.status_code == 303
    page = await client.get("/saved")
    assert "Gigel Parchetarul" in page.text
    # history is off until asked for
    await client.get("/pros", params={"q": "parchet"})
    assert "/pros?q=parchet" not in (await client.get("/saved")).text
    on = await client.post("/saved/history", data={"csrf_token": token, "enabled": "1"})
    assert on.status_code == 303
    await client.get("/pros", params={"q": "parchet"})
    assert "/pros?q=parchet" in (await client.get("/saved")).text
    await client.post("/saved/history", data={"csrf_token": token, "enabled": ""})
    assert "/pros?q=parchet" not in (await client.get("/saved")).text
    removed = await client.post(f"/saved/{pro['id']}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert "Gigel Parchetarul" not in (await client.get("/saved")).text

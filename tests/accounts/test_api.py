"""Accounts through the JSON API: every rule, including the failing paths."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from sqlalchemy import func, select

from mesteri.accounts import service
from mesteri.accounts.models import AuthSession, OtpChallenge, User
from mesteri.kit import clock
from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import WriteSession
from mesteri.notifications.models import OutboundMessage
from tests.conftest import PASSWORD, count_queries
from tests.fixtures.accounts import bearer, latest_code, login, register, unique_contact

API = "/api/v1"


# ---------------------------------------------------------------- registration


async def test_register_normalises_and_returns_tokens(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    email, phone = unique_contact()
    local = "0" + phone[3:6] + " " + phone[6:9] + " " + phone[9:]
    auth = await register(client, email=email.upper(), phone=local, role="pro")
    user = auth["user"]
    assert user["email"] == email
    assert user["phone"] == phone
    assert user["roles"] == ["pro"]
    assert user["email_verified"] is False
    assert auth["tokens"]["token_type"] == "bearer"
    assert auth["tokens"]["expires_in"] == 15 * 60
    stored = await db.scalar(select(User).where(User.email == email))
    assert stored is not None
    assert stored.password_hash.startswith("$argon2id$")
    # one code by e-mail, one by SMS, both queued for delivery after commit
    kinds = set(
        (
            await db.scalars(
                select(OutboundMessage.kind).where(OutboundMessage.user_id == stored.id)
            )
        ).all()
    )
    assert kinds == {"otp.verify_email", "otp.verify_phone"}


@pytest.mark.parametrize(
    ("overrides", "status", "code", "field"),
    [
        ({"phone": "12345"}, 422, "invalid_phone", "phone"),
        ({"phone": "+40 21 000"}, 422, "invalid_phone", "phone"),
        ({"email": "not-an-email"}, 422, "invalid_email", "email"),
        ({"password": "short1"}, 422, "weak_password", "password"),
        ({"password": "password123"}, 422, "weak_password", "password"),
        ({"password": "qwertyuiop"}, 422, "weak_password", "password"),
        ({"password": "Ana-is-the-best-1"}, 422, "weak_password", "password"),
        ({"role": "admin"}, 422, "validation_error", None),
    ],
)
async def test_register_rejects_bad_input(
    client: httpx.AsyncClient,
    db: WriteSession,
    overrides: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    email, phone = unique_contact()
    body = {
        "email": email,
        "phone": phone,
        "password": PASSWORD,
        "role": "client",
        "first_name": "Ana",
        "last_name": "Pop",
        **overrides,
    }
    response = await client.post(f"{API}/auth/register", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    if field:
        assert problem["field"] == field
    assert problem["title"]
    # nothing half-written
    assert await db.scalar(select(func.count()).select_from(User).where(User.email == email)) == 0
    assert (
        await db.scalar(
            select(func.count()).select_from(OtpChallenge).where(OtpChallenge.destination == email)
        )
        == 0
    )


async def test_password_containing_own_phone_is_rejected(client: httpx.AsyncClient) -> None:
    email, phone = unique_contact()
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": email,
            "phone": phone,
            "password": f"Xy!{phone[-6:]}zzQ",
            "role": "client",
            "first_name": "Ana",
            "last_name": "Pop",
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"


async def test_duplicate_email_and_phone(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    _, phone = unique_contact()
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": auth["user"]["email"],
            "phone": phone,
            "password": PASSWORD,
            "role": "client",
            "first_name": "B",
            "last_name": "C",
        },
    )
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    email, _ = unique_contact()
    response = await client.post(
        f"{API}/auth/register",
        json={
            "email": email,
            "phone": auth["user"]["phone"],
            "password": PASSWORD,
            "role": "pro",
            "first_name": "B",
            "last_name": "C",
        },
    )
    assert response.status_code == 409
    assert response.json()["code"] == "phone_taken"


async def test_errors_are_localised(client: httpx.AsyncClient) -> None:
    email, _ = unique_contact()
    body = {
        "email": email,
        "phone": "123",
        "password": PASSWORD,
        "role": "client",
        "first_name": "A",
        "last_name": "B",
    }
    english = await client.post(f"{API}/auth/register", json=body)
    romanian = await client.post(
        f"{API}/auth/register", json=body, headers={"accept-language": "ro-RO,ro;q=0.9"}
    )
    assert english.json()["code"] == romanian.json()["code"] == "invalid_phone"
    assert english.json()["title"].startswith("This is not a valid phone number")
    assert romanian.json()["title"] != english.json()["title"]
    assert "+40" in romanian.json()["title"]


# ---------------------------------------------------------------- verification codes


async def test_verify_email_and_phone(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    headers = bearer(auth)
    code = await latest_code(client, auth["user"]["email"], "otp.verify_email")
    response = await client.post(f"{API}/auth/verify-email", json={"code": code}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["email_verified"] is True
    code = await latest_code(client, auth["user"]["phone"], "otp.verify_phone")
    response = await client.post(f"{API}/auth/verify-phone", json={"code": code}, headers=headers)
    assert response.json()["phone_verified"] is True
    # the code is spent
    again = await client.post(f"{API}/auth/verify-email", json={"code": code}, headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "nothing_to_verify"


async def test_wrong_codes_count_and_sixth_attempt_fails_even_with_right_code(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    auth = await register(client)
    headers = bearer(auth)
    code = await latest_code(client, auth["user"]["email"], "otp.verify_email")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attempt in range(1, 5):
        response = await client.post(
            f"{API}/auth/verify-email", json={"code": wrong}, headers=headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_code"
        assert str(5 - attempt) in response.json()["title"]
    fifth = await client.post(f"{API}/auth/verify-email", json={"code": wrong}, headers=headers)
    assert fifth.json()["code"] == "code_exhausted"
    sixth = await client.post(f"{API}/auth/verify-email", json={"code": code}, headers=headers)
    assert sixth.status_code == 422
    assert sixth.json()["code"] == "code_exhausted"
    challenge = await db.scalar(
        select(OtpChallenge).where(OtpChallenge.destination == auth["user"]["email"])
    )
    assert challenge is not None
    assert challenge.attempts == 5
    assert challenge.state == "exhausted"
    me = await client.get(f"{API}/me", headers=headers)
    assert me.json()["email_verified"] is False


async def test_expired_code_is_refused(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    code = await latest_code(client, auth["user"]["email"], "otp.verify_email")
    clock.set_offset(timedelta(minutes=10, seconds=1))
    response = await client.post(
        f"{API}/auth/verify-email", json={"code": code}, headers=bearer(auth)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "code_expired"


async def test_resend_has_a_cooldown_then_supersedes_the_old_code(
    client: httpx.AsyncClient,
) -> None:
    auth = await register(client)
    headers = bearer(auth)
    old = await latest_code(client, auth["user"]["email"], "otp.verify_email")
    too_soon = await client.post(
        f"{API}/auth/verification/resend", json={"purpose": "verify_email"}, headers=headers
    )
    assert too_soon.status_code == 429
    assert too_soon.json()["code"] == "resend_too_soon"
    assert 1 <= int(too_soon.headers["retry-after"]) <= 60
    clock.set_offset(timedelta(seconds=61))
    resent = await client.post(
        f"{API}/auth/verification/resend", json={"purpose": "verify_email"}, headers=headers
    )
    assert resent.status_code == 202
    new = await latest_code(client, auth["user"]["email"], "otp.verify_email")
    if new != old:
        stale = await client.post(f"{API}/auth/verify-email", json={"code": old}, headers=headers)
        assert stale.json()["code"] == "invalid_code"
    ok = await client.post(f"{API}/auth/verify-email", json={"code": new}, headers=headers)
    assert ok.status_code == 200


async def test_codes_are_stored_hashed(client: httpx.AsyncClient, db: WriteSession) -> None:
    auth = await register(client)
    code = await latest_code(client, auth["user"]["email"], "otp.verify_email")
    challenge = await db.scalar(
        select(OtpChallenge).where(OtpChallenge.destination == auth["user"]["email"])
    )
    assert challenge is not None
    assert code not in challenge.code_hash
    assert len(challenge.code_hash) == 64


# ---------------------------------------------------------------- password login and tokens


async def test_login_with_email_or_phone(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    by_email = await login(client, auth["user"]["email"].upper())
    assert by_email.status_code == 200, by_email.text
    local_phone = "0" + auth["user"]["phone"][3:]
    by_phone = await login(client, local_phone)
    assert by_phone.status_code == 200
    assert by_phone.json()["user"]["id"] == auth["user"]["id"]


async def test_wrong_password_and_unknown_account_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    auth = await register(client)
    wrong = await login(client, auth["user"]["email"], "not-the-password-1")
    unknown = await login(client, "nobody@example.ro", "not-the-password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["code"] == unknown.json()["code"] == "invalid_credentials"


async def test_five_failed_logins_lock_the_account_for_a_while(
    client: httpx.AsyncClient,
) -> None:
    auth = await register(client)
    email = auth["user"]["email"]
    for _ in range(5):
        assert (await login(client, email, "wrong-password-xx")).status_code == 401
    blocked = await login(client, email)  # even the right password
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert 1 <= int(blocked.headers["retry-after"]) <= 15 * 60


async def test_failed_logins_per_ip_across_accounts(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        email, _ = unique_contact()
        assert (await login(client, email, "wrong-password-xx")).status_code == 401
    auth = await register(client)
    assert (await login(client, auth["user"]["email"])).status_code == 429


async def test_access_token_expires_after_15_minutes(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    assert (await client.get(f"{API}/me", headers=bearer(auth))).status_code == 200
    clock.set_offset(timedelta(minutes=15, seconds=1))
    expired = await client.get(f"{API}/me", headers=bearer(auth))
    assert expired.status_code == 401
    assert expired.json()["code"] == "invalid_token"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "Bearer x" * 50])
async def test_garbage_tokens_are_401_not_500(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (401, 403)


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient,
    db: WriteSession,
) -> None:
    auth = await register(client)
    first = auth["tokens"]["refresh_token"]
    rotated = await client.post(f"{API}/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    assert second != first
    new_access = {"Authorization": f"Bearer {rotated.json()['access_token']}"}
    assert (await client.get(f"{API}/me", headers=new_access)).status_code == 200

    reused = await client.post(f"{API}/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    # the whole family is gone: the newest refresh token and the live access token too
    assert (
        await client.post(f"{API}/auth/refresh", json={"refresh_token": second})
    ).status_code == 401
    assert (await client.get(f"{API}/me", headers=new_access)).status_code == 401
    revoked = await db.scalar(select(AuthSession).where(AuthSession.user_id == auth["user"]["id"]))
    assert revoked is not None
    assert revoked.revoked_reason == "refresh_reuse"


async def test_refresh_token_expires_after_30_days(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    clock.set_offset(timedelta(days=30, seconds=1))
    response = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": auth["tokens"]["refresh_token"]}
    )
    assert response.status_code == 401


async def test_logout_and_logout_everywhere(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    other = (await login(client, auth["user"]["email"])).json()
    third = (await login(client, auth["user"]["email"])).json()
    assert (
        await client.post(f"{API}/auth/logout", json={}, headers=bearer(auth))
    ).status_code == 204
    assert (await client.get(f"{API}/me", headers=bearer(auth))).status_code == 401
    assert (await client.get(f"{API}/me", headers=bearer(other))).status_code == 200
    sessions = (await client.get(f"{API}/me/sessions", headers=bearer(other))).json()["items"]
    assert len(sessions) == 2
    assert sum(s["current"] for s in sessions) == 1
    await client.post(f"{API}/auth/logout", json={"everywhere": True}, headers=bearer(other))
    for tokens in (other, third):
        assert (await client.get(f"{API}/me", headers=bearer(tokens))).status_code == 401
    refused = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": third["tokens"]["refresh_token"]}
    )
    assert refused.status_code == 401


async def test_me_is_one_query(client: httpx.AsyncClient, app: Any, connection: Any) -> None:
    auth = await register(client)
    fast_reads: list[str] = []
    reader = app.state.fast_statements
    original = reader.fetch_one

    async def counting(sql: str, *args: Any) -> Any:
        fast_reads.append(sql)
        return await original(sql, *args)

    reader.fetch_one = counting
    with count_queries(connection.engine) as statements:
        response = await client.get(f"{API}/me", headers=bearer(auth))
    assert response.status_code == 200
    assert statements == []  # no ORM session at all on this read path
    assert len(fast_reads) == 1


# ---------------------------------------------------------------- one-time-code login


async def test_otp_login_by_email_and_sms(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    for login_id, kind_to in (
        (auth["user"]["email"], auth["user"]["email"]),
        (auth["user"]["phone"], auth["user"]["phone"]),
    ):
        clock.set_offset(clock.offset() + timedelta(seconds=61))
        sent = await client.post(f"{API}/auth/otp/send", json={"login": login_id})
        assert sent.status_code == 202, sent.text
        code = await latest_code(client, kind_to, "otp.login")
        response = await client.post(
            f"{API}/auth/otp/verify", json={"login": login_id, "code": code}
        )
        assert response.status_code == 200, response.text
        assert response.json()["user"]["id"] == auth["user"]["id"]


async def test_otp_send_does_not_reveal_accounts(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    response = await client.post(f"{API}/auth/otp/send", json={"login": "ghost@example.ro"})
    assert response.status_code == 202
    assert response.json()["detail"]
    sent = await db.scalar(
        select(func.count())
        .select_from(OutboundMessage)
        .where(OutboundMessage.to == "ghost@example.ro")
    )
    assert sent == 0
    guess = await client.post(
        f"{API}/auth/otp/verify", json={"login": "ghost@example.ro", "code": "123456"}
    )
    assert guess.status_code in (401, 422)


async def test_otp_send_rejects_garbage_login(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/auth/otp/send", json={"login": "not a login"})
    assert response.status_code == 401
    assert response.json()["field"] == "login"


# ---------------------------------------------------------------- password reset and change


async def test_password_reset_by_code_revokes_sessions(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    email = auth["user"]["email"]
    assert (
        await client.post(f"{API}/auth/password/forgot", json={"login": email})
    ).status_code == 202
    code = await latest_code(client, email, "otp.password_reset")
    outbox = (await client.get(f"{API}/dev/outbox", params={"to": email})).json()["items"]
    link = re.search(r"(/password/reset\?\S+)", outbox[0]["body"])
    assert link is not None
    assert parse_qs(urlsplit(link.group(1)).query) == {"login": [email], "code": [code]}
    weak = await client.post(
        f"{API}/auth/password/reset",
        json={"login": email, "code": code, "new_password": "123456789"},
    )
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
    # the refused attempt rolled back: the same code still works
    response = await client.post(
        f"{API}/auth/password/reset",
        json={"login": email, "code": code, "new_password": "brand-new-Lantern-9"},
    )
    assert response.status_code == 204, response.text
    assert (await client.get(f"{API}/me", headers=bearer(auth))).status_code == 401
    assert (await login(client, email)).status_code == 401
    assert (await login(client, email, "brand-new-Lantern-9")).status_code == 200


async def test_change_password_keeps_this_device_only(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    other = (await login(client, auth["user"]["email"])).json()
    wrong = await client.post(
        f"{API}/me/password",
        headers=bearer(auth),
        json={"current_password": "nope-nope-nope", "new_password": "brand-new-Lantern-9"},
    )
    assert wrong.status_code == 401
    ok = await client.post(
        f"{API}/me/password",
        headers=bearer(auth),
        json={"current_password": PASSWORD, "new_password": "brand-new-Lantern-9"},
    )
    assert ok.status_code == 204
    assert (await client.get(f"{API}/me", headers=bearer(auth))).status_code == 200
    assert (await client.get(f"{API}/me", headers=bearer(other))).status_code == 401


# ---------------------------------------------------------------- two-factor and staff


async def _enable_totp(client: httpx.AsyncClient, auth: dict[str, object]) -> pyotp.TOTP:
    setup = await client.post(f"{API}/me/2fa/setup", headers=bearer(auth))  # type: ignore[arg-type]
    assert setup.status_code == 200
    totp = pyotp.TOTP(setup.json()["secret"])
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/Mesteri")
    bad = await client.post(f"{API}/me/2fa/enable", json={"code": "000000"}, headers=bearer(auth))  # type: ignore[arg-type]
    assert bad.status_code == 401 or totp.now() == "000000"
    enabled = await client.post(
        f"{API}/me/2fa/enable", json={"code": totp.now()}, headers=bearer(auth)
    )  # type: ignore[arg-type]
    assert enabled.status_code == 200
    assert enabled.json()["two_factor_enabled"] is True
    return totp


async def test_totp_login(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    totp = await _enable_totp(client, auth)
    email = auth["user"]["email"]
    missing = await login(client, email)
    assert missing.status_code == 401
    assert missing.json()["code"] == "totp_required"
    wrong = await login(client, email, totp="000000" if totp.now() != "000000" else "111111")
    assert wrong.json()["code"] == "invalid_totp"
    ok = await login(client, email, totp=totp.now())
    assert ok.status_code == 200
    # an e-mail code alone is not enough once TOTP is on
    clock.set_offset(timedelta(seconds=61))
    await client.post(f"{API}/auth/otp/send", json={"login": email})
    code = await latest_code(client, email, "otp.login")
    by_code = await client.post(f"{API}/auth/otp/verify", json={"login": email, "code": code})
    assert by_code.status_code == 401
    assert by_code.json()["code"] == "totp_required"


async def test_staff_need_two_factor(client: httpx.AsyncClient, db: WriteSession) -> None:
    email, phone = unique_contact()
    await service.do_create_user(
        db,
        email=email,
        phone=phone,
        password=PASSWORD,
        first_name="Sam",
        last_name="Staff",
        roles=["support"],
    )
    client_auth = await register(client)
    forbidden = await client.get(f"{API}/admin/audit-log", headers=bearer(client_auth))
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "forbidden"

    staff = (await login(client, email)).json()
    no_mfa = await client.get(f"{API}/admin/audit-log", headers=bearer(staff))
    assert no_mfa.status_code == 403
    assert no_mfa.json()["code"] == "mfa_required"
    totp = await _enable_totp(client, staff)
    # the device that enrolled proved the factor; a fresh access token carries it
    staff = (await login(client, email, totp=totp.now())).json()
    log = await client.get(
        f"{API}/admin/audit-log",
        headers=bearer(staff),
        params={"action": "auth.signed_in", "limit": 2},
    )
    assert log.status_code == 200, log.text
    page = log.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    more = await client.get(
        f"{API}/admin/audit-log",
        headers=bearer(staff),
        params={"action": "auth.signed_in", "limit": 2, "cursor": page["next_cursor"]},
    )
    assert {i["id"] for i in more.json()["items"]}.isdisjoint({i["id"] for i in page["items"]})
    cannot_disable = await client.post(
        f"{API}/me/2fa/disable",
        headers=bearer(staff),
        json={"password": PASSWORD, "code": totp.now()},
    )
    assert cannot_disable.status_code == 409


async def test_bad_cursor_is_a_clear_error(client: httpx.AsyncClient, db: WriteSession) -> None:
    email, _ = unique_contact()
    user = await service.do_create_user(
        db,
        email=email,
        phone=None,
        password=PASSWORD,
        first_name="Sam",
        last_name="Staff",
        roles=["admin"],
    )
    auth = (await login(client, email)).json()
    totp = await _enable_totp(client, auth)
    auth = (await login(client, email, totp=totp.now())).json()
    response = await client.get(
        f"{API}/admin/audit-log", headers=bearer(auth), params={"cursor": "%%%garbage"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"
    assert user.roles == ["admin"]


# ---------------------------------------------------------------- profile, roles, GDPR


async def test_patch_me_and_add_role(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    patched = await client.patch(
        f"{API}/me", headers=bearer(auth), json={"first_name": "Ioana", "language": "he"}
    )
    assert patched.json()["first_name"] == "Ioana"
    assert patched.json()["language"] == "he"
    unsupported = await client.patch(f"{API}/me", headers=bearer(auth), json={"language": "xx"})
    assert unsupported.json()["language"] == "ro"  # the market default
    both = await client.post(f"{API}/me/roles", headers=bearer(auth), json={"role": "pro"})
    assert both.json()["roles"] == ["client", "pro"]
    staff = await client.post(f"{API}/me/roles", headers=bearer(auth), json={"role": "admin"})
    assert staff.status_code == 422


async def test_export_contains_what_we_hold(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    response = await client.get(f"{API}/me/export", headers=bearer(auth))
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["user"]["email"] == auth["user"]["email"]
    assert len(data["sessions"]) == 1
    assert {m["kind"] for m in data["messages"]} == {"otp.verify_email", "otp.verify_phone"}
    assert "account.registered" in {a["action"] for a in data["activity"]}
    assert "code_hash" not in response.text
    assert "password" not in response.text


async def test_delete_account_anonymises_and_signs_out(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    auth = await register(client)
    email, user_id = auth["user"]["email"], auth["user"]["id"]
    wrong = await client.request(
        "DELETE", f"{API}/me", headers=bearer(auth), json={"password": "not-it-at-all"}
    )
    assert wrong.status_code == 401
    response = await client.request(
        "DELETE", f"{API}/me", headers=bearer(auth), json={"password": PASSWORD}
    )
    assert response.status_code == 204
    assert (await client.get(f"{API}/me", headers=bearer(auth))).status_code == 401
    assert (await login(client, email)).status_code == 401
    db.expire_all()
    user = await db.get(User, user_id)
    assert user is not None
    assert user.state == "deleted"
    assert user.email is None
    assert user.phone is None
    assert user.password_hash is None
    assert user.first_name == "Deleted"
    messages = (
        await db.scalars(select(OutboundMessage).where(OutboundMessage.user_id == user.id))
    ).all()
    assert messages
    assert all(m.to == "redacted" and m.body == "" for m in messages)
    assert await db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "account.deleted", AuditEntry.subject_id == user.id
        )
    )
    # the e-mail is free again for a new account
    await register(client, email=email)


async def test_signed_in_password_guessing_is_limited(client: httpx.AsyncClient) -> None:
    """A stolen session cannot be used to guess the password through re-authentication."""
    auth = await register(client)
    for _ in range(5):
        wrong = await client.post(
            f"{API}/me/password",
            headers=bearer(auth),
            json={"current_password": "guess-guess-guess", "new_password": "brand-new-Lantern-9"},
        )
        assert wrong.status_code == 401
    for attempt in (
        client.post(
            f"{API}/me/password",
            headers=bearer(auth),
            json={"current_password": PASSWORD, "new_password": "brand-new-Lantern-9"},
        ),
        client.request("DELETE", f"{API}/me", headers=bearer(auth), json={"password": PASSWORD}),
        client.post(f"{API}/me/2fa/enable", headers=bearer(auth), json={"code": "123456"}),
    ):
        blocked = await attempt
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) >= 1
    assert (await client.get(f"{API}/me", headers=bearer(auth))).status_code == 200

"""The event catalogue's delivery on the committed path (the job queue runs): what people
chose is respected, quiet hours hold SMS back, a real SMTP server gets the localised
e-mail, a Web Push reaches a browser's subscription encrypted, duplicates are dropped,
and a burst of messages makes one "unread messages" e-mail."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, text

from mesteri.config import get_settings
from mesteri.kit import clock
from mesteri.kit.db import unit_of_work
from mesteri.kit.i18n import lazy
from mesteri.notifications import senders
from mesteri.notifications import service as notifications
from mesteri.notifications.models import DeliveryState, Device, Notification, OutboundMessage
from mesteri.notifications.senders import SmtpEmailSender, VapidWebPushSender
from tests.conftest import LiveApp
from tests.fixtures.market import Party, insert_job, make_client, two_milestones
from tests.notifications.push_service import Browser, FakeHttpService, Reply

API = "/api/v1"


async def _verified_pro(live: LiveApp) -> Party:
    from tests.fixtures.market import make_verified_pro

    async with unit_of_work(live.app.state.write_sessions) as session:
        return await make_verified_pro(live.client, session)


async def _job(live: LiveApp, owner: Party) -> uuid.UUID:
    async with unit_of_work(live.app.state.write_sessions) as session:
        job = await insert_job(session, owner.user_id)
        return job.id


async def _propose(live: LiveApp, job_id: uuid.UUID, pro: Party) -> dict[str, Any]:
    response = await live.client.post(
        f"{API}/jobs/{job_id}/proposals",
        json={
            "price": 80000,
            "currency": "RON",
            "message": "Pot începe luni.",
            "milestones": two_milestones(80000),
        },
        headers=pro.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _notify(
    live: LiveApp, user_id: uuid.UUID, kind: str, **extra: Any
) -> Notification | None:
    async with unit_of_work(live.app.state.write_sessions) as session:
        return await notifications.do_notify(
            session,
            user_id,
            kind,
            subject=lazy("New proposal for “{title}”"),
            body=lazy(
                "The pro delivered “{title}”. Check the work, then accept it or ask for changes."
            ),
            link="/contracts/x",
            title="Baie nouă",
            **extra,
        )


async def _outbound(live: LiveApp, user_id: uuid.UUID) -> list[OutboundMessage]:
    """The user's deliveries of the catalogue (not the codes of their registration)."""
    async with live.app.state.read_sessions() as session:
        rows = await session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.user_id == user_id, OutboundMessage.notification_id.is_not(None))
            .order_by(OutboundMessage.created_at)
        )
        return list(rows)


async def _person(live: LiveApp, **extra: Any) -> Party:
    """A registered client whose sign-up codes are already delivered and forgotten here."""
    person = await make_client(live.client, **extra)
    await live.drain()
    live.sent.clear()
    return person


async def test_email_switched_off_means_no_email_but_the_bell_still_rings(live: LiveApp) -> None:
    owner = await _person(live)
    pro = await _verified_pro(live)
    off = await live.client.put(
        f"{API}/notification-preferences",
        json={"preferences": [{"kind": "proposal.received", "channel": "email", "enabled": False}]},
        headers=owner.headers,
    )
    assert off.status_code == 200, off.text
    choice = next(k for k in off.json()["kinds"] if k["kind"] == "proposal.received")
    assert {c["channel"]: c["enabled"] for c in choice["channels"]}["email"] is False
    await _propose(live, await _job(live, owner), pro)
    await live.drain()
    assert not [m for m in live.sent if m["to"] == owner.email]
    listed = await live.client.get(f"{API}/notifications", headers=owner.headers)
    assert listed.json()["unread"] == 1
    (item,) = listed.json()["items"]
    assert item["kind"] == "proposal.received"
    assert item["title"] == "New proposal for “Înlocuire baterie și sifon la baie”"
    assert item["link"].startswith("/jobs/")
    read = await live.client.post(f"{API}/notifications/read", json={}, headers=owner.headers)
    assert read.json() == {"unread": 0}


async def test_quiet_hours_hold_the_sms_until_they_end(live: LiveApp) -> None:
    person = await _person(live)
    now = clock.now().astimezone(UTC)
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "time_zone": "UTC",
    }
    saved = await live.client.put(
        f"{API}/notification-preferences", json={"quiet_hours": quiet}, headers=person.headers
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["quiet_hours"]["time_zone"] == "UTC"
    await _notify(live, person.user_id, "payment.received")
    await live.drain()
    assert [m["channel"] for m in live.sent if m["to"] == person.email] == ["email"]  # never held
    assert [m for m in live.sent if m["channel"] == "sms"] == []
    (sms,) = [m for m in await _outbound(live, person.user_id) if m.channel == "sms"]
    assert sms.state == DeliveryState.QUEUED
    assert sms.scheduled_for is not None
    assert timedelta(minutes=55) < sms.scheduled_for - now < timedelta(minutes=65)
    await live.client.post(f"{API}/dev/clock", json={"advance": "PT30M"})
    await live.drain()
    assert not [m for m in live.sent if m["channel"] == "sms"]
    await live.client.post(f"{API}/dev/clock", json={"advance": "PT40M"})
    await live.drain()
    (sent_sms,) = [m for m in live.sent if m["channel"] == "sms"]
    assert sent_sms["body"].startswith("Mesteri: New proposal for “Baie nouă”")


async def test_the_same_event_is_announced_once(live: LiveApp) -> None:
    person = await _person(live)
    first = await _notify(live, person.user_id, "milestone.submitted", dedupe_key="ms:1")
    again = await _notify(live, person.user_id, "milestone.submitted", dedupe_key="ms:1")
    assert first is not None
    assert again is None
    await live.drain()
    assert len([m for m in live.sent if m["to"] == person.email]) == 1


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.content.replace(b"\r\n", b"\n")
        self.messages.append(message_from_bytes(raw, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp(live: LiveApp) -> Iterator[Inbox]:
    """A real SMTP server on loopback, used by the live app's e-mail sender."""
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    current = senders.current()
    senders.install(
        senders.Senders(
            email=SmtpEmailSender(f"smtp://127.0.0.1:{port}", "Mesteri <no-reply@mesteri.ro>"),
            sms=current.sms,
            whatsapp=current.whatsapp,
        )
    )
    try:
        yield inbox
    finally:
        controller.stop()


async def test_a_real_smtp_server_receives_the_email_in_the_persons_language(
    live: LiveApp, smtp: Inbox
) -> None:
    owner = await _person(live, language="ro")
    pro = await _verified_pro(live)
    await _propose(live, await _job(live, owner), pro)
    await live.drain()
    # (the other e-mail is the sign-up code, sent through the same server)
    (mail,) = [m for m in smtp.messages if m["To"] == owner.email and m.is_multipart()]
    assert mail["Subject"] == "Ofertă nouă pentru „Înlocuire baterie și sifon la baie”"
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Mihai Instalatorul" in plain
    assert "Deschide în Mesteri" in plain
    assert "/jobs/" in plain
    assert '<html lang="ro"' in html
    assert "Deschide în Mesteri" in html
    assert "/settings/notifications" in html


@pytest.fixture
def push_service() -> Iterator[FakeHttpService]:
    service = FakeHttpService(lambda request: Reply(201))
    with service.running() as running:
        yield running
    assert service.errors == []


async def _web_push_device(live: LiveApp, person: Party, endpoint: str) -> Browser:
    browser = Browser(endpoint)
    added = await live.client.post(
        f"{API}/devices",
        json={"provider": "webpush", "subscription": browser.subscription, "label": "Firefox"},
        headers=person.headers,
    )
    assert added.status_code == 201, added.text
    async with unit_of_work(live.app.state.write_sessions) as session:
        keys = await notifications.do_load_vapid_keys(session)
    current = senders.current()
    senders.install(
        senders.Senders(
            email=current.email,
            sms=current.sms,
            webpush=VapidWebPushSender(keys, "mailto:support@mesteri.ro"),
        )
    )
    key = await live.client.get(f"{API}/notifications/webpush-key")
    assert key.json()["public_key"] == keys.public_key
    return browser


async def test_a_push_reaches_the_browser_encrypted_for_its_subscription(
    live: LiveApp, push_service: FakeHttpService
) -> None:
    person = await _person(live)
    browser = await _web_push_device(live, person, f"{push_service.url}/push/abc")
    notification = await _notify(live, person.user_id, "milestone.submitted")
    assert notification is not None
    await live.drain()
    (request,) = push_service.received
    assert request.path == "/push/abc"
    assert request.headers["content-encoding"] == "aes128gcm"
    assert b"Baie" not in request.body  # encrypted on the wire
    payload = json.loads(browser.decrypt(request.body))
    assert payload == {
        "title": "New proposal for “Baie nouă”",
        "body": "The pro delivered “Baie nouă”. Check the work, then accept it or ask for changes.",
        "url": f"{get_settings().public_url}/contracts/x",
        "tag": "milestone.submitted",
        "notification_id": str(notification.id),
    }
    (delivery,) = [m for m in await _outbound(live, person.user_id) if m.channel == "push"]
    assert delivery.state == DeliveryState.SENT


async def test_a_gone_subscription_disables_the_device_and_is_not_retried(live: LiveApp) -> None:
    gone = FakeHttpService(lambda request: Reply(410))
    with gone.running():
        person = await _person(live)
        await _web_push_device(live, person, f"{gone.url}/push/old")
        await _notify(live, person.user_id, "milestone.submitted")
        await live.drain()
        await live.drain()
        assert len(gone.received) == 1
    (delivery,) = [m for m in await _outbound(live, person.user_id) if m.channel == "push"]
    assert delivery.state == DeliveryState.FAILED
    assert delivery.attempts == 1
    async with live.app.state.read_sessions() as session:
        device = await session.scalar(select(Device).where(Device.user_id == person.user_id))
    assert device is not None
    assert device.disabled_at is not None
    assert (await live.client.get(f"{API}/devices", headers=person.headers)).json() == []


async def test_a_burst_of_messages_makes_one_unread_email(live: LiveApp) -> None:
    owner = await _person(live)
    pro = await _verified_pro(live)
    await _propose(live, await _job(live, owner), pro)
    listed = await live.client.get(f"{API}/conversations", headers=owner.headers)
    (conversation,) = listed.json()["items"]
    for n in range(3):
        posted = await live.client.post(
            f"{API}/conversations/{conversation['id']}/messages",
            json={"body": f"Mesajul {n}"},
            headers=pro.headers,
        )
        assert posted.status_code == 201, posted.text
    await live.drain()
    mails = lambda: [m for m in live.sent if m["to"] == owner.email and "Unread" in m["subject"]]  # noqa: E731
    assert mails() == []  # the wait after the first message is not over
    await live.client.post(f"{API}/dev/clock", json={"advance": "PT6M"})
    await live.drain()
    (mail,) = mails()
    assert mail["subject"] == "Unread messages on Mesteri: 4"  # the quote and three
    assert "Mihai Instalatorul" in mail["body"]
    # A new burst, read before its wait is over: no second e-mail.
    last = await live.client.post(
        f"{API}/conversations/{conversation['id']}/messages",
        json={"body": "Încă unul"},
        headers=pro.headers,
    )
    await live.client.post(f"{API}/messages/{last.json()['id']}/read", headers=owner.headers)
    await live.drain()
    await live.client.post(f"{API}/dev/clock", json={"advance": "PT6M"})
    await live.drain()
    assert len(mails()) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"preferences": [{"kind": "no.such", "channel": "email", "enabled": False}]},
            "unknown_notification_kind",
        ),
        (
            {"preferences": [{"kind": "proposal.received", "channel": "pigeon", "enabled": False}]},
            "unknown_notification_kind",
        ),
        (
            {"preferences": [{"kind": "proposal.received", "channel": "in_app", "enabled": False}]},
            "channel_required",
        ),
        (
            {"preferences": [{"kind": "payout.failed", "channel": "email", "enabled": False}]},
            "channel_required",
        ),
        (
            {"quiet_hours": {"start": "22:00", "end": "07:00", "time_zone": "Mars/Olympus"}},
            "invalid_time_zone",
        ),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "validation_error"),
        ({"preferences": [{"kind": "x", "channel": "email"}]}, "validation_error"),
    ],
)
async def test_bad_preferences_get_clear_errors_and_change_nothing(
    live: LiveApp, body: dict[str, Any], code: str
) -> None:
    person = await _person(live)
    before = (
        await live.client.get(f"{API}/notification-preferences", headers=person.headers)
    ).json()
    answer = await live.client.put(
        f"{API}/notification-preferences", json=body, headers=person.headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == code
    after = (
        await live.client.get(f"{API}/notification-preferences", headers=person.headers)
    ).json()
    assert after == before


async def test_devices_register_list_and_remove(live: LiveApp) -> None:
    person = await _person(live)
    stranger = await _person(live)
    added = await live.client.post(
        f"{API}/devices",
        json={"provider": "fcm", "token": "fcm-token-1234567890"},
        headers=person.headers,
    )
    assert added.status_code == 201, added.text
    device_id = added.json()["id"]
    assert [
        d["id"] for d in (await live.client.get(f"{API}/devices", headers=person.headers)).json()
    ] == [device_id]
    bad = await live.client.post(
        f"{API}/devices", json={"provider": "webpush"}, headers=person.headers
    )
    assert bad.status_code == 422
    assert (
        await live.client.delete(f"{API}/devices/{device_id}", headers=stranger.headers)
    ).status_code == 404
    assert (
        await live.client.delete(f"{API}/devices/{device_id}", headers=person.headers)
    ).status_code == 204
    assert (await live.client.get(f"{API}/devices", headers=person.headers)).json() == []


async def test_a_failing_channel_is_retried_then_given_up_and_logged(live: LiveApp) -> None:
    from mesteri.notifications.tasks import ATTEMPTS, deliver_message

    class Broken:
        async def send(self, *, to: str, body: str) -> None:
            raise OSError("gateway down")

    person = await _person(live)
    current = senders.current()
    senders.install(senders.Senders(email=current.email, sms=Broken()))
    await _notify(live, person.user_id, "payment.received")
    (sms,) = [m for m in await _outbound(live, person.user_id) if m.channel == "sms"]
    for _ in range(ATTEMPTS - 1):
        with pytest.raises(Exception, match="gateway down"):
            await deliver_message(message_id=str(sms.id))
    await deliver_message(message_id=str(sms.id))  # the last attempt gives up quietly
    async with live.app.state.read_sessions() as session:
        row = (
            await session.execute(
                text("SELECT state, attempts, error FROM outbound_messages WHERE id = :id"),
                {"id": sms.id},
            )
        ).one()
    assert (row.state, row.attempts, row.error) == ("failed", ATTEMPTS, "gateway down")
    await deliver_message(message_id=str(sms.id))  # given up: never sent again
    assert [m for m in live.sent if m["channel"] == "sms"] == []


def test_quiet_hours_wrap_midnight() -> None:
    from mesteri.notifications.models import QuietHours

    quiet = QuietHours(
        starts=datetime(2026, 1, 1, 22).time(),
        ends=datetime(2026, 1, 1, 7).time(),
        time_zone="Europe/Bucharest",
    )
    late = datetime(2026, 3, 10, 21, 30, tzinfo=UTC)  # 23:30 in Bucharest
    assert notifications.quiet_until(late, quiet) == datetime(2026, 3, 11, 5, 0, tzinfo=UTC)
    early = datetime(2026, 3, 11, 3, 0, tzinfo=UTC)  # 05:00
    assert notifications.quiet_until(early, quiet) == datetime(2026, 3, 11, 5, 0, tzinfo=UTC)
    day = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert notifications.quiet_until(day, quiet) is None


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/x",  # not https
        "https://10.0.0.5/push",  # an address, not a push service's host
        "https://[::1]/push",
        "https://metadata.internal/computeMetadata",
        "https://printer.local/x",
        "http://+]c\U0006b517\x0186R",  # not a URL at all (found by the API fuzzer)
    ],
)
def test_push_subscriptions_must_point_at_a_public_https_host(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mesteri.notifications.service import UnsafePushEndpointError, check_push_endpoint

    monkeypatch.setattr(get_settings(), "env", "prod")
    with pytest.raises(UnsafePushEndpointError):
        check_push_endpoint(endpoint)
    check_push_endpoint("https://updates.push.services.mozilla.com/wpush/v2/abc")


async def test_a_published_job_is_announced_to_the_pros_it_suits(live: LiveApp) -> None:
    from tests.fixtures.pros import BRASOV, BUCHAREST, PAINTING, PLUMBING

    owner = await _person(live)
    near = await _verified_pro(live)
    async with unit_of_work(live.app.state.write_sessions) as session:
        from tests.fixtures.market import make_verified_pro

        painter = await make_verified_pro(
            live.client,
            session,
            crafts=[{"category_id": str(PAINTING), "primary": True, "years": 3}],
        )
        far = await make_verified_pro(live.client, session, place_id=str(BRASOV))
    posted = await live.client.post(
        f"{API}/jobs",
        json={
            "title": "Desfundare chiuvetă",
            "description": "Chiuveta din bucătărie nu se scurge deloc.",
            "category_id": str(PLUMBING),
            "place_id": str(BUCHAREST),
            "budget_type": "fixed",
            "budget_min": 20000,
            "budget_max": 40000,
            "currency": "RON",
            "publish": True,
        },
        headers=owner.headers,
    )
    assert posted.status_code == 201, posted.text
    await live.drain()
    for pro, expected in ((near, 1), (painter, 0), (far, 0), (owner, 0)):
        listed = await live.client.get(f"{API}/notifications", headers=pro.headers)
        leads = [n for n in listed.json()["items"] if n["kind"] == "lead.new"]
        assert len(leads) == expected, (pro.email, leads)
    (lead,) = [
        n
        for n in (await live.client.get(f"{API}/notifications", headers=near.headers)).json()[
            "items"
        ]
        if n["kind"] == "lead.new"
    ]
    assert lead["title"] == "New job near you: Desfundare chiuvetă"
    assert lead["link"] == f"/jobs/{posted.json()['id']}"

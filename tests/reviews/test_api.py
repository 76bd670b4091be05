"""Reviews through the JSON API on the committed path: the window opened by the first
payment to the pro, double-blind publication (both written, or the window's end on the
test clock), editing, the pro's answer, helpful votes, reports and moderation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from mesteri.kit.db import unit_of_work
from mesteri.reviews import service
from tests.fixtures.accounts import bearer, register
from tests.fixtures.reviews import listed, paid_contract, write
from tests.milestones.conftest import API, Room

pytestmark = pytest.mark.asyncio


async def _outbox(room: Room, auth: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    response = await room.http.get(f"{API}/dev/outbox", params={"to": auth["user"]["email"]})
    assert response.status_code == 200, response.text
    return [m for m in response.json()["items"] if m["kind"] == kind]


async def _scalar(room: Room, sql: str, **params: Any) -> Any:
    async with room.live.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def _mine(room: Room, contract_id: str, auth: dict[str, Any]) -> dict[str, Any]:
    response = await room.http.get(f"{API}/contracts/{contract_id}/reviews", headers=bearer(auth))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_reviews_open_only_once_money_reached_the_pro(room: Room) -> None:
    first, second = await room.contract(50_000, 30_000)
    contract_id = first["contract_id"]
    early = await write(room, contract_id, room.client)
    assert early.status_code == 409
    assert early.json()["code"] == "review_not_open"
    assert "paid" in early.json()["title"]
    assert (await _mine(room, contract_id, room.pro))["open"] is False

    # Funded and delivered is not enough: the money must be released.
    await room.fund(first)
    await room.deliver(first)
    assert (await write(room, contract_id, room.client)).json()["code"] == "review_not_open"
    assert (await room.ok(first, "accept", room.client))["state"] == "released"

    stranger = await register(room.http, first_name="Radu", last_name="Stan")
    denied = await write(room, contract_id, stranger)
    assert denied.status_code == 403
    assert denied.json()["code"] == "not_a_party"
    assert (
        await room.http.get(f"{API}/contracts/{contract_id}/reviews", headers=bearer(stranger))
    ).status_code == 403
    for bad in ({"overall": 6}, {"overall": 0}, {"quality": 4}, {"overall": 5, "value": 9}):
        refused = await room.http.post(
            f"{API}/contracts/{contract_id}/reviews",
            json={"ratings": bad, "comment": "x"},
            headers=bearer(room.client),
        )
        assert refused.status_code == 422, bad

    created = await write(
        room,
        contract_id,
        room.client,
        overall=4,
        ratings={"overall": 4, "quality": 5, "punctuality": 3},
    )
    assert created.status_code == 201, created.text
    review = created.json()
    assert (review["side"], review["state"]) == ("client", "submitted")
    assert review["ratings"] == {
        "overall": 4,
        "quality": 5,
        "punctuality": 3,
        "communication": None,
        "value": None,
    }
    assert review["verified_job"]["month"] == review["created_at"][:7]
    again = await write(room, contract_id, room.client)
    assert again.status_code == 409
    assert again.json()["code"] == "review_exists"
    assert await _scalar(room, "SELECT count(*) FROM reviews") == 1

    # A second payment on the same contract does not open a second window.
    before = await _scalar(
        room, "SELECT count(*) FROM outbox WHERE task_name = 'reviews.close_window'"
    )
    assert before == 1
    async with unit_of_work(room.live.app.state.write_sessions) as session:
        assert await service.do_open_window(session, uuid.UUID(contract_id)) is None
    await room.fund(second)
    await room.deliver(second)
    await room.ok(second, "accept", room.client)
    assert (
        await _scalar(room, "SELECT count(*) FROM outbox WHERE task_name = 'reviews.close_window'")
        == 1
    )


async def test_double_blind_until_the_other_side_writes(room: Room) -> None:
    contract_id = await paid_contract(room)
    written = await write(room, contract_id, room.client, overall=5, comment="Punctual, curat.")
    assert written.status_code == 201, written.text
    client_review = written.json()

    # Sealed: not public, not shown to the pro, still editable by its author.
    assert (await listed(room))["items"] == []
    pro_view = await _mine(room, contract_id, room.pro)
    assert (pro_view["my_side"], pro_view["mine"], pro_view["theirs"]) == ("pro", None, None)
    assert pro_view["can_write"] is True
    client_view = await _mine(room, contract_id, room.client)
    assert client_view["mine"]["id"] == client_review["id"]
    assert (client_view["can_write"], client_view["can_edit"]) == (False, True)
    assert await _outbox(room, room.pro, "review.published") == []

    # The pro writes theirs: both become public at once.
    pro_review = await write(room, contract_id, room.pro, overall=3, comment="Client ok.")
    assert pro_review.status_code == 201, pro_review.text
    assert pro_review.json()["state"] == "published"
    public = (await listed(room))["items"]
    assert [item["id"] for item in public] == [client_review["id"]]  # the pro's is not listed
    item = public[0]
    assert item["author"] == "Ioana M."
    assert item["comment"] == "Punctual, curat."
    assert item["verified_job"]["category"] == "Plumbing"
    assert (item["helpful_count"], item["response"]) == (0, None)
    client_view = await _mine(room, contract_id, room.client)
    assert client_view["theirs"]["id"] == pro_review.json()["id"]
    assert client_view["mine"]["state"] == "published"
    assert client_view["closed_at"] is not None
    assert client_view["can_edit"] is False
    assert client_view["mine"]["published_at"] == client_view["theirs"]["published_at"]
    assert len(await _outbox(room, room.pro, "review.published")) == 1
    assert len(await _outbox(room, room.client, "review.published")) == 1


async def test_the_window_closes_on_the_test_clock_and_publishes_what_was_written(
    room: Room,
) -> None:
    contract_id = await paid_contract(room)
    assert (await write(room, contract_id, room.client, overall=2)).status_code == 201

    # Reminders on day 3 go to whoever has not written (the pro), not to the client.
    await room.advance("P3D")
    reminders = await _outbox(room, room.pro, "review.reminder")
    assert len(reminders) == 1
    assert f"/contracts/{contract_id}/review" in reminders[0]["body"]
    assert await _outbox(room, room.client, "review.reminder") == []
    assert (await listed(room))["items"] == []

    await room.advance("P7D")  # day 10: the second reminder
    assert len(await _outbox(room, room.pro, "review.reminder")) == 2
    assert (await listed(room))["items"] == []
    await room.advance("P4D")  # day 14: the window closes
    items = (await listed(room))["items"]
    assert [i["ratings"]["overall"] for i in items] == [2]
    late = await write(room, contract_id, room.pro)
    assert late.status_code == 409
    assert late.json()["code"] == "review_window_closed"
    view = await _mine(room, contract_id, room.pro)
    assert (view["can_write"], view["mine"]) == (False, None)
    assert view["theirs"]["ratings"]["overall"] == 2
    assert len(await _outbox(room, room.pro, "review.published")) == 1
    assert len(await _outbox(room, room.pro, "review.reminder")) == 2  # none after the end


async def test_the_author_edits_until_publication(room: Room) -> None:
    contract_id = await paid_contract(room)
    review = (await write(room, contract_id, room.client, overall=2)).json()
    url = f"{API}/reviews/{review['id']}"

    # The other side cannot even see it while it is sealed.
    hidden = await room.http.patch(url, json={"comment": "hack"}, headers=bearer(room.pro))
    assert hidden.status_code == 404
    bad = await room.http.patch(url, json={"ratings": {"overall": 7}}, headers=bearer(room.client))
    assert bad.status_code == 422
    edited = await room.http.patch(
        url,
        json={"ratings": {"overall": 4, "value": 5}, "comment": "M-am răzgândit: bine."},
        headers=bearer(room.client),
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["ratings"]["overall"] == 4
    assert edited.json()["ratings"]["value"] == 5
    assert edited.json()["comment"] == "M-am răzgândit: bine."

    assert (await write(room, contract_id, room.pro)).status_code == 201
    late = await room.http.patch(url, json={"comment": "Altfel"}, headers=bearer(room.client))
    assert late.status_code == 409
    assert late.json()["code"] == "review_published"
    assert (await listed(room))["items"][0]["comment"] == "M-am răzgândit: bine."


async def _published_pair(room: Room) -> str:
    contract_id = await paid_contract(room)
    review = (await write(room, contract_id, room.client, overall=3)).json()
    assert (await write(room, contract_id, room.pro)).status_code == 201
    return str(review["id"])


async def test_the_pro_answers_once(room: Room) -> None:
    review_id = await _published_pair(room)
    url = f"{API}/reviews/{review_id}/response"
    not_pro = await room.http.post(url, json={"body": "Eu?"}, headers=bearer(room.client))
    assert not_pro.status_code == 403
    assert not_pro.json()["code"] == "not_the_reviewed_pro"
    blank = await room.http.post(url, json={"body": "   "}, headers=bearer(room.pro))
    assert blank.status_code == 422
    answered = await room.http.post(
        url, json={"body": "Mulțumesc, revin oricând."}, headers=bearer(room.pro)
    )
    assert answered.status_code == 201, answered.text
    again = await room.http.post(url, json={"body": "Încă o dată"}, headers=bearer(room.pro))
    assert again.status_code == 409
    assert again.json()["code"] == "response_exists"
    item = (await listed(room))["items"][0]
    assert item["response"]["body"] == "Mulțumesc, revin oricând."
    assert len(await _outbox(room, room.client, "review.response")) == 1


async def test_reports_go_to_the_queue_and_staff_keep_or_hide(room: Room) -> None:
    review_id = await _published_pair(room)
    ana = await register(room.http, first_name="Ana", last_name="Pop")
    dan = await register(room.http, first_name="Dan", last_name="Ene")
    url = f"{API}/reviews/{review_id}/report"
    bad = await room.http.post(url, json={"reason": "boring"}, headers=bearer(ana))
    assert bad.status_code == 422
    first = await room.http.post(
        url, json={"reason": "fake", "details": "Nu a lucrat aici."}, headers=bearer(ana)
    )
    assert first.status_code == 201, first.text
    repeat = await room.http.post(url, json={"reason": "spam"}, headers=bearer(ana))
    assert repeat.status_code == 409
    assert repeat.json()["code"] == "already_reported"
    second = await room.http.post(url, json={"reason": "offensive"}, headers=bearer(dan))
    assert second.status_code == 201

    assert (
        await room.http.get(f"{API}/admin/review-reports", headers=bearer(ana))
    ).status_code == 403
    queue = await room.http.get(f"{API}/admin/review-reports", headers=bearer(room.staff))
    assert queue.status_code == 200, queue.text
    items = queue.json()["items"]
    assert [i["report"]["id"] for i in items] == [first.json()["id"], second.json()["id"]]
    assert items[0]["review"]["author"] == "Ioana M."
    assert items[0]["open_reports"] == 2

    decide = f"{API}/admin/review-reports/{first.json()['id']}/decide"
    kept = await room.http.post(
        decide, json={"action": "keep", "reason": "Lucrare verificată."}, headers=bearer(room.staff)
    )
    assert kept.status_code == 200, kept.text
    assert (kept.json()["review_state"], kept.json()["closed_reports"]) == ("published", 1)
    twice = await room.http.post(decide, json={"action": "keep"}, headers=bearer(room.staff))
    assert twice.status_code == 409
    assert twice.json()["code"] == "report_decided"
    assert len((await listed(room))["items"]) == 1

    hide = f"{API}/admin/review-reports/{second.json()['id']}/decide"
    no_reason = await room.http.post(hide, json={"action": "hide"}, headers=bearer(room.staff))
    assert no_reason.status_code == 422
    assert no_reason.json()["code"] == "reason_required"
    hidden = await room.http.post(
        hide, json={"action": "hide", "reason": "Limbaj jignitor."}, headers=bearer(room.staff)
    )
    assert hidden.status_code == 200, hidden.text
    assert hidden.json()["review_state"] == "hidden"
    assert (await listed(room))["items"] == []
    queue = await room.http.get(f"{API}/admin/review-reports", headers=bearer(room.staff))
    assert queue.json()["items"] == []
    actions = await _scalar(
        room,
        "SELECT string_agg(action, ',' ORDER BY at) FROM audit_log WHERE subject_id = :id",
        id=uuid.UUID(review_id),
    )
    assert actions == "review.kept,review.hidden"
    assert (
        await _scalar(room, "SELECT hidden_reason FROM reviews WHERE id = :id", id=review_id)
        == "Limbaj jignitor."
    )
    # A hidden review cannot be voted on or reported any more.
    gone = await room.http.post(f"{API}/reviews/{review_id}/helpful", headers=bearer(ana))
    assert gone.status_code == 404


async def test_helpful_votes_once_per_user_not_by_the_author(room: Room) -> None:
    review_id = await _published_pair(room)
    url = f"{API}/reviews/{review_id}/helpful"
    ana = await register(room.http, first_name="Ana", last_name="Pop")
    own = await room.http.post(url, headers=bearer(room.client))
    assert own.status_code == 403
    assert own.json()["code"] == "own_review"
    assert (await room.http.post(url)).status_code == 401
    for _ in range(2):
        voted = await room.http.post(url, headers=bearer(ana))
        assert voted.status_code == 200, voted.text
        assert (voted.json()["helpful_count"], voted.json()["voted"]) == (1, True)
    assert (await room.http.post(url, headers=bearer(room.pro))).json()["helpful_count"] == 2
    for _ in range(2):
        removed = await room.http.delete(url, headers=bearer(ana))
        assert removed.status_code == 200
        assert (removed.json()["helpful_count"], removed.json()["voted"]) == (1, False)
    assert (await listed(room))["items"][0]["helpful_count"] == 1

"""The milestone lifecycle on the committed path: every transition of the declared table
is walked, money moves through the escrow core, timers wait for the test clock."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mesteri.milestones.lifecycles import MILESTONE_LIFECYCLE
from tests.fixtures.accounts import bearer, register
from tests.milestones.conftest import API, Room
from tests.payments.conftest import DECLINE_CARD, totals_by_currency

pytestmark = pytest.mark.asyncio


async def _walked(room: Room) -> set[tuple[str, str]]:
    async with room.live.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT DISTINCT transition, from_state FROM state_transitions "
                "WHERE entity = 'milestone'"
            )
        )
        return {(name, source) for name, source in rows}


async def _ledger_entries(room: Room, hold_id: str, kind: str) -> int:
    async with room.live.engine.connect() as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM ledger_entries WHERE hold_id = :h AND kind = :k"),
            {"h": hold_id, "k": kind},
        )
        return int(count or 0)


async def _open_dispute(room: Room, m: dict[str, Any], auth: dict[str, Any], reason: str) -> str:
    """Disputes open on the desk (the generic transition answers ``use_dispute_desk``)."""
    refused = await room.act(m, "dispute", auth, reason=reason)
    assert refused.status_code == 409
    assert refused.json()["code"] == "use_dispute_desk"
    opened = await room.http.post(
        f"{API}/milestones/{m['id']}/disputes", json={"reason": reason}, headers=bearer(auth)
    )
    assert opened.status_code == 201, opened.text
    dispute_id: str = opened.json()["id"]
    assert (await room.get(m))["state"] == "disputed"
    return dispute_id


async def _decide(
    room: Room, m: dict[str, Any], dispute_id: str, staff: dict[str, Any], **decision: Any
) -> str:
    """Staff decide on the desk once mediation started; returns the milestone's state."""
    escalated = await room.http.post(
        f"{API}/disputes/{dispute_id}/escalate", headers=bearer(room.client)
    )
    assert escalated.status_code == 200, escalated.text
    decided = await room.http.post(
        f"{API}/admin/disputes/{dispute_id}/resolve",
        json={"note": "Decided on the desk.", **decision},
        headers=bearer(staff),
    )
    assert decided.status_code == 200, decided.text
    state: str = (await room.get(m))["state"]
    return state


async def test_every_transition_of_the_table_is_walked(room: Room) -> None:
    c, p, staff = room.client, room.pro, room.staff
    # A contract not yet signed: its draft milestone is cancelled for free.
    (draft,) = await room.contract(20_000, signed=False)
    assert draft["state"] == "draft"
    assert draft["actions"] == ["cancel"]
    assert (await room.ok(draft, "cancel", c))["state"] == "cancelled"

    ms = await room.contract(*([10_000] * 10))
    happy, auto, abandoned, given_up, reworked, disputed, split_hairs, overdue, late_fix, halved = (
        ms
    )

    # Awaiting funding → a checkout; cancelling it cancels the hold (a late payment would
    # be refunded by the escrow core).
    started = await room.ok(abandoned, "fund", c)
    assert started["milestone"]["state"] == "awaiting_funding"
    assert (await room.ok(abandoned, "cancel", p))["state"] == "cancelled"
    hold = await room.get_hold(started["milestone"]["hold_id"])
    assert hold["state"] == "cancelled"

    for m in (happy, auto, given_up, reworked, disputed, split_hairs, overdue, late_fix, halved):
        assert (await room.fund(m))["state"] == "funded"

    # The happy path, with one round of changes.
    await room.deliver(happy)
    changes = await room.ok(happy, "request_changes", c, reason="Sifonul încă picură.")
    assert changes["state"] == "changes_requested"
    assert changes["change_request"]
    await room.deliver(happy)
    assert (await room.ok(happy, "accept", c))["state"] == "released"

    # Funded work the pro gives up: refunded in full.
    assert (await room.ok(given_up, "cancel", p))["state"] == "refunded"
    await room.deliver(reworked)
    await room.ok(reworked, "request_changes", c, reason="Lipsește garnitura.")
    assert (await room.ok(reworked, "cancel", p))["state"] == "refunded"

    # Disputes freeze the money until staff decide (on the dispute desk).
    first = await _open_dispute(room, disputed, c, "Nu a venit.")
    assert (await room.get_hold((await room.get(disputed))["hold_id"]))["state"] == "frozen"
    refused = await room.act(disputed, "resolve_release", staff)
    assert refused.json()["code"] == "use_dispute_desk"
    assert await _decide(room, disputed, first, staff, outcome="release") == "released"
    await room.deliver(split_hairs)
    second = await _open_dispute(room, split_hairs, p, "Clientul nu răspunde.")
    assert await _decide(room, split_hairs, second, staff, outcome="refund") == "refunded"
    await room.deliver(halved)
    halving = await _open_dispute(room, halved, c, "Doar jumătate e gata.")
    split = {"outcome": "split", "pro_amount": 6_000, "client_amount": 4_000}
    assert await _decide(room, halved, halving, staff, **split) == "split"
    await room.deliver(late_fix)
    await room.ok(late_fix, "request_changes", c, reason="Mai e de lucru.")
    # (late_fix stays in changes_requested until the overdue timer refunds it)

    await room.deliver(auto)
    await room.advance("P14D")
    await room.live.drain()
    assert (await room.get(auto))["state"] == "released"
    # Due in 10 days + 60 days: refunded when nothing was delivered (or redelivered).
    await room.advance("P57D")
    await room.live.drain()
    assert (await room.get(overdue))["state"] == "refunded"
    assert (await room.get(late_fix))["state"] == "refunded"

    # A dispute from changes_requested, on a fresh contract.
    (third,) = await room.contract(10_000)
    await room.fund(third)
    await room.deliver(third)
    await room.ok(third, "request_changes", c, reason="Altă culoare.")
    await _open_dispute(room, third, p, "Culoarea era în contract.")

    table = {(t.name, str(s)) for t in MILESTONE_LIFECYCLE.transitions for s in t.sources}
    assert await _walked(room) == table
    totals = await totals_by_currency(room.live)
    assert totals == {"RON": 0}  # the ledger still balances


async def test_accept_pays_the_pro_once_and_a_repeat_returns_the_first(room: Room) -> None:
    (m,) = await room.contract(100_000)
    funded = await room.fund(m)
    await room.deliver(m)
    first = await room.ok(m, "accept", room.client)
    second = await room.ok(m, "accept", room.client)
    assert first["state"] == second["state"] == "released"
    assert first["released_at"] == second["released_at"]
    assert await _ledger_entries(room, funded["hold_id"], "release") == 1
    wallet = await room.wallet()
    # 10 % platform fee: the pro's net is pending for the hold period, then available.
    assert (wallet["pending"], wallet["available"]) == (90_000, 0)
    await room.advance("P6D")
    await room.live.drain()
    assert (await room.wallet())["available"] == 0
    await room.advance("P1D")
    await room.live.drain()
    wallet = await room.wallet()
    assert (wallet["pending"], wallet["available"]) == (0, 90_000)


async def test_who_may_do_what(room: Room) -> None:
    (m,) = await room.contract(50_000)
    # Submitting before funding is a conflict; the client cannot submit at all.
    early = await room.act(m, "submit", room.pro, note="Gata")
    assert early.status_code == 409
    assert early.json()["code"] == "transition_not_allowed"
    assert (await room.act(m, "fund", room.pro)).status_code == 403
    await room.fund(m)
    assert (await room.act(m, "submit", room.client, note="x")).status_code == 403
    # The client cannot take funded money back alone; staff-only decisions stay staff's.
    assert (await room.act(m, "cancel", room.client)).status_code == 403
    desk_only = await room.act(m, "resolve_refund", room.client)
    assert desk_only.status_code == 409  # decisions are the dispute desk's
    assert desk_only.json()["code"] == "use_dispute_desk"
    await room.deliver(m)
    by_pro = await room.act(m, "accept", room.pro)
    assert by_pro.status_code == 403
    assert by_pro.json()["code"] == "transition_forbidden"
    assert (await room.get(m))["state"] == "submitted"
    # Strangers do not learn the milestone exists.
    stranger = await register(room.http)
    for response in (
        await room.http.get(f"{API}/milestones/{m['id']}", headers=bearer(stranger)),
        await room.act(m, "accept", stranger),
        await room.http.get(
            f"{API}/contracts/{m['contract_id']}/milestones", headers=bearer(stranger)
        ),
    ):
        assert response.status_code == 404, response.text
    unknown = await room.act(m, "teleport", room.client)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_transition"


async def test_submit_validates_the_delivery(room: Room) -> None:
    (m,) = await room.contract(50_000)
    await room.fund(m)
    missing = await room.act(m, "submit", room.pro)
    assert missing.status_code == 422
    wrong_item = await room.act(m, "submit", room.pro, note="Gata", dod_done=[5])
    assert wrong_item.status_code == 422
    assert wrong_item.json()["code"] == "invalid_dod_item"
    not_mine = await room.act(
        m, "submit", room.pro, note="Gata", attachment_ids=["0190f5c2-0000-7000-8000-000000000000"]
    )
    assert not_mine.status_code == 422
    assert (await room.get(m))["state"] == "funded"  # nothing half-written
    done = await room.deliver(m)
    assert [d["done"] for d in done["dod"]] == [True, True]
    assert done["auto_accept_at"] is not None


async def test_a_declined_payment_leaves_the_milestone_awaiting_funding(room: Room) -> None:
    (m,) = await room.contract(50_000)
    after = await room.fund(m, card=DECLINE_CARD)
    assert after["state"] == "awaiting_funding"
    assert "fund" in after["actions"]
    # The client tries again with a good card.
    assert (await room.fund(m))["state"] == "funded"


async def test_auto_accept_waits_for_day_14_and_reminds_on_days_7_and_12(room: Room) -> None:
    (m,) = await room.contract(40_000)
    await room.fund(m)
    await room.deliver(m)
    email = room.client["user"]["email"]

    def reminders() -> int:
        return sum(
            1 for s in room.live.sent if s["to"] == email and "review" in s["subject"].lower()
        )

    await room.advance("P7D")
    await room.live.drain()
    assert reminders() == 1
    await room.advance("P5D")
    await room.live.drain()
    assert reminders() == 2
    await room.advance("P1DT23H")
    await room.live.drain()
    assert (await room.get(m))["state"] == "submitted"  # day 13 and 23 hours
    await room.advance("PT1H")
    await room.live.drain()
    assert (await room.get(m))["state"] == "released"


async def test_a_resubmission_restarts_the_review_period(room: Room) -> None:
    (m,) = await room.contract(40_000)
    await room.fund(m)
    await room.deliver(m)
    await room.advance("P10D")
    await room.ok(m, "request_changes", room.client, reason="Încă o dată.")
    await room.deliver(m)  # day 10: the new period ends on day 24
    await room.advance("P5D")
    await room.live.drain()  # day 15: the first submission's timer is stale
    assert (await room.get(m))["state"] == "submitted"
    await room.advance("P9D")
    await room.live.drain()
    assert (await room.get(m))["state"] == "released"


async def test_a_disputed_milestone_is_not_refunded_by_the_overdue_timer(room: Room) -> None:
    (m,) = await room.contract(40_000, due=date.today() + timedelta(days=1))
    await room.fund(m)
    await _open_dispute(room, m, room.client, "Nu răspunde la telefon.")
    await room.advance("P90D")  # in steps
    await room.live.drain()
    assert (await room.get(m))["state"] == "disputed"

"""The dispute ladder on the committed path: opening freezes the escrow, offers settle it
exactly once, mediation and staff decisions, timers that escalate but never move money,
and the expert review with its fee."""

from __future__ import annotations

import asyncio

import pytest

from mesteri.disputes.lifecycles import DISPUTE_LIFECYCLE
from mesteri.kit.db import unit_of_work
from tests.disputes.conftest import API, Court
from tests.fixtures.accounts import bearer, create_staff_user, login, register
from tests.fixtures.pros import png_bytes, upload
from tests.payments.conftest import totals_by_currency

pytestmark = pytest.mark.asyncio


async def test_opening_freezes_the_hold_and_only_once(court: Court) -> None:
    room = court.room
    milestone, dispute = await court.opened(80_000, amount=30_000)
    assert dispute["stage"] == "negotiation"
    assert (dispute["amount_held"], dispute["amount_disputed"]) == (80_000, 30_000)
    assert dispute["opened_by_role"] == "client"
    assert dispute["milestone_state"] == "submitted"
    assert dispute["stage_deadline"] is not None
    assert (await room.get(milestone))["state"] == "disputed"
    assert (await room.get_hold(milestone["hold_id"]))["state"] == "frozen"
    assert [i["kind"] for i in dispute["timeline"] if i["source"] == "dispute"] == ["opened"]
    kinds = {(i["source"], i["kind"]) for i in dispute["timeline"]}
    assert {("milestone", "confirm_funding"), ("milestone", "delivery")} <= kinds
    # Both parties hear of it.
    await court.live.drain()
    mailed = {s["to"] for s in court.live.sent if "dispute" in s.get("subject", "").lower()}
    assert {room.client["user"]["email"], room.pro["user"]["email"]} <= mailed

    again = await court.open(milestone, room.pro)
    assert again.status_code == 409
    assert again.json()["code"] == "dispute_exists"
    # The generic transition is closed: disputes go through the desk.
    generic = await room.act(milestone, "dispute", room.client, reason="x")
    assert generic.status_code == 409
    assert generic.json()["code"] == "use_dispute_desk"


async def test_who_may_open_and_what(court: Court) -> None:
    room = court.room
    (unfunded,) = await room.contract(50_000)
    early = await court.open(unfunded)
    assert early.status_code == 409
    assert early.json()["code"] == "transition_not_allowed"
    milestone = await court.funded(50_000, deliver=False)
    stranger = await register(room.http)
    assert (await court.open(milestone, stranger)).status_code == 404
    too_much = await court.open(milestone, amount=50_001)
    assert too_much.status_code == 422
    assert too_much.json()["code"] == "amount_out_of_range"
    assert (await court.open(milestone, reason="   ")).status_code == 422
    assert (await room.get(milestone))["state"] == "funded"  # nothing half-written
    assert (await room.get_hold(milestone["hold_id"]))["state"] == "held"
    by_pro = await court.open(milestone, room.pro)
    assert by_pro.status_code == 201, by_pro.text
    assert by_pro.json()["amount_disputed"] == 50_000
    assert by_pro.json()["milestone_state"] == "funded"


async def test_a_stranger_cannot_read_and_a_party_cannot_decide(court: Court) -> None:
    room = court.room
    _, dispute = await court.opened(60_000)
    stranger = await register(room.http)
    for response in (
        await room.http.get(f"{API}/disputes/{dispute['id']}", headers=bearer(stranger)),
        await court.offer(dispute, stranger, 30_000, 30_000),
        await court.escalate(dispute, stranger),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "dispute_not_found"
    await court.escalate(dispute, room.client)
    for party in (room.client, room.pro):
        refused = await court.resolve(dispute, party, outcome="release")
        assert refused.status_code == 403, refused.text
        queue = await room.http.get(f"{API}/admin/disputes", headers=bearer(party))
        assert queue.status_code == 403
    assert (await court.get(dispute))["stage"] == "mediation"
    mine = await room.http.get(f"{API}/disputes", headers=bearer(room.pro))
    assert [d["id"] for d in mine.json()["items"]] == [dispute["id"]]
    theirs = await room.http.get(f"{API}/disputes", headers=bearer(stranger))
    assert theirs.json()["items"] == []


async def test_a_stage_one_offer_accepted_splits_the_ledger_exactly_once(court: Court) -> None:
    room = court.room
    milestone, dispute = await court.opened(100_000)
    hold_id = milestone["hold_id"]
    wrong = await court.offer(dispute, room.pro, 70_000, 20_000)
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "split_mismatch"
    first = (await court.offer(dispute, room.pro, 80_000, 20_000)).json()
    offer = (await court.offer(dispute, room.pro, 70_000, 30_000)).json()
    assert offer["made_by_role"] == "pro"
    view = await court.get(dispute)
    assert {o["id"]: o["state"] for o in view["offers"]} == {
        first["id"]: "superseded",
        offer["id"]: "open",
    }
    assert (await court.accept(dispute, first, room.client)).json()["code"] == "offer_not_open"
    own = await court.accept(dispute, offer, room.pro)
    assert own.status_code == 403
    assert own.json()["code"] == "own_offer"

    accepted = await court.accept(dispute, offer, room.client)
    assert accepted.status_code == 200, accepted.text
    settled = accepted.json()
    assert settled["stage"] == "settled"
    assert (settled["outcome"], settled["pro_amount"], settled["client_amount"]) == (
        "split",
        70_000,
        30_000,
    )
    assert (await room.get(milestone))["state"] == "split"
    hold = await room.get_hold(hold_id)
    assert (hold["state"], hold["released"], hold["refunded"], hold["held"]) == (
        "split",
        70_000,
        30_000,
        0,
    )
    # 10 % platform fee on the pro's part only; the client gets their part in full.
    wallet = await room.wallet()
    assert wallet["pending"] == 63_000
    assert await court.refunded(hold_id) == 30_000
    before = await court.ledger()

    again = await court.accept(dispute, offer, room.client)
    assert again.status_code == 200
    assert again.json()["stage"] == "settled"
    assert await court.ledger() == before
    assert (await room.wallet())["pending"] == 63_000
    late = await court.offer(dispute, room.client, 0, 100_000)
    assert late.status_code == 409
    assert late.json()["code"] == "dispute_closed"
    assert await totals_by_currency(room.live) == {"RON": 0}


async def test_concurrent_accepts_settle_once(court: Court) -> None:
    room = court.room
    milestone, dispute = await court.opened(100_000)
    offer = (await court.offer(dispute, room.client, 40_000, 60_000)).json()
    answers = await asyncio.gather(*(court.accept(dispute, offer, room.pro) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    count = await court.scalar(
        "SELECT count(*) FROM ledger_entries WHERE hold_id = :h AND kind = 'release'",
        h=milestone["hold_id"],
    )
    assert count == 1
    assert await court.refunded(milestone["hold_id"]) == 60_000
    assert (await room.wallet())["pending"] == 36_000


async def test_mediation_proposal_needs_both_parties(court: Court) -> None:
    room, staff = court.room, court.room.staff
    milestone, dispute = await court.opened(100_000)
    early = await court.offer(dispute, staff, 50_000, 50_000)
    assert early.status_code == 409
    assert early.json()["code"] == "mediation_not_started"
    pending = (await court.offer(dispute, room.client, 10_000, 90_000)).json()
    escalated = await court.escalate(dispute, room.pro)
    assert escalated.json()["stage"] == "mediation"
    # The negotiation's offer no longer stands.
    assert (await court.accept(dispute, pending, room.pro)).json()["code"] == "offer_not_open"
    claimed = await court.post(f"/admin/disputes/{dispute['id']}/assign", staff)
    assert claimed.json()["mediator_id"] == staff["user"]["id"]
    asked = await court.post(
        f"/admin/disputes/{dispute['id']}/questions", staff, {"body": "Poze?", "to": "pro"}
    )
    assert asked.status_code == 201, asked.text
    question = next(i for i in asked.json()["timeline"] if i["kind"] == "question")
    answered = await court.post(
        f"/disputes/{dispute['id']}/answers",
        room.pro,
        {"body": "Am poze, le trimit.", "question_id": question["id"]},
    )
    assert answered.status_code == 201, answered.text
    assert any(i["kind"] == "answer" for i in answered.json()["timeline"])

    proposal = (await court.offer(dispute, staff, 55_000, 45_000)).json()
    assert proposal["made_by_role"] == "mediator"
    staff_accepts = await court.accept(dispute, proposal, staff)
    assert staff_accepts.status_code == 403
    half = await court.accept(dispute, proposal, room.client)
    assert half.json()["stage"] == "mediation"
    assert (await room.get_hold(milestone["hold_id"]))["state"] == "frozen"
    done = await court.accept(dispute, proposal, room.pro)
    assert done.json()["stage"] == "settled"
    assert (await room.get_hold(milestone["hold_id"]))["released"] == 55_000
    assert (await room.wallet())["pending"] == 49_500
    # Staff reading a dispute is audited (they see both sides' files); parties are not.
    viewed = "SELECT count(*) FROM audit_log WHERE action = 'dispute.viewed' AND subject_id = :d"
    before = await court.scalar(viewed, d=dispute["id"])
    await court.get(dispute, room.client)
    assert await court.scalar(viewed, d=dispute["id"]) == before
    await court.get(dispute, staff)
    assert await court.scalar(viewed, d=dispute["id"]) == before + 1


async def test_timers_escalate_by_stage(court: Court) -> None:
    room = court.room
    _, dispute = await court.opened(50_000)
    await room.advance("P6DT23H")
    await room.live.drain()
    assert (await court.get(dispute))["stage"] == "negotiation"
    await room.advance("PT1H")
    await room.live.drain()
    mediation = await court.get(dispute)
    assert mediation["stage"] == "mediation"
    assert any(
        i["kind"] == "escalated" and i["actor_role"] == "system" for i in mediation["timeline"]
    )
    await room.advance("P7D")
    await room.live.drain()
    assert (await court.get(dispute))["stage"] == "decision"
    # Nothing times out of a decision: it waits for staff.
    await room.advance("P30D")
    await room.live.drain()
    assert (await court.get(dispute))["stage"] == "decision"


async def test_timers_do_not_move_disputed_money(court: Court) -> None:
    room = court.room
    milestone, dispute = await court.opened(70_000)  # disputed while submitted
    before = await court.ledger()
    # Past the 14-day auto-accept and the 60-day overdue refund (due in 10 days).
    for step in ("P15D", "P30D", "P30D"):
        await room.advance(step)
        await room.live.drain()
    assert (await room.get(milestone))["state"] == "disputed"
    hold = await court.scalar("SELECT state FROM holds WHERE id = :h", h=milestone["hold_id"])
    assert hold == "frozen"
    assert await court.ledger() == before
    assert (await court.get(dispute))["stage"] == "decision"


async def test_admin_split_decision_is_exact_and_final(court: Court) -> None:
    room = court.room
    milestone, dispute = await court.opened(100_000)
    staff = await court.new_staff()
    too_early = await court.resolve(dispute, staff, outcome="refund")
    assert too_early.status_code == 409
    assert too_early.json()["code"] == "transition_not_allowed"
    await court.escalate(dispute, room.client)
    mismatch = await court.resolve(
        dispute, staff, outcome="split", pro_amount=60_000, client_amount=30_000
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["code"] == "split_mismatch"
    decided = await court.resolve(
        dispute, staff, outcome="split", pro_amount=60_000, client_amount=40_000
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert (body["stage"], body["outcome"], body["resolved_by"]) == (
        "resolved",
        "split",
        staff["user"]["id"],
    )
    hold = await room.get_hold(milestone["hold_id"])
    assert (hold["state"], hold["released"], hold["refunded"]) == ("split", 60_000, 40_000)
    assert (await room.wallet())["pending"] == 54_000
    assert await court.refunded(milestone["hold_id"]) == 40_000
    before = await court.ledger()
    same = await court.resolve(
        dispute, staff, outcome="split", pro_amount=60_000, client_amount=40_000
    )
    assert same.status_code == 200
    other = await court.resolve(dispute, staff, outcome="release")
    assert other.status_code == 409
    assert other.json()["code"] == "dispute_decided"
    assert await court.ledger() == before
    audited = await court.scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'dispute.resolved' AND subject_id = :d",
        d=dispute["id"],
    )
    assert audited == 1
    assert (await room.get(milestone))["state"] == "split"


async def test_release_and_refund_decisions(court: Court) -> None:
    room = court.room
    staff = await court.new_staff("admin")
    released_m, to_release = await court.opened(40_000)
    refunded_m, to_refund = await court.opened(30_000)
    for d in (to_release, to_refund):
        await court.escalate(d, room.pro)
    assert (await court.resolve(to_release, staff, outcome="release")).status_code == 200
    assert (await court.resolve(to_refund, staff, outcome="refund")).status_code == 200
    assert (await room.get(released_m))["state"] == "released"
    assert (await room.get(refunded_m))["state"] == "refunded"
    assert (await room.wallet())["pending"] == 36_000
    assert await court.refunded(refunded_m["hold_id"]) == 30_000


async def test_staff_without_two_factor_cannot_decide(court: Court) -> None:
    _, dispute = await court.opened(40_000)
    await court.escalate(dispute, court.room.client)
    async with unit_of_work(court.live.app.state.write_sessions) as session:
        email = await create_staff_user(session, ("admin",))
    plain = (await login(court.http, email)).json()
    refused = await court.resolve(dispute, plain, outcome="refund")
    assert refused.status_code == 403
    assert refused.json()["code"] == "mfa_required"
    assert (await court.get(dispute))["stage"] == "mediation"


async def test_expert_review_quote_request_payment_and_report(court: Court) -> None:
    room, staff = court.room, court.room.staff
    milestone, dispute = await court.opened(400_000, amount=300_000)
    expert = await court.new_staff("support")
    quote = await room.http.get(
        f"{API}/disputes/{dispute['id']}/expert-quote", headers=bearer(room.client)
    )
    assert quote.json() == {"fee": 15_000, "currency": "RON"}  # 5 % of 3,000 lei
    early = await court.post(
        f"/disputes/{dispute['id']}/expert", room.client, {"confirm_fee": 15_000}
    )
    assert early.status_code == 409  # only from mediation
    assert early.json()["code"] == "transition_not_allowed"
    await court.escalate(dispute, room.client)
    changed = await court.post(
        f"/disputes/{dispute['id']}/expert", room.client, {"confirm_fee": 10_000}
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "fee_changed"
    requested = await court.post(
        f"/disputes/{dispute['id']}/expert", room.client, {"confirm_fee": 15_000}
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["stage"] == "expert_review"
    assert requested.json()["expert_fee_state"] == "awaiting_payment"
    no_expert = await court.post(f"/disputes/{dispute['id']}/expert/pay", room.client)
    assert no_expert.status_code == 409
    assert no_expert.json()["code"] == "expert_not_assigned"
    assigned = await court.post(
        f"/admin/disputes/{dispute['id']}/expert", staff, {"expert_id": expert["user"]["id"]}
    )
    assert assigned.status_code == 200, assigned.text
    not_requester = await court.post(f"/disputes/{dispute['id']}/expert/pay", room.pro)
    assert not_requester.status_code == 403
    unpaid = await court.post(
        f"/disputes/{dispute['id']}/expert-report", expert, {"body": "Report."}
    )
    assert unpaid.status_code == 409
    assert unpaid.json()["code"] == "expert_fee_unpaid"
    checkout = await court.post(f"/disputes/{dispute['id']}/expert/pay", room.client)
    assert checkout.status_code == 200, checkout.text
    await room.pay(checkout.json()["checkout_url"])
    paid = await court.get(dispute)
    assert paid["expert_fee_state"] == "paid"
    intruder = await court.post(
        f"/disputes/{dispute['id']}/expert-report", staff, {"body": "Not mine."}
    )
    assert intruder.status_code == 403
    assert intruder.json()["code"] == "not_the_expert"
    report = await court.post(
        f"/disputes/{dispute['id']}/expert-report", expert, {"body": "Lucrarea e 80 % gata."}
    )
    assert report.status_code == 200, report.text
    assert report.json()["stage"] == "decision"
    assert report.json()["expert_report"] == "Lucrarea e 80 % gata."
    fee_hold = await court.scalar(
        "SELECT state FROM holds WHERE reference = :r", r=f"dispute-expert:{dispute['id']}"
    )
    assert fee_hold == "released"
    # The disputed milestone's escrow is untouched until the decision.
    assert (await room.get_hold(milestone["hold_id"]))["state"] == "frozen"
    decided = await court.resolve(
        dispute, staff, outcome="split", pro_amount=320_000, client_amount=80_000
    )
    assert decided.status_code == 200, decided.text
    assert await totals_by_currency(room.live) == {"RON": 0}


async def test_an_unpaid_expert_fee_times_out_to_a_decision(court: Court) -> None:
    room = court.room
    _, dispute = await court.opened(100_000)
    await court.escalate(dispute, room.pro)
    requested = await court.post(
        f"/disputes/{dispute['id']}/expert", room.pro, {"confirm_fee": 10_000}
    )
    assert requested.status_code == 200, requested.text  # the minimum fee
    await room.advance("P7D")
    await room.live.drain()
    after = await court.get(dispute)
    assert after["stage"] == "decision"
    assert after["expert_fee_state"] == "cancelled"
    assert any(i["kind"] == "expert_cancelled" for i in after["timeline"])


async def test_evidence_with_files_is_visible_to_both_sides(court: Court) -> None:
    room = court.room
    _, dispute = await court.opened(50_000)
    done = await upload(
        room.http,
        bearer(room.client),
        png_bytes(),
        purpose="attachment",
        content_type="image/png",
        filename="leak.png",
    )
    assert done.status_code == 200, done.text
    upload_id = done.json()["id"]
    added = await court.post(
        f"/disputes/{dispute['id']}/evidence",
        room.client,
        {"body": "Poza cu scurgerea.", "attachment_ids": [upload_id]},
    )
    assert added.status_code == 201, added.text
    item = next(i for i in added.json()["timeline"] if i["kind"] == "evidence")
    assert item["attachment_ids"] == [upload_id]
    link = await room.http.get(
        f"{API}/disputes/{dispute['id']}/files/{upload_id}", headers=bearer(room.pro)
    )
    assert link.status_code == 200, link.text
    stranger = await register(room.http)
    hidden = await room.http.get(
        f"{API}/disputes/{dispute['id']}/files/{upload_id}", headers=bearer(stranger)
    )
    assert hidden.status_code == 404
    # A file of the client's that is not on the timeline is not the dispute's to share.
    other = await upload(
        room.http, bearer(room.client), png_bytes(), purpose="attachment", content_type="image/png"
    )
    assert other.status_code == 200, other.text
    outside = await room.http.get(
        f"{API}/disputes/{dispute['id']}/files/{other.json()['id']}", headers=bearer(room.pro)
    )
    assert outside.status_code == 404
    assert outside.json()["code"] == "dispute_not_found"
    not_mine = await court.post(
        f"/disputes/{dispute['id']}/evidence",
        room.pro,
        {"body": "x", "attachment_ids": [upload_id]},
    )
    assert not_mine.status_code == 422
    assert not_mine.json()["code"] == "attachment_not_usable"


async def test_the_delivery_files_are_part_of_the_evidence(court: Court) -> None:
    room = court.room
    milestone = await court.funded(50_000, deliver=False)
    photo = await upload(
        room.http, bearer(room.pro), png_bytes(), purpose="attachment", content_type="image/png"
    )
    assert photo.status_code == 200, photo.text
    photo_id = photo.json()["id"]
    await room.ok(
        milestone, "submit", room.pro, note="Gata.", dod_done=[0, 1], attachment_ids=[photo_id]
    )
    opened = await court.open(milestone)
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    delivery = next(i for i in dispute["timeline"] if i["kind"] == "delivery")
    assert delivery["attachment_ids"] == [photo_id]
    link = await room.http.get(
        f"{API}/disputes/{dispute['id']}/files/{photo_id}", headers=bearer(room.client)
    )
    assert link.status_code == 200, link.text
    assert link.json()["id"] == photo_id


async def test_desk_queue_by_stage_and_age(court: Court) -> None:
    room, staff = court.room, court.room.staff
    _, first = await court.opened(20_000)
    _, second = await court.opened(30_000)
    await court.escalate(second, room.client)
    queue = await room.http.get(f"{API}/admin/disputes", headers=bearer(staff))
    assert [d["id"] for d in queue.json()["items"]] == [first["id"], second["id"]]
    mediation = await room.http.get(
        f"{API}/admin/disputes", params={"stage": "mediation"}, headers=bearer(staff)
    )
    assert [d["id"] for d in mediation.json()["items"]] == [second["id"]]
    bad = await room.http.get(
        f"{API}/admin/disputes", params={"stage": "nonsense"}, headers=bearer(staff)
    )
    assert bad.status_code == 422


async def test_the_ladder_is_declared_with_its_timers() -> None:
    names = {t.name for t in DISPUTE_LIFECYCLE.transitions}
    assert names == {
        "escalate",
        "stage_timeout",
        "request_expert",
        "expert_report",
        "expert_timeout",
        "settle",
        "resolve",
    }
    assert DISPUTE_LIFECYCLE.terminal_states() == {"settled", "resolved"}
    assert set(DISPUTE_LIFECYCLE.timers) == {"negotiation", "mediation", "expert_review"}

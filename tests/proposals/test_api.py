"""Proposals through the JSON API: proposing (and every refusal), the client's answers,
counter-offers and revisions, acceptance creating one contract and declining the
competing proposals, and who may see what."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text

from mesteri.contracts.models import Contract
from mesteri.jobs.models import Job
from mesteri.kit import clock
from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import StateTransitionRecord
from mesteri.proposals.models import Proposal, ProposalRevision
from tests.fixtures.market import Party, insert_job, make_client, make_verified_pro, two_milestones
from tests.fixtures.proposals import proposal_body, send_proposal

API = "/api/v1"


async def _outbox(client: httpx.AsyncClient, to: str) -> list[dict[str, Any]]:
    """What was sent to ``to`` about proposals (not the sign-up codes)."""
    response = await client.get(f"{API}/dev/outbox", params={"to": to})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return [item for item in items if item["kind"].startswith("proposal.")]


def _kinds(items: list[dict[str, Any]]) -> list[str]:
    return [item["kind"] for item in items]


async def _count(db: WriteSession, model: Any, **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return int(await db.scalar(query) or 0)


async def _state(db: WriteSession, proposal_id: str) -> str:
    value = await db.scalar(select(Proposal.state).where(Proposal.id == uuid.UUID(proposal_id)))
    return str(value)


async def _market(client: httpx.AsyncClient, db: WriteSession) -> tuple[Party, Party, Job]:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, owner.user_id)
    return owner, pro, job


async def _post(
    client: httpx.AsyncClient, path: str, who: Party, body: Any = None, **kw: Any
) -> httpx.Response:
    return await client.post(f"{API}{path}", json=body, headers=who.headers, **kw)


# ---------------------------------------------------------------- proposing


async def test_verified_pro_proposes_and_the_client_is_told(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    before = clock.now()
    sent = await send_proposal(client, pro.headers, job.id)
    assert sent["state"] == "submitted"
    assert sent["price"] == 100000
    assert sent["currency"] == "RON"
    assert [m["amount"] for m in sent["milestones"]] == [30000, 70000]
    assert sent["revision"] == 1
    assert sent["questions"] == [{"question": "Aveți robinet de trecere la baie?", "answer": None}]
    expires = sent["expires_at"]
    assert before + timedelta(days=14) <= _dt(expires) <= clock.now() + timedelta(days=14)
    await db.refresh(job)
    assert job.proposals_count == 1
    mail = await _outbox(client, owner.email)
    assert _kinds(mail) == ["proposal.received"]
    assert job.title in mail[0]["subject"]
    # The proposal's page: actions from the lifecycle for each side, one revision.
    as_pro = (await client.get(f"{API}/proposals/{sent['id']}", headers=pro.headers)).json()
    assert as_pro["actions"] == ["withdraw", "edit"]
    assert [r["author"] for r in as_pro["revisions"]] == ["pro"]
    as_client = (await client.get(f"{API}/proposals/{sent['id']}", headers=owner.headers)).json()
    assert as_client["actions"] == ["shortlist", "counter", "accept", "decline"]
    assert as_client["pro"]["display_name"] == "Mihai Instalatorul"
    assert as_client["pro"]["verified"] is True


async def _shorten_expiry(db: WriteSession, proposal_id: str) -> None:
    """As if the terms were put on the table 13 days ago (new terms must move it again)."""
    await db.execute(
        text("UPDATE proposals SET expires_at = now() + interval '1 day' WHERE id = :id"),
        {"id": uuid.UUID(proposal_id)},
    )


def _dt(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value)


async def test_unverified_pro_cannot_propose(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner, pro, job = await _market(client, db)
    await db.execute(
        text("UPDATE pro_profiles SET verification_state = 'none' WHERE id = :id"),
        {"id": pro.pro_id},
    )
    response = await _post(client, f"/jobs/{job.id}/proposals", pro, proposal_body())
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "pro_not_verified"
    assert "verified" in problem["detail"]
    assert await _count(db, Proposal, job_id=job.id) == 0
    assert await _outbox(client, owner.email) == []


async def test_a_client_without_pro_profile_cannot_propose(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _owner, _pro, job = await _market(client, db)
    other = await make_client(client)
    response = await _post(client, f"/jobs/{job.id}/proposals", other, proposal_body())
    assert response.status_code == 404  # a client who is no pro does not see the lead
    assert await _count(db, Proposal, job_id=job.id) == 0


async def test_milestones_must_sum_to_the_price(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _owner, pro, job = await _market(client, db)
    body = proposal_body(100000, milestones=two_milestones(90000))
    response = await _post(client, f"/jobs/{job.id}/proposals", pro, body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "milestones_sum_mismatch"
    assert problem["field"] == "milestones"
    assert "900" in problem["detail"]
    assert "1,000" in problem["detail"]
    assert await _count(db, Proposal, job_id=job.id) == 0
    await db.refresh(job)
    assert job.proposals_count == 0


async def test_other_term_refusals(client: httpx.AsyncClient, db: WriteSession) -> None:
    _owner, pro, job = await _market(client, db)
    path = f"/jobs/{job.id}/proposals"
    small = two_milestones(100000)
    small[0]["amount"], small[1]["amount"] = 1000, 99000  # 10 RON < the 50 RON minimum
    cases = [
        (proposal_body(milestones=small), "milestone_amount_too_small", "milestones"),
        (proposal_body(milestones=[]), "milestones_required", "milestones"),
        (proposal_body(currency="EUR"), "currency_mismatch", "currency"),
    ]
    past = two_milestones(100000)
    past[0]["due_date"] = (date.today() - timedelta(days=3)).isoformat()
    cases.append((proposal_body(milestones=past), "due_date_in_past", "milestones"))
    for body, code, field in cases:
        response = await _post(client, path, pro, body)
        assert response.status_code == 422, response.text
        assert (response.json()["code"], response.json()["field"]) == (code, field)
    many = [{"title": f"Etapa {i}", "amount": 5000} for i in range(21)]
    response = await _post(client, path, pro, proposal_body(105000, milestones=many))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert await _count(db, Proposal, job_id=job.id) == 0


async def test_one_live_proposal_per_pro_and_job(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _owner, pro, job = await _market(client, db)
    first = await send_proposal(client, pro.headers, job.id)
    again = await _post(client, f"/jobs/{job.id}/proposals", pro, proposal_body(120000))
    assert again.status_code == 409
    assert again.json()["code"] == "proposal_exists"
    assert await _count(db, Proposal, job_id=job.id) == 1
    # Withdrawn, the pro may propose again.
    withdrawn = await _post(client, f"/proposals/{first['id']}/withdraw", pro)
    assert withdrawn.status_code == 200
    assert withdrawn.json()["state"] == "withdrawn"
    second = await send_proposal(client, pro.headers, job.id, price=120000)
    assert second["id"] != first["id"]
    await db.refresh(job)
    assert job.proposals_count == 2


async def test_a_pro_cannot_propose_on_their_own_job(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, pro.user_id)  # the same person posted the job as a client
    response = await _post(client, f"/jobs/{job.id}/proposals", pro, proposal_body())
    assert response.status_code == 403
    assert response.json()["code"] == "own_job"
    assert await _count(db, Proposal, job_id=job.id) == 0


async def test_no_proposal_on_a_job_that_is_not_open(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, owner.user_id, state="draft")
    response = await _post(client, f"/jobs/{job.id}/proposals", pro, proposal_body())
    assert response.status_code == 404  # a draft is the client's alone
    assert await _count(db, Proposal, job_id=job.id) == 0


async def test_idempotency_key_creates_once(client: httpx.AsyncClient, db: WriteSession) -> None:
    _owner, pro, job = await _market(client, db)
    headers = {**pro.headers, "Idempotency-Key": "propose-1"}
    path = f"{API}/jobs/{job.id}/proposals"
    first = await client.post(path, json=proposal_body(), headers=headers)
    second = await client.post(path, json=proposal_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await _count(db, Proposal, job_id=job.id) == 1


# ---------------------------------------------------------------- who sees what


async def test_lists_and_strangers(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner, pro, job = await _market(client, db)
    rival = await make_verified_pro(client, db)
    mine = await send_proposal(client, pro.headers, job.id)
    theirs = await send_proposal(client, rival.headers, job.id, price=90000)
    # The client sees both, with the pro's card and the fee split.
    listed = (await client.get(f"{API}/jobs/{job.id}/proposals", headers=owner.headers)).json()
    assert [i["id"] for i in listed["items"]] == [mine["id"], theirs["id"]]
    assert listed["next_cursor"] is None
    fees = listed["items"][0]["fees"]
    assert fees["amount"] == 100000
    assert fees["platform_fee"] == 10000
    assert fees["pro_net"] == 90000
    assert listed["items"][1]["pro"]["reviews_count"] == 0
    # A pro sees only their own.
    own = (await client.get(f"{API}/jobs/{job.id}/proposals", headers=pro.headers)).json()
    assert [i["id"] for i in own["items"]] == [mine["id"]]
    # Another pro cannot open it; a stranger (client) cannot list the job's proposals.
    peek = await client.get(f"{API}/proposals/{mine['id']}", headers=rival.headers)
    assert peek.status_code == 404
    assert peek.json()["code"] == "proposal_not_found"
    stranger = await make_client(client)
    response = await client.get(f"{API}/jobs/{job.id}/proposals", headers=stranger.headers)
    assert response.status_code == 404
    for action in ("withdraw", "shortlist", "decline", "accept"):
        response = await _post(client, f"/proposals/{mine['id']}/{action}", stranger)
        assert response.status_code == 404, action
    assert await _state(db, mine["id"]) == "submitted"
    # "My work": the pro's own, by state.
    work = (await client.get(f"{API}/proposals?state=submitted", headers=pro.headers)).json()
    assert [i["id"] for i in work["items"]] == [mine["id"]]
    none = (await client.get(f"{API}/proposals?state=accepted", headers=pro.headers)).json()
    assert none["items"] == []
    bad = await client.get(f"{API}/proposals?state=nonsense", headers=pro.headers)
    assert bad.status_code == 422


async def test_my_proposals_page_through_with_a_cursor(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    ids = []
    for _ in range(3):
        job = await insert_job(db, owner.user_id)
        ids.append((await send_proposal(client, pro.headers, job.id))["id"])
    first = (await client.get(f"{API}/proposals?limit=2", headers=pro.headers)).json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    cursor = first["next_cursor"]
    rest = (
        await client.get(
            f"{API}/proposals", params={"limit": 2, "cursor": cursor}, headers=pro.headers
        )
    ).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]]
    assert rest["next_cursor"] is None


# ---------------------------------------------------------------- editing


async def test_edit_until_the_client_answers(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    await _shorten_expiry(db, sent["id"])
    patch = {"price": 120000, "milestones": two_milestones(120000), "message": "Preț nou."}
    edited = await client.patch(f"{API}/proposals/{sent['id']}", json=patch, headers=pro.headers)
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["price"] == 120000
    assert body["revision"] == 2
    assert body["message"] == "Preț nou."
    assert _dt(body["expires_at"]) >= clock.now() + timedelta(days=14) - timedelta(minutes=1)
    assert [r["price"] for r in body["revisions"]] == [100000, 120000]
    # A price without matching milestones is refused.
    wrong = await client.patch(
        f"{API}/proposals/{sent['id']}", json={"price": 130000}, headers=pro.headers
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "milestones_sum_mismatch"
    # The client cannot edit the pro's proposal.
    forbidden = await client.patch(
        f"{API}/proposals/{sent['id']}", json={"message": "x"}, headers=owner.headers
    )
    assert forbidden.status_code == 403
    # Once the client answered (shortlisted), editing stops.
    assert (await _post(client, f"/proposals/{sent['id']}/shortlist", owner)).status_code == 200
    late = await client.patch(
        f"{API}/proposals/{sent['id']}", json={"message": "Încă ceva"}, headers=pro.headers
    )
    assert late.status_code == 409
    assert late.json()["code"] == "proposal_answered"
    assert await _count(db, ProposalRevision, proposal_id=uuid.UUID(sent["id"])) == 2


# ---------------------------------------------------------------- answers


async def test_shortlist_counter_revise_and_accept_the_counter(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    pid = sent["id"]
    shortlisted = (await _post(client, f"/proposals/{pid}/shortlist", owner)).json()
    assert shortlisted["state"] == "shortlisted"
    assert shortlisted["answered_at"] is not None
    assert shortlisted["actions"] == ["counter", "accept", "decline"]
    # A second shortlist is not possible from shortlisted.
    again = await _post(client, f"/proposals/{pid}/shortlist", owner)
    assert again.status_code == 409
    assert again.json()["code"] == "transition_not_allowed"
    # The counter must add up as well.
    bad = await _post(
        client,
        f"/proposals/{pid}/counter",
        owner,
        {"price": 80000, "milestones": two_milestones(90000)},
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "milestones"
    assert await _state(db, pid) == "shortlisted"
    await _shorten_expiry(db, pid)
    countered = await _post(
        client,
        f"/proposals/{pid}/counter",
        owner,
        {"price": 80000, "milestones": two_milestones(80000), "message": "Mai ieftin?"},
    )
    assert countered.status_code == 200, countered.text
    c = countered.json()
    assert c["state"] == "countered"
    assert c["price"] == 80000
    assert c["revision"] == 2
    assert [r["author"] for r in c["revisions"]] == ["pro", "client"]
    assert _dt(c["expires_at"]) >= clock.now() + timedelta(days=14) - timedelta(minutes=1)
    assert c["actions"] == ["decline"]  # the client waits for the pro (or gives up)
    as_pro = (await client.get(f"{API}/proposals/{pid}", headers=pro.headers)).json()
    assert as_pro["actions"] == ["revise", "accept_counter", "withdraw"]
    assert "proposal.countered" in _kinds(await _outbox(client, pro.email))
    # The pro answers with new terms: submitted again, the client told.
    revised = await _post(
        client,
        f"/proposals/{pid}/revise",
        pro,
        {"price": 90000, "milestones": two_milestones(90000), "duration_days": 12},
    )
    assert revised.status_code == 200, revised.text
    r = revised.json()
    assert (r["state"], r["price"], r["revision"], r["duration_days"]) == (
        "submitted",
        90000,
        3,
        12,
    )
    assert "edit" not in r["actions"]  # answered once: no more editing
    assert "proposal.revised" in _kinds(await _outbox(client, owner.email))
    # The client counters again and the pro accepts the counter: a contract on those terms.
    await _post(
        client,
        f"/proposals/{pid}/counter",
        owner,
        {"price": 85000, "milestones": two_milestones(85000)},
    )
    accepted = await _post(client, f"/proposals/{pid}/accept-counter", pro)
    assert accepted.status_code == 200, accepted.text
    answer = accepted.json()
    assert answer["proposal"]["state"] == "accepted"
    contract = await db.get(Contract, uuid.UUID(answer["contract_id"]))
    assert contract is not None
    assert contract.price == 85000
    await db.refresh(job)
    assert job.state == "in_progress"
    assert job.hired_pro_id == pro.pro_id
    history = (
        await db.scalars(
            select(StateTransitionRecord.transition)
            .where(StateTransitionRecord.entity_id == uuid.UUID(pid))
            .order_by(StateTransitionRecord.at, StateTransitionRecord.id)
        )
    ).all()
    assert list(history) == ["shortlist", "counter", "revise", "counter", "accept_counter"]


async def test_decline_with_a_reason_tells_the_pro(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    # The pro cannot decline their own; the client can, with a reason.
    assert (await _post(client, f"/proposals/{sent['id']}/decline", pro)).status_code == 403
    response = await _post(
        client, f"/proposals/{sent['id']}/decline", owner, {"reason": "Prea scump pentru noi."}
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "declined"
    assert response.json()["decline_reason"] == "Prea scump pentru noi."
    assert response.json()["actions"] == []
    mail = [m for m in await _outbox(client, pro.email) if m["kind"] == "proposal.declined"]
    assert len(mail) == 1
    assert "Prea scump" in mail[0]["body"]
    # Declined is final.
    assert (await _post(client, f"/proposals/{sent['id']}/accept", owner)).status_code == 409


async def test_withdraw_is_the_pros(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    response = await _post(client, f"/proposals/{sent['id']}/withdraw", owner)
    assert response.status_code == 403
    assert response.json()["code"] == "transition_forbidden"
    assert await _state(db, sent["id"]) == "submitted"
    done = await _post(client, f"/proposals/{sent['id']}/withdraw", pro)
    assert done.status_code == 200
    assert done.json()["state"] == "withdrawn"
    twice = await _post(client, f"/proposals/{sent['id']}/withdraw", pro)
    assert twice.status_code == 409


# ---------------------------------------------------------------- acceptance


async def test_accept_hires_declines_the_others_and_is_idempotent(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    rival = await make_verified_pro(client, db)
    third = await make_verified_pro(client, db)
    chosen = await send_proposal(client, pro.headers, job.id)
    other = await send_proposal(client, rival.headers, job.id, price=90000)
    gone = await send_proposal(client, third.headers, job.id, price=95000)
    await _post(client, f"/proposals/{gone['id']}/withdraw", third)
    # The pro cannot accept their own proposal: accepting is the client's.
    own = await _post(client, f"/proposals/{chosen['id']}/accept", pro)
    assert own.status_code == 403
    assert own.json()["code"] == "transition_forbidden"
    assert await _state(db, chosen["id"]) == "submitted"
    assert await _count(db, Contract, job_id=job.id) == 0
    accepted = await _post(client, f"/proposals/{chosen['id']}/accept", owner)
    assert accepted.status_code == 200, accepted.text
    answer = accepted.json()
    contract_id = answer["contract_id"]
    assert answer["proposal"]["state"] == "accepted"
    assert answer["proposal"]["contract_id"] == contract_id
    # The competing live proposal was declined by the system, its author told.
    declined = await db.get(Proposal, uuid.UUID(other["id"]), populate_existing=True)
    assert declined is not None
    assert declined.state == "declined"
    assert declined.decline_reason == "another proposal was accepted"
    actor = await db.scalar(
        select(StateTransitionRecord.actor).where(
            StateTransitionRecord.entity_id == declined.id,
            StateTransitionRecord.transition == "decline",
        )
    )
    assert actor == "system"
    assert "proposal.declined" in _kinds(await _outbox(client, rival.email))
    # The withdrawn one stays withdrawn; nothing was sent to its author about it.
    assert await _state(db, gone["id"]) == "withdrawn"
    assert "proposal.declined" not in _kinds(await _outbox(client, third.email))
    await db.refresh(job)
    assert job.state == "in_progress"
    assert job.hired_pro_id == pro.pro_id
    # Accepting again answers with the same contract; nothing new is created.
    again = await _post(client, f"/proposals/{chosen['id']}/accept", owner)
    assert again.status_code == 200
    assert again.json()["contract_id"] == contract_id
    assert await _count(db, Contract, job_id=job.id) == 1
    # The pro still cannot "accept", even now.
    assert (await _post(client, f"/proposals/{chosen['id']}/accept", pro)).status_code == 403
    # A proposal on a job that hired is refused.
    late = await make_verified_pro(client, db)
    response = await _post(client, f"/jobs/{job.id}/proposals", late, proposal_body())
    assert response.status_code == 404  # no longer on the lead board for other pros


async def test_accept_with_an_idempotency_key_replays(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    headers = {**owner.headers, "Idempotency-Key": "accept-1"}
    first = await client.post(f"{API}/proposals/{sent['id']}/accept", headers=headers)
    second = await client.post(f"{API}/proposals/{sent['id']}/accept", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["contract_id"] == second.json()["contract_id"]
    assert await _count(db, Contract, job_id=job.id) == 1


async def test_an_expired_proposal_cannot_be_accepted_before_its_timer_runs(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    await db.execute(
        text("UPDATE proposals SET expires_at = now() - interval '1 minute' WHERE id = :id"),
        {"id": uuid.UUID(sent["id"])},
    )
    as_client = (await client.get(f"{API}/proposals/{sent['id']}", headers=owner.headers)).json()
    assert "accept" not in as_client["actions"]
    response = await _post(client, f"/proposals/{sent['id']}/accept", owner)
    assert response.status_code == 409
    assert await _count(db, Contract, job_id=job.id) == 0


async def test_cancelling_the_job_declines_its_live_proposals(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, pro, job = await _market(client, db)
    rival = await make_verified_pro(client, db)
    first = await send_proposal(client, pro.headers, job.id)
    second = await send_proposal(client, rival.headers, job.id, price=90000)
    await _post(client, f"/proposals/{second['id']}/withdraw", rival)
    response = await _post(client, f"/jobs/{job.id}/cancel", owner)
    assert response.status_code == 200, response.text
    declined = await db.get(Proposal, uuid.UUID(first["id"]), populate_existing=True)
    assert declined is not None
    assert declined.state == "declined"
    assert declined.decline_reason == "the client cancelled the job"
    mail = [m for m in await _outbox(client, pro.email) if m["kind"] == "proposal.declined"]
    assert len(mail) == 1
    assert "cancelled the job" in mail[0]["body"]
    assert await _state(db, second["id"]) == "withdrawn"
    assert "proposal.declined" not in _kinds(await _outbox(client, rival.email))


async def test_a_job_that_expired_closes_its_proposals_once(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    from mesteri.jobs.events import JobClosed
    from mesteri.kit import events

    _owner, pro, job = await _market(client, db)
    sent = await send_proposal(client, pro.headers, job.id)
    await events.publish(db, JobClosed(job.id, "expired"))
    await events.publish(db, JobClosed(job.id, "expired"))  # a replay changes nothing
    proposal = await db.get(Proposal, uuid.UUID(sent["id"]), populate_existing=True)
    assert proposal is not None
    assert proposal.state == "declined"
    assert proposal.decline_reason == "the job expired without a hire"
    mail = [m for m in await _outbox(client, pro.email) if m["kind"] == "proposal.declined"]
    assert len(mail) == 1
    assert "expired" in mail[0]["body"]

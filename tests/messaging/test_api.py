"""Conversations through the API, on the real app and database: opened by a proposal or
an invite, quote and system messages, masking before hire and none after signing, who
may read, paging back in time, edits with history, read receipts, retries, attachments
and the staff reading of a disputed job room."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import WriteSession
from mesteri.kit.realtime import RealtimeEvent
from mesteri.messaging.masking import MARKER
from mesteri.messaging.models import Message
from tests.fixtures.contracts import make_contract, sign_both
from tests.fixtures.market import Party, insert_job, make_client, make_verified_pro, two_milestones
from tests.fixtures.pros import png_bytes, staff_headers, upload

API = "/api/v1"
PHONE = "Sună-mă la 0721 234 567 sau scrie-mi la ana.pop@gmail.com"


async def _propose(
    client: httpx.AsyncClient, job_id: uuid.UUID, pro: Party, **extra: Any
) -> dict[str, Any]:
    body = {
        "price": 100000,
        "currency": "RON",
        "message": "Pot începe luni. Sunați-mă: 0744 123 456",
        "duration_days": 10,
        "milestones": two_milestones(100000),
        **extra,
    }
    response = await client.post(f"{API}/jobs/{job_id}/proposals", json=body, headers=pro.headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _only_conversation(client: httpx.AsyncClient, party: Party) -> dict[str, Any]:
    response = await client.get(f"{API}/conversations", headers=party.headers)
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    data: dict[str, Any] = item
    return data


async def _messages(client: httpx.AsyncClient, party: Party, cid: str, **params: Any) -> list[Any]:
    response = await client.get(
        f"{API}/conversations/{cid}/messages", headers=party.headers, params=params
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def _send(
    client: httpx.AsyncClient, party: Party, cid: str, body: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/conversations/{cid}/messages", json={"body": body, **extra}, headers=party.headers
    )


@pytest.fixture
async def talk(client: httpx.AsyncClient, db: WriteSession) -> tuple[Party, Party, dict[str, Any]]:
    """A client and a pro who proposed on the client's job: their conversation."""
    buyer = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, buyer.user_id)
    await _propose(client, job.id, pro)
    return buyer, pro, await _only_conversation(client, buyer)


async def test_a_proposal_opens_the_conversation_with_its_terms_as_a_quote(
    client: httpx.AsyncClient, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    assert conversation["kind"] == "job"
    assert conversation["masked"] is True
    assert {p["role"]: p["user_id"] for p in conversation["participants"]} == {
        "client": str(buyer.user_id),
        "pro": str(pro.user_id),
    }
    assert conversation["unread"] == 1  # the quote, for the client
    assert (await _only_conversation(client, pro))["unread"] == 0  # the pro wrote it
    (quote,) = await _messages(client, buyer, conversation["id"])
    assert quote["kind"] == "quote"
    assert quote["sender_id"] == str(pro.user_id)
    assert quote["data"]["price"] == 100000
    assert [m["amount"] for m in quote["data"]["milestones"]] == [30000, 70000]
    # The proposal's own message is masked like any other before hire.
    assert quote["body"] == f"Pot începe luni. Sunați-mă: {MARKER}"
    assert quote["masked"] is True
    assert quote["mask_kinds"] == ["phone"]


async def test_contact_details_are_hidden_before_hire_and_the_sender_is_told(
    client: httpx.AsyncClient, db: WriteSession, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    sent = await _send(client, buyer, conversation["id"], PHONE)
    assert sent.status_code == 201, sent.text
    answer = sent.json()
    assert answer["body"] == f"Sună-mă la {MARKER} sau scrie-mi la {MARKER}"
    assert answer["masked"] is True
    assert answer["mask_kinds"] == ["email", "phone"]
    assert "hidden until you both sign a contract" in answer["notice"]
    # The pro never receives the number, not even in the live event; staff keep it.
    seen_by_pro = (await _messages(client, pro, conversation["id"]))[0]
    assert seen_by_pro["body"] == answer["body"]
    stored = await db.get(Message, uuid.UUID(answer["id"]))
    assert stored is not None
    assert stored.original_body == PHONE
    events = (
        await db.scalars(select(RealtimeEvent).where(RealtimeEvent.user_id == pro.user_id))
    ).all()
    assert events
    assert all("0721" not in str(e.data) for e in events)
    assert any(e.data.get("id") == answer["id"] for e in events)
    clean = await _send(client, pro, conversation["id"], "Mulțumesc, trec mâine la 14:30.")
    assert clean.json()["masked"] is False
    assert clean.json()["notice"] is None


async def test_nothing_is_masked_once_the_contract_is_signed(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(client, db)
    await sign_both(client, deal)
    room = await _only_conversation(client, deal.client)
    assert room["kind"] == "contract"
    assert room["contract_id"] == str(deal.contract.id)
    assert room["masked"] is False
    sent = await _send(client, deal.client, room["id"], PHONE)
    assert sent.status_code == 201, sent.text
    assert sent.json()["body"] == PHONE
    assert sent.json()["masked"] is False
    events = [m["data"].get("event") for m in await _messages(client, deal.pro, room["id"])]
    assert "contract.active" in events
    assert "contract.created" in events


async def test_the_job_room_before_signing_is_masked_too(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(client, db)
    room = await _only_conversation(client, deal.client)
    assert room["masked"] is True
    sent = await _send(client, deal.pro, room["id"], "wa.me/40721234567")
    assert sent.json()["body"] == MARKER


async def test_only_the_two_parties_read_a_conversation(
    client: httpx.AsyncClient, db: WriteSession, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    _buyer, _pro, conversation = talk
    stranger = await make_client(client)
    cid = conversation["id"]
    assert (
        await client.get(f"{API}/conversations/{cid}", headers=stranger.headers)
    ).status_code == 404
    listed = await client.get(f"{API}/conversations/{cid}/messages", headers=stranger.headers)
    assert listed.status_code == 404
    assert (await _send(client, stranger, cid, "Salut")).status_code == 404
    assert (await client.get(f"{API}/conversations", headers=stranger.headers)).json()[
        "items"
    ] == []
    # Staff read only a disputed job room: this one has no contract.
    staff = await staff_headers(client, db)
    staff_read = await client.get(f"{API}/admin/conversations/{cid}/messages", headers=staff)
    assert staff_read.status_code == 403
    assert staff_read.json()["code"] == "no_dispute"


async def test_staff_read_a_disputed_job_room_as_written_and_it_is_audited(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(client, db)
    room = await _only_conversation(client, deal.client)
    await _send(client, deal.client, room["id"], PHONE)
    staff = await staff_headers(client, db)
    assert (
        await client.get(f"{API}/admin/conversations/{room['id']}/messages", headers=staff)
    ).status_code == 403
    await db.execute(
        text(
            "INSERT INTO disputes (id, milestone_id, contract_id, hold_id, client_id, "
            "pro_user_id, opened_by, opened_by_role, reason, currency, amount_held, "
            "amount_disputed, milestone_state, stage, stage_started_at, opened_at, updated_at) "
            "SELECT gen_random_uuid(), m.id, m.contract_id, gen_random_uuid(), m.client_id, "
            "m.pro_user_id, m.client_id, 'client', 'Lucrare neterminată', m.currency, m.amount, "
            "m.amount, 'funded', 'negotiation', now(), now(), now() "
            "FROM milestones m WHERE m.contract_id = :c ORDER BY m.position LIMIT 1"
        ),
        {"c": deal.contract.id},
    )
    read = await client.get(f"{API}/admin/conversations/{room['id']}/messages", headers=staff)
    assert read.status_code == 200, read.text
    texts = [m for m in read.json()["items"] if m["kind"] == "text"]
    assert texts[0]["original_body"] == PHONE
    assert texts[0]["body"].count(MARKER) == 2
    audited = await db.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "conversation.viewed",
            AuditEntry.subject_id == uuid.UUID(room["id"]),
        )
    )
    assert audited is not None


async def test_messages_page_backwards_and_catch_up_after_a_number(
    client: httpx.AsyncClient, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    cid = conversation["id"]
    for n in range(1, 8):
        assert (await _send(client, buyer if n % 2 else pro, cid, f"mesaj {n}")).status_code == 201
    first = await client.get(
        f"{API}/conversations/{cid}/messages", headers=pro.headers, params={"limit": 3}
    )
    page = first.json()
    assert [m["body"] for m in page["items"]] == ["mesaj 7", "mesaj 6", "mesaj 5"]
    rest, cursor = [], page["next_cursor"]
    while cursor:
        more = await client.get(
            f"{API}/conversations/{cid}/messages",
            headers=pro.headers,
            params={"limit": 3, "cursor": cursor},
        )
        rest += more.json()["items"]
        cursor = more.json()["next_cursor"]
    seqs = [m["seq"] for m in page["items"] + rest]
    assert seqs == list(range(8, 0, -1))  # every message once, the quote first of all
    after = await _messages(client, pro, cid, after=5)
    assert [m["seq"] for m in after] == [6, 7, 8]


async def test_edit_and_delete_keep_the_history(
    client: httpx.AsyncClient, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    sent = (await _send(client, buyer, conversation["id"], "Vin la 9.")).json()
    mid = sent["id"]
    assert (
        await client.patch(
            f"{API}/messages/{mid}", json={"body": "Vin la 10."}, headers=pro.headers
        )
    ).status_code == 403
    edited = await client.patch(
        f"{API}/messages/{mid}",
        json={"body": "Vin la 10, sunați 0722 111 222"},
        headers=buyer.headers,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["body"] == f"Vin la 10, sunați {MARKER}"
    assert edited.json()["edited_at"] is not None
    deleted = await client.delete(f"{API}/messages/{mid}", headers=buyer.headers)
    assert deleted.json()["deleted"] is True
    assert deleted.json()["body"] == ""
    shown = next(m for m in await _messages(client, pro, conversation["id"]) if m["id"] == mid)
    assert shown["deleted"] is True
    assert shown["body"] == ""
    history = await client.get(f"{API}/messages/{mid}/history", headers=buyer.headers)
    assert [(h["action"], h["body"]) for h in history.json()] == [
        ("edit", "Vin la 9."),
        ("delete", f"Vin la 10, sunați {MARKER}"),
    ]
    assert all(h["original_body"] is None for h in history.json())
    assert (
        await client.get(f"{API}/messages/{mid}/history", headers=pro.headers)
    ).status_code == 404
    again = await client.patch(f"{API}/messages/{mid}", json={"body": "x"}, headers=buyer.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "message_not_editable"


async def test_read_receipts_move_the_unread_count(
    client: httpx.AsyncClient, db: WriteSession, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    cid = conversation["id"]
    ids = [(await _send(client, pro, cid, f"{n}")).json()["id"] for n in range(3)]
    assert (await client.get(f"{API}/conversations/unread", headers=buyer.headers)).json() == {
        "conversations": 1,
        "messages": 4,
    }
    read = await client.post(f"{API}/messages/{ids[1]}/read", headers=buyer.headers)
    assert read.status_code == 200, read.text
    assert read.json()["unread"] == 1
    assert read.json()["last_read_seq"] == 3
    older = await client.post(f"{API}/messages/{ids[0]}/read", headers=buyer.headers)
    assert older.json()["last_read_seq"] == 3  # reading an older one changes nothing
    events = (
        await db.scalars(
            select(RealtimeEvent).where(
                RealtimeEvent.user_id == pro.user_id, RealtimeEvent.type == "message.read"
            )
        )
    ).all()
    assert [e.data["seq"] for e in events] == [3]
    assert (await client.post(f"{API}/messages/{ids[2]}/read", headers=buyer.headers)).json()[
        "unread"
    ] == 0
    stranger = await make_client(client)
    assert (
        await client.post(f"{API}/messages/{ids[2]}/read", headers=stranger.headers)
    ).status_code == 404


async def test_a_retry_with_the_same_client_token_posts_once(
    client: httpx.AsyncClient, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, _pro, conversation = talk
    first = await _send(client, buyer, conversation["id"], "Bună ziua", client_token="abc-1")
    second = await _send(client, buyer, conversation["id"], "Bună ziua", client_token="abc-1")
    assert first.json()["id"] == second.json()["id"]
    assert len(await _messages(client, buyer, conversation["id"])) == 2  # the quote and one


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"body": ""}, "empty_message"),
        ({"body": "   "}, "empty_message"),
        ({"body": "x" * 4001}, "validation_error"),
        ({"body": "ok", "extra": 1}, "validation_error"),
        ({"body": "ok", "attachment_ids": ["not-a-uuid"]}, "validation_error"),
        ({"body": "ok", "attachment_ids": [str(uuid.uuid4())]}, "attachment_not_usable"),
        ({"body": "a\x00b"}, None),  # NUL dropped, not a 500
    ],
)
async def test_bad_messages_get_clear_errors(
    client: httpx.AsyncClient,
    talk: tuple[Party, Party, dict[str, Any]],
    body: dict[str, Any],
    code: str | None,
) -> None:
    buyer, _pro, conversation = talk
    response = await client.post(
        f"{API}/conversations/{conversation['id']}/messages", json=body, headers=buyer.headers
    )
    if code is None:
        assert response.status_code == 201
        assert response.json()["body"] == "ab"
    else:
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code


async def test_attachments_are_shared_with_the_other_party_only(
    client: httpx.AsyncClient, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    done = await upload(
        client,
        buyer.headers,
        png_bytes(),
        purpose="attachment",
        content_type="image/png",
        filename="baie.png",
    )
    upload_id = done.json()["id"]
    sent = await _send(client, buyer, conversation["id"], "", attachment_ids=[upload_id])
    assert sent.status_code == 201, sent.text
    (file,) = sent.json()["attachments"]
    assert file["filename"] == "baie.png"
    assert file["content_type"] == "image/png"
    link = await client.get(file["url"], headers=pro.headers)
    assert link.status_code == 302
    assert (await client.get(link.headers["location"])).content == png_bytes()
    stranger = await make_client(client)
    assert (await client.get(file["url"], headers=stranger.headers)).status_code == 404
    # Someone else's upload cannot be attached.
    theirs = await _send(client, pro, conversation["id"], "", attachment_ids=[upload_id])
    assert theirs.status_code == 422
    assert theirs.json()["code"] == "attachment_not_usable"


async def test_start_finds_the_conversation_only_between_known_parties(
    client: httpx.AsyncClient, db: WriteSession, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    buyer, pro, conversation = talk
    job_id = conversation["job_id"]
    found = await client.post(
        f"{API}/conversations",
        json={"job_id": job_id, "pro_id": str(pro.pro_id)},
        headers=buyer.headers,
    )
    assert found.status_code == 200
    assert found.json()["id"] == conversation["id"]
    mine = await client.post(f"{API}/conversations", json={"job_id": job_id}, headers=pro.headers)
    assert mine.json()["id"] == conversation["id"]
    other_pro = await make_verified_pro(client, db)
    refused = await client.post(
        f"{API}/conversations", json={"job_id": job_id}, headers=other_pro.headers
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "no_conversation"
    invited = await client.post(
        f"{API}/jobs/{job_id}/invites",
        json={"pro_ids": [str(other_pro.pro_id)], "message": "Ne puteți ajuta?"},
        headers=buyer.headers,
    )
    assert invited.status_code in (200, 201), invited.text
    room = await client.post(
        f"{API}/conversations", json={"job_id": job_id}, headers=other_pro.headers
    )
    assert room.status_code == 200, room.text
    said = await _messages(client, other_pro, room.json()["id"])
    assert [m["kind"] for m in said] == ["text", "system"]
    assert said[0]["body"] == "Ne puteți ajuta?"
    assert said[1]["data"]["event"] == "job.invited"


async def test_hiring_closes_the_other_conversations_and_moves_to_the_job_room(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    buyer = await make_client(client)
    hired = await make_verified_pro(client, db)
    other = await make_verified_pro(client, db)
    job = await insert_job(db, buyer.user_id)
    proposal = await _propose(client, job.id, hired)
    await _propose(client, job.id, other)
    accepted = await client.post(f"{API}/proposals/{proposal['id']}/accept", headers=buyer.headers)
    assert accepted.status_code == 200, accepted.text
    contract_id = accepted.json()["contract_id"]
    for party, name in ((buyer, "Ana Pop"), (hired, "Mihai Ionescu")):
        signed = await client.post(
            f"{API}/contracts/{contract_id}/sign",
            json={"full_name": name, "agree": True},
            headers=party.headers,
        )
        assert signed.status_code == 200, signed.text
    lost = await _only_conversation(client, other)
    assert lost["state"] == "closed"
    assert lost["closed_reason"] == "job_filled"
    assert (await _send(client, other, lost["id"], "Mai e valabil?")).json()[
        "code"
    ] == "conversation_closed"
    rooms = (await client.get(f"{API}/conversations", headers=hired.headers)).json()["items"]
    assert {(r["kind"], r["state"]) for r in rooms} == {("contract", "open"), ("job", "closed")}
    before = next(r for r in rooms if r["kind"] == "job")
    assert before["closed_reason"] == "moved_to_contract"


async def test_posting_a_message_runs_a_fixed_number_of_statements(
    app: Any, client: httpx.AsyncClient, engine: Any, talk: tuple[Party, Party, dict[str, Any]]
) -> None:
    """The hot path of chat: what one message costs the database, statement by statement.
    Asserted exactly, so an added query is a decision, not an accident."""
    from tests.conftest import count_queries

    buyer, _pro, conversation = talk
    await _send(client, buyer, conversation["id"], "încălzire")  # the pro's alert is due
    driver = app.state.fast_statements.statements
    driver.clear()
    with count_queries(engine) as statements:
        sent = await _send(client, buyer, conversation["id"], "Bună ziua")
    assert sent.status_code == 201
    through_orm = [s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))]
    # Nothing through the ORM; through the driver (besides authentication's lookup) one
    # statement, its own transaction: the conversation's number (its row lock), the
    # message, both members' unread and inbox order, the pro's "unread" alert unless
    # online (there already, so no second job), the two stream numbers and events.
    assert through_orm == [], through_orm
    assert [s.split()[0] for s in driver if "numbered" in s] == ["WITH"], driver


async def test_the_proposal_itself_hides_contact_details_until_accepted(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    buyer = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, buyer.user_id)
    proposal = await _propose(client, job.id, pro)
    assert proposal["message"] == f"Pot începe luni. Sunați-mă: {MARKER}"
    seen = await client.get(f"{API}/proposals/{proposal['id']}", headers=buyer.headers)
    assert seen.json()["message"] == f"Pot începe luni. Sunați-mă: {MARKER}"
    assert "0744" not in seen.text
    accepted = await client.post(f"{API}/proposals/{proposal['id']}/accept", headers=buyer.headers)
    assert accepted.status_code == 200, accepted.text
    hired = await client.get(f"{API}/proposals/{proposal['id']}", headers=buyer.headers)
    assert hired.json()["message"] == "Pot începe luni. Sunați-mă: 0744 123 456"

"""The WebSocket ``/ws`` on a real server: authentication, live delivery to both parties
and to nobody else, resume with exactly the missed events, order under concurrent
senders, typing, presence, and sign-out closing the socket."""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import asyncpg  # type: ignore[import-untyped]
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from mesteri.kit.realtime import CLOSE_AUTH, CLOSE_SESSION_ENDED
from mesteri.kit.realtime.brokers import CHANNEL
from mesteri.messaging import service
from mesteri.messaging.models import MessageKind
from mesteri.messaging.schemas import MAX_BODY
from tests.conftest import PASSWORD
from tests.fixtures.chat import Chat, Socket, make_chat, post
from tests.messaging.conftest import Served

API = "/api/v1"


@pytest.fixture
async def chat(served: Served) -> Chat:
    return await make_chat(served.http, served.database_url)


def _ws_url(served: Served) -> str:
    return served.base_url.replace("http", "ws", 1) + "/ws"


async def web_session(served: Served, email: str) -> str:
    """Sign in through the page (CSRF token and all); the session cookie's value."""
    form = await served.http.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    signed = await served.http.post(
        "/signin",
        data={"login": email, "password": PASSWORD, "csrf_token": token.group(1)},
        headers={"Cookie": f"mesteri_csrf={form.cookies['mesteri_csrf']}"},
    )
    assert signed.status_code == 303, signed.text
    return str(signed.cookies["mesteri_session"])


async def _closed_with(ws: object, code: int) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 10)  # type: ignore[attr-defined]
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


async def test_a_socket_needs_a_valid_token_or_this_sites_cookie(
    served: Served, chat: Chat
) -> None:
    async with connect(_ws_url(served)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "not-a-token"}))
        await _closed_with(ws, CLOSE_AUTH)
    async with connect(_ws_url(served)) as ws:
        await ws.send("hello?")
        await _closed_with(ws, CLOSE_AUTH)
    # The session cookie counts only from this site's own pages.
    cookie = await web_session(served, chat.client.email)
    foreign = {"Cookie": f"mesteri_session={cookie}", "Origin": "https://evil.example"}
    async with connect(_ws_url(served), additional_headers=foreign) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        await _closed_with(ws, CLOSE_AUTH)
    own = {"Cookie": f"mesteri_session={cookie}", "Origin": served.base_url}
    async with connect(_ws_url(served), additional_headers=own) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ready["type"] == "ready"
        assert ready["data"]["user_id"] == chat.client.user_id
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"


async def test_a_message_reaches_both_parties_and_nobody_else(served: Served, chat: Chat) -> None:
    other = await make_chat(served.http, served.database_url)
    pro = await Socket.open(served.base_url, chat.pro.token)
    client = await Socket.open(served.base_url, chat.client.token)
    stranger = await Socket.open(served.base_url, other.client.token)
    sent = await post(served.http, chat.client, chat.conversation_id, "Vă aștept la 10.")
    (event,) = await pro.wait_for("message.new")
    assert event["data"]["id"] == sent["id"]
    assert event["data"]["body"] == "Vă aștept la 10."
    assert (await client.wait_for("message.new"))[0]["data"]["id"] == sent["id"]
    # The stranger's own conversation still reaches them; the first one never did.
    mine = await post(served.http, other.pro, other.conversation_id, "Bună!")
    (theirs,) = await stranger.wait_for("message.new")
    assert theirs["data"]["id"] == mine["id"]
    assert not [f for f in stranger.frames if chat.conversation_id in json.dumps(f)]
    for socket in (pro, client, stranger):
        await socket.close()


async def test_a_message_too_long_for_a_notify_payload_still_arrives_whole(
    served: Served, chat: Chat
) -> None:
    """PostgreSQL refuses NOTIFY payloads of 8000 bytes: the statement sends a reference
    instead and the receiving process reads the event from the reader's stream."""
    pro = await Socket.open(served.base_url, chat.pro.token)
    body = "Deviz: " + "ș" * (MAX_BODY - 7)  # two bytes a letter: over 8000 bytes in all
    sent = await post(served.http, chat.client, chat.conversation_id, body)
    (event,) = await pro.wait_for("message.new")
    assert event["data"]["id"] == sent["id"]
    assert event["data"]["body"] == body
    await pro.close()


async def test_a_reconnecting_client_gets_exactly_what_it_missed(
    served: Served, chat: Chat
) -> None:
    pro = await Socket.open(served.base_url, chat.pro.token)
    await post(served.http, chat.client, chat.conversation_id, "unu")
    await pro.wait_for("message.new")
    seen = pro.last_id
    await pro.close()
    missed = [
        (await post(served.http, chat.client, chat.conversation_id, text))["id"]
        for text in ("doi", "trei", "patru")
    ]
    back = await Socket.open(served.base_url, chat.pro.token, resume=seen)
    assert back.ready["data"]["resumed"] is True
    await back.wait_for("message.new", 3)
    live = await post(served.http, chat.client, chat.conversation_id, "cinci")
    frames = await back.wait_for("message.new", 4)
    assert [f["data"]["id"] for f in frames] == [*missed, live["id"]]
    ids = [f["id"] for f in back.frames if "id" in f]
    assert ids == list(range(seen + 1, seen + 1 + len(ids)))  # no gap, nothing twice
    await back.close()


async def test_an_unknown_resume_point_starts_afresh(served: Served, chat: Chat) -> None:
    socket = await Socket.open(served.base_url, chat.pro.token, resume=10**9)
    assert socket.ready["data"]["resumed"] is False
    await socket.wait_for("resync")
    await socket.close()


async def test_order_per_conversation_holds_under_concurrent_senders(
    served: Served, chat: Chat
) -> None:
    watcher = await Socket.open(served.base_url, chat.client.token)
    sends = [
        post(served.http, user, chat.conversation_id, f"{who}-{n}")
        for n in range(15)
        for user, who in ((chat.client, "c"), (chat.pro, "p"))
    ]
    answers = await asyncio.gather(*sends)
    frames = await watcher.wait_for("message.new", len(answers))
    seqs = [f["data"]["seq"] for f in frames]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(answers)
    assert sorted(a["seq"] for a in answers) == seqs
    ids = [f["id"] for f in watcher.frames if "id" in f]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    await watcher.close()


async def test_typing_reaches_the_other_party_only(served: Served, chat: Chat) -> None:
    other = await make_chat(served.http, served.database_url)
    client = await Socket.open(served.base_url, chat.client.token)
    pro = await Socket.open(served.base_url, chat.pro.token)
    intruder = await Socket.open(served.base_url, other.pro.token)
    await intruder.send({"type": "typing", "conversation_id": chat.conversation_id})
    await pro.send({"type": "typing", "conversation_id": chat.conversation_id})
    (typing,) = await client.wait_for("typing")
    assert typing["data"] == {
        "conversation_id": chat.conversation_id,
        "user_id": chat.pro.user_id,
        "typing": True,
    }
    await pro.send({"type": "typing", "conversation_id": chat.conversation_id, "typing": False})
    stopped = await client.wait_for("typing", 2)
    assert stopped[1]["data"]["typing"] is False
    assert pro.of("typing") == []  # not echoed to the typist
    await intruder.send({"type": "typing", "conversation_id": "not-an-id"})
    assert (await intruder.wait_for("error"))[0]["data"]["code"] == "bad_frame"
    for socket in (client, pro, intruder):
        await socket.close()


async def test_presence_online_and_offline_with_last_seen(served: Served, chat: Chat) -> None:
    client = await Socket.open(served.base_url, chat.client.token)
    pro = await Socket.open(served.base_url, chat.pro.token)
    (online,) = await client.wait_for("presence")
    assert online["data"]["user_id"] == chat.pro.user_id
    assert online["data"]["status"] == "online"
    listed = await served.http.get(
        f"{API}/conversations/{chat.conversation_id}", headers=chat.client.headers
    )
    pro_side = next(p for p in listed.json()["participants"] if p["role"] == "pro")
    assert pro_side["online"] is True
    await pro.close()
    offline = (await client.wait_for("presence", 2))[1]
    assert offline["data"]["status"] == "offline"
    assert offline["data"]["last_seen_at"]
    listed = await served.http.get(
        f"{API}/conversations/{chat.conversation_id}", headers=chat.client.headers
    )
    pro_side = next(p for p in listed.json()["participants"] if p["role"] == "pro")
    assert pro_side["online"] is False
    assert pro_side["last_seen_at"] is not None
    await client.close()


async def test_only_a_reader_who_is_away_gets_an_unread_alert(served: Served, chat: Chat) -> None:
    import asyncpg

    async def alerted(sql: str = "SELECT user_id FROM message_alerts") -> set[str]:
        conn = await asyncpg.connect(served.database_url)
        try:
            rows = await conn.fetch(sql)
        finally:
            await conn.close()
        return {str(r["user_id"]) for r in rows}

    await alerted("DELETE FROM message_alerts RETURNING user_id")  # the proposal's
    client = await Socket.open(served.base_url, chat.client.token)
    await post(served.http, chat.pro, chat.conversation_id, "Vă scriu acum")
    assert chat.client.user_id not in await alerted()  # reading live
    await client.close()
    await post(served.http, chat.pro, chat.conversation_id, "Și încă ceva")
    assert chat.client.user_id in await alerted()


async def test_signing_out_closes_the_open_socket(served: Served, chat: Chat) -> None:
    socket = await Socket.open(served.base_url, chat.pro.token)
    out = await served.http.post(f"{API}/auth/logout", json={}, headers=chat.pro.headers)
    assert out.status_code == 204, out.text
    await asyncio.wait_for(socket._reader, 10)
    assert socket.ws.close_code == CLOSE_SESSION_ENDED


async def test_messages_can_be_sent_over_the_socket(served: Served, chat: Chat) -> None:
    other = await make_chat(served.http, served.database_url)
    pro = await Socket.open(served.base_url, chat.pro.token)
    client = await Socket.open(served.base_url, chat.client.token)
    await pro.send(
        {
            "type": "send",
            "ref": "r1",
            "conversation_id": chat.conversation_id,
            "body": "Sunați la 0721 234 567",
            "client_token": "t-1",
        }
    )
    (sent,) = await pro.wait_for("sent")
    assert sent["data"]["ref"] == "r1"
    message = sent["data"]["message"]
    assert message["body"] == "Sunați la •••"
    assert message["notice"] is not None
    (arrived,) = await client.wait_for("message.new")
    assert arrived["data"]["id"] == message["id"]
    # The same client token again: the first message, not a second one.
    await pro.send(
        {
            "type": "send",
            "ref": "r2",
            "conversation_id": chat.conversation_id,
            "body": "x",
            "client_token": "t-1",
        }
    )
    again = (await pro.wait_for("sent", 2))[1]
    assert again["data"]["message"]["id"] == message["id"]
    # Someone else's conversation, and frames that are not a message.
    await pro.send(
        {"type": "send", "ref": "r3", "conversation_id": other.conversation_id, "body": "Bună"}
    )
    await pro.send({"type": "send", "ref": "r4", "conversation_id": "nope", "body": "Bună"})
    await pro.send(
        {"type": "send", "ref": "r5", "conversation_id": chat.conversation_id, "body": ""}
    )
    errors = {e["data"]["ref"]: e["data"]["code"] for e in await pro.wait_for("error", 3)}
    assert errors == {"r3": "conversation_not_found", "r4": "bad_frame", "r5": "empty_message"}
    listed = await served.http.get(
        f"{API}/conversations/{chat.conversation_id}/messages", headers=chat.client.headers
    )
    assert [m["id"] for m in listed.json()["items"] if m["kind"] == "text"] == [message["id"]]
    for socket in (pro, client):
        await socket.close()


async def _until_one_waits_for_a_lock(database_url: str) -> None:
    watcher = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(10):
            while True:  # until one waits; the timeout ends a hang
                if await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                ):
                    return
                await asyncio.sleep(0.02)
    finally:
        await watcher.close()


async def test_a_retry_racing_its_first_send_answers_with_the_first_message(
    served: Served, chat: Chat
) -> None:
    """The first send's transaction is still open when its retry comes in on another
    connection: the retry waits for it, then meets the taken client token as a unique
    violation (its own check could not see the first message yet) and answers, through
    the full path, with the first message instead of a second one or an error."""
    draft = service._Draft.of(
        uuid.UUID(chat.conversation_id),
        uuid.UUID(chat.pro.user_id),
        MessageKind.TEXT,
        "Bună ziua",
        None,
        (),
        "t-race",
    )
    first = await asyncpg.connect(served.database_url)
    pro = await Socket.open(served.base_url, chat.pro.token)
    try:
        async with first.transaction():  # the first send, as do_post_text runs it
            assert await first.fetchrow(service._POST, *draft.arguments(on_its_own=True))
            await pro.send(
                {
                    "type": "send",
                    "ref": "retry",
                    "conversation_id": chat.conversation_id,
                    "body": "Bună ziua",
                    "client_token": "t-race",
                }
            )
            await _until_one_waits_for_a_lock(served.database_url)
        (sent,) = await pro.wait_for("sent")
        stored = await first.fetchval(
            "SELECT count(*) FROM messages WHERE conversation_id = $1 AND client_token = $2",
            uuid.UUID(chat.conversation_id),
            "t-race",
        )
    finally:
        await first.close()
        await pro.close()
    assert sent["data"]["ref"] == "retry"
    assert sent["data"]["message"]["id"] == str(draft.shown.id)
    assert stored == 1


async def test_a_text_is_announced_once_by_its_own_statement(served: Served, chat: Chat) -> None:
    """With the PostgreSQL broker the message's statement NOTIFYs its event itself (it
    arrives at the commit) and nothing sends it again after; the envelope numbers the
    event in both members' streams."""
    heard: list[dict[str, object]] = []
    listener = await asyncpg.connect(served.database_url)
    await listener.add_listener(
        CHANNEL, lambda _c, _pid, _ch, payload: heard.append(json.loads(payload))
    )
    try:
        sent = await post(served.http, chat.client, chat.conversation_id, "Vin joi.")
        await asyncio.sleep(0.5)  # anything sent after the commit has arrived by now
    finally:
        await listener.close()
    mine = [e for e in heard if e.get("t") == "message.new"]
    assert len(mine) == 1, heard
    (envelope,) = mine
    assert envelope["d"]["id"] == sent["id"]  # type: ignore[index]
    assert envelope["d"]["seq"] == sent["seq"]  # type: ignore[index]
    assert set(envelope["to"]) == {chat.client.user_id, chat.pro.user_id}  # type: ignore[arg-type]

"""Generator of chat pairs for the real-time benchmark (:mod:`bench.realtime`).

Inside PostgreSQL, in a migrated database: ``n`` pros (:mod:`bench.pros_data`: users,
profiles, crafts, the search index) and ``n`` clients (:mod:`bench.market_data`'s
statement, without a password: nobody signs in with one), then one open job per pair —
in the pro's craft and place — and its pre-hire conversation (``kind = 'job'``, masked
like any conversation before a contract) with the client and the pro as its two
members. Every user gets one live API session (``auth_sessions``), for which the
benchmark mints access tokens itself (``accounts.service._encode_access``, the app's own
claims and key): signing 1,000 users in through argon2 would take minutes.

Each user is in exactly one conversation, so every frame a socket receives belongs to it.

    python -m bench.realtime_data --url postgresql://postgres@127.0.0.1:5432/bench_realtime
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass

import psycopg

from bench.market_data import CLIENTS
from bench.pros_data import generate as generate_pros

PAIRS = """
WITH pros AS (
    SELECT p.id AS pro_id, p.user_id AS pro_user_id, p.primary_category_id, p.place_id,
           p.lat, p.lon, row_number() OVER (ORDER BY p.user_id) AS n
    FROM pro_profiles p
), clients AS (
    SELECT id AS client_id, row_number() OVER (ORDER BY id) AS n
    FROM users WHERE 'client' = ANY(roles)
), pairs AS MATERIALIZED (
    SELECT p.*, c.client_id, gen_random_uuid() AS job_id, gen_random_uuid() AS conversation_id
    FROM pros p JOIN clients c USING (n)
), jobs_in AS (
    INSERT INTO jobs (id, client_id, market, title, description, category_id, place_id, lat,
                      lon, address_enc, budget_type, budget_min, budget_max, currency,
                      start_date, end_date, template_id, milestone_plan, attachment_ids, state,
                      proposals_count, hired_pro_id, published_at, expires_at, created_at,
                      updated_at)
    SELECT job_id, client_id, 'ro', 'Lucrare ' || n, 'Descrierea lucrării ' || n,
           primary_category_id, place_id, lat, lon, NULL, 'fixed', 50000, 150000, 'RON',
           NULL, NULL, NULL, '[]'::jsonb, ARRAY[]::uuid[], 'open', 0, NULL, now(),
           now() + interval '30 days', now(), now()
    FROM pairs
    RETURNING id
), conversations_in AS (
    INSERT INTO conversations (id, kind, job_id, contract_id, client_id, pro_user_id, pro_id,
                               state, closed_reason, unmasked_at, last_seq, last_message_at,
                               created_at)
    SELECT conversation_id, 'job', job_id, NULL, client_id, pro_user_id, pro_id, 'open', NULL,
           NULL, 0, NULL, now()
    FROM pairs
    RETURNING id
), members_in AS (
    INSERT INTO conversation_members (conversation_id, user_id, role, last_read_seq,
                                      last_read_at, unread, activity_at)
    SELECT conversation_id, client_id, 'client', 0, NULL::timestamptz, 0, now() FROM pairs
    UNION ALL
    SELECT conversation_id, pro_user_id, 'pro', 0, NULL, 0, now() FROM pairs
    RETURNING conversation_id
)
SELECT conversation_id, client_id, pro_user_id FROM pairs ORDER BY n
"""

SESSIONS = """
INSERT INTO auth_sessions (id, user_id, kind, web_token_hash, mfa, created_at, last_used_at,
                           expires_at, revoked_at, revoked_reason, ip, user_agent)
SELECT gen_random_uuid(), u.id, 'api', NULL, false, now(), now(), now() + interval '1 day',
       NULL, NULL, '127.0.0.1', 'bench.realtime'
FROM users u WHERE u.id = ANY(%(ids)s)
RETURNING id, user_id
"""


@dataclass(frozen=True)
class Person:
    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: tuple[str, ...]


@dataclass(frozen=True)
class Pair:
    conversation_id: uuid.UUID
    client: Person
    pro: Person


def generate(url: str, conversations: int) -> list[Pair]:
    """Fill the (migrated, empty) database at ``url``; the pairs, in a stable order."""
    generate_pros(url, conversations, quiet=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CLIENTS, {"hash": None, "n": conversations})
        rows = conn.execute(PAIRS).fetchall()
        users = [u for row in rows for u in (row[1], row[2])]
        sessions = {user: sid for sid, user in conn.execute(SESSIONS, {"ids": users}).fetchall()}
        for table in ("users", "jobs", "conversations", "conversation_members", "auth_sessions"):
            conn.execute(f"VACUUM ANALYZE {table}")
    if len(rows) != conversations:
        raise RuntimeError(f"generated {len(rows)} conversations, not {conversations}")
    return [
        Pair(
            conversation_id=conversation,
            client=Person(client, sessions[client], ("client",)),
            pro=Person(pro, sessions[pro], ("pro",)),
        )
        for conversation, client, pro in rows
    ]


def access_token(person: Person) -> str:
    """An access token for the person's session, as ``do_open_session`` would issue it
    (the current settings' key and lifetime: the api processes must share them)."""
    from types import SimpleNamespace

    from mesteri.accounts.service import _encode_access
    from mesteri.config import get_settings

    user = SimpleNamespace(id=person.user_id, roles=list(person.roles))
    auth = SimpleNamespace(id=person.session_id, mfa=False)
    token, _ttl = _encode_access(user, auth, get_settings())
    return str(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a migrated, empty Mesteri database")
    parser.add_argument("--conversations", type=int, default=500)
    args = parser.parse_args()
    started = time.monotonic()
    pairs = generate(args.url, args.conversations)
    print(f"{len(pairs)} conversations in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()

"""Generator of a job market for benchmarks, on top of :mod:`bench.pros_data`'s pros.

Inside PostgreSQL (``generate_series``): client accounts, ``jobs`` open jobs spread over
the gazetteer's places and the pros' crafts (published over the last 30 days), live
proposals from verified pros on about half of them, and a tenth as many jobs already
hired, each with its accepted proposal, a signed contract (one shared sample document)
and two milestones. Sign-in works for every generated client and pro with
``PASSWORD``.

    python -m bench.market_data --url postgresql://postgres@127.0.0.1:5432/bench --jobs 100000
"""

from __future__ import annotations

import argparse
import hashlib
import time

import psycopg

PASSWORD = "bench-Mesteri-2026"

CLIENTS = """
INSERT INTO users (id, email, phone, password_hash, first_name, last_name, language, roles,
                   state, email_verified_at, created_at, updated_at)
SELECT gen_random_uuid(), 'client' || g || '@bench.mesteri.ro', NULL, %(hash)s,
       (ARRAY['Ioana','Elena','Radu','Dan','Ana','Vlad'])[1 + g %% 6],
       (ARRAY['Marin','Pop','Stan','Rusu','Ene'])[1 + g %% 5], 'ro', ARRAY['client'], 'active',
       now(), now(), now()
FROM generate_series(1, %(n)s) g
"""

JOBS = """
WITH places_a AS (
    SELECT array_agg(id ORDER BY id) AS ids, array_agg(lat ORDER BY id) AS lats,
           array_agg(lon ORDER BY id) AS lons, count(*)::int AS n
    FROM places WHERE country = 'RO'
), crafts_a AS (
    SELECT array_agg(DISTINCT primary_category_id) AS ids,
           count(DISTINCT primary_category_id)::int AS n
    FROM pro_profiles
), clients_a AS (
    SELECT array_agg(id) AS ids, count(*)::int AS n FROM users WHERE 'client' = ANY(roles)
), rows AS (
    SELECT g, 1 + floor(power(random(), 2) * pa.n)::int AS pi,
           1 + floor(random() * ca.n)::int AS ci, 1 + floor(random() * cl.n)::int AS ui,
           random() AS r1, random() AS r2, random() AS r3
    FROM generate_series(1, %(n)s) g, places_a pa, crafts_a ca, clients_a cl
)
INSERT INTO jobs (id, client_id, market, title, description, category_id, place_id, lat, lon,
                  address_enc, budget_type, budget_min, budget_max, currency, start_date,
                  end_date, template_id, milestone_plan, attachment_ids, state,
                  proposals_count, hired_pro_id, published_at, expires_at, created_at,
                  updated_at)
SELECT gen_random_uuid(), cl.ids[r.ui], 'ro', 'Lucrare ' || r.g, 'Descrierea lucrării ' || r.g,
       ca.ids[r.ci], pa.ids[r.pi], pa.lats[r.pi], pa.lons[r.pi], NULL,
       CASE WHEN r.r3 < 0.85 THEN 'fixed' ELSE 'hourly' END,
       (5 + floor(r.r1 * 50))::int * 10000, (60 + floor(r.r1 * 400))::int * 10000, 'RON',
       NULL, NULL, NULL, '[]'::jsonb, ARRAY[]::uuid[], %(state)s, 0, NULL,
       now() - r.r2 * interval '30 days', now() - r.r2 * interval '30 days' + interval '30 days',
       now() - r.r2 * interval '30 days', now()
FROM rows r, places_a pa, crafts_a ca, clients_a cl
"""

PROPOSALS = """
WITH verified AS (
    SELECT array_agg(id) AS ids, array_agg(user_id) AS users, count(*)::int AS n
    FROM pro_profiles WHERE verification_state = 'verified'
), picked AS (
    SELECT j.id AS job_id, j.client_id, 1 + floor(random() * v.n)::int AS vi,
           (j.budget_min + j.budget_max) / 2 AS price
    FROM jobs j, verified v
    WHERE j.state = %(state)s AND random() < %(share)s
)
INSERT INTO proposals (id, job_id, pro_id, pro_user_id, client_id, state, price, currency,
                       duration_days, message, questions, milestones, revision,
                       expires_at, created_at, updated_at)
SELECT gen_random_uuid(), p.job_id, v.ids[p.vi], v.users[p.vi], p.client_id, %(proposal)s,
       p.price, 'RON', 14, 'Pot începe săptămâna viitoare.', '[]'::jsonb,
       jsonb_build_array(
           jsonb_build_object('title', 'Etapa 1', 'amount', p.price / 2, 'dod', '[]'::jsonb),
           jsonb_build_object('title', 'Etapa 2', 'amount', p.price - p.price / 2,
                              'dod', '[]'::jsonb)),
       1, now() + interval '14 days', now(), now()
FROM picked p, verified v
ON CONFLICT DO NOTHING
"""

CONTRACTS = """
WITH hired AS (
    SELECT DISTINCT ON (p.job_id) p.*, j.title, j.category_id
    FROM proposals p JOIN jobs j ON j.id = p.job_id
    WHERE j.state = 'in_progress' ORDER BY p.job_id
), contracts_in AS (
    INSERT INTO contracts (id, job_id, proposal_id, client_id, pro_id, pro_user_id, market,
                           category_id, title, currency, price, state, signed_version,
                           latest_version, activated_at, created_at, updated_at)
    SELECT gen_random_uuid(), h.job_id, h.id, h.client_id, h.pro_id, h.pro_user_id, 'ro',
           h.category_id, h.title, 'RON', h.price, 'active', 1, 1, now(), now(), now()
    FROM hired h
    RETURNING id, job_id, proposal_id, client_id, pro_user_id, price
), versions AS (
    INSERT INTO contract_versions (id, contract_id, number, state, terms, language, document,
                                   document_sha256, reason, created_at, signed_at)
    SELECT gen_random_uuid(), c.id, 1, 'signed', '{}'::jsonb, 'ro', %(document)s, %(sha)s,
           '', now(), now()
    FROM contracts_in c
    RETURNING contract_id
), accepted AS (
    UPDATE proposals p SET state = 'accepted', contract_id = c.id, answered_at = now()
    FROM contracts_in c WHERE p.id = c.proposal_id
    RETURNING p.id
), hires AS (
    UPDATE jobs j SET hired_pro_id = p.pro_id
    FROM contracts_in c JOIN proposals p ON p.id = c.proposal_id WHERE j.id = c.job_id
    RETURNING j.id
)
INSERT INTO milestones (id, contract_id, job_id, client_id, pro_user_id, position, title,
                        amount, currency, due_date, dod, state, submission_attachment_ids,
                        submissions, created_at, updated_at)
SELECT gen_random_uuid(), c.id, c.job_id, c.client_id, c.pro_user_id, n,
       'Etapa ' || n, CASE WHEN n = 1 THEN c.price / 2 ELSE c.price - c.price / 2 END, 'RON',
       current_date + 30 * n, '[]'::jsonb, 'awaiting_funding', ARRAY[]::uuid[], 0, now(), now()
FROM contracts_in c, generate_series(1, 2) n
"""


def _password_hash() -> str:
    from mesteri.accounts.service import hash_password

    return hash_password(PASSWORD)


def generate(url: str, jobs: int, *, clients: int = 5_000, quiet: bool = False) -> float:
    """Add the market to the (migrated) database at ``url``, which already has pros."""
    start = time.monotonic()
    secret = _password_hash()
    document = b"%PDF-1.4\n% sample contract shared by generated contracts\n"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id IN "
            "(SELECT user_id FROM pro_profiles WHERE verification_state = 'verified')",
            (secret,),
        )
        conn.execute(CLIENTS, {"hash": secret, "n": clients})
        conn.execute(JOBS, {"n": jobs, "state": "open"})
        conn.execute(JOBS, {"n": jobs // 10, "state": "in_progress"})
        if not quiet:
            print(f"  {jobs + jobs // 10:,} jobs ({time.monotonic() - start:.0f} s)", flush=True)
        conn.execute(PROPOSALS, {"state": "open", "share": 0.5, "proposal": "submitted"})
        conn.execute(PROPOSALS, {"state": "open", "share": 0.3, "proposal": "submitted"})
        conn.execute(PROPOSALS, {"state": "in_progress", "share": 1.0, "proposal": "submitted"})
        conn.execute(
            "UPDATE jobs j SET proposals_count = c.n FROM "
            "(SELECT job_id, count(*) AS n FROM proposals GROUP BY job_id) c WHERE c.job_id = j.id"
        )
        conn.execute(CONTRACTS, {"document": document, "sha": hashlib.sha256(document).hexdigest()})
        for table in ("users", "jobs", "proposals", "contracts", "contract_versions", "milestones"):
            conn.execute(f"VACUUM ANALYZE {table}")
    seconds = time.monotonic() - start
    if not quiet:
        print(f"  proposals and contracts done ({seconds:.0f} s)", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.market_data")
    parser.add_argument("--url", required=True)
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    generate(args.url, args.jobs)


if __name__ == "__main__":
    main()

"""Generator of published reviews for benchmarks, inside PostgreSQL (``generate_series``).

Reviews go to pros unevenly (a few pros have thousands, most a handful), with realistic
ratings (mostly 5 and 4), optional dimensions, helpful votes, answers and dates spread over
three years. Each review names a generated contract id: the foreign key to ``contracts`` is
dropped in the benchmark database, because generating two million jobs, proposals and
contracts would take far longer than the reviews, and the measured reads never touch them.
Secondary indexes are dropped during the load and built again afterwards; then every
reviewed pro's reputation and profile figures are computed from the reviews with the
app's formulas (``kit.recency``), and search ranks refreshed.

    python -m bench.reviews_data --url postgresql://postgres@127.0.0.1:5432/bench --reviews 2000000
"""

from __future__ import annotations

import argparse
import time

import psycopg

from bench.pros_data import refresh_ranks

COMMENTS = [
    "Foarte mulțumit, a venit la timp și a lăsat curat.",
    "Lucrare de calitate, recomand cu încredere.",
    "A durat mai mult decât estimase, dar rezultatul e bun.",
    "Comunicare excelentă, prețul corect.",
    "Profesionist, a explicat tot ce a făcut.",
    "Ok, dar a trebuit să revină pentru o mică problemă.",
    "Nu a respectat termenul, calitatea acceptabilă.",
    "Super! Baia arată ca nouă.",
]

GENERATE = """
WITH pros_a AS (
    SELECT array_agg(id ORDER BY id) AS ids, array_agg(user_id ORDER BY id) AS users,
           array_agg(primary_category_id ORDER BY id) AS cats, count(*)::int AS n
    FROM pro_profiles WHERE primary_category_id IS NOT NULL
), clients_a AS (
    SELECT array_agg(id) AS ids, count(*)::int AS n FROM users WHERE 'client' = ANY(roles)
), rows AS (
    SELECT g, 1 + floor(power(random(), 3) * pa.n)::int AS pi,
           1 + floor(random() * ca.n)::int AS ci,
           random() AS r1, random() AS r2, random() AS r3,
           now() - random() * interval '3 years' AS at
    FROM generate_series(1, %(n)s) g, pros_a pa, clients_a ca
), rated AS (
    SELECT r.*, CASE WHEN r.r1 < 0.60 THEN 5 WHEN r.r1 < 0.85 THEN 4 WHEN r.r1 < 0.93 THEN 3
                     WHEN r.r1 < 0.97 THEN 2 ELSE 1 END AS overall
    FROM rows r
)
INSERT INTO reviews (id, contract_id, side, author_id, subject_id, pro_id, category_id,
                     work_month, state, overall, quality, punctuality, communication, value,
                     comment, photo_ids, helpful_count, response, responded_at,
                     published_at, created_at, updated_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'client', ca.ids[r.ci], pa.users[r.pi],
       pa.ids[r.pi], pa.cats[r.pi], to_char(r.at, 'YYYY-MM'), 'published', r.overall,
       CASE WHEN r.r2 < 0.6 THEN greatest(1, r.overall - (r.r3 < 0.2)::int) END,
       CASE WHEN r.r2 < 0.5 THEN greatest(1, r.overall - (r.r3 < 0.3)::int) END,
       CASE WHEN r.r2 < 0.5 THEN r.overall END,
       CASE WHEN r.r2 < 0.4 THEN greatest(1, r.overall - (r.r3 < 0.4)::int) END,
       (%(comments)s::text[])[1 + floor(r.r3 * %(ncomments)s)::int], ARRAY[]::uuid[],
       floor(power(r.r2, 4) * 40)::int,
       CASE WHEN r.r3 < 0.2 THEN 'Mulțumesc pentru încredere!' END,
       CASE WHEN r.r3 < 0.2 THEN r.at + interval '2 days' END,
       r.at, r.at - interval '1 day', r.at
FROM rated r, pros_a pa, clients_a ca
"""

REPUTATIONS = """
INSERT INTO reputations AS rep (
    pro_id, reviews_count, overall_sum, quality_count, quality_sum, punctuality_count,
    punctuality_sum, communication_count, communication_sum, value_count, value_sum,
    weighted_sum, weight, on_time_weighted, on_time_weight, milestones_delivered,
    contracts_completed, contracts_ended, leads_answered, updated_at)
SELECT pro_id, count(*), sum(overall), count(quality), coalesce(sum(quality), 0),
       count(punctuality), coalesce(sum(punctuality), 0), count(communication),
       coalesce(sum(communication), 0), count(value), coalesce(sum(value), 0),
       sum(overall * power(2.0, extract(epoch FROM published_at - %(epoch)s) / 86400.0
                                / %(half_life)s)),
       sum(power(2.0, extract(epoch FROM published_at - %(epoch)s) / 86400.0 / %(half_life)s)),
       0, 0, 0, 0, 0, 0, now()
FROM reviews WHERE state = 'published' AND side = 'client'
GROUP BY pro_id
ON CONFLICT (pro_id) DO UPDATE SET
    reviews_count = excluded.reviews_count, overall_sum = excluded.overall_sum,
    quality_count = excluded.quality_count, quality_sum = excluded.quality_sum,
    punctuality_count = excluded.punctuality_count, punctuality_sum = excluded.punctuality_sum,
    communication_count = excluded.communication_count,
    communication_sum = excluded.communication_sum,
    value_count = excluded.value_count, value_sum = excluded.value_sum,
    weighted_sum = excluded.weighted_sum, weight = excluded.weight, updated_at = now()
"""

PROFILES = """
UPDATE pro_profiles p SET rating_avg = round(r.overall_sum::numeric / r.reviews_count, 2),
       reviews_count = r.reviews_count, rating_weighted_sum = r.weighted_sum,
       rating_weight = r.weight
FROM reputations r WHERE r.pro_id = p.id
"""


def generate(url: str, reviews: int, *, batch_size: int = 500_000, quiet: bool = False) -> float:
    """Add ``reviews`` published reviews to the database at ``url`` (pros and clients exist)."""
    from mesteri.config import get_settings
    from mesteri.kit import recency

    start = time.monotonic()
    settings = get_settings()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE reviews DROP CONSTRAINT IF EXISTS fk_reviews_contract_id_contracts"
        )
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reviews' "
            "AND indexname NOT LIKE 'pk_%%' AND indexname NOT LIKE 'uq_%%'"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        done = 0
        while done < reviews:
            n = min(batch_size, reviews - done)
            conn.execute(GENERATE, {"n": n, "comments": COMMENTS, "ncomments": len(COMMENTS)})
            done += n
            if not quiet:
                print(f"  {done:,} reviews ({time.monotonic() - start:.0f} s)", flush=True)
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE reviews")
        conn.execute(
            REPUTATIONS,
            {"epoch": recency.EPOCH, "half_life": settings.reputation_half_life_days},
        )
        conn.execute(PROFILES)
        conn.execute("VACUUM ANALYZE reputations")
    refresh_ranks(url)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--reviews", type=int, default=2_000_000)
    args = parser.parse_args()
    print(f"{args.reviews:,} reviews in {generate(args.url, args.reviews):.0f} s")


if __name__ == "__main__":
    main()

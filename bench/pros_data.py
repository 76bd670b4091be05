"""Generator of a pro market for benchmarks: N pros with crafts, places and ratings.

Everything is generated inside PostgreSQL (``generate_series``), so 1M pros take minutes,
not hours: users, profiles (spread unevenly over the gazetteer's places,
jittered by a few km), one primary craft and up to two others per pro, ratings, delivery
scores, availability, verification states. The secondary indexes of ``pro_profiles`` are
dropped during the load and built again afterwards (as a bulk import would), then the
tables are analysed.

    python -m bench.pros_data --url postgresql://postgres@127.0.0.1:5432/bench --pros 100000
"""

from __future__ import annotations

import argparse
import time

import psycopg

FIRST = [
    "Andrei",
    "Mihai",
    "Ion",
    "Vasile",
    "Florin",
    "Cristian",
    "Ioana",
    "Elena",
    "Maria",
    "Radu",
    "Ștefan",
    "Bogdan",
    "Attila",
    "Zoltán",
    "Roxana",
    "Diana",
    "Tudor",
    "Răzvan",
]
LAST = [
    "Popescu",
    "Ionescu",
    "Popa",
    "Dumitru",
    "Stan",
    "Stoica",
    "Rusu",
    "Munteanu",
    "Matei",
    "Șerban",
    "Moldovan",
    "Toma",
    "Țurcanu",
    "Nagy",
    "Kovács",
    "Mureșan",
    "Neagu",
    "Crăciun",
]

GENERATE = """
WITH places_a AS (
    SELECT array_agg(id ORDER BY id) AS ids, array_agg(lat ORDER BY id) AS lats,
           array_agg(lon ORDER BY id) AS lons, count(*)::int AS n
    FROM places WHERE country = 'RO'
), crafts_a AS (
    SELECT array_agg(c.id ORDER BY c.id) AS ids,
           array_agg(c.search_key || ' ' || coalesce(p.search_key, '') ORDER BY c.id) AS texts,
           count(*)::int AS n
    FROM categories c LEFT JOIN categories p ON p.id = c.parent_id
    WHERE c.parent_id IS NOT NULL
), new_users AS (
    INSERT INTO users (id, email, phone, password_hash, first_name, last_name, language, roles,
                       state, created_at, updated_at)
    SELECT gen_random_uuid(), 'bench' || g || '-' || %(batch)s || '@bench.mesteri.ro', NULL, NULL,
           'Bench', 'Pro', 'ro', ARRAY['pro'], 'active', now(), now()
    FROM generate_series(1, %(n)s) g
    RETURNING id
), rows AS (
    SELECT u.id AS user_id,
           1 + floor(power(random(), 2) * pa.n)::int AS pi,  -- uneven: some places get many
           1 + floor(random() * ca.n)::int AS c1,
           1 + floor(random() * ca.n)::int AS c2,
           random() AS r1, random() AS r2, random() AS r3, random() AS r4,
           (%(first)s::text[])[1 + floor(random() * %(nfirst)s)::int] AS first,
           (%(last)s::text[])[1 + floor(random() * %(nlast)s)::int] AS last
    FROM new_users u, places_a pa, crafts_a ca
)
INSERT INTO pro_profiles (
    id, user_id, market, display_name, name_key, bio, business_type, business_id, place_id,
    lat, lon, radius_km, rate_min, rate_max, currency, availability, languages,
    certifications, insurance, tier, badges, primary_category_id, category_ids,
    verification_state, verified_at, listed, rating_avg, reviews_count, rating_weighted_sum,
    rating_weight, delivery_score, portfolio_count, portfolio_category_ids, promoted_until,
    search_text, created_at, updated_at)
SELECT gen_random_uuid(), r.user_id, 'ro', r.first || ' ' || r.last,
       mesteri_fold(r.first || ' ' || r.last), 'Lucrări de calitate, garanție.', 'pfa', NULL,
       pa.ids[r.pi], pa.lats[r.pi] + (r.r1 - 0.5) * 0.1, pa.lons[r.pi] + (r.r2 - 0.5) * 0.1,
       25, 4000 + floor(r.r3 * 150)::int * 100, 20000, 'RON',
       CASE WHEN r.r4 < 0.7 THEN 'available' WHEN r.r4 < 0.95 THEN 'busy' ELSE 'vacation' END,
       ARRAY['ro'], '[]'::jsonb, NULL, 'standard', ARRAY[]::varchar[], ca.ids[r.c1],
       CASE WHEN r.r1 < 0.5 AND r.c1 <> r.c2 THEN ARRAY[ca.ids[r.c1], ca.ids[r.c2]]
            ELSE ARRAY[ca.ids[r.c1]] END,
       CASE WHEN r.r2 < 0.5 THEN 'verified' WHEN r.r2 < 0.7 THEN 'pending' ELSE 'none' END,
       NULL, true,
       CASE WHEN r.r3 < 0.8 THEN 3.5 + r.r4 * 1.5 END, floor(r.r3 * 60)::int,
       (3.5 + r.r4 * 1.5) * floor(r.r3 * 60) * 0.7, floor(r.r3 * 60) * 0.7,
       0.6 + r.r1 * 0.4, floor(r.r2 * 6)::int,
       array_fill(ca.ids[r.c1], ARRAY[floor(r.r2 * 6)::int]), NULL,
       ca.texts[r.c1] || ' lucrari de calitate garantie', now(), now()
FROM rows r, places_a pa, crafts_a ca
"""


def generate(url: str, pros: int, *, batch_size: int = 250_000, quiet: bool = False) -> float:
    """Add ``pros`` pros to the (migrated) database at ``url``; returns the seconds taken."""
    start = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'pro_profiles' "
            "AND indexname NOT LIKE 'pk_%%' AND indexname NOT LIKE 'uq_%%'"
        ).fetchall()
        for name, _definition in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        done = 0
        while done < pros:
            n = min(batch_size, pros - done)
            conn.execute(
                GENERATE,
                {
                    "n": n,
                    "batch": done,
                    "first": FIRST,
                    "last": LAST,
                    "nfirst": len(FIRST),
                    "nlast": len(LAST),
                },
            )
            done += n
            if not quiet:
                print(f"  {done:,} pros ({time.monotonic() - start:.0f} s)", flush=True)
        refresh_ranks(url)
        for _name, definition in indexes:
            conn.execute(definition)
        conn.execute("VACUUM ANALYZE pro_profiles")
        conn.execute("VACUUM ANALYZE pro_search_entries")
        conn.execute("VACUUM ANALYZE users")
    return time.monotonic() - start


def refresh_ranks(url: str) -> None:
    """``rank_base`` for every pro and the search index (``pro_search_entries``), with the
    app's own statements (``static_score_sql``, ``service.REINDEX_*``); the index of the
    search entries is built after the rows, as a bulk load would."""
    from sqlalchemy import create_engine, text, update

    from mesteri.config import get_settings
    from mesteri.pros.models import ProProfile
    from mesteri.pros.search import rating_score_sql, static_score_sql
    from mesteri.pros.service import REINDEX_CONFLICT, REINDEX_DELETE, REINDEX_INSERT

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        settings = get_settings()
        conn.execute(
            update(ProProfile).values(
                rank_base=static_score_sql(settings), rating_rank=rating_score_sql(settings)
            )
        )
        definition = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_pro_search_entries_lookup'")
        ).scalar_one()
        conn.execute(text("DROP INDEX ix_pro_search_entries_lookup"))
        conn.execute(text(REINDEX_DELETE))
        conn.execute(text(REINDEX_INSERT + REINDEX_CONFLICT))
        conn.execute(text(definition))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a migrated Mesteri database")
    parser.add_argument("--pros", type=int, default=10_000)
    args = parser.parse_args()
    print(f"generated in {generate(args.url, args.pros):.1f} s")


if __name__ == "__main__":
    main()

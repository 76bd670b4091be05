"""Reviews benchmark: a pro's reviews page at 100k pros and 2M reviews against
``GET /api/v1/pros/{id}`` on the same server, and how fast a posted review reaches the
pro's reputation.

    python -m bench.reviews                       # 100k pros, 2M reviews (~5 min to generate)
    python -m bench.reviews --pros 20000 --reviews 400000 --samples 10
    python -m bench.reviews --server-url postgresql://postgres@127.0.0.1:5432/postgres

A database ``bench_reviews_<pros>_<reviews>`` is migrated and filled (kept for the next run
when its size is right): the pros of :mod:`bench.pros_data`, clients and a small market of
:mod:`bench.market_data`, the reviews of :mod:`bench.reviews_data`. ``mesteri api`` and
``mesteri worker`` are started on it.

1. **Reviews page**: ``GET /api/v1/pros/{id}/reviews`` (first page; newest, most helpful or
   lowest first, at random; the sampled pros include the most reviewed) and
   ``GET /api/v1/pros/{id}`` driven alternately (``--rounds``) at ``--connections``;
   p50 / p95 / p99 of each, and the ratio of the p95s (goal ≤ 2).
2. **Reputation delay**: ``--samples`` times, a client and a pro walk a job to a paid
   milestone (:class:`bench.market.Journey`), the client reviews (sealed: nothing changes),
   then the pro reviews, which publishes both; the delay is from sending the pro's review
   until ``GET /api/v1/pros/{id}`` shows the new review count (goal: median ≤ 1 s).

Benchmarks never fail on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import harness
from bench.market import Journey, sample_people, sign_in
from bench.market_data import generate as generate_market
from bench.pros_data import generate as generate_pros
from bench.reviews_data import generate as generate_reviews
from bench.search import alternate, database_url

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data-reviews"
RESULTS = HERE / "results" / "reviews.json"
SORTS = ("newest", "helpful", "lowest")


def prepare(server_url: str, pros: int, reviews: int) -> str:
    from mesteri.kit.migrate import upgrade

    name = f"bench_reviews_{pros}_{reviews}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url(server_url, name)
    upgrade(url)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM reviews").fetchone()
    if (int(row[0]) if row else 0) < reviews:
        print(f"generating {pros:,} pros and {reviews:,} reviews in {name} …", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE reviews, reputations, pro_profiles, users, jobs CASCADE")
        generate_pros(url, pros, quiet=True)
        generate_market(url, 2_000, quiet=True)  # clients (the reviewers) and a few jobs
        generate_reviews(url, reviews)
    return url


def sample_reviewed(url: str, n: int = 300) -> list[str]:
    """Pros with reviews: the twenty most reviewed and a random sample of the others."""
    with psycopg.connect(url) as conn:
        top = conn.execute(
            "SELECT pro_id FROM reputations ORDER BY reviews_count DESC LIMIT 20"
        ).fetchall()
        rest = conn.execute(
            "SELECT pro_id FROM reputations WHERE reviews_count > 0 ORDER BY random() LIMIT %s",
            (n - len(top),),
        ).fetchall()
    return [str(r[0]) for r in (*top, *rest)]


async def _reviews_count(http: httpx.AsyncClient, pro_id: str) -> int:
    answer = await http.get(f"/api/v1/pros/{pro_id}")
    count: int = answer.json()["reputation"]["reviews_count"]
    return count


async def reputation_delays(
    base: str,
    client: dict[str, str],
    pro: dict[str, str],
    pro_id: str,
    *,
    samples: int,
    place_id: str,
    category_id: str,
) -> dict[str, Any]:
    """Walk ``samples`` jobs to a paid milestone; time the second review to the profile."""
    delays: list[float] = []
    posts: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as http:
        for n in range(samples):
            journey = Journey(http, client, pro)
            await journey.run(place_id, category_id, 900_000 + n)
            path = f"/api/v1/contracts/{journey.contract_id}/reviews"
            body = {"ratings": {"overall": 5, "quality": 5}, "comment": "Foarte bine lucrat."}
            sealed = await http.post(path, json=body, headers=client)
            if sealed.status_code != 201:
                raise harness.BenchError(f"client review: {sealed.status_code} {sealed.text}")
            before = await _reviews_count(http, pro_id)
            started = time.monotonic()
            answer = await http.post(
                path, json={"ratings": {"overall": 5}, "comment": "Client serios."}, headers=pro
            )
            posts.append((time.monotonic() - started) * 1000)
            if answer.status_code != 201:
                raise harness.BenchError(f"pro review: {answer.status_code} {answer.text}")
            while await _reviews_count(http, pro_id) == before:
                if time.monotonic() - started > 30:
                    raise harness.BenchError("the review never reached the reputation")
                await asyncio.sleep(0.005)
            delays.append((time.monotonic() - started) * 1000)
    return {
        "samples": len(delays),
        "median_delay_ms": statistics.median(delays),
        "max_delay_ms": max(delays),
        "median_post_ms": statistics.median(posts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reviews", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--pros", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=2_000_000)
    parser.add_argument(
        "--server-url",
        default=None,
        help="a PostgreSQL server where databases may be created "
        "(default: an embedded one in bench/.data-reviews)",
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=20, help="reviews posted for the delay")
    args = parser.parse_args()

    from mesteri.catalog.reference import place_id

    with ExitStack() as stack:
        server_url = args.server_url
        if server_url is None:
            from mesteri.kit.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(DATA_DIR)
            server_url = pg.start()
            stack.callback(pg.stop)
        url = prepare(server_url, args.pros, args.reviews)
        port = harness.free_port()
        env = harness.bench_env(
            DATA_DIR,
            MESTERI_DATABASE_URL=url,
            MESTERI_PUBLIC_URL=f"http://127.0.0.1:{port}",
            MESTERI_COOKIE_SECURE="false",  # the sandbox checkout is driven over plain http
        )
        api = stack.enter_context(
            harness.ServerProcess(
                "api-reviews", harness.mesteri_command("api", "--port", str(port)), port, env
            )
        )
        stack.enter_context(
            harness.ServerProcess("worker-reviews", harness.mesteri_command("worker"), 0, env)
        )
        api.wait_ready()
        reviewed = sample_reviewed(url)
        rng = random.Random(7)
        base = api.base_url
        requests = {
            "reviews": [
                f"{base}/api/v1/pros/{p}/reviews?sort={rng.choice(SORTS)}" for p in reviewed
            ],
            "profile": [f"{base}/api/v1/pros/{p}" for p in reviewed],
        }
        page = alternate(
            {"profile": requests["profile"], "reviews": requests["reviews"]},
            rounds=args.rounds,
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
        )
        pro_emails, client_emails, _ = sample_people(url, 1)
        pro, client = asyncio.run(sign_in(base, [pro_emails[0], client_emails[0]]))
        with psycopg.connect(url) as conn:
            found = conn.execute(
                "SELECT p.id, p.primary_category_id FROM pro_profiles p "
                "JOIN users u ON u.id = p.user_id WHERE u.email = %s",
                (pro_emails[0],),
            ).fetchone()
            total = conn.execute("SELECT count(*), count(DISTINCT pro_id) FROM reviews").fetchone()
        assert found is not None
        assert total is not None
        delay = asyncio.run(
            reputation_delays(
                base,
                client,
                pro,
                str(found[0]),
                samples=args.samples,
                place_id=str(place_id("RO", "București")),
                category_id=str(found[1]),
            )
        )

    ratio = page["reviews"]["p95_ms"] / page["profile"]["p95_ms"]
    print()
    print(f"reviews: {int(total[0]):,} over {int(total[1]):,} pros")
    print(f"{'endpoint':>10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for key in ("reviews", "profile"):
        f = page[key]
        print(
            f"{key:>10} {f['rps']:>8.0f} {f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f} "
            f"{f['p99_ms']:>8.1f} {int(f['errors']):>6}"
        )
    print(
        f"\nreviews p95 / profile p95: {ratio:.2f}  (goal ≤ 2: {'PASS' if ratio <= 2 else 'ABOVE'})"
    )
    print(
        f"review → reputation: median {delay['median_delay_ms']:.0f} ms, "
        f"max {delay['max_delay_ms']:.0f} ms over {delay['samples']} reviews "
        f"(the publishing POST itself: median {delay['median_post_ms']:.0f} ms; goal ≤ 1 s: "
        f"{'PASS' if delay['median_delay_ms'] <= 1000 else 'ABOVE'})"
    )
    harness.save_results(RESULTS, {"page": page, "ratio_p95": ratio, "reputation_delay": delay})


if __name__ == "__main__":
    os.environ.setdefault("MESTERI_LOG_LEVEL", "WARNING")
    main()

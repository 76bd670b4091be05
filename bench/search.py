"""Search benchmark: ``GET /api/v1/pros`` (category + radius + text) against
``GET /api/v1/pros/{id}`` on the same server, at several market sizes.

    python -m bench.search                         # 10k and 100k pros
    python -m bench.search --million               # and 1M (generation takes a few minutes)
    python -m bench.search --server-url postgresql://postgres@127.0.0.1:5432/postgres

For each size a database ``bench_pros_<n>`` is migrated and filled by
:mod:`bench.pros_data` (kept for the next run when its size is right), a ``mesteri api``
is started on it, and both endpoints are driven alternately (``--rounds``) by an asyncio
load generator that rotates through varied queries and profile ids, recording every
latency. Printed: p50 / p95 / p99 per endpoint and size, and the two ratios the issue sets
as goals (search p95 at most 3x profile p95 at 100k; search p95 at the largest size at
most 2x at the smallest). ``EXPLAIN (ANALYZE, BUFFERS)`` of a representative search per size goes to
``docs/search-plans.md``. Benchmarks never fail on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import harness
from bench.pros_data import generate

ROOT = Path(__file__).resolve().parent.parent
PLANS = ROOT / "docs" / "search-plans.md"
RESULTS = Path(__file__).resolve().parent / "results" / "search.json"

QUERIES = [
    ("installations", "instal"),
    ("finishes", "zugrav"),
    ("installations", "electric"),
    ("finishes", "faian"),
    ("finishes", "parchet"),
    ("home-services", "curat"),
    ("renovation", "acoperis"),
    ("home-services", "lacatus"),
    ("outdoor", "gradin"),
    ("finishes", "tampl"),
]
PLACES = [
    "București",
    "Cluj-Napoca",
    "Iași",
    "Timișoara",
    "Constanța",
    "Brașov",
    "Craiova",
    "Oradea",
]


SORTS = ("rating", "price")
# "sorts": rating and price sorts (first and third pages) over the market, a craft, a craft
# near a city; "search": relevance with craft + radius + text; "profile": the baseline.
ENDPOINTS = ("profile", "search", "sorts")


def sort_urls(base: str, radius: int) -> list[str]:
    """Rating and price sorts, the first page and one a few pages deep (by offset of the
    keyset: the cursor of the 3rd page is fetched once per url at start-up, see
    ``deep_sort_urls``), over the whole market, one craft, and a craft near a city."""
    from mesteri.catalog.reference import place_id

    urls = []
    for sort in SORTS:
        urls.append(f"{base}/api/v1/pros?sort={sort}")
        for c, _q in QUERIES[:5]:
            urls.append(f"{base}/api/v1/pros?sort={sort}&category={c}")
            urls.append(
                f"{base}/api/v1/pros?sort={sort}&category={c}"
                f"&place_id={place_id('RO', PLACES[0])}&radius_km={radius}"
            )
    return urls


def deep_sort_urls(urls: Sequence[str], pages: int = 3) -> list[str]:
    """Each url with the cursor of its ``pages``-th page (keyset pages deeper in)."""
    out = []
    with httpx.Client(timeout=30.0) as client:
        for url in urls:
            cursor = None
            for _ in range(pages - 1):
                got = client.get(url + (f"&cursor={cursor}" if cursor else ""))
                cursor = got.json().get("next_cursor") if got.status_code == 200 else None
                if not cursor:
                    break
            if cursor:
                out.append(f"{url}&cursor={cursor}")
    return out


def search_urls(base: str, radius: int) -> list[str]:
    from mesteri.catalog.reference import place_id

    return [
        f"{base}/api/v1/pros?q={q}&category={c}&place_id={place_id('RO', p)}&radius_km={radius}"
        for c, q in QUERIES
        for p in PLACES
    ]


async def drive(
    urls: Sequence[str | tuple[str, dict[str, str]]],
    *,
    connections: int,
    duration: float,
    warmup: float,
) -> dict[str, float]:
    """GET the urls (each optionally with its headers) at random from ``connections``
    clients; latencies of the answers after the warm-up."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + warmup + duration
    measure_from = time.monotonic() + warmup

    async def worker(seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        async with httpx.AsyncClient(timeout=30.0) as client:
            while time.monotonic() < stop_at:
                choice = rng.choice(urls)
                url, headers = (choice, {}) if isinstance(choice, str) else choice
                started = time.monotonic()
                try:
                    response = await client.get(url, headers=headers)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                ended = time.monotonic()
                if started >= measure_from:
                    if ok:
                        latencies.append((ended - started) * 1000)
                    else:
                        errors += 1

    await asyncio.gather(*(worker(i) for i in range(connections)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": harness.percentile(latencies, 50),
        "p95_ms": harness.percentile(latencies, 95),
        "p99_ms": harness.percentile(latencies, 99),
        "errors": errors,
    }


def alternate(
    requests: dict[str, Sequence[str | tuple[str, dict[str, str]]]],
    *,
    rounds: int,
    connections: int,
    duration: float,
    warmup: float,
) -> dict[str, dict[str, float]]:
    """Drive each set of requests in turn, ``rounds`` times (so both see the same machine
    over time); the median of each figure per set."""
    runs: dict[str, list[dict[str, float]]] = {key: [] for key in requests}
    for _ in range(rounds):
        for key, urls in requests.items():
            runs[key].append(
                asyncio.run(drive(urls, connections=connections, duration=duration, warmup=warmup))
            )
    return {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in runs.items()}


def database_url(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def prepare(server_url: str, size: int) -> str:
    from mesteri.kit.migrate import upgrade

    name = f"bench_pros_{size}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url(server_url, name)
    upgrade(url)
    with psycopg.connect(url) as conn:
        have = conn.execute("SELECT count(*) FROM pro_profiles").fetchone()
    count = int(have[0]) if have else 0
    if count != size:
        print(f"generating {size:,} pros in {name} (had {count:,}) …", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE pro_profiles, users CASCADE")
        seconds = generate(url, size)
        print(f"  done in {seconds:.0f} s", flush=True)
    return url


def _explainable(stmt: Any) -> Any:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of a SQLAlchemy statement, its values inlined (the
    statements explained here bind only numbers, strings and arrays of category ids)."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    sql = re.sub(r"(ARRAY\[[^\]]*\])", r"\1::uuid[]", sql)
    return text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql.replace(":", "\\:"))


async def explain(url: str) -> str:
    from sqlalchemy import text

    from mesteri.catalog.reference import place_id
    from mesteri.config import get_settings
    from mesteri.kit.db import create_engine
    from mesteri.pros import search as search_mod

    query = search_mod.SearchQuery(
        q="instal",
        category="installations",
        place_id=place_id("RO", "București"),
        radius_km=25.0,
    )
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        # The step of a relevance search whose cost could grow with the market: the
        # candidate window (the re-ranking after it reads ``search_window`` rows by id).
        settings = get_settings()
        rel = search_mod.relevance_sql(query, settings)
        sql, params = search_mod.index_window_sql(rel, settings.search_window)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")  # warm the connection's caches
            await conn.execute(text(sql), params)
            result = await conn.execute(
                text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql), params
            )
            plan = "\n".join(row[0] for row in result.all())
            for sort in SORTS:
                for category in (None, "installations"):
                    sorted_query = search_mod.SearchQuery(sort=sort, category=category)
                    stmt = search_mod.statement(sorted_query, settings)
                    await conn.execute(stmt)
                    explained = await conn.execute(_explainable(stmt))
                    label = f"sort={sort}" + (f"&category={category}" if category else "")
                    plan += f"\n\n-- GET /api/v1/pros?{label}\n"
                    plan += "\n".join(row[0] for row in explained.all())
            return plan
    finally:
        await engine.dispose()


def sample_ids(url: str, n: int = 300) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id FROM pro_profiles TABLESAMPLE SYSTEM (5) LIMIT %s", (n,)
        ).fetchall()
        if len(rows) < 10:
            rows = conn.execute("SELECT id FROM pro_profiles LIMIT %s", (n,)).fetchall()
    return [str(r[0]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated pro counts")
    parser.add_argument("--million", action="store_true", help="add 1,000,000 pros to the sizes")
    parser.add_argument(
        "--server-url",
        default=None,
        help="a PostgreSQL server where databases may be created "
        "(default: an embedded one in bench/.data-search)",
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--radius", type=int, default=25)
    parser.add_argument(
        "--no-plans", action="store_true", help="do not rewrite docs/search-plans.md"
    )
    args = parser.parse_args()
    sizes = sorted(
        {int(s) for s in args.sizes.split(",") if s} | ({1_000_000} if args.million else set())
    )

    with ExitStack() as stack:
        server_url = args.server_url
        if server_url is None:
            from mesteri.kit.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(Path(__file__).resolve().parent / ".data-search")
            server_url = pg.start()
            stack.callback(pg.stop)
        results: dict[int, dict[str, Any]] = {}
        plans: dict[int, str] = {}
        for size in sizes:
            url = prepare(server_url, size)
            plans[size] = asyncio.run(explain(url))
            env = harness.bench_env(
                Path(__file__).resolve().parent / ".data-search", MESTERI_DATABASE_URL=url
            )
            with harness.api_server(env, name=f"api-{size}") as api:
                api.wait_ready()
                ids = sample_ids(url)
                sorts = sort_urls(api.base_url, args.radius)
                urls = {
                    "search": search_urls(api.base_url, args.radius),
                    "profile": [f"{api.base_url}/api/v1/pros/{i}" for i in ids],
                    "sorts": sorts + deep_sort_urls(sorts),
                }
                runs: dict[str, list[dict[str, float]]] = {key: [] for key in ENDPOINTS}
                for _ in range(args.rounds):
                    for key in ENDPOINTS:
                        runs[key].append(
                            asyncio.run(
                                drive(
                                    urls[key],
                                    connections=args.connections,
                                    duration=args.duration,
                                    warmup=args.warmup,
                                )
                            )
                        )
                results[size] = {
                    key: {m: statistics.median(r[m] for r in rs) for m in rs[0]}
                    for key, rs in runs.items()
                }
                with psycopg.connect(url) as conn:
                    hits = conn.execute("SELECT count(*) FROM pro_profiles WHERE listed").fetchone()
                results[size]["listed"] = {"pros": float(hits[0]) if hits else 0.0}

    print()
    print(
        f"{'pros':>10} {'endpoint':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8} {'errors':>6}"
    )
    for size, figures in results.items():
        for key in ENDPOINTS:
            f = figures[key]
            print(
                f"{size:>10,} {key:>8} {f['rps']:>8.0f} {f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f} "
                f"{f['p99_ms']:>8.1f} {int(f['errors']):>6}"
            )
    ratios: dict[str, float] = {}
    if 100_000 in results:
        r = results[100_000]["search"]["p95_ms"] / results[100_000]["profile"]["p95_ms"]
        ratios["search_vs_profile_p95_at_100k"] = r
        print(
            f"\nsearch p95 / profile p95 at 100k: {r:.2f}  "
            f"(goal ≤ 3: {'PASS' if r <= 3 else 'ABOVE'})"
        )
    if len(results) > 1:
        small, large = min(results), max(results)
        r = results[large]["search"]["p95_ms"] / results[small]["search"]["p95_ms"]
        ratios[f"search_p95_{large}_vs_{small}"] = r
        goal = "PASS" if r <= 2 else "ABOVE"
        print(f"search p95 at {large:,} / at {small:,}: {r:.2f}  (goal ≤ 2 for 1M vs 10k: {goal})")
    harness.save_results(RESULTS, {"results": results, "ratios": ratios})
    if not args.no_plans:
        write_plans(plans, results)


def write_plans(plans: dict[int, str], results: dict[int, dict[str, Any]]) -> None:
    lines = [
        "# Search query plans",
        "",
        "Written by `python -m bench.search` (`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)`) for the",
        "candidate step of",
        "`GET /api/v1/pros?q=instal&category=installations&place_id=<București>&radius_km=25`",
        "on the generated markets. A craft + radius query reads the search index",
        "`pro_search_entries`: one short range of `ix_pro_search_entries_lookup`",
        "(category_id, geo_cell, rank_base DESC, pro_id DESC, covering every filtered column)",
        "per (craft of the sub-tree, 0.5° map cell of the bounding box), index-only, each",
        "stopped after `search_window` matches. Its cost is bounded by lists x window, not by",
        "the number of pros. The re-ranking after it reads those candidates by primary key.",
        "",
        "After it, per size, the plans of `sort=rating` and `sort=price` (first page), over",
        "the whole market and within one craft: an index scan of `ix_pro_profiles_rating`",
        "(rating_rank DESC, id DESC) or `ix_pro_profiles_price` (price_key, id), partial on",
        "`listed`, in key order from the keyset cursor on, no sort, stopped after",
        "`limit + 1` matches; deeper pages start the scan at the cursor. `sort=distance`",
        "is not index-backed yet: it computes the haversine distance of every match within",
        "the radius and sorts them (bounded by the radius, not by an index).",
        "",
        "Endpoints: `search` = relevance with craft + radius + text (10 crafts x 10 cities),",
        "`profile` = `GET /api/v1/pros/{id}` (the baseline), `sorts` = rating and price sorts,",
        "first and third pages, over the market, a craft, and a craft within the radius.",
        "",
        f"Figures of the same run ({harness.machine_info()['cpus']} CPUs, shared machine):",
        "",
        "| pros | endpoint | req/s | p50 ms | p95 ms | p99 ms |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for size, figures in results.items():
        for key in ENDPOINTS:
            f = figures[key]
            lines.append(
                f"| {size:,} | {key} | {f['rps']:.0f} | {f['p50_ms']:.1f} | {f['p95_ms']:.1f} "
                f"| {f['p99_ms']:.1f} |"
            )
    lines.append("")
    for size, plan in plans.items():
        lines += [f"## {size:,} pros", "", "```", plan, "```", ""]
    PLANS.write_text("\n".join(lines))
    print(f"plans written to {PLANS.relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("MESTERI_LOG_LEVEL", "WARNING")
    main()

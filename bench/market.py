"""Market benchmark: the lead board at 100k open jobs against ``GET /api/v1/pros/{id}``
on the same server, and complete API journeys per second.

    python -m bench.market                      # 100k open jobs (generation ~1-2 min)
    python -m bench.market --jobs 20000 --journey-clients 4
    python -m bench.market --server-url postgresql://postgres@127.0.0.1:5432/postgres

A database ``bench_market_<jobs>`` is migrated and filled (kept for the next run when its
size is right): 10k pros (:mod:`bench.pros_data`), 5k clients and the jobs, proposals and
contracts of :mod:`bench.market_data`. ``mesteri api`` and ``mesteri worker`` are started on
it (the worker delivers the sandbox provider's signed webhooks to the api over HTTP).

1. **Lead board**: verified pros sign in; ``GET /api/v1/leads`` (their crafts and service
   area; half the requests with a distance or budget filter) and ``GET /api/v1/pros/{id}``
   are driven alternately (``--rounds``) at ``--connections``; p50 / p95 / p99 of each and
   the ratio of the p95s (goal ≤ 3).
2. **Journeys**: ``--journey-clients`` concurrent loops, each journey a fresh job:
   post (published) → propose → accept → sign (client) → sign (pro) → fund → pay the
   sandbox checkout → the webhook funds the milestone → submit → accept (paid). Journeys
   per second and the median time of each step.

Benchmarks never fail on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import harness
from bench.market_data import PASSWORD
from bench.market_data import generate as generate_market
from bench.pros_data import generate as generate_pros
from bench.search import alternate, database_url

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data-market"
RESULTS = HERE / "results" / "market.json"
PROS = 10_000
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


# ---------------------------------------------------------------- data


def prepare(server_url: str, jobs: int) -> str:
    from mesteri.kit.migrate import upgrade

    name = f"bench_market_{jobs}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url(server_url, name)
    upgrade(url)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE state = 'open'").fetchone()
    if (int(row[0]) if row else 0) < jobs:
        print(f"generating {PROS:,} pros and {jobs:,} open jobs in {name} …", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE pro_profiles, users, jobs CASCADE")
        generate_pros(url, PROS, quiet=True)
        generate_market(url, jobs)
    return url


def sample_people(url: str, n: int) -> tuple[list[str], list[str], list[str]]:
    """Emails of verified pros and of clients, and profile ids for the baseline."""
    with psycopg.connect(url) as conn:
        pros = conn.execute(
            "SELECT u.email FROM pro_profiles p JOIN users u ON u.id = p.user_id "
            "WHERE p.verification_state = 'verified' ORDER BY random() LIMIT %s",
            (n,),
        ).fetchall()
        clients = conn.execute(
            "SELECT email FROM users WHERE 'client' = ANY(roles) ORDER BY random() LIMIT %s",
            (n,),
        ).fetchall()
        profiles = conn.execute(
            "SELECT id FROM pro_profiles WHERE listed ORDER BY random() LIMIT 300"
        ).fetchall()
    return [r[0] for r in pros], [r[0] for r in clients], [str(r[0]) for r in profiles]


async def sign_in(base: str, emails: list[str]) -> list[dict[str, str]]:
    headers = []
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:
        for email in emails:
            answer = await client.post(
                "/api/v1/auth/login", json={"login": email, "password": PASSWORD}
            )
            answer.raise_for_status()
            token = answer.json()["tokens"]["access_token"]
            headers.append({"Authorization": f"Bearer {token}"})
    return headers


# ---------------------------------------------------------------- lead board


def lead_requests(base: str, pros: list[dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    filters = ["", "?max_distance_km=10", "?budget_min=100000", "?limit=20"]
    return [(f"{base}/api/v1/leads{f}", headers) for headers in pros for f in filters]


# ---------------------------------------------------------------- journeys


class Journey:
    """One client and one pro walking the whole journey, step by step, timed."""

    def __init__(self, http: httpx.AsyncClient, client: dict[str, str], pro: dict[str, str]):
        self.http, self.client, self.pro = http, client, pro
        self.steps: dict[str, float] = {}
        self.contract_id: str | None = None  # once hired

    async def _call(
        self, step: str, method: str, path: str, auth: dict[str, str], **kw: Any
    ) -> Any:
        started = time.monotonic()
        response = await self.http.request(method, path, headers=auth, **kw)
        self.steps[step] = self.steps.get(step, 0.0) + (time.monotonic() - started) * 1000
        if response.status_code >= 400:
            raise harness.BenchError(f"{step}: {response.status_code} {response.text[:300]}")
        return response.json() if "json" in response.headers.get("content-type", "") else response

    async def run(self, place_id: str, category_id: str, n: int) -> None:
        due = (date.today() + timedelta(days=20)).isoformat()
        job = await self._call(
            "post",
            "POST",
            "/api/v1/jobs",
            self.client,
            json={
                "title": f"Reparație {n}",
                "description": "Robinet care picură în baie.",
                "category_id": category_id,
                "place_id": place_id,
                "budget_type": "fixed",
                "budget_min": 50_000,
                "budget_max": 150_000,
                "currency": "RON",
                "publish": True,
            },
        )
        proposal = await self._call(
            "propose",
            "POST",
            f"/api/v1/jobs/{job['id']}/proposals",
            self.pro,
            json={
                "price": 80_000,
                "currency": "RON",
                "message": "Vin mâine.",
                "milestones": [
                    {
                        "title": "Reparație",
                        "amount": 80_000,
                        "due_date": due,
                        "dod": ["Nu mai picură"],
                    }
                ],
            },
        )
        accepted = await self._call(
            "accept_proposal", "POST", f"/api/v1/proposals/{proposal['id']}/accept", self.client
        )
        cid = self.contract_id = accepted["contract_id"]
        contract = await self._call("read_contract", "GET", f"/api/v1/contracts/{cid}", self.client)
        sha = contract["versions"][-1]["document_sha256"]
        await self._call(
            "sign_client",
            "POST",
            f"/api/v1/contracts/{cid}/sign",
            self.client,
            json={"full_name": contract["client"]["name"], "agree": True, "document_sha256": sha},
        )
        await self._call(
            "sign_pro",
            "POST",
            f"/api/v1/contracts/{cid}/sign",
            self.pro,
            json={"full_name": contract["pro"]["name"], "agree": True, "document_sha256": sha},
        )
        milestone = contract["milestones"][0]
        funding = await self._call(
            "fund",
            "POST",
            f"/api/v1/milestones/{milestone['id']}/transitions/fund",
            {**self.client, "Idempotency-Key": f"fund-{milestone['id']}"},
        )
        await self._pay(funding["checkout_url"])
        await self._wait_funded(milestone["id"])
        await self._call(
            "submit",
            "POST",
            f"/api/v1/milestones/{milestone['id']}/transitions/submit",
            self.pro,
            json={"note": "Gata.", "dod_done": [0]},
        )
        done = await self._call(
            "accept_milestone",
            "POST",
            f"/api/v1/milestones/{milestone['id']}/transitions/accept",
            self.client,
        )
        if done["state"] != "released":
            raise harness.BenchError(f"journey ended in {done['state']}")

    async def _pay(self, checkout_url: str) -> None:
        from urllib.parse import urlsplit

        from mesteri.payments.sandbox.provider import SUCCESS_CARD

        started = time.monotonic()
        path = urlsplit(checkout_url).path
        page = await self.http.get(path)
        token = _TOKEN.search(page.text)
        if token is None:
            raise harness.BenchError("no CSRF token on the checkout page")
        paid = await self.http.post(
            path, data={"csrf_token": token.group(1), "card_number": SUCCESS_CARD}
        )
        if paid.status_code >= 400:
            raise harness.BenchError(f"checkout: {paid.status_code}")
        self.steps["checkout"] = (time.monotonic() - started) * 1000

    async def _wait_funded(self, milestone_id: str) -> None:
        started = time.monotonic()
        while time.monotonic() - started < 60:
            state = (
                await self.http.get(f"/api/v1/milestones/{milestone_id}", headers=self.client)
            ).json()["state"]
            if state == "funded":
                self.steps["webhook_wait"] = (time.monotonic() - started) * 1000
                return
            await asyncio.sleep(0.02)
        raise harness.BenchError("the webhook never funded the milestone")


async def journeys(
    base: str,
    clients: list[dict[str, str]],
    pros: list[dict[str, str]],
    *,
    concurrency: int,
    duration: float,
    place_id: str,
    category_id: str,
) -> dict[str, Any]:
    done: list[dict[str, float]] = []
    errors: list[str] = []
    stop_at = time.monotonic() + duration

    async def loop(i: int) -> None:
        n = 0
        async with httpx.AsyncClient(base_url=base, timeout=60.0, follow_redirects=False) as http:
            while time.monotonic() < stop_at:
                journey = Journey(http, clients[i % len(clients)], pros[i % len(pros)])
                try:
                    await journey.run(place_id, category_id, i * 100_000 + n)
                    done.append(journey.steps)
                except (harness.BenchError, httpx.HTTPError, KeyError) as exc:
                    errors.append(str(exc))
                n += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    elapsed = time.monotonic() - started
    steps = {k: statistics.median(s[k] for s in done if k in s) for k in (done[0] if done else {})}
    return {
        "journeys": len(done),
        "per_second": len(done) / elapsed,
        "seconds": elapsed,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "median_step_ms": steps,
        "median_journey_ms": statistics.median(sum(s.values()) for s in done) if done else None,
    }


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.market", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--jobs", type=int, default=100_000, help="open jobs on the lead board")
    parser.add_argument(
        "--server-url",
        default=None,
        help="a PostgreSQL server where databases may be created "
        "(default: an embedded one in bench/.data-market)",
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--journey-clients", type=int, default=4)
    parser.add_argument("--journey-seconds", type=float, default=20.0)
    args = parser.parse_args()

    from mesteri.catalog.reference import place_id

    with ExitStack() as stack:
        server_url = args.server_url
        if server_url is None:
            from mesteri.kit.embedded import EmbeddedPostgres

            pg = EmbeddedPostgres(DATA_DIR)
            server_url = pg.start()
            stack.callback(pg.stop)
        url = prepare(server_url, args.jobs)
        port = harness.free_port()
        env = harness.bench_env(
            DATA_DIR,
            MESTERI_DATABASE_URL=url,
            MESTERI_PUBLIC_URL=f"http://127.0.0.1:{port}",
            # The checkout page is driven over plain http by httpx, which keeps Secure
            # cookies (the CSRF one) for https only.
            MESTERI_COOKIE_SECURE="false",
        )
        api = stack.enter_context(
            harness.ServerProcess(
                "api-market", harness.mesteri_command("api", "--port", str(port)), port, env
            )
        )
        stack.enter_context(
            harness.ServerProcess("worker-market", harness.mesteri_command("worker"), 0, env)
        )
        api.wait_ready()
        pro_emails, client_emails, profiles = sample_people(url, max(50, args.journey_clients))
        pros = asyncio.run(sign_in(api.base_url, pro_emails))
        clients = asyncio.run(sign_in(api.base_url, client_emails[: args.journey_clients]))
        with psycopg.connect(url) as conn:
            crafts = conn.execute(
                "SELECT p.primary_category_id, u.email FROM pro_profiles p "
                "JOIN users u ON u.id = p.user_id WHERE u.email = ANY(%s)",
                (pro_emails,),
            ).fetchall()
            open_jobs = conn.execute("SELECT count(*) FROM jobs WHERE state = 'open'").fetchone()
        requests = {
            "leads": lead_requests(api.base_url, pros),
            "profile": [(f"{api.base_url}/api/v1/pros/{i}", {}) for i in profiles],
        }
        board = alternate(
            {"profile": requests["profile"], "leads": requests["leads"]},
            rounds=args.rounds,
            connections=args.connections,
            duration=args.duration,
            warmup=args.warmup,
        )
        # Journey pros propose in their own craft, in Bucharest (any verified pro may).
        walk = asyncio.run(
            journeys(
                api.base_url,
                clients,
                pros[: args.journey_clients],
                concurrency=args.journey_clients,
                duration=args.journey_seconds,
                place_id=str(place_id("RO", "București")),
                category_id=str(crafts[0][0]),
            )
        )

    ratio = board["leads"]["p95_ms"] / board["profile"]["p95_ms"]
    print()
    print(f"open jobs: {int(open_jobs[0]) if open_jobs else 0:,}")
    print(f"{'endpoint':>10} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for key in ("leads", "profile"):
        f = board[key]
        print(
            f"{key:>10} {f['rps']:>8.0f} {f['p50_ms']:>8.1f} {f['p95_ms']:>8.1f} "
            f"{f['p99_ms']:>8.1f} {int(f['errors']):>6}"
        )
    print(
        f"\nlead board p95 / profile p95: {ratio:.2f}  "
        f"(goal ≤ 3: {'PASS' if ratio <= 3 else 'ABOVE'})"
    )
    print(
        f"journeys: {walk['journeys']} in {walk['seconds']:.1f} s = {walk['per_second']:.2f}/s "
        f"with {args.journey_clients} concurrent, errors {walk['errors']}"
    )
    if walk["first_error"]:
        print(f"  first error: {walk['first_error']}")
    if walk["median_journey_ms"]:
        print(
            f"  median journey {walk['median_journey_ms']:.0f} ms; median step ms: "
            + ", ".join(f"{k} {v:.0f}" for k, v in walk["median_step_ms"].items())
        )
    harness.save_results(RESULTS, {"board": board, "ratio_p95": ratio, "journeys": walk})


if __name__ == "__main__":
    os.environ.setdefault("MESTERI_LOG_LEVEL", "WARNING")
    main()

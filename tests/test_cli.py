"""The `mesteri` command against a real database (external URL path)."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

pytestmark = pytest.mark.slow


def mesteri(url: str, *args: str, input_: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESTERI_")}
    env.update(MESTERI_ENV="test", MESTERI_DATABASE_URL=url, MESTERI_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "mesteri", *args],
        env=env,
        input=input_,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def users(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT email, roles FROM users").fetchall())


async def test_migrate_seed_and_create_admin(live_database_url: str, live: object) -> None:
    # `live` empties the database first
    migrated = mesteri(live_database_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "newest migration" in migrated.stdout

    seeded = mesteri(live_database_url, "seed-demo")
    assert seeded.returncode == 0, seeded.stderr
    seeded_users = users(live_database_url)
    assert {
        "client@demo.mesteri.ro",
        "pro@demo.mesteri.ro",
        "admin@demo.mesteri.ro",
    } <= set(seeded_users)
    # … the demo market's pros and four more clients
    assert sum(email.endswith("@demo.mesteri.ro") for email in seeded_users) == 307
    # … and jobs in every state, with milestones from unfunded to paid
    with psycopg.connect(live_database_url) as conn:
        job_states = {s for (s,) in conn.execute("SELECT DISTINCT state FROM jobs")}
        milestone_states = {s for (s,) in conn.execute("SELECT DISTINCT state FROM milestones")}
        contract_states = {s for (s,) in conn.execute("SELECT DISTINCT state FROM contracts")}
    assert job_states == {"draft", "open", "in_progress", "completed", "cancelled", "expired"}
    assert {"awaiting_funding", "submitted", "released", "draft"} <= milestone_states
    assert contract_states == {"awaiting_signatures", "active", "completed"}
    again = mesteri(live_database_url, "seed-demo")
    assert "already exist" in again.stdout
    assert len(users(live_database_url)) == 307

    weak = mesteri(
        live_database_url,
        "create-admin",
        "--email",
        "ops@mesteri.ro",
        "--password",
        "password",
        "--first-name",
        "O",
        "--last-name",
        "P",
    )
    assert weak.returncode == 1
    assert "Not created" in weak.stderr
    created = mesteri(
        live_database_url,
        "create-admin",
        "--email",
        "ops@mesteri.ro",
        "--password",
        "steady-Compass-58",
        "--first-name",
        "Olga",
        "--last-name",
        "Pavel",
        "--role",
        "finance",
    )
    assert created.returncode == 0, created.stderr
    assert users(live_database_url)["ops@mesteri.ro"] == ["finance"]
    wrong_role = mesteri(
        live_database_url,
        "create-admin",
        "--email",
        "x@mesteri.ro",
        "--password",
        "steady-Compass-58",
        "--first-name",
        "X",
        "--last-name",
        "Y",
        "--role",
        "client",
    )
    assert wrong_role.returncode == 2

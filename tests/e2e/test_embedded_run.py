"""`make run`'s path: the embedded PostgreSQL, from an empty data dir, started and stopped
by `mesteri run` itself."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.slow

DEMO_EMAILS = ("client@demo.mesteri.ro", "pro@demo.mesteri.ro", "admin@demo.mesteri.ro")


def demo_pro_can_sign_in(base_url: str, password: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        login = http.post(
            "/api/v1/auth/login", json={"login": "pro@demo.mesteri.ro", "password": password}
        )
        assert login.status_code == 200, login.text
        token = login.json()["tokens"]["access_token"]
        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        body = me.json()
        assert body["email"] == "pro@demo.mesteri.ro"
        assert "pro" in body["roles"]


def users_in_database(pgdata: Path) -> dict[str, int]:
    """E-mail -> number of rows in ``users``, read straight from the embedded server
    (its socket and port are in ``postmaster.pid``; local connections are trusted)."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    with psycopg.connect(host=socket_dir, port=port, user="postgres", dbname="mesteri") as conn:
        rows = conn.execute("SELECT email, count(*) FROM users GROUP BY email").fetchall()
    return dict(rows)


def stop_with_ctrl_c(server: Any, find_postgres: Any) -> int | None:
    """SIGINT; the embedded PostgreSQL must be gone afterwards. Returns the exit code."""
    pgdata = server.pgdata
    code = server.stop()
    # The postmaster may take a moment after the CLI returned to be gone from /proc.
    deadline = time.monotonic() + 10
    while find_postgres(pgdata) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not find_postgres(pgdata), (
        f"PostgreSQL still runs on {pgdata} after Ctrl-C: pids {find_postgres(pgdata)}\n"
        f"{server.output()}"
    )
    return code


def test_run_starts_the_embedded_database_from_an_empty_data_dir(
    empty_data_dir: Path, spawn_server: Any, find_postgres: Any, demo_password: str
) -> None:
    data_dir = empty_data_dir
    assert not data_dir.exists()

    # First start: creates the cluster, migrates, seeds the demo accounts.
    first = spawn_server(data_dir)
    first.wait_ready()
    assert (data_dir / "postgres" / "PG_VERSION").is_file()
    assert find_postgres(first.pgdata), "no postgres process runs on the new data dir"
    demo_pro_can_sign_in(first.base_url, demo_password)
    output = first.output()
    assert "Ready to serve after" in output, output
    assert "Demo data created." in output, output
    for email in DEMO_EMAILS:
        assert email in output, f"{email} is not among the printed logins:\n{output}"
    assert demo_password in output, output
    users = users_in_database(first.pgdata)
    assert {email: users.get(email) for email in DEMO_EMAILS} == dict.fromkeys(DEMO_EMAILS, 1)
    # … and the demo market's pros, each once
    assert len(users) >= len(DEMO_EMAILS) + 300
    assert set(users.values()) == {1}
    first_exit = stop_with_ctrl_c(first, find_postgres)
    assert "Embedded PostgreSQL stopped." in first.output()

    # Second start on the now existing data dir: up again, and nothing seeded twice.
    second = spawn_server(data_dir)
    second.wait_ready()
    output = second.output()
    assert "Demo data created." not in output, output
    assert users_in_database(second.pgdata) == users
    demo_pro_can_sign_in(second.base_url, demo_password)
    second_exit = stop_with_ctrl_c(second, find_postgres)

    # Ctrl-C is the normal way to stop `make run`: a clean exit, both times.
    assert (first_exit, second_exit) == (0, 0), (
        f"`mesteri run` exited with {first_exit} and {second_exit} on Ctrl-C.\n"
        f"--- first ---\n{first.output()}\n--- second ---\n{second.output()}"
    )

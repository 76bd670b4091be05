"""End-to-end fixtures: a real ``mesteri run`` process and a headless Chromium.

The server is started exactly like ``make run`` does it: no ``MESTERI_DATABASE_URL``, so
the CLI starts an embedded PostgreSQL (the ``pgserver`` package) in a fresh data dir,
migrates it, seeds the demo accounts and serves on a free port. One server per module.

Self-contained on purpose: nothing here depends on ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_PASSWORD = os.environ.get("MESTERI_DEMO_PASSWORD", "demo-Mesteri-2026")
READY_TIMEOUT = 180.0  # a first start seeds the demo market: slow on a busy 2-CPU machine
STOP_TIMEOUT = 30.0
# Generous: the machine is small and other test runs share it.
PAGE_TIMEOUT_MS = 30_000

CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")


# ---------------------------------------------------------------- the server process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_pids(pgdata: Path) -> list[int]:
    """Pids of postgres processes whose command line names ``pgdata`` (the postmaster)."""
    wanted = str(pgdata.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if args and Path(args[0]).name == "postgres" and wanted in args:
            pids.append(int(entry.name))
    return pids


def server_env(data_dir: Path) -> dict[str, str]:
    """The environment of ``make run``, isolated from whatever MESTERI_* the caller has."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESTERI_")}
    env.update(
        MESTERI_ENV="test",
        MESTERI_DATA_DIR=str(data_dir),
        MESTERI_LOG_LEVEL="WARNING",
        # Chromium accepts Secure cookies on http://127.0.0.1 (a potentially trustworthy
        # origin), so the test server keeps the production setting.
        MESTERI_COOKIE_SECURE="true",
        MESTERI_DEMO_PASSWORD=DEMO_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class MesteriServer:
    """``python -m mesteri run`` on a free port, with its output in a log file."""

    data_dir: Path
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pgdata(self) -> Path:
        return (self.data_dir / "postgres").resolve()

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> MesteriServer:
        assert self.process is None, "already started"
        self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mesteri", "run", "--port", str(self.port)],
                env=server_env(self.data_dir),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(base_url=self.base_url, timeout=5.0) as http:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    pytest.fail(
                        f"`mesteri run` exited with {code} before it was ready.\n"
                        f"--- output ---\n{self.output()}"
                    )
                try:
                    response = http.get("/ready")
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.25)
        self.stop()
        pytest.fail(
            f"`mesteri run` was not ready after {timeout:.0f}s (last /ready: {last}).\n"
            f"--- output ---\n{self.output()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Ctrl-C, as a developer would; kill only if it does not stop in time."""
        process = self.process
        if process is None:
            return None
        self.process = None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                return process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                # The CLI had no chance to stop its embedded PostgreSQL: do it here so
                # no server outlives the test (a fast shutdown of our own postmaster).
                for pid in postgres_pids(self.pgdata):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGINT)
                return None
        return process.returncode


@contextlib.contextmanager
def postgres_friendly_dir() -> Iterator[Path]:
    """A new directory for a data dir, outside pytest's ``tmp_path``.

    As root, pgserver runs PostgreSQL as the user ``pgserver`` and opens the path to the
    data dir for it (o+rx on every parent). Every pytest session that starts meanwhile
    (another run on the same machine) resets ``/tmp/pytest-of-root`` to 0700, and the
    database then loses access to its own files. So data dirs live in plain temp dirs.
    """
    root = Path(tempfile.mkdtemp(prefix="mesteri-e2e-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MesteriServer]:
    logs = tmp_path_factory.mktemp("e2e-server")
    with postgres_friendly_dir() as root:
        running = MesteriServer(data_dir=root / "data", log_path=logs / "server.log").start()
        try:
            running.wait_ready()
            yield running
        finally:
            running.stop()


@pytest.fixture
def empty_data_dir() -> Iterator[Path]:
    """A path for ``MESTERI_DATA_DIR`` that does not exist yet."""
    with postgres_friendly_dir() as root:
        yield root / "data"


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Any]:
    """A factory of servers on a given data dir, for tests of the process itself.
    Whatever a test leaves running is stopped at its end."""
    started: list[MesteriServer] = []

    def spawn(data_dir: Path) -> MesteriServer:
        log_path = tmp_path / f"server-{len(started) + 1}.log"
        running = MesteriServer(data_dir=data_dir, log_path=log_path).start()
        started.append(running)
        return running

    yield spawn
    for running in started:
        running.stop()


@pytest.fixture
def demo_password() -> str:
    return DEMO_PASSWORD


@pytest.fixture
def find_postgres() -> Any:
    """``find_postgres(pgdata)``: pids of postgres servers still running on that data dir."""
    return postgres_pids


@pytest.fixture
def api(server: MesteriServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as client:
        yield client


# ---------------------------------------------------------------- the dev outbox


class Outbox:
    """``GET /api/v1/dev/outbox``: every e-mail and SMS the server sent, newest first."""

    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    def items(self, to: str) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/dev/outbox", params={"to": to})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def ids(self, to: str) -> set[str]:
        return {item["id"] for item in self.items(to)}

    def code(
        self, to: str, kind: str, *, after: set[str] | None = None, timeout: float = 30
    ) -> str:
        """The 6-digit code of the newest message of ``kind`` sent to ``to``.

        ``after``: ids of messages seen before (an older code), which do not count.
        The body is in the recipient's language, so only the 6 digits are looked for.
        """
        deadline = time.monotonic() + timeout
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = self.items(to)
            for item in seen:
                if item["kind"] == kind and item["id"] not in (after or set()):
                    match = CODE_RE.search(item["body"])
                    assert match, f"no 6-digit code in {item['body']!r}"
                    return match.group(1)
            time.sleep(0.25)
        pytest.fail(f"no {kind} message to {to} in the outbox after {timeout}s; it has: {seen}")


@pytest.fixture
def outbox(api: httpx.Client) -> Outbox:
    return Outbox(api)


# ---------------------------------------------------------------- people


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    email: str
    phone: str  # E.164, as the outbox addresses SMS
    password: str


def new_person() -> Person:
    """Unique per call: a fresh e-mail and a valid Romanian mobile number (+4072xxxxxxx)."""
    token = uuid.uuid4()
    return Person(
        first_name="Elena",
        last_name="Marinescu",
        email=f"e2e-{token.hex[:12]}@example.com",
        phone=f"+4072{token.int % 10**7:07d}",
        password="sunny-Harbor-47",
    )


@pytest.fixture
def person() -> Person:
    return new_person()


# ---------------------------------------------------------------- the browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; browser tests may not be skipped under CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Any, server: MesteriServer) -> Iterator[Any]:
    """A fresh browser profile per test, asking for English pages."""
    ctx = browser.new_context(base_url=server.base_url, locale="en-US")
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    ctx.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@pytest.fixture
def assert_accessible() -> Any:
    """``assert_accessible(page)``: axe-core finds no violation on the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def check(page: Any, what: str = "") -> None:
        page.wait_for_load_state("load")
        results = axe.run(page)
        assert results.violations_count == 0, (
            f"{results.violations_count} accessibility violation(s) on "
            f"{what or page.url} ({page.url}):\n{results.generate_report()}"
        )

    return check

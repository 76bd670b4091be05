"""The ``mesteri`` command: run, api, worker, migrate, seed-demo, create-admin."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from typing import Annotated

import typer

from mesteri.config import InsecureSecretKeyError, Settings, get_settings

cli = typer.Typer(help="Mesteri marketplace", no_args_is_help=True, add_completion=False)


def _settings() -> Settings:
    try:
        return get_settings()
    except InsecureSecretKeyError as exc:
        typer.secho(f"Refusing to start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


def _default_public_url(host: str, port: int) -> None:
    """Links in e-mails, checkouts and webhooks point at this server unless told otherwise."""
    os.environ.setdefault("MESTERI_PUBLIC_URL", f"http://{host}:{port}")
    get_settings.cache_clear()


def ensure_database(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured database, or an embedded PostgreSQL in ``MESTERI_DATA_DIR``."""
    if settings.database_url:
        yield settings.database_url
        return
    from mesteri.kit.embedded import EmbeddedPostgres

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(settings.data_dir)
    typer.echo(f"Starting the embedded PostgreSQL in {server.pgdata} …")
    ensure_database(server.start(), "mesteri")
    try:
        yield server.url("mesteri")
    finally:
        server.stop()
        typer.echo("Embedded PostgreSQL stopped.")


def _migrate(url: str) -> None:
    from mesteri.kit.migrate import upgrade

    upgrade(url)


async def _seed_if_empty(url: str, password: str, *, force: bool = False) -> list[str]:
    import mesteri.tasks  # noqa: F401  - every module's event subscribers, as in the app
    from mesteri import demo
    from mesteri.kit.db import create_engine, session_factories, unit_of_work
    from mesteri.payments import providers

    engine = create_engine(url, pool_size=3, max_overflow=0)
    try:
        _read, write = session_factories(engine)
        # Demo payments go through the sandbox provider (its own short transactions).
        providers.configure(get_settings(), write)
        async with unit_of_work(write) as session:
            if not force and not await demo.database_is_empty(session):
                return []
            created = await demo.seed(session, password)
        return [f"{a.email}  ({a.what})" for a in created]
    finally:
        await engine.dispose()


def _print_logins(settings: Settings, port: int) -> None:
    from mesteri.demo import DEMO_ACCOUNTS

    lines = [
        "",
        f"  Mesteri is running on http://127.0.0.1:{port}",
        f"  API docs: http://127.0.0.1:{port}/api/docs",
        f"  Demo logins (password: {settings.demo_password}):",
        *[f"    {a.email:<26} {a.what}" for a in DEMO_ACCOUNTS],
    ]
    if settings.dev_tools_enabled:
        lines.append(f"  Codes sent by e-mail/SMS: http://127.0.0.1:{port}/api/v1/dev/outbox")
    lines += ["  Press Ctrl-C to stop.", ""]
    typer.echo("\n".join(lines))


# WebSockets: frames are small JSON; compression would cost memory per connection (zlib
# state) for little gain, and no client frame needs more than a few KB.
WS_DEFLATE = False
WS_MAX_SIZE = 65_536


def _serve(
    settings: Settings, url: str, *, host: str, port: int, with_worker: bool, workers: int = 1
) -> None:
    import uvicorn

    from mesteri.kit.logging import configure_logging

    configure_logging(settings.log_level, json=settings.log_json)
    if workers > 1:
        os.environ["MESTERI_DATABASE_URL"] = url
        uvicorn.run(
            "mesteri.asgi:app",
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            log_config=None,
            access_log=False,
            ws_per_message_deflate=WS_DEFLATE,
            ws_max_size=WS_MAX_SIZE,
        )
        return
    from mesteri.app import create_app

    app = create_app(settings, database_url=url, run_worker=with_worker)
    # uvicorn's access log is off: RequestContextMiddleware logs each request with its id.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        log_config=None,
        lifespan="on",
        access_log=False,
        ws_per_message_deflate=WS_DEFLATE,
        ws_max_size=WS_MAX_SIZE,
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        serving = asyncio.create_task(server.serve())
        # uvicorn offers no "started" event; poll its flag to print the logins once.
        while not server.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            _print_logins(settings, port)
        await serving

    # uvicorn shuts down cleanly on Ctrl-C, then re-raises the signal; the embedded
    # database is stopped by the caller's context manager either way.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(
            loop_factory=config.get_loop_factory()  # uvloop when installed, as uvicorn.run does
        ) as runner,
    ):
        runner.run(main())


@cli.command()
def run(
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    host: str = "127.0.0.1",
) -> None:
    """Everything for development: database, migrations, demo data, api and worker."""
    started = time.perf_counter()
    _default_public_url(host, port)
    settings = _settings()
    with database(settings) as url:
        _migrate(url)
        created = asyncio.run(_seed_if_empty(url, settings.demo_password))
        if created:
            typer.echo("Demo data created.")
        typer.echo(f"Ready to serve after {time.perf_counter() - started:.1f}s.")
        _serve(settings, url, host=host, port=port, with_worker=True)


@cli.command()
def api(
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    host: str = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The HTTP api alone (run workers separately with `mesteri worker`)."""
    _default_public_url(host, port)
    settings = _settings()
    with database(settings) as url:
        _serve(settings, url, host=host, port=port, with_worker=False, workers=workers)


@cli.command()
def worker() -> None:
    """The background worker alone: outbox relay, jobs and timers."""
    from mesteri import worker as worker_module
    from mesteri.kit.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, json=settings.log_json)
    with database(settings) as url:
        asyncio.run(worker_module.serve(settings, url))


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest migration."""
    settings = _settings()
    with database(settings) as url:
        _migrate(url)
        typer.echo("Database is at the newest migration.")


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo accounts (skips those that exist)."""
    settings = _settings()
    with database(settings) as url:
        _migrate(url)
        created = asyncio.run(_seed_if_empty(url, settings.demo_password, force=True))
        typer.echo("\n".join(created) or "Demo accounts already exist.")


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    first_name: Annotated[str, typer.Option(prompt=True)] = "Admin",
    last_name: Annotated[str, typer.Option(prompt=True)] = "Mesteri",
    role: Annotated[str, typer.Option(help="admin, support or finance")] = "admin",
) -> None:
    """Create a staff account. It must turn on two-factor authentication at first sign-in."""
    from mesteri.accounts import service as accounts
    from mesteri.kit.db import create_engine, session_factories, unit_of_work
    from mesteri.kit.errors import DomainError

    if role not in ("admin", "support", "finance"):
        typer.secho("role must be admin, support or finance", fg="red", err=True)
        raise typer.Exit(2)
    settings = _settings()

    async def create(url: str) -> None:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            _read, write = session_factories(engine)
            async with unit_of_work(write) as session:
                await accounts.do_create_user(
                    session,
                    email=email,
                    phone=None,
                    password=password,
                    first_name=first_name,
                    last_name=last_name,
                    roles=[role],
                )
        finally:
            await engine.dispose()

    with database(settings) as url:
        _migrate(url)
        try:
            asyncio.run(create(url))
        except DomainError as exc:
            typer.secho(f"Not created: {exc}", fg="red", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"Created {role} {email}. Two-factor authentication is required at sign-in.")


def main() -> None:
    cli(prog_name="mesteri")


if __name__ == "__main__":  # pragma: no cover
    main()

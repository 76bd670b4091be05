"""Demo data for ``make run``: fixed accounts, seeded only into an empty database."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from mesteri.accounts import service as accounts
from mesteri.accounts.models import User
from mesteri.kit.db import WriteSession
from mesteri.payments.sandbox.demo import seed_active_payout_account


@dataclass(frozen=True)
class DemoAccount:
    email: str
    phone: str
    first_name: str
    last_name: str
    roles: tuple[str, ...]
    what: str


DEMO_ACCOUNTS = (
    DemoAccount(
        "client@demo.mesteri.ro", "+40722000001", "Ioana", "Popescu", ("client",), "client"
    ),
    DemoAccount(
        "pro@demo.mesteri.ro",
        "+40722000002",
        "Andrei",
        "Ionescu",
        ("pro",),
        "pro (plumber, Bucharest)",
    ),
    DemoAccount(
        "admin@demo.mesteri.ro",
        "+40722000003",
        "Maria",
        "Dumitru",
        ("admin",),
        "admin (sets up two-factor at first sign-in)",
    ),
)


async def database_is_empty(session: WriteSession) -> bool:
    return (await session.scalar(select(func.count()).select_from(User))) == 0


async def seed(session: WriteSession, password: str, *, pros: int = 300) -> list[DemoAccount]:
    """The fixed accounts, the demo pro's verified plumber profile and a market of ``pros``
    professionals (each part skipped when it exists)."""
    from mesteri import demo_jobs
    from mesteri.pros import demo_market

    created = []
    for account in DEMO_ACCOUNTS:
        if await session.scalar(select(User.id).where(User.email == account.email)):
            continue
        user = await accounts.do_create_user(
            session,
            email=account.email,
            phone=account.phone,
            password=password,
            first_name=account.first_name,
            last_name=account.last_name,
            roles=list(account.roles),
            verified=True,
            check_policy=False,
        )
        if "pro" in account.roles:
            await seed_active_payout_account(session, user.id)
        created.append(account)
    demo_pro = await session.scalar(select(User).where(User.email == "pro@demo.mesteri.ro"))
    if demo_pro is not None:
        await demo_market.make_demo_pro(session, demo_pro)
    await demo_market.seed_market(session, password, pros=pros)
    await demo_jobs.seed_jobs(session, password)
    return created

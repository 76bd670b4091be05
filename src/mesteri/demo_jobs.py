"""Demo jobs for ``make run``: a living market in every state, made through the same
services the API calls (so every row, history entry, timer and ledger entry is real).

The demo client has jobs from draft to completed with the demo pro; other demo clients
post plumbing jobs around Bucharest, so the demo pro's lead board is full; market pros
send proposals. Payments go through the sandbox provider: its webhook event is applied
at once (the handler the webhook endpoint calls) and delivered again over HTTP once the
app runs, where it is recognised as already applied.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from mesteri.accounts import service as accounts
from mesteri.accounts.models import User
from mesteri.accounts.service import ClientInfo, Principal
from mesteri.catalog.reference import category_id, place_id
from mesteri.contracts import service as contracts
from mesteri.contracts.schemas import SignIn
from mesteri.disputes import service as disputes
from mesteri.disputes.schemas import DisputeIn, EvidenceIn, OfferIn
from mesteri.jobs import service as jobs
from mesteri.jobs.lifecycles import JOB_LIFECYCLE
from mesteri.jobs.models import Job
from mesteri.jobs.schemas import JobIn
from mesteri.kit import clock
from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import Actor
from mesteri.messaging import service as messaging
from mesteri.messaging.schemas import MessageIn
from mesteri.milestones import service as milestones
from mesteri.milestones.schemas import MilestoneTerms
from mesteri.payments import providers
from mesteri.payments import service as payments
from mesteri.payments.providers import signing
from mesteri.payments.sandbox.models import SandboxEvent
from mesteri.payments.sandbox.provider import SUCCESS_CARD, SandboxProvider
from mesteri.proposals import service as proposals
from mesteri.proposals.schemas import DeclineIn, ProposalIn, TermsIn
from mesteri.pros.models import ProProfile
from mesteri.reviews import service as reviews
from mesteri.reviews.models import Review
from mesteri.reviews.schemas import Ratings, ResponseIn, ReviewIn

PLUMBING = category_id("plumbing")
BUCHAREST = place_id("RO", "București")
NOWHERE = ClientInfo(ip=None, user_agent="mesteri seed-demo")
OTHER_CLIENTS = [("Elena", "Stan"), ("Radu", "Marin"), ("Ana", "Rusu"), ("Vlad", "Ene")]
LEAD_TITLES = [
    "Înlocuire baterie duș",
    "Montaj mașină de spălat vase",
    "Reparație rezervor WC",
    "Schimbare sifon chiuvetă",
    "Montaj cabină de duș",
    "Înlocuire țevi în baie",
    "Instalare filtru de apă",
    "Reparație robinet care picură",
    "Montaj boiler electric 80 l",
    "Desfundare scurgere cadă",
    "Montaj lavoar și oglindă",
    "Verificare presiune instalație",
]


def _principal(user: User) -> Principal:
    return Principal(user.id, uuid.uuid4(), frozenset(user.roles), mfa=False)


def _terms(*parts: tuple[str, int, list[str]], days: int = 10) -> list[MilestoneTerms]:
    today = clock.now().date()
    return [
        MilestoneTerms(title=t, amount=a, due_date=today + timedelta(days=days * i), dod=d)
        for i, (t, a, d) in enumerate(parts, start=1)
    ]


async def _job(
    session: WriteSession, client: User, title: str, *, publish: bool = True, low: int = 50_000
) -> Job:
    return await jobs.do_create_job(
        session,
        _principal(client),
        JobIn(
            title=title,
            description=f"{title}. Apartament la etajul 3, acces ușor, lucrăm de luni până vineri.",
            category_id=PLUMBING,
            place_id=BUCHAREST,
            address="Strada Lipscani 12, ap. 4, București",
            budget_min=low,
            budget_max=low * 3,
            currency="RON",
            publish=publish,
        ),
    )


async def _propose(
    session: WriteSession, job: Job, pro: User, terms: list[MilestoneTerms], message: str
) -> uuid.UUID:
    proposal = await proposals.do_create(
        session,
        job.id,
        _principal(pro),
        ProposalIn(
            price=sum(t.amount for t in terms),
            currency="RON",
            milestones=terms,
            duration_days=14,
            message=message,
        ),
    )
    return proposal.id


async def _hire(
    session: WriteSession, client: User, pro: User, job: Job, terms: list[MilestoneTerms]
) -> uuid.UUID:
    proposal_id = await _propose(session, job, pro, terms, "Pot începe săptămâna asta.")
    accepted = await proposals.do_accept(session, proposal_id, _principal(client))
    return accepted.contract_id


async def _sign(session: WriteSession, contract_id: uuid.UUID, *people: User) -> None:
    for person in people:
        await contracts.do_sign(
            session,
            contract_id,
            _principal(person),
            SignIn(full_name=f"{person.first_name} {person.last_name}", agree=True),
            NOWHERE,
        )


async def _fund(session: WriteSession, client: User, milestone_id: uuid.UUID) -> None:
    """Pay the checkout with the sandbox's success card and apply its webhook event."""
    provider = providers.current()
    assert isinstance(provider, SandboxProvider)
    result = await milestones.do_transition(session, milestone_id, "fund", _principal(client))
    assert result.funding is not None
    ref = urlsplit(result.funding.checkout_url).path.rsplit("/", 1)[-1]
    await provider.pay(ref, card_number=SUCCESS_CARD, bnpl=None)
    event = await session.scalar(
        select(SandboxEvent).where(
            SandboxEvent.type == "payment_intent.succeeded",
            SandboxEvent.payload["data"]["object"]["id"].astext == ref,
        )
    )
    assert event is not None
    body = json.dumps(event.payload, separators=(",", ":")).encode()
    header = signing.signature_header(body, provider.secret, int(clock.now().timestamp()))
    parsed = provider.parse_webhook(body, {"stripe-signature": header})
    await payments.do_handle_event(session, "sandbox", parsed)


async def _deliver(session: WriteSession, pro: User, milestone_id: uuid.UUID, note: str) -> None:
    await milestones.do_transition(
        session, milestone_id, "submit", _principal(pro), data={"note": note, "dod_done": [0, 1]}
    )


async def _say(session: WriteSession, contract_id: uuid.UUID, who: User, text: str) -> None:
    """A message in the contract's job room, written as ``who``."""
    room = await messaging.contract_conversation(session, contract_id)
    assert room is not None
    await messaging.do_post(session, room.id, _principal(who), MessageIn(body=text))


async def _ids(session: WriteSession, contract_id: uuid.UUID) -> list[uuid.UUID]:
    return [m.id for m in await milestones.list_for_contract(session, contract_id)]


async def seed_jobs(session: WriteSession, password: str) -> None:
    """Seeded once, into a market that has the demo accounts and pros but no jobs."""
    if await session.scalar(select(func.count()).select_from(Job)):
        return
    client = await session.scalar(select(User).where(User.email == "client@demo.mesteri.ro"))
    pro = await session.scalar(select(User).where(User.email == "pro@demo.mesteri.ro"))
    if client is None or pro is None:
        return
    others = [
        await _other_client(session, i, first, last, password)
        for i, (first, last) in enumerate(OTHER_CLIENTS, start=2)
    ]
    market_pros = list(
        (
            await session.scalars(
                select(User)
                .join(ProProfile, ProProfile.user_id == User.id)
                .where(
                    ProProfile.verification_state == "verified",
                    ProProfile.primary_category_id == PLUMBING,
                    User.id != pro.id,
                )
                .order_by(User.email)
                .limit(3)
            )
        ).all()
    )
    rng = random.Random(11)
    await _client_jobs(session, client, pro, market_pros)
    await _past_work(session, others, pro)
    for n, title in enumerate(LEAD_TITLES):
        job = await _job(session, others[n % len(others)], title, low=rng.choice([30_000, 60_000]))
        if n < 2:  # the demo pro already answered two of them
            await _propose(
                session,
                job,
                pro,
                _terms(("Manoperă și materiale", 90_000, ["Montat", "Probat fără scurgeri"])),
                "Pot veni mâine dimineață.",
            )
        elif market_pros and n % 3 == 0:
            await _propose(
                session,
                job,
                market_pros[n % len(market_pros)],
                _terms(("Lucrare completă", 120_000, ["Gata", "Curat"])),
                "Disponibil.",
            )


# Earlier paid jobs of the demo pro for the other clients, and how the clients rated
# them: (title, amount, overall, quality, punctuality, communication, value, comment).
PAST_WORK = [
    ("Montaj baterie lavoar", 30_000, 5, 5, 5, 5, 5, "A explicat tot ce a făcut."),
    ("Înlocuire vas WC", 60_000, 5, 5, 4, 5, 4, "Lucrare impecabilă, a întârziat puțin."),
    ("Reparație scurgere sub chiuvetă", 25_000, 4, 4, 5, 4, 4, "Problema rezolvată din prima."),
    (
        "Montaj boiler 50 l",
        45_000,
        3,
        4,
        2,
        3,
        3,
        "Merge, dar a venit cu o zi mai târziu.",
    ),
]


async def _past_work(session: WriteSession, clients: list[User], pro: User) -> None:
    """Paid jobs with published reviews both ways (and one answer), so the demo pro has
    a real reputation."""
    for n, (title, amount, *ratings, comment) in enumerate(PAST_WORK):
        client = clients[n % len(clients)]
        job = await _job(session, client, title)
        contract_id = await _hire(
            session, client, pro, job, _terms((title, amount, ["Montat", "Probat"]))
        )
        await _sign(session, contract_id, client, pro)
        (only,) = await _ids(session, contract_id)
        await _fund(session, client, only)
        await _deliver(session, pro, only, "Lucrarea e gata.")
        await milestones.do_transition(session, only, "accept", _principal(client))
        review = await _review(session, contract_id, client, pro, ratings, comment)
        if ratings[0] <= 3:
            await reviews.do_respond(
                session,
                review.id,
                _principal(pro),
                ResponseIn(body="Îmi pare rău pentru întârziere: piesa a venit greu."),
            )


async def _review(
    session: WriteSession,
    contract_id: uuid.UUID,
    client: User,
    pro: User,
    ratings: Sequence[Any],
    comment: str,
) -> Review:
    """The client's review of the pro, then the pro's of the client (both publish)."""
    overall, quality, punctuality, communication, value = ratings
    written = await reviews.do_write(
        session,
        contract_id,
        _principal(client),
        ReviewIn(
            ratings=Ratings(
                overall=overall,
                quality=quality,
                punctuality=punctuality,
                communication=communication,
                value=value,
            ),
            comment=comment,
        ),
    )
    await reviews.do_write(
        session,
        contract_id,
        _principal(pro),
        ReviewIn(ratings=Ratings(overall=5), comment="Client corect, plată la timp."),
    )
    return written


async def _other_client(
    session: WriteSession, n: int, first: str, last: str, password: str
) -> User:
    return await accounts.do_create_user(
        session,
        email=f"client{n}@demo.mesteri.ro",
        phone=f"+4072200010{n}",
        password=password,
        first_name=first,
        last_name=last,
        roles=["client"],
        verified=True,
        check_policy=False,
    )


async def _client_jobs(
    session: WriteSession, client: User, pro: User, market_pros: list[User]
) -> None:
    """The demo client's jobs, one per state, most of them with the demo pro."""
    await _job(session, client, "Renovare completă baie", publish=False)

    # Open, with proposals to compare (one shortlisted, one countered) and an invite.
    boiler = await _job(session, client, "Înlocuire centrală termică", low=300_000)
    offers = [
        await _propose(
            session,
            boiler,
            p,
            _terms(
                (
                    "Demontare și montaj",
                    400_000 + 50_000 * i,
                    ["Centrala veche scoasă", "Centrala nouă pornită", "Probă de presiune"],
                )
            ),
            "Lucrez cu centrale de 12 ani.",
        )
        for i, p in enumerate(market_pros)
    ]
    if offers:
        await proposals.do_shortlist(session, offers[0], _principal(client))
    if len(offers) > 1:
        await proposals.do_counter(
            session,
            offers[1],
            _principal(client),
            TermsIn(
                price=420_000,
                milestones=_terms(("Demontare și montaj", 420_000, ["Centrala nouă pornită"])),
                message="Putem face 4 200 lei?",
            ),
        )
    radiator = await _job(session, client, "Montaj calorifer nou în dormitor", low=80_000)
    profile = await session.scalar(select(ProProfile.id).where(ProProfile.user_id == pro.id))
    if profile is not None:
        await jobs.do_invite(
            session,
            radiator.id,
            _principal(client),
            [profile],
            "Ați lucrat bine la vecina mea.",
        )

    # Hired, waiting for the pro's signature.
    pipe = await _job(session, client, "Reparație țeavă spartă în bucătărie")
    unsigned = await _hire(
        session, client, pro, pipe, _terms(("Reparație", 45_000, ["Fără scurgeri"]))
    )
    await _sign(session, unsigned, client)
    # Before both signed, the pro's number is hidden from the client (and kept for staff).
    await _say(
        session,
        unsigned,
        pro,
        "Am văzut contractul, îl semnez diseară. Dacă e urgent: 0722 123 456.",
    )

    # In progress: one milestone paid, one delivered (waiting for review), one to fund.
    flat = await _job(session, client, "Instalație sanitară nouă în apartament", low=500_000)
    active = await _hire(
        session,
        client,
        pro,
        flat,
        _terms(
            ("Trasee noi de țeavă", 300_000, ["Țevi PPR montate", "Probă de presiune 24 h"]),
            ("Obiecte sanitare", 250_000, ["Vas WC și lavoar montate", "Baterii montate"]),
            ("Finisaje și predare", 150_000, ["Silicon și curățenie", "Predare cu client"]),
        ),
    )
    await _sign(session, active, client, pro)
    await _say(
        session, active, client, "Bună ziua! Puteți începe luni? Vă las cheia la vecina de la 12."
    )
    await _say(session, active, pro, "Da, ajung luni la 8:30. Vă sun la 0744 555 010 când plec.")
    first, second, _third = await _ids(session, active)
    await _fund(session, client, first)
    await _deliver(session, pro, first, "Traseele sunt gata, proba a ținut 24 de ore.")
    await milestones.do_transition(session, first, "accept", _principal(client))
    await _fund(session, client, second)
    await _deliver(session, pro, second, "Vasul WC și lavoarul sunt montate, fără scurgeri.")

    # Completed: paid in full.
    tap = await _job(session, client, "Schimbare robinet bucătărie")
    done = await _hire(
        session, client, pro, tap, _terms(("Montaj robinet", 35_000, ["Montat", "Probat"]))
    )
    await _sign(session, done, client, pro)
    (only,) = await _ids(session, done)
    await _fund(session, client, only)
    await _deliver(session, pro, only, "Robinetul nou e montat.")
    await milestones.do_transition(session, only, "accept", _principal(client))
    await _review(session, done, client, pro, (5, 5, 5, 5, 5), "Rapid, curat, om serios.")

    # Disputed: the client contests a delivery, the pro offered a split.
    tub = await _job(session, client, "Montaj cadă și baterie")
    contested = await _hire(
        session, client, pro, tub, _terms(("Montaj cadă", 80_000, ["Cadă montată", "Silicon"]))
    )
    await _sign(session, contested, client, pro)
    (tub_milestone,) = await _ids(session, contested)
    await _fund(session, client, tub_milestone)
    await _deliver(session, pro, tub_milestone, "Cada e montată și siliconată.")
    dispute = await disputes.do_open(
        session,
        tub_milestone,
        _principal(client),
        DisputeIn(
            reason="Cada se mișcă și siliconul s-a desprins după două zile.",
            evidence=EvidenceIn(body="Am filmat cum se mișcă cada când intri în ea."),
        ),
    )
    await disputes.do_offer(
        session,
        dispute.id,
        _principal(pro),
        OfferIn(pro_amount=56_000, client_amount=24_000, note="Revin să refac siliconul."),
    )

    # Cancelled, and expired (nobody was hired in time).
    drain = await _job(session, client, "Desfundare canalizare bloc")
    await jobs.do_cancel(session, drain.id, _principal(client))
    old = await _job(session, client, "Montaj hidrofor la casă")
    old.expires_at = clock.now()
    await JOB_LIFECYCLE.apply(session, old, "expire", actor=Actor.SYSTEM)
    if len(offers) > 2:
        await proposals.do_decline(
            session, offers[2], _principal(client), DeclineIn(reason="Am ales altă ofertă.")
        )

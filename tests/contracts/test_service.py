"""Contracts made from accepted proposals: their terms, the PDF (diacritics, Hebrew, the
exact bytes and their hash), and how a contract ends when its milestones settle."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.orm import undefer

from mesteri.accounts.service import Principal
from mesteri.catalog.reference import category_id, place_id
from mesteri.config import get_settings
from mesteri.contracts import document, service
from mesteri.contracts.events import ContractEnded
from mesteri.contracts.models import Contract, ContractVersion
from mesteri.contracts.terms import render
from mesteri.kit import events
from mesteri.kit.db import WriteSession
from mesteri.milestones import service as milestones
from mesteri.milestones.events import MilestoneSettled
from mesteri.milestones.models import Milestone
from mesteri.payments import fees
from tests.fixtures.contracts import (
    CLIENT_NAME,
    PRO_NAME,
    Deal,
    make_contract,
    pdf_text,
    sign_both,
)

TEL_AVIV = place_id("IL", "Tel Aviv-Yafo")


async def _version(db: WriteSession, contract_id: uuid.UUID, number: int = 1) -> ContractVersion:
    row = await db.scalar(
        select(ContractVersion)
        .options(undefer(ContractVersion.document))
        .where(ContractVersion.contract_id == contract_id, ContractVersion.number == number)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def _milestones(db: WriteSession, contract_id: uuid.UUID) -> list[Milestone]:
    rows = await db.scalars(
        select(Milestone)
        .where(Milestone.contract_id == contract_id)
        .order_by(Milestone.position)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def test_contract_from_a_proposal_states_every_term(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(client, db)
    contract = deal.contract
    assert contract.state == "awaiting_signatures"
    assert (contract.latest_version, contract.signed_version) == (1, None)
    assert (contract.price, contract.currency, contract.market) == (100000, "RON", "ro")
    assert (contract.client_id, contract.pro_user_id) == (deal.client.user_id, deal.pro.user_id)

    version = await _version(db, contract.id)
    assert (version.state, version.language) == ("pending", "ro")
    terms = version.terms
    assert terms["client"]["name"] == CLIENT_NAME
    assert terms["client"]["city"] == "București"
    assert terms["pro"]["name"] == PRO_NAME
    assert terms["pro"]["display_name"] == "Mihai Instalatorul"
    assert (terms["pro"]["business_type"], terms["pro"]["business_id"]) == ("pfa", "14399840")
    assert terms["pro"]["verified_at"] is not None
    assert terms["job"]["title"] == deal.job.title
    assert terms["job"]["category_slug"] == "plumbing"
    assert [(m["title"], m["amount"]) for m in terms["milestones"]] == [
        ("Materiale și demontare", 30000),
        ("Montaj și probă", 70000),
    ]
    assert terms["milestones"][0]["dod"] == [
        "Materialele sunt pe șantier",
        "Bateria veche demontată",
    ]
    # The fee as payments takes it: per milestone, each rounded down.
    settings = get_settings()
    quotes = [fees.quote(settings, a, category="plumbing") for a in (30000, 70000)]
    assert terms["fee"] == {
        "bps": 1000,
        "platform_fee": sum(q.platform_fee for q in quotes),
        "vat_on_fee": sum(q.vat_on_fee for q in quotes),
        "vat_bps": 2100,
        "pro_net": sum(q.pro_net for q in quotes),
    }
    assert terms["fee"]["platform_fee"] + terms["fee"]["pro_net"] == 100000
    assert terms["cancellation"] == {
        "auto_accept_days": settings.auto_accept_days,
        "overdue_refund_days": settings.overdue_refund_days,
    }
    assert terms["disputes"] == {"negotiation_days": 7, "mediation_days": 7}
    assert terms["software"] is False
    assert terms["law"] == {"market": "ro", "county": "București"}
    keys = [c.key for c in render(terms, "en").clauses]
    assert keys == ["fee", "escrow", "acceptance", "cancellation", "disputes", "amendments", "law"]

    # The milestones exist in draft, in the proposal's order, with their ids in the terms.
    rows = await _milestones(db, contract.id)
    assert [(m.position, m.title, m.amount, m.state) for m in rows] == [
        (1, "Materiale și demontare", 30000, "draft"),
        (2, "Montaj și probă", 70000, "draft"),
    ]
    assert [m["id"] for m in terms["milestones"]] == [str(m.id) for m in rows]

    # Both parties are asked to sign: the client, and the pro told their proposal won.
    for party, kind in ((deal.client, "contract.to_sign"), (deal.pro, "proposal.accepted")):
        outbox = await client.get("/api/v1/dev/outbox", params={"to": party.email})
        kinds = [item["kind"] for item in outbox.json()["items"]]
        assert kinds.count(kind) == 1
        mail = next(i for i in outbox.json()["items"] if i["kind"] == kind)
        assert f"/contracts/{contract.id}" in mail["body"]


async def test_pdf_has_diacritics_and_its_hash_is_of_the_exact_bytes(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(client, db)
    version = await _version(db, deal.contract.id)
    assert version.document.startswith(b"%PDF-")
    assert version.document_sha256 == document.sha256(version.document)
    text_ = pdf_text(version.document)
    for expected in (
        "Înlocuire baterie și sifon la baie",
        "Materialele sunt pe șantier",
        "Montaj și probă",
        "Fără scurgeri după 24 h",
        CLIENT_NAME,
        PRO_NAME,
        "14399840",
        "1.000,00 RON",  # Romanian number format
        "Contract de prestări servicii",  # the document is in the market's language
        "Versiunea 1",
    ):
        assert expected in text_, expected
    # Deterministic: the same terms, language and time give the same bytes.
    again = document.build_pdf(version.terms, version.language, version.created_at)
    assert again == version.document
    later = document.build_pdf(
        version.terms, version.language, version.created_at + timedelta(seconds=1)
    )
    assert later != version.document


async def test_israeli_contract_is_hebrew_right_to_left(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(
        client,
        db,
        job={
            "market": "il",
            "currency": "ILS",
            "place_id": TEL_AVIV,
            "lat": 32.0853,
            "lon": 34.7818,
            "title": "Replace the kitchen tap",
            "description": "החלפת ברז במטבח",
        },
    )
    version = await _version(db, deal.contract.id)
    assert version.language == "he"
    assert deal.contract.currency == "ILS"
    assert version.terms["law"]["market"] == "il"
    assert version.terms["fee"]["vat_bps"] == 1800
    text_ = pdf_text(version.document)
    # Shaped right to left, the Hebrew words come back in reading order.
    for expected in ("החלפת ברז במטבח", "אינסטלציה", "תל אביב"):
        assert expected in text_, expected
    assert document.sha256(version.document) == version.document_sha256


async def test_software_work_gets_confidentiality_and_ip_clauses(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    deal = await make_contract(
        client, db, job={"category_id": category_id("rest-api"), "title": "REST API pentru stoc"}
    )
    version = await _version(db, deal.contract.id)
    assert version.terms["software"] is True
    keys = [c.key for c in render(version.terms, "en").clauses]
    assert "nda" in keys
    assert "ip" in keys
    text_ = pdf_text(version.document)
    romanian = render(version.terms, "ro")
    nda = next(c for c in romanian.clauses if c.key == "nda")
    assert nda.title in text_


def _principal(user_id: uuid.UUID, role: str) -> Principal:
    return Principal(user_id, uuid.uuid4(), frozenset({role}), False)


async def _signed(client: httpx.AsyncClient, db: WriteSession) -> Deal:
    deal = await make_contract(client, db)
    await sign_both(client, deal)
    return deal


async def _state(db: WriteSession, contract_id: uuid.UUID) -> Contract:
    row = await db.get(Contract, contract_id, populate_existing=True)
    assert row is not None
    return row


async def test_contract_is_cancelled_when_every_milestone_is_cancelled(
    client: httpx.AsyncClient, db: WriteSession, ended: list[ContractEnded]
) -> None:
    deal = await _signed(client, db)
    first, second = await _milestones(db, deal.contract.id)
    client_principal = _principal(deal.client.user_id, "client")
    await milestones.do_transition(db, first.id, "cancel", client_principal)
    assert (await _state(db, deal.contract.id)).state == "active"
    assert ended == []
    await milestones.do_transition(db, second.id, "cancel", client_principal)
    contract = await _state(db, deal.contract.id)
    assert contract.state == "cancelled"
    assert contract.completed_at is not None
    assert ended == [ContractEnded(deal.contract.id, deal.job.id, "cancelled")]


async def test_contract_completes_once_when_the_last_milestone_settles(
    client: httpx.AsyncClient, db: WriteSession, ended: list[ContractEnded]
) -> None:
    deal = await _signed(client, db)
    first, second = await _milestones(db, deal.contract.id)
    first_id, second_id = first.id, second.id
    # Paid through escrow (the payments path is tested with the milestone lifecycle).
    await db.execute(
        text("UPDATE milestones SET state = 'released' WHERE id = :id"), {"id": first_id}
    )
    db.expire(first)
    await events.publish(db, MilestoneSettled(first_id, deal.contract.id, "released"))
    assert (await _state(db, deal.contract.id)).state == "active"
    assert ended == []

    await milestones.do_transition(db, second_id, "cancel", _principal(deal.pro.user_id, "pro"))
    contract = await _state(db, deal.contract.id)
    assert contract.state == "completed"
    assert ended == [ContractEnded(deal.contract.id, deal.job.id, "completed")]
    # A replayed event changes nothing.
    await events.publish(db, MilestoneSettled(second_id, deal.contract.id, "cancelled"))
    assert len(ended) == 1
    history = await db.scalar(
        text(
            "SELECT count(*) FROM state_transitions WHERE entity = 'contract' "
            "AND entity_id = :id AND transition = 'complete'"
        ),
        {"id": deal.contract.id},
    )
    assert history == 1


async def test_settled_event_of_an_unsigned_contract_changes_nothing(
    client: httpx.AsyncClient, db: WriteSession, ended: list[ContractEnded]
) -> None:
    deal = await make_contract(client, db)
    first, _ = await _milestones(db, deal.contract.id)
    await events.publish(db, MilestoneSettled(first.id, deal.contract.id, "cancelled"))
    assert (await _state(db, deal.contract.id)).state == "awaiting_signatures"
    assert ended == []


async def test_a_withdrawn_contract_frees_the_job_for_another_contract(
    client: httpx.AsyncClient, db: WriteSession, ended: list[ContractEnded]
) -> None:
    deal = await make_contract(client, db)
    await service.do_withdraw(db, deal.contract.id, _principal(deal.client.user_id, "client"))
    assert ended == [ContractEnded(deal.contract.id, deal.job.id, "withdrawn")]
    assert [m.state for m in await _milestones(db, deal.contract.id)] == ["cancelled"] * 2
    # The same job hires again (another proposal by the same pro, here).
    from tests.fixtures.market import insert_proposal

    proposal = await insert_proposal(db, deal.job, deal.pro, price=120000)
    second = await service.do_create_from_proposal(db, job=deal.job, proposal=proposal)
    assert second.id != deal.contract.id
    live = await db.scalar(
        select(func.count())
        .select_from(Contract)
        .where(Contract.job_id == deal.job.id, Contract.state != "cancelled")
    )
    assert live == 1

"""Contracts: the statement of work made from an accepted proposal, its versions (each a
PDF with its SHA-256), the parties' signatures, amendments, and the contract's end.

Other modules call ``do_create_from_proposal`` (proposals, when a client accepts) and
listen for ``ContractEnded``; the API and pages call ``access_*``, ``load_view``,
``do_sign``, ``do_propose_amendment`` and ``do_withdraw``.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.orm import undefer

from mesteri.accounts import service as accounts
from mesteri.accounts.service import ClientInfo, Principal
from mesteri.catalog import service as catalog
from mesteri.config import MARKETS, get_settings
from mesteri.contracts import document
from mesteri.contracts import terms as terms_mod
from mesteri.contracts.errors import (
    AlreadySignedError,
    AmendmentUnchangedError,
    AmountTooSmallError,
    ConsentRequiredError,
    ContractClosedError,
    ContractNotActiveError,
    ContractNotFoundError,
    NameMismatchError,
    NotAPartyError,
    NothingToSignError,
    PriceMismatchError,
    StaleDocumentError,
    VersionNotFoundError,
)
from mesteri.contracts.events import ContractCreated, ContractEnded, ContractSigned
from mesteri.contracts.lifecycles import CONTRACT_LIFECYCLE
from mesteri.contracts.models import (
    Contract,
    ContractState,
    ContractVersion,
    Signature,
    VersionState,
)
from mesteri.contracts.schemas import AmendmentIn, SignIn
from mesteri.jobs.models import Job
from mesteri.kit import clock, events
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.i18n import lazy
from mesteri.kit.ids import new_id
from mesteri.kit.money import Money
from mesteri.kit.pagination import keyset, page_of
from mesteri.kit.statemachine import Actor, StateTransitionRecord
from mesteri.kit.text import fold
from mesteri.milestones import service as milestones
from mesteri.milestones.events import MilestoneSettled
from mesteri.milestones.lifecycles import MILESTONE_LIFECYCLE
from mesteri.milestones.models import Milestone, MilestoneState
from mesteri.milestones.schemas import MilestoneTerms
from mesteri.notifications import service as notifications
from mesteri.payments import fees
from mesteri.proposals.models import Proposal
from mesteri.pros import service as pros

_C = ContractState
CLIENT, PRO = "client", "pro"
# Contracts whose milestones an amendment is rewriting: their settled milestones are
# looked at once the amendment is applied, not in the middle of it.
_AMENDING = "contracts.amending"
LIVE = frozenset({_C.AWAITING_SIGNATURES, _C.ACTIVE})


# ---------------------------------------------------------------- terms


async def _person_name(session: ReadSession, user_id: uuid.UUID) -> str:
    """A user's legal name as registered (what they type to sign)."""
    first, last = (await accounts.names_of(session, [user_id])).get(user_id, ("", ""))
    return " ".join(f"{first} {last}".split())


def _fee_terms(market: str, category_slug: str, amounts: Sequence[int]) -> dict[str, Any]:
    """The platform fee as the payments module will take it: per milestone, rounded down."""
    settings = get_settings().model_copy(update={"market": market})
    quotes = [fees.quote(settings, amount, category=category_slug) for amount in amounts]
    return {
        "bps": quotes[0].fee_bps
        if quotes
        else fees.fee_bps_for(settings, category_slug, referral=False),
        "platform_fee": sum(q.platform_fee for q in quotes),
        "vat_on_fee": sum(q.vat_on_fee for q in quotes),
        "vat_bps": MARKETS[market].vat_basis_points,
        "pro_net": sum(q.pro_net for q in quotes),
    }


def _place_terms(place_id: uuid.UUID) -> dict[str, Any]:
    info = catalog.place_info(place_id) or {}
    names = info.get("names") or {}
    assert isinstance(names, dict)
    return {"name": str(info.get("name") or ""), **{k: str(v) for k, v in names.items()}}


def _is_software(category_id: uuid.UUID) -> bool:
    row = catalog.get_category(category_id)
    if row.kind == terms_mod.SOFTWARE_KIND:
        return True
    return any(
        catalog.get_category(a).kind == terms_mod.SOFTWARE_KIND
        for a in catalog.ancestors(category_id)
    )


def _proposal_terms(proposal: Proposal) -> list[MilestoneTerms]:
    return [
        MilestoneTerms(
            title=m["title"],
            amount=m["amount"],
            due_date=m.get("due_date") or None,
            dod=list(m.get("dod") or []),
        )
        for m in proposal.milestones
    ]


async def _initial_terms(
    session: ReadSession, contract: Contract, job: Job, proposal: Proposal
) -> dict[str, Any]:
    settings = get_settings()
    category = catalog.get_category(job.category_id)
    place = catalog.place_info(job.place_id) or {}
    county = str(place.get("county") or "")
    profile = await pros.access_profile(session, proposal.pro_id)
    verified_at = profile.verified_at if pros.is_verified(profile) else None
    return {
        "schema": terms_mod.SCHEMA,
        "contract_id": str(contract.id),
        "market": job.market,
        "currency": proposal.currency,
        "client": {
            "user_id": str(job.client_id),
            "name": await _person_name(session, job.client_id),
            "city": _place_terms(job.place_id)["name"],
            # Clients register as people; a business client's id joins here once
            # accounts keep one.
            "business_id": None,
        },
        "pro": {
            "user_id": str(proposal.pro_user_id),
            "pro_id": str(proposal.pro_id),
            "name": await _person_name(session, proposal.pro_user_id),
            "display_name": profile.display_name,
            "business_type": profile.business_type,
            "business_id": profile.business_id,
            "verified_at": verified_at.isoformat() if verified_at else None,
        },
        "job": {
            "id": str(job.id),
            "title": job.title,
            "description": job.description,
            "category_id": str(category.id),
            "category_slug": category.slug,
            "category": dict(category.names),
            "place_id": str(job.place_id),
            "place": _place_terms(job.place_id),
            "county": county,
            "start_date": job.start_date.isoformat() if job.start_date else None,
            "end_date": job.end_date.isoformat() if job.end_date else None,
        },
        "message": proposal.message,
        "duration_days": proposal.duration_days,
        "cancellation": {
            "auto_accept_days": settings.auto_accept_days,
            "overdue_refund_days": settings.overdue_refund_days,
        },
        "disputes": {
            "negotiation_days": terms_mod.DISPUTE_NEGOTIATION_DAYS,
            "mediation_days": terms_mod.DISPUTE_MEDIATION_DAYS,
        },
        "software": _is_software(job.category_id),
        "law": {"market": job.market, "county": county},
        "amendment": None,
    }


async def _version(
    contract: Contract,
    number: int,
    terms: dict[str, Any],
    milestone_terms: Sequence[Any],
    *,
    created_by: uuid.UUID | None,
    reason: str = "",
) -> ContractVersion:
    """A new version: the terms completed with its milestones, price and fee, and the PDF."""
    now = clock.now()
    terms = copy.deepcopy(terms)
    items = terms_mod.milestone_dicts(milestone_terms)
    terms.update(
        version=number,
        issued_on=terms_mod.issued_on(now),
        milestones=items,
        price=sum(m["amount"] for m in items),
        fee=_fee_terms(
            terms["market"], terms["job"]["category_slug"], [m["amount"] for m in items]
        ),
    )
    language = MARKETS[terms["market"]].default_language
    # Rendering takes a few hundred milliseconds of CPU: off the event loop.
    pdf = await asyncio.to_thread(document.build_pdf, terms, language, now)
    return ContractVersion(
        id=new_id(),
        contract_id=contract.id,
        number=number,
        state=VersionState.PENDING,
        terms=terms,
        language=language,
        document=pdf,
        document_sha256=document.sha256(pdf),
        reason=reason,
        created_by=created_by,
        created_at=now,
        signed_at=None,
    )


# ---------------------------------------------------------------- creation


async def do_create_from_proposal(
    session: WriteSession, *, job: Job, proposal: Proposal
) -> Contract:
    """The contract of an accepted proposal (``job`` and ``proposal`` locked by the
    caller): version 1 with its PDF, the milestones in draft, both parties asked to sign."""
    now = clock.now()
    contract = Contract(
        id=new_id(),
        job_id=job.id,
        proposal_id=proposal.id,
        client_id=job.client_id,
        pro_id=proposal.pro_id,
        pro_user_id=proposal.pro_user_id,
        market=job.market,
        category_id=job.category_id,
        title=job.title,
        currency=proposal.currency,
        price=proposal.price,
        state=_C.AWAITING_SIGNATURES,
        signed_version=None,
        latest_version=1,
        created_at=now,
        updated_at=now,
    )
    terms = await _initial_terms(session, contract, job, proposal)
    session.add(contract)
    await session.flush()
    items = _proposal_terms(proposal)
    created = await milestones.do_create_for_contract(session, _parties(contract), items)
    kept = [item.model_copy(update={"id": m.id}) for item, m in zip(items, created, strict=True)]
    version = await _version(contract, 1, terms, kept, created_by=None)
    contract.price = version.terms["price"]
    session.add(version)
    await CONTRACT_LIFECYCLE.start(session, contract)
    await session.flush()
    await events.publish(
        session,
        ContractCreated(
            contract.id, contract.job_id, contract.client_id, contract.pro_user_id, contract.pro_id
        ),
    )
    await notifications.do_notify(
        session,
        contract.client_id,
        kind="contract.to_sign",
        subject=lazy("Your contract for “{title}” is ready to sign"),
        body=lazy(
            "The contract for “{title}” is ready. Read it, then sign it by typing your full name."
        ),
        title=contract.title,
        link=f"/contracts/{contract.id}",
    )
    await notifications.do_notify(
        session,
        contract.pro_user_id,
        kind="proposal.accepted",
        subject=lazy("Your proposal for “{title}” was accepted"),
        body=lazy(
            "The client hired you for “{title}”. Read the contract, then sign it by typing "
            "your full name: the work starts when both of you have signed."
        ),
        title=contract.title,
        link=f"/contracts/{contract.id}",
    )
    return contract


def _parties(contract: Contract) -> milestones.Parties:
    return milestones.Parties(
        contract.id, contract.job_id, contract.client_id, contract.pro_user_id, contract.currency
    )


# ---------------------------------------------------------------- access


def party_of(contract: Contract, principal: Principal) -> str | None:
    if principal.user_id == contract.client_id:
        return CLIENT
    if principal.user_id == contract.pro_user_id:
        return PRO
    return None


def _is_staff(principal: Principal) -> bool:
    return principal.is_staff and principal.mfa


def roles_of(contract: Contract, principal: Principal) -> set[Actor]:
    roles: set[Actor] = set()
    if principal.user_id == contract.client_id:
        roles.add(Actor.CLIENT)
    if principal.user_id == contract.pro_user_id:
        roles.add(Actor.PRO)
    if _is_staff(principal):
        roles.add(Actor.OPERATOR)
    return roles


async def get_contract(session: ReadSession, contract_id: uuid.UUID) -> Contract | None:
    """The contract, for other modules' event handlers (no caller to check)."""
    return await session.get(Contract, contract_id)


async def access_contract(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal
) -> Contract:
    """The contract for its parties and staff who proved two-factor; anyone else is told
    it does not exist."""
    contract = await session.get(Contract, contract_id)
    if contract is None or not roles_of(contract, principal):
        raise ContractNotFoundError()
    return contract


async def _lock(session: WriteSession, contract_id: uuid.UUID) -> Contract:
    contract = await session.get(
        Contract, contract_id, with_for_update=True, populate_existing=True
    )
    if contract is None:
        raise ContractNotFoundError()
    return contract


async def list_versions(session: ReadSession, contract_id: uuid.UUID) -> list[ContractVersion]:
    """Every version, oldest first (without the PDF bytes)."""
    query = select(ContractVersion).where(ContractVersion.contract_id == contract_id)
    return list((await session.scalars(query.order_by(ContractVersion.number))).all())


async def list_signatures(session: ReadSession, contract_id: uuid.UUID) -> list[Signature]:
    query = select(Signature).where(Signature.contract_id == contract_id)
    return list((await session.scalars(query.order_by(Signature.signed_at, Signature.id))).all())


async def _version_row(
    session: ReadSession, contract_id: uuid.UUID, number: int, *, lock: bool = False
) -> ContractVersion:
    query = select(ContractVersion).where(
        ContractVersion.contract_id == contract_id, ContractVersion.number == number
    )
    if lock:
        query = query.with_for_update()
    version = await session.scalar(query)
    if version is None:
        raise VersionNotFoundError(number=number)
    return version


async def access_document(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal, number: int | None = None
) -> ContractVersion:
    """A version with its PDF bytes (the latest unless ``number``), for parties and staff."""
    contract = await access_contract(session, contract_id, principal)
    query = (
        select(ContractVersion)
        .options(undefer(ContractVersion.document))
        .where(
            ContractVersion.contract_id == contract.id,
            ContractVersion.number == (number or contract.latest_version),
        )
    )
    version = await session.scalar(query)
    if version is None:
        raise VersionNotFoundError(number=number or contract.latest_version)
    return version


@dataclass(frozen=True)
class ContractView:
    """A contract with everything its page and API answer show."""

    contract: Contract
    versions: list[ContractVersion]
    signatures: list[Signature]
    milestones: Sequence[Milestone]
    history: list[StateTransitionRecord]
    my_party: str | None
    actions: list[str]

    @property
    def latest(self) -> ContractVersion:
        return self.versions[-1]

    @property
    def terms(self) -> dict[str, Any]:
        """The terms in force (the signed version), else the latest."""
        number = self.contract.signed_version or self.contract.latest_version
        return next(v for v in self.versions if v.number == number).terms

    @property
    def pending(self) -> ContractVersion | None:
        latest = self.latest
        if latest.state == VersionState.PENDING and self.contract.state in LIVE:
            return latest
        return None

    def signatures_of(self, version: ContractVersion) -> list[Signature]:
        return [s for s in self.signatures if s.version_id == version.id]

    def signed_by(self, version: ContractVersion, party: str | None) -> bool:
        return any(s.party == party for s in self.signatures_of(version))


def actions_for(
    contract: Contract,
    principal: Principal,
    pending: ContractVersion | None,
    signatures: Sequence[Signature],
) -> list[str]:
    """What this user may do with the contract now: ``sign``, ``amend``, ``withdraw``."""
    party = party_of(contract, principal)
    out: list[str] = []
    if (
        party is not None
        and pending is not None
        and not any(s.version_id == pending.id and s.party == party for s in signatures)
    ):
        out.append("sign")
    if party is not None and contract.state == _C.ACTIVE:
        out.append("amend")
    roles = roles_of(contract, principal)
    if "withdraw" in CONTRACT_LIFECYCLE.available(_C(contract.state), roles, contract):
        out.append("withdraw")
    return out


async def load_view(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal
) -> ContractView:
    contract = await access_contract(session, contract_id, principal)
    versions = await list_versions(session, contract.id)
    signatures = await list_signatures(session, contract.id)
    rows = await milestones.list_for_contract(session, contract.id)
    history_query = (
        select(StateTransitionRecord)
        .where(
            StateTransitionRecord.entity == CONTRACT_LIFECYCLE.entity,
            StateTransitionRecord.entity_id == contract.id,
        )
        .order_by(StateTransitionRecord.at, StateTransitionRecord.id)
    )
    history = list((await session.scalars(history_query)).all())
    latest = versions[-1]
    pending = latest if latest.state == VersionState.PENDING and contract.state in LIVE else None
    return ContractView(
        contract,
        versions,
        signatures,
        rows,
        history,
        party_of(contract, principal),
        actions_for(contract, principal, pending, signatures),
    )


@dataclass(frozen=True)
class ListItem:
    contract: Contract
    my_party: str | None
    counterpart: str
    awaiting_my_signature: bool


async def list_mine(
    session: ReadSession, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[ListItem], str | None]:
    """Contracts where this user is the client or the pro, newest first."""
    me = principal.user_id
    query = select(Contract).where(or_(Contract.client_id == me, Contract.pro_user_id == me))
    query = keyset(query, [Contract.created_at, Contract.id], cursor=cursor, limit=limit)
    rows, next_cursor = page_of(
        list((await session.scalars(query)).all()), ["created_at", "id"], limit
    )
    if not rows:
        return [], next_cursor
    latest = select(
        ContractVersion.id,
        ContractVersion.contract_id,
        ContractVersion.state,
        ContractVersion.terms["client"]["name"].astext,
        ContractVersion.terms["pro"]["display_name"].astext,
    ).where(
        tuple_(ContractVersion.contract_id, ContractVersion.number).in_(
            [(c.id, c.latest_version) for c in rows]
        )
    )
    info = {row[1]: row for row in (await session.execute(latest)).all()}
    mine = await session.scalars(
        select(Signature.version_id).where(
            Signature.user_id == me, Signature.contract_id.in_([c.id for c in rows])
        )
    )
    signed = set(mine.all())
    items = []
    for contract in rows:
        version_id, _, state, client_name, pro_name = info[contract.id]
        party = party_of(contract, principal)
        items.append(
            ListItem(
                contract=contract,
                my_party=party,
                counterpart=(pro_name if party == CLIENT else client_name) or "",
                awaiting_my_signature=(
                    party is not None
                    and contract.state in LIVE
                    and state == VersionState.PENDING
                    and version_id not in signed
                ),
            )
        )
    return items, next_cursor


# ---------------------------------------------------------------- signing


def names_match(typed: str, legal: str) -> bool:
    """Loosely: case, diacritics, extra spaces, hyphens and the order of the names do not
    matter (``ana-maria POPESCU`` signs for ``Popescu Ana-Maria``)."""

    def words(value: str) -> list[str]:
        cleaned = fold(value).casefold().replace("-", " ").replace(".", " ").replace(",", " ")
        return sorted(cleaned.split())

    return bool(words(legal)) and words(typed) == words(legal)


async def do_sign(
    session: WriteSession,
    contract_id: uuid.UUID,
    principal: Principal,
    body: SignIn,
    client: ClientInfo,
) -> Contract:
    """Sign the version waiting for signatures. When both parties signed the same
    document, it is in force: version 1 activates the contract and its milestones, a later
    version applies its amendment."""
    found = await access_contract(session, contract_id, principal)
    party = party_of(found, principal)
    if party is None:
        raise NotAPartyError()
    if not body.agree:
        raise ConsentRequiredError(field="agree")
    contract = await _lock(session, found.id)
    if contract.state not in LIVE:
        raise ContractClosedError()
    version = await _version_row(session, contract.id, contract.latest_version, lock=True)
    if (body.version is not None and body.version != version.number) or (
        body.document_sha256 is not None and body.document_sha256.lower() != version.document_sha256
    ):
        raise StaleDocumentError(field="document_sha256")
    legal = await _person_name(session, principal.user_id)
    if not names_match(body.full_name, legal):
        raise NameMismatchError(field="full_name", name=legal)
    signatures = [
        s for s in await list_signatures(session, contract.id) if s.version_id == version.id
    ]
    if any(s.user_id == principal.user_id for s in signatures):
        return contract  # signed already: the same answer again
    if version.state != VersionState.PENDING:
        raise NothingToSignError()
    now = clock.now()
    signature = Signature(
        id=new_id(),
        version_id=version.id,
        contract_id=contract.id,
        user_id=principal.user_id,
        party=party,
        full_name=" ".join(body.full_name.split())[:160],
        document_sha256=version.document_sha256,
        ip=client.ip,
        user_agent=client.user_agent[:400] if client.user_agent else None,
        signed_at=now,
    )
    session.add(signature)
    contract.updated_at = now
    await session.flush()
    parties = {s.party for s in signatures} | {party}
    in_force = parties >= {CLIENT, PRO}
    await events.publish(
        session,
        ContractSigned(contract.id, principal.user_id, party, version.number, in_force),
    )
    if in_force:
        await _in_force(session, contract, version)
    else:
        other = contract.pro_user_id if party == CLIENT else contract.client_id
        await notifications.do_notify(
            session,
            other,
            kind="contract.signed_by_other",
            subject=lazy("“{title}”: your signature is the last one missing"),
            body=lazy(
                "{name} signed version {number} of the contract for “{title}”. Read it and "
                "sign it to put it in force."
            ),
            name=signature.full_name,
            number=version.number,
            title=contract.title,
            link=f"/contracts/{contract.id}",
        )
    await session.flush()
    return contract


async def _in_force(session: WriteSession, contract: Contract, version: ContractVersion) -> None:
    """Both parties signed ``version``: it replaces whatever was in force before."""
    now = clock.now()
    version.state = VersionState.SIGNED
    version.signed_at = now
    await session.execute(
        update(ContractVersion)
        .where(
            ContractVersion.contract_id == contract.id,
            ContractVersion.number < version.number,
            ContractVersion.state == VersionState.PENDING,
        )
        .values(state=VersionState.SUPERSEDED)
        .execution_options(synchronize_session="fetch")
    )
    contract.signed_version = version.number
    contract.price = int(version.terms["price"])
    contract.updated_at = now
    if contract.state == _C.AWAITING_SIGNATURES:
        await CONTRACT_LIFECYCLE.apply(
            session, contract, "activate", actor=Actor.SYSTEM, data={"version": version.number}
        )
        contract.activated_at = now
        await milestones.do_activate(session, contract.id)
    else:
        items = [MilestoneTerms.model_validate(m) for m in version.terms["milestones"]]
        # A milestone funded since the amendment was proposed cannot change any more.
        await milestones.check_amendment(session, contract.id, items)
        amending: set[uuid.UUID] = session.info.setdefault(_AMENDING, set())
        amending.add(contract.id)
        try:
            await milestones.do_amend(session, _parties(contract), items)
        finally:
            amending.discard(contract.id)
        await _end_if_settled(session, contract.id)
    for user_id in (contract.client_id, contract.pro_user_id):
        await notifications.do_notify(
            session,
            user_id,
            kind="contract.signed",
            subject=lazy("“{title}”: the contract is signed"),
            body=lazy(
                "Both parties signed version {number} of the contract for “{title}”. It is in "
                "force now."
            ),
            number=version.number,
            title=contract.title,
            link=f"/contracts/{contract.id}",
        )


# ---------------------------------------------------------------- amendments


def _same_as_live(live: Sequence[Milestone], items: Sequence[MilestoneTerms]) -> bool:
    current = [m for m in live if m.state != MilestoneState.CANCELLED]
    if len(current) != len(items):
        return False
    return all(
        m.id == item.id
        and m.title == item.title
        and m.amount == item.amount
        and m.due_date == item.due_date
        and [d["text"] for d in m.dod] == item.dod
        for m, item in zip(current, items, strict=True)
    )


async def do_propose_amendment(
    session: WriteSession, contract_id: uuid.UUID, principal: Principal, body: AmendmentIn
) -> Contract:
    """A new version with changed milestones, for both parties to sign (the proposer too).
    An older amendment still waiting for signatures is superseded."""
    found = await access_contract(session, contract_id, principal)
    party = party_of(found, principal)
    if party is None:
        raise NotAPartyError()
    contract = await _lock(session, found.id)
    if contract.state in (_C.COMPLETED, _C.CANCELLED):
        raise ContractClosedError()
    if contract.state != _C.ACTIVE or contract.signed_version is None:
        raise ContractNotActiveError()
    items = list(body.milestones)
    await milestones.check_amendment(session, contract.id, items)
    total = sum(item.amount for item in items)
    if body.price is not None and body.price != total:
        raise PriceMismatchError(field="price", total=Money(total, contract.currency).format("en"))
    live = await milestones.list_for_contract(session, contract.id)
    unfunded = {m.id for m in live if m.state in milestones.UNFUNDED}
    minimum = MARKETS[contract.market].min_amount
    for item in items:
        if (item.id is None or item.id in unfunded) and item.amount < minimum:
            raise AmountTooSmallError(
                field="milestones", minimum=Money(minimum, contract.currency).format("en")
            )
    if _same_as_live(live, items):
        raise AmendmentUnchangedError(field="milestones")
    in_force = await _version_row(session, contract.id, contract.signed_version)
    terms = copy.deepcopy(in_force.terms)
    terms["amendment"] = {"previous": contract.signed_version, "reason": body.reason.strip()}
    await session.execute(
        update(ContractVersion)
        .where(
            ContractVersion.contract_id == contract.id,
            ContractVersion.state == VersionState.PENDING,
        )
        .values(state=VersionState.SUPERSEDED)
        .execution_options(synchronize_session="fetch")
    )
    number = contract.latest_version + 1
    version = await _version(
        contract,
        number,
        terms,
        items,
        created_by=principal.user_id,
        reason=body.reason.strip(),
    )
    session.add(version)
    contract.latest_version = number
    contract.updated_at = clock.now()
    await session.flush()
    other = contract.pro_user_id if party == CLIENT else contract.client_id
    await notifications.do_notify(
        session,
        other,
        kind="contract.amendment",
        subject=lazy("“{title}”: a change to the contract needs your signature"),
        body=lazy(
            "Version {number} of the contract for “{title}” changes its milestones. Reason: "
            "{reason}. Read it and sign it if you agree."
        ),
        number=number,
        title=contract.title,
        reason=body.reason.strip() or "—",
        link=f"/contracts/{contract.id}",
    )
    return contract


# ---------------------------------------------------------------- withdrawal and the end


async def do_withdraw(
    session: WriteSession, contract_id: uuid.UUID, principal: Principal
) -> Contract:
    """Either party walks away before both signed: the contract is cancelled, its draft
    milestones too, and the job may hire again (``ContractEnded`` "withdrawn")."""
    found = await access_contract(session, contract_id, principal)
    roles = roles_of(found, principal)
    contract = await _lock(session, found.id)
    if contract.state == _C.CANCELLED and contract.signed_version is None:
        return contract  # withdrawn already
    if contract.state != _C.AWAITING_SIGNATURES:
        raise AlreadySignedError()
    actor = next((r for r in (Actor.CLIENT, Actor.PRO, Actor.OPERATOR) if r in roles), Actor.USER)
    await CONTRACT_LIFECYCLE.apply(
        session, contract, "withdraw", actor=actor, actor_id=principal.user_id
    )
    contract.updated_at = clock.now()
    # Stopgap until milestones.service offers a cancel-all for a contract.
    query = (
        select(Milestone)
        .where(Milestone.contract_id == contract.id)
        .order_by(Milestone.id)
        .with_for_update()
    )
    for milestone in (await session.scalars(query)).all():
        if milestone.state in milestones.UNFUNDED:
            await MILESTONE_LIFECYCLE.apply(
                session, milestone, "cancel", actor=Actor.SYSTEM, data={"withdrawn": True}
            )
    await events.publish(session, ContractEnded(contract.id, contract.job_id, "withdrawn"))
    for user_id in (contract.client_id, contract.pro_user_id):
        if user_id == principal.user_id:
            continue
        await notifications.do_notify(
            session,
            user_id,
            kind="contract.withdrawn",
            subject=lazy("“{title}”: the contract was withdrawn"),
            body=lazy(
                "The contract for “{title}” was withdrawn before both parties signed it. "
                "Nothing was paid and nothing is owed."
            ),
            title=contract.title,
        )
    await session.flush()
    return contract


async def _end_if_settled(session: WriteSession, contract_id: uuid.UUID) -> None:
    """Every milestone settled: the contract completes (something was paid) or is
    cancelled (nothing was). Idempotent."""
    contract = await session.get(Contract, contract_id, with_for_update=True)
    if contract is None or contract.state != _C.ACTIVE:
        return
    rows = await milestones.list_for_contract(session, contract_id)
    if not rows or any(m.state not in milestones.SETTLED for m in rows):
        return
    paid = any(m.state in milestones.PAID for m in rows)
    outcome = "completed" if paid else "cancelled"
    await CONTRACT_LIFECYCLE.apply(
        session, contract, "complete" if paid else "cancel", actor=Actor.SYSTEM
    )
    contract.completed_at = contract.updated_at = clock.now()
    await events.publish(session, ContractEnded(contract.id, contract.job_id, outcome))


@events.subscribe(MilestoneSettled)
async def _on_milestone_settled(session: Any, event: MilestoneSettled) -> None:
    if event.contract_id in session.info.get(_AMENDING, ()):
        return  # looked at once the amendment is applied
    await _end_if_settled(session, event.contract_id)

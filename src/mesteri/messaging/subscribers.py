"""Conversations follow the job: they open when a pro proposes or is invited and when a
contract is created, carry the proposal's terms as quote messages, and tell both sides
what happened (signatures, funding, deliveries, payments, disputes) as system messages.
Everything here runs in the transaction of the event it reacts to.
"""

from __future__ import annotations

import uuid
from typing import Any

from mesteri.contracts import service as contracts
from mesteri.contracts.events import ContractCreated, ContractEnded, ContractSigned
from mesteri.jobs.events import ProInvited
from mesteri.kit import events
from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import Transitioned
from mesteri.messaging import service
from mesteri.messaging.models import Conversation, ConversationState, MessageKind
from mesteri.messaging.system import money
from mesteri.milestones import service as milestones
from mesteri.proposals import service as proposals
from mesteri.proposals.events import ProposalEdited, ProposalSent
from mesteri.proposals.models import Proposal

# ---------------------------------------------------------------- helpers


async def _system(
    session: WriteSession, conversation: Conversation | None, event: str, **params: Any
) -> None:
    if conversation is None:
        return
    locked = await service.lock(session, conversation.id)
    await service.append(
        session,
        locked,
        sender_id=None,
        kind=MessageKind.SYSTEM,
        data={"event": event, "params": params},
    )


async def _proposal_conversation(session: WriteSession, proposal: Proposal) -> Conversation:
    return await service.ensure_job_conversation(
        session,
        job_id=proposal.job_id,
        client_id=proposal.client_id,
        pro_user_id=proposal.pro_user_id,
        pro_id=proposal.pro_id,
    )


async def _quote(session: WriteSession, proposal: Proposal, *, by: uuid.UUID, quote: str) -> None:
    """The proposal's current terms as a message of ``by`` (the pro, or the client's
    counter-offer), with its message as the text (masked before hire)."""
    conversation = await service.lock(session, (await _proposal_conversation(session, proposal)).id)
    await service.append(
        session,
        conversation,
        sender_id=by,
        kind=MessageKind.QUOTE,
        body=proposal.message,
        data={
            "quote": quote,
            "proposal_id": str(proposal.id),
            "revision": proposal.revision,
            "price": proposal.price,
            "currency": proposal.currency,
            "duration_days": proposal.duration_days,
            "milestones": [
                {
                    "title": m.get("title", ""),
                    "amount": m.get("amount", 0),
                    "due": m.get("due_date"),
                }
                for m in proposal.milestones
            ],
        },
    )


# ---------------------------------------------------------------- proposals and invites


@events.subscribe(ProposalSent)
async def _on_proposal_sent(session: Any, event: ProposalSent) -> None:
    proposal = await proposals.get_proposal(session, event.proposal_id)
    if proposal is not None:
        await _quote(session, proposal, by=proposal.pro_user_id, quote="proposal")


@events.subscribe(ProposalEdited)
async def _on_proposal_edited(session: Any, event: ProposalEdited) -> None:
    proposal = await proposals.get_proposal(session, event.proposal_id)
    if proposal is not None:
        await _quote(session, proposal, by=proposal.pro_user_id, quote="revision")


@events.subscribe(ProInvited)
async def _on_invited(session: Any, event: ProInvited) -> None:
    from mesteri.jobs import service as jobs

    conversation = await service.ensure_job_conversation(
        session,
        job_id=event.job_id,
        client_id=event.client_id,
        pro_user_id=event.pro_user_id,
        pro_id=event.pro_id,
    )
    names = await jobs.client_names(session, [event.client_id])
    await _system(session, conversation, "job.invited", client=names.get(event.client_id, ""))
    if event.message:
        locked = await service.lock(session, conversation.id)
        await service.append(
            session, locked, sender_id=event.client_id, kind=MessageKind.TEXT, body=event.message
        )


_PROPOSAL_NEWS = {
    "shortlist": "proposal.shortlisted",
    "withdraw": "proposal.withdrawn",
    "expire": "proposal.expired",
    "accept": "proposal.accepted",
    "accept_counter": "proposal.counter_accepted",
}


async def _proposal_moved(session: WriteSession, event: Transitioned) -> None:
    proposal = await proposals.get_proposal(session, event.entity_id)
    if proposal is None:
        return
    if event.transition == "counter":
        await _quote(session, proposal, by=proposal.client_id, quote="counter")
    elif event.transition == "revise":
        await _quote(session, proposal, by=proposal.pro_user_id, quote="revision")
    elif event.transition == "decline":
        # The system declines when the job closes or another pro is hired: the
        # conversation hears of that from the job and the contract.
        if event.actor == "client":
            reason = str(event.data.get("reason") or "")
            conversation = await _proposal_conversation(session, proposal)
            if reason:
                await _system(session, conversation, "proposal.declined_reason", reason=reason)
            else:
                await _system(session, conversation, "proposal.declined")
    elif event.transition in _PROPOSAL_NEWS:
        conversation = await _proposal_conversation(session, proposal)
        await _system(session, conversation, _PROPOSAL_NEWS[event.transition])


async def _job_moved(session: WriteSession, event: Transitioned) -> None:
    """A job that closes without a hire closes its conversations; reopened, they reopen."""
    if event.transition in ("cancel", "expire") and event.from_state == "open":
        for conversation in await service.job_conversations(session, event.entity_id):
            if conversation.state == ConversationState.OPEN:
                await _system(session, conversation, "job.closed")
                await service.do_close(
                    session, await service.lock(session, conversation.id), "job_closed"
                )
    elif event.transition == "reopen":
        for conversation in await service.job_conversations(session, event.entity_id):
            if conversation.closed_reason == "job_closed":
                await service.do_reopen(session, await service.lock(session, conversation.id))
                await _system(session, conversation, "job.reopened")


# ---------------------------------------------------------------- contracts


@events.subscribe(ContractCreated)
async def _on_contract_created(session: Any, event: ContractCreated) -> None:
    room = await service.ensure_contract_conversation(
        session,
        contract_id=event.contract_id,
        job_id=event.job_id,
        client_id=event.client_id,
        pro_user_id=event.pro_user_id,
        pro_id=event.pro_id,
    )
    await _system(session, room, "contract.created")


@events.subscribe(ContractSigned)
async def _on_contract_signed(session: Any, event: ContractSigned) -> None:
    from mesteri.accounts import service as accounts

    room = await service.contract_conversation(session, event.contract_id)
    names = await accounts.names_of(session, [event.user_id])
    first, last = names.get(event.user_id, ("", ""))
    await _system(
        session, room, "contract.signed_by", name=f"{first} {last}".strip(), version=event.version
    )


async def _contract_moved(session: WriteSession, event: Transitioned) -> None:
    if event.transition != "activate":
        return
    contract = await contracts.get_contract(session, event.entity_id)
    room = await service.contract_conversation(session, event.entity_id)
    if contract is None or room is None:
        return
    await service.do_unmask(session, contract.job_id, contract.pro_user_id)
    await _system(session, room, "contract.active")
    for conversation in await service.job_conversations(session, contract.job_id):
        if conversation.state != ConversationState.OPEN:
            continue
        hired = conversation.pro_user_id == contract.pro_user_id
        await _system(session, conversation, "conversation.moved" if hired else "job.filled")
        locked = await service.lock(session, conversation.id)
        await service.do_close(session, locked, "moved_to_contract" if hired else "job_filled")


@events.subscribe(ContractEnded)
async def _on_contract_ended(session: Any, event: ContractEnded) -> None:
    room = await service.contract_conversation(session, event.contract_id)
    if room is None:
        return
    await _system(session, room, f"contract.{event.outcome}")
    if event.outcome == "withdrawn":
        await service.do_close(session, await service.lock(session, room.id), "contract_withdrawn")


# ---------------------------------------------------------------- milestones

_MILESTONE_NEWS = {
    "confirm_funding": "milestone.funded",
    "submit": "milestone.submitted",
    "request_changes": "milestone.changes_requested",
    "accept": "milestone.accepted",
    "auto_accept": "milestone.auto_accepted",
    "release": "milestone.released",
    "dispute": "milestone.disputed",
    "resolve_release": "milestone.resolved_release",
    "resolve_refund": "milestone.resolved_refund",
    "resolve_split": "milestone.resolved_split",
    "expire_overdue": "milestone.expired",
}


async def _milestone_moved(session: WriteSession, event: Transitioned) -> None:
    news = _MILESTONE_NEWS.get(event.transition)
    if event.transition == "cancel":
        news = "milestone.refunded" if event.to_state == "refunded" else "milestone.cancelled"
    if news is None:
        return
    milestone = await milestones.get_milestone(session, event.entity_id)
    if milestone is None:
        return
    room = await service.contract_conversation(session, milestone.contract_id)
    params: dict[str, Any] = {
        "title": milestone.title,
        "amount": money(milestone.amount, milestone.currency),
    }
    if news == "milestone.resolved_split" and milestone.resolution:
        params["pro_amount"] = money(milestone.resolution["pro_amount"], milestone.currency)
        params["client_amount"] = money(milestone.resolution["client_amount"], milestone.currency)
    await _system(session, room, news, **params)


_FOLLOWED = {
    "proposal": _proposal_moved,
    "job": _job_moved,
    "contract": _contract_moved,
    "milestone": _milestone_moved,
}


@events.subscribe(Transitioned)
async def _on_transition(session: Any, event: Transitioned) -> None:
    follow = _FOLLOWED.get(event.entity)
    if follow is not None:
        await follow(session, event)

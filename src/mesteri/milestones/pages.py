"""Milestone pages: the timeline on the contract page, and the form posts of its action
buttons (the same service as the API; buttons come from the lifecycle table)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from mesteri.accounts.deps import WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite, ReadSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.statemachine import StateTransitionRecord
from mesteri.kit.web import templates
from mesteri.media import service as media
from mesteri.milestones import service
from mesteri.milestones.models import Milestone

router = APIRouter()


STATE_NAMES = {
    "draft": i18n.lazy("Waiting for signatures"),
    "awaiting_funding": i18n.lazy("Awaiting funding"),
    "funded": i18n.lazy("Funded — work in progress"),
    "submitted": i18n.lazy("Delivered — waiting for review"),
    "changes_requested": i18n.lazy("Changes requested"),
    "accepted": i18n.lazy("Accepted"),
    "released": i18n.lazy("Paid to the pro"),
    "disputed": i18n.lazy("In dispute — payment frozen"),
    "refunded": i18n.lazy("Refunded to the client"),
    "split": i18n.lazy("Dispute settled: split between the pro and the client"),
    "cancelled": i18n.lazy("Cancelled"),
}
ACTION_NAMES = {
    "fund": i18n.lazy("Pay into escrow"),
    "submit": i18n.lazy("Deliver"),
    "request_changes": i18n.lazy("Ask for changes"),
    "accept": i18n.lazy("Accept and pay the pro"),
    "dispute": i18n.lazy("Open a dispute"),
    "cancel": i18n.lazy("Cancel this milestone"),
}
HISTORY_NAMES = {
    "activate": i18n.lazy("Contract signed: ready to fund"),
    "fund": i18n.lazy("Checkout started"),
    "confirm_funding": i18n.lazy("Payment confirmed and held in escrow"),
    "submit": i18n.lazy("Delivered"),
    "request_changes": i18n.lazy("Changes requested"),
    "accept": i18n.lazy("Accepted by the client"),
    "auto_accept": i18n.lazy("Accepted automatically after the review period"),
    "release": i18n.lazy("Payment released to the pro"),
    "dispute": i18n.lazy("Dispute opened"),
    "resolve_release": i18n.lazy("Dispute decided: paid to the pro"),
    "resolve_refund": i18n.lazy("Dispute decided: refunded to the client"),
    "resolve_split": i18n.lazy("Dispute settled: split between the pro and the client"),
    "cancel": i18n.lazy("Cancelled"),
    "expire_overdue": i18n.lazy("Refunded: not delivered in time"),
}
ACTOR_NAMES = {
    "client": i18n.lazy("client"),
    "pro": i18n.lazy("pro"),
    "operator": i18n.lazy("Mesteri staff"),
    "system": i18n.lazy("automatic"),
}
# Actions that take the user's words in a form of their own (the rest are one button).
FORM_ACTIONS = frozenset({"submit", "request_changes", "dispute"})  # not plain buttons

templates.globals.update(
    milestone_action_names=ACTION_NAMES,
    milestone_history_names=HISTORY_NAMES,
    milestone_actor_names=ACTOR_NAMES,
    milestone_form_actions=FORM_ACTIONS,
)


async def timeline(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal
) -> list[dict[str, Any]]:
    """The contract's milestones with their history and the actions this user may take,
    for ``templates/milestones/_timeline.html``."""
    milestones = await service.list_for_contract(session, contract_id)
    records = await service.history(session, [m.id for m in milestones])
    by_milestone: dict[uuid.UUID, list[StateTransitionRecord]] = {}
    for record in records:
        by_milestone.setdefault(record.entity_id, []).append(record)
    return [
        {
            "milestone": m,
            "state_name": STATE_NAMES[m.state],
            "actions": service.actions_for(m, principal),
            "review_deadline": service.review_deadline(m),
            "history": by_milestone.get(m.id, []),
        }
        for m in milestones
    ]


@router.post("/milestones/{milestone_id}/transitions/{name}")
async def transition_form(
    request: Request,
    milestone_id: uuid.UUID,
    name: str,
    session: DbWrite,
    auth: WebAuthRequired,
    note: Annotated[str, Form(max_length=5000)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    dod_done: Annotated[list[int] | None, Form()] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """A button or form of the timeline; errors render as the localised error page."""
    principal = auth[1]
    data: dict[str, Any] = {}
    if name == "submit":
        milestone = await service.access_milestone(session, milestone_id, principal)
        if not note.strip():
            raise InvalidInputError("Describe what you delivered.", field="note")
        attachment_ids = await media.do_store_form_files(
            session, milestone.pro_user_id, files or []
        )
        data = {
            "note": note.strip(),
            "dod_done": dod_done or [],
            "attachment_ids": [str(i) for i in attachment_ids],
        }
    elif name == "request_changes":
        if not reason.strip():
            raise InvalidInputError("Tell the other side what is wrong.", field="reason")
        data = {"reason": reason.strip()}
    result = await service.do_transition(session, milestone_id, name, principal, data=data)
    if result.funding is not None:
        return RedirectResponse(result.funding.checkout_url, status_code=303)
    return _back(result.milestone)


def _back(milestone: Milestone) -> RedirectResponse:
    return RedirectResponse(
        f"/contracts/{milestone.contract_id}#milestone-{milestone.id}", status_code=303
    )

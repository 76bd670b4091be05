"""Contract pages: my contracts, one contract (its terms in the viewer's language, the PDF,
the versions with their signatures, the signature form, amendments, withdrawal and the
milestone timeline). They call the same services as the API; nothing here decides a rule.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from mesteri.accounts.deps import Client, WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.contracts import service
from mesteri.contracts import terms as terms_mod
from mesteri.contracts.errors import VersionNotFoundError
from mesteri.contracts.models import ContractVersion
from mesteri.contracts.schemas import AmendmentIn, SignIn
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite, ReadSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.i18n import get_language, lazy
from mesteri.kit.money import Money
from mesteri.kit.text import Clean
from mesteri.kit.web import form_errors, render, templates
from mesteri.milestones import pages as milestone_pages
from mesteri.milestones import service as milestones
from mesteri.milestones.schemas import MilestoneTerms

router = APIRouter()

Text = Annotated[Clean, Form(max_length=4000)]
NEW_ROWS = 2  # empty rows the amendment editor offers for new milestones
_ROW = re.compile(r"^m(\d{1,2})_")

templates.globals.update(
    contract_state_names={
        "awaiting_signatures": i18n.lazy("Waiting for signatures"),
        "active": i18n.lazy("Active"),
        "completed": i18n.lazy("Completed"),
        "cancelled": i18n.lazy("Cancelled"),
    },
    contract_version_state_names={
        "pending": i18n.lazy("Waiting for signatures"),
        "signed": i18n.lazy("Signed by both"),
        "superseded": i18n.lazy("Replaced before signing"),
    },
    contract_party_names={"client": i18n.lazy("Client"), "pro": i18n.lazy("Professional")},
)


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


async def _context(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal, number: int | None
) -> dict[str, Any]:
    view = await service.load_view(session, contract_id, principal)
    contract = view.contract
    shown: ContractVersion
    if number is not None:
        found = next((v for v in view.versions if v.number == number), None)
        if found is None:
            raise VersionNotFoundError(number=number)
        shown = found
    else:
        in_force = contract.signed_version or contract.latest_version
        shown = view.pending or next(v for v in view.versions if v.number == in_force)
    editor = [
        {
            "id": m.id,
            "title": m.title,
            "amount": Money(m.amount, m.currency).plain(),
            "due_date": m.due_date.isoformat() if m.due_date else "",
            "dod": "\n".join(d["text"] for d in m.dod),
            "terms": MilestoneTerms(
                id=m.id,
                title=m.title,
                amount=m.amount,
                due_date=m.due_date,
                dod=[d["text"] for d in m.dod],
            ),
            "state": m.state,
            "locked": m.state not in milestones.UNFUNDED,
            "money": Money(m.amount, m.currency).format(get_language()),
        }
        for m in view.milestones
        if m.state != "cancelled"
    ]
    return {
        "view": view,
        "contract": contract,
        "shown": shown,
        "doc": terms_mod.render(shown.terms, get_language()),
        "can_sign": "sign" in view.actions and view.pending is not None and shown is view.pending,
        "legal_name": shown.terms["client" if view.my_party == "client" else "pro"]["name"]
        if view.my_party
        else "",
        "editor": editor,
        "new_rows": range(len(editor), len(editor) + NEW_ROWS),
        "timeline": await milestone_pages.timeline(session, contract.id, principal),
        "form": {},
    }


# ---------------------------------------------------------------- pages


@router.get("/contracts")
async def list_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    items, next_cursor = await service.list_mine(session, auth[1], cursor=cursor, limit=20)
    return render(request, "contracts/list.html", {"items": items, "next_cursor": next_cursor})


@router.get("/contracts/{contract_id}")
async def contract_page(
    request: Request,
    contract_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    version: int | None = Query(default=None, ge=1, le=10_000),
) -> Response:
    context = await _context(session, contract_id, auth[1], version)
    return render(request, "contracts/contract.html", context)


@router.get("/contracts/{contract_id}/document.pdf")
async def document_page(
    request: Request,
    contract_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    version: int | None = Query(default=None, ge=1, le=10_000),
) -> Response:
    """The PDF for a signed-in party (the API serves the same bytes to bearer tokens)."""
    row = await service.access_document(session, contract_id, auth[1], version)
    return Response(
        row.document,
        media_type="application/pdf",
        headers={
            "ETag": f'"{row.document_sha256}"',
            "Cache-Control": "private, no-cache",
            "Content-Disposition": (
                f'inline; filename="contract-{str(contract_id)[:8]}-v{row.number}.pdf"'
            ),
        },
    )


@router.post("/contracts/{contract_id}/sign")
async def sign_form(
    request: Request,
    contract_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    full_name: Text = "",
    agree: Text = "",
    document_sha256: Text = "",
    version: Text = "",
) -> Response:
    context = await _context(session, contract_id, auth[1], None)
    context["form"] = {"full_name": full_name}
    with form_errors(request, "contracts/contract.html", **context):
        if not full_name.strip():
            raise InvalidInputError(lazy("Type your full name to sign."), field="full_name")
        try:
            body = SignIn(
                full_name=full_name,
                agree=agree == "1",
                document_sha256=document_sha256 or None,
                version=int(version) if version.isdigit() else None,
            )
        except ValidationError as exc:
            raise InvalidInputError(field="full_name") from exc
        await service.do_sign(session, contract_id, auth[1], body, client)
    return _redirect(f"/contracts/{contract_id}?signed=1")


def _amendment_items(form: FormData, editor: list[dict[str, Any]], currency: str) -> list[Any]:
    rows = sorted({int(m.group(1)) for key in form if (m := _ROW.match(key))})
    locked = {str(row["id"]): row for row in editor if row["locked"]}
    items: list[MilestoneTerms] = []
    # Funded milestones stay exactly as they are, whatever the form says.
    for row in editor:
        if row["locked"]:
            items.append(row["terms"])
    for index in rows:
        ident = str(form.get(f"m{index}_id") or "")
        if ident in locked or form.get(f"m{index}_remove") == "1":
            continue
        title = str(form.get(f"m{index}_title") or "").strip()
        amount_text = str(form.get(f"m{index}_amount") or "").strip()
        if not ident and not title and not amount_text:
            continue  # an empty new row
        try:
            amount = Money.parse(amount_text, currency).amount
            due = str(form.get(f"m{index}_due") or "").strip()
            items.append(
                MilestoneTerms(
                    id=uuid.UUID(ident) if ident else None,
                    title=title,
                    amount=amount,
                    due_date=date.fromisoformat(due) if due else None,
                    dod=str(form.get(f"m{index}_dod") or "").splitlines(),
                )
            )
        except (ValueError, ValidationError) as exc:
            raise InvalidInputError(
                lazy(
                    "Milestone {number}: give it a title, an amount like 1250 or 1250.50 and, "
                    "if you want, a due date."
                ),
                field=f"m{index}",
                number=index + 1,
            ) from exc
    order = {str(row["id"]): i for i, row in enumerate(editor)}
    return sorted(items, key=lambda item: order.get(str(item.id), len(order)))


@router.post("/contracts/{contract_id}/amendments")
async def amendment_form(
    request: Request,
    contract_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    reason: Text = "",
) -> Response:
    context = await _context(session, contract_id, auth[1], None)
    form = await request.form()
    with form_errors(request, "contracts/contract.html", **context):
        currency = context["contract"].currency
        items = _amendment_items(form, context["editor"], currency)
        if not items:
            raise InvalidInputError(
                lazy("A contract keeps at least one milestone."), field="milestones"
            )
        try:
            body = AmendmentIn(milestones=items, reason=reason)
        except ValidationError as exc:
            raise InvalidInputError(field="milestones") from exc
        await service.do_propose_amendment(session, contract_id, auth[1], body)
    return _redirect(f"/contracts/{contract_id}?amended=1")


@router.post("/contracts/{contract_id}/withdraw")
async def withdraw_form(
    request: Request, contract_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired
) -> Response:
    context = await _context(session, contract_id, auth[1], None)
    with form_errors(request, "contracts/contract.html", **context):
        await service.do_withdraw(session, contract_id, auth[1])
    return _redirect(f"/contracts/{contract_id}?withdrawn=1")

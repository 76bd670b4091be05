"""Back-office pages (staff with two-factor only)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from mesteri.accounts import service as accounts
from mesteri.accounts.deps import WebAuthRequired
from mesteri.backoffice import service
from mesteri.kit.db import DbWrite
from mesteri.kit.web import render

router = APIRouter(prefix="/admin")


@router.get("/audit-log")
async def audit_log_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    action: str | None = Query(default=None, max_length=80),
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    accounts.check_staff(auth[1])
    entries, next_cursor = await service.list_audit_log(
        session, action=action or None, actor_id=None, cursor=cursor, limit=50
    )
    return render(
        request,
        "backoffice/audit_log.html",
        {"entries": entries, "next_cursor": next_cursor, "action": action or ""},
    )

"""Media API (``/api/v1/uploads``, ``/api/v1/media/{id}``) and the file routes the app
serves itself (``/media/…``: local uploads, signed private downloads, public images)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from mesteri.accounts.deps import Client, CurrentPrincipal
from mesteri.config import get_settings
from mesteri.kit.db import DbRead, DbWrite
from mesteri.media import service
from mesteri.media import storage as storage_mod
from mesteri.media.errors import (
    BadSignatureError,
    ExpiredSignatureError,
    UploadNotFoundError,
    UploadTooLargeError,
)
from mesteri.media.models import Upload
from mesteri.media.schemas import MediaLinkOut, NewUploadOut, UploadIn, UploadOut

router = APIRouter(tags=["uploads"])
files = APIRouter(include_in_schema=False)


def upload_out(upload: Upload) -> UploadOut:
    return UploadOut.model_validate(upload, from_attributes=True)


def _absolute(request: Request, url: str) -> str:
    return str(request.base_url).rstrip("/") + url if url.startswith("/") else url


@router.post("/uploads", status_code=status.HTTP_201_CREATED, response_model=NewUploadOut)
async def create_upload(
    body: UploadIn, request: Request, session: DbWrite, principal: CurrentPrincipal
) -> NewUploadOut:
    """A signed URL to PUT the file to, with the headers to send. Then ``complete``."""
    created = await service.do_create_upload(
        session,
        principal.user_id,
        purpose=body.purpose,
        content_type=body.content_type,
        size=body.size,
        filename=body.filename,
    )
    return NewUploadOut(
        upload=upload_out(created.upload),
        upload_url=_absolute(request, created.url),
        headers={"Content-Type": body.content_type},
        expires_at=created.expires_at,
    )


@router.post("/uploads/{upload_id}/complete", response_model=UploadOut)
async def complete_upload(
    upload_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> UploadOut:
    """Check the received file (real type, size), strip image metadata, make thumbnails."""
    return upload_out(await service.do_complete(session, upload_id, principal.user_id))


@router.get("/media/{upload_id}", response_model=MediaLinkOut)
async def media_link(
    upload_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> MediaLinkOut:
    """A short-lived download link. Private files: their owner, and staff (audited)."""
    link = await service.access_download(session, upload_id, principal, client=client)
    return MediaLinkOut(
        id=link.upload.id,
        url=_absolute(request, link.url),
        thumbnail_url=_absolute(request, link.thumbnail_url) if link.thumbnail_url else None,
        content_type=link.upload.content_type,
        expires_at=link.expires_at,
    )


# ---------------------------------------------------------------- served by the app


def _verify(action: str, target: str, expires: int, sig: str, extra: str = "") -> None:
    reason = storage_mod.check_signature(
        get_settings().secret_key, action, target, expires, sig, extra
    )
    if reason == "expired":
        raise ExpiredSignatureError()
    if reason is not None:
        raise BadSignatureError()


@files.put("/media/upload/{key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def local_upload(
    request: Request,
    key: str,
    max: Annotated[int, Query(ge=1)],
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=200)],
) -> Response:
    """Local storage's upload target: a signed, expiring PUT, the size capped while reading."""
    _verify("PUT", key, expires, sig, str(max))
    received = bytearray()
    async for chunk in request.stream():
        received.extend(chunk)
        if len(received) > max:
            raise UploadTooLargeError(limit_mb=max // service.MB)
    await storage_mod.current().write(key, bytes(received), "application/octet-stream")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@files.get("/media/files/{upload_id}/{variant}")
async def signed_file(
    upload_id: uuid.UUID,
    session: DbRead,
    variant: Annotated[str, Path(pattern="^(original|thumb)$")],
    expires: Annotated[int, Query()],
    sig: Annotated[str, Query(max_length=200)],
) -> Response:
    """A private file behind a signed link (decrypted here when stored encrypted)."""
    _verify("GET", str(upload_id), expires, sig, variant)
    data, content_type = await service.read_signed(upload_id, variant, session)
    return Response(
        data,
        media_type=content_type,
        headers={
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
        },
    )


@files.get("/media/public/{upload_id}")
async def public_file(upload_id: uuid.UUID, session: DbRead) -> Response:
    return await _public(session, upload_id, "original")


@files.get("/media/public/{upload_id}/thumb")
async def public_thumb(upload_id: uuid.UUID, session: DbRead) -> Response:
    return await _public(session, upload_id, "thumb")


async def _public(session: DbRead, upload_id: uuid.UUID, variant: str) -> Response:
    """Public media (portfolio, avatars): from local storage, or a redirect to the bucket."""
    upload, data, content_type = await service.read_public(session, upload_id, variant)
    if data is None:
        target = service.public_redirect(upload, variant)
        if target is None:
            raise UploadNotFoundError()
        return RedirectResponse(target, status_code=status.HTTP_302_FOUND)
    return Response(
        data,
        media_type=content_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )

"""Uploads: signed upload URLs, checks on completion, signed downloads, attachment, retention.

1. ``do_create_upload`` records the declared purpose, type and size and returns a signed
   URL the client PUTs the bytes to (the app for local storage, the bucket for S3).
2. ``do_complete`` reads the bytes back and decides: the real type by its magic bytes
   (never the name or the declared type), the size limit of the purpose; images are
   decoded, turned upright, re-encoded without any metadata (EXIF, GPS, XMP) and get a
   thumbnail; private documents are encrypted (AES-256-GCM, ``kit.crypto``) before they
   are written back. A rejected file is deleted and the row keeps the reason.
3. Downloads: public media (portfolio, avatars) by id; private media only through
   short-lived signed URLs handed to the owner or to staff (staff access is audited).
"""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select, update

from mesteri.accounts.service import ClientInfo, Principal
from mesteri.config import get_settings
from mesteri.kit import audit, clock
from mesteri.kit.crypto import FieldCipher
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.ids import new_id
from mesteri.media import storage as storage_mod
from mesteri.media.errors import (
    UnknownPurposeError,
    UploadDamagedError,
    UploadForbiddenError,
    UploadMissingError,
    UploadNotFoundError,
    UploadNotReadyError,
    UploadTooLargeError,
    UploadTypeNotAllowedError,
)
from mesteri.media.models import Upload, UploadState

MB = 1024 * 1024
IMAGES = ("image/jpeg", "image/png", "image/webp")
THUMB_SIZE = (480, 480)


@dataclass(frozen=True)
class Purpose:
    name: str
    types: tuple[str, ...]
    max_bytes: int
    private: bool
    encrypted: bool = False


PURPOSES: dict[str, Purpose] = {
    p.name: p
    for p in (
        Purpose("avatar", IMAGES, 5 * MB, private=False),
        Purpose("portfolio", IMAGES, 15 * MB, private=False),
        Purpose("id_document", (*IMAGES, "application/pdf"), 10 * MB, True, encrypted=True),
        Purpose("selfie", IMAGES, 10 * MB, private=True, encrypted=True),
        Purpose(
            "registration_certificate", (*IMAGES, "application/pdf"), 10 * MB, True, encrypted=True
        ),
        Purpose("attachment", (*IMAGES, "application/pdf"), 20 * MB, private=True),
    )
}
DOCUMENT_PURPOSES = frozenset({"id_document", "selfie", "registration_certificate"})


def sniff(data: bytes) -> str | None:
    """The real type of a file from its first bytes."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _cipher() -> FieldCipher:
    return FieldCipher.from_secret(get_settings().secret_key)


def encrypt_bytes(data: bytes, upload_id: uuid.UUID) -> bytes:
    token = _cipher().encrypt(base64.b64encode(data).decode(), context=f"upload:{upload_id}")
    return token.encode()


def decrypt_bytes(data: bytes, upload_id: uuid.UUID) -> bytes:
    text = _cipher().decrypt(data.decode(), context=f"upload:{upload_id}")
    return base64.b64decode(text)


def _purpose(name: str) -> Purpose:
    purpose = PURPOSES.get(name)
    if purpose is None:
        raise UnknownPurposeError(field="purpose")
    return purpose


def _allowed_text(purpose: Purpose) -> str:
    return ", ".join(t.split("/")[1].upper() for t in purpose.types)


@dataclass(frozen=True)
class NewUpload:
    upload: Upload
    url: str
    expires_at: datetime


async def do_create_upload(
    session: WriteSession,
    owner_id: uuid.UUID,
    *,
    purpose: str,
    content_type: str,
    size: int,
    filename: str | None = None,
) -> NewUpload:
    spec = _purpose(purpose)
    if content_type not in spec.types:
        raise UploadTypeNotAllowedError(field="content_type", allowed=_allowed_text(spec))
    if size > spec.max_bytes:
        raise UploadTooLargeError(field="size", limit_mb=spec.max_bytes // MB)
    now = clock.now()
    upload_id = new_id()
    upload = Upload(
        id=upload_id,
        owner_id=owner_id,
        purpose=purpose,
        state=UploadState.PENDING,
        declared_type=content_type,
        declared_size=size,
        filename=(filename or "")[:200] or None,
        key=f"{purpose}/{now:%Y/%m}/{upload_id}",
        private=spec.private,
        encrypted=spec.encrypted,
        created_at=now,
    )
    session.add(upload)
    await session.flush()
    # Signed URLs use real time: the storage (S3) checks them against its own clock.
    expires = clock.wall_now() + timedelta(minutes=get_settings().upload_url_minutes)
    url = storage_mod.current().upload_url(upload.key, content_type, spec.max_bytes, expires)
    return NewUpload(upload, url, expires)


async def _owned(session: ReadSession, upload_id: uuid.UUID, owner_id: uuid.UUID) -> Upload:
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.state == UploadState.DELETED:
        raise UploadNotFoundError()
    if upload.owner_id != owner_id:
        raise UploadForbiddenError()
    return upload


async def _reject(upload: Upload, reason: str) -> None:
    upload.state = UploadState.REJECTED
    upload.reject_reason = reason
    upload.completed_at = clock.now()
    await storage_mod.current().delete(upload.key)


def _clean_image(data: bytes, content_type: str) -> tuple[bytes, bytes, int, int]:
    """Decode, turn upright, re-encode without metadata; also a JPEG thumbnail."""
    with Image.open(io.BytesIO(data)) as probe:
        probe.verify()
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img)
        fmt = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}[content_type]
        if fmt == "JPEG" and upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        # A fresh image holds pixels only: no EXIF, GPS, XMP or comments survive.
        clean = Image.new(upright.mode, upright.size)
        clean.paste(upright)
        out = io.BytesIO()
        clean.save(out, format=fmt, quality=88)
        thumb = clean.convert("RGB")
        thumb.thumbnail(THUMB_SIZE)
        thumb_out = io.BytesIO()
        thumb.save(thumb_out, format="JPEG", quality=80)
        return out.getvalue(), thumb_out.getvalue(), clean.width, clean.height


async def do_complete(session: WriteSession, upload_id: uuid.UUID, owner_id: uuid.UUID) -> Upload:
    upload = await _owned(session, upload_id, owner_id)
    if upload.state == UploadState.READY:
        return upload  # completing twice is harmless
    if upload.state != UploadState.PENDING:
        raise UploadNotReadyError()
    spec = _purpose(upload.purpose)
    store = storage_mod.current()
    data = await store.read(upload.key)
    if data is None:
        raise UploadMissingError()
    if len(data) > spec.max_bytes:
        await _reject(upload, "too_large")
        raise UploadTooLargeError(limit_mb=spec.max_bytes // MB)
    detected = sniff(data)
    if detected is None or detected not in spec.types:
        await _reject(upload, "type_not_allowed")
        raise UploadTypeNotAllowedError(allowed=_allowed_text(spec))
    upload.content_type = detected
    upload.size = len(data)
    if detected in IMAGES:
        try:
            data, thumb, upload.width, upload.height = _clean_image(data, detected)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            await _reject(upload, "damaged")
            raise UploadDamagedError() from None
        upload.thumb_key = f"{upload.key}.thumb.jpg"
        await store.write(
            upload.thumb_key,
            encrypt_bytes(thumb, upload.id) if spec.encrypted else thumb,
            "application/octet-stream" if spec.encrypted else "image/jpeg",
        )
        upload.size = len(data)
    if spec.encrypted:
        await store.write(upload.key, encrypt_bytes(data, upload.id), "application/octet-stream")
    else:
        await store.write(upload.key, data, detected)
    upload.state = UploadState.READY
    upload.completed_at = clock.now()
    return upload


class FormFile(Protocol):
    """A file posted with a form (Starlette's ``UploadFile``)."""

    filename: str | None
    content_type: str | None

    async def read(self, size: int = -1) -> bytes: ...


MAX_FORM_FILES = 10


async def do_store_form_files(
    session: WriteSession,
    owner_id: uuid.UUID,
    files: Sequence[FormFile],
    *,
    purpose: str = "attachment",
    limit: int = MAX_FORM_FILES,
) -> list[uuid.UUID]:
    """Store the files of a page's form (without JavaScript) for its owner; the browser
    sends an empty part when no file was chosen."""
    chosen = [f for f in files if f.filename]
    if len(chosen) > limit:
        raise InvalidInputError("Attach at most {count} files.", field="files", count=limit)
    spec = _purpose(purpose)
    ids = []
    for file in chosen:
        data = await file.read(spec.max_bytes + 1)  # larger is refused by do_store
        stored = await do_store(
            session,
            owner_id,
            purpose=purpose,
            data=data,
            content_type=file.content_type or "application/octet-stream",
            filename=file.filename,
        )
        ids.append(stored.id)
    return ids


async def do_store(
    session: WriteSession,
    owner_id: uuid.UUID,
    *,
    purpose: str,
    data: bytes,
    content_type: str,
    filename: str | None = None,
) -> Upload:
    """Upload in one step (pages without JavaScript, demo data): create, write, complete."""
    created = await do_create_upload(
        session,
        owner_id,
        purpose=purpose,
        content_type=content_type
        if content_type in _purpose(purpose).types
        else _purpose(purpose).types[0],
        size=len(data),
        filename=filename,
    )
    await storage_mod.current().write(created.upload.key, data, content_type)
    return await do_complete(session, created.upload.id, owner_id)


async def do_attach(
    session: WriteSession,
    upload_ids: Sequence[uuid.UUID],
    owner_id: uuid.UUID,
    *,
    purposes: frozenset[str],
) -> list[Upload]:
    """Another domain takes these uploads into use; they stop counting as orphans."""
    uploads = []
    for upload_id in upload_ids:
        upload = await _owned(session, upload_id, owner_id)
        if upload.state != UploadState.READY:
            raise UploadNotReadyError(field="upload_ids")
        if upload.purpose not in purposes:
            raise UnknownPurposeError(field="upload_ids")
        upload.attached_at = upload.attached_at or clock.now()
        uploads.append(upload)
    return uploads


async def do_schedule_deletion(
    session: WriteSession, upload_ids: Sequence[uuid.UUID], after: timedelta
) -> None:
    if upload_ids:
        await session.execute(
            update(Upload)
            .where(Upload.id.in_(upload_ids), Upload.state != UploadState.DELETED)
            .values(delete_after=clock.now() + after)
        )


@dataclass(frozen=True)
class FileInfo:
    """What other domains show of a file next to its link."""

    id: uuid.UUID
    filename: str | None
    content_type: str | None
    size: int | None


async def describe(
    session: ReadSession, upload_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, FileInfo]:
    """Name, type and size of these files (those not deleted), in one query."""
    ids = set(upload_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Upload.id, Upload.filename, Upload.content_type, Upload.size).where(
            Upload.id.in_(ids), Upload.state != UploadState.DELETED
        )
    )
    return {row.id: FileInfo(row.id, row.filename, row.content_type, row.size) for row in rows}


@dataclass(frozen=True)
class DownloadLink:
    upload: Upload
    url: str
    thumbnail_url: str | None
    expires_at: datetime


def public_url(upload_id: uuid.UUID, *, thumb: bool = False) -> str:
    return f"/media/public/{upload_id}" + ("/thumb" if thumb else "")


def _signed_file_url(upload: Upload, variant: str, expires: datetime) -> str:
    query = storage_mod.signed_query(
        get_settings().secret_key, "GET", str(upload.id), int(expires.timestamp()), variant
    )
    return f"/media/files/{upload.id}/{variant}?{query}"


async def access_download(
    session: WriteSession,
    upload_id: uuid.UUID,
    principal: Principal,
    *,
    client: ClientInfo | None = None,
    may_view: bool = False,
) -> DownloadLink:
    """A short-lived link to a file for its owner, staff (audited) or, for public media,
    anyone. ``may_view``: another domain already decided this caller may see it."""
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.state == UploadState.DELETED:
        raise UploadNotFoundError()
    is_owner = upload.owner_id == principal.user_id
    if upload.private and not (is_owner or principal.is_staff or may_view):
        raise UploadForbiddenError()
    if upload.state != UploadState.READY:
        raise UploadNotReadyError()
    if upload.private and not is_owner:
        audit.record(
            session,
            "media.viewed",
            actor_id=principal.user_id,
            subject_type="upload",
            subject_id=upload.id,
            ip=client.ip if client else None,
            user_agent=client.user_agent if client else None,
            purpose=upload.purpose,
            owner_id=str(upload.owner_id),
        )
    expires = clock.wall_now() + timedelta(seconds=get_settings().download_url_seconds)
    thumb: str | None
    if not upload.private:
        url, thumb = public_url(upload.id), public_url(upload.id, thumb=True)
    else:
        store = storage_mod.current()
        direct = (
            None
            if upload.encrypted
            else store.download_url(
                upload.key, upload.content_type or "application/octet-stream", expires
            )
        )
        url = direct or _signed_file_url(upload, "original", expires)
        thumb = _signed_file_url(upload, "thumb", expires) if upload.thumb_key else None
    return DownloadLink(upload, url, thumb if upload.thumb_key else None, expires)


async def read_signed(
    upload_id: uuid.UUID, variant: str, session: ReadSession
) -> tuple[bytes, str]:
    """The bytes behind a verified signed link (decrypted when needed)."""
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.state != UploadState.READY:
        raise UploadNotFoundError()
    return await _read(upload, variant)


async def read_public(
    session: ReadSession, upload_id: uuid.UUID, variant: str
) -> tuple[Upload, bytes | None, str]:
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.state != UploadState.READY or upload.private:
        raise UploadNotFoundError()
    if storage_mod.current().name == "s3":
        return upload, None, ""
    data, content_type = await _read(upload, variant)
    return upload, data, content_type


def public_redirect(upload: Upload, variant: str) -> str | None:
    key = upload.thumb_key if variant == "thumb" and upload.thumb_key else upload.key
    ctype = "image/jpeg" if key == upload.thumb_key else upload.content_type or "image/jpeg"
    expires = clock.wall_now() + timedelta(hours=1)
    return storage_mod.current().download_url(key, ctype, expires)


async def _read(upload: Upload, variant: str) -> tuple[bytes, str]:
    if variant == "thumb" and upload.thumb_key:
        key, content_type = upload.thumb_key, "image/jpeg"
    else:
        key, content_type = upload.key, upload.content_type or "application/octet-stream"
    data = await storage_mod.current().read(key)
    if data is None:
        raise UploadNotFoundError()
    if upload.encrypted:
        data = decrypt_bytes(data, upload.id)
    return data, content_type


async def purge(session: WriteSession, *, limit: int = 500) -> int:
    """Delete orphaned uploads (never completed or never attached) and files whose
    retention ended (documents after their decision). Returns how many were deleted."""
    now = clock.now()
    orphan_cutoff = now - timedelta(hours=get_settings().orphan_upload_hours)
    query = (
        select(Upload)
        .where(
            Upload.state != UploadState.DELETED,
            (
                (Upload.attached_at.is_(None) & (Upload.created_at < orphan_cutoff))
                | (Upload.delete_after < now)
            ),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.scalars(query)).all()
    store = storage_mod.current()
    for upload in rows:
        await store.delete(upload.key)
        if upload.thumb_key:
            await store.delete(upload.thumb_key)
        upload.state = UploadState.DELETED
        upload.deleted_at = now
    await session.flush()
    return len(rows)

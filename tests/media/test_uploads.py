"""Uploads: signed URLs, real-type checks, size limits, metadata stripping, access."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
from PIL import Image
from sqlalchemy import select

from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import WriteSession
from mesteri.media import storage
from mesteri.media.models import Upload
from tests.fixtures.accounts import bearer, register
from tests.fixtures.pros import API, jpeg_with_gps, make_pro, png_bytes, staff_headers, upload

PHP = b"<?php system($_GET['c']); ?>\n" + b"x" * 100


async def test_php_file_named_jpg_is_rejected(client: httpx.AsyncClient, db: WriteSession) -> None:
    headers = bearer(await register(client, role="pro"))
    response = await upload(client, headers, PHP, filename="cat.jpg")
    assert response.status_code == 422
    assert response.json()["code"] == "upload_type_not_allowed"
    assert "JPEG" in response.json()["detail"]
    row = await db.scalar(select(Upload).where(Upload.filename == "cat.jpg"))
    assert row is not None
    assert row.state == "rejected"
    assert row.reject_reason == "type_not_allowed"
    assert await storage.current().read(row.key) is None  # the bytes are gone


async def test_oversize_files_are_refused(client: httpx.AsyncClient) -> None:
    headers = bearer(await register(client, role="pro"))
    declared = await client.post(
        f"{API}/uploads",
        json={"purpose": "avatar", "content_type": "image/jpeg", "size": 6 * 1024 * 1024},
        headers=headers,
    )
    assert declared.status_code == 422
    assert declared.json()["code"] == "upload_too_large"
    assert declared.json()["field"] == "size"
    # lying about the size does not help: the signed PUT stops at the purpose's limit
    created = await client.post(
        f"{API}/uploads",
        json={"purpose": "avatar", "content_type": "image/jpeg", "size": 1000},
        headers=headers,
    )
    put = await client.put(
        created.json()["upload_url"], content=b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024)
    )
    assert put.status_code == 422
    assert "upload_too_large" in put.text


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))


async def test_expired_and_tampered_signatures(client: httpx.AsyncClient) -> None:
    headers = bearer(await register(client, role="pro"))
    created = await client.post(
        f"{API}/uploads",
        json={"purpose": "portfolio", "content_type": "image/png", "size": 100},
        headers=headers,
    )
    url = created.json()["upload_url"]
    query = parse_qs(urlsplit(url).query)
    # tampered: a bigger limit with the old signature
    bigger = await client.put(_with_query(url, max="99999999"), content=png_bytes())
    assert bigger.status_code == 403
    flipped = query["sig"][0][:-2] + ("AA" if not query["sig"][0].endswith("AA") else "BB")
    assert (await client.put(_with_query(url, sig=flipped), content=png_bytes())).status_code == 403
    # expired: a correctly signed URL whose time is up
    secret = storage.current().secret  # type: ignore[attr-defined]
    key = urlsplit(url).path.removeprefix("/media/upload/")
    past = int(time.time()) - 5
    signed = storage.signed_query(secret, "PUT", key, past, query["max"][0])
    expired = await client.put(
        f"/media/upload/{key}?max={query['max'][0]}&{signed}", content=png_bytes()
    )
    assert expired.status_code == 403
    assert "expired" in expired.text.lower()
    ok = await client.put(url, content=png_bytes())
    assert ok.status_code == 204


async def test_exif_gps_is_gone_from_the_stored_image(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get(0x8825)  # the fixture has GPS
    headers = bearer(await register(client, role="pro"))
    done = await upload(client, headers, original)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "ready"
    assert (done.json()["width"], done.json()["height"]) == (640, 480)
    row = await db.get(Upload, done.json()["id"])
    assert row is not None
    assert row.thumb_key
    stored = await storage.current().read(row.key)
    assert stored is not None
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert 0x8825 not in exif
    assert 0x010F not in exif
    assert b"Phone Maker" not in stored
    public = await client.get(f"/media/public/{row.id}")
    assert public.status_code == 200
    assert public.headers["content-type"] == "image/jpeg"
    thumb = await client.get(f"/media/public/{row.id}/thumb")
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 480


async def test_identity_documents_are_private_encrypted_and_audited(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    pro_headers, _ = await make_pro(client)
    doc = await upload(
        client, pro_headers, png_bytes(), purpose="id_document", content_type="image/png"
    )
    assert doc.status_code == 200, doc.text
    doc_id = doc.json()["id"]
    row = await db.get(Upload, doc_id)
    assert row is not None
    assert row.encrypted
    at_rest = await storage.current().read(row.key)
    assert at_rest is not None
    assert at_rest.startswith(b"v1:k1:")

    # not public, and another user (a client, another pro) cannot get a link
    assert (await client.get(f"/media/public/{doc_id}")).status_code == 404
    other_client = bearer(await register(client))
    denied = await client.get(f"{API}/media/{doc_id}", headers=other_client)
    assert denied.status_code == 403
    other_pro, _ = await make_pro(client)
    assert (await client.get(f"{API}/media/{doc_id}", headers=other_pro)).status_code == 403
    assert not (await db.scalars(select(AuditEntry).where(AuditEntry.subject_id == row.id))).all()

    # the owner gets a short-lived signed link that decrypts
    mine = await client.get(f"{API}/media/{doc_id}", headers=pro_headers)
    assert mine.status_code == 200
    fetched = await client.get(mine.json()["url"])
    assert fetched.status_code == 200
    assert fetched.content.startswith(b"\x89PNG")
    assert fetched.headers["cache-control"] == "private, no-store"
    # a guessed link without a valid signature gets nothing
    assert (
        await client.get(f"/media/files/{doc_id}/original?expires=9999999999&sig=x")
    ).status_code == 403

    # staff can look, and every look is audited
    staff = await staff_headers(client, db)
    seen = await client.get(f"{API}/media/{doc_id}", headers=staff)
    assert seen.status_code == 200
    entries = (await db.scalars(select(AuditEntry).where(AuditEntry.subject_id == row.id))).all()
    assert [e.action for e in entries] == ["media.viewed"]

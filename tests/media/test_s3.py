"""The S3 backend against a local S3 server (moto in server mode), through the real API."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from mesteri.media import storage
from tests.fixtures.accounts import bearer, register
from tests.fixtures.pros import API, jpeg_with_gps, make_pro, png_bytes, upload


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Iterator[storage.S3Storage]:
    backend = storage.S3Storage(
        "mesteri-test",
        endpoint_url=s3_endpoint,
        region="eu-central-1",
        access_key_id="test",
        secret_access_key="test",
    )
    backend.ensure_bucket()
    storage.install(backend)
    yield backend
    storage.install(None)


async def test_presigned_upload_complete_and_download(
    client: httpx.AsyncClient, s3: storage.S3Storage, s3_endpoint: str
) -> None:
    headers = bearer(await register(client, role="pro"))
    created = await client.post(
        f"{API}/uploads",
        json={"purpose": "portfolio", "content_type": "image/jpeg", "size": 50_000},
        headers=headers,
    )
    url = created.json()["upload_url"]
    assert url.startswith(s3_endpoint)
    assert "X-Amz-Signature=" in url
    data = jpeg_with_gps()
    async with httpx.AsyncClient() as outside:  # the browser talks to the bucket directly
        put = await outside.put(url, content=data, headers=created.json()["headers"])
        assert put.status_code == 200, put.text
    upload_id = created.json()["upload"]["id"]
    done = await client.post(f"{API}/uploads/{upload_id}/complete", headers=headers)
    assert done.status_code == 200, done.text
    public = await client.get(f"/media/public/{upload_id}")
    assert public.status_code == 302
    assert public.headers["location"].startswith(s3_endpoint)
    async with httpx.AsyncClient() as outside:
        image = await outside.get(public.headers["location"])
    assert image.status_code == 200
    assert 0x8825 not in Image.open(io.BytesIO(image.content)).getexif()


async def test_private_documents_on_s3_stay_encrypted(
    client: httpx.AsyncClient, s3: storage.S3Storage
) -> None:
    headers, _ = await make_pro(client)
    doc = await upload(
        client, headers, png_bytes(), purpose="id_document", content_type="image/png"
    )
    assert doc.status_code == 200, doc.text
    listed = s3.client.list_objects_v2(Bucket="mesteri-test")["Contents"]
    key = next(o["Key"] for o in listed if o["Key"].endswith(doc.json()["id"]))
    raw = s3.client.get_object(Bucket="mesteri-test", Key=key)["Body"].read()
    assert raw.startswith(b"v1:k1:")
    link = await client.get(f"{API}/media/{doc.json()['id']}", headers=headers)
    assert "/media/files/" in link.json()["url"]  # decrypted by the app, not the bucket
    fetched = await client.get(link.json()["url"])
    assert fetched.content.startswith(b"\x89PNG")

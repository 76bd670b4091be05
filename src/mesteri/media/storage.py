"""Object storage behind one small interface.

- ``LocalStorage`` (default): files under ``MESTERI_DATA_DIR/media``; uploads and private
  downloads go through the app with HMAC-signed, expiring URLs (``/media/upload/…``,
  ``/media/files/…``).
- ``S3Storage`` (``MESTERI_STORAGE=s3``): any S3-compatible server through boto3 presigned
  URLs; the browser talks to the bucket directly.

Encrypted objects (identity documents) are always served through the app, which decrypts
them; ``download_url`` returns ``None`` for them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from mesteri.config import Settings
from mesteri.kit import clock
from mesteri.kit.security import constant_time_equals, sign


class Storage(Protocol):
    name: str

    def upload_url(self, key: str, content_type: str, max_size: int, expires: datetime) -> str: ...

    def download_url(self, key: str, content_type: str, expires: datetime) -> str | None:
        """A URL the browser can fetch directly, or None to serve through the app."""

    async def read(self, key: str) -> bytes | None: ...

    async def write(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, key: str) -> None: ...


def _signature(secret: str, *parts: object) -> str:
    return sign(secret, "\n".join(str(p) for p in parts))


def signed_query(secret: str, action: str, target: str, expires: int, extra: str = "") -> str:
    sig = _signature(secret, action, target, expires, extra)
    return urlencode({"expires": expires, "sig": sig})


def check_signature(
    secret: str, action: str, target: str, expires: int, sig: str, extra: str = ""
) -> str | None:
    """None when valid; otherwise the reason ('expired' or 'bad_signature')."""
    if not constant_time_equals(sig, _signature(secret, action, target, expires, extra)):
        return "bad_signature"
    if expires < clock.wall_now().timestamp():
        return "expired"
    return None


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, secret: str, public_url: str = "") -> None:
        self.root = root.resolve()
        self.secret = secret
        self.public_url = public_url.rstrip("/")

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError("key escapes the storage root")
        return path

    def upload_url(self, key: str, content_type: str, max_size: int, expires: datetime) -> str:
        ts = int(expires.timestamp())
        query = signed_query(self.secret, "PUT", key, ts, str(max_size))
        return f"{self.public_url}/media/upload/{quote(key)}?max={max_size}&{query}"

    def download_url(self, key: str, content_type: str, expires: datetime) -> str | None:
        return None  # local files are always served by the app

    async def read(self, key: str) -> bytes | None:
        path = self._path(key)
        return await asyncio.to_thread(_read_file, path)

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(_write_file, self._path(key), data)

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


class S3Storage:
    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "eu-central-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def ensure_bucket(self) -> None:
        existing = {b["Name"] for b in self.client.list_buckets().get("Buckets", [])}
        if self.bucket not in existing:
            self.client.create_bucket(
                Bucket=self.bucket,
                CreateBucketConfiguration={"LocationConstraint": self.client.meta.region_name},
            )

    @staticmethod
    def _seconds(expires: datetime) -> int:
        return max(1, int(expires.timestamp() - clock.wall_now().timestamp()))

    def upload_url(self, key: str, content_type: str, max_size: int, expires: datetime) -> str:
        url: str = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=self._seconds(expires),
        )
        return url

    def download_url(self, key: str, content_type: str, expires: datetime) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key, "ResponseContentType": content_type},
            ExpiresIn=self._seconds(expires),
        )
        return url

    async def read(self, key: str) -> bytes | None:
        def get() -> bytes | None:
            try:
                body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None
            return body

        return await asyncio.to_thread(get)

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
        )

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)


_current: Storage | None = None


def from_settings(settings: Settings) -> Storage:
    if settings.storage == "s3":
        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
    return LocalStorage(settings.data_dir / "media", settings.secret_key, "")


def install(storage: Storage | None) -> None:
    """Tests and the app's lifespan choose the storage; None goes back to the settings."""
    global _current
    _current = storage


def current() -> Storage:
    global _current
    if _current is None:
        from mesteri.config import get_settings

        _current = from_settings(get_settings())
    return _current

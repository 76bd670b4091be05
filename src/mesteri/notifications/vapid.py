"""VAPID keys (RFC 8292): the application server's identity towards browser push services.

The browser subscribes with our public key as ``applicationServerKey``; the push service then
accepts only messages signed by the matching private key. Keys are generated once and stored
by the caller (the database); rotating them invalidates every existing subscription.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True)
class VapidKeys:
    """``private_pem``: PKCS#8 PEM of a P-256 key. ``public_key``: the browser's
    ``applicationServerKey`` (URL-safe base64 without padding of the uncompressed point)."""

    private_pem: str
    public_key: str

    @classmethod
    def from_pem(cls, pem: str) -> VapidKeys:
        """The keys of a stored private key (PKCS#8 or traditional ``EC PRIVATE KEY`` PEM)."""
        try:
            key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not an unencrypted PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("VAPID keys must be P-256 (prime256v1) EC keys")
        return _keys_of(key)

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.private_pem.encode("ascii"), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def generate_vapid_keys() -> VapidKeys:
    return _keys_of(ec.generate_private_key(ec.SECP256R1()))


def _keys_of(key: ec.EllipticCurvePrivateKey) -> VapidKeys:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(private_pem=pem, public_key=b64url(point))


def b64url(data: bytes) -> str:
    """URL-safe base64 without padding, the encoding of keys in the Push API."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

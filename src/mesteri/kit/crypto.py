"""Field encryption: AES-256-GCM with key ids, so keys can rotate.

Ciphertext format: ``v1:<key id>:<base64(nonce || ciphertext+tag)>``. New data is
encrypted with the current key; old data stays readable while its key is listed.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class FieldCipher:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ValueError("the current key id must be one of the keys")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self._current = current

    @classmethod
    def from_secret(cls, secret_key: str) -> FieldCipher:
        """Derive a 256-bit key from the application secret (key id ``k1``)."""
        key = hashlib.sha256(b"mesteri-field-encryption:" + secret_key.encode()).digest()
        return cls({"k1": key}, "k1")

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        nonce = os.urandom(12)
        data = self._keys[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return f"v1:{self._current}:{base64.b64encode(nonce + data).decode()}"

    def decrypt(self, token: str, *, context: str = "") -> str:
        version, kid, payload = token.split(":", 2)
        if version != "v1" or kid not in self._keys:
            raise ValueError("unknown ciphertext version or key id")
        raw = base64.b64decode(payload)
        return self._keys[kid].decrypt(raw[:12], raw[12:], context.encode()).decode()

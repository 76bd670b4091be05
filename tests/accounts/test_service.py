"""Service-level rules that the API does not expose directly."""

from __future__ import annotations

import uuid

import pytest

from mesteri.accounts.service import Principal, check_party, check_staff
from mesteri.kit.errors import PermissionDeniedError


def principal(*roles: str, mfa: bool = False) -> Principal:
    return Principal(uuid.uuid4(), uuid.uuid4(), frozenset(roles), mfa)


def test_check_party_lets_only_parties_and_verified_staff_in() -> None:
    client, pro, stranger = principal("client"), principal("pro"), principal("client")
    check_party(client, client.user_id, pro.user_id)
    check_party(pro, client.user_id, pro.user_id)
    with pytest.raises(PermissionDeniedError):
        check_party(stranger, client.user_id, pro.user_id)
    support = principal("support", mfa=True)
    with pytest.raises(PermissionDeniedError):
        check_party(support, client.user_id)  # staff only where the resource allows it
    check_party(support, client.user_id, staff=True)
    with pytest.raises(PermissionDeniedError):
        check_party(principal("support", mfa=False), client.user_id, staff=True)


def test_check_staff() -> None:
    check_staff(principal("finance", mfa=True))
    with pytest.raises(PermissionDeniedError):
        check_staff(principal("client", "pro", mfa=True))
    with pytest.raises(PermissionDeniedError):
        check_staff(principal("admin", mfa=False))

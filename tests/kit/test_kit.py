"""Kit building blocks: money, ids, business ids, state machines, pagination, i18n, config."""

from __future__ import annotations

import enum
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesteri.config import DEV_SECRET_KEY, InsecureSecretKeyError, Settings
from mesteri.kit.business_ids import valid_cui, valid_israeli_company_number
from mesteri.kit.crypto import FieldCipher
from mesteri.kit.i18n import negotiate, parse_accept_language
from mesteri.kit.ids import new_id
from mesteri.kit.money import CurrencyMismatchError, Money
from mesteri.kit.pagination import InvalidCursorError, decode_cursor, encode_cursor
from mesteri.kit.statemachine import (
    Actor,
    ActorNotAllowedError,
    StateMachine,
    Transition,
    TransitionNotAllowedError,
)

# ---------------------------------------------------------------- money


def test_money_arithmetic_and_currency_safety() -> None:
    assert Money(150, "RON") + Money(50, "RON") == Money(200, "RON")
    assert Money(150, "RON") - Money(200, "RON") == Money(-50, "RON")
    with pytest.raises(CurrencyMismatchError):
        Money(1, "RON") + Money(1, "ILS")
    with pytest.raises(TypeError):
        Money(1.5, "RON")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(1, "lei")


def test_money_share_rounds_down() -> None:
    assert Money(100000, "RON").share(500) == Money(5000, "RON")
    assert Money(999, "RON").share(1000) == Money(99, "RON")


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10_000))
def test_share_and_remainder_always_sum_to_the_whole(amount: int, bps: int) -> None:
    whole = Money(amount, "RON")
    part = whole.share(bps)
    assert 0 <= part.amount <= whole.amount
    assert part + (whole - part) == whole


@pytest.mark.parametrize(
    ("amount", "currency", "typed"),
    [(150000, "RON", "1500"), (125050, "RON", "1250.50"), (5, "ILS", "0.05"), (900, "JPY", "900")],
)
def test_money_plain_is_what_a_form_shows_and_parse_reads_back(
    amount: int, currency: str, typed: str
) -> None:
    assert Money(amount, currency).plain() == typed
    assert Money.parse(typed, currency).amount == amount


def test_money_formats_per_locale() -> None:
    assert "1.234,50" in Money(123450, "RON").format("ro")
    assert "₪" in Money(5000, "ILS").format("he")


# ---------------------------------------------------------------- ids, business ids, crypto


def test_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_id() for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)


def _with_check_digit(body: str) -> str:
    key = "753217532"
    total = sum(int(d) * int(k) for d, k in zip(body.rjust(9, "0"), key, strict=True))
    return body + str(total * 10 % 11 % 10)


@given(st.integers(min_value=1, max_value=10**9 - 1))
def test_cui_check_digit(body: int) -> None:
    cui = _with_check_digit(str(body))
    assert valid_cui(cui)
    assert valid_cui("RO" + cui)
    wrong = cui[:-1] + str((int(cui[-1]) + 1) % 10)
    assert not valid_cui(wrong)


def test_real_cuis() -> None:
    assert valid_cui("14399840")
    assert valid_cui("RO18547290")
    assert not valid_cui("14399841")


@pytest.mark.parametrize("value", ["", "RO", "1", "12345678901", "ABC123", "RO 1x"])
def test_cui_rejects_malformed(value: str) -> None:
    assert not valid_cui(value)


def test_israeli_company_number() -> None:
    assert valid_israeli_company_number("123456782")  # the customary valid test number
    assert valid_israeli_company_number("12345678-2")
    assert not valid_israeli_company_number("123456781")
    assert not valid_israeli_company_number("12345678901")


def test_field_cipher_round_trip_and_key_rotation() -> None:
    old = FieldCipher({"k1": b"1" * 32}, "k1")
    token = old.encrypt("JBSWY3DPEHPK3PXP", context="user-1")
    assert "JBSWY3DP" not in token
    assert token.startswith("v1:k1:")
    rotated = FieldCipher({"k1": b"1" * 32, "k2": b"2" * 32}, "k2")
    assert rotated.decrypt(token, context="user-1") == "JBSWY3DPEHPK3PXP"
    assert rotated.encrypt("x").startswith("v1:k2:")
    with pytest.raises(Exception):  # noqa: B017,PT011 - bound to another record
        rotated.decrypt(token, context="user-2")


# ---------------------------------------------------------------- state machines


class Door(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    LOCKED = "locked"


DOOR = StateMachine(
    entity="door",
    states=Door,
    initial=Door.OPEN,
    transitions=[
        Transition("close", frozenset({Door.OPEN}), Door.CLOSED, frozenset({Actor.USER})),
        Transition(
            "lock",
            frozenset({Door.CLOSED}),
            Door.LOCKED,
            frozenset({Actor.OPERATOR}),
            guard=lambda d: d.has_key,
        ),
        Transition("open", frozenset({Door.CLOSED}), Door.OPEN, frozenset({Actor.USER})),
    ],
)


class FakeSession:
    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, obj: object) -> None:
        self.added.append(obj)


async def test_state_machine_applies_and_records() -> None:
    door = SimpleNamespace(id=uuid.uuid4(), state=Door.OPEN, has_key=True)
    session = FakeSession()
    await DOOR.apply(session, door, "close", actor=Actor.USER)  # type: ignore[arg-type]
    assert door.state == Door.CLOSED
    record = session.added[0]
    assert (record.from_state, record.to_state, record.transition) == ("open", "closed", "close")  # type: ignore[attr-defined]
    with pytest.raises(ActorNotAllowedError):
        await DOOR.apply(session, door, "lock", actor=Actor.USER)  # type: ignore[arg-type]
    door.has_key = False
    with pytest.raises(TransitionNotAllowedError):
        await DOOR.apply(session, door, "lock", actor=Actor.OPERATOR)  # type: ignore[arg-type]
    assert DOOR.available(Door.CLOSED, [Actor.USER], door) == ["open"]
    assert DOOR.terminal_states() == {Door.LOCKED}


def test_state_machine_refuses_ambiguous_tables() -> None:
    with pytest.raises(ValueError, match="ambiguous"):
        StateMachine(
            entity="x",
            states=Door,
            initial=Door.OPEN,
            transitions=[
                Transition("go", frozenset({Door.OPEN}), Door.CLOSED, frozenset({Actor.USER})),
                Transition("go", frozenset({Door.OPEN}), Door.LOCKED, frozenset({Actor.USER})),
            ],
        )


def test_account_lifecycles_walk() -> None:
    from mesteri.accounts.lifecycles import OTP_LIFECYCLE, USER_LIFECYCLE
    from mesteri.accounts.models import OtpState, UserState

    assert USER_LIFECYCLE.terminal_states() == {UserState.DELETED}
    assert OTP_LIFECYCLE.terminal_states() == set(OtpState) - {OtpState.PENDING}
    assert USER_LIFECYCLE.available(UserState.ACTIVE, [Actor.USER]) == ["delete"]


# ---------------------------------------------------------------- pagination and i18n


def test_cursor_round_trip_and_garbage() -> None:
    when, ident = datetime(2026, 1, 2, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor([when, ident]), 2) == [when, ident]
    for garbage in ["", "!!!", encode_cursor([1]), "eyJhIjoxfQ"]:
        with pytest.raises(InvalidCursorError):
            decode_cursor(garbage, 2)


def test_language_negotiation() -> None:
    assert parse_accept_language("he-IL,he;q=0.9,en;q=0.5") == ["he", "he", "en"]
    assert parse_accept_language("en;q=0.1, hu;q=0.8") == ["hu", "en"]
    assert negotiate(chosen=None, accept_language="hu,en", default="ro") == "hu"
    assert negotiate(chosen="he", accept_language="hu", default="ro") == "he"
    assert negotiate(chosen="xx", accept_language="fr,de", default="ro") == "ro"
    assert negotiate(chosen=None, accept_language="en;q=bogus", default="ro") == "ro"


# ---------------------------------------------------------------- configuration


def test_prod_refuses_missing_or_default_secret() -> None:
    with pytest.raises(InsecureSecretKeyError):
        Settings(env="prod")
    with pytest.raises(InsecureSecretKeyError):
        Settings(env="prod", secret_key=DEV_SECRET_KEY)
    with pytest.raises(InsecureSecretKeyError):
        Settings(env="prod", secret_key="short")
    assert Settings(env="prod", secret_key="x" * 40).env == "prod"


def test_prod_process_refuses_to_start_without_secret(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mesteri", "api"],
        env={"MESTERI_ENV": "prod", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "MESTERI_SECRET_KEY" in result.stderr


def test_market_profiles() -> None:
    ro, il = Settings(market="ro").market_profile, Settings(market="il").market_profile
    assert (ro.currency, ro.default_language, ro.phone_region, ro.vat_basis_points) == (
        "RON",
        "ro",
        "RO",
        2100,
    )
    assert (il.currency, il.default_language, il.time_zone, il.vat_basis_points) == (
        "ILS",
        "he",
        "Asia/Jerusalem",
        1800,
    )


def test_state_timers_are_validated_against_the_table() -> None:
    from mesteri.kit.statemachine import Timer

    close = Transition("close", frozenset({Door.OPEN}), Door.CLOSED, frozenset({Actor.USER}))
    auto = Transition("auto", frozenset({Door.OPEN}), Door.CLOSED, frozenset({Actor.SYSTEM}))
    with pytest.raises(ValueError, match="need the model"):
        StateMachine(
            entity="d1",
            states=Door,
            initial=Door.OPEN,
            transitions=[auto],
            timers={Door.OPEN: [Timer("auto", timedelta(minutes=1))]},
        )
    with pytest.raises(ValueError, match="must allow the system"):
        StateMachine(
            entity="d2",
            states=Door,
            initial=Door.OPEN,
            transitions=[close],
            timers={Door.OPEN: [Timer("close", timedelta(minutes=1))]},
            model=object,
        )
    with pytest.raises(ValueError, match="cannot leave"):
        StateMachine(
            entity="d3",
            states=Door,
            initial=Door.OPEN,
            transitions=[auto],
            timers={Door.CLOSED: [Timer("auto", timedelta(minutes=1))]},
            model=object,
        )

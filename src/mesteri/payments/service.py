"""Escrow payments: the interface the milestone lifecycle calls, and the provider's answers.

``fund_hold`` → checkout; ``release``, ``refund``, ``freeze``/``unfreeze`` and
``settle_split`` move held money. Each runs in the caller's transaction under the hold's
row lock, posts balanced ledger entries with idempotency keys derived from our record ids
and records calls to the provider as jobs (transfers, refunds, payouts), so a crash and
retry never sends money twice. A settled hold returns its first settlement to a repeated
call of the same kind and moves nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from mesteri.config import Settings, get_settings
from mesteri.kit import clock, events, jobs
from mesteri.kit.db import ReadSession, WriteSession, driver_connection
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.ids import new_id
from mesteri.kit.money import Money
from mesteri.kit.statemachine import Actor, Move
from mesteri.payments import fees, ledger, providers
from mesteri.payments.errors import (
    AmountTooSmallError,
    HoldFrozenError,
    HoldNotFoundError,
    HoldNotFundedError,
    HoldSettledError,
    PayoutAccountMissingError,
    PayoutNotVerifiedError,
    PayoutTooLargeError,
    RefundTooLargeError,
    SplitMismatchError,
    UnsupportedCurrencyError,
    WebhookTooEarlyError,
)
from mesteri.payments.events import HoldFunded, PayoutAccountChanged
from mesteri.payments.lifecycles import CREDIT_LIFECYCLE, HOLD_LIFECYCLE, PAYOUT_LIFECYCLE
from mesteri.payments.models import (
    AccountKind,
    CreditState,
    EntryKind,
    Hold,
    HoldState,
    Payment,
    PaymentState,
    Payout,
    PayoutAccount,
    PayoutAccountState,
    PayoutState,
    ReconciliationAlert,
    Refund,
    RefundState,
    Transfer,
    TransferState,
    WalletCredit,
    WebhookEvent,
)
from mesteri.payments.providers.base import (
    CheckoutRequest,
    ConnectedAccount,
    EventType,
    ProviderEvent,
)
from mesteri.payments.schemas import HoldIn
from mesteri.pros import service as pros

log = structlog.get_logger(__name__)

K = AccountKind


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class FundResult:
    hold: Hold
    payment: Payment

    @property
    def checkout_url(self) -> str:
        return self.payment.checkout_url


@dataclass(frozen=True)
class Settlement:
    """How a hold settled; stored on the hold and returned to repeated calls."""

    outcome: str  # released, refunded, split
    released: int
    refunded: int
    platform_fee: int
    referral_fee: int
    pro_net: int
    vat_on_fee: int
    currency: str
    at: str

    @classmethod
    def of(cls, data: dict[str, Any]) -> Settlement:
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # flat, so no need for asdict's deep copy


# ---------------------------------------------------------------- checks


def check_amount(settings: Settings, amount: Money) -> None:
    market = settings.market_profile
    if amount.currency != market.currency:
        raise UnsupportedCurrencyError(field="currency", currency=market.currency)
    if amount.amount < market.min_amount:
        minimum = Money(market.min_amount, market.currency).format(market.default_language)
        raise AmountTooSmallError(field="amount", minimum=minimum)


def check_referral_share(percent: int | None) -> None:
    if percent is not None and not 0 <= percent <= 90:
        raise InvalidInputError(
            "The referral share must be between 0 and 90%.", field="referral_share"
        )


def remaining(hold: Hold | HeldMoney) -> int:
    """What the hold still holds: captured, less what was released or refunded."""
    return hold.captured - hold.released - hold.refunded


def _check_settle(hold: Hold | HeldMoney, outcome: str) -> Settlement | None:
    """A settled hold answers a repeat of the same settlement and refuses any other."""
    if hold.settlement is not None:
        if hold.settlement["outcome"] == outcome:
            return Settlement.of(hold.settlement)
        raise HoldSettledError(outcome=hold.settlement["outcome"])
    if hold.state == HoldState.AWAITING_PAYMENT:
        raise HoldNotFundedError()
    if hold.state == HoldState.CANCELLED:
        raise HoldSettledError(outcome=hold.state)
    return None


def _check_not_frozen(hold: Hold | HeldMoney, actor: Actor) -> None:
    """Disputed money moves only by a staff decision (or a split settlement)."""
    if hold.state == HoldState.FROZEN and actor != Actor.OPERATOR:
        raise HoldFrozenError()


# ---------------------------------------------------------------- repository helpers


async def lock_hold(session: WriteSession, hold_id: uuid.UUID) -> Hold:
    hold = await session.get(Hold, hold_id, with_for_update=True, populate_existing=True)
    if hold is None:
        raise HoldNotFoundError()
    return hold


async def get_hold(session: ReadSession, hold_id: uuid.UUID) -> Hold:
    hold = await session.get(Hold, hold_id)
    if hold is None:
        raise HoldNotFoundError()
    return hold


async def hold_by_reference(session: ReadSession, reference: str) -> Hold | None:
    found: Hold | None = await session.scalar(select(Hold).where(Hold.reference == reference))
    return found


async def payments_of(session: ReadSession, hold_id: uuid.UUID) -> Sequence[Payment]:
    return (
        await session.scalars(
            select(Payment).where(Payment.hold_id == hold_id).order_by(Payment.created_at)
        )
    ).all()


async def refunds_of(session: ReadSession, hold_id: uuid.UUID) -> Sequence[Refund]:
    return (
        await session.scalars(
            select(Refund).where(Refund.hold_id == hold_id).order_by(Refund.created_at)
        )
    ).all()


# ---------------------------------------------------------------- funding


async def fund_hold(
    session: WriteSession,
    *,
    reference: str,
    payer_id: uuid.UUID,
    payee_id: uuid.UUID,
    amount: Money,
    description: str,
    payer_email: str | None = None,
    category: str | None = None,
    referrer_id: uuid.UUID | None = None,
    referral_share_percent: int | None = None,
    return_url: str | None = None,
    settings: Settings | None = None,
) -> FundResult:
    """A hold for ``reference`` and a checkout to pay it.

    Calling again for the same reference returns the open checkout (or a new one when the
    last was cancelled); once funded, it returns the paid one.
    """
    settings = settings or get_settings()
    check_amount(settings, amount)
    check_referral_share(referral_share_percent)
    hold = await hold_by_reference(session, reference)
    if hold is None:
        hold = await _new_hold(
            session,
            settings,
            reference=reference,
            payer_id=payer_id,
            payee_id=payee_id,
            amount=amount,
            description=description,
            category=category,
            referrer_id=referrer_id,
            referral_share_percent=referral_share_percent,
        )
    else:
        hold = await lock_hold(session, hold.id)
        for payment in reversed(await payments_of(session, hold.id)):
            if payment.state != PaymentState.CANCELLED:
                return FundResult(hold, payment)
        if hold.state != HoldState.AWAITING_PAYMENT:
            raise HoldSettledError(outcome=hold.state)
    payment = await _new_payment(session, settings, hold, payer_email, return_url)
    return FundResult(hold, payment)


async def _new_hold(
    session: WriteSession,
    settings: Settings,
    *,
    reference: str,
    payer_id: uuid.UUID,
    payee_id: uuid.UUID,
    amount: Money,
    description: str,
    category: str | None,
    referrer_id: uuid.UUID | None,
    referral_share_percent: int | None,
) -> Hold:
    referral = referrer_id is not None and referral_share_percent is not None
    now = clock.now()
    hold = Hold(
        id=new_id(),
        reference=reference,
        description=description,
        payer_id=payer_id,
        payee_id=payee_id,
        referrer_id=referrer_id if referral else None,
        referral_share_bps=referral_share_percent * 100
        if referral and referral_share_percent is not None
        else None,
        category=category,
        fee_bps=fees.fee_bps_for(settings, category, referral=referral),
        vat_bps=settings.market_profile.vat_basis_points,
        currency=amount.currency,
        amount=amount.amount,
        captured=0,
        released=0,
        refunded=0,
        state=HoldState.AWAITING_PAYMENT,
        provider=providers.current().name,
        created_at=now,
        updated_at=now,
    )
    session.add(hold)
    await session.flush()
    return hold


async def _new_payment(
    session: WriteSession,
    settings: Settings,
    hold: Hold,
    payer_email: str | None,
    return_url: str | None,
) -> Payment:
    provider = providers.current()
    payment_id = new_id()
    base = settings.public_url.rstrip("/")
    result_url = f"{base}/payments/{payment_id}"
    checkout = await provider.create_checkout(
        CheckoutRequest(
            reference=str(payment_id),
            amount=hold.amount,
            currency=hold.currency,
            description=hold.description,
            transfer_group=f"hold_{hold.id}",
            customer_email=payer_email,
            # The status page waits for the webhook when the payer comes back having paid.
            success_url=return_url or f"{result_url}?paid=1",
            cancel_url=return_url or result_url,
        ),
        idempotency_key=f"checkout-{payment_id}",
    )
    now = clock.now()
    payment = Payment(
        id=payment_id,
        hold_id=hold.id,
        provider=provider.name,
        provider_ref=checkout.provider_ref,
        checkout_url=checkout.checkout_url,
        amount=hold.amount,
        currency=hold.currency,
        state=PaymentState.REQUIRES_PAYMENT,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    await session.flush()
    return payment


async def do_staff_hold(session: WriteSession, data: HoldIn, settings: Settings) -> FundResult:
    """Finance staff open a hold between two accounts (support cases, demos, tests)."""
    from mesteri.accounts import repository as accounts_repo
    from mesteri.accounts.models import Role

    payer = await accounts_repo.user_by_login(session, str(data.payer_email))
    payee = await accounts_repo.user_by_login(session, str(data.payee_email))
    if payer is None:
        raise InvalidInputError("No account uses this e-mail address.", field="payer_email")
    if payee is None or Role.PRO not in payee.roles:
        raise InvalidInputError("No professional uses this e-mail address.", field="payee_email")
    if payer.id == payee.id:
        raise InvalidInputError("The payer and the professional must differ.", field="payee_email")
    referrer_id = None
    if data.referrer_email is not None:
        referrer = await accounts_repo.user_by_login(session, str(data.referrer_email))
        if referrer is None or referrer.id in (payer.id, payee.id):
            raise InvalidInputError(
                "No other account uses this e-mail address.", field="referrer_email"
            )
        referrer_id = referrer.id
    return await fund_hold(
        session,
        reference=data.reference or f"staff:{new_id()}",
        payer_id=payer.id,
        payee_id=payee.id,
        amount=Money(data.amount, data.currency.upper()),
        description=data.description,
        payer_email=payer.email,
        category=data.category,
        referrer_id=referrer_id,
        referral_share_percent=data.referral_share if referrer_id else None,
        settings=settings,
    )


async def cancel(session: WriteSession, hold_id: uuid.UUID, *, actor: Actor) -> Hold:
    """An unpaid hold is no longer wanted; its open checkouts are cancelled."""
    hold = await lock_hold(session, hold_id)
    await HOLD_LIFECYCLE.apply(session, hold, "cancel", actor=actor)
    await session.execute(
        update(Payment)
        .where(Payment.hold_id == hold.id, Payment.state == PaymentState.REQUIRES_PAYMENT)
        .values(state=PaymentState.CANCELLED, updated_at=clock.now())
    )
    return hold


# ---------------------------------------------------------------- settling


async def release(
    session: WriteSession,
    hold_id: uuid.UUID,
    *,
    actor: Actor = Actor.SYSTEM,
    actor_id: uuid.UUID | None = None,
    settings: Settings | None = None,
) -> Settlement:
    """Release what is held: the pro's share to pending, fees to the platform (SPEC 4.1).

    The ledger's hot path (``bench.ledger``): the hold is read under its row lock without
    the ORM, the rules run here, and everything the release writes goes to the database
    in one call (``hold_release``, migration 0008) whose last write is the ledger entry;
    its credits to the shared platform accounts are applied at commit (see ``ledger``).
    """
    hold = await _lock_for_release(session, hold_id)
    if (first := _check_settle(hold, "released")) is not None:
        return first
    _check_not_frozen(hold, actor)
    part = _release_part(hold, remaining(hold), settings or get_settings())
    move = await HOLD_LIFECYCLE.move(session, hold, "release", actor=actor, actor_id=actor_id)
    settlement = _settlement(hold, "released", part.split if part else None, refunded=0)
    await _write_release(session, hold, move, settlement, part)
    return settlement


async def refund(
    session: WriteSession,
    hold_id: uuid.UUID,
    amount: int | None = None,
    *,
    actor: Actor = Actor.SYSTEM,
    actor_id: uuid.UUID | None = None,
    reason: str = "",
) -> Refund:
    """Refund ``amount`` (everything still held when ``None``) to the payer.

    Refunding all that is left settles the hold; a repeated full refund returns the first.
    """
    hold = await lock_hold(session, hold_id)
    if hold.settlement is not None and hold.settlement["outcome"] == "refunded" and amount is None:
        first = (await refunds_of(session, hold.id))[-1]
        return first
    _check_settle(hold, "refunded")
    _check_not_frozen(hold, actor)
    left = remaining(hold)
    amount = left if amount is None else amount
    if amount <= 0 or amount > left:
        raise RefundTooLargeError(field="amount", available=_format(left, hold.currency))
    refund_ = await _refund_part(session, hold, amount, reason=reason, requested_by=actor_id)
    if amount == left:
        await HOLD_LIFECYCLE.apply(session, hold, "refund", actor=actor, actor_id=actor_id)
        _settle(hold, "refunded", None, refunded=amount)
    return refund_


async def freeze(
    session: WriteSession, hold_id: uuid.UUID, *, actor: Actor, actor_id: uuid.UUID | None = None
) -> Hold:
    """A dispute holds the money: nothing releases, refunds or expires it until resolved."""
    hold = await lock_hold(session, hold_id)
    if hold.state != HoldState.FROZEN:
        await HOLD_LIFECYCLE.apply(session, hold, "freeze", actor=actor, actor_id=actor_id)
    return hold


async def unfreeze(
    session: WriteSession, hold_id: uuid.UUID, *, actor: Actor, actor_id: uuid.UUID | None = None
) -> Hold:
    hold = await lock_hold(session, hold_id)
    if hold.state == HoldState.FROZEN:
        await HOLD_LIFECYCLE.apply(session, hold, "unfreeze", actor=actor, actor_id=actor_id)
    return hold


async def settle_split(
    session: WriteSession,
    hold_id: uuid.UUID,
    *,
    pro_amount: int,
    client_amount: int,
    actor: Actor = Actor.SYSTEM,
    actor_id: uuid.UUID | None = None,
    settings: Settings | None = None,
) -> Settlement:
    """Settle a frozen hold in two parts: the client's refunded in full, the pro's released
    with the platform fee computed on that part alone (SPEC 4.1)."""
    hold = await lock_hold(session, hold_id)
    if (first := _check_settle(hold, "split")) is not None:
        return first
    left = remaining(hold)
    if pro_amount < 0 or client_amount < 0 or pro_amount + client_amount != left:
        raise SplitMismatchError(held=_format(left, hold.currency))
    if hold.state != HoldState.FROZEN:
        raise HoldFrozenError("Only a frozen (disputed) payment can be split.")
    part = _release_part(hold, pro_amount, settings or get_settings())
    _add_release(session, hold, part)
    if client_amount:
        await _refund_part(
            session, hold, client_amount, reason="dispute split", requested_by=actor_id
        )
    await HOLD_LIFECYCLE.apply(session, hold, "settle_split", actor=actor, actor_id=actor_id)
    settlement = _settle(hold, "split", part.split if part else None, refunded=client_amount)
    await _post_release(session, part)
    return settlement


def _settle(hold: Hold, outcome: str, split: fees.Split | None, *, refunded: int) -> Settlement:
    settlement = _settlement(hold, outcome, split, refunded=refunded)
    hold.settlement = settlement.as_dict()
    hold.updated_at = clock.now()
    return settlement


def _settlement(
    hold: Hold | HeldMoney, outcome: str, split: fees.Split | None, *, refunded: int
) -> Settlement:
    return Settlement(
        outcome=outcome,
        released=split.amount if split else 0,
        refunded=refunded,
        platform_fee=split.platform_fee if split else 0,
        referral_fee=split.referral_fee if split else 0,
        pro_net=split.pro_net if split else 0,
        vat_on_fee=split.vat_on_fee if split else 0,
        currency=hold.currency,
        at=clock.now().isoformat(),
    )


@dataclass(frozen=True)
class _ReleasePart:
    """What releasing ``split.amount`` writes besides the hold: the ledger entry, the
    shares' wallet credits and transfers, and their jobs (transfer, hold-period timer)."""

    split: fees.Split
    posting: ledger.Posting
    credits: list[dict[str, Any]]  # wallet_credits rows
    transfers: list[dict[str, Any]]  # transfers rows
    jobs: list[dict[str, Any]]  # outbox rows


def _release_part(hold: Hold | HeldMoney, amount: int, settings: Settings) -> _ReleasePart | None:
    if amount == 0:
        return None
    split = fees.split(
        amount,
        hold.currency,
        fee_bps=hold.fee_bps,
        referral_share_bps=hold.referral_share_bps,
        vat_bps=hold.vat_bps,
    )
    cur = hold.currency
    legs: list[ledger.Leg] = [
        (ledger.owned(K.ESCROW, hold.id, cur), -amount),
        (ledger.owned(K.WALLET_PENDING, hold.payee_id, cur), split.pro_net),
        (ledger.platform(K.PLATFORM_REVENUE, cur), split.platform_net),
        (ledger.platform(K.VAT_PAYABLE, cur), split.vat_on_fee),
    ]
    if hold.referrer_id is not None:
        legs.append((ledger.owned(K.WALLET_PENDING, hold.referrer_id, cur), split.referral_fee))
    posting = ledger.posting(
        EntryKind.RELEASE,
        legs,
        cause=ledger.Cause("hold", hold.id, hold_id=hold.id),
        idempotency_key=f"release:{hold.id}",
        memo=hold.description[:300],
    )
    part = _ReleasePart(split, posting, [], [], [])
    available_at = clock.now() + timedelta(days=_hold_days(settings))
    for user_id, share in ((hold.payee_id, split.pro_net), (hold.referrer_id, split.referral_fee)):
        if user_id is not None and share > 0:
            _credit(part, hold, user_id, share, available_at)
    return part


@dataclass(frozen=True, slots=True)
class _Share:
    """A wallet credit about to be written; its lifecycle's timer reads ``available_at``."""

    id: uuid.UUID
    available_at: datetime
    state: CreditState = CreditState.PENDING


def _credit(
    part: _ReleasePart,
    hold: Hold | HeldMoney,
    user_id: uuid.UUID,
    amount: int,
    available_at: datetime,
) -> None:
    """A released share: pending until the hold period ends, and sent to the account.

    Plain rows rather than ORM objects: the release's hot path writes them in SQL."""
    from mesteri.payments.tasks import send_transfer

    now = clock.now()
    share = _Share(new_id(), available_at)
    common = {
        "user_id": user_id,
        "hold_id": hold.id,
        "entry_id": part.posting.entry_id,
        "amount": amount,
        "currency": hold.currency,
        "created_at": now,
    }
    transfer_id = new_id()
    part.credits.append(
        {"id": share.id, **common, "state": share.state, "available_at": available_at}
    )
    part.transfers.append(
        {
            "id": transfer_id,
            **common,
            "state": TransferState.PENDING,
            "provider_ref": None,
            "sent_at": None,
        }
    )
    part.jobs.extend(CREDIT_LIFECYCLE.timer_jobs(share, share.state))
    part.jobs.append(jobs.outbox_row(send_transfer, transfer_id=str(transfer_id)))


def _add_release(session: WriteSession, hold: Hold, part: _ReleasePart | None) -> None:
    """The ORM way to write a release part (a split's), all but its entry (``_post_release``)."""
    if part is None:
        return
    hold.released += part.split.amount
    session.add_all([WalletCredit(**row) for row in part.credits])
    session.add_all([Transfer(**row) for row in part.transfers])
    session.add_all([jobs.OutboxEntry(**job) for job in part.jobs])


async def _post_release(session: WriteSession, part: _ReleasePart | None) -> None:
    """The release's lines: the last write, as they lock the shared platform rows."""
    if part is not None:
        await ledger.post_entry(session, part.posting)


def _hold_days(settings: Settings) -> int:
    return (
        settings.hold_days if settings.hold_days is not None else settings.market_profile.hold_days
    )


# ---------------------------------------------------------------- the release's hot path


@dataclass(frozen=True, slots=True)
class HeldMoney:
    """The columns of a hold that a release reads, loaded without the ORM."""

    id: uuid.UUID
    state: str
    settlement: dict[str, Any] | None
    captured: int
    released: int
    refunded: int
    currency: str
    fee_bps: int
    vat_bps: int
    referral_share_bps: int | None
    payee_id: uuid.UUID
    referrer_id: uuid.UUID | None
    description: str


_holds = Hold.__table__.c
_LOCK_FOR_RELEASE = (
    select(*(_holds[name] for name in HeldMoney.__dataclass_fields__))
    .where(_holds.id == bindparam("hold_id"))
    .with_for_update()
)
# One JSON document per release, serialised once (ids and times as text); sent through
# the driver, as its result is nothing the ORM needs to read.
_HOLD_RELEASE = "SELECT hold_release($1::jsonb)"


async def _lock_for_release(session: WriteSession, hold_id: uuid.UUID) -> HeldMoney:
    row = (await session.execute(_LOCK_FOR_RELEASE, {"hold_id": hold_id})).one_or_none()
    if row is None:
        raise HoldNotFoundError()
    return HeldMoney(**row._mapping)


async def _write_release(
    session: WriteSession,
    hold: HeldMoney,
    move: Move[HoldState],
    settlement: Settlement,
    part: _ReleasePart | None,
) -> None:
    """Everything the release decided, in one call; the ledger lines are its last write."""
    now = clock.now()
    values = {
        "state": str(move.transition.target),
        "released": hold.released + (part.split.amount if part else 0),
        "settlement": settlement.as_dict(),
        "updated_at": now,
    }
    outbox = [*move.jobs, *(part.jobs if part else [])]
    release = {
        "hold": {"id": hold.id, **values},
        "history": [move.history],
        "credits": part.credits if part else [],
        "transfers": part.transfers if part else [],
        "jobs": outbox,
        "posting": part.posting.as_json() if part else None,
    }
    # The caller's pending writes (and the event handlers') go first, the lines last.
    await session.flush()
    if any(job["run_at"] <= now for job in outbox):
        jobs.wake_relay_after_commit(session)  # the transfer job, written by the SQL
    driver = await driver_connection(session)  # the hold's lock began the transaction
    with ledger.insufficient_funds():
        await driver.execute(_HOLD_RELEASE, json.dumps(release, default=str))
    _refresh_loaded_hold(session, hold.id, values)


def _refresh_loaded_hold(session: WriteSession, hold_id: uuid.UUID, values: dict[str, Any]) -> None:
    """A Hold the caller loaded earlier in this session learns what the SQL wrote."""
    loaded = session.identity_map.get(identity_key(Hold, hold_id))
    if loaded is not None:
        for name, value in values.items():
            set_committed_value(loaded, name, value)


async def _refund_part(
    session: WriteSession,
    hold: Hold,
    amount: int,
    *,
    reason: str,
    requested_by: uuid.UUID | None,
) -> Refund:
    payment = await _captured_payment(session, hold)
    now = clock.now()
    refund_ = Refund(
        id=new_id(),
        hold_id=hold.id,
        payment_id=payment.id,
        amount=amount,
        currency=hold.currency,
        reason=reason[:300],
        state=RefundState.PENDING,
        requested_by=requested_by,
        created_at=now,
        updated_at=now,
    )
    session.add(refund_)
    await session.flush()
    await ledger.post(
        session,
        EntryKind.REFUND,
        [
            (ledger.owned(K.ESCROW, hold.id, hold.currency), -amount),
            (ledger.owned(K.REFUNDS_PAYABLE, hold.id, hold.currency), amount),
        ],
        cause=ledger.Cause("refund", refund_.id, hold_id=hold.id),
        idempotency_key=f"refund:{refund_.id}",
        memo=reason[:300],
    )
    hold.refunded += amount
    hold.updated_at = now
    from mesteri.payments.tasks import send_refund

    await jobs.defer(session, send_refund, refund_id=str(refund_.id))
    return refund_


async def _captured_payment(session: WriteSession, hold: Hold) -> Payment:
    """The payment to refund from: the most recent captured one with room left."""
    for payment in reversed(await payments_of(session, hold.id)):
        if payment.state == PaymentState.SUCCEEDED:
            return payment
    raise HoldNotFundedError()


def _format(amount: int, currency: str) -> str:
    settings = get_settings()
    return Money(amount, currency).format(settings.market_profile.default_language)


# ---------------------------------------------------------------- wallet and payouts


@dataclass(frozen=True)
class Wallet:
    currency: str
    pending: int
    available: int
    in_transit: int


async def wallet(session: ReadSession, user_id: uuid.UUID, currency: str) -> Wallet:
    balances = await ledger.balances(session, user_id, currency)
    return Wallet(
        currency=currency,
        pending=balances.get(K.WALLET_PENDING, 0),
        available=balances.get(K.WALLET_AVAILABLE, 0),
        in_transit=balances.get(K.PAYOUTS_IN_TRANSIT, 0),
    )


async def payout_account(
    session: ReadSession, user_id: uuid.UUID, provider: str | None = None
) -> PayoutAccount | None:
    found: PayoutAccount | None = await session.scalar(
        select(PayoutAccount).where(
            PayoutAccount.user_id == user_id,
            PayoutAccount.provider == (provider or providers.current().name),
        )
    )
    return found


async def check_payout_capability(session: ReadSession, user_id: uuid.UUID) -> PayoutAccount:
    """Only a verified pro whose provider account can pay out may withdraw (SPEC M3)."""
    if not await pros.is_verified_pro(session, user_id):
        raise PayoutNotVerifiedError()
    account = await payout_account(session, user_id)
    if account is None or account.state != PayoutAccountState.ACTIVE:
        raise PayoutAccountMissingError()
    return account


async def do_start_onboarding(
    session: WriteSession,
    *,
    user_id: uuid.UUID,
    email: str | None,
    return_url: str,
    settings: Settings | None = None,
) -> str:
    """The provider's onboarding link; the connected account is created on first use."""
    settings = settings or get_settings()
    provider = providers.current()
    account = await payout_account(session, user_id)
    if account is None:
        connected = await provider.create_connected_account(
            reference=str(user_id),
            email=email,
            country=settings.market_profile.country,
            idempotency_key=f"account-{user_id}",
        )
        now = clock.now()
        await session.execute(
            insert(PayoutAccount)
            .values(
                id=new_id(),
                user_id=user_id,
                provider=provider.name,
                provider_ref=connected.ref,
                state=_account_state(connected.payouts_enabled, connected.requirements_due),
                requirements_due=list(connected.requirements_due),
                last_event_at=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        account = await payout_account(session, user_id)
        assert account is not None
        await _publish_account(session, user_id, connected, observed_at=0)
    return await provider.onboarding_link(
        account.provider_ref, return_url=return_url, refresh_url=return_url
    )


def identity_provider() -> str | None:
    """The installed provider's name when its onboarding checks identity (Stripe), else
    ``None``: the pros module then needs the provider's agreement to verify a pro."""
    provider = providers.current()
    return provider.name if provider.checks_identity else None


async def _publish_account(
    session: WriteSession, user_id: uuid.UUID, account: ConnectedAccount, *, observed_at: int
) -> None:
    provider = providers.current()
    await events.publish(
        session,
        PayoutAccountChanged(
            user_id=user_id,
            provider=provider.name,
            checks_identity=provider.checks_identity,
            status=str(account.status),
            requirements_due=account.requirements_due,
            past_due=account.past_due,
            disabled_reason=account.disabled_reason,
            observed_at=observed_at,
        ),
    )


def _account_state(payouts_enabled: bool, due: Sequence[str]) -> PayoutAccountState:
    if payouts_enabled:
        return PayoutAccountState.ACTIVE
    return PayoutAccountState.RESTRICTED if due else PayoutAccountState.ONBOARDING


async def request_payout(session: WriteSession, user_id: uuid.UUID, amount: Money) -> Payout:
    """Withdraw available money to the pro's bank through the provider."""
    await check_payout_capability(session, user_id)
    available = (await wallet(session, user_id, amount.currency)).available
    if amount.amount <= 0 or amount.amount > available:
        raise PayoutTooLargeError(field="amount", available=_format(available, amount.currency))
    now = clock.now()
    payout = Payout(
        id=new_id(),
        user_id=user_id,
        amount=amount.amount,
        currency=amount.currency,
        state=PayoutState.REQUESTED,
        provider=providers.current().name,
        created_at=now,
        updated_at=now,
    )
    session.add(payout)
    await session.flush()
    # The balance CHECK refuses a concurrent second withdrawal of the same money.
    await ledger.post(
        session,
        EntryKind.PAYOUT,
        [
            (ledger.owned(K.WALLET_AVAILABLE, user_id, amount.currency), -amount.amount),
            (ledger.owned(K.PAYOUTS_IN_TRANSIT, user_id, amount.currency), amount.amount),
        ],
        cause=ledger.Cause("payout", payout.id),
        idempotency_key=f"payout:{payout.id}",
    )
    from mesteri.payments.tasks import send_payout

    await jobs.defer(session, send_payout, payout_id=str(payout.id))
    return payout


async def fail_payout(session: WriteSession, payout: Payout, code: str | None) -> None:
    """The money comes back to the available balance (once)."""
    if payout.state == PayoutState.FAILED:
        return
    source = (
        ledger.platform(K.PROVIDER_CLEARING, payout.currency)
        if payout.state == PayoutState.PAID
        else ledger.owned(K.PAYOUTS_IN_TRANSIT, payout.user_id, payout.currency)
    )
    await ledger.post(
        session,
        EntryKind.PAYOUT_RETURNED,
        [
            (source, -payout.amount),
            (ledger.owned(K.WALLET_AVAILABLE, payout.user_id, payout.currency), payout.amount),
        ],
        cause=ledger.Cause("payout", payout.id, provider_ref=payout.provider_ref),
        idempotency_key=f"payout-returned:{payout.id}",
    )
    payout.failure_code = code
    payout.updated_at = clock.now()
    await PAYOUT_LIFECYCLE.apply(session, payout, "fail", actor=Actor.SYSTEM)


# ---------------------------------------------------------------- provider events


async def do_handle_event(session: WriteSession, provider_name: str, event: ProviderEvent) -> str:
    """Apply one verified event exactly once (its id is the de-duplication key)."""
    inserted = await session.scalar(
        insert(WebhookEvent)
        .values(
            provider=provider_name,
            event_id=event.id,
            type=event.raw_type,
            object_ref=event.object_ref,
            outcome="received",
            payload=dict(event.payload),
            received_at=clock.now(),
        )
        .on_conflict_do_nothing()
        .returning(WebhookEvent.event_id)
    )
    if inserted is None:
        return "duplicate"
    handler = _HANDLERS.get(event.type)
    outcome = await handler(session, provider_name, event) if handler else "ignored"
    if handler is None:
        log.info("provider event ignored", provider=provider_name, type=event.raw_type)
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.provider == provider_name, WebhookEvent.event_id == event.id)
        .values(outcome=outcome)
    )
    return outcome


async def _payment_for(session: WriteSession, provider: str, event: ProviderEvent) -> Payment:
    query = select(Payment).with_for_update()
    if event.reference:
        query = query.where(Payment.id == _uuid(event.reference))
    else:
        query = query.where(Payment.provider == provider, Payment.provider_ref == event.object_ref)
    payment = await session.scalar(query)
    if payment is None:
        raise WebhookTooEarlyError()
    return payment


async def _on_payment_succeeded(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    payment = await _payment_for(session, provider, event)
    if payment.state == PaymentState.SUCCEEDED:
        return "already_applied"
    hold = await lock_hold(session, payment.hold_id)
    amount = event.amount if event.amount is not None else payment.amount
    payment.state = PaymentState.SUCCEEDED
    payment.method = event.payment_method
    payment.failure_code = payment.failure_message = None
    payment.updated_at = clock.now()
    hold.captured += amount
    expected = hold.state == HoldState.AWAITING_PAYMENT and amount == hold.amount
    if expected:
        await HOLD_LIFECYCLE.apply(session, hold, "fund", actor=Actor.SYSTEM)
        await session.execute(
            update(Payment)
            .where(
                Payment.hold_id == hold.id,
                Payment.state == PaymentState.REQUIRES_PAYMENT,
                Payment.id != payment.id,
            )
            .values(state=PaymentState.CANCELLED, updated_at=clock.now())
        )
    cur = hold.currency
    # The capture and the provider's fee for it in one entry, as the last write: the shared
    # clearing row stays locked only for the commit.
    await ledger.post(
        session,
        EntryKind.CAPTURE,
        [
            (ledger.owned(K.ESCROW, hold.id, cur), amount),
            (ledger.platform(K.PROVIDER_FEES, cur), -event.fee),
            (ledger.platform(K.PROVIDER_CLEARING, cur), event.fee - amount),
        ],
        cause=ledger.Cause(
            "payment",
            payment.id,
            hold_id=hold.id,
            provider_ref=event.object_ref,
            provider_event_id=event.id,
        ),
        idempotency_key=f"capture:{payment.id}",
    )
    if expected:
        await events.publish(session, HoldFunded(hold.id, hold.reference, payment.id))
        return "funded"
    # Paid twice, paid after cancelling, or a wrong amount: the money goes straight back.
    await _refund_part(
        session, hold, amount, reason="duplicate or unexpected payment", requested_by=None
    )
    _alert(
        session, provider, "payment", event.object_ref, "unexpected_payment", hold.amount, amount
    )
    return "refunded_unexpected"


async def _on_payment_failed(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    payment = await _payment_for(session, provider, event)
    if payment.state != PaymentState.REQUIRES_PAYMENT:
        return "stale"
    payment.failure_code = (event.failure_code or "payment_failed")[:60]
    payment.failure_message = (event.failure_message or "")[:300] or None
    payment.attempts += 1
    payment.updated_at = clock.now()
    return "declined"


async def _refund_for(session: WriteSession, event: ProviderEvent) -> Refund:
    query = select(Refund).with_for_update()
    if event.reference:
        query = query.where(Refund.id == _uuid(event.reference))
    else:
        query = query.where(Refund.provider_ref == event.object_ref)
    refund_ = await session.scalar(query)
    if refund_ is None:
        raise WebhookTooEarlyError()
    return refund_


async def _on_refund_succeeded(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    refund_ = await _refund_for(session, event)
    if refund_.state != RefundState.PENDING:
        return "stale"
    await ledger.post(
        session,
        EntryKind.REFUND_CONFIRMED,
        [
            (ledger.owned(K.REFUNDS_PAYABLE, refund_.hold_id, refund_.currency), -refund_.amount),
            (ledger.platform(K.PROVIDER_CLEARING, refund_.currency), refund_.amount),
        ],
        cause=ledger.Cause(
            "refund",
            refund_.id,
            hold_id=refund_.hold_id,
            provider_ref=event.object_ref,
            provider_event_id=event.id,
        ),
        idempotency_key=f"refund-confirmed:{refund_.id}",
    )
    refund_.state = RefundState.SUCCEEDED
    refund_.provider_ref = refund_.provider_ref or event.object_ref
    refund_.updated_at = clock.now()
    return "refunded"


async def _on_refund_failed(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    refund_ = await _refund_for(session, event)
    if refund_.state != RefundState.PENDING:
        return "stale"
    hold = await lock_hold(session, refund_.hold_id)
    # The money returns to escrow and finance staff decide (the hold stays as it was).
    await ledger.post(
        session,
        EntryKind.REFUND_RETURNED,
        [
            (ledger.owned(K.REFUNDS_PAYABLE, hold.id, hold.currency), -refund_.amount),
            (ledger.owned(K.ESCROW, hold.id, hold.currency), refund_.amount),
        ],
        cause=ledger.Cause("refund", refund_.id, hold_id=hold.id, provider_ref=event.object_ref),
        idempotency_key=f"refund-returned:{refund_.id}",
    )
    hold.refunded -= refund_.amount
    refund_.state = RefundState.FAILED
    refund_.updated_at = clock.now()
    _alert(session, provider, "refund", event.object_ref, "refund_failed", refund_.amount, None)
    return "refund_failed"


async def _payout_for(session: WriteSession, event: ProviderEvent) -> Payout:
    query = select(Payout).with_for_update()
    if event.reference:
        query = query.where(Payout.id == _uuid(event.reference))
    else:
        query = query.where(Payout.provider_ref == event.object_ref)
    payout = await session.scalar(query)
    if payout is None:
        raise WebhookTooEarlyError()
    return payout


async def _on_payout_paid(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    payout = await _payout_for(session, event)
    if payout.state in (PayoutState.PAID, PayoutState.FAILED):
        return "stale"
    payout.provider_ref = payout.provider_ref or event.object_ref
    if payout.state == PayoutState.REQUESTED:  # the event overtook our own record of the call
        await PAYOUT_LIFECYCLE.apply(session, payout, "send", actor=Actor.SYSTEM)
    await ledger.post(
        session,
        EntryKind.PAYOUT_PAID,
        [
            (ledger.owned(K.PAYOUTS_IN_TRANSIT, payout.user_id, payout.currency), -payout.amount),
            (ledger.platform(K.PROVIDER_CLEARING, payout.currency), payout.amount),
        ],
        cause=ledger.Cause(
            "payout", payout.id, provider_ref=event.object_ref, provider_event_id=event.id
        ),
        idempotency_key=f"payout-paid:{payout.id}",
    )
    payout.updated_at = clock.now()
    await PAYOUT_LIFECYCLE.apply(session, payout, "pay", actor=Actor.SYSTEM)
    return "paid"


async def _on_payout_failed(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    payout = await _payout_for(session, event)
    if payout.state == PayoutState.FAILED:
        return "stale"
    payout.provider_ref = payout.provider_ref or event.object_ref
    await fail_payout(session, payout, event.failure_code)
    return "failed"


async def _on_transfer_created(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    if not event.reference:
        return "ignored"
    transfer = await session.get(Transfer, _uuid(event.reference), with_for_update=True)
    if transfer is None:
        raise WebhookTooEarlyError()
    if transfer.state == TransferState.SENT:
        return "stale"
    transfer.state = TransferState.SENT
    transfer.provider_ref = event.object_ref
    transfer.sent_at = clock.now()
    return "sent"


async def _on_account_updated(session: WriteSession, provider: str, event: ProviderEvent) -> str:
    assert event.account is not None
    account = await session.scalar(
        select(PayoutAccount)
        .where(PayoutAccount.provider == provider, PayoutAccount.provider_ref == event.account.ref)
        .with_for_update()
    )
    if account is None:
        raise WebhookTooEarlyError()
    if event.created < account.last_event_at:
        return "stale"  # an older snapshot arriving late
    account.state = _account_state(event.account.payouts_enabled, event.account.requirements_due)
    account.requirements_due = list(event.account.requirements_due)
    account.last_event_at = event.created
    account.updated_at = clock.now()
    await _publish_account(session, account.user_id, event.account, observed_at=event.created)
    if account.state == PayoutAccountState.ACTIVE:
        await _send_pending_transfers(session, account.user_id)
    return str(account.state)


async def _send_pending_transfers(session: WriteSession, user_id: uuid.UUID) -> None:
    from mesteri.payments.tasks import send_transfer

    pending = await session.scalars(
        select(Transfer.id).where(
            Transfer.user_id == user_id, Transfer.state == TransferState.PENDING
        )
    )
    for transfer_id in pending:
        await jobs.defer(session, send_transfer, transfer_id=str(transfer_id))


_HANDLERS = {
    EventType.PAYMENT_SUCCEEDED: _on_payment_succeeded,
    EventType.PAYMENT_FAILED: _on_payment_failed,
    EventType.REFUND_SUCCEEDED: _on_refund_succeeded,
    EventType.REFUND_FAILED: _on_refund_failed,
    EventType.PAYOUT_PAID: _on_payout_paid,
    EventType.PAYOUT_FAILED: _on_payout_failed,
    EventType.TRANSFER_CREATED: _on_transfer_created,
    EventType.ACCOUNT_UPDATED: _on_account_updated,
}


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise WebhookTooEarlyError() from exc


def _alert(
    session: WriteSession,
    provider: str,
    kind: str,
    ref: str,
    problem: str,
    expected: int | None,
    actual: int | None,
    detail: str = "",
) -> None:
    log.warning("payments alert", provider=provider, kind=kind, ref=ref, problem=problem)
    session.add(
        ReconciliationAlert(
            id=new_id(),
            provider=provider,
            object_kind=kind,
            object_ref=ref,
            problem=problem,
            expected=expected,
            actual=actual,
            detail=detail[:300],
            created_at=clock.now(),
        )
    )

"""Payments API: fee quotes, payments and refunds, wallets and payouts, provider webhooks,
and the finance staff's holds, ledger and reconciliation views."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from mesteri.accounts import repository as accounts_repo
from mesteri.accounts import service as accounts
from mesteri.accounts.deps import CurrentAuth, CurrentPrincipal, StaffPrincipal
from mesteri.config import Settings, get_settings
from mesteri.kit.db import DbRead, DbWrite
from mesteri.kit.errors import InvalidInputError, NotFoundError
from mesteri.kit.idempotency import IdempotencyKey, idempotent
from mesteri.kit.money import Money
from mesteri.kit.pagination import Page
from mesteri.kit.statemachine import Actor
from mesteri.payments import fees, ledger, providers, repository, service
from mesteri.payments.errors import (
    PaymentNotFoundError,
    UnknownProviderError,
    UnsupportedCurrencyError,
    WebhookRejectedError,
)
from mesteri.payments.models import AccountKind, Hold, Payment
from mesteri.payments.providers.base import InvalidSignatureError
from mesteri.payments.schemas import (
    AlertOut,
    FeeQuoteOut,
    FundOut,
    HoldIn,
    HoldOut,
    LedgerAccountOut,
    LedgerLineOut,
    PaymentOut,
    PayoutAccountOut,
    PayoutIn,
    PayoutOut,
    RefundIn,
    RefundOut,
    SettlementOut,
    SplitIn,
    WalletOut,
    WebhookAck,
)

router = APIRouter(tags=["payments"])
admin = APIRouter(prefix="/admin", tags=["back-office"])


def hold_out(hold: Hold) -> HoldOut:
    return HoldOut(
        id=hold.id,
        reference=hold.reference,
        description=hold.description,
        payer_id=hold.payer_id,
        payee_id=hold.payee_id,
        referrer_id=hold.referrer_id,
        amount=hold.amount,
        captured=hold.captured,
        released=hold.released,
        refunded=hold.refunded,
        held=service.remaining(hold),
        currency=hold.currency,
        state=hold.state,
        settlement=SettlementOut(**hold.settlement) if hold.settlement else None,
        created_at=hold.created_at,
    )


def _settings(request: Request) -> Settings:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return settings


# ---------------------------------------------------------------- fees


@router.get("/fees/quote", response_model=FeeQuoteOut)
async def fee_quote(
    request: Request,
    amount: Annotated[int, Query(gt=0, le=10**12, description="Minor units")],
    currency: Annotated[str, Query(min_length=3, max_length=3)],
    category: Annotated[str | None, Query(max_length=80)] = None,
    referral_share: Annotated[int | None, Query(ge=0, le=90, description="Percent")] = None,
) -> FeeQuoteOut:
    """The exact split a release of ``amount`` makes (SPEC 4.1)."""
    settings = _settings(request)
    if currency.upper() != settings.market_profile.currency:
        raise UnsupportedCurrencyError(field="currency", currency=settings.market_profile.currency)
    split = fees.quote(settings, amount, category=category, referral_share_percent=referral_share)
    return FeeQuoteOut(
        amount=split.amount,
        platform_fee=split.platform_fee,
        referral_fee=split.referral_fee,
        pro_net=split.pro_net,
        vat_on_fee=split.vat_on_fee,
        currency=split.currency,
        fee_rate_bps=split.fee_bps,
        vat_rate_bps=settings.market_profile.vat_basis_points,
    )


# ---------------------------------------------------------------- payments and refunds


async def _payment_for_party(
    session: DbRead, payment_id: uuid.UUID, principal: accounts.Principal
) -> tuple[Payment, Hold]:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFoundError()
    hold = await service.get_hold(session, payment.hold_id)
    accounts.check_party(principal, hold.payer_id, hold.payee_id, staff=True)
    return payment, hold


@router.get("/payments/{payment_id}", response_model=PaymentOut)
async def get_payment(
    payment_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> Payment:
    payment, _hold = await _payment_for_party(session, payment_id, principal)
    return payment


@router.post("/payments/{payment_id}/refunds", response_model=RefundOut, status_code=201)
async def refund_payment(
    payment_id: uuid.UUID,
    body: RefundIn,
    request: Request,
    session: DbWrite,
    auth: CurrentAuth,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """The payee (giving money back) or finance staff refund part or all of what is held."""
    user, principal = auth
    _payment, hold = await _payment_for_party(session, payment_id, principal)
    staff = principal.user_id != hold.payee_id
    if staff:
        accounts.check_staff(principal)

    actor = Actor.OPERATOR if staff else Actor.PRO
    return await _refund(session, request, hold.id, body, actor, user.id, idempotency_key)


async def _refund(
    session: DbWrite,
    request: Request,
    hold_id: uuid.UUID,
    body: RefundIn,
    actor: Actor,
    actor_id: uuid.UUID,
    idempotency_key: str | None,
) -> object:
    async def call() -> RefundOut:
        refund = await service.refund(
            session, hold_id, body.amount, actor=actor, actor_id=actor_id, reason=body.reason
        )
        return RefundOut.model_validate(refund)

    return await idempotent(
        session,
        request,
        user_id=actor_id,
        key=idempotency_key,
        body=body,
        call=call,
        status_code=201,
    )


@router.post("/payments/webhooks/{provider}", response_model=WebhookAck)
async def provider_webhook(provider: str, request: Request, session: DbWrite) -> WebhookAck:
    """Signed provider events: verified, de-duplicated by id, applied in one transaction."""
    installed = providers.current()
    if provider != installed.name:
        raise UnknownProviderError()
    payload = await request.body()
    try:
        event = installed.parse_webhook(payload, request.headers)
    except InvalidSignatureError as exc:
        raise WebhookRejectedError() from exc
    outcome = await service.do_handle_event(session, installed.name, event)
    return WebhookAck(received=True, outcome=outcome)


# ---------------------------------------------------------------- wallet and payouts


@router.get("/wallet", response_model=WalletOut)
async def get_wallet(
    request: Request,
    session: DbRead,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> WalletOut:
    currency = _settings(request).market_profile.currency
    return await repository.wallet_view(
        session, principal.user_id, currency, cursor=cursor, limit=limit
    )


@router.post("/wallet/payouts", response_model=PayoutOut, status_code=201)
async def create_payout(
    body: PayoutIn,
    request: Request,
    session: DbWrite,
    auth: CurrentAuth,
    idempotency_key: IdempotencyKey = None,
) -> object:
    user, _principal = auth
    if body.currency.upper() != _settings(request).market_profile.currency:
        raise UnsupportedCurrencyError(
            field="currency", currency=_settings(request).market_profile.currency
        )

    async def call() -> PayoutOut:
        payout = await service.request_payout(
            session, user.id, Money(body.amount, body.currency.upper())
        )
        return PayoutOut.model_validate(payout)

    return await idempotent(
        session,
        request,
        user_id=user.id,
        key=idempotency_key,
        body=body,
        call=call,
        status_code=201,
    )


@router.get("/wallet/payouts", response_model=Page[PayoutOut])
async def list_payouts(
    session: DbRead,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[PayoutOut]:
    rows, next_cursor = await repository.payouts_of(
        session, principal.user_id, cursor=cursor, limit=limit
    )
    return Page(items=[PayoutOut.model_validate(p) for p in rows], next_cursor=next_cursor)


@router.get("/wallet/payout-account", response_model=PayoutAccountOut)
async def get_payout_account(session: DbRead, principal: CurrentPrincipal) -> PayoutAccountOut:
    account = await service.payout_account(session, principal.user_id)
    if account is None:
        return PayoutAccountOut(state="none", requirements_due=[])
    return PayoutAccountOut(state=account.state, requirements_due=account.requirements_due)


@router.post("/wallet/payout-account", response_model=PayoutAccountOut)
async def start_payout_onboarding(
    request: Request, session: DbWrite, auth: CurrentAuth
) -> PayoutAccountOut:
    """A link to the provider's onboarding, where the pro adds identity and bank details."""
    user, _principal = auth
    url = await service.do_start_onboarding(
        session,
        user_id=user.id,
        email=user.email,
        return_url=_settings(request).public_url.rstrip("/") + "/wallet",
    )
    account = await service.payout_account(session, user.id)
    assert account is not None
    return PayoutAccountOut(
        state=account.state, requirements_due=account.requirements_due, onboarding_url=url
    )


# ---------------------------------------------------------------- staff: holds


async def _user_id(session: DbWrite, email: str, field: str) -> uuid.UUID:
    user = await accounts_repo.user_by_login(session, email)
    if user is None:
        raise InvalidInputError("No account uses this e-mail address.", field=field)
    return user.id


@admin.post("/holds", response_model=FundOut, status_code=201)
async def create_hold(
    body: HoldIn,
    request: Request,
    session: DbWrite,
    principal: StaffPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    async def call() -> FundOut:
        result = await service.do_staff_hold(session, body, _settings(request))
        return FundOut(
            hold=hold_out(result.hold),
            payment_id=result.payment.id,
            checkout_url=result.checkout_url,
        )

    return await idempotent(
        session,
        request,
        user_id=principal.user_id,
        key=idempotency_key,
        body=body,
        call=call,
        status_code=201,
    )


@admin.get("/holds", response_model=Page[HoldOut])
async def list_holds(
    session: DbRead,
    _staff: StaffPrincipal,
    state: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[HoldOut]:
    rows, next_cursor = await repository.holds(session, state=state, cursor=cursor, limit=limit)
    return Page(items=[hold_out(h) for h in rows], next_cursor=next_cursor)


@router.get("/holds/{hold_id}", response_model=HoldOut)
async def get_hold(hold_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal) -> HoldOut:
    hold = await service.get_hold(session, hold_id)
    accounts.check_party(principal, hold.payer_id, hold.payee_id, hold.referrer_id, staff=True)
    return hold_out(hold)


@admin.post("/holds/{hold_id}/release", response_model=SettlementOut)
async def release_hold(
    hold_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: StaffPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    async def call() -> SettlementOut:
        settled = await service.release(
            session, hold_id, actor=Actor.OPERATOR, actor_id=principal.user_id
        )
        return SettlementOut(**settled.__dict__)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=None, call=call
    )


@admin.post("/holds/{hold_id}/refunds", response_model=RefundOut, status_code=201)
async def refund_hold(
    hold_id: uuid.UUID,
    body: RefundIn,
    request: Request,
    session: DbWrite,
    principal: StaffPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    return await _refund(
        session, request, hold_id, body, Actor.OPERATOR, principal.user_id, idempotency_key
    )


@admin.post("/holds/{hold_id}/freeze", response_model=HoldOut)
async def freeze_hold(hold_id: uuid.UUID, session: DbWrite, principal: StaffPrincipal) -> HoldOut:
    return hold_out(
        await service.freeze(session, hold_id, actor=Actor.OPERATOR, actor_id=principal.user_id)
    )


@admin.post("/holds/{hold_id}/unfreeze", response_model=HoldOut)
async def unfreeze_hold(hold_id: uuid.UUID, session: DbWrite, principal: StaffPrincipal) -> HoldOut:
    return hold_out(
        await service.unfreeze(session, hold_id, actor=Actor.OPERATOR, actor_id=principal.user_id)
    )


@admin.post("/holds/{hold_id}/split", response_model=SettlementOut)
async def split_hold(
    hold_id: uuid.UUID,
    body: SplitIn,
    request: Request,
    session: DbWrite,
    principal: StaffPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    async def call() -> SettlementOut:
        settled = await service.settle_split(
            session,
            hold_id,
            pro_amount=body.pro_amount,
            client_amount=body.client_amount,
            actor=Actor.OPERATOR,
            actor_id=principal.user_id,
        )
        return SettlementOut(**settled.__dict__)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=body, call=call
    )


# ---------------------------------------------------------------- staff: ledger and reconciliation


@admin.get("/ledger/accounts", response_model=list[LedgerAccountOut])
async def ledger_accounts(
    session: DbRead,
    _staff: StaffPrincipal,
    owner_id: uuid.UUID | None = None,
    kind: Annotated[AccountKind | None, Query()] = None,
) -> list[LedgerAccountOut]:
    rows = await repository.ledger_accounts(session, owner_id=owner_id, kind=kind)
    return [LedgerAccountOut.model_validate(a, from_attributes=True) for a in rows]


@admin.get("/ledger/accounts/{account_id}/lines", response_model=Page[LedgerLineOut])
async def ledger_account_lines(
    account_id: uuid.UUID,
    session: DbRead,
    _staff: StaffPrincipal,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[LedgerLineOut]:
    """Any account's history, newest first, with the balance after each line."""
    account = await repository.ledger_account(session, account_id)
    if account is None:
        raise NotFoundError()
    key = ledger.AccountKey(AccountKind(account.kind), account.owner_id, account.currency)
    rows, next_cursor = await ledger.history(session, [key], cursor=cursor, limit=limit)
    return Page(
        items=[LedgerLineOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@admin.get("/reconciliation/alerts", response_model=Page[AlertOut])
async def reconciliation_alerts(
    session: DbRead,
    _staff: StaffPrincipal,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[AlertOut]:
    rows, next_cursor = await repository.alerts(session, cursor=cursor, limit=limit)
    return Page(items=[AlertOut.model_validate(a) for a in rows], next_cursor=next_cursor)

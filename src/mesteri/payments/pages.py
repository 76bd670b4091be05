"""Payments pages: the sandbox's hosted checkout and onboarding, the payment status page,
the pro's wallet and the finance staff's page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mesteri.accounts import service as accounts
from mesteri.accounts.deps import WebAuthRequired
from mesteri.config import get_settings
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite
from mesteri.kit.errors import InvalidInputError, NotFoundError
from mesteri.kit.money import Money
from mesteri.kit.statemachine import Actor
from mesteri.kit.web import form_amount, form_errors, render, templates
from mesteri.payments import providers, repository, service
from mesteri.payments.errors import PaymentNotFoundError
from mesteri.payments.lifecycles import HOLD_LIFECYCLE
from mesteri.payments.models import Hold, HoldState, Payment, PaymentState
from mesteri.payments.sandbox.provider import SandboxProvider
from mesteri.payments.schemas import HoldIn
from mesteri.payments.tasks import do_reconcile

router = APIRouter()

# Decline reasons as the payer reads them (codes from the provider).
DECLINE_MESSAGES = {
    "card_declined": i18n.lazy("Your card was declined. Try another card."),
    "insufficient_funds": i18n.lazy("Your card has insufficient funds. Try another card."),
    "incorrect_number": i18n.lazy("The card number is not valid. Check it and try again."),
    "card_not_supported": i18n.lazy("Use one of the sandbox test cards listed on this page."),
    "bnpl_denied": i18n.lazy("The instalment plan was not approved. Pay by card instead."),
}
GENERIC_DECLINE = i18n.lazy("The payment did not go through. Try again.")


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format(i18n.get_language())


def _hold_actions(hold: Hold) -> list[str]:
    """The buttons finance staff get: what the hold lifecycle allows an operator now."""
    allowed = HOLD_LIFECYCLE.available(HoldState(hold.state), [Actor.OPERATOR], hold)
    return [name for name in HOLD_ACTION_NAMES if name in allowed]


HOLD_ACTION_NAMES = {
    "release": i18n.lazy("Release"),
    "refund": i18n.lazy("Refund"),
    "freeze": i18n.lazy("Freeze"),
    "unfreeze": i18n.lazy("Unfreeze"),
}

templates.globals.update(
    money=_money,
    hold_actions=_hold_actions,
    hold_action_names=HOLD_ACTION_NAMES,
    hold_states={
        "awaiting_payment": i18n.lazy("Awaiting payment"),
        "held": i18n.lazy("Held in escrow"),
        "frozen": i18n.lazy("Frozen (dispute)"),
        "released": i18n.lazy("Released"),
        "refunded": i18n.lazy("Refunded"),
        "split": i18n.lazy("Split"),
        "cancelled": i18n.lazy("Cancelled"),
    },
    payout_states={
        "requested": i18n.lazy("Requested"),
        "in_transit": i18n.lazy("On the way"),
        "paid": i18n.lazy("Paid"),
        "failed": i18n.lazy("Failed — returned to your balance"),
    },
    balance_names={
        "pending": i18n.lazy("Pending"),
        "available": i18n.lazy("Available"),
        "in_transit": i18n.lazy("On the way to your bank"),
    },
    entry_names={
        "release": i18n.lazy("Payment released to you"),
        "mature": i18n.lazy("Hold period ended"),
        "payout": i18n.lazy("Payout requested"),
        "payout_paid": i18n.lazy("Payout paid"),
        "payout_returned": i18n.lazy("Payout returned"),
        "reversal": i18n.lazy("Correction"),
    },
)


def _sandbox() -> SandboxProvider:
    provider = providers.current()
    if not isinstance(provider, SandboxProvider):
        raise NotFoundError()
    return provider


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------- sandbox provider pages


@router.get("/sandbox/checkout/{ref}")
async def sandbox_checkout(request: Request, ref: str) -> Response:
    payment = await _sandbox().checkout(ref)
    if payment is None:
        raise NotFoundError()
    if payment.status == "succeeded":
        return _redirect(payment.data.get("success_url") or "/")
    error = (payment.data.get("last_payment_error") or {}).get("code")
    return render(request, "payments/checkout.html", _checkout_context(payment, error))


@router.post("/sandbox/checkout/{ref}")
async def sandbox_pay(
    request: Request,
    ref: str,
    card_number: Annotated[str, Form(max_length=40)] = "",
    bnpl: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    provider = _sandbox()
    payment = await provider.checkout(ref)
    if payment is None:
        raise NotFoundError()
    decision = None if bnpl is None else bnpl == "approve"
    outcome = await provider.pay(ref, card_number=card_number, bnpl=decision)
    if outcome.succeeded:
        return _redirect(payment.data.get("success_url") or "/")
    return render(
        request,
        "payments/checkout.html",
        _checkout_context(payment, outcome.code),
        status_code=402,
    )


def _checkout_context(payment: object, code: str | None) -> dict[str, object]:
    return {
        "payment": payment,
        "decline": DECLINE_MESSAGES.get(code or "", GENERIC_DECLINE) if code else None,
    }


@router.get("/sandbox/onboarding/{ref}")
async def sandbox_onboarding(request: Request, ref: str) -> Response:
    account = await _sandbox().account(ref)
    if account is None:
        raise NotFoundError()
    return render(request, "payments/onboarding.html", {"account": account})


@router.post("/sandbox/onboarding/{ref}")
async def sandbox_onboarding_submit(
    ref: str,
    iban: Annotated[str, Form(max_length=40)] = "",
    action: Annotated[str, Form(max_length=20)] = "complete",
) -> Response:
    provider = _sandbox()
    if await provider.account(ref) is None:
        raise NotFoundError()
    cleaned = iban.replace(" ", "").upper() if action == "complete" else ""
    return _redirect(await provider.complete_onboarding(ref, iban=cleaned or None))


# ---------------------------------------------------------------- the payer's status page


@router.get("/payments/{payment_id}")
async def payment_status(
    request: Request,
    payment_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    paid: bool = False,
) -> Response:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFoundError()
    hold = await service.get_hold(session, payment.hold_id)
    accounts.check_party(auth[1], hold.payer_id, hold.payee_id, staff=True)
    waiting = payment.state == PaymentState.REQUIRES_PAYMENT
    return render(
        request,
        "payments/status.html",
        {
            "payment": payment,
            "hold": hold,
            "waiting": waiting,
            # Back from a successful checkout, an earlier decline no longer matters.
            "decline": DECLINE_MESSAGES.get(payment.failure_code or "", GENERIC_DECLINE)
            if payment.failure_code and not paid
            else None,
        },
    )


# ---------------------------------------------------------------- the pro's wallet


@router.get("/wallet")
async def wallet_page(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    return render(request, "payments/wallet.html", await _wallet_context(session, auth[0].id))


async def _wallet_context(session: DbWrite, user_id: uuid.UUID) -> dict[str, object]:
    currency = get_settings().market_profile.currency
    view = await repository.wallet_view(session, user_id, currency, cursor=None, limit=50)
    payouts, _next = await repository.payouts_of(session, user_id, cursor=None, limit=20)
    account = await service.payout_account(session, user_id)
    return {"wallet": view, "payouts": payouts, "account": account}


@router.post("/wallet/payout-account")
async def wallet_onboarding(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    user = auth[0]
    url = await service.do_start_onboarding(
        session,
        user_id=user.id,
        email=user.email,
        return_url=get_settings().public_url.rstrip("/") + "/wallet",
    )
    return _redirect(url)


@router.post("/wallet/payouts")
async def wallet_payout(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    amount: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    user = auth[0]
    currency = get_settings().market_profile.currency
    context = await _wallet_context(session, user.id)
    with form_errors(request, "payments/wallet.html", **context):
        await service.request_payout(
            session, user.id, Money(form_amount(amount, currency, "amount"), currency)
        )
    return _redirect("/wallet?requested=1")


# ---------------------------------------------------------------- finance staff


@router.get("/admin/finance")
async def finance_page(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    accounts.check_staff(auth[1])
    return render(request, "payments/finance.html", await _finance_context(session))


async def _finance_context(session: DbWrite, **extra: object) -> dict[str, object]:
    holds, _ = await repository.holds(session, state=None, cursor=None, limit=50)
    payouts, _ = await repository.payouts_of(session, None, cursor=None, limit=50)
    alerts, _ = await repository.alerts(session, cursor=None, limit=50)
    refunds = await repository.recent_refunds(session)
    return {
        "holds": holds,
        "payouts": payouts,
        "alerts": alerts,
        "refunds": refunds,
        "currency": get_settings().market_profile.currency,
        "form": {},
        **extra,
    }


@router.post("/admin/finance/holds")
async def finance_create_hold(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    payer_email: Annotated[str, Form(max_length=254)] = "",
    payee_email: Annotated[str, Form(max_length=254)] = "",
    amount: Annotated[str, Form(max_length=30)] = "",
    description: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    accounts.check_staff(auth[1])
    currency = get_settings().market_profile.currency
    form = {
        "payer_email": payer_email,
        "payee_email": payee_email,
        "amount": amount,
        "description": description,
    }
    context = await _finance_context(session, form=form)
    with form_errors(request, "payments/finance.html", **context):
        try:
            data = HoldIn(
                payer_email=payer_email,
                payee_email=payee_email,
                amount=form_amount(amount, currency, "amount"),
                currency=currency,
                description=description or "—",
            )
        except ValueError as exc:
            raise InvalidInputError("Enter valid e-mail addresses.", field="payer_email") from exc
        result = await service.do_staff_hold(session, data, get_settings())
    context = await _finance_context(session, created=result)
    return render(request, "payments/finance.html", context, status_code=201)


@router.post("/admin/finance/holds/{hold_id}/{action}")
async def finance_hold_action(
    request: Request,
    hold_id: uuid.UUID,
    action: str,
    session: DbWrite,
    auth: WebAuthRequired,
) -> Response:
    accounts.check_staff(auth[1])
    staff, op = auth[0].id, Actor.OPERATOR
    context = await _finance_context(session)
    with form_errors(request, "payments/finance.html", **context):
        if action == "release":
            await service.release(session, hold_id, actor=op, actor_id=staff)
        elif action == "refund":
            await service.refund(session, hold_id, None, actor=op, actor_id=staff, reason="finance")
        elif action == "freeze":
            await service.freeze(session, hold_id, actor=op, actor_id=staff)
        elif action == "unfreeze":
            await service.unfreeze(session, hold_id, actor=op, actor_id=staff)
        else:
            raise NotFoundError()
    return _redirect("/admin/finance")


@router.post("/admin/finance/reconcile")
async def finance_reconcile(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    accounts.check_staff(auth[1])
    await do_reconcile(session)
    return _redirect("/admin/finance")

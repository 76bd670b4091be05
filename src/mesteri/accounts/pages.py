"""Pages of accounts: register, verify, sign in (password or code), reset, account settings.

They call the same service functions as the API; nothing here decides a rule.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated
from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from mesteri.accounts import service
from mesteri.accounts.deps import (
    SESSION_COOKIE,
    Client,
    Limiter,
    WebAuth,
    WebAuthRequired,
)
from mesteri.accounts.errors import InvalidCredentialsError
from mesteri.accounts.models import OtpPurpose, SessionKind
from mesteri.config import get_settings
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite
from mesteri.kit.web import form_errors, local_path, render, templates

router = APIRouter()

# Shown in templates (hints, role names) so the pages never drift from the rules.
templates.globals["password_min_length"] = service.PASSWORD_MIN_LENGTH
templates.globals["role_names"] = {
    "client": i18n.lazy("Client"),
    "pro": i18n.lazy("Professional"),
    "admin": i18n.lazy("Admin"),
    "support": i18n.lazy("Support"),
    "finance": i18n.lazy("Finance"),
}

Text = Annotated[str, Form(max_length=256)]


def _signed_in(response: Response, web_token: str) -> Response:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        web_token,
        max_age=settings.web_session_days * 86400,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )
    return response


def _signed_out(response: Response) -> Response:
    response.delete_cookie(SESSION_COOKIE)
    return response


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


# ---------------------------------------------------------------- register and verify


@router.get("/register")
async def register_form(request: Request, role: str = "client") -> Response:
    return render(
        request,
        "accounts/register.html",
        {"form": {"role": role if role in ("client", "pro") else "client"}},
    )


@router.post("/register")
async def register_submit(
    request: Request,
    session: DbWrite,
    client: Client,
    limiter: Limiter,
    email: Text = "",
    phone: Text = "",
    password: Text = "",
    first_name: Text = "",
    last_name: Text = "",
    role: Text = "client",
) -> Response:
    form = {
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "role": role,
    }
    with form_errors(request, "accounts/register.html", form=form):
        _user, _auth, token = await service.do_register(
            session,
            service.Registration(
                email=email,
                phone=phone,
                password=password,
                first_name=first_name,
                last_name=last_name,
                role=role,
                language=i18n.get_language(),
            ),
            client,
            limiter,
            kind=SessionKind.WEB,
        )
    assert isinstance(token, str)
    return _signed_in(_redirect("/verify"), token)


@router.get("/verify")
async def verify_page(request: Request, auth: WebAuthRequired) -> Response:
    return render(request, "accounts/verify.html", {"me": auth[0]})


@router.post("/verify/{what}")
async def verify_submit(
    request: Request,
    what: str,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    limiter: Limiter,
    code: Text = "",
) -> Response:
    user = auth[0]
    purpose = OtpPurpose.VERIFY_PHONE if what == "phone" else OtpPurpose.VERIFY_EMAIL
    with form_errors(request, "accounts/verify.html", me=user, failed=what):
        await service.do_verify_contact(session, user, purpose, code, client, limiter)
    done = user.email_verified_at is not None and user.phone_verified_at is not None
    return _redirect("/?welcome=1" if done else "/verify")


@router.post("/verify-resend/{what}")
async def verify_resend(
    request: Request,
    what: str,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    limiter: Limiter,
) -> Response:
    user = auth[0]
    purpose = OtpPurpose.VERIFY_PHONE if what == "phone" else OtpPurpose.VERIFY_EMAIL
    with form_errors(request, "accounts/verify.html", me=user, failed=what):
        await service.do_resend_verification(session, user, purpose, client, limiter)
    return render(
        request,
        "accounts/verify.html",
        {"me": user, "notice": i18n.gettext("A new code is on its way.")},
    )


# ---------------------------------------------------------------- sign in and out


@router.get("/signin")
async def signin_form(request: Request, next: str = "/") -> Response:
    return render(request, "accounts/signin.html", {"form": {}, "next": local_path(next)})


@router.post("/signin")
async def signin_submit(
    request: Request,
    session: DbWrite,
    client: Client,
    limiter: Limiter,
    login: Text = "",
    password: Text = "",
    totp: Text = "",
    next: Text = "/",
) -> Response:
    target = local_path(next)
    with form_errors(request, "accounts/signin.html", form={"login": login}, next=target):
        user, _auth, token = await service.do_login_password(
            session,
            login=login,
            password=password,
            totp=totp or None,
            client=client,
            limiter=limiter,
            kind=SessionKind.WEB,
        )
    assert isinstance(token, str)
    if user.is_staff and user.totp_enabled_at is None:
        target = "/account#two-factor"
    return _signed_in(_redirect(target), token)


@router.get("/signin/code")
async def code_signin_form(request: Request) -> Response:
    return render(request, "accounts/signin_code.html", {"form": {}, "step": "login"})


@router.post("/signin/code/send")
async def code_signin_send(
    request: Request,
    session: DbWrite,
    client: Client,
    limiter: Limiter,
    login: Text = "",
) -> Response:
    with form_errors(request, "accounts/signin_code.html", form={"login": login}, step="login"):
        await service.do_send_login_code(session, login, client, limiter)
    return render(request, "accounts/signin_code.html", {"form": {"login": login}, "step": "code"})


@router.post("/signin/code")
async def code_signin_submit(
    request: Request,
    session: DbWrite,
    client: Client,
    limiter: Limiter,
    login: Text = "",
    code: Text = "",
) -> Response:
    with form_errors(request, "accounts/signin_code.html", form={"login": login}, step="code"):
        _user, _auth, token = await service.do_login_with_code(
            session,
            login=login,
            code=code,
            client=client,
            limiter=limiter,
            kind=SessionKind.WEB,
        )
    assert isinstance(token, str)
    return _signed_in(_redirect("/"), token)


@router.post("/signout")
async def signout(request: Request, session: DbWrite, auth: WebAuth) -> Response:
    if auth is not None:
        await service.do_logout(session, auth[1], everywhere=False)
    return _signed_out(_redirect("/"))


# ---------------------------------------------------------------- password reset


@router.get("/password/forgot")
async def forgot_form(request: Request) -> Response:
    return render(request, "accounts/forgot.html", {"form": {}})


@router.post("/password/forgot")
async def forgot_submit(
    request: Request,
    session: DbWrite,
    client: Client,
    limiter: Limiter,
    login: Text = "",
) -> Response:
    with form_errors(request, "accounts/forgot.html", form={"login": login}):
        await service.do_send_login_code(
            session, login, client, limiter, purpose=OtpPurpose.PASSWORD_RESET
        )
    return _redirect("/password/reset?" + urlencode({"login": login}))


@router.get("/password/reset")
async def reset_form(request: Request, login: str = "", code: str = "") -> Response:
    return render(request, "accounts/reset.html", {"form": {"login": login, "code": code}})


@router.post("/password/reset")
async def reset_submit(
    request: Request,
    session: DbWrite,
    client: Client,
    limiter: Limiter,
    login: Text = "",
    code: Text = "",
    new_password: Text = "",
) -> Response:
    with form_errors(request, "accounts/reset.html", form={"login": login, "code": code}):
        await service.do_reset_password(
            session,
            login=login,
            code=code,
            new_password=new_password,
            client=client,
            limiter=limiter,
        )
    return render(
        request,
        "accounts/signin.html",
        {
            "form": {"login": login},
            "next": "/",
            "notice": i18n.gettext("Your password is changed. Sign in with the new one."),
        },
    )


# ---------------------------------------------------------------- account settings


async def _account_context(session: DbWrite, auth: WebAuthRequired) -> dict[str, object]:
    user, principal = auth
    return {
        "me": user,
        "principal": principal,
        "sessions": await service.list_sessions(session, principal),
    }


@router.get("/account")
async def account_page(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    return render(request, "accounts/account.html", await _account_context(session, auth))


@router.post("/account/profile")
async def account_profile(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    first_name: Text = "",
    last_name: Text = "",
    language: Text = "",
) -> Response:
    context = await _account_context(session, auth)
    with form_errors(request, "accounts/account.html", **context):
        await service.do_update_profile(
            session,
            auth[0],
            first_name=first_name or None,
            last_name=last_name or None,
            language=language or None,
        )
    i18n.set_language(auth[0].language)
    return _redirect("/account?saved=profile")


@router.post("/account/password")
async def account_password(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    limiter: Limiter,
    current_password: Text = "",
    new_password: Text = "",
) -> Response:
    context = await _account_context(session, auth)
    with form_errors(request, "accounts/account.html", **context):
        await service.do_change_password(
            session,
            auth[0],
            auth[1],
            current=current_password,
            new=new_password,
            client=client,
            limiter=limiter,
        )
    return _redirect("/account?saved=password")


@router.post("/account/roles")
async def account_roles(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    role: Text = "",
) -> Response:
    context = await _account_context(session, auth)
    with form_errors(request, "accounts/account.html", **context):
        await service.do_add_role(session, auth[0], role)
    return _redirect("/account?saved=roles")


@router.post("/account/2fa/setup")
async def account_totp_setup(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    secret, uri = await service.do_totp_setup(session, auth[0])
    qr = Markup(segno.make(uri, error="m").svg_inline(scale=4, title="otpauth QR"))  # noqa: S704
    context = await _account_context(session, auth)
    return render(
        request, "accounts/account.html", {**context, "totp_secret": secret, "totp_qr": qr}
    )


@router.post("/account/2fa/enable")
async def account_totp_enable(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    limiter: Limiter,
    code: Text = "",
) -> Response:
    context = await _account_context(session, auth)
    with form_errors(request, "accounts/account.html", **context, totp_pending=True):
        await service.do_totp_enable(session, auth[0], auth[1], code, client, limiter)
    return _redirect("/account?saved=2fa#two-factor")


@router.post("/account/2fa/disable")
async def account_totp_disable(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    limiter: Limiter,
    password: Text = "",
    code: Text = "",
) -> Response:
    context = await _account_context(session, auth)
    with form_errors(request, "accounts/account.html", **context):
        await service.do_totp_disable(
            session, auth[0], password=password, code=code, client=client, limiter=limiter
        )
    return _redirect("/account?saved=2fa#two-factor")


@router.post("/account/sessions/{session_id}/revoke")
async def account_revoke_session(
    request: Request,
    session_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
) -> Response:
    await service.do_revoke_session(session, auth[1], session_id)
    return _redirect("/account?saved=sessions#sessions")


@router.post("/account/sessions/revoke-all")
async def account_revoke_all(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    await service.do_logout(session, auth[1], everywhere=True)
    return _signed_out(_redirect("/signin"))


@router.get("/account/export")
async def account_export(session: DbWrite, auth: WebAuthRequired) -> Response:
    data = await service.export_user_data(session, auth[0])
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="mesteri-export.json"'},
    )


@router.post("/account/delete")
async def account_delete(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    limiter: Limiter,
    password: Text = "",
    confirm: Text = "",
) -> Response:
    context = await _account_context(session, auth)
    with form_errors(request, "accounts/account.html", **context):
        if confirm != "on":
            raise InvalidCredentialsError(
                "Tick the box to confirm that you want to delete your account.", field="confirm"
            )
        await service.do_delete_account(
            session, auth[0], password=password, client=client, limiter=limiter
        )
    return _signed_out(render(request, "accounts/deleted.html"))


# ---------------------------------------------------------------- language switcher


@router.post("/language")
async def switch_language(
    request: Request,
    session: DbWrite,
    auth: WebAuth,
    language: Text = "",
    next: Text = "/",
) -> Response:
    settings = get_settings()
    chosen = service.check_language(language, settings)
    if auth is not None:
        await service.do_update_profile(session, auth[0], language=chosen)
    response = _redirect(local_path(next))
    response.set_cookie(
        i18n.LANGUAGE_COOKIE,
        chosen,
        max_age=365 * 86400,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
    )
    return response


async def web_language(auth: WebAuth) -> None:
    """On pages, a signed-in user's own language wins over the browser's.

    Async on purpose: a sync dependency runs in a thread, where setting the
    language context variable would not reach the page.
    """
    if auth is not None:
        i18n.set_language(auth[0].language)


# Every page router depends on this so the nav knows who is signed in, in their language.
WebContext = Depends(web_language)

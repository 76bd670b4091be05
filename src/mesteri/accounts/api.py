"""JSON API of accounts: ``/api/v1/auth/*`` and ``/api/v1/me``. Thin: parse, call, shape."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse

from mesteri.accounts import service
from mesteri.accounts.deps import (
    Client,
    CurrentAuth,
    CurrentPrincipal,
    CurrentUser,
    Limiter,
    ReadingUser,
)
from mesteri.accounts.models import OtpPurpose, User
from mesteri.accounts.schemas import (
    PURPOSE_OF,
    Accepted,
    AddRoleIn,
    AuthOut,
    ChangePasswordIn,
    CodeIn,
    DeleteMeIn,
    ForgotIn,
    LoginIn,
    LogoutIn,
    MePatch,
    OtpSendIn,
    OtpVerifyIn,
    RefreshIn,
    RegisterIn,
    ResendIn,
    ResetIn,
    SessionOut,
    TokensOut,
    TotpDisableIn,
    TotpEnableIn,
    TotpSetupOut,
    UserOut,
)
from mesteri.accounts.service import Identity, IssuedTokens
from mesteri.kit.db import DbRead, DbWrite
from mesteri.kit.i18n import gettext as _
from mesteri.kit.pagination import Page

auth = APIRouter(prefix="/auth", tags=["auth"])
me = APIRouter(prefix="/me", tags=["me"])


def user_out(user: User | Identity) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        phone=user.phone,
        first_name=user.first_name,
        last_name=user.last_name,
        language=user.language,
        roles=sorted(user.roles),
        state=user.state,
        email_verified=user.email_verified_at is not None,
        phone_verified=user.phone_verified_at is not None,
        two_factor_enabled=user.totp_enabled_at is not None,
        created_at=user.created_at,
    )


def tokens_out(tokens: object) -> TokensOut:
    assert isinstance(tokens, IssuedTokens)
    return TokensOut(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@auth.post("/register", status_code=status.HTTP_201_CREATED, response_model=AuthOut)
async def register(body: RegisterIn, session: DbWrite, client: Client, limiter: Limiter) -> AuthOut:
    user, _session, tokens = await service.do_register(
        session, service.Registration(**body.model_dump()), client, limiter
    )
    return AuthOut(user=user_out(user), tokens=tokens_out(tokens))


@auth.post("/login", response_model=AuthOut)
async def login(body: LoginIn, session: DbWrite, client: Client, limiter: Limiter) -> AuthOut:
    user, _session, tokens = await service.do_login_password(
        session,
        login=body.login,
        password=body.password,
        totp=body.totp,
        client=client,
        limiter=limiter,
    )
    return AuthOut(user=user_out(user), tokens=tokens_out(tokens))


@auth.post("/refresh", response_model=TokensOut)
async def refresh(body: RefreshIn, session: DbWrite, client: Client, limiter: Limiter) -> TokensOut:
    return tokens_out(await service.do_refresh(session, body.refresh_token, client, limiter))


@auth.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: LogoutIn, session: DbWrite, principal: CurrentPrincipal) -> Response:
    await service.do_logout(session, principal, everywhere=body.everywhere)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.post("/otp/send", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def otp_send(body: OtpSendIn, session: DbWrite, client: Client, limiter: Limiter) -> Accepted:
    """A sign-in code by e-mail or SMS. The answer is the same whether or not an account
    exists, so the endpoint cannot be used to find out who has one."""
    await service.do_send_login_code(session, body.login, client, limiter, channel=body.channel)
    return Accepted(detail=_("If an account exists, a code is on its way."))


@auth.post("/otp/verify", response_model=AuthOut)
async def otp_verify(
    body: OtpVerifyIn, session: DbWrite, client: Client, limiter: Limiter
) -> AuthOut:
    user, _session, tokens = await service.do_login_with_code(
        session, login=body.login, code=body.code, client=client, limiter=limiter
    )
    return AuthOut(user=user_out(user), tokens=tokens_out(tokens))


@auth.post("/verify-email", response_model=UserOut)
async def verify_email(
    body: CodeIn, session: DbWrite, user: CurrentUser, client: Client, limiter: Limiter
) -> UserOut:
    await service.do_verify_contact(
        session, user, OtpPurpose.VERIFY_EMAIL, body.code, client, limiter
    )
    return user_out(user)


@auth.post("/verify-phone", response_model=UserOut)
async def verify_phone(
    body: CodeIn, session: DbWrite, user: CurrentUser, client: Client, limiter: Limiter
) -> UserOut:
    await service.do_verify_contact(
        session, user, OtpPurpose.VERIFY_PHONE, body.code, client, limiter
    )
    return user_out(user)


@auth.post("/verification/resend", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def resend_verification(
    body: ResendIn, session: DbWrite, user: CurrentUser, client: Client, limiter: Limiter
) -> Accepted:
    purpose = PURPOSE_OF[body.purpose]
    await service.do_resend_verification(session, user, purpose, client, limiter)
    return Accepted(detail=_("A new code is on its way."))


@auth.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def password_forgot(
    body: ForgotIn, session: DbWrite, client: Client, limiter: Limiter
) -> Accepted:
    await service.do_send_login_code(
        session, body.login, client, limiter, purpose=OtpPurpose.PASSWORD_RESET
    )
    return Accepted(detail=_("If an account exists, a code is on its way."))


@auth.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
async def password_reset(
    body: ResetIn, session: DbWrite, client: Client, limiter: Limiter
) -> Response:
    await service.do_reset_password(
        session,
        login=body.login,
        code=body.code,
        new_password=body.new_password,
        client=client,
        limiter=limiter,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- /me


@me.get("", response_model=UserOut)
async def get_me(user: ReadingUser) -> UserOut:
    return user_out(user)


@me.patch("", response_model=UserOut)
async def patch_me(body: MePatch, session: DbWrite, user: CurrentUser) -> UserOut:
    await service.do_update_profile(session, user, **body.model_dump(exclude_unset=True))
    return user_out(user)


@me.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_me(
    body: DeleteMeIn, session: DbWrite, user: CurrentUser, client: Client, limiter: Limiter
) -> Response:
    await service.do_delete_account(
        session, user, password=body.password, client=client, limiter=limiter
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me.get("/export")
async def export_me(session: DbRead, user: ReadingUser) -> JSONResponse:
    data = await service.export_user_data(session, user)
    return JSONResponse(
        data, headers={"Content-Disposition": 'attachment; filename="mesteri-export.json"'}
    )


@me.post("/roles", response_model=UserOut)
async def add_role(body: AddRoleIn, session: DbWrite, user: CurrentUser) -> UserOut:
    return user_out(await service.do_add_role(session, user, body.role))


@me.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: ChangePasswordIn, session: DbWrite, auth_: CurrentAuth, client: Client, limiter: Limiter
) -> Response:
    user, principal = auth_
    await service.do_change_password(
        session,
        user,
        principal,
        current=body.current_password,
        new=body.new_password,
        client=client,
        limiter=limiter,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me.get("/sessions", response_model=Page[SessionOut])
async def list_sessions(session: DbRead, principal: CurrentPrincipal) -> Page[SessionOut]:
    rows = await service.list_sessions(session, principal)
    return Page(
        items=[
            SessionOut(
                id=s.id,
                kind=s.kind,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                ip=s.ip,
                user_agent=s.user_agent,
                current=s.id == principal.session_id,
            )
            for s in rows
        ]
    )


@me.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(
    session_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> Response:
    await service.do_revoke_session(session, principal, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me.post("/2fa/setup", response_model=TotpSetupOut)
async def totp_setup(session: DbWrite, user: CurrentUser) -> TotpSetupOut:
    secret, uri = await service.do_totp_setup(session, user)
    return TotpSetupOut(secret=secret, otpauth_uri=uri)


@me.post("/2fa/enable", response_model=UserOut)
async def totp_enable(
    body: TotpEnableIn, session: DbWrite, auth_: CurrentAuth, client: Client, limiter: Limiter
) -> UserOut:
    user, principal = auth_
    await service.do_totp_enable(session, user, principal, body.code, client, limiter)
    return user_out(user)


@me.post("/2fa/disable", response_model=UserOut)
async def totp_disable(
    body: TotpDisableIn, session: DbWrite, user: CurrentUser, client: Client, limiter: Limiter
) -> UserOut:
    await service.do_totp_disable(
        session, user, password=body.password, code=body.code, client=client, limiter=limiter
    )
    return user_out(user)

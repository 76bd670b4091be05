"""Request and response shapes of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mesteri.accounts.models import Channel, OtpPurpose


class RegisterIn(BaseModel):
    email: str = Field(max_length=254)
    phone: str = Field(max_length=32)
    password: str = Field(max_length=256)
    role: Literal["client", "pro"]
    first_name: str = Field(min_length=1, max_length=80)
    last_name: str = Field(min_length=1, max_length=80)
    language: str | None = Field(default=None, max_length=5)


class LoginIn(BaseModel):
    login: str = Field(min_length=1, max_length=254, description="E-mail or phone number")
    password: str = Field(max_length=256)
    totp: str | None = Field(default=None, max_length=10)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(BaseModel):
    everywhere: bool = False


class OtpSendIn(BaseModel):
    login: str = Field(min_length=1, max_length=254, description="E-mail or phone number")
    channel: Channel | None = None


class ResendIn(BaseModel):
    purpose: Literal["verify_email", "verify_phone"]


class OtpVerifyIn(BaseModel):
    login: str = Field(min_length=1, max_length=254)
    code: str = Field(min_length=1, max_length=10)


class CodeIn(BaseModel):
    code: str = Field(min_length=1, max_length=10)


class ForgotIn(BaseModel):
    login: str = Field(min_length=1, max_length=254)


class ResetIn(BaseModel):
    login: str = Field(min_length=1, max_length=254)
    code: str = Field(min_length=1, max_length=10)
    new_password: str = Field(max_length=256)


class ChangePasswordIn(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class TotpEnableIn(BaseModel):
    code: str = Field(min_length=1, max_length=10)


class TotpDisableIn(BaseModel):
    password: str = Field(max_length=256)
    code: str = Field(min_length=1, max_length=10)


class MePatch(BaseModel):
    first_name: str | None = Field(default=None, min_length=1, max_length=80)
    last_name: str | None = Field(default=None, min_length=1, max_length=80)
    language: str | None = Field(default=None, max_length=5)


class AddRoleIn(BaseModel):
    role: Literal["client", "pro"]


class DeleteMeIn(BaseModel):
    password: str | None = Field(default=None, max_length=256)


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    language: str
    roles: list[str]
    state: str
    email_verified: bool
    phone_verified: bool
    two_factor_enabled: bool
    created_at: datetime


class AuthOut(BaseModel):
    user: UserOut
    tokens: TokensOut


class SessionOut(BaseModel):
    id: uuid.UUID
    kind: str
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class TotpSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str


PURPOSE_OF = {"verify_email": OtpPurpose.VERIFY_EMAIL, "verify_phone": OtpPurpose.VERIFY_PHONE}

"""Business rules of accounts and access (SPEC M1).

``check_*`` validate, ``do_*`` change state, ``access_*`` fetch with permission.
Functions flush; the caller's request or job owns the transaction.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import jwt
import phonenumbers
import pyotp
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from mesteri.accounts import repository as repo
from mesteri.accounts.errors import (
    AccountInactiveError,
    CodeExhaustedError,
    CodeExpiredError,
    EmailTakenError,
    InvalidCodeError,
    InvalidCredentialsError,
    InvalidEmailError,
    InvalidPhoneError,
    InvalidTokenError,
    InvalidTotpError,
    MfaRequiredError,
    NoPendingCodeError,
    NothingToVerifyError,
    PhoneTakenError,
    RefreshReuseError,
    ResendTooSoonError,
    RoleNotAllowedError,
    StaffCannotDisableMfaError,
    TotpRequiredError,
    WeakPasswordError,
)
from mesteri.accounts.lifecycles import OTP_LIFECYCLE, OTP_TTL, USER_LIFECYCLE
from mesteri.accounts.models import (
    SELF_SERVE_ROLES,
    STAFF_ROLES,
    AuthSession,
    Channel,
    OtpChallenge,
    OtpPurpose,
    OtpState,
    RefreshToken,
    Role,
    SessionKind,
    User,
    UserState,
)
from mesteri.config import SUPPORTED_LANGUAGES, Settings, get_settings
from mesteri.kit import audit, clock, i18n, realtime
from mesteri.kit.crypto import FieldCipher
from mesteri.kit.db import FastStatements, ReadSession, WriteSession
from mesteri.kit.errors import NotFoundError, PermissionDeniedError
from mesteri.kit.ids import new_id
from mesteri.kit.ratelimit import RateLimiter
from mesteri.kit.security import (
    code_hash,
    constant_time_equals,
    hash_password,
    new_numeric_code,
    new_token,
    password_needs_rehash,
    token_hash,
    verify_password,
)
from mesteri.kit.statemachine import Actor
from mesteri.notifications import outbound

OTP_RESEND_COOLDOWN = timedelta(seconds=60)
OTP_MAX_ATTEMPTS = 5
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128

# Rate limits on credential endpoints (moving windows, per key).
LOGIN_FAILURES = "5/15minutes"
REGISTRATIONS_PER_IP = "10/hour"
CODES_PER_DESTINATION = "5/hour"
CODES_PER_IP = "30/hour"
CODE_CHECKS_PER_IP = "30/15minutes"
REFRESHES_PER_IP = "120/minute"
# Signed-in re-authentication (current password, authenticator codes) per account: a
# stolen session must not become a way to guess the password or the TOTP code.
REAUTH_FAILURES = "5/15minutes"


@dataclass(frozen=True)
class ClientInfo:
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the signed-in session and what it proved."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: frozenset[str]
    mfa: bool

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & {Role.ADMIN, Role.SUPPORT, Role.FINANCE})


@dataclass(frozen=True, slots=True)
class Identity:
    """The signed-in user as read by authentication: a snapshot, not an ORM object.

    Read-only endpoints answer from it; endpoints that change the user load the ORM
    ``User`` in their transaction (``deps``).
    """

    id: uuid.UUID
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    language: str
    roles: list[str]
    state: str
    email_verified_at: datetime | None
    phone_verified_at: datetime | None
    totp_enabled_at: datetime | None
    created_at: datetime
    session_id: uuid.UUID
    mfa: bool

    @property
    def principal(self) -> Principal:
        return Principal(self.id, self.session_id, frozenset(self.roles), self.mfa)

    @property
    def is_staff(self) -> bool:
        return bool(STAFF_ROLES & set(self.roles))


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


def _audit(session: WriteSession, action: str, user: User, client: ClientInfo) -> None:
    """An audit entry about the user's own account, done by the user."""
    audit.record(
        session,
        action,
        actor_id=user.id,
        subject_type="user",
        subject_id=user.id,
        ip=client.ip,
        user_agent=client.user_agent,
    )


# ---------------------------------------------------------------- checks


def check_email(raw: str) -> str:
    try:
        # Deliverability (DNS) is not checked: this machine and CI have no resolver.
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(field="email") from exc
    return result.normalized.lower()


def check_phone(raw: str, region: str) -> str:
    """Normalise to E.164 using the market's region for numbers written without +."""
    sample = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    example = (
        phonenumbers.format_number(sample, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        if sample
        else "+40 712 345 678"
    )
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneError(field="phone", example=example) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneError(field="phone", example=example)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_login(raw: str, region: str) -> str:
    """An e-mail or a phone number, normalised the way it is stored; '' when neither."""
    raw = raw.strip()
    if "@" in raw:
        try:
            return check_email(raw)
        except InvalidEmailError:
            return ""
    try:
        return check_phone(raw, region)
    except InvalidPhoneError:
        return ""


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_policy(
    password: str, *, email: str | None, phone: str | None, names: tuple[str, ...] = ()
) -> None:
    def weak(message: str, **params: Any) -> WeakPasswordError:
        return WeakPasswordError(message, field="password", **params)

    if len(password) < PASSWORD_MIN_LENGTH:
        raise weak("Use at least {min} characters.", min=PASSWORD_MIN_LENGTH)
    if len(password) > PASSWORD_MAX_LENGTH:
        raise weak("Use at most {max} characters.", max=PASSWORD_MAX_LENGTH)
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        raise weak("This password is too common. Choose one that is harder to guess.")
    personal = [p.lower() for p in (*names, *(email.split("@")[0:1] if email else ())) if p]
    digits = "".join(c for c in (phone or "") if c.isdigit())
    if any(len(p) >= 3 and p in lowered for p in personal) or (
        len(digits) >= 6 and digits[-6:] in password
    ):
        raise weak("The password must not contain your e-mail, phone number or name.")


def check_language(language: str | None, settings: Settings) -> str:
    return language if language in SUPPORTED_LANGUAGES else settings.market_profile.default_language


def check_staff(principal: Principal) -> None:
    """Staff routes need a staff role and a session that proved a second factor."""
    if not principal.is_staff:
        raise PermissionDeniedError()
    if not principal.mfa:
        raise MfaRequiredError()


def check_party(principal: Principal, *party_ids: uuid.UUID | None, staff: bool = False) -> None:
    """Resource-level access: only the resource's parties (and, if allowed, staff) pass.

    Later modules call this for contracts, rooms and disputes.
    """
    if principal.user_id in party_ids:
        return
    if staff and principal.is_staff and principal.mfa:
        return
    raise PermissionDeniedError()


# ---------------------------------------------------------------- tokens and sessions


def _encode_access(user: User, auth: AuthSession, settings: Settings) -> tuple[str, int]:
    now = clock.now()
    ttl = settings.access_token_minutes * 60
    claims = {
        "sub": str(user.id),
        "sid": str(auth.id),
        "roles": sorted(user.roles),
        "mfa": auth.mfa,
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + ttl,
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key, algorithm="HS256"), ttl


def decode_access_token(token: str, settings: Settings) -> tuple[uuid.UUID, uuid.UUID]:
    """Validate signature and expiry (against the application clock). Returns (user, session)."""
    user_id, session_id, expires = _verified_claims(token, settings.secret_key)
    if expires < clock.now().timestamp():
        raise InvalidTokenError()
    return user_id, session_id


@lru_cache(maxsize=8192)
def _verified_claims(token: str, secret_key: str) -> tuple[uuid.UUID, uuid.UUID, int]:
    """Signature check, cached per token: a token's bytes never change, its expiry is
    checked against the clock on every use. Invalid tokens raise and are not cached."""
    try:
        claims = jwt.decode(
            token,
            secret_key,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "sid"]},
        )
        if claims.get("typ") != "access":
            raise InvalidTokenError()
        return uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), int(claims["exp"])
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidTokenError() from exc


async def _new_refresh_token(session: WriteSession, auth: AuthSession, settings: Settings) -> str:
    token = new_token()
    now = clock.now()
    session.add(
        RefreshToken(
            id=new_id(),
            session_id=auth.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
    )
    return token


async def do_open_session(
    session: WriteSession,
    user: User,
    client: ClientInfo,
    *,
    kind: SessionKind,
    mfa: bool,
) -> tuple[AuthSession, IssuedTokens | str]:
    """Sign ``user`` in on a new device. API sessions get tokens; web sessions a cookie token."""
    settings = get_settings()
    now = clock.now()
    days = settings.web_session_days if kind == SessionKind.WEB else settings.refresh_token_days
    web_token = new_token() if kind == SessionKind.WEB else None
    auth = AuthSession(
        id=new_id(),
        user_id=user.id,
        kind=kind,
        web_token_hash=token_hash(web_token) if web_token else None,
        mfa=mfa,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=days),
        ip=client.ip,
        user_agent=(client.user_agent or "")[:400] or None,
    )
    session.add(auth)
    await session.flush()
    audit.record(
        session,
        "auth.signed_in",
        actor_id=user.id,
        subject_type="session",
        subject_id=auth.id,
        ip=client.ip,
        user_agent=client.user_agent,
        kind=kind,
    )
    if web_token:
        return auth, web_token
    access, ttl = _encode_access(user, auth, settings)
    refresh = await _new_refresh_token(session, auth, settings)
    return auth, IssuedTokens(access, refresh, ttl, auth.id)


async def do_refresh(
    session: WriteSession, refresh_token: str, client: ClientInfo, limiter: RateLimiter
) -> IssuedTokens:
    """Rotate: the presented token is spent and a new one issued in the same family.

    Presenting a spent token means it leaked (or a client raced itself): the whole
    family (the device's session) is revoked.
    """
    await limiter.hit(REFRESHES_PER_IP, f"refresh:ip:{client.ip}")
    settings = get_settings()
    now = clock.now()
    found = await repo.lock_refresh_token(session, token_hash(refresh_token))
    if found is None:
        raise InvalidTokenError()
    token, auth = found
    if token.used_at is not None:
        if auth.revoked_at is None:
            auth.revoked_at, auth.revoked_reason = now, "refresh_reuse"
            audit.record(
                session,
                "auth.refresh_reuse",
                actor_id=auth.user_id,
                subject_type="session",
                subject_id=auth.id,
                ip=client.ip,
                user_agent=client.user_agent,
            )
        raise RefreshReuseError()
    if auth.revoked_at is not None or auth.expires_at <= now or token.expires_at <= now:
        raise InvalidTokenError()
    user = await session.get(User, auth.user_id)
    if user is None or user.state != UserState.ACTIVE:
        raise InvalidTokenError()
    token.used_at = now
    auth.last_used_at = now
    access, ttl = _encode_access(user, auth, settings)
    new_refresh = await _new_refresh_token(session, auth, settings)
    return IssuedTokens(access, new_refresh, ttl, auth.id)


async def access_identity(reader: FastStatements, access_token: str) -> Identity:
    """Who holds this access token: its session must be live and its user active."""
    user_id, session_id = decode_access_token(access_token, get_settings())
    row = await repo.identity_by_session(reader, user_id, session_id, clock.now())
    if row is None:
        raise InvalidTokenError()
    return Identity(**row)


async def access_web_identity(reader: FastStatements, web_token: str) -> Identity | None:
    row = await repo.identity_by_web_token(reader, token_hash(web_token), clock.now())
    return Identity(**row) if row else None


async def do_logout(session: WriteSession, principal: Principal, *, everywhere: bool) -> int:
    now = clock.now()
    if everywhere:
        count = await repo.revoke_sessions(session, principal.user_id, now, "logout_everywhere")
    else:
        auth = await session.get(AuthSession, principal.session_id, with_for_update=True)
        count = 0
        if auth is not None and auth.revoked_at is None:
            auth.revoked_at, auth.revoked_reason = now, "logout"
            realtime.close_sessions(session, [auth.id])
            count = 1
    audit.record(
        session,
        "auth.signed_out",
        actor_id=principal.user_id,
        subject_type="session",
        subject_id=principal.session_id,
        everywhere=everywhere,
    )
    return count


async def do_revoke_session(
    session: WriteSession, principal: Principal, session_id: uuid.UUID
) -> None:
    auth = await session.get(AuthSession, session_id, with_for_update=True)
    if auth is None or auth.user_id != principal.user_id:
        raise NotFoundError()
    if auth.revoked_at is None:
        auth.revoked_at, auth.revoked_reason = clock.now(), "revoked_by_user"
        realtime.close_sessions(session, [auth.id])


async def list_sessions(session: ReadSession, principal: Principal) -> list[AuthSession]:
    return list(await repo.active_sessions(session, principal.user_id, clock.now()))


# ---------------------------------------------------------------- registration and login


@dataclass(frozen=True)
class Registration:
    email: str
    phone: str
    password: str
    first_name: str
    last_name: str
    role: str
    language: str | None = None


async def do_register(
    session: WriteSession,
    data: Registration,
    client: ClientInfo,
    limiter: RateLimiter,
    *,
    kind: SessionKind = SessionKind.API,
) -> tuple[User, AuthSession, IssuedTokens | str]:
    settings = get_settings()
    await limiter.hit(REGISTRATIONS_PER_IP, f"register:ip:{client.ip}")
    if data.role not in SELF_SERVE_ROLES:
        raise RoleNotAllowedError(field="role")
    email = check_email(data.email)
    phone = check_phone(data.phone, settings.market_profile.phone_region)
    first, last = data.first_name.strip(), data.last_name.strip()
    check_password_policy(data.password, email=email, phone=phone, names=(first, last))
    if await repo.user_by_login(session, email):
        raise EmailTakenError(field="email")
    if await repo.user_by_login(session, phone):
        raise PhoneTakenError(field="phone")
    now = clock.now()
    user = User(
        id=new_id(),
        email=email,
        phone=phone,
        password_hash=hash_password(data.password),
        first_name=first,
        last_name=last,
        language=check_language(data.language, settings),
        roles=[data.role],
        state=UserState.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    await session.flush()
    _audit(session, "account.registered", user, client)
    await _issue_code(session, user, OtpPurpose.VERIFY_EMAIL, Channel.EMAIL, email, client, limiter)
    await _issue_code(session, user, OtpPurpose.VERIFY_PHONE, Channel.SMS, phone, client, limiter)
    auth, tokens = await do_open_session(session, user, client, kind=kind, mfa=False)
    return user, auth, tokens


async def do_login_password(
    session: WriteSession,
    *,
    login: str,
    password: str,
    totp: str | None,
    client: ClientInfo,
    limiter: RateLimiter,
    kind: SessionKind = SessionKind.API,
) -> tuple[User, AuthSession, IssuedTokens | str]:
    settings = get_settings()
    key = normalise_login(login, settings.market_profile.phone_region) or login.strip().lower()
    keys = (f"login:acct:{key}", f"login:ip:{client.ip}")
    await limiter.check(LOGIN_FAILURES, *keys)
    user = await repo.user_by_login(session, key)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        await limiter.record(LOGIN_FAILURES, *keys)
        raise InvalidCredentialsError()
    if user.state != UserState.ACTIVE:
        raise AccountInactiveError()
    mfa = False
    if user.totp_enabled_at is not None:
        if not totp:
            raise TotpRequiredError(field="totp")
        if not _totp_matches(user, totp, settings):
            await limiter.record(LOGIN_FAILURES, *keys)
            raise InvalidTotpError(field="totp")
        mfa = True
    if user.password_hash and password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    auth, tokens = await do_open_session(session, user, client, kind=kind, mfa=mfa)
    return user, auth, tokens


# ---------------------------------------------------------------- one-time codes


def _compose_code_message(purpose: str, code: str, login: str, language: str) -> tuple[str, str]:
    t = i18n.translations(language).gettext
    settings = get_settings()
    if purpose == OtpPurpose.PASSWORD_RESET:
        query = urlencode({"login": login, "code": code})
        link = f"{settings.public_url}/password/reset?{query}"
        return (
            t("Reset your Mesteri password"),
            t(
                "Your Mesteri password reset code is {code}. It expires in 10 minutes. "
                "Or open this link: {link}"
            ).format(code=code, link=link),
        )
    if purpose == OtpPurpose.LOGIN:
        return (
            t("Your Mesteri sign-in code"),
            t(
                "Your Mesteri sign-in code is {code}. It expires in 10 minutes. "
                "If you did not ask for it, ignore this message."
            ).format(code=code),
        )
    return (
        t("Confirm your contact details"),
        t("Your Mesteri verification code is {code}. It expires in 10 minutes.").format(code=code),
    )


async def _issue_code(
    session: WriteSession,
    user: User | None,
    purpose: OtpPurpose,
    channel: Channel,
    destination: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> OtpChallenge:
    """A fresh 6-digit code for (purpose, destination). Sent only when ``user`` exists;
    otherwise the same bookkeeping happens so responses do not reveal who has an account."""
    now = clock.now()
    latest = await repo.latest_challenge(session, purpose, destination)
    if latest is not None and latest.state == OtpState.PENDING:
        if latest.resend_after > now:
            raise ResendTooSoonError(math.ceil((latest.resend_after - now).total_seconds()))
        await OTP_LIFECYCLE.apply(session, latest, "supersede", actor=Actor.SYSTEM)
    await limiter.hit(CODES_PER_DESTINATION, f"otp:dest:{destination}")
    await limiter.hit(CODES_PER_IP, f"otp:ip:{client.ip}")
    code = new_numeric_code()
    challenge = OtpChallenge(
        id=new_id(),
        user_id=user.id if user else None,
        purpose=purpose,
        channel=channel,
        destination=destination,
        code_hash=code_hash(get_settings().secret_key, purpose, code),
        attempts=0,
        state=OtpState.PENDING,
        created_at=now,
        expires_at=now + OTP_TTL,
        resend_after=now + OTP_RESEND_COOLDOWN,
    )
    session.add(challenge)
    await OTP_LIFECYCLE.start(session, challenge)
    if user is not None:
        subject, body = _compose_code_message(purpose, code, destination, user.language)
        await outbound.do_queue_message(
            session,
            channel=channel,
            to=destination,
            subject=subject,
            body=body,
            kind=f"otp.{purpose}",
            user_id=user.id,
        )
    await session.flush()
    return challenge


async def _consume_code(
    session: WriteSession,
    purpose: OtpPurpose,
    destination: str,
    code: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> OtpChallenge:
    await limiter.hit(CODE_CHECKS_PER_IP, f"otp-check:ip:{client.ip}")
    challenge = await repo.latest_challenge(session, purpose, destination)
    if challenge is None or challenge.state in (OtpState.USED, OtpState.SUPERSEDED):
        raise NoPendingCodeError(field="code")
    if challenge.state == OtpState.EXHAUSTED:
        raise CodeExhaustedError(field="code")
    if challenge.state == OtpState.EXPIRED:
        raise CodeExpiredError(field="code")
    if clock.now() >= challenge.expires_at:
        await OTP_LIFECYCLE.apply(session, challenge, "expire", actor=Actor.SYSTEM)
        raise CodeExpiredError(field="code")
    expected = code_hash(get_settings().secret_key, purpose, code.strip())
    if not constant_time_equals(expected, challenge.code_hash):
        challenge.attempts += 1  # the row is locked: no concurrent increment is lost
        if challenge.attempts >= OTP_MAX_ATTEMPTS:
            await OTP_LIFECYCLE.apply(session, challenge, "exhaust", actor=Actor.SYSTEM)
            raise CodeExhaustedError(field="code")
        raise InvalidCodeError(field="code", remaining=OTP_MAX_ATTEMPTS - challenge.attempts)
    await OTP_LIFECYCLE.apply(
        session, challenge, "use", actor=Actor.USER, actor_id=challenge.user_id
    )
    return challenge


def _contact_for(user: User, purpose: OtpPurpose) -> tuple[Channel, str]:
    if purpose == OtpPurpose.VERIFY_EMAIL:
        if user.email is None or user.email_verified_at is not None:
            raise NothingToVerifyError()
        return Channel.EMAIL, user.email
    if user.phone is None or user.phone_verified_at is not None:
        raise NothingToVerifyError()
    return Channel.SMS, user.phone


async def do_resend_verification(
    session: WriteSession,
    user: User,
    purpose: OtpPurpose,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    channel, destination = _contact_for(user, purpose)
    await _issue_code(session, user, purpose, channel, destination, client, limiter)


async def do_verify_contact(
    session: WriteSession,
    user: User,
    purpose: OtpPurpose,
    code: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> User:
    _, destination = _contact_for(user, purpose)
    await _consume_code(session, purpose, destination, code, client, limiter)
    now = clock.now()
    if purpose == OtpPurpose.VERIFY_EMAIL:
        user.email_verified_at = now
    else:
        user.phone_verified_at = now
    user.updated_at = now
    _audit(session, f"account.{purpose}", user, client)
    return user


def _login_destination(login: str, channel: Channel | None) -> tuple[str, Channel]:
    region = get_settings().market_profile.phone_region
    key = normalise_login(login, region)
    if not key:
        raise InvalidCredentialsError("Enter your e-mail address or phone number.", field="login")
    inferred = Channel.EMAIL if "@" in key else Channel.SMS
    if channel is not None and channel != inferred:
        raise InvalidCredentialsError("Enter your e-mail address or phone number.", field="login")
    return key, inferred


async def do_send_login_code(
    session: WriteSession,
    login: str,
    client: ClientInfo,
    limiter: RateLimiter,
    *,
    channel: Channel | None = None,
    purpose: OtpPurpose = OtpPurpose.LOGIN,
) -> None:
    """OTP sign-in and password reset: the answer is the same whether or not the account exists."""
    key, channel = _login_destination(login, channel)
    user = await repo.user_by_login(session, key)
    if user is not None and user.state != UserState.ACTIVE:
        user = None
    await _issue_code(session, user, purpose, channel, key, client, limiter)


async def do_login_with_code(
    session: WriteSession,
    *,
    login: str,
    code: str,
    client: ClientInfo,
    limiter: RateLimiter,
    kind: SessionKind = SessionKind.API,
) -> tuple[User, AuthSession, IssuedTokens | str]:
    key, channel = _login_destination(login, None)
    challenge = await _consume_code(session, OtpPurpose.LOGIN, key, code, client, limiter)
    user = await session.get(User, challenge.user_id) if challenge.user_id else None
    if user is None or user.state != UserState.ACTIVE:
        raise InvalidCredentialsError()
    # Receiving the code proves control of that address.
    now = clock.now()
    if channel == Channel.EMAIL and user.email_verified_at is None:
        user.email_verified_at = now
    if channel == Channel.SMS and user.phone_verified_at is None:
        user.phone_verified_at = now
    if user.totp_enabled_at is not None:
        # A code by e-mail/SMS is one factor; staff with TOTP still sign in with it.
        raise TotpRequiredError("Sign in with your password and authenticator code.")
    auth, tokens = await do_open_session(session, user, client, kind=kind, mfa=False)
    return user, auth, tokens


async def do_reset_password(
    session: WriteSession,
    *,
    login: str,
    code: str,
    new_password: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> User:
    key, _ = _login_destination(login, None)
    challenge = await _consume_code(session, OtpPurpose.PASSWORD_RESET, key, code, client, limiter)
    user = await session.get(User, challenge.user_id) if challenge.user_id else None
    if user is None or user.state != UserState.ACTIVE:
        raise InvalidCredentialsError()
    check_password_policy(
        new_password, email=user.email, phone=user.phone, names=(user.first_name, user.last_name)
    )
    now = clock.now()
    user.password_hash = hash_password(new_password)
    user.updated_at = now
    await repo.revoke_sessions(session, user.id, now, "password_reset")
    _audit(session, "account.password_reset", user, client)
    return user


async def _confirm_password(
    user: User, password: str | None, limiter: RateLimiter, *, field: str
) -> None:
    """The signed-in user proves they know the password again (within a failure budget)."""
    key = f"reauth:acct:{user.id}"
    await limiter.check(REAUTH_FAILURES, key)
    if not verify_password(user.password_hash, password or ""):
        await limiter.record(REAUTH_FAILURES, key)
        raise InvalidCredentialsError("The current password is not right.", field=field)


async def _confirm_totp(user: User, code: str, limiter: RateLimiter) -> None:
    key = f"reauth:acct:{user.id}"
    await limiter.check(REAUTH_FAILURES, key)
    if not _totp_matches(user, code, get_settings()):
        await limiter.record(REAUTH_FAILURES, key)
        raise InvalidTotpError(field="code")


async def do_change_password(
    session: WriteSession,
    user: User,
    principal: Principal,
    *,
    current: str,
    new: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    await _confirm_password(user, current, limiter, field="current_password")
    check_password_policy(
        new, email=user.email, phone=user.phone, names=(user.first_name, user.last_name)
    )
    now = clock.now()
    user.password_hash = hash_password(new)
    user.updated_at = now
    # Other devices may have been signed in by whoever knew the old password.
    await repo.revoke_sessions(
        session, user.id, now, "password_changed", except_id=principal.session_id
    )
    _audit(session, "account.password_changed", user, client)


# ---------------------------------------------------------------- two-factor (TOTP)


def _cipher(settings: Settings) -> FieldCipher:
    return FieldCipher.from_secret(settings.secret_key)


def _totp_matches(user: User, code: str, settings: Settings) -> bool:
    if not user.totp_secret:
        return False
    secret = _cipher(settings).decrypt(user.totp_secret, context=str(user.id))
    return pyotp.TOTP(secret).verify(code.strip(), for_time=clock.now(), valid_window=1)


async def do_totp_setup(session: WriteSession, user: User) -> tuple[str, str]:
    """A new secret, pending until confirmed with a code. Returns (secret, otpauth URI)."""
    settings = get_settings()
    secret = pyotp.random_base32()
    user.totp_secret = _cipher(settings).encrypt(secret, context=str(user.id))
    user.totp_enabled_at = None
    user.updated_at = clock.now()
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=user.email or str(user.id), issuer_name="Mesteri"
    )
    return secret, uri


async def do_totp_enable(
    session: WriteSession,
    user: User,
    principal: Principal,
    code: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    await _confirm_totp(user, code, limiter)
    now = clock.now()
    user.totp_enabled_at = now
    user.updated_at = now
    auth = await session.get(AuthSession, principal.session_id, with_for_update=True)
    if auth is not None:
        auth.mfa = True  # this device just proved the second factor
    _audit(session, "account.totp_enabled", user, client)


async def do_totp_disable(
    session: WriteSession,
    user: User,
    *,
    password: str,
    code: str,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    if user.is_staff:
        raise StaffCannotDisableMfaError()
    await _confirm_password(user, password, limiter, field="password")
    await _confirm_totp(user, code, limiter)
    user.totp_secret = None
    user.totp_enabled_at = None
    user.updated_at = clock.now()
    _audit(session, "account.totp_disabled", user, client)


# ---------------------------------------------------------------- profile


async def do_update_profile(
    session: WriteSession,
    user: User,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    language: str | None = None,
) -> User:
    settings = get_settings()
    if first_name is not None:
        user.first_name = first_name.strip()
    if last_name is not None:
        user.last_name = last_name.strip()
    if language is not None:
        user.language = check_language(language, settings)
    user.updated_at = clock.now()
    return user


async def do_add_role(session: WriteSession, user: User, role: str) -> User:
    """A person can be both client and pro; staff roles are never self-served."""
    if role not in SELF_SERVE_ROLES:
        raise RoleNotAllowedError(field="role")
    if role not in user.roles:
        user.roles = [*user.roles, role]
        user.updated_at = clock.now()
    return user


# ---------------------------------------------------------------- GDPR: deletion and export


async def do_delete_account(
    session: WriteSession,
    user: User,
    *,
    password: str | None,
    client: ClientInfo,
    limiter: RateLimiter,
) -> None:
    """Anonymise personal data; keep the id and what accounting law requires to keep."""
    if user.password_hash is not None:
        await _confirm_password(user, password, limiter, field="password")
    locked = await repo.lock_user(session, user.id)
    assert locked is not None
    await USER_LIFECYCLE.apply(session, locked, "delete", actor=Actor.USER, actor_id=user.id)
    now = clock.now()
    locked.email = None
    locked.phone = None
    locked.password_hash = None
    locked.totp_secret = None
    locked.totp_enabled_at = None
    locked.first_name = "Deleted"
    locked.last_name = "user"
    locked.deleted_at = now
    locked.updated_at = now
    await repo.revoke_sessions(session, user.id, now, "account_deleted")
    for challenge in await session.scalars(
        select(OtpChallenge).where(OtpChallenge.user_id == user.id)
    ):
        challenge.destination = "redacted"
    await outbound.do_forget_user(session, user.id)
    _audit(session, "account.deleted", user, client)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_user_data(session: ReadSession, user: User | Identity) -> dict[str, Any]:
    """Everything we hold about the user, as JSON (GDPR art. 15 and 20)."""
    sessions = await session.scalars(
        select(AuthSession).where(AuthSession.user_id == user.id).order_by(AuthSession.created_at)
    )
    entries = await session.scalars(
        select(audit.AuditEntry)
        .where((audit.AuditEntry.actor_id == user.id) | (audit.AuditEntry.subject_id == user.id))
        .order_by(audit.AuditEntry.at)
    )
    messages = await outbound.list_for_user(session, user.id)
    return {
        "exported_at": clock.now().isoformat(),
        "user": {
            "id": str(user.id),
            "email": user.email,
            "phone": user.phone,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "language": user.language,
            "roles": user.roles,
            "state": user.state,
            "email_verified_at": _iso(user.email_verified_at),
            "phone_verified_at": _iso(user.phone_verified_at),
            "two_factor_enabled": user.totp_enabled_at is not None,
            "created_at": _iso(user.created_at),
        },
        "sessions": [
            {
                "id": str(s.id),
                "kind": s.kind,
                "created_at": _iso(s.created_at),
                "last_used_at": _iso(s.last_used_at),
                "revoked_at": _iso(s.revoked_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
            }
            for s in sessions
        ],
        "messages": [
            {
                "id": str(m.id),
                "channel": m.channel,
                "to": m.to,
                "subject": m.subject,
                "kind": m.kind,
                "state": m.state,
                "created_at": _iso(m.created_at),
            }
            for m in messages
        ],
        "activity": [
            {"at": _iso(e.at), "action": e.action, "ip": e.ip, "user_agent": e.user_agent}
            for e in entries
        ],
    }


# ---------------------------------------------------------------- staff and demo accounts


async def do_create_user(
    session: WriteSession,
    *,
    email: str,
    phone: str | None,
    password: str,
    first_name: str,
    last_name: str,
    roles: list[str],
    verified: bool = True,
    check_policy: bool = True,
) -> User:
    """Operator path (CLI ``create-admin``, demo seed): no codes are sent."""
    settings = get_settings()
    email = check_email(email)
    phone = check_phone(phone, settings.market_profile.phone_region) if phone else None
    if check_policy:
        check_password_policy(password, email=email, phone=phone, names=(first_name, last_name))
    if await repo.user_by_login(session, email):
        raise EmailTakenError(field="email")
    now = clock.now()
    user = User(
        id=new_id(),
        email=email,
        phone=phone,
        password_hash=hash_password(password),
        first_name=first_name,
        last_name=last_name,
        language=settings.market_profile.default_language,
        roles=sorted(set(roles)),
        state=UserState.ACTIVE,
        email_verified_at=now if verified else None,
        phone_verified_at=now if verified and phone else None,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    await session.flush()
    return user


@dataclass(frozen=True)
class Contact:
    email: str | None
    phone: str | None
    language: str
    first_name: str = ""
    last_name: str = ""


async def contact_of(session: ReadSession, user_id: uuid.UUID) -> Contact | None:
    """How to reach a user, for other modules' notifications (None once deleted)."""
    user = await session.get(User, user_id)
    if user is None or user.state == UserState.DELETED:
        return None
    return Contact(user.email, user.phone, user.language, user.first_name, user.last_name)


async def names_of(
    session: ReadSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """(first name, last name) of these users, in one query (lists in other modules)."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(User.id, User.first_name, User.last_name).where(User.id.in_(ids))
    )
    return {row.id: (row.first_name, row.last_name) for row in rows}


async def languages_of(session: ReadSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The language each of these users reads the app in, in one query."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.language).where(User.id.in_(ids)))
    return {row.id: row.language for row in rows}

"""Settings (environment, prefix ``MESTERI_``) and market profiles.

A market is a configuration profile, not a fork: currency, languages, time zone,
phone region, VAT on platform fees and the business-id check all come from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mesteri.kit.business_ids import valid_cui, valid_israeli_company_number

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105 - a known placeholder, refused in prod


@dataclass(frozen=True)
class Market:
    code: str
    currency: str
    languages: tuple[str, ...]
    time_zone: str
    phone_region: str
    vat_basis_points: int
    business_id_name: str
    business_id_valid: Callable[[str], bool]
    # Smallest amount a job, milestone or hold may have (minor units).
    min_amount: int = 5000
    # Days released money stays pending before the pro can withdraw it (SPEC 4.2).
    hold_days: int = 7
    country: str = "RO"

    @property
    def default_language(self) -> str:
        return self.languages[0]


MARKETS: dict[str, Market] = {
    "ro": Market(
        code="ro",
        currency="RON",
        languages=("ro", "hu", "en"),
        time_zone="Europe/Bucharest",
        phone_region="RO",
        vat_basis_points=2100,
        business_id_name="CUI",
        business_id_valid=valid_cui,
    ),
    "il": Market(
        code="il",
        currency="ILS",
        languages=("he", "en"),
        time_zone="Asia/Jerusalem",
        phone_region="IL",
        vat_basis_points=1800,
        business_id_name="company number",
        business_id_valid=valid_israeli_company_number,
        country="IL",
    ),
}

# Every language the interface is translated into, whatever the market.
SUPPORTED_LANGUAGES: tuple[str, ...] = ("ro", "en", "hu", "he")
RTL_LANGUAGES = frozenset({"he"})


class InsecureSecretKeyError(RuntimeError):
    """Raised when production is asked to start without a real secret key."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MESTERI_", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str | None = None
    data_dir: Path = Path(".mesteri")
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    market: Literal["ro", "il"] = "ro"
    payments_provider: Literal["sandbox", "stripe"] = "sandbox"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    # Where the Stripe SDK sends its calls; only changed to point it at a local fake.
    stripe_api_base: str | None = None
    # Signs the sandbox provider's webhooks (Stripe's scheme); derived from the secret key if unset.
    sandbox_webhook_secret: str | None = None
    # Where the sandbox posts its webhooks; defaults to this app at ``public_url``.
    sandbox_webhook_url: str | None = None
    # Platform fee in basis points (SPEC 4.1: default 10%, 5-15% per market and category).
    platform_fee_bps: int = Field(default=1000, ge=500, le=1500)
    category_fee_bps: dict[str, int] = Field(default_factory=dict)
    referral_platform_fee_bps: int = Field(default=500, ge=0, le=1500)
    # Overrides the market's hold period (days before released money is withdrawable).
    hold_days: int | None = Field(default=None, ge=0, le=90)
    # ---- jobs, proposals and milestones (SPEC 4.2 timers, in days)
    job_open_days: int = Field(default=30, ge=1, le=365)  # an unanswered job expires
    proposal_expiry_days: int = Field(default=14, ge=1, le=90)
    auto_accept_days: int = Field(default=14, ge=1, le=90)
    auto_accept_reminder_days: tuple[int, ...] = (7, 12)
    overdue_refund_days: int = Field(default=60, ge=1, le=365)  # after the due date
    # ---- reviews and reputation (SPEC M7; docs/reputation.md)
    review_window_days: int = Field(default=14, ge=1, le=90)  # double-blind until it closes
    review_reminder_days: tuple[int, ...] = (3, 10)  # after the first release
    reputation_half_life_days: float = Field(default=365.0, gt=0)  # recency weight
    # ---- disputes (SPEC M8)
    dispute_stage_days: int = Field(default=7, ge=1, le=60)  # negotiation, then mediation
    expert_fee_bps: int = Field(default=500, ge=0, le=3000)  # of the disputed amount
    expert_fee_min: int = Field(default=10_000, ge=0)  # minor units
    expert_fee_max: int = Field(default=150_000, ge=0)
    # ---- messaging and real time (SPEC M9)
    # Someone away gets one "unread messages" notice this long after a burst begins.
    message_alert_minutes: int = Field(default=5, ge=0, le=240)
    realtime_queue_size: int = Field(default=256, ge=16, le=10_000)  # frames per WebSocket
    realtime_retention_days: int = Field(default=3, ge=1, le=90)  # resumable events kept
    # A WebSocket that sends nothing (not even a ping) for this long is closed.
    ws_idle_seconds: int = Field(default=75, ge=10, le=3600)
    storage: Literal["local", "s3"] = "local"
    smtp_url: str | None = None
    sms_provider: Literal["log"] = "log"
    mail_from: str = "Mesteri <no-reply@mesteri.ro>"
    public_url: str = "http://127.0.0.1:8000"
    demo_password: str = "demo-Mesteri-2026"  # noqa: S105 - printed by `make run`; demo only
    db_pool_size: int = Field(default=10, ge=1)
    # No overflow by default: under bursts, overflow connections are opened and closed per
    # request, which costs far more than waiting a moment for a pooled one (see bench/).
    db_max_overflow: int = Field(default=0, ge=0)
    # Connections of the driver-level pool that authenticates API calls and posts chat
    # texts (kit.db.DriverPool).
    db_fast_pool_size: int = Field(default=4, ge=1)
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    web_session_days: int = 30
    # FastAPI's native OpenTelemetry (traces, metrics, logs) once an SDK is configured,
    # e.g. under `opentelemetry-instrument`; off, it costs nothing per request.
    otel: bool = False
    log_level: str = "INFO"
    log_json: bool = True
    # A dev convenience: behind TLS in production the cookie must be Secure; on plain
    # http://127.0.0.1 browsers accept Secure cookies too, so it stays on everywhere.
    cookie_secure: bool = True

    # ---- media (uploads): MESTERI_STORAGE=local keeps files under DATA_DIR/media
    s3_bucket: str = "mesteri"
    s3_endpoint_url: str | None = None  # MinIO, moto, any S3-compatible server
    s3_region: str = "eu-central-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    upload_url_minutes: int = Field(default=15, ge=1, le=120)
    download_url_seconds: int = Field(default=120, ge=10, le=3600)
    # Uploads never completed or never attached to anything are deleted after this long.
    orphan_upload_hours: int = Field(default=24, ge=1)
    # Identity and business documents are deleted this long after the verification decision.
    verification_document_days: int = Field(default=30, ge=0)

    # ---- search ranking (seed 003): score = sum of weight * signal, each signal in [0, 1]
    rank_skill: float = 0.30  # the searched category is the pro's primary (1) or other craft (0.6)
    rank_portfolio: float = 0.10  # portfolio fit: items in the searched category, of 10
    rank_reviews: float = 0.25  # Bayesian-smoothed, recency-weighted rating
    rank_delivery: float = 0.15  # on-time milestone delivery
    rank_availability: float = 0.10  # available 1, busy 0.3, vacation 0
    rank_text: float = 0.20  # full-text relevance when there is a query
    rank_verified_boost: float = 0.15
    rank_promoted_boost: float = 0.05
    rank_prior_rating: float = 4.0  # Bayesian prior mean …
    rank_prior_weight: float = 5.0  # … worth this many reviews
    # The default sort re-ranks this many best candidates by the query-independent score.
    search_window: int = Field(default=60, ge=20, le=2000)
    # … found first among this many best-ranked pros (index-only; see pros/search.py).
    search_scan: int = Field(default=5000, ge=100, le=100_000)

    # ---- notification channels (notifications/senders.py): unset means the sandbox sender
    whatsapp_token: str | None = None  # a Meta system-user access token
    whatsapp_phone_number_id: str | None = None  # the sending number's id, not the number
    whatsapp_api_base: str = "https://graph.facebook.com/v21.0"  # includes the API version
    fcm_service_account_file: Path | None = None  # the service account's JSON key file
    fcm_api_base: str = "https://fcm.googleapis.com"
    vapid_subject: str = "mailto:support@mesteri.ro"  # the push services' contact for us

    @model_validator(mode="after")
    def _refuse_insecure_prod(self) -> Settings:
        if self.env == "prod" and (self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32):
            raise InsecureSecretKeyError(
                "MESTERI_SECRET_KEY must be set to a random value of at least 32 characters "
                "in prod (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return self

    @model_validator(mode="after")
    def _fees_within_bounds(self) -> Settings:
        for slug, bps in self.category_fee_bps.items():
            if not 500 <= bps <= 1500:
                raise ValueError(f"category fee for {slug!r} must be within 500..1500 bps")
        return self

    @property
    def market_profile(self) -> Market:
        return MARKETS[self.market]

    @property
    def dev_tools_enabled(self) -> bool:
        """The dev outbox and the test clock exist in dev and test, never in prod."""
        return self.env in ("dev", "test")


@lru_cache
def get_settings() -> Settings:
    return Settings()

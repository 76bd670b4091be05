"""Fee splits (SPEC 4.1). Every share is rounded down; the pro receives the rest, so the
parts always sum to the whole amount."""

from __future__ import annotations

from dataclasses import dataclass

from mesteri.config import Settings

BPS = 10_000


@dataclass(frozen=True, slots=True)
class Split:
    """How one released amount divides. ``vat_on_fee`` is the VAT inside the platform fee."""

    amount: int
    platform_fee: int
    referral_fee: int
    pro_net: int
    vat_on_fee: int
    currency: str
    fee_bps: int
    referral_share_bps: int | None

    @property
    def platform_net(self) -> int:
        return self.platform_fee - self.vat_on_fee


def fee_bps_for(settings: Settings, category: str | None, *, referral: bool) -> int:
    if referral:
        return settings.referral_platform_fee_bps
    if category and category in settings.category_fee_bps:
        return settings.category_fee_bps[category]
    return settings.platform_fee_bps


def split(
    amount: int,
    currency: str,
    *,
    fee_bps: int,
    referral_share_bps: int | None,
    vat_bps: int,
) -> Split:
    if amount < 0:
        raise ValueError("amount must not be negative")
    if not 0 <= fee_bps <= BPS or not 0 <= vat_bps <= BPS:
        raise ValueError("rates are basis points within 0..10000")
    share = referral_share_bps or 0
    if not 0 <= share <= BPS - fee_bps:
        raise ValueError("the referral share leaves nothing for the pro")
    platform_fee = amount * fee_bps // BPS
    referral_fee = amount * share // BPS
    # The fee includes VAT: the invoice for the fee shows this part as VAT.
    vat_on_fee = platform_fee * vat_bps // (BPS + vat_bps)
    return Split(
        amount=amount,
        platform_fee=platform_fee,
        referral_fee=referral_fee,
        pro_net=amount - platform_fee - referral_fee,
        vat_on_fee=vat_on_fee,
        currency=currency,
        fee_bps=fee_bps,
        referral_share_bps=referral_share_bps,
    )


def quote(
    settings: Settings,
    amount: int,
    *,
    category: str | None = None,
    referral_share_percent: int | None = None,
) -> Split:
    """The split a release of ``amount`` would make in this market today."""
    share_bps = referral_share_percent * 100 if referral_share_percent is not None else None
    return split(
        amount,
        settings.market_profile.currency,
        fee_bps=fee_bps_for(settings, category, referral=share_bps is not None),
        referral_share_bps=share_bps,
        vat_bps=settings.market_profile.vat_basis_points,
    )

"""Fee splits (SPEC 4.1): exact seed example, properties over random amounts and rates."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesteri.config import Settings
from mesteri.payments import fees

API = "/api/v1"


def test_seed_004_referral_example_is_exact() -> None:
    split = fees.quote(Settings(), 100_000, referral_share_percent=20)
    assert (split.platform_fee, split.referral_fee, split.pro_net) == (5_000, 20_000, 75_000)


def test_default_fee_and_vat_inside_it() -> None:
    split = fees.quote(Settings(), 100_000)
    assert (split.platform_fee, split.pro_net) == (10_000, 90_000)
    assert split.vat_on_fee == 1_735  # 21% VAT inside 100.00: 100 * 21 / 121, rounded down
    israel = fees.quote(Settings(market="il"), 100_000)
    assert (israel.currency, israel.vat_on_fee) == ("ILS", 1_525)


def test_category_rates_apply_and_are_bounded() -> None:
    settings = Settings(category_fee_bps={"software": 1500})
    assert fees.quote(settings, 10_000, category="software").platform_fee == 1_500
    with pytest.raises(ValueError, match=r"500\.\.1500"):
        Settings(category_fee_bps={"plumbing": 2000})


@given(
    amount=st.integers(min_value=0, max_value=10**13),
    fee_bps=st.integers(min_value=0, max_value=1500),
    share=st.one_of(st.none(), st.integers(min_value=0, max_value=9000)),
    vat_bps=st.integers(min_value=0, max_value=2500),
    currency=st.sampled_from(["RON", "ILS", "EUR", "JPY"]),
)
def test_parts_are_non_negative_integers_summing_to_the_whole(
    amount: int, fee_bps: int, share: int | None, vat_bps: int, currency: str
) -> None:
    if share is not None and share > 10_000 - fee_bps:
        share = 10_000 - fee_bps
    split = fees.split(amount, currency, fee_bps=fee_bps, referral_share_bps=share, vat_bps=vat_bps)
    parts = (split.platform_fee, split.referral_fee, split.pro_net, split.vat_on_fee)
    assert all(isinstance(p, int) and p >= 0 for p in parts)
    assert split.platform_fee + split.referral_fee + split.pro_net == amount
    assert split.platform_net + split.vat_on_fee == split.platform_fee
    # each share is rounded down, never up
    assert split.platform_fee * 10_000 <= amount * fee_bps
    assert split.referral_fee * 10_000 <= amount * (share or 0)


async def test_quote_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"{API}/fees/quote", params={"amount": 100000, "currency": "RON", "referral_share": 20}
    )
    assert response.status_code == 200
    assert response.json() == {
        "amount": 100_000,
        "platform_fee": 5_000,
        "referral_fee": 20_000,
        "pro_net": 75_000,
        "vat_on_fee": 867,
        "currency": "RON",
        "fee_rate_bps": 500,
        "vat_rate_bps": 2100,
    }


async def test_quote_rejects_bad_input_clearly(client: httpx.AsyncClient) -> None:
    wrong = await client.get(f"{API}/fees/quote", params={"amount": 100, "currency": "EUR"})
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "unsupported_currency"
    assert "RON" in wrong.json()["detail"]
    for params in (
        {"amount": -5, "currency": "RON"},
        {"amount": "ten", "currency": "RON"},
        {"amount": 100, "currency": "RON", "referral_share": 95},
    ):
        response = await client.get(f"{API}/fees/quote", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"].startswith("application/problem+json")

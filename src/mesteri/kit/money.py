"""Money as integer minor units plus an ISO 4217 currency. No floats anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import format_currency, get_currency_precision


class CurrencyMismatchError(ValueError):
    pass


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an integer number of minor units")
        if len(self.currency) != 3 or not self.currency.isupper():
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"{self.currency} vs {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def share(self, basis_points: int) -> Money:
        """A percentage share, rounded down (1 basis point = 0.01%)."""
        if not 0 <= basis_points <= 10_000:
            raise ValueError("basis points must be within 0..10000")
        return Money(self.amount * basis_points // 10_000, self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """``"1 250,50"`` or ``"1250.50"`` in major units → minor units; ValueError if not."""
        cleaned = text.strip().replace(" ", "").replace("\u00a0", "")
        if "," in cleaned and "." not in cleaned:
            cleaned = cleaned.replace(",", ".")
        digits = get_currency_precision(currency)
        try:
            value = Decimal(cleaned)
        except InvalidOperation as exc:
            raise ValueError("not an amount") from exc
        minor = value * 10**digits
        if not value.is_finite() or minor != minor.to_integral_value() or value < 0:
            raise ValueError("not an amount in this currency")
        return cls(int(minor), currency)

    def plain(self) -> str:
        """The plain number a person types in a form: ``125050`` → ``"1250.50"``, whole
        amounts without decimals (``"1500"``); ``parse`` reads it back."""
        digits = get_currency_precision(self.currency)
        if not digits:
            return str(self.amount)
        whole, cents = divmod(self.amount, 10**digits)
        return f"{whole}.{cents:0{digits}d}" if cents else str(whole)

    def format(self, locale: str) -> str:
        digits = get_currency_precision(self.currency)
        return format_currency(self.amount / 10**digits, self.currency, locale=locale)

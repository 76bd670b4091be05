"""Check-digit validation of business identifiers per market."""

from __future__ import annotations

_CUI_KEY = "753217532"


def valid_cui(value: str) -> bool:
    """Romanian CUI / CIF: 2-10 digits, optional ``RO`` prefix, last digit is the check digit."""
    digits = value.strip().upper().removeprefix("RO").strip()
    if not digits.isdigit() or not 2 <= len(digits) <= 10:
        return False
    body, check = digits[:-1].rjust(9, "0"), int(digits[-1])
    total = sum(int(d) * int(k) for d, k in zip(body, _CUI_KEY, strict=True))
    return (total * 10) % 11 % 10 == check


def valid_israeli_company_number(value: str) -> bool:
    """Israeli company / dealer / ID number: 9 digits, Luhn-like check (weights 1, 2, 1, …)."""
    digits = value.strip().replace("-", "")
    if not digits.isdigit() or len(digits) > 9:
        return False
    digits = digits.rjust(9, "0")
    total = 0
    for i, d in enumerate(digits):
        n = int(d) * (1 + i % 2)
        total += n - 9 if n > 9 else n
    return total % 10 == 0

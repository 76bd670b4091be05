"""What a contract says: its terms as data (stored in ``ContractVersion.terms``) and the
clauses written out from them in any language.

The terms are plain JSON data (names, amounts, dates, days, flags), never translated
text, so the same version renders as the page in the viewer's language and as the PDF in
the market's language. The wording is English source text marked with ``lazy`` and
translated where it is shown (``render``).
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from babel.dates import format_date

from mesteri.kit import i18n
from mesteri.kit.i18n import lazy
from mesteri.kit.money import Money

SCHEMA = 1
# The dispute ladder (SPEC M8): the parties negotiate, then support mediates, then staff
# decide. Both stages last this many days.
DISPUTE_NEGOTIATION_DAYS = 7
DISPUTE_MEDIATION_DAYS = 7
SOFTWARE_KIND = "software"

BUSINESS_TYPE_NAMES = {
    "pfa": lazy("PFA (authorised person)"),
    "ii": lazy("II (sole proprietorship)"),
    "srl": lazy("SRL (limited company)"),
    "individual": lazy("Individual"),
    "osek_patur": lazy("Exempt dealer (osek patur)"),
    "osek_murshe": lazy("Licensed dealer (osek murshe)"),
    "company": lazy("Company (Ltd.)"),
}
BUSINESS_ID_NAMES = {"ro": lazy("CUI"), "il": lazy("company number")}


@dataclass(frozen=True)
class Clause:
    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MilestoneLine:
    position: int
    title: str
    amount: str
    due_date: str
    dod: list[str]


@dataclass(frozen=True)
class Rendered:
    """A version written out in one language: what the page and the PDF show."""

    language: str
    heading: str
    subtitle: str
    amendment: str | None
    parties_title: str
    parties: list[tuple[str, list[str]]]
    scope_title: str
    scope: list[str]
    milestones_title: str
    milestone_headers: tuple[str, str, str, str]
    milestones: list[MilestoneLine]
    dod_label: str
    total: str
    clauses: list[Clause]
    signatures_title: str
    signature_note: str
    signature_blocks: list[tuple[str, str]]
    footer: str


# ---------------------------------------------------------------- formatting


def money(amount: int, currency: str, language: str) -> str:
    return Money(amount, currency).format(language)


def day(value: str | date | None, language: str) -> str:
    if value is None or value == "":
        return "—"
    when = date.fromisoformat(value) if isinstance(value, str) else value
    return format_date(when, format="long", locale=language)


def percent(bps: int) -> str:
    whole, rest = divmod(bps, 100)
    return f"{whole}%" if rest == 0 else f"{whole}.{rest:02d}".rstrip("0") + "%"


def milestone_dicts(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Milestone terms (``MilestoneTerms`` or proposal dicts) as stored in the terms."""
    out = []
    for item in items:
        data = item if isinstance(item, dict) else item.model_dump(mode="json")
        out.append(
            {
                "id": str(data["id"]) if data.get("id") else None,
                "title": str(data["title"]),
                "amount": int(data["amount"]),
                "due_date": str(data["due_date"]) if data.get("due_date") else None,
                "dod": [str(d) for d in data.get("dod") or []],
            }
        )
    return out


# ---------------------------------------------------------------- writing it out


def render(terms: dict[str, Any], language: str) -> Rendered:
    """The document's text in ``language`` (the market's for the PDF, the viewer's on
    the page)."""
    tr = i18n.translations(language)

    def t(message: str, **params: Any) -> str:
        text = tr.gettext(message)
        return text.format(**params) if params else text

    currency = terms["currency"]
    number = terms["version"]
    client, pro, job, fee = terms["client"], terms["pro"], terms["job"], terms["fee"]
    bid_name = t(BUSINESS_ID_NAMES.get(terms["market"], BUSINESS_ID_NAMES["ro"]))

    category = job["category"].get(language) or job["category"].get("en", "")
    place = job["place"].get(language) or job["place"].get("name", "")
    client_lines = [client["name"]]
    if client.get("city"):  # the job's place, where the client is
        client_lines.append(t("Place: {place}", place=place or client["city"]))
    if client.get("business_id"):
        client_lines.append(t("{id_name}: {id}", id_name=bid_name, id=client["business_id"]))
    pro_lines = [pro["name"]]
    if pro.get("display_name") and pro["display_name"] != pro["name"]:
        pro_lines.append(t("Trading as “{name}”", name=pro["display_name"]))
    if pro.get("business_type"):
        kind = BUSINESS_TYPE_NAMES.get(pro["business_type"], pro["business_type"])
        pro_lines.append(t("Legal form: {form}", form=t(kind)))
    if pro.get("business_id"):
        pro_lines.append(t("{id_name}: {id}", id_name=bid_name, id=pro["business_id"]))
    if pro.get("verified_at"):
        pro_lines.append(
            t("Identity verified by Mesteri on {date}", date=day(pro["verified_at"][:10], language))
        )
    else:
        pro_lines.append(t("Identity not verified by Mesteri"))

    scope = [
        t("Work: {title}", title=job["title"]),
        t("Category: {category}", category=category),
        t("Place: {place}", place=f"{place} ({job['county']})" if job.get("county") else place),
    ]
    if job.get("description"):
        scope.append(t("Description: {text}", text=job["description"]))
    if terms.get("message"):
        scope.append(t("The offer of the professional: {text}", text=terms["message"]))
    if terms.get("duration_days"):
        scope.append(t("Expected duration: {days} days", days=terms["duration_days"]))
    scope.append(
        t(
            "The professional delivers the work described here and in the milestones below, "
            "each meeting its Definition of Done. Work outside this scope needs an amendment."
        )
    )

    lines = [
        MilestoneLine(
            position=i,
            title=m["title"],
            amount=money(m["amount"], currency, language),
            due_date=day(m.get("due_date"), language),
            dod=list(m.get("dod") or []),
        )
        for i, m in enumerate(terms["milestones"], start=1)
    ]

    clauses = [
        Clause(
            "fee",
            t("Price and platform fee"),
            [
                t(
                    "The total price is {price}, paid milestone by milestone as scheduled above.",
                    price=money(terms["price"], currency, language),
                ),
                t(
                    "Mesteri keeps a platform fee of {rate} of each released amount, {fee} in "
                    "total, of which {vat} is VAT ({vat_rate}). The professional receives "
                    "{net}.",
                    rate=percent(fee["bps"]),
                    fee=money(fee["platform_fee"], currency, language),
                    vat=money(fee["vat_on_fee"], currency, language),
                    vat_rate=percent(fee["vat_bps"]),
                    net=money(fee["pro_net"], currency, language),
                ),
                t("The client pays the price only; the fee is taken from the released amount."),
            ],
        ),
        Clause(
            "escrow",
            t("Payment through escrow"),
            [
                t(
                    "The client funds each milestone before the work on it starts. Mesteri holds "
                    "the money in escrow and releases it to the professional only when the "
                    "client accepts the delivery, or when it is accepted automatically."
                ),
                t("The parties pay each other only through Mesteri for the work in this contract."),
            ],
        ),
        Clause(
            "acceptance",
            t("Delivery and acceptance"),
            [
                t(
                    "The professional submits each milestone with a note and, where useful, "
                    "photos or files. The client accepts it or asks for changes, saying what "
                    "is missing."
                ),
                t(
                    "If the client does neither within {days} days of a submission, the "
                    "milestone is accepted automatically and its money is released.",
                    days=terms["cancellation"]["auto_accept_days"],
                ),
            ],
        ),
        Clause(
            "cancellation",
            t("Cancellation"),
            [
                t("A milestone that is not funded yet can be cancelled by either party, free."),
                t(
                    "A funded milestone can be given up by the professional; the client is "
                    "then refunded in full through escrow."
                ),
                t(
                    "A funded milestone that is not delivered within {days} days after its due "
                    "date is cancelled and the client refunded, unless it is disputed.",
                    days=terms["cancellation"]["overdue_refund_days"],
                ),
            ],
        ),
        Clause(
            "disputes",
            t("Disputes"),
            [
                t(
                    "Either party can dispute a funded milestone that is not released yet; its "
                    "money then stays frozen in escrow until the dispute ends."
                ),
                t(
                    "1. Negotiation: the parties try to settle between themselves by "
                    "exchanging offers to split the amount, for {days} days.",
                    days=terms["disputes"]["negotiation_days"],
                ),
                t(
                    "2. Mediation: Mesteri support staff review the evidence (messages, "
                    "milestone history, photos, files) and propose a split, for {days} days.",
                    days=terms["disputes"]["mediation_days"],
                ),
                t(
                    "3. Decision: Mesteri staff decide to release, refund or split the amount, "
                    "and escrow carries the decision out exactly."
                ),
            ],
        ),
    ]
    if terms.get("software"):
        clauses += [
            Clause(
                "nda",
                t("Confidentiality"),
                [
                    t(
                        "The professional keeps confidential everything the client shares "
                        "for this work (code, data, credentials, business information), uses "
                        "it only for this contract and returns or deletes it when the "
                        "contract ends. This lasts for three years after the contract ends."
                    ),
                ],
            ),
            Clause(
                "ip",
                t("Intellectual property"),
                [
                    t(
                        "When a milestone is paid, the professional assigns to the client all "
                        "rights in what that milestone delivered (source code, designs, "
                        "documentation), except open-source components, which stay under "
                        "their own licences, and tools the professional had before."
                    ),
                ],
            ),
        ]
    clauses.append(
        Clause(
            "amendments",
            t("Changes to this contract"),
            [
                t(
                    "Milestones that are not funded yet can be changed by an amendment: a new "
                    "version of this document that both parties sign. Funded or paid "
                    "milestones stay as they are."
                ),
            ],
        )
    )
    law = terms["law"]
    if law["market"] == "il":
        law_text = t(
            "This contract is governed by the laws of the State of Israel. The competent "
            "courts of Israel decide any dispute the steps above do not settle."
        )
    else:
        law_text = t(
            "This contract is governed by Romanian law. The competent courts of {county} "
            "county, where the client lives, decide any dispute the steps above do not settle.",
            county=law.get("county") or "—",
        )
    clauses.append(Clause("law", t("Governing law"), [law_text]))

    amendment = None
    if terms.get("amendment"):
        amendment = t(
            "This version {number} replaces version {previous} once both parties sign it. "
            "Reason: {reason}",
            number=number,
            previous=terms["amendment"]["previous"],
            reason=terms["amendment"]["reason"] or "—",
        )

    short = terms["contract_id"][:8]
    return Rendered(
        language=language,
        heading=t("Contract for services"),
        subtitle=t(
            "Contract {id} · Version {number} · {date}",
            id=short,
            number=number,
            date=day(terms["issued_on"], language),
        ),
        amendment=amendment,
        parties_title=t("Parties"),
        parties=[(t("Client"), client_lines), (t("Professional"), pro_lines)],
        scope_title=t("Scope of work"),
        scope=scope,
        milestones_title=t("Milestones and payment schedule"),
        milestone_headers=(t("No."), t("Milestone"), t("Due date"), t("Amount")),
        milestones=lines,
        dod_label=t("Definition of Done"),
        total=t("Total: {price}", price=money(terms["price"], currency, language)),
        clauses=clauses,
        signatures_title=t("Signatures"),
        signature_note=t(
            "Each party signs electronically on Mesteri by typing their full name and "
            "agreeing to this version. Mesteri records the time, IP address, browser and the "
            "SHA-256 fingerprint of this exact document with each signature."
        ),
        signature_blocks=[(t("Client"), client["name"]), (t("Professional"), pro["name"])],
        footer=t("Mesteri · Contract {id} · Version {number}", id=short, number=number),
    )


def page_label(language: str, page: int) -> str:
    tr: gettext_module.NullTranslations = i18n.translations(language)
    return tr.gettext(lazy("Page {page}")).format(page=page)


def issued_on(created_at: datetime) -> str:
    return created_at.date().isoformat()

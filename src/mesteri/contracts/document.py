"""The contract as a PDF (fpdf2), in the market's language.

The output is deterministic: the same terms, language and creation time give the same
bytes (fixed creation date, an /ID derived from the content, no random names), so the
SHA-256 both parties sign identifies the document exactly. The font is DejaVu Sans,
shipped in ``static/fonts`` (Romanian diacritics and Hebrew); Hebrew documents are
shaped with HarfBuzz and laid out right to left.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from mesteri.config import RTL_LANGUAGES
from mesteri.contracts.terms import Rendered, page_label, render

FONT_DIR = Path(__file__).resolve().parent.parent / "static" / "fonts"
FONT = "DejaVu"
# Bidi marks babel puts around Hebrew amounts: the shaping engine orders runs itself.
_INVISIBLE = str.maketrans({"\u200e": None, "\u200f": None, "\u202a": None, "\u202c": None})
LINE = 5.2


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Document(FPDF):
    def __init__(self, rendered: Rendered, rtl: bool) -> None:
        super().__init__(format="A4", unit="mm")
        self.rendered = rendered
        self.rtl = rtl
        self.align = "R" if rtl else "L"

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT, size=8)
        self.set_text_color(90, 90, 90)
        text = f"{_clean(self.rendered.footer)} · {page_label(self.rendered.language, self.page)}"
        self.cell(0, 6, text, align="C")
        self.set_text_color(0, 0, 0)


def _clean(text: str) -> str:
    return text.translate(_INVISIBLE)


def build_pdf(terms: dict[str, Any], language: str, created_at: datetime) -> bytes:
    """The document of one version: same inputs, same bytes."""
    rendered = render(terms, language)
    rtl = language in RTL_LANGUAGES
    pdf = _Document(rendered, rtl)
    pdf.set_creation_date(created_at)
    pdf.set_producer("Mesteri")
    pdf.set_title(f"{rendered.heading} · {terms['job']['title']}")
    pdf.set_author("Mesteri")
    pdf.set_lang(language)
    pdf.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    if rtl:
        pdf.set_text_shaping(use_shaping_engine=True, direction="rtl", script="hebr", language="he")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 16, 18)
    pdf.add_page()

    def para(text: str, *, size: float = 10, bold: bool = False, gap: float = 1.5) -> None:
        pdf.set_font(FONT, "B" if bold else "", size)
        pdf.multi_cell(
            0,
            LINE if size <= 10 else size * 0.55,
            _clean(text),
            align=pdf.align,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.ln(gap)

    def heading(text: str) -> None:
        pdf.ln(2)
        para(text, size=12, bold=True, gap=1)

    para(rendered.heading, size=18, bold=True, gap=1)
    para(terms["job"]["title"], size=13, bold=True, gap=1)
    para(rendered.subtitle, size=9, gap=3)
    if rendered.amendment:
        para(rendered.amendment, size=10, bold=True, gap=3)

    heading(f"1. {rendered.parties_title}")
    for role, lines in rendered.parties:
        para(role, bold=True, gap=0.5)
        for line in lines:
            para(line, gap=0.3)
        pdf.ln(1.5)

    heading(f"2. {rendered.scope_title}")
    for line in rendered.scope:
        para(line)

    heading(f"3. {rendered.milestones_title}")
    _milestone_table(pdf, rendered)
    para(rendered.total, bold=True, gap=2)

    for number, clause in enumerate(rendered.clauses, start=4):
        heading(f"{number}. {clause.title}")
        for paragraph in clause.paragraphs:
            para(paragraph)

    heading(rendered.signatures_title)
    para(rendered.signature_note, size=9, gap=3)
    for role, name in rendered.signature_blocks:
        para(f"{role}: {name}", bold=True, gap=0.5)
        para("_" * 40, gap=4)
    return bytes(pdf.output())


def _milestone_table(pdf: _Document, rendered: Rendered) -> None:
    widths = (12, 92, 36, 34)
    headers: tuple[str, ...] = rendered.milestone_headers
    rows: list[tuple[str, ...]] = [
        (str(m.position), m.title, m.due_date, m.amount) for m in rendered.milestones
    ]
    if pdf.rtl:  # columns read from the right
        widths = widths[::-1]
        headers = headers[::-1]
        rows = [row[::-1] for row in rows]
    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=widths,
        text_align=pdf.align,
        line_height=LINE,
        first_row_as_headings=True,
        headings_style=_headings_style(),
    ) as table:
        table.row([_clean(h) for h in headers])
        for row in rows:
            table.row([_clean(cell) for cell in row])
    pdf.ln(2)
    for m in rendered.milestones:
        if not m.dod:
            continue
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(
            0,
            LINE,
            _clean(f"{m.position}. {m.title} — {rendered.dod_label}"),
            align=pdf.align,
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        pdf.set_font(FONT, "", 9)
        for item in m.dod:
            pdf.multi_cell(
                0, LINE, _clean(f"• {item}"), align=pdf.align, new_x=XPos.LMARGIN, new_y=YPos.NEXT
            )
        pdf.ln(1)


def _headings_style() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(family=FONT, emphasis="BOLD")

"""Collects the interface strings into ``messages.pot`` and updates every language's catalog.

Run from anywhere:

    python src/mesteri/locale/extract.py          # extract, then update ro/hu/he .po files
    python src/mesteri/locale/extract.py --check  # fail on missing, fuzzy or broken translations

Besides Babel's extraction (``babel.cfg``: templates, and ``_``/``gettext``/``ngettext``/``t``/
``lazy`` calls in Python), it reads the Python sources with ``ast`` to collect the English
messages of domain errors: ``message = "..."`` class attributes, and string literals passed as
the first argument to a ``DomainError`` subclass or to ``weak(...)``.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

LOCALE_DIR = Path(__file__).resolve().parent
ROOT = LOCALE_DIR.parents[2]
PACKAGE = ROOT / "src" / "mesteri"
TEMPLATE = LOCALE_DIR / "messages.pot"
LANGUAGES = ("ro", "hu", "he")
KEYWORDS = {**DEFAULT_KEYWORDS, "t": None, "lazy": None}
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\([^)]*\)[sd]")

Found = tuple[str, int, str]  # file (relative to the root), line, message


def babel_messages() -> Iterator[Found]:
    with (ROOT / "babel.cfg").open(encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)  # type: ignore[no-untyped-call]
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        if isinstance(message, str):  # the project has no plural messages yet
            yield filename, lineno, message


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def error_messages() -> Iterator[Found]:
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}
    classes = [n for tree in trees.values() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    domain_errors = {"DomainError"}
    while grown := {
        c.name
        for c in classes
        if c.name not in domain_errors and {_name(b) for b in c.bases} & domain_errors
    }:
        domain_errors |= grown
    for path, tree in sorted(trees.items()):
        filename = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign | ast.AnnAssign):
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                        text = _literal(stmt.value)
                        if text and any(_name(target) == "message" for target in targets):
                            yield filename, stmt.lineno, text
            elif isinstance(node, ast.Call) and node.args:
                text = _literal(node.args[0])
                if text and (_name(node.func) in domain_errors or _name(node.func) == "weak"):
                    yield filename, node.lineno, text


def build_template() -> Catalog:
    template = Catalog(project="Mesteri")
    for filename, lineno, message in [*babel_messages(), *error_messages()]:
        template.add(message, locations=[(filename, lineno)])
    return template


def _po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


def _read(path: Path, language: str) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=language)


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, width=100, ignore_obsolete=True)


def update() -> None:
    template = build_template()
    _write(TEMPLATE, template)
    for language in LANGUAGES:
        path = _po_path(language)
        if path.exists():
            catalog = _read(path, language)
        else:
            catalog = Catalog(locale=language, project="Mesteri", fuzzy=False)
        catalog.update(template, update_creation_date=False)
        _write(path, catalog)
    print(f"{len(template)} messages; catalogs updated: {', '.join(LANGUAGES)}")


def check() -> int:
    """Every current message is translated, not fuzzy, and keeps its placeholders."""
    expected = {str(m.id) for m in build_template() if m.id}
    problems: list[str] = []
    for language in LANGUAGES:
        path = _po_path(language)
        catalog = _read(path, language) if path.exists() else Catalog(locale=language)
        found = {str(m.id): m for m in catalog if m.id}
        problems += [f"{language}: missing {msgid!r}" for msgid in sorted(expected - set(found))]
        for msgid, message in found.items():
            text = message.string if isinstance(message.string, str) else ""
            if not text:
                problems.append(f"{language}: untranslated {msgid!r}")
            elif message.fuzzy:
                problems.append(f"{language}: fuzzy {msgid!r}")
            elif set(PLACEHOLDER.findall(msgid)) != set(PLACEHOLDER.findall(text)):
                problems.append(f"{language}: placeholders differ in {msgid!r}")
    print("\n".join(problems) or f"{len(expected)} messages translated in {', '.join(LANGUAGES)}")
    return 1 if problems else 0


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(check())
    update()

"""Every user-facing string has a translation in ro, hu and he, with its placeholders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import mesteri
from mesteri.kit import i18n

EXTRACT = Path(mesteri.__file__).parent / "locale" / "extract.py"


def test_catalogs_cover_every_current_string(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("mesteri_extract", EXTRACT)
    assert spec is not None
    assert spec.loader is not None
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    status = extract.check()
    report = capsys.readouterr().out
    assert status == 0, f"run `python {EXTRACT}` and translate:\n{report}"


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ro", "Conectare"), ("hu", "Bejelentkezés"), ("he", "התחברות"), ("en", "Sign in")],
)
def test_runtime_translation(language: str, expected: str) -> None:
    i18n.set_language(language)
    try:
        assert i18n.gettext("Sign in") == expected
        assert (
            i18n.gettext("The code is not right. {remaining} attempts left.", remaining=3).count(
                "3"
            )
            == 1
        )
    finally:
        i18n.set_language("en")

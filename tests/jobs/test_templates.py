"""``GET /job-templates``: ten real templates whose milestones share the price to 100%,
each with a Definition of Done, in the request's language."""

from __future__ import annotations

import gettext

import httpx
import pytest

from mesteri.catalog import service as catalog
from mesteri.jobs import templates_data
from mesteri.kit import i18n
from tests.fixtures.jobs import API

EXPECTED = {
    "bathroom-renovation",
    "interior-painting",
    "electrical-rewiring",
    "roof-repair",
    "kitchen-fitting",
    "saas-mvp",
    "rest-api",
    "mobile-app",
    "data-pipeline",
    "security-audit",
}


async def test_ten_templates_with_milestones_and_definitions_of_done(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/job-templates")
    assert response.status_code == 200
    items = response.json()["items"]
    assert {t["id"] for t in items} == EXPECTED
    for template in items:
        assert sum(m["share"] for m in template["milestones"]) == 100, template["id"]
        assert 2 <= len(template["milestones"]) <= 6
        for milestone in template["milestones"]:
            assert milestone["title"]
            assert 3 <= len(milestone["dod"]) <= 6, milestone
            assert all(item.strip() for item in milestone["dod"])
        row = catalog.get_category(template["category_slug"])
        assert str(row.id) == template["category_id"]
        assert template["currency"] == "RON"
        assert 5000 <= template["budget_min"] < template["budget_max"]
        assert template["budget_type"] == "fixed"


async def test_filter_by_category_with_sub_categories(client: httpx.AsyncClient) -> None:
    software = await client.get(f"{API}/job-templates", params={"category": "software"})
    assert {t["id"] for t in software.json()["items"]} == {
        "saas-mvp",
        "rest-api",
        "mobile-app",
        "data-pipeline",
        "security-audit",
    }
    renovation = await client.get(f"{API}/job-templates", params={"category": "renovation"})
    assert {t["id"] for t in renovation.json()["items"]} == {
        "bathroom-renovation",
        "roof-repair",
        "kitchen-fitting",
    }
    web = catalog.get_category("web-development").id
    by_id = await client.get(f"{API}/job-templates", params={"category": str(web)})
    assert {t["id"] for t in by_id.json()["items"]} == {"saas-mvp", "rest-api"}
    unknown = await client.get(f"{API}/job-templates", params={"category": "alchemy"})
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "invalid_category"


class _Catalog(gettext.NullTranslations):
    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self.messages = messages

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)


@pytest.fixture
def romanian(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Romanian catalog with the first template's strings, whatever the .po holds now."""
    bathroom = templates_data.get_template("bathroom-renovation")
    assert bathroom is not None
    messages = {
        bathroom.title: "Renovare baie",
        bathroom.milestones[0].title: "Demontare și pregătire",
        bathroom.milestones[0].dod[0]: "Faianța, obiectele sanitare vechi și molozul îndepărtate",
    }
    real = i18n.translations

    def fake(language: str) -> gettext.NullTranslations:
        return _Catalog(messages) if language == "ro" else real(language)

    monkeypatch.setattr(i18n, "translations", fake)


async def test_texts_follow_the_request_language(client: httpx.AsyncClient, romanian: None) -> None:
    english = await client.get(f"{API}/job-templates", headers={"Accept-Language": "en"})
    bath = next(t for t in english.json()["items"] if t["id"] == "bathroom-renovation")
    assert bath["title"] == "Bathroom renovation"
    response = await client.get(f"{API}/job-templates", headers={"Accept-Language": "ro"})
    bath = next(t for t in response.json()["items"] if t["id"] == "bathroom-renovation")
    assert bath["title"] == "Renovare baie"
    assert bath["category_name"] == catalog.category_name(
        catalog.get_category("bathroom-renovation"), "ro"
    )
    assert bath["milestones"][0]["title"] == "Demontare și pregătire"
    assert bath["milestones"][0]["dod"][0].startswith("Faianța")


def test_template_data_is_consistent() -> None:
    assert len(templates_data.TEMPLATES) == 10
    for template in templates_data.TEMPLATES:
        assert catalog.is_category(template.category_id), template.id
        assert set(template.budgets) == {"RON", "ILS"}
        assert sum(m.share for m in template.milestones) == 100

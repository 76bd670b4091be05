"""A client's saved addresses: the page (no JavaScript, CSRF) and the API, one rule set:
stable ids, at most ten, exactly one default."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from mesteri.accounts.models import User
from mesteri.kit.db import WriteSession
from mesteri.pros import service
from tests.conftest import PASSWORD
from tests.fixtures.accounts import bearer, register, unique_contact
from tests.fixtures.pros import API, BRASOV, BUCHAREST, PLOIESTI

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGE = "/account/addresses"


async def _signed_in_client(client: httpx.AsyncClient) -> str:
    email, phone = unique_contact()
    form = await client.get("/register")
    token = _TOKEN.search(form.text)
    assert token
    response = await client.post(
        "/register",
        data={
            "csrf_token": token.group(1),
            "role": "client",
            "first_name": "Ioana",
            "last_name": "Pop",
            "email": email,
            "phone": phone,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 303, response.text
    return email


async def _token(client: httpx.AsyncClient) -> str:
    page = await client.get(PAGE)
    assert page.status_code == 200, page.text
    token = _TOKEN.search(page.text)
    assert token
    return token.group(1)


async def _addresses(db: WriteSession, email: str) -> list[dict[str, object]]:
    """The saved addresses as the API shows them."""
    db.expire_all()
    user_id = await db.scalar(select(User.id).where(User.email == email))
    assert user_id is not None
    profile = await service.access_client_profile(db, user_id)
    return [a.model_dump(mode="json") for a in service.list_addresses(profile)]


async def test_addresses_page_add_edit_default_delete(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    email = await _signed_in_client(client)
    account = await client.get("/account")
    assert f'href="{PAGE}"' in account.text
    empty = await client.get(PAGE)
    assert "No saved addresses yet." in empty.text

    token = await _token(client)
    home = {
        "csrf_token": token,
        "label": "Home",
        "place_id": str(BUCHAREST),
        "street": "Str. Lipscani 5",
    }
    added = await client.post(PAGE, data=home)
    assert (added.status_code, added.headers["location"]) == (303, f"{PAGE}?saved=added")
    await client.post(
        PAGE, data={**home, "label": "Parents", "place_id": str(BRASOV), "street": ""}
    )
    first, second = await _addresses(db, email)
    assert (first["label"], first["default"], first["place_name"]) == ("Home", True, "București")
    assert (second["label"], second["default"]) == ("Parents", False)

    # Without a name, the form comes back with the field marked.
    bad = await client.post(PAGE, data={**home, "label": " "})
    assert bad.status_code == 422
    assert 'id="f-new-label" name="label"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    # Without the CSRF token, nothing happens.
    forged = await client.post(PAGE, data={k: v for k, v in home.items() if k != "csrf_token"})
    assert forged.status_code == 403

    page = await client.get(PAGE)
    assert f'action="{PAGE}/{second["id"]}/default"' in page.text
    assert f'action="{PAGE}/{first["id"]}/default"' not in page.text  # already the default
    made = await client.post(f"{PAGE}/{second['id']}/default", data={"csrf_token": token})
    assert made.status_code == 303
    assert [a["default"] for a in await _addresses(db, email)] == [False, True]

    edited = await client.post(
        f"{PAGE}/{second['id']}",
        data={"csrf_token": token, "label": "Mum and dad", "place_id": str(PLOIESTI)},
    )
    assert edited.status_code == 303, edited.text
    after = await _addresses(db, email)
    assert after[1] == {**second, "label": "Mum and dad", "place_id": str(PLOIESTI),
                        "place_name": "Ploiești", "default": True}  # fmt: skip

    # Deleting the default makes the first remaining address the default.
    gone = await client.post(f"{PAGE}/{second['id']}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    (left,) = await _addresses(db, email)
    assert (left["id"], left["default"]) == (first["id"], True)
    missing = await client.post(f"{PAGE}/{second['id']}/delete", data={"csrf_token": token})
    assert missing.status_code == 404
    assert "We could not find this address." in missing.text


async def test_addresses_api_keeps_ids_and_one_default(client: httpx.AsyncClient) -> None:
    auth = bearer(await register(client))
    url = f"{API}/clients/me/addresses"
    one = await client.post(url, json={"label": "Home", "place_id": str(BUCHAREST)}, headers=auth)
    assert one.status_code == 201, one.text
    two = await client.post(
        url, json={"label": "Office", "place_id": str(BRASOV), "default": True}, headers=auth
    )
    home, office = two.json()["addresses"]
    assert (home["default"], office["default"]) == (False, True)

    # A whole-list PATCH keeps the ids it is given; one default at most survives.
    patched = await client.patch(
        f"{API}/clients/me",
        json={"addresses": [{**home, "default": True}, {**office, "default": True}]},
        headers=auth,
    )
    assert [(a["id"], a["default"]) for a in patched.json()["addresses"]] == [
        (home["id"], False),
        (office["id"], True),
    ]
    for n in range(8):
        added = await client.post(
            url, json={"label": f"Site {n}", "place_id": str(BUCHAREST)}, headers=auth
        )
        assert added.status_code == 201
    eleventh = await client.post(
        url, json={"label": "More", "place_id": str(BUCHAREST)}, headers=auth
    )
    assert (eleventh.status_code, eleventh.json()["code"]) == (422, "too_many_addresses")
    deleted = await client.delete(f"{url}/{office['id']}", headers=auth)
    assert deleted.json()["addresses"][0]["default"] is True
    unknown = await client.put(
        f"{url}/{office['id']}", json={"label": "x", "place_id": str(BUCHAREST)}, headers=auth
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "address_not_found")

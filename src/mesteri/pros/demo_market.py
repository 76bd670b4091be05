"""A realistic demo market for ``make run``: hundreds of pros across crafts and cities,
with portfolios, some verified and some waiting in the staff queue.

Bulk inserts (one statement per table) and one shared password hash keep ``make run``
quick; portfolio pictures are a few dozen generated images shared between profiles.
"""

from __future__ import annotations

import io
import random
import uuid
from datetime import timedelta
from typing import Any

from PIL import Image, ImageDraw
from sqlalchemy import insert, select

from mesteri.accounts.models import User
from mesteri.catalog import reference
from mesteri.catalog import service as catalog
from mesteri.config import get_settings
from mesteri.kit import clock
from mesteri.kit.db import WriteSession
from mesteri.kit.ids import new_id
from mesteri.kit.security import hash_password
from mesteri.kit.text import fold
from mesteri.media import service as media
from mesteri.pros import service
from mesteri.pros.models import (
    PortfolioItem,
    ProCraft,
    ProProfile,
    SubmissionState,
    VerificationState,
    VerificationSubmission,
)
from mesteri.pros.schemas import CraftIn, PortfolioIn, ProPatch

FIRST = [
    "Andrei",
    "Mihai",
    "Ion",
    "Gheorghe",
    "Vasile",
    "Florin",
    "Cristian",
    "Adrian",
    "Ioana",
    "Elena",
    "Maria",
    "Ana",
    "Radu",
    "Ștefan",
    "Bogdan",
    "Dan",
    "Sorin",
    "Lucian",
    "Gabriel",
    "Alexandru",
    "Cătălin",
    "Marius",
    "Attila",
    "Zoltán",
    "Levente",
    "Csaba",
    "Roxana",
    "Diana",
    "Mirela",
    "Costel",
    "Nicolae",
    "Tudor",
    "Ciprian",
    "Răzvan",
    "Laurențiu",
]
LAST = [
    "Popescu",
    "Ionescu",
    "Popa",
    "Dumitru",
    "Stan",
    "Stoica",
    "Gheorghe",
    "Rusu",
    "Munteanu",
    "Matei",
    "Constantin",
    "Șerban",
    "Moldovan",
    "Lungu",
    "Toma",
    "Ciobanu",
    "Dinu",
    "Țurcanu",
    "Nagy",
    "Kovács",
    "Szabó",
    "Marin",
    "Florea",
    "Mureșan",
    "Barbu",
    "Neagu",
    "Crăciun",
]
BUSINESS = [
    "Instal",
    "Construct",
    "Renov",
    "Design",
    "Service",
    "Expert",
    "Pro",
    "Meșteri",
    "Casa",
    "Total",
]
BIOS = [
    "Lucrez cu atenție la detalii și las totul curat după mine.",
    "Echipă mică, termene respectate, garanție pentru lucrare.",
    "Peste {years} de ani de experiență în {craft}. Ofertă gratuită.",
    "Folosesc doar materiale de calitate și explic fiecare pas.",
    "{craft} pentru apartamente și case, inclusiv urgențe.",
]
PALETTE = [
    (178, 85, 50),
    (46, 110, 160),
    (90, 140, 70),
    (200, 160, 60),
    (120, 90, 150),
    (60, 150, 150),
    (160, 60, 90),
    (110, 110, 110),
]


def _leaf_crafts() -> list[uuid.UUID]:
    cats = reference.categories()
    parents = {c.parent_id for c in cats}
    return [
        c.id for c in cats if c.parent_id is not None and (c.kind == "home" or c.id not in parents)
    ]


def _image(rng: random.Random, label: str) -> bytes:
    color = rng.choice(PALETTE)
    img = Image.new("RGB", (800, 600), color)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.randrange(0, 700), rng.randrange(0, 500)
        shade = tuple(min(255, c + rng.randrange(20, 70)) for c in color)
        draw.rectangle((x, y, x + rng.randrange(60, 260), y + rng.randrange(40, 200)), fill=shade)
    draw.text((24, 560), label, fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=80)
    return out.getvalue()


async def seed_market(
    session: WriteSession, password: str, *, pros: int = 300, seed: int = 7
) -> int:
    """Create ``pros`` demo professionals (idempotent: skipped when some exist)."""
    if await session.scalar(select(User.id).where(User.email == "pro0000@demo.mesteri.ro")):
        return 0
    rng = random.Random(seed)
    settings = get_settings()
    now = clock.now()
    country = settings.market_profile.phone_region
    places = [p for p in reference.places() if p["country"] == country]
    weights = [max(1.0, float(p["population"]) / 20000) for p in places]
    crafts = _leaf_crafts()
    password_hash = hash_password(password)

    users: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    pro_crafts: list[dict[str, Any]] = []
    for i in range(pros):
        user_id, pro_id = new_id(), new_id()
        first, last = rng.choice(FIRST), rng.choice(LAST)
        users.append(
            {
                "id": user_id,
                "email": f"pro{i:04d}@demo.mesteri.ro",
                "phone": None,
                "password_hash": password_hash,
                "first_name": first,
                "last_name": last,
                "language": settings.market_profile.default_language,
                "roles": ["pro"],
                "state": "active",
                "email_verified_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        place = rng.choices(places, weights)[0]
        primary = rng.choice(crafts)
        others = rng.sample([c for c in crafts if c != primary], rng.randrange(0, 3))
        years = rng.randrange(1, 30)
        for cid, is_primary in [(primary, True), *((o, False) for o in others)]:
            pro_crafts.append(
                {
                    "pro_id": pro_id,
                    "category_id": cid,
                    "primary": is_primary,
                    "years": years if is_primary else rng.randrange(1, years + 1),
                }
            )
        craft_name = catalog.category_name(catalog.get_category(primary), "ro")
        company = rng.random() < 0.35
        display = f"{rng.choice(BUSINESS)} {last} SRL" if company else f"{first} {last}"
        bio = rng.choice(BIOS).format(years=years, craft=craft_name.lower())
        roll = rng.random()
        state = (
            VerificationState.VERIFIED
            if roll < 0.55
            else VerificationState.PENDING
            if roll < 0.62
            else VerificationState.NONE
        )
        rate_min = rng.randrange(40, 200) * 100
        profile = {
            "id": pro_id,
            "user_id": user_id,
            "market": settings.market,
            "display_name": display,
            "name_key": fold(display),
            "bio": bio,
            "business_type": "srl" if company else rng.choice(["pfa", "ii", "individual"]),
            "business_id": None,
            "place_id": place["id"],
            "lat": place["lat"] + rng.uniform(-0.05, 0.05),
            "lon": place["lon"] + rng.uniform(-0.05, 0.05),
            "radius_km": rng.choice([10, 20, 30, 50, 100]),
            "rate_min": rate_min,
            "rate_max": rate_min + rng.randrange(20, 150) * 100,
            "currency": settings.market_profile.currency,
            "availability": rng.choices(["available", "busy", "vacation"], [0.7, 0.25, 0.05])[0],
            "languages": ["ro"]
            + (["en"] if rng.random() < 0.4 else [])
            + (["hu"] if rng.random() < 0.1 else []),
            "certifications": (
                [{"name": "ANRE", "issuer": "ANRE", "year": 2015 + rng.randrange(9)}]
                if rng.random() < 0.2
                else []
            ),
            "insurance": {"insurer": "Allianz-Țiriac"} if rng.random() < 0.3 else None,
            "tier": "standard",
            "badges": [],
            "primary_category_id": primary,
            "category_ids": [primary, *others],
            "verification_state": state,
            "verified_at": now if state == VerificationState.VERIFIED else None,
            "listed": True,
            # No ratings: reviews exist only for paid work (the demo journeys make some).
            "portfolio_count": 0,
            "promoted_until": now + timedelta(days=30) if rng.random() < 0.03 else None,
            "search_text": "",
            "created_at": now - timedelta(days=rng.randrange(1, 900)),
            "updated_at": now,
        }
        names: list[str] = []
        for cid in [primary, *others]:
            for ref in (cid, *catalog.ancestors(cid)):
                names.extend(catalog.get_category(ref).names.values())
        profile["search_text"] = " ".join([*dict.fromkeys(names), bio])
        profiles.append(profile)

    await session.execute(insert(User), users)
    await session.execute(insert(ProProfile), profiles)
    await session.execute(insert(ProCraft), pro_crafts)

    # Portfolios: 24 generated pictures, stored once, shown on many profiles.
    pictures = []
    for n in range(24):
        owner = profiles[n]
        stored = await media.do_store(
            session,
            owner["user_id"],
            purpose="portfolio",
            data=_image(rng, f"Mesteri demo #{n + 1}"),
            content_type="image/jpeg",
            filename=f"demo-{n + 1}.jpg",
        )
        stored.attached_at = now
        pictures.append(stored.id)
    items: list[dict[str, Any]] = []
    counts: dict[uuid.UUID, int] = {}
    captions = ["Lucrare finalizată", "Înainte și după", "Detaliu", "Proiect recent"]
    for profile in profiles:
        for _ in range(rng.randrange(0, 5)):
            items.append(
                {
                    "id": new_id(),
                    "pro_id": profile["id"],
                    "media_id": rng.choice(pictures),
                    "after_media_id": None,
                    "caption": rng.choice(captions),
                    "category_id": profile["primary_category_id"],
                    "created_at": now - timedelta(days=rng.randrange(1, 300)),
                }
            )
            counts[profile["id"]] = counts.get(profile["id"], 0) + 1
    if items:
        await session.execute(insert(PortfolioItem), items)
    for profile_id, count in counts.items():
        row = await session.get(ProProfile, profile_id)
        assert row is not None
        row.portfolio_count = count

    # Submissions: verified pros have a decided one; pending ones wait in the staff queue.
    subs = []
    for profile in profiles:
        if profile["verification_state"] == VerificationState.NONE:
            continue
        verified = profile["verification_state"] == VerificationState.VERIFIED
        subs.append(
            {
                "id": new_id(),
                "pro_id": profile["id"],
                "state": SubmissionState.VERIFIED if verified else SubmissionState.PENDING,
                "kind": "kyc",
                "legal_name": profile["display_name"],
                "business_type": profile["business_type"],
                "business_id": None,
                "document_ids": [],
                "reason": None,
                "submitted_at": now - timedelta(days=rng.randrange(1, 60)),
                "decided_at": now if verified else None,
                "decided_by": None,
            }
        )
    if subs:
        await session.execute(insert(VerificationSubmission), subs)
    await service.do_refresh_rank(session)
    return len(profiles)


async def make_demo_pro(session: WriteSession, user: User) -> None:
    """The fixed demo pro of SPEC 5.2: a verified plumber in Bucharest."""
    if await service.pro_id_of(session, user.id) is not None:
        return
    profile = await service.do_update_profile(
        session,
        user,
        ProPatch(
            display_name="Andrei Ionescu — Instalații",
            bio="Instalator autorizat ANRE în București: băi, bucătării, centrale, urgențe.",
            business_type="pfa",
            business_id="18547290",
            crafts=[
                CraftIn(category_id=reference.category_id("plumbing"), primary=True, years=12),
                CraftIn(category_id=reference.category_id("water-heaters"), years=8),
                CraftIn(category_id=reference.category_id("bathroom-renovation"), years=6),
            ],
            place_id=reference.place_id("RO", "București"),
            radius_km=30,
            rate_min=9000,
            rate_max=16000,
            languages=["ro", "en"],
        ),
    )
    rng = random.Random(2)
    for caption in ("Baie renovată complet", "Centrală montată"):
        stored = await media.do_store(
            session,
            user.id,
            purpose="portfolio",
            data=_image(rng, caption),
            content_type="image/jpeg",
            filename="demo.jpg",
        )
        await service.do_add_portfolio_item(
            session, user.id, PortfolioIn(media_id=stored.id, caption=caption)
        )
    now = clock.now()
    session.add(
        VerificationSubmission(
            id=new_id(),
            pro_id=profile.id,
            state=SubmissionState.VERIFIED,
            kind="kyb",
            legal_name="Ionescu Andrei PFA",
            business_type="pfa",
            business_id="18547290",
            document_ids=[],
            submitted_at=now,
            decided_at=now,
        )
    )
    profile.verification_state = VerificationState.VERIFIED
    profile.verified_at = now
    await service.do_refresh_rank(session, profile.id)

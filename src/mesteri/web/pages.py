"""Site-wide pages (home, offline) and the PWA's manifest and service worker."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from mesteri.config import get_settings
from mesteri.kit.i18n import gettext as _
from mesteri.kit.web import render

router = APIRouter()
assets = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/")
async def home(request: Request, welcome: int = 0) -> Response:
    return render(request, "site/home.html", {"welcome": bool(welcome)})


@router.get("/how-reputation-works")
async def reputation_explained(request: Request) -> Response:
    """How a pro's rating, on-time score and ranking are computed (docs/reputation.md)."""
    settings = get_settings()
    return render(
        request,
        "site/reputation.html",
        {
            "prior_rating": settings.rank_prior_rating,
            "prior_weight": settings.rank_prior_weight,
            "half_life_days": round(settings.reputation_half_life_days),
            "window_days": settings.review_window_days,
        },
    )


@router.get("/offline")
async def offline(request: Request) -> Response:
    return render(request, "site/offline.html")


@assets.get("/manifest.webmanifest")
async def manifest() -> JSONResponse:
    return JSONResponse(
        {
            "name": "Mesteri",
            "short_name": "Mesteri",
            "description": _("Trusted professionals, paid through escrow."),
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#0b5cab",
            "icons": [
                {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
                {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
                {
                    "src": "/static/icons/icon-512.png",
                    "sizes": "512x512",
                    "type": "image/png",
                    "purpose": "maskable",
                },
            ],
        },
        media_type="application/manifest+json",
    )


@assets.get("/sw.js")
async def service_worker() -> FileResponse:
    # Served from the root so its scope covers the whole site.
    return FileResponse(
        STATIC / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )

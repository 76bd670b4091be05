"""Job templates: real scopes a client can start from (SPEC M4), each pre-filling the
milestones with their share of the price and a Definition-of-Done checklist.

Texts are English source strings marked with ``lazy``; ``template_out`` translates them
into the request's language. Budgets are typical ranges in minor units per currency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from mesteri.catalog import reference
from mesteri.catalog import service as catalog
from mesteri.kit.i18n import gettext, lazy


@dataclass(frozen=True)
class MilestoneTemplate:
    title: str
    share: int  # percent of the price
    dod: tuple[str, ...]


@dataclass(frozen=True)
class JobTemplate:
    id: str
    title: str
    category_slug: str
    description: str
    budget_type: str
    # Typical budget per currency (minor units): {"RON": (min, max), ...}
    budgets: dict[str, tuple[int, int]]
    milestones: tuple[MilestoneTemplate, ...]

    @property
    def category_id(self) -> uuid.UUID:
        return reference.category_id(self.category_slug)


M = MilestoneTemplate

TEMPLATES: tuple[JobTemplate, ...] = (
    JobTemplate(
        id="bathroom-renovation",
        title=lazy("Bathroom renovation"),
        category_slug="bathroom-renovation",
        description=lazy(
            "Full renovation of a bathroom: strip-out, new plumbing and waterproofing, "
            "tiling, and new fixtures."
        ),
        budget_type="fixed",
        budgets={"RON": (1_500_000, 4_500_000), "ILS": (2_000_000, 6_000_000)},
        milestones=(
            M(
                lazy("Strip-out and preparation"),
                20,
                (
                    lazy("Old tiles, fixtures and sanitary ware removed and debris taken away"),
                    lazy("Water and drain lines capped and checked before new work starts"),
                    lazy("Walls and floor checked for level; deviations over 3 mm per 2 m fixed"),
                    lazy("Doors, hallway and neighbouring rooms protected from dust"),
                ),
            ),
            M(
                lazy("Plumbing, wiring and waterproofing"),
                30,
                (
                    lazy("New supply and drain lines pressure-tested for 24 hours without loss"),
                    lazy(
                        "Waterproofing membrane on the floor and 20 cm up the walls "
                        "(full height in the shower)"
                    ),
                    lazy("Bathroom circuit protected by a 30 mA RCD; outlets rated IP44 or better"),
                    lazy("Photos of pipes and membrane taken before they are covered"),
                ),
            ),
            M(
                lazy("Tiling"),
                30,
                (
                    lazy("Tiles laid level with even joints and no lippage over 1 mm"),
                    lazy("Floor falls to the drain; no standing water after a bucket test"),
                    lazy("Joints grouted; corners and fixtures sealed with silicone"),
                    lazy("Cut tiles placed on the least visible edges, as agreed"),
                ),
            ),
            M(
                lazy("Fixtures and handover"),
                20,
                (
                    lazy(
                        "Toilet, basin, shower or bath, taps and accessories installed and sealed"
                    ),
                    lazy("Every fixture runs for 10 minutes without a leak"),
                    lazy("Extractor fan works and vents outside"),
                    lazy("Room cleaned; warranties and product documents handed over"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="interior-painting",
        title=lazy("Interior painting"),
        category_slug="painting",
        description=lazy(
            "Painting of walls and ceilings: protection, repairs of cracks and holes, "
            "primer and two coats."
        ),
        budget_type="fixed",
        budgets={"RON": (200_000, 800_000), "ILS": (250_000, 1_000_000)},
        milestones=(
            M(
                lazy("Preparation"),
                30,
                (
                    lazy("Furniture moved or covered; floors and fittings protected"),
                    lazy("Cracks and holes filled and sanded smooth"),
                    lazy("Walls cleaned and primed where needed"),
                    lazy("Colours confirmed in writing after sample patches"),
                ),
            ),
            M(
                lazy("Painting"),
                50,
                (
                    lazy("Two coats with even coverage; no streaks or patches in side light"),
                    lazy("Clean, straight edges at ceilings, trims and corners"),
                    lazy("Paint matches the agreed brand, colour code and finish"),
                ),
            ),
            M(
                lazy("Cleanup and walk-through"),
                20,
                (
                    lazy("Protection removed and furniture put back"),
                    lazy("Paint splashes removed from floors, windows and sockets"),
                    lazy("Walk-through with the client; touch-ups done"),
                    lazy("Leftover paint labelled and left for later touch-ups"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="electrical-rewiring",
        title=lazy("Electrical rewiring"),
        category_slug="electrical",
        description=lazy(
            "Rewiring of a home: new circuits in conduit, a new distribution board with "
            "RCD protection, tests and a certificate."
        ),
        budget_type="fixed",
        budgets={"RON": (800_000, 2_500_000), "ILS": (1_000_000, 3_000_000)},
        milestones=(
            M(
                lazy("Survey and circuit plan"),
                15,
                (
                    lazy("Existing installation inspected and faults listed"),
                    lazy("Positions of outlets, switches and lights agreed in writing"),
                    lazy("Load calculated for the main breaker and cable sizes"),
                ),
            ),
            M(
                lazy("New wiring"),
                40,
                (
                    lazy("Old wiring removed or safely disconnected"),
                    lazy("New copper cables of the planned sizes run in conduit"),
                    lazy("Junction boxes accessible; every circuit labelled at both ends"),
                    lazy("Photos of the cable routes taken before walls are closed"),
                ),
            ),
            M(
                lazy("Distribution board"),
                25,
                (
                    lazy("New board with a breaker per circuit and 30 mA RCD protection"),
                    lazy("Earthing connected and its resistance measured"),
                    lazy("Circuit list fixed inside the board's door"),
                ),
            ),
            M(
                lazy("Testing and certificate"),
                20,
                (
                    lazy("Insulation, continuity and RCD trip tests passed and recorded"),
                    lazy("Every outlet, switch and light works"),
                    lazy("Test report and as-built wiring diagram handed over"),
                    lazy("Walls patched where cables were chased"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="roof-repair",
        title=lazy("Roof repair"),
        category_slug="roofing",
        description=lazy(
            "Repair of a leaking or damaged roof: replacement of broken tiles or sheets, "
            "flashings and gutters, with a water test."
        ),
        budget_type="fixed",
        budgets={"RON": (500_000, 2_000_000), "ILS": (600_000, 2_500_000)},
        milestones=(
            M(
                lazy("Inspection and safety"),
                15,
                (
                    lazy("Roof inspected; damaged areas photographed and measured"),
                    lazy("Scaffolding or fall protection installed"),
                    lazy("Scope of the repair and materials agreed in writing"),
                ),
            ),
            M(
                lazy("Repairs"),
                60,
                (
                    lazy("Damaged tiles or sheets, battens and membrane replaced to match"),
                    lazy("Flashings around chimneys, vents and valleys resealed"),
                    lazy("Gutters and downpipes cleared and fixed firmly"),
                ),
            ),
            M(
                lazy("Water test and cleanup"),
                25,
                (
                    lazy("Repaired areas hose-tested with no leak in the attic"),
                    lazy("Debris removed from the roof, gutters and yard"),
                    lazy("Before and after photos and material warranties handed over"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="kitchen-fitting",
        title=lazy("Kitchen fitting"),
        category_slug="kitchen-renovation",
        description=lazy(
            "Fitting of a new kitchen: units and worktops, sink and appliances connected, "
            "splashback and finishing."
        ),
        budget_type="fixed",
        budgets={"RON": (600_000, 2_000_000), "ILS": (800_000, 2_500_000)},
        milestones=(
            M(
                lazy("Measuring and preparation"),
                20,
                (
                    lazy("Room measured and the layout drawing agreed"),
                    lazy("Water, drain and power points placed to the drawing"),
                    lazy("Old units removed; walls level and ready"),
                ),
            ),
            M(
                lazy("Units and worktops"),
                50,
                (
                    lazy("Base and wall units level and fixed to the wall"),
                    lazy("Worktops cut, joined and sealed, with cut-outs for sink and hob"),
                    lazy("Doors and drawers aligned with even gaps; soft-close works"),
                ),
            ),
            M(
                lazy("Appliances and finishing"),
                30,
                (
                    lazy("Sink, tap and dishwasher connected; no leak after 30 minutes running"),
                    lazy("Hob, oven and hood connected by a qualified person and tested"),
                    lazy("Splashback, plinths and end panels fitted; silicone joints clean"),
                    lazy("Area cleaned and packaging taken away"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="saas-mvp",
        title=lazy("SaaS MVP"),
        category_slug="saas-mvp",
        description=lazy(
            "A first sellable version of a web application: accounts, the core workflow, "
            "subscription billing and a production launch."
        ),
        budget_type="fixed",
        budgets={"RON": (4_000_000, 15_000_000), "ILS": (5_000_000, 18_000_000)},
        milestones=(
            M(
                lazy("Discovery and design"),
                15,
                (
                    lazy("User stories of the MVP scope written and prioritised"),
                    lazy("Clickable wireframes of the main flows approved"),
                    lazy("Architecture and hosting choice documented"),
                ),
            ),
            M(
                lazy("Core features"),
                40,
                (
                    lazy("Sign-up, sign-in and password reset work"),
                    lazy("The core workflow works end to end on a staging URL"),
                    lazy("Automated tests cover the core workflow and pass in CI"),
                    lazy("Code is in the client's repository"),
                ),
            ),
            M(
                lazy("Billing and administration"),
                25,
                (
                    lazy("Subscription billing works in the payment provider's test mode"),
                    lazy("An administrator can see and manage users"),
                    lazy("E-mails are sent for sign-up and billing events"),
                ),
            ),
            M(
                lazy("Launch"),
                20,
                (
                    lazy("Deployed to production on the client's accounts, over HTTPS"),
                    lazy("Backups and error monitoring configured"),
                    lazy("README covers setup, deployment and configuration"),
                    lazy("Handover call held and credentials transferred"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="rest-api",
        title=lazy("REST API"),
        category_slug="rest-api",
        description=lazy(
            "A documented REST API: specification, implementation with tests, "
            "deployment and interactive documentation."
        ),
        budget_type="fixed",
        budgets={"RON": (1_500_000, 6_000_000), "ILS": (2_000_000, 7_000_000)},
        milestones=(
            M(
                lazy("API design"),
                20,
                (
                    lazy("OpenAPI specification of every endpoint agreed"),
                    lazy("Authentication scheme and error format decided"),
                    lazy("Data model documented"),
                ),
            ),
            M(
                lazy("Implementation"),
                50,
                (
                    lazy("Every endpoint of the specification implemented"),
                    lazy("Input validated; errors returned in the agreed format"),
                    lazy("Automated tests with at least 80% line coverage pass in CI"),
                    lazy("List endpoints paginated and rate limits in place"),
                ),
            ),
            M(
                lazy("Deployment and documentation"),
                30,
                (
                    lazy("Deployed to the client's environment over HTTPS"),
                    lazy("Interactive API documentation published"),
                    lazy("Load test report for the agreed throughput"),
                    lazy("Source code and deployment scripts in the client's repository"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="mobile-app",
        title=lazy("Mobile app"),
        category_slug="mobile-apps",
        description=lazy(
            "An iOS and Android app: design, build against an API, testing on real "
            "devices and release in both stores."
        ),
        budget_type="fixed",
        budgets={"RON": (5_000_000, 20_000_000), "ILS": (6_000_000, 25_000_000)},
        milestones=(
            M(
                lazy("Design"),
                20,
                (
                    lazy("Screens of every flow designed for iOS and Android"),
                    lazy("Design approved by the client"),
                    lazy("Navigation and offline behaviour specified"),
                ),
            ),
            M(
                lazy("Build"),
                45,
                (
                    lazy("Every approved screen implemented"),
                    lazy("The app talks to the backend API with authentication"),
                    lazy("Builds run on test devices of both platforms"),
                    lazy("Crash reporting integrated"),
                ),
            ),
            M(
                lazy("Testing"),
                20,
                (
                    lazy("Test plan run on the agreed devices with no open critical bug"),
                    lazy("Large text sizes and screen reader labels checked"),
                    lazy("Beta build sent to the client's testers"),
                ),
            ),
            M(
                lazy("Store release"),
                15,
                (
                    lazy("Published on the App Store and Google Play under the client's accounts"),
                    lazy("Store listings with screenshots and a privacy policy"),
                    lazy("Source code and signing setup handed over"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="data-pipeline",
        title=lazy("Data pipeline"),
        category_slug="data-ai",
        description=lazy(
            "A scheduled pipeline that extracts data from your sources, cleans and "
            "transforms it, and loads it where your team reports from."
        ),
        budget_type="fixed",
        budgets={"RON": (2_000_000, 8_000_000), "ILS": (2_500_000, 10_000_000)},
        milestones=(
            M(
                lazy("Source analysis"),
                20,
                (
                    lazy("Every source, its format and its volume documented"),
                    lazy("Target schema agreed"),
                    lazy("Data quality rules written down"),
                ),
            ),
            M(
                lazy("Pipeline build"),
                50,
                (
                    lazy("Extraction from every source runs on schedule"),
                    lazy("Transformations implemented and covered by tests"),
                    lazy("Loads are idempotent: re-running a day adds no duplicate rows"),
                    lazy("Failed runs raise an alert in the agreed channel"),
                ),
            ),
            M(
                lazy("Validation and handover"),
                30,
                (
                    lazy("Row counts and totals match the sources for a sample period"),
                    lazy("Runbook for operations and backfills"),
                    lazy("The tables or dashboards the client needs are filled"),
                    lazy("Code and infrastructure definitions in the client's repository"),
                ),
            ),
        ),
    ),
    JobTemplate(
        id="security-audit",
        title=lazy("Security audit"),
        category_slug="qa-testing",
        description=lazy(
            "A penetration test of a web application or API, with a report of findings, "
            "their severity and how to fix them, and a retest."
        ),
        budget_type="fixed",
        budgets={"RON": (1_000_000, 4_000_000), "ILS": (1_200_000, 5_000_000)},
        milestones=(
            M(
                lazy("Scoping"),
                15,
                (
                    lazy("Targets, test windows and rules of engagement signed"),
                    lazy("Test accounts and environments provided and working"),
                    lazy("Methodology agreed (for example OWASP ASVS and WSTG)"),
                ),
            ),
            M(
                lazy("Testing"),
                55,
                (
                    lazy("Automated and manual tests run against every target in scope"),
                    lazy("Authentication, authorisation and input handling tested"),
                    lazy("Every finding reproduced with evidence"),
                ),
            ),
            M(
                lazy("Report and retest"),
                30,
                (
                    lazy("Report with a CVSS severity and remediation advice for each finding"),
                    lazy("Executive summary for non-technical readers"),
                    lazy("Findings walked through with the team"),
                    lazy("Fixed issues retested and the report updated"),
                ),
            ),
        ),
    ),
)


@cache
def _by_id() -> dict[str, JobTemplate]:
    return {t.id: t for t in TEMPLATES}


def get_template(template_id: str) -> JobTemplate | None:
    return _by_id().get(template_id)


def list_templates(category: uuid.UUID | None = None) -> list[JobTemplate]:
    """Every template, or those whose category is ``category`` or below it."""
    if category is None:
        return list(TEMPLATES)
    inside = set(catalog.subtree(category))
    return [t for t in TEMPLATES if t.category_id in inside]


def milestone_plan(template: JobTemplate) -> list[dict[str, Any]]:
    """The template's milestones in the request's language, as a job stores them."""
    return [
        {"title": gettext(m.title), "share": m.share, "dod": [gettext(d) for d in m.dod]}
        for m in template.milestones
    ]


def budget_for(template: JobTemplate, currency: str) -> tuple[int, int] | None:
    return template.budgets.get(currency)

"""The lead board: open jobs a pro could take, best first (SPEC M4).

Which jobs
    Open jobs (not the pro's own) whose category is one of the pro's crafts or below one
    of them in the taxonomy (a plumber also sees "drain cleaning"), within the pro's
    service area (great-circle distance from the pro's base to the job's place
    ≤ the pro's ``radius_km``), plus every open job the pro was invited to, wherever it is.
    Jobs the pro already proposed on stay, flagged ``proposed``.

Order
    Invited jobs first; then by ``score`` (highest first), then id. Every signal is in
    [0, 1], so the score is too::

        score = 0.40 · distance + 0.35 · recency + 0.25 · budget_fit

        distance   = max(0, 1 - distance_km / radius_km)        (0 when unknown)
        recency    = exp(-age_days / 7)                          (age since publication)
        budget_fit = min(1, budget_max / rate_min)               hourly jobs
                   = min(1, budget_max / (8 · rate_min))         fixed jobs: at least a
                                                                 day's work at the pro's
                                                                 lowest hourly rate
                   = 0.5                                         the pro set no rate

Filters
    ``category`` (id or slug, with its sub-categories), ``max_distance_km`` (jobs at
    most that far), ``budget_min`` (jobs that can pay at least this: ``budget_max ≥``),
    ``budget_max`` (jobs starting at most at this: ``budget_min ≤``).

Speed
    One statement. Candidates come from the partial indexes on open jobs: category
    (``ix_jobs_open_category``) and location (``ix_jobs_open_location``, GiST on
    ``point(lon, lat)`` answering the bounding box of the radius), then the exact
    haversine distance and the score are computed in SQL for those rows only, sorted and
    limited there. Pages are keyset cursors on (invited, score, id); the cursor carries
    the time the first page was scored at, so recency, and with it the order, stays the
    same while paging. The pro's live-proposal flag reads the proposals' partial unique
    index, and the client's name is joined from accounts — a read-only join kept in this
    one statement because the board is a hot path.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import DateTime

from mesteri.catalog import service as catalog
from mesteri.kit import clock
from mesteri.kit.db import ReadSession
from mesteri.kit.pagination import InvalidCursorError, decode_cursor, encode_cursor
from mesteri.pros.models import ProProfile

W_DISTANCE = 0.40
W_RECENCY = 0.35
W_BUDGET = 0.25
RECENCY_DAYS = 7.0  # recency falls to 1/e after a week
DAY_HOURS = 8  # a fixed job fits when it pays at least a day at the pro's lowest rate
KM_PER_DEGREE = 111.045
LIVE_PROPOSAL_STATES = "('submitted', 'shortlisted', 'countered')"


@dataclass(frozen=True)
class LeadQuery:
    category: uuid.UUID | None = None
    max_distance_km: float | None = None
    budget_min: int | None = None
    budget_max: int | None = None
    cursor: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class Lead:
    id: uuid.UUID
    title: str
    category_id: uuid.UUID
    place_id: uuid.UUID
    budget_type: str
    budget_min: int
    budget_max: int
    currency: str
    published_at: datetime | None
    proposals_count: int
    client_first_name: str
    client_initial: str
    invited: bool
    proposed: bool
    distance_km: float | None
    score: float


def craft_categories(pro: ProProfile) -> list[uuid.UUID]:
    """The pro's crafts and every category below them."""
    out: dict[uuid.UUID, None] = {}
    for category in pro.category_ids or []:
        if catalog.is_category(category):
            out.update(dict.fromkeys(catalog.subtree(category)))
    return list(out)


# Above this radius the bounding box covers most of a country: the category index finds
# the candidates better than the location index (PostgreSQL estimates ``<@`` on a GiST
# index with a fixed selectivity, so it would otherwise always pick the box).
BOX_MAX_RADIUS_KM = 150.0

_HAVERSINE = (
    "(2 * 6371.0088 * asin(sqrt(least(1.0, power(sin(radians(j.lat - :lat0) / 2), 2)"
    " + :coslat0 * cos(radians(j.lat)) * power(sin(radians(j.lon - :lon0) / 2), 2)))))"
)

_SCORE = (
    f"round(({W_DISTANCE} * CASE WHEN c.distance_km IS NULL THEN 0.0"
    "      ELSE greatest(0.0, 1.0 - c.distance_km / :radius) END"
    f"  + {W_RECENCY} * exp(-greatest(0.0, extract(epoch FROM (:now"
    "      - coalesce(c.published_at, c.created_at)))::float8) / 86400.0 / :recency_days)"
    f"  + {W_BUDGET} * CASE WHEN :rate_min IS NULL OR :rate_min <= 0 THEN 0.5"
    "      WHEN c.budget_type = 'hourly' THEN least(1.0, c.budget_max::float8 / :rate_min)"
    "      ELSE least(1.0, c.budget_max::float8 / (:rate_min * :day_hours)) END"
    ")::numeric, 6)::float8"
)

_JOB_COLUMNS = (
    "j.id, j.client_id, j.title, j.category_id, j.place_id, j.budget_type, j.budget_min,"
    " j.budget_max, j.currency, j.published_at, j.created_at, j.proposals_count"
)


def _statement(*, area: bool, box: bool, filters: list[str], after: bool) -> Any:
    """Candidates in one pass (the area's jobs, plus invited jobs outside it), scored,
    sorted and limited; only the page's rows are then joined to names and proposals."""
    distance = _HAVERSINE if area else "NULL::float8"
    box_cond = (
        " AND point(j.lon, j.lat) <@ box(point(:box_w, :box_s), point(:box_e, :box_n))"
        if box
        else ""
    )
    in_area = f"j.category_id = ANY(:cats){box_cond} AND d.distance_km <= :radius"
    outside_area = f" AND NOT coalesce({in_area}, false)" if area else ""
    branches = []
    if area:
        branches.append(
            f"SELECT {_JOB_COLUMNS}, d.distance_km,"  # noqa: S608 - fragments are constants
            " EXISTS (SELECT 1 FROM inv WHERE inv.job_id = j.id) AS invited"
            f" FROM jobs AS j CROSS JOIN LATERAL (SELECT {distance} AS distance_km) AS d"
            f" WHERE j.state = 'open' AND {in_area}"
        )
    branches.append(
        f"SELECT {_JOB_COLUMNS}, d.distance_km, true AS invited"  # noqa: S608 - constants
        " FROM inv JOIN jobs AS j ON j.id = inv.job_id"
        f" CROSS JOIN LATERAL (SELECT {distance} AS distance_km) AS d"
        f" WHERE j.state = 'open'{outside_area}"
    )
    where = ["c.client_id <> :user_id", *filters]
    if after:
        where.append("(s.inv, s.score, c.id) < (:c_inv, :c_score, :c_id)")
    sql = (
        "WITH inv AS MATERIALIZED ("  # noqa: S608 - fragments are constants
        " SELECT i.job_id FROM job_invites AS i WHERE i.pro_id = :pro_id),"
        f" cand AS ({' UNION ALL '.join(branches)}),"
        " top AS (SELECT c.*, s.inv, s.score FROM cand AS c"
        f" CROSS JOIN LATERAL (SELECT c.invited::int AS inv, {_SCORE} AS score) AS s"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY s.inv DESC, s.score DESC, c.id DESC LIMIT :limit)"
        " SELECT top.*, u.first_name, left(u.last_name, 1) AS client_initial,"
        " EXISTS (SELECT 1 FROM proposals AS p WHERE p.job_id = top.id AND p.pro_id = :pro_id"
        f"        AND p.state IN {LIVE_PROPOSAL_STATES}) AS proposed"
        " FROM top JOIN users AS u ON u.id = top.client_id"
        " ORDER BY top.inv DESC, top.score DESC, top.id DESC"
    )
    stmt = text(sql).bindparams(
        bindparam("pro_id", type_=Uuid),
        bindparam("user_id", type_=Uuid),
        bindparam("radius", type_=Float),
        bindparam("now", type_=DateTime(timezone=True)),
        bindparam("recency_days", type_=Float),
        bindparam("rate_min", type_=Float),
        bindparam("day_hours", type_=Float),
        bindparam("limit", type_=Integer),
    )
    if area:
        stmt = stmt.bindparams(
            bindparam("cats", type_=ARRAY(Uuid)),
            *(bindparam(n, type_=Float) for n in ("lat0", "lon0", "coslat0")),
        )
    if box:
        stmt = stmt.bindparams(
            *(bindparam(n, type_=Float) for n in ("box_w", "box_s", "box_e", "box_n")),
        )
    if after:
        stmt = stmt.bindparams(
            bindparam("c_inv", type_=Integer),
            bindparam("c_score", type_=Float),
            bindparam("c_id", type_=Uuid),
        )
    return stmt


async def lead_board(
    session: ReadSession, pro: ProProfile, query: LeadQuery
) -> tuple[list[Lead], str | None]:
    """One page of the pro's lead board and the cursor of the next."""
    now = clock.now()
    after: list[Any] | None = None
    if query.cursor:
        after = decode_cursor(query.cursor, 4)
        if (
            after[0] not in (0, 1)
            or not isinstance(after[1], (int, float))
            or isinstance(after[1], bool)
            or not isinstance(after[2], uuid.UUID)
            or not isinstance(after[3], datetime)
            or after[3].tzinfo is None
        ):
            raise InvalidCursorError(field="cursor")
        now = after[3]
    categories = craft_categories(pro)
    area = bool(categories) and pro.lat is not None and pro.lon is not None
    radius = float(pro.radius_km or 1)
    params: dict[str, Any] = {
        "pro_id": pro.id,
        "user_id": pro.user_id,
        "radius": radius,
        "now": now,
        "recency_days": RECENCY_DAYS,
        "rate_min": float(pro.rate_min) if pro.rate_min else None,
        "day_hours": float(DAY_HOURS),
        "limit": query.limit + 1,
    }
    filters: list[str] = []
    if query.category is not None:
        inside = set(catalog.subtree(query.category))
        categories = [c for c in categories if c in inside]
        area = area and bool(categories)
        filters.append("c.category_id = ANY(:filter_cats)")
        params["filter_cats"] = list(inside)
    if query.max_distance_km is not None:
        filters.append("c.distance_km <= :max_distance")
        params["max_distance"] = float(query.max_distance_km)
    if query.budget_min is not None:
        filters.append("c.budget_max >= :f_budget_min")
        params["f_budget_min"] = query.budget_min
    if query.budget_max is not None:
        filters.append("c.budget_min <= :f_budget_max")
        params["f_budget_max"] = query.budget_max
    box = area and radius <= BOX_MAX_RADIUS_KM
    if area:
        assert pro.lat is not None
        assert pro.lon is not None
        params.update(
            cats=categories,
            lat0=pro.lat,
            lon0=pro.lon,
            coslat0=math.cos(math.radians(pro.lat)),
        )
    if box:
        assert pro.lat is not None
        assert pro.lon is not None
        dlat = radius / KM_PER_DEGREE
        dlon = radius / (KM_PER_DEGREE * max(math.cos(math.radians(pro.lat)), 0.01))
        params.update(
            box_w=pro.lon - dlon,
            box_s=pro.lat - dlat,
            box_e=pro.lon + dlon,
            box_n=pro.lat + dlat,
        )
    if after is not None:
        params.update(c_inv=int(after[0]), c_score=float(after[1]), c_id=after[2])
    stmt = _statement(area=area, box=box, filters=filters, after=after is not None)
    if "filter_cats" in params:
        stmt = stmt.bindparams(bindparam("filter_cats", type_=ARRAY(Uuid)))
    if "max_distance" in params:
        stmt = stmt.bindparams(bindparam("max_distance", type_=Float))
    rows = (await session.execute(stmt, params)).all()
    leads = [
        Lead(
            id=r.id,
            title=r.title,
            category_id=r.category_id,
            place_id=r.place_id,
            budget_type=r.budget_type,
            budget_min=r.budget_min,
            budget_max=r.budget_max,
            currency=r.currency,
            published_at=r.published_at,
            proposals_count=r.proposals_count,
            client_first_name=r.first_name,
            client_initial=r.client_initial or "",
            invited=bool(r.invited),
            proposed=bool(r.proposed),
            distance_km=r.distance_km,
            score=float(r.score),
        )
        for r in rows[: query.limit]
    ]
    next_cursor = None
    if len(rows) > query.limit and leads:
        last = leads[-1]
        next_cursor = encode_cursor([int(last.invited), last.score, last.id, now])
    return leads, next_cursor

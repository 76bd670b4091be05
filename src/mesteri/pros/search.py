"""Pro search: filters on indexes, the documented relevance score, keyset pages.

Indexes, not scans (plans in ``docs/search-plans.md``):

- text: ``search_vector`` (GIN), folded with ``mesteri_fold`` so "instalatii brasov"
  matches "Instalații Brașov"; every word is a prefix (``instal:*``) for search-as-you-type;
- category: ``category_ids`` (GIN on the array), the searched category expanded to its
  sub-tree in memory, matched with ``&&``;
- radius: a GiST index on ``point(lon, lat)`` narrows to the bounding box, then the exact
  great-circle (haversine) distance filters and is returned as ``distance_km``.

Relevance (seed 003), each signal in [0, 1], weights from settings (``MESTERI_RANK_*``);
the query-independent part is stored per pro as ``rank_base`` (``do_refresh_rank``) and
indexed, so the default sort retrieves the best candidates by it and re-ranks them::

    score = w_skill·skill + w_portfolio·portfolio + w_reviews·reviews + w_delivery·delivery
          + w_availability·availability + w_text·text + verified_boost·verified
          + promoted_boost·promoted

- skill: 1 when the searched category (or one below it) is the pro's primary craft, 0.6
  when it is another of their crafts, 0 without a category filter;
- portfolio: with a searched category, the fit of the pro's work to it: of their latest
  10 portfolio items, those whose category is in the searched sub-tree (an untagged item
  counts as the pro's primary craft), over 10; without a category, all of them count
  (min(items, 10) / 10). The index-ordered ``rank_base`` carries the category-free value,
  an upper bound of the fit (the matching items are among all items), and the re-rank
  replaces it with the fit;
- reviews: the Bayesian average (C·m + Σwᵢrᵢ) / (C + Σwᵢ) with prior mean m, prior weight C
  and recency weights wᵢ = 2^(-age/half-life) (sums kept by the reviews module relative to
  a fixed epoch, ``kit.recency``), mapped from 1..5 to 0..1; "sort by rating" orders by
  the same average, so one 5★ review does not outrank two hundred 4.8★ ones;
- delivery: the on-time milestone share; availability: available 1, busy 0.3, vacation 0;
- text: ts_rank normalised to [0, 1) (rank / (rank + 1));
- verified / promoted: 1 or 0.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    Select,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from mesteri.catalog import service as catalog
from mesteri.config import Settings
from mesteri.kit import clock, recency
from mesteri.kit.db import ReadSession
from mesteri.kit.pagination import InvalidCursorError, decode_cursor, encode_cursor
from mesteri.kit.text import fold
from mesteri.pros.errors import SortNeedsPlaceError
from mesteri.pros.models import SORT_INDEX_INCLUDE, ProProfile

EARTH_KM = 6371.0088
KM_PER_DEGREE = 111.045
_WORD = re.compile(r"[0-9a-z\u0590-\u05ff]+")


@dataclass(frozen=True)
class SearchQuery:
    q: str | None = None
    category: str | None = None  # id or slug
    place_id: uuid.UUID | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float | None = None
    min_rating: float | None = None
    max_rate: int | None = None
    available: bool | None = None
    verified: bool | None = None
    language: str | None = None
    sort: str = "relevance"
    cursor: str | None = None
    limit: int = 20


@dataclass(frozen=True)
class Hit:
    id: uuid.UUID
    display_name: str
    primary_category_id: uuid.UUID | None
    category_ids: list[uuid.UUID]
    rating_avg: float | None
    reviews_count: int
    verification_state: str
    availability: str
    rate_min: int | None
    rate_max: int | None
    currency: str
    place_id: uuid.UUID | None
    portfolio_count: int
    score: float
    distance_km: float | None


def tsquery_text(q: str) -> str | None:
    """``"Instalații sanit"`` → ``"instalatii:* & sanit:*"`` (folded, every word a prefix)."""
    words = _WORD.findall(fold(q))[:8]
    return " & ".join(f"{w}:*" for w in words) if words else None


def origin_of(query: SearchQuery) -> tuple[float, float] | None:
    if query.place_id is not None:
        return catalog.place_coordinates(query.place_id)
    if query.lat is not None and query.lon is not None:
        return query.lat, query.lon
    return None


def haversine_sql(lat0: float, lon0: float, p: Any = ProProfile) -> ColumnElement[float]:
    rlat0 = math.radians(lat0)
    half_dlat = func.radians(p.lat - lat0) / 2.0
    half_dlon = func.radians(p.lon - lon0) / 2.0
    a = func.power(func.sin(half_dlat), 2.0) + math.cos(rlat0) * func.cos(
        func.radians(p.lat)
    ) * func.power(func.sin(half_dlon), 2.0)
    return cast(2 * EARTH_KM * func.asin(func.sqrt(func.least(1.0, a))), Float)


def bbox_sql(
    lat0: float, lon0: float, radius_km: float, p: Any = ProProfile
) -> ColumnElement[bool]:
    """``point(lon, lat) <@ box(…)``: answered by the GiST index on the point. Bound
    parameters (not literals) keep the statement's compiled form cacheable."""
    dlat = radius_km / KM_PER_DEGREE
    dlon = radius_km / (KM_PER_DEGREE * max(math.cos(math.radians(lat0)), 0.01))
    corner = [
        bindparam(name, value, type_=Float)
        for name, value in (
            ("box_w", lon0 - dlon),
            ("box_s", lat0 - dlat),
            ("box_e", lon0 + dlon),
            ("box_n", lat0 + dlat),
        )
    ]
    box = func.box(func.point(corner[0], corner[1]), func.point(corner[2], corner[3]))
    return func.point(p.lon, p.lat).op("<@")(box)


def rating_score_sql(settings: Settings) -> ColumnElement[float]:
    """The Bayesian-smoothed, recency-weighted rating (docs/reputation.md), 1..5."""
    p = ProProfile
    c, m = settings.rank_prior_weight, settings.rank_prior_rating
    factor = recency.decay(clock.now(), settings.reputation_half_life_days)
    return (c * m + p.rating_weighted_sum * factor) / (c + p.rating_weight * factor)


PORTFOLIO_FIT_ITEMS = 10  # the portfolio signal saturates at this many (matching) items


def portfolio_categories_sql() -> Any:
    """``pro_profiles.portfolio_category_ids`` from the pro's portfolio items (newest first;
    an untagged item counts as the primary craft)."""
    from mesteri.pros.models import PortfolioItem

    p, i = ProProfile, PortfolioItem
    category = func.coalesce(i.category_id, p.primary_category_id)
    return func.array(
        select(category)
        .where(i.pro_id == p.id, category.is_not(None))
        .order_by(i.created_at.desc(), i.id.desc())
        .limit(PORTFOLIO_FIT_ITEMS)
        .scalar_subquery()
    )


def portfolio_size_sql() -> ColumnElement[float]:
    """The category-free portfolio signal, part of ``rank_base``."""
    size = func.least(ProProfile.portfolio_count, PORTFOLIO_FIT_ITEMS)
    return cast(size / float(PORTFOLIO_FIT_ITEMS), Float)


def portfolio_fit_sql(cats: Any) -> ColumnElement[float]:
    """The share of the pro's latest items that show work in the searched categories."""
    item = func.unnest(ProProfile.portfolio_category_ids).column_valued("portfolio_category")
    matching = select(func.count()).where(item == any_(cats)).scalar_subquery()
    return cast(cast(matching, Float) / float(PORTFOLIO_FIT_ITEMS), Float)


def static_score_sql(settings: Settings) -> ColumnElement[float]:
    """The query-independent part of the score, stored as ``rank_base`` (indexed)."""
    p = ProProfile
    reviews = (rating_score_sql(settings) - 1.0) / 4.0
    availability = case(
        (p.availability == "available", 1.0), (p.availability == "busy", 0.3), else_=0.0
    )
    promoted = case((p.promoted_until > clock.now(), 1.0), else_=0.0)
    verified = case((p.verification_state == "verified", 1.0), else_=0.0)
    return cast(
        settings.rank_portfolio * portfolio_size_sql()
        + settings.rank_reviews * reviews
        + settings.rank_delivery * p.delivery_score
        + settings.rank_availability * availability
        + settings.rank_verified_boost * verified
        + settings.rank_promoted_boost * promoted,
        Float,
    )


def score_sql(
    settings: Settings, category_ids: list[uuid.UUID] | None, tsq: Any | None
) -> ColumnElement[float]:
    """The full score: ``rank_base`` plus the parts that depend on the query."""
    p = ProProfile
    skill: ColumnElement[float] = literal(0.0)
    portfolio: ColumnElement[float] = literal(0.0)  # rank_base's portfolio part stands
    if category_ids:
        cats = bindparam("skill_categories", category_ids, type_=ARRAY(Uuid))
        skill = case((p.primary_category_id == any_(cats), 1.0), else_=0.6)
        portfolio = portfolio_fit_sql(cats) - portfolio_size_sql()
    text_rank: ColumnElement[float] = literal(0.0)
    if tsq is not None:
        text_rank = func.ts_rank(p.search_vector, tsq, 32)
    return cast(
        p.rank_base
        + settings.rank_skill * skill
        + settings.rank_portfolio * portfolio
        + settings.rank_text * text_rank,
        Float,
    )


@dataclass(frozen=True)
class _Plan:
    where: list[ColumnElement[bool]]
    distance: ColumnElement[Any]
    score: ColumnElement[float]


def _plan(query: SearchQuery, settings: Settings, p: Any = ProProfile) -> _Plan:
    where: list[ColumnElement[bool]] = [p.market == settings.market]
    if p is ProProfile:
        # Plain ``listed`` (not ``IS TRUE``) so the partial indexes (``WHERE listed``) apply;
        # the bounded rank scan has it as its own condition.
        where.insert(0, ProProfile.listed.expression)
    origin = origin_of(query)
    distance: ColumnElement[Any] = literal(None, Float)
    if origin is not None:
        distance = haversine_sql(*origin, p=p)
        if query.radius_km is not None:
            where.append(bbox_sql(*origin, query.radius_km, p=p))
            where.append(distance <= query.radius_km)
    elif query.sort == "distance":
        raise SortNeedsPlaceError(field="sort")
    category_ids = None
    if query.category:
        category_ids = catalog.subtree(catalog.get_category(query.category).id)
        where.append(p.category_ids.overlap(category_ids))
    tsq = None
    terms = tsquery_text(query.q) if query.q else None
    if terms:
        tsq = func.to_tsquery(literal_column("'simple'::regconfig"), terms)
        where.append(p.search_vector.op("@@")(tsq))
    if query.min_rating is not None:
        where.append(p.rating_avg >= query.min_rating)
    if query.max_rate is not None:
        where.append(p.rate_min <= query.max_rate)
    if query.available:
        where.append(p.availability == "available")
    if query.verified:
        where.append(p.verification_state == "verified")
    if query.language:
        where.append(p.languages.contains([query.language.lower()]))
    return _Plan(
        where, distance, score_sql(settings, category_ids, tsq) if p is ProProfile else literal(0.0)
    )


def _columns(plan: _Plan, settings: Settings) -> list[Any]:
    p = ProProfile
    return [
        p.id,
        p.display_name,
        p.primary_category_id,
        p.category_ids,
        p.rating_avg,
        p.reviews_count,
        p.verification_state,
        p.availability,
        p.rate_min,
        p.rate_max,
        p.currency,
        p.place_id,
        p.portfolio_count,
        p.rank_base,
        plan.score.label("score"),
        plan.distance.label("distance_km"),
        p.rating_rank.label("rating_key"),
        p.price_key.label("price_key"),
    ]


_KEY_NAMES = {
    "relevance": "score",
    "distance": "distance_km",
    "rating": "rating_key",
    "price": "price_key",
}


def _cursor_key(cursor: str) -> tuple[float, uuid.UUID]:
    value, last_id = decode_cursor(cursor, 2)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidCursorError(field="cursor")
    try:
        return float(value), uuid.UUID(str(last_id))
    except ValueError as exc:
        raise InvalidCursorError(field="cursor") from exc


def sorted_statement(query: SearchQuery, settings: Settings) -> Select[Any]:
    """Rating and price: keyset pages walked in the order of ``ix_pro_profiles_rating`` /
    ``ix_pro_profiles_price`` (stored keys, filtered columns INCLUDEd), so a page reads
    from the cursor on and stops after ``limit + 1`` matches. When a filter is selective
    (a craft and a small radius), the planner may instead take the matches from the
    filters' indexes and sort those few; either plan answers the same rows."""
    p = ProProfile
    plan = _plan(query, settings)
    key, descending = (p.rating_rank, True) if query.sort == "rating" else (p.price_key, False)
    stmt = select(*_columns(plan, settings)).where(and_(*plan.where))
    if query.cursor:
        value, after_id = _cursor_key(query.cursor)
        row, after = tuple_(key, p.id), tuple_(literal(value), literal(after_id))
        stmt = stmt.where(row < after if descending else row > after)
    order = [key.desc(), p.id.desc()] if descending else [key.asc(), p.id.asc()]
    return stmt.order_by(*order).limit(query.limit + 1)


def statement(query: SearchQuery, settings: Settings) -> Select[Any]:
    """Other orders (distance, rating, price) as keyset pages; distance as one SELECT over
    every match (radius-bounded), rating and price by ``sorted_statement``."""
    if query.sort in ("rating", "price"):
        return sorted_statement(query, settings)
    plan = _plan(query, settings)
    inner = select(*_columns(plan, settings)).where(and_(*plan.where)).subquery("hits")
    key_column, descending = {
        "relevance": (inner.c.score, True),
        "distance": (inner.c.distance_km, False),
        "rating": (inner.c.rating_key, True),
        "price": (inner.c.price_key, False),
    }[query.sort]
    outer = select(inner)
    if query.cursor:
        value, last_id = decode_cursor(query.cursor, 2)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InvalidCursorError(field="cursor")
        try:
            after_id = uuid.UUID(str(last_id))
        except ValueError as exc:
            raise InvalidCursorError(field="cursor") from exc
        row = tuple_(key_column, inner.c.id)
        after = tuple_(literal(float(value)), literal(after_id))
        outer = outer.where(row < after if descending else row > after)
    order = (
        [key_column.desc(), inner.c.id.desc()]
        if descending
        else [key_column.asc(), inner.c.id.asc()]
    )
    return outer.order_by(*order).limit(query.limit + 1)


def _hit(r: Any) -> Hit:
    return Hit(
        id=r.id,
        display_name=r.display_name,
        primary_category_id=r.primary_category_id,
        category_ids=list(r.category_ids or []),
        rating_avg=r.rating_avg,
        reviews_count=r.reviews_count,
        verification_state=r.verification_state,
        availability=r.availability,
        rate_min=r.rate_min,
        rate_max=r.rate_max,
        currency=r.currency,
        place_id=r.place_id,
        portfolio_count=r.portfolio_count,
        score=r.score,
        distance_km=r.distance_km,
    )


async def search(
    session: ReadSession, query: SearchQuery, settings: Settings
) -> tuple[list[Hit], str | None]:
    if query.sort == "relevance":
        return await _relevance(session, query, settings)
    if query.sort in _ENTRY_SORTS:
        rel = relevance_sql(query, settings)
        if rel.lists:  # a craft and a radius: the search index's sorted lists
            return await _entry_sorted(session, query, rel)
    rows = (await session.execute(statement(query, settings))).all()
    hits = [_hit(r) for r in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit and hits:
        last = rows[query.limit - 1]
        next_cursor = encode_cursor([getattr(last, _KEY_NAMES[query.sort]), str(last.id)])
    return hits, next_cursor


# ---------------------------------------------------------------- relevance, in plain SQL
#
# The default sort is the hot path: its statements are SQL text joined from constant
# fragments (never from input; every value is bound), because building and compiling
# SQLAlchemy expressions costs more CPU than PostgreSQL spends answering them.
# They express exactly the same filters and score as ``_plan`` / ``score_sql``; the tests
# check both paths against the same market.

_HAVERSINE = (
    "(2 * 6371.0088 * asin(sqrt(least(1.0, power(sin(radians(p.lat - :lat0) / 2), 2)"
    " + :coslat0 * cos(radians(p.lat)) * power(sin(radians(p.lon - :lon0) / 2), 2)))))"
)
# portfolio_fit_sql minus portfolio_size_sql (PORTFOLIO_FIT_ITEMS = 10): the fit replaces
# the category-free portfolio part of rank_base. Read on the re-ranked window only.
_PORTFOLIO_FIT = (
    "((SELECT count(*) FROM unnest(p.portfolio_category_ids) AS c(portfolio_category)"
    " WHERE c.portfolio_category = ANY(CAST(:cats AS uuid[])))::float8 / 10.0"
    " - least(p.portfolio_count, 10) / 10.0)"
)
_RESULT_COLUMNS = (
    "p.id, p.display_name, p.primary_category_id, p.category_ids, p.rating_avg,"
    " p.reviews_count, p.verification_state, p.availability, p.rate_min, p.rate_max,"
    " p.currency, p.place_id, p.portfolio_count, p.rank_base"
)


@dataclass(frozen=True)
class RelevanceSql:
    conditions: str
    params: dict[str, Any]
    score: str
    distance: str
    # For the search index (craft x map cell lists): the conditions other than the craft,
    # and how many lists the query reads (0: the index does not apply).
    entry_conditions: str = ""
    lists: int = 0


MAX_INDEX_LISTS = 240


def geo_cells(lat0: float, lon0: float, dlat: float, dlon: float) -> list[int]:
    """The search cells (see ``models.GEO_CELL_SQL``) a bounding box touches."""
    rows = range(math.floor((lat0 - dlat + 90) * 2), math.floor((lat0 + dlat + 90) * 2) + 1)
    cols = range(math.floor((lon0 - dlon + 180) * 2), math.floor((lon0 + dlon + 180) * 2) + 1)
    return [r * 1000 + c for r in rows for c in cols]


def relevance_sql(query: SearchQuery, settings: Settings) -> RelevanceSql:
    conds = ["p.market = :market"]
    params: dict[str, Any] = {"market": settings.market}
    origin = origin_of(query)
    distance = "NULL::float8"
    cells: list[int] = []
    if origin is not None:
        lat0, lon0 = origin
        params.update(lat0=lat0, lon0=lon0, coslat0=math.cos(math.radians(lat0)))
        distance = _HAVERSINE
        if query.radius_km is not None:
            dlat = query.radius_km / KM_PER_DEGREE
            dlon = query.radius_km / (KM_PER_DEGREE * max(math.cos(math.radians(lat0)), 0.01))
            params.update(
                box_w=lon0 - dlon,
                box_s=lat0 - dlat,
                box_e=lon0 + dlon,
                box_n=lat0 + dlat,
                radius=float(query.radius_km),
            )
            conds.append("point(p.lon, p.lat) <@ box(point(:box_w, :box_s), point(:box_e, :box_n))")
            conds.append(f"{_HAVERSINE} <= :radius")
            cells = geo_cells(lat0, lon0, dlat, dlon)
    skill = "0.0"
    portfolio = "0.0"
    craft_condition = None
    if query.category:
        params["cats"] = catalog.subtree(catalog.get_category(query.category).id)
        craft_condition = "p.category_ids && CAST(:cats AS uuid[])"
        skill = "CASE WHEN p.primary_category_id = ANY(CAST(:cats AS uuid[])) THEN 1.0 ELSE 0.6 END"
        portfolio = _PORTFOLIO_FIT
    text_rank = "0.0"
    terms = tsquery_text(query.q) if query.q else None
    if terms:
        params["tsq"] = terms
        conds.append("p.search_vector @@ to_tsquery('simple', :tsq)")
        text_rank = "ts_rank(p.search_vector, to_tsquery('simple', :tsq), 32)"
    if query.min_rating is not None:
        params["min_rating"] = float(query.min_rating)
        conds.append("p.rating_avg >= :min_rating")
    if query.max_rate is not None:
        params["max_rate"] = int(query.max_rate)
        conds.append("p.rate_min <= :max_rate")
    if query.available:
        conds.append("p.availability = 'available'")
    if query.verified:
        conds.append("p.verification_state = 'verified'")
    if query.language:
        params["language"] = query.language.lower()
        conds.append("p.languages @> ARRAY[CAST(:language AS varchar)]")
    params.update(
        w_skill=settings.rank_skill, w_portfolio=settings.rank_portfolio, w_text=settings.rank_text
    )
    score = (
        f"(p.rank_base + :w_skill * {skill} + :w_portfolio * {portfolio} + :w_text * {text_rank})"
    )
    lists = len(cells) * len(params.get("cats", ()))
    if lists and lists <= MAX_INDEX_LISTS:
        params["cells"] = cells
    else:
        lists = 0
    entry_conditions = " AND ".join(conds)
    if craft_condition:
        conds.append(craft_condition)
    return RelevanceSql(" AND ".join(conds), params, score, distance, entry_conditions, lists)


Edge = tuple[float, uuid.UUID]  # (rank_base, id) of a window's last candidate

_AFTER_EDGE = "(p.rank_base, {id}) < (:start_rank, CAST(:start_id AS uuid))"


def _edge_params(start: Edge | None) -> dict[str, Any]:
    return {} if start is None else {"start_rank": float(start[0]), "start_id": start[1]}


def index_window_sql(
    rel: RelevanceSql, size: int, start: Edge | None = None
) -> tuple[str, dict[str, Any]]:
    """Relevance, step 1 when the query names a craft and a radius: the ``size`` best
    matches (after ``start``) of each (craft, map cell) list of the search index, each read
    in rank order from ``ix_pro_search_entries_lookup`` (index-only) and stopped after
    ``size`` matches. Merged and de-duplicated, they are exactly the ``size`` best matches,
    at a cost bounded by lists x size rather than by the size of the market."""
    after = f" AND {_AFTER_EDGE.format(id='p.pro_id')}" if start else ""
    sql = (
        "SELECT t.id, t.rank_base FROM unnest(CAST(:cats AS uuid[])) AS k(cat)"  # noqa: S608
        " CROSS JOIN unnest(CAST(:cells AS int[])) AS c(cell)"
        " CROSS JOIN LATERAL (SELECT p.pro_id AS id, p.rank_base FROM pro_search_entries AS p"
        f" WHERE p.category_id = k.cat AND p.geo_cell = c.cell AND {rel.entry_conditions}{after}"
        " ORDER BY p.rank_base DESC, p.pro_id DESC LIMIT :size) AS t"
        # a pro with several matching crafts is in several lists, with the same rank
        " GROUP BY t.id, t.rank_base ORDER BY t.rank_base DESC, t.id DESC LIMIT :size"
    )
    return sql, {**rel.params, **_edge_params(start), "size": size}


def window_sql(
    rel: RelevanceSql, size: int, scan: int | None, start: Edge | None = None
) -> tuple[str, dict[str, Any]]:
    """Relevance, step 1: the ``size`` best matches by ``rank_base`` (after ``start``).

    With ``scan`` (first window only), only the ``scan`` best-ranked listed pros are looked
    at, in index order and index-only (``ix_pro_profiles_rank`` carries every filtered
    column, see ``SORT_INDEX_INCLUDE``): a cost that does not depend on the size of the
    market. If fewer than ``size`` matches are among them, the caller asks again without
    ``scan``; the filters' own indexes (text GIN, category GIN, location GiST) then find
    the few matches wherever they are. Later windows walk ``ix_pro_profiles_rank`` from the
    previous window's edge.
    """
    params = {**rel.params, **_edge_params(start), "size": size}
    if scan is None or start is not None:
        after = f" AND {_AFTER_EDGE.format(id='p.id')}" if start else ""
        sql = (
            "SELECT p.id, p.rank_base FROM pro_profiles AS p"  # noqa: S608 - fragments are constants
            f" WHERE p.listed AND {rel.conditions}{after}"
            " ORDER BY p.rank_base DESC, p.id DESC LIMIT :size"
        )
        return sql, params
    params["scan"] = scan
    included = ", ".join(SORT_INDEX_INCLUDE)
    sql = (
        f"SELECT p.id, p.rank_base FROM (SELECT id, rank_base, {included} FROM pro_profiles"  # noqa: S608
        " WHERE listed ORDER BY rank_base DESC, id DESC LIMIT :scan) AS p"
        f" WHERE {rel.conditions} ORDER BY p.rank_base DESC, p.id DESC LIMIT :size"
    )
    return sql, params


def _key(value: Any, ident: Any) -> tuple[float, uuid.UUID]:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InvalidCursorError(field="cursor")
    try:
        return float(value), uuid.UUID(str(ident))
    except ValueError as exc:
        raise InvalidCursorError(field="cursor") from exc


def _position(cursor: str | None) -> tuple[Edge | None, tuple[float, uuid.UUID] | None]:
    """A relevance cursor ``["w", edge rank, edge id, score, id]``: the page starts in the
    window after that edge (none: the first window), after that (score, id) in it (none:
    at the window's beginning)."""
    if not cursor:
        return None, None
    phase, start_rank, start_id, score, last_id = decode_cursor(cursor, 5)
    if phase != "w":
        raise InvalidCursorError(field="cursor")
    start = _key(start_rank, start_id) if start_rank is not None else None
    after = _key(score, last_id) if score is not None else None
    return start, after


def _cursor(start: Edge | None, after: Any | None) -> str:
    edge = [start[0], str(start[1])] if start else [None, None]
    inside = [after.score, str(after.id)] if after is not None else [None, None]
    return encode_cursor(["w", *edge, *inside])


async def _window(
    session: ReadSession, rel: RelevanceSql, settings: Settings, start: Edge | None
) -> list[Any]:
    """The ``search_window`` best candidates by the stored rank, after ``start``."""
    window = settings.search_window
    if rel.lists:
        sql, params = index_window_sql(rel, window, start)
        return list((await session.execute(text(sql), params)).all())
    if start is None:
        sql, params = window_sql(rel, window, settings.search_scan)
        candidates = list((await session.execute(text(sql), params)).all())
        if len(candidates) == window:
            return candidates
        # few matches among the best: the filters' indexes find them wherever they are
    sql, params = window_sql(rel, window, None, start)
    return list((await session.execute(text(sql), params)).all())


async def _rerank(session: ReadSession, rel: RelevanceSql, candidates: list[Any]) -> list[Any]:
    """The candidates with their full score, best first (ties by id)."""
    by_ids = (
        f"SELECT {_RESULT_COLUMNS}, {rel.score} AS score, {rel.distance} AS distance_km"  # noqa: S608
        " FROM pro_profiles AS p WHERE p.id = ANY(CAST(:ids AS uuid[]))"
    )
    rows = (
        await session.execute(text(by_ids), {**rel.params, "ids": [c.id for c in candidates]})
    ).all()
    return sorted(rows, key=lambda r: (r.score, r.id), reverse=True)


async def _relevance(
    session: ReadSession, query: SearchQuery, settings: Settings
) -> tuple[list[Hit], str | None]:
    """Retrieve, then re-rank, window after window. A window is the ``search_window`` best
    matches by the query-independent ``rank_base`` after the previous window's last one;
    it is shown ordered by the full score (adding craft, portfolio fit and text). Every
    page, however deep, follows that one rule, so later pages keep the first page's
    ordering and every match is reachable exactly once; a page may span two windows. The
    cursor names the window (its predecessor's edge) and the last (score, id) shown."""
    rel = relevance_sql(query, settings)
    start, after = _position(query.cursor)
    hits: list[Hit] = []
    while True:
        candidates = await _window(session, rel, settings, start)
        ranked = await _rerank(session, rel, candidates) if candidates else []
        if after is not None:
            ranked = [r for r in ranked if (r.score, r.id) < after]
        need = query.limit - len(hits)
        hits += [_hit(r) for r in ranked[:need]]
        if len(ranked) > need:  # this window goes on
            return hits, _cursor(start, ranked[need - 1])
        if len(candidates) < settings.search_window:  # the last window
            return hits, None
        edge = candidates[-1]
        start, after = (edge.rank_base, edge.id), None
        if len(hits) == query.limit:
            return hits, _cursor(start, None)


# (key column, direction, comparison after the cursor, SQL type of the cursor's key)
_ENTRY_SORTS = {
    "rating": ("rating_rank", "DESC", "<", "float8"),
    "price": ("price_key", "ASC", ">", "int"),
}


def entry_sorted_sql(
    rel: RelevanceSql, sort: str, size: int, after: tuple[float, uuid.UUID] | None
) -> tuple[str, dict[str, Any]]:
    """Rating or price within a craft and a radius: the first ``size`` matches after the
    cursor of each (craft, map cell) list of the search index, each read in the key's
    order from ``ix_pro_search_entries_rating`` / ``_price`` and stopped after ``size``;
    merged, they are exactly the ``size`` first matches after the cursor, at a cost
    bounded by lists x size however dense the area is."""
    key, direction, compare, key_type = _ENTRY_SORTS[sort]
    params: dict[str, Any] = {**rel.params, "size": size}
    after_sql = ""
    if after is not None:
        params.update(
            after_key=after[0] if key_type == "float8" else int(after[0]), after_id=after[1]
        )
        after_sql = (
            f" AND (p.{key}, p.pro_id) {compare}"
            f" (CAST(:after_key AS {key_type}), CAST(:after_id AS uuid))"
        )
    sql = (
        "SELECT t.id, t.sort_key FROM unnest(CAST(:cats AS uuid[])) AS k(cat)"  # noqa: S608
        " CROSS JOIN unnest(CAST(:cells AS int[])) AS c(cell)"
        f" CROSS JOIN LATERAL (SELECT p.pro_id AS id, p.{key} AS sort_key"
        " FROM pro_search_entries AS p"
        f" WHERE p.category_id = k.cat AND p.geo_cell = c.cell AND {rel.entry_conditions}"
        f"{after_sql} ORDER BY p.{key} {direction}, p.pro_id {direction} LIMIT :size) AS t"
        f" GROUP BY t.id, t.sort_key ORDER BY t.sort_key {direction}, t.id {direction}"
        " LIMIT :size"
    )
    return sql, params


async def _entry_sorted(
    session: ReadSession, query: SearchQuery, rel: RelevanceSql
) -> tuple[list[Hit], str | None]:
    after = _cursor_key(query.cursor) if query.cursor else None
    sql, params = entry_sorted_sql(rel, query.sort, query.limit + 1, after)
    ids = [row.id for row in (await session.execute(text(sql), params)).all()]
    if not ids:
        return [], None
    by_ids = (
        f"SELECT {_RESULT_COLUMNS}, {rel.score} AS score, {rel.distance} AS distance_km,"  # noqa: S608
        " p.rating_rank AS rating_key, p.price_key"
        " FROM pro_profiles AS p WHERE p.id = ANY(CAST(:ids AS uuid[]))"
    )
    rows = (await session.execute(text(by_ids), {**rel.params, "ids": ids})).all()
    if query.sort == "rating":
        rows = sorted(rows, key=lambda r: (r.rating_key, r.id), reverse=True)
    else:
        rows = sorted(rows, key=lambda r: (r.price_key, r.id))
    hits = [_hit(r) for r in rows[: query.limit]]
    if len(rows) > query.limit and hits:
        last = rows[query.limit - 1]
        return hits, encode_cursor([getattr(last, _KEY_NAMES[query.sort]), str(last.id)])
    return hits, None


async def suggest(
    session: ReadSession, q: str, language: str, limit: int = 8
) -> list[dict[str, Any]]:
    """Autocomplete over categories (any language), pro names and places."""
    term = fold(q.strip())
    if not term:
        return []
    out: list[dict[str, Any]] = []
    for cat in catalog.list_categories():
        words = " ".join(fold(n) for n in cat.names.values()).split()
        if any(w.startswith(term) for w in words) or fold(cat.slug).startswith(term):
            out.append(
                {
                    "type": "category",
                    "id": cat.id,
                    "label": catalog.category_name(cat, language),
                    "detail": cat.slug,
                }
            )
        if len(out) >= limit // 2:
            break
    p = ProProfile
    pros = (
        await session.execute(
            select(p.id, p.display_name, p.place_id)
            .where(p.listed, p.name_key.startswith(term, autoescape=True))
            .order_by((p.verification_state == "verified").desc(), p.reviews_count.desc())
            .limit(limit - len(out))
        )
    ).all()
    out.extend(
        {
            "type": "pro",
            "id": r.id,
            "label": r.display_name,
            "detail": catalog.place_name(r.place_id),
        }
        for r in pros
    )
    for place in await catalog.search_places(session, q, limit=3):
        out.append({"type": "place", "id": place.id, "label": place.name, "detail": place.county})
    return out[: limit + 3]

"""Shapes of the jobs API (SPEC 5.1 field names). Amounts are integer minor units."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mesteri.kit.text import Clean
from mesteri.milestones.schemas import TitleAndDod

# Budgets are stored as 32-bit integers: 10 million in major units is far beyond any job.
MAX_BUDGET = 1_000_000_000
BudgetType = Literal["fixed", "hourly"]


class PlanItem(TitleAndDod):
    """One milestone the client expects: its share of the price and Definition of Done."""

    model_config = ConfigDict(extra="forbid")

    title: Clean = Field(min_length=1, max_length=140)
    share: int = Field(ge=1, le=100, description="percent of the price")
    dod: list[Clean] = Field(default_factory=list, max_length=12)


class _JobFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Clean = Field(min_length=3, max_length=140)
    description: Clean = Field(min_length=10, max_length=5000)
    category_id: uuid.UUID
    place_id: uuid.UUID
    address: Clean | None = Field(default=None, max_length=300)
    budget_type: BudgetType = "fixed"
    budget_min: int = Field(ge=0, le=MAX_BUDGET)
    budget_max: int = Field(ge=0, le=MAX_BUDGET)
    currency: str = Field(pattern="^[A-Z]{3}$")
    start_date: date | None = None
    end_date: date | None = None
    template_id: str | None = Field(default=None, max_length=40)
    milestone_plan: list[PlanItem] | None = Field(default=None, max_length=20)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)

    @field_validator("title", "description")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class JobIn(_JobFields):
    """``POST /jobs``: saved as a draft unless ``publish`` is true."""

    publish: bool = False


class JobPatch(BaseModel):
    """``PATCH /jobs/{id}``: only the fields sent change; ``address: null`` removes it."""

    model_config = ConfigDict(extra="forbid")

    title: Clean | None = Field(default=None, min_length=3, max_length=140)
    description: Clean | None = Field(default=None, min_length=10, max_length=5000)
    category_id: uuid.UUID | None = None
    place_id: uuid.UUID | None = None
    address: Clean | None = Field(default=None, max_length=300)
    budget_type: BudgetType | None = None
    budget_min: int | None = Field(default=None, ge=0, le=MAX_BUDGET)
    budget_max: int | None = Field(default=None, ge=0, le=MAX_BUDGET)
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    start_date: date | None = None
    end_date: date | None = None
    milestone_plan: list[PlanItem] | None = Field(default=None, max_length=20)
    attachment_ids: list[uuid.UUID] | None = Field(default=None, max_length=10)


class InvitesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pro_ids: list[uuid.UUID] = Field(min_length=1, max_length=20)
    message: Clean = Field(default="", max_length=2000)


class CategoryRef(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class PlaceRef(BaseModel):
    """Where the job is, as a pro may see it: the city or area, never the address."""

    id: uuid.UUID
    name: str
    county: str


class ClientRef(BaseModel):
    display_name: str  # first name + initial ("Ana P.")


class JobOut(BaseModel):
    id: uuid.UUID
    state: str
    title: str
    description: str
    category_id: uuid.UUID
    category: CategoryRef
    place: PlaceRef
    market: str
    budget_type: str
    budget_min: int
    budget_max: int
    currency: str
    start_date: date | None
    end_date: date | None
    template_id: str | None
    milestone_plan: list[dict[str, Any]]
    attachment_ids: list[uuid.UUID]
    proposals_count: int
    client: ClientRef
    published_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # What the caller may do now (lifecycle transitions plus ``edit``, ``invite``).
    actions: list[str]
    is_owner: bool
    # The caller's own view: only the owner sees these.
    address: str | None = None
    hired_pro_id: uuid.UUID | None = None
    invited: bool | None = None  # for a pro: whether they were invited


class JobListItem(BaseModel):
    id: uuid.UUID
    state: str
    title: str
    category_id: uuid.UUID
    place: PlaceRef
    budget_type: str
    budget_min: int
    budget_max: int
    currency: str
    proposals_count: int
    published_at: datetime | None
    expires_at: datetime | None
    created_at: datetime


class InviteOut(BaseModel):
    pro_id: uuid.UUID
    display_name: str
    message: str
    created_at: datetime


class LeadOut(BaseModel):
    """A job on a pro's lead board: never the client's e-mail, phone, address or surname."""

    id: uuid.UUID
    title: str
    category_id: uuid.UUID
    category_name: str
    place: PlaceRef
    distance_km: float | None
    budget_type: str
    budget_min: int
    budget_max: int
    currency: str
    published_at: datetime | None
    client: ClientRef
    invited: bool
    proposed: bool
    proposals_count: int
    score: float


class ContactOut(BaseModel):
    """The client's contact details (SPEC 4.4): only for the client and the hired pro."""

    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    address: str | None


class ContactRevealOut(BaseModel):
    id: uuid.UUID
    viewer_id: uuid.UUID
    viewer_name: str
    viewer_role: str
    fields: list[str]
    at: datetime


class TemplateMilestoneOut(BaseModel):
    title: str
    share: int
    dod: list[str]


class TemplateOut(BaseModel):
    id: str
    title: str
    description: str
    category_id: uuid.UUID
    category_slug: str
    category_name: str
    budget_type: str
    budget_min: int | None
    budget_max: int | None
    currency: str
    milestones: list[TemplateMilestoneOut]

"""Declarative state machines.

A lifecycle is declared once as a table of transitions (name, from-states, to-state,
allowed actors, optional guard). One generic runner applies a transition to a row that
the caller has locked, records it in ``state_transitions`` and returns what happened.
The API, the pages (which actions to offer), timers and tests all read the same table.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit import clock
from mesteri.kit.db import Base
from mesteri.kit.errors import ConflictError, PermissionDeniedError
from mesteri.kit.ids import new_id


class Actor(enum.StrEnum):
    CLIENT = "client"
    PRO = "pro"
    USER = "user"
    OPERATOR = "operator"
    SYSTEM = "system"


S = TypeVar("S", bound=enum.StrEnum)


class HasState(Protocol):
    id: uuid.UUID
    state: Any


@dataclass(frozen=True)
class Transition(Generic[S]):
    name: str
    sources: frozenset[S]
    target: S
    actors: frozenset[Actor]
    guard: Callable[[Any], bool] | None = None
    description: str = ""


class TransitionNotAllowedError(ConflictError):
    code = "transition_not_allowed"
    message = "“{transition}” is not possible while this is {state}."


class ActorNotAllowedError(PermissionDeniedError):
    code = "transition_forbidden"
    message = "You cannot do “{transition}” here."


@dataclass
class StateMachine(Generic[S]):
    """A named lifecycle over the enum ``S``."""

    entity: str
    states: type[S]
    initial: S
    transitions: list[Transition[S]] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = [t.name for t in self.transitions]
        duplicates = {n for n in names if names.count(n) > 1}
        # One name may leave several states, but each (name, source) pair is unique.
        for name in duplicates:
            sources = [s for t in self.transitions if t.name == name for s in t.sources]
            if len(sources) != len(set(sources)):
                raise ValueError(f"{self.entity}: transition {name!r} is ambiguous")

    def find(self, name: str, state: S) -> Transition[S] | None:
        for t in self.transitions:
            if t.name == name and state in t.sources:
                return t
        return None

    def available(self, state: S, actors: Iterable[Actor], obj: Any = None) -> list[str]:
        """Names of the transitions these actors could apply now (for buttons and ``actions``)."""
        roles = set(actors)
        return [
            t.name
            for t in self.transitions
            if state in t.sources
            and roles & t.actors
            and (t.guard is None or obj is None or t.guard(obj))
        ]

    def terminal_states(self) -> set[S]:
        leaving = {s for t in self.transitions for s in t.sources}
        return {s for s in self.states if s not in leaving}

    async def apply(
        self,
        session: AsyncSession,
        obj: HasState,
        name: str,
        *,
        actor: Actor,
        actor_id: uuid.UUID | None = None,
        data: dict[str, Any] | None = None,
    ) -> Transition[S]:
        """Move ``obj`` (already locked by the caller) along ``name`` and record it."""
        state = self.states(obj.state)
        transition = self.find(name, state)
        if transition is None or (transition.guard is not None and not transition.guard(obj)):
            raise TransitionNotAllowedError(transition=name, state=str(state))
        if actor not in transition.actors:
            raise ActorNotAllowedError(transition=name)
        obj.state = transition.target
        session.add(
            StateTransitionRecord(
                entity=self.entity,
                entity_id=obj.id,
                transition=name,
                from_state=str(state),
                to_state=str(transition.target),
                actor=str(actor),
                actor_id=actor_id,
                at=clock.now(),
                data=data or {},
            )
        )
        return transition


class StateTransitionRecord(Base):
    """History of every transition of every declared lifecycle."""

    __tablename__ = "state_transitions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    entity: Mapped[str] = mapped_column(String(40), index=True)
    entity_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    transition: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)

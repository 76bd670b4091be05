"""Declarative state machines.

A lifecycle is declared once as a table of transitions (name, from-states, to-state,
allowed actors, optional guard) plus the timers of its states. One generic runner
applies a transition to a row that the caller has locked, records it in
``state_transitions`` and schedules the timers of the state entered. A timer is a
persisted job (the outbox) that applies its transition as the system later, but only if
the entity is still in the state that started it. The API, the pages (which actions to
offer), timers and tests all read the same table.

``move`` is the same runner for a hot path that writes the row itself in one statement
with the rest of its writes (a hold's release): it checks, announces and returns the
history row and timer jobs instead of adding them to the session.

Every applied transition is announced as a ``Transitioned`` event (``kit.events``) in the
same transaction, so other modules can follow a lifecycle (the job room posts "the
milestone was funded") without the owning module knowing them.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit import clock, events, jobs
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


class ShowsState(Protocol):
    """Read-only ``HasState``: what ``move`` and timers read (a row, a frozen dataclass)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def state(self) -> Any: ...


@dataclass(frozen=True)
class Timer:
    """While an entity stays in a state, apply ``transition`` after ``after``, or at the
    time ``at`` reads from the entity when the period is configurable (a hold period)."""

    transition: str
    after: timedelta = timedelta(0)
    at: Callable[[Any], datetime] | None = None

    def due(self, obj: Any) -> datetime:
        return self.at(obj) if self.at is not None else clock.now() + self.after


@dataclass(frozen=True)
class Transition(Generic[S]):
    name: str
    sources: frozenset[S]
    target: S
    actors: frozenset[Actor]
    guard: Callable[[Any], bool] | None = None
    description: str = ""
    # Runs inside the same transaction after the state changed (ledger postings, events);
    # timers run it too, so a timed transition has the same effects as a requested one.
    effect: Callable[[Any, Any], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Transitioned:
    """An entity of a declared lifecycle moved along ``transition`` (published before the
    transition's effect runs, so an effect's own transitions are announced after it)."""

    entity: str
    entity_id: uuid.UUID
    transition: str
    from_state: str
    to_state: str
    actor: str
    actor_id: uuid.UUID | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Move(Generic[S]):
    """A checked and announced transition whose rows the caller writes (``StateMachine.move``)."""

    transition: Transition[S]
    history: dict[str, Any]  # the state_transitions row
    jobs: list[dict[str, Any]]  # outbox rows of the entered state's timers


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
    timers: dict[S, list[Timer]] = field(default_factory=dict)
    # The mapped class, so timers can load and lock a row by its primary key.
    model: type[Any] | None = None

    def __post_init__(self) -> None:
        if self.timers and self.model is None:
            raise ValueError(f"{self.entity}: timers need the model to load rows")
        for state, timers in self.timers.items():
            for timer in timers:
                if self.find(timer.transition, state) is None:
                    raise ValueError(
                        f"{self.entity}: timer {timer.transition!r} cannot leave {state}"
                    )
                if Actor.SYSTEM not in self.find(timer.transition, state).actors:  # type: ignore[union-attr]
                    raise ValueError(f"{self.entity}: {timer.transition!r} must allow the system")
        if self.model is not None:
            _MACHINES[self.entity] = self
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
        state, transition = self._checked(obj, name, actor)
        obj.state = transition.target
        # Recorded before the effect, so a transition an effect chains on (accept → release)
        # comes after this one in the history.
        history = self._history(obj.id, state, transition, actor, actor_id, data)
        session.add(StateTransitionRecord(**history))
        await events.publish(session, self._announcement(history))
        if transition.effect is not None:
            await transition.effect(session, obj)
        await self._schedule_timers(session, obj, transition.target)
        return transition

    async def move(
        self,
        session: AsyncSession,
        obj: ShowsState,
        name: str,
        *,
        actor: Actor,
        actor_id: uuid.UUID | None = None,
        data: dict[str, Any] | None = None,
    ) -> Move[S]:
        """``apply`` for a caller that writes the change itself, in one statement with the
        rest of its writes (a hold's release): the same checks and ``Transitioned`` event,
        but ``obj`` is left alone and the history row and the entered state's timer jobs
        are returned for the caller to write. Transitions with an effect need ``apply``."""
        state, transition = self._checked(obj, name, actor)
        if transition.effect is not None:
            raise ValueError(f"{self.entity}: {name!r} has an effect; use apply()")
        history = self._history(obj.id, state, transition, actor, actor_id, data)
        await events.publish(session, self._announcement(history))
        return Move(transition, history, self.timer_jobs(obj, transition.target))

    def _checked(self, obj: ShowsState, name: str, actor: Actor) -> tuple[S, Transition[S]]:
        state = self.states(obj.state)
        transition = self.find(name, state)
        if transition is None or (transition.guard is not None and not transition.guard(obj)):
            raise TransitionNotAllowedError(transition=name, state=str(state))
        if actor not in transition.actors:
            raise ActorNotAllowedError(transition=name)
        return state, transition

    def _history(
        self,
        entity_id: uuid.UUID,
        state: S,
        transition: Transition[S],
        actor: Actor,
        actor_id: uuid.UUID | None,
        data: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The ``state_transitions`` row of one applied transition."""
        return {
            "id": new_id(),
            "entity": self.entity,
            "entity_id": entity_id,
            "transition": transition.name,
            "from_state": str(state),
            "to_state": str(transition.target),
            "actor": str(actor),
            "actor_id": actor_id,
            "at": clock.now(),
            "data": data or {},
        }

    @staticmethod
    def _announcement(history: dict[str, Any]) -> Transitioned:
        return Transitioned(
            history["entity"],
            history["entity_id"],
            history["transition"],
            history["from_state"],
            history["to_state"],
            history["actor"],
            history["actor_id"],
            history["data"],
        )

    def allows(self, obj: HasState, name: str) -> bool:
        """Whether ``name`` may leave the entity's current state now (its guard included)."""
        transition = self.find(name, self.states(obj.state))
        return transition is not None and (transition.guard is None or transition.guard(obj))

    async def start(self, session: AsyncSession, obj: HasState) -> None:
        """Schedule the timers of a newly created entity's initial state."""
        await self._schedule_timers(session, obj, self.states(obj.state))

    async def _schedule_timers(self, session: AsyncSession, obj: HasState, state: S) -> None:
        for row in self.timer_jobs(obj, state):
            session.add(jobs.OutboxEntry(**row))

    def timer_jobs(self, obj: ShowsState, state: S) -> list[dict[str, Any]]:
        """The outbox rows of the timers ``obj`` starts by entering ``state``."""
        return [
            jobs.outbox_row(
                fire_timer,
                run_at=timer.due(obj),
                entity=self.entity,
                entity_id=str(obj.id),
                transition=timer.transition,
                expected_state=str(state),
            )
            for timer in self.timers.get(state, ())
        ]


_MACHINES: dict[str, StateMachine[Any]] = {}


@jobs.task("statemachine.fire_timer")
async def fire_timer(entity: str, entity_id: str, transition: str, expected_state: str) -> None:
    """Apply a timer's transition, unless the entity has moved on meanwhile (idempotent)."""
    machine = _MACHINES[entity]
    assert machine.model is not None
    async with jobs.job_session() as session:
        obj = await session.get(machine.model, uuid.UUID(entity_id), with_for_update=True)
        # The entity moved on, or came back to the state later and its own timer is still
        # ahead (the guard compares the time with the entity's deadline).
        if obj is None or str(obj.state) != expected_state or not machine.allows(obj, transition):
            return
        await machine.apply(session, obj, transition, actor=Actor.SYSTEM, data={"timer": True})


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

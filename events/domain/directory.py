"""The registered actors as the rules need them: who exists, of what kind, under which names,
holding which roles when. Built by folding actor events; pure, so ``decide`` can take it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from events.domain.amendments import apply_changes, is_amendment
from events.domain.catalogue import (
    ActorRegistered,
    ActorsMerged,
    AliasAdded,
    EventCorrected,
    EventRetracted,
    RoleAssigned,
)
from events.domain.errors import AmbiguousActorError, RuleViolationError, UnknownActorError
from events.domain.names import ActorRecord, Match, NameIndex, RoleSpan

if TYPE_CHECKING:
    from datetime import date

    from events.domain.catalogue import DomainEvent

__all__ = ("ORGANISATION_KINDS", "Directory")

ORGANISATION_KINDS = frozenset({"organisation", "state", "institution"})


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


class Directory:
    """Registered actors, resolvable by id or by any name a source used."""

    def __init__(self) -> None:
        self._index = NameIndex()
        self._merged_into: dict[str, str] = {}
        self._applied: set[str] = set()
        self._facts: dict[str, dict[str, DomainEvent]] = {}
        self._owner: dict[str, str] = {}
        self._retracted: set[str] = set()

    def __len__(self) -> int:
        return len(self._index)

    def apply(self, event: DomainEvent, event_id: str | None = None) -> None:
        """Fold one actor event in (other events are ignored). With ``event_id``, an event
        already folded in is skipped, so the same event may arrive twice, and a later
        correction or retraction of it is honoured: the actor is rebuilt from its current
        facts."""
        if event_id is not None:
            if event_id in self._applied:
                return
            self._applied.add(event_id)
        if is_amendment(event):
            self._amend(event)
            return
        actor_id = getattr(event, "actor_id", None)
        if event_id is not None and actor_id is not None:
            self._facts.setdefault(actor_id, {})[event_id] = event
            self._owner[event_id] = actor_id
        self._fold(event)

    def _amend(self, event: DomainEvent) -> None:
        target = getattr(event, "target_event_id", "")
        owner = self._owner.get(target)
        if owner is None:
            return
        if isinstance(event, EventRetracted):
            self._retracted.add(target)
        elif isinstance(event, EventCorrected):
            facts = self._facts[owner]
            facts[target] = apply_changes(facts[target], event.changes)
        self._rebuild(owner)

    def _rebuild(self, actor_id: str) -> None:
        facts = self._facts.get(actor_id, {})
        # Actors this one absorbed come back first, so that a retracted merge frees them.
        for fact in facts.values():
            if isinstance(fact, ActorsMerged):
                self._merged_into.pop(fact.merged_actor_id, None)
                self._rebuild(fact.merged_actor_id)
        self._index.remove(actor_id)
        for event_id, fact in facts.items():
            if event_id not in self._retracted:
                self._fold(fact)

    def _fold(self, event: DomainEvent) -> None:
        if isinstance(event, ActorRegistered):
            self._index.add(
                ActorRecord(
                    actor_id=event.actor_id,
                    canonical_name=event.canonical_name,
                    kind=event.kind,
                    aliases=tuple(a.text for a in event.aliases),
                )
            )
            return
        record = self._index.get(getattr(event, "actor_id", ""))
        if record is None:
            return
        if isinstance(event, AliasAdded):
            if event.alias.text not in record.aliases:
                self._index.add(
                    msgspec.structs.replace(record, aliases=(*record.aliases, event.alias.text))
                )
        elif isinstance(event, RoleAssigned):
            span = RoleSpan(
                organisation_id=event.organisation_id,
                title=event.title_as_reported,
                start=event.valid_time.lower,
                end=event.valid_time.upper,
            )
            organisations = record.organisations
            if event.organisation_id not in organisations:
                organisations = (*organisations, event.organisation_id)
            self._index.add(
                msgspec.structs.replace(
                    record, roles=(*record.roles, span), organisations=organisations
                )
            )
        elif isinstance(event, ActorsMerged):
            merged = self._index.get(event.merged_actor_id)
            if merged is not None:
                names = (merged.canonical_name, *merged.aliases)
                self._index.add(
                    msgspec.structs.replace(
                        record,
                        aliases=(*record.aliases, *(n for n in names if n not in record.aliases)),
                        roles=(*record.roles, *merged.roles),
                    )
                )
                self._index.remove(event.merged_actor_id)
            self._merged_into[event.merged_actor_id] = event.actor_id

    def get(self, actor_id: str) -> ActorRecord | None:
        """The actor registered under ``actor_id`` (following merges), if any."""
        return self._index.get(self._merged_into.get(actor_id, actor_id))

    def candidates(self, name: str, *, limit: int = 5) -> list[Match]:
        """The registered actors ``name`` may refer to, best first (see ``NameIndex``);
        an actor merged into another is not among them."""
        matches = self._index.candidates(name, limit=limit)
        return [m for m in matches if m.actor_id not in self._merged_into]

    def spelled(self, name: str) -> list[Match]:
        """Every actor ``name`` spells, in any transliteration (see ``NameIndex.spelled``):
        the candidates a command naming it chooses among."""
        return [m for m in self._index.spelled(name) if m.actor_id not in self._merged_into]

    def as_reported(self, ref: str) -> str | None:
        """``ref`` as a source's spelling to keep beside the id it resolves to: itself when it
        is a name, ``None`` when it is an actor id."""
        return None if self.get(ref) is not None else ref

    def memberships(self, actor_id: str, on: date | None = None) -> list[RoleSpan]:
        """The roles ``actor_id`` held (on the day ``on``, when given): which organisation a
        person represented at the time. An open end of a role counts as still valid."""
        record = self.get(actor_id)
        if record is None:
            return []
        return [role for role in record.roles if role.active_on(on)]

    def kind_of(self, actor_id: str) -> str | None:
        """The actor's kind, or ``None`` when it is not registered."""
        record = self.get(actor_id)
        return record.kind if record else None

    def resolve(
        self,
        ref: str,
        *,
        field: str,
        organisation: str | None = None,
        on: date | None = None,
        kinds: frozenset[str] | None = None,
    ) -> str:
        """The id of the actor ``ref`` names (an id or a name).

        Raises:
            UnknownActorError: nothing matches; carries the closest names.
            AmbiguousActorError: several actors match equally well.
            RuleViolationError: the actor is not of one of ``kinds``.
        """
        direct = self.get(ref)
        if direct is not None:
            actor_id = direct.actor_id
        else:
            org = None
            if organisation:
                known = self.get(organisation)
                org = (
                    known.actor_id
                    if known is not None
                    else self.resolve(organisation, field=field, kinds=ORGANISATION_KINDS)
                )
            kind = next(iter(kinds)) if kinds is not None and len(kinds) == 1 else None
            try:
                actor_id = self._index.resolve(
                    ref, organisation=org, on=on, kind=kind, field=field
                ).actor_id
            except UnknownActorError as unknown:
                if kind is None:
                    raise
                # The name may belong to an actor of another kind: say that (below) rather
                # than call a registered actor unknown.
                try:
                    actor_id = self._index.resolve(ref, organisation=org, on=on).actor_id
                except (UnknownActorError, AmbiguousActorError):
                    raise unknown from None
            actor_id = self._merged_into.get(actor_id, actor_id)
        record = self._index.get(actor_id)
        if record is None:  # pragma: no cover (the index only returns registered actors)
            raise UnknownActorError(ref, [], field=field)
        if kinds is not None and record.kind not in kinds:
            wanted = " or ".join(sorted(kinds))
            raise RuleViolationError(
                f"{record.canonical_name!r} ({actor_id}) is {_article(record.kind)} "
                f"{record.kind}, not {_article(wanted)} {wanted}",
                field=field,
            )
        return actor_id

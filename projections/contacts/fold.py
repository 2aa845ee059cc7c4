"""The pure fold: an interaction's or an actor's view from its stream's facts, in feed order.

The same functions give an item's view as of any cursor: feed them the facts recorded up to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from events.domain.amendments import Record, Stored, evolve_record
from events.domain.catalogue import (
    INTERACTION_EVENTS,
    ActorRegistered,
    ActorsMerged,
    AliasAdded,
    RoleAssigned,
    SourceAdded,
)
from events.domain.kinds import INTERACTION_KINDS
from projections.contacts.views import ActorView, InteractionView, RoleView

if TYPE_CHECKING:
    from collections.abc import Iterable

    from events.domain.vocabulary import Source

__all__ = ("actor_from", "interaction_from")

_KINDS: Final = {kind.event: kind for kind in INTERACTION_KINDS}


def _fold(facts: Iterable[Stored]) -> tuple[Record, list[SourceAdded]]:
    record = Record()
    added: list[SourceAdded] = []
    for stored in facts:
        record = evolve_record(record, stored)
        if isinstance(stored.event, SourceAdded):
            added.append(stored.event)
    return record, added


def _live(record: Record) -> list[tuple[str, Any]]:
    return [(i, fact) for i, fact in record.facts.items() if i not in record.retracted]


def _corroborations(added: list[SourceAdded], live_ids: set[str]) -> tuple[Source, ...]:
    return tuple(a.source for a in added if a.target_event_id in live_ids)


def interaction_from(facts: Iterable[Stored]) -> InteractionView | None:
    """An interaction's current view from its stream's events, in feed order.

    Args:
        facts: Every event of the interaction's stream (amendments included).

    Returns:
        The view (corrections applied, corroborating sources appended), or ``None`` if the
        interaction itself was retracted or never recorded.
    """
    # Most interactions are one event and nothing else: folding that into a record gives the
    # event itself, at several times the cost of building the view.
    if isinstance(facts, list | tuple) and len(facts) == 1:
        only = facts[0].event
        if isinstance(only, INTERACTION_EVENTS):
            return _interaction_view(only, only.sources)
    record, added = _fold(facts)
    live = _live(record)
    found = next(((i, f) for i, f in live if isinstance(f, INTERACTION_EVENTS)), None)
    if found is None:
        return None
    event_id, event = found
    return _interaction_view(event, (*event.sources, *_corroborations(added, {event_id})))


def _interaction_view(event: Any, sources: tuple[Source, ...]) -> InteractionView:
    kind = _KINDS[type(event)]
    return InteractionView(
        interaction_id=event.interaction_id,
        kind=kind.name,
        participants=event.participants,
        valid_time=event.valid_time,
        place=event.place,
        topics=event.topics,
        modality=event.modality,
        attributed_to=event.attributed_to,
        coding=event.coding,
        sources=sources,
        meeting_id=event.meeting_id,
        **{name: getattr(event, name) for name in kind.fields},
    )


def actor_from(facts: Iterable[Stored]) -> ActorView | None:
    """An actor's current view from its stream's events, in feed order.

    Args:
        facts: Every event of the actor's stream (amendments included).

    Returns:
        The view (retracted aliases, roles and merges left out, corrections applied), or
        ``None`` if the registration was retracted or never recorded.
    """
    record, added = _fold(facts)
    live = _live(record)
    registered = next((f for _i, f in live if isinstance(f, ActorRegistered)), None)
    if registered is None:
        return None
    aliases = [a.text for a in registered.aliases]
    roles: list[RoleView] = []
    merged: list[str] = []
    for _event_id, fact in live:
        if isinstance(fact, AliasAdded) and fact.alias.text not in aliases:
            aliases.append(fact.alias.text)
        elif isinstance(fact, RoleAssigned):
            roles.append(
                RoleView(
                    organisation_id=fact.organisation_id,
                    title=fact.title_as_reported,
                    role_code=fact.role_code,
                    valid_time=fact.valid_time,
                )
            )
        elif isinstance(fact, ActorsMerged) and fact.merged_actor_id not in merged:
            merged.append(fact.merged_actor_id)
    return ActorView(
        actor_id=registered.actor_id,
        kind=registered.kind,
        canonical_name=registered.canonical_name,
        aliases=tuple(aliases),
        cameo_code=registered.cameo_code,
        wikidata_qid=registered.wikidata_qid,
        country=registered.country,
        roles=tuple(roles),
        merged=tuple(merged),
        sources=(*registered.sources, *_corroborations(added, {i for i, _f in live})),
    )

"""Contact history, contact graph and actor directory: who met, called or visited whom, when.

One projection keeps four tables (in the ``projections`` schema, names ending in the version):

``interactions_v1``
    One row per interaction stream: its current view (corrections applied, corroborating
    sources added), the day bounds of its valid time, and flags the queries filter on
    (retracted, negated, aggregate).
``interaction_actors_v1``
    Who took part in each live interaction, in which role, under which name.
``actors_v1``
    One row per actor stream: its current view (names, aliases, roles, merges).
``actor_roles_v1``
    The roles each actor currently holds on record, with day bounds: how a faction's history
    finds the persons who represented it at the time.

Applying a batch is set-based: the batch is decoded and grouped by item (an amendment is
recorded in the stream of the fact it amends, so the stream is the item); an item the batch
does not start gets its earlier facts from the log itself, in one query for the whole batch;
each affected item's view is recomputed once by a pure function (``interaction_from``,
``actor_from``), and everything is written back with one statement per table: COPY for the
interactions the batch begins and for participant rows, upserts over arrays for the rest.
All of that but the writes reads nothing of this projection's tables (``prepare``), so the
runner computes the next batch while this one is written. Storing only views keeps the writes
small: facts are never copied out of the log. The same pure functions give an item's view as
of any cursor: feed them the facts recorded up to it. An interaction that is one event and
nothing else (most are) skips them: its view is the stored JSON with its kind added
(``projections.single_fact``, which says when that holds).

Contact graph rule for open-ended valid times: an interaction with an open bound ("before
February 2024") counts as *possible* in every year from its known bound back (or forward) to
the earliest (latest) year of any live interaction of either actor of the pair; an interaction
with no bound at all counts only within that range too, and nowhere if the pair has no dated
interaction. So an open interval never invents years the record says nothing about.

The package's files are its seams: ``schema`` (the tables and every statement), ``views`` (what
the queries return), ``fold`` (the pure view functions), ``writer`` (the projection, which turns
a batch into rows) and ``queries``.
"""

from __future__ import annotations

from projections.contacts.fold import actor_from, interaction_from
from projections.contacts.queries import contact_graph, contact_history, get_actor, search_actors
from projections.contacts.views import (
    ActorView,
    Counterpart,
    GraphEdge,
    HistoryEntry,
    InteractionView,
    RoleView,
    WindowMode,
)
from projections.contacts.writer import ContactsProjection

__all__ = (
    "ActorView",
    "ContactsProjection",
    "Counterpart",
    "GraphEdge",
    "HistoryEntry",
    "InteractionView",
    "RoleView",
    "WindowMode",
    "actor_from",
    "contact_graph",
    "contact_history",
    "get_actor",
    "interaction_from",
    "search_actors",
)

"""Contact history, contact graph and actor directory: who met, called or visited whom, when.

One projection keeps four tables (in the ``projections`` schema, names ending in the version),
each system-versioned (``projections.system_time``): a row is one version of its item, current
over the feed-cursor range ``[sys_from, sys_to)``, and each event of an item opens a version.

``interactions_v1``
    One row per interaction version: its view (corrections applied, corroborating sources
    added), the day bounds of its valid time, and flags (retracted, negated, aggregate).
``interaction_actors_v1``
    Who took part in each interaction version, in which role, under which name, with what a
    contact history orders and filters on (none for a retracted version).
``actors_v1``
    One row per actor version: its view (names, aliases, roles, merges).
``actor_roles_v1``
    The roles each actor version holds on record, with day bounds: how a faction's history
    finds the persons who represented it at the time.

So every view is bitemporal: valid time (EDTF, when an interaction happened) is in the rows,
system time (when the feed said so) in their ranges, and a view "as of" a cursor reads the
rows current at it through the same indexes as the live view. Storing only views keeps the
writes small: facts are never copied out of the log. How a batch becomes rows is ``writer``'s
docstring.

The contact graph (``projections.graph``) is kept in the same transactions, live only: its
tables carry this projection's prefix and version and are created and dropped with it.

Contact graph rule for open-ended valid times: an open bound is bounded by what the log knows
of the two participants. What it knows of an actor is its *span*, from the first year any of
its facts covers to the last: its live interactions, the roles it holds and the roles held in
it (a fact covers from its lower bound's year, else its upper's, to its upper bound's year, else
its lower's; one with no bound covers nothing). An interaction with an open lower bound ("before
February 2024") counts as *possible* in every year from the first year of either actor's span
to its known bound; one with an open upper bound, from its known bound to the last year of
either span; one with no bound at all, in every year of the two spans, and nowhere when neither
actor has a span. So an open interval never reaches years the log knows nothing of either actor
in, and reaches every year it knows one of them in: "Medvedev met Hamas leaders" (undated,
before February 2024) is possible from 2006, the first year the log knows of Hamas (a role held
in it), so in the years Medvedev was president too.

The package's files are its seams: ``schema`` (the tables and every statement), ``views`` (what
the queries return), ``fold`` (the pure view functions), ``writer`` (the projection, which turns
a batch into rows), ``queries`` and ``entries`` (history entries built from the stored views).
"""

from __future__ import annotations

from projections.contacts.fold import actor_from, interaction_from
from projections.contacts.queries import (
    HistoryKey,
    SearchKey,
    contact_history,
    contact_history_page,
    get_actor,
    history_key,
    search_actors,
    search_actors_keyed,
)
from projections.contacts.views import (
    ActorView,
    Counterpart,
    HistoryEntry,
    InteractionView,
    RoleView,
    WindowMode,
)
from projections.contacts.writer import ContactsProjection
from projections.graph import GraphEdge

__all__ = (
    "ActorView",
    "ContactsProjection",
    "Counterpart",
    "GraphEdge",
    "HistoryEntry",
    "HistoryKey",
    "InteractionView",
    "RoleView",
    "SearchKey",
    "WindowMode",
    "actor_from",
    "contact_history",
    "contact_history_page",
    "get_actor",
    "history_key",
    "interaction_from",
    "search_actors",
    "search_actors_keyed",
)

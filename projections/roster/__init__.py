"""The delegation roster: for each planned meeting, which factions were invited, who answered
how, who heads and fills each delegation, and how each faction dealt with the declarations put
forward there.

A meeting's roster is folded from its facts by one pure function, ``roster_from`` (``fold``):
the events of its own stream, of the declarations drafted for it and of the interactions
recorded as part of it (which meeting an event belongs to: ``routes``). The SQL projection
(``writer``) keeps, per meeting, the fold so far (a draft) next to the view made from it, and
folds a batch's new facts into the draft. A correction or retraction changes facts folded
earlier, so a batch that brings one folds that meeting again from its facts in the log: the view
then equals ``roster_from`` of the log up to that point, as it must.

Every fact routed to a meeting opens a version of its view (system time, see
``projections.system_time``), so the roster "as of" any cursor is read through an index, like
the live one (``queries``), and equals ``roster_from`` of the meeting's facts up to that cursor.
Each version is stored as the JSON the API sends, which the API passes through as it is.
``schema`` holds the tables and statements, ``view`` the entries the queries return.
"""

from projections.roster.fold import Fact, fold_further, roster_from
from projections.roster.queries import get_roster, list_meetings, meetings_json, roster_json
from projections.roster.routes import Routes
from projections.roster.schema import LZ4_SQL
from projections.roster.view import (
    AsOf,
    DateChange,
    DeclarationRef,
    Delegate,
    FactionDeclaration,
    FactionRoster,
    RosterView,
)
from projections.roster.writer import RosterProjection

__all__ = (
    "LZ4_SQL",
    "AsOf",
    "DateChange",
    "DeclarationRef",
    "Delegate",
    "Fact",
    "FactionDeclaration",
    "FactionRoster",
    "RosterProjection",
    "RosterView",
    "Routes",
    "fold_further",
    "get_roster",
    "list_meetings",
    "meetings_json",
    "roster_from",
    "roster_json",
)

"""Read routes over the projections: meetings and their rosters, contact histories, the contact
graph, the actor directory and audit trails.

Every view says which feed position it reflects (``Diplofeed-Position``) and whether it is
``Diplofeed-Stale`` (the projection has not applied events the feed already shows, or could
not reach the ``reflect`` cursor in time). ``reflect=<cursor>`` (the ``cursor`` a write
returned) waits, bounded, until the view includes that write. ``as_of`` (a time) or
``as_of_cursor`` answer as the log told it then. Every list is a page (``service.paging``).
"""

from __future__ import annotations

from typing import Final

from service.routes.views.actors import actor, actors, contacts
from service.routes.views.audit import audit
from service.routes.views.graph import graph
from service.routes.views.meetings import meeting, meetings

__all__ = ("VIEW_HANDLERS",)

VIEW_HANDLERS: Final = (meetings, meeting, actors, actor, contacts, graph, audit)

"""Read models built from the event log. Imports only from ``events``.

How they are built (``runner.py``): a ``Projection`` has a name, a version and a feed filter;
``ProjectionRunner`` follows the feed from the projection's checkpoint and calls its ``apply``
with batches of events inside one transaction that also advances the checkpoint, so every event
takes effect exactly once. Tables live in the ``projections`` schema and carry the version in
their names (``roster_v1``), so a new version can be built beside the old one.

Correctness of corrections and retractions: an item's view is a pure function of its facts in
the log, the same one that computes it "as of" any earlier cursor. A projection keeps only what
lets it apply the next batch without rereading everything: the contacts keep views and reread an
item's earlier facts from the log when a batch continues it; the roster keeps each meeting's
fold so far and folds new facts into it, but folds a meeting again from its facts in the log
when a batch amends one of them. The roster also keeps every version of each meeting's view,
one per event routed to it, with the feed-cursor range it was current in
(``system_time.py``): its "as of" is read by index, and equals the fold up to that cursor.
"""

"""Read models built from the event log. Imports only from ``events``.

How they are built (``runner.py``): a ``Projection`` has a name, a version and a feed filter;
``ProjectionRunner`` follows the feed from the projection's checkpoint and calls its ``apply``
with batches of events inside one transaction that also advances the checkpoint, so every event
takes effect exactly once. Tables live in the ``projections`` schema and carry the version in
their names (``roster_v1``), so a new version can be built beside the old one.

Correctness of corrections and retractions: each view keeps, per item, the facts it was built
from; an amendment changes those facts, and the item's view is recomputed from them with the
same pure function that computes it "as of" any earlier cursor from the log.
"""

"""The contact graph's tables and every statement on them (``{name}`` placeholders are filled
with ``table_names(prefix, version, TABLES)``: the contacts projection's prefix and version).

``{edges}``
    Closed counts: per unordered pair (``a < b``), kind and year, the live interactions with
    both day bounds known that certainly (``certain``) or possibly (``possible``) fall in it.
``{open}``
    Open contributions: per pair, kind and the known year bound(s) of an interaction with an
    open bound, how many live interactions have that shape. Expanded over years only when read.
``{years}``
    Per actor and year, how many of its live interactions start (``starts``: the year of the
    lower bound, else the upper) and end (``ends``: the upper, else the lower) in it: counts, so
    that the actor's span survives removals.
``{spans}``
    Per actor, the first year with a start and the last year with an end: the span that limits
    an open contribution of any pair of the actor.
``{weights}``
    Per pair and kind (and ``''``: every kind), the sums of ``certain`` and ``possible`` over
    the pair's edges, open contributions expanded (``open_possible`` is their part): what the
    weight order reads through an index.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "ALL_KINDS",
    "BEFORE_SQL",
    "COUNTERPARTS_BY_WEIGHT_SQL",
    "CREATE_SQL",
    "DELETE_EMPTY_EDGES_SQL",
    "DELETE_EMPTY_OPEN_SQL",
    "DELETE_EMPTY_SPANS_SQL",
    "DELETE_EMPTY_WEIGHTS_SQL",
    "DELETE_EMPTY_YEARS_SQL",
    "DROP_SQL",
    "EDGES_BY_ACTOR_SQL",
    "EDGES_BY_PAIR_SQL",
    "EDGES_OF_PAIRS_SQL",
    "PAIRS_BY_WEIGHT_SQL",
    "READ_SPANS_SQL",
    "RECOMPUTE_SPANS_SQL",
    "REWEIGH_OPEN_SQL",
    "TABLES",
    "UPSERT_EDGES_SQL",
    "UPSERT_OPEN_SQL",
    "UPSERT_SPANS_SQL",
    "UPSERT_WEIGHTS_SQL",
    "UPSERT_YEARS_SQL",
)

TABLES: Final = {
    "edges": "graph_edges",
    "open": "graph_open",
    "years": "graph_actor_years",
    "spans": "graph_actor_spans",
    "weights": "graph_weights",
}
"""The graph's tables, named like the contacts projection's (``projections.common``)."""

ALL_KINDS: Final = ""
"""The ``kind`` of a ``{weights}`` row that sums every kind of the pair."""

# The weight indexes hold negated sums so that one ascending row comparison walks them in
# descending weight with ids ascending (keyset pagination).
CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{edges} (
    a        text NOT NULL,
    b        text NOT NULL,
    kind     text NOT NULL,
    year     int NOT NULL,
    certain  int NOT NULL,
    possible int NOT NULL,
    PRIMARY KEY (a, b, kind, year)
);
CREATE INDEX IF NOT EXISTS {edges}_b_idx ON projections.{edges} (b, a, kind, year);
CREATE TABLE IF NOT EXISTS projections.{open} (
    a          text NOT NULL,
    b          text NOT NULL,
    kind       text NOT NULL,
    lower_year int,
    upper_year int,
    n          int NOT NULL,
    CONSTRAINT {open}_key UNIQUE NULLS NOT DISTINCT (a, b, kind, lower_year, upper_year)
);
CREATE INDEX IF NOT EXISTS {open}_b_idx ON projections.{open} (b, a, kind);
CREATE TABLE IF NOT EXISTS projections.{years} (
    actor_id text NOT NULL,
    year     int NOT NULL,
    starts   int NOT NULL,
    ends     int NOT NULL,
    PRIMARY KEY (actor_id, year)
);
CREATE TABLE IF NOT EXISTS projections.{spans} (
    actor_id   text PRIMARY KEY,
    first_year int,
    last_year  int
);
CREATE TABLE IF NOT EXISTS projections.{weights} (
    a             text NOT NULL,
    b             text NOT NULL,
    kind          text NOT NULL,
    certain       int NOT NULL,
    possible      int NOT NULL,
    open_possible int NOT NULL,
    PRIMARY KEY (a, b, kind)
);
CREATE INDEX IF NOT EXISTS {weights}_order_idx
    ON projections.{weights} (kind, (-possible), (-certain), a, b);
CREATE INDEX IF NOT EXISTS {weights}_a_idx
    ON projections.{weights} (a, kind, (-possible), (-certain), b);
CREATE INDEX IF NOT EXISTS {weights}_b_idx
    ON projections.{weights} (b, kind, (-possible), (-certain), a)
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{edges};
DROP TABLE IF EXISTS projections.{open};
DROP TABLE IF EXISTS projections.{years};
DROP TABLE IF EXISTS projections.{spans};
DROP TABLE IF EXISTS projections.{weights}
"""

# -- writes --------------------------------------------------------------------------------------

# The live form of interactions from earlier batches, as the tables hold it before this batch
# overwrites them: $1 the interaction ids.
BEFORE_SQL: Final = """
SELECT i.interaction_id, i.kind,
       extract(year FROM i.lower)::int AS lower_year,
       extract(year FROM i.upper)::int AS upper_year,
       array_agg(DISTINCT l.actor_id) FILTER (WHERE l.actor_id IS NOT NULL) AS actors
FROM unnest($1::text[]) AS c(interaction_id)
JOIN projections.{interactions} AS i USING (interaction_id)
LEFT JOIN projections.{links} AS l USING (interaction_id)
WHERE NOT i.retracted AND NOT i.negated AND i.view IS NOT NULL
GROUP BY i.interaction_id, i.kind, i.lower, i.upper
"""
UPSERT_EDGES_SQL: Final = """
INSERT INTO projections.{edges} AS t (a, b, kind, year, certain, possible)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])
ON CONFLICT (a, b, kind, year) DO UPDATE SET
    certain = t.certain + excluded.certain, possible = t.possible + excluded.possible
"""
DELETE_EMPTY_EDGES_SQL: Final = """
DELETE FROM projections.{edges} AS t
USING unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS k(a, b, kind, year)
WHERE (t.a, t.b, t.kind, t.year) = (k.a, k.b, k.kind, k.year) AND t.possible = 0
"""
UPSERT_OPEN_SQL: Final = """
INSERT INTO projections.{open} AS t (a, b, kind, lower_year, upper_year, n)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])
ON CONFLICT ON CONSTRAINT {open}_key DO UPDATE SET n = t.n + excluded.n
"""
DELETE_EMPTY_OPEN_SQL: Final = """
DELETE FROM projections.{open} AS t
USING unnest($1::text[], $2::text[], $3::text[]) AS k(a, b, kind)
WHERE (t.a, t.b, t.kind) = (k.a, k.b, k.kind) AND t.n = 0
"""
# Returns every touched row's counts after the change: with the deltas, they say which years
# appeared or vanished.
UPSERT_YEARS_SQL: Final = """
INSERT INTO projections.{years} AS t (actor_id, year, starts, ends)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[])
ON CONFLICT (actor_id, year) DO UPDATE SET
    starts = t.starts + excluded.starts, ends = t.ends + excluded.ends
RETURNING actor_id, year, starts, ends
"""
DELETE_EMPTY_YEARS_SQL: Final = """
DELETE FROM projections.{years} AS t
USING unnest($1::text[], $2::int[]) AS k(actor_id, year)
WHERE (t.actor_id, t.year) = (k.actor_id, k.year) AND t.starts = 0 AND t.ends = 0
"""
READ_SPANS_SQL: Final = """
SELECT s.actor_id, s.first_year, s.last_year
FROM unnest($1::text[]) AS k(actor_id)
JOIN projections.{spans} AS s USING (actor_id)
"""
# The spans of actors one of whose extreme years may have vanished, from their year counts.
RECOMPUTE_SPANS_SQL: Final = """
SELECT k.actor_id,
       min(y.year) FILTER (WHERE y.starts > 0) AS first_year,
       max(y.year) FILTER (WHERE y.ends > 0) AS last_year
FROM unnest($1::text[]) AS k(actor_id)
LEFT JOIN projections.{years} AS y USING (actor_id)
GROUP BY k.actor_id
"""
UPSERT_SPANS_SQL: Final = """
INSERT INTO projections.{spans} AS t (actor_id, first_year, last_year)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[])
ON CONFLICT (actor_id) DO UPDATE SET
    first_year = excluded.first_year, last_year = excluded.last_year
"""
UPSERT_WEIGHTS_SQL: Final = """
INSERT INTO projections.{weights} AS t (a, b, kind, certain, possible, open_possible)
SELECT a, b, kind, certain, possible, 0
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[])
    AS d(a, b, kind, certain, possible)
ON CONFLICT (a, b, kind) DO UPDATE SET
    certain = t.certain + excluded.certain, possible = t.possible + excluded.possible
"""
# The years an open contribution covers (see the contacts module docstring): from its known
# bound, else the pair's first year, to its known bound, else the pair's last year.
_FIRST: Final = "coalesce(o.lower_year, least(sa.first_year, sb.first_year))"
_LAST: Final = "coalesce(o.upper_year, greatest(sa.last_year, sb.last_year))"
# Recomputes the open part of the weight of the pairs $1/$2 (open contributions changed) and
# of every pair with an open contribution of an actor in $3 (span changed), per kind and for
# every kind; rows whose open part was not zero are covered too, so a vanished one goes to 0.
REWEIGH_OPEN_SQL: Final = f"""
WITH pairs AS (
    SELECT a, b FROM unnest($1::text[], $2::text[]) AS p(a, b)
    UNION
    SELECT o.a, o.b FROM unnest($3::text[]) AS c(actor_id)
    JOIN projections.{{open}} AS o ON o.a = c.actor_id
    UNION
    SELECT o.a, o.b FROM unnest($3::text[]) AS c(actor_id)
    JOIN projections.{{open}} AS o ON o.b = c.actor_id
),
fresh AS (
    SELECT o.a, o.b, CASE WHEN grouping(o.kind) = 1 THEN '' ELSE o.kind END AS kind,
           sum(o.n * greatest(0, coalesce({_LAST} - {_FIRST} + 1, 0)))::int AS open_possible
    FROM pairs
    JOIN projections.{{open}} AS o USING (a, b)
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    GROUP BY GROUPING SETS ((o.a, o.b, o.kind), (o.a, o.b))
),
stale AS (
    SELECT w.a, w.b, w.kind, 0 AS open_possible
    FROM pairs JOIN projections.{{weights}} AS w USING (a, b)
    WHERE w.open_possible <> 0
),
target AS (
    SELECT DISTINCT ON (a, b, kind) a, b, kind, open_possible
    FROM (SELECT *, 0 AS rank FROM fresh UNION ALL SELECT *, 1 FROM stale) AS u
    ORDER BY a, b, kind, rank
)
INSERT INTO projections.{{weights}} AS t (a, b, kind, certain, possible, open_possible)
SELECT a, b, kind, 0, open_possible, open_possible FROM target
ON CONFLICT (a, b, kind) DO UPDATE SET
    possible = t.possible - t.open_possible + excluded.open_possible,
    open_possible = excluded.open_possible
RETURNING a, b, kind, possible
"""
DELETE_EMPTY_WEIGHTS_SQL: Final = """
DELETE FROM projections.{weights} AS t
USING unnest($1::text[], $2::text[], $3::text[]) AS k(a, b, kind)
WHERE (t.a, t.b, t.kind) = (k.a, k.b, k.kind) AND t.possible = 0
"""
DELETE_EMPTY_SPANS_SQL: Final = """
DELETE FROM projections.{spans} AS t
USING unnest($1::text[]) AS k(actor_id)
WHERE t.actor_id = k.actor_id AND t.first_year IS NULL AND t.last_year IS NULL
"""

# -- reads ---------------------------------------------------------------------------------------

# Every query returns a page plus one row: ($n) rows after the key, closed counts and open
# contributions merged into one edge per pair, kind and year. The key of a first page sorts
# before every row (actor ids are never empty).

# $1 kind (NULL: every kind), $2-$5 key (a, b, kind, year), $6 rows.
EDGES_BY_PAIR_SQL: Final = f"""
WITH closed AS (
    SELECT a, b, kind, year, certain, possible
    FROM projections.{{edges}}
    WHERE (a, b, kind, year) > ($2, $3, $4, $5) AND ($1::text IS NULL OR kind = $1)
    ORDER BY a, b, kind, year
    LIMIT $6
),
opened AS (
    SELECT o.a, o.b, o.kind, y.year, 0 AS certain, o.n AS possible
    FROM projections.{{open}} AS o
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    CROSS JOIN LATERAL generate_series({_FIRST}, {_LAST}) AS y(year)
    WHERE (o.a, o.b, o.kind) >= ($2, $3, $4) AND (o.a, o.b, o.kind, y.year) > ($2, $3, $4, $5)
      AND ($1::text IS NULL OR o.kind = $1)
    ORDER BY o.a, o.b, o.kind, y.year
    LIMIT $6
)
SELECT a, b, kind, year, sum(certain)::int AS certain, sum(possible)::int AS possible
FROM (SELECT * FROM closed UNION ALL SELECT * FROM opened) AS u
GROUP BY a, b, kind, year
ORDER BY a, b, kind, year
LIMIT $6
"""

# $1 actor, $2 kind (NULL: every kind), $3-$5 key (counterpart, kind, year), $6 rows.
EDGES_BY_ACTOR_SQL: Final = f"""
WITH closed AS (
    (SELECT b AS other, a, b, kind, year, certain, possible
     FROM projections.{{edges}}
     WHERE a = $1 AND (b, kind, year) > ($3, $4, $5) AND ($2::text IS NULL OR kind = $2)
     ORDER BY b, kind, year
     LIMIT $6)
    UNION ALL
    (SELECT a AS other, a, b, kind, year, certain, possible
     FROM projections.{{edges}}
     WHERE b = $1 AND (a, kind, year) > ($3, $4, $5) AND ($2::text IS NULL OR kind = $2)
     ORDER BY a, kind, year
     LIMIT $6)
),
mine AS (
    SELECT b AS other, * FROM projections.{{open}} WHERE a = $1 AND b >= $3
    UNION ALL
    SELECT a AS other, * FROM projections.{{open}} WHERE b = $1 AND a >= $3
),
opened AS (
    SELECT o.other, o.a, o.b, o.kind, y.year, 0 AS certain, o.n AS possible
    FROM mine AS o
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    CROSS JOIN LATERAL generate_series({_FIRST}, {_LAST}) AS y(year)
    WHERE (o.other, o.kind, y.year) > ($3, $4, $5) AND ($2::text IS NULL OR o.kind = $2)
)
SELECT a, b, kind, year, sum(certain)::int AS certain, sum(possible)::int AS possible
FROM (SELECT * FROM closed UNION ALL SELECT * FROM opened) AS u
GROUP BY other, a, b, kind, year
ORDER BY other, kind, year
LIMIT $6
"""

# $1 kind ('' for every kind), $2/$3 the weight key (possible, certain), $4/$5 the pair key,
# $6 pairs. The pair of the key itself is included: its edges may continue on this page.
PAIRS_BY_WEIGHT_SQL: Final = """
SELECT a, b, possible, certain
FROM projections.{weights}
WHERE kind = $1 AND (-possible, -certain, a, b) >= (-$2::int, -$3::int, $4, $5)
ORDER BY kind, -possible, -certain, a, b
LIMIT $6
"""
# $1 actor, $2 kind ('' for every kind), $3/$4 weight key, $5 counterpart key, $6 pairs.
COUNTERPARTS_BY_WEIGHT_SQL: Final = """
SELECT a, b, possible, certain FROM (
    (SELECT a, b, possible, certain, b AS other
     FROM projections.{weights}
     WHERE a = $1 AND kind = $2 AND (-possible, -certain, b) >= (-$3::int, -$4::int, $5)
     ORDER BY a, kind, -possible, -certain, b
     LIMIT $6)
    UNION ALL
    (SELECT a, b, possible, certain, a AS other
     FROM projections.{weights}
     WHERE b = $1 AND kind = $2 AND (-possible, -certain, a) >= (-$3::int, -$4::int, $5)
     ORDER BY b, kind, -possible, -certain, a
     LIMIT $6)
) AS u
ORDER BY -possible, -certain, other
LIMIT $6
"""
# Every edge of the pairs $1/$2, $3 kind (NULL: every kind), in (a, b, kind, year) order.
EDGES_OF_PAIRS_SQL: Final = f"""
WITH pairs AS (SELECT DISTINCT a, b FROM unnest($1::text[], $2::text[]) AS p(a, b)),
closed AS (
    SELECT e.a, e.b, e.kind, e.year, e.certain, e.possible
    FROM pairs JOIN projections.{{edges}} AS e USING (a, b)
    WHERE $3::text IS NULL OR e.kind = $3
),
opened AS (
    SELECT o.a, o.b, o.kind, y.year, 0 AS certain, o.n AS possible
    FROM pairs
    JOIN projections.{{open}} AS o USING (a, b)
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    CROSS JOIN LATERAL generate_series({_FIRST}, {_LAST}) AS y(year)
    WHERE $3::text IS NULL OR o.kind = $3
)
SELECT a, b, kind, year, sum(certain)::int AS certain, sum(possible)::int AS possible
FROM (SELECT * FROM closed UNION ALL SELECT * FROM opened) AS u
GROUP BY a, b, kind, year
ORDER BY a, b, kind, year
"""

"""The contact graph's tables and every statement on them (``{name}`` placeholders are filled
with ``table_names(prefix, version, TABLES)``: the contacts projection's prefix and version).

``{edges}``
    Closed counts: per unordered pair (``a < b``), kind and year, the live interactions with
    both day bounds known that certainly (``certain``) or possibly (``possible``) fall in it.
``{open}``
    Open contributions: per pair, kind and the known year bound(s) of an interaction with an
    open bound, how many live interactions have that shape. Expanded over years only when read.
``{spans}``
    Per actor with a dated live interaction, its span: the earliest year any of them starts in
    (its lower bound's year, else its upper's) and the latest any ends in (upper, else lower).
    It limits the open contributions of the actor's pairs.
``{weights}``
    Per pair, the sums of ``certain`` and ``possible`` over its edges of every kind, open
    contributions expanded (``open_possible`` is their part): the weight order of all pairs
    reads it through an index.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "BEFORE_SQL",
    "COUNTERPARTS_BY_WEIGHT_SQL",
    "CREATE_SQL",
    "DELETE_EMPTY_EDGES_SQL",
    "DELETE_EMPTY_OPEN_SQL",
    "DELETE_EMPTY_WEIGHTS_SQL",
    "DELETE_SPANS_SQL",
    "DROP_SQL",
    "EDGES_BY_ACTOR_SQL",
    "EDGES_BY_PAIR_SQL",
    "EDGES_OF_PAIRS_SQL",
    "PAIRS_BY_WEIGHT_SQL",
    "READ_SPANS_SQL",
    "RECOMPUTE_SPANS_SQL",
    "REWEIGH_OPEN_SQL",
    "TABLES",
    "UPSERT_SPANS_SQL",
    "WRITE_SQL",
)

TABLES: Final = {
    "edges": "graph_edges",
    "open": "graph_open",
    "spans": "graph_actor_spans",
    "weights": "graph_weights",
}
"""The graph's tables, named like the contacts projection's (``projections.common``)."""

# The weight indexes hold negated sums so that one ascending row comparison walks them in
# descending weight with ids ascending (keyset pagination).
CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{edges} (
    a        text COLLATE "C" NOT NULL,
    b        text COLLATE "C" NOT NULL,
    kind     text COLLATE "C" NOT NULL,
    year     int NOT NULL,
    certain  int NOT NULL,
    possible int NOT NULL,
    PRIMARY KEY (a, b, kind, year)
);
CREATE INDEX IF NOT EXISTS {edges}_b_idx ON projections.{edges} (b, a, kind, year);
CREATE TABLE IF NOT EXISTS projections.{open} (
    a          text COLLATE "C" NOT NULL,
    b          text COLLATE "C" NOT NULL,
    kind       text COLLATE "C" NOT NULL,
    lower_year int,
    upper_year int,
    n          int NOT NULL,
    CONSTRAINT {open}_key UNIQUE NULLS NOT DISTINCT (a, b, kind, lower_year, upper_year)
);
CREATE INDEX IF NOT EXISTS {open}_b_idx ON projections.{open} (b, a, kind);
CREATE TABLE IF NOT EXISTS projections.{spans} (
    actor_id   text COLLATE "C" PRIMARY KEY,
    first_year int,
    last_year  int
);
CREATE TABLE IF NOT EXISTS projections.{weights} (
    a             text COLLATE "C" NOT NULL,
    b             text COLLATE "C" NOT NULL,
    certain       int NOT NULL,
    possible      int NOT NULL,
    open_possible int NOT NULL,
    PRIMARY KEY (a, b)
);
CREATE INDEX IF NOT EXISTS {weights}_order_idx
    ON projections.{weights} ((-possible), (-certain), a, b)
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{edges};
DROP TABLE IF EXISTS projections.{open};
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
# One statement (one round trip) for what nearly every batch changes: closed counts ($1-$6),
# open contributions ($7-$12), weights ($13-$16) and spans widened ($17-$19). It returns the
# actors whose span it moved (an actor new to the graph included).
WRITE_SQL: Final = """
WITH edges AS (
    INSERT INTO projections.{edges} AS t (a, b, kind, year, certain, possible)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])
    ON CONFLICT (a, b, kind, year) DO UPDATE SET
        certain = t.certain + excluded.certain, possible = t.possible + excluded.possible
),
opened AS (
    INSERT INTO projections.{open} AS t (a, b, kind, lower_year, upper_year, n)
    SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::int[], $11::int[],
                         $12::int[])
    ON CONFLICT ON CONSTRAINT {open}_key DO UPDATE SET n = t.n + excluded.n
),
weights AS (
    INSERT INTO projections.{weights} AS t (a, b, certain, possible, open_possible)
    SELECT a, b, certain, possible, 0
    FROM unnest($13::text[], $14::text[], $15::int[], $16::int[]) AS d(a, b, certain, possible)
    ON CONFLICT (a, b) DO UPDATE SET
        certain = t.certain + excluded.certain, possible = t.possible + excluded.possible
)
INSERT INTO projections.{spans} AS t (actor_id, first_year, last_year)
SELECT * FROM unnest($17::text[], $18::int[], $19::int[])
ON CONFLICT (actor_id) DO UPDATE SET
    first_year = least(t.first_year, excluded.first_year),
    last_year = greatest(t.last_year, excluded.last_year)
WHERE excluded.first_year < t.first_year OR excluded.last_year > t.last_year
RETURNING actor_id
"""
DELETE_EMPTY_EDGES_SQL: Final = """
DELETE FROM projections.{edges} AS t
USING unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS k(a, b, kind, year)
WHERE (t.a, t.b, t.kind, t.year) = (k.a, k.b, k.kind, k.year) AND t.possible = 0
"""
DELETE_EMPTY_OPEN_SQL: Final = """
DELETE FROM projections.{open} AS t
USING unnest($1::text[], $2::text[], $3::text[]) AS k(a, b, kind)
WHERE (t.a, t.b, t.kind) = (k.a, k.b, k.kind) AND t.n = 0
"""
READ_SPANS_SQL: Final = """
SELECT s.actor_id, s.first_year, s.last_year
FROM unnest($1::text[]) AS k(actor_id)
JOIN projections.{spans} AS s USING (actor_id)
"""
# The spans of actors $1 from the interactions the tables hold but those of $2 (the batch's
# amended ones, whose new form the writer adds): for an actor whose span may have shrunk.
RECOMPUTE_SPANS_SQL: Final = """
SELECT l.actor_id,
       min(extract(year FROM coalesce(i.lower, i.upper)))::int AS first_year,
       max(extract(year FROM coalesce(i.upper, i.lower)))::int AS last_year
FROM unnest($1::text[]) AS k(actor_id)
JOIN projections.{links} AS l USING (actor_id)
JOIN projections.{interactions} AS i USING (interaction_id)
WHERE NOT i.retracted AND NOT i.negated AND i.view IS NOT NULL
  AND NOT i.interaction_id = any($2::text[])
GROUP BY l.actor_id
"""
# Spans counted again (``RECOMPUTE_SPANS_SQL``) replace the stored ones.
UPSERT_SPANS_SQL: Final = """
INSERT INTO projections.{spans} AS t (actor_id, first_year, last_year)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[])
ON CONFLICT (actor_id) DO UPDATE SET
    first_year = excluded.first_year, last_year = excluded.last_year
"""
# The years an open contribution covers (see the contacts module docstring): from its known
# bound, else the pair's first year, to its known bound, else the pair's last year.
_FIRST: Final = "coalesce(o.lower_year, least(sa.first_year, sb.first_year))"
_LAST: Final = "coalesce(o.upper_year, greatest(sa.last_year, sb.last_year))"
# Recomputes the open part of the weight of the pairs $1/$2 (open contributions changed) and
# of every pair with an open contribution of an actor in $3 (span changed); rows whose open
# part was not zero are covered too, so a vanished one goes to 0.
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
    SELECT o.a, o.b,
           sum(o.n * greatest(0, coalesce({_LAST} - {_FIRST} + 1, 0)))::int AS open_possible
    FROM pairs
    JOIN projections.{{open}} AS o USING (a, b)
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    GROUP BY o.a, o.b
),
target AS (
    SELECT * FROM fresh
    UNION ALL
    SELECT w.a, w.b, 0
    FROM pairs JOIN projections.{{weights}} AS w USING (a, b)
    WHERE w.open_possible <> 0 AND NOT EXISTS (
        SELECT 1 FROM fresh AS f WHERE (f.a, f.b) = (w.a, w.b))
)
INSERT INTO projections.{{weights}} AS t (a, b, certain, possible, open_possible)
SELECT a, b, 0, open_possible, open_possible FROM target
ON CONFLICT (a, b) DO UPDATE SET
    possible = t.possible - t.open_possible + excluded.open_possible,
    open_possible = excluded.open_possible
RETURNING a, b, possible
"""
DELETE_EMPTY_WEIGHTS_SQL: Final = """
DELETE FROM projections.{weights} AS t
USING unnest($1::text[], $2::text[]) AS k(a, b)
WHERE (t.a, t.b) = (k.a, k.b) AND t.possible = 0
"""
DELETE_SPANS_SQL: Final = """
DELETE FROM projections.{spans} AS t
USING unnest($1::text[]) AS k(actor_id)
WHERE t.actor_id = k.actor_id
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
    -- Summed before the limit: several open contributions may cover one year.
    SELECT o.a, o.b, o.kind, y.year, 0 AS certain, sum(o.n) AS possible
    FROM projections.{{open}} AS o
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    CROSS JOIN LATERAL generate_series({_FIRST}, {_LAST}) AS y(year)
    WHERE (o.a, o.b, o.kind) >= ($2, $3, $4) AND (o.a, o.b, o.kind, y.year) > ($2, $3, $4, $5)
      AND ($1::text IS NULL OR o.kind = $1)
    GROUP BY o.a, o.b, o.kind, y.year
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

# $1/$2 the weight key (possible, certain), $3/$4 the pair key, $5 pairs. The pair of the key
# itself is included: its edges may continue on this page.
PAIRS_BY_WEIGHT_SQL: Final = """
SELECT a, b, possible, certain
FROM projections.{weights}
WHERE (-possible, -certain, a, b) >= (-$1::int, -$2::int, $3, $4)
ORDER BY -possible, -certain, a, b
LIMIT $5
"""
# $1 actor, $2 kind (NULL: every kind), $3/$4 weight key, $5 counterpart key, $6 pairs. The
# weights are summed here, from the actor's edges and open contributions.
COUNTERPARTS_BY_WEIGHT_SQL: Final = f"""
WITH closed AS (
    SELECT b AS other, certain, possible FROM projections.{{edges}}
    WHERE a = $1 AND ($2::text IS NULL OR kind = $2)
    UNION ALL
    SELECT a AS other, certain, possible FROM projections.{{edges}}
    WHERE b = $1 AND ($2::text IS NULL OR kind = $2)
),
mine AS (
    SELECT b AS other, * FROM projections.{{open}} WHERE a = $1
    UNION ALL
    SELECT a AS other, * FROM projections.{{open}} WHERE b = $1
),
opened AS (
    SELECT o.other, 0 AS certain,
           o.n * greatest(0, coalesce({_LAST} - {_FIRST} + 1, 0)) AS possible
    FROM mine AS o
    LEFT JOIN projections.{{spans}} AS sa ON sa.actor_id = o.a
    LEFT JOIN projections.{{spans}} AS sb ON sb.actor_id = o.b
    WHERE $2::text IS NULL OR o.kind = $2
),
totals AS (
    SELECT other, sum(certain)::int AS certain, sum(possible)::int AS possible
    FROM (SELECT * FROM closed UNION ALL SELECT * FROM opened) AS u
    GROUP BY other
)
SELECT least($1, other) AS a, greatest($1, other) AS b, possible, certain
FROM totals
WHERE possible > 0 AND (-possible, -certain, other) >= (-$3::int, -$4::int, $5)
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

"""The contact graph's tables and every statement on them (``{name}`` placeholders are filled
with ``table_names(prefix, version, TABLES)``: the contacts projection's prefix and version).

``{pairs}``
    One row per live interaction and unordered pair of its distinct participants (``a < b``):
    the interaction's kind and the years of its day bounds (``NULL`` where a bound is open).
    Read through ``(a, b, kind)`` and ``(b, a, kind)``, a pair's rows are its counts: each
    covers the years from its lower to its upper bound, certainly when they are one year.
``{spans}``
    Per actor the log knows a year of, its span: the earliest year any of its facts starts in
    and the latest any ends in, the facts being its dated live interactions, the roles it
    holds and the roles held in it (an interval covers from its lower bound's year, else its
    upper's, to its upper bound's year, else its lower's). An open bound of a pair's row stops
    at the pair's span (the contacts module docstring).

The counts per pair, kind and year are summed when read, over the rows of the pairs a page
shows (an index range), never over the graph.
"""

from __future__ import annotations

from typing import Final

__all__ = (
    "BEFORE_ROLES_SQL",
    "BEFORE_SQL",
    "COUNTERPARTS_BY_WEIGHT_SQL",
    "CREATE_SQL",
    "DELETE_PAIRS_SQL",
    "DELETE_SPANS_SQL",
    "DROP_SQL",
    "EDGES_BY_PAIR_SQL",
    "EDGES_OF_PAIRS_SQL",
    "PAIR_COLUMNS",
    "READ_SPANS_SQL",
    "RECOUNT_SPANS_SQL",
    "REPLACE_SPANS_SQL",
    "ROWS_AS_A_SQL",
    "ROWS_AS_B_SQL",
    "TABLES",
    "WIDEN_SPANS_SQL",
)

TABLES: Final = {"pairs": "graph_pairs", "spans": "graph_actor_spans"}
"""The graph's tables, named like the contacts projection's (``projections.common``)."""

PAIR_COLUMNS: Final = ("a", "b", "kind", "lower_year", "upper_year", "interaction_id")

# Ids compare byte by byte ("C"): the order Python sorts them in, so a < b means one thing.
CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{pairs} (
    a              text COLLATE "C" NOT NULL,
    b              text COLLATE "C" NOT NULL,
    kind           text COLLATE "C" NOT NULL,
    lower_year     int,
    upper_year     int,
    interaction_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS {pairs}_a_idx ON projections.{pairs} (a, b, kind);
CREATE INDEX IF NOT EXISTS {pairs}_b_idx ON projections.{pairs} (b, a, kind);
CREATE TABLE IF NOT EXISTS projections.{spans} (
    actor_id   text COLLATE "C" PRIMARY KEY,
    first_year int NOT NULL,
    last_year  int NOT NULL
)
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{pairs};
DROP TABLE IF EXISTS projections.{spans}
"""

# -- writes --------------------------------------------------------------------------------------

# The live form of interactions from earlier batches, as the tables hold it before this batch
# overwrites them: $1 the interaction ids.
BEFORE_SQL: Final = """
SELECT c.interaction_id, i.kind,
       extract(year FROM i.lower)::int AS lower_year,
       extract(year FROM i.upper)::int AS upper_year,
       ARRAY(SELECT DISTINCT l.actor_id FROM projections.{links} AS l
             WHERE l.interaction_id = c.interaction_id AND l.sys_to IS NULL) AS actors
FROM unnest($1::text[]) AS c(interaction_id)
-- One open version per interaction, looked up by its key: as a plain join, the planner (whose
-- statistics trail a rebuild) sorted every open version of the table to merge them (200 ms
-- a batch at 400k events).
CROSS JOIN LATERAL (
    SELECT kind, lower, upper FROM projections.{interactions} AS i
    WHERE i.interaction_id = c.interaction_id AND i.sys_to IS NULL
      AND NOT i.retracted AND NOT i.negated AND i.view IS NOT NULL
    LIMIT 1
) AS i
"""
# The roles of actors from earlier batches ($1), as the tables hold them before this batch
# overwrites them: the open versions' roles, with the years of their bounds.
BEFORE_ROLES_SQL: Final = """
SELECT r.actor_id, r.organisation_id,
       extract(year FROM r.lower)::int AS lower_year,
       extract(year FROM r.upper)::int AS upper_year
FROM unnest($1::text[]) AS k(actor_id)
JOIN projections.{roles} AS r ON r.actor_id = k.actor_id AND r.sys_to IS NULL
"""
# The rows of pairs whose interaction changed, by their columns ($1-$6 as PAIR_COLUMNS).
DELETE_PAIRS_SQL: Final = """
DELETE FROM projections.{pairs} AS t
USING unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::text[])
    AS k(a, b, kind, lower_year, upper_year, interaction_id)
WHERE (t.a, t.b, t.kind, t.interaction_id) = (k.a, k.b, k.kind, k.interaction_id)
  AND t.lower_year IS NOT DISTINCT FROM k.lower_year
  AND t.upper_year IS NOT DISTINCT FROM k.upper_year
"""
# Only spans that move are written: an upsert would lock (and log) every row it meets.
WIDEN_SPANS_SQL: Final = """
INSERT INTO projections.{spans} AS t (actor_id, first_year, last_year)
SELECT k.actor_id, k.first_year, k.last_year
FROM unnest($1::text[], $2::int[], $3::int[]) AS k(actor_id, first_year, last_year)
LEFT JOIN projections.{spans} AS s USING (actor_id)
WHERE s.actor_id IS NULL OR k.first_year < s.first_year OR k.last_year > s.last_year
ON CONFLICT (actor_id) DO UPDATE SET
    first_year = least(t.first_year, excluded.first_year),
    last_year = greatest(t.last_year, excluded.last_year)
WHERE excluded.first_year < t.first_year OR excluded.last_year > t.last_year
"""
READ_SPANS_SQL: Final = """
SELECT s.actor_id, s.first_year, s.last_year
FROM unnest($1::text[]) AS k(actor_id)
JOIN projections.{spans} AS s USING (actor_id)
"""
# The spans of actors $1 from the interactions the tables hold but those of $2 (the ones the
# batch replaces, whose new forms the writer adds), and from the roles they hold and are held
# in but those of the actors $3 (whose new roles the writer adds): for an actor whose span may
# have shrunk. least and greatest pass over a side that knows no year (NULL).
RECOUNT_SPANS_SQL: Final = """
SELECT k.actor_id, least(s.first_year, r.first_year) AS first_year,
       greatest(s.last_year, r.last_year) AS last_year
FROM unnest($1::text[]) AS k(actor_id)
-- Per actor, from its open link rows alone (they carry the day bounds, -infinity when open,
-- and exist only for live versions), along the links' history index.
CROSS JOIN LATERAL (
    SELECT min(extract(year FROM coalesce(nullif(l.lower_key, '-infinity'),
                                          nullif(l.upper_key, '-infinity'))))::int
               AS first_year,
           max(extract(year FROM coalesce(nullif(l.upper_key, '-infinity'),
                                          nullif(l.lower_key, '-infinity'))))::int
               AS last_year
    FROM projections.{links} AS l
    WHERE l.actor_id = k.actor_id AND l.sys_to IS NULL AND NOT l.negated
      AND NOT l.interaction_id = any($2::text[])
) AS s
-- The open versions' roles, by holder and by organisation (an index each).
CROSS JOIN LATERAL (
    SELECT min(extract(year FROM coalesce(r.lower, r.upper)))::int AS first_year,
           max(extract(year FROM coalesce(r.upper, r.lower)))::int AS last_year
    FROM projections.{roles} AS r
    WHERE (r.actor_id = k.actor_id OR r.organisation_id = k.actor_id) AND r.sys_to IS NULL
      AND NOT r.actor_id = any($3::text[])
) AS r
"""
REPLACE_SPANS_SQL: Final = """
INSERT INTO projections.{spans} AS t (actor_id, first_year, last_year)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[])
ON CONFLICT (actor_id) DO UPDATE SET
    first_year = excluded.first_year, last_year = excluded.last_year
"""
DELETE_SPANS_SQL: Final = """
DELETE FROM projections.{spans} AS t
USING unnest($1::text[]) AS k(actor_id)
WHERE t.actor_id = k.actor_id
"""

# -- reads ---------------------------------------------------------------------------------------

# The years a row covers (see the contacts module docstring): from its known bound, else the
# pair's first year, to its known bound, else the pair's last year. The spans are looked up
# by key, only for a row with an open bound (the LIMIT keeps the planner from turning the
# lookups into a join over every span).
_SPANS: Final = """
    LEFT JOIN LATERAL (
        SELECT first_year, last_year FROM projections.{spans}
        WHERE actor_id = p.a AND (p.lower_year IS NULL OR p.upper_year IS NULL)
        LIMIT 1
    ) AS sa ON true
    LEFT JOIN LATERAL (
        SELECT first_year, last_year FROM projections.{spans}
        WHERE actor_id = p.b AND (p.lower_year IS NULL OR p.upper_year IS NULL)
        LIMIT 1
    ) AS sb ON true
    CROSS JOIN LATERAL generate_series(
        coalesce(p.lower_year, least(sa.first_year, sb.first_year)),
        coalesce(p.upper_year, greatest(sa.last_year, sb.last_year))
    ) AS y(year)"""
_CERTAIN: Final = "count(*) FILTER (WHERE p.lower_year = p.upper_year)::int AS certain"
_POSSIBLE: Final = "count(*)::int AS possible"

# Each page query returns a page plus one row, after the key; the key of a first page sorts
# before every row (actor ids are never empty). Rows come in index order and are summed per
# year as they come, so a page reads the rows of the pairs it shows.

# $1 kind (NULL: every kind), $2-$5 key (a, b, kind, year), $6 rows.
EDGES_BY_PAIR_SQL: Final = f"""
SELECT p.a, p.b, p.kind, y.year, {_CERTAIN}, {_POSSIBLE}
FROM projections.{{pairs}} AS p
{_SPANS}
WHERE (p.a, p.b, p.kind) >= ($2, $3, $4) AND (p.a, p.b, p.kind, y.year) > ($2, $3, $4, $5)
  AND ($1::text IS NULL OR p.kind = $1)
GROUP BY p.a, p.b, p.kind, y.year
ORDER BY p.a, p.b, p.kind, y.year
LIMIT $6
"""


def _actor_rows(actor: str, other: str) -> str:
    return f"""
SELECT p.{other} AS other, p.a, p.b, p.kind, p.lower_year, p.upper_year,
       sa.first_year AS a_first, sa.last_year AS a_last,
       sb.first_year AS b_first, sb.last_year AS b_last
FROM (
    SELECT a, b, kind, lower_year, upper_year FROM projections.{{pairs}}
    WHERE {actor} = $1 AND ({other}, kind) >= ($3, $4) AND ($2::text IS NULL OR kind = $2)
    ORDER BY {other}, kind
    LIMIT $5
) AS p
LEFT JOIN LATERAL (
    SELECT first_year, last_year FROM projections.{{spans}}
    WHERE actor_id = p.a AND (p.lower_year IS NULL OR p.upper_year IS NULL)
    LIMIT 1
) AS sa ON true
LEFT JOIN LATERAL (
    SELECT first_year, last_year FROM projections.{{spans}}
    WHERE actor_id = p.b AND (p.lower_year IS NULL OR p.upper_year IS NULL)
    LIMIT 1
) AS sb ON true
"""


# $1 actor, $2 kind (NULL: every kind), $3/$4 from (counterpart, kind), $5 rows: up to $5 of the
# actor's rows from that group on, in (counterpart, kind) order, with the spans an open bound
# needs. As a < b, the rows where the actor is b come first in that order (counterparts
# before it), then those where it is a: one ordered index range with a LIMIT each, so a page
# reads the rows of the pairs it shows (summed per year in one query, the planner read all
# of the actor's rows by bitmap and sorted them).
ROWS_AS_B_SQL: Final = _actor_rows("b", "a")
ROWS_AS_A_SQL: Final = _actor_rows("a", "b")

# $1 actor, $2 kind (NULL: every kind), $3/$4 weight key (possible, certain), $5 counterpart
# key, $6 pairs. The actor's counterparts weighed from all the actor's rows.
COUNTERPARTS_BY_WEIGHT_SQL: Final = f"""
WITH mine AS (
    SELECT b AS other, * FROM projections.{{pairs}}
    WHERE a = $1 AND ($2::text IS NULL OR kind = $2)
    UNION ALL
    SELECT a AS other, * FROM projections.{{pairs}}
    WHERE b = $1 AND ($2::text IS NULL OR kind = $2)
),
totals AS (
    SELECT p.other, min(p.a) AS a, max(p.b) AS b, {_CERTAIN}, {_POSSIBLE}
    FROM mine AS p
    {_SPANS}
    GROUP BY p.other
)
SELECT a, b, possible, certain
FROM totals
WHERE (-possible, -certain, other) >= (-$3::int, -$4::int, $5)
ORDER BY -possible, -certain, other
LIMIT $6
"""
# Every edge of the pairs $1/$2, $3 kind (NULL: every kind), in (a, b, kind, year) order.
EDGES_OF_PAIRS_SQL: Final = f"""
SELECT p.a, p.b, p.kind, y.year, {_CERTAIN}, {_POSSIBLE}
FROM (SELECT DISTINCT a, b FROM unnest($1::text[], $2::text[]) AS k(a, b)) AS k
JOIN projections.{{pairs}} AS p USING (a, b)
{_SPANS}
WHERE $3::text IS NULL OR p.kind = $3
GROUP BY p.a, p.b, p.kind, y.year
ORDER BY p.a, p.b, p.kind, y.year
"""

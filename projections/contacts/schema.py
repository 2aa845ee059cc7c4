"""The contacts projection's tables and every statement on them (``{interactions}`` and the
other table keys are filled in by ``sql`` with the projection version's names)."""

from __future__ import annotations

import functools
from typing import Final

from projections.common import table_names

__all__ = (
    "CREATE_SQL",
    "DELETE_LINKS_SQL",
    "DELETE_ROLES_SQL",
    "DROP_SQL",
    "EARLIER_FACTS_SQL",
    "GET_ACTOR_SQL",
    "GRAPH_SQL",
    "HISTORY_SQL",
    "INSERT_ROLES_SQL",
    "SEARCH_ACTORS_SQL",
    "TABLES",
    "UPGRADE_SQL",
    "UPSERT_ACTORS_SQL",
    "UPSERT_INTERACTIONS_SQL",
    "VIEW_TYPE_SQL",
    "sql",
)

TABLES: Final = {
    "interactions": "interactions",
    "links": "interaction_actors",
    "actors": "actors",
    "roles": "actor_roles",
}
"""Each table's key in the statements and its name (before prefix and version)."""


@functools.cache
def sql(statement: str, prefix: str, version: int) -> str:
    """``statement`` with this prefix's and version's table names filled in.

    Raises:
        ValueError: The prefix is not a safe SQL identifier part.
    """
    return statement.format(**table_names(prefix, version, TABLES))


CREATE_SQL: Final = """
-- An interaction's view is JSON text: it is only ever returned whole, and storing it as text
-- costs the server a third less than parsing it into jsonb on every write.
CREATE TABLE IF NOT EXISTS projections.{interactions} (
    interaction_id text PRIMARY KEY,
    kind           text,
    view           text,
    lower          date,
    upper          date,
    precision      text,
    retracted      boolean NOT NULL,
    negated        boolean NOT NULL,
    aggregate      boolean NOT NULL
);
CREATE TABLE IF NOT EXISTS projections.{links} (
    interaction_id   text NOT NULL,
    actor_id         text NOT NULL,
    role             text NOT NULL,
    name_as_reported text,
    PRIMARY KEY (interaction_id, actor_id, role)
);
CREATE INDEX IF NOT EXISTS {links}_actor_idx ON projections.{links} (actor_id);
CREATE TABLE IF NOT EXISTS projections.{actors} (
    actor_id       text PRIMARY KEY,
    kind           text,
    canonical_name text,
    aliases        text[] NOT NULL,
    view           jsonb
);
CREATE TABLE IF NOT EXISTS projections.{roles} (
    actor_id        text NOT NULL,
    organisation_id text NOT NULL,
    title           text,
    lower           date,
    upper           date
);
CREATE INDEX IF NOT EXISTS {roles}_actor_idx ON projections.{roles} (actor_id);
CREATE INDEX IF NOT EXISTS {roles}_organisation_idx ON projections.{roles} (organisation_id)
"""
VIEW_TYPE_SQL: Final = """
SELECT data_type FROM information_schema.columns
WHERE table_schema = 'projections' AND table_name = $1 AND column_name = 'view'
"""
# Tables from when interaction views were jsonb.
UPGRADE_SQL: Final = """
ALTER TABLE projections.{interactions} ALTER COLUMN view TYPE text USING view::text
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{interactions};
DROP TABLE IF EXISTS projections.{links};
DROP TABLE IF EXISTS projections.{actors};
DROP TABLE IF EXISTS projections.{roles}
"""
# The facts an item already had before this batch: its stream's earlier events, from the log
# itself (earlier versions of a stream come earlier in the feed, so they were applied before).
EARLIER_FACTS_SQL: Final = """
SELECT e.stream_id, e.event_id, e.type, e.schema_version, e.data::text
FROM unnest($1::text[], $2::bigint[]) AS w(stream_id, below)
JOIN events AS e ON e.stream_id = w.stream_id AND e.stream_version < w.below
ORDER BY e.stream_id, e.stream_version
"""
UPSERT_INTERACTIONS_SQL: Final = """
INSERT INTO projections.{interactions}
    (interaction_id, kind, view, lower, upper, precision, retracted, negated, aggregate)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[],
                     $6::text[], $7::boolean[], $8::boolean[], $9::boolean[])
ON CONFLICT (interaction_id) DO UPDATE SET
    kind = excluded.kind, view = excluded.view,
    lower = excluded.lower, upper = excluded.upper, precision = excluded.precision,
    retracted = excluded.retracted, negated = excluded.negated, aggregate = excluded.aggregate
"""
DELETE_LINKS_SQL: Final = """
DELETE FROM projections.{links} WHERE interaction_id = any($1::text[])
"""
UPSERT_ACTORS_SQL: Final = """
INSERT INTO projections.{actors} (actor_id, kind, canonical_name, aliases, view)
SELECT a.actor_id, a.kind, a.canonical_name,
       ARRAY(SELECT jsonb_array_elements_text(a.aliases)), a.view
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])
    AS a(actor_id, kind, canonical_name, aliases, view)
ON CONFLICT (actor_id) DO UPDATE SET
    kind = excluded.kind, canonical_name = excluded.canonical_name, aliases = excluded.aliases,
    view = excluded.view
"""
DELETE_ROLES_SQL: Final = """
DELETE FROM projections.{roles} WHERE actor_id = any($1::text[])
"""
INSERT_ROLES_SQL: Final = """
INSERT INTO projections.{roles} (actor_id, organisation_id, title, lower, upper)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[])
"""

# $1 actor, $2 counterpart, $3 kind, $4/$5 window, $6 certain (else possible), $7 direct only.
# A member's interaction counts for the organisation when the role's days overlap the
# interaction's (an open end overlaps everything on its side).
HISTORY_SQL: Final = """
WITH direct AS (
    SELECT DISTINCT interaction_id FROM projections.{links} WHERE actor_id = $1
),
through_members AS (
    SELECT l.interaction_id, array_agg(DISTINCT r.actor_id ORDER BY r.actor_id) AS via
    FROM projections.{roles} AS r
    JOIN projections.{links} AS l ON l.actor_id = r.actor_id
    JOIN projections.{interactions} AS i ON i.interaction_id = l.interaction_id
    WHERE NOT $7::boolean AND r.organisation_id = $1 AND r.actor_id <> $1
      AND (r.upper IS NULL OR i.lower IS NULL OR r.upper >= i.lower)
      AND (r.lower IS NULL OR i.upper IS NULL OR r.lower <= i.upper)
    GROUP BY l.interaction_id
),
included AS (
    SELECT interaction_id, NULL::text[] AS via FROM direct
    UNION ALL
    SELECT interaction_id, via FROM through_members
    WHERE interaction_id NOT IN (SELECT interaction_id FROM direct)
)
SELECT inc.via, i.view::text AS view
FROM included AS inc
JOIN projections.{interactions} AS i ON i.interaction_id = inc.interaction_id
WHERE NOT i.retracted AND i.view IS NOT NULL
  AND ($3::text IS NULL OR i.kind = $3)
  AND CASE WHEN $6::boolean THEN
          ($4::date IS NULL OR coalesce(i.lower >= $4, false))
          AND ($5::date IS NULL OR coalesce(i.upper <= $5, false))
      ELSE
          ($4::date IS NULL OR i.upper IS NULL OR i.upper >= $4)
          AND ($5::date IS NULL OR i.lower IS NULL OR i.lower <= $5)
      END
  AND ($2::text IS NULL OR EXISTS (
      SELECT 1 FROM projections.{links} AS c
      WHERE c.interaction_id = i.interaction_id AND c.actor_id = $2))
ORDER BY i.upper DESC NULLS LAST, i.lower DESC NULLS LAST, i.interaction_id
"""

# $1 actor (NULL: every pair), $2 kind (NULL: every kind). See the module docstring for how
# open bounds are limited to the pair's own data range.
GRAPH_SQL: Final = """
WITH live AS (
    SELECT interaction_id, kind, lower, upper
    FROM projections.{interactions}
    WHERE NOT retracted AND NOT negated AND view IS NOT NULL
),
links AS (
    SELECT DISTINCT l.interaction_id, l.actor_id
    FROM projections.{links} AS l JOIN live USING (interaction_id)
),
span AS (
    SELECT links.actor_id,
           min(extract(year FROM coalesce(live.lower, live.upper)))::int AS first_year,
           max(extract(year FROM coalesce(live.upper, live.lower)))::int AS last_year
    FROM links JOIN live USING (interaction_id)
    GROUP BY links.actor_id
),
pairs AS (
    SELECT a.interaction_id, a.actor_id AS a, b.actor_id AS b
    FROM links AS a JOIN links AS b
        ON a.interaction_id = b.interaction_id AND a.actor_id < b.actor_id
    WHERE $1::text IS NULL OR $1 IN (a.actor_id, b.actor_id)
),
counted AS (
    SELECT p.a, p.b, live.kind, year,
           coalesce(extract(year FROM live.lower) = extract(year FROM live.upper), false)
               AS certain
    FROM pairs AS p
    JOIN live USING (interaction_id)
    JOIN span AS sa ON sa.actor_id = p.a
    JOIN span AS sb ON sb.actor_id = p.b
    CROSS JOIN LATERAL generate_series(
        coalesce(extract(year FROM live.lower)::int, least(sa.first_year, sb.first_year)),
        coalesce(extract(year FROM live.upper)::int, greatest(sa.last_year, sb.last_year))
    ) AS year
    WHERE $2::text IS NULL OR live.kind = $2
)
SELECT a, b, kind, year, count(*) FILTER (WHERE certain) AS certain, count(*) AS possible
FROM counted
GROUP BY a, b, kind, year
ORDER BY a, b, kind, year
"""

# An id merged into another actor resolves to the survivor: its row sorts first (false < true).
GET_ACTOR_SQL: Final = """
SELECT view::text FROM projections.{actors}
WHERE view IS NOT NULL AND (actor_id = $1 OR view -> 'merged' ? $1)
ORDER BY actor_id = $1
LIMIT 1
"""
# Exact matches (id, name or alias) first, then names or aliases one of whose words starts
# with the text ($2: at the start, $4: after a space).
SEARCH_ACTORS_SQL: Final = """
SELECT view::text,
       (actor_id = lower($1) OR lower(canonical_name) = lower($1)
        OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE lower(a) = lower($1))) AS exact
FROM projections.{actors}
WHERE view IS NOT NULL
  AND (actor_id = lower($1) OR canonical_name ILIKE $2 OR canonical_name ILIKE $4
       OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE a ILIKE $2 OR a ILIKE $4))
ORDER BY exact DESC, canonical_name, actor_id
LIMIT $3
"""

"""The contacts projection's tables and every statement on them (``{interactions}`` and the
other table keys are filled in by ``sql`` with the projection version's names).

Every table is system-versioned (``projections.system_time``): a row is one version of its
item, current over ``[sys_from, sys_to)``; the live view is the rows whose ``sys_to`` is NULL.
The queries take the cursor key they read at in a parameter, so one statement serves the live
view (at the projection's checkpoint) and any as-of view.
"""

from __future__ import annotations

import functools
from typing import Final

from projections.common import table_names
from projections.system_time import current_at

__all__ = (
    "CLOSE_ACTORS_SQL",
    "CLOSE_INTERACTIONS_SQL",
    "CLOSE_LINKS_SQL",
    "CLOSE_ROLES_SQL",
    "CREATE_SQL",
    "CREATE_TRIGRAMS_SQL",
    "CUSTOM_PLANS_SQL",
    "DROP_SQL",
    "EARLIER_FACTS_SQL",
    "GET_ACTOR_SQL",
    "HISTORY_SQL",
    "MEMBER_WINDOWS_SQL",
    "MERGED_SCANS_SQL",
    "MERGED_WINDOWS",
    "NO_ACTOR",
    "OLD_LAYOUT_SQL",
    "ORDERED_SCANS_SQL",
    "SEARCH_ACTORS_SCAN_SQL",
    "SEARCH_ACTORS_SQL",
    "SEARCH_INDEX_SQL",
    "TABLES",
    "TRIGRAMS_INSTALLED_SQL",
    "merged_history_sql",
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
-- costs the server a third less than parsing it into jsonb on every write. Ids compare byte by
-- byte ("C", the order Python sorts them in): the indexes that every write maintains then
-- compare them without the locale's rules.
CREATE TABLE IF NOT EXISTS projections.{interactions} (
    interaction_id text COLLATE "C" NOT NULL,
    kind           text,
    view           text,
    lower          date,
    upper          date,
    precision      text,
    retracted      boolean NOT NULL,
    negated        boolean NOT NULL,
    aggregate      boolean NOT NULL,
    sys_from       bytea NOT NULL,
    sys_to         bytea,
    PRIMARY KEY (interaction_id, sys_from)
);
-- Who took part in each interaction version (none for a retracted one), with what a contact
-- history orders and filters on, so that a page is read from the history index alone. Open
-- day bounds are -infinity in lower_key and upper_key: newest first puts them last, and the
-- keyset comparison never meets a NULL. The writer never writes an actor and role twice for one
-- version, so the version index need not say so: it finds a version's links.
CREATE TABLE IF NOT EXISTS projections.{links} (
    interaction_id   text COLLATE "C" NOT NULL,
    actor_id         text COLLATE "C" NOT NULL,
    role             text NOT NULL,
    name_as_reported text,
    kind             text NOT NULL,
    lower_key        date NOT NULL,
    upper_key        date NOT NULL,
    negated          boolean NOT NULL,
    sys_from         bytea NOT NULL,
    sys_to           bytea
);
CREATE INDEX IF NOT EXISTS {links}_version_idx ON projections.{links} (interaction_id, sys_from);
CREATE INDEX IF NOT EXISTS {links}_history_idx
    ON projections.{links} (actor_id, upper_key DESC, lower_key DESC, interaction_id);
CREATE TABLE IF NOT EXISTS projections.{actors} (
    actor_id       text NOT NULL,
    kind           text,
    canonical_name text,
    aliases        text[] NOT NULL,
    view           jsonb,
    sys_from       bytea NOT NULL,
    sys_to         bytea,
    PRIMARY KEY (actor_id, sys_from)
);
-- get_actor follows a merge: which actor lists this id among those merged into it.
CREATE INDEX IF NOT EXISTS {actors}_merged_idx
    ON projections.{actors} USING gin ((view -> 'merged'));
CREATE TABLE IF NOT EXISTS projections.{roles} (
    actor_id        text NOT NULL,
    organisation_id text NOT NULL,
    title           text,
    lower           date,
    upper           date,
    sys_from        bytea NOT NULL,
    sys_to          bytea
);
CREATE INDEX IF NOT EXISTS {roles}_actor_idx ON projections.{roles} (actor_id);
CREATE INDEX IF NOT EXISTS {roles}_organisation_idx ON projections.{roles} (organisation_id)
"""
# Tables of this version in an earlier layout: without system time (any table here lacking
# sys_from), or links whose ids compare by the locale's rules ($2: the links table).
OLD_LAYOUT_SQL: Final = """
SELECT count(*) FROM information_schema.tables AS t
WHERE t.table_schema = 'projections' AND t.table_name = any($1::text[])
  AND NOT EXISTS (
      SELECT FROM information_schema.columns AS c
      WHERE c.table_schema = 'projections' AND c.table_name = t.table_name
        AND c.column_name = 'sys_from')
UNION ALL
SELECT count(*) FROM information_schema.columns AS c
WHERE c.table_schema = 'projections' AND c.table_name = $2 AND c.column_name = 'actor_id'
  AND c.collation_name IS DISTINCT FROM 'C'
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{interactions};
DROP TABLE IF EXISTS projections.{links};
DROP TABLE IF EXISTS projections.{actors};
DROP TABLE IF EXISTS projections.{roles}
"""
# The facts an item already had before this batch: its stream's earlier events, from the log
# itself (earlier versions of a stream come earlier in the feed, so they were applied before),
# with their cursors: the last one's is where the item's open version began.
EARLIER_FACTS_SQL: Final = """
SELECT e.stream_id, e.event_id, e.type, e.schema_version, e.data::text,
       e.transaction_id, e.position
FROM unnest($1::text[], $2::bigint[]) AS w(stream_id, below)
JOIN events AS e ON e.stream_id = w.stream_id AND e.stream_version < w.below
ORDER BY e.stream_id, e.stream_version
"""
# Close the open versions of the items a batch continues: each item's open version began at
# its last earlier event ($2) and ends where its first new one begins ($3). Matched on the
# primary key (item, sys_from), which the planner knows to be one row per item, with no need
# for statistics (a rebuild writes faster than autovacuum analyzes); and planned for each
# batch (CUSTOM_PLANS_SQL), since a generic plan cached while the tables were empty hashes the
# arrays and scans the whole table, each batch, however large it has grown.
CUSTOM_PLANS_SQL: Final = "SET LOCAL plan_cache_mode = force_custom_plan"
CLOSE_INTERACTIONS_SQL: Final = """
UPDATE projections.{interactions} AS t SET sys_to = c.sys_to
FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS c(interaction_id, sys_from, sys_to)
WHERE t.interaction_id = c.interaction_id AND t.sys_from = c.sys_from
"""
CLOSE_LINKS_SQL: Final = """
UPDATE projections.{links} AS t SET sys_to = c.sys_to
FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS c(interaction_id, sys_from, sys_to)
WHERE t.interaction_id = c.interaction_id AND t.sys_from = c.sys_from
"""
CLOSE_ACTORS_SQL: Final = """
UPDATE projections.{actors} AS t SET sys_to = c.sys_to
FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS c(actor_id, sys_from, sys_to)
WHERE t.actor_id = c.actor_id AND t.sys_from = c.sys_from
"""
CLOSE_ROLES_SQL: Final = """
UPDATE projections.{roles} AS t SET sys_to = c.sys_to
FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS c(actor_id, sys_from, sys_to)
WHERE t.actor_id = c.actor_id AND t.sys_from = c.sys_from
"""

# For a history page, inside the reader's transaction: each scan of the history index then
# walks it in page order and stops when the page is full. The planner, underestimating how
# many links pass the filters, otherwise reads all of an actor's links by bitmap and sorts
# them, or (for a merged page) reads every branch whole and sorts.
ORDERED_SCANS_SQL: Final = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = on"
MERGED_SCANS_SQL: Final = (
    "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off;"
    "SET LOCAL max_parallel_workers_per_gather = 0"
)

# The role windows current at $2 through which an organisation's ($1) history includes its
# members' interactions, by the roles' organisation index (a member with several windows has
# several rows). Their order fixes the statement's branches, so it is the same on every page.
MEMBER_WINDOWS_SQL: Final = f"""
SELECT actor_id, lower, upper FROM projections.{{roles}}
WHERE organisation_id = $1 AND actor_id <> $1 AND {current_at(2)}
ORDER BY actor_id, lower NULLS FIRST, upper NULLS LAST
"""

# What every history statement shares. $1 actor, $2 cursor key, $3 counterpart, $4 kind, $5/$6
# window, $7 certain (else possible), $8/$9/$10 the previous page's last key (infinity,
# infinity, '' for the first page), $11 rows. Newest first: upper day bound, then lower (both
# descending, open bounds last as -infinity), then interaction id.
_KEYSET: Final = """l.upper_key <= $8::date
          AND (l.upper_key < $8 OR l.lower_key < $9::date
               OR (l.lower_key = $9 AND l.interaction_id > $10::text))"""
# The other filters, on the links aliased {l}.
_ROW_FILTERS: Final = f"""{current_at(2, "{l}")}
          AND ($4::text IS NULL OR {{l}}.kind = $4)
          AND CASE WHEN $7::boolean THEN
                  ($5::date IS NULL OR {{l}}.lower_key >= $5)
                  AND ($6::date IS NULL
                       OR ({{l}}.upper_key <> '-infinity' AND {{l}}.upper_key <= $6))
              ELSE
                  ($5::date IS NULL OR {{l}}.upper_key = '-infinity' OR {{l}}.upper_key >= $5)
                  AND ($6::date IS NULL OR {{l}}.lower_key <= $6)
              END
          AND ($3::text IS NULL OR EXISTS (
              SELECT FROM projections.{{{{links}}}} AS c
              WHERE c.interaction_id = {{l}}.interaction_id AND c.actor_id = $3
                AND c.sys_from = {{l}}.sys_from))"""
# A member's interaction counts when one of its role windows overlaps the interaction's days
# (an open end overlaps everything on its side).
_IN_WINDOW: Final = """({upper} IS NULL OR {upper} >= l.lower_key)
          AND ({lower} IS NULL OR l.upper_key = '-infinity' OR {lower} <= l.upper_key)"""
# The page's entries with their views and whether the actor took part itself (else the
# entry counts through members: which ones, the caller finds from the view's participants and
# the windows it passed).
_PAGE_VIEWS: Final = """
SELECT p.upper_key, p.lower_key, p.interaction_id, p.direct, i.view
FROM page AS p
JOIN projections.{interactions} AS i
    ON i.interaction_id = p.interaction_id AND i.sys_from = p.sys_from
ORDER BY p.upper_key DESC, p.lower_key DESC, p.interaction_id
"""


def _history_branch(actor: str, window: str | None) -> str:
    # OFFSET 0 keeps the other filters out of the branch: planned once above the merge rather
    # than once per branch (planning had come to cost several times what reading did).
    direct = "true" if window is None else "false"
    return f"""(SELECT l.interaction_id, l.sys_from, l.sys_to, l.kind, l.upper_key, l.lower_key,
               {direct} AS direct
        FROM projections.{{links}} AS l
        WHERE l.actor_id = {actor} AND {_KEYSET}{"" if window is None else " AND " + window}
        ORDER BY l.upper_key DESC, l.lower_key DESC, l.interaction_id
        OFFSET 0)"""


MERGED_WINDOWS: Final = (0, 1, 2, 4, 8, 16, 32, 64)
"""How many role windows a merged history statement has branches for (the caller fills unused
ones with ``NO_ACTOR``); an organisation with more windows than the last is read by
``HISTORY_SQL``."""
NO_ACTOR: Final = ""
"""The member of an unused branch: no actor has an empty id, so its index scan finds nothing.
(A NULL would be folded into an empty branch that the merge would have to sort.)"""


@functools.cache
def merged_history_sql(windows: int) -> str:
    """A contact history page through the actor's own links and ``windows`` role windows
    ($12/$13/$14 arrays of that length), as one ordered merge.

    Each branch scans the history index of one actor in page order; the merge (a Merge Append)
    takes from whichever branch is next and stops once the page is full, so a page costs one
    index descent per window plus what it holds, however long each member's history is. An
    interaction found through several branches is one entry, direct if the actor took part.
    """
    branches = [_history_branch("$1", None)]
    for n in range(1, windows + 1):
        bounds = _IN_WINDOW.format(lower=f"($13::date[])[{n}]", upper=f"($14::date[])[{n}]")
        branches.append(_history_branch(f"($12::text[])[{n}]", bounds))
    union = "\n    UNION ALL\n    ".join(branches)
    return f"""
WITH page AS (
    -- All of an interaction's links current at one cursor share its version's sys_from.
    SELECT upper_key, lower_key, interaction_id,
           (array_agg(sys_from))[1] AS sys_from, bool_or(direct) AS direct
    FROM (
    {union}
    ) AS f
    WHERE {_ROW_FILTERS.format(l="f")}
    GROUP BY upper_key, lower_key, interaction_id
    ORDER BY upper_key DESC, lower_key DESC, interaction_id
    LIMIT $11
){_PAGE_VIEWS}"""


# The same page for an organisation with more role windows than a merged statement has
# branches for (the same parameters). "selves" are the actor and its members' windows
# ($12-$14), each read by a LATERAL scan of the links' history index in page order that stops
# after $11 interactions: windows x page at most.
HISTORY_SQL: Final = f"""
WITH selves AS MATERIALIZED (
    SELECT $1::text AS actor_id, NULL::date AS lower, NULL::date AS upper, true AS direct
    UNION ALL
    SELECT s.actor_id, s.lower, s.upper, false
    FROM unnest($12::text[], $13::date[], $14::date[]) AS s(actor_id, lower, upper)
),
found AS (
    SELECT f.interaction_id, f.sys_from, f.upper_key, f.lower_key, s.direct
    FROM selves AS s
    CROSS JOIN LATERAL (
        SELECT DISTINCT ON (l.upper_key, l.lower_key, l.interaction_id)
               l.interaction_id, l.sys_from, l.upper_key, l.lower_key
        FROM projections.{{links}} AS l
        WHERE l.actor_id = s.actor_id AND {_KEYSET} AND {_ROW_FILTERS.format(l="l")}
          AND {_IN_WINDOW.format(lower="s.lower", upper="s.upper")}
        ORDER BY l.upper_key DESC, l.lower_key DESC, l.interaction_id
        LIMIT $11
    ) AS f
),
page AS (
    SELECT interaction_id, sys_from, upper_key, lower_key, bool_or(direct) AS direct
    FROM found
    GROUP BY interaction_id, sys_from, upper_key, lower_key
    ORDER BY upper_key DESC, lower_key DESC, interaction_id
    LIMIT $11
){_PAGE_VIEWS}"""

# The actor $1 at the cursor key $2; an id merged into another actor resolves to the survivor
# (found by the index on the merged ids), which comes first.
GET_ACTOR_SQL: Final = f"""
SELECT view::text FROM (
    -- OFFSET 0 keeps the merged-ids index: planned with the ORDER BY ... LIMIT 1, the
    -- planner walked the primary key in id order and filtered every actor (21 ms at 1M).
    (SELECT view, 0 AS rank FROM (
         SELECT view, actor_id FROM projections.{{actors}}
         WHERE view -> 'merged' ? $1 AND actor_id <> $1 AND {current_at(2)}
         OFFSET 0
     ) AS merged
     ORDER BY actor_id LIMIT 1)
    UNION ALL
    (SELECT view, 1 FROM projections.{{actors}}
     WHERE actor_id = $1 AND view IS NOT NULL AND {current_at(2)})
) AS found
ORDER BY rank
LIMIT 1
"""
# Every name an actor is known by, for the trigram index the search filters through:
# pg_trgm's GIN indexes text, not arrays, and an index expression must be IMMUTABLE, which
# array_to_string is not; the view's aliases as JSON text are (->> and || are). A text holds
# verbatim in that JSON unless it has a character JSON escapes (", \, control characters):
# such a search takes the plain filter (``SEARCH_ACTORS_SCAN_SQL``).
_NAMES: Final = "(coalesce(canonical_name, '') || ' ' || coalesce(view ->> 'aliases', ''))"
TRIGRAMS_INSTALLED_SQL: Final = "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_trgm')"
CREATE_TRIGRAMS_SQL: Final = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
SEARCH_INDEX_SQL: Final = f"""
CREATE INDEX IF NOT EXISTS {{actors}}_search_idx ON projections.{{actors}}
    USING gin ({_NAMES} gin_trgm_ops)
"""


def _search_sql(candidates: str) -> str:
    return f"""
SELECT view, exact, canonical_name, actor_id FROM (
    SELECT view::text AS view, canonical_name, actor_id,
           (actor_id = lower($1) OR lower(canonical_name) = lower($1)
            OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE lower(a) = lower($1))) AS exact
    FROM projections.{{actors}}
    WHERE {candidates} view IS NOT NULL AND {current_at(5)}
      AND (actor_id = lower($1) OR actor_id = any($9::text[])
           OR canonical_name ILIKE $2 OR canonical_name ILIKE $4
           OR EXISTS (SELECT 1 FROM unnest(aliases) AS a WHERE a ILIKE $2 OR a ILIKE $4))
) AS m
WHERE $6::boolean IS NULL
   OR (NOT m.exact AND $6)
   OR (m.exact = $6 AND (m.canonical_name, m.actor_id) > ($7::text, $8::text))
ORDER BY exact DESC, canonical_name, actor_id
LIMIT $3
"""


# Actors at the cursor key $5 whose id, name or alias is $1 (exact), or one of whose name's or
# aliases' words starts with it ($2: at the start, $4: after a space), or whose id is in $9
# (the actors the name spells in another transliteration, from the name index). Order: exact
# first, then canonical name, then id; $6/$7/$8 the previous page's last (exact, name, id),
# NULL for the first page; $3 rows.
#
# Every such actor's names hold $1 somewhere, or its id is given: that condition (id matches
# by the primary key, or a trigram match over the names) picks the candidates through indexes,
# and the exact conditions keep the matches. Without pg_trgm it is one more filter.
SEARCH_ACTORS_SQL: Final = _search_sql(
    f"(actor_id = lower($1) OR actor_id = any($9::text[]) OR {_NAMES} ILIKE '%' || $2) AND"
)
# The same, for a text the index's JSON would hold escaped: every current actor filtered.
SEARCH_ACTORS_SCAN_SQL: Final = _search_sql("")

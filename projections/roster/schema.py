"""The roster's tables and every statement on them (``{table}``, ``{links}``: ``tables``).

``<prefix>_v<n>`` holds each meeting's views, one version per event routed to it (system time:
``projections.system_time``), and the draft the open version was folded from;
``<prefix>_links_v<n>`` links declaration and interaction streams to their meeting.
"""

from __future__ import annotations

from typing import Final

from projections.common import table_names
from projections.system_time import SYS_COLUMNS, current_at

__all__ = (
    "CATEGORIES",
    "CLOSE_SQL",
    "CREATE_SQL",
    "CUSTOM_PLANS_SQL",
    "DROP_SQL",
    "EARLIER_FACTS_SQL",
    "GET_SQL",
    "LIST_SQL",
    "LOAD_DRAFTS_SQL",
    "LOAD_LINKS_SQL",
    "LZ4_SQL",
    "OPEN_COLUMNS",
    "PLAIN_COLUMNS_SQL",
    "SAVE_LINKS_SQL",
    "USE_LZ4_SQL",
    "tables",
)

CATEGORIES: Final = ("meeting", "declaration", "interaction")
"""The feed categories whose events may belong to a meeting."""

_TABLES: Final = {"table": "", "links": "_links"}


def tables(prefix: str, version: int) -> dict[str, str]:
    """The names that fill the statements' ``{table}`` and ``{links}``."""
    return table_names(prefix, version, _TABLES)


# One row per version of a meeting's roster: each event routed to the meeting closes the open
# version (``sys_to``) and opens the next (``projections.system_time``). Only the open version
# keeps the draft that the next batch folds into. ``body`` is the view as the API sends it (its
# cursor already opaque), so that a page is the stored bytes passed through: bytea, written once
# and read whole, never parsed by the server (which would cost most of a rebuild's time in the
# database) nor by the API. It is JSON ``null`` while a meeting has facts but no live
# scheduling (its scheduling was retracted, or a declaration names a meeting not recorded yet):
# the meeting is then unknown at that point.
CREATE_SQL: Final = (
    """
CREATE TABLE IF NOT EXISTS projections.{table} (
    meeting_id text NOT NULL,
    """
    + SYS_COLUMNS
    + """,
    draft      bytea,
    body       bytea NOT NULL,
    PRIMARY KEY (meeting_id, sys_from),
    CHECK (sys_to IS NOT NULL OR draft IS NOT NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS {table}_open_idx
    ON projections.{table} (meeting_id) WHERE sys_to IS NULL;
CREATE TABLE IF NOT EXISTS projections.{links} (
    stream_id  text PRIMARY KEY,
    meeting_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS {links}_meeting_idx ON projections.{links} (meeting_id)
"""
)
# lz4 where the server has it (Debian's does; the embedded pgserver's does not): every batch
# writes a view per routed event and a draft per meeting, and pglz takes twice as long.
LZ4_SQL: Final = """
SELECT 'lz4' = any(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
"""
PLAIN_COLUMNS_SQL: Final = """
SELECT count(*) FROM pg_attribute
WHERE attrelid = $1::regclass AND attname IN ('draft', 'body') AND attcompression <> 'l'
"""
USE_LZ4_SQL: Final = """
ALTER TABLE projections.{table}
    ALTER COLUMN draft SET COMPRESSION lz4, ALTER COLUMN body SET COMPRESSION lz4
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{table};
DROP TABLE IF EXISTS projections.{links}
"""
# A batch's statements planned for its ids and the tables as they are: the runner prepares them
# once, and a generic plan made while the tables were empty (a rebuild's first batches) kept a
# scan of every row of the table per batch as it grew. Planning costs well under a millisecond.
CUSTOM_PLANS_SQL: Final = "SET LOCAL plan_cache_mode = force_custom_plan"
# Lookups of a batch's ids join them (here and in LOAD_DRAFTS_SQL, CLOSE_SQL) rather than
# filter by ``= any($1)``: a plan that scans the table cannot hash a parameter's array, and
# then compares every id with every row.
LOAD_LINKS_SQL: Final = """
SELECT l.stream_id, l.meeting_id
FROM unnest($1::text[]) AS wanted(stream_id)
JOIN projections.{links} AS l USING (stream_id)
"""
SAVE_LINKS_SQL: Final = """
INSERT INTO projections.{links} (stream_id, meeting_id)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (stream_id) DO NOTHING
"""
LOAD_DRAFTS_SQL: Final = """
SELECT t.meeting_id, t.draft
FROM unnest($1::text[]) AS wanted(meeting_id)
JOIN projections.{table} AS t ON t.meeting_id = wanted.meeting_id AND t.sys_to IS NULL
"""
# The facts meetings had before this batch ($2, $3: its first event), from the log itself:
# the events of their own streams and of the streams linked to them (links made in this batch
# are saved before this runs). Everything below the batch is committed and was applied.
EARLIER_FACTS_SQL: Final = """
WITH streams AS (
    SELECT 'meeting-' || meeting_id AS stream_id FROM unnest($1::text[]) AS m(meeting_id)
    UNION
    SELECT l.stream_id
    FROM unnest($1::text[]) AS wanted(meeting_id)
    JOIN projections.{links} AS l USING (meeting_id)
)
SELECT e.stream_id, e.event_id, e.type, e.schema_version, e.data::text AS data, e.recorded_at,
       e.transaction_id, e.position
FROM streams JOIN events AS e USING (stream_id)
WHERE (e.transaction_id, e.position) < ($2::xid8, $3::bigint)
ORDER BY e.transaction_id, e.position
"""
# The open versions of the batch's meetings closed where their successors open ($2); their
# drafts are no longer needed.
CLOSE_SQL: Final = """
UPDATE projections.{table} AS t
SET sys_to = closing.sys_from, draft = NULL
FROM unnest($1::text[], $2::bytea[]) AS closing(meeting_id, sys_from)
WHERE t.meeting_id = closing.meeting_id AND t.sys_to IS NULL
"""
# The versions a batch opens are copied in (COPY, binary): a batch's views are megabytes, which
# an INSERT from unnest'ed arrays took half as long again to send and unpack.
OPEN_COLUMNS: Final = ("meeting_id", "sys_from", "sys_to", "draft", "body")
# The version current at $2 is the last one opened at or before it (a meeting's versions follow
# each other without a gap), found by one backward step in the primary key.
GET_SQL: Final = (
    """
SELECT t.body FROM projections.{table} AS t
WHERE t.meeting_id = $1 AND """
    + current_at(2, "t")
    + """
ORDER BY t.sys_from DESC
LIMIT 1
"""
)
# The meetings after $2 in id order, each looked up as GET_SQL does: a skip scan of the primary
# key (the next meeting id, then its version at $1), so a page costs its meetings' lookups
# whatever the number of versions each has. A meeting unknown at $1 (no version yet, or a
# JSON null view) is skipped.
LIST_SQL: Final = (
    """
WITH RECURSIVE meetings AS (
    (SELECT t.meeting_id FROM projections.{table} AS t
     WHERE t.meeting_id > $2 ORDER BY t.meeting_id LIMIT 1)
    UNION ALL
    SELECT (SELECT t.meeting_id FROM projections.{table} AS t
            WHERE t.meeting_id > m.meeting_id ORDER BY t.meeting_id LIMIT 1)
    FROM meetings AS m
    WHERE m.meeting_id IS NOT NULL
)
SELECT v.body
FROM meetings AS m
CROSS JOIN LATERAL (
    SELECT t.body FROM projections.{table} AS t
    WHERE t.meeting_id = m.meeting_id AND """
    + current_at(1, "t")
    + """
    ORDER BY t.sys_from DESC
    LIMIT 1
) AS v
WHERE v.body <> 'null'::bytea
LIMIT $3
"""
)

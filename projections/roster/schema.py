"""The roster's tables and every statement on them (``{table}``, ``{links}``: ``tables``).

``<prefix>_v<n>`` holds each meeting's view and the draft it was folded from;
``<prefix>_links_v<n>`` links declaration and interaction streams to their meeting.
"""

from __future__ import annotations

from typing import Final

from projections.common import table_names

__all__ = (
    "CATEGORIES",
    "COLUMNS_SQL",
    "CREATE_SQL",
    "DROP_SQL",
    "EARLIER_FACTS_SQL",
    "GET_SQL",
    "LIST_SQL",
    "LOAD_DRAFTS_SQL",
    "LOAD_LINKS_SQL",
    "LZ4_SQL",
    "PLAIN_COLUMNS_SQL",
    "SAVE_LINKS_SQL",
    "SAVE_SQL",
    "UPGRADE_SQL",
    "USE_LZ4_SQL",
    "tables",
)

CATEGORIES: Final = ("meeting", "declaration", "interaction")
"""The feed categories whose events may belong to a meeting."""

_TABLES: Final = {"table": "", "links": "_links"}


def tables(prefix: str, version: int) -> dict[str, str]:
    """The names that fill the statements' ``{table}`` and ``{links}``."""
    return table_names(prefix, version, _TABLES)


CREATE_SQL: Final = """
CREATE TABLE IF NOT EXISTS projections.{table} (
    meeting_id text PRIMARY KEY,
    draft      bytea,
    view       jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS projections.{links} (
    stream_id  text PRIMARY KEY,
    meeting_id text NOT NULL
);
CREATE INDEX IF NOT EXISTS {links}_meeting_idx ON projections.{links} (meeting_id)
"""
COLUMNS_SQL: Final = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = 'projections' AND table_name = $1
"""
# A table from before drafts were kept: its rows get a draft by a fold from the log.
UPGRADE_SQL: Final = """
ALTER TABLE projections.{table} ADD COLUMN IF NOT EXISTS draft bytea;
ALTER TABLE projections.{table} DROP COLUMN IF EXISTS facts
"""
# lz4 where the server has it (Debian's does; the embedded pgserver's does not): every batch
# rewrites its meetings' drafts and views, and pglz takes twice as long.
LZ4_SQL: Final = """
SELECT 'lz4' = any(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
"""
PLAIN_COLUMNS_SQL: Final = """
SELECT count(*) FROM pg_attribute
WHERE attrelid = $1::regclass AND attname IN ('draft', 'view') AND attcompression <> 'l'
"""
USE_LZ4_SQL: Final = """
ALTER TABLE projections.{table}
    ALTER COLUMN draft SET COMPRESSION lz4, ALTER COLUMN view SET COMPRESSION lz4
"""
DROP_SQL: Final = """
DROP TABLE IF EXISTS projections.{table};
DROP TABLE IF EXISTS projections.{links}
"""
# Joined to the ids rather than filtered by ``= any($1)``: a cached generic plan kept the seq
# scan it chose while the table was empty, and without a constant array it cannot hash it, so
# each batch compared every id with every row (48 ms a batch over 1M events, most of a roster
# rebuild's time in the database, against well under 1 ms through the primary key).
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
JOIN projections.{table} AS t USING (meeting_id)
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
# The view is JSON ``null`` (not SQL NULL) while a meeting has facts but no live scheduling,
# e.g. its scheduling was retracted, or a declaration names a meeting not recorded yet.
SAVE_SQL: Final = """
INSERT INTO projections.{table} (meeting_id, draft, view, updated_at)
SELECT meeting_id, draft, view::jsonb, now()
FROM unnest($1::text[], $2::bytea[], $3::text[]) AS input(meeting_id, draft, view)
ON CONFLICT (meeting_id) DO UPDATE
SET draft = excluded.draft, view = excluded.view, updated_at = excluded.updated_at
"""
GET_SQL: Final = "SELECT view::text FROM projections.{table} WHERE meeting_id = $1"
LIST_SQL: Final = """
SELECT view::text FROM projections.{table} WHERE view <> 'null'::jsonb ORDER BY meeting_id
"""

-- Statistics for the feed's category filter, split_part(stream_id, '-', 1) = any($5).
--
-- Without them the planner guessed that a filter on an expression keeps half a percent of the
-- rows. A projection reading two categories (two thirds of the log) was then planned as if a
-- page of 5,000 needed a million rows' walk along the feed index, and got a parallel scan of
-- the whole table with an external sort instead: 1.3 to 2.3 s per page over 1M events, against
-- 36 ms once the planner knows the categories' shares. asyncpg's cached statements later
-- switched to a generic plan, so only a process's first pages paid, but every projector restart
-- and every one-off read (rebuild, export, as-of) did. Expression statistics cost nothing on
-- insert; ANALYZE (and autovacuum) keeps them.
CREATE STATISTICS events_category_stats ON (split_part(stream_id, '-', 1)) FROM events;
ANALYZE events;

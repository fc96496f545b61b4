-- How full the server is. Every client connection counts, idle ones included (idle leaks exhaust a
-- server as surely as busy ones), against the slots an ordinary role can use. poolctl's own session
-- is left out. The seeds' figure (non-idle sessions only) is reported beside it as busy_percent.
WITH limits AS (
  SELECT
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
    -- reserved_connections exists from PostgreSQL 16; missing_ok returns NULL before that.
    coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections
),
sessions AS (
  SELECT state
  FROM pg_stat_activity
  WHERE backend_type = 'client backend'
    AND pid <> pg_backend_pid()
),
counts AS (
  SELECT
    count(*)::int AS connections,
    count(*) FILTER (WHERE state = 'active')::int AS active,
    count(*) FILTER (WHERE state = 'idle')::int AS idle,
    count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int AS idle_in_transaction,
    count(*) FILTER (WHERE state <> 'idle')::int AS busy,
    -- Without superuser or pg_read_all_stats, other roles' sessions show no state at all.
    count(*) FILTER (WHERE state IS NULL)::int AS state_hidden
  FROM sessions
)
SELECT
  c.connections,
  c.active,
  c.idle,
  c.idle_in_transaction,
  c.busy,
  c.state_hidden,
  l.max_connections,
  l.superuser_reserved_connections,
  l.reserved_connections,
  l.max_connections - l.superuser_reserved_connections - l.reserved_connections AS usable_connections,
  round(100.0 * c.connections
        / greatest(l.max_connections - l.superuser_reserved_connections - l.reserved_connections, 1), 1)::float8
    AS utilization_percent,
  round(100.0 * c.busy
        / greatest(l.max_connections - l.superuser_reserved_connections - l.reserved_connections, 1), 1)::float8
    AS busy_percent
FROM counts c, limits l;

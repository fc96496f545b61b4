-- How full the server is. Every client connection counts, idle ones included (idle leaks exhaust a
-- server as surely as busy ones), against the slots an ordinary role can use. poolctl's own session
-- is left out. The seeds' figure (non-idle sessions only) is reported beside it as busy_percent.
--
-- Least privilege: without superuser or pg_read_all_stats (pg_monitor includes it), PostgreSQL
-- shows another role's session with only pid, datid, usesysid and application_name; its
-- backend_type, state and query are NULL. Counting by backend_type = 'client backend' would then
-- read an exhausted server as empty. So a hidden row counts as a client connection when it has a
-- role and a database (as every client backend has; the checkpointer, the WAL writer and the
-- launchers have neither): it may also be a parallel, autovacuum or background worker connected to
-- a database, which overcounts by a few, never under. `sees` says whether the states (active, idle, ...) can be trusted at all.
WITH limits AS (
  SELECT
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
    -- reserved_connections exists from PostgreSQL 16; missing_ok returns NULL before that.
    coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections
),
sessions AS (
  SELECT state, backend_type IS NULL AS hidden
  FROM pg_stat_activity
  WHERE pid <> pg_backend_pid()
    AND (backend_type = 'client backend'
         OR (backend_type IS NULL AND usesysid IS NOT NULL AND datid IS NOT NULL))
),
counts AS (
  SELECT
    count(*)::int AS connections,
    count(*) FILTER (WHERE state = 'active')::int AS active,
    count(*) FILTER (WHERE state = 'idle')::int AS idle,
    count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int AS idle_in_transaction,
    count(*) FILTER (WHERE state <> 'idle')::int AS busy,
    count(*) FILTER (WHERE hidden OR state IS NULL)::int AS state_hidden
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
    AS busy_percent,
  -- pg_has_role with USAGE follows inheritance as pg_stat_activity's own check does, and is true
  -- for superusers.
  CASE WHEN pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN 'all sessions'
       ELSE 'own role only' END AS sees,
  quote_ident(current_user) AS role
FROM counts c, limits l;

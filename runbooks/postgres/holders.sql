-- Who holds the connections: by application, user, client address and database.
WITH limits AS (
  SELECT greatest(current_setting('max_connections')::int
                  - current_setting('superuser_reserved_connections')::int
                  - coalesce(current_setting('reserved_connections', true)::int, 0), 1) AS usable
)
SELECT
  coalesce(nullif(application_name, ''), '(none)') AS application,
  usename AS user,
  coalesce(host(client_addr), 'local') AS client,
  datname AS database,
  count(*)::int AS connections,
  count(*) FILTER (WHERE state = 'active')::int AS active,
  count(*) FILTER (WHERE state = 'idle')::int AS idle,
  count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int AS idle_in_transaction,
  round(100.0 * count(*) / (SELECT usable FROM limits), 1)::float8 AS share_percent
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
GROUP BY 1, 2, 3, 4
ORDER BY connections DESC, application;

-- Idle connections untouched for longer than $1 seconds: connection-leak suspects
-- (exhaustion-response.md "Identify connection leaks").
SELECT
  pid,
  usename AS user,
  application_name AS application,
  coalesce(host(client_addr), 'local') AS client,
  datname AS database,
  round(extract(epoch FROM now() - state_change)::numeric, 1)::float8 AS idle_s,
  query AS last_query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state = 'idle'
  AND now() - state_change > make_interval(secs => $1)
ORDER BY state_change;

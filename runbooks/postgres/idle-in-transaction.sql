-- Sessions idle inside an open transaction for longer than $1 seconds: they hold a connection and
-- their locks while doing nothing (RUNBOOK-006 "Long-Running Transactions").
SELECT
  pid,
  usename AS user,
  application_name AS application,
  coalesce(host(client_addr), 'local') AS client,
  datname AS database,
  state,
  round(extract(epoch FROM now() - xact_start)::numeric, 1)::float8 AS transaction_s,
  round(extract(epoch FROM now() - state_change)::numeric, 1)::float8 AS idle_s,
  query AS last_query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state LIKE 'idle in transaction%'
  AND now() - state_change > make_interval(secs => $1)
ORDER BY xact_start;

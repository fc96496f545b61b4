-- Queries running longer than $1 seconds (RUNBOOK-006 "Identify Long-Running Queries",
-- exhaustion-response.md "Connection Status Assessment"). poolctl excludes itself by pid rather than
-- by the seed's `query NOT LIKE '%pg_stat_activity%'`, which would also hide application queries.
SELECT
  pid,
  usename AS user,
  application_name AS application,
  coalesce(host(client_addr), 'local') AS client,
  datname AS database,
  round(extract(epoch FROM now() - query_start)::numeric, 1)::float8 AS running_s,
  coalesce(wait_event_type || ':' || wait_event, '') AS waiting_on,
  query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state = 'active'
  AND now() - query_start > make_interval(secs => $1)
ORDER BY query_start;

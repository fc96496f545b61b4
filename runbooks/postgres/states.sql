-- Connections by state, with how long the oldest has been in it (exhaustion-response.md,
-- "Current connection status").
SELECT
  coalesce(state, '(unknown)') AS state,
  count(*)::int AS connections,
  round(max(extract(epoch FROM now() - state_change))::numeric, 1)::float8 AS longest_in_state_s,
  round(max(extract(epoch FROM now() - query_start))::numeric, 1)::float8 AS max_query_age_s
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
GROUP BY state
ORDER BY connections DESC;

-- Connection-leak evidence (RUNBOOK-006 Root cause A): per application, the sessions idle longer
-- than $1 seconds (leak_idle_after), which a pool that returns its connections would have reused.
SELECT
  coalesce(nullif(application_name, ''), '(no application_name)') AS application,
  usename AS user,
  count(*)::int AS sessions,
  round(max(extract(epoch FROM now() - state_change))::numeric, 1)::float8 AS oldest_idle_s
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state = 'idle'
  AND now() - state_change > make_interval(secs => $1)
GROUP BY 1, 2
ORDER BY sessions DESC, oldest_idle_s DESC;

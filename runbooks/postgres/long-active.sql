-- Candidates for cancel-long and kill-long: queries active for longer than $1 seconds
-- (RUNBOOK-006 Option 1: terminate past 5 minutes; exhaustion-response.md "Kill long queries":
-- cancel past 2 minutes). Columns as the Session type in src/targets/types.ts requires.
SELECT pid, backend_start::text AS session_token, query_start::text AS query_token,
       usename AS user, application_name AS application,
       coalesce(host(client_addr), 'local') AS client, state,
       round(extract(epoch FROM now() - query_start)::numeric, 1)::float8 AS in_state_s, query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state = 'active'
  AND now() - query_start > make_interval(secs => $1)
ORDER BY query_start;

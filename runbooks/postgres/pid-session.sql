-- Candidates (columns as src/targets/types.ts Session requires): the one client session with
-- pid $1, whatever its state (RUNBOOK-006 "Kill specific query").
SELECT pid, backend_start::text AS session_token, query_start::text AS query_token,
       usename AS user, application_name AS application,
       coalesce(host(client_addr), 'local') AS client, state,
       round(extract(epoch FROM now() - state_change)::numeric, 1)::float8 AS in_state_s, query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND pid = $1;

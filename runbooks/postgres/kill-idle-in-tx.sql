-- Candidates for kill-idle-in-tx: sessions idle inside a transaction for longer than $1
-- seconds. Columns as the Session type in src/targets/types.ts requires.
SELECT pid, backend_start::text AS session_token, query_start::text AS query_token,
       usename AS user, application_name AS application,
       coalesce(host(client_addr), 'local') AS client, state,
       round(extract(epoch FROM now() - state_change)::numeric, 1)::float8 AS in_state_s, query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state LIKE 'idle in transaction%'
  AND now() - state_change > make_interval(secs => $1)
ORDER BY state_change;

-- Sessions waiting on a lock, and the sessions that block them. A blocker that is idle in
-- transaction is the classic cause of a pile-up that exhausts the pool.
SELECT
  w.pid,
  w.usename AS user,
  w.application_name AS application,
  round(extract(epoch FROM now() - w.query_start)::numeric, 1)::float8 AS waiting_s,
  array_to_string(pg_blocking_pids(w.pid), ',') AS blocked_by,
  (SELECT string_agg(DISTINCT coalesce(b.state, '?'), ',')
     FROM pg_stat_activity b
    WHERE b.pid = ANY (pg_blocking_pids(w.pid))) AS blocker_state,
  w.query
FROM pg_stat_activity w
WHERE w.backend_type = 'client backend'
  AND w.pid <> pg_backend_pid()
  AND w.wait_event_type = 'Lock'
  AND cardinality(pg_blocking_pids(w.pid)) > 0
ORDER BY w.query_start;

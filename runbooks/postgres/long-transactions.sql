-- Long-transaction evidence (RUNBOOK-006 Root cause B): per application, the sessions idle in a
-- transaction longer than $1 seconds (idle_in_tx_after), and how many sessions wait on their locks.
WITH idle_tx AS (
  SELECT pid, usename, application_name, xact_start
  FROM pg_stat_activity
  WHERE backend_type = 'client backend'
    AND pid <> pg_backend_pid()
    AND state LIKE 'idle in transaction%'
    AND now() - state_change > make_interval(secs => $1)
),
waiters AS (
  SELECT b.blocker, count(*)::int AS waiting
  FROM pg_stat_activity a
  CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS b(blocker)
  WHERE a.pid <> pg_backend_pid()
  GROUP BY b.blocker
)
SELECT
  coalesce(nullif(t.application_name, ''), '(no application_name)') AS application,
  t.usename AS user,
  count(*)::int AS sessions,
  round(max(extract(epoch FROM now() - t.xact_start))::numeric, 1)::float8 AS oldest_transaction_s,
  coalesce(sum(w.waiting), 0)::int AS lock_waiters
FROM idle_tx t
LEFT JOIN waiters w ON w.blocker = t.pid
GROUP BY 1, 2
ORDER BY sessions DESC;

-- Idle sessions grouped by who holds them and what they last ran (exhaustion-response.md
-- "Identify connection leaks", RUNBOOK-006 Root cause A). A leak's signature: one application's
-- sessions with the same last query, left idle at many different moments (each leaked connection
-- was checked out at its own moment and never returned), several past $1 seconds
-- (leak_idle_after). A pool that merely went quiet leaves its sessions idle at one moment.
-- newest_s is the youngest session of a group, so every session of it is at least that old.
SELECT
  coalesce(nullif(application_name, ''), '(none)') AS application,
  usename AS user,
  coalesce(host(client_addr), 'local') AS client,
  state,
  count(*)::int AS sessions,
  count(*) FILTER (WHERE now() - state_change >= make_interval(secs => $1))::int AS past_leak_after,
  -- The whole seconds at which the aged ones went idle: one for a burst, many for a leak.
  count(DISTINCT floor(extract(epoch FROM state_change)))
    FILTER (WHERE now() - state_change >= make_interval(secs => $1))::int AS moments,
  round(extract(epoch FROM now() - min(state_change))::numeric, 1)::float8 AS oldest_s,
  round(extract(epoch FROM now() - max(state_change))::numeric, 1)::float8 AS newest_s,
  round(extract(epoch FROM now() - max(state_change)
                FILTER (WHERE now() - state_change >= make_interval(secs => $1)))::numeric,
        1)::float8 AS aged_newest_s,
  left(query, 300) AS last_query
FROM pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND state IN ('idle', 'idle in transaction', 'idle in transaction (aborted)')
GROUP BY 1, 2, 3, 4, query
ORDER BY sessions DESC, oldest_s DESC;

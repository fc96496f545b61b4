-- The prevention settings as a NEW session on this database gets them (RUNBOOK-006 Prevention 2,
-- exhaustion-response.md "Prevention"): one row per setting, `seconds` 0 meaning off.
--
-- `ALTER DATABASE … SET` reaches new sessions only: a session's own SHOW keeps the value it started
-- with. So the database-level value (pg_db_role_setting, this database, every role) wins here over
-- the session's default, except where a role-level setting (source user / database user) would
-- override it for the role poolctl connects as. prevent connects without poolctl's own
-- statement_timeout on the server (its client-side timeout still holds), so the session's default
-- is the server's. Settings that do not exist in this version (idle_session_timeout before 14,
-- transaction_timeout before 17) have no row.
WITH db AS (
  SELECT split_part(cfg, '=', 1) AS name, substr(cfg, strpos(cfg, '=') + 1) AS value
  FROM pg_db_role_setting s
  JOIN pg_database d ON d.oid = s.setdatabase
  CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
  WHERE d.datname = current_database() AND s.setrole = 0
),
timeouts AS (
  SELECT
    p.name,
    -- 'client': set by the connecting client (poolctl's own statement_timeout outside prevent):
    -- what a new session gets is then unknown here, never read as the client's value.
    CASE WHEN db.value IS NOT NULL AND p.source NOT IN ('user', 'database user')
         THEN db.value WHEN p.source = 'client' THEN NULL ELSE p.reset_val END AS raw,
    CASE WHEN db.value IS NOT NULL AND p.source NOT IN ('user', 'database user')
         THEN 'ALTER DATABASE' ELSE p.source END AS source
  FROM pg_settings p
  LEFT JOIN db ON db.name = p.name
  WHERE p.name IN ('statement_timeout', 'idle_in_transaction_session_timeout',
                   'idle_session_timeout', 'transaction_timeout')
),
parsed AS (
  SELECT name, source,
    -- A bare number is in the setting's unit (ms); ALTER DATABASE keeps the text as written.
    CASE WHEN raw ~ '^\s*[0-9.]+\s*$' THEN raw::numeric / 1000
         ELSE (SELECT m[1]::numeric * CASE m[2] WHEN 'us' THEN 0.000001 WHEN 'ms' THEN 0.001
                 WHEN 's' THEN 1 WHEN 'min' THEN 60 WHEN 'h' THEN 3600 WHEN 'd' THEN 86400 END
               FROM regexp_match(raw, '^\s*([0-9.]+)\s*(us|ms|s|min|h|d)\s*$') AS m)
    END AS seconds
  FROM timeouts
)
SELECT name AS setting,
  CASE WHEN seconds IS NULL THEN 'unknown' WHEN seconds = 0 THEN 'off'
       ELSE seconds::float8 || 's' END AS value,
  seconds::float8 AS number,
  source,
  current_database() AS database
FROM parsed
UNION ALL
SELECT name, setting, setting::float8, source, current_database()
FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections')
ORDER BY 1;

-- The value of the timeout setting $1 (statement_timeout, idle_in_transaction_session_timeout) a
-- new session on this database gets, in seconds, for the prevent fixes' preview and read-back: the
-- database-level setting when there is one (what ALTER DATABASE … SET wrote; this session's own
-- SHOW would not show it), else the session's default. 0 is off. `refused`: why this role may
-- not ALTER DATABASE (only its owner, a member of the owner's role, or a superuser may), else NULL.
WITH db AS (
  SELECT substr(cfg, strpos(cfg, '=') + 1) AS value
  FROM pg_db_role_setting s
  JOIN pg_database d ON d.oid = s.setdatabase
  CROSS JOIN LATERAL unnest(s.setconfig) AS cfg
  WHERE d.datname = current_database() AND s.setrole = 0 AND split_part(cfg, '=', 1) = $1::text
),
who AS (
  SELECT r.rolsuper OR pg_has_role(current_user, d.datdba, 'MEMBER') AS may,
    d.datname, pg_get_userbyid(d.datdba) AS owner
  FROM pg_roles r, pg_database d
  WHERE r.rolname = current_user AND d.datname = current_database()
),
raw AS (
  SELECT coalesce((SELECT value FROM db), (SELECT reset_val FROM pg_settings WHERE name = $1::text)) AS raw
)
SELECT $1::text AS setting,
  (CASE WHEN raw ~ '^\s*[0-9.]+\s*$' THEN raw::numeric / 1000
        ELSE (SELECT m[1]::numeric * CASE m[2] WHEN 'us' THEN 0.000001 WHEN 'ms' THEN 0.001
                WHEN 's' THEN 1 WHEN 'min' THEN 60 WHEN 'h' THEN 3600 WHEN 'd' THEN 86400 END
              FROM regexp_match(raw, '^\s*([0-9.]+)\s*(us|ms|s|min|h|d)\s*$') AS m)
   END)::float8 AS value,
  (SELECT CASE WHEN may THEN NULL
     ELSE format('ALTER DATABASE %I needs its owner (%s) or a superuser, and %s is neither', datname, owner, current_user)
   END FROM who) AS refused
FROM raw;

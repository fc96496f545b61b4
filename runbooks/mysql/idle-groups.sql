-- Sleeping connections grouped by who holds them and whether a transaction is open
-- (exhaustion-response.md "Identify connection leaks", RUNBOOK-006 Root cause A). A leak's
-- signature: one program's (or account's) connections left asleep at many different moments
-- (each leaked connection was checked out at its own moment and never returned), several past
-- ? seconds (leak_idle_after). A pool that merely went quiet leaves them asleep at one moment.
-- newest_s is the youngest connection of a group, so every connection of it is at least that old.
-- The server keeps no last statement of a sleeping connection in the process list: last_query is
-- not recorded. Telling an open transaction reads INNODB_TRX, which needs the PROCESS privilege;
-- without it IF() never runs that subquery (the account then sees only its own connections).
-- Which connections count (the PROCESS check, the rows left out, Sleep) is the same as in
-- idle-leaks.sql: change both together (a step's SQL is one file; there is no SQL include).
SELECT
  CASE
    WHEN a.PROCESSLIST_ID IS NULL OR a.program_name = '' THEN '(none)'
    ELSE COALESCE(a.program_name, IF(@@performance_schema, '(unknown: not readable)',
                                     '(unknown: performance_schema OFF)'))
  END AS application,
  s.USER AS user,
  s.client,
  IF(s.in_transaction, 'idle in transaction', 'idle') AS state,
  COUNT(*) AS sessions,
  CAST(SUM(s.TIME >= ?) AS SIGNED) AS past_leak_after,
  COUNT(DISTINCT IF(s.TIME >= ?, s.TIME, NULL)) AS moments,
  MAX(s.TIME) AS oldest_s,
  MIN(s.TIME) AS newest_s,
  MIN(IF(s.TIME >= ?, s.TIME, NULL)) AS aged_newest_s,
  '(not recorded)' AS last_query
FROM (
  SELECT
    p.ID,
    p.USER,
    p.TIME,
    IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
       p.HOST) AS client,
    IF(g.process_privilege,
       p.ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX),
       FALSE) AS in_transaction
  FROM (
    SELECT EXISTS (
      SELECT 1 FROM information_schema.USER_PRIVILEGES
      WHERE PRIVILEGE_TYPE = 'PROCESS'
        AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
    ) AS process_privilege
  ) g
  JOIN information_schema.PROCESSLIST p
  WHERE p.ID <> CONNECTION_ID()
    AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
    AND p.COMMAND = 'Sleep'
) s
LEFT JOIN (
  -- Named without an alias, so that poolctl can read it as unknown names where unreadable.
  SELECT PROCESSLIST_ID, MAX(ATTR_VALUE) AS program_name
  FROM performance_schema.session_connect_attrs
  WHERE ATTR_NAME = 'program_name'
  GROUP BY PROCESSLIST_ID
) a ON a.PROCESSLIST_ID = s.ID
GROUP BY 1, 2, 3, 4
ORDER BY sessions DESC, oldest_s DESC;

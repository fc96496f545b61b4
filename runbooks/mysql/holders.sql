-- Who holds the connections: by program name, user, client host (without the port) and database
-- (exhaustion-response.md; RUNBOOK-006 "Connection Leaks"). The program name is the program_name
-- connection attribute: '(none)' for a connection that sent none, '(unknown: …)' where poolctl
-- cannot read it (performance_schema OFF, MariaDB's default, or no SELECT on it: poolctl then reads
-- the attributes table below as one row per connection with a NULL name, src/targets/mysql-kill.ts).
-- Reads INNODB_TRX (PROCESS privilege) and performance_schema.session_connect_attrs (SELECT).
SELECT
  CASE
    WHEN a.PROCESSLIST_ID IS NULL OR a.program_name = '' THEN '(none)'
    ELSE COALESCE(a.program_name, IF(@@performance_schema, '(unknown: not readable)',
                                     '(unknown: performance_schema OFF)'))
  END AS application,
  p.USER AS user,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  p.DB AS `database`,
  COUNT(*) AS connections,
  SUM(p.COMMAND <> 'Sleep') AS active,
  SUM(p.COMMAND = 'Sleep' AND t.trx_mysql_thread_id IS NULL) AS idle,
  SUM(p.COMMAND = 'Sleep' AND t.trx_mysql_thread_id IS NOT NULL) AS idle_in_transaction,
  ROUND(100 * COUNT(*) / GREATEST(@@max_connections, 1), 1) AS share_percent
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
LEFT JOIN (
  -- Grouped so that it is materialized with a key: MariaDB's performance_schema tables have no
  -- index, and a plain join rescans the attributes per block of connections (130 ms at 1,000).
  -- Named without an alias, so that poolctl can read it as unknown names where unreadable.
  SELECT PROCESSLIST_ID, MAX(ATTR_VALUE) AS program_name
  FROM performance_schema.session_connect_attrs
  WHERE ATTR_NAME = 'program_name'
  GROUP BY PROCESSLIST_ID
) a ON a.PROCESSLIST_ID = p.ID
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler')
  AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                        'Slave_IO', 'Slave_SQL', 'Slave_worker')
GROUP BY 1, 2, 3, 4
ORDER BY connections DESC, application, user, client;

-- Candidates: connections asleep for at least ? seconds outside any transaction
-- (exhaustion-response.md "Kill idle connections", threshold 5 minutes; "Kill sleeping
-- connections"). Never the server's own threads nor a connection still authenticating; poolctl
-- leaves out its own connection and applies the protection rules on top.
-- session_token (user@host:port) tells this connection apart from a later one with the same id;
-- state is the Command; host keeps the port, which the re-check at kill time compares.
SELECT
  p.ID AS pid,
  CONCAT(p.USER, '@', p.HOST) AS session_token,
  CAST(UNIX_TIMESTAMP() - p.TIME AS CHAR) AS query_token,
  p.USER AS user,
  p.HOST AS host,
  a.program_name AS application,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  p.DB AS `database`,
  p.COMMAND AS state,
  p.TIME AS in_state_s,
  p.INFO AS query
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
LEFT JOIN (
  -- Grouped so that it is materialized with a key: MariaDB's performance_schema tables have no
  -- index, and a plain join rescans the attributes per block of connections (130 ms at 1,000).
  SELECT PROCESSLIST_ID, MAX(ATTR_VALUE) AS program_name
  FROM performance_schema.session_connect_attrs
  WHERE ATTR_NAME = 'program_name'
  GROUP BY PROCESSLIST_ID
) a ON a.PROCESSLIST_ID = p.ID
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
  AND p.COMMAND = 'Sleep'
  AND p.TIME >= ?
  AND t.trx_mysql_thread_id IS NULL
ORDER BY p.TIME DESC, p.ID;

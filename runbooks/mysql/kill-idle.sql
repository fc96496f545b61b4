-- Candidates: connections asleep for at least ? seconds outside any transaction
-- (exhaustion-response.md "Kill idle connections", threshold 5 minutes; "Kill sleeping
-- connections"). Never the server's own threads nor a connection still authenticating; poolctl
-- leaves out its own connection and applies the protection rules on top.
-- session_token (user@host:port) tells this connection apart from a later one with the same id;
-- state is the Command; host keeps the port, which the re-check at kill time compares.
-- The application (program name) is poolctl's to add where the server lets it be read.
SELECT
  p.ID AS pid,
  CONCAT(p.USER, '@', p.HOST) AS session_token,
  CAST(UNIX_TIMESTAMP() - p.TIME AS CHAR) AS query_token,
  p.USER AS user,
  p.HOST AS host,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  p.DB AS `database`,
  p.COMMAND AS state,
  p.TIME AS in_state_s,
  p.INFO AS query
FROM information_schema.PROCESSLIST p
LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
  AND p.COMMAND = 'Sleep'
  AND p.TIME >= ?
  AND t.trx_mysql_thread_id IS NULL
ORDER BY p.TIME DESC, p.ID;

-- Candidates: connections asleep for at least ? seconds inside an open InnoDB transaction
-- (RUNBOOK-006 Root cause B). Ending them rolls their transactions back.
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
  TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS transaction_s,
  p.INFO AS query
FROM information_schema.PROCESSLIST p
JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
  AND p.COMMAND = 'Sleep'
  AND p.TIME >= ?
ORDER BY p.TIME DESC, p.ID;

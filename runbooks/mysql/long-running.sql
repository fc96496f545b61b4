-- Statements running for at least ? seconds (RUNBOOK-006 "Identify Long-Running Queries";
-- exhaustion-response.md "Connection Status Assessment": Time > 120 AND Command != 'Sleep').
-- TIME counts whole seconds since the statement began. Reads the process list only, so an account
-- without PROCESS still sees its own statements.
SELECT
  p.ID AS pid,
  p.USER AS user,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  p.DB AS `database`,
  p.COMMAND AS command,
  p.TIME AS running_s,
  p.STATE AS thread_state,
  p.INFO AS query
FROM information_schema.PROCESSLIST p
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
  AND p.COMMAND NOT IN ('Sleep', 'Connect', 'Killed', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                        'Slave_IO', 'Slave_SQL', 'Slave_worker')
  AND p.TIME >= ?
ORDER BY p.TIME DESC, p.ID;

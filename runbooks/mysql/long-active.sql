-- Candidates: statements running for at least ? seconds (RUNBOOK-006 Option 1 with 5 minutes for
-- KILL CONNECTION; exhaustion-response.md "Kill long queries" with 2 minutes for KILL QUERY, and
-- its MySQL line: Time > 300 AND Command != 'Sleep'). Never the server's own threads, a connection
-- still authenticating, or one already being killed.
-- query_token is the statement's start in epoch seconds, derived from TIME (whole seconds), so two
-- readings of the same statement may differ by one.
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
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
  AND p.COMMAND NOT IN ('Sleep', 'Connect', 'Killed', 'Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                        'Slave_IO', 'Slave_SQL', 'Slave_worker')
  AND p.TIME >= ?
ORDER BY p.TIME DESC, p.ID;

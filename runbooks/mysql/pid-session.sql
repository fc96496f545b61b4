-- Candidates (columns as src/targets/types.ts Session requires): the one connection with id ?,
-- whatever its command (RUNBOOK-006 "Kill specific query"; KILL <id>). Never the server's own
-- threads nor a connection still authenticating; poolctl leaves out its own connection and
-- applies the protection rules on top.
-- session_token is user@host (host:port over TCP), query_token the statement's start in epoch
-- seconds: poolctl re-checks both at kill time.
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
  AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                        'Slave_IO', 'Slave_SQL', 'Slave_worker')
  AND p.ID = ?;

-- Connections by command, with how long the oldest has been in its state (exhaustion-response.md
-- "MySQL Connection Monitoring", "Current connection status"). Sleep is idle: in a transaction or
-- not; the open transactions are listed by their own step.
SELECT
  p.COMMAND AS command,
  COUNT(*) AS connections,
  MAX(p.TIME) AS longest_in_state_s
FROM information_schema.PROCESSLIST p
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler')
  AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                        'Slave_IO', 'Slave_SQL', 'Slave_worker')
GROUP BY p.COMMAND
ORDER BY connections DESC, command;

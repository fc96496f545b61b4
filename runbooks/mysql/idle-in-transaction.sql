-- InnoDB transactions open for at least ? seconds, with the connection that holds each and whether
-- it sleeps (RUNBOOK-006 Root cause B "Long-Running Transactions"). A sleeping connection with a
-- transaction open is MySQL's "idle in transaction": it keeps its slot, its locks and its read view
-- (purge waits) while doing nothing. idle_s is its time asleep; running connections have none.
-- Reads INNODB_TRX, which needs the PROCESS privilege.
SELECT
  t.trx_mysql_thread_id AS pid,
  p.USER AS user,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  p.DB AS `database`,
  p.COMMAND AS command,
  TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS transaction_s,
  IF(p.COMMAND = 'Sleep', p.TIME, NULL) AS idle_s,
  t.trx_state AS trx_state,
  t.trx_rows_locked AS rows_locked,
  t.trx_rows_modified AS rows_modified,
  p.INFO AS query
FROM information_schema.INNODB_TRX t
JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler')
  AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                        'Slave_IO', 'Slave_SQL', 'Slave_worker')
  AND TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) >= ?
ORDER BY t.trx_started, p.ID;

-- Connections waiting on an InnoDB row lock, and the connections that block them. A blocker asleep
-- in an open transaction is the classic cause of a pile-up that exhausts the pool.
-- sys.innodb_lock_waits exists on MySQL 5.7+/8 and MariaDB 10.6+ alike (INFORMATION_SCHEMA's
-- INNODB_LOCK_WAITS is gone from MySQL 8); it needs SELECT on sys and the PROCESS privilege.
SELECT
  w.waiting_pid AS pid,
  p.USER AS user,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  MAX(w.wait_age_secs) AS waiting_s,
  GROUP_CONCAT(DISTINCT w.blocking_pid ORDER BY w.blocking_pid SEPARATOR ',') AS blocked_by,
  GROUP_CONCAT(DISTINCT IF(b.COMMAND = 'Sleep', 'idle in transaction', b.COMMAND)
               SEPARATOR ',') AS blocker_state,
  MAX(w.locked_table) AS locked_table,
  MAX(w.waiting_query) AS query
FROM sys.innodb_lock_waits w
LEFT JOIN information_schema.PROCESSLIST p ON p.ID = w.waiting_pid
LEFT JOIN information_schema.PROCESSLIST b ON b.ID = w.blocking_pid
WHERE w.waiting_pid <> CONNECTION_ID()
GROUP BY w.waiting_pid, p.USER, p.HOST
ORDER BY waiting_s DESC, pid;

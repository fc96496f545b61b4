-- Connections asleep for at least ? seconds outside any transaction: connection-leak suspects
-- (exhaustion-response.md "Identify connection leaks"; "Kill sleeping connections"). Sleeping
-- connections that hold a transaction open are listed by the open-transactions step.
-- Telling them apart reads INNODB_TRX, which needs the PROCESS privilege; without it IF() never
-- runs that subquery and every sleeping connection the account can see (its own) is listed.
-- Which connections count (the PROCESS check, the rows left out, Sleep) is the same as in
-- idle-groups.sql: change both together (a step's SQL is one file; there is no SQL include).
SELECT
  p.ID AS pid,
  p.USER AS user,
  IF(LOCATE(':', p.HOST) > 0, LEFT(p.HOST, CHAR_LENGTH(p.HOST) - LOCATE(':', REVERSE(p.HOST))),
     p.HOST) AS client,
  p.DB AS `database`,
  p.TIME AS idle_s
FROM (
  SELECT EXISTS (
    SELECT 1 FROM information_schema.USER_PRIVILEGES
    WHERE PRIVILEGE_TYPE = 'PROCESS'
      AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                           SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
  ) AS process_privilege
) g
JOIN information_schema.PROCESSLIST p
WHERE p.ID <> CONNECTION_ID()
  AND p.USER NOT IN ('system user', 'event_scheduler', 'unauthenticated user')
  AND p.COMMAND = 'Sleep'
  AND p.TIME >= ?
  AND NOT IF(g.process_privilege,
             p.ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX),
             FALSE)
ORDER BY p.TIME DESC, p.ID;

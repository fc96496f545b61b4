-- How full the server is. Every client connection counts, sleeping ones included (leaked idle
-- connections exhaust a server as surely as busy ones), against max_connections: MySQL and MariaDB
-- keep their one extra connection for SUPER / CONNECTION ADMIN on top of it, so max_connections is
-- what ordinary accounts can use. Left out: poolctl's own connection and the server's own threads
-- (replication, binlog dump, event scheduler).
-- idle_in_transaction counts sleeping connections with an open InnoDB transaction. INNODB_TRX needs
-- the PROCESS privilege; without it IF() never runs that subquery, the count is 0, and `sees` says
-- that only the account's own connections are visible (PROCESSLIST shows no more without PROCESS).
-- busy is the seeds' non-idle count: running a command or holding a transaction open.
SELECT
  c.connections,
  c.active,
  c.connections - c.active - c.idle_in_transaction AS idle,
  c.idle_in_transaction,
  c.active + c.idle_in_transaction AS busy,
  @@max_connections AS max_connections,
  @@max_connections AS usable_connections,
  ROUND(100 * c.connections / GREATEST(@@max_connections, 1), 1) AS utilization_percent,
  ROUND(100 * (c.active + c.idle_in_transaction) / GREATEST(@@max_connections, 1), 1)
    AS busy_percent,
  IF(c.process_privilege, 'all connections', 'own account only') AS sees,
  -- The account as GRANT names it, for the finding that says which grant is missing.
  CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
         SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') AS account
FROM (
  SELECT
    COUNT(p.ID) AS connections,
    COALESCE(SUM(p.COMMAND <> 'Sleep'), 0) AS active,
    COALESCE(SUM(p.COMMAND = 'Sleep'
                 AND IF(g.process_privilege,
                        p.ID IN (SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX),
                        FALSE)), 0) AS idle_in_transaction,
    MAX(g.process_privilege) AS process_privilege
  FROM (
    SELECT EXISTS (
      SELECT 1 FROM information_schema.USER_PRIVILEGES
      WHERE PRIVILEGE_TYPE = 'PROCESS'
        AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                             SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
    ) AS process_privilege
  ) g
  LEFT JOIN information_schema.PROCESSLIST p
    ON p.ID <> CONNECTION_ID()
   AND p.USER NOT IN ('system user', 'event_scheduler')
   AND p.COMMAND NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID',
                         'Slave_IO', 'Slave_SQL', 'Slave_worker')
) c;

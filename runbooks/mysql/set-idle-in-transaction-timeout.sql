-- RUNBOOK-006 Root cause B on MariaDB: a connection asleep inside a transaction for ? seconds is
-- closed (its transaction rolls back). Lost at restart unless the line is in my.cnf under [mysqld].
SET GLOBAL idle_transaction_timeout = CAST(? AS UNSIGNED)

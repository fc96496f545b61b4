-- RUNBOOK-006 Prevention 2 on MariaDB: every statement of a new connection ends after ? seconds
-- (max_statement_time; MySQL's max_execution_time is in milliseconds and limits SELECTs only).
-- Lost at restart unless the same line is in my.cnf under [mysqld]. The CAST lets it be bound.
SET GLOBAL max_statement_time = CAST(? AS DECIMAL(12, 3))

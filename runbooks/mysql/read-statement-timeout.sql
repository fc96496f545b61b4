-- The statement limit new connections get (MariaDB), read before and after statement-timeout.
SELECT 'max_statement_time' AS setting, @@GLOBAL.max_statement_time + 0 AS value

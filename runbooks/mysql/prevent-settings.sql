-- The prevention settings as a new connection gets them: the GLOBAL values (poolctl's own
-- session sets its own statement limit; new sessions copy the global one). One row per setting;
-- `kind` names what it limits, `number` is in seconds for the timeouts (0 = off). The statement
-- limit is max_statement_time (seconds) on MariaDB and max_execution_time (milliseconds, SELECT
-- only) on MySQL: whichever this server has. idle_transaction_timeout exists on MariaDB only.
SELECT
  LOWER(VARIABLE_NAME) AS setting,
  CASE LOWER(VARIABLE_NAME)
    WHEN 'max_statement_time' THEN 'statement_limit'
    WHEN 'max_execution_time' THEN 'statement_limit'
    WHEN 'idle_transaction_timeout' THEN 'idle_tx_limit'
    ELSE LOWER(VARIABLE_NAME) END AS kind,
  VARIABLE_VALUE AS value,
  CASE LOWER(VARIABLE_NAME)
    WHEN 'max_execution_time' THEN CAST(VARIABLE_VALUE AS DECIMAL(20, 3)) / 1000
    ELSE CAST(VARIABLE_VALUE AS DECIMAL(20, 3)) END + 0.0 AS number,
  'GLOBAL' AS source,
  DATABASE() AS `database`
FROM information_schema.GLOBAL_VARIABLES
WHERE LOWER(VARIABLE_NAME) IN ('max_statement_time', 'max_execution_time',
  'idle_transaction_timeout', 'wait_timeout', 'interactive_timeout', 'max_connections')
ORDER BY 1;

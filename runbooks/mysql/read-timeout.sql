-- The value of the timeout variable ? (max_statement_time, idle_transaction_timeout) new
-- connections get (MariaDB), read before and after the prevent fix that sets it. A bound name
-- cannot follow @@GLOBAL., so it is looked up by name; `+ 0` makes the text a number (30, not
-- 30.000000), as @@GLOBAL.max_statement_time + 0 would.
SELECT LOWER(VARIABLE_NAME) AS setting, VARIABLE_VALUE + 0 AS value
FROM information_schema.GLOBAL_VARIABLES
WHERE VARIABLE_NAME = ?

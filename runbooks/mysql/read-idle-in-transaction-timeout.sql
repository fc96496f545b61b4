-- The idle-in-transaction limit new connections get (MariaDB), read before and after the change.
SELECT 'idle_transaction_timeout' AS setting, @@GLOBAL.idle_transaction_timeout AS value

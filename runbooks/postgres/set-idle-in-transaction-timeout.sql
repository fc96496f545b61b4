-- RUNBOOK-006 Root cause B: a transaction left open holds its connection and its locks. The server
-- ends a session idle in a transaction this long (its transaction rolls back). {database} and the
-- value are filled in as in set-statement-timeout.sql. New sessions get it.
ALTER DATABASE {database} SET idle_in_transaction_session_timeout = {prevent_idle_in_tx_timeout_ms}

-- RUNBOOK-006 Prevention 2: ALTER DATABASE app_db SET statement_timeout = '30s'. Utility statements
-- take no bound parameters: poolctl fills {database} with the target database's name as the server
-- quotes it (quote_ident), and the value with the duration it parsed, in whole milliseconds. New
-- sessions get it; sessions already open keep theirs until they reconnect.
ALTER DATABASE {database} SET statement_timeout = {prevent_statement_timeout_ms}

-- The setting raise-max-connections changes, read before and after it: `value` as configured (the
-- last line of postgresql.conf / postgresql.auto.conf that sets it, what a restart will use),
-- `running` the limit the server enforces now. Reading pg_file_settings needs a superuser, as
-- ALTER SYSTEM does (or GRANT ALTER SYSTEM ON PARAMETER max_connections and pg_read_all_settings).
SELECT
  'max_connections' AS setting,
  coalesce(
    (SELECT setting FROM pg_file_settings WHERE name = 'max_connections' ORDER BY seqno DESC LIMIT 1),
    current_setting('max_connections')
  ) AS value,
  current_setting('max_connections') AS running

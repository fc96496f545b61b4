-- The server's numbers that `poolctl prevent --emit` sizes its files from: the slots an ordinary
-- role can use (max_connections less the superuser and, from PostgreSQL 16, the
-- pg_use_reserved_connections slots), the database, and how passwords are stored (PgBouncer's
-- auth_type must match the secrets its userlist will hold).
WITH limits AS (
  SELECT
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved_connections,
    -- reserved_connections exists from PostgreSQL 16; missing_ok returns NULL before that.
    coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved_connections
)
SELECT
  l.max_connections,
  l.superuser_reserved_connections,
  l.reserved_connections,
  l.max_connections - l.superuser_reserved_connections - l.reserved_connections
    AS usable_connections,
  current_database() AS database,
  current_setting('password_encryption') AS password_encryption,
  current_setting('server_version_num')::int AS server_version_num
FROM limits l;

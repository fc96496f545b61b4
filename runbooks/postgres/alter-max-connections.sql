-- Composes raise-max-connections' statement on the server. ALTER SYSTEM takes no bound parameter
-- ($1 there is a syntax error) and refuses to run inside a function or a DO block, so this SELECT
-- builds it from the bound value cast to integer (anything else fails the cast), and poolctl runs
-- exactly the statement it showed. It writes postgresql.auto.conf: the running server keeps its
-- limit until PostgreSQL restarts (pg_reload_conf() is not enough for max_connections).
SELECT format('ALTER SYSTEM SET max_connections = %s', $1::integer) AS statement

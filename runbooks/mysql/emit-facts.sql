-- The server's numbers that `poolctl prevent --emit` sizes its files from. MySQL and MariaDB keep
-- their one extra connection for SUPER / CONNECTION ADMIN on top of max_connections, so
-- max_connections is what ordinary accounts can use. long_query_time is the threshold behind the
-- slow-query counter the emitted long-query alert watches.
SELECT
  @@GLOBAL.max_connections AS max_connections,
  0 AS superuser_reserved_connections,
  0 AS reserved_connections,
  @@GLOBAL.max_connections AS usable_connections,
  DATABASE() AS `database`,
  @@GLOBAL.long_query_time AS long_query_time,
  @@GLOBAL.wait_timeout AS wait_timeout

-- The server's own connection counters (exhaustion-response.md "MySQL Connection Exhaustion"):
-- connected and running threads now, the high-water mark and the connects refused at
-- max_connections since the server started. SHOW works on MySQL and MariaDB alike and needs no
-- privilege (the status tables moved between INFORMATION_SCHEMA and performance_schema).
SHOW GLOBAL STATUS WHERE Variable_name IN (
  'Threads_connected', 'Threads_running', 'Max_used_connections',
  'Connection_errors_max_connections', 'Aborted_connects'
);

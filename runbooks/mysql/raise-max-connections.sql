-- Raises the server's connection limit at once, for new connections; lost at restart unless it is
-- also in the configuration (or SET PERSIST on MySQL 8). The CAST is what lets the value be bound:
-- MariaDB refuses a bare `?` here ("Incorrect argument type to variable 'max_connections'").
SET GLOBAL max_connections = CAST(? AS UNSIGNED)

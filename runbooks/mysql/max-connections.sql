-- The setting raise-max-connections changes, read before and after it.
SELECT 'max_connections' AS setting, @@GLOBAL.max_connections AS value

-- N+1 evidence (RUNBOOK-006 Root cause C): the statements called most often per second since the
-- statistics were reset, from pg_stat_statements. Fails where the extension is not installed in
-- this database (CREATE EXTENSION pg_stat_statements, with shared_preload_libraries): poolctl then
-- says the calls could not be read, not that there are none.
SELECT
  left(regexp_replace(s.query, '\s+', ' ', 'g'), 200) AS statement,
  s.calls::float8 AS calls,
  round((s.calls / greatest(extract(epoch FROM now() - i.stats_reset), 1))::numeric, 1)::float8
    AS calls_per_s
FROM pg_stat_statements s, pg_stat_statements_info i
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY s.calls DESC
LIMIT 5;

-- N+1 evidence (RUNBOOK-006 Root cause C): the statements run most often per second, from
-- performance_schema's digest summary. `readable` is 0 where performance_schema is OFF (MariaDB's
-- default): the statistics could not be read, which is not "no N+1".
SELECT g.readable, d.statement, d.calls, d.calls_per_s
FROM (SELECT @@GLOBAL.performance_schema + 0 AS readable) g
LEFT JOIN (
  SELECT LEFT(DIGEST_TEXT, 200) AS statement, COUNT_STAR AS calls,
    ROUND(COUNT_STAR / GREATEST(TIMESTAMPDIFF(SECOND, FIRST_SEEN, LAST_SEEN), 1), 1) AS calls_per_s
  FROM performance_schema.events_statements_summary_by_digest
  WHERE SCHEMA_NAME = DATABASE()
  ORDER BY COUNT_STAR DESC
  LIMIT 5
) d ON TRUE;

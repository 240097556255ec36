-- Users registered in one state as of one date: in the state's current
-- enrolment records (a version on or before the date, and not before the
-- latest accepted enrolment snapshot on or before the date, which would have
-- removed it). The parameters are inlined as literals (registered_users_query):
-- the query is embedded in other SQL, on either database. A user with more
-- than one current version appears more than once: the callers use it as a
-- set (IN / NOT IN), and on PostgreSQL a DISTINCT over the UP snapshot's
-- 18.8 lakh ids spilled to disk inside the night's transaction.
SELECT e.user_id
FROM core.enrolment AS e
WHERE e.state_code = :state_code
  AND e.report_date <= :report_date
  AND e.report_date >= COALESCE(
        (SELECT MAX(fv.report_date) FROM core.feed_version AS fv
          WHERE fv.state_code = :state_code AND fv.feed = 'enrolment'
            AND fv.mode = 'snapshot' AND fv.report_date <= :report_date),
        e.report_date)

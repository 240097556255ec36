-- Users registered in one state as of one date: in the state's current
-- enrolment records (a version on or before the date, and not before the
-- latest accepted enrolment snapshot on or before the date, which would have
-- removed it). {state} and {report_date} are SQL literals.
SELECT DISTINCT e.user_id
FROM core.enrolment AS e
WHERE e.state_code = {state}
  AND e.report_date <= {report_date}
  AND e.report_date >= COALESCE(
        (SELECT MAX(fv.report_date) FROM core.feed_version AS fv
          WHERE fv.state_code = {state} AND fv.feed = 'enrolment'
            AND fv.mode = 'snapshot' AND fv.report_date <= {report_date}),
        e.report_date)

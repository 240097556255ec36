-- The records that count on :report_date, as temporary tables (warehouse.md,
-- "Definitions"). r_states holds the configured MoU states (filled by the caller).
DROP TABLE IF EXISTS r_snap;
DROP TABLE IF EXISTS r_enrol;
DROP TABLE IF EXISTS r_compl;
DROP TABLE IF EXISTS r_user;

-- Latest accepted snapshot on or before the date, per state and feed: versions
-- older than it were either restated by it or removed by it.
CREATE TEMP TABLE r_snap AS
SELECT state_code, feed, MAX(report_date) AS last_snap
FROM core.feed_version
WHERE mode = 'snapshot' AND report_date <= :report_date
GROUP BY state_code, feed;

-- Current enrolment records: the latest version per (state, user).
CREATE TEMP TABLE r_enrol AS
SELECT state_code, user_id, department, registration_date, report_date
FROM (
    SELECT e.state_code, e.user_id, e.department, e.registration_date, e.report_date,
           ROW_NUMBER() OVER (PARTITION BY e.state_code, e.user_id ORDER BY e.report_date DESC) AS rn
    FROM core.enrolment AS e
    LEFT JOIN r_snap AS s ON s.state_code = e.state_code AND s.feed = 'enrolment'
    WHERE e.report_date <= :report_date
      AND (s.last_snap IS NULL OR e.report_date >= s.last_snap)
) AS v
WHERE rn = 1;

-- Counted completion rows: the current version per key, whose user is
-- registered in that state on the date.
CREATE TEMP TABLE r_compl AS
SELECT c.state_code, c.user_id, c.content_id, c.batch_id, c.report_date, c.status,
       c.duration_seconds, c.completed_on, c.certificate_generated
FROM (
    SELECT c.state_code, c.user_id, c.content_id, c.batch_id, c.report_date, c.status,
           c.duration_seconds, c.completed_on, c.certificate_generated,
           ROW_NUMBER() OVER (PARTITION BY c.state_code, c.user_id, c.content_id, c.batch_id
                              ORDER BY c.report_date DESC) AS rn
    FROM core.completion AS c
    LEFT JOIN r_snap AS s ON s.state_code = c.state_code AND s.feed = 'completion'
    WHERE c.report_date <= :report_date
      AND (s.last_snap IS NULL OR c.report_date >= s.last_snap)
) AS c
JOIN r_enrol AS e ON e.state_code = c.state_code AND e.user_id = c.user_id
WHERE c.rn = 1;

-- Per registered user and state: distinct courses completed there.
CREATE TEMP TABLE r_user AS
SELECT e.state_code, e.user_id, e.department, e.registration_date,
       COUNT(DISTINCT CASE WHEN c.status = 'Completed' THEN c.content_id END) AS courses_completed
FROM r_enrol AS e
LEFT JOIN r_compl AS c ON c.state_code = e.state_code AND c.user_id = e.user_id
GROUP BY e.state_code, e.user_id, e.department, e.registration_date;

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

-- Keys that a snapshot held only in quarantined rows (present, not removed).
DROP TABLE IF EXISTS r_presence;
CREATE TEMP TABLE r_presence AS
SELECT state_code, feed, user_id, content_id, batch_id, MAX(report_date) AS present_on
FROM core.snapshot_presence
WHERE report_date <= :report_date
GROUP BY state_code, feed, user_id, content_id, batch_id;

-- Current enrolment records: the latest version per (state, user) on or before
-- the date, unless the latest snapshot since lacked the key.
CREATE TEMP TABLE r_enrol AS
SELECT v.state_code, v.user_id, v.department, v.registration_date, v.report_date
FROM (
    SELECT e.state_code, e.user_id, e.department, e.registration_date, e.report_date,
           ROW_NUMBER() OVER (PARTITION BY e.state_code, e.user_id ORDER BY e.report_date DESC) AS rn
    FROM core.enrolment AS e
    WHERE e.report_date <= :report_date
) AS v
LEFT JOIN r_snap AS s ON s.state_code = v.state_code AND s.feed = 'enrolment'
LEFT JOIN r_presence AS p
  ON p.state_code = v.state_code AND p.feed = 'enrolment' AND p.user_id = v.user_id
 AND p.content_id = '' AND p.batch_id = ''
WHERE v.rn = 1
  AND (s.last_snap IS NULL OR v.report_date >= s.last_snap OR p.present_on >= s.last_snap);

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
    WHERE c.report_date <= :report_date
) AS c
LEFT JOIN r_snap AS s ON s.state_code = c.state_code AND s.feed = 'completion'
LEFT JOIN r_presence AS p
  ON p.state_code = c.state_code AND p.feed = 'completion' AND p.user_id = c.user_id
 AND p.content_id = c.content_id AND p.batch_id = c.batch_id
JOIN r_enrol AS e ON e.state_code = c.state_code AND e.user_id = c.user_id
WHERE c.rn = 1
  AND (s.last_snap IS NULL OR c.report_date >= s.last_snap OR p.present_on >= s.last_snap);

-- Per registered user and state: distinct courses completed there.
CREATE TEMP TABLE r_user AS
SELECT e.state_code, e.user_id, e.department, e.registration_date,
       COUNT(DISTINCT CASE WHEN c.status = 'Completed' THEN c.content_id END) AS courses_completed
FROM r_enrol AS e
LEFT JOIN r_compl AS c ON c.state_code = e.state_code AND c.user_id = e.user_id
GROUP BY e.state_code, e.user_id, e.department, e.registration_date;

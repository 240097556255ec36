-- The records that count on :report_date, as temporary tables (warehouse.md,
-- "Definitions"). r_states holds the configured MoU states (filled by the caller).
-- Each temporary table is analysed once written: PostgreSQL has no statistics
-- for them otherwise and plans million-row joins as if they were tiny
-- (execute_file skips ANALYZE on DuckDB, which keeps statistics as it writes).
DROP VIEW IF EXISTS r_counted;
DROP TABLE IF EXISTS r_snap;
DROP TABLE IF EXISTS r_enrol;
DROP TABLE IF EXISTS r_multi;
DROP TABLE IF EXISTS r_multi_compl;
DROP TABLE IF EXISTS r_user;
DROP TABLE IF EXISTS r_enrol_later;
DROP TABLE IF EXISTS r_compl_later;

-- Latest accepted snapshot on or before the date, per state and feed: versions
-- older than it were either restated by it or removed by it.
CREATE TEMP TABLE r_snap AS
SELECT state_code, feed, MAX(report_date) AS last_snap
FROM core.feed_version
WHERE mode = 'snapshot' AND report_date <= :report_date
GROUP BY state_code, feed;
ANALYZE r_snap;

-- Keys that a snapshot held only in quarantined rows (present, not removed).
DROP TABLE IF EXISTS r_presence;
CREATE TEMP TABLE r_presence AS
SELECT state_code, feed, user_id, content_id, batch_id, MAX(report_date) AS present_on
FROM core.snapshot_presence
WHERE report_date <= :report_date
GROUP BY state_code, feed, user_id, content_id, batch_id;
ANALYZE r_presence;

-- Per state and feed, the base date: the latest snapshot on or before the
-- date, else the earliest version. A version before it counts only if its
-- key was present (quarantined) in that snapshot and has no version since.
-- upto is the date itself, for the view r_counted below (a view cannot take
-- parameters).
DROP TABLE IF EXISTS r_base;
CREATE TEMP TABLE r_base AS
SELECT state_code, feed, MIN(report_date) AS first_date, CAST(:report_date AS DATE) AS upto
FROM core.feed_version
WHERE report_date <= :report_date
GROUP BY state_code, feed;
UPDATE r_base SET first_date = (
    SELECT s.last_snap FROM r_snap AS s WHERE s.state_code = r_base.state_code AND s.feed = r_base.feed)
WHERE EXISTS (SELECT 1 FROM r_snap AS s WHERE s.state_code = r_base.state_code AND s.feed = r_base.feed);
ANALYZE r_base;

-- The current version of a key is its latest on or before the date. Only a
-- version after the base date can supersede another, so every version is
-- joined to the newest of those few (the deltas since the snapshot) instead
-- of ranking all versions of all keys.
DROP TABLE IF EXISTS r_enrol_later;
CREATE TEMP TABLE r_enrol_later AS
SELECT e.state_code, e.user_id, MAX(e.report_date) AS newest
FROM core.enrolment AS e
JOIN r_base AS b ON b.state_code = e.state_code AND b.feed = 'enrolment'
WHERE e.report_date > b.first_date AND e.report_date <= :report_date
GROUP BY e.state_code, e.user_id;
ANALYZE r_enrol_later;

-- uid: a number per counted registration (state and user), so that the
-- per-user aggregation below groups and sorts on an integer: on PostgreSQL,
-- under a libc collation such as C.UTF-8 or en_US.UTF-8, every comparison of
-- the text key goes through strcoll (UP snapshot: 8.9 s against 2.8 s).
CREATE TEMP TABLE r_enrol AS
SELECT ROW_NUMBER() OVER () AS uid, r.*
FROM (
SELECT e.state_code, e.user_id, e.department, e.registration_date, e.report_date
FROM core.enrolment AS e
JOIN r_base AS b ON b.state_code = e.state_code AND b.feed = 'enrolment'
LEFT JOIN r_enrol_later AS l ON l.state_code = e.state_code AND l.user_id = e.user_id
WHERE e.report_date >= b.first_date AND e.report_date <= :report_date
  AND (l.newest IS NULL OR l.newest <= e.report_date)
UNION ALL
SELECT v.state_code, v.user_id, v.department, v.registration_date, v.report_date
FROM (
    SELECT e.state_code, e.user_id, e.department, e.registration_date, e.report_date, b.first_date,
           ROW_NUMBER() OVER (PARTITION BY e.state_code, e.user_id ORDER BY e.report_date DESC) AS rn
    FROM core.enrolment AS e
    JOIN r_snap AS s ON s.state_code = e.state_code AND s.feed = 'enrolment'
    JOIN r_base AS b ON b.state_code = e.state_code AND b.feed = 'enrolment'
    JOIN r_presence AS p
      ON p.state_code = e.state_code AND p.feed = 'enrolment' AND p.user_id = e.user_id
     AND p.content_id = '' AND p.batch_id = ''
    WHERE e.report_date <= :report_date AND p.present_on >= s.last_snap
      AND EXISTS (SELECT 1 FROM r_presence AS q WHERE q.feed = 'enrolment')  -- skips the scan when none
) AS v
WHERE v.rn = 1 AND v.report_date < v.first_date
) AS r;
ANALYZE r_enrol;

-- Completion keys with a version after the base date (as for enrolment above).
DROP TABLE IF EXISTS r_compl_later;
CREATE TEMP TABLE r_compl_later AS
SELECT c.state_code, c.user_id, c.content_id, c.batch_id, MAX(c.report_date) AS newest
FROM core.completion AS c
JOIN r_base AS b ON b.state_code = c.state_code AND b.feed = 'completion'
WHERE c.report_date > b.first_date AND c.report_date <= :report_date
GROUP BY c.state_code, c.user_id, c.content_id, c.batch_id;
ANALYZE r_compl_later;

-- Users registered in more than one state: only they can have a key counted
-- by two states (see r_nat in marts.sql).
CREATE TEMP TABLE r_multi AS
SELECT user_id FROM r_enrol GROUP BY user_id HAVING COUNT(*) > 1;
ANALYZE r_multi;

-- Counted completion rows: the current version per key (as for enrolment),
-- whose user is registered in that state on the date. A view, read twice
-- below: summed per registration, and the rows of users in r_multi kept.
-- Writing all the rows to a table and reading that three times cost more
-- (UP snapshot: 7.2 million rows) than the second scan, which is skipped when
-- r_multi is empty.
CREATE TEMP VIEW r_counted AS
SELECT e.uid, c.state_code, c.user_id, c.content_id, c.batch_id, c.report_date, c.status,
       c.duration_seconds, c.completed_on, c.certificate_generated
FROM (
    SELECT c.state_code, c.user_id, c.content_id, c.batch_id, c.report_date, c.status,
           c.duration_seconds, c.completed_on, c.certificate_generated
    FROM core.completion AS c
    JOIN r_base AS b ON b.state_code = c.state_code AND b.feed = 'completion'
    LEFT JOIN r_compl_later AS l
      ON l.state_code = c.state_code AND l.user_id = c.user_id AND l.content_id = c.content_id
     AND l.batch_id = c.batch_id
    WHERE c.report_date >= b.first_date AND c.report_date <= b.upto
      AND (l.newest IS NULL OR l.newest <= c.report_date)
    UNION ALL
    SELECT v.state_code, v.user_id, v.content_id, v.batch_id, v.report_date, v.status,
           v.duration_seconds, v.completed_on, v.certificate_generated
    FROM (
        SELECT c.state_code, c.user_id, c.content_id, c.batch_id, c.report_date, c.status,
               c.duration_seconds, c.completed_on, c.certificate_generated, b.first_date,
               ROW_NUMBER() OVER (PARTITION BY c.state_code, c.user_id, c.content_id, c.batch_id
                                  ORDER BY c.report_date DESC) AS rn
        FROM core.completion AS c
        JOIN r_snap AS s ON s.state_code = c.state_code AND s.feed = 'completion'
        JOIN r_base AS b ON b.state_code = c.state_code AND b.feed = 'completion'
        JOIN r_presence AS p
          ON p.state_code = c.state_code AND p.feed = 'completion' AND p.user_id = c.user_id
         AND p.content_id = c.content_id AND p.batch_id = c.batch_id
        WHERE c.report_date <= b.upto AND p.present_on >= s.last_snap
          AND EXISTS (SELECT 1 FROM r_presence AS q WHERE q.feed = 'completion')  -- skips the scan when none
    ) AS v
    WHERE v.rn = 1 AND v.report_date < v.first_date
) AS c
JOIN r_enrol AS e ON e.state_code = c.state_code AND e.user_id = c.user_id;

-- Per registered user and state, from their counted completion rows (0 when
-- none): all statuses (course enrolments), and the completed ones: distinct
-- courses (a course may be completed in more than one batch), completions,
-- seconds, certificates, completions this year. The rows are aggregated per
-- registration (the integer uid) in one pass, then joined to the registered
-- users (1 row each); the state and department marts are sums of these.
CREATE TEMP TABLE r_user AS
SELECT e.uid, e.state_code, e.user_id, e.department, e.registration_date, e.report_date,
       COALESCE(c.courses, 0) AS courses_completed,
       COALESCE(c.course_enrolments, 0) AS course_enrolments,
       COALESCE(c.completions, 0) AS completions,
       COALESCE(c.completed_seconds, 0) AS completed_seconds,
       COALESCE(c.certificates, 0) AS certificates,
       COALESCE(c.completions_ytd, 0) AS completions_ytd
FROM r_enrol AS e
LEFT JOIN (
    SELECT uid,
           COUNT(*) AS course_enrolments,
           COUNT(DISTINCT CASE WHEN status = 'Completed' THEN content_id END) AS courses,
           SUM(CASE WHEN status = 'Completed' THEN 1 ELSE 0 END) AS completions,
           SUM(CASE WHEN status = 'Completed' THEN duration_seconds ELSE 0 END) AS completed_seconds,
           SUM(CASE WHEN status = 'Completed' AND certificate_generated THEN 1 ELSE 0 END) AS certificates,
           SUM(CASE WHEN status = 'Completed' AND completed_on BETWEEN :year_start AND :year_end THEN 1 ELSE 0 END)
               AS completions_ytd
    FROM r_counted
    GROUP BY uid
) AS c ON c.uid = e.uid;
ANALYZE r_user;

-- The counted completion rows of users registered in more than one state.
CREATE TEMP TABLE r_multi_compl AS
SELECT c.* FROM r_counted AS c
WHERE c.user_id IN (SELECT user_id FROM r_multi)
  AND EXISTS (SELECT 1 FROM r_multi);  -- skips the scan when none
ANALYZE r_multi_compl;

-- The mart rows of :report_date, replaced inside the caller's transaction so a
-- reader sees the old rows or the new ones, never a mix.
-- Rounding is done on integers so DuckDB and PostgreSQL agree to the digit:
-- hours to 2 decimals and shares to 6, half up.
DELETE FROM mart.state_summary WHERE report_date = :report_date;
DELETE FROM mart.national_summary WHERE report_date = :report_date;
DELETE FROM mart.department_summary WHERE report_date = :report_date;
DELETE FROM mart.feed_status WHERE report_date = :report_date;
DELETE FROM mart.quarantine_summary WHERE report_date = :report_date;

DROP TABLE IF EXISTS r_dept;
DROP TABLE IF EXISTS r_state;
DROP TABLE IF EXISTS r_nat;

-- The per-user sums (r_user) per state and department, in one aggregation:
-- the department mart, and summed again per state, the state mart.
CREATE TEMP TABLE r_dept AS
SELECT state_code, department,
       COUNT(*) AS registered_users,
       SUM(CASE WHEN courses_completed >= 1 THEN 1 ELSE 0 END) AS users_with_completion,
       SUM(CASE WHEN courses_completed >= 3 THEN 1 ELSE 0 END) AS users_with_3plus,
       SUM(CASE WHEN registration_date BETWEEN :year_start AND :year_end THEN 1 ELSE 0 END) AS registrations_ytd,
       SUM(course_enrolments) AS course_enrolments,
       SUM(completions) AS course_completions,
       SUM(completed_seconds) AS completed_seconds,
       SUM(certificates) AS certificates_issued,
       SUM(completions_ytd) AS completions_ytd
FROM r_user
GROUP BY state_code, department;
ANALYZE r_dept;

CREATE TEMP TABLE r_state AS
SELECT s.state_code, s.state_name,
       ld.last_delivery_date,
       COALESCE(u.registered_users, 0) AS registered_users,
       COALESCE(u.users_with_completion, 0) AS users_with_completion,
       COALESCE(u.users_with_3plus, 0) AS users_with_3plus,
       COALESCE(u.registrations_ytd, 0) AS registrations_ytd,
       COALESCE(u.course_enrolments, 0) AS course_enrolments,
       COALESCE(u.course_completions, 0) AS course_completions,
       COALESCE(u.completed_seconds, 0) AS completed_seconds,
       COALESCE(u.certificates_issued, 0) AS certificates_issued,
       COALESCE(u.completions_ytd, 0) AS completions_ytd
FROM r_states AS s
LEFT JOIN (
    SELECT state_code, MAX(report_date) AS last_delivery_date
    FROM core.feed_version WHERE report_date <= :report_date GROUP BY state_code
) AS ld ON ld.state_code = s.state_code
LEFT JOIN (
    SELECT state_code,
           SUM(registered_users) AS registered_users,
           SUM(users_with_completion) AS users_with_completion,
           SUM(users_with_3plus) AS users_with_3plus,
           SUM(registrations_ytd) AS registrations_ytd,
           SUM(course_enrolments) AS course_enrolments,
           SUM(course_completions) AS course_completions,
           SUM(completed_seconds) AS completed_seconds,
           SUM(certificates_issued) AS certificates_issued,
           SUM(completions_ytd) AS completions_ytd
    FROM r_dept GROUP BY state_code
) AS u ON u.state_code = s.state_code;

-- National: each key once, the later report date winning, then the lower
-- state code; each person once, with the courses they completed among those
-- keys (pooled across the states that register them). Only a user registered
-- in more than one state can have a key counted by two states, so only their
-- rows are ranked (r_multi, r_multi_compl: current.sql); everyone else's
-- national figures are their state's.
DROP TABLE IF EXISTS r_mkey;
CREATE TEMP TABLE r_mkey AS
SELECT c.user_id, c.content_id, c.status, c.duration_seconds, c.certificate_generated, c.completed_on,
       ROW_NUMBER() OVER (PARTITION BY c.user_id, c.content_id, c.batch_id
                          ORDER BY c.report_date DESC, c.state_code ASC) AS rn
FROM r_multi_compl AS c;
ANALYZE r_mkey;

CREATE TEMP TABLE r_nat AS
SELECT p.registered_users, p.users_with_completion, p.users_with_3plus, p.registrations_ytd,
       t.course_enrolments - l.course_enrolments AS course_enrolments,
       t.course_completions - l.course_completions AS course_completions,
       t.completed_seconds - l.completed_seconds AS completed_seconds,
       t.certificates_issued - l.certificates_issued AS certificates_issued,
       t.completions_ytd - l.completions_ytd AS completions_ytd
FROM (
    SELECT COUNT(*) AS registered_users,
           COALESCE(SUM(CASE WHEN pp.courses >= 1 THEN 1 ELSE 0 END), 0) AS users_with_completion,
           COALESCE(SUM(CASE WHEN pp.courses >= 3 THEN 1 ELSE 0 END), 0) AS users_with_3plus,
           COALESCE(SUM(CASE WHEN pp.registration_date BETWEEN :year_start AND :year_end THEN 1 ELSE 0 END), 0)
               AS registrations_ytd
    FROM (
        SELECT u.user_id, u.registration_date, u.courses_completed AS courses
        FROM r_user AS u
        WHERE NOT EXISTS (SELECT 1 FROM r_multi AS m WHERE m.user_id = u.user_id)
        UNION ALL
        SELECT pr.user_id, pr.registration_date, COALESCE(pc.courses, 0) AS courses
        FROM (
            SELECT e.user_id, e.registration_date,
                   ROW_NUMBER() OVER (PARTITION BY e.user_id ORDER BY e.report_date DESC, e.state_code ASC) AS rn
            FROM r_enrol AS e
            JOIN r_multi AS m ON m.user_id = e.user_id
        ) AS pr
        LEFT JOIN (
            SELECT user_id, COUNT(DISTINCT content_id) AS courses
            FROM r_mkey WHERE rn = 1 AND status = 'Completed' GROUP BY user_id
        ) AS pc ON pc.user_id = pr.user_id
        WHERE pr.rn = 1
    ) AS pp
) AS p
-- Every state's counted keys, less the keys a later or lower-coded state counts too.
CROSS JOIN (
    SELECT COALESCE(SUM(course_enrolments), 0) AS course_enrolments,
           COALESCE(SUM(course_completions), 0) AS course_completions,
           COALESCE(SUM(completed_seconds), 0) AS completed_seconds,
           COALESCE(SUM(certificates_issued), 0) AS certificates_issued,
           COALESCE(SUM(completions_ytd), 0) AS completions_ytd
    FROM r_state
) AS t
CROSS JOIN (
    SELECT COUNT(*) AS course_enrolments,
           COALESCE(SUM(CASE WHEN status = 'Completed' THEN 1 ELSE 0 END), 0) AS course_completions,
           COALESCE(SUM(CASE WHEN status = 'Completed' THEN duration_seconds ELSE 0 END), 0) AS completed_seconds,
           COALESCE(SUM(CASE WHEN status = 'Completed' AND certificate_generated THEN 1 ELSE 0 END), 0)
               AS certificates_issued,
           COALESCE(SUM(CASE WHEN status = 'Completed' AND completed_on BETWEEN :year_start AND :year_end
                             THEN 1 ELSE 0 END), 0) AS completions_ytd
    FROM r_mkey WHERE rn > 1
) AS l;

INSERT INTO mart.state_summary (
    report_date, state_code, state_name, last_delivery_date, is_stale, registered_users, users_with_completion,
    users_with_3plus_completions, users_with_fewer_than_3_completions, users_without_completion,
    course_enrolments, course_completions, learning_hours, certificates_issued, registrations_ytd,
    completions_ytd, share_of_national_registrations_ytd, share_of_national_completions_ytd)
SELECT :report_date, s.state_code, s.state_name, s.last_delivery_date,
       (s.last_delivery_date IS NULL OR s.last_delivery_date < :report_date),
       s.registered_users, s.users_with_completion, s.users_with_3plus,
       s.registered_users - s.users_with_3plus, s.registered_users - s.users_with_completion,
       s.course_enrolments, s.course_completions,
       CAST(FLOOR((s.completed_seconds * 100 + 1800) / 3600.0) / 100.0 AS NUMERIC(18,2)),
       s.certificates_issued, s.registrations_ytd, s.completions_ytd,
       CASE WHEN n.registrations_ytd > 0 AND s.last_delivery_date IS NOT NULL THEN
            CAST(FLOOR((s.registrations_ytd * 2000000.0 + n.registrations_ytd) / (2.0 * n.registrations_ytd))
                 / 1000000.0 AS NUMERIC(12,6)) END,
       CASE WHEN n.completions_ytd > 0 AND s.last_delivery_date IS NOT NULL THEN
            CAST(FLOOR((s.completions_ytd * 2000000.0 + n.completions_ytd) / (2.0 * n.completions_ytd))
                 / 1000000.0 AS NUMERIC(12,6)) END
FROM r_state AS s CROSS JOIN r_nat AS n;

INSERT INTO mart.national_summary (
    report_date, states_total, states_reporting, states_stale, registered_users, users_with_completion,
    users_with_3plus_completions, users_without_completion, course_enrolments, course_completions,
    learning_hours, certificates_issued, registrations_ytd, completions_ytd)
SELECT :report_date, st.states_total, st.states_reporting, st.states_total - st.states_reporting,
       n.registered_users, n.users_with_completion, n.users_with_3plus,
       n.registered_users - n.users_with_completion, n.course_enrolments, n.course_completions,
       CAST(FLOOR((n.completed_seconds * 100 + 1800) / 3600.0) / 100.0 AS NUMERIC(18,2)),
       n.certificates_issued, n.registrations_ytd, n.completions_ytd
FROM r_nat AS n
CROSS JOIN (
    SELECT COUNT(*) AS states_total,
           SUM(CASE WHEN last_delivery_date = :report_date THEN 1 ELSE 0 END) AS states_reporting
    FROM r_state
) AS st;

INSERT INTO mart.department_summary (
    report_date, state_code, department, registered_users, users_with_completion, users_with_3plus_completions,
    users_with_fewer_than_3_completions, users_without_completion, course_completions, learning_hours,
    certificates_issued)
SELECT :report_date, d.state_code, d.department, d.registered_users, d.users_with_completion, d.users_with_3plus,
       d.registered_users - d.users_with_3plus, d.registered_users - d.users_with_completion,
       d.course_completions,
       CAST(FLOOR((d.completed_seconds * 100 + 1800) / 3600.0) / 100.0 AS NUMERIC(18,2)),
       d.certificates_issued
FROM r_dept AS d;

-- Feed status: the latest processing of each feed delivered for the date.
-- Held unknown_user rows that have loaded since count as loaded, so the status
-- does not depend on whether the user's enrolment arrived before or after.
INSERT INTO mart.feed_status (
    report_date, state_code, feed, status, reason, rows_received, rows_loaded, rows_quarantined, rows_duplicate,
    detail, load_id)
SELECT :report_date, s.state_code, f.feed,
       CASE WHEN l.status IS NULL THEN 'missing'
            WHEN l.status = 'rejected' THEN 'rejected'
            WHEN l.rows_quarantined - COALESCE(r.released, 0) > 0 THEN 'loaded_with_quarantine'
            ELSE 'loaded' END,
       l.reason, l.rows_received,
       COALESCE(l.rows_loaded, 0) + COALESCE(r.released, 0),
       COALESCE(l.rows_quarantined, 0) - COALESCE(r.released, 0),
       COALESCE(l.rows_duplicate, 0),
       l.detail, l.load_id
FROM r_states AS s
CROSS JOIN (SELECT 'enrolment' AS feed UNION ALL SELECT 'completion') AS f
LEFT JOIN (
    SELECT state_code, feed, status, reason, rows_received, rows_loaded, rows_quarantined, rows_duplicate,
           detail, load_id,
           ROW_NUMBER() OVER (PARTITION BY state_code, feed ORDER BY load_id DESC) AS rn
    FROM ops.feed_load WHERE report_date = :report_date
) AS l ON l.state_code = s.state_code AND l.feed = f.feed AND l.rn = 1
LEFT JOIN (
    SELECT load_id, COUNT(*) AS released FROM quarantine.row
    WHERE report_date = :report_date AND released_load_id IS NOT NULL
    GROUP BY load_id
) AS r ON r.load_id = l.load_id;

-- Rows of the date's deliveries now in quarantine (released held rows left).
INSERT INTO mart.quarantine_summary (report_date, state_code, feed, reason, rows)
SELECT :report_date, q.state_code, q.feed, q.reason, COUNT(*)
FROM quarantine.row AS q
JOIN core.feed_version AS fv
  ON fv.state_code = q.state_code AND fv.feed = q.feed AND fv.report_date = q.report_date AND fv.load_id = q.load_id
WHERE q.report_date = :report_date AND q.released_load_id IS NULL
GROUP BY q.state_code, q.feed, q.reason;

DROP VIEW r_counted;
DROP TABLE r_dept;
DROP TABLE r_state;
DROP TABLE r_nat;
DROP TABLE r_mkey;
DROP TABLE r_multi;
DROP TABLE r_presence;
DROP TABLE r_snap;
DROP TABLE r_enrol;
DROP TABLE r_multi_compl;
DROP TABLE r_user;
DROP TABLE r_base;
DROP TABLE r_enrol_later;
DROP TABLE r_compl_later;

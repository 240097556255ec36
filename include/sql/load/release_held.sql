-- Held unknown_user rows of the state whose user is now registered (as of the
-- night's report date) load with their original report date. The caller fills in
-- the registered-users query (load/registered_users.sql) for the state and night.
DROP TABLE IF EXISTS rel_held;
CREATE TEMP TABLE rel_held AS
SELECT h.* FROM quarantine.held_completion AS h
WHERE h.state_code = :state_code AND h.user_id IN ({registered});
INSERT INTO core.completion (state_code, user_id, content_id, batch_id, report_date, load_id, content_name,
                             content_provider, content_type, duration_seconds, enrolled_on, status, progress_pct,
                             completed_on, certificate_generated, certificate_id, user_rating)
SELECT state_code, user_id, content_id, batch_id, report_date, load_id, content_name,
       content_provider, content_type, duration_seconds, enrolled_on, status, progress_pct,
       completed_on, certificate_generated, certificate_id, user_rating
FROM rel_held;
UPDATE quarantine.row AS q SET released_load_id = :release_id
WHERE q.released_load_id IS NULL AND q.reason = 'unknown_user' AND q.state_code = :state_code
  AND EXISTS (SELECT 1 FROM rel_held AS h WHERE h.load_id = q.load_id AND h.record_no = q.record_no);
DELETE FROM quarantine.held_completion AS hc
WHERE hc.state_code = :state_code
  AND EXISTS (SELECT 1 FROM rel_held AS h WHERE h.load_id = hc.load_id
                                           AND h.record_no = hc.record_no);
INSERT INTO ops.change (change_id, state_code, report_date, kind, load_id, changed_at)
SELECT nextval('ops.change_id_seq'), :state_code, report_date, 'released', :release_id, :now
FROM (SELECT DISTINCT report_date FROM rel_held) AS d;
DROP TABLE rel_held;

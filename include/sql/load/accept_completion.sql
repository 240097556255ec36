-- Accept a staged completion feed (replacing an earlier accepted delivery of
-- the same state and report date, its held rows included), and hold its
-- unknown_user rows until their user is registered. The rows follow
-- (core_completion.sql).
DELETE FROM core.completion WHERE state_code = :state_code AND report_date = :report_date;
DELETE FROM quarantine.held_completion WHERE state_code = :state_code AND report_date = :report_date;
INSERT INTO quarantine.held_completion (state_code, user_id, content_id, batch_id, report_date, load_id, record_no,
                                        content_name, content_provider, content_type, duration_seconds, enrolled_on,
                                        status, progress_pct, completed_on, certificate_generated, certificate_id,
                                        user_rating)
SELECT :state_code, user_id, content_id, batch_id, :report_date, :load_id, record_no,
       content_name, content_provider, content_type, duration_seconds, enrolled_on,
       status, progress_pct, completed_on, certificate_generated, certificate_id, user_rating
FROM stgh_completion;

-- For either feed, after its rows: the quarantined rows, and the accepted load
-- now in effect for (state, feed, report date).
INSERT INTO quarantine.row (load_id, state_code, report_date, feed, file_name, file_sha256, line_no, record_no,
                            reason, detail, user_id, raw_values, released_load_id)
SELECT :load_id, :state_code, :report_date, :feed, :file_name, :file_sha256, line_no, record_no,
       reason, detail, user_id, raw_values, NULL
FROM stgq_{feed};
DELETE FROM core.snapshot_presence WHERE state_code = :state_code AND feed = :feed AND report_date = :report_date;
INSERT INTO core.snapshot_presence (state_code, feed, report_date, user_id, content_id, batch_id)
SELECT DISTINCT :state_code, :feed, :report_date, user_id, key_content_id, key_batch_id
FROM stgq_{feed}
WHERE :mode = 'snapshot' AND user_id IS NOT NULL AND key_content_id IS NOT NULL;
DELETE FROM core.feed_version WHERE state_code = :state_code AND feed = :feed AND report_date = :report_date;
INSERT INTO core.feed_version (state_code, feed, report_date, mode, load_id, rows_received)
VALUES (:state_code, :feed, :report_date, :mode, :load_id, :rows_received);

-- The audit row of a processed feed (accepted or rejected) and the change it
-- makes to the report date's figures.
INSERT INTO ops.feed_load (load_id, state_code, report_date, feed, mode, fingerprint, manifest_sha256, file_name,
                           file_sha256, archive_path, file_size, file_mtime_ns, status, reason, detail,
                           rows_received, rows_loaded, rows_quarantined, rows_duplicate, run_id, started_at, finished_at)
VALUES (:load_id, :state_code, :report_date, :feed, :mode, :fingerprint, :manifest_sha256, :file_name,
        :file_sha256, :archive_path, :file_size, :file_mtime_ns, :status, :reason, :detail,
        :rows_received, :rows_loaded, :rows_quarantined, :rows_duplicate, :run_id, :started_at, :finished_at);
INSERT INTO ops.change (change_id, state_code, report_date, kind, load_id, changed_at)
VALUES (nextval('ops.change_id_seq'), :state_code, :report_date, :status, :load_id, :finished_at);

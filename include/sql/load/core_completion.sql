-- The staged completion rows into core (after accept_completion.sql). One
-- INSERT ... SELECT from the staged table: DuckDB runs it as it stands; for a
-- PostgreSQL warehouse the SELECT runs in the staging DuckDB and its rows go
-- in by COPY (transfer.copy_insert), so this file holds exactly that statement.
INSERT INTO core.completion (state_code, user_id, content_id, batch_id, report_date, load_id, content_name,
                             content_provider, content_type, duration_seconds, enrolled_on, status, progress_pct,
                             completed_on, certificate_generated, certificate_id, user_rating)
SELECT :state_code, user_id, content_id, batch_id, :report_date, :load_id, content_name,
       content_provider, content_type, duration_seconds, enrolled_on, status, progress_pct,
       completed_on, certificate_generated, certificate_id, user_rating
FROM stg_completion;

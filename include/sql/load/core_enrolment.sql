-- The staged enrolment rows into core (after accept_enrolment.sql). One
-- INSERT ... SELECT from the staged table: DuckDB runs it as it stands; for a
-- PostgreSQL warehouse the SELECT runs in the staging DuckDB and its rows go
-- in by COPY (transfer.copy_insert), so this file holds exactly that statement.
INSERT INTO core.enrolment (state_code, user_id, report_date, load_id, department, registration_date,
                            organization, designation, service_group, mdoid)
SELECT :state_code, user_id, :report_date, :load_id, department, registration_date,
       organization, designation, service_group, mdoid
FROM stg_enrolment;

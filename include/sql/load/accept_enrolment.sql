-- Accept a staged enrolment feed: it replaces whatever an earlier accepted
-- delivery of the same state and report date had put there.
DELETE FROM core.enrolment WHERE state_code = :state_code AND report_date = :report_date;
INSERT INTO core.enrolment (state_code, user_id, report_date, load_id, department, registration_date,
                            organization, designation, service_group, mdoid)
SELECT :state_code, user_id, :report_date, :load_id, department, registration_date,
       organization, designation, service_group, mdoid
FROM stg_enrolment;

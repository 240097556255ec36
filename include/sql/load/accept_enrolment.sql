-- Accept a staged enrolment feed: it replaces whatever an earlier accepted
-- delivery of the same state and report date had put there. The rows follow
-- (core_enrolment.sql).
DELETE FROM core.enrolment WHERE state_code = :state_code AND report_date = :report_date;

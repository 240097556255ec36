-- Warehouse layout. Written once for DuckDB and PostgreSQL.
--   ops         audit of every delivery and feed load, nights, rollups, change log
--   core        per-key versions of enrolment and completion records, by report date
--   quarantine  rows that broke a row rule (personal data removed), held rows
--   mart        what BI reads (public contract: ../shared/contract/warehouse.md)
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE SCHEMA IF NOT EXISTS mart;

CREATE SEQUENCE IF NOT EXISTS ops.load_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS ops.change_id_seq START 1;

-- One row per delivery folder (manifest) seen and processed.
CREATE TABLE IF NOT EXISTS ops.delivery (
    manifest_sha256 TEXT NOT NULL,
    state_code      TEXT NOT NULL,
    report_date     DATE NOT NULL,
    mode            TEXT,
    path            TEXT NOT NULL,
    run_id          TEXT,
    processed_at    TIMESTAMP NOT NULL
);

-- One row per feed of a delivery processed (accepted or rejected): the audit trail.
CREATE TABLE IF NOT EXISTS ops.feed_load (
    load_id          BIGINT NOT NULL PRIMARY KEY,
    state_code       TEXT NOT NULL,
    report_date      DATE NOT NULL,
    feed             TEXT NOT NULL,
    mode             TEXT,
    fingerprint      TEXT NOT NULL,
    manifest_sha256  TEXT,
    file_name        TEXT,
    file_sha256      TEXT,
    archive_path     TEXT,
    file_size        BIGINT,
    file_mtime_ns    BIGINT,
    status           TEXT NOT NULL,       -- loaded | loaded_with_quarantine | rejected
    reason           TEXT,                -- feed rule code when rejected
    detail           TEXT,                -- the clear error: file, line, rule
    rows_received    BIGINT,
    rows_loaded      BIGINT,
    rows_quarantined BIGINT,
    rows_duplicate   BIGINT,
    run_id           TEXT,
    started_at       TIMESTAMP NOT NULL,
    finished_at      TIMESTAMP NOT NULL
);

-- The accepted load in effect for each (state, feed, report date). A re-delivery
-- that is accepted replaces it; a rejected one leaves it.
CREATE TABLE IF NOT EXISTS core.feed_version (
    state_code  TEXT NOT NULL,
    feed        TEXT NOT NULL,
    report_date DATE NOT NULL,
    mode        TEXT NOT NULL,
    load_id     BIGINT NOT NULL,
    rows_received BIGINT NOT NULL,
    PRIMARY KEY (state_code, feed, report_date)
);

-- Versions of enrolment records: one per (state, user, report date) delivered.
-- Current as of D = latest version with report_date <= D, unless an accepted
-- snapshot after that version and on or before D lacked the key.
CREATE TABLE IF NOT EXISTS core.enrolment (
    state_code        TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    report_date       DATE NOT NULL,
    load_id           BIGINT NOT NULL,
    department        TEXT NOT NULL,
    registration_date DATE NOT NULL,
    organization      TEXT,
    designation       TEXT,
    service_group     TEXT,
    mdoid             TEXT
);

CREATE TABLE IF NOT EXISTS core.completion (
    state_code            TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    content_id            TEXT NOT NULL,
    batch_id              TEXT NOT NULL,   -- '' when no batch (part of the key)
    report_date           DATE NOT NULL,
    load_id               BIGINT NOT NULL,
    content_name          TEXT NOT NULL,
    content_provider      TEXT,
    content_type          TEXT,
    duration_seconds      BIGINT NOT NULL,
    enrolled_on           DATE NOT NULL,
    status                TEXT NOT NULL,   -- Not Started | In Progress | Completed
    progress_pct          DOUBLE PRECISION,
    completed_on          DATE,
    certificate_generated BOOLEAN,
    certificate_id        TEXT,
    user_rating           DOUBLE PRECISION
);

-- Keys that an accepted snapshot held only in quarantined rows: the key was
-- not absent from the snapshot, so it is not removed by it (its last good
-- version stays current).
CREATE TABLE IF NOT EXISTS core.snapshot_presence (
    state_code  TEXT NOT NULL,
    feed        TEXT NOT NULL,
    report_date DATE NOT NULL,
    user_id     TEXT NOT NULL,
    content_id  TEXT NOT NULL,   -- '' for enrolment
    batch_id    TEXT NOT NULL    -- '' for enrolment
);

-- Every quarantined row: reason, delivery, line, and the raw values without
-- personal data (JSON text). released_load_id is set when a held unknown_user
-- row later loads.
CREATE TABLE IF NOT EXISTS quarantine.row (
    load_id          BIGINT NOT NULL,
    state_code       TEXT NOT NULL,
    report_date      DATE NOT NULL,
    feed             TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    file_sha256      TEXT NOT NULL,
    line_no          BIGINT NOT NULL,
    record_no        BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    detail           TEXT,
    user_id          TEXT,
    raw_values       TEXT NOT NULL,
    released_load_id BIGINT
);

-- Held unknown_user completion rows, normalised, ready to load once the user
-- is registered. Removed from here when loaded.
CREATE TABLE IF NOT EXISTS quarantine.held_completion (
    state_code            TEXT NOT NULL,
    user_id               TEXT NOT NULL,
    content_id            TEXT NOT NULL,
    batch_id              TEXT NOT NULL,
    report_date           DATE NOT NULL,
    load_id               BIGINT NOT NULL,
    record_no             BIGINT NOT NULL,
    content_name          TEXT NOT NULL,
    content_provider      TEXT,
    content_type          TEXT,
    duration_seconds      BIGINT NOT NULL,
    enrolled_on           DATE NOT NULL,
    status                TEXT NOT NULL,
    progress_pct          DOUBLE PRECISION,
    completed_on          DATE,
    certificate_generated BOOLEAN,
    certificate_id        TEXT,
    user_rating           DOUBLE PRECISION
);

-- A state's night finished (the rollup's sensor reads this).
CREATE TABLE IF NOT EXISTS ops.state_night (
    state_code  TEXT NOT NULL,
    report_date DATE NOT NULL,
    run_id      TEXT,
    finished_at TIMESTAMP NOT NULL
);

-- Every change to core, quarantine or feed status, with the report date it
-- affects: rolled-up dates on or after it are recomputed.
CREATE TABLE IF NOT EXISTS ops.change (
    change_id   BIGINT NOT NULL,
    state_code  TEXT NOT NULL,
    report_date DATE NOT NULL,
    kind        TEXT NOT NULL,
    load_id     BIGINT,
    changed_at  TIMESTAMP NOT NULL
);

-- Report dates the national rollup has been run for.
CREATE TABLE IF NOT EXISTS ops.rollup (
    report_date    DATE NOT NULL PRIMARY KEY,
    last_change_id BIGINT NOT NULL,
    computed_at    TIMESTAMP NOT NULL
);

-- The mart: public interface, see warehouse.md. Never rename or drop a column
-- without a migration note in CHANGELOG.md.
CREATE TABLE IF NOT EXISTS mart.state_summary (
    report_date                          DATE NOT NULL,
    state_code                           TEXT NOT NULL,
    state_name                           TEXT NOT NULL,
    last_delivery_date                   DATE,
    is_stale                             BOOLEAN NOT NULL,
    registered_users                     BIGINT NOT NULL,
    users_with_completion                BIGINT NOT NULL,
    users_with_3plus_completions         BIGINT NOT NULL,
    users_with_fewer_than_3_completions  BIGINT NOT NULL,
    users_without_completion             BIGINT NOT NULL,
    course_enrolments                    BIGINT NOT NULL,
    course_completions                   BIGINT NOT NULL,
    learning_hours                       NUMERIC(18,2) NOT NULL,
    certificates_issued                  BIGINT NOT NULL,
    registrations_ytd                    BIGINT NOT NULL,
    completions_ytd                      BIGINT NOT NULL,
    share_of_national_registrations_ytd  NUMERIC(12,6),
    share_of_national_completions_ytd    NUMERIC(12,6)
);

CREATE TABLE IF NOT EXISTS mart.national_summary (
    report_date                   DATE NOT NULL,
    states_total                  BIGINT NOT NULL,
    states_reporting              BIGINT NOT NULL,
    states_stale                  BIGINT NOT NULL,
    registered_users              BIGINT NOT NULL,
    users_with_completion         BIGINT NOT NULL,
    users_with_3plus_completions  BIGINT NOT NULL,
    users_without_completion      BIGINT NOT NULL,
    course_enrolments             BIGINT NOT NULL,
    course_completions            BIGINT NOT NULL,
    learning_hours                NUMERIC(18,2) NOT NULL,
    certificates_issued           BIGINT NOT NULL,
    registrations_ytd             BIGINT NOT NULL,
    completions_ytd               BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS mart.department_summary (
    report_date                          DATE NOT NULL,
    state_code                           TEXT NOT NULL,
    department                           TEXT NOT NULL,
    registered_users                     BIGINT NOT NULL,
    users_with_completion                BIGINT NOT NULL,
    users_with_3plus_completions         BIGINT NOT NULL,
    users_with_fewer_than_3_completions  BIGINT NOT NULL,
    users_without_completion             BIGINT NOT NULL,
    course_completions                   BIGINT NOT NULL,
    learning_hours                       NUMERIC(18,2) NOT NULL,
    certificates_issued                  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS mart.feed_status (
    report_date       DATE NOT NULL,
    state_code        TEXT NOT NULL,
    feed              TEXT NOT NULL,
    status            TEXT NOT NULL,
    reason            TEXT,
    rows_received     BIGINT,
    rows_loaded       BIGINT,
    rows_quarantined  BIGINT,
    rows_duplicate    BIGINT,
    detail            TEXT,      -- added: the clear error of a rejection (file, line, rule)
    load_id           BIGINT     -- added: the ops.feed_load row behind this status
);

CREATE TABLE IF NOT EXISTS mart.quarantine_summary (
    report_date DATE NOT NULL,
    state_code  TEXT NOT NULL,
    feed        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    rows        BIGINT NOT NULL
);

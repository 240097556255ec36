-- Great Expectations results: one row per expectation of every validated feed
-- load, with the whole result JSON and the Data Docs page on the first row of a
-- validation (expectation_no = 0 carries the summary).
CREATE TABLE IF NOT EXISTS ops.validation (
    load_id          BIGINT NOT NULL,
    state_code       TEXT NOT NULL,
    report_date      DATE NOT NULL,
    feed             TEXT NOT NULL,
    file_sha256      TEXT,
    expectation_no   BIGINT NOT NULL,
    expectation      TEXT NOT NULL,
    rule_code        TEXT,
    success          BOOLEAN NOT NULL,
    observed         BIGINT,
    description      TEXT,
    result_json      TEXT,
    docs_path        TEXT,
    validated_at     TIMESTAMP NOT NULL
);

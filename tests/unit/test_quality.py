"""The Great Expectations suite: built from the rule declarations, run on the
staged rows in DuckDB, its counts equal to the quarantine's, stored and rendered."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from mou_etl import night, quality
from mou_etl.rules import ROW_CODES
from mou_etl.stage import stage_file

RD = date(2026, 1, 6)
HEADER = (
    "User_ID,Content_ID,Batch_Id,Content_Name,Content_Provider,Content_Type,Content_Duration,Enrolled_On,Status,"
    "Content_Progress_Percentage,Completed_On,Certificate_Generated,Certificate_ID,User_Rating\n"
)
LINES = [
    "u1,c1,,C1,P,Course,01:30:00,2026-01-01,Completed,100,2026-01-03,Yes,C-1,4.5",  # ok
    "u1,c2,,,P,Course,01:00:00,2026-01-01,Completed,100,2026-01-03,Yes,,",          # missing_required
    ",c2,,,P,Course,01:00:00,bad,Completed,100,2026-01-03,Yes,,",                   # missing_required (first code)
    "u1,c3,,C3,P,Course,01:00:00,2026-01-99,Completed,100,2026-01-04,Yes,,",         # bad_date
    "u1,c4,,C4,P,Course,01:00:00,2026-01-07,In Progress,50,,,,",                     # future_date
    "u1,c5,,C5,P,Course,01:00:00,2026-01-01,Done,50,,,,",                            # bad_value
    "u1,c6,,C6,P,Course,01:00:00,2026-01-01,Completed,100,,Yes,,",                   # completed_without_date
    "u1,c7,,C7,P,Course,01:00:00,2026-01-05,2,100,2026-01-04,No,,",                  # completed_before_enrolled
    "u2,c8,,C8,P,Course,01:00:00,2026-01-01,1,10,,,,",                               # conflicting (with next)
    "u2,c8,,C8,P,Course,02:00:00,2026-01-01,1,10,,,,",                               # conflicting
    "u9,c9,,C9,P,Course,01:00:00,2026-01-01,0,0,,,,",                                # unknown_user
    "u1,c1,,C1,P,Course,01:30:00,2026-01-01,Completed,100,2026-01-03,Yes,C-1,4.5",  # identical duplicate
]


@pytest.fixture
def staged(tmp_path, monkeypatch):
    monkeypatch.setenv("MOU_DATA_DOCS", "0")
    path = tmp_path / "completion.csv"
    path.write_text(HEADER + "\n".join(LINES) + "\n")
    db = duckdb.connect()
    reg = "SELECT * FROM (VALUES ('u1'), ('u2')) AS t(user_id)"

    def validator(db_, table, with_unknown_user):
        return quality.validate_staged(db_, table, "completion", "UP", RD, "ab" * 32, len(LINES), with_unknown_user)

    return stage_file(db, "completion", path, "csv", False, RD, str(path), len(LINES), reg, validator=validator)


def test_suite_has_one_expectation_per_rule_in_contract_order():
    codes = [c.code for c in quality.checks_for("completion", with_unknown_user=True)]
    # the order of feeds.md's row-rules table, written out by hand
    assert codes == ["missing_required", "bad_date", "future_date", "bad_value", "completed_without_date",
                     "completed_before_enrolled", "conflicting_duplicate", "unknown_user"]
    assert list(ROW_CODES) == codes
    assert [c.code for c in quality.checks_for("enrolment", with_unknown_user=False)] == [
        "missing_required", "bad_date", "future_date", "conflicting_duplicate"]


def test_gx_counts_equal_quarantine_counts(staged):
    expected = {
        "missing_required": 2, "bad_date": 1, "future_date": 1, "bad_value": 1, "completed_without_date": 1,
        "completed_before_enrolled": 1, "conflicting_duplicate": 2, "unknown_user": 1,
    }
    assert staged.quarantined == expected
    assert staged.validation.counts == expected
    assert staged.validation.row_count == len(LINES)
    assert staged.validation.success is False
    assert staged.rows_duplicate == 1 and staged.rows_loaded == 1
    result = json.loads(staged.validation.result_json)
    assert len(result["expectations"]) == 1 + len(expected)


def _delivery(root: Path, rows: list[str], state: str = "UP") -> None:
    import hashlib

    folder = root / state / "2026-01-06"
    folder.mkdir(parents=True)
    enrol = "User_ID,Department,User_Registration_Date\n" + "".join(f"u{i},D,2026-01-01\n" for i in range(1, 20))
    (folder / "enrolment.csv").write_text(enrol)
    (folder / "completion.csv").write_text(HEADER + "\n".join(rows) + "\n")
    files = [
        {"feed": f, "name": f"{f}.csv", "rows": n, "sha256": hashlib.sha256((folder / f"{f}.csv").read_bytes()).hexdigest()}
        for f, n in (("enrolment", 19), ("completion", len(rows)))
    ]
    (folder / "manifest.json").write_text(json.dumps({"state": state, "report_date": "2026-01-06", "mode": "delta", "files": files}))


def test_results_are_stored_and_rendered(tmp_path, monkeypatch):
    monkeypatch.setenv("MOU_DATA_DOCS", "1")
    good = [f"u{i},c{i},,C,P,Course,01:00:00,2026-01-01,Completed,100,2026-01-02,Yes,," for i in range(1, 20)]
    _delivery(tmp_path / "landing", good + ["u3,c99,,C,P,Course,01:00:00,2026-01-01,Done,,,,,"])
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    out = night.ingest_deliveries("UP", "2026-01-06", landing=str(tmp_path / "landing"), warehouse=url)
    assert [f["status"] for f in out["feeds"]] == ["loaded", "loaded_with_quarantine"]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT feed, rule_code, observed, success, docs_path, result_json FROM ops.validation "
            "WHERE feed = 'completion' ORDER BY expectation_no")).all()
    engine.dispose()
    assert rows[0].rule_code is None and rows[0].observed == 20 and rows[0].success   # manifest row count
    by_rule = {r.rule_code: r.observed for r in rows[1:]}
    assert by_rule["bad_value"] == 1 and sum(by_rule.values()) == 1
    page = Path(rows[0].docs_path)
    assert page.is_file() and "bad_value" in page.read_text()
    assert json.loads(rows[0].result_json)["success"] is False
    assert (tmp_path / "data" / "quality" / "docs" / "index.html").is_file()


def test_headless_night_indexes_every_state_page_once_at_the_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MOU_DATA_DOCS", "1")
    monkeypatch.setattr(quality, "_runner", None)  # one GX context per process: a new one, writing under tmp_path
    good = [f"u{i},c{i},,C,P,Course,01:00:00,2026-01-01,Completed,100,2026-01-02,Yes,," for i in range(1, 20)]
    for state in ("UP", "UK"):
        _delivery(tmp_path / "landing", good, state)
    builds = []
    real = quality._Runner.build_docs
    monkeypatch.setattr(quality._Runner, "build_docs", lambda self: (builds.append(list(self.pending_docs)), real(self)))
    night.run_night("2026-01-06", ["UP", "UK"], str(tmp_path / "landing"), f"duckdb:///{tmp_path / 'wh.duckdb'}")
    # one index build, after both states, covering the four validations
    assert len(builds) == 1 and len(builds[0]) == 4
    index = (tmp_path / "data" / "quality" / "docs" / "index.html").read_text()
    assert "UP_2026-01-06" in index and "UK_2026-01-06" in index

"""Reading and normalising feed files, and the row rules, on small hand-made files.

Each expectation is written out by hand from feeds.md, not computed with the
code under test.
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from mou_etl.stage import FeedRejected, stage_file

RD = date(2026, 1, 6)


def _stage(tmp_path: Path, feed: str, name: str, data: bytes, rows=None, registered=("u1", "u2", "u3")):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    fmt = "jsonl" if ".jsonl" in name else "csv"
    db = duckdb.connect()
    reg = "SELECT * FROM (VALUES " + ", ".join(f"('{u}')" for u in registered) + ") AS t(user_id)"
    result = stage_file(db, feed, path, fmt, name.endswith(".gz"), RD, name, rows, reg if feed == "completion" else None)
    return db, result


def _rows(db, table):
    cur = db.execute(f"SELECT * FROM {table} ORDER BY record_no")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


ENROL_HEADER = "User_ID,Department,User_Registration_Date,Organization,Designation,Group,mdoid,Full_Name,Email,Phone_Number,Employee_Id\n"


def test_enrolment_variations_normalise(tmp_path):
    data = (
        "\ufeffuser id,DEPARTMENT,User-Registration-Date,Full Name,Email\r\n"
        "u1,  Health   and Family Welfare ,06-01-2026,A,a@x\r\n"
        'u2,"Home, Police",05/01/2026 09:05 PM,B,b@x\r\n'
        "u3,\u0915\u093c\u0943\u0937\u093f  \u0935\u093f\u092d\u093e\u0917,2025-12-31 10:30:15,C,c@x\r\n"
    ).encode("utf-8")
    db, res = _stage(tmp_path, "enrolment", "e.csv", data, rows=3)
    rows = _rows(db, "stg_enrolment")
    assert res.rows_received == 3 and res.rows_loaded == 3 and res.rows_quarantined == 0
    assert [r["user_id"] for r in rows] == ["u1", "u2", "u3"]
    assert rows[0]["department"] == "Health and Family Welfare"
    assert rows[1]["department"] == "Home, Police"
    # NFC keeps KA + NUKTA decomposed (U+0958 is a composition exclusion); inner spaces collapse
    assert rows[2]["department"] == "\u0915\u093c\u0943\u0937\u093f \u0935\u093f\u092d\u093e\u0917"
    assert [r["registration_date"] for r in rows] == [date(2026, 1, 6), date(2026, 1, 5), date(2025, 12, 31)]
    cols = {d[0] for d in db.execute("SELECT * FROM stg_enrolment").description}
    assert not cols & {"full_name", "email", "phone_number", "employee_id"}


def test_nfc_normalisation_of_precomposed_input(tmp_path):
    # "e" + combining acute becomes the single code point U+00E9
    data = (ENROL_HEADER + "u1,Cafe\u0301 Dept,2026-01-01,,,,,,,,\n").encode()
    db, _ = _stage(tmp_path, "enrolment", "e.csv", data)
    assert _rows(db, "stg_enrolment")[0]["department"] == "Caf\u00e9 Dept"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-01-06", date(2026, 1, 6)),
        ("2026-1-6", date(2026, 1, 6)),
        ("06-01-2026", date(2026, 1, 6)),
        ("06/01/2026", date(2026, 1, 6)),
        ("6/1/2026 10:30", date(2026, 1, 6)),
        ("01/02/2025 11:59:59 PM", date(2025, 2, 1)),
        ("2025-02-01T08:00:00", date(2025, 2, 1)),
    ],
)
def test_date_formats_day_first(tmp_path, value, expected):
    data = (ENROL_HEADER + f"u1,D,{value},,,,,,,,\n").encode()
    db, res = _stage(tmp_path, "enrolment", "e.csv", data)
    assert res.rows_loaded == 1
    assert _rows(db, "stg_enrolment")[0]["registration_date"] == expected


@pytest.mark.parametrize("value", ["2026-02-30", "31/13/2025", "yesterday", "2026/01/06", "06-01-26", "12.01.2026"])
def test_bad_dates_are_quarantined(tmp_path, value):
    data = (ENROL_HEADER + f"u1,D,{value},,,,,,,,\nu2,D,2026-01-01,,,,,,,,\n").encode()
    db, res = _stage(tmp_path, "enrolment", "e.csv", data)
    q = _rows(db, "stgq_enrolment")
    assert res.rows_loaded == 1 and len(q) == 1
    assert q[0]["reason"] == "bad_date" and q[0]["line_no"] == 2 and value in q[0]["detail"]


COMP_HEADER = (
    "User_ID,Content_ID,Batch_Id,Content_Name,Content_Provider,Content_Type,Content_Duration,Enrolled_On,Status,"
    "Content_Progress_Percentage,Completed_On,Certificate_Generated,Certificate_ID,User_Rating,Full_Name,Email\n"
)


def test_completion_rules_in_table_order(tmp_path):
    lines = [
        "u1,c1,,Course 1,P,Course,01:30:00,2026-01-01,Completed,100,2026-01-03,Yes,C-1,4.5,N,e",   # 2 ok
        "u1,c2,,,P,Course,01:00:00,2026-01-01,Completed,100,2026-01-03,Yes,,,N,e",               # 3 missing Content_Name
        "u1,c3,,C3,P,Course,01:00:00,2026-01-99,Completed,100,bad,Yes,,,N,e",                    # 4 bad_date
        "u1,c4,,C4,P,Course,01:00:00,2026-01-07,In Progress,50,,,,,N,e",                         # 5 future_date
        "u1,c5,,C5,P,Course,01:00:00,2026-01-01,Done,50,,,,,N,e",                                # 6 bad_value status
        "u1,c6,,C6,P,Course,01:00:00,2026-01-01,1,101,,,,,N,e",                                  # 7 bad_value progress
        "u1,c7,,C7,P,Course,01:00:00,2026-01-01,1,50,,,,5.5,N,e",                                # 8 bad_value rating
        "u1,c8,,C8,P,Course,1:0:00,2026-01-01,1,50,,,,,N,e",                                     # 9 bad_value duration
        "u1,c9,,C9,P,Course,1000:00:01,2026-01-01,1,50,,,,,N,e",                                 # 10 over 1000 h
        "u1,c10,,C10,P,Course,01:00:00,2026-01-01,COMPLETED,100,,Yes,,,N,e",                     # 11 completed_without_date
        "u1,c11,,C11,P,Course,01:00:00,2026-01-05,2,100,2026-01-04,No,,,N,e",                    # 12 completed_before_enrolled
        "u9,c12,,C12,P,Course,01:00:00,2026-01-01,0,0,,,,,N,e",                                  # 13 unknown_user
        ",c13,,,P,Course,99:99:99,bad,Done,500,,,,,N,e",                                         # 14 several: first wins
        "u2,c1,b1,कोर्स,P,Course,1000:00:00,2026-01-01,not started,0,,No,,0,N,e",                # 15 ok (1000 h is allowed)
    ]
    data = (COMP_HEADER + "\n".join(lines) + "\n").encode()
    db, res = _stage(tmp_path, "completion", "c.csv", data, rows=len(lines))
    got = {r["line_no"]: r["reason"] for r in _rows(db, "stgq_completion")}
    assert got == {
        3: "missing_required", 4: "bad_date", 5: "future_date", 6: "bad_value", 7: "bad_value", 8: "bad_value",
        9: "bad_value", 10: "bad_value", 11: "completed_without_date", 12: "completed_before_enrolled",
        13: "unknown_user", 14: "missing_required",
    }
    good = _rows(db, "stg_completion")
    assert [(r["user_id"], r["content_id"]) for r in good] == [("u1", "c1"), ("u2", "c1")]
    assert good[0]["status"] == "Completed" and good[0]["duration_seconds"] == 5400
    assert good[0]["certificate_generated"] is True and good[0]["user_rating"] == 4.5 and good[0]["batch_id"] == ""
    assert good[1]["status"] == "Not Started" and good[1]["duration_seconds"] == 3_600_000
    assert good[1]["content_name"] == "कोर्स" and good[1]["batch_id"] == "b1"
    held = _rows(db, "stgh_completion")
    assert [(h["user_id"], h["content_id"], h["record_no"]) for h in held] == [("u9", "c12", 12)]
    assert res.rows_loaded == 2 and res.rows_quarantined == 12 and res.rows_duplicate == 0
    # the raw values kept for a quarantined row have no personal data
    raw = json.loads(_rows(db, "stgq_completion")[0]["raw_values"])
    assert raw["Content_ID"] == "c2" and "Full_Name" not in raw and "Email" not in raw


def test_duplicates_identical_and_conflicting(tmp_path):
    lines = [
        "u1,c1,,C1,,,01:00:00,2026-01-01,Completed,,2026-01-02,,,,X,x",   # 2
        "u1,c1,,C1,,,01:00:00,2026-01-01,Completed,,2026-01-02,,,,Y,y",   # 3 identical but for personal data
        " u1 ,c1,,C1 ,,,01:00:00,01-01-2026,completed,,2026-01-02,,,,Z,z",  # 4 identical after normalisation
        "u2,c1,,C1,,,01:00:00,2026-01-01,Completed,,2026-01-02,,,,,",     # 5 conflicts with 6
        "u2,c1,,C1,,,02:00:00,2026-01-01,Completed,,2026-01-02,,,,,",     # 6
        "u2,c1,b1,C1,,,01:00:00,2026-01-01,Completed,,2026-01-02,,,,,",   # 7 other batch: another key
    ]
    data = (COMP_HEADER + "\n".join(lines) + "\n").encode()
    db, res = _stage(tmp_path, "completion", "c.csv", data)
    q = _rows(db, "stgq_completion")
    assert [(r["line_no"], r["reason"]) for r in q] == [(5, "conflicting_duplicate"), (6, "conflicting_duplicate")]
    assert "lines 5, 6" in q[0]["detail"]
    assert res.rows_duplicate == 2 and res.rows_loaded == 2
    assert res.rows_loaded + res.rows_quarantined + res.rows_duplicate == res.rows_received == 6


def test_line_numbers_count_newlines_inside_quotes(tmp_path):
    data = (
        ENROL_HEADER
        + 'u1,"Dept\nwith two\nlines",2026-01-01,,,,,,,,\n'
        + "u2,D,not-a-date,,,,,,,,\n"
    ).encode()
    db, res = _stage(tmp_path, "enrolment", "e.csv", data)
    q = _rows(db, "stgq_enrolment")
    assert q[0]["line_no"] == 5 and q[0]["record_no"] == 2


def test_jsonl_gzip_numbers_and_key_spellings(tmp_path):
    objs = [
        {"User ID": "u1", "content-id": "c1", "Content_Name": "C", "Content_Duration": "00:10:00",
         "Enrolled_On": "01/01/2026", "Status": 2, "Completed_On": "2026-01-02", "Content_Progress_Percentage": 100,
         "User_Rating": 4, "Email": "secret@example.org"},
        {"user_id": 12345, "CONTENT_ID": "c2", "Content_Name": "D", "Content_Duration": "01:00:00",
         "Enrolled_On": "2026-01-01", "Status": "In Progress", "Content_Progress_Percentage": 12.5},
    ]
    data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode()
    db, res = _stage(tmp_path, "completion", "c.jsonl.gz", data, rows=2, registered=("u1", "12345"))
    rows = _rows(db, "stg_completion")
    assert [(r["user_id"], r["content_id"], r["status"]) for r in rows] == [
        ("u1", "c1", "Completed"), ("12345", "c2", "In Progress")]
    assert rows[0]["progress_pct"] == 100 and rows[0]["user_rating"] == 4 and rows[1]["progress_pct"] == 12.5


@pytest.mark.parametrize(
    "name, data, code",
    [
        ("e.csv", b"", "unreadable"),
        ("e.csv", b"User_ID,Department,User_Registration_Date\nu1,D,2026-01-01\nu2,D\n", "unreadable"),
        ("e.csv", b"User_ID,Department,User_Registration_Date\nu1,D,2026-01-01,extra\n", "unreadable"),
        ("e.csv", b"User_ID,Department,User_Registration_Date\nu1,\xff\xfe,2026-01-01\n", "unreadable"),
        ("e.csv", b"User_ID,Dept,User_Registration_Date\nu1,D,2026-01-01\n", "missing_columns"),
        ("e.csv", b"User_ID,user id,Department,User_Registration_Date\nu1,u1,D,2026-01-01\n", "unreadable"),
        ("e.jsonl", b'{"User_ID":"u1","Department":"D","User_Registration_Date":"2026-01-01"}\n{"User_ID": \n', "unreadable"),
        ("e.jsonl", b'{"User_ID":"u1","Department":"D","User_Registration_Date":"2026-01-01"}\n[1,2]\n', "unreadable"),
        ("e.jsonl", b'{"User_ID":"u1","User_Registration_Date":"2026-01-01"}\n', "missing_columns"),
    ],
)
def test_feed_rejections(tmp_path, name, data, code):
    with pytest.raises(FeedRejected) as err:
        _stage(tmp_path, "enrolment", name, data)
    assert err.value.code == code
    assert name in err.value.detail


def test_row_count_must_match_manifest(tmp_path):
    data = (ENROL_HEADER + "u1,D,2026-01-01,,,,,,,,\n").encode()
    with pytest.raises(FeedRejected) as err:
        _stage(tmp_path, "enrolment", "e.csv", data, rows=2)
    assert err.value.code == "manifest_mismatch" and "2 rows" in err.value.detail


def test_header_only_file_is_zero_rows(tmp_path):
    db, res = _stage(tmp_path, "enrolment", "e.csv", ENROL_HEADER.encode(), rows=0)
    assert res.rows_received == 0 and res.rows_loaded == 0


def test_course_names_normalised_before_duplicates_are_judged(tmp_path):
    # Content_Name spelled decomposed (e + combining acute) and precomposed: the same
    # name once normalised, so the two rows are an identical duplicate, not a conflict.
    lines = [
        "u1,c1,,Cafe\u0301 basics,E\u0301,Course,01:00:00,2026-01-01,Completed,,2026-01-02,,,,X,x",  # 2
        "u1,c1,,Caf\u00e9 basics,\u00c9,Course,01:00:00,2026-01-01,Completed,,2026-01-02,,,,Y,y",    # 3
        "u2,c1,,Caf\u00e9 basics,P\u0301,Course,01:00:00,2026-01-01,Completed,,2026-01-02,,,,,",     # 4
    ]
    data = (COMP_HEADER + "\n".join(lines) + "\n").encode()
    db, res = _stage(tmp_path, "completion", "c.csv", data)
    assert res.rows_duplicate == 1 and res.rows_quarantined == 0 and res.rows_loaded == 2
    good = _rows(db, "stg_completion")
    assert [r["content_name"] for r in good] == ["Caf\u00e9 basics", "Caf\u00e9 basics"]
    # provider: E + acute becomes U+00C9, P + acute becomes U+1E54
    assert [r["content_provider"] for r in good] == ["\u00c9", "\u1e54"]


def test_white_space_at_either_end_is_trimmed_inside_kept(tmp_path):
    # the five white-space characters of the contract, first or last; inner ones stay
    data = (
        ENROL_HEADER
        + '\tu1\u00a0,"\u00a0 Home \r",2026-01-01, Org  X ,x\u2003,,,,,,\n'
        + "u2,\u00a0,2026-01-01,,,,,,,,\n"
    ).encode()
    db, res = _stage(tmp_path, "enrolment", "e.csv", data)
    rows = _rows(db, "stg_enrolment")
    assert [(r["user_id"], r["department"], r["organization"], r["designation"]) for r in rows] == [
        ("u1", "Home", "Org  X", "x\u2003")  # U+2003 is not one of the five: kept
    ]
    q = _rows(db, "stgq_enrolment")
    assert [(r["line_no"], r["reason"]) for r in q] == [(3, "missing_required")]  # NBSP alone is empty


def test_registered_users_asked_for_once_when_needed(tmp_path):
    """The registered users may be given as a function (a PostgreSQL warehouse
    fetches them while the file is staged): it is called once, after the
    pass over the file, and its query decides which rows are held."""
    lines = [
        "u1,c1,,C1,,,01:00:00,2026-01-01,Completed,,2026-01-02,,,,,",   # 2 registered
        "u7,c1,,C1,,,01:00:00,2026-01-01,Completed,,2026-01-02,,,,,",   # 3 not registered: held
    ]
    path = tmp_path / "c.csv"
    path.write_bytes((COMP_HEADER + "\n".join(lines) + "\n").encode())
    db = duckdb.connect()
    calls = []

    def registered():
        calls.append(db.execute("SELECT count(*) FROM chk_completion").fetchone()[0])  # the pass is done
        return "SELECT 'u1' AS user_id"

    res = stage_file(db, "completion", path, "csv", False, RD, "c.csv", 2, registered)
    assert calls == [2]
    assert [(h["user_id"], h["record_no"]) for h in _rows(db, "stgh_completion")] == [("u7", 2)]
    assert res.rows_loaded == 1 and res.quarantined == {"unknown_user": 1}

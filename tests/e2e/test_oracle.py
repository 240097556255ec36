"""Unit tests of the e2e oracle itself, on tiny hand-written deliveries whose
expected figures are worked out by hand in each test."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import shutil
from datetime import date
from fractions import Fraction
from pathlib import Path

import pytest

from oracle import (  # tests/e2e is on sys.path (rootdir-relative import by pytest)
    Oracle,
    StateConfig,
    expected_marts,
    load_registry,
    normalise_department,
    normalise_header,
    parse_date,
    parse_duration_seconds,
)

D1, D2, D3, D4 = (date(2026, 1, d) for d in (1, 2, 3, 4))
ENR_HEADER = ["User_ID", "Department", "User_Registration_Date"]
COMP_HEADER = [
    "User_ID", "Content_ID", "Batch_Id", "Content_Name", "Content_Duration", "Enrolled_On", "Status",
    "Completed_On", "Certificate_Generated",
]


# --------------------------------------------------------------------------- helpers


def csv_bytes(header, rows, *, bom=False, crlf=False) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode("utf-8")


def jsonl_bytes(objs) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode("utf-8")


def enr(*rows, **kw):
    """An enrolment CSV: rows of (user, department, registration date)."""
    return ("enrolment.csv", csv_bytes(ENR_HEADER, rows, **kw), len(rows))


def comp(*rows, **kw):
    """A completion CSV: rows of (user, content, batch, name, duration, enrolled, status, completed_on, cert)."""
    return ("completion.csv", csv_bytes(COMP_HEADER, rows, **kw), len(rows))


def deliver(landing: Path, state: str, day: date, mode="delta", *, enrolment=None, completion=None,
            manifest_patch=None, rows_patch=None, manifest=True) -> Path:
    """Write a delivery folder: each feed is (file name, bytes, rows); the manifest is right unless patched."""
    folder = landing / state / day.isoformat()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    files = []
    for feed, spec in (("enrolment", enrolment), ("completion", completion)):
        if spec is None:
            continue
        name, data, nrows = spec
        (folder / name).write_bytes(data)
        files.append({"feed": feed, "name": name, "rows": (rows_patch or {}).get(feed, nrows),
                      "sha256": hashlib.sha256(data).hexdigest()})
    if manifest:
        m = {"state": state, "report_date": day.isoformat(), "mode": mode, "files": files}
        m.update(manifest_patch or {})
        (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def one(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def states(*codes, threshold=Fraction(1, 10)):
    return [StateConfig(c, f"State {c}", threshold) for c in codes]


# --------------------------------------------------------------------------- parsing


def test_value_parsing():
    assert normalise_header(" User ID") == normalise_header("user_id") == normalise_header("USER-ID") == "user_id"
    assert parse_date("2026-01-05") == date(2026, 1, 5)
    assert parse_date("05-01-2026") == date(2026, 1, 5)
    assert parse_date("05/01/2026 10:30 AM") == date(2026, 1, 5)
    assert parse_date("2026-01-05 23:59:59") == date(2026, 1, 5)
    assert parse_date("2026-01-05T08:00") == date(2026, 1, 5)
    assert parse_date("30/02/2026") is None
    assert parse_date("2026/01/05") is None
    assert parse_date("Jan 5 2026") is None
    assert parse_duration_seconds("01:30:00") == 5400
    assert parse_duration_seconds("120:00:30") == 120 * 3600 + 30
    assert parse_duration_seconds("1:30") is None
    assert parse_duration_seconds("01:60:00") is None
    assert normalise_department("  Health \t  and\u00a0 Family  Welfare ") == "Health and Family Welfare"
    # NFC: decomposed "é" becomes the composed one.
    assert normalise_department("Cafe\u0301") == "Caf\u00e9"


def test_registry_has_28_states():
    reg = load_registry()
    assert len(reg) == 28 and {"UP", "UK"} <= {s.code for s in reg}
    assert all(s.threshold == Fraction(1, 10) for s in reg)


# --------------------------------------------------------------------------- figures


def test_state_figures_by_hand(tmp_path):
    """One state, one delivery; header spellings, date formats, JSONL.gz, Devanagari."""
    enrolment = csv_bytes(
        ["User ID", "DEPARTMENT", "user-registration-date", "Full Name", "Extra"],
        [
            ["u1", "  Health   Dept ", "2025-12-01", "A", "x"],
            ["u2", "Health Dept", "05-01-2026", "B", "x"],
            ["u3", "पुलिस विभाग", "03/01/2026 10:30 AM", "C", "x"],
        ],
        bom=True, crlf=True,
    )
    completion = [
        # u1: distinct completed courses c1, c2 (two batches), c5 -> 3
        {"user_id": "u1", "Content ID": "c1", "Content_Name": "कोर्स", "Content_Duration": "01:30:00",
         "Enrolled_On": "2025-12-02", "Status": "Completed", "Completed_On": "2025-12-10",
         "Certificate_Generated": "Yes"},
        {"user_id": "u1", "Content ID": "c2", "Batch_Id": "b1", "Content_Name": "n", "Content_Duration": "02:00:00",
         "Enrolled_On": "2025-12-02", "Status": "completed", "Completed_On": "02/01/2026",
         "Certificate_Generated": "No"},
        {"user_id": "u1", "Content ID": "c2", "Batch_Id": "b2", "Content_Name": "n", "Content_Duration": "00:45:00",
         "Enrolled_On": "2025-12-02", "Status": 2, "Completed_On": "03-01-2026", "Certificate_Generated": "yes"},
        {"user_id": "u1", "Content ID": "c3", "Content_Name": "n", "Content_Duration": "10:00:00",
         "Enrolled_On": "2025-12-02", "Status": "In Progress", "Content_Progress_Percentage": 40},
        {"user_id": "u1", "Content ID": "c5", "Content_Name": "n", "Content_Duration": "00:20:00",
         "Enrolled_On": "2026-01-01", "Status": "COMPLETED", "Completed_On": "2026-01-05 09:00",
         "User_Rating": 4.5},
        {"user_id": "u2", "Content ID": "c1", "Content_Name": "n", "Content_Duration": "01:30:00",
         "Enrolled_On": "2026-01-01", "Status": "2", "Completed_On": "2026-01-04", "Certificate_Generated": "Yes"},
        {"user_id": "u2", "Content ID": "c4", "Content_Name": "n", "Content_Duration": "01:00:00",
         "Enrolled_On": "2026-01-01", "Status": 0, "Completed_On": None},
        {"user_id": "u3", "Content ID": "c4", "Content_Name": "n", "Content_Duration": "01:00:00",
         "Enrolled_On": "2026-01-04", "Status": "in progress"},
    ]
    day = date(2026, 1, 5)
    deliver(tmp_path, "UP", day, enrolment=("enrolment.csv", enrolment, 3),
            completion=("completion.jsonl.gz", gzip.compress(jsonl_bytes(completion)), 8))
    m = expected_marts(tmp_path, [day], states("UK", "UP"))

    up = one(m["state_summary"], state_code="UP")
    assert up == {
        "report_date": day, "state_code": "UP", "state_name": "State UP", "last_delivery_date": day,
        "is_stale": False,
        "registered_users": 3, "users_with_completion": 2, "users_with_3plus_completions": 1,
        "users_with_fewer_than_3_completions": 2, "users_without_completion": 1,
        "course_enrolments": 8, "course_completions": 5,
        "learning_hours": 6.08,  # 1.5 + 2 + 0.75 + 1/3 + 1.5 = 6.0833
        "certificates_issued": 3, "registrations_ytd": 2, "completions_ytd": 4,
        "share_of_national_registrations_ytd": 1.0, "share_of_national_completions_ytd": 1.0,
    }
    uk = one(m["state_summary"], state_code="UK")
    assert uk["is_stale"] and uk["last_delivery_date"] is None and uk["registered_users"] == 0
    # No accepted delivery yet: zeros and null shares, although the national figures are not 0.
    assert uk["share_of_national_registrations_ytd"] is None and uk["share_of_national_completions_ytd"] is None
    nat = one(m["national_summary"])
    assert (nat["states_total"], nat["states_reporting"], nat["states_stale"]) == (2, 1, 1)
    assert (nat["registered_users"], nat["course_completions"], nat["learning_hours"]) == (3, 5, 6.08)
    health = one(m["department_summary"], department="Health Dept")
    assert (health["registered_users"], health["users_with_completion"], health["users_with_3plus_completions"],
            health["users_with_fewer_than_3_completions"], health["users_without_completion"],
            health["course_completions"], health["learning_hours"], health["certificates_issued"]) == (
        2, 2, 1, 1, 0, 5, 6.08, 3)
    police = one(m["department_summary"], department="पुलिस विभाग")
    assert (police["registered_users"], police["users_without_completion"], police["course_completions"]) == (1, 1, 0)
    assert len(m["department_summary"]) == 2
    fs = one(m["feed_status"], state_code="UP", feed="completion")
    assert (fs["status"], fs["rows_received"], fs["rows_loaded"], fs["rows_quarantined"]) == ("loaded", 8, 8, 0)
    assert one(m["feed_status"], state_code="UK", feed="enrolment")["status"] == "missing"
    assert m["quarantine_summary"] == []


def test_no_data_anywhere_gives_zeros_and_null_shares(tmp_path):
    m = expected_marts(tmp_path, [D1], states("UP"))
    up = one(m["state_summary"])
    assert up["registered_users"] == 0 and up["share_of_national_registrations_ytd"] is None
    assert up["share_of_national_completions_ytd"] is None and up["is_stale"]
    assert one(m["national_summary"])["states_reporting"] == 0


# --------------------------------------------------------------------------- versions


def test_snapshot_removes_a_user_and_delta_re_adds(tmp_path):
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "A", "2025-01-01"), ("u2", "A", "2025-01-01")),
            completion=comp(("u2", "c1", "", "n", "01:00:00", "2025-02-01", "Completed", "2025-03-01", "Yes")))
    deliver(tmp_path, "UP", D2, "snapshot", enrolment=enr(("u1", "A", "2025-01-01")))
    deliver(tmp_path, "UP", D3, enrolment=enr(("u2", "B", "2025-01-01")))
    m = expected_marts(tmp_path, [D1, D2, D3], states("UP"))
    got = {r["report_date"]: (r["registered_users"], r["course_completions"], r["certificates_issued"])
           for r in m["state_summary"]}
    # D2: u2 removed by the snapshot, so its completion no longer counts; D3: re-added (department B now).
    assert got == {D1: (2, 1, 1), D2: (1, 0, 0), D3: (2, 1, 1)}
    assert {(r["report_date"], r["department"], r["registered_users"]) for r in m["department_summary"]} == {
        (D1, "A", 2), (D2, "A", 1), (D3, "A", 1), (D3, "B", 1)}


def test_late_older_delivery_does_not_overwrite_newer_data(tmp_path):
    oracle = Oracle(states("UP"))
    deliver(tmp_path, "UP", D2, enrolment=enr(("u1", "Health", "2025-01-01")))
    oracle.run_night(tmp_path, D1)
    oracle.run_night(tmp_path, D2)
    before = oracle.marts()
    assert one(before["state_summary"], report_date=D1)["registered_users"] == 0
    assert one(before["state_summary"], report_date=D1)["is_stale"]
    # D1's delivery arrives late, after D2's night; it is caught up by the next night.
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "Police", "2025-01-01"), ("u2", "Police", "2025-01-01")))
    oracle.run_night(tmp_path, D3)
    m = oracle.marts()
    depts = {(r["report_date"], r["department"]): r["registered_users"] for r in m["department_summary"]}
    assert depts == {
        (D1, "Police"): 2,  # recomputed: both from the late delivery
        (D2, "Health"): 1, (D2, "Police"): 1,  # u1 keeps the newer version, u2 comes from D1
        (D3, "Health"): 1, (D3, "Police"): 1,
    }
    d1 = one(m["state_summary"], report_date=D1)
    assert (d1["last_delivery_date"], d1["is_stale"]) == (D1, False)
    d3 = one(m["state_summary"], report_date=D3)
    assert (d3["last_delivery_date"], d3["is_stale"]) == (D2, True)
    assert one(m["feed_status"], report_date=D1, feed="enrolment")["status"] == "loaded"


def test_deliveries_after_the_run_date_and_without_manifest_are_not_read(tmp_path):
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "A", "2025-01-01")))
    deliver(tmp_path, "UP", D2, enrolment=enr(("u2", "A", "2025-01-01")), manifest=False)  # still uploading
    deliver(tmp_path, "UP", D3, enrolment=enr(("u3", "A", "2025-01-01")))
    oracle = Oracle(states("UP"))
    oracle.run_night(tmp_path, D1)
    oracle.run_night(tmp_path, D2)
    m = oracle.marts()
    assert [r["registered_users"] for r in m["state_summary"]] == [1, 1]
    assert one(m["feed_status"], report_date=D2, feed="enrolment")["status"] == "missing"


def test_transfer_counted_once_nationally(tmp_path):
    deliver(tmp_path, "UP", D1, enrolment=enr(("x", "A", "2025-06-01")), completion=comp(
        ("x", "c1", "", "n", "01:00:00", "2025-06-02", "Completed", "2025-07-01", "Yes"),
        ("x", "c2", "", "n", "02:00:00", "2025-06-02", "Completed", "2025-07-02", "No"),
    ))
    deliver(tmp_path, "UK", D2, enrolment=enr(("x", "B", "2026-01-02")), completion=comp(
        ("x", "c1", "", "n", "01:00:00", "2025-06-02", "In Progress", "", ""),  # newer version of UP's key
        ("x", "c3", "", "n", "04:00:00", "2026-01-01", "Completed", "2026-01-02", "Yes"),
    ))
    m = expected_marts(tmp_path, [D1, D2], states("UK", "UP"))
    up = one(m["state_summary"], report_date=D2, state_code="UP")
    uk = one(m["state_summary"], report_date=D2, state_code="UK")
    assert (up["registered_users"], up["course_enrolments"], up["course_completions"], up["learning_hours"]) == (
        1, 2, 2, 3.0)
    assert (uk["registered_users"], uk["course_enrolments"], uk["course_completions"], uk["learning_hours"]) == (
        1, 2, 1, 4.0)
    nat = one(m["national_summary"], report_date=D2)
    # x once; key (x, c1) once, UK's later version (In Progress) wins; x's courses pooled: c2, c3.
    assert (nat["registered_users"], nat["users_with_completion"], nat["users_with_3plus_completions"],
            nat["users_without_completion"]) == (1, 1, 0, 0)
    assert (nat["course_enrolments"], nat["course_completions"], nat["learning_hours"],
            nat["certificates_issued"]) == (3, 2, 6.0, 1)
    # Registration date from UK's (later) record: 2026 -> 1; completions in 2026: c3 only.
    assert (nat["registrations_ytd"], nat["completions_ytd"]) == (1, 1)
    assert (up["share_of_national_registrations_ytd"], uk["share_of_national_registrations_ytd"]) == (0.0, 1.0)
    assert (up["share_of_national_completions_ytd"], uk["share_of_national_completions_ytd"]) == (0.0, 1.0)
    d1 = one(m["national_summary"], report_date=D1)
    assert (d1["registered_users"], d1["course_completions"], d1["learning_hours"]) == (1, 2, 3.0)


def test_same_date_tie_goes_to_the_lower_state_code(tmp_path):
    for code, status, done in (("UP", "Completed", "2026-01-01"), ("UK", "In Progress", "")):
        deliver(tmp_path, code, D1, enrolment=enr(("x", "A", "2025-06-01")),
                completion=comp(("x", "c1", "", "n", "01:00:00", "2025-06-02", status, done, "")))
    m = expected_marts(tmp_path, [D1], states("UK", "UP"))
    nat = one(m["national_summary"])
    assert (nat["course_enrolments"], nat["course_completions"], nat["users_with_completion"]) == (1, 0, 0)
    assert one(m["state_summary"], state_code="UP")["course_completions"] == 1


# --------------------------------------------------------------------------- row rules


def test_row_rules_precedence_duplicates_and_held_rows(tmp_path):
    deliver(tmp_path, "UP", D1,
            enrolment=enr(
                ("u1", "A", "2025-01-01"),
                ("u2", "", "not a date"),  # missing_required first, although the date is bad too
                ("u3", "A", "2026-01-02"),  # future_date
                ("u4", "A", "2026-02-30"),  # bad_date
                ("u5", "A", "2025-01-01"), ("u5", "A", "01-01-2025"),  # identical once normalised: 1 duplicate
                ("u6", "X", "2025-01-01"), ("u6", "Y", "2025-01-01"),  # conflicting: both quarantined
            ),
            completion=comp(
                ("u1", "c1", "", "n", "01:00:00", "2025-02-01", "Completed", "", ""),  # completed_without_date
                ("u1", "c2", "", "n", "01:00:00", "2025-02-01", "Completed", "2025-01-01", ""),  # before enrolled
                ("u1", "c3", "", "n", "01:00:00", "2025-02-01", "Done", "", ""),  # bad_value (status)
                ("u1", "c4", "", "n", "1001:00:00", "2025-02-01", "In Progress", "", ""),  # bad_value (duration)
                ("u1", "c5", "", "", "01:00:00", "2025-02-01", "Done", "", ""),  # missing_required before bad_value
                ("u9", "c1", "", "n", "01:00:00", "2025-02-01", "In Progress", "", ""),  # unknown_user: held
                ("u1", "c6", "", "n", "02:30:00", "2025-02-01", "Completed", "2025-03-01", "Yes"),
                ("u1", "c6", "", "n", "02:30:00", "2025-02-01", "Completed", "2025-03-01", "Yes"),  # duplicate
            ))
    deliver(tmp_path, "UP", D2, enrolment=enr(("u9", "A", "2025-01-01")))
    oracle = Oracle(states("UP", threshold=Fraction(1)))
    oracle.run_night(tmp_path, D1)
    m = oracle.marts()
    q = {(r["feed"], r["reason"]): r["rows"] for r in m["quarantine_summary"]}
    assert q == {
        ("enrolment", "missing_required"): 1, ("enrolment", "future_date"): 1, ("enrolment", "bad_date"): 1,
        ("enrolment", "conflicting_duplicate"): 2,
        ("completion", "missing_required"): 1, ("completion", "bad_value"): 2,
        ("completion", "completed_without_date"): 1, ("completion", "completed_before_enrolled"): 1,
        ("completion", "unknown_user"): 1,
    }
    fe = one(m["feed_status"], feed="enrolment")
    assert (fe["status"], fe["rows_received"], fe["rows_loaded"], fe["rows_quarantined"], fe["rows_duplicate"]) == (
        "loaded_with_quarantine", 8, 2, 5, 1)
    fc = one(m["feed_status"], feed="completion")
    assert (fc["rows_received"], fc["rows_loaded"], fc["rows_quarantined"], fc["rows_duplicate"]) == (8, 1, 6, 1)
    s = one(m["state_summary"])
    assert (s["registered_users"], s["course_enrolments"], s["course_completions"]) == (2, 1, 1)

    # Night 2 registers u9: the held row loads with its original report date D1.
    oracle.run_night(tmp_path, D2)
    m = oracle.marts()
    assert ("completion", "unknown_user") not in {(r["feed"], r["reason"]) for r in m["quarantine_summary"]}
    # The held row has loaded: feed_status counts it as loaded now (V2), as quarantine_summary does.
    fc = one(m["feed_status"], report_date=D1, feed="completion")
    assert (fc["rows_loaded"], fc["rows_quarantined"]) == (2, 5)
    # It counts from D2 on (u9 registered), not on D1 (u9 not registered as of D1).
    assert one(m["state_summary"], report_date=D1)["course_enrolments"] == 1
    assert one(m["state_summary"], report_date=D2)["course_enrolments"] == 2
    assert one(m["feed_status"], report_date=D2, feed="completion")["status"] == "missing"


def test_quarantined_key_in_a_snapshot_is_not_removed(tmp_path):
    deliver(tmp_path, "UP", D1, "snapshot", enrolment=enr(("u1", "A", "2025-01-01"), ("u2", "A", "2025-01-01")))
    deliver(tmp_path, "UP", D2, "snapshot", enrolment=enr(("u1", "B", "2025-01-01"), ("u2", "A", "bad")))
    oracle = Oracle(states("UP", threshold=Fraction(1)))
    oracle.run_night(tmp_path, D1)
    oracle.run_night(tmp_path, D2)
    m = oracle.marts()
    assert {(r["department"], r["registered_users"]) for r in m["department_summary"] if r["report_date"] == D2} == {
        ("A", 1), ("B", 1)}


# --------------------------------------------------------------------------- feed rules


def test_feed_rules(tmp_path):
    good = enr(*[(f"u{i}", "A", "2025-01-01") for i in range(10)])
    deliver(tmp_path, "AP", D1, "snapshot", enrolment=good)
    # manifest_mismatch: the row count is wrong.
    deliver(tmp_path, "AR", D1, enrolment=good, rows_patch={"enrolment": 9})
    # manifest_mismatch: the manifest names another state.
    deliver(tmp_path, "AS", D1, enrolment=good, manifest_patch={"state": "UP"})
    # unreadable: a bad gzip whose sha256 matches the manifest.
    deliver(tmp_path, "BR", D1, enrolment=("enrolment.csv.gz", b"not gzip", 1))
    # unreadable: ragged CSV.
    deliver(tmp_path, "CG", D1, enrolment=("enrolment.csv", b"User_ID,Department,User_Registration_Date\nu1,A\n", 1))
    # missing_columns.
    deliver(tmp_path, "GA", D1, enrolment=("enrolment.csv", csv_bytes(["User_ID", "User_Registration_Date"],
                                                                       [["u1", "2025-01-01"]]), 1))
    # 1 bad row of 10 is not more than 10 %; 2 of 10 is.
    one_bad = enr(*[(f"u{i}", "A", "2025-01-01") for i in range(9)], ("u9", "A", "bad"))
    two_bad = enr(*[(f"u{i}", "A", "2025-01-01") for i in range(8)], ("u8", "A", "bad"), ("u9", "", "x"))
    deliver(tmp_path, "GJ", D1, enrolment=one_bad)
    deliver(tmp_path, "HR", D1, enrolment=two_bad)
    # Completion rows of users whose enrolment feed was rejected are unknown_user -> too many.
    deliver(tmp_path, "HP", D1, enrolment=("enrolment.csv", b"garbage\n\"", 1),
            completion=comp(("u1", "c1", "", "n", "01:00:00", "2025-02-01", "In Progress", "", "")))
    # volume_drop: AP's D2 snapshot has 4 rows < 10 / 2 (rejected); D3 has 5 rows (accepted).
    deliver(tmp_path, "AP", D2, "snapshot", enrolment=enr(*[(f"u{i}", "A", "2025-01-01") for i in range(4)]))
    deliver(tmp_path, "AP", D3, "snapshot", enrolment=enr(*[(f"u{i}", "A", "2025-01-01") for i in range(5)]))
    codes = ["AP", "AR", "AS", "BR", "CG", "GA", "GJ", "HR", "HP"]
    oracle = Oracle(states(*codes))
    for night in (D1, D2, D3):
        oracle.run_night(tmp_path, night)
    m = oracle.marts()
    fs = {(r["state_code"], r["report_date"], r["feed"]): (r["status"], r["reason"], r["rows_received"])
          for r in m["feed_status"]}
    assert fs[("AP", D1, "enrolment")] == ("loaded", None, 10)
    assert fs[("AR", D1, "enrolment")] == ("rejected", "manifest_mismatch", 10)
    assert fs[("AS", D1, "enrolment")] == ("rejected", "manifest_mismatch", None)
    assert fs[("BR", D1, "enrolment")] == ("rejected", "unreadable", None)
    assert fs[("CG", D1, "enrolment")] == ("rejected", "unreadable", None)
    assert fs[("GA", D1, "enrolment")] == ("rejected", "missing_columns", 1)
    assert fs[("GJ", D1, "enrolment")] == ("loaded_with_quarantine", None, 10)
    assert fs[("HR", D1, "enrolment")] == ("rejected", "too_many_bad_rows", 10)
    assert fs[("HP", D1, "enrolment")] == ("rejected", "unreadable", None)
    # HP's enrolment feed was rejected, so its one completion row is held (unknown_user),
    # which does not count towards too_many_bad_rows (README decision)
    assert fs[("HP", D1, "completion")] == ("loaded_with_quarantine", None, 1)
    assert fs[("AP", D2, "enrolment")] == ("rejected", "volume_drop", 4)
    assert fs[("AP", D3, "enrolment")] == ("loaded", None, 5)
    reg = {(r["state_code"], r["report_date"]): r["registered_users"] for r in m["state_summary"]}
    assert (reg[("AP", D1)], reg[("AP", D2)], reg[("AP", D3)]) == (10, 10, 5)  # rejected D2 keeps D1's data
    assert reg[("GJ", D1)] == 9 and reg[("HR", D1)] == 0
    stale = {(r["state_code"], r["report_date"]): r["is_stale"] for r in m["state_summary"]}
    assert stale[("AP", D2)] and not stale[("AP", D3)] and not stale[("GJ", D1)] and stale[("HR", D1)]
    assert [(r["state_code"], r["reason"], r["rows"]) for r in m["quarantine_summary"] if r["state_code"] != "GJ"] == [
        ("HP", "unknown_user", 1)]

    # HR re-delivers D1, fixed: the next night processes it and recomputes D1..D3.
    deliver(tmp_path, "HR", D1, enrolment=good)
    oracle.run_night(tmp_path, D4)
    m = oracle.marts()
    reg = {(r["state_code"], r["report_date"]): r["registered_users"] for r in m["state_summary"]}
    assert [reg[("HR", d)] for d in (D1, D2, D3, D4)] == [10, 10, 10, 10]
    assert one(m["feed_status"], state_code="HR", report_date=D1, feed="enrolment")["status"] == "loaded"
    # AP's rejected D2 was not changed, so it is not processed again.
    assert one(m["feed_status"], state_code="AP", report_date=D2, feed="enrolment")["reason"] == "volume_drop"


def test_rerunning_a_night_changes_nothing(tmp_path):
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "A", "2025-01-01")),
            completion=comp(("u2", "c1", "", "n", "01:00:00", "2025-02-01", "In Progress", "", "")))
    deliver(tmp_path, "UP", D2, "snapshot", enrolment=enr(("u1", "A", "2025-01-01")))
    oracle = Oracle(states("UP", threshold=Fraction(1)))
    oracle.run_night(tmp_path, D1)
    oracle.run_night(tmp_path, D2)
    before = oracle.marts()
    oracle.run_night(tmp_path, D2)
    assert oracle.marts() == before
    assert one(before["quarantine_summary"])["reason"] == "unknown_user"


def test_identical_redelivery_changes_nothing_but_a_changed_one_replaces_the_date(tmp_path):
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "A", "2025-01-01"), ("u2", "A", "2025-01-01")))
    oracle = Oracle(states("UP"))
    oracle.run_night(tmp_path, D1)
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "A", "2025-01-01"), ("u2", "A", "2025-01-01")))
    oracle.run_night(tmp_path, D2)
    assert [r["registered_users"] for r in oracle.marts()["state_summary"]] == [2, 2]
    # A changed re-delivery of D1 (a delta) replaces D1's earlier version: u2 is no longer delivered.
    deliver(tmp_path, "UP", D1, enrolment=enr(("u1", "B", "2025-01-01")))
    oracle.run_night(tmp_path, D2)
    assert [r["registered_users"] for r in oracle.marts()["state_summary"]] == [1, 1]


def test_csv_quoted_newlines_and_commas(tmp_path):
    data = ('User_ID,Department,User_Registration_Date\r\n'
            'u1,"Health, ""Family""\nWelfare",2025-01-01\r\n').encode()
    deliver(tmp_path, "UP", D1, enrolment=("enrolment.csv", data, 1))
    m = expected_marts(tmp_path, [D1], states("UP"))
    assert one(m["department_summary"])["department"] == 'Health, "Family" Welfare'


def test_only_valid_rows_take_part_in_duplicate_checks(tmp_path):
    deliver(tmp_path, "UP", D1, enrolment=enr(
        *[(f"ok{i}", "A", "2025-01-01") for i in range(30)],
        ("u1", "A", "2025-01-01"), ("u1", "A", "bad"),  # a valid and an invalid row: u1 loads, one bad_date
        ("u2", "", "2025-01-01"), ("u2", "", "2025-01-01"),  # two identical invalid rows: both quarantined
    ), completion=comp(
        *[(f"ok{i}", "c1", "", "n", "01:00:00", "2025-02-01", "Completed", "2025-03-01", "Y") for i in range(30)],
        ("ok0", "c2", "", "n", "01:00:00", "2025-02-01", "Completed", "2025-03-01", "maybe"),  # bad_value
        ("ok1", "c2", "", "n", "1:00:00", "2025-02-01", "2", "01/03/2025", "true"),  # identical once normalised
        ("ok1", "c2", "", "n", "01:00:00", "2025-02-01", "Completed", "2025-03-01", "Yes"),
    ))
    m = expected_marts(tmp_path, [D1], states("UP"))
    q = {(r["feed"], r["reason"]): r["rows"] for r in m["quarantine_summary"]}
    assert q == {("enrolment", "bad_date"): 1, ("enrolment", "missing_required"): 2, ("completion", "bad_value"): 1}
    fe = one(m["feed_status"], feed="enrolment")
    assert (fe["rows_received"], fe["rows_loaded"], fe["rows_quarantined"], fe["rows_duplicate"]) == (34, 31, 3, 0)
    fc = one(m["feed_status"], feed="completion")
    assert (fc["rows_received"], fc["rows_loaded"], fc["rows_quarantined"], fc["rows_duplicate"]) == (33, 31, 1, 1)
    s = one(m["state_summary"])
    assert (s["registered_users"], s["course_completions"], s["certificates_issued"]) == (31, 31, 31)


def test_switches_follow_the_alternative_decisions(tmp_path):
    # V1: a snapshot whose row for u2 is quarantined.
    deliver(tmp_path, "UP", D1, "snapshot", enrolment=enr(("u1", "A", "2025-01-01"), ("u2", "A", "2025-01-01")))
    deliver(tmp_path, "UP", D2, "snapshot", enrolment=enr(("u1", "A", "2025-01-01"), ("u2", "A", "bad")))
    # V4: UK's later version of x's key c1 is In Progress.
    deliver(tmp_path, "UK", D1, enrolment=enr(("x", "A", "2025-01-01")), completion=comp(
        *[("x", c, "", "n", "01:00:00", "2025-02-01", "Completed", "2025-03-01", "") for c in ("c1", "c2", "c3")]))
    deliver(tmp_path, "WB", D2, enrolment=enr(("x", "A", "2025-01-01")), completion=comp(
        ("x", "c1", "", "n", "01:00:00", "2025-02-01", "In Progress", "", "")))
    cfg = states("UK", "UP", "WB", threshold=Fraction(1))
    mine = expected_marts(tmp_path, [D1, D2], cfg)
    other = Oracle(cfg, snapshot_keeps_quarantined_keys=False, national_person_courses_from_deduped_keys=False,
                   missing_feed_count=None)
    for night in (D1, D2):
        other.run_night(tmp_path, night)
    alt = other.marts()
    assert one(mine["state_summary"], report_date=D2, state_code="UP")["registered_users"] == 2
    assert one(alt["state_summary"], report_date=D2, state_code="UP")["registered_users"] == 1
    assert one(mine["national_summary"], report_date=D2)["users_with_3plus_completions"] == 0
    assert one(alt["national_summary"], report_date=D2)["users_with_3plus_completions"] == 1
    assert one(mine["national_summary"], report_date=D2)["course_completions"] == 2  # the same either way
    assert one(alt["national_summary"], report_date=D2)["course_completions"] == 2
    missing = one(alt["feed_status"], report_date=D2, state_code="UK", feed="enrolment")
    assert (missing["status"], missing["rows_loaded"]) == ("missing", None)
    with pytest.raises(TypeError):
        Oracle(cfg, no_such_switch=True)

"""Every rule for bad input, at pipeline level: a catalogue of hand-built deliveries.

Each case writes one small delivery into a fresh landing zone, runs
``night.ingest_deliveries`` into a fresh DuckDB warehouse, rolls the date up,
and checks what feeds.md / warehouse.md promise:

* the feed's status (loaded / loaded_with_quarantine / rejected) and reason code,
  in the ingest summary, ``ops.feed_load`` and ``mart.feed_status``;
* a rejection's detail names the file, the line where one applies, and what is wrong;
* nothing of a rejected feed is loaded (no core rows, no quarantine, no held rows);
* quarantined rows sit in ``quarantine.row`` with their line numbers and raw
  values, and without personal data (every row-rule file carries personal columns);
* rows_loaded + rows_quarantined + rows_duplicate = rows_received for accepted feeds;
* running the same night again processes nothing.

Multi-step cases (held rows, re-deliveries, waiting folders, volume_drop) follow
as their own tests. The expectations are written out by hand from the contract
and the README's "Decisions where the contract is silent"; ``pytest -v`` reads
as the catalogue.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from landing_kit import (
    COMPLETION_COLUMNS,
    ENROLMENT_COLUMNS,
    PERSONAL_COLUMNS,
    File,
    Night,
    compl,
    csv_bytes,
    enrol,
    enrolment_csv,
    jsonl_bytes,
    read,
    reader,
    sha256,
    write_delivery,
    write_manifest,
)

RD = "2026-01-06"
PII = ["Pii Catalogue Name", "pii.catalogue@example.org", "+91-90000-00001", "EMP-CAT-0001"]
USERS = [f"u{i:02d}" for i in range(40)]


@pytest.fixture(autouse=True)
def _setup(two_states, monkeypatch):
    # Data Docs pages are covered by test_personal_data; skipping the HTML keeps this module fast.
    monkeypatch.setenv("MOU_DATA_DOCS", "0")


@pytest.fixture
def env(tmp_path) -> Night:
    landing = tmp_path / "landing"
    landing.mkdir()
    return Night(landing, f"duckdb:///{tmp_path}/wh.duckdb")


# --------------------------------------------------------------------------- expectations


@dataclass
class Expect:
    status: str                                   # loaded | loaded_with_quarantine | rejected
    reason: str | None = None
    detail: tuple[str, ...] = ()                  # regexes (case-insensitive) the rejection detail must match
    quarantine: list[tuple[int, str]] | None = None   # exact (line_no, reason) of quarantined rows
    loaded: int | None = None
    duplicate: int | None = None
    received: int | None = None
    raw: dict[int, dict] = field(default_factory=dict)    # line -> raw values the quarantine must keep
    qdetail: dict[int, str] = field(default_factory=dict)  # line -> regex on the quarantine row's detail


@dataclass
class Case:
    id: str
    files: Callable[[Path], list[File]]           # given the delivery folder's parent (landing/<STATE>)
    expect: dict[str, Expect]
    state: str = "UP"
    mode: str = "delta"
    doc_patch: Callable[[dict], None] | None = None
    manifest_text: str | None = None
    check: Callable[["Ctx"], None] | None = None


@dataclass
class Ctx:
    env: Night
    folder: Path
    outcomes: dict[str, dict]
    tmp: Path


# --------------------------------------------------------------------------- builders


def _pii(rows: list[list]) -> list[list]:
    return [r + PII for r in rows]


def enrolment_with_pii(rows: list[list], name: str = "enrolment.csv", **kw) -> File:
    data = csv_bytes(ENROLMENT_COLUMNS + PERSONAL_COLUMNS, _pii(rows), **kw)
    return File("enrolment", name, gzip.compress(data, mtime=0) if name.endswith(".gz") else data)


def completion_with_pii(rows: list[list], name: str = "completion.csv", **kw) -> File:
    data = csv_bytes(COMPLETION_COLUMNS + PERSONAL_COLUMNS, _pii(rows), **kw)
    return File("completion", name, gzip.compress(data, mtime=0) if name.endswith(".gz") else data)


def base_enrolment() -> list[list]:
    return [enrol(u) for u in USERS]


def base_completion() -> list[list]:
    return [compl(u, "c1") for u in USERS]


AT = 3  # bad rows go after this many good rows: the first is on line AT + 2


def _row_expect(outcomes: list[str], n_base: int, raw=None, qdetail=None) -> Expect:
    """outcomes per inserted row: a reason code, 'ok' (loads, a new key) or 'dup' (identical duplicate)."""
    quarantine = [(AT + 2 + i, code) for i, code in enumerate(outcomes) if code not in ("ok", "dup")]
    return Expect(
        "loaded_with_quarantine" if quarantine else "loaded",
        quarantine=quarantine,
        loaded=n_base + outcomes.count("ok"),
        duplicate=outcomes.count("dup"),
        received=n_base + len(outcomes),
        raw=raw or {},
        qdetail=qdetail or {},
    )


def enrolment_rows(id: str, rows: list[list], outcomes: list[str], **kw) -> Case:
    def files(_):
        all_rows = base_enrolment()
        all_rows[AT:AT] = rows
        return [enrolment_with_pii(all_rows)]

    return Case(id, files, {"enrolment": _row_expect(outcomes, len(USERS), **kw)})


def completion_rows(id: str, rows: list[list], outcomes: list[str], **kw) -> Case:
    def files(_):
        all_rows = base_completion()
        all_rows[AT:AT] = rows
        return [enrolment_with_pii(base_enrolment()), completion_with_pii(all_rows)]

    return Case(
        id, files,
        {"enrolment": Expect("loaded", quarantine=[], loaded=len(USERS)),
         "completion": _row_expect(outcomes, len(USERS), **kw)},
    )


def rejected(feed: str, reason: str, *detail: str, received=None, other: dict | None = None) -> dict[str, Expect]:
    out = {feed: Expect("rejected", reason, tuple(detail), received=received)}
    out.update(other or {})
    return out


LINE = r"line:? ?{}\b"


def line(n: int) -> str:
    return LINE.format(n)


def good_enrolment(n: int = 10, name: str = "enrolment.csv") -> File:
    return enrolment_with_pii([enrol(f"g{i:02d}") for i in range(n)], name)


# --------------------------------------------------------------------------- row rules


ROW_CASES = [
    # missing_required (a value only of spaces is empty: checked after trimming)
    enrolment_rows("row/enrolment/missing_required: Department, User_ID of spaces, User_Registration_Date",
                   [enrol("x1", ""), enrol("   "), enrol("x3", "Health", "")], ["missing_required"] * 3,
                   qdetail={5: "Department", 6: "User_ID", 7: "User_Registration_Date"}),
    completion_rows("row/completion/missing_required: Content_Name, Status, Content_Duration, Enrolled_On+Content_ID",
                    [compl("u01", "c7", name=""), compl("u01", "c8", status="", completed=""),
                     compl("u01", "c9", duration=""), compl("u01", "", enrolled="")], ["missing_required"] * 4,
                    qdetail={5: "Content_Name", 6: "Status", 7: "Content_Duration", 8: "Content_ID.*Enrolled_On"}),
    completion_rows("row/completion/optional values empty load (Batch_Id, provider, type, rating, certificate)",
                    [compl("u01", "c7", batch="", provider="", ctype="", cert="", rating="", progress="")], ["ok"]),
    # bad_date
    enrolment_rows("row/enrolment/bad_date: month 13, 31 February, month-first 12-31-2025, YYYY/MM/DD",
                   [enrol("x1", reg="2025-13-01"), enrol("x2", reg="31/02/2025"), enrol("x3", reg="12-31-2025"),
                    enrol("x4", reg="2025/06/01")], ["bad_date"] * 4,
                   raw={5: {"User_Registration_Date": "2025-13-01"}}, qdetail={6: "31/02/2025"}),
    completion_rows("row/completion/bad_date: Enrolled_On 2025-02-30, Completed_On in words",
                    [compl("u01", "c7", enrolled="2025-02-30"), compl("u01", "c8", completed="yesterday")],
                    ["bad_date"] * 2, qdetail={5: "Enrolled_On", 6: "Completed_On"}),
    enrolment_rows("row/enrolment/allowed date spellings load",
                   [enrol("x1", reg="2025-6-1"), enrol("x2", reg="01-06-2025 10:30"),
                    enrol("x3", reg="01/06/2025 11:59:59 PM"), enrol("x4", reg="06/01/2026 11:59 pm")],
                   ["ok", "ok", "ok", "ok"]),
    # future_date
    enrolment_rows("row/enrolment/future_date: the day after, day-first with a time",
                   [enrol("x1", reg="2026-01-07"), enrol("x2", reg="07/01/2026 09:00 AM")], ["future_date"] * 2,
                   qdetail={5: "2026-01-07", 6: "2026-01-07"}),
    completion_rows("row/completion/future_date: Completed_On tomorrow, Enrolled_On next month",
                    [compl("u01", "c7", completed="2026-01-07"),
                     compl("u01", "c8", enrolled="2026-02-01", status="Not Started", progress="0", completed="",
                           cert="")], ["future_date"] * 2),
    # bad_value
    completion_rows("row/completion/bad_value: status Done, status 3, Certificate_Generated Maybe (README decision)",
                    [compl("u01", "c7", status="Done"), compl("u01", "c8", status="3"),
                     compl("u01", "c9", cert="Maybe")], ["bad_value"] * 3,
                    raw={5: {"Status": "Done"}}, qdetail={5: "Status Done", 7: "Certificate_Generated"}),
    completion_rows("row/completion/bad_value: progress 101, -1, text; rating 5.5",
                    [compl("u01", "c7", progress="101"), compl("u01", "c8", progress="-1"),
                     compl("u01", "c9", progress="abc"), compl("u02", "c7", rating="5.5")], ["bad_value"] * 4,
                    qdetail={5: "Content_Progress_Percentage", 8: "User_Rating"}),
    completion_rows("row/completion/bad_value: duration 1:30, 01:60:00, '90 min', 1000:00:01 (over 1000 h)",
                    [compl("u01", "c7", duration="1:30"), compl("u01", "c8", duration="01:60:00"),
                     compl("u01", "c9", duration="90 min"), compl("u02", "c7", duration="1000:00:01")],
                    ["bad_value"] * 4, qdetail={8: "Content_Duration"}),
    completion_rows("row/completion/boundaries load (1000:00:00, 100:00:00, progress 0/100, rating 0/5, status spellings)",
                    [compl("u01", "c7", duration="1000:00:00", rating="0"),
                     compl("u01", "c8", duration="100:00:00", rating="5", status=" COMPLETED "),
                     compl("u01", "c9", status="0", progress="0", completed="", cert="No"),
                     compl("u02", "c7", status="in  progress", progress="99.5", completed=""),
                     compl("u02", "c8", status="2", progress="100")],
                    ["ok"] * 5),
    # completed_without_date
    completion_rows("row/completion/completed_without_date: Completed, 2, completed with a blank date",
                    [compl("u01", "c7", completed=""), compl("u01", "c8", status="2", completed=""),
                     compl("u01", "c9", status="completed", completed="  ")], ["completed_without_date"] * 3),
    # completed_before_enrolled
    completion_rows("row/completion/completed_before_enrolled (also when In Progress)",
                    [compl("u01", "c7", enrolled="2025-12-10", completed="2025-12-01"),
                     compl("u01", "c8", status="In Progress", enrolled="10/12/2025", completed="01/12/2025")],
                    ["completed_before_enrolled"] * 2, qdetail={5: "2025-12-01.*2025-12-10"}),
    # conflicting_duplicate and identical duplicates
    enrolment_rows("row/enrolment/conflicting_duplicate/all rows of the key",
                   [enrol("x1", "Health"), enrol("x1", "Police")], ["conflicting_duplicate"] * 2,
                   qdetail={5: "5, 6", 6: "5, 6"}),
    enrolment_rows("row/enrolment/conflicting_duplicate/three rows, two identical: all three",
                   [enrol("x1", "Health"), enrol("x1", "Health"), enrol("x1", "Police")],
                   ["conflicting_duplicate"] * 3),
    enrolment_rows("row/enrolment/identical duplicate loads once", [enrol("x1"), enrol("x1")], ["ok", "dup"]),
    enrolment_rows("row/enrolment/duplicate of an earlier line counts once", [enrol("u00")], ["dup"]),
    enrolment_rows("row/enrolment/identical once normalised (spaces, date spelling)",
                   [enrol("x1", "Health  and Family", "2025-06-01"), enrol(" x1 ", " Health and Family ", "01/06/2025")],
                   ["ok", "dup"]),
    completion_rows("row/completion/conflicting_duplicate/status differs",
                    [compl("u01", "c7", status="In Progress", completed="", progress="50"), compl("u01", "c7")],
                    ["conflicting_duplicate"] * 2),
    completion_rows("row/completion/same user and content, different Batch_Id: two keys",
                    [compl("u01", "c7", batch="b1"), compl("u01", "c7", batch="b2", status="In Progress",
                                                           completed="")], ["ok", "ok"]),
    completion_rows("row/completion/identical duplicate loads once",
                    [compl("u01", "c7"), compl("u01", "c7")], ["ok", "dup"]),
    # unknown_user
    completion_rows("row/completion/unknown_user held", [compl("nobody", "c7")], ["unknown_user"],
                    qdetail={5: "nobody"}),
    completion_rows("row/completion/user registered by this delivery's enrolment loads", [compl("u39", "c7")],
                    ["ok"]),
    completion_rows("row/completion/unknown_user identical duplicates held once",
                    [compl("nobody", "c7"), compl("nobody", "c7")], ["unknown_user", "dup"]),
    # precedence: a row breaking several rules gets the first code in the table
    completion_rows("row/precedence/missing_required before bad_date, future_date, bad_value",
                    [compl("u01", "c7", name="", enrolled="nope", completed="2026-02-01", status="Done")],
                    ["missing_required"]),
    completion_rows("row/precedence/bad_date before future_date",
                    [compl("u01", "c7", enrolled="2025-02-30", completed="2026-02-01")], ["bad_date"]),
    completion_rows("row/precedence/future_date before bad_value",
                    [compl("u01", "c7", completed="2026-02-01", rating="9")], ["future_date"]),
    completion_rows("row/precedence/bad_value before completed_without_date",
                    [compl("u01", "c7", completed="", progress="150")], ["bad_value"]),
    completion_rows("row/precedence/completed_without_date before conflicting_duplicate (README: only clean rows take part)",
                    [compl("u01", "c7", completed=""), compl("u01", "c7", status="In Progress", completed="")],
                    ["completed_without_date", "ok"]),
    completion_rows("row/precedence/conflicting_duplicate before unknown_user",
                    [compl("nobody", "c7"), compl("nobody", "c7", status="In Progress", completed="")],
                    ["conflicting_duplicate"] * 2),
    enrolment_rows("row/precedence/missing_required before bad_date (enrolment)",
                   [enrol("x1", "", "2025-13-01")], ["missing_required"]),
]


# --------------------------------------------------------------------------- formats, line numbers, round trips


def _quoted_roundtrip(_):
    org = 'Block Office, "North"\nWing'
    name = 'कोर्स, "भाग 1"\nपरिचय'
    enr = enrolment_with_pii([enrol("q1", "Home, Police", org=org), *base_enrolment()])
    com = completion_with_pii([compl("q1", "c1", name=name), *base_completion()])
    return [enr, com]


def _check_quoted_roundtrip(ctx: Ctx):
    e = read(ctx.env.url, "SELECT department, organization FROM core.enrolment WHERE user_id = 'q1'")
    c = read(ctx.env.url, "SELECT content_name FROM core.completion WHERE user_id = 'q1'")
    assert e == [{"department": "Home, Police", "organization": 'Block Office, "North"\nWing'}]
    assert c == [{"content_name": 'कोर्स, "भाग 1"\nपरिचय'}]


def _multiline_then_bad(_):
    # A quoted newline on line 2-3: the bad row is physical line 5 (header is line 1).
    rows = [enrol("m1", org="two\nlines"), enrol("m2"), enrol("m3", "")] + base_enrolment()
    return [enrolment_with_pii(rows)]


def _crlf_bom_bad(_):
    rows = [enrol("m1"), enrol("m2"), enrol("m3", reg="2025-13-13")] + base_enrolment()
    return [enrolment_with_pii(rows, crlf=True, bom=True)]


def _nfc(_):
    # "e" + combining acute, and a precomposed nukta letter (NFC decomposes U+095B)
    return [enrolment_with_pii([enrol("n1", "Cafe\u0301  Dept", org="\u095b\u093f\u0932\u093e"), *base_enrolment()])]


def _check_nfc(ctx: Ctx):
    rows = read(ctx.env.url, "SELECT department, organization FROM core.enrolment WHERE user_id = 'n1'")
    assert rows == [{"department": "Caf\u00e9 Dept", "organization": "\u091c\u093c\u093f\u0932\u093e"}]


def _jsonl(_):
    enr = [dict(zip(ENROLMENT_COLUMNS, r)) for r in base_enrolment()]
    enr.insert(2, {"User_ID": "j1", "User_Registration_Date": "2025-01-01", "Full_Name": PII[0]})  # no Department key
    com = [{"User_ID": u, "Content_ID": "c1", "Content_Name": "N", "Content_Duration": "01:00:00",
            "Enrolled_On": "2025-12-01", "Status": 2, "Content_Progress_Percentage": 100,
            "Completed_On": "15-12-2025", "User_Rating": 4.5, "Email": PII[1]} for u in USERS]
    com.insert(3, dict(com[0], Content_ID="c2", Status=7))
    return [File("enrolment", "enrolment.jsonl", jsonl_bytes(enr)),
            File("completion", "completion.jsonl.gz", gzip.compress(jsonl_bytes(com), mtime=0))]


def _check_jsonl_numbers(ctx: Ctx):
    rows = read(ctx.env.url, "SELECT status, progress_pct, user_rating, completed_on FROM core.completion "
                             "WHERE user_id = 'u00' AND content_id = 'c1'")
    assert [(r["status"], r["progress_pct"], r["user_rating"], str(r["completed_on"])) for r in rows] == [
        ("Completed", 100.0, 4.5, "2025-12-15")]


def _header_spellings(_):
    header = ["user id", "DEPARTMENT", "User-Registration-Date", "Unknown Extra", "full name"]
    rows = [[u, "Health", "2025-06-01", "ignored", PII[0]] for u in USERS]
    return [File("enrolment", "enrolment.csv", csv_bytes(header, rows, quote_all=True))]


BIG = 10 * 1024 * 1024


def _big_name() -> str:
    word = "प्रशिक्षण "  # 10 code points, 28 bytes of UTF-8
    return (word * (BIG // len(word.encode()) + 1)).rstrip()   # a little over 10 MB of Devanagari


def _big_field(_):
    return [enrolment_with_pii([enrol("big", org="O" * BIG), *base_enrolment()]),
            completion_with_pii([compl("big", "c1", name=_big_name()), *base_completion()])]


def _check_big_field(ctx: Ctx):
    import hashlib

    e = read(ctx.env.url, "SELECT length(organization) AS n, md5(organization) AS h FROM core.enrolment "
                          "WHERE user_id = 'big'")
    c = read(ctx.env.url, "SELECT length(content_name) AS n, md5(content_name) AS h FROM core.completion "
                          "WHERE user_id = 'big'")
    org, name = "O" * BIG, _big_name()
    assert len(name.encode()) >= 9 * 1024 * 1024
    assert e == [{"n": len(org), "h": hashlib.md5(org.encode()).hexdigest()}]
    assert c == [{"n": len(name), "h": hashlib.md5(name.encode()).hexdigest()}]


FORMAT_CASES = [
    Case("format/quoted commas, quotes and newlines load exactly", _quoted_roundtrip,
         {"enrolment": Expect("loaded", quarantine=[], loaded=41, received=41),
          "completion": Expect("loaded", quarantine=[], loaded=41, received=41)},
         check=_check_quoted_roundtrip),
    Case("format/line numbers count quoted newlines", _multiline_then_bad,
         {"enrolment": Expect("loaded_with_quarantine", quarantine=[(5, "missing_required")], loaded=42)}),
    Case("format/CRLF and BOM, line numbers", _crlf_bom_bad,
         {"enrolment": Expect("loaded_with_quarantine", quarantine=[(4, "bad_date")], loaded=42)}),
    Case("format/Unicode stored NFC", _nfc, {"enrolment": Expect("loaded", loaded=41)}, check=_check_nfc),
    Case("format/JSONL: missing key is no value, numbers are values, line = object",
         _jsonl,
         {"enrolment": Expect("loaded_with_quarantine", quarantine=[(3, "missing_required")], loaded=40),
          "completion": Expect("loaded_with_quarantine", quarantine=[(4, "bad_value")], loaded=40)},
         check=_check_jsonl_numbers),
    Case("format/header spellings, quote-all, unknown columns ignored", _header_spellings,
         {"enrolment": Expect("loaded", loaded=40)}),
    Case("format/10 MB single field is allowed text and round-trips", _big_field,
         {"enrolment": Expect("loaded", loaded=41), "completion": Expect("loaded", loaded=41)},
         check=_check_big_field),
    Case("format/header-only CSV is zero rows",
         lambda _: [File("enrolment", "enrolment.csv", enrolment_csv([]))],
         {"enrolment": Expect("loaded", quarantine=[], loaded=0, received=0)}),
    Case("format/0-byte JSONL is zero rows",
         lambda _: [File("completion", "completion.jsonl", b"")],
         {"completion": Expect("loaded", quarantine=[], loaded=0, received=0)}),
    Case("format/0-byte gzipped JSONL member is zero rows",
         lambda _: [File("completion", "completion.jsonl.gz", gzip.compress(b"", mtime=0))],
         {"completion": Expect("loaded", quarantine=[], loaded=0, received=0)}),
]


# --------------------------------------------------------------------------- feed rules


def _cut_off(_):
    f = good_enrolment(30)
    entry = f.manifest_entry()
    f.data = f.data[: len(f.data) // 2]   # the upload stopped half-way; the manifest describes the whole file
    f.entry = entry
    return [f]


def _outside(kind: str):
    def files(state_dir: Path):
        data = enrolment_csv([enrol("outside1"), enrol("outside2")])
        if kind == "relative":
            target, name = state_dir / "x.csv", "../x.csv"
        else:
            target = state_dir.parent.parent / "elsewhere" / "x.csv"
            name = str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return [File("enrolment", name, None, entry={"feed": "enrolment", "name": name, "rows": 2,
                                                        "sha256": sha256(data)})]
    return files


def _check_outside_not_read(ctx: Ctx):
    data = enrolment_csv([enrol("outside1"), enrol("outside2")])
    archive = ctx.tmp / "data" / "archive"
    archived = [p.name for p in archive.rglob("*") if p.is_file()] if archive.exists() else []
    assert sha256(data) not in archived, "a file outside the delivery folder was read into the archive"
    assert read(ctx.env.url, "SELECT count(*) AS n FROM core.enrolment WHERE user_id LIKE 'outside%'") == [{"n": 0}]
    assert read(ctx.env.url, "SELECT file_sha256 FROM ops.feed_load") == [{"file_sha256": None}]


def _twice(_):
    a, b = good_enrolment(10), good_enrolment(12)
    b.name = "enrolment2.csv"
    return [a, b]


def _ragged(extra: bool):
    def files(_):
        good = enrolment_csv([enrol("r1"), enrol("r2"), enrol("r3")])
        bad = b"r4,Health,2025-01-01,,,,,EXTRA\n" if extra else b"r4,Health\n"
        tail = enrolment_csv(base_enrolment()).split(b"\n", 1)[1]
        return [File("enrolment", "enrolment.csv", good + bad + tail, rows=44)]
    return files


def _bad_utf8(padding: int):
    def files(_):
        good = enrolment_csv([enrol(f"p{i:04d}") for i in range(padding)])
        bad = "r9,Heal".encode() + b"\xff" + b"th,2025-01-01,,,,\n"
        return [File("enrolment", "enrolment.csv", good + bad, rows=padding + 1)]
    return files


def _bad_json_line(_):
    lines = jsonl_bytes([dict(zip(ENROLMENT_COLUMNS, r)) for r in base_enrolment()[:5]]).split(b"\n")
    lines[2] = b'{"User_ID": "u02", "Department": oops}'
    return [File("enrolment", "enrolment.jsonl", b"\n".join(lines), rows=5)]


def _json_array_line(_):
    lines = jsonl_bytes([dict(zip(ENROLMENT_COLUMNS, r)) for r in base_enrolment()[:5]]).split(b"\n")
    lines[3] = b'["u03", "Health", "2025-06-01"]'
    return [File("enrolment", "enrolment.jsonl", b"\n".join(lines), rows=5)]


def _corrupt_gzip(truncate: bool):
    def files(_):
        raw = gzip.compress(enrolment_csv(base_enrolment()), mtime=0)
        data = raw[: len(raw) // 2] if truncate else b"this is not gzip at all\n" * 10
        return [File("enrolment", "enrolment.csv.gz", data, rows=40)]
    return files


def _bad_rows(n_bad: int, n_good: int):
    def files(_):
        rows = [enrol(f"t{i:02d}") for i in range(n_good)]
        rows[2:2] = [enrol(f"bad{i}", "") for i in range(n_bad)]
        return [enrolment_with_pii(rows)]
    return files


def _unknown_users(_):
    com = base_completion()[:5] + [compl(f"later{i}", "c1") for i in range(5)]
    return [enrolment_with_pii(base_enrolment()[:5]), completion_with_pii(com)]


def _sha_and_missing_column(_):
    data = csv_bytes(["User_ID", "Department"], [["a", "b"]])
    return [File("enrolment", "enrolment.csv", data, sha="ab" * 32)]


FEED_CASES = [
    # manifest_mismatch
    Case("feed/manifest_mismatch/row count differs", lambda _: [File("enrolment", "enrolment.csv",
                                                                         good_enrolment(30).data, rows=31)],
         rejected("enrolment", "manifest_mismatch", "enrolment.csv", "31", "30", "rows")),
    Case("feed/manifest rows count records, not lines (quoted newlines)",
         lambda _: [enrolment_with_pii([enrol("m1", org="a\nb\nc"), *base_enrolment()])],
         {"enrolment": Expect("loaded", loaded=41, received=41)}),
    Case("feed/manifest_mismatch/sha256 differs",
         lambda _: [File("enrolment", "enrolment.csv", good_enrolment(30).data, sha="0" * 64)],
         rejected("enrolment", "manifest_mismatch", "enrolment.csv", "sha256")),
    Case("feed/manifest sha256 in upper-case hex is the same hash",
         lambda _: [File("enrolment", "enrolment.csv", good_enrolment(30).data,
                         sha=sha256(good_enrolment(30).data).upper())],
         {"enrolment": Expect("loaded", loaded=30)}),
    Case("feed/manifest_mismatch/cut-off upload", _cut_off,
         rejected("enrolment", "manifest_mismatch", "enrolment.csv")),
    Case("feed/manifest_mismatch/named file absent",
         lambda _: [good_enrolment(), File("completion", "completion.csv", None,
                                           entry={"feed": "completion", "name": "completion.csv", "rows": 3,
                                                  "sha256": "ab" * 32})],
         rejected("completion", "manifest_mismatch", "completion.csv",
                  other={"enrolment": Expect("loaded", loaded=10)})),
    Case("feed/manifest_mismatch/manifest state is not its folder's",
         lambda _: [good_enrolment(), completion_with_pii([compl("g01")])],
         {"enrolment": Expect("rejected", "manifest_mismatch", ("manifest.json", "state", "'UK'", "'UP'")),
          "completion": Expect("rejected", "manifest_mismatch", ("manifest.json", "state"))},
         doc_patch=lambda d: d.update(state="UK")),
    Case("feed/manifest_mismatch/manifest date is not its folder's",
         lambda _: [good_enrolment()],
         rejected("enrolment", "manifest_mismatch", "manifest.json", "2026-01-05", RD),
         doc_patch=lambda d: d.update(report_date="2026-01-05")),
    Case("feed/manifest_mismatch/manifest not JSON rejects both feeds",
         lambda _: [good_enrolment()],
         {"enrolment": Expect("rejected", "manifest_mismatch", ("manifest.json", "JSON")),
          "completion": Expect("rejected", "manifest_mismatch", ("manifest.json", "JSON"))},
         manifest_text='{"state": "UP", "report_date": '),
    Case("feed/manifest_mismatch/feed listed twice", _twice,
         rejected("enrolment", "manifest_mismatch", "manifest.json", "twice")),
    Case("feed/manifest_mismatch/name ../x.csv is refused, the file outside is not read", _outside("relative"),
         rejected("enrolment", "manifest_mismatch", "manifest.json", r"\.\./x\.csv"), check=_check_outside_not_read),
    Case("feed/manifest_mismatch/absolute path is refused, the file outside is not read", _outside("absolute"),
         rejected("enrolment", "manifest_mismatch", "manifest.json", "absolute|leaves"),
         check=_check_outside_not_read),
    Case("feed/precedence/manifest_mismatch before missing_columns", _sha_and_missing_column,
         rejected("enrolment", "manifest_mismatch", "enrolment.csv", "sha256")),
    # unreadable
    Case("feed/unreadable/not gzip at all", _corrupt_gzip(False),
         rejected("enrolment", "unreadable", "enrolment.csv.gz", "gzip|compress")),
    Case("feed/unreadable/truncated gzip", _corrupt_gzip(True),
         rejected("enrolment", "unreadable", "enrolment.csv.gz", "gzip|compress|end")),
    Case("feed/unreadable/invalid UTF-8 on line 5 of a small file", _bad_utf8(3),
         rejected("enrolment", "unreadable", "enrolment.csv", line(5), "utf-?8|unicode|encod")),
    Case("feed/unreadable/invalid UTF-8 on line 402 (past the first read buffer)", _bad_utf8(400),
         rejected("enrolment", "unreadable", "enrolment.csv", line(402), "utf-?8|unicode|encod")),
    Case("feed/unreadable/ragged CSV, a field too many on line 5", _ragged(True),
         rejected("enrolment", "unreadable", "enrolment.csv", line(5), "column|field")),
    Case("feed/unreadable/ragged CSV, fields missing on line 5", _ragged(False),
         rejected("enrolment", "unreadable", "enrolment.csv", line(5), "column|field")),
    Case("feed/unreadable/ragged CSV after a quoted 3-line field: physical line 6 (README: physical lines)",
         lambda _: [File("enrolment", "enrolment.csv",
                         enrolment_csv([enrol("m1", org="x\ny\nz"), enrol("m2")]) + b"m3,Health,2025-01-01,,,,,X\n",
                         rows=3)],
         rejected("enrolment", "unreadable", "enrolment.csv", line(6))),
    Case("feed/unreadable/unterminated quote",
         lambda _: [File("enrolment", "enrolment.csv",
                         enrolment_csv(base_enrolment()[:3]) + b'x9,"Health,2025-01-01,,,,\n', rows=4)],
         rejected("enrolment", "unreadable", "enrolment.csv", line(5), "quote")),
    Case("feed/unreadable/JSON syntax error on line 3", _bad_json_line,
         rejected("enrolment", "unreadable", "enrolment.jsonl", line(3), "json")),
    Case("feed/unreadable/invalid UTF-8 in JSONL on line 2",
         lambda _: [File("enrolment", "enrolment.jsonl",
                         b'{"User_ID": "a", "Department": "H", "User_Registration_Date": "2025-01-01"}\n'
                         b'{"User_ID": "b", "Department": "H\xff", "User_Registration_Date": "2025-01-01"}\n', rows=2)],
         rejected("enrolment", "unreadable", "enrolment.jsonl", line(2), "utf-?8|unicode|encod")),
    Case("feed/unreadable/JSONL line that is not an object", _json_array_line,
         rejected("enrolment", "unreadable", "enrolment.jsonl", line(4), "object")),
    Case("feed/unreadable/0-byte CSV (README decision: no header)",
         lambda _: [File("enrolment", "enrolment.csv", b"")],
         rejected("enrolment", "unreadable", "enrolment.csv", "empty|header")),
    Case("feed/unreadable/two headers meaning one column (README decision)",
         lambda _: [File("enrolment", "enrolment.csv",
                         b"User_ID,Department,User_Registration_Date,user id\nu1,H,2025-01-01,u1\n")],
         rejected("enrolment", "unreadable", "enrolment.csv", line(1), "User_ID")),
    # missing_columns
    Case("feed/missing_columns/completion without Status",
         lambda _: [File("completion", "completion.csv",
                         csv_bytes([c for c in COMPLETION_COLUMNS if c != "Status"],
                                   [compl("u01")[:8] + compl("u01")[9:]]))],
         rejected("completion", "missing_columns", "completion.csv", "Status")),
    Case("feed/missing_columns/enrolment without User_Registration_Date",
         lambda _: [File("enrolment", "enrolment.csv", csv_bytes(["User_ID", "Department"], [["a", "b"]]))],
         rejected("enrolment", "missing_columns", "enrolment.csv", "User_Registration_Date")),
    Case("feed/missing_columns/JSONL where no line has a required key",
         lambda _: [File("enrolment", "enrolment.jsonl",
                         jsonl_bytes([{"User_ID": "a", "Department": "b"}, {"User_ID": "c", "Department": "d"}]))],
         rejected("enrolment", "missing_columns", "enrolment.jsonl", "User_Registration_Date")),
    # too_many_bad_rows, threshold per state (registry: UP 0.10, UK 0.25)
    Case("feed/too_many_bad_rows/UP 2 of 12 over 10 %", _bad_rows(2, 10),
         rejected("enrolment", "too_many_bad_rows", "enrolment.csv", line(4), "missing_required", "10 ?%")),
    Case("feed/too_many_bad_rows/UP exactly 10 % is accepted", _bad_rows(1, 9),
         {"enrolment": Expect("loaded_with_quarantine", quarantine=[(4, "missing_required")], loaded=9)}),
    Case("feed/too_many_bad_rows/UK threshold 25 % accepts 2 of 12", _bad_rows(2, 10),
         {"enrolment": Expect("loaded_with_quarantine", quarantine=[(4, "missing_required"), (5, "missing_required")],
                              loaded=10)}, state="UK"),
    Case("feed/too_many_bad_rows/UK threshold 25 % rejects 4 of 12", _bad_rows(4, 8),
         rejected("enrolment", "too_many_bad_rows", "enrolment.csv", "25 ?%"), state="UK"),
    Case("feed/too_many_bad_rows/held unknown_user rows do not count (README decision)", _unknown_users,
         {"enrolment": Expect("loaded", loaded=5),
          "completion": Expect("loaded_with_quarantine", quarantine=[(i, "unknown_user") for i in range(7, 12)],
                               loaded=5)}),
]

CASES = ROW_CASES + FORMAT_CASES + FEED_CASES


# --------------------------------------------------------------------------- the runner


def _feed_rows(q, state: str, feed: str) -> int:
    return q(f"SELECT count(*) AS n FROM core.{feed} WHERE state_code = :s AND report_date = :d",
                s=state, d=RD)[0]["n"]


def _assert_detail(detail: str | None, patterns: tuple[str, ...]):
    assert detail, "a rejection must carry a detail"
    for pattern in patterns:
        assert re.search(pattern, detail, re.IGNORECASE), f"detail {detail!r} does not match {pattern!r}"


def _assert_no_pii(text: str):
    for value in PII:
        assert value.lower() not in text.lower(), f"personal value {value!r} in {text[:300]!r}"


def run_case(case: Case, env: Night, tmp: Path) -> Ctx:
    state_dir = env.landing / case.state
    state_dir.mkdir(parents=True, exist_ok=True)
    files = case.files(state_dir)
    folder = write_delivery(env.landing, case.state, RD, files, mode=case.mode, doc_patch=case.doc_patch,
                            manifest_text=case.manifest_text)
    names = {f.feed: f.name for f in files}
    result = env.ingest(case.state, RD)
    outcomes = {o["feed"]: o for o in result["feeds"]}
    assert sorted(outcomes) == sorted(case.expect), f"feeds processed: {result['lines']}"
    url = env.url
    env.rollup(RD)
    with reader(url) as q:
        status_rows = {r["feed"]: r for r in q("SELECT * FROM mart.feed_status WHERE report_date = :d "
                                               "AND state_code = :s", d=RD, s=case.state)}
        for feed, exp in case.expect.items():
            out = outcomes[feed]
            where = f"{case.state} {feed}: {out['status']} {out['reason']} {out['detail']}"
            assert (out["status"], out["reason"]) == (exp.status, exp.reason), where
            audit = q("SELECT * FROM ops.feed_load WHERE load_id = :i", i=out["load_id"])
            assert len(audit) == 1 and (audit[0]["status"], audit[0]["reason"]) == (exp.status, exp.reason), where
            mart = status_rows[feed]
            assert (mart["status"], mart["reason"]) == (exp.status, exp.reason), where
            if exp.received is not None:
                assert out["rows_received"] == exp.received, where
            quarantined = q("SELECT line_no, reason, detail, raw_values, file_name FROM quarantine.row WHERE state_code = :s "
                            "AND report_date = :d AND feed = :f ORDER BY line_no", s=case.state, d=RD, f=feed)
            if exp.status == "rejected":
                _assert_detail(out["detail"], exp.detail)
                _assert_detail(mart["detail"], exp.detail)
                _assert_no_pii(out["detail"])
                # nothing of a rejected feed is loaded
                assert _feed_rows(q, case.state, feed) == 0, where
                assert quarantined == [], where
                if feed == "completion":
                    assert q("SELECT count(*) AS n FROM quarantine.held_completion") == [{"n": 0}], where
                assert q("SELECT count(*) AS n FROM core.feed_version WHERE state_code = :s AND feed = :f",
                         s=case.state, f=feed) == [{"n": 0}], where
                assert (mart["rows_loaded"], mart["rows_quarantined"], mart["rows_duplicate"]) == (0, 0, 0), where
                continue
            # accepted: the row counts add up, everywhere they are reported
            for src in (out, audit[0], mart):
                assert src["rows_loaded"] + src["rows_quarantined"] + src["rows_duplicate"] == src["rows_received"], where
            assert (mart["rows_received"], mart["rows_loaded"], mart["rows_quarantined"], mart["rows_duplicate"]) == (
                out["rows_received"], out["rows_loaded"], out["rows_quarantined"], out["rows_duplicate"]), where
            if exp.loaded is not None:
                assert out["rows_loaded"] == exp.loaded, where
            if exp.duplicate is not None:
                assert out["rows_duplicate"] == exp.duplicate, where
            assert _feed_rows(q, case.state, feed) == out["rows_loaded"], where
            assert len(quarantined) == out["rows_quarantined"], where
            if exp.quarantine is not None:
                assert [(r["line_no"], r["reason"]) for r in quarantined] == exp.quarantine, where
            for row in quarantined:
                raw = json.loads(row["raw_values"])
                assert isinstance(raw, dict) and raw, row
                assert not {k.lower() for k in raw} & {c.lower() for c in PERSONAL_COLUMNS}, row
                _assert_no_pii(row["raw_values"] + (row["detail"] or ""))
                assert row["detail"], row
                assert row["file_name"].endswith(f"{case.state}/{RD}/{names[feed]}"), row  # the delivery it came from
            by_line = {row["line_no"]: row for row in quarantined}
            for ln, values in exp.raw.items():
                raw = json.loads(by_line[ln]["raw_values"])
                for k, v in values.items():
                    assert raw.get(k) == v, (ln, raw)
            for ln, pattern in exp.qdetail.items():
                assert re.search(pattern, by_line[ln]["detail"]), (ln, by_line[ln]["detail"])
            if feed == "completion":
                held = q("SELECT count(*) AS n FROM quarantine.held_completion WHERE state_code = :s", s=case.state)
                assert held[0]["n"] == sum(r["reason"] == "unknown_user" for r in quarantined), where
            qs = {r["reason"]: r["rows"] for r in q(
                "SELECT reason, rows FROM mart.quarantine_summary WHERE report_date = :d AND state_code = :s "
                "AND feed = :f", d=RD, s=case.state, f=feed)}
            expected_qs: dict[str, int] = {}
            for row in quarantined:
                expected_qs[row["reason"]] = expected_qs.get(row["reason"], 0) + 1
            assert qs == expected_qs, where
        before = q("SELECT count(*) AS n FROM ops.feed_load")
    # the same night again changes nothing
    again = env.ingest(case.state, RD)
    assert again["feeds"] == [], again["lines"]
    assert read(url, "SELECT count(*) AS n FROM ops.feed_load") == before
    return Ctx(env, folder, outcomes, tmp)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_catalogue(case: Case, env: Night, tmp_path: Path):
    ctx = run_case(case, env, tmp_path)
    if case.check is not None:
        case.check(ctx)


# --------------------------------------------------------------------------- multi-step cases

D1, D2, D3 = "2026-01-04", "2026-01-05", RD


def test_flow_unknown_user_held_then_loaded_with_original_report_date(env: Night):
    """A completion row for a user not yet registered is held (loaded_with_quarantine), retried
    every night, and loads once a later delivery registers the user, with its own report date;
    the quarantine summary of its date then drops it."""
    write_delivery(env.landing, "UP", D1, [enrolment_with_pii(base_enrolment()),
                                           completion_with_pii(base_completion() + [compl("late1", "c9")])])
    out = {o["feed"]: o for o in env.ingest("UP", D1)["feeds"]}
    assert out["completion"]["status"] == "loaded_with_quarantine"
    assert out["completion"]["rows_quarantined"] == 1 and out["completion"]["rows_loaded"] == 40
    assert env.retry("UP", D1)["released"] == 0
    env.rollup(D1)
    q1 = read(env.url, "SELECT reason, rows FROM mart.quarantine_summary WHERE report_date = :d AND state_code = 'UP'",
              d=D1)
    assert q1 == [{"reason": "unknown_user", "rows": 1}]
    # D2: nothing for late1 yet: still held
    write_delivery(env.landing, "UP", D2, [enrolment_with_pii([enrol("other")])])
    env.ingest("UP", D2)
    assert env.retry("UP", D2) == {"state": "UP", "report_date": D2, "released": 0, "still_held": 1}
    env.rollup(D2)
    # D3: late1 registers; the held row loads with report date D1
    write_delivery(env.landing, "UP", D3, [enrolment_with_pii([enrol("late1", reg="2026-01-05")])])
    env.ingest("UP", D3)
    assert env.retry("UP", D3)["released"] == 1
    rows = read(env.url, "SELECT report_date, status FROM core.completion WHERE user_id = 'late1'")
    assert [(str(r["report_date"]), r["status"]) for r in rows] == [(D1, "Completed")]
    assert read(env.url, "SELECT count(*) AS n FROM quarantine.held_completion") == [{"n": 0}]
    released = read(env.url, "SELECT line_no, released_load_id FROM quarantine.row WHERE reason = 'unknown_user'")
    assert len(released) == 1 and released[0]["line_no"] == 42 and released[0]["released_load_id"] is not None
    env.rollup(D3)
    for d in (D1, D2, D3):
        assert read(env.url, "SELECT count(*) AS n FROM mart.quarantine_summary WHERE report_date = :d", d=d) == [
            {"n": 0}], f"quarantine_summary of {d} still counts the released row"
    counts = {str(r["report_date"]): r["course_enrolments"] for r in read(
        env.url, "SELECT report_date, course_enrolments FROM mart.state_summary WHERE state_code = 'UP'")}
    # late1 is registered as of D3 only: the row counts on D3, not before
    assert counts == {D1: 40, D2: 40, D3: 41}


def test_flow_bad_redelivery_of_an_accepted_date_keeps_the_previous_data(env: Night):
    """An accepted delivery, then a re-delivery of the same date that is rejected: the earlier
    data stays in use; feed_status shows the rejection (README decision)."""
    write_delivery(env.landing, "UP", RD, [enrolment_with_pii(base_enrolment()),
                                           completion_with_pii(base_completion() + [compl("heldx", "c1")])])
    assert [o["status"] for o in env.ingest("UP", RD)["feeds"]] == ["loaded", "loaded_with_quarantine"]
    env.rollup(RD)
    marts = "SELECT registered_users, course_enrolments FROM mart.state_summary WHERE state_code = 'UP'"
    before = read(env.url, marts)
    assert before == [{"registered_users": 40, "course_enrolments": 40}]
    tables = ("core.enrolment", "core.completion", "quarantine.row", "quarantine.held_completion", "core.feed_version")

    def contents():
        return {t: read(env.url, f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4") for t in tables}

    snapshot = contents()
    # re-delivery: 5 users and a wrong sha256; a completion file without its Status column
    f = enrolment_with_pii(base_enrolment()[:5])
    f.sha = "cd" * 32
    c = File("completion", "completion.csv", csv_bytes(["User_ID", "Content_ID", "Content_Name"], [["u01", "c1", "n"]]))
    write_delivery(env.landing, "UP", RD, [f, c])
    out = env.ingest("UP", RD)["feeds"]
    assert [(o["status"], o["reason"]) for o in out] == [("rejected", "manifest_mismatch"),
                                                         ("rejected", "missing_columns")]
    assert contents() == snapshot
    env.rollup(RD)
    assert read(env.url, marts) == before
    status = read(env.url, "SELECT feed, status, reason FROM mart.feed_status WHERE state_code = 'UP' ORDER BY feed")
    assert status == [{"feed": "completion", "status": "rejected", "reason": "missing_columns"},
                      {"feed": "enrolment", "status": "rejected", "reason": "manifest_mismatch"}]
    # the held row of the earlier delivery still counts in quarantine (it is still in use)
    assert read(env.url, "SELECT reason, rows FROM mart.quarantine_summary WHERE state_code = 'UP'") == [
        {"reason": "unknown_user", "rows": 1}]
    # a second bad re-delivery, readable but with a missing column: still the first data
    write_delivery(env.landing, "UP", RD, [File("enrolment", "enrolment.csv",
                                                 csv_bytes(["User_ID", "Department"], [["zz", "H"]]))])
    out = env.ingest("UP", RD)["feeds"]
    assert [(o["status"], o["reason"]) for o in out] == [("rejected", "missing_columns")]
    assert contents() == snapshot


def test_flow_redelivery_of_a_rejected_date_with_fixed_files_is_processed(env: Night):
    rows = base_enrolment()
    rows[1:1] = [enrol("bad1", ""), enrol("bad2", reg="2025-99-01"), enrol("bad3", reg="2027-01-01"),
                 enrol("bad4", "", ""), enrol("bad5", "")]
    write_delivery(env.landing, "UP", RD, [enrolment_with_pii(rows)])
    out = env.ingest("UP", RD)["feeds"]
    assert [(o["status"], o["reason"]) for o in out] == [("rejected", "too_many_bad_rows")]
    assert env.ingest("UP", RD)["feeds"] == []  # the same rejected files: nothing new
    write_delivery(env.landing, "UP", RD, [enrolment_with_pii(base_enrolment())])
    out = env.ingest("UP", RD)["feeds"]
    assert [(o["status"], o["rows_loaded"]) for o in out] == [("loaded", 40)]
    env.rollup(RD)
    assert read(env.url, "SELECT status, reason FROM mart.feed_status WHERE state_code = 'UP' AND feed = 'enrolment'"
                ) == [{"status": "loaded", "reason": None}]


def test_flow_folder_without_manifest_waits_then_is_processed(env: Night):
    files = [enrolment_with_pii(base_enrolment())]
    folder = write_delivery(env.landing, "UP", RD, files, manifest=False)
    result = env.ingest("UP", RD)
    assert result["feeds"] == [] and result["deliveries_seen"] == 0
    assert read(env.url, "SELECT count(*) AS n FROM ops.feed_load") == [{"n": 0}]
    env.rollup(RD)
    assert read(env.url, "SELECT status FROM mart.feed_status WHERE state_code = 'UP'") == [
        {"status": "missing"}, {"status": "missing"}]
    write_manifest(folder, "UP", RD, files)
    out = env.ingest("UP", RD)["feeds"]
    assert [(o["feed"], o["status"], o["rows_loaded"]) for o in out] == [("enrolment", "loaded", 40)]


def test_flow_byte_identical_redelivery_changes_nothing(env: Night):
    files = [enrolment_with_pii(base_enrolment()), completion_with_pii(base_completion() + [compl("zz", "c1")])]
    write_delivery(env.landing, "UP", RD, files)
    env.ingest("UP", RD)
    env.retry("UP", RD)
    env.rollup(RD)

    def state():
        return {t: sorted(map(repr, read(env.url, f"SELECT * FROM {t}"))) for t in (
            "core.enrolment", "core.completion", "quarantine.row", "quarantine.held_completion",
            "core.feed_version", "ops.feed_load", "mart.state_summary", "mart.feed_status",
            "mart.quarantine_summary")}

    before = state()
    # the same bytes written again (new mtimes), and the same manifest re-written
    write_delivery(env.landing, "UP", RD, files)
    assert env.ingest("UP", RD)["feeds"] == []
    env.retry("UP", RD)
    env.rollup(RD)
    after = state()
    for t in before:
        assert after[t] == before[t], t


def test_flow_volume_drop_on_snapshots_only(env: Night):
    """Snapshot mode: fewer than half the rows of the previous accepted snapshot is rejected;
    exactly half is not; the comparison is with the last *accepted* snapshot."""
    snap = lambda n: [enrolment_with_pii([enrol(f"s{i:02d}") for i in range(n)])]  # noqa: E731
    write_delivery(env.landing, "UP", D1, snap(10), mode="snapshot")
    write_delivery(env.landing, "UP", D2, snap(4), mode="snapshot")
    write_delivery(env.landing, "UP", D3, snap(5), mode="snapshot")
    out = {o["report_date"]: o for o in env.ingest("UP", D3)["feeds"]}
    assert (out[D1]["status"], out[D2]["status"], out[D2]["reason"], out[D3]["status"]) == (
        "loaded", "rejected", "volume_drop", "loaded")
    _assert_detail(out[D2]["detail"], ("enrolment.csv", r"\b4\b", r"\b10\b"))
    assert out[D2]["rows_received"] == 4
    env.rollup(D3)
    regs = {str(r["report_date"]): r["registered_users"] for r in read(
        env.url, "SELECT report_date, registered_users FROM mart.state_summary WHERE state_code = 'UP'")}
    assert regs == {D3: 5}
    assert read(env.url, "SELECT count(*) AS n FROM core.enrolment WHERE report_date = :d", d=D2) == [{"n": 0}]
    # delta mode is never compared: one row after a snapshot of five loads
    write_delivery(env.landing, "UP", "2026-01-07", [enrolment_with_pii([enrol("s99")])])
    out = env.ingest("UP", "2026-01-07")["feeds"]
    assert [(o["status"], o["rows_loaded"]) for o in out] == [("loaded", 1)]

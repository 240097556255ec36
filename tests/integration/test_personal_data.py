"""Personal data is never stored in the warehouse, the logs or the quarantine (feeds.md).

Known personal values are planted in every place a delivery can carry them:
good rows, quarantined rows, held unknown_user rows and rejected feeds
(too_many_bad_rows, unreadable with the value on the broken line, missing_columns,
manifest_mismatch), in CSV, gzipped CSV, JSONL and gzipped JSONL, under several
header spellings. Three nights then run (ingest, retry of held rows, rollup, the
same calls the DAGs make) with every log record captured at DEBUG and the
process's stdout/stderr captured at file-descriptor level.

Scanned afterwards, none of the planted strings may appear in:
  * any column of any table or view in any schema of the warehouse (every column
    enumerated from information_schema.columns and cast to text), on DuckDB and
    on PostgreSQL;
  * ops.validation.result_json (also part of the scan above, checked explicitly);
  * the Great Expectations Data Docs site (<MOU_DATA_DIR>/quality/docs);
  * any other file under <MOU_DATA_DIR> (the DuckDB warehouse file, scratch space);
  * the captured logs, stdout and stderr.

Excluded on purpose: <MOU_DATA_DIR>/archive, which keeps every processed file
unchanged by contract (the warehouse must be rebuildable from it), and the
landing zone, which is the states' own upload area.

Positive controls make the scan trustworthy: canary values planted in non-personal
columns (a stored Organization, a quarantined row's raw Department, a rejected
file's name) must be found by the same scanner.
"""

from __future__ import annotations

import gzip
import logging
import sys
from pathlib import Path

import pytest

from landing_kit import (
    COMPLETION_COLUMNS,
    ENROLMENT_COLUMNS,
    File,
    compl,
    csv_bytes,
    enrol,
    jsonl_bytes,
    reader,
    write_delivery,
)

NAME, EMAIL, PHONE, EMP = "PII-NAME-7731", "pii.7731@example.org", "+91-99999-77310", "EMP-PII-7731"
PLANTED = [NAME, EMAIL, PHONE, EMP, "99999-77310", "pii.7731@"]
CANARY_STORED = "ORG-CANARY-4242"         # Organization of a good row: stored
CANARY_QUARANTINE = "DEPT-CANARY-4242"    # Department of a quarantined row: kept in raw values
D1, D2, D3 = "2026-01-04", "2026-01-05", "2026-01-06"


@pytest.fixture(autouse=True)
def _docs_in_this_test(two_states, monkeypatch):
    """Data Docs on, written under this test's MOU_DATA_DIR (the GX runner is process-wide
    and keeps the docs folder of the data dir it was created in)."""
    from mou_etl import quality

    monkeypatch.delenv("MOU_DATA_DOCS", raising=False)
    monkeypatch.setattr(quality, "_runner", None)


def _pii_csv(header: list[str], rows: list[list], personal_header=("Full_Name", "Email", "Phone_Number", "Employee_Id"),
             **kw) -> bytes:
    return csv_bytes(header + list(personal_header), [r + [NAME, EMAIL, PHONE, EMP] for r in rows], **kw)


def _pii_json(columns: list[str], rows: list[list], keys=("Full Name", "EMAIL", "phone-number", "employee_id")) -> bytes:
    objs = []
    for r in rows:
        obj = {c: v for c, v in zip(columns, r) if v != ""}
        obj.update(dict(zip(keys, [NAME, EMAIL, PHONE, EMP])))
        objs.append(obj)
    return jsonl_bytes(objs)


def _deliveries(landing: Path) -> None:
    users = [f"p{i:02d}" for i in range(30)]
    # ---- D1, UP (CSV): good rows, quarantined rows, a held unknown_user row, all carrying personal data
    enr = [enrol(u, org=CANARY_STORED if u == "p00" else "") for u in users]
    enr[5:5] = [enrol("bad1", CANARY_QUARANTINE, "2025-13-01"), enrol("bad2", "")]
    com = [compl(u, "c1") for u in users]
    com[7:7] = [compl("p01", "c2", status="Done"), compl("heldUser", "c1")]
    write_delivery(landing, "UP", D1, [
        File("enrolment", "enrolment.csv", _pii_csv(ENROLMENT_COLUMNS, enr)),
        File("completion", "completion.csv.gz", gzip.compress(_pii_csv(
            COMPLETION_COLUMNS, com, personal_header=("Full Name", "E-mail", "PHONE NUMBER", "Department")), mtime=0)),
    ])
    # ---- D1, UK (JSONL): the same, with other key spellings
    ukenr = [enrol(f"k{i:02d}") for i in range(20)] + [enrol("kbad", "", "")]
    ukcom = [compl(f"k{i:02d}", "c1") for i in range(20)] + [compl("kheld", "c1"), compl("k01", "c3", rating="9")]
    write_delivery(landing, "UK", D1, [
        File("enrolment", "enrolment.jsonl", _pii_json(ENROLMENT_COLUMNS, ukenr)),
        File("completion", "completion.jsonl.gz", gzip.compress(_pii_json(COMPLETION_COLUMNS, ukcom), mtime=0)),
    ])
    # ---- D2, UP: rejected feeds whose rows carry personal data
    many_bad = [enrol(u) for u in users[:8]] + [enrol(f"nb{i}", "") for i in range(4)]
    ragged = _pii_csv(COMPLETION_COLUMNS, [compl("p01", "c4")]) + (
        f"p02,c4,,Course,P,Course,01:00:00,2025-12-01,Completed,100,2025-12-15,Yes,,,{NAME},{EMAIL},{PHONE},{EMP},X\n"
    ).encode()
    write_delivery(landing, "UP", D2, [
        File("enrolment", "enrolment.csv", _pii_csv(ENROLMENT_COLUMNS, many_bad)),                 # too_many_bad_rows
        File("completion", "completion.csv", ragged, rows=2),                                      # unreadable
    ])
    # ---- D2, UK: unreadable JSON on a line holding personal data; missing_columns
    lines = _pii_json(ENROLMENT_COLUMNS, [enrol("k90")]) + f'{{"User_ID": "k91", "Email": "{EMAIL}", oops}}\n'.encode()
    write_delivery(landing, "UK", D2, [
        File("enrolment", "enrolment.jsonl", lines, rows=2),
        File("completion", "completion.csv", _pii_csv(["User_ID", "Content_ID"], [["k01", "c9"]])),  # missing_columns
    ])
    # ---- D3, UP: registers the held user (the held row loads); a manifest_mismatch with personal data
    write_delivery(landing, "UP", D3, [
        File("enrolment", "enrolment.csv", _pii_csv(ENROLMENT_COLUMNS, [enrol("heldUser")])),
        File("completion", "completion.csv", _pii_csv(COMPLETION_COLUMNS, [compl("p02", "c5")]), rows=7),
    ])
    # ---- D3, UK: a bad UTF-8 byte right after personal data
    bad_utf8 = _pii_csv(ENROLMENT_COLUMNS, [enrol("k92")]) + f"k93,Health,2025-01-01,,,,,{NAME},".encode() + b"\xff\n"
    write_delivery(landing, "UK", D3, [File("enrolment", "enrolment.csv", bad_utf8, rows=2)])


def _run_nights(landing: Path, url: str) -> list[dict]:
    from mou_etl import night

    summaries = []
    for day in (D1, D2, D3):
        # out= explicitly: run_night's default is the sys.stdout of import time, not the captured one
        summaries.append(night.run_night(day, ["UP", "UK"], str(landing), url, out=sys.stdout))
        for state in ("UP", "UK"):     # the DAG's separate calls too (discover, ingest, retry, finish)
            found = night.discover_deliveries(state, day, str(landing))
            night.ingest_deliveries(state, day, found, str(landing), url)
            night.retry_held_rows(state, day, url)
            night.finish_state_night(state, day, url)
        night.national_rollup(day, url)
    return summaries


def _scan_warehouse(url: str, needles: list[str]) -> tuple[dict[str, list[str]], int]:
    """{needle: ["schema.table.column", ...]} over every column of every table and view."""
    hits: dict[str, list[str]] = {n: [] for n in needles}
    with reader(url) as q:
        cols = q(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() "
            "AND table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2, ordinal_position"
        )
        assert cols, "information_schema lists no column: the scan would prove nothing"
        tables: dict[tuple[str, str], list[str]] = {}
        for c in cols:
            tables.setdefault((c["table_schema"], c["table_name"]), []).append(c["column_name"])
        params = {f"p{j}": f"%{needle.lower()}%" for j, needle in enumerate(needles)}
        for (schema, table), columns in tables.items():
            sums, labels = [], []
            for column in columns:
                quoted = '"' + column.replace('"', '""') + '"'
                for j, needle in enumerate(needles):
                    sums.append(f"SUM(CASE WHEN lower(CAST({quoted} AS TEXT)) LIKE :p{j} THEN 1 ELSE 0 END) AS s{len(sums)}")
                    labels.append((needle, f"{schema}.{table}.{column}"))
            row = q(f'SELECT {", ".join(sums)} FROM "{schema}"."{table}"', **params)[0]
            for i, (needle, where) in enumerate(labels):
                if row[f"s{i}"]:
                    hits[needle].append(f"{where} ({row[f's{i}']} rows)")
    return hits, len(cols)


def _scan_files(root: Path, needles: list[str], exclude: list[Path]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {n: [] for n in needles}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(path.is_relative_to(e) for e in exclude):
            continue
        data = path.read_bytes()
        texts = [data]
        if path.suffix == ".gz":
            try:
                texts.append(gzip.decompress(data))
            except OSError:
                pass
        for needle in needles:
            for variant in {needle.encode(), needle.lower().encode(), needle.encode("utf-16-le")}:
                if any(variant in t or variant in t.lower() for t in texts):
                    hits[needle].append(str(path.relative_to(root)))
                    break
    return hits


@pytest.fixture
def duckdb_url(tmp_path) -> str:
    # The warehouse file lives in the data folder so that its bytes are scanned too.
    import os

    return f"duckdb:///{Path(os.environ['MOU_DATA_DIR']) / 'warehouse.duckdb'}"


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_personal_data_never_stored_logged_or_quarantined(backend, request, tmp_path, caplog, capfd):
    import os

    url = request.getfixturevalue("duckdb_url" if backend == "duckdb" else "postgres_url")
    data_dir = Path(os.environ["MOU_DATA_DIR"])
    landing = tmp_path / "landing"
    _deliveries(landing)
    # sanity: the personal values really are in the deliveries
    delivered = b"".join(
        gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes() for p in landing.rglob("*.*")
    )
    assert all(v.encode() in delivered for v in PLANTED)

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mou_etl")
    summaries = _run_nights(landing, url)
    out, err = capfd.readouterr()

    # the deliveries did what they were built to do (so every path was exercised)
    from landing_kit import read

    status = {(r["state_code"], str(r["report_date"]), r["feed"]): (r["status"], r["reason"]) for r in read(
        url, "SELECT state_code, report_date, feed, status, reason FROM mart.feed_status")}
    assert status[("UP", D1, "enrolment")] == ("loaded_with_quarantine", None)
    assert status[("UP", D1, "completion")] == ("loaded_with_quarantine", None)
    assert status[("UK", D1, "enrolment")] == ("loaded_with_quarantine", None)
    assert status[("UK", D1, "completion")] == ("loaded_with_quarantine", None)
    assert status[("UP", D2, "enrolment")] == ("rejected", "too_many_bad_rows")
    assert status[("UP", D2, "completion")] == ("rejected", "unreadable")
    assert status[("UK", D2, "enrolment")] == ("rejected", "unreadable")
    assert status[("UK", D2, "completion")] == ("rejected", "missing_columns")
    assert status[("UP", D3, "completion")] == ("rejected", "manifest_mismatch")
    assert status[("UK", D3, "enrolment")] == ("rejected", "unreadable")
    held = read(url, "SELECT user_id, report_date FROM core.completion WHERE user_id = 'heldUser'")
    assert [(r["user_id"], str(r["report_date"])) for r in held] == [("heldUser", D1)]
    assert read(url, "SELECT user_id FROM quarantine.held_completion") == [{"user_id": "kheld"}]
    validations = read(url, "SELECT result_json FROM ops.validation WHERE result_json IS NOT NULL")
    assert validations, "no Great Expectations result stored: nothing to scan"

    needles = PLANTED + [CANARY_STORED, CANARY_QUARANTINE]
    found, n_columns = _scan_warehouse(url, needles)
    # positive controls: the scanner finds what is meant to be there
    assert found[CANARY_STORED], "the scan did not find a stored Organization value"
    assert found[CANARY_QUARANTINE], "the scan did not find a quarantined row's raw Department"
    assert n_columns > 100
    leaks = {k: v for k, v in found.items() if k in PLANTED and v}
    assert not leaks, f"personal data in the warehouse ({backend}): {leaks}"

    for row in validations:
        assert not [v for v in PLANTED if v.lower() in row["result_json"].lower()]

    docs = data_dir / "quality" / "docs"
    assert list(docs.rglob("*.html")), f"no Data Docs pages under {docs}"
    file_hits = _scan_files(data_dir, needles, exclude=[data_dir / "archive"])
    if backend == "duckdb":  # positive control: the byte scan sees values stored in the warehouse file
        assert file_hits[CANARY_STORED], "the file scan did not find a stored value in warehouse.duckdb"
    leaks = {k: v for k, v in file_hits.items() if k in PLANTED and v}
    assert not leaks, f"personal data in files under the data folder (archive excluded): {leaks}"

    logs = caplog.text + "\n".join(
        str(r.__dict__.get("args", "")) + r.getMessage() for r in caplog.records
    )
    assert caplog.records, "no log record captured"
    printed = out + err
    assert "rows received" in printed or "REJECTED" in printed, "run_night printed nothing: the capture is wrong"
    leaks = {v: where for v in PLANTED for where, text in (("logs", logs), ("stdout/stderr", printed))
             if v.lower() in text.lower()}
    assert not leaks, f"personal data in {leaks}"
    assert summaries and all(s["rollup"] for s in summaries)

"""Manifest checks, landing-zone discovery, the archive and the state registry."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest

from mou_etl.archive import archive_file, object_path
from mou_etl.landing import LandingError, discover
from mou_etl.manifest import read_manifest
from mou_etl.states import RegistryError, State, load_states


def _manifest(folder: Path, doc) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(doc) if not isinstance(doc, str) else doc)


def _entry(feed="enrolment", name="enrolment.csv", rows=1, sha="a" * 64):
    return {"feed": feed, "name": name, "rows": rows, "sha256": sha}


def _doc(**kw):
    doc = {"state": "UP", "report_date": "2026-01-06", "mode": "delta", "files": [_entry()]}
    doc.update(kw)
    return doc


def test_good_manifest(tmp_path):
    _manifest(tmp_path, _doc(files=[_entry(), _entry("completion", "completion.jsonl.gz", 5, "B" * 64)]))
    m = read_manifest(tmp_path, "UP", "2026-01-06")
    assert m.problem is None and m.mode == "delta"
    assert m.entries["completion"].sha256 == "b" * 64 and m.entries["completion"].rows == 5
    assert all(e.problem is None for e in m.entries.values())


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ("{not json", "not valid JSON"),
        (_doc(state="UK"), "state is 'UK' but the folder is 'UP'"),
        (_doc(report_date="2026-01-05"), "report_date is '2026-01-05'"),
        (_doc(mode="full"), "mode must be"),
        (_doc(files=[]), "non-empty list"),
        (_doc(files=[_entry(feed="users")]), "unknown feed"),
    ],
)
def test_manifest_problems_reject_the_delivery(tmp_path, doc, fragment):
    _manifest(tmp_path, doc)
    m = read_manifest(tmp_path, "UP", "2026-01-06")
    assert m.problem and fragment in m.problem


@pytest.mark.parametrize(
    "entry, fragment",
    [
        (_entry(name="../x.csv"), "leaves the delivery folder"),
        (_entry(name="/etc/passwd.csv"), "leaves the delivery folder"),
        (_entry(name="sub\\x.csv"), "leaves the delivery folder"),
        (_entry(name="enrolment.xlsx"), "is not .csv"),
        (_entry(rows=-1), "rows must be"),
        (_entry(rows="12"), "rows must be"),
        (_entry(sha="xyz"), "64 hex digits"),
    ],
)
def test_entry_problems_reject_that_feed(tmp_path, entry, fragment):
    _manifest(tmp_path, _doc(files=[entry]))
    m = read_manifest(tmp_path, "UP", "2026-01-06")
    assert m.problem is None
    assert fragment in m.entries["enrolment"].problem


def test_feed_listed_twice(tmp_path):
    _manifest(tmp_path, _doc(files=[_entry(), _entry(name="other.csv")]))
    m = read_manifest(tmp_path, "UP", "2026-01-06")
    assert "listed twice" in m.entries["enrolment"].problem


def test_discover_waits_for_manifest_and_orders_by_date(tmp_path):
    state = State(code="UP", name="Uttar Pradesh")
    for day in ("2026-01-07", "2026-01-05", "2026-01-06", "2026-01-09"):
        _manifest(tmp_path / "UP" / day, _doc(report_date=day))
    (tmp_path / "UP" / "2026-01-08").mkdir()            # still uploading: no manifest
    (tmp_path / "UP" / "latest").mkdir()                # not a date
    found, notes = discover(state, tmp_path, date(2026, 1, 8))
    assert [d.report_date for d in found] == ["2026-01-05", "2026-01-06", "2026-01-07"]
    assert any("2026-01-08" in n and "waiting" in n for n in notes)
    assert any("latest" in n and "not a YYYY-MM-DD" in n for n in notes)


def test_discover_needs_the_landing_zone(tmp_path):
    with pytest.raises(LandingError):
        discover(State(code="UP", name="x"), tmp_path / "absent", date(2026, 1, 1))


def test_archive_is_content_addressed(tmp_path):
    src = tmp_path / "f.csv"
    src.write_bytes(b"a,b\n1,2\n")
    a1 = archive_file(src, tmp_path / "arch")
    a2 = archive_file(src, tmp_path / "arch")
    assert a1.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest() == a2.sha256
    assert object_path(tmp_path / "arch", a1.sha256).read_bytes() == b"a,b\n1,2\n"


def test_registry_from_config(tmp_path):
    path = tmp_path / "states.csv"
    path.write_text("state_code,state_name,bad_row_threshold,window_opens_ist,cutoff_ist,landing\n"
                    "UP,Uttar Pradesh,0.2,19:00,23:00,\nLA,Ladakh,,,,/srv/ladakh\n")
    states = load_states(path)
    assert [s.code for s in states] == ["UP", "LA"]
    assert states[0].bad_row_threshold == 0.2 and str(states[0].cutoff_ist) == "23:00:00"
    assert states[1].bad_row_threshold == 0.10 and states[1].landing_path(tmp_path) == Path("/srv/ladakh")


def test_project_registry_is_the_28_mou_states():
    contract = Path(__file__).resolve().parents[3] / "shared" / "contract" / "states.csv"
    states = load_states()
    assert len(states) == 28
    if contract.exists():
        codes = [line.split(",")[0] for line in contract.read_text().splitlines()[1:] if line.strip()]
        assert [s.code for s in states] == codes


@pytest.mark.parametrize("body", ["UP,A,2,,,\n", "U1,A,,,,\n", "UP,A,,,,\nUP,B,,,,\n", "UP,A,,25:00,,\n"])
def test_registry_errors(tmp_path, body):
    path = tmp_path / "states.csv"
    path.write_text("state_code,state_name,bad_row_threshold,window_opens_ist,cutoff_ist,landing\n" + body)
    with pytest.raises(RegistryError):
        load_states(path)

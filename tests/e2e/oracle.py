"""An independent oracle of the feed and warehouse contracts.

A from-scratch, deliberately simple re-implementation of
``shared/contract/feeds.md`` and ``shared/contract/warehouse.md``: it reads the
raw landing zone with ``csv`` / ``json`` / ``gzip``, keeps everything in plain
dicts, and computes what the ``mart`` tables must contain. It shares no code
with ``mou_etl`` (it reads the state registry CSV itself), so a bug in the
pipeline is not silently repeated here. Readable over fast.

Use::

    oracle = Oracle.from_registry()             # include/config/states.csv
    oracle.run_night(landing, date(2026, 1, 1))  # reads the landing zone as it is now
    oracle.run_night(landing, date(2026, 1, 2))
    marts = oracle.marts()                       # {"state_summary": [row, ...], ...}

or ``expected_marts(landing, nights)`` for a landing zone that does not change
between nights. ``run_night`` reads the landing zone at call time, so a test can
add late deliveries or re-deliveries between nights. After every night the marts
of every night run so far are recomputed from everything accepted so far
("Mart rows always reflect every delivery accepted so far").

Decisions where the contract is silent
--------------------------------------
Tags: [=README] the pipeline's README ("Decisions where the contract is
silent") decides the same; [README] taken over from it (the oracle first
decided otherwise); [own] the README says nothing, or differs (see the notes).

Reading
 R1. [=README] Folders not named like a date (YYYY-MM-DD) and state folders not
     in the registry are ignored. A folder without manifest.json is not read
     (its feeds are ``missing``).
 R2. [own] "New or changed": a folder is (re)processed when the set of
     (file name, sha256) of the files in it differs from when it was last
     processed. An unchanged folder - accepted or rejected - is not processed
     again, so re-running a night changes nothing.
 R3. [own] Dates: day and month may have 1 or 2 digits; the optional time is
     separated by spaces or ``T``, is ``H:MM`` / ``HH:MM[:SS]`` with optional
     AM/PM, and its value is not checked. Anything else (e.g. a time zone
     suffix) is ``bad_date``; so is an impossible date (31/02/2026).
 R4. [own] Duration: ``H+:MM:SS``, minutes and seconds 00..59; more than
     1000:00:00 is ``bad_value`` (exactly 1000 h is allowed).
 R5. [own] Status: trimmed, case-insensitive exact ``not started``,
     ``in progress``, ``completed``, ``0``, ``1``, ``2``, else ``bad_value``.
     Progress / rating must be plain decimal numbers (no ``%``).
 R6. [README] ``Certificate_Generated``: yes/y/true/1 or no/n/false/0, any case;
     empty is No; anything else is ``bad_value``.
 R7. CSV: a blank line is skipped [=README]; a record with another number of
     fields than the header, a broken quote, or a 0-byte file is
     ``unreadable`` [=README]; two header columns that normalise to the same
     name make the file ``unreadable`` [README]. JSONL: blank lines skipped; a
     line that is not a JSON object is ``unreadable``; JSON null is "no value";
     numbers become their Python ``str``; spellings merged across lines
     [=README]. A file named other than .csv/.jsonl(.gz) is ``unreadable``.
 R8. [=README] A header-only CSV or an empty JSONL file has zero rows. JSONL
     columns are the union of the keys of all lines; a required column is
     missing when no line has it. ``Completed_On`` is not a required column
     (without it every Completed row is ``completed_without_date``).
 R9. [own] All text is NFC-normalised and trimmed; ``User_ID``, ``Content_ID``
     and ``Batch_Id`` keep their case. Department: inner whitespace runs
     (Python ``\\s``, newlines included) become one space.
Feed rules
 F1. [own] Order per feed: named file absent -> manifest_mismatch; sha256
     differs -> manifest_mismatch; unparseable -> unreadable; row count differs
     -> manifest_mismatch; missing_columns; too_many_bad_rows; volume_drop.
     [=README] A manifest that is not JSON, names another state/date, or has a
     mode other than delta/snapshot rejects every feed it names (both when it
     names none) as manifest_mismatch.
 F2. [=README] too_many_bad_rows: rows that would be quarantined (held
     unknown_user rows excluded, they only wait for a possibly late
     enrolment; identical duplicates not counted either) > threshold x
     rows_received. The enrolment feed of a delivery is processed before its
     completion feed, so a rejected enrolment feed makes its users unknown.
 F3. [=README] volume_drop compares rows_received with that of the accepted
     snapshot of the same state and feed with the latest earlier report date;
     strictly fewer than half is rejected.
 F4. [=README] A rejected feed loads and quarantines nothing; feed_status has
     rows_loaded = rows_quarantined = rows_duplicate = 0. rows_received is the
     file's data rows whenever it is present and parseable - also for
     manifest_mismatch and missing_columns ("null when missing or unreadable").
 F5. [own] A ``missing`` feed has rows_received null (contract) and 0 in the
     other three counts (nothing was loaded, quarantined or collapsed). The
     pipeline currently writes null there: set MISSING_FEED_COUNT = None to
     follow it.
 F6. [=README] An accepted re-delivery of a date replaces that date's earlier
     version of the feed whole (rows, quarantine, held rows); a rejected one
     keeps the earlier version (and its quarantine); feed_status shows the
     latest attempt. A re-delivery that no longer names a feed leaves that
     feed's earlier outcome as it was.
Row rules
 Q1. [README] Only rows that pass the value rules (missing_required ..
     completed_before_enrolled) take part in the duplicate checks. Among them,
     identical rows are kept once (the others counted in rows_duplicate);
     rows are identical when the normalised non-personal contract columns are
     equal (dates as dates, status mapped, duration in seconds, numbers as
     numbers, certificate as boolean); personal and unknown columns ignored.
 Q2. [README] conflicting_duplicate: the remaining distinct valid rows sharing
     a key (User_ID; User_ID + Content_ID + Batch_Id) are all quarantined. A
     valid row is not in conflict with an invalid row of the same key.
 Q3. [=README] unknown_user on arrival: the user is not in the state's current
     enrolment records as of the delivery's report date (this delivery's
     accepted enrolment included). Held rows are retried at the end of every
     night of the state against the current enrolment as of the night's run
     date; a loaded row keeps its original report date as its version date.
 Q4. [own] future_date / bad_date apply to User_Registration_Date, Enrolled_On
     and a present Completed_On; completed_before_enrolled applies whenever
     both dates are present, whatever the status.
Versions and marts
 V1. [own; the pipeline differs] A key present in a snapshot file only as a
     quarantined (or held) row is NOT absent: the snapshot does not remove
     it, its previous version stays current (until a held row loads and
     becomes the version). Contract: "a key that is absent has been removed";
     "removed if a snapshot ... lacked it". Set SNAPSHOT_KEEPS_QUARANTINED_KEYS
     = False to treat such keys as removed.
 V2. [=README] feed_status counts a held unknown_user row as quarantined until
     it loads and as loaded from then on, so the status does not depend on the
     order deliveries arrive in (FEED_STATUS_AS_PROCESSED = False). True gives
     the counts as at processing. ``loaded`` =
     accepted with zero rows quarantined; duplicates alone do not make it
     loaded_with_quarantine.
 V3. [own] quarantine_summary has a row for every processed delivery date,
     whether or not a rollup was run for that date (the pipeline writes only
     rolled-up dates; the same when the nights are consecutive).
 V4. [own; the pipeline differs] National key dedup is over the rows counted
     by some state: the latest version date wins, then the lower state code.
     A person's distinct completed courses are taken from these deduplicated
     rows, so the person figures agree with course_completions (the pipeline
     pools every state's counted rows without the key dedup). Set
     NATIONAL_PERSON_COURSES_FROM_DEDUPED_KEYS = False to follow it.
 V5. [=README] National registrations_ytd: a person registered in several
     states uses the enrolment record with the latest version date, then the
     lower state code.
 V6. [=README] learning_hours summed exactly (seconds) and rounded half up to
     2 decimals; shares are exact fractions (the pipeline rounds to 6
     decimals, within the test's 1e-6 tolerance).
 V7. [own] last_delivery_date: the latest delivery date <= report_date for
     which some feed currently has accepted data.
 S1. [contract] "A state with no accepted delivery yet has zeros and null
     shares": no accepted delivery dated <= the row's date (last_delivery_date
     null) -> both shares null even when the national figure is not 0. A state
     that has delivered gets 0.0 when its own figure is 0.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import unicodedata
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_CSV = REPO_ROOT / "include" / "config" / "states.csv"

FEEDS = ("enrolment", "completion")
DEFAULT_THRESHOLD = Fraction(1, 10)

# Column names after header normalisation.
REQUIRED = {
    "enrolment": ("user_id", "department", "user_registration_date"),
    "completion": ("user_id", "content_id", "content_name", "content_duration", "enrolled_on", "status"),
}
# Non-personal contract columns: the ones a row's identity is made of (Q1).
KEPT = {
    "enrolment": (
        "user_id", "department", "user_registration_date", "organization", "designation", "group", "mdoid",
    ),
    "completion": (
        "user_id", "content_id", "batch_id", "content_name", "content_provider", "content_type",
        "content_duration", "enrolled_on", "status", "content_progress_percentage", "completed_on",
        "certificate_generated", "certificate_id", "user_rating",
    ),
}
DATE_COLUMNS = {"user_registration_date", "enrolled_on", "completed_on"}

# Certificate_Generated values (R6, as the pipeline's README decides); anything else is bad_value.
CERTIFICATE = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}

NOT_STARTED, IN_PROGRESS, COMPLETED = 0, 1, 2
STATUS = {
    "not started": NOT_STARTED, "in progress": IN_PROGRESS, "completed": COMPLETED,
    "0": NOT_STARTED, "1": IN_PROGRESS, "2": COMPLETED,
}

# Switches for the decisions the pipeline may take otherwise (see the list above).
FEED_STATUS_AS_PROCESSED = False  # V2 (README: released held rows count as loaded): feed_status counts as processed (True) or as of now (False)
MISSING_FEED_COUNT = 0  # F5: rows_loaded/_quarantined/_duplicate of a missing feed (0 or None)
SNAPSHOT_KEEPS_QUARANTINED_KEYS = True  # V1: a key present only as a quarantined row is not removed
NATIONAL_PERSON_COURSES_FROM_DEDUPED_KEYS = True  # V4

MART_TABLES = ("state_summary", "national_summary", "department_summary", "feed_status", "quarantine_summary")
# Grain of each mart table (the columns that identify a row).
MART_KEYS = {
    "state_summary": ("report_date", "state_code"),
    "national_summary": ("report_date",),
    "department_summary": ("report_date", "state_code", "department"),
    "feed_status": ("report_date", "state_code", "feed"),
    "quarantine_summary": ("report_date", "state_code", "feed", "reason"),
}


# --------------------------------------------------------------------------- values


def clean(value) -> str | None:
    """NFC, trimmed; empty -> None ("no value")."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def normalise_header(name: str) -> str:
    """Case-insensitive; a space, '_' or '-' are the same."""
    return re.sub(r"[ _-]", "_", unicodedata.normalize("NFC", name).strip().lower())


def normalise_department(value) -> str | None:
    text = clean(value)
    return re.sub(r"\s+", " ", text) if text else None


_DATE = re.compile(
    r"^(?:(?P<y1>\d{4})-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})"
    r"|(?P<d2>\d{1,2})-(?P<m2>\d{1,2})-(?P<y2>\d{4})"
    r"|(?P<d3>\d{1,2})/(?P<m3>\d{1,2})/(?P<y3>\d{4}))"
    r"(?:(?:\s+|T)\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp][Mm])?)?$"
)


def parse_date(text: str) -> date | None:
    """YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY, optional time ignored; None if it does not parse."""
    m = _DATE.match(text)
    if not m:
        return None
    g = m.groupdict()
    for i in "123":
        if g["y" + i]:
            try:
                return date(int(g["y" + i]), int(g["m" + i]), int(g["d" + i]))
            except ValueError:
                return None
    return None


_DURATION = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")


def parse_duration_seconds(text: str) -> int | None:
    m = _DURATION.match(text)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def parse_number(text: str) -> Fraction | None:
    return Fraction(text) if _NUMBER.match(text) else None


def round2(x: Fraction) -> float:
    d = Decimal(x.numerator) / Decimal(x.denominator)
    return float(d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- files


class Unreadable(Exception):
    pass


def read_feed_file(path: Path) -> tuple[set[str] | None, list[dict[str, str | None]]]:
    """(normalised column names, records as {normalised column: raw text or None}).

    The columns are None for a JSONL file without records (unknown, R8)."""
    name = path.name.lower()
    data = path.read_bytes()
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise Unreadable(f"bad gzip: {exc}") from exc
        name = name[:-3]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"bad UTF-8: {exc}") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    if name.endswith(".csv"):
        return _read_csv(text)
    if name.endswith(".jsonl"):
        return _read_jsonl(text)
    raise Unreadable(f"unknown file type {path.name}")


def _read_csv(text: str):
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise Unreadable(f"bad CSV: {exc}") from exc
    if not rows:
        raise Unreadable("empty file, no header")
    header = [normalise_header(h) for h in rows[0]]
    if len(set(header)) != len(header):
        raise Unreadable("two header columns mean the same")
    records = []
    for row in rows[1:]:
        if row == []:  # a blank line
            continue
        if len(row) != len(header):
            raise Unreadable("ragged CSV")
        records.append(dict(zip(header, row)))
    return set(header), records


def _read_jsonl(text: str):
    columns: set[str] = set()
    records = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise Unreadable(f"bad JSON line: {exc}") from exc
        if not isinstance(obj, dict):
            raise Unreadable("JSON line is not an object")
        rec: dict[str, str | None] = {}
        for key, value in obj.items():
            col = normalise_header(key)
            if col in rec:
                continue
            rec[col] = None if value is None else (value if isinstance(value, str) else str(value))
        columns.update(rec)
        records.append(rec)
    return (columns if records else None), records


def folder_fingerprint(folder: Path) -> tuple:
    return tuple(
        sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in folder.iterdir() if p.is_file())
    )


# --------------------------------------------------------------------------- rows


def row_identity(feed: str, rec: dict) -> tuple:
    """What two valid rows must share to be 'identical' (Q1): the normalised non-personal values."""
    out = []
    for col in KEPT[feed]:
        v = clean(rec.get(col))
        if v is not None:
            if col in DATE_COLUMNS:
                v = parse_date(v)
            elif col == "status":
                v = STATUS[v.lower()]
            elif col == "department":
                v = normalise_department(v)
            elif col == "content_duration":
                v = parse_duration_seconds(v)
            elif col in ("content_progress_percentage", "user_rating"):
                v = parse_number(v)
            elif col == "certificate_generated":
                v = CERTIFICATE[v.lower()]
        out.append(v)
    return tuple(out)


def row_key(feed: str, rec: dict):
    user = clean(rec.get("user_id"))
    if feed == "enrolment":
        return user
    content = clean(rec.get("content_id"))
    if user is None or content is None:
        return None
    return (user, content, clean(rec.get("batch_id")) or "")


def check_enrolment(rec: dict, report_date: date):
    """(code or None, normalised record)."""
    user, dept, reg = clean(rec.get("user_id")), normalise_department(rec.get("department")), clean(
        rec.get("user_registration_date")
    )
    if user is None or dept is None or reg is None:
        return "missing_required", None
    reg_date = parse_date(reg)
    if reg_date is None:
        return "bad_date", None
    if reg_date > report_date:
        return "future_date", None
    return None, {"user_id": user, "department": dept, "registration_date": reg_date}


def check_completion(rec: dict, report_date: date):
    """(code or None, normalised record); unknown_user and duplicates are checked elsewhere."""
    v = {col: clean(rec.get(col)) for col in KEPT["completion"]}
    if any(v[col] is None for col in REQUIRED["completion"]):
        return "missing_required", None
    enrolled = parse_date(v["enrolled_on"])
    completed = parse_date(v["completed_on"]) if v["completed_on"] is not None else None
    if enrolled is None or (v["completed_on"] is not None and completed is None):
        return "bad_date", None
    if enrolled > report_date or (completed is not None and completed > report_date):
        return "future_date", None
    status = STATUS.get(v["status"].lower())
    seconds = parse_duration_seconds(v["content_duration"])
    progress = rating = None
    if v["content_progress_percentage"] is not None:
        progress = parse_number(v["content_progress_percentage"])
    if v["user_rating"] is not None:
        rating = parse_number(v["user_rating"])
    certificate = CERTIFICATE.get((v["certificate_generated"] or "no").lower())
    if (
        status is None
        or certificate is None
        or seconds is None
        or seconds > 1000 * 3600
        or (v["content_progress_percentage"] is not None and (progress is None or not 0 <= progress <= 100))
        or (v["user_rating"] is not None and (rating is None or not 0 <= rating <= 5))
    ):
        return "bad_value", None
    if status == COMPLETED and completed is None:
        return "completed_without_date", None
    if completed is not None and completed < enrolled:
        return "completed_before_enrolled", None
    return None, {
        "user_id": v["user_id"],
        "content_id": v["content_id"],
        "batch_id": v["batch_id"] or "",
        "status": status,
        "hours": Fraction(seconds, 3600),
        "completed_on": completed,
        "certificate": certificate,
    }


# --------------------------------------------------------------------------- state


@dataclass
class AcceptedFeed:
    """The accepted (current) version of one feed of one delivery."""

    mode: str
    rows_received: int
    rows_duplicate: int
    loaded: dict  # key -> normalised record
    present_keys: set  # every key in the file, quarantined rows included (V1)
    quarantined: list  # codes of rows that stay in quarantine (held rows are in `held`)
    held: dict = field(default_factory=dict)  # key -> record, unknown_user rows still held

    def quarantine_counts(self) -> Counter:
        counts = Counter(self.quarantined)
        if self.held:
            counts["unknown_user"] += len(self.held)
        return counts


@dataclass
class Attempt:
    """The latest processing of one feed of one delivery."""

    accepted: bool
    reason: str | None = None
    rows_received: int | None = None
    rows_quarantined: int = 0  # at processing, held unknown_user rows included


@dataclass
class StateConfig:
    code: str
    name: str
    threshold: Fraction = DEFAULT_THRESHOLD


def load_registry(path: Path | str = REGISTRY_CSV) -> list[StateConfig]:
    out = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            threshold = (row.get("bad_row_threshold") or "").strip()
            out.append(
                StateConfig(
                    code=row["state_code"].strip().upper(),
                    name=row["state_name"].strip(),
                    threshold=Fraction(threshold) if threshold else DEFAULT_THRESHOLD,
                )
            )
    return out


class Oracle:
    def __init__(self, states: list[StateConfig], **switches):
        self.states = {s.code: s for s in states}
        self.feed_status_as_processed = switches.pop("feed_status_as_processed", FEED_STATUS_AS_PROCESSED)
        self.missing_feed_count = switches.pop("missing_feed_count", MISSING_FEED_COUNT)
        self.snapshot_keeps_quarantined_keys = switches.pop(
            "snapshot_keeps_quarantined_keys", SNAPSHOT_KEEPS_QUARANTINED_KEYS
        )
        self.national_person_courses_from_deduped_keys = switches.pop(
            "national_person_courses_from_deduped_keys", NATIONAL_PERSON_COURSES_FROM_DEDUPED_KEYS
        )
        if switches:
            raise TypeError(f"unknown switches: {sorted(switches)}")
        self.nights: set[date] = set()
        self.fingerprints: dict[tuple[str, date], tuple] = {}
        self.attempts: dict[tuple[str, date, str], Attempt] = {}
        self.accepted: dict[tuple[str, str], dict[date, AcceptedFeed]] = defaultdict(dict)

    @classmethod
    def from_registry(cls, path: Path | str = REGISTRY_CSV) -> "Oracle":
        return cls(load_registry(path))

    # ------------------------------------------------------------------ nights

    def run_night(self, landing: Path | str, run_date: date) -> None:
        landing = Path(landing)
        for code in self.states:
            for report_date, folder in self.discover(landing, code, run_date):
                fp = folder_fingerprint(folder)
                if self.fingerprints.get((code, report_date)) == fp:
                    continue
                self.process_delivery(code, report_date, folder)
                self.fingerprints[(code, report_date)] = fp
            self.retry_held(code, run_date)
        self.nights.add(run_date)

    @staticmethod
    def discover(landing: Path, code: str, run_date: date) -> list[tuple[date, Path]]:
        base = landing / code
        found = []
        if not base.is_dir():
            return found
        for folder in base.iterdir():
            if not folder.is_dir() or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.name):
                continue
            try:
                report_date = date.fromisoformat(folder.name)
            except ValueError:
                continue
            if report_date > run_date:
                continue
            if (folder / "manifest.json").is_file():
                found.append((report_date, folder))
        return sorted(found)

    def process_delivery(self, code: str, report_date: date, folder: Path) -> None:
        try:
            manifest = json.loads((folder / "manifest.json").read_bytes().decode("utf-8-sig"))
            if not isinstance(manifest, dict):
                raise ValueError("not an object")
        except ValueError:
            for feed in FEEDS:
                self.attempts[(code, report_date, feed)] = Attempt(False, "manifest_mismatch")
            return
        entries: dict[str, dict] = {}
        for entry in manifest.get("files") or []:
            if isinstance(entry, dict) and entry.get("feed") in FEEDS:
                entries.setdefault(entry["feed"], entry)
        if (
            str(manifest.get("state", "")).strip().upper() != code
            or str(manifest.get("report_date", "")).strip() != report_date.isoformat()
            or manifest.get("mode") not in ("delta", "snapshot")
        ):
            for feed in entries or FEEDS:
                self.attempts[(code, report_date, feed)] = Attempt(False, "manifest_mismatch")
            return
        for feed in FEEDS:  # enrolment first: completion rows are checked against it
            if feed in entries:
                self.process_feed(code, report_date, feed, manifest["mode"], folder, entries[feed])

    def process_feed(self, code, report_date, feed, mode, folder: Path, entry: dict) -> None:
        def reject(reason, rows=None):
            self.attempts[(code, report_date, feed)] = Attempt(False, reason, rows)

        path = folder / str(entry.get("name", ""))
        if not entry.get("name") or not path.is_file():
            return reject("manifest_mismatch")
        sha_ok = hashlib.sha256(path.read_bytes()).hexdigest() == str(entry.get("sha256", "")).strip().lower()
        try:
            columns, records = read_feed_file(path)
        except Unreadable:
            return reject("unreadable" if sha_ok else "manifest_mismatch")
        received = len(records)
        try:
            rows_ok = int(entry.get("rows")) == received
        except (TypeError, ValueError):
            rows_ok = False
        if not sha_ok or not rows_ok:
            return reject("manifest_mismatch", received)
        if columns is not None and any(col not in columns for col in REQUIRED[feed]):
            return reject("missing_columns", received)

        # Row rules in the table's order. Only rows that pass the value rules take part in the
        # duplicate checks (Q1, Q2): identical ones collapse to one, conflicting ones are all quarantined.
        check = check_enrolment if feed == "enrolment" else check_completion
        checked = []  # [code or None, key, normalised record]
        distinct: dict[tuple, list] = {}
        duplicates = 0
        for rec in records:
            code_, norm = check(rec, report_date)
            row = [code_, row_key(feed, rec), norm]
            if code_ is None:
                ident = row_identity(feed, rec)
                if ident in distinct:
                    duplicates += 1
                    continue
                distinct[ident] = row
            checked.append(row)
        per_key = Counter(row[1] for row in distinct.values())
        for row in distinct.values():
            if per_key[row[1]] > 1:
                row[0] = "conflicting_duplicate"
        if feed == "completion":
            registered = self.current(code, "enrolment", report_date)
            for row in checked:
                if row[0] is None and row[2]["user_id"] not in registered:
                    row[0] = "unknown_user"
        bad = sum(1 for row in checked if row[0] not in (None, "unknown_user"))
        if bad > self.states[code].threshold * received:
            return reject("too_many_bad_rows", received)
        if mode == "snapshot":
            earlier = [
                d for d, acc in self.accepted[(code, feed)].items() if d < report_date and acc.mode == "snapshot"
            ]
            if earlier:
                previous = self.accepted[(code, feed)][max(earlier)]
                if 2 * received < previous.rows_received:
                    return reject("volume_drop", received)

        self.accepted[(code, feed)][report_date] = AcceptedFeed(
            mode=mode,
            rows_received=received,
            rows_duplicate=duplicates,
            loaded={key: norm for code_, key, norm in checked if code_ is None},
            present_keys={key for _, key, _ in checked if key is not None},
            quarantined=[code_ for code_, _, _ in checked if code_ not in (None, "unknown_user")],
            held={key: norm for code_, key, norm in checked if code_ == "unknown_user"},
        )
        self.attempts[(code, report_date, feed)] = Attempt(
            True, None, received, sum(1 for row in checked if row[0] is not None)
        )

    def retry_held(self, code: str, run_date: date) -> None:
        registered = self.current(code, "enrolment", run_date)
        for acc in self.accepted[(code, "completion")].values():
            for key in [k for k, rec in acc.held.items() if rec["user_id"] in registered]:
                acc.loaded[key] = acc.held.pop(key)

    # ------------------------------------------------------------------ records

    def current(self, code: str, feed: str, as_of: date) -> dict:
        """The state's current records as of the date: key -> (record, version date)."""
        records: dict = {}
        for d in sorted(self.accepted[(code, feed)]):
            if d > as_of:
                break
            acc = self.accepted[(code, feed)][d]
            if acc.mode == "snapshot":
                present = acc.present_keys if self.snapshot_keeps_quarantined_keys else acc.loaded
                for key in [k for k in records if k not in present]:
                    del records[key]
            for key, rec in acc.loaded.items():
                records[key] = (rec, d)
        return records

    def last_delivery_date(self, code: str, as_of: date) -> date | None:
        dates = [d for feed in FEEDS for d in self.accepted[(code, feed)] if d <= as_of]
        return max(dates) if dates else None

    # ------------------------------------------------------------------ marts

    @staticmethod
    def figures(users: dict, rows: list, year: int, person_rows: list | None = None) -> dict:
        """users: user_id -> enrolment record; rows: counted completion records of those users;
        person_rows: the rows the users' distinct completed courses come from (default: rows)."""
        courses: dict[str, set] = defaultdict(set)
        for r in rows if person_rows is None else person_rows:
            if r["status"] == COMPLETED:
                courses[r["user_id"]].add(r["content_id"])
        hours = Fraction(0)
        completions = certificates = completions_ytd = 0
        for r in rows:
            if r["status"] == COMPLETED:
                completions += 1
                hours += r["hours"]
                certificates += r["certificate"]
                completions_ytd += r["completed_on"].year == year
        registered = len(users)
        with_completion = sum(1 for u in users if courses.get(u))
        three_plus = sum(1 for u in users if len(courses.get(u, ())) >= 3)
        return {
            "registered_users": registered,
            "users_with_completion": with_completion,
            "users_with_3plus_completions": three_plus,
            "users_with_fewer_than_3_completions": registered - three_plus,
            "users_without_completion": registered - with_completion,
            "course_enrolments": len(rows),
            "course_completions": completions,
            "learning_hours": round2(hours),
            "certificates_issued": certificates,
            "registrations_ytd": sum(1 for u in users.values() if u["registration_date"].year == year),
            "completions_ytd": completions_ytd,
        }

    def marts(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {t: [] for t in MART_TABLES}
        for day in sorted(self.nights):
            self._marts_for(day, out)
        for (code, feed), by_date in sorted(self.accepted.items()):
            for d, acc in sorted(by_date.items()):
                for reason, n in sorted(acc.quarantine_counts().items()):
                    if n > 0:
                        out["quarantine_summary"].append(
                            {"report_date": d, "state_code": code, "feed": feed, "reason": reason, "rows": n}
                        )
        return out

    def _marts_for(self, day: date, out: dict) -> None:
        state_rows = []
        persons: dict[str, tuple] = {}  # user -> (sort key, record)
        national_rows: dict[tuple, tuple] = {}  # key -> (sort key, record)
        all_counted: list = []  # every state's counted rows (for V4 = False)
        for code, cfg in self.states.items():
            enrolments = self.current(code, "enrolment", day)
            users = {u: rec for u, (rec, _) in enrolments.items()}
            counted = {k: (rec, d) for k, (rec, d) in self.current(code, "completion", day).items() if k[0] in users}
            rows = [rec for rec, _ in counted.values()]
            all_counted.extend(rows)
            last = self.last_delivery_date(code, day)
            state_rows.append(
                {
                    "report_date": day,
                    "state_code": code,
                    "state_name": cfg.name,
                    "last_delivery_date": last,
                    "is_stale": last is None or last < day,
                    **self.figures(users, rows, day.year),
                }
            )
            # Departments.
            by_dept: dict[str, dict] = defaultdict(dict)
            rows_by_dept: dict[str, list] = defaultdict(list)
            for u, rec in users.items():
                by_dept[rec["department"]][u] = rec
            for r in rows:
                rows_by_dept[users[r["user_id"]]["department"]].append(r)
            for dept, dept_users in sorted(by_dept.items()):
                f = self.figures(dept_users, rows_by_dept[dept], day.year)
                out["department_summary"].append(
                    {
                        "report_date": day,
                        "state_code": code,
                        "department": dept,
                        **{
                            k: f[k]
                            for k in (
                                "registered_users", "users_with_completion", "users_with_3plus_completions",
                                "users_with_fewer_than_3_completions", "users_without_completion",
                                "course_completions", "learning_hours", "certificates_issued",
                            )
                        },
                    }
                )
            # Candidates for the national dedup: later version date wins, then lower state code.
            for u, (rec, d) in enrolments.items():
                rank = (d, _invert(code))
                if u not in persons or rank > persons[u][0]:
                    persons[u] = (rank, rec)
            for k, (rec, d) in counted.items():
                rank = (d, _invert(code))
                if k not in national_rows or rank > national_rows[k][0]:
                    national_rows[k] = (rank, rec)
        nat = self.figures(
            {u: rec for u, (_, rec) in persons.items()},
            [rec for _, rec in national_rows.values()],
            day.year,
            person_rows=None if self.national_person_courses_from_deduped_keys else all_counted,
        )
        for row in state_rows:
            delivered = row["last_delivery_date"] is not None  # "no accepted delivery yet ... null shares" (S1)
            row["share_of_national_registrations_ytd"] = (
                _share(row["registrations_ytd"], nat["registrations_ytd"]) if delivered else None
            )
            row["share_of_national_completions_ytd"] = (
                _share(row["completions_ytd"], nat["completions_ytd"]) if delivered else None
            )
        out["state_summary"].extend(state_rows)
        reporting = sum(1 for row in state_rows if not row["is_stale"])
        national = {
            "report_date": day,
            "states_total": len(self.states),
            "states_reporting": reporting,
            "states_stale": len(self.states) - reporting,
        }
        for k in (
            "registered_users", "users_with_completion", "users_with_3plus_completions", "users_without_completion",
            "course_enrolments", "course_completions", "learning_hours", "certificates_issued",
            "registrations_ytd", "completions_ytd",
        ):
            national[k] = nat[k]
        out["national_summary"].append(national)
        # Feed status.
        for code in self.states:
            for feed in FEEDS:
                att = self.attempts.get((code, day, feed))
                row = {"report_date": day, "state_code": code, "feed": feed}
                if att is None:
                    n = self.missing_feed_count
                    row.update(status="missing", reason=None, rows_received=None, rows_loaded=n,
                               rows_quarantined=n, rows_duplicate=n)
                elif not att.accepted:
                    row.update(status="rejected", reason=att.reason, rows_received=att.rows_received,
                               rows_loaded=0, rows_quarantined=0, rows_duplicate=0)
                else:
                    acc = self.accepted[(code, feed)][day]
                    if self.feed_status_as_processed:
                        q = att.rows_quarantined
                    else:
                        q = sum(acc.quarantine_counts().values())
                    row.update(
                        status="loaded" if q == 0 else "loaded_with_quarantine",
                        reason=None,
                        rows_received=acc.rows_received,
                        rows_loaded=acc.rows_received - q - acc.rows_duplicate,
                        rows_quarantined=q,
                        rows_duplicate=acc.rows_duplicate,
                    )
                out["feed_status"].append(row)


def _invert(code: str) -> tuple:
    """Sort key under which a lower state code ranks higher."""
    return tuple(-ord(c) for c in code) + (1,)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else float(Fraction(part, whole))


def expected_marts(landing: Path | str, nights, states: list[StateConfig] | None = None) -> dict[str, list[dict]]:
    """Marts after running the given nights in order over a landing zone that does not change."""
    oracle = Oracle(states if states is not None else load_registry())
    for night in nights:
        oracle.run_night(landing, night if isinstance(night, date) else date.fromisoformat(night))
    return oracle.marts()


def date_range(start: date | str, days: int) -> list[date]:
    start = start if isinstance(start, date) else date.fromisoformat(start)
    return [start + timedelta(days=i) for i in range(days)]

"""Staging a feed file: read it, normalise every value, apply the row rules.

All the work runs inside DuckDB, set-based and spilling to disk past its memory
limit, so a 72-lakh-row file never sits in Python memory. The file is read once
into ``raw_<feed>`` (text columns by canonical name; personal-data columns are
never selected), then one pass normalises and checks every row. The outputs,
temporary tables of the same DuckDB connection, are:

    stg_<feed>      rows to load (one per key), columns of core.<feed>
    stgq_<feed>     quarantined rows: line, reason, detail, raw values (no personal data)
    stgh_completion held unknown_user rows, normalised, to load once the user registers

Feed-level problems raise ``FeedRejected`` with the rule code and a clear detail.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .feeds import BY_NAME, PERSONAL, Feed, canonical
from .rules import CONFLICTING_DUPLICATE, UNKNOWN_USER, rules_for
from .sql import literal

log = logging.getLogger(__name__)

MAX_FIELD_BYTES = 32 * 1024 * 1024


class FeedRejected(Exception):
    """A feed rule rejects the whole feed."""

    def __init__(self, code: str, detail: str, rows_received: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.rows_received = rows_received


@dataclass
class StageResult:
    rows_received: int
    rows_loaded: int
    rows_duplicate: int
    quarantined: dict[str, int] = field(default_factory=dict)
    validation: object | None = None   # quality.Validation when a validator ran

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())


_WS_CHARS = ("chr(32)", "chr(9)", "chr(10)", "chr(13)", "chr(160)")
_WS = " || ".join(_WS_CHARS)
# A value starts or ends with one of those five characters: byte-wise prefix and
# suffix tests (about 5x cheaper than an anchored regular expression per value).
_WS_EDGE = " OR ".join([f"prefix(s, {c})" for c in _WS_CHARS] + [f"suffix(s, {c})" for c in _WS_CHARS])
_TIME = r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?)?"

MACROS = [
    # trim() is slow in DuckDB (about 0.2 s per million values), and most values
    # need none: only a value starting or ending with white space is trimmed.
    # The test is byte-wise prefix()/suffix() (an anchored regular expression
    # cost 1 s per column of a 72-lakh-row file; s[1] and s[-1] split non-ASCII
    # text into characters).
    (
        f"CREATE OR REPLACE TEMP MACRO mou_text(s) AS CASE WHEN {_WS_EDGE}"
        f" THEN nullif(trim(s, {_WS}), '') ELSE nullif(s, '') END"
    ),
    # Dates: the common spellings take a fast path (GLOB + cast); anything else
    # goes through the general patterns (1-2 digit day/month, optional time).
    (
        "CREATE OR REPLACE TEMP MACRO mou_date_slow(s) AS CASE"
        rf" WHEN regexp_full_match(s, '\d{{4}}-\d{{1,2}}-\d{{1,2}}{_TIME}')"
        r" THEN CAST(try_strptime(regexp_extract(s, '^(\d{4}-\d{1,2}-\d{1,2})', 1), '%Y-%m-%d') AS DATE)"
        rf" WHEN regexp_full_match(s, '\d{{1,2}}-\d{{1,2}}-\d{{4}}{_TIME}') OR regexp_full_match(s, '\d{{1,2}}/\d{{1,2}}/\d{{4}}{_TIME}')"
        r" THEN CAST(try_strptime(replace(regexp_extract(s, '^(\d{1,2}[-/]\d{1,2}[-/]\d{4})', 1), '/', '-'), '%d-%m-%Y') AS DATE)"
        " END"
    ),
    (
        "CREATE OR REPLACE TEMP MACRO mou_date(s) AS CASE"
        " WHEN s IS NULL THEN NULL"
        " WHEN s GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' THEN try_cast(s AS DATE)"
        " WHEN s GLOB '[0-9][0-9]-[0-9][0-9]-[0-9][0-9][0-9][0-9]' THEN CAST(try_strptime(s, '%d-%m-%Y') AS DATE)"
        " WHEN s GLOB '[0-9][0-9]/[0-9][0-9]/[0-9][0-9][0-9][0-9]' THEN CAST(try_strptime(s, '%d/%m/%Y') AS DATE)"
        " ELSE mou_date_slow(s) END"
    ),
    (
        "CREATE OR REPLACE TEMP MACRO mou_status(s) AS CASE s"
        " WHEN 'Completed' THEN 'Completed' WHEN 'In Progress' THEN 'In Progress' WHEN 'Not Started' THEN 'Not Started'"
        " WHEN '2' THEN 'Completed' WHEN '1' THEN 'In Progress' WHEN '0' THEN 'Not Started'"
        " ELSE CASE lower(regexp_replace(s, '\\s+', ' ', 'g'))"
        " WHEN 'not started' THEN 'Not Started' WHEN 'in progress' THEN 'In Progress' WHEN 'completed' THEN 'Completed'"
        " ELSE CASE try_cast(s AS DOUBLE) WHEN 0 THEN 'Not Started' WHEN 1 THEN 'In Progress' WHEN 2 THEN 'Completed' END END END"
    ),
    (
        "CREATE OR REPLACE TEMP MACRO mou_duration(s) AS CASE"
        " WHEN s IS NULL THEN NULL"
        " WHEN s GLOB '[0-9][0-9]:[0-5][0-9]:[0-5][0-9]'"
        " THEN CAST(substr(s, 1, 2) AS BIGINT) * 3600 + CAST(substr(s, 4, 2) AS BIGINT) * 60 + CAST(substr(s, 7, 2) AS BIGINT)"
        r" WHEN regexp_full_match(s, '\d{1,7}:[0-5]\d:[0-5]\d')"
        " THEN CAST(split_part(s, ':', 1) AS BIGINT) * 3600 + CAST(split_part(s, ':', 2) AS BIGINT) * 60"
        " + CAST(split_part(s, ':', 3) AS BIGINT) END"
    ),
    (
        "CREATE OR REPLACE TEMP MACRO mou_yesno(s) AS CASE lower(s)"
        " WHEN 'yes' THEN true WHEN 'y' THEN true WHEN 'true' THEN true WHEN '1' THEN true"
        " WHEN 'no' THEN false WHEN 'n' THEN false WHEN 'false' THEN false WHEN '0' THEN false END"
    ),
    "CREATE OR REPLACE TEMP MACRO mou_nfc(s) AS nfc_normalize(s)",
    "CREATE OR REPLACE TEMP MACRO mou_dept(s) AS regexp_replace(nfc_normalize(s), '\\s+', ' ', 'g')",
]


def _ensure_macros(db) -> None:
    """Create the normalisation macros once per DuckDB connection."""
    if not db.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'mou_date_slow'").fetchone()[0]:
        for stmt in MACROS:
            db.execute(stmt)


# --------------------------------------------------------------------------- reading


def _open_text(path: Path, gz: bool, errors: str = "strict"):
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="", errors=errors)


def read_csv_header(path: Path, gz: bool, name: str) -> list[str]:
    """The header record of a CSV file (BOM, quoting, gzip). Only the header's
    own bytes are decoded, so a bad byte further down is reported there."""
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            raw = b""
            for chunk in iter(fh.readline, b""):
                raw += chunk
                if raw.count(b'"') % 2 == 0 or len(raw) > MAX_FIELD_BYTES:
                    break
        text = raw.decode("utf-8-sig")
        header = next(csv.reader(io.StringIO(text, newline="")), None)
    except UnicodeDecodeError as exc:
        raise FeedRejected("unreadable", f"{name}, line 1: the header is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (gzip.BadGzipFile, EOFError, OSError, csv.Error) as exc:
        raise FeedRejected("unreadable", f"{name}, line 1: cannot read the header ({exc})") from None
    if not header or all(not h.strip() for h in header):
        raise FeedRejected("unreadable", f"{name}: empty file, no header line")
    return header


def physical_line(path: Path, gz: bool, record_line: int) -> int:
    """The physical line where a CSV record starts, from its position counted in
    records (header = 1), as DuckDB reports errors. Scans the file up to it."""
    with _open_text(path, gz, errors="replace") as fh:
        reader = csv.reader(fh)
        consumed = 0
        try:
            for index, _ in enumerate(reader, start=1):
                if index == record_line:
                    return consumed + 1
                consumed = reader.line_num
        except csv.Error:
            pass
    return consumed + 1


def _rejection(exc: Exception, name: str, fmt: str, path: Path, gz: bool, embedded_newlines: bool) -> FeedRejected:
    """A clear unreadable-file rejection from a DuckDB reader error: file, physical
    line, what is wrong. DuckDB's "Original Line" is left out (personal data)."""
    text = str(exc)
    lines = [line.strip() for line in text.splitlines()]
    m = re.search(r"CSV Error on Line: (\d+)", text)
    if m:
        line = int(m.group(1))
        if embedded_newlines:
            line = physical_line(path, gz, line)
        why = next(
            (l for l in lines[1:] if l and not l.startswith(("Original Line", "Possible", "*", "file =")) and " = " not in l),
            "not valid CSV",
        )
        return FeedRejected("unreadable", f"{name}, line {line}: {why.rstrip('.')}")
    m = re.search(r"Malformed JSON in file .*?, at byte \d+ in line (\d+): (.*)", text)
    if m:
        # DuckDB counts the JSON reader's lines from one past the failing object.
        return FeedRejected("unreadable", f"{name}, line {max(int(m.group(1)) - 1, 1)}: malformed JSON ({m.group(2).strip().rstrip('.')})")
    return FeedRejected("unreadable", f"{name}: {_duck_error(exc)}")


def _map_columns(feed: Feed, names: list[str]) -> dict[str, list[str]]:
    """canonical column -> source names present in the file (kept columns only)."""
    wanted = set(feed.columns)
    found: dict[str, list[str]] = {}
    for src in names:
        canon = canonical(src)
        if canon in wanted:
            found.setdefault(canon, []).append(src)
    return found


def _missing_required(feed: Feed, mapping: dict[str, list[str]]) -> list[str]:
    return [feed.display(c) for c in feed.required if not mapping.get(c)]


def _csv_source(feed: Feed, path: Path, gz: bool, name: str, count_newlines: bool) -> tuple[str, list[str]]:
    """A streaming SELECT of the file's kept columns (``f_<canonical>``) with the
    record number, and the required columns that are absent."""
    header = read_csv_header(path, gz, name)
    positions: dict[str, list[int]] = {}
    for i, src in enumerate(header):
        positions.setdefault(canonical(src), []).append(i)
    mapping = _map_columns(feed, header)
    for canon, sources in mapping.items():
        if len(sources) > 1:
            raise FeedRejected("unreadable", f"{name}, line 1: columns {', '.join(map(repr, sources))} all mean {feed.display(canon)}")
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    select = []
    for canon in feed.columns:
        if canon in mapping:
            select.append(f"c{positions[canon][0]} AS f_{canon}")
        else:
            select.append(f"CAST(NULL AS VARCHAR) AS f_{canon}")
    if count_newlines:
        # Newlines inside quoted fields, so line numbers stay exact (every column counts).
        # contains() first: most values have none, and replace() copies the value.
        nl = " + ".join(
            f"CASE WHEN contains(c{i}, chr(10)) THEN strlen(c{i}) - strlen(replace(c{i}, chr(10), '')) ELSE 0 END"
            for i in range(len(header))
        )
    else:
        nl = "0"
    reader = (
        f"read_csv({literal(str(path))}, header=true, auto_detect=false, columns={cols}, delim=',', quote='\"',"
        f" escape='\"', strict_mode=true, null_padding=false, compression={'gzip' if gz else 'none'!r},"
        f" max_line_size={MAX_FIELD_BYTES}, buffer_size={2 * MAX_FIELD_BYTES})"
    )
    source = f"SELECT {', '.join(select)}, {nl} AS nl FROM {reader}"
    return source, _missing_required(feed, mapping)


def _jsonl_source(db, feed: Feed, path: Path, gz: bool, name: str) -> tuple[str, list[str]]:
    """The JSONL file read once as JSON objects (keys spelled any way), and a
    SELECT of its kept columns as text (numbers keep their JSON spelling)."""
    reader = (
        f"read_json_objects({literal(str(path))}, format='newline_delimited', compression={'gzip' if gz else 'none'!r},"
        f" maximum_object_size={MAX_FIELD_BYTES})"
    )
    try:
        db.execute(f"CREATE OR REPLACE TEMP TABLE rawj_{feed.name} AS SELECT json FROM {reader}")
        bad = db.execute(
            f"SELECT rowid + 1 FROM rawj_{feed.name} WHERE json_type(json) <> 'OBJECT' ORDER BY rowid LIMIT 1"
        ).fetchone()
        keys = [r[0] for r in db.execute(f"SELECT DISTINCT unnest(json_keys(json)) FROM rawj_{feed.name}").fetchall()]
    except Exception as exc:
        raise _rejection(exc, name, "jsonl", path, gz, False) from None
    if bad:
        raise FeedRejected("unreadable", f"{name}, line {bad[0]}: not a JSON object")
    count = db.execute(f"SELECT count(*) FROM rawj_{feed.name}").fetchone()[0]
    mapping = _map_columns(feed, sorted(keys))
    # An empty JSONL file is zero records: there is no key to miss.
    missing = _missing_required(feed, mapping) if count else []
    select = []
    for canon in feed.columns:
        sources = mapping.get(canon) or []
        exprs = [f"json_extract_string(json, {literal('$.' + _json_key(k))})" for k in sorted(sources)]
        if not exprs:
            select.append(f"CAST(NULL AS VARCHAR) AS f_{canon}")
        elif len(exprs) == 1:
            select.append(f"{exprs[0]} AS f_{canon}")
        else:
            select.append(f"coalesce({', '.join(exprs)}) AS f_{canon}")
    source = f"SELECT {', '.join(select)}, 0 AS nl FROM rawj_{feed.name}"
    return source, missing


def _json_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duck_error(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    for prefix in ("Invalid Input Error: ", "IO Error: ", "Conversion Error: "):
        first = first.replace(prefix, "")
    return first


# --------------------------------------------------------------------------- checking

# Each kept column: the column of core.<feed> it is stored in, its kind, and
# how its stored value is made:
#   text  stored as the trimmed (normalised) text: an expression of v_<column>
#   label descriptive text (departments, organisations, course names, ...): a few
#         hundred distinct values in millions of rows, so the streaming pass
#         stores the trimmed text and normalise_labels() applies the macro
#         named here (NFC, collapsed white space) once per distinct value;
#         row by row, NFC costs about 2 s per column of Hindi text
#   date  parsed date          (the rules call it d_<column>)
#   value normalised value     (the rules call it n_<column>)
COLUMNS = {
    "enrolment": {
        "user_id": ("user_id", "text", "v_user_id"),
        "department": ("department", "label", "mou_dept"),
        "user_registration_date": ("registration_date", "date", "d_user_registration_date"),
        "organization": ("organization", "label", "mou_nfc"),
        "designation": ("designation", "label", "mou_nfc"),
        "group": ("service_group", "label", "mou_nfc"),
        "mdoid": ("mdoid", "text", "v_mdoid"),
    },
    "completion": {
        "user_id": ("user_id", "text", "v_user_id"),
        "content_id": ("content_id", "text", "v_content_id"),
        "batch_id": ("batch_id", "text", "coalesce(v_batch_id, '')"),
        "content_name": ("content_name", "label", "mou_nfc"),
        "content_provider": ("content_provider", "label", "mou_nfc"),
        "content_type": ("content_type", "label", "mou_nfc"),
        "content_duration": ("duration_seconds", "value", "n_content_duration"),
        "enrolled_on": ("enrolled_on", "date", "d_enrolled_on"),
        "status": ("status", "value", "n_status"),
        "content_progress_percentage": ("progress_pct", "value", "n_content_progress_percentage"),
        "completed_on": ("completed_on", "date", "d_completed_on"),
        "certificate_generated": ("certificate_generated", "value", "n_certificate_generated"),
        "certificate_id": ("certificate_id", "text", "v_certificate_id"),
        "user_rating": ("user_rating", "value", "n_user_rating"),
    },
}

VALUE_EXPR = {
    "content_duration": "mou_duration(v_content_duration)",
    "status": "mou_status(v_status)",
    "content_progress_percentage": "try_cast(v_content_progress_percentage AS DOUBLE)",
    "user_rating": "try_cast(v_user_rating AS DOUBLE)",
    "certificate_generated": "mou_yesno(v_certificate_generated)",
}

KEY_STORED = {"enrolment": ["user_id"], "completion": ["user_id", "content_id", "batch_id"]}

def normalise_labels(db, feed: str, table: str) -> None:
    """Apply each label column's normaliser to ``table`` (the checked rows) once
    per distinct value and rewrite only the rows whose value changes; the
    result equals applying it row by row."""
    for stored, kind, macro in COLUMNS[feed].values():
        if kind != "label":
            continue
        # The distinct values first, in a table of their own: in one query the
        # optimiser would push the filter below the DISTINCT, normalising every row.
        db.execute(
            f"CREATE OR REPLACE TEMP TABLE label_{feed} AS"
            f" SELECT DISTINCT s_{stored} AS v FROM {table} WHERE s_{stored} IS NOT NULL"
        )
        db.execute(
            f"CREATE OR REPLACE TEMP TABLE label_{feed} AS"
            f" SELECT v, {macro}(v) AS n FROM label_{feed} WHERE {macro}(v) IS DISTINCT FROM v"
        )
        if db.execute(f"SELECT count(*) FROM label_{feed}").fetchone()[0]:
            db.execute(f"UPDATE {table} AS c SET s_{stored} = x.n FROM label_{feed} AS x WHERE c.s_{stored} = x.v")
        db.execute(f"DROP TABLE label_{feed}")


def stored_columns(feed: str) -> list[str]:
    return [stored for stored, _, _ in COLUMNS[feed].values()]


def rule_view_sql(feed: str, table: str) -> str:
    """The checked rows under the names the rule declarations use (``v_``, ``d_``,
    ``n_``), mapped from what staging stores: text columns are their stored
    value (empty exactly when the raw value is), typed columns carry a flag for
    "a value was given" next to the parsed value."""
    cols = ["rowid + 1 AS record_no", "*"]
    for canon, (stored, kind, _) in COLUMNS[feed].items():
        if kind in ("text", "label"):
            cols.append(f"nullif(s_{stored}, '') AS v_{canon}" if canon == "batch_id" else f"s_{stored} AS v_{canon}")
        else:
            # the rules only ask whether a value was given (details are not needed here)
            cols.append(f"CASE WHEN p_{canon} THEN true END AS v_{canon}")
            cols.append(f"s_{stored} AS {'d' if kind == 'date' else 'n'}_{canon}")
    return f"SELECT {', '.join(cols)} FROM {table}"


def stage_file(
    db,
    feed_name: str,
    path: Path,
    fmt: str,
    gz: bool,
    report_date: date,
    display_name: str,
    expected_rows: int | None,
    registered_users_sql: str | Callable[[], str] | None = None,
    validator=None,
    embedded_newlines: bool = True,
) -> StageResult:
    """Stage one feed file in the DuckDB connection ``db``.

    One streaming pass reads the file, normalises every value, applies the row
    rules of ``rules.py`` and writes ``chk_<feed>`` (stored values, rule
    reason). Duplicates and unknown users are then marked on it. The outputs:
    ``stg_<feed>`` (a view of the rows to load), ``stgq_<feed>`` (quarantined
    rows with line, rule, detail and raw values without personal data) and,
    for completion, ``stgh_completion`` (held unknown_user rows).

    ``registered_users_sql`` (completion only) is a DuckDB query returning the
    ``user_id`` of users registered in the state as of the report date, or a
    function returning that query, called when it is first needed (so that a
    PostgreSQL warehouse can be asked for the users while the file is staged).
    ``validator(db, table, with_unknown_user)`` runs the data quality suite on
    the checked rows (``quality.validate_staged``); its per-rule counts must
    equal the quarantine's. ``embedded_newlines=False`` (known from the archive
    pass: the file has no more line breaks than records) skips counting line
    breaks inside quoted fields.
    """
    feed = BY_NAME[feed_name]
    _ensure_macros(db)
    if fmt == "csv":
        source, missing = _csv_source(feed, path, gz, display_name, embedded_newlines)
    else:
        source, missing = _jsonl_source(db, feed, path, gz, display_name)
    columns = COLUMNS[feed.name]
    rules = rules_for(feed.name)
    rd = "_rd"
    reason = "CASE " + " ".join(f"WHEN {r.predicate.format(report_date=rd)} THEN '{r.code}'" for r in rules) + " END"
    detail = "CASE " + " ".join(
        f"WHEN {r.predicate.format(report_date=rd)} THEN {r.detail.format(report_date=rd)}" for r in rules
    ) + " END"
    norm = ["nl", f"{literal(report_date)} AS _rd"]
    norm += [f"mou_text(f_{c}) AS v_{c}" for c in feed.columns]
    norm += [f"f_{c}" for c in feed.columns]
    typed = []
    for canon, (stored, kind, _) in columns.items():
        if kind == "date":
            typed.append(f"mou_date(v_{canon}) AS d_{canon}")
        elif kind == "value":
            typed.append(f"{VALUE_EXPR[canon]} AS n_{canon}")
    out = ["nl", "_rd", "reason"]
    out += [f"{f'v_{canon}' if kind == 'label' else expr} AS s_{stored}" for canon, (stored, kind, expr) in columns.items()]
    out += [f"(v_{canon} IS NOT NULL) AS p_{canon}" for canon, (_, kind, _) in columns.items() if kind in ("date", "value")]
    raw_values = "json_object(" + ", ".join(f"'{feed.display(c)}', f_{c}" for c in feed.columns) + ")"
    out += [
        f"CASE WHEN reason IS NOT NULL THEN {detail} END AS detail",
        f"CASE WHEN reason IS NOT NULL THEN CAST({raw_values} AS VARCHAR) END AS raw_values",
        "false AS conflict",
        "false AS dup",
    ]
    # No row_number() here: an empty OVER () would serialise the whole pass on
    # one thread. DuckDB keeps the file's row order in a CREATE TABLE AS over a
    # single reader (preserve_insertion_order, the default), so a row's record
    # number is its rowid + 1 ("Order Preservation" in the DuckDB docs).
    try:
        db.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE chk_{feed.name} AS
            WITH src AS ({source}),
            norm AS (SELECT {', '.join(norm)} FROM src),
            typed AS (SELECT *, {', '.join(typed)} FROM norm),
            checked AS (SELECT *, {reason} AS reason FROM typed)
            SELECT {', '.join(out)} FROM checked
            """
        )
    except FeedRejected:
        raise
    except Exception as exc:
        raise _rejection(exc, display_name, fmt, path, gz, embedded_newlines) from None
    finally:
        db.execute(f"DROP TABLE IF EXISTS rawj_{feed.name}")
    received, nl_total = db.execute(f"SELECT count(*), coalesce(sum(nl), 0) FROM chk_{feed.name}").fetchone()
    received = int(received)
    if expected_rows is not None and received != expected_rows:
        raise FeedRejected(
            "manifest_mismatch",
            f"{display_name}: the manifest says {expected_rows} rows but the file has {received} (cut-off upload?)",
            rows_received=received,
        )
    if missing:
        raise FeedRejected(
            "missing_columns", f"{display_name}: required column(s) absent: {', '.join(missing)}", rows_received=received
        )

    normalise_labels(db, feed.name, f"chk_{feed.name}")

    # Duplicates among the rows that passed the value rules: keys are hashed
    # first, so the exact comparison only runs on keys that occur twice.
    key = [f"s_{k}" for k in KEY_STORED[feed.name]]
    every = "hash(" + ", ".join(f"s_{c}" for c in stored_columns(feed.name)) + ")"
    # Most files have no repeated key: the key hashes alone (a narrow scan) say
    # so, and the wide comparison of whole rows is skipped.
    db.execute(
        f"""CREATE OR REPLACE TEMP TABLE dupk_{feed.name} AS
        SELECT hash({', '.join(key)}) AS kh FROM chk_{feed.name} WHERE reason IS NULL
        GROUP BY kh HAVING count(*) > 1"""
    )
    if db.execute(f"SELECT count(*) FROM dupk_{feed.name}").fetchone()[0]:
        db.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE dup_{feed.name} AS
            WITH rows AS (
                SELECT rowid + 1 AS record_no, {', '.join(key)}, {every} AS h FROM chk_{feed.name}
                WHERE reason IS NULL AND hash({', '.join(key)}) IN (SELECT kh FROM dupk_{feed.name})
            )
            SELECT record_no,
                   min(h) OVER (PARTITION BY {', '.join(key)}) <> max(h) OVER (PARTITION BY {', '.join(key)}) AS conflict,
                   row_number() OVER (PARTITION BY {', '.join(key)}, h ORDER BY record_no) AS copy_no
            FROM rows
            """
        )
        db.execute(
            f"""
            UPDATE chk_{feed.name} AS c SET reason = CASE WHEN d.conflict THEN '{CONFLICTING_DUPLICATE}' END,
                conflict = d.conflict, dup = (NOT d.conflict AND d.copy_no > 1)
            FROM dup_{feed.name} AS d
            WHERE c.rowid + 1 = d.record_no AND (d.conflict OR d.copy_no > 1)
            """
        )
        db.execute(f"DROP TABLE dup_{feed.name}")
    db.execute(f"DROP TABLE dupk_{feed.name}")
    with_unknown = feed.name == "completion" and registered_users_sql is not None
    if with_unknown:
        query = registered_users_sql() if callable(registered_users_sql) else registered_users_sql
        db.execute(f"CREATE OR REPLACE TEMP TABLE reg_users AS {query}")
        db.execute(
            f"""
            UPDATE chk_completion SET reason = '{UNKNOWN_USER}',
                detail = 'User_ID ' || s_user_id || ' is not registered in the state as of the report date (held, retried every night)'
            WHERE reason IS NULL AND NOT dup AND s_user_id NOT IN (SELECT user_id FROM reg_users)
            """
        )
    # The data quality suite sees the checked rows under the rules' names.
    db.execute(f"CREATE OR REPLACE TEMP VIEW gx_{feed.name} AS {rule_view_sql(feed.name, f'chk_{feed.name}')}")
    validation = validator(db, f"gx_{feed.name}", with_unknown) if validator is not None else None
    if with_unknown:
        db.execute("DROP TABLE reg_users")

    # Quarantined rows, with their physical line (header = line 1; line breaks
    # inside quoted fields of earlier records counted).
    header_lines = 1 if fmt == "csv" else 0
    key_content = "c.s_content_id" if feed.name == "completion" else "''"
    key_batch = "c.s_batch_id" if feed.name == "completion" else "''"
    stored_json = "json_object(" + ", ".join(f"'{n}', c.s_{n}" for n in stored_columns(feed.name)) + ")"
    if nl_total:
        db.execute(
            f"""CREATE OR REPLACE TEMP TABLE nlc_{feed.name} AS
            SELECT rowid + 1 AS record_no, sum(nl) OVER (ORDER BY rowid) AS nl_through
            FROM chk_{feed.name} WHERE nl > 0"""
        )
        before = "coalesce(n.nl_through, 0)"
        join = f"ASOF LEFT JOIN nlc_{feed.name} AS n ON c.rowid + 1 > n.record_no"
    else:
        before, join = "0", ""
    db.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE stgq_{feed.name} AS
        SELECT c.rowid + 1 AS record_no, CAST(c.rowid + 1 + {header_lines} + {before} AS BIGINT) AS line_no,
               c.reason, c.detail,
               c.s_user_id AS user_id,
               coalesce(c.raw_values, CAST({stored_json} AS VARCHAR)) AS raw_values,
               {key_content} AS key_content_id, {key_batch} AS key_batch_id
        FROM chk_{feed.name} AS c {join}
        WHERE c.reason IS NOT NULL
        """
    )
    db.execute(f"DROP TABLE IF EXISTS nlc_{feed.name}")
    # Conflicting duplicates name the lines of all their rows.
    db.execute(
        f"""
        UPDATE stgq_{feed.name} AS q SET detail = 'key ' || k.key_text || ' appears on lines ' || k.lines || ' with different values'
        FROM (
            SELECT user_id, key_content_id, key_batch_id,
                   string_agg(CAST(line_no AS VARCHAR), ', ' ORDER BY line_no) AS lines,
                   concat_ws(' / ', user_id, nullif(key_content_id, ''), nullif(key_batch_id, '')) AS key_text
            FROM stgq_{feed.name} WHERE reason = '{CONFLICTING_DUPLICATE}'
            GROUP BY user_id, key_content_id, key_batch_id
        ) AS k
        WHERE q.reason = '{CONFLICTING_DUPLICATE}' AND q.user_id = k.user_id
          AND q.key_content_id = k.key_content_id AND q.key_batch_id = k.key_batch_id
        """
    )
    stored = ", ".join(f"s_{n} AS {n}" for n in stored_columns(feed.name))
    db.execute(
        f"CREATE OR REPLACE TEMP VIEW stg_{feed.name} AS SELECT rowid + 1 AS record_no, {stored} FROM chk_{feed.name}"
        " WHERE reason IS NULL AND NOT dup"
    )
    if with_unknown:
        db.execute(
            f"CREATE OR REPLACE TEMP TABLE stgh_completion AS SELECT rowid + 1 AS record_no, {stored} FROM chk_completion"
            f" WHERE reason = '{UNKNOWN_USER}'"
        )
    counts = db.execute(
        f"SELECT count(*) FILTER (WHERE reason IS NULL AND NOT dup), count(*) FILTER (WHERE dup) FROM chk_{feed.name}"
    ).fetchone()
    by_reason = dict(db.execute(f"SELECT reason, count(*) FROM stgq_{feed.name} GROUP BY reason").fetchall())
    result = StageResult(
        rows_received=received, rows_loaded=int(counts[0]), rows_duplicate=int(counts[1]), quarantined=by_reason,
        validation=validation,
    )
    if result.rows_loaded + result.rows_quarantined + result.rows_duplicate != received:
        raise RuntimeError(f"{display_name}: staged rows do not add up: {result}")
    if validation is not None:
        gx_counts = {code: n for code, n in validation.counts.items() if n}
        if gx_counts != by_reason:
            raise RuntimeError(
                f"{display_name}: Great Expectations counts {gx_counts} differ from the quarantine's {by_reason}"
            )
    return result


def drop_staged(db, feed_name: str) -> None:
    """Forget everything staged for the feed (views first: they read chk)."""
    for view in (f"stg_{feed_name}", f"gx_{feed_name}"):
        db.execute(f"DROP VIEW IF EXISTS {view}")
    for table in (f"stgq_{feed_name}", f"chk_{feed_name}", f"rawj_{feed_name}", "stgh_completion" if feed_name == "completion" else None):
        if table:
            db.execute(f"DROP TABLE IF EXISTS {table}")


__all__ = ["FeedRejected", "StageResult", "stage_file", "drop_staged", "stored_columns", "PERSONAL"]

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
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from .feeds import BY_NAME, PERSONAL, Feed, canonical
from .rules import CONFLICTING_DUPLICATE, UNKNOWN_USER, rules_for

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


_WS = "chr(32) || chr(9) || chr(10) || chr(13) || chr(160)"
_TIME = r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?)?"

MACROS = [
    f"CREATE OR REPLACE TEMP MACRO mou_text(s) AS nullif(trim(s, {_WS}), '')",
    (
        "CREATE OR REPLACE TEMP MACRO mou_date(s) AS CASE"
        rf" WHEN regexp_full_match(s, '\d{{4}}-\d{{1,2}}-\d{{1,2}}{_TIME}')"
        r" THEN CAST(try_strptime(regexp_extract(s, '^(\d{4}-\d{1,2}-\d{1,2})', 1), '%Y-%m-%d') AS DATE)"
        rf" WHEN regexp_full_match(s, '\d{{1,2}}-\d{{1,2}}-\d{{4}}{_TIME}') OR regexp_full_match(s, '\d{{1,2}}/\d{{1,2}}/\d{{4}}{_TIME}')"
        r" THEN CAST(try_strptime(replace(regexp_extract(s, '^(\d{1,2}[-/]\d{1,2}[-/]\d{4})', 1), '/', '-'), '%d-%m-%Y') AS DATE)"
        " END"
    ),
    (
        "CREATE OR REPLACE TEMP MACRO mou_status(s) AS CASE lower(regexp_replace(s, '\\s+', ' ', 'g'))"
        " WHEN 'not started' THEN 'Not Started' WHEN 'in progress' THEN 'In Progress' WHEN 'completed' THEN 'Completed'"
        " ELSE CASE try_cast(s AS DOUBLE) WHEN 0 THEN 'Not Started' WHEN 1 THEN 'In Progress' WHEN 2 THEN 'Completed' END END"
    ),
    (
        "CREATE OR REPLACE TEMP MACRO mou_duration(s) AS CASE"
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
    if not db.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'mou_dept'").fetchone()[0]:
        for stmt in MACROS:
            db.execute(stmt)


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _date_lit(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


# --------------------------------------------------------------------------- reading


def _open_text(path: Path, gz: bool):
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def read_csv_header(path: Path, gz: bool, name: str) -> list[str]:
    """The header record of a CSV file (handles BOM, quoting, gzip)."""
    try:
        with _open_text(path, gz) as fh:
            header = next(csv.reader(fh), None)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError, csv.Error) as exc:
        raise FeedRejected("unreadable", f"{name}, line 1: cannot read the header ({exc})") from None
    if not header or all(not h.strip() for h in header):
        raise FeedRejected("unreadable", f"{name}: empty file, no header line")
    return header


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


def _load_csv(db, feed: Feed, path: Path, gz: bool, name: str) -> list[str]:
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
    # Newlines inside quoted fields, so line numbers stay exact (every column counts).
    nl = " + ".join(f"coalesce(length(c{i}) - length(replace(c{i}, chr(10), '')), 0)" for i in range(len(header)))
    reader = (
        f"read_csv({_lit(str(path))}, header=true, auto_detect=false, columns={cols}, delim=',', quote='\"',"
        f" escape='\"', strict_mode=true, null_padding=false, compression={'gzip' if gz else 'none'!r},"
        f" max_line_size={MAX_FIELD_BYTES}, buffer_size={2 * MAX_FIELD_BYTES})"
    )
    try:
        db.execute(f"CREATE OR REPLACE TEMP TABLE raw_{feed.name} AS SELECT {', '.join(select)}, {nl} AS nl FROM {reader}")
    except Exception as exc:
        raise FeedRejected("unreadable", f"{name}: {_duck_error(exc)}") from None
    return _missing_required(feed, mapping)


def _load_jsonl(db, feed: Feed, path: Path, gz: bool, name: str) -> list[str]:
    reader = (
        f"read_json_objects({_lit(str(path))}, format='newline_delimited', compression={'gzip' if gz else 'none'!r},"
        f" maximum_object_size={MAX_FIELD_BYTES})"
    )
    try:
        db.execute(f"CREATE OR REPLACE TEMP TABLE rawj_{feed.name} AS SELECT json FROM {reader}")
        bad = db.execute(
            f"SELECT rowid + 1 FROM rawj_{feed.name} WHERE json_type(json) <> 'OBJECT' ORDER BY rowid LIMIT 1"
        ).fetchone()
        keys = [r[0] for r in db.execute(f"SELECT DISTINCT unnest(json_keys(json)) FROM rawj_{feed.name}").fetchall()]
    except Exception as exc:
        raise FeedRejected("unreadable", f"{name}: {_duck_error(exc)}") from None
    if bad:
        raise FeedRejected("unreadable", f"{name}, line {bad[0]}: not a JSON object")
    count = db.execute(f"SELECT count(*) FROM rawj_{feed.name}").fetchone()[0]
    mapping = _map_columns(feed, sorted(keys))
    # An empty JSONL file is zero records: there is no key to miss.
    missing = _missing_required(feed, mapping) if count else []
    select = []
    for canon in feed.columns:
        sources = mapping.get(canon) or []
        exprs = [f"json_extract_string(json, {_lit('$.' + _json_key(k))})" for k in sorted(sources)]
        if not exprs:
            select.append(f"CAST(NULL AS VARCHAR) AS f_{canon}")
        elif len(exprs) == 1:
            select.append(f"{exprs[0]} AS f_{canon}")
        else:
            select.append(f"coalesce({', '.join(exprs)}) AS f_{canon}")
    db.execute(
        f"CREATE OR REPLACE TEMP TABLE raw_{feed.name} AS SELECT {', '.join(select)}, 0 AS nl FROM rawj_{feed.name}"
    )
    db.execute(f"DROP TABLE rawj_{feed.name}")
    return missing


def _json_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _duck_error(exc: Exception) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    for prefix in ("Invalid Input Error: ", "IO Error: ", "Conversion Error: "):
        first = first.replace(prefix, "")
    return first


# --------------------------------------------------------------------------- checking


def _normalised_columns(feed: Feed) -> list[str]:
    cols = ["record_no", "line_no", "_rd"]
    cols += [f"mou_text(f_{c}) AS v_{c}" for c in feed.columns]
    cols += [f"mou_date(mou_text(f_{c})) AS d_{c}" for c in feed.dates]
    if feed.name == "completion":
        cols += [
            "mou_status(mou_text(f_status)) AS n_status",
            "mou_duration(mou_text(f_content_duration)) AS n_content_duration",
            "try_cast(mou_text(f_content_progress_percentage) AS DOUBLE) AS n_content_progress_percentage",
            "try_cast(mou_text(f_user_rating) AS DOUBLE) AS n_user_rating",
            "mou_yesno(mou_text(f_certificate_generated)) AS n_certificate_generated",
        ]
    return cols


# Stored values, as they go into core.<feed> (the same expressions decide "identical").
STORED = {
    "enrolment": [
        ("user_id", "v_user_id"),
        ("department", "mou_dept(v_department)"),
        ("registration_date", "d_user_registration_date"),
        ("organization", "mou_nfc(v_organization)"),
        ("designation", "mou_nfc(v_designation)"),
        ("service_group", "mou_nfc(v_group)"),
        ("mdoid", "v_mdoid"),
    ],
    "completion": [
        ("user_id", "v_user_id"),
        ("content_id", "v_content_id"),
        ("batch_id", "coalesce(v_batch_id, '')"),
        ("content_name", "mou_nfc(v_content_name)"),
        ("content_provider", "mou_nfc(v_content_provider)"),
        ("content_type", "mou_nfc(v_content_type)"),
        ("duration_seconds", "n_content_duration"),
        ("enrolled_on", "d_enrolled_on"),
        ("status", "n_status"),
        ("progress_pct", "n_content_progress_percentage"),
        ("completed_on", "d_completed_on"),
        ("certificate_generated", "n_certificate_generated"),
        ("certificate_id", "v_certificate_id"),
        ("user_rating", "n_user_rating"),
    ],
}

KEY_STORED = {"enrolment": ["user_id"], "completion": ["user_id", "content_id", "batch_id"]}


def stored_columns(feed: str) -> list[str]:
    return [name for name, _ in STORED[feed]]


def stage_file(
    db,
    feed_name: str,
    path: Path,
    fmt: str,
    gz: bool,
    report_date: date,
    display_name: str,
    expected_rows: int | None,
    registered_users_sql: str | None = None,
    validator=None,
) -> StageResult:
    """Stage one feed file in the DuckDB connection ``db``.

    ``registered_users_sql`` (completion only) is a DuckDB query returning the
    ``user_id`` of users registered in the state as of the report date.
    ``validator(db, table, with_unknown_user)`` runs the data quality suite on
    the checked rows (``quality.validate_staged``); its per-rule counts must
    equal the quarantine's.
    """
    feed = BY_NAME[feed_name]
    _ensure_macros(db)
    if fmt == "csv":
        missing = _load_csv(db, feed, path, gz, display_name)
    else:
        missing = _load_jsonl(db, feed, path, gz, display_name)
    rows = db.execute(f"SELECT count(*), max(nl) FROM raw_{feed.name}").fetchone()
    received, has_nl = int(rows[0]), bool(rows[1])
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
    header_lines = 1 if fmt == "csv" else 0
    if has_nl:
        line_no = (
            f"rowid + 1 + {header_lines} + coalesce(sum(nl) OVER (ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING"
            " AND 1 PRECEDING), 0)"
        )
    else:
        line_no = f"rowid + 1 + {header_lines}"

    rules = rules_for(feed.name)
    # The rules compare with the report date through the column _rd, so their
    # SQL is the same for every delivery (and for the data quality suite).
    rd = "_rd"
    reason = "CASE " + " ".join(f"WHEN {r.predicate.format(report_date=rd)} THEN '{r.code}'" for r in rules) + " END"
    detail = "CASE " + " ".join(
        f"WHEN {r.predicate.format(report_date=rd)} THEN {r.detail.format(report_date=rd)}" for r in rules
    ) + " END"
    stored = ", ".join(f"{expr} AS s_{name}" for name, expr in STORED[feed.name])
    key = ", ".join(f"s_{k}" for k in KEY_STORED[feed.name])
    values_hash = "hash(" + ", ".join(f"s_{name}" for name, _ in STORED[feed.name]) + ")"

    db.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE chk_{feed.name} AS
        WITH src AS (
            SELECT rowid + 1 AS record_no, {line_no} AS line_no, {_date_lit(report_date)} AS _rd, * EXCLUDE (nl)
            FROM raw_{feed.name}
        ), norm AS (
            SELECT {', '.join(_normalised_columns(feed))} FROM src
        ), checked AS (
            SELECT *, {reason} AS reason, {detail} AS detail, {stored} FROM norm
        ), hashed AS (
            SELECT *, CASE WHEN reason IS NULL THEN {values_hash} END AS h FROM checked
        )
        SELECT *,
            CASE WHEN reason IS NULL THEN
                min(h) OVER (PARTITION BY reason IS NULL, {key}) <> max(h) OVER (PARTITION BY reason IS NULL, {key})
            END AS conflict,
            CASE WHEN reason IS NULL THEN
                row_number() OVER (PARTITION BY reason IS NULL, {key}, h ORDER BY record_no)
            END AS copy_no
        FROM hashed
        """
    )
    # Conflicting duplicates: every row of the key is quarantined, naming the other lines.
    db.execute(
        f"""
        UPDATE chk_{feed.name} AS c SET reason = '{CONFLICTING_DUPLICATE}',
            detail = 'key ' || k.key_text || ' appears on lines ' || k.lines || ' with different values'
        FROM (
            SELECT {key}, string_agg(CAST(line_no AS VARCHAR), ', ' ORDER BY line_no) AS lines,
                   concat_ws(' / ', {', '.join(f"s_{k}" for k in KEY_STORED[feed.name])}) AS key_text
            FROM chk_{feed.name} WHERE conflict GROUP BY {key}
        ) AS k
        WHERE c.conflict AND {' AND '.join(f"c.s_{k} = k.s_{k}" for k in KEY_STORED[feed.name])}
        """
    )
    if feed.name == "completion" and registered_users_sql is not None:
        db.execute(f"CREATE OR REPLACE TEMP TABLE reg_users AS {registered_users_sql}")
        db.execute(
            f"""
            UPDATE chk_completion SET reason = '{UNKNOWN_USER}',
                detail = 'User_ID ' || s_user_id || ' is not registered in the state as of the report date (held, retried every night)'
            WHERE reason IS NULL AND copy_no = 1 AND s_user_id NOT IN (SELECT user_id FROM reg_users)
            """
        )
        db.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE stgh_completion AS
            SELECT record_no, {', '.join(f"s_{n} AS {n}" for n in stored_columns('completion'))}
            FROM chk_completion WHERE reason = '{UNKNOWN_USER}'
            """
        )
    validation = None
    if validator is not None:
        validation = validator(db, f"chk_{feed.name}", feed.name == "completion" and registered_users_sql is not None)
    if feed.name == "completion" and registered_users_sql is not None:
        db.execute("DROP TABLE reg_users")
    db.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE stg_{feed.name} AS
        SELECT record_no, {', '.join(f"s_{n} AS {n}" for n in stored_columns(feed.name))}
        FROM chk_{feed.name} WHERE reason IS NULL AND copy_no = 1
        """
    )
    # The key of a quarantined row, when it has one (a snapshot still holds that key).
    key_content = "c.v_content_id" if feed.name == "completion" else "''"
    key_batch = "coalesce(c.v_batch_id, '')" if feed.name == "completion" else "''"
    raw_values = "json_object(" + ", ".join(f"'{feed.display(c)}', r.f_{c}" for c in feed.columns) + ")"
    db.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE stgq_{feed.name} AS
        SELECT c.record_no, c.line_no, c.reason, c.detail, c.v_user_id AS user_id,
               CAST({raw_values} AS VARCHAR) AS raw_values,
               {key_content} AS key_content_id, {key_batch} AS key_batch_id
        FROM chk_{feed.name} c JOIN (SELECT rowid + 1 AS record_no, * FROM raw_{feed.name}) r USING (record_no)
        WHERE c.reason IS NOT NULL
        """
    )
    counts = db.execute(
        f"""
        SELECT count(*) FILTER (WHERE reason IS NULL AND copy_no = 1),
               count(*) FILTER (WHERE reason IS NULL AND copy_no > 1)
        FROM chk_{feed.name}
        """
    ).fetchone()
    by_reason = dict(db.execute(f"SELECT reason, count(*) FROM stgq_{feed.name} GROUP BY reason").fetchall())
    db.execute(f"DROP TABLE chk_{feed.name}")
    db.execute(f"DROP TABLE raw_{feed.name}")
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
    for t in (f"stg_{feed_name}", f"stgq_{feed_name}", "stgh_completion" if feed_name == "completion" else None):
        if t:
            db.execute(f"DROP TABLE IF EXISTS {t}")


__all__ = ["FeedRejected", "StageResult", "stage_file", "drop_staged", "stored_columns", "PERSONAL"]

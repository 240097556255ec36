"""End to end: the headless command, night by night, against the independent oracle.

Each scenario generates sample deliveries with ``python -m mou_etl generate``,
then runs ``python -m mou_etl run --date D`` as a subprocess for consecutive
nights, exactly as a user would, into a fresh DuckDB warehouse. After every
night all five ``mart`` tables (every date rolled up so far) are read back and
compared with what ``oracle.py`` - a separate, simple implementation of the
contracts that shares no code with ``mou_etl`` - computes from the same landing
zone. Integer, boolean, date and text columns must be equal; learning_hours
within one cent (rounding half-up vs half-even of an exact .xx5 may differ by
0.01); shares within 1e-6. Extra columns in the warehouse are allowed (the
contract permits adding columns); extra or missing rows are not.

Tests:
  * clean generated deliveries, then with ``--bad-rows 0.05`` (quarantine codes,
    too_many_bad_rows rejections and feed_status compared too);
  * re-running a night (the last, then the first) leaves every mart identical;
  * hand-written deliveries for the corner cases the generator may not hit
    (late older delivery, re-delivery after a rejection, snapshot removal and
    volume_drop, held rows, transfers, every feed rule, header/date spellings),
    some written into the landing zone between nights;
  * the comparison harness itself (no pipeline needed).
On a mismatch the failure lists counts by (table, column) and example lines
"table report_date=... state_code=...: column expected X, actual Y".
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest

from oracle import MART_KEYS, MART_TABLES, REGISTRY_CSV, Oracle, StateConfig, date_range, load_registry

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VENV_PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(VENV_PY) if VENV_PY.exists() else sys.executable
START = "2026-01-01"
DAYS = 4
SCALE = "0.0005"
SEED = "7"
CLI_TIMEOUT = 300  # seconds for one command

TOLERANCE = {
    "learning_hours": 0.01 + 1e-9,
    "share_of_national_registrations_ytd": 1e-6,
    "share_of_national_completions_ytd": 1e-6,
}
MAX_DIFF_LINES = 120
EXAMPLES_PER_CATEGORY = 6


# --------------------------------------------------------------------------- running the command


def cli_env(tmp: Path) -> dict:
    env = dict(os.environ)
    # Keep archive, scratch files and any default warehouse inside the test's folder.
    env["MOU_DATA_DIR"] = str(tmp / "data")
    for var in ("MOU_ARCHIVE_DIR", "MOU_WORK_DIR", "MOU_LANDING_DIR", "MOU_WAREHOUSE_URL"):
        env.pop(var, None)
    env.setdefault("MOU_DUCKDB_THREADS", "2")
    # The marts are what these tests compare; the Data Docs HTML (a page per
    # feed, about a third of each night's time here) is checked by
    # tests/unit/test_quality.py and tests/integration/test_personal_data.py.
    env.setdefault("MOU_DATA_DOCS", "0")
    return env


def mou_etl(args: list[str], env: dict) -> subprocess.CompletedProcess:
    cmd = [PYTHON, "-m", "mou_etl", *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert proc.returncode == 0, (
        f"`{' '.join(cmd)}` exited {proc.returncode}\n--- stderr (tail) ---\n{proc.stderr[-3000:]}"
        f"\n--- stdout (tail) ---\n{proc.stdout[-1500:]}"
    )
    return proc


def read_marts(db_file: Path) -> dict[str, list[dict] | str]:
    """Every mart table as a list of row dicts (or the error text when it cannot be read)."""
    out: dict[str, list[dict] | str] = {}
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        for table in MART_TABLES:
            try:
                cur = con.execute(f"SELECT * FROM mart.{table}")
                cols = [d[0] for d in cur.description]
                out[table] = [dict(zip(cols, row)) for row in cur.fetchall()]
            except duckdb.Error as exc:
                out[table] = f"cannot read mart.{table}: {str(exc).splitlines()[0]}"
    finally:
        con.close()
    return out


# --------------------------------------------------------------------------- comparing


def _as_date(v):
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v[:10])
        except ValueError:
            return v
    return v


def _same(column: str, expected, actual, tolerance: dict = TOLERANCE) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if column in tolerance:
        try:
            return abs(float(actual) - float(expected)) <= tolerance[column]
        except (TypeError, ValueError):
            return False
    if isinstance(expected, bool):
        return actual in (True, False, 0, 1) and bool(actual) is expected
    if isinstance(expected, int):
        if isinstance(actual, bool):
            return False
        if isinstance(actual, (int, Decimal)) or (isinstance(actual, float) and actual.is_integer()):
            return int(actual) == expected and actual == int(actual)
        return False
    if isinstance(expected, dt.date):
        return _as_date(actual) == expected
    if isinstance(expected, float):
        try:
            return abs(float(actual) - expected) <= 1e-9
        except (TypeError, ValueError):
            return False
    return actual == expected


def _key(table: str, row: dict) -> tuple:
    return tuple(_as_date(row.get(c)) if c == "report_date" else row.get(c) for c in MART_KEYS[table])


def _show_key(table: str, key: tuple) -> str:
    return " ".join(f"{c}={v}" for c, v in zip(MART_KEYS[table], key))


def compare_marts(expected: dict[str, list[dict]], actual: dict[str, list[dict] | str],
                  tolerance: dict = TOLERANCE) -> list[str]:
    """One readable line per difference: table, row key (date, state, ...), column, expected, actual.
    ``tolerance={}`` compares every value exactly."""
    lines: list[str] = []
    for table in MART_TABLES:
        got = actual.get(table)
        if isinstance(got, str):
            lines.append(got)
            continue
        exp_rows = {_key(table, r): r for r in expected[table]}
        act_rows: dict[tuple, dict] = {}
        for r in got:
            k = _key(table, r)
            if k in act_rows:
                lines.append(f"{table} {_show_key(table, k)}: duplicate row in the warehouse")
            act_rows[k] = r
        columns = list(expected[table][0]) if expected[table] else []
        if got and columns:
            absent = [c for c in columns if c not in got[0]]
            for c in absent:
                lines.append(f"{table}: column {c} absent from the warehouse")
            columns = [c for c in columns if c not in absent]
        for k in sorted(exp_rows.keys() - act_rows.keys(), key=repr):
            lines.append(f"{table} {_show_key(table, k)}: row missing from the warehouse; expected {exp_rows[k]}")
        for k in sorted(act_rows.keys() - exp_rows.keys(), key=repr):
            lines.append(f"{table} {_show_key(table, k)}: unexpected row in the warehouse: {act_rows[k]}")
        for k in sorted(exp_rows.keys() & act_rows.keys(), key=repr):
            e, a = exp_rows[k], act_rows[k]
            for c in columns:
                if c not in MART_KEYS[table] and not _same(c, e[c], a.get(c), tolerance):
                    lines.append(f"{table} {_show_key(table, k)}: {c} expected {e[c]!r}, actual {a.get(c)!r}")
    return lines


def _category(line: str) -> tuple[str, str]:
    table = line.split(" ", 1)[0].rstrip(":")
    detail = line.split(": ", 1)[1] if ": " in line else line
    if detail.startswith("row missing"):
        return table, "missing rows"
    if detail.startswith("unexpected row"):
        return table, "extra rows"
    return table, detail.split(" ", 1)[0]


def report(diffs_by_night: dict[str, list[str]], per_category: int = EXAMPLES_PER_CATEGORY) -> str:
    """A summary by (table, column), then up to `per_category` example lines of each, latest night first."""
    total = sum(len(v) for v in diffs_by_night.values())
    counts: Counter = Counter()
    examples: dict[tuple, list[str]] = {}
    for night in sorted(diffs_by_night, reverse=True):
        for line in diffs_by_night[night]:
            cat = _category(line)
            counts[cat] += 1
            if len(examples.setdefault(cat, [])) < per_category:
                examples[cat].append(f"[after night {night}] {line}")
    out = [f"{total} differences between the warehouse marts and the oracle "
           f"(nights with differences: {', '.join(n for n, v in diffs_by_night.items() if v)})",
           "by table and column: " + ", ".join(f"{t}.{c}={n}" for (t, c), n in counts.most_common())]
    for cat, n in counts.most_common():
        out.append(f"--- {cat[0]}.{cat[1]}: {n}")
        out.extend("  " + line for line in examples[cat])
    return "\n".join(out)


# --------------------------------------------------------------------------- scenarios


def read_marts_postgres(url: str) -> dict[str, list[dict] | str]:
    """The mart tables of a PostgreSQL warehouse, like read_marts."""
    import psycopg

    out: dict[str, list[dict] | str] = {}
    with psycopg.connect(url) as con:
        for table in MART_TABLES:
            cur = con.execute(f"SELECT * FROM mart.{table}")
            cols = [d.name for d in cur.description]
            out[table] = [dict(zip(cols, row)) for row in cur.fetchall()]
    return out


def run_scenario(tmp: Path, bad_rows: str | None, postgres_url: str | None = None) -> dict:
    """Generate, then run the nights one by one, comparing after each. Returns what the tests check.
    With ``postgres_url`` the warehouse is that PostgreSQL database instead of a DuckDB file."""
    landing = tmp / "landing"
    db_file = tmp / "wh.duckdb"
    warehouse = postgres_url or f"duckdb:///{db_file}"
    env = cli_env(tmp)
    gen = ["generate", "--landing", str(landing), "--start", START, "--days", str(DAYS), "--scale", SCALE,
           "--seed", SEED]
    if bad_rows is not None:
        gen += ["--bad-rows", bad_rows]
    mou_etl(gen, env)
    assert any(landing.glob("*/*/manifest.json")), f"the generator wrote no delivery under {landing}"

    oracle = Oracle(load_registry(os.environ.get("MOU_STATES_FILE", REGISTRY_CSV)))
    diffs: dict[str, list[str]] = {}
    for night in date_range(START, DAYS):
        oracle.run_night(landing, night)  # read the landing zone before the pipeline touches anything
        mou_etl(["run", "--date", night.isoformat(), "--landing", str(landing), "--warehouse", warehouse], env)
        actual = read_marts_postgres(postgres_url) if postgres_url else read_marts(db_file)
        diffs[night.isoformat()] = compare_marts(oracle.marts(), actual)
    return {"landing": landing, "db_file": db_file, "env": env, "oracle": oracle, "diffs": diffs}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    return run_scenario(tmp_path_factory.mktemp("clean"), None)


@pytest.fixture(scope="module")
def bad_rows_run(tmp_path_factory):
    return run_scenario(tmp_path_factory.mktemp("bad_rows"), "0.05")


def test_clean_deliveries_night_by_night(clean_run):
    diffs = clean_run["diffs"]
    if any(diffs.values()):
        pytest.fail(report(diffs), pytrace=False)
    marts = clean_run["oracle"].marts()
    assert any(r["registered_users"] for r in marts["state_summary"]), "the scenario loaded nothing"


def test_bad_rows_quarantine_and_feed_status_night_by_night(bad_rows_run):
    diffs = bad_rows_run["diffs"]
    if any(diffs.values()):
        pytest.fail(report(diffs), pytrace=False)
    marts = bad_rows_run["oracle"].marts()
    assert marts["quarantine_summary"], "the scenario quarantined nothing: --bad-rows had no effect"


def test_rerunning_a_night_changes_nothing(bad_rows_run):
    db_file, env, landing = bad_rows_run["db_file"], bad_rows_run["env"], bad_rows_run["landing"]
    nights = date_range(START, DAYS)
    before = read_marts(db_file)
    problems = []
    for night in (nights[-1], nights[0]):  # the same night again, then an earlier one
        mou_etl(["run", "--date", night.isoformat(), "--landing", str(landing),
                 "--warehouse", f"duckdb:///{db_file}"], env)
        after = read_marts(db_file)
        as_expected = {t: rows for t, rows in before.items() if not isinstance(rows, str)}
        if len(as_expected) < len(MART_TABLES):
            pytest.fail("marts unreadable before the re-run: " + repr({t: v for t, v in before.items()
                                                                      if isinstance(v, str)}))
        lines = compare_marts(as_expected, after, tolerance={})  # identical, to the digit
        if lines:
            problems.append(f"re-running {night} changed the marts:")
            problems.extend("  " + line for line in lines[:MAX_DIFF_LINES])
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------- the comparison itself


def _sql_type(column: str) -> str:
    if column in ("report_date", "last_delivery_date"):
        return "DATE"
    if column == "is_stale":
        return "BOOLEAN"
    if column == "learning_hours":
        return "DECIMAL(18, 2)"
    if column.startswith("share_"):
        return "DOUBLE"
    if column in ("state_code", "state_name", "department", "feed", "status", "reason"):
        return "VARCHAR"
    return "BIGINT"


def write_marts(db_file: Path, marts: dict[str, list[dict]]) -> None:
    con = duckdb.connect(str(db_file))
    con.execute("CREATE SCHEMA IF NOT EXISTS mart")
    for table, rows in marts.items():
        cols = list(rows[0])
        con.execute(f"CREATE OR REPLACE TABLE mart.{table} ({', '.join(f'{c} {_sql_type(c)}' for c in cols)})")
        con.executemany(f"INSERT INTO mart.{table} VALUES ({', '.join('?' for _ in cols)})",
                        [[r[c] for c in cols] for r in rows])
    con.close()


def test_comparison_reports_differing_rows(tmp_path):
    """The harness: marts written with SQL types and read back compare equal; a change shows clearly."""
    from test_oracle import comp, deliver, enr

    d1, d2 = dt.date(2026, 1, 1), dt.date(2026, 1, 2)
    landing = tmp_path / "landing"
    deliver(landing, "UP", d1, enrolment=enr(("u1", "स्वास्थ्य", "2026-01-01"), ("u2", "A", "2025-01-01")),
            completion=comp(("u1", "c1", "", "n", "01:20:00", "2026-01-01", "Completed", "2026-01-01", "Yes"),
                            ("u9", "c1", "", "n", "01:00:00", "2026-01-01", "In Progress", "", "")))
    oracle = Oracle([StateConfig(s.code, s.name, Fraction(1)) for s in load_registry()])  # no rejection
    oracle.run_night(landing, d1)
    oracle.run_night(landing, d2)
    expected = oracle.marts()
    assert all(expected[t] for t in MART_TABLES)
    db_file = tmp_path / "wh.duckdb"
    write_marts(db_file, expected)
    assert compare_marts(expected, read_marts(db_file)) == []

    con = duckdb.connect(str(db_file))
    con.execute("UPDATE mart.state_summary SET registered_users = 7, learning_hours = 1.34 "
                "WHERE state_code = 'UP' AND report_date = DATE '2026-01-02'")
    con.execute("DELETE FROM mart.feed_status WHERE state_code = 'UP' AND report_date = DATE '2026-01-01' "
                "AND feed = 'completion'")
    con.execute("DROP TABLE mart.quarantine_summary")
    con.close()
    lines = compare_marts(expected, read_marts(db_file))
    assert any(line.startswith("cannot read mart.quarantine_summary") for line in lines)
    assert "state_summary report_date=2026-01-02 state_code=UP: registered_users expected 2, actual 7" in lines
    assert not any("learning_hours" in line for line in lines)  # 1.33 vs 1.34 is within a cent
    assert any(line.startswith("feed_status report_date=2026-01-01 state_code=UP feed=completion: row missing")
               for line in lines)
    assert len(lines) == 3, lines
    assert "registered_users" in report({"2026-01-02": lines})


# --------------------------------------------------------------------------- hand-written corner cases


def test_hand_written_corner_cases_night_by_night(tmp_path):
    """Deliveries written by hand to hit the contract's corner cases, some landing between nights."""
    from test_oracle import comp, csv_bytes, deliver, enr, jsonl_bytes

    import gzip

    d = date_range(START, DAYS)
    landing = tmp_path / "landing"
    landing.mkdir()

    def users(prefix, n, dept="Health", reg="2025-06-01"):
        return [(f"{prefix}{i}", dept, reg) for i in range(n)]

    def done(user, content, hours="01:00:00", on="2025-12-01", cert="Yes", batch=""):
        return (user, content, batch, "कोर्स", hours, "2025-11-01", "Completed", on, cert)

    # UP: a snapshot removes a user on D2; a completion for a user registered only on D4 is held meanwhile.
    deliver(landing, "UP", d[0], enrolment=enr(*users("up", 12), ("upx", "  Police   Dept ", "2026-01-01")),
            completion=comp(*[done(f"up{i}", f"c{j}") for i in range(12) for j in range(i % 4)],
                            done("up2", "c9", on="2026-01-01")))
    deliver(landing, "UP", d[1], "snapshot", enrolment=enr(*[u for u in users("up", 12) if u[0] != "up2"],
                                                          ("upx", "Police Dept", "2026-01-01")))
    deliver(landing, "UP", d[2], completion=comp(*[done(f"up{i}", "c20") for i in range(3, 12)],
                                                 done("upnew", "c1", on="2026-01-02")))
    deliver(landing, "UP", d[3], enrolment=enr(("upnew", "Health", "2026-01-03")))
    # UK: x transfers in from UP with a newer version of one of UP's keys.
    deliver(landing, "UK", d[1], enrolment=enr(("up3", "Revenue", "2026-01-02"), *users("uk", 10)),
            completion=comp(("up3", "c0", "", "n", "01:00:00", "2025-11-01", "In Progress", "", ""),
                            done("up3", "c7", on="2026-01-02"), *[done(f"uk{i}", "c1") for i in range(10)]))
    # AP: a snapshot with fewer than half the rows is rejected (volume_drop).
    deliver(landing, "AP", d[0], "snapshot", enrolment=enr(*users("ap", 10)))
    deliver(landing, "AP", d[1], "snapshot", enrolment=enr(*users("ap", 4)))
    deliver(landing, "AP", d[2], "snapshot", enrolment=enr(*users("ap", 6)))
    # HR: too many bad rows on D1; re-delivered fixed before night 3.
    bad = enr(*users("hr", 8), ("hr8", "", "2025-01-01"), ("hr9", "Health", "31/02/2025"))
    deliver(landing, "HR", d[0], enrolment=bad)
    # GJ: one row of each quarantine code, under the 10 % threshold, plus an identical duplicate.
    deliver(landing, "GJ", d[0], enrolment=enr(*users("gj", 60), ("gj0", "Health", "2025-06-01"),
                                               ("gjz", "", "2025-01-01"), ("gjy", "A", "02-01-2026"),
                                               ("gjw", "A", "2025-13-01"), ("gjv", "A", "2025-01-01"),
                                               ("gjv", "B", "2025-01-01")),
            completion=comp(*[done(f"gj{i}", "c1") for i in range(60)],
                            ("gj1", "c2", "", "n", "01:00:00", "2025-11-01", "Completed", "", ""),
                            ("gj1", "c3", "", "n", "01:00:00", "2025-11-01", "Completed", "2025-10-01", ""),
                            ("gj1", "c4", "", "n", "1:5:00", "2025-11-01", "In Progress", "", ""),
                            ("gjq", "c1", "", "n", "01:00:00", "2025-11-01", "In Progress", "", "")))
    # Feed rules on other states.
    deliver(landing, "CG", d[0], enrolment=("enrolment.csv.gz", b"not gzip at all", 1))
    deliver(landing, "GA", d[0], enrolment=("enrolment.csv", csv_bytes(["User_ID", "Registration"],
                                                                       [["g1", "2025-01-01"]]), 1))
    deliver(landing, "AR", d[0], enrolment=enr(*users("ar", 5)), rows_patch={"enrolment": 4})
    deliver(landing, "MH", d[0], enrolment=enr(*users("mh", 5)), manifest=False)  # still uploading
    # KA: JSONL.gz, header spellings, date formats, BOM-less, numbers as JSON numbers.
    ka_enr = [{"USER-ID": f"ka{i}", "department": "राजस्व  विभाग", "User Registration Date": f"{i + 1:02d}/12/2025 10:00 PM"}
              for i in range(5)]
    ka_comp = [{"user_id": f"ka{i}", "content_id": "c1", "content_name": "n", "content_duration": "02:15:30",
                "enrolled_on": "2025-12-30", "status": 2, "completed_on": "01-01-2026 08:00",
                "certificate_generated": "YES", "user_rating": 4.5} for i in range(5)]
    deliver(landing, "KA", d[3], enrolment=("enrolment.jsonl", jsonl_bytes(ka_enr), 5),
            completion=("completion.jsonl.gz", gzip.compress(jsonl_bytes(ka_comp)), 5))
    # TN: a snapshot whose row for an existing user is quarantined (bad date): the user is not absent (V1).
    deliver(landing, "TN", d[0], "snapshot", enrolment=enr(*users("tn", 20)))
    deliver(landing, "TN", d[1], "snapshot", enrolment=enr(*users("tn", 19), ("tn19", "Health", "2025-02-30")))
    # MP -> RJ: a person's completions pooled across states, where RJ's later version of a key is
    # In Progress: nationally the key is not completed, so the person has 2 distinct courses, not 3 (V4).
    deliver(landing, "MP", d[0], enrolment=enr(("pool", "A", "2025-01-01")),
            completion=comp(done("pool", "c1"), done("pool", "c2"), done("pool", "c3")))
    deliver(landing, "RJ", d[1], enrolment=enr(("pool", "B", "2025-01-01")),
            completion=comp(("pool", "c1", "", "n", "01:00:00", "2025-11-01", "In Progress", "", "")))
    # WB: CSV with a BOM, CRLF, header spellings, a quoted multi-line department, numeric statuses,
    # a duration over 24 h, day-first dates with times, and a duplicate that is identical once normalised (Q1).
    wb_enr = csv_bytes(["user id", "DEPARTMENT", "User-Registration-Date", "Email"],
                       [*[[f"wb{i}", "Public  Works,\nRoads", "01-06-2025 10:30:15 pm", "x@y"] for i in range(12)],
                        ["wb0", "Public Works, Roads", "2025-06-01", "other@y"]], bom=True, crlf=True)
    wb_comp = csv_bytes(["USER_ID", "content-id", "batch id", "Content Name", "Content Duration", "Enrolled On",
                         "STATUS", "Completed On", "Certificate Generated", "Content_Progress_Percentage"],
                        [[f"wb{i}", f"c{i % 3}", f"b{i % 2}", "सड़क सुरक्षा", "100:00:00", "01/11/2025",
                          ["2", "1", "COMPLETED", "0"][i % 4], "15/12/2025 09:00" if i % 4 in (0, 2) else "",
                          "yes" if i % 3 else "No", "100" if i % 4 in (0, 2) else "50"] for i in range(12)],
                        bom=True, crlf=True)
    deliver(landing, "WB", d[0], enrolment=("enrolment.csv", wb_enr, 13), completion=("completion.csv", wb_comp, 12))
    # BR: D2 arrives before D1 (late).
    deliver(landing, "BR", d[1], enrolment=enr(("br1", "Police", "2025-01-01")))

    env = cli_env(tmp_path)
    db_file = tmp_path / "wh.duckdb"
    oracle = Oracle(load_registry(os.environ.get("MOU_STATES_FILE", REGISTRY_CSV)))
    diffs: dict[str, list[str]] = {}
    for night in d:
        if night == d[2]:  # between nights 2 and 3: BR's late D1, HR's fixed re-delivery
            deliver(landing, "BR", d[0], enrolment=enr(("br1", "Health", "2025-01-01"), ("br2", "Health", "2025-01-01")))
            deliver(landing, "HR", d[0], enrolment=enr(*users("hr", 10)))
        oracle.run_night(landing, night)
        mou_etl(["run", "--date", night.isoformat(), "--landing", str(landing),
                 "--warehouse", f"duckdb:///{db_file}"], env)
        diffs[night.isoformat()] = compare_marts(oracle.marts(), read_marts(db_file))
    if any(diffs.values()):
        pytest.fail(report(diffs), pytrace=False)


@pytest.mark.postgres
def test_bad_rows_night_by_night_on_postgresql(tmp_path, postgres_url):
    """The same end-to-end scenario with the PostgreSQL warehouse: its marts equal the oracle's too
    (and so DuckDB's, which the test above compares with the same oracle)."""
    run = run_scenario(tmp_path, "0.05", postgres_url=postgres_url)
    if any(run["diffs"].values()):
        pytest.fail(report(run["diffs"]), pytrace=False)

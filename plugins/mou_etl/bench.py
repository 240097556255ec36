"""Side-by-side benchmark of the pipeline: ``make bench`` / ``python -m mou_etl.bench``.

    python -m mou_etl.bench [--scale 1.0] [--delta-scale S] [--backend duckdb|postgresql]
                            [--out BENCHMARKS.md] [--keep] [--flat-check | --no-flat-check]

Everything runs on files made by the project's generator (``mou_etl.generate``)
in a bench folder (``<data dir>/bench/run-...``, removed at the end unless
``--keep``). Every measured step runs in a fresh subprocess: its wall time,
CPU time and peak RSS (the child and all its descendants, polled with psutil
every 50 ms, and at least the kernel's ``ru_maxrss``) belong to that step
alone. The generated files are written just before, so every method reads
them warm from the page cache.

What is measured
----------------
* **UP snapshot**: Uttar Pradesh, one ``snapshot`` delivery at ``--scale``
  (1.0 = the public volumes: 18.8 lakh enrolment + ~72 lakh completion rows,
  about 2.9 GB), written as plain CSV (``plain_csv=True``) so every method can
  read the same two files.

  - ``limit``: a raw bulk load with no logic. DuckDB: ``CREATE TABLE t AS
    SELECT * FROM read_csv(file)`` for both files into a fresh DuckDB file.
    PostgreSQL: ``COPY t FROM STDIN (FORMAT csv, HEADER)`` through psycopg 3,
    the file streamed in 1 MiB blocks, into fresh all-TEXT tables.
  - ``naive``: the textbook pipeline. pandas ``read_csv`` (defaults), a Great
    Expectations 1.x validation with default settings on the DataFrame
    (not-null on the required columns, status in set, progress between 0 and
    100, dates and duration matching a regex), then ``DataFrame.to_sql`` (defaults)
    into a fresh table of the same backend. It runs on the first ``--naive-rows``
    completion rows and the same share of the enrolment file. Its time is
    **extrapolated** linearly to the full files: the fixed part (interpreter,
    imports, GX context) once, plus each feed's read+validate+load time times
    (full rows / subset rows). Peak RSS is extrapolated the same way from the
    RSS above the process baseline. Both rows are in the table, labelled.
  - ``ours``: ``python -m mou_etl run --date D --state UP --landing L
    --warehouse <fresh warehouse>``, end to end (discover, verify, archive,
    stage and validate, quarantine, load, held rows, rollup), with
    ``MOU_DATA_DIR`` in the bench folder.
  - ``limit``, ``ours`` and the flat check's ``ours`` run ``--runs`` times each
    (default 2, each into a fresh table or warehouse): the table shows the wall
    time of the faster run and the highest peak RSS, the notes every run. The
    machine is shared, and a neighbour can slow one run of either by 15 % or
    more.
  - ``rollup``: ``mou_etl.night.national_rollup(D, url)`` alone, in a small
    subprocess, on the warehouse ``ours`` just loaded (the rollup always
    recomputes D).
  - ``flat check`` (on by default; ``--no-flat-check`` skips it):
    ``ours`` again on a UP snapshot of half the scale (the full one doubles it), to compare peak RSS.
* **National delta**: every state of the registry (28), generated with
  ``days=2`` at ``--delta-scale`` (default min(0.1, scale); with the
  generator's usual mix of formats: gzip, JSONL, BOM, ...). Night 1 (the
  snapshots) is loaded first and is **not** part of the target; night 2 (the
  deltas, including the states that send a snapshot every day and the two that
  skip the day) is the measured nightly run: ``python -m mou_etl run --date D2``.
  The national rollup on that warehouse is measured too (informational).

The targets (defined at scale 1.0; at other scales the verdicts are indicative):
UP snapshot end to end <= 3x limit; >= 20x faster than naive; peak RSS of the
pipeline <= 2 GiB; doubling the snapshot grows the peak RSS by <= 10 %;
national delta night <= 120 s; rollup <= 30 s. With ``--backend postgresql``
the one target is the first (<= 3x its raw COPY); the table shows the other
five for reference, marked as DuckDB targets.

The results go to stdout and to ``--out`` (default ``BENCHMARKS.md``, or
``BENCHMARKS-postgresql.md`` with ``--backend postgresql``, at the
repository root, overwritten) with the date, the machine, the load average and
the exact command. The exit status is 0 when the benchmark ran, even if targets
fail (the table says FAIL); 2 with a one-line cause when it could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from . import settings

SNAPSHOT_DATE = "2026-01-05"          # the UP snapshot's report date
NATIONAL_START = "2026-01-04"         # national: night 1 (snapshots) and night 2 = +1 day (deltas)
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MIB = 1024 * 1024
POLL_SECONDS = 0.05
COPY_BLOCK = 1 << 20

TARGET_OURS_VS_LIMIT = 3.0
TARGET_NAIVE_VS_OURS = 20.0
TARGET_PEAK_RSS_MIB = 2048.0
TARGET_FLAT_GROWTH = 0.10
TARGET_DELTA_SECONDS = 120.0
TARGET_ROLLUP_SECONDS = 30.0


class BenchError(RuntimeError):
    """The benchmark could not run; the message is the one-line cause."""


def _say(msg: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Measuring a subprocess
# ----------------------------------------------------------------------------------------------
def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


TIME_BIN = "/usr/bin/time"


def measure(argv: list[str], env: dict, log_path: Path, cwd: Path | None = None) -> dict:
    """Run argv to completion; return wall/CPU seconds, peak RSS (bytes) and the exit code.

    Peak RSS is the highest polled sum over the child and its descendants, and at
    least the maximum RSS that GNU time reports for the command (catching spikes
    between polls). The kernel's ru_maxrss of our own fork is not used: before
    exec it counts the parent's pages too."""
    import psutil

    log_path.parent.mkdir(parents=True, exist_ok=True)
    if cwd is not None:
        Path(cwd).mkdir(parents=True, exist_ok=True)
    time_file = log_path.with_name(log_path.name + ".time")
    if os.access(TIME_BIN, os.X_OK):
        argv = [TIME_BIN, "-f", "%M", "-o", str(time_file), *argv]
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True)
    peak = 0
    try:
        ps = psutil.Process(proc.pid)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss(ps))
            time.sleep(POLL_SECONDS)
    except BaseException:
        try:
            os.killpg(proc.pid, 9)       # the child's own process group (start_new_session)
        except OSError:
            pass
        raise
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code               # reaped here; keep Popen from waiting again
    try:
        peak = max(peak, int(time_file.read_text().split()[-1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss": peak,
        "exit_code": code,
        "load1": os.getloadavg()[0],
        "log": str(log_path),
    }


def _outcomes(m: dict) -> str:
    """The feed outcomes of one ``ours`` run, e.g. ``2 feed(s) loaded``."""
    return ", ".join(f"{v} feed(s) {k}" for k, v in sorted(m["outcomes"].items()))


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _checked(m: dict, what: str) -> dict:
    if m["exit_code"] != 0:
        raise BenchError(f"{what} failed with exit code {m['exit_code']} (log {m['log']}):\n{_tail(m['log'])}")
    return m


# ----------------------------------------------------------------------------------------------
# The child tasks (python -m mou_etl.bench _child TASK SPEC.json)
# ----------------------------------------------------------------------------------------------
def _child_limit_duckdb(spec: dict) -> dict:
    import duckdb

    con = duckdb.connect(spec["db"])
    out = {}
    for f in spec["files"]:
        path = f["path"].replace("'", "''")
        try:
            con.execute(f"CREATE TABLE {f['feed']} AS SELECT * FROM read_csv('{path}')")
            how = "read_csv"
        except duckdb.Error:      # the sniffer guessed a type that a later row breaks
            con.execute(f"DROP TABLE IF EXISTS {f['feed']}")
            con.execute(f"CREATE TABLE {f['feed']} AS SELECT * FROM read_csv('{path}', all_varchar = true)")
            how = "read_csv(all_varchar)"
        out[f["feed"]] = {"rows": con.execute(f"SELECT count(*) FROM {f['feed']}").fetchone()[0], "how": how}
    con.close()
    return out


def _child_limit_postgresql(spec: dict) -> dict:
    import csv

    import psycopg

    out = {}
    with psycopg.connect(spec["url"], autocommit=False) as conn:
        for f in spec["files"]:
            with open(f["path"], "rb") as fh:
                first = fh.readline()
            head = first.decode("utf-8").lstrip("\ufeff")
            cols = next(csv.reader([head]))
            ddl = ", ".join(f'"{c.replace(chr(34), chr(34) * 2)}" TEXT' for c in cols)
            with conn.cursor() as cur:
                cur.execute(f"CREATE TABLE {f['feed']} ({ddl})")
                with open(f["path"], "rb") as fh:
                    if first.startswith(b"\xef\xbb\xbf"):
                        fh.read(3)                      # COPY does not know the BOM
                    with cur.copy(f"COPY {f['feed']} FROM STDIN (FORMAT csv, HEADER true)") as copy:
                        while block := fh.read(COPY_BLOCK):
                            copy.write(block)
                cur.execute(f"SELECT count(*) FROM {f['feed']}")
                out[f["feed"]] = {"rows": cur.fetchone()[0], "how": "COPY FROM STDIN"}
            conn.commit()
    return out


_NAIVE_REQUIRED = {
    "enrolment": ["userid", "department", "userregistrationdate"],
    "completion": ["userid", "contentid", "contentname", "contentduration", "enrolledon", "status"],
}
_NAIVE_DATES = {"enrolment": ["userregistrationdate"], "completion": ["enrolledon", "completedon"]}
_DATE_RE = r"^\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[-/]\d{1,2}[-/]\d{4})(\s.*)?$"
_DURATION_RE = r"^\s*\d+:\d{2}:\d{2}\s*$"
_STATUS_SET = ["Not Started", "In Progress", "Completed", "not started", "in progress", "completed",
               "NOT STARTED", "IN PROGRESS", "COMPLETED", "0", "1", "2", 0, 1, 2]


def _child_naive(spec: dict) -> dict:
    """pandas read_csv -> Great Expectations (defaults) -> DataFrame.to_sql, per feed."""
    import pandas as pd
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import psutil
    import sqlalchemy as sa

    ctx = gx.get_context(mode="ephemeral")
    engine = sa.create_engine(spec["url"])
    base_rss = psutil.Process().memory_info().rss
    out = {"base_rss": base_rss, "feeds": {}}
    for f in spec["files"]:
        feed = f["feed"]
        t0 = time.perf_counter()
        df = pd.read_csv(f["path"], nrows=f["nrows"])
        t1 = time.perf_counter()
        cols = {re.sub(r"[\s_-]", "", c.lstrip("\ufeff").lower()): c for c in df.columns}
        source = ctx.data_sources.add_pandas(f"naive_{feed}")
        asset = source.add_dataframe_asset(feed)
        batch_def = asset.add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"naive_{feed}"))
        for c in _NAIVE_REQUIRED[feed]:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=cols[c]))
        for c in _NAIVE_DATES[feed]:
            suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=cols[c], regex=_DATE_RE))
        if feed == "completion":
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=cols["status"], value_set=_STATUS_SET))
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(
                column=cols["contentprogresspercentage"], min_value=0, max_value=100))
            suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=cols["contentduration"], regex=_DURATION_RE))
        validation = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"naive_{feed}", data=batch_def, suite=suite))
        result = validation.run(batch_parameters={"dataframe": df})
        t2 = time.perf_counter()
        df.to_sql(feed, engine, if_exists="replace", index=False)
        t3 = time.perf_counter()
        out["feeds"][feed] = {
            "rows": len(df), "read_s": t1 - t0, "validate_s": t2 - t1, "load_s": t3 - t2,
            "expectations": len(suite.expectations), "success": bool(result.success),
        }
        del df, result
    engine.dispose()
    return out


def _child_rollup(spec: dict) -> dict:
    from .night import national_rollup

    t0 = time.perf_counter()
    r = national_rollup(spec["date"], spec["url"])
    r["function_seconds"] = time.perf_counter() - t0
    return r


_CHILDREN = {
    "limit_duckdb": _child_limit_duckdb,
    "limit_postgresql": _child_limit_postgresql,
    "naive": _child_naive,
    "rollup": _child_rollup,
}


def _child_main(task: str, spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    result = _CHILDREN[task](spec)
    Path(spec["result"]).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


# ----------------------------------------------------------------------------------------------
# The machine
# ----------------------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _disk(path: Path) -> str:
    import psutil

    path = path.resolve()
    best = None
    for part in psutil.disk_partitions(all=False):
        mp = Path(part.mountpoint)
        if path == mp or mp in path.parents:
            if best is None or len(str(mp)) > len(best.mountpoint):
                best = part
    if best is None:
        return "unknown"
    usage = psutil.disk_usage(best.mountpoint)
    dev = Path(best.device).name
    kind = ""
    block = dev if Path(f"/sys/block/{dev}").exists() else re.sub(r"p?[0-9]+$", "", dev)
    try:  # virtual disks (virtio) often say rotational whatever backs them
        rotational = Path(f"/sys/block/{block}/queue/rotational").read_text().strip() == "1"
        kind = f", kernel reports {'rotational' if rotational else 'non-rotational'}"
    except OSError:
        pass
    return (f"{best.device} ({best.fstype}{kind}) mounted at {best.mountpoint}, "
            f"{usage.total / 1e9:.0f} GB, {usage.free / 1e9:.0f} GB free")


def machine(bench_root: Path) -> dict:
    import duckdb
    import psutil

    versions = {"Python": platform.python_version(), "DuckDB": duckdb.__version__}
    for mod, name in (("pandas", "pandas"), ("great_expectations", "Great Expectations"),
                      ("sqlalchemy", "SQLAlchemy"), ("psycopg", "psycopg")):
        try:
            versions[name] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a version string is informational
            pass
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": psutil.virtual_memory().total / (1024 ** 3),
        "disk": _disk(bench_root),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


# ----------------------------------------------------------------------------------------------
# PostgreSQL databases for one run
# ----------------------------------------------------------------------------------------------
class _PgServer:
    def __init__(self, admin_url: str, run_id: str):
        import psycopg

        self.admin_url = admin_url.replace("postgresql+psycopg://", "postgresql://")
        try:
            self.conn = psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)
        except Exception as exc:  # noqa: BLE001
            raise BenchError(f"PostgreSQL not reachable at {self.admin_url} (set MOU_TEST_POSTGRES_URL): "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}") from None
        self.version = self.conn.execute("SHOW server_version").fetchone()[0]
        self.run_id = run_id
        self.created: list[str] = []

    def database(self, role: str) -> str:
        name = f"mou_bench_{self.run_id}_{role}"
        self.conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.admin_url.rsplit('/', 1)[0]}/{name}"

    def drop_all(self) -> None:
        for name in self.created:
            try:
                self.conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
                self.conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            except Exception as exc:  # noqa: BLE001
                _say(f"could not drop database {name}: {exc}")
        self.created = []
        self.conn.close()


# ----------------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------------
def _files_of(delivery: dict) -> list[dict]:
    return [{"feed": f["feed"], "path": str(Path(delivery["path"]) / f["name"]), "rows": f["rows"],
             "bytes": f["bytes"]} for f in delivery["files"]]


def _parse_night(log: str) -> dict:
    """Counts of feed outcomes from the headless run's lines (`UP 2026-01-05 completion: loaded, ...`)."""
    counts: dict[str, int] = {}
    for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^[A-Z]{2,3} \d{4}-\d{2}-\d{2} (enrolment|completion): (\w+)", line)
        if m:
            counts[m.group(2)] = counts.get(m.group(2), 0) + 1
    return counts


def _states(n: int) -> str:
    return f"{n} state" + ("" if n == 1 else "s")


class Bench:
    def __init__(self, args: argparse.Namespace, argv: list[str]):
        self.args = args
        self.argv = argv
        self.run_id = datetime.now().strftime("%Y%m%d%H%M%S") + "_" + uuid.uuid4().hex[:6]
        base = Path(args.workdir) if args.workdir else settings.data_dir() / "bench"
        self.root = base / f"run-{self.run_id}"
        self.results: list[dict] = []
        self.info: dict = {"generation": {}}
        self.pg: _PgServer | None = None
        self.py = sys.executable

    # -- helpers
    def _env(self, data_dir: Path, extra: dict | None = None) -> dict:
        env = dict(os.environ)
        for k in ("MOU_WAREHOUSE_URL", "MOU_LANDING_DIR", "MOU_ARCHIVE_DIR", "MOU_WORK_DIR"):
            env.pop(k, None)
        env["MOU_DATA_DIR"] = str(data_dir)
        env["GX_ANALYTICS_ENABLED"] = "false"    # no network calls from any GX context
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def _warehouse(self, role: str, folder: Path) -> str:
        if self.args.backend == "postgresql":
            return self.pg.database(role)
        folder.mkdir(parents=True, exist_ok=True)
        return f"duckdb:///{folder / 'warehouse.duckdb'}"

    def _child(self, task: str, spec: dict, name: str, data_dir: Path) -> tuple[dict, dict]:
        folder = self.root / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        spec = dict(spec, result=str(folder / f"{name}.result.json"))
        spec_path = folder / f"{name}.spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        m = measure([self.py, "-m", "mou_etl.bench", "_child", task, str(spec_path)], self._env(data_dir),
                    folder / f"{name}.log", cwd=data_dir)
        _checked(m, name)
        return m, json.loads(Path(spec["result"]).read_text(encoding="utf-8"))

    def _ours(self, name: str, report_date: str, landing: Path, url: str, data_dir: Path,
              states: list[str] | None) -> dict:
        argv = [self.py, "-m", "mou_etl", "run", "--date", report_date]
        for s in states or []:
            argv += ["--state", s]
        argv += ["--landing", str(landing), "--warehouse", url]
        m = measure(argv, self._env(data_dir), self.root / "logs" / f"{name}.log", cwd=data_dir)
        _checked(m, f"{name} ({' '.join(argv[1:])})")
        m["outcomes"] = _parse_night(m["log"])
        return m

    def _generate(self, label: str, landing: Path, start: str, days: int, scale: float, states, plain: bool) -> dict:
        from .generate import generate

        _say(f"generating {label} (scale {scale:g}, {days} day(s)) into {landing}")
        s = generate(landing, start, days, scale=scale, seed=self.args.seed, bad_rows=self.args.bad_rows,
                     states=states, plain_csv=plain)
        t = s["totals"]
        self.info["generation"][label] = {
            "seconds": t["seconds"], "rows": t["rows"]["enrolment"] + t["rows"]["completion"],
            "bytes": t["bytes"], "files": t["files"], "states": t["states"],
        }
        return s

    def add(self, key: str, method: str, what: str, rows: int, m: dict, note: str = "",
            extrapolated: bool = False, seconds: float | None = None, peak_rss: float | None = None,
            cpu: float | None = None) -> dict:
        row = {
            "key": key, "method": method, "what": what, "rows": int(rows),
            "seconds": float(seconds if seconds is not None else m["seconds"]),
            "cpu_seconds": float(cpu if cpu is not None else m["cpu_seconds"]),
            "peak_rss_mib": float(peak_rss if peak_rss is not None else m["peak_rss"]) / MIB,
            "load1": m.get("load1"), "note": note, "extrapolated": extrapolated,
        }
        row["rows_per_s"] = row["rows"] / row["seconds"] if row["seconds"] > 0 else 0.0
        self.results.append(row)
        _say(f"{method}: {row['rows']:,} rows in {row['seconds']:.2f} s, peak RSS {row['peak_rss_mib']:.0f} MiB"
             + (" (extrapolated)" if extrapolated else ""))
        return row

    def add_runs(self, key: str, method: str, what: str, rows: int, runs: list[dict], note: str = "") -> dict:
        """One row for repeated runs of a step: the wall time (and CPU) of the
        faster run, the highest peak RSS of all, every run in the note."""
        fastest = min(runs, key=lambda m: m["seconds"])
        walls = ", ".join(f"{m['seconds']:.2f}" for m in runs)
        rss = ", ".join(f"{m['peak_rss'] / MIB:.0f}" for m in runs)
        about = (f"wall time of the faster of {len(runs)} runs (wall s: {walls}), peak RSS the highest (MiB: {rss})"
                 if len(runs) > 1 else "one run")
        return self.add(key, method, what, rows, fastest, note=f"{note}; {about}" if note else about,
                        peak_rss=max(m["peak_rss"] for m in runs))

    def _ours_runs(self, name: str, folder: Path, n_files: int, say: str,
                   keep_first: bool = False) -> tuple[list[dict], str]:
        """``--runs`` runs of ``python -m mou_etl run`` on the UP snapshot in
        ``folder/landing``, each on a fresh warehouse (``folder/<name>``,
        ``<name>2``, ...), each required to load all ``n_files`` files. Returns
        their measurements and the first run's warehouse URL; its folder
        (``folder/<name>``) is kept with ``keep_first``, every other one is dropped."""
        runs, first_url = [], ""
        for i in range(self.args.runs):
            run = name if i == 0 else f"{name}{i + 1}"
            _say(f"{say} (run {i + 1} of {self.args.runs})")
            run_dir = folder / run
            run_url = self._warehouse(run, run_dir)
            m = self._ours(run, SNAPSHOT_DATE, folder / "landing", run_url, run_dir / "data", ["UP"])
            if m["outcomes"].get("loaded", 0) != n_files:
                raise BenchError(f"{run} did not load the UP snapshot ({_outcomes(m) or 'no feed lines'}); "
                                 f"log {m['log']}:\n{_tail(m['log'])}")
            runs.append(m)
            if i == 0:
                first_url = run_url
            if i > 0 or not keep_first:
                self._drop(run_dir)
        return runs, first_url

    def _drop(self, path: Path) -> None:
        if not self.args.keep:
            shutil.rmtree(path, ignore_errors=True)

    # -- the steps
    def run(self) -> dict:
        a = self.args
        self.root.mkdir(parents=True, exist_ok=True)
        self.info["started"] = datetime.now(timezone.utc)
        self.info["load_before"] = os.getloadavg()
        self.info["machine"] = machine(self.root)
        if a.backend == "postgresql":
            self.pg = _PgServer(os.environ.get("MOU_TEST_POSTGRES_URL", DEFAULT_PG), self.run_id)
            self.info["machine"]["versions"]["PostgreSQL server"] = self.pg.version
        try:
            self._up_snapshot()
            self._national()
        finally:
            if self.pg is not None and not a.keep:
                self.pg.drop_all()
            elif self.pg is not None:
                _say(f"kept databases: {', '.join(self.pg.created)}")
            if a.keep:
                _say(f"kept the bench folder {self.root}")
            else:
                shutil.rmtree(self.root, ignore_errors=True)
        self.info["finished"] = datetime.now(timezone.utc)
        self.info["load_after"] = os.getloadavg()
        return self.report()

    def _up_snapshot(self) -> None:
        a = self.args
        up = self.root / "up"
        s = self._generate("UP snapshot", up / "landing", SNAPSHOT_DATE, 1, a.scale, ["UP"], True)
        delivery = s["states"]["UP"]["deliveries"][SNAPSHOT_DATE]
        files = _files_of(delivery)
        rows = sum(f["rows"] for f in files)
        by_feed = {f["feed"]: f for f in files}
        size = sum(f["bytes"] for f in files) / 1e6
        self.info["up"] = {"rows": rows, "mb": size, "files": files}
        pg = a.backend == "postgresql"

        # limit (each of its runs into a fresh table)
        runs = []
        for i in range(a.runs):
            name = "limit" if i == 0 else f"limit{i + 1}"
            _say(f"limit: raw bulk load (run {i + 1} of {a.runs})")
            if pg:
                url = self.pg.database(name)
                m, r = self._child("limit_postgresql", {"url": url, "files": files}, name, up)
                what = "COPY FROM STDIN (psycopg 3, 1 MiB blocks) into all-TEXT tables"
            else:
                (up / name).mkdir(parents=True, exist_ok=True)
                m, r = self._child("limit_duckdb", {"db": str(up / name / "limit.duckdb"), "files": files}, name, up)
                hows = sorted({v["how"] for v in r.values()})
                what = f"DuckDB CREATE TABLE AS SELECT * FROM {' / '.join(hows)}"
            loaded = sum(v["rows"] for v in r.values())
            if loaded != rows:
                raise BenchError(f"limit loaded {loaded} rows, the files hold {rows}")
            runs.append(m)
            self._drop(up / name)
        self.add_runs("limit", "limit", what, rows, runs)

        # naive (a subset, extrapolated)
        n_c = by_feed["completion"]["rows"]
        sub_c = min(n_c, a.naive_rows)
        share = sub_c / n_c if n_c else 1.0
        nfiles = []
        for f in files:
            n = f["rows"] if f["feed"] == "completion" and sub_c == n_c else max(1, round(f["rows"] * share))
            nfiles.append({"feed": f["feed"], "path": f["path"], "nrows": min(n, f["rows"])})
        _say(f"naive: pandas + GX + to_sql on {sum(x['nrows'] for x in nfiles):,} rows")
        (up / "naive").mkdir(parents=True, exist_ok=True)
        url = self.pg.database("naive") if pg else f"duckdb:///{up / 'naive' / 'naive.duckdb'}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        m, r = self._child("naive", {"url": url, "files": nfiles}, "naive", up / "naive")
        feeds = r["feeds"]
        sub_rows = sum(v["rows"] for v in feeds.values())
        variable = sum(v["read_s"] + v["validate_s"] + v["load_s"] for v in feeds.values())
        fixed = max(0.0, m["seconds"] - variable)
        factors = {k: by_feed[k]["rows"] / v["rows"] for k, v in feeds.items() if v["rows"]}
        extra_s = sum((v["read_s"] + v["validate_s"] + v["load_s"]) * factors[k] for k, v in feeds.items())
        full_s = fixed + extra_s
        full_cpu = m["cpu_seconds"] * (full_s / m["seconds"]) if m["seconds"] else m["cpu_seconds"]
        fmax = max(factors.values()) if factors else 1.0
        full_rss = r["base_rss"] + max(0, m["peak_rss"] - r["base_rss"]) * fmax
        ok = all(v["success"] for v in feeds.values())
        phases = "; ".join(f"{k} {v['rows']:,} rows: read {v['read_s']:.1f} s, GX {v['validate_s']:.1f} s, "
                           f"to_sql {v['load_s']:.1f} s" for k, v in feeds.items())
        target = "PostgreSQL" if pg else "DuckDB"
        what = f"pandas read_csv, GX 1.x ({sum(v['expectations'] for v in feeds.values())} expectations, "\
               f"{'all passed' if ok else 'some FAILED'}), to_sql into {target}"
        extrapolated = sub_rows < rows
        self.add("naive_subset", "naive (measured subset)" if extrapolated else "naive", what, sub_rows, m,
                 note=f"{phases}; fixed (start-up, imports, GX context) {fixed:.1f} s")
        if extrapolated:
            self.add("naive", "naive (EXTRAPOLATED to full files)", "linear: fixed part once + per-feed time x "
                     "(full rows / subset rows); RSS above baseline x the same factor", rows, m, extrapolated=True,
                     seconds=full_s, peak_rss=full_rss, cpu=full_cpu,
                     note=f"factor {', '.join(f'{k} x{v:,.1f}' for k, v in factors.items())}"
                          + (f"; the extrapolated RSS exceeds this machine's {self.info['machine']['ram_gib']:.1f} "
                             "GiB RAM: as written it would not run here" if full_rss / 1024 ** 3 >
                             self.info["machine"]["ram_gib"] else ""))
        else:
            self.results[-1]["key"] = "naive"
        self._drop(up / "naive")

        # ours (each of its runs on a fresh warehouse; the rollup below uses the first)
        ours_dir = up / "ours"
        runs, url = self._ours_runs("ours", up, len(files), "ours: python -m mou_etl run --state UP "
                                    "(end to end)", keep_first=True)
        self.add_runs("ours", "ours", "python -m mou_etl run --state UP: verify, archive, stage+validate, "
                      "quarantine, load, rollup", rows, runs, note=_outcomes(runs[-1]))

        # rollup alone, on that warehouse
        _say("rollup: national_rollup() on the UP warehouse")
        m, r = self._child("rollup", {"date": SNAPSHOT_DATE, "url": url}, "rollup", ours_dir / "data")
        self.add("rollup", "rollup (UP loaded)", f"mou_etl.night.national_rollup('{SNAPSHOT_DATE}') in a fresh "
                 "process", rows, m, note=f"function {r['function_seconds']:.2f} s, rest is start-up; "
                 f"dates computed {', '.join(r['dates_computed'])}")
        self._drop(ours_dir)
        self._drop(up / "landing")

        # memory flatness: the same command on a snapshot of half the rows; the
        # full snapshot is then the doubled one (scale/2 -> scale)
        flat = a.flat_check
        self.info["flat_check"] = flat
        if flat:
            half = a.scale / 2
            uph = self.root / "up_half"
            s2 = self._generate("UP snapshot / 2", uph / "landing", SNAPSHOT_DATE, 1, half, ["UP"], True)
            files2 = _files_of(s2["states"]["UP"]["deliveries"][SNAPSHOT_DATE])
            rows2 = sum(f["rows"] for f in files2)
            # as many runs as the full snapshot had: the highest peak RSS of
            # each is compared (one run's RSS varies by a few per cent)
            runs, _ = self._ours_runs("ours_half", uph, len(files2), f"ours at scale {half:g} (flat check: "
                                         "the full snapshot doubles it)")
            self.add_runs("ours_half", f"ours, half snapshot (scale {half:g}; flat check)", "the same command on "
                          "a UP snapshot of half the rows", rows2, runs)
            self._drop(uph)

    def _national(self) -> None:
        a = self.args
        nat = self.root / "national"
        states = a.delta_state or None
        s = self._generate("national", nat / "landing", NATIONAL_START, 2, a.delta_scale, states, False)
        d1 = NATIONAL_START
        d2 = (date.fromisoformat(NATIONAL_START) + timedelta(days=1)).isoformat()
        codes = list(s["states"])
        rows1 = sum(f["rows"] for st in s["states"].values() for f in st["deliveries"].get(d1, {"files": []})["files"])
        rows2 = sum(f["rows"] for st in s["states"].values() for f in st["deliveries"].get(d2, {"files": []})["files"])
        modes = {}
        for st in s["states"].values():
            if d2 in st["deliveries"]:
                mode = st["deliveries"][d2]["mode"]
                modes[mode] = modes.get(mode, 0) + 1
        skipped = [x["state"] for x in s["skipped"]]
        from .states import registry

        total = len(registry())
        scope = f"all {total} states" if len(codes) == total else f"{len(codes)} of the {total} states ({', '.join(codes)})"
        self.info["national"] = {"states": len(codes), "scope": scope, "rows_night1": rows1, "rows_night2": rows2,
                                 "modes_night2": modes, "skipped": skipped, "scale": a.delta_scale}
        url = self._warehouse("national", nat / "ours")
        data = nat / "ours" / "data"
        _say(f"national night 1 ({d1}, snapshots of {len(codes)} states; not part of the target)")
        m = self._ours("national_night1", d1, nat / "landing", url, data, states)
        self.add("national_night1", f"national night 1, {_states(len(codes))} (snapshots; setup, untargeted)",
                 f"python -m mou_etl run --date {d1} (scale {a.delta_scale:g})", rows1, m,
                 note=_outcomes(m))
        _say(f"national night 2 ({d2}, the nightly delta)")
        m = self._ours("national_delta", d2, nat / "landing", url, data, states)
        mode_note = ", ".join(f"{v} {k}" for k, v in sorted(modes.items())) or "none"
        self.add("national_delta", f"national delta night 2, {_states(len(codes))}",
                 f"python -m mou_etl run --date {d2} after night 1 (scale {a.delta_scale:g})", rows2, m,
                 note=f"deliveries: {mode_note}; skipped (stale): {', '.join(skipped) or 'none'}; "
                      + (_outcomes(m) or "no feed lines"))
        _say("national rollup on the national warehouse")
        m, r = self._child("rollup", {"date": d2, "url": url}, "rollup_national", data)
        self.add("rollup_national", f"rollup ({_states(len(codes))} loaded)", f"national_rollup('{d2}') in a fresh "
                 f"process (scale {a.delta_scale:g})", rows1 + rows2, m,
                 note=f"function {r['function_seconds']:.2f} s; {r['states_reporting']}/{r['states_total']} "
                      f"states reporting, {r['states_stale']} stale")
        self._drop(nat)

    # -- the report
    def _row(self, key: str) -> dict | None:
        return next((r for r in self.results if r["key"] == key), None)

    def report(self) -> dict:
        a = self.args
        limit, naive, ours = self._row("limit"), self._row("naive"), self._row("ours")
        ours_half, delta, rollup = self._row("ours_half"), self._row("national_delta"), self._row("rollup")
        ratios = {
            "ours_over_limit": ours["seconds"] / limit["seconds"],
            "naive_over_ours": naive["seconds"] / ours["seconds"],
        }
        if ours_half:
            ratios["rss_growth_x2"] = ours["peak_rss_mib"] / ours_half["peak_rss_mib"] - 1.0
        pipeline = [r for r in self.results if r["key"] in ("ours", "rollup", "national_night1", "national_delta",
                                                            "rollup_national")]
        peak = max(pipeline, key=lambda r: r["peak_rss_mib"])
        limit_name = "COPY" if a.backend == "postgresql" else "limit"
        targets = [
            {"target": f"UP snapshot end to end <= {TARGET_OURS_VS_LIMIT:g}x {limit_name}",
             "value": f"{ratios['ours_over_limit']:.2f}x ({ours['seconds']:.1f} s / {limit['seconds']:.1f} s)",
             "ok": ratios["ours_over_limit"] <= TARGET_OURS_VS_LIMIT,
             "postgresql": True},  # the one target the issue also sets for PostgreSQL
            {"target": f">= {TARGET_NAIVE_VS_OURS:g}x faster than naive",
             "value": f"{ratios['naive_over_ours']:.1f}x ({naive['seconds']:.1f} s"
                      f"{' extrapolated' if naive['extrapolated'] else ''} / {ours['seconds']:.1f} s)",
             "ok": ratios["naive_over_ours"] >= TARGET_NAIVE_VS_OURS},
            {"target": f"peak RSS <= {TARGET_PEAK_RSS_MIB / 1024:g} GiB (every pipeline process at this scale)",
             "value": f"{peak['peak_rss_mib']:.0f} MiB ({peak['method']})",
             "ok": peak["peak_rss_mib"] <= TARGET_PEAK_RSS_MIB},
        ]
        if ours_half:
            targets.append({"target": f"doubling the snapshot grows peak RSS by <= {TARGET_FLAT_GROWTH:.0%}",
                            "value": f"{ratios['rss_growth_x2']:+.1%} ({ours_half['peak_rss_mib']:.0f} MiB at "
                                     f"{ours_half['rows']:,} rows -> {ours['peak_rss_mib']:.0f} MiB at "
                                     f"{ours['rows']:,} rows)",
                            "ok": ratios["rss_growth_x2"] <= TARGET_FLAT_GROWTH})
        else:
            targets.append({"target": f"doubling the snapshot grows peak RSS by <= {TARGET_FLAT_GROWTH:.0%}",
                            "value": "not measured (--no-flat-check)", "ok": None})
        targets += [
            {"target": f"national delta night <= {TARGET_DELTA_SECONDS:g} s",
             "value": f"{delta['seconds']:.1f} s ({delta['rows']:,} rows, {_states(self.info['national']['states'])}, "
                      f"scale {a.delta_scale:g})",
             "ok": delta["seconds"] <= TARGET_DELTA_SECONDS},
            {"target": f"rollup <= {TARGET_ROLLUP_SECONDS:g} s",
             "value": f"{rollup['seconds']:.1f} s (UP snapshot loaded, scale {a.scale:g})",
             "ok": rollup["seconds"] <= TARGET_ROLLUP_SECONDS},
        ]
        text = self.render(ratios, targets)
        default = "BENCHMARKS.md" if a.backend == "duckdb" else f"BENCHMARKS-{a.backend}.md"
        out = Path(a.out) if a.out else settings.PROJECT_ROOT / default
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(text)
        _say(f"wrote {out}")
        result = {"results": self.results, "ratios": ratios, "targets": targets, "out": str(out),
                  "info": self.info}
        if a.json:
            Path(a.json).write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        return result

    def render(self, ratios: dict, targets: list[dict]) -> str:
        a, i = self.args, self.info
        mc = i["machine"]
        lb, la = i["load_before"], i["load_after"]
        cmd = "python -m mou_etl.bench" + ("" if not self.argv else " " + shlex.join(self.argv))
        up = i["up"]
        nat = i["national"]
        lines = [
            "# Benchmarks",
            "",
            "Written by `make bench` / `python -m mou_etl.bench` (`plugins/mou_etl/bench.py`); every run "
            "overwrites this file, so it shows the latest run.",
            "",
            f"* **Date**: {i['started'].strftime('%Y-%m-%d %H:%M UTC')} "
            f"(took {(i['finished'] - i['started']).total_seconds() / 60:.1f} min)",
            f"* **Command**: `{cmd}`",
            f"* **Machine**: {mc['cpu']}, {mc['cores']} cores, {mc['ram_gib']:.1f} GiB RAM, {mc['os']}; "
            f"disk {mc['disk']}",
            f"* **Load average** (1/5/15 min) before: {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after: "
            f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f} (the machine is shared; `load` in the table is the 1-min "
            "load when each step ended)",
            "* **Software**: " + ", ".join(f"{k} {v}" for k, v in mc["versions"].items()),
            f"* **Scale** {a.scale:g} (UP snapshot), **delta scale** {a.delta_scale:g} (national), "
            f"**backend** {a.backend}, seed {a.seed}, bad rows {a.bad_rows:g}",
            "",
            "## What was measured",
            "",
            f"* **UP snapshot**: one Uttar Pradesh snapshot delivery, report date {SNAPSHOT_DATE}, plain CSV: "
            + ", ".join(f"{f['feed']} {f['rows']:,} rows / {f['bytes'] / 1e6:,.0f} MB" for f in up["files"])
            + f" ({up['rows']:,} rows, {up['mb']:,.0f} MB). limit, naive and ours read these same files, "
            "warm in the page cache.",
            "* Each step is a fresh subprocess; wall and CPU seconds and peak RSS (child plus descendants) are "
            "that process's alone. Rows/s = rows / wall seconds.",
            "* **naive** ran on a prefix of the files and is **extrapolated** linearly to the full files "
            "(see its two rows); the measured subset row is shown as is.",
            f"* **national delta**: {nat['scope']} generated for 2 days at scale {nat['scale']:g} "
            f"(the generator's mixed formats: gzip, JSONL, BOM, CRLF, ...). Night 1 ({nat['rows_night1']:,} rows of "
            f"snapshots) was loaded first; night 2 ({nat['rows_night2']:,} rows) is the measured nightly delta. "
            f"States that skipped night 2 (stale): {', '.join(nat['skipped']) or 'none'}.",
            "* **rollup**: `national_rollup(date, url)` alone in a fresh process (start-up included) on the "
            "warehouse that `ours` loaded.",
            "* Generation (not measured as a method): " + "; ".join(
                f"{k} {v['rows']:,} rows, {v['bytes'] / 1e6:,.0f} MB in {v['seconds']:.1f} s"
                for k, v in i["generation"].items()),
        ]
        if a.backend == "postgresql":
            lines.append("* PostgreSQL: the server's own processes are not children of the measured process, so "
                         "their CPU time and memory are not in the CPU s / peak RSS columns (wall time includes them).")
        if a.scale != 1.0 or a.delta_scale != 0.1:
            lines.append(f"* The targets are defined at scale 1.0 (UP) and for a realistic national night; at "
                         f"scale {a.scale:g} / delta scale {a.delta_scale:g} the verdicts are indicative only.")
        lines += ["", "## Results", ""] + self.table() + ["", "## Ratios (from the measured values above)", ""]
        lines.append(f"* ours / limit = {self._row('ours')['seconds']:.2f} s / {self._row('limit')['seconds']:.2f} s"
                     f" = **{ratios['ours_over_limit']:.2f}x**")
        nv = self._row("naive")
        lines.append(f"* naive / ours = {nv['seconds']:.2f} s{' (extrapolated)' if nv['extrapolated'] else ''} / "
                     f"{self._row('ours')['seconds']:.2f} s = **{ratios['naive_over_ours']:.1f}x**")
        if "rss_growth_x2" in ratios:
            lines.append(f"* peak RSS, full snapshot / half snapshot = {self._row('ours')['peak_rss_mib']:.0f} / "
                         f"{self._row('ours_half')['peak_rss_mib']:.0f} MiB = **{1 + ratios['rss_growth_x2']:.3f}** "
                         f"({ratios['rss_growth_x2']:+.1%})")
        lines += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
        for t in targets:
            verdict = "PASS" if t["ok"] else ("FAIL" if t["ok"] is False else "not measured")
            if a.backend == "duckdb" or t.get("postgresql"):
                verdict = f"**{verdict}**"
            else:
                verdict = f"{verdict} (a DuckDB target, shown for reference)"
            lines.append(f"| {t['target']} | {t['value']} | {verdict} |")
        lines += ["", "Notes per step:", ""]
        for r in self.results:
            lines.append(f"* **{r['method']}**: {r['what']}" + (f". {r['note']}" if r["note"] else ""))
        return "\n".join(lines) + "\n"

    def table(self) -> list[str]:
        out = ["| method | rows | wall s | rows/s | CPU s | peak RSS MiB | load |",
               "|---|---:|---:|---:|---:|---:|---:|"]
        for r in self.results:
            mark = " (extrapolated)" if r["extrapolated"] else ""
            load = "" if r["extrapolated"] or r["load1"] is None else f"{r['load1']:.2f}"
            out.append(f"| {r['method']} | {r['rows']:,} | {r['seconds']:,.2f}{mark} | {r['rows_per_s']:,.0f} | "
                       f"{r['cpu_seconds']:,.1f} | {r['peak_rss_mib']:,.0f}{mark} | {load} |")
        return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mou_etl.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="UP snapshot scale; 1.0 = public volumes (default 1.0)")
    p.add_argument("--delta-scale", type=float, default=None, dest="delta_scale",
                   help="scale of the 2-day national generation (default min(0.1, scale))")
    p.add_argument("--delta-state", action="append", default=None, dest="delta_state",
                   help="limit the national delta to these states (repeatable; default every state)")
    p.add_argument("--backend", choices=("duckdb", "postgresql"), default="duckdb",
                   help="warehouse for limit/naive/ours (postgresql: MOU_TEST_POSTGRES_URL's server)")
    p.add_argument("--out", default=None, help="markdown report (default BENCHMARKS.md at the repository root; "
                   "BENCHMARKS-postgresql.md with --backend postgresql)")
    p.add_argument("--json", default=None, help="also write the raw results as JSON to this file")
    p.add_argument("--runs", type=int, default=2,
                   help="runs of limit, of ours and of the flat check's ours; the table shows the faster wall time "
                        "and the highest peak RSS of each, the notes every run (the machine is shared: one run can "
                        "be slowed by a neighbour; default 2)")
    p.add_argument("--keep", action="store_true", help="keep the bench folder (and PostgreSQL databases)")
    p.add_argument("--flat-check", action=argparse.BooleanOptionalAction, default=True, dest="flat_check",
                   help="also run ours on a snapshot of half the scale, so that the full one doubles it, and "
                        "compare peak RSS (default on)")
    p.add_argument("--naive-rows", type=int, default=200_000, dest="naive_rows",
                   help="completion rows the naive pipeline runs on before extrapolating (default 200000)")
    p.add_argument("--workdir", default=None, help="where the bench folder goes (default <data dir>/bench)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--bad-rows", type=float, default=0.0, dest="bad_rows",
                   help="fraction of bad rows the generator adds to every file (default 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_child"]:
        return _child_main(argv[1], argv[2])
    args = build_parser().parse_args(argv)
    if not args.scale > 0:
        print("mou_etl.bench: --scale must be > 0", file=sys.stderr)
        return 2
    if args.delta_scale is None:
        args.delta_scale = min(0.1, args.scale)
    if not args.delta_scale > 0 or args.naive_rows < 1 or args.runs < 1:
        print("mou_etl.bench: --delta-scale must be > 0, --naive-rows and --runs >= 1", file=sys.stderr)
        return 2
    try:
        Bench(args, argv).run()
    except KeyboardInterrupt:
        print("mou_etl.bench: interrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"mou_etl.bench: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, the cause
        import traceback

        traceback.print_exc()
        print(f"mou_etl.bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # no interpreter teardown: GX keeps DuckDB objects alive and nanobind reports them as leaks
    os._exit(code)

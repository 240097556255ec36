"""The demo: ``make run`` = ``python -m mou_etl.standalone``.

Runs the whole pipeline on this machine with Airflow 3 ``airflow standalone``
(scheduler, DAG processor, triggerer and API server/UI on http://localhost:8080,
LocalExecutor, SQLite metadata DB, simple auth manager), on sample data:

1. sets up the environment: AIRFLOW_HOME=<repo>/.airflow (unless set), the
   repository's ``dags/`` and ``plugins/``, no example DAGs, the project's data
   under <repo>/data (``MOU_*`` defaults), a short sensor poke for the demo;
2. writes sample deliveries of every state for the last 7 report dates, ending
   on the latest report date whose cutoff has passed (skipped when the landing
   zone already has them);
3. migrates the Airflow DB, starts ``airflow standalone`` in the background
   (its output goes to .airflow/standalone.log), creates the pool
   ``mou_warehouse`` (1 slot: DuckDB allows one writing process), unpauses the
   MoU DAGs, makes sure every state DAG has a run for the latest report date
   (the scheduler creates it; triggered if not) and backfills the national
   rollup for the 7 report dates;
4. waits (bounded, printing progress) until those runs finish, prints where
   the UI is, how to log in, where the warehouse is, and the national summary
   from the mart; then keeps Airflow running until Ctrl-C, or stops it and
   exits with ``--exit-when-done`` (or MOU_RUN_EXIT=1): 0 when every run
   succeeded, 1 otherwise.

Talks to Airflow only through its CLI (``db migrate``, ``standalone``) and its
public REST API (``/api/v2``, token from ``/auth/token``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from . import schedule, settings
from .states import registry

REPO = settings.PROJECT_ROOT
POOL = "mou_warehouse"
ROLLUP_DAG = "mou_national_rollup"
FINISHED = {"success", "failed"}


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


def say(message: str = "") -> None:
    print(f"[mou] {message}" if message else "", flush=True)


# --------------------------------------------------------------------------- environment


def configure_environment(exit_when_done: bool) -> None:
    """Set the variables Airflow (and the components it starts) and the pipeline read."""
    env = os.environ
    home = env.setdefault("AIRFLOW_HOME", str(REPO / ".airflow"))
    Path(home).mkdir(parents=True, exist_ok=True)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    # Local demo: a few task processes at a time are plenty (the warehouse pool has 1 slot anyway).
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(max(4, 2 * (os.cpu_count() or 2))))
    port = api_port()
    if port != 8080:
        env.setdefault("AIRFLOW__API__BASE_URL", f"http://localhost:{port}")
    env.setdefault("MOU_DATA_DIR", str(REPO / "data"))
    # The rollup's sensor: poke every 10 s and give up after 20 minutes in the demo
    # (production: 30 s and 3 h, the DAG's defaults).
    env.setdefault("MOU_ROLLUP_POKE_SECONDS", "10")
    env.setdefault("MOU_ROLLUP_WAIT_TIMEOUT_SECONDS", "1200")
    # `airflow standalone` starts its components as `airflow ...`: this venv's, first on PATH.
    bindir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bindir:
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    plugins = str(REPO / "plugins")
    if plugins not in env.get("PYTHONPATH", "").split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (plugins, env.get("PYTHONPATH", "")) if p)
    if exit_when_done:
        env["MOU_RUN_EXIT"] = "1"


def api_port() -> int:
    return int(os.environ.get("AIRFLOW__API__PORT", "8080"))


def airflow_home() -> Path:
    return Path(os.environ["AIRFLOW_HOME"])


def is_duckdb(url: str) -> bool:
    return url.startswith("duckdb")


# --------------------------------------------------------------------------- sample data


def ensure_sample_data(end: date, days: int, scale: float, seed: int) -> None:
    """Write sample deliveries for ``days`` report dates ending on ``end`` unless they are there."""
    landing = settings.landing_dir()
    start = end - timedelta(days=days - 1)
    marker = settings.data_dir() / "sample_deliveries.json"
    wanted = {"landing": str(landing), "start": start.isoformat(), "days": days, "scale": scale, "seed": seed}
    states = registry()
    dates = [start + timedelta(days=i) for i in range(days)]
    present = sum(
        (s.landing_path(landing) / d.isoformat() / "manifest.json").exists() for s in states.values() for d in dates
    )
    previous = _read_json(marker)
    # The generator lets a couple of states skip the last day (they show stale), so "all there" is
    # either every manifest, or the marker of the same generation with deliveries still present.
    if present == len(states) * len(dates) or (
        previous and {k: previous.get(k) for k in wanted} == wanted and present > 0
    ):
        say(f"sample deliveries {start} .. {end} already in {landing}")
        return
    from .generate import generate

    say(f"writing sample deliveries of {len(states)} states for {start} .. {end} (scale {scale}) into {landing}")
    landing.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = generate(landing, start, days, scale=scale, seed=seed)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({**wanted, "result": result}, default=str, indent=1) + "\n", encoding="utf-8")
    say(f"sample deliveries written in {time.monotonic() - started:.1f} s")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- Airflow processes


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_airflow_cli(args: list[str], log) -> None:
    log.write(f"\n===== {datetime.now().isoformat(timespec='seconds')} airflow {' '.join(args)}\n")
    log.flush()
    proc = subprocess.run(["airflow", *args], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    if proc.returncode != 0:
        raise DemoError(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}); see {log.name}")


class Standalone:
    """``airflow standalone`` in the background, in its own process group (stopped as a group)."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.log_path, "a", encoding="utf-8")
        log.write(f"\n===== {datetime.now().isoformat(timespec='seconds')} airflow standalone\n")
        log.flush()
        self.proc = subprocess.Popen(
            ["airflow", "standalone"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=os.environ.copy(),
            start_new_session=True,  # Ctrl-C in the terminal reaches us; we stop it in order
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(f"airflow standalone exited (status {self.proc.returncode}); see {self.log_path}\n"
                            + tail(self.log_path))

    def stop(self) -> None:
        """SIGINT (standalone stops its components), then SIGTERM, then SIGKILL to the process group.
        A second Ctrl-C while stopping kills the group at once."""
        if not self.alive():
            return
        say("stopping Airflow ...")
        pgid = self.proc.pid  # its own session: the group holds scheduler, api-server, workers, ...
        try:
            for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 20)):
                self._signal(pgid, sig, group=sig != signal.SIGINT)
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            self._signal(pgid, signal.SIGTERM, group=True)  # leftovers (task processes)
        except KeyboardInterrupt:
            pass
        if self.proc.poll() is None:
            self._signal(pgid, signal.SIGKILL, group=True)
            self.proc.wait(timeout=10)
        say("Airflow stopped")

    def _signal(self, pgid: int, sig: int, group: bool) -> None:
        try:
            if group:
                os.killpg(pgid, sig)
            else:
                self.proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- REST API


class Api:
    """Minimal client of Airflow's public REST API (``/api/v2``) with a simple-auth-manager token."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.token: str | None = None

    def _request(self, method: str, path: str, body=None, query: dict | None = None, auth: bool = True):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode(errors="replace")
            return exc.code, payload

    def request(self, method: str, path: str, body=None, query: dict | None = None, attempts: int = 8):
        """(status, payload); retries server errors: on SQLite the scheduler and the API server
        take turns writing the metadata DB and a request may hit 'database is locked'."""
        for attempt in range(attempts):
            try:
                status, payload = self._request(method, path, body, query)
            except (urllib.error.URLError, OSError) as exc:
                status, payload = 0, str(exc)
            if status and status < 500:
                return status, payload
            time.sleep(min(1.0 + attempt, 5.0))
        return status, payload

    def call(self, method: str, path: str, body=None, query=None, ok=(200, 201, 204)):
        status, payload = self.request(method, path, body, query)
        if status not in ok:
            raise DemoError(f"{method} {path} -> HTTP {status}: {payload}")
        return payload

    def healthy(self) -> bool:
        try:
            status, _ = self._request("GET", "/api/v2/monitor/health", auth=False)
            return status == 200
        except (urllib.error.URLError, OSError):
            return False

    def login(self, username: str, password: str | None) -> None:
        if password is None:  # simple_auth_manager_all_admins: no credentials
            status, payload = self._request("GET", "/auth/token", auth=False)
        else:
            status, payload = self._request(
                "POST", "/auth/token", {"username": username, "password": password}, auth=False
            )
        if status not in (200, 201) or not payload or "access_token" not in payload:
            raise DemoError(f"cannot log in to the Airflow API as {username!r}: HTTP {status} {payload}")
        self.token = payload["access_token"]

    def dag_runs(self, dag_pattern: str, since: datetime) -> list[dict]:
        """Runs of the DAGs matching the pattern that may run after ``since`` (scheduled,
        backfill and manual runs alike: a manual run without logical date has only run_after)."""
        runs, offset = [], 0
        while True:
            page = self.call(
                "GET",
                "/api/v2/dags/~/dagRuns",
                query={
                    "dag_id_pattern": dag_pattern,
                    "run_after_gte": since.isoformat(),
                    "limit": 100,
                    "offset": offset,
                },
            )
            runs += page["dag_runs"]
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= page["total_entries"]:
                return runs


def parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_password(timeout: float, standalone: Standalone) -> tuple[str, str | None, Path]:
    """(user, password, file) of the simple auth manager; password None when everyone is admin."""
    if os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        return "admin", None, Path()
    path = Path(
        os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        or airflow_home() / "simple_auth_manager_passwords.json.generated"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        standalone.check()
        passwords = _read_json(path)
        if passwords:
            user = "admin" if "admin" in passwords else next(iter(passwords))
            return user, passwords[user], path
        time.sleep(1)
    raise DemoError(f"no generated password in {path} after {timeout:.0f} s; see {standalone.log_path}")


# --------------------------------------------------------------------------- the demo


def wait_until(predicate, timeout: float, what: str, standalone: Standalone, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        standalone.check()
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}; see {standalone.log_path}")


def prepare_airflow(api: Api, standalone: Standalone) -> None:
    """Wait until the DAG processor has parsed the MoU DAGs; create the warehouse pool."""
    wanted = {f"mou_state_{code.lower()}" for code in registry()} | {ROLLUP_DAG}

    def dags_parsed():
        listed = api.call("GET", "/api/v2/dags", query={"dag_id_pattern": "mou_", "limit": 200})
        found = {d["dag_id"] for d in listed["dags"]}
        errors = api.call("GET", "/api/v2/importErrors", query={"limit": 50})
        if errors.get("import_errors"):
            first = errors["import_errors"][0]
            raise DemoError(f"DAG import error in {first.get('filename')}:\n{first.get('stack_trace', '')[-2000:]}")
        return wanted <= found

    say(f"waiting for the DAG processor to parse {len(wanted)} DAGs ...")
    wait_until(dags_parsed, 300, "the DAGs to be parsed", standalone)

    slots = 1 if is_duckdb(settings.warehouse_url()) else int(os.environ.get("MOU_WAREHOUSE_POOL_SLOTS", "4"))
    pool = {
        "name": POOL,
        "slots": slots,
        "description": "Tasks that use the MoU warehouse. 1 slot on DuckDB (one writing process); "
        "raise it on PostgreSQL.",
        "include_deferred": False,
    }
    status, _ = api.request("POST", "/api/v2/pools", pool)
    if status == 409:
        api.call(
            "PATCH",
            f"/api/v2/pools/{POOL}",
            {"pool": POOL, "slots": slots, "description": pool["description"], "include_deferred": False},
        )
    elif status not in (200, 201):
        raise DemoError(f"cannot create the pool {POOL}: HTTP {status}")
    say(f"pool {POOL}: {slots} slot(s)")


def start_state_runs(api: Api, latest: date, standalone: Standalone) -> dict[str, datetime]:
    """Unpause the state DAGs; make sure each has a run for ``latest``. Returns {dag_id: logical date}."""
    state_dags = {f"mou_state_{code.lower()}": s for code, s in registry().items()}
    since = {dag_id: schedule.state_logical_date(latest, s.cutoff_ist) for dag_id, s in state_dags.items()}
    for dag_id in sorted(state_dags):
        api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, query={"update_mask": "is_paused"})
    say(f"unpaused {len(state_dags)} state DAGs; the scheduler creates their runs for {latest} (catchup off)")

    def missing_runs() -> set[str]:
        runs = api.dag_runs("mou_state_", min(since.values()))
        have = {r["dag_id"] for r in runs if r["dag_id"] in since and _logical(r) and _logical(r) >= since[r["dag_id"]]}
        return set(state_dags) - have

    try:
        wait_until(lambda: not missing_runs(), 30, "scheduled state runs", standalone)
    except DemoError:
        pass
    missing = missing_runs()
    for dag_id in sorted(missing):
        status, payload = api.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": since[dag_id].isoformat(), "conf": {}}
        )
        if status not in (200, 201, 409):
            raise DemoError(f"cannot trigger {dag_id}: HTTP {status} {payload}")
    if missing:
        say(f"triggered {len(missing)} state DAG run(s) the scheduler had not created")
    return since


def start_rollup_runs(api: Api, latest: date, days: int) -> dict[date, datetime]:
    """Backfill the rollup for the report dates whose scheduled time has passed, trigger the others,
    unpause the rollup DAG. Returns {report date: logical date}."""
    report_dates = [latest - timedelta(days=i) for i in range(days - 1, -1, -1)]
    rollup_at = {d: schedule.rollup_logical_date(d) for d in report_dates}
    now = datetime.now(timezone.utc)
    runs = api.dag_runs(ROLLUP_DAG, rollup_at[report_dates[0]])
    existing = {_logical(r) for r in runs}
    past = [d for d in report_dates if rollup_at[d] < now - timedelta(seconds=5)]
    if past and any(rollup_at[d] not in existing for d in past):
        status, payload = api.request(
            "POST",
            "/api/v2/backfills",
            {
                "dag_id": ROLLUP_DAG,
                "from_date": rollup_at[past[0]].isoformat(),
                "to_date": rollup_at[past[-1]].isoformat(),
                "max_active_runs": 1,
                "reprocess_behavior": "none",
                "run_backwards": False,
            },
        )
        if status in (200, 201):
            say(f"backfill of {ROLLUP_DAG} created: report dates {past[0]} .. {past[-1]}")
        elif status == 409:
            say(f"a backfill of {ROLLUP_DAG} is already running")
        else:
            raise DemoError(f"cannot create the backfill of {ROLLUP_DAG}: HTTP {status} {payload}")
    # A run whose logical date is still ahead would wait for it (Airflow does not start tasks of a
    # run with a future logical date): trigger those report dates without a logical date and with
    # the report_date param. The scheduled run at 01:30 IST recomputes the same date later.
    manual = {(r.get("conf") or {}).get("report_date") for r in runs if not _logical(r)}
    for d in report_dates:
        if d not in past and rollup_at[d] not in existing and d.isoformat() not in manual:
            status, payload = api.request(
                "POST",
                f"/api/v2/dags/{ROLLUP_DAG}/dagRuns",
                {"logical_date": None, "conf": {"report_date": d.isoformat()}},
            )
            if status not in (200, 201, 409):
                raise DemoError(f"cannot trigger {ROLLUP_DAG} for {d}: HTTP {status} {payload}")
            say(f"triggered {ROLLUP_DAG} for report date {d} (report_date param; its scheduled run "
                f"{schedule.to_ist(rollup_at[d]):%d %b %H:%M} IST is still ahead)")
    api.call("PATCH", f"/api/v2/dags/{ROLLUP_DAG}", {"is_paused": False}, query={"update_mask": "is_paused"})
    say(f"unpaused {ROLLUP_DAG}")
    return rollup_at


def _logical(run: dict) -> datetime | None:
    return parse_ts(run.get("logical_date"))


def wait_for_runs(api: Api, label: str, wanted: dict, pattern: str, since: datetime, deadline: float,
                  standalone: Standalone) -> dict:
    """Wait until, for every key of ``wanted`` (key -> predicate on a run), a matching run finished.

    Returns {key: state of the first matching run, or None}."""
    started, last_line, last_print = time.monotonic(), "", 0.0
    while True:
        standalone.check()
        runs = sorted(api.dag_runs(pattern, since), key=lambda r: (r.get("logical_date") or "", r["run_after"]))
        found = {}
        for key, matches in wanted.items():
            states = [r["state"] for r in runs if matches(r)]
            if states:
                found[key] = next((st for st in states if st in FINISHED), states[0])
        done = sum(v in FINISHED for v in found.values())
        failed = sum(v == "failed" for v in found.values())
        elapsed = time.monotonic() - started
        line = f"{label}: {done}/{len(wanted)} finished ({failed} failed)"
        if line != last_line or elapsed - last_print > 30:
            say(f"[{elapsed:4.0f} s] {line}")
            last_line, last_print = line, elapsed
        if done == len(wanted):
            return found
        if time.monotonic() > deadline:
            say(f"gave up waiting for {label} ({len(wanted) - done} unfinished); the runs go on in Airflow")
            return {k: found.get(k) for k in wanted}
        time.sleep(3)


def _state_run_for(dag_id: str, since: datetime):
    return lambda r: r["dag_id"] == dag_id and _logical(r) is not None and _logical(r) >= since


def _rollup_run_for(report_date: date, logical: datetime):
    def matches(r: dict) -> bool:
        if r["dag_id"] != ROLLUP_DAG:
            return False
        param = (r.get("conf") or {}).get("report_date")
        if param:
            return param == report_date.isoformat()
        return _logical(r) == logical

    return matches


def national_summary(first: date, last: date) -> list[dict]:
    import sqlalchemy as sa

    url = settings.warehouse_url()
    kwargs = {"connect_args": {"read_only": True}} if is_duckdb(url) else {}
    sql = sa.text(
        "SELECT report_date, states_total, states_reporting, states_stale, registered_users, "
        "users_with_completion, course_completions FROM mart.national_summary "
        "WHERE report_date BETWEEN :a AND :b ORDER BY report_date"
    )
    last_error: Exception | None = None
    for _ in range(10):  # a task may hold DuckDB's write lock for a moment
        engine = sa.create_engine(url, **kwargs)
        try:
            with engine.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(sql, {"a": first, "b": last})]
        except Exception as exc:  # noqa: BLE001 - shown to the user below
            last_error = exc
            time.sleep(3)
        finally:
            engine.dispose()
    raise DemoError(f"cannot read mart.national_summary: {str(last_error).splitlines()[0]}")


def format_table(rows: list[dict]) -> str:
    headers = ["report date", "states reporting", "stale", "registered users", "with completion", "completions"]
    keys = ["report_date", "states_reporting", "states_stale", "registered_users", "users_with_completion",
            "course_completions"]
    cells = [[str(r.get(k, "")) if not isinstance(r.get(k), int) else f"{r[k]:,}" for k in keys] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.rjust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def _mask(url: str) -> str:
    import re

    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mou_etl.standalone",
        description="Run the MoU pipeline demo in Airflow standalone on sample data (what `make run` does).",
    )
    p.add_argument(
        "--exit-when-done",
        action="store_true",
        default=os.environ.get("MOU_RUN_EXIT", "") not in ("", "0", "false", "False"),
        help="stop Airflow and exit once the runs finished (also MOU_RUN_EXIT=1); exit status 0 when all succeeded",
    )
    p.add_argument("--days", type=int, default=7, help="report dates of sample data and rollups (default 7)")
    p.add_argument("--scale", type=float, default=0.001, help="sample data scale (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="sample data seed (default 0)")
    p.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("MOU_RUN_TIMEOUT", "2400")),
        help="seconds to wait for the runs to finish (default 2400, or MOU_RUN_TIMEOUT)",
    )
    return p


def _stop_on_signals() -> None:
    """Ctrl-C, ``kill`` and a closed terminal all stop Airflow cleanly (through KeyboardInterrupt).

    Also undoes an inherited "ignore SIGINT" (a shell's background job) so that the standalone
    process, which starts with default signal handling, can be stopped with SIGINT."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _stop_on_signals()
    if args.days < 1:
        raise SystemExit("--days must be >= 1")
    t0 = time.monotonic()
    configure_environment(args.exit_when_done)
    home = airflow_home()
    log_path = home / "standalone.log"
    port = api_port()
    base_url = os.environ.get("AIRFLOW__API__BASE_URL", f"http://localhost:{port}")
    standalone = Standalone(log_path)
    latest = schedule.latest_state_report_date(datetime.now(timezone.utc))
    say(f"AIRFLOW_HOME={home}; latest report date {latest} (cutoffs IST); data in {settings.data_dir()}")
    try:
        if port_open(port):
            raise DemoError(f"port {port} is already in use: is another Airflow (or `make run`) running? Stop it first.")
        ensure_sample_data(latest, args.days, args.scale, args.seed)

        say("migrating the Airflow metadata DB ...")
        with open(log_path, "a", encoding="utf-8") as log:
            run_airflow_cli(["db", "migrate"], log)
        say(f"starting airflow standalone (log: {log_path}) ...")
        standalone.start()
        user, password, password_file = read_password(120, standalone)
        api = Api(base_url)
        wait_until(api.healthy, 240, f"the API server on {base_url}", standalone)
        api.login(user, password)
        say(f"Airflow is up ({time.monotonic() - t0:.0f} s): {base_url}")

        prepare_airflow(api, standalone)
        deadline = time.monotonic() + args.timeout
        phase = time.monotonic()
        state_since = start_state_runs(api, latest, standalone)
        states_result = wait_for_runs(
            api, "state nights",
            {dag_id: _state_run_for(dag_id, at) for dag_id, at in state_since.items()},
            "mou_state_", min(state_since.values()), deadline, standalone,
        )
        states_seconds = time.monotonic() - phase
        # The rollups start once the states are done: the sensor then passes at its first poke
        # (it would wait, rescheduling, if started earlier; the result is the same).
        phase = time.monotonic()
        rollup_at = start_rollup_runs(api, latest, args.days)
        rollups_result = wait_for_runs(
            api, "national rollups",
            {d: _rollup_run_for(d, at) for d, at in rollup_at.items()},
            ROLLUP_DAG, min(rollup_at.values()), max(deadline, time.monotonic() + 120), standalone,
        )
        rollups_seconds = time.monotonic() - phase
        rows = national_summary(min(rollup_at), latest)

        results = [*states_result.values(), *rollups_result.values()]
        complete = all(v in FINISHED for v in results)
        ok = all(v == "success" for v in results)
        failed = sorted(k for k, v in states_result.items() if v == "failed")
        failed += [f"{ROLLUP_DAG} {d}" for d, v in sorted(rollups_result.items()) if v == "failed"]
        say()
        say(f"Mission Karmayogi MoU pipeline: runs {'finished' if complete else 'NOT finished'}: "
            f"state nights {states_seconds:.0f} s, national rollups {rollups_seconds:.0f} s "
            f"(total {time.monotonic() - t0:.0f} s)")
        if failed:
            say(f"failed runs: {', '.join(failed)}")
        say(f"  Airflow UI   {base_url}")
        if password is None:
            say("  Login        none needed (simple auth manager, everyone is admin)")
        else:
            say(f"  Login        user {user!r}, password {password!r} (also in {password_file})")
        say(f"  Warehouse    {_mask(settings.warehouse_url())}")
        say(f"  Landing      {settings.landing_dir()}")
        say(f"  Logs         {log_path} (Airflow), {home / 'logs'} (tasks)")
        say()
        say("mart.national_summary:")
        print(format_table(rows) if rows else "  (no rows yet)", flush=True)
        print(flush=True)
        if args.exit_when_done:
            return 0 if ok and rows else 1
        say("Airflow keeps running (the DAGs run at their cutoffs and the rollup at "
            f"{schedule.rollup_time():%H:%M} IST). Press Ctrl-C to stop.")
        while standalone.alive():
            time.sleep(1)
        standalone.check()
        return 0
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except DemoError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        standalone.stop()


if __name__ == "__main__":
    raise SystemExit(main())

"""The production stack, natively on this machine: what docker-compose.yaml runs, without Docker.

Airflow 3.3 with the LocalExecutor and PostgreSQL for both the Airflow metadata
and the warehouse, started as separate processes exactly as the compose
services are:

* ``airflow db migrate``, ``airflow pools set mou_warehouse 8`` and
  ``python -m mou_etl migrate`` (the init service);
* ``airflow scheduler`` (LocalExecutor: task processes are its children),
  ``airflow dag-processor`` (parses dags/ and serialises the DAGs into the
  metadata DB) and ``airflow api-server``. In Airflow 3 every task process talks
  to the metadata DB only through the Task Execution API that the api-server
  serves under ``/execution/``, so the api-server is required even with the
  LocalExecutor: it runs on a free port and
  ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` points there. The scheduler signs
  the tasks' tokens and the api-server checks them: both get the same
  ``AIRFLOW__API_AUTH__JWT_SECRET``.

The admin logs in to the api-server with the password of the simple auth
manager's password file, as in the compose stack. At the end a member of
``mou_bi_reader`` can read the marts and nothing else.

A fresh database each for the metadata and the warehouse (dropped at the end),
a temporary AIRFLOW_HOME, a landing zone written by the sample generator for a
two-state registry (UP, UK: only two state DAGs exist). The scheduler creates
no scheduled runs (``[scheduler] use_job_schedule = False``); the test triggers
``mou_state_up`` and ``mou_state_uk`` with ``airflow dags trigger --conf
'{"report_date": ...}'``, waits for them, then triggers ``mou_national_rollup``
the same way and checks the marts of the date in the PostgreSQL warehouse.

Every wait is bounded. On failure the message carries the tails of the
component logs and of the task logs. The processes are always stopped (their
process groups) and the databases dropped.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")

REPORT_DATE = date(2026, 1, 6)
STATES = ["UP", "UK"]
STATE_DAGS = [f"mou_state_{code.lower()}" for code in STATES]
ROLLUP_DAG = "mou_national_rollup"
POOL_SLOTS = 8
ADMIN_USER = "admin"
MART_TABLES = ["state_summary", "national_summary", "department_summary", "feed_status"]

#: Bounds (seconds): every wait of the test ends.
CLI_TIMEOUT = 180
STARTUP_TIMEOUT = 180
RUN_TIMEOUT = float(os.environ.get("MOU_TEST_AIRFLOW_RUN_TIMEOUT", "240"))
STOP_TIMEOUT = 30


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


class Stack:
    """The Airflow components as subprocesses, each in its own process group, logs in files."""

    def __init__(self, home: Path, env: dict[str, str], metadata_url: str):
        self.home = home
        self.env = env
        self.metadata_url = metadata_url  # plain postgresql:// for psycopg
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    # -- processes -----------------------------------------------------------------

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        """Run ``airflow <args>`` to completion; its output, or a failed test with the output."""
        log = self.home / "cli.log"
        try:
            proc = subprocess.run(
                [AIRFLOW, *args], env=self.env, cwd=self.home, capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`airflow {' '.join(args)}` did not finish in {timeout:.0f} s\n{exc.stdout}\n{exc.stderr}")
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"===== airflow {' '.join(args)} (exit {proc.returncode})\n{proc.stdout}\n{proc.stderr}\n")
        if proc.returncode != 0:
            pytest.fail(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}):\n"
                        f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        return proc.stdout

    def start(self, name: str, *args: str) -> None:
        log_path = self.home / f"{name}.log"
        self.logs[name] = log_path
        with open(log_path, "ab") as log:
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, *args], env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"airflow {name} exited (status {proc.returncode})\n{self.diagnostics()}")

    def stop(self) -> None:
        """SIGTERM to every process group (the scheduler's task processes included), then SIGKILL."""
        for proc in self.procs.values():
            self._signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            self._signal(proc, signal.SIGKILL)  # leftovers of the group, or a process that ignored SIGTERM
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # start_new_session: the group id is the pid
        except (ProcessLookupError, PermissionError):
            pass

    # -- metadata DB -----------------------------------------------------------------

    def query(self, sql: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.metadata_url, connect_timeout=10) as conn:
            return conn.execute(sql, params).fetchall()

    def wait_until(self, what: str, predicate, timeout: float, interval: float = 2.0):
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.diagnostics()}")
            time.sleep(interval)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> float:
        """Wait until the run succeeds; fail at once when it or a task fails. Returns the seconds taken."""
        started = time.monotonic()

        def finished():
            rows = self.query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
            state = rows[0][0] if rows else None
            if state == "failed":
                pytest.fail(f"{dag_id} run {run_id} failed\n{self.diagnostics()}")
            bad = self.query(
                "SELECT task_id, state FROM task_instance WHERE dag_id = %s AND run_id = %s "
                "AND state IN ('failed', 'up_for_retry', 'upstream_failed')",
                (dag_id, run_id),
            )
            # The rollup's sensor may be retried spuriously (see dags/mou_national_rollup.py): tolerated.
            bad = [b for b in bad if not (b[0] == "wait_for_states" and b[1] == "up_for_retry")]
            if bad:
                pytest.fail(f"{dag_id} run {run_id}: task(s) {bad}\n{self.diagnostics()}")
            return state == "success"

        self.wait_until(f"{dag_id} run {run_id} to succeed", finished, timeout)
        return time.monotonic() - started

    # -- failure report --------------------------------------------------------------

    def diagnostics(self) -> str:
        parts = []
        try:
            runs = self.query("SELECT dag_id, run_id, state FROM dag_run ORDER BY id")
            tis = self.query(
                "SELECT dag_id, run_id, task_id, state, try_number FROM task_instance ORDER BY dag_id, run_id, task_id"
            )
            errors = self.query("SELECT filename, stacktrace FROM import_error")
            parts.append("dag runs: " + json.dumps([list(r) for r in runs], default=str))
            parts.append("task instances:\n" + "\n".join("  " + " ".join(map(str, t)) for t in tis))
            if errors:
                parts.append("import errors:\n" + "\n".join(f"{f}:\n{s}" for f, s in errors))
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the failure
            parts.append(f"(metadata DB not readable: {exc})")
        task_logs = sorted((self.home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        for path in task_logs[-6:]:
            parts.append(f"----- task log {path.relative_to(self.home)}, last lines:\n{tail(path, 40)}")
        for name, path in self.logs.items():
            parts.append(f"----- {name} ({path}), last lines:\n{tail(path, 60 if name == 'scheduler' else 25)}")
        return "\n".join(parts)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def databases(postgres_admin):
    """Two fresh databases: Airflow metadata and warehouse; dropped afterwards."""
    conn, url = postgres_admin
    suffix = uuid.uuid4().hex[:10]
    names = {"metadata": f"mou_test_af_{suffix}", "warehouse": f"mou_test_wh_{suffix}"}
    base = url.rsplit("/", 1)[0]
    created = []
    try:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
        yield {role: f"{base}/{name}" for role, name in names.items()}
    finally:
        for name in created:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def landing(tmp_path, monkeypatch):
    """A two-state registry and a landing zone with two report dates ending on REPORT_DATE."""
    states_file = tmp_path / "states.csv"
    source = (REPO / "include" / "config" / "states.csv").read_text(encoding="utf-8").splitlines()
    states_file.write_text(
        "\n".join([source[0], *(line for line in source[1:] if line.split(",")[0] in STATES)]) + "\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MOU_STATES_FILE", str(states_file))
    from mou_etl.generate import generate

    # With two states the generator lets one skip the last day (it shows stale): pick a seed
    # where UP delivers it.
    for seed in range(1, 30):
        root = tmp_path / f"landing-{seed}"
        summary = generate(root, REPORT_DATE - timedelta(days=1), 2, scale=0.0005, seed=seed, states=STATES)
        if not any(s["state"] == "UP" for s in summary.get("skipped", [])):
            break
    return {"states_file": states_file, "landing": root, "summary": summary}


def stack_environment(home: Path, tmp: Path, dbs: dict, landing: dict, port: int) -> dict[str, str]:
    """The subprocesses' environment: this one without any AIRFLOW_*/MOU_* (another test's
    conftest may have set them), plus what the compose file sets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MOU_", "_AIRFLOW"))}
    metadata = dbs["metadata"].replace("postgresql://", "postgresql+psycopg://", 1)
    env.update(
        {
            "PATH": os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
            "PYTHONPATH": os.pathsep.join(p for p in [str(REPO / "plugins"), env.get("PYTHONPATH", "")] if p),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__FERNET_KEY": fernet_key(),
            # Psycopg 3 for both engines; without the async URL Airflow derives postgresql+asyncpg.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            # HS512: PyJWT warns below 64 bytes of key.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            # As in docker-compose.yaml: one admin whose password is in a file written beforehand.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            # Only the runs the test triggers: no scheduled runs of the cron timetables.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "MOU_WAREHOUSE_URL": dbs["warehouse"],
            "MOU_DATA_DIR": str(tmp / "data"),
            "MOU_LANDING_DIR": str(landing["landing"]),
            "MOU_ARCHIVE_DIR": str(tmp / "archive"),
            "MOU_WORK_DIR": str(tmp / "work"),
            "MOU_STATES_FILE": str(landing["states_file"]),
            "MOU_ROLLUP_POKE_SECONDS": "2",
            "MOU_ROLLUP_WAIT_TIMEOUT_SECONDS": "120",
        }
    )
    return env


def api_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def api_call(port: int, method: str, path: str, body=None, token: str | None = None):
    """(status, JSON payload) of a request to the api-server."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def landing_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- the test


def test_local_executor_stack_runs_a_night_on_postgresql(tmp_path, databases, landing):
    import psycopg

    timings: dict[str, float] = {}
    t0 = time.monotonic()
    home = tmp_path / "airflow"
    home.mkdir()
    port = free_port()
    env = stack_environment(home, tmp_path, databases, landing, port)
    stack = Stack(home, env, databases["metadata"])
    try:
        # --- the init service: metadata DB, pool, warehouse schema
        stack.cli("db", "migrate")
        stack.cli("pools", "set", "mou_warehouse", str(POOL_SLOTS), "MoU warehouse tasks (PostgreSQL)")
        migrate = subprocess.run(
            [sys.executable, "-m", "mou_etl", "migrate"], env=env, capture_output=True, text=True,
            timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        assert migrate.returncode == 0, f"python -m mou_etl migrate: {migrate.stdout}\n{migrate.stderr}"
        admin_password = secrets.token_urlsafe(16)
        password_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        password_file.write_text(json.dumps({ADMIN_USER: admin_password}) + "\n", encoding="utf-8")
        password_file.chmod(0o600)
        landing_before = landing_snapshot(landing["landing"])
        timings["init"] = time.monotonic() - t0
        assert stack.query("SELECT slots FROM slot_pool WHERE pool = 'mou_warehouse'") == [(POOL_SLOTS,)]

        # --- the long-running services
        t = time.monotonic()
        stack.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
        stack.start("dag-processor", "dag-processor")
        stack.start("scheduler", "scheduler")
        wanted = [*STATE_DAGS, ROLLUP_DAG]

        def dags_serialised():
            errors = stack.query("SELECT filename, stacktrace FROM import_error")
            if errors:
                pytest.fail("DAG import errors:\n" + "\n".join(f"{f}:\n{s}" for f, s in errors))
            rows = stack.query("SELECT dag_id FROM serialized_dag WHERE dag_id = ANY(%s)", (wanted,))
            return {r[0] for r in rows} == set(wanted)

        stack.wait_until("the DAG processor to serialise the DAGs", dags_serialised, STARTUP_TIMEOUT)
        all_dags = {r[0] for r in stack.query("SELECT dag_id FROM dag WHERE is_stale = false")}
        assert all_dags == set(wanted), f"only the registry's states have DAGs: {sorted(all_dags)}"
        stack.wait_until(f"the api-server on port {port}", lambda: api_healthy(port), STARTUP_TIMEOUT)
        timings["startup"] = time.monotonic() - t
        # The admin logs in with the password of the file (what the compose api-server writes).
        status, payload = api_call(port, "POST", "/auth/token", {"username": ADMIN_USER, "password": "wrong"})
        assert status == 401, (status, payload)
        status, payload = api_call(port, "POST", "/auth/token", {"username": ADMIN_USER, "password": admin_password})
        assert status in (200, 201) and payload.get("access_token"), (status, payload)
        token = payload["access_token"]
        status, payload = api_call(port, "GET", "/api/v2/dags?dag_id_pattern=mou_", token=token)
        assert status == 200 and payload["total_entries"] == len(wanted), (status, payload)

        # --- the states' nights, then the rollup, triggered as an operator would
        conf = json.dumps({"report_date": REPORT_DATE.isoformat()})
        t = time.monotonic()
        runs = {}
        for dag_id in STATE_DAGS:
            runs[dag_id] = f"test_{dag_id}_{REPORT_DATE}"
            stack.cli("dags", "trigger", dag_id, "--run-id", runs[dag_id], "--conf", conf)
        for dag_id in STATE_DAGS:
            stack.wait_for_run(dag_id, runs[dag_id])
        timings["state nights"] = time.monotonic() - t

        t = time.monotonic()
        rollup_run = f"test_rollup_{REPORT_DATE}"
        stack.cli("dags", "trigger", ROLLUP_DAG, "--run-id", rollup_run, "--conf", conf)
        stack.wait_for_run(ROLLUP_DAG, rollup_run)
        timings["rollup"] = time.monotonic() - t

        status, payload = api_call(port, "GET", f"/api/v2/dags/{ROLLUP_DAG}/dagRuns/{rollup_run}", token=token)
        assert status == 200 and payload["state"] == "success", (status, payload)
        assert payload["conf"] == {"report_date": REPORT_DATE.isoformat()}

        # --- the marts of the date in the PostgreSQL warehouse
        with psycopg.connect(databases["warehouse"], connect_timeout=10) as wh:
            counts = {
                table: wh.execute(f"SELECT count(*) FROM mart.{table} WHERE report_date = %s", (REPORT_DATE,))
                .fetchone()[0]
                for table in MART_TABLES
            }
            states = dict(
                wh.execute(
                    "SELECT state_code, is_stale FROM mart.state_summary WHERE report_date = %s", (REPORT_DATE,)
                ).fetchall()
            )
            up_users = wh.execute(
                "SELECT registered_users FROM mart.state_summary WHERE report_date = %s AND state_code = 'UP'",
                (REPORT_DATE,),
            ).fetchone()[0]
            national = wh.execute(
                "SELECT states_total, registered_users FROM mart.national_summary WHERE report_date = %s",
                (REPORT_DATE,),
            ).fetchone()
        assert counts["state_summary"] == len(STATES), counts
        assert counts["national_summary"] == 1, counts
        assert counts["feed_status"] == 2 * len(STATES), counts
        assert counts["department_summary"] > 0, counts
        assert set(states) == set(STATES)
        assert states["UP"] is False, "UP delivered the date: not stale"
        assert up_users > 0
        assert national[0] == len(STATES) and national[1] >= up_users
        # The archive went to the configured folder, not the repository's data/; the landing
        # zone was only read (the compose file mounts it read-only).
        assert any((tmp_path / "archive").rglob("*")), "the archive folder is empty"
        assert landing_snapshot(landing["landing"]) == landing_before, "the pipeline changed the landing zone"

        # --- what a BI login (member of mou_bi_reader) may read: the marts, and nothing else
        with psycopg.connect(databases["warehouse"], connect_timeout=10, autocommit=True) as wh:
            wh.execute("SET ROLE mou_bi_reader")
            assert wh.execute("SELECT count(*) FROM mart.state_summary").fetchone()[0] == len(STATES)
            for table in ("core.enrolment", "ops.feed_load"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    wh.execute(f"SELECT 1 FROM {table} LIMIT 1")
    finally:
        stack.stop()
        timings["total"] = time.monotonic() - t0
        print("timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))

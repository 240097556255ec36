"""The same pipeline on PostgreSQL: identical marts to DuckDB, atomic for
readers, a read-only BI role, and states loading in parallel.

Each test creates its own database on the server of MOU_TEST_POSTGRES_URL
(tests/conftest.py) and drops it afterwards."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from mou_etl import night
from mou_etl.generate import generate

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
STATES = ["UP", "UK", "GA", "TN"]          # daily snapshots (UK, GA), deltas, Hindi and English
DAYS = ["2026-02-01", "2026-02-02", "2026-02-03"]
MARTS = ("state_summary", "national_summary", "department_summary", "feed_status", "quarantine_summary")


def _marts(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    out = {}
    with engine.connect() as conn:
        for table in MARTS:
            cols = [
                r[0] for r in conn.execute(sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'mart' "
                    "AND table_name = :t ORDER BY ordinal_position"), {"t": table})
                if r[0] != "load_id"   # audit ids: drawn from a sequence, differ between runs
            ]
            rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM mart.{table}")).all()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    engine.dispose()
    return out


@pytest.fixture
def landing(tmp_path, monkeypatch):
    monkeypatch.setenv("MOU_DATA_DOCS", "0")
    root = tmp_path / "landing"
    generate(root, DAYS[0], len(DAYS), scale=0.002, seed=5, bad_rows=0.03, states=STATES)
    return root


def _nights(landing: Path, url: str) -> None:
    for day in DAYS:
        night.run_night(day, STATES, str(landing), url, out=io.StringIO())


def test_marts_identical_on_duckdb_and_postgres(landing, tmp_path, postgres_url):
    duck = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    _nights(landing, duck)
    _nights(landing, postgres_url)
    a, b = _marts(duck), _marts(postgres_url)
    assert sum(len(v) for v in a.values()) > 100
    for table in MARTS:
        assert a[table] == b[table], f"mart.{table} differs between DuckDB and PostgreSQL"


def test_bi_reader_reads_marts_only(landing, postgres_url):
    night.run_night(DAYS[0], ["UK"], str(landing), postgres_url, out=io.StringIO())
    user = f"bi_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(postgres_url, autocommit=True)
    admin.execute(f"CREATE ROLE {user} LOGIN IN ROLE mou_bi_reader")
    try:
        base, dbname = postgres_url.rsplit("/", 1)
        reader = psycopg.connect(f"postgresql://{user}@{base.split('@', 1)[1]}/{dbname}", autocommit=True)
        assert reader.execute("SELECT count(*) FROM mart.state_summary").fetchone()[0] == 28
        for forbidden in ("SELECT * FROM core.enrolment", "SELECT * FROM quarantine.row",
                          "SELECT * FROM ops.feed_load", "SELECT * FROM core.completion"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(forbidden)
        for write in ("DELETE FROM mart.state_summary", "INSERT INTO mart.national_summary (report_date) VALUES (now())",
                      "CREATE TABLE mart.x (a int)", "CREATE TABLE public.x (a int)", "CREATE SCHEMA evil"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(write)
        reader.close()
        # Idempotent: migrating again (a second database on the same server) keeps the role working
        night.run_night(DAYS[1], ["UK"], str(landing), postgres_url, out=io.StringIO())
    finally:
        admin.execute(f"DROP OWNED BY {user}")
        admin.execute(f"DROP ROLE {user}")
        admin.close()


def test_readers_never_see_a_partial_night_or_rollup(landing, postgres_url):
    night.run_night(DAYS[0], STATES, str(landing), postgres_url, out=io.StringIO())
    seen_states, seen_loads, errors = set(), set(), []
    stop = threading.Event()

    def read_loop():
        conn = psycopg.connect(postgres_url, autocommit=True)
        while not stop.is_set():
            try:
                seen_states.add(conn.execute(
                    "SELECT count(*) FROM mart.state_summary WHERE report_date = %s", (DAYS[1],)).fetchone()[0])
                seen_loads.add(conn.execute(
                    "SELECT count(*) FROM core.feed_version WHERE state_code = 'UP'").fetchone()[0])
            except Exception as exc:  # noqa: BLE001 - report any reader failure
                errors.append(exc)
        conn.close()

    before = psycopg.connect(postgres_url).execute(
        "SELECT count(*) FROM core.feed_version WHERE state_code = 'UP'").fetchone()[0]
    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for _ in range(2):    # the night, and again (nothing changes: still never partial)
            night.run_night(DAYS[1], STATES, str(landing), postgres_url, out=io.StringIO())
            night.national_rollup(DAYS[1], postgres_url)
    finally:
        stop.set()
        reader.join(30)
    after = psycopg.connect(postgres_url).execute(
        "SELECT count(*) FROM core.feed_version WHERE state_code = 'UP'").fetchone()[0]
    assert not errors
    assert seen_states <= {0, 28}, f"a reader saw part of the marts: {seen_states}"
    assert seen_loads <= {before, after} and after > before, f"a reader saw part of UP's night: {seen_loads}"


def test_states_load_in_parallel(landing, tmp_path, postgres_url, postgres_admin):
    """Four states' nights at once (separate processes, like Airflow workers), then
    the rollup: no deadlock, and the marts equal a one-at-a-time run's."""
    env = dict(os.environ, MOU_DATA_DIR=str(tmp_path / "data"), MOU_DATA_DOCS="0")
    days = DAYS[:2]
    for day in days:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "mou_etl", "run", "--date", day, "--state", code, "--landing", str(landing),
                 "--warehouse", postgres_url],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for code in STATES
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
    for day in days:
        night.national_rollup(day, postgres_url)
    admin, server = postgres_admin
    sequential = f"mou_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{sequential}"')
    try:
        seq_url = f"{server.rsplit('/', 1)[0]}/{sequential}"
        for day in days:
            night.run_night(day, STATES, str(landing), seq_url, out=io.StringIO())
        a, b = _marts(postgres_url), _marts(seq_url)
        for table in MARTS:
            assert a[table] == b[table], f"mart.{table}: parallel and one-at-a-time runs differ"
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (sequential,))
        admin.execute(f'DROP DATABASE IF EXISTS "{sequential}"')

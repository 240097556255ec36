"""The DAG files parse, fast, with no warehouse or landing-zone access, and follow the house rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mou_etl import schedule
from mou_etl.states import registry

WAREHOUSE_POOL = "mou_warehouse"
ROLLUP = "mou_national_rollup"
STATE_TASKS = ["discover_deliveries", "ingest_deliveries", "retry_held_rows", "finish_state_night"]
#: Tasks that read or write the warehouse (everything but the landing-zone-only discovery).
WAREHOUSE_TASKS = {"ingest_deliveries", "retry_held_rows", "finish_state_night", "wait_for_states", "national_rollup"}


def _dagbag(dags_folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dags_folder))


@pytest.fixture(scope="module")
def dagbag(airflow_home, dags_folder):
    return _dagbag(dags_folder)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_dag_per_state_plus_rollup(dagbag):
    expected = {f"mou_state_{code.lower()}" for code in registry()} | {ROLLUP}
    assert set(dagbag.dag_ids) == expected
    assert len(registry()) == 28


@pytest.mark.parametrize("code", list(registry()))
def test_state_dag_shape(dagbag, code):
    state = registry()[code]
    dag = dagbag.dags[f"mou_state_{code.lower()}"]
    assert [t.task_id for t in _topological(dag)] == STATE_TASKS
    tt = dag.timetable
    assert type(tt).__name__ == "CronTriggerTimetable"
    assert tt.expression == schedule.state_cron(state) == f"{state.cutoff_ist.minute} {state.cutoff_ist.hour} * * *"
    assert str(tt.timezone.name if hasattr(tt.timezone, "name") else tt.timezone) == "Asia/Kolkata"
    assert dag.max_active_runs == 1
    assert "report_date" in dag.params
    assert dag.doc_md and state.name in dag.doc_md and f"{state.cutoff_ist:%H:%M}" in dag.doc_md
    last = dag.get_task("finish_state_night")
    assert [a.uri for a in last.outlets] == [f"mou://warehouse/state/{code}"]


def test_rollup_dag_shape(dagbag):
    dag = dagbag.dags[ROLLUP]
    assert dag.timetable.expression == schedule.rollup_cron()
    assert dag.max_active_runs == 1
    sensor = dag.get_task("wait_for_states")
    rollup = dag.get_task("national_rollup")
    assert sensor.mode == "reschedule"
    assert sensor.soft_fail is True
    assert sensor.downstream_task_ids == {"national_rollup"}
    # a late or failed state must never block the rollup
    assert str(rollup.trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")


def test_house_rules(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "mou" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.start_date is not None and dag.start_date.year < 2026, dag_id
        assert dag.doc_md, dag_id
        for t in dag.tasks:
            assert t.retries == 2, (dag_id, t.task_id)
            if t.task_id in WAREHOUSE_TASKS:
                assert t.pool == WAREHOUSE_POOL, (dag_id, t.task_id)
            else:
                assert t.pool != WAREHOUSE_POOL, (dag_id, t.task_id)


def test_parse_is_fast(airflow_home, dags_folder):
    _dagbag(dags_folder)  # warm the imports (Airflow itself, providers)
    started = time.perf_counter()
    bag = _dagbag(dags_folder)
    elapsed = time.perf_counter() - started
    assert not bag.import_errors
    print(f"parsed {len(bag.dags)} DAGs in {elapsed:.2f} s")
    assert elapsed < 10, f"parsing dags/ took {elapsed:.1f} s (target < 2 s)"


_NO_ACCESS_PROBE = textwrap.dedent(
    """
    import json, os, sys, time

    import airflow  # Airflow's own metadata engine is made here, before the guards
    import duckdb, sqlalchemy

    calls = []
    _create_engine = sqlalchemy.create_engine

    def guarded_create_engine(url, *a, **k):
        if not str(url).startswith("sqlite"):  # Airflow's metadata DB in these tests is SQLite
            calls.append(f"sqlalchemy.create_engine({url})")
        return _create_engine(url, *a, **k)

    def guarded_connect(*a, **k):
        calls.append(f"duckdb.connect{a}")
        raise RuntimeError("warehouse access at parse time")

    sqlalchemy.create_engine = guarded_create_engine
    duckdb.connect = guarded_connect
    try:
        import psycopg
        psycopg.connect = guarded_connect
    except ImportError:
        pass

    from airflow.dag_processing.dagbag import DagBag
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                      "dags": len(bag.dags), "seconds": time.perf_counter() - started,
                      "calls": calls}))
    """
)


def test_parsing_touches_no_warehouse_or_landing(airflow_home, dags_folder, tmp_path):
    """Parse in a fresh process with the warehouse and landing zone pointing nowhere."""
    nowhere = tmp_path / "does-not-exist"
    env = dict(os.environ)
    env.update(
        MOU_DATA_DIR=str(nowhere / "data"),
        MOU_LANDING_DIR=str(nowhere / "landing"),
        MOU_ARCHIVE_DIR=str(nowhere / "archive"),
        MOU_WORK_DIR=str(nowhere / "work"),
        MOU_WAREHOUSE_URL=f"duckdb:///{nowhere / 'warehouse.duckdb'}",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _NO_ACCESS_PROBE, str(dags_folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["calls"] == []
    assert result["dags"] == len(registry()) + 1
    assert not nowhere.exists(), "parsing created files where the warehouse/landing zone would be"


def _topological(dag):
    order, seen = [], set()

    def visit(task):
        if task.task_id in seen:
            return
        for up in sorted(task.upstream_list, key=lambda t: t.task_id):
            visit(up)
        seen.add(task.task_id)
        order.append(task)

    for t in sorted(dag.tasks, key=lambda t: t.task_id):
        visit(t)
    return order

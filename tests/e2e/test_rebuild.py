"""`python -m mou_etl rebuild` recreates the warehouse from the archive alone:
the marts of the rebuilt warehouse equal those of the nights that filled it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
TABLES = ("state_summary", "national_summary", "department_summary", "feed_status", "quarantine_summary")


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "mou_etl", *args], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def _marts(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    out = {}
    for table in TABLES:
        cols = [
            r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'mart' AND table_name = ? "
                "ORDER BY ordinal_position", [table]).fetchall()
            if r[0] != "load_id"    # audit ids are allocated afresh by the rebuild
        ]
        out[table] = con.execute(f"SELECT {', '.join(cols)} FROM mart.{table} ORDER BY ALL").fetchall()
    con.close()
    return out


@pytest.mark.slow
def test_rebuild_from_archive_gives_identical_marts(tmp_path):
    env = dict(os.environ, MOU_DATA_DIR=str(tmp_path / "data"), MOU_DATA_DOCS="0")
    landing = tmp_path / "landing"
    states = ["--state", "UP", "--state", "UK", "--state", "GA", "--state", "BR"]  # snapshots, deltas, Hindi
    _cli("generate", "--landing", str(landing), "--start", "2026-03-01", "--days", "3", "--scale", "0.002",
         "--seed", "11", "--bad-rows", "0.03", *states, env=env)
    original = tmp_path / "original.duckdb"
    for day in ("2026-03-01", "2026-03-02", "2026-03-03"):
        _cli("run", "--date", day, "--landing", str(landing), "--warehouse", f"duckdb:///{original}", *states, env=env)
    shutil.rmtree(landing)            # the archive alone from here on
    rebuilt = tmp_path / "rebuilt.duckdb"
    out = _cli("rebuild", "--warehouse", f"duckdb:///{rebuilt}", env=env)
    assert "rebuilt" in out.stdout
    a, b = _marts(original), _marts(rebuilt)
    assert sum(len(v) for v in a.values()) > 100
    for table in TABLES:
        assert a[table] == b[table], table
    # the rebuild refuses to overwrite a warehouse that holds data
    proc = subprocess.run([sys.executable, "-m", "mou_etl", "rebuild", "--warehouse", f"duckdb:///{rebuilt}"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "--replace" in proc.stderr

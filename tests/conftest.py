"""Shared fixtures: every test gets its own data folder, so nothing touches the
developer's ./data. PostgreSQL fixtures live in tests/postgres.py."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MOU_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("MOU_LANDING_DIR", raising=False)
    monkeypatch.delenv("MOU_ARCHIVE_DIR", raising=False)
    yield


# ---------------------------------------------------------------------- PostgreSQL

import os  # noqa: E402
import uuid  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("MOU_TEST_POSTGRES_URL", DEFAULT_PG)


@pytest.fixture(scope="session")
def postgres_admin():
    """A psycopg connection to the test server (autocommit), or skip/fail loudly."""
    import psycopg

    url = _admin_url().replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except Exception as exc:
        message = f"PostgreSQL not reachable at {url} (set MOU_TEST_POSTGRES_URL): {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip("SKIPPED LOUDLY: " + message)
    yield conn, url
    conn.close()


@pytest.fixture
def postgres_url(postgres_admin):
    """A fresh, empty database for one test; dropped afterwards."""
    conn, url = postgres_admin
    name = f"mou_test_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    base = url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,)
    )
    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


# ---------------------------------------------------------------------- exit

_exit_status = {"code": 0}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    """Leave without interpreter teardown once pytest has printed its summary:
    Great Expectations keeps a DuckDB SQLAlchemy engine alive in module state,
    and at teardown nanobind prints a 'leaked instances' report after pytest's
    closing line (noise that hides the result). Exit status is pytest's own."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status["code"])

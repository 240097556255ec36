"""Fixtures of the DAG tests: a throw-away Airflow home, created by the tests themselves.

Airflow reads its configuration when ``airflow`` is first imported, so the
environment is set here, at import of this conftest (before any test module of
this folder imports Airflow): AIRFLOW_HOME is a temporary folder, the DAGs
folder is the repository's ``dags/``, no examples. The metadata database (a
SQLite file in that home) is created only for the tests that run Airflow
(``airflow_db`` fixture, session scope).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "dags"
PLUGINS_FOLDER = REPO / "plugins"

_AIRFLOW_ALREADY_IMPORTED = "airflow" in sys.modules
_HOME = Path(tempfile.mkdtemp(prefix="mou-airflow-test-"))

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.pop("AIRFLOW_CONFIG", None)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PLUGINS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_HOME / "logs")
os.environ["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
if str(PLUGINS_FOLDER) not in sys.path:
    sys.path.insert(0, str(PLUGINS_FOLDER))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The temporary AIRFLOW_HOME of this test session."""
    if _AIRFLOW_ALREADY_IMPORTED:
        from airflow.configuration import AIRFLOW_HOME

        if Path(AIRFLOW_HOME) != _HOME:
            pytest.skip("airflow was imported before tests/dags/conftest.py set AIRFLOW_HOME; run tests/dags alone")
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata database in the temporary AIRFLOW_HOME."""
    from airflow.utils import db

    db.initdb()
    return airflow_home / "airflow.db"


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    return DAGS_FOLDER

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

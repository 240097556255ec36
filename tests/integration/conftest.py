"""Integration tests: hand-built deliveries through the night's public functions.

``landing_kit`` (next to this file) builds delivery folders and reads the
warehouse; pytest puts this folder on ``sys.path`` so the tests import it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

STATES_CSV = """state_code,state_name,bad_row_threshold,window_opens_ist,cutoff_ist,landing
UP,Uttar Pradesh,0.10,18:00,23:30,
UK,Uttarakhand,0.25,18:00,23:30,
"""


@pytest.fixture
def two_states(tmp_path, monkeypatch) -> Path:
    """A registry of two states: UP with the default 10 % threshold, UK with 25 %."""
    path = tmp_path / "states.csv"
    path.write_text(STATES_CSV)
    monkeypatch.setenv("MOU_STATES_FILE", str(path))
    return path

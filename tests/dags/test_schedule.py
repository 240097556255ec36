"""Schedule facts (mou_etl.schedule): cron strings and report dates, in IST. No Airflow needed."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, time, timezone

import pytest

from mou_etl import schedule


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_schedule_does_not_import_airflow():
    code = "import sys, mou_etl.schedule; sys.exit('airflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_crons():
    assert schedule.cron_at("23:30") == "30 23 * * *"
    assert schedule.cron_at(time(1, 5)) == "5 1 * * *"
    assert schedule.state_cron("UP") == "30 23 * * *"
    assert schedule.rollup_cron() == "30 1 * * *"


def test_rollup_time_is_configurable(monkeypatch):
    monkeypatch.setenv("MOU_ROLLUP_TIME_IST", "02:15")
    assert schedule.rollup_cron() == "15 2 * * *"
    monkeypatch.setenv("MOU_ROLLUP_TIME_IST", "late")
    with pytest.raises(ValueError):
        schedule.rollup_time()


def test_state_report_date_is_the_ist_date_of_the_logical_time():
    # 23:30 IST on 6 Jan is 18:00 UTC
    assert schedule.state_report_date(utc(2026, 1, 6, 18, 0)) == date(2026, 1, 6)
    # naive datetimes are UTC; 20:00 UTC is already 7 Jan in IST
    assert schedule.state_report_date(datetime(2026, 1, 6, 20, 0)) == date(2026, 1, 7)


def test_rollup_report_date_is_the_previous_ist_day():
    # 01:30 IST on 7 Jan is 20:00 UTC on 6 Jan
    assert schedule.rollup_report_date(utc(2026, 1, 6, 20, 0)) == date(2026, 1, 6)


def test_logical_dates_round_trip():
    state_at = schedule.state_logical_date("2026-01-06", "23:30")
    assert state_at.astimezone(timezone.utc) == utc(2026, 1, 6, 18, 0)
    assert schedule.state_report_date(state_at) == date(2026, 1, 6)
    rollup_at = schedule.rollup_logical_date(date(2026, 1, 6))
    assert rollup_at.astimezone(timezone.utc) == utc(2026, 1, 6, 20, 0)
    assert schedule.rollup_report_date(rollup_at) == date(2026, 1, 6)


@pytest.mark.parametrize(
    "now, expected",
    [
        (utc(2026, 1, 7, 4, 30), date(2026, 1, 6)),  # 10:00 IST on 7 Jan: last cutoff was 6 Jan 23:30
        (utc(2026, 1, 7, 17, 59), date(2026, 1, 6)),  # 23:29 IST
        (utc(2026, 1, 7, 18, 0), date(2026, 1, 7)),  # 23:30 IST exactly
        (utc(2026, 1, 7, 19, 0), date(2026, 1, 7)),  # 00:30 IST on 8 Jan
    ],
)
def test_latest_state_report_date(now, expected):
    assert schedule.latest_state_report_date(now) == expected


def test_latest_state_report_date_takes_the_latest_date_every_state_reached():
    now = utc(2026, 1, 7, 17, 0)  # 22:30 IST on 7 Jan
    assert schedule.latest_state_report_date(now, cutoffs=["22:00"]) == date(2026, 1, 7)
    assert schedule.latest_state_report_date(now, cutoffs=["22:00", "23:30"]) == date(2026, 1, 6)


def test_standalone_help():
    proc = subprocess.run(
        [sys.executable, "-m", "mou_etl.standalone", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "--exit-when-done" in proc.stdout

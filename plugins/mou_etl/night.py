"""A state's night and the national rollup: the functions the DAG tasks and
the headless ``run`` command both call.

All arguments and return values are JSON-serialisable (dates as ``YYYY-MM-DD``
strings) so Airflow can pass them between tasks through XCom.

    discover_deliveries(state, report_date)   landing zone only; no warehouse access
    ingest_deliveries(state, report_date)     verify, archive, parse, validate, load (oldest first)
    retry_held_rows(state, report_date)       load held unknown_user rows whose user is now registered
    finish_state_night(state, report_date)    record that the state's night for the date is done
    states_ready(report_date)                 which states have finished a night for >= the date
    national_rollup(report_date)              write the mart tables for the date (and recompute
                                              later dates that a late delivery changed)
"""

from __future__ import annotations

import argparse
from datetime import date


def discover_deliveries(state_code: str, report_date: str | date, landing: str | None = None) -> list[dict]:
    """Deliveries of the state with a manifest and a report date <= report_date, oldest first.

    Each item: {"state": "UP", "report_date": "2026-01-06", "path": "...", "manifest_sha256": "..."}.
    Reads only the landing zone.
    """
    raise NotImplementedError


def ingest_deliveries(
    state_code: str,
    report_date: str | date,
    deliveries: list[dict] | None = None,
    landing: str | None = None,
    warehouse: str | None = None,
) -> dict:
    """Process every new or changed delivery of the state up to report_date, oldest first.

    ``deliveries`` is what discover_deliveries returned (re-discovered when None).
    Returns a summary: {"state", "report_date", "feeds": [{"report_date", "feed", "status",
    "reason", "rows_received", "rows_loaded", "rows_quarantined", "rows_duplicate", ...}]}.
    """
    raise NotImplementedError


def retry_held_rows(state_code: str, report_date: str | date, warehouse: str | None = None) -> dict:
    """Load the state's held unknown_user rows whose user is now registered. Returns counts."""
    raise NotImplementedError


def finish_state_night(state_code: str, report_date: str | date, warehouse: str | None = None) -> dict:
    """Record that the state's night for report_date finished (read by states_ready)."""
    raise NotImplementedError


def states_ready(report_date: str | date, warehouse: str | None = None) -> dict:
    """{"ready": [codes that finished a night for a date >= report_date], "waiting": [...]}."""
    raise NotImplementedError


def national_rollup(report_date: str | date, warehouse: str | None = None) -> dict:
    """Write all mart tables for report_date in one transaction per date, plus every
    already-rolled-up later date that deliveries accepted since then changed.
    Returns {"report_date", "dates_computed": [...], "states_reporting", "states_stale", ...}."""
    raise NotImplementedError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the night for a report date: states, then the national rollup")
    p.add_argument("--date", required=True, help="report date YYYY-MM-DD")
    p.add_argument("--state", action="append", default=None, help="state code (repeatable; default all)")
    p.add_argument("--landing", default=None, help="landing zone (default $MOU_LANDING_DIR)")
    p.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default $MOU_WAREHOUSE_URL)")
    p.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    raise NotImplementedError

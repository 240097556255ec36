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
import logging
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from . import settings
from .feeds import FEEDS
from .landing import Delivery, LandingError, discover
from .load import FeedOutcome, Loader
from .manifest import parse_report_date, read_manifest
from .quality import docs_index_once, warm_up
from .states import get_state, registry
from .warehouse import Warehouse, utcnow

log = logging.getLogger(__name__)


@contextmanager
def _session(warehouse: str | tuple | None):
    """(Warehouse, connection): a new one from a URL, or the open pair the
    headless run passes to every step so it connects once per night."""
    if isinstance(warehouse, tuple):
        yield warehouse
        return
    wh = Warehouse(warehouse)
    with wh.connect() as conn:
        yield wh, conn


def _day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    parsed = parse_report_date(str(value))
    if parsed is None:
        raise ValueError(f"bad report date {value!r}: expected YYYY-MM-DD")
    return parsed


def discover_deliveries(state_code: str, report_date: str | date, landing: str | None = None) -> list[dict]:
    """Deliveries of the state with a manifest and a report date <= report_date, oldest first.

    Each item: {"state": "UP", "report_date": "2026-01-06", "path": "...", "manifest_sha256": "..."}.
    Reads only the landing zone.
    """
    state = get_state(state_code)
    found, notes = discover(state, Path(landing or settings.landing_dir()), _day(report_date))
    for note in notes:
        log.info("%s", note)
    return [d.to_dict() for d in found]


def _process_delivery(loader: Loader, delivery: Delivery, log: bool = True) -> list[FeedOutcome]:
    from .archive import archive_manifest, log_delivery

    folder = Path(delivery.path)
    day = _day(delivery.report_date)
    manifest = read_manifest(folder, loader.state.code, delivery.report_date)
    archive_manifest(manifest.path, loader.archive_root, loader.state.code, delivery.report_date, manifest.sha256)
    outcomes = []
    feeds = [f for f in FEEDS if f in manifest.entries] or (list(FEEDS) if manifest.problem else [])
    loader.archive_ahead(manifest, day, feeds)
    try:
        for feed in feeds:
            outcomes.append(loader.process_feed(manifest, day, feed, manifest.entries.get(feed)))
    finally:
        loader.finish_archiving()
    processed = [o for o in outcomes if o.status != "unchanged"]
    if log and processed:
        log_delivery(
            loader.archive_root,
            loader.state.code,
            {
                "state": loader.state.code,
                "report_date": delivery.report_date,
                "manifest_sha256": manifest.sha256,
                "processed_at": utcnow().isoformat(),
                "run_id": loader.run_id,
                "feeds": {
                    o.feed: {"name": (manifest.entries[o.feed].name if o.feed in manifest.entries else None),
                             "sha256": o.file_sha256, "status": o.status, "reason": o.reason}
                    for o in processed
                },
            },
        )
    return outcomes


def ingest_deliveries(
    state_code: str,
    report_date: str | date,
    deliveries: list[dict] | None = None,
    landing: str | None = None,
    warehouse: str | None = None,
    run_id: str | None = None,
) -> dict:
    """Process every new or changed delivery of the state up to report_date, oldest first.

    ``deliveries`` is what discover_deliveries returned (re-discovered when None).
    Returns a summary: {"state", "report_date", "feeds": [{"report_date", "feed", "status",
    "reason", "rows_received", "rows_loaded", "rows_quarantined", "rows_duplicate", ...}]}.
    """
    state = get_state(state_code)
    day = _day(report_date)
    if deliveries is None:
        deliveries = discover_deliveries(state.code, day, landing)
    items = sorted((Delivery(**d) for d in deliveries), key=lambda d: d.report_date)
    started = time.monotonic()
    outcomes: list[FeedOutcome] = []
    if items:
        warm_up()
    with _session(warehouse) as (wh, conn):
        loader = Loader(wh, conn, state, run_id=run_id)
        # On PostgreSQL the state's whole night commits at once (BI readers see
        # all of it or none of it; each feed is a savepoint inside). DuckDB is
        # embedded: nobody else can read the file while it is being written.
        night_tx = conn.begin() if not wh.is_duckdb else None
        try:
            for delivery in items:
                if _day(delivery.report_date) > day:
                    continue
                outcomes.extend(_process_delivery(loader, delivery))
            if night_tx is not None:
                night_tx.commit()
        finally:
            if night_tx is not None and night_tx.is_active:
                night_tx.rollback()
            loader.close()
    processed = [o for o in outcomes if o.status != "unchanged"]
    return {
        "state": state.code,
        "report_date": day.isoformat(),
        "deliveries_seen": len(items),
        "feeds": [o.to_dict() for o in processed],
        "unchanged": len(outcomes) - len(processed),
        "rows_received": sum(o.rows_received or 0 for o in processed),
        "seconds": round(time.monotonic() - started, 3),
        "lines": [o.line() for o in processed],
    }


def retry_held_rows(state_code: str, report_date: str | date, warehouse: str | None = None) -> dict:
    """Load the state's held unknown_user rows whose user is now registered. Returns counts."""
    state = get_state(state_code)
    day = _day(report_date)
    with _session(warehouse) as (wh, conn):
        loader = Loader(wh, conn, state)
        released = loader.release_held(day)
        with conn.begin():
            still = conn.execute(
                sa.text("SELECT count(*) FROM quarantine.held_completion WHERE state_code = :s"), {"s": state.code}
            ).scalar()
    return {"state": state.code, "report_date": day.isoformat(), "released": released, "still_held": int(still)}


def finish_state_night(
    state_code: str, report_date: str | date, warehouse: str | None = None, run_id: str | None = None
) -> dict:
    """Record that the state's night for report_date finished (read by states_ready)."""
    state = get_state(state_code)
    day = _day(report_date)
    with _session(warehouse) as (wh, conn), conn.begin():
        conn.execute(
            sa.text("DELETE FROM ops.state_night WHERE state_code = :s AND report_date = :d"), {"s": state.code, "d": day}
        )
        conn.execute(
            sa.text("INSERT INTO ops.state_night (state_code, report_date, run_id, finished_at) VALUES (:s, :d, :r, :t)"),
            {"s": state.code, "d": day, "r": run_id, "t": utcnow()},
        )
    return {"state": state.code, "report_date": day.isoformat(), "finished": True}


def states_ready(report_date: str | date, warehouse: str | None = None) -> dict:
    """{"ready": [codes that finished a night for a date >= report_date], "waiting": [...]}."""
    day = _day(report_date)
    with _session(warehouse) as (wh, conn), conn.begin():
        done = {
            r[0]
            for r in conn.execute(
                sa.text("SELECT DISTINCT state_code FROM ops.state_night WHERE report_date >= :d"), {"d": day}
            )
        }
    codes = list(registry())
    return {
        "report_date": day.isoformat(),
        "ready": [c for c in codes if c in done],
        "waiting": [c for c in codes if c not in done],
    }


def national_rollup(report_date: str | date, warehouse: str | None = None) -> dict:
    """Write all mart tables for report_date in one transaction per date, plus every
    already-rolled-up later date that deliveries accepted since then changed.
    Returns {"report_date", "dates_computed": [...], "states_reporting", "states_stale", ...}."""
    from .rollup import national_rollup as _rollup

    with _session(warehouse) as (wh, conn):
        return _rollup(conn, _day(report_date))


def run_night(
    report_date: str | date,
    states: list[str] | None = None,
    landing: str | None = None,
    warehouse: str | None = None,
    out=None,
) -> dict:
    """What the DAGs do for a date, headless: each state's night, then the rollup."""
    out = out or sys.stdout  # looked up at call time (pytest and Airflow replace it)
    day = _day(report_date)
    landing_root = Path(landing or settings.landing_dir())
    if not landing_root.is_dir():
        raise LandingError(f"landing zone {landing_root} does not exist")
    codes = [get_state(c).code for c in states] if states else list(registry())
    run_id = f"cli-{day.isoformat()}-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    summary = {"report_date": day.isoformat(), "states": {}, "rows_received": 0}
    with _session(warehouse) as session:
        with docs_index_once():  # the Data Docs site index once, after every state
            for code in codes:
                deliveries = discover_deliveries(code, day, str(landing_root))
                result = ingest_deliveries(code, day, deliveries, str(landing_root), session, run_id=run_id)
                held = retry_held_rows(code, day, session)
                finish_state_night(code, day, session, run_id=run_id)
                summary["states"][code] = {"ingest": result, "held": held}
                summary["rows_received"] += result["rows_received"]
                for line in result["lines"]:
                    print(line, file=out)
                if held["released"]:
                    print(f"{code}: {held['released']} held unknown_user rows loaded, {held['still_held']} still held",
                          file=out)
        summary["rollup"] = national_rollup(day, session)
    summary["seconds"] = round(time.monotonic() - started, 3)
    r = summary["rollup"]
    print(
        f"rollup {day}: {r['states_reporting']}/{r['states_total']} states reporting, {r['states_stale']} stale, "
        f"{r['registered_users']} registered users, {r['course_completions']} completions, "
        f"{r['learning_hours']} learning hours (dates computed: {', '.join(r['dates_computed'])}); "
        f"{summary['rows_received']} rows in {summary['seconds']}s",
        file=out,
    )
    return summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the night for a report date: states, then the national rollup")
    p.add_argument("--date", required=True, help="report date YYYY-MM-DD")
    p.add_argument("--state", action="append", default=None, help="state code (repeatable; default all)")
    p.add_argument("--landing", default=None, help="landing zone (default $MOU_LANDING_DIR)")
    p.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default $MOU_WAREHOUSE_URL)")
    p.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    run_night(args.date, args.state, args.landing, args.warehouse)
    return 0

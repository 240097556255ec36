"""The national rollup: the mart tables for a report date.

The rollup for D computes D, and again every date it was already run for that
a change since (a late delivery, a re-delivery, released held rows) affects:
a change with report date R touches every rolled-up date >= R. Each date is
written in its own transaction (the old rows or the new, never a mix).
"""

from __future__ import annotations

import logging
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import settings
from .states import registry
from .warehouse import execute_file, utcnow

log = logging.getLogger(__name__)


def dates_to_compute(conn: Connection, report_date: date) -> list[date]:
    rows = conn.execute(
        sa.text(
            "SELECT r.report_date FROM ops.rollup AS r WHERE r.report_date <> :d AND EXISTS ("
            " SELECT 1 FROM ops.change AS c WHERE c.change_id > r.last_change_id AND c.report_date <= r.report_date)"
        ),
        {"d": report_date},
    ).all()
    return sorted({report_date, *(r[0] for r in rows)})


def _fill_states(conn: Connection) -> None:
    conn.execute(sa.text("DROP TABLE IF EXISTS r_states"))
    conn.execute(sa.text("CREATE TEMP TABLE r_states (state_code TEXT NOT NULL, state_name TEXT NOT NULL)"))
    conn.execute(
        sa.text("INSERT INTO r_states (state_code, state_name) VALUES (:c, :n)"),
        [{"c": s.code, "n": s.name} for s in registry().values()],
    )


def change_watermark(conn: Connection) -> int:
    """The highest change id such that every change up to it is committed.

    On PostgreSQL a state's night may still be writing: a SHARE lock on
    ops.change waits for the writers holding it, and ids drawn after it are
    higher (they are drawn while inserting, under the table's lock)."""
    with conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE ops.change IN SHARE MODE"))
        return int(conn.execute(sa.text("SELECT COALESCE(MAX(change_id), 0) FROM ops.change")).scalar())


def compute_date(conn: Connection, day: date, last_change: int) -> None:
    """Replace the marts of one date (caller holds the transaction)."""
    if conn.dialect.name == "postgresql":
        # One rollup writes the marts at a time: two rollups of the same date
        # would each delete the old rows and both insert theirs.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(727002)"))
        conn.execute(sa.text(f"SET LOCAL work_mem = '{settings.pg_work_mem()}'"))
    params = {"report_date": day, "year_start": date(day.year, 1, 1), "year_end": date(day.year, 12, 31)}
    _fill_states(conn)
    execute_file(conn, "rollup/current.sql", params)
    execute_file(conn, "rollup/marts.sql", params)
    conn.execute(sa.text("DROP TABLE r_states"))
    conn.execute(sa.text("DELETE FROM ops.rollup WHERE report_date = :d"), {"d": day})
    conn.execute(
        sa.text("INSERT INTO ops.rollup (report_date, last_change_id, computed_at) VALUES (:d, :c, :t)"),
        {"d": day, "c": last_change, "t": utcnow()},
    )


def national_rollup(conn: Connection, report_date: date) -> dict:
    with conn.begin():
        days = dates_to_compute(conn, report_date)
    watermark = change_watermark(conn)
    if conn.dialect.name == "postgresql":
        # Fresh planner statistics after the night's bulk loads (a sample of
        # each table, so seconds at most; autovacuum may not have got to them).
        with conn.begin():
            conn.execute(sa.text("ANALYZE core.enrolment"))
            conn.execute(sa.text("ANALYZE core.completion"))
    for day in days:
        with conn.begin():
            compute_date(conn, day, watermark)
        log.info("rolled up %s", day)
    with conn.begin():
        row = conn.execute(
            sa.text(
                "SELECT states_total, states_reporting, states_stale, registered_users, course_completions, "
                "learning_hours FROM mart.national_summary WHERE report_date = :d"
            ),
            {"d": report_date},
        ).one()
    return {
        "report_date": report_date.isoformat(),
        "dates_computed": [d.isoformat() for d in days],
        "states_total": int(row[0]),
        "states_reporting": int(row[1]),
        "states_stale": int(row[2]),
        "registered_users": int(row[3]),
        "course_completions": int(row[4]),
        "learning_hours": float(row[5]),
    }

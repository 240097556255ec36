"""When the DAGs run and which report date a run is for: the schedule facts in one place.

Plain Python (no Airflow import): the DAG files, ``mou_etl.standalone`` and the
tests all use these functions, so the DAGs and the demo never disagree.

* A state's DAG runs daily at the state's ``cutoff_ist`` (state registry), in
  Asia/Kolkata. The report date D of a run is the IST calendar date of the run's
  logical (scheduled) time: the run at 23:30 IST on 6 Jan processes the
  deliveries up to report date 2026-01-06. Cutoffs are expected before
  midnight; a cutoff after midnight would make D the next calendar day.
* The national rollup DAG runs daily at ``MOU_ROLLUP_TIME_IST`` (default 01:30
  IST), after every state's cutoff. Its report date is the IST date of its
  logical time minus one day: the run at 01:30 IST on 7 Jan rolls up
  2026-01-06.

Datetimes without a timezone are taken as UTC (Airflow's convention).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

TIMEZONE_NAME = "Asia/Kolkata"
IST = ZoneInfo(TIMEZONE_NAME)
DEFAULT_ROLLUP_TIME = "01:30"

__all__ = [
    "IST",
    "TIMEZONE_NAME",
    "DEFAULT_ROLLUP_TIME",
    "cron_at",
    "state_cutoff",
    "state_cron",
    "rollup_time",
    "rollup_cron",
    "to_ist",
    "state_report_date",
    "rollup_report_date",
    "last_trigger",
    "report_date_param_spec",
    "latest_state_report_date",
    "state_logical_date",
    "rollup_logical_date",
    "parse_report_date",
]


def _as_time(value: time | str) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value).strip())


def cron_at(at: time | str) -> str:
    """Daily cron expression at the wall-clock time ``at`` (``"30 23 * * *"`` for 23:30)."""
    t = _as_time(at)
    return f"{t.minute} {t.hour} * * *"


def state_cutoff(state) -> time:
    """The cutoff of a state: a ``states.State``, or a state code looked up in the registry."""
    if isinstance(state, str):
        from .states import get_state

        state = get_state(state)
    return state.cutoff_ist


def state_cron(state) -> str:
    """Cron expression (interpreted in Asia/Kolkata) of a state's DAG: daily at its cutoff."""
    return cron_at(state_cutoff(state))


def rollup_time() -> time:
    """IST time of the national rollup: ``MOU_ROLLUP_TIME_IST`` (HH:MM), default 01:30."""
    raw = os.environ.get("MOU_ROLLUP_TIME_IST", "").strip() or DEFAULT_ROLLUP_TIME
    try:
        return time.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"MOU_ROLLUP_TIME_IST is not a HH:MM time: {raw!r}") from exc


def rollup_cron() -> str:
    """Cron expression (interpreted in Asia/Kolkata) of the national rollup DAG."""
    return cron_at(rollup_time())


def to_ist(moment: datetime) -> datetime:
    """``moment`` in IST; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(IST)


def state_report_date(logical_datetime: datetime) -> date:
    """Report date of a state-DAG run: the IST calendar date of its logical time."""
    return to_ist(logical_datetime).date()


def rollup_report_date(logical_datetime: datetime) -> date:
    """Report date of a rollup run: the IST calendar date of its logical time, minus one day."""
    return to_ist(logical_datetime).date() - timedelta(days=1)


def last_trigger(at: time | str, now: datetime | None = None) -> datetime:
    """The latest moment <= ``now`` whose IST wall-clock time is ``at`` (an aware IST datetime)."""
    t = _as_time(at)
    local_now = to_ist(now or datetime.now(timezone.utc))
    candidate = datetime.combine(local_now.date(), t, tzinfo=IST)
    if candidate > local_now:
        candidate -= timedelta(days=1)
    return candidate


def latest_state_report_date(now: datetime | None = None, cutoffs: Iterable[time | str] | None = None) -> date:
    """The report date of the most recent past state-DAG trigger.

    With several cutoffs (default: every state's in the registry) it is the
    latest report date whose trigger has passed for *every* state, so each
    state has had (or has) a run for it. At 10:00 IST on 7 Jan, with 23:30
    cutoffs, it is 2026-01-06; at 23:45 IST on 7 Jan it is 2026-01-07.
    """
    if cutoffs is None:
        from .states import registry

        cutoffs = [s.cutoff_ist for s in registry().values()]
    cutoffs = list(cutoffs) or [time(23, 30)]
    return min(state_report_date(last_trigger(c, now)) for c in cutoffs)


def state_logical_date(report_date: date | str, cutoff: time | str) -> datetime:
    """The scheduled (logical) time of the state-DAG run for ``report_date``: that IST date at the cutoff."""
    d = parse_report_date(report_date)
    return datetime.combine(d, _as_time(cutoff), tzinfo=IST)


def rollup_logical_date(report_date: date | str, at: time | str | None = None) -> datetime:
    """The scheduled (logical) time of the rollup run for ``report_date``: the next IST day at the rollup time."""
    d = parse_report_date(report_date)
    return datetime.combine(d + timedelta(days=1), _as_time(at) if at is not None else rollup_time(), tzinfo=IST)


def parse_report_date(value: date | datetime | str) -> date:
    """A report date from a ``date`` or a ``YYYY-MM-DD`` string (a datetime is taken as its IST date)."""
    if isinstance(value, datetime):
        return to_ist(value).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"report date must be YYYY-MM-DD: {value!r}") from exc


def run_report_date(context, derive) -> str:
    """A DAG run's report date: its ``report_date`` param when given (a manual
    run), else ``derive(logical date)`` (state_report_date or rollup_report_date)."""
    override = (context["params"] or {}).get("report_date")
    if override:
        return parse_report_date(override).isoformat()
    moment = context.get("logical_date") or context["dag_run"].run_after
    return derive(moment).isoformat()


def report_date_param_spec(action: str) -> dict:
    """Keyword arguments of the DAGs' optional ``report_date`` Param (``Param(None,
    **spec)``): a manual run may name the date it ``action``s (empty: derived
    from the logical date)."""
    return {
        "type": ["null", "string"],
        "pattern": r"^(\d{4}-\d{2}-\d{2})?$",
        "title": "Report date",
        "description": f"YYYY-MM-DD to {action} instead of the date derived from the run's logical date "
        "(leave empty for the derived date).",
    }

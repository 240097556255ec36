"""The national rollup: after the states' nights, write the ``mart`` tables for the date.

``wait_for_states`` (a rescheduling sensor) waits until every state has finished
a night for the report date, at most ``MOU_ROLLUP_WAIT_TIMEOUT_SECONDS``
(default 3 h); on timeout it is skipped, not failed, and ``national_rollup``
runs anyway (trigger rule ``all_done``): a late or failed state never blocks the
national figures, it shows as stale in them.

Parsing this file reads no warehouse and no landing zone.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, Param, PokeReturnValue, TriggerRule, dag, task

from mou_etl import schedule, settings
from mou_etl.states import registry

log = logging.getLogger(__name__)

#: See dags/mou_state_dags.py: 1 slot on DuckDB (one writing process), more on PostgreSQL.
WAREHOUSE_POOL = "mou_warehouse"
START_DATE = pendulum.datetime(2025, 1, 1, tz=schedule.TIMEZONE_NAME)
#: How often the sensor asks whether the states are ready (seconds).
POKE_SECONDS = float(os.environ.get("MOU_ROLLUP_POKE_SECONDS", "30"))
#: How long the sensor waits for the states before the rollup runs anyway (seconds).
WAIT_TIMEOUT_SECONDS = float(os.environ.get("MOU_ROLLUP_WAIT_TIMEOUT_SECONDS", str(3 * 3600)))
MART_ASSET = Asset("mou://warehouse/mart")


def rollup_report_date(context) -> str:
    """The run's report date (the ``report_date`` param of a manual run, else derived)."""
    return schedule.run_report_date(context, schedule.rollup_report_date)


_states = registry()
_latest_cutoff = max(s.cutoff_ist for s in _states.values())
DOC = f"""\
### National rollup

Runs daily at **{schedule.rollup_time():%H:%M} IST** (Asia/Kolkata) for report
date D = the previous IST day (or the `report_date` param of a manual run),
after the states' cutoffs (the latest is {_latest_cutoff:%H:%M} IST).

1. `wait_for_states`: waits (rescheduling, every {POKE_SECONDS:g} s, pool slot
   released between pokes) until all {len(_states)} states have finished a night
   for D or later. After {WAIT_TIMEOUT_SECONDS / 3600:g} h it gives up and is
   *skipped*.
2. `national_rollup`: always runs once the sensor is done (trigger rule
   `all_done`): writes `mart.state_summary`, `mart.national_summary`,
   `mart.department_summary`, `mart.feed_status` and `mart.quarantine_summary`
   for D, and recomputes later dates that late deliveries changed. States
   without a delivery for D are **stale** in the mart. Its summary is in XCom.

| | |
|---|---|
| Warehouse | `{settings.masked_url(settings.warehouse_url())}` |
| Pool | `{WAREHOUSE_POOL}` (1 slot on DuckDB) |
| Asset updated | `{MART_ASSET.uri}` |
"""


@dag(
    dag_id="mou_national_rollup",
    dag_display_name="MoU national rollup",
    description="Wait for the states' nights, then write the mart tables for the report date",
    schedule=CronTriggerTimetable(schedule.rollup_cron(), timezone=schedule.TIMEZONE_NAME),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "mou-data", "retries": 2, "retry_delay": timedelta(minutes=5)},
    params={"report_date": Param(None, **schedule.report_date_param_spec("roll up"))},
    tags=["mou", "national"],
    doc_md=DOC,
)
def mou_national_rollup():
    @task.sensor(
        poke_interval=POKE_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
        mode="reschedule",
        soft_fail=True,
        pool=WAREHOUSE_POOL,
        # A rescheduling sensor can be failed spuriously when the executor's report of one poke
        # reaches the scheduler after the next poke was queued (apache/airflow#71172, more likely
        # with short poke intervals on a busy scheduler): retry it soon, a retry is just a poke.
        retry_delay=timedelta(seconds=60),
    )
    def wait_for_states(**context) -> PokeReturnValue:
        from mou_etl import night

        report_date = rollup_report_date(context)
        status = night.states_ready(report_date)
        waiting = list(status.get("waiting") or [])
        if waiting:
            log.info("report date %s: waiting for %d state(s): %s", report_date, len(waiting), ", ".join(waiting))
        else:
            log.info("report date %s: all %d states ready", report_date, len(status.get("ready") or []))
        return PokeReturnValue(is_done=not waiting, xcom_value=status)

    @task(trigger_rule=TriggerRule.ALL_DONE, pool=WAREHOUSE_POOL, outlets=[MART_ASSET])
    def national_rollup(**context) -> dict:
        from mou_etl import night

        return night.national_rollup(rollup_report_date(context))

    wait_for_states() >> national_rollup()


mou_national_rollup()

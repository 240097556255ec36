"""One DAG per MoU state: the state's night, at the state's cutoff.

The DAGs are generated from the state registry (``include/config/states.csv``
or ``MOU_STATES_FILE``): adding a state there adds its DAG, no code change.
They are thin: every task calls one function of ``mou_etl.night`` (the same
code the headless ``python -m mou_etl run`` uses) with the run's report date,
derived through ``mou_etl.schedule``.

Parsing this file reads only the small registry file: no warehouse, no landing
zone (``mou_etl.night`` itself is imported inside the tasks).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronTriggerTimetable, Param, dag, task

from mou_etl import schedule, settings
from mou_etl.states import State, registry

#: Airflow pool of every task that touches the warehouse. DuckDB (the default
#: warehouse) allows one writing process, so the pool has 1 slot there; on
#: PostgreSQL raise it (``airflow pools set mou_warehouse <N> ...``).
WAREHOUSE_POOL = "mou_warehouse"
START_DATE = pendulum.datetime(2025, 1, 1, tz=schedule.TIMEZONE_NAME)
DEFAULT_ARGS = {
    "owner": "mou-data",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    # Queued warehouse tasks further along a state's night go first, so each state finishes its
    # night (and is "ready" for the rollup) as soon as possible instead of all ingests first.
    "weight_rule": "upstream",
}


def state_asset(code: str) -> Asset:
    """The Asset a state's DAG updates when the state's night for a date is done."""
    return Asset(f"mou://warehouse/state/{code}")


def state_report_date(context) -> str:
    """The run's report date (the ``report_date`` param of a manual run, else derived)."""
    return schedule.run_report_date(context, schedule.state_report_date)


def _doc(state: State) -> str:
    return f"""\
### {state.name} ({state.code}): the state's night

Runs daily at the state's cutoff, **{state.cutoff_ist:%H:%M} IST** (Asia/Kolkata).
The state delivers into its landing folder during its window,
**{state.window_opens_ist:%H:%M} - {state.cutoff_ist:%H:%M} IST**.

The run for report date D (the IST date of the run's logical date, or the
`report_date` param of a manual run):

1. `discover_deliveries`: the state's deliveries with a manifest and a report
   date <= D, oldest first (landing zone only).
2. `ingest_deliveries`: verifies, archives, parses, validates and loads each new
   or changed delivery, oldest first; bad rows go to quarantine, bad feeds are
   rejected (bad-row threshold {state.bad_row_threshold:.0%}).
3. `retry_held_rows`: loads held `unknown_user` rows whose user is now registered.
4. `finish_state_night`: records that the state's night for D is done (the
   national rollup waits for it) and updates the Asset
   `mou://warehouse/state/{state.code}`.

| | |
|---|---|
| Landing | `{state.landing_path(settings.landing_dir())}` |
| Warehouse | `{settings.masked_url(settings.warehouse_url())}` |
| Pool | `{WAREHOUSE_POOL}` (warehouse tasks; 1 slot on DuckDB) |
| Data quality | Great Expectations Data Docs: `{settings.data_dir() / "quality" / "docs" / "index.html"}` |

**Data quality.** Every feed is validated by a Great Expectations suite built from
the contract's row rules, one expectation per rule. The result is kept in
`ops.validation` (counts per rule and the result JSON). It is also rendered as a
Data Docs page: `ingest_deliveries` returns each load's page as `docs_path` (see
its XCom and log), `ops.validation.docs_path` keeps it, and the index above lists
the latest night's pages. On the compose stack they are served by the `docs`
profile.

A failed or late state never blocks the national rollup: it shows as stale.
Re-running a date is safe: unchanged deliveries are not processed twice.
"""


def build_state_dag(state: State):
    code = state.code

    @dag(
        dag_id=f"mou_state_{code.lower()}",
        dag_display_name=f"MoU state night: {state.name} ({code})",
        description=f"{state.name}: ingest the night's deliveries at the {state.cutoff_ist:%H:%M} IST cutoff",
        schedule=CronTriggerTimetable(schedule.state_cron(state), timezone=schedule.TIMEZONE_NAME),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        params={"report_date": Param(None, **schedule.report_date_param_spec("process"))},
        tags=["mou", "state"],
        doc_md=_doc(state),
    )
    def state_night():
        @task
        def discover_deliveries(**context) -> list[dict]:
            from mou_etl import night

            return night.discover_deliveries(code, state_report_date(context))

        @task(pool=WAREHOUSE_POOL)
        def ingest_deliveries(deliveries: list[dict], **context) -> dict:
            from mou_etl import night

            return night.ingest_deliveries(
                code, state_report_date(context), deliveries=deliveries, run_id=context["run_id"]
            )

        @task(pool=WAREHOUSE_POOL)
        def retry_held_rows(**context) -> dict:
            from mou_etl import night

            return night.retry_held_rows(code, state_report_date(context))

        @task(pool=WAREHOUSE_POOL, outlets=[state_asset(code)])
        def finish_state_night(**context) -> dict:
            from mou_etl import night

            return night.finish_state_night(code, state_report_date(context), run_id=context["run_id"])

        ingested = ingest_deliveries(discover_deliveries())
        ingested >> retry_held_rows() >> finish_state_night()

    return state_night()


for _state in registry().values():
    globals()[f"mou_state_{_state.code.lower()}"] = build_state_dag(_state)

"""Data quality with Great Expectations 1.x, called directly.

The expectation suite of a feed is built from the rule declarations of
``rules.py``: one ``UnexpectedRowsExpectation`` per row rule, whose query selects
the rows that break that rule and none before it in feeds.md's table (so its
count is the number of rows quarantined under that code), plus the manifest's
row count. It runs in SQL on the staged table inside DuckDB, so it scales with
the file and never materialises rows in Python; the quarantine split itself is
done by staging from the same predicates, and the two counts must agree.

Each validation's result is stored (``ops.validation``: per-expectation counts
and the result JSON) and rendered as a Data Docs page under
``<data>/quality/docs`` (``MOU_DATA_DOCS=0`` turns the HTML off).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from . import settings
from .rules import CONFLICTING_DUPLICATE, UNKNOWN_USER, rules_for

log = logging.getLogger(__name__)

_gx = None


def _import_gx():
    """Import GX lazily (it is heavy), quietly (no progress bars, no info logs)."""
    global _gx
    if _gx is None:
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        for name in ("great_expectations", "great_expectations._docs_decorators"):
            logging.getLogger(name).setLevel(logging.WARNING)
        import great_expectations as gx

        for name in ("great_expectations", "great_expectations._docs_decorators"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # The index keeps pages of earlier nights whose results this process does
        # not hold; GX warns once per such page ("Validation result not found").
        logging.getLogger("great_expectations.render.renderer.site_builder").setLevel(logging.ERROR)
        _gx = gx
    return _gx


_warming: threading.Thread | None = None


def warm_up() -> None:
    """Import Great Expectations on a background thread (it takes seconds), so
    the import overlaps with archiving and staging the first file."""
    global _warming
    if _gx is None and _warming is None:
        _warming = threading.Thread(target=_import_gx, name="mou-gx-import", daemon=True)
        _warming.start()


def docs_enabled() -> bool:
    return os.environ.get("MOU_DATA_DOCS", "1") not in ("0", "false", "no")


def docs_dir() -> Path:
    return settings.data_dir() / "quality" / "docs"


@dataclass(frozen=True)
class Check:
    """One expectation of a feed's suite: the rule code and the rows it flags."""

    code: str
    description: str
    where: str              # SQL condition over the staged table's columns


def _ok(predicate: str) -> str:
    return f"coalesce({predicate}, false)"


def checks_for(feed: str, with_unknown_user: bool) -> list[Check]:
    """The suite's row checks, built from the declared rules, in precedence order."""
    checks: list[Check] = []
    earlier: list[str] = []
    for rule in rules_for(feed):
        pred = _ok(rule.predicate.format(report_date="_rd"))
        where = " AND ".join([pred] + [f"NOT {p}" for p in earlier])
        checks.append(Check(rule.code, f"{feed}: rows quarantined as {rule.code}", where))
        earlier.append(pred)
    clean = " AND ".join(f"NOT {p}" for p in earlier)
    checks.append(
        Check(CONFLICTING_DUPLICATE, f"{feed}: rows sharing a key with different values", f"{clean} AND coalesce(conflict, false)")
    )
    if with_unknown_user:
        checks.append(
            Check(
                UNKNOWN_USER,
                f"{feed}: rows whose User_ID is not registered in the state (held)",
                f"{clean} AND NOT coalesce(conflict, false) AND NOT dup"
                " AND s_user_id NOT IN (SELECT user_id FROM reg_users)",
            )
        )
    return checks


@dataclass
class Validation:
    success: bool
    counts: dict[str, int] = field(default_factory=dict)     # rule code -> unexpected rows
    row_count: int | None = None
    result_json: str = "{}"
    docs_path: str | None = None
    expectations: list[dict] = field(default_factory=list)


class _BufferedCursor:
    """A DB-API cursor over a DuckDB connection that fetches results at once.

    GX returns its connection to the pool (a rollback) before reading the rows;
    in DuckDB that would discard them. GX's queries return aggregates only."""

    def __init__(self, conn, wrapper):
        self._conn = conn
        self.connection = wrapper
        self.description = None
        self._rows: list = []
        self.rowcount = -1

    def execute(self, statement, parameters=None, context=None):
        res = self._conn.execute(statement) if parameters is None else self._conn.execute(statement, parameters)
        self.description = res.description
        self._rows = res.fetchall() if res.description else []
        self.rowcount = len(self._rows)

    def executemany(self, statement, parameters=None, context=None):
        self._conn.executemany(statement, list(parameters or []))

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None

    def fetchmany(self, size=None):
        size = size or 1
        out, self._rows = self._rows[:size], self._rows[size:]
        return out

    def fetchall(self):
        out, self._rows = self._rows, []
        return out

    def close(self):
        pass


class _SwappableConnection:
    """The DB-API connection GX sees: the pipeline's current DuckDB connection,
    read without transactions of its own (GX only reads)."""

    def __init__(self):
        self.inner = None
        self.notices: list[str] = []
        self.closed = False
        self.autocommit = None

    def cursor(self):
        return _BufferedCursor(self.inner, self)

    def begin(self):
        pass

    def commit(self):
        pass

    def rollback(self):
        pass

    def close(self):
        pass

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _keeping_index_builder():
    from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder

    class KeepingSiteIndexBuilder(DefaultSiteIndexBuilder):
        """The default index, except that it keeps the pages of earlier runs: each
        process's GX context holds only its own results, and the default builder
        deletes every page it holds no result for."""

        def build(self, skip_and_clean_missing=False, build_index: bool = True):
            return super().build(skip_and_clean_missing=False, build_index=build_index)

    return KeepingSiteIndexBuilder


def __getattr__(name):  # GX instantiates the index builder by module and class name
    if name == "KeepingSiteIndexBuilder":
        return _keeping_index_builder()
    raise AttributeError(name)


class _Runner:
    """One GX context per process: the data source, the two staged tables as
    assets and a checkpoint per suite are built once and reused for every feed."""

    def __init__(self):
        gx = _import_gx()
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from sqlalchemy.pool import StaticPool

        self.gx = gx
        self.conn = _SwappableConnection()
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        )
        self.ctx = gx.get_context(project_config=config, mode="ephemeral")
        self.docs = docs_enabled()
        if self.docs:
            docs_dir().mkdir(parents=True, exist_ok=True)
            self.ctx.add_data_docs_site(
                site_name="mou",
                site_config={
                    "class_name": "SiteBuilder",
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir())},
                    "site_index_builder": {"module_name": "mou_etl.quality", "class_name": "KeepingSiteIndexBuilder"},
                },
            )
        self.source = None
        self._creator = lambda: self.conn
        self._pool = StaticPool
        self.checkpoints: dict[tuple[str, bool], object] = {}
        self.pending_docs: list = []     # validation results whose Data Docs page is not built yet

    def build_docs(self) -> None:
        """Rebuild the site index once for the pages rendered since the last call."""
        if self.docs and self.pending_docs:
            self.ctx.build_data_docs(site_names=["mou"], resource_identifiers=self.pending_docs[-1:])
        self.pending_docs = []

    def checkpoint(self, feed: str, with_unknown_user: bool):
        key = (feed, with_unknown_user)
        if key in self.checkpoints:
            return self.checkpoints[key]
        gx = self.gx
        if self.source is None:
            self.source = self.ctx.data_sources.add_sql(
                name="staging", connection_string="duckdb:///:memory:",
                kwargs={"creator": self._creator, "poolclass": self._pool},
            )
        name = f"mou_{feed}" + ("" if with_unknown_user or feed == "enrolment" else "_no_registry")
        asset = self.source.add_table_asset(name=name, table_name=f"gx_{feed}")
        batch = asset.add_batch_definition_whole_table("staged file")
        suite = gx.ExpectationSuite(name=name)
        suite.add_expectation(
            gx.expectations.ExpectTableRowCountToEqual(
                value={"$PARAMETER": "manifest_rows"}, description="as many rows as the manifest says"
            )
        )
        for check in checks_for(feed, with_unknown_user):
            suite.add_expectation(
                gx.expectations.UnexpectedRowsExpectation(
                    # Only the record number: each query then reads just the
                    # columns its rule needs, not every staged column.
                    unexpected_rows_query=f"SELECT record_no FROM {{batch}} WHERE {check.where}",
                    description=f"{check.code}: {check.description}",
                    meta={"rule": check.code},
                )
            )
        suite = self.ctx.suites.add(suite)
        definition = self.ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        cp = self.ctx.checkpoints.add(
            gx.Checkpoint(name=f"cp_{name}", validation_definitions=[definition], actions=[], result_format="SUMMARY")
        )
        self.checkpoints[key] = cp
        return cp


_runner: _Runner | None = None


def _get_runner() -> _Runner:
    global _runner
    if _runner is None or _runner.docs != docs_enabled():
        _runner = _Runner()
    return _runner


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def validate_staged(
    db,
    table: str,
    feed: str,
    state: str,
    report_date: date,
    file_sha256: str,
    expected_rows: int | None,
    with_unknown_user: bool,
) -> Validation:
    """Run the feed's suite on the staged rows, the view ``gx_<feed>`` of DuckDB connection ``db``."""
    if table != f"gx_{feed}":
        raise ValueError(f"the {feed} suite validates gx_{feed}, not {table}")
    runner = _get_runner()
    runner.conn.inner = getattr(db, "db", db)  # a ScratchDuckDB or a duckdb connection
    checkpoint = runner.checkpoint(feed, with_unknown_user)
    run_name = _safe(f"{state}_{report_date.isoformat()}_{feed}_{(file_sha256 or '')[:12]}")
    run = checkpoint.run(
        expectation_parameters={"manifest_rows": expected_rows if expected_rows is not None else -1},
        run_id=runner.gx.RunIdentifier(run_name=run_name),
    )
    runner.conn.inner = None
    identifier, result = next(iter(run.run_results.items()))
    out = Validation(success=bool(result.success))
    for r in result.results:
        cfg = r.expectation_config
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise RuntimeError(f"Great Expectations could not evaluate {cfg.type}: {r.exception_info.get('exception_message')}")
        observed = r.result.get("observed_value")
        rule = (cfg.meta or {}).get("rule")
        if rule:
            out.counts[rule] = int(observed or 0)
        else:
            out.row_count = int(observed) if observed is not None else None
        out.expectations.append(
            {"expectation": cfg.type, "rule": rule, "description": cfg.description, "success": bool(r.success),
             "observed": observed}
        )
    out.result_json = json.dumps(result.describe_dict(), default=str)
    if runner.docs:
        # This validation's page now; the site index once at the end of the night.
        runner.ctx.build_data_docs(site_names=["mou"], resource_identifiers=[identifier], build_index=False)
        runner.pending_docs.append(identifier)
        out.docs_path = str(docs_dir() / "validations" / Path(*identifier.to_tuple())) + ".html"
    return out


_docs_deferred = 0


@contextmanager
def docs_index_once():
    """Inside it, build_docs() at the end of each state's night leaves the Data
    Docs site index alone; it is built once on the way out. The headless run of
    all states uses it: the index lists every page of every night, so building
    it costs more as history grows, and 28 builds a night would repeat it."""
    global _docs_deferred
    _docs_deferred += 1
    try:
        yield
    finally:
        _docs_deferred -= 1
        if not _docs_deferred:
            build_docs()


def build_docs() -> None:
    """Build the Data Docs site index for the validations run so far (end of a
    state's night), unless inside docs_index_once()."""
    if _runner is not None and not _docs_deferred:
        _runner.build_docs()

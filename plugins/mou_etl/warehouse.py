"""The warehouse: one SQLAlchemy URL (``MOU_WAREHOUSE_URL``), DuckDB embedded by
default, PostgreSQL in production.

Opens connections (with DuckDB's memory limit, spill folder and a wait when
another process holds the file), applies the versioned migrations of
``include/sql/migrations`` on first use, and runs the shared SQL files.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import settings, sql

log = logging.getLogger(__name__)


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Warehouse:
    """A warehouse reached by one URL."""

    def __init__(self, url: str | None = None):
        self.url = _normalise_url(url or settings.warehouse_url())
        try:
            parsed = sa.engine.make_url(self.url)
        except Exception as exc:
            raise WarehouseError(f"bad warehouse URL {self.url!r}: {exc}") from None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "duckdb":
            self.engine = self._duckdb_engine(parsed)
        elif self.dialect == "postgresql":
            self.engine = sa.create_engine(self.url, pool_pre_ping=True, future=True)
        else:
            raise WarehouseError(f"unsupported warehouse {self.dialect!r}: use duckdb:/// or postgresql://")
        self._migrated = False

    @property
    def is_duckdb(self) -> bool:
        return self.dialect == "duckdb"

    def _duckdb_engine(self, parsed: sa.engine.URL) -> Engine:
        db = parsed.database or ":memory:"
        if db != ":memory:":
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        spill = settings.work_dir() / "duckdb-spill"
        spill.mkdir(parents=True, exist_ok=True)
        config = {
            "memory_limit": settings.duckdb_memory_limit(),
            "threads": settings.duckdb_threads(),
            "temp_directory": str(spill),
            "preserve_insertion_order": True,
        }
        # NullPool: a DuckDB file is locked by the process that opens it; hold it
        # only while working so Airflow tasks of other states can take turns.
        return sa.create_engine(
            f"duckdb:///{db}", poolclass=sa.pool.NullPool, connect_args={"config": config}, future=True
        )

    def describe(self) -> str:
        if self.is_duckdb:
            return f"DuckDB file {self.engine.url.database}"
        return f"PostgreSQL {self.engine.url.render_as_string(hide_password=True)}"

    # -- connections -----------------------------------------------------------------

    def _connect_raw(self) -> Connection:
        wait = float(os.environ.get("MOU_DUCKDB_LOCK_WAIT_SECONDS", "900"))
        deadline = time.monotonic() + wait
        delay = 0.2
        while True:
            try:
                return self.engine.connect()
            except Exception as exc:  # DuckDB: another process holds the file lock
                text = str(exc)
                if self.is_duckdb and "lock" in text.lower() and time.monotonic() < deadline:
                    log.info("warehouse file is busy (another process writes it); waiting %.1fs", delay)
                    time.sleep(delay)
                    delay = min(delay * 1.5, 5.0)
                    continue
                first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
                raise WarehouseError(f"cannot connect to the warehouse ({self.describe()}): {first}") from exc

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection with the schema migrated; caller manages transactions."""
        conn = self._connect_raw()
        try:
            if not self._migrated:
                migrate(conn, self.dialect)
                self._migrated = True
            yield conn
        finally:
            conn.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction, committed at the end."""
        with self.connect() as conn:
            with conn.begin():
                yield conn


def raw_duckdb(conn: Connection):
    """The duckdb connection under a SQLAlchemy connection (for Arrow and COPY paths)."""
    dbapi = conn.connection.dbapi_connection
    inner = getattr(dbapi, "_ConnectionWrapper__c", None) or getattr(dbapi, "c", None)
    return inner if inner is not None else dbapi


def execute_file(conn: Connection, name: str, params: dict[str, Any] | None = None, **identifiers: str) -> None:
    """Run every statement of include/sql/<name>, each with the parameters it uses."""
    params = params or {}
    duckdb = conn.dialect.name == "duckdb"
    for stmt in sql.load(name, **identifiers):
        code = sql.strip_comments(stmt)
        if duckdb and code.lstrip().upper().startswith("ANALYZE "):
            continue  # DuckDB keeps the statistics it plans with as it writes a table
        used = {k: params[k] for k in sql.BIND.findall(code) if k in params}
        conn.execute(sa.text(stmt), used)


def migrate(conn: Connection, dialect: str) -> list[str]:
    """Apply the migrations not applied yet; returns their versions."""
    applied: list[str] = []
    with conn.begin():
        if dialect == "postgresql":
            # Several states may start at once: one of them migrates.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(727001)"))
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS ops"))
        conn.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS ops.schema_migration "
                "(version TEXT NOT NULL PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
            )
        )
        done = {r[0] for r in conn.execute(sa.text("SELECT version FROM ops.schema_migration"))}
        for version, path in sql.migration_files(dialect):
            if version in done:
                continue
            log.info("applying migration %s", version)
            for stmt in sql.statements(path.read_text(encoding="utf-8")):
                conn.execute(sa.text(stmt))
            conn.execute(
                sa.text("INSERT INTO ops.schema_migration (version, applied_at) VALUES (:v, :t)"),
                {"v": version, "t": utcnow()},
            )
            applied.append(version)
    return applied

"""Moving staged tables between the staging DuckDB and a PostgreSQL warehouse
with COPY (psycopg 3), the database's bulk path, in constant memory.

DuckDB writes a query's rows as CSV to a scratch file, and psycopg streams the
file into ``COPY ... FROM STDIN`` in blocks while DuckDB is still writing it
(``_stream_export``). (NULL is an unquoted empty field, an empty string a
quoted one, in both directions.) The feed's good rows go straight into their
``core`` table (``copy_insert``); its quarantined and held rows into
temporary tables (``push_staged``).
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from pathlib import Path

import duckdb
from sqlalchemy.engine import Connection

from . import settings, sql

BLOCK = 1 << 20

_PG_TYPES = {
    "VARCHAR": "TEXT", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "DATE": "DATE", "DOUBLE": "DOUBLE PRECISION",
    "BOOLEAN": "BOOLEAN", "HUGEINT": "NUMERIC", "TIMESTAMP": "TIMESTAMP",
}


class ScratchDuckDB:
    """A file-backed DuckDB for staging (spills to disk), deleted on close."""

    def __init__(self):
        folder = settings.work_dir() / "staging"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"stage-{os.getpid()}-{uuid.uuid4().hex[:8]}.duckdb"
        spill = settings.work_dir() / "duckdb-spill"
        spill.mkdir(parents=True, exist_ok=True)
        self.db = duckdb.connect(
            str(self.path),
            config={
                "memory_limit": settings.duckdb_memory_limit(),
                "threads": settings.duckdb_threads(),
                "temp_directory": str(spill),
                "preserve_insertion_order": True,
            },
        )

    def execute(self, *args, **kwargs):
        return self.db.execute(*args, **kwargs)

    def close(self) -> None:
        self.db.close()
        for p in (self.path, Path(str(self.path) + ".wal")):
            p.unlink(missing_ok=True)


def scratch_duckdb() -> ScratchDuckDB:
    return ScratchDuckDB()


def scratch_file(suffix: str) -> Path:
    folder = settings.work_dir() / "copy"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _psycopg(conn: Connection):
    return conn.connection.dbapi_connection


def pull_to_file(conn: Connection, query: str, path: Path) -> None:
    """The rows of a PostgreSQL query as CSV in ``path`` (uses only the
    psycopg connection: safe on a worker thread while the caller leaves the
    connection alone)."""
    with _psycopg(conn).cursor() as cur, open(path, "wb") as fh:
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
            for block in copy:
                fh.write(block)


def load_user_ids(db, path: Path, table: str) -> int:
    """A CSV of user ids (``pull_to_file``) as a DuckDB temporary table."""
    db.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv('{path}', header=false, "
        "auto_detect=false, columns={'user_id': 'VARCHAR'}, delim=',', quote='\"', escape='\"')"
    )
    return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def push_table(db, conn: Connection, table: str) -> int:
    """Copy a DuckDB table into a PostgreSQL temporary table of the same name
    (dropped at the end of the caller's transaction)."""
    columns = db.execute(f"DESCRIBE {table}").fetchall()
    ddl = ", ".join(f'"{name}" {_PG_TYPES.get(str(kind).upper(), "TEXT")}' for name, kind, *_ in columns)
    pg = _psycopg(conn)
    with pg.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TEMP TABLE {table} ({ddl}) ON COMMIT DROP")
    with pg.cursor() as cur:
        return _stream_export(db, f"SELECT * FROM {table}", cur, f"COPY {table} FROM STDIN (FORMAT csv)")


def push_staged(db, conn: Connection, feed: str) -> None:
    """The quarantined (and held) rows as PostgreSQL temporary tables; the good
    rows go by ``copy_insert``."""
    tables = [f"stgq_{feed}"] + (["stgh_completion"] if feed == "completion" else [])
    for table in tables:
        push_table(db, conn, table)


_INSERT_SELECT = re.compile(r"INSERT\s+INTO\s+([\w.]+)\s*\(([^)]*)\)\s*(SELECT\b.*)", re.S | re.I)


class TransferError(RuntimeError):
    """Rows did not arrive whole: the caller's transaction must not commit."""


def _stream_export(db, query: str, cur, copy_sql: str) -> int:
    """COPY the rows of a DuckDB query into PostgreSQL; returns the rows copied.

    DuckDB writes the CSV on a worker thread while this one sends what is
    written so far: the export and PostgreSQL's parsing overlap (two cores),
    and the scratch file is read from the page cache. The file is read only
    once DuckDB has created it (a file made in advance could be replaced,
    leaving an empty one open). A failed export abandons the COPY.

    The export runs with ``preserve_insertion_order`` off (the order of rows
    in a PostgreSQL table means nothing): with it on, DuckDB 2.0 sometimes
    never returns from a COPY TO whose query fails part-way (measured: 1 run
    in 24 waited forever in ``TaskExecutor::DrainTasks``; none in 60 with it
    off)."""
    tmp = scratch_file(".csv")
    done = threading.Event()
    failure: list[BaseException] = []

    def export() -> None:
        try:
            db.execute(f"COPY ({query}) TO '{tmp}' (FORMAT csv, HEADER false, USE_TMP_FILE false)")
        except BaseException as exc:  # handed to the reading thread
            failure.append(exc)
        finally:
            done.set()

    keep_order = db.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
    db.execute("SET preserve_insertion_order = false")
    worker = threading.Thread(target=export, name="mou-copy-export", daemon=True)
    try:
        worker.start()
        while not tmp.exists() and not done.is_set():
            done.wait(0.005)
        with cur.copy(copy_sql) as copy:
            if tmp.exists():
                with open(tmp, "rb") as fh:
                    while True:
                        finished = done.is_set()
                        block = fh.read(BLOCK)
                        if block:
                            copy.write(block)
                        elif finished:
                            break
                        else:
                            done.wait(0.005)
            worker.join()
            if failure:
                raise failure[0]  # inside the COPY block: psycopg cancels the COPY
        return cur.rowcount
    finally:
        if worker.is_alive():
            worker.join()
        db.execute(f"SET preserve_insertion_order = {'true' if keep_order else 'false'}")
        tmp.unlink(missing_ok=True)


def copy_insert(db, conn: Connection, statement: str, params: dict) -> int:
    """Run ``INSERT INTO <table> (<columns>) SELECT ... FROM <staged table>``
    with the SELECT in the staging DuckDB and the rows going into the
    PostgreSQL table by COPY (one pass, no PostgreSQL staging table).
    ``:name`` parameters are inlined as literals. Checks that every row of the
    SELECT arrived; returns the rows copied."""
    m = _INSERT_SELECT.fullmatch(sql.strip_comments(statement).strip())
    if not m:
        raise ValueError(f"copy_insert needs INSERT INTO t (columns) SELECT ...; got {statement[:80]!r}")
    target, columns, select = m.groups()
    query = sql.inline(select, params)
    expected = int(db.execute(f"SELECT count(*) FROM ({query})").fetchone()[0])
    cols = ", ".join(c.strip() for c in columns.split(","))
    with _psycopg(conn).cursor() as cur:
        copied = _stream_export(db, query, cur, f"COPY {target} ({cols}) FROM STDIN (FORMAT csv)")
    if copied != expected:
        raise TransferError(f"COPY into {target}: {copied} rows arrived of the {expected} staged")
    return copied

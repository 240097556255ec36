"""Moving staged tables between the staging DuckDB and a PostgreSQL warehouse
with COPY (psycopg 3), the database's bulk path, in constant memory.

DuckDB writes a table as CSV to a scratch file; psycopg streams the file into
``COPY ... FROM STDIN`` in blocks. (NULL is an unquoted empty field, an empty
string a quoted one, in both directions.)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
from sqlalchemy.engine import Connection

from . import settings

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


def _scratch_file(suffix: str) -> Path:
    folder = settings.work_dir() / "copy"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _psycopg(conn: Connection):
    return conn.connection.dbapi_connection


def pull_query(conn: Connection, db, query: str, table: str) -> int:
    """Run a one-column (user_id) query on PostgreSQL into a DuckDB table."""
    tmp = _scratch_file(".csv")
    try:
        with _psycopg(conn).cursor() as cur, open(tmp, "wb") as fh:
            with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
                for block in copy:
                    fh.write(block)
        db.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_csv('{tmp}', header=false, "
            "auto_detect=false, columns={'user_id': 'VARCHAR'}, delim=',', quote='\"', escape='\"')"
        )
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        tmp.unlink(missing_ok=True)


def push_table(db, conn: Connection, table: str) -> int:
    """Copy a DuckDB table into a PostgreSQL temporary table of the same name
    (dropped at the end of the caller's transaction)."""
    columns = db.execute(f"DESCRIBE {table}").fetchall()
    ddl = ", ".join(f'"{name}" {_PG_TYPES.get(str(kind).upper(), "TEXT")}' for name, kind, *_ in columns)
    pg = _psycopg(conn)
    with pg.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TEMP TABLE {table} ({ddl}) ON COMMIT DROP")
    tmp = _scratch_file(".csv")
    try:
        db.execute(f"COPY (SELECT * FROM {table}) TO '{tmp}' (FORMAT csv, HEADER false)")
        rows = 0
        with pg.cursor() as cur, open(tmp, "rb") as fh:
            with cur.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
                while block := fh.read(BLOCK):
                    copy.write(block)
            rows = cur.rowcount
        return rows
    finally:
        tmp.unlink(missing_ok=True)


def push_staged(db, conn: Connection, feed: str) -> None:
    tables = [f"stg_{feed}", f"stgq_{feed}"] + (["stgh_completion"] if feed == "completion" else [])
    for table in tables:
        push_table(db, conn, table)

"""Moving staged tables between the staging DuckDB and a PostgreSQL warehouse
with COPY (psycopg 3), the database's bulk path, in constant memory.

Rows go from DuckDB to PostgreSQL in COPY's binary format: DuckDB streams the
query's result as Arrow record batches (``BATCH_ROWS`` rows each), ``pgpq``
encodes each batch, and psycopg sends it, so PostgreSQL parses no text (no
CSV, no date or number input functions: both UP feeds' COPY took 22-24 s as
CSV, 14.4 s as binary; README, "Performance"). The feed's good rows go straight into their ``core``
table (``copy_insert``); its quarantined and held rows into temporary tables
(``push_staged``). Rows from PostgreSQL to DuckDB (the registered users) go as
CSV (``pull_to_file``).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy.engine import Connection

from . import settings, sql

BATCH_ROWS = 65_536

# The column types the binary COPY writes: a PostgreSQL type (as format_type
# names it) and the DuckDB type a value is cast to first, whose Arrow type
# pgpq encodes as that PostgreSQL type. The staged tables use no others.
_DUCKDB_TYPE = {
    "text": "VARCHAR", "bigint": "BIGINT", "integer": "INTEGER", "date": "DATE", "double precision": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp without time zone": "TIMESTAMP",
}
_PG_TYPE = {duck: pg for pg, duck in _DUCKDB_TYPE.items()}


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

    def sql(self, query: str):
        return self.db.sql(query)

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
    columns = []
    for name, kind, *_ in db.execute(f"DESCRIBE {table}").fetchall():
        pg_type = _PG_TYPE.get(str(kind).upper())
        if pg_type is None:
            raise ValueError(f"{table}.{name}: DuckDB type {kind} has no binary COPY mapping")
        columns.append((name, pg_type))
    ddl = ", ".join(f'"{name}" {kind}' for name, kind in columns)
    pg = _psycopg(conn)
    with pg.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TEMP TABLE {table} ({ddl}) ON COMMIT DROP")
        return _copy_rows(db, f"SELECT * FROM {table}", cur, table, columns)


def push_staged(db, conn: Connection, feed: str) -> None:
    """The quarantined (and held) rows as PostgreSQL temporary tables; the good
    rows go by ``copy_insert``."""
    tables = [f"stgq_{feed}"] + (["stgh_completion"] if feed == "completion" else [])
    for table in tables:
        push_table(db, conn, table)


_INSERT_SELECT = re.compile(r"INSERT\s+INTO\s+([\w.]+)\s*\(([^)]*)\)\s*(SELECT\b.*)", re.S | re.I)


class TransferError(RuntimeError):
    """Rows did not arrive whole: the caller's transaction must not commit."""


def _target_columns(cur, table: str, names: list[str]) -> list[tuple[str, str]]:
    """The PostgreSQL type of each named column of ``table``."""
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped",
        (table,),
    )
    kinds = dict(cur.fetchall())
    if not kinds:
        raise ValueError(f"COPY into {table}: no such table")
    out = []
    for name in names:
        if name not in kinds:
            raise ValueError(f"COPY into {table}: no column {name}")
        if kinds[name] not in _DUCKDB_TYPE:
            raise ValueError(f"COPY into {table}: column {name} is {kinds[name]}, which has no binary COPY mapping")
        out.append((name, kinds[name]))
    return out


def _batches(reader, table: str):
    """The reader's batches; a query that fails while DuckDB streams it
    surfaces from pyarrow as an OSError (or another Arrow error), named here
    for what it is."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            raise TransferError(f"COPY into {table}: reading the staged rows failed: {exc}") from exc
        yield batch


def _copy_rows(db, query: str, cur, table: str, columns: list[tuple[str, str]]) -> int:
    """COPY the rows of a DuckDB query into a PostgreSQL table in binary
    format; returns the rows PostgreSQL took in.

    ``columns`` are the query's columns in order, as (target column, its
    PostgreSQL type); each value is cast in DuckDB to the matching type, since
    a binary COPY must send exactly the column's type (an INTEGER for a BIGINT
    column is an error). The rows are read and sent one batch at a time, so
    memory stays at a few batches whatever the size of the result. A query that
    fails part-way raises ``TransferError`` inside the COPY block: psycopg
    abandons the COPY and the caller's transaction holds none of the rows."""
    names = ", ".join(f'"{name}"' for name, _ in columns)
    casts = ", ".join(f'CAST(q."{name}" AS {_DUCKDB_TYPE[kind]}) AS "{name}"' for name, kind in columns)
    reader = db.sql(f"SELECT {casts} FROM ({query}) AS q({names})").to_arrow_reader(BATCH_ROWS)
    try:
        encoder = ArrowToPostgresBinaryEncoder(reader.schema)
        with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary)") as copy:
            copy.write(encoder.write_header())
            for batch in _batches(reader, table):
                copy.write(encoder.write_batch(batch))
            copy.write(encoder.finish())
    finally:
        reader.close()  # else DuckDB keeps the connection busy with the rest of the result
    return cur.rowcount


def copy_insert(db, conn: Connection, statement: str, params: dict) -> int:
    """Run ``INSERT INTO <table> (<columns>) SELECT ... FROM <staged table>``
    with the SELECT in the staging DuckDB and the rows going into the
    PostgreSQL table by binary COPY (one pass, no PostgreSQL staging table).
    ``:name`` parameters are inlined as literals. Checks that every row of the
    SELECT arrived; returns the rows copied."""
    m = _INSERT_SELECT.fullmatch(sql.strip_comments(statement).strip())
    if not m:
        raise ValueError(f"copy_insert needs INSERT INTO t (columns) SELECT ...; got {statement[:80]!r}")
    target, columns, select = m.groups()
    query = sql.inline(select, params)
    # fetchall: a result left unfetched keeps the DuckDB connection busy
    expected = int(db.execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0])
    with _psycopg(conn).cursor() as cur:
        copied = _copy_rows(db, query, cur, target, _target_columns(cur, target, [c.strip() for c in columns.split(",")]))
    if copied != expected:
        raise TransferError(f"COPY into {target}: {copied} rows arrived of the {expected} staged")
    return copied

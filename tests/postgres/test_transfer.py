"""transfer.copy_insert: a staged DuckDB query's rows into a PostgreSQL table
by binary COPY, batch by batch as DuckDB streams them. Values arrive as they
were (NULL and the empty string apart, quotes, line breaks, Hindi, dates,
numbers), in the target column's type, and an export that fails half-way
leaves nothing behind."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
import sqlalchemy as sa

from mou_etl import transfer

pytestmark = pytest.mark.postgres

TABLE = """CREATE TABLE t_target (
    state_code TEXT NOT NULL, n BIGINT NOT NULL, name TEXT, day DATE, pct DOUBLE PRECISION, ok BOOLEAN)"""
INSERT = ("INSERT INTO t_target (state_code, n, name, day, pct, ok)\n"
          "SELECT :state_code, n, name, day, pct, ok FROM stg_t")


@pytest.fixture
def pg(postgres_url):
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        with conn.begin():
            conn.execute(sa.text(TABLE))
        yield conn
    engine.dispose()


def _rows(conn):
    with conn.begin():
        return conn.execute(sa.text("SELECT state_code, n, name, day, pct, ok FROM t_target ORDER BY n")).all()


def test_values_arrive_as_staged(pg):
    db = duckdb.connect()
    db.execute("CREATE TABLE stg_t (n BIGINT, name VARCHAR, day DATE, pct DOUBLE, ok BOOLEAN)")
    db.execute(
        "INSERT INTO stg_t VALUES (1, NULL, NULL, NULL, NULL), (2, '', DATE '2026-01-05', 0.1, true), "
        "(3, 'say \"hi\", then go', DATE '1999-12-31', 99.95, false), (4, 'line one\nline two', NULL, 1e-7, NULL), "
        "(5, 'हिन्दी विभाग', DATE '2026-02-28', -0.0, true)"
    )
    with pg.begin():
        copied = transfer.copy_insert(db, pg, INSERT, {"state_code": "UP"})
    assert copied == 5
    assert _rows(pg) == [
        ("UP", 1, None, None, None, None),
        ("UP", 2, "", date(2026, 1, 5), 0.1, True),
        ("UP", 3, 'say "hi", then go', date(1999, 12, 31), 99.95, False),
        ("UP", 4, "line one\nline two", None, 1e-7, None),
        ("UP", 5, "हिन्दी विभाग", date(2026, 2, 28), -0.0, True),
    ]


def test_large_export_arrives_whole(pg):
    """More than one block, and written faster than it is read or not: every row."""
    db = duckdb.connect()
    db.execute("CREATE TABLE stg_t AS SELECT i AS n, repeat('x', 40) || i AS name, DATE '2026-01-01' + "
               "CAST(i % 300 AS INTEGER) AS day, i / 7.0 AS pct, i % 2 = 0 AS ok FROM range(300000) AS r(i)")
    with pg.begin():
        assert transfer.copy_insert(db, pg, INSERT, {"state_code": "GA"}) == 300000
    with pg.begin():
        count, total, last = pg.execute(sa.text("SELECT count(*), sum(n), max(name) FROM t_target")).one()
    assert (count, total) == (300000, sum(range(300000)))
    assert last == "x" * 40 + "99999"


def test_export_failing_half_way_leaves_nothing(pg, monkeypatch):
    db = duckdb.connect()
    db.execute("CREATE TABLE stg_t AS SELECT i AS n, 'row ' || i AS name, NULL::DATE AS day, NULL::DOUBLE AS pct, "
               "NULL::BOOLEAN AS ok FROM range(3000000) AS r(i)")
    # The count succeeds; the export fails after most rows are written.
    failing = INSERT.replace("SELECT :state_code, n,", "SELECT :state_code, CASE WHEN n < 2900000 THEN n "
                             "ELSE CAST(error('export broke at ' || n) AS BIGINT) END,")
    sent = []
    real_encoder = transfer.ArrowToPostgresBinaryEncoder

    class CountingEncoder:  # the rows encoded for COPY, batch by batch
        def __init__(self, schema):
            self.encoder = real_encoder(schema)

        def write_header(self):
            return self.encoder.write_header()

        def write_batch(self, batch):
            sent.append(batch.num_rows)
            return self.encoder.write_batch(batch)

        def finish(self):
            return self.encoder.finish()

    monkeypatch.setattr(transfer, "ArrowToPostgresBinaryEncoder", CountingEncoder)
    with pytest.raises(transfer.TransferError, match="COPY into t_target: reading the staged rows failed: .*export broke"):
        with pg.begin():
            transfer.copy_insert(db, pg, failing, {"state_code": "UP"})
    assert sum(sent) > 0, "the failure came before any row was sent: this test did not test the half-way case"
    assert _rows(pg) == []
    # the DuckDB connection is free again (the failed result was closed)
    assert db.execute("SELECT count(*) FROM stg_t").fetchall() == [(3000000,)]


def test_value_in_a_narrower_column_type_is_cast(pg):
    """The staged query gives INTEGER and a literal: each is cast to the target
    column's type (a binary COPY accepts no other)."""
    db = duckdb.connect()
    db.execute("CREATE TABLE stg_t (n INTEGER, name VARCHAR, day VARCHAR, pct FLOAT, ok BOOLEAN)")
    db.execute("INSERT INTO stg_t VALUES (7, 'a', '2026-03-01', 0.5, true)")
    with pg.begin():
        assert transfer.copy_insert(db, pg, INSERT, {"state_code": "UP"}) == 1
    assert _rows(pg) == [("UP", 7, "a", date(2026, 3, 1), 0.5, True)]


def test_unknown_column_named(pg):
    db = duckdb.connect()
    db.execute("CREATE TABLE stg_t (n BIGINT)")
    with pytest.raises(ValueError, match="COPY into t_target: no column nope"):
        with pg.begin():
            transfer.copy_insert(db, pg, "INSERT INTO t_target (state_code, nope) SELECT 'UP', n FROM stg_t", {})


def test_push_table_makes_a_typed_temp_table(pg):
    db = duckdb.connect()
    db.execute("CREATE TABLE stgq_x AS SELECT CAST(i AS BIGINT) AS record_no, 'why ' || i AS reason, "
               "CASE WHEN i = 1 THEN NULL ELSE DATE '2026-01-01' + CAST(i AS INTEGER) END AS day FROM range(3) AS r(i)")
    with pg.begin():
        assert transfer.push_table(db, pg, "stgq_x") == 3
        kinds = pg.execute(sa.text("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a "
                                   "WHERE a.attrelid = 'stgq_x'::regclass AND a.attnum > 0 ORDER BY a.attnum")).all()
        rows = pg.execute(sa.text("SELECT * FROM stgq_x ORDER BY record_no")).all()
    assert kinds == [("record_no", "bigint"), ("reason", "text"), ("day", "date")]
    assert rows == [(0, "why 0", date(2026, 1, 1)), (1, "why 1", None), (2, "why 2", date(2026, 1, 3))]


def test_only_an_insert_select_is_accepted(pg):
    with pytest.raises(ValueError, match="INSERT INTO t"):
        transfer.copy_insert(duckdb.connect(), pg, "DELETE FROM t_target", {})


def test_push_table_refuses_a_type_without_binary_mapping(pg):
    """A staged column of a type the binary COPY has no mapping for (HUGEINT,
    what a DuckDB sum gives) is named, not sent as something else."""
    db = duckdb.connect()
    db.execute("CREATE TABLE stgq_y AS SELECT CAST(1 AS BIGINT) AS record_no, sum(i) AS line_no FROM range(3) AS r(i)")
    with pytest.raises(ValueError, match="stgq_y.line_no: DuckDB type HUGEINT has no binary COPY mapping"):
        with pg.begin():
            transfer.push_table(db, pg, "stgq_y")

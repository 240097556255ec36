"""Hand-built deliveries and warehouse reads for the integration tests.

Files are written byte for byte as a state would upload them; the manifest gets
the true record count and sha256 of each file unless a test overrides them to
break a rule on purpose. Record counts are computed here independently of
``mou_etl`` (Python's csv module, one JSON object per non-blank line).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

csv.field_size_limit(sys.maxsize)  # a state may send one field of many megabytes

ENROLMENT_COLUMNS = ["User_ID", "Department", "User_Registration_Date", "Organization", "Designation", "Group", "mdoid"]
COMPLETION_COLUMNS = [
    "User_ID", "Content_ID", "Batch_Id", "Content_Name", "Content_Provider", "Content_Type", "Content_Duration",
    "Enrolled_On", "Status", "Content_Progress_Percentage", "Completed_On", "Certificate_Generated",
    "Certificate_ID", "User_Rating",
]
PERSONAL_COLUMNS = ["Full_Name", "Email", "Phone_Number", "Employee_Id"]


def csv_bytes(header: list[str], rows: list[list[Any]], *, crlf: bool = False, bom: bool = False,
              quote_all: bool = False) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n" if crlf else "\n",
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return (("\ufeff" if bom else "") + buf.getvalue()).encode("utf-8")


def jsonl_bytes(objects: list[dict]) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode("utf-8")


def count_records(name: str, data: bytes) -> int:
    """Data records of a feed file, as the manifest's ``rows`` counts them."""
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8-sig")
    if ".jsonl" in name:
        return sum(1 for line in text.splitlines() if line.strip())
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return max(len(records) - 1, 0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ rows


def enrol(user: str, dept: str = "Health", reg: str = "2025-06-01", org: str = "", desig: str = "",
          group: str = "", mdoid: str = "") -> list:
    return [user, dept, reg, org, desig, group, mdoid]


def compl(user: str, content: str = "c1", batch: str = "", name: str = "Course", provider: str = "P",
          ctype: str = "Course", duration: str = "01:00:00", enrolled: str = "2025-12-01",
          status: str = "Completed", progress: str = "100", completed: str = "2025-12-15",
          cert: str = "Yes", cert_id: str = "", rating: str = "") -> list:
    return [user, content, batch, name, provider, ctype, duration, enrolled, status, progress, completed, cert,
            cert_id, rating]


def enrolment_csv(rows: list[list], **kw) -> bytes:
    return csv_bytes(ENROLMENT_COLUMNS, rows, **kw)


def completion_csv(rows: list[list], **kw) -> bytes:
    return csv_bytes(COMPLETION_COLUMNS, rows, **kw)


# ------------------------------------------------------------------ deliveries


@dataclass
class File:
    feed: str
    name: str
    data: bytes | None                 # None: named in the manifest but not written
    rows: int | None = None            # None: the true record count
    sha: str | None = None             # None: the true sha256
    entry: dict | None = None          # the manifest entry verbatim, when a test writes it itself

    def manifest_entry(self) -> dict:
        if self.entry is not None:
            return self.entry
        data = self.data or b""
        rows = self.rows if self.rows is not None else count_records(self.name, data)
        return {"feed": self.feed, "name": self.name, "rows": rows, "sha256": self.sha or sha256(data)}


def enrolment_file(rows: list[list], name: str = "enrolment.csv", **kw) -> File:
    data = enrolment_csv(rows, **kw)
    return File("enrolment", name, gzip.compress(data, mtime=0) if name.endswith(".gz") else data)


def completion_file(rows: list[list], name: str = "completion.csv", **kw) -> File:
    data = completion_csv(rows, **kw)
    return File("completion", name, gzip.compress(data, mtime=0) if name.endswith(".gz") else data)


def write_delivery(landing: Path, state: str, day: str, files: list[File], *, mode: str = "delta",
                   manifest: bool = True, doc_patch: Callable[[dict], Any] | None = None,
                   manifest_text: str | None = None) -> Path:
    """Write the files, then manifest.json last (unless ``manifest`` is False)."""
    folder = Path(landing) / state / day
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        if f.data is not None:
            (folder / f.name).write_bytes(f.data)
    if manifest:
        write_manifest(folder, state, day, files, mode=mode, doc_patch=doc_patch, manifest_text=manifest_text)
    return folder


def write_manifest(folder: Path, state: str, day: str, files: list[File], *, mode: str = "delta",
                   doc_patch: Callable[[dict], Any] | None = None, manifest_text: str | None = None) -> None:
    doc = {"state": state, "report_date": day, "mode": mode, "files": [f.manifest_entry() for f in files]}
    if doc_patch is not None:
        doc_patch(doc)
    text = manifest_text if manifest_text is not None else json.dumps(doc, ensure_ascii=False, indent=1)
    tmp = folder / "manifest.json.part"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(folder / "manifest.json")


# ------------------------------------------------------------------ warehouse


@contextmanager
def reader(url: str):
    """A query function over one short-lived warehouse connection: ``q(sql, **params) -> [dict]``.
    Close it (leave the block) before the pipeline runs again: DuckDB allows one writer process."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    conn = engine.connect()

    def q(query: str, **params) -> list[dict]:
        return [dict(r._mapping) for r in conn.execute(sa.text(query), params)]

    try:
        yield q
    finally:
        conn.close()
        engine.dispose()


def read(url: str, query: str, **params) -> list[dict]:
    """Rows of one query on the warehouse, as dicts."""
    with reader(url) as q:
        return q(query, **params)


def text_columns(url: str) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text-like column in every user schema."""
    rows = read(
        url,
        "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1, 2, 3",
    )
    textish = ("char", "text", "json", "varchar", "string", "clob", "blob", "bytea", "struct", "map", "list", "[]",
               "union", "user-defined", "array")
    return [(r["table_schema"], r["table_name"], r["column_name"]) for r in rows
            if any(t in str(r["data_type"]).lower() for t in textish)]


@dataclass
class Night:
    """The calls a night makes for one state, against one landing zone and warehouse."""

    landing: Path
    url: str
    results: list[dict] = field(default_factory=list)

    def ingest(self, state: str, day: str) -> dict:
        from mou_etl import night

        result = night.ingest_deliveries(state, day, landing=str(self.landing), warehouse=self.url)
        self.results.append(result)
        return result

    def retry(self, state: str, day: str) -> dict:
        from mou_etl import night

        return night.retry_held_rows(state, day, warehouse=self.url)

    def rollup(self, day: str) -> dict:
        from mou_etl import night

        return night.national_rollup(day, warehouse=self.url)

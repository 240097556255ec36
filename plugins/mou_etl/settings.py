"""Where things live: project folders and the environment variables that move them.

Every location has a default under the repository, so a fresh clone works with
no configuration; production points the variables elsewhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = PROJECT_ROOT / "include" / "sql"
CONFIG_DIR = PROJECT_ROOT / "include" / "config"


def data_dir() -> Path:
    return Path(os.environ.get("MOU_DATA_DIR", PROJECT_ROOT / "data"))


def landing_dir() -> Path:
    return Path(os.environ.get("MOU_LANDING_DIR", data_dir() / "landing"))


def archive_dir() -> Path:
    return Path(os.environ.get("MOU_ARCHIVE_DIR", data_dir() / "archive"))


def work_dir() -> Path:
    """Scratch space (DuckDB spill files, COPY buffers); safe to delete between runs."""
    return Path(os.environ.get("MOU_WORK_DIR", data_dir() / "work"))


def warehouse_url() -> str:
    url = os.environ.get("MOU_WAREHOUSE_URL")
    if url:
        return url
    return f"duckdb:///{data_dir() / 'warehouse.duckdb'}"


def states_file() -> Path:
    return Path(os.environ.get("MOU_STATES_FILE", CONFIG_DIR / "states.csv"))


def duckdb_memory_limit() -> str:
    """Memory DuckDB may use before spilling to disk (keeps peak RSS bounded)."""
    return os.environ.get("MOU_DUCKDB_MEMORY_LIMIT", "1GB")


def duckdb_threads() -> int:
    return int(os.environ.get("MOU_DUCKDB_THREADS", "0")) or (os.cpu_count() or 2)


def pg_work_mem() -> str:
    """PostgreSQL ``work_mem`` for the rollup's sorts and hash aggregates over
    millions of rows (the server default, 4MB, makes them spill to disk)."""
    value = os.environ.get("MOU_PG_WORK_MEM", "256MB").strip()
    if not re.fullmatch(r"\d+\s*(kB|MB|GB)", value):
        raise ValueError(f"MOU_PG_WORK_MEM={value!r}: expected a size such as 256MB")
    return value


def masked_url(url: str) -> str:
    """A database URL with any password replaced, for display."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)

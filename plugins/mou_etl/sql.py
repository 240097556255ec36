"""SQL files of ``include/sql``: loading, splitting into statements, rendering.

Files hold plain SQL shared by DuckDB and PostgreSQL. Values are bound as
``:name`` parameters (SQLAlchemy ``text()``); identifiers that vary (a staging
table) are ``{name}`` placeholders filled in by the caller from a fixed set.
Statements are separated by a ``;`` at the end of a line.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from . import settings

_COMMENT = re.compile(r"--[^\n]*")


@lru_cache(maxsize=None)
def read(name: str) -> str:
    path = settings.SQL_DIR / name
    return path.read_text(encoding="utf-8")


def statements(text: str) -> list[str]:
    """Split SQL text into statements at semicolons that end a line, without
    comments (a ``:name`` in a comment would otherwise read as a parameter;
    the SQL files hold no ``--`` inside string literals)."""
    out, buf = [], []
    in_dollar = False          # inside a $$ ... $$ body (a DO block): its semicolons do not end it
    for line in text.splitlines():
        buf.append(line)
        if line.count("$$") % 2:
            in_dollar = not in_dollar
        if not in_dollar and _COMMENT.sub("", line).rstrip().endswith(";"):
            stmt = "\n".join(buf).strip()
            buf = []
            stmt = _COMMENT.sub("", stmt).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
    tail = _COMMENT.sub("", "\n".join(buf)).strip()
    if tail:
        out.append(tail)
    return out


BIND = re.compile(r"(?<![:\w]):(\w+)")


def literal(value) -> str:
    """A SQL literal for a date, a number or text (for the few places where a
    value is inlined into SQL rather than bound: DuckDB table functions,
    staged SQL)."""
    from datetime import date

    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def inline(text: str, params: dict) -> str:
    """SQL text with its ``:name`` parameters replaced by literals (every one
    must be given)."""
    def value(m: re.Match) -> str:
        if m.group(1) not in params:
            raise KeyError(f"SQL parameter :{m.group(1)} has no value")
        return literal(params[m.group(1)])

    return BIND.sub(value, strip_comments(text))


def strip_comments(text: str) -> str:
    return _COMMENT.sub("", text)


def load(name: str, **identifiers: str) -> list[str]:
    """Statements of include/sql/<name>, with {identifier} placeholders filled."""
    text = read(name)
    if identifiers:
        text = text.format(**identifiers)
    return statements(text)


def migration_files(dialect: str) -> list[tuple[str, Path]]:
    """(version, path) of migrations for the dialect, in order.

    ``NNN_name.sql`` applies everywhere; ``NNN_name.<dialect>.sql`` only there.
    """
    found = []
    for path in sorted((settings.SQL_DIR / "migrations").glob("*.sql")):
        parts = path.name.split(".")
        if len(parts) == 2:
            found.append((parts[0], path))
        elif len(parts) == 3 and parts[1] == dialect:
            found.append((f"{parts[0]}.{dialect}", path))
    return found

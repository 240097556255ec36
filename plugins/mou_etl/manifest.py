"""manifest.json: reading it and checking it against its folder (feeds.md).

Problems that concern one feed's entry become that feed's ``manifest_mismatch``;
a manifest that cannot be read at all rejects every feed of the delivery.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath

from .feeds import FEEDS, file_format

MANIFEST = "manifest.json"
MODES = ("delta", "snapshot")


@dataclass
class FileEntry:
    feed: str
    name: str
    rows: int | None
    sha256: str | None
    problem: str | None = None      # manifest_mismatch detail, when the entry itself is wrong

    @property
    def fingerprint_source(self) -> str:
        return json.dumps([self.feed, self.name, self.rows, self.sha256], sort_keys=True)


@dataclass
class Manifest:
    path: Path
    sha256: str
    state: str | None
    report_date: str | None
    mode: str | None
    entries: dict[str, FileEntry] = field(default_factory=dict)
    problem: str | None = None      # the manifest as a whole is unusable


def display_path(path: Path) -> str:
    """How messages name a file of a delivery: relative to the landing zone
    (``UP/2026-01-06/enrolment.csv``), the same wherever the zone is mounted."""
    return "/".join(Path(path).parts[-3:])


def _safe_name(name: str) -> str | None:
    """Why a file name may not be used, or None. Names must stay in the delivery folder."""
    if not name or name.strip() != name:
        return "empty or padded file name"
    if "\\" in name or "/" in name or name in (".", "..") or "\x00" in name:
        return f"file name {name!r} leaves the delivery folder (only a plain file name is allowed)"
    if PurePosixPath(name).is_absolute():
        return f"file name {name!r} is an absolute path"
    return None


def read_manifest(folder: Path, state: str, report_date: str) -> Manifest:
    """Read and check <folder>/manifest.json against the folder it sits in."""
    path = folder / MANIFEST
    raw = path.read_bytes()
    m = Manifest(path=path, sha256=hashlib.sha256(raw).hexdigest(), state=None, report_date=None, mode=None)
    where = display_path(path)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        m.problem = f"{where}: not valid JSON ({exc})"
        return m
    if not isinstance(doc, dict):
        m.problem = f"{where}: must be a JSON object"
        return m
    m.state, m.report_date, m.mode = doc.get("state"), doc.get("report_date"), doc.get("mode")
    if m.state != state:
        m.problem = f"{where}: state is {m.state!r} but the folder is {state!r}"
    elif m.report_date != report_date:
        m.problem = f"{where}: report_date is {m.report_date!r} but the folder is {report_date!r}"
    elif m.mode not in MODES:
        m.problem = f"{where}: mode must be 'delta' or 'snapshot', not {m.mode!r}"
    files = doc.get("files")
    if not isinstance(files, list) or not files:
        m.problem = m.problem or f"{where}: 'files' must be a non-empty list"
        return m
    for i, item in enumerate(files):
        if not isinstance(item, dict) or item.get("feed") not in FEEDS:
            feed = item.get("feed") if isinstance(item, dict) else None
            m.problem = m.problem or f"{where}: files[{i}] has unknown feed {feed!r} (expected enrolment or completion)"
            continue
        feed = item["feed"]
        name = item.get("name")
        rows = item.get("rows")
        sha = item.get("sha256")
        entry = FileEntry(feed=feed, name=name if isinstance(name, str) else "", rows=None, sha256=None)
        if feed in m.entries:
            m.entries[feed].problem = f"{where}: feed {feed} is listed twice"
            continue
        m.entries[feed] = entry
        bad_name = _safe_name(entry.name)
        if bad_name:
            entry.problem = f"{where}: {feed}: {bad_name}"
        elif file_format(entry.name) is None:
            entry.problem = f"{where}: {feed}: {entry.name!r} is not .csv, .csv.gz, .jsonl or .jsonl.gz"
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            entry.problem = entry.problem or f"{where}: {feed}: rows must be a whole number, not {rows!r}"
        else:
            entry.rows = rows
        if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
            entry.problem = entry.problem or f"{where}: {feed}: sha256 must be 64 hex digits"
        else:
            entry.sha256 = sha.lower()
    return m


def parse_report_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None

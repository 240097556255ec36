"""Rebuilding the warehouse from the archive alone.

The archive holds every file processed (by sha256), every manifest, and per
state the log of deliveries in the order they were processed. ``rebuild``
recreates an empty warehouse, lays each logged delivery out again as a landing
folder (links to the archived bytes), processes them in the logged order with
the same code as a night, loads held rows whose user is registered by the last
date, and rolls up every date from the first report date to the last.

    python -m mou_etl rebuild --warehouse URL [--archive DIR] [--replace]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from . import archive, settings
from .landing import Delivery
from .load import Loader
from .manifest import MANIFEST, display_path
from .states import get_state, registry
from .warehouse import Warehouse

log = logging.getLogger(__name__)

SCHEMAS = ("mart", "quarantine", "core", "ops")


class RebuildError(RuntimeError):
    pass


def _empty_or_replace(wh: Warehouse, replace: bool) -> None:
    with wh.connect() as conn, conn.begin():
        loads = conn.execute(sa.text("SELECT count(*) FROM ops.feed_load")).scalar()
    if loads and not replace:
        raise RebuildError(f"the warehouse ({wh.describe()}) already holds {loads} feed loads; use --replace to drop it")
    if loads:
        with wh.connect() as conn, conn.begin():
            for schema in SCHEMAS:
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        wh._migrated = False


def _lay_out(entry: dict, root: Path, archive_root: Path) -> Path:
    """The logged delivery as a landing folder: its manifest and, per feed
    processed, the archived bytes under the name the manifest gave them."""
    folder = root / entry["state"] / entry["report_date"]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    manifest = archive_root / "manifests" / entry["state"] / entry["report_date"] / f"{entry['manifest_sha256']}.json"
    if not manifest.is_file():
        raise RebuildError(f"archive has no manifest {display_path(manifest)}")
    shutil.copyfile(manifest, folder / MANIFEST)
    for feed, info in entry["feeds"].items():
        name, sha = info.get("name"), info.get("sha256")
        if not name or not sha or "/" in name or "\\" in name or name in (".", ".."):
            continue  # the file was absent or its name refused: nothing to lay out
        obj = archive.object_path(archive_root, sha)
        if not obj.is_file():
            raise RebuildError(f"archive has no object {sha} ({entry['state']}/{entry['report_date']}/{name})")
        os.symlink(obj, folder / name)
    return folder


def rebuild(warehouse: str, archive_root: Path | None = None, replace: bool = False, out=sys.stdout) -> dict:
    archive_root = Path(archive_root or settings.archive_dir())
    logged = archive.read_log(archive_root)
    if not logged:
        raise RebuildError(f"archive {archive_root} has no delivery log (log/<STATE>.jsonl)")
    wh = Warehouse(warehouse)
    _empty_or_replace(wh, replace)
    scratch = settings.work_dir() / f"rebuild-{uuid.uuid4().hex[:8]}"
    landing, replay_archive = scratch / "landing", scratch / "archive"
    days = sorted({e["report_date"] for entries in logged.values() for e in entries})
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    run_id = f"rebuild-{uuid.uuid4().hex[:8]}"
    counts = {"deliveries": 0, "feeds": 0, "released": 0}
    try:
        with wh.connect() as conn:
            for code, entries in logged.items():
                if code not in registry():
                    print(f"{code}: not in the state registry, its {len(entries)} deliveries are skipped", file=out)
                    continue
                loader = Loader(wh, conn, get_state(code), run_id=run_id, archive_root=replay_archive)
                try:
                    from .night import _process_delivery

                    for entry in entries:
                        folder = _lay_out(entry, landing, archive_root)
                        delivery = Delivery(code, entry["report_date"], str(folder), entry["manifest_sha256"])
                        outcomes = _process_delivery(loader, delivery, log=False)
                        counts["deliveries"] += 1
                        counts["feeds"] += sum(o.status != "unchanged" for o in outcomes)
                    counts["released"] += loader.release_held(last)
                finally:
                    loader.close()
            from .rollup import national_rollup

            day = first
            while day <= last:
                national_rollup(conn, day)
                day += timedelta(days=1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = {**counts, "first_date": first.isoformat(), "last_date": last.isoformat(), "warehouse": wh.describe()}
    print(
        f"rebuilt {wh.describe()} from {archive_root}: {counts['deliveries']} deliveries, {counts['feeds']} feeds, "
        f"{counts['released']} held rows loaded, marts for {first} .. {last}",
        file=out,
    )
    return summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rebuild", help="recreate a warehouse from the archive alone")
    p.add_argument("--warehouse", required=True, help="SQLAlchemy URL of the warehouse to (re)create")
    p.add_argument("--archive", default=None, help="archive folder (default $MOU_ARCHIVE_DIR)")
    p.add_argument("--replace", action="store_true", help="drop the warehouse's tables first if it holds data")
    p.set_defaults(func=lambda args: rebuild(args.warehouse, args.archive, args.replace) and 0)

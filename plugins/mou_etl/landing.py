"""The landing zone: finding the deliveries a night must process.

``<landing>/<STATE>/<REPORT_DATE>/manifest.json`` marks a finished upload; a
folder without one is still being uploaded and is not read. Locally the
landing zone is a folder; other transports (SFTP, object store, HTTP) mirror
the same layout into a local folder before this runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from .manifest import MANIFEST, parse_report_date
from .states import State


@dataclass(frozen=True)
class Delivery:
    state: str
    report_date: str
    path: str
    manifest_sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


class LandingError(RuntimeError):
    """The landing zone is absent or unreadable."""


def discover(state: State, landing_root: Path, up_to: date) -> tuple[list[Delivery], list[str]]:
    """Deliveries of the state with a manifest and report date <= up_to, oldest first.

    Also returns notes about folders that are waiting (no manifest yet) or not
    named like a date, so a night can report them.
    """
    root = Path(landing_root)
    if not root.is_dir():
        raise LandingError(f"landing zone {root} does not exist")
    folder = state.landing_path(root)
    if not folder.is_dir():
        return [], [f"{folder}: no deliveries yet"]
    found, notes = [], []
    for sub in sorted(folder.iterdir()):
        if not sub.is_dir():
            continue
        day = parse_report_date(sub.name)
        if day is None:
            notes.append(f"{sub}: ignored, folder name is not a YYYY-MM-DD report date")
            continue
        if day > up_to:
            continue
        manifest = sub / MANIFEST
        if not manifest.is_file():
            notes.append(f"{sub}: waiting, no {MANIFEST} yet (upload not finished)")
            continue
        sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
        found.append(Delivery(state=state.code, report_date=sub.name, path=str(sub), manifest_sha256=sha))
    found.sort(key=lambda d: d.report_date)
    return found, notes

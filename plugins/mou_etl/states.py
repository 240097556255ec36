"""The state registry: which states deliver, and each state's settings.

It is configuration, not code: ``include/config/states.csv`` (or the file named
by ``MOU_STATES_FILE``). Adding a state or union territory is one line there.

Columns:
  state_code          ISO 3166-2:IN code, also the landing folder name
  state_name          display name
  bad_row_threshold   feed rejected as too_many_bad_rows above this fraction (default 0.10)
  window_opens_ist    HH:MM, when the state's nightly delivery window opens (IST)
  cutoff_ist          HH:MM, the cutoff; the state's DAG runs at this time (IST)
  landing             optional landing location for this state (default: <landing>/<code>)
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import time
from functools import lru_cache
from pathlib import Path

from . import settings

DEFAULT_THRESHOLD = 0.10
DEFAULT_WINDOW_OPENS = "18:00"
DEFAULT_CUTOFF = "23:30"
_CODE = re.compile(r"^[A-Z]{2,3}$")


class RegistryError(ValueError):
    """The state registry file is malformed."""


@dataclass(frozen=True)
class State:
    code: str
    name: str
    bad_row_threshold: float = DEFAULT_THRESHOLD
    window_opens_ist: time = time.fromisoformat(DEFAULT_WINDOW_OPENS)
    cutoff_ist: time = time.fromisoformat(DEFAULT_CUTOFF)
    landing: str = ""

    def landing_path(self, landing_root: Path) -> Path:
        return Path(self.landing) if self.landing else Path(landing_root) / self.code


def _parse_time(value: str, default: str, where: str) -> time:
    try:
        return time.fromisoformat((value or default).strip())
    except ValueError as exc:
        raise RegistryError(f"{where}: not a HH:MM time: {value!r}") from exc


def load_states(path: Path | None = None) -> tuple[State, ...]:
    path = Path(path or settings.states_file())
    states: list[State] = []
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"state_code", "state_name"} <= set(reader.fieldnames):
            raise RegistryError(f"{path}: header must have state_code and state_name")
        for lineno, row in enumerate(reader, start=2):
            where = f"{path}, line {lineno}"
            code = (row.get("state_code") or "").strip().upper()
            if not _CODE.match(code):
                raise RegistryError(f"{where}: bad state_code {code!r}")
            if code in seen:
                raise RegistryError(f"{where}: state_code {code} listed twice")
            seen.add(code)
            try:
                threshold = float((row.get("bad_row_threshold") or "").strip() or DEFAULT_THRESHOLD)
            except ValueError as exc:
                raise RegistryError(f"{where}: bad_row_threshold is not a number") from exc
            if not 0 <= threshold <= 1:
                raise RegistryError(f"{where}: bad_row_threshold must be within 0..1")
            states.append(
                State(
                    code=code,
                    name=(row.get("state_name") or "").strip(),
                    bad_row_threshold=threshold,
                    window_opens_ist=_parse_time(row.get("window_opens_ist", ""), DEFAULT_WINDOW_OPENS, where),
                    cutoff_ist=_parse_time(row.get("cutoff_ist", ""), DEFAULT_CUTOFF, where),
                    landing=(row.get("landing") or "").strip(),
                )
            )
    if not states:
        raise RegistryError(f"{path}: no states configured")
    return tuple(states)


@lru_cache(maxsize=8)
def _cached(path: str) -> tuple[State, ...]:
    return load_states(Path(path))


def registry() -> dict[str, State]:
    """The configured states by code, in file order."""
    return {s.code: s for s in _cached(str(settings.states_file()))}


def get_state(code: str) -> State:
    reg = registry()
    try:
        return reg[code.upper()]
    except KeyError:
        raise RegistryError(f"unknown state {code!r}; configured: {', '.join(reg)}") from None

"""Headless command: ``python -m mou_etl <command>``. See ``mou_etl.cli``."""

from .cli import main

raise SystemExit(main())

"""Headless command: ``python -m mou_etl <command>``. See ``mou_etl.cli``."""

import os
import sys

from .cli import main

code = main()
# Exit without interpreter teardown: every connection is closed by now, and
# teardown only adds nanobind's reference-leak report about DuckDB type objects
# that Great Expectations' imports keep alive (noise on the one-line output).
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)

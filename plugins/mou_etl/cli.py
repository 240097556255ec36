"""The headless command line.

    python -m mou_etl run --date YYYY-MM-DD [--state UP ...] [--landing DIR] [--warehouse URL]
    python -m mou_etl generate --landing DIR --start YYYY-MM-DD --days N [--scale S] [--seed K] [--bad-rows F]
    python -m mou_etl rebuild --warehouse URL [--archive DIR] [--replace]
    python -m mou_etl migrate [--warehouse URL]

Each sub-command lives in its own module, which registers its parser through
``add_parser(subparsers)`` and sets ``func``. Errors that stop a command are
printed as one line (``mou_etl: <cause>``) with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import generate, night, rebuild


class CommandError(Exception):
    """A command could not run; the message is the one-line cause."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mou_etl", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    night.add_parser(sub)
    generate.add_parser(sub)
    rebuild.add_parser(sub)
    migrate = sub.add_parser("migrate", help="create or migrate the warehouse schema, then exit")
    migrate.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default $MOU_WAREHOUSE_URL)")
    migrate.set_defaults(func=_migrate)
    return parser


def _migrate(args: argparse.Namespace) -> int:
    from .warehouse import Warehouse

    wh = Warehouse(args.warehouse)
    with wh.connect():
        pass
    print(f"warehouse ready: {wh.describe()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("mou_etl: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, the cause; details with --verbose
        if args.verbose:
            logging.exception("command failed")
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"mou_etl: {cause}", file=sys.stderr)
        return 2

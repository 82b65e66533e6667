"""``sidlite presets``: every application's default settings, per space, in one table."""
from __future__ import annotations

from ..presets import format_presets


def register(subparsers) -> None:
    parser = subparsers.add_parser("presets", help="list the presets every subcommand starts from",
                                   description="The starting settings of every application and space; "
                                               "--preset NAME picks one on any sampling subcommand.")
    parser.set_defaults(run=run)


def run(args) -> None:
    print(format_presets())

"""The command line the benchmark entry points share (``python -m benchmarks`` and
``python -m benchmarks.peers``): what to run, named from a fixed set (all by default),
``--quick``, ``--out`` and ``--no-history``, and the checks on them after parsing (an
unknown name, a count below 1) as usage errors naming the offending word."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["add_output", "new_parser", "parse"]


def new_parser(prog: str, doc: str | None, *, names: str, metavar: str,
               choices: Sequence[str], what: str, quick: str) -> argparse.ArgumentParser:
    """A parser with the module's docstring as its description, the positional ``names``
    (any of ``choices``, ``what`` in its help) and ``--quick`` (``quick`` its help)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(names, nargs="*", metavar=metavar,
                        help=f"{what} (default: all): {', '.join(choices)}")
    parser.add_argument("--quick", action="store_true", help=quick)
    return parser


def add_output(parser: argparse.ArgumentParser, default: Path, *, holds: str,
               no_history: str) -> None:
    """``--out DIR`` (the directory for ``holds``) and ``--no-history``."""
    parser.add_argument("--out", type=Path, default=default,
                        help=f"directory for {holds} (default: {default})")
    parser.add_argument("--no-history", action="store_true", help=no_history)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None, *, names: str,
          choices: Sequence[str], noun: str, counts: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; a name not in ``choices``, or an option of ``counts`` given below 1,
    is a usage error (exit status 2, the message naming it)."""
    args = parser.parse_args(argv)
    unknown = [name for name in getattr(args, names) if name not in choices]
    if unknown:
        parser.error(f"unknown {noun}(s) {', '.join(unknown)}; choose from {', '.join(choices)}")
    for option in counts:
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    return args

"""The ``explainreg`` command line. Thin: each subcommand lives in its own module of this package,
which defines ``register(subparsers)`` adding a parser whose ``func(args) -> int`` does the work."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from .. import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explainreg",
        description="Train neural networks with constrained explanations and evaluate attributions.",
    )

    parser.add_argument("--version", action="version", version=f"explainreg {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, FloatingPointError) as exc:
        print(f"explainreg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "; rerun the same command with --resume to continue from the last checkpoint" \
            if args.command == "train" else ""
        print(f"\ninterrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

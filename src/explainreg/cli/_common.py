"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse
import json

from ..data import ENV_VAR


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", metavar="PATH", default=None,
                        help=f"folder holding mnist/ and fashion-mnist/ IDX files (default: ${ENV_VAR}, "
                             "else ~/.cache/explainreg; downloaded there when online)")
    parser.add_argument("--no-download", action="store_true", help="never try to download missing data")


def parse_penalties(items: list[str] | None, default_weight: float) -> dict[str, float]:
    """``["smoothness", "fidelity=1.0"]`` -> ``{"smoothness": default_weight, "fidelity": 1.0}``."""
    penalties: dict[str, float] = {}
    for item in items or []:
        name, _, weight = item.partition("=")
        try:
            penalties[name.strip()] = float(weight) if weight else default_weight
        except ValueError:
            raise ValueError(f"--penalty {item!r}: the weight after '=' must be a number, e.g. smoothness=0.1") from None
    return penalties


def parse_settings(items: list[str] | None) -> dict[str, dict]:
    """``["symmetry.angles=[5,10]", "smoothness.compat=true"]`` -> ``{penalty: {key: value}}`` (JSON values)."""
    settings: dict[str, dict] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        name, dot, option = key.partition(".")
        if not (eq and dot and option):
            raise ValueError(f"--penalty-option {item!r}: write PENALTY.OPTION=VALUE, e.g. smoothness.compat=true")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        settings.setdefault(name, {})[option] = value
    return settings

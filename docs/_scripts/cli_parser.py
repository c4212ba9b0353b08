"""The command line's parser for the CLI reference page, its help texts escaped for reST
(help strings write |g| for a magnitude, which reST would read as a substitution)."""
from __future__ import annotations

import argparse

from explainreg.cli import build_parser


def _escape(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.help:
            action.help = action.help.replace("|", "\\|")
        for sub in getattr(action, "choices", None) or {}:
            if isinstance(action.choices, dict) and isinstance(action.choices[sub], argparse.ArgumentParser):
                _escape(action.choices[sub])


def parser() -> argparse.ArgumentParser:
    p = build_parser()
    _escape(p)
    return p

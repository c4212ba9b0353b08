"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse
import json

from ..data import ENV_VAR
from .._validation import positive_int
from ..penalties import PENALTIES


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, ``(default: 8)``; not where there is none to show (None,
    a flag's False) or where the help text already says what it is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if any(action.default is none for none in (None, False, argparse.SUPPRESS)) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N``: torch's intra-op CPU threads (:func:`set_threads`)."""
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="CPU threads torch may use (torch.set_num_threads; default: torch's own choice, "
                             "usually the number of cores)")


def set_threads(threads: int | None) -> None:
    """``torch.set_num_threads(threads)`` when given (None leaves torch's choice)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", metavar="PATH", default=None,
                        help=f"folder holding mnist/ and fashion-mnist/ IDX files (default: ${ENV_VAR}, "
                             "else ~/.cache/explainreg; downloaded there when online)")
    parser.add_argument("--no-download", action="store_true", help="never try to download missing data")


def penalty_key(name: str) -> str:
    """The registered penalty name behind ``name`` or its alias (``smooth``, ``tv`` -> ``smoothness``);
    an unknown name is returned stripped, for :func:`~explainreg.penalties.build_penalty` to name."""
    return PENALTIES.resolve(name) if name in PENALTIES else name.strip()


def parse_penalties(items: list[str] | None, default_weight: float) -> dict[str, float]:
    """``["smoothness", "fidelity=1.0"]`` -> ``{"smoothness": default_weight, "fidelity": 1.0}``.

    Aliases are resolved to the registered name (``tv=0.1`` -> ``{"smoothness": 0.1}``); a penalty
    given twice (by any of its names) is a ``ValueError`` naming both weights."""
    penalties: dict[str, float] = {}
    given: dict[str, str] = {}
    for item in items or []:
        name, _, weight = item.partition("=")
        try:
            value = float(weight) if weight else default_weight
        except ValueError:
            raise ValueError(f"--penalty {item!r}: the weight after '=' must be a number, e.g. smoothness=0.1") from None
        key = penalty_key(name)
        if key in penalties:
            raise ValueError(f"--penalty {item!r}: {key} is already given as --penalty {given[key]!r} (weight "
                             f"{penalties[key]:g}); now weight {value:g}. Give each penalty once, with the weight "
                             f"you mean, e.g. --penalty {key}={value:g}")
        penalties[key], given[key] = value, item
    return penalties


def parse_settings(items: list[str] | None) -> dict[str, dict]:
    """``["symmetry.angles=[5,10]", "smoothness.convention=seed"]`` -> ``{penalty: {key: value}}`` (JSON values);
    penalty aliases are resolved as in :func:`parse_penalties`."""
    settings: dict[str, dict] = {}
    for item in items or []:
        key, eq, raw = item.partition("=")
        name, dot, option = key.partition(".")
        if not (eq and dot and option):
            raise ValueError(f"--penalty-option {item!r}: write PENALTY.OPTION=VALUE, e.g. smoothness.convention=seed")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        settings.setdefault(penalty_key(name), {})[option] = value
    return settings


def check_penalty_options(name: str, options: dict) -> None:
    """``--penalty-option`` values against the penalty's constructor: known option names, and a
    value of the default's kind (a list for a tuple default, true/false for a flag, a number)."""
    import inspect


    if name not in PENALTIES:
        return  # build_penalty names the unknown penalty
    params = {k: v for k, v in inspect.signature(PENALTIES[name].__init__).parameters.items()
              if k != "self" and v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}
    for option, value in options.items():
        if option not in params:
            raise ValueError(f"--penalty-option {name}.{option}: {name} has no option {option!r}; its options: "
                             f"{', '.join(params) or 'none'}")
        default = params[option].default
        if default is inspect.Parameter.empty or default is None:
            continue
        example = f"{name}.{option}=" + ("[" + ",".join(map(str, default)) + "]" if isinstance(default, (tuple, list))
                                          else str(default).lower() if isinstance(default, bool) else str(default))
        if isinstance(default, (tuple, list)):
            ok = isinstance(value, list)
        elif isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            kind = ("a list" if isinstance(default, (tuple, list)) else "true or false" if isinstance(default, bool)
                    else "a number" if isinstance(default, (int, float)) else f"a {type(default).__name__}")
            raise ValueError(f"--penalty-option {name}.{option}={json.dumps(value) if not isinstance(value, str) else value}"
                             f": {option} takes {kind} (default {default!r}); write it e.g. as {example}")

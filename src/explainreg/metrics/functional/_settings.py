"""The checks every public form of :mod:`explainreg.metrics.functional` shares: the model probe on or
off, settings a function does not take named with the public function and what it accepts."""
from __future__ import annotations

import inspect
import sys
from typing import Any

import torch

from .._core import reduce_rows, validation

Tensor = torch.Tensor


def checked_rows(rows_fn, validate_args: bool, *args: Any, **kwargs: Any) -> Tensor:
    """``rows_fn(*args, **kwargs)`` with the model probe on or off (:func:`validation`); a setting
    ``rows_fn`` does not take is a TypeError naming the public function and the settings it accepts."""
    check_settings(rows_fn, len(args), kwargs)
    with validation(validate_args):
        return rows_fn(*args, **kwargs)


def check_settings(rows_fn, n_args: int, settings: dict[str, Any]) -> None:
    """A TypeError naming the public form of metrics.functional that was called (not ``rows_fn``) when
    ``settings`` holds a name neither it nor ``rows_fn`` (after its ``n_args`` positional inputs) takes."""
    params = list(inspect.signature(rows_fn).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params[n_args:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    unknown = [k for k in settings if k not in accepted]
    if not unknown:
        return
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals is globals():  # checked_rows, checked_value → the public form
        frame = frame.f_back
    public = frame.f_globals.get(frame.f_code.co_name) if frame is not None else None
    if public is None:
        raise TypeError(f"{rows_fn.__name__}() got unexpected setting(s) {', '.join(map(repr, unknown))}; it "
                        f"accepts {', '.join(accepted)}")
    own = [p.name for p in inspect.signature(public).parameters.values() if p.kind is p.KEYWORD_ONLY]
    raise TypeError(f"metrics.functional.{public.__name__}() got unexpected setting(s) "
                    f"{', '.join(map(repr, unknown))}; it accepts {', '.join(dict.fromkeys(own + accepted))}")


def checked_value(rows_fn, value, reduction: str, validate_args: bool, *args: Any, **kwargs: Any) -> Tensor:
    """The rows of ``rows_fn`` reduced by ``reduction`` (``value``: the metric's summary of its rows)."""
    return reduce_rows(checked_rows(rows_fn, validate_args, *args, **kwargs), reduction, value)

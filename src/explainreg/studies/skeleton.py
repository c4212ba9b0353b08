"""The parts every study shares: train a model or resume its run folder, and cache what is computed
from it (an evaluation, a finished run's record) in a JSON file keyed by the settings it depends on.

A study's loop is then::

    result = train_or_resume(run_dir, model, objective, train_set, test_set, config=config,
                             identity={"seed": 0, ...}, run_info={...})
    metrics, fresh = cached(run_dir / "evaluation.json", lambda: measure(model), key=settings_hash(...))

and a rerun with the same settings trains nothing and recomputes nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from .. import runs

__all__ = ["cached", "check_run", "settings_from_namespace", "settings_hash", "train_or_resume"]

T = TypeVar("T")


def settings_hash(settings: Mapping[str, Any], length: int = 12) -> str:
    """The first ``length`` hex digits of the SHA-1 of ``settings`` as JSON (in its key order).

    Example::

        >>> settings_hash({"epochs": 1, "seed": 0}) == hashlib.sha1(b'{"epochs": 1, "seed": 0}').hexdigest()[:12]
        True
        >>> settings_hash({"seed": 0, "epochs": 1}) == settings_hash({"epochs": 1, "seed": 0})  # the order counts
        False
    """
    return hashlib.sha1(json.dumps(dict(settings)).encode()).hexdigest()[:length]


def cached(path: str | os.PathLike, compute: Callable[[], T], *, key: Any = None, key_field: str | None = "key",
           value_field: str | None = None, matches: Callable[[Any, Any], bool] | None = None,
           on_mismatch: Callable[[Any], None] | None = None) -> tuple[T, bool]:
    """The value stored in the JSON file ``path`` when it was computed with the same ``key``; else
    ``compute()``, written there atomically. Returns ``(value, computed)``.

    Args:
        path: the cache file.
        compute: makes the value (JSON-serialisable; a dict when ``value_field`` is None).
        key: what the value depends on (a settings hash, a dict of settings; compared with ``==``).
        key_field: the entry of the file that holds the key; ``None``: the file holds the value
            alone, and any file there is reused (a finished run's record, whatever the settings).
        value_field: the entry that holds the value; ``None``: the value's own entries sit beside the
            key (and the value returned includes the key entry).
        matches: ``matches(stored_key, key)`` says whether the file's key is ``key`` (default ``==``).
        on_mismatch: called with the file's content when its key does not match (or it has none),
            before anything is computed: raise there to refuse a folder made with other settings;
            when it returns, the value is computed again and the file replaced.

    Returns:
        ``(value, computed)``: ``computed`` is False when the value came from the file.

    Raises:
        explainreg.runs.DamagedRunError: the file exists but is not valid JSON.

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "evaluation.json"
        >>> cached(path, lambda: {"accuracy": 0.9}, key="a1", value_field="metrics")
        ({'accuracy': 0.9}, True)
        >>> cached(path, lambda: {"accuracy": 0.0}, key="a1", value_field="metrics")  # same key: from the file
        ({'accuracy': 0.9}, False)
        >>> cached(path, lambda: {"accuracy": 0.5}, key="b2", value_field="metrics")  # other settings: computed
        ({'accuracy': 0.5}, True)
    """
    path = Path(path)
    if path.is_file():
        stored = runs.read_json(path)
        if key_field is None:
            return stored, False
        same = matches or (lambda recorded, asked: recorded == asked)
        if isinstance(stored, dict) and key_field in stored and same(stored[key_field], key):
            return (stored if value_field is None else stored[value_field]), False
        if on_mismatch is not None:
            on_mismatch(stored)
    value = compute()
    if key_field is None:
        record: Any = value
    elif value_field is None:
        record = value = {key_field: key, **value}
    else:
        record = {key_field: key, value_field: value}
    runs.atomic_write_json(path, record)
    return value, True


def check_run(run_dir: str | os.PathLike, identity: Mapping[str, Any],
              recorded: Callable[[dict[str, Any]], Mapping[str, Any]]) -> None:
    """Refuse to resume ``run_dir`` when its ``config.json`` says it was trained with another ``identity``.

    Args:
        run_dir: a run folder (nothing is checked when it has no ``config.json`` yet).
        identity: the settings that make the study's run what it is (``{"seed": 0, "fraction": 0.5}``).
        recorded: reads the same settings from the run's config; a setting it leaves out counts as
            unknown (not a difference), e.g. in a run trained with ``explainreg train``.

    Raises:
        ValueError: listing each ``setting: (recorded, asked)`` that differs.
    """
    config = Path(run_dir) / runs.CONFIG
    if not config.is_file():
        return
    stored = recorded(runs.read_json(config))
    changed = {k: (stored[k], v) for k, v in identity.items() if k in stored and stored[k] != v}
    if changed:
        raise ValueError(f"{run_dir} was trained with other settings {changed} (recorded, asked); "
                         "choose another --out or delete that run folder")


def train_or_resume(run_dir: str | os.PathLike, model, objective, train_set, test_set=None, *, config,
                    identity: Mapping[str, Any] | None = None,
                    recorded: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None, **train_options):
    """Train ``model`` into ``run_dir``, resuming it where it stopped; a finished run is reused as it is.

    Args:
        run_dir: the run folder (see :mod:`explainreg.runs`).
        model, objective, train_set, test_set, config: as for :func:`explainreg.training.train`.
        identity: the study settings the run must have been trained with (see :func:`check_run`).
        recorded: reads them from the run's ``config.json`` (default: its ``"study"`` entry, each
            setting of ``identity`` absent there counting as ``None``).
        **train_options: passed to :func:`~explainreg.training.train` (``val_set``, ``run_info``,
            ``on_epoch_end``, ...).

    Returns:
        The :class:`~explainreg.training.TrainResult`; ``model`` holds the selected weights.

    Raises:
        ValueError: the run folder holds a run with other settings.
    """
    from ..training import train

    if identity is not None:
        check_run(run_dir, identity, recorded or (lambda c: {k: c.get("study", {}).get(k) for k in identity}))
    return train(model, objective, train_set, test_set, config=config, run_dir=Path(run_dir), resume=True,
                 **train_options)


def settings_from_namespace(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The settings dataclass ``cls`` from the command line: each field from the argument of the same
    name (``--ig-steps`` → ``ig_steps``) where ``args`` has it, then ``overrides``.

    Example::

        >>> @dataclasses.dataclass
        ... class S:
        ...     epochs: int = 1
        ...     seed: int = 0
        >>> settings_from_namespace(S, argparse.Namespace(epochs=3, out="x"), seed=2)
        S(epochs=3, seed=2)
    """
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    given = {k: v for k, v in vars(args).items() if k in names}
    return cls(**{**given, **overrides})

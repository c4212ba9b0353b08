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
from typing import Any, Callable, Mapping, NoReturn, TypeVar

from .. import runs
from ..training import train

__all__ = ["cached", "cached_run", "check_run", "refuse_other_settings", "settings_differences", "settings_from_namespace",
           "settings_hash", "train_or_resume"]

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


def settings_differences(recorded: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str]:
    """``"name: recorded → asked"`` (as JSON) for each setting of ``asked`` that ``recorded`` holds
    otherwise (a missing one reads ``null``).

    Example::

        >>> settings_differences({"epochs": 1, "lr": 0.1}, {"epochs": 5, "lr": 0.1, "seed": 0})
        ['epochs: 1 → 5', 'seed: null → 0']
    """
    return [f"{k}: {json.dumps(recorded.get(k))} → {json.dumps(v)}" for k, v in asked.items() if recorded.get(k) != v]


def refuse_other_settings(out: str | os.PathLike, what: str, differences: list[str]) -> NoReturn:
    """Stop (``SystemExit``, as the command line prints it) because ``what`` in ``out`` was made with
    other settings: reusing it would mix results of two settings. The message lists ``differences``
    (:func:`settings_differences`) and says what to do.

    Example::

        >>> refuse_other_settings("results/x", "The study", ["epochs: 1 → 5"])
        Traceback (most recent call last):
        ...
        SystemExit: The study in results/x was made with other settings; reusing it would mix them. ...
    """
    raise SystemExit(f"{what} in {out} was made with other settings; reusing it would mix them. Differences "
                     "(setting: recorded → asked):\n  " + "\n  ".join(differences)
                     + "\nChoose a new folder with --out (or pass the recorded settings; a folder written "
                       "before its study recorded these settings cannot be resumed).")


def cached_run(path: str | os.PathLike, compute: Callable[[], T], settings: Mapping[str, Any], *,
               value_field: str = "record") -> tuple[T, bool]:
    """A finished run's record, reused only when it was made with the same ``settings``:
    :func:`cached` keyed by the settings themselves (the file holds ``{"settings": ..., value_field:
    ...}``), and a file made with other settings (or with none recorded) is refused with
    :func:`refuse_other_settings`, naming each difference, instead of being mixed into the study.

    Returns:
        ``(record, computed)``.

    Raises:
        SystemExit: the file holds a run made with other settings.

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "runs" / "rrr_seed0.json"
        >>> cached_run(path, lambda: {"accuracy": 97.0}, {"epochs": 1})
        ({'accuracy': 97.0}, True)
        >>> cached_run(path, lambda: {"accuracy": 0.0}, {"epochs": 1})  # the same settings: from the file
        ({'accuracy': 97.0}, False)
        >>> cached_run(path, lambda: {"accuracy": 0.0}, {"epochs": 5})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        SystemExit: The finished run rrr_seed0.json in ... was made with other settings; ...
    """
    path, asked = Path(path), dict(settings)

    def refuse(stored: Any) -> NoReturn:
        recorded = stored.get("settings") if isinstance(stored, dict) else None
        refuse_other_settings(path.parent, f"The finished run {path.name}",
                              settings_differences(recorded if isinstance(recorded, dict) else {}, asked))

    return cached(path, compute, key=asked, key_field="settings", value_field=value_field,
                  matches=lambda recorded, wanted: isinstance(recorded, dict) and not settings_differences(recorded, wanted),
                  on_mismatch=refuse)


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
    if identity is not None:
        check_run(run_dir, identity, recorded or (lambda c: {k: c.get("study", {}).get(k) for k in identity}))
    return train(model, objective, train_set, test_set, config=config, run_dir=Path(run_dir), resume="auto",
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

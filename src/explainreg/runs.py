"""Run folders: where a training run keeps its config, history, checkpoint and log.

Layout of ``RUN_DIR``: ``config.json`` (everything needed to rebuild the model and data),
``history.json`` (one record per epoch), ``steps.json`` (logged training terms every few steps),
``checkpoint.pt`` (model, optimiser, RNG states; ``finished`` once done), ``train.log``.
Every file is written atomically (temporary file + rename): an interrupted run never leaves a
half-written file. Files get the usual permissions (``0666`` less the umask, like ``open``), and
the temporary ``.NAME.*.tmp`` files that a killed process can leave are ignored by every reader
and removed by :func:`clean_temporary` (the trainer calls it when it starts on a folder).
"""
from __future__ import annotations

import json
import os
import pickle
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CHECKPOINT", "CONFIG", "DamagedRunError", "HISTORY", "LOG", "RESUMABLE_CHANGES", "STEPS", "atomic_save",
           "atomic_write_bytes", "atomic_write_json", "clean_temporary", "environment", "identify_model",
           "load_checkpoint", "load_run", "read_json", "settings_changes"]

CONFIG, HISTORY, STEPS, CHECKPOINT, LOG = "config.json", "history.json", "steps.json", "checkpoint.pt", "train.log"


class DamagedRunError(ValueError):
    """A file of a run folder exists but cannot be read (truncated or corrupted after it was written)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(tmp: str, path: Path) -> None:
    """Give ``tmp`` the permissions ``open`` would (0666 less the umask; mkstemp makes 0600), then rename."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def clean_temporary(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.NAME.*.tmp`` files that an interrupted (killed) atomic write left in ``folder``.

    Only call it while no other process writes into ``folder``. Returns the removed paths."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; a :class:`DamagedRunError` naming the file when it cannot be parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedRunError(f"{path} is damaged and cannot be read ({exc}); every run file is written "
                              "atomically, so it was truncated or changed afterwards (disk, copy, editor): "
                              "restore it from a copy, or delete the run folder and train again") from None


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load`` of a run's checkpoint with a clear :class:`DamagedRunError` when it is damaged."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DamagedRunError(
            f"{path} is damaged ({path.stat().st_size} bytes; torch.load: {type(exc).__name__}: {exc}). It is written "
            "atomically, so it was truncated or changed after training wrote it (full disk, interrupted copy). "
            "Restore it from a copy, or delete it and train again (without --resume the run starts over)") from None
    if not isinstance(state, dict) or "model" not in state:
        raise DamagedRunError(f"{path} is not an explainreg checkpoint (no 'model' entry); "
                              "it should be written by explainreg.training.train(..., run_dir=...)")
    return state


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def environment() -> dict[str, str]:
    """Versions that a result depends on, recorded in every config."""
    import numpy

    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
            "platform": platform.platform(), "explainreg": _version()}


def _version() -> str:
    from . import __version__

    return __version__


def identify_model(model: nn.Module) -> dict[str, Any] | None:
    """``{"model": name, "model_kwargs": {...}}`` when ``model`` is structurally a registered model
    (same class, same layers and parameter shapes as ``build_model(name, **kwargs)``), else None.

    The candidates are built with ``num_classes`` from the last parameter's length and
    ``in_channels`` from the first conv/linear layer; the global RNG is left untouched."""
    import inspect

    from .models import MODELS

    params = list(model.parameters())
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))), None)
    if not params or first is None:
        return None
    guesses = {"num_classes": params[-1].shape[0],
               "in_channels": first.in_channels if hasattr(first, "in_channels") else first.in_features}
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with torch.random.fork_rng(devices=[]):
        for name, builder in MODELS.items():
            try:
                accepted = inspect.signature(builder).parameters
                kwargs = {k: v for k, v in guesses.items() if k in accepted}
                candidate = builder(**kwargs)
            except Exception:  # a builder that needs other arguments cannot be matched
                continue
            if (type(candidate) is type(model) and repr(candidate) == repr(model)
                    and {k: tuple(v.shape) for k, v in candidate.state_dict().items()} == shapes):
                return {"model": name, "model_kwargs": kwargs}
    return None


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run folder (``config["model"]`` names a registered model)."""
    from .models import MODELS, build_model

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file() or not (run_dir / CHECKPOINT).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it needs {CONFIG} and {CHECKPOINT} "
                                "(made by `explainreg train --out RUN_DIR` or train(..., run_dir=RUN_DIR))")
    config = read_json(run_dir / CONFIG)
    if not config.get("model") or (config["model"] not in MODELS and ":" not in config["model"]):
        what = f"names the model {config['model']!r}, which is not registered" if config.get("model") else \
            "does not say how to rebuild the model (it was trained from Python on a model that is not registered)"
        raise ValueError(
            f"{run_dir / CONFIG} {what}. Register its builder with explainreg.models.register_model(NAME, fn) "
            "before loading (in Python), and train with run_info={'model': NAME, 'model_kwargs': {...}}; or load "
            f"the weights yourself: model.load_state_dict(explainreg.runs.load_checkpoint('{run_dir / CHECKPOINT}')"
            "['model'])")
    # a "module:callable" model is imported again, from the folder recorded at training time if need be
    model = build_model(config["model"], search_path=config.get("model_path"), **config.get("model_kwargs", {}))
    state = load_checkpoint(run_dir / CHECKPOINT, device)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


#: settings that may change when a run is resumed (``epochs``: see :func:`settings_changes`)
RESUMABLE_CHANGES = ("device", "progress", "command", "environment")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def settings_changes(recorded: dict[str, Any], asked: dict[str, Any], epochs_done: int) -> list[str]:
    """The differences ``"setting: old → new"`` between a run's recorded ``config.json`` and the
    config a resumed call would write, that a resume may not make.

    Allowed: device and progress; ``train.epochs`` as long as it is not below the epochs already
    trained (more epochs extend the run); settings the recorded config does not have (written by an
    older version). The penalties (``objective``) must match entry for entry."""
    asked = json.loads(json.dumps(asked, default=_jsonable))  # the form it has on disk
    old, new = _flatten({k: v for k, v in recorded.items() if k not in RESUMABLE_CHANGES}), \
        _flatten({k: v for k, v in asked.items() if k not in RESUMABLE_CHANGES})
    changes = []
    if json.dumps(recorded.get("objective")) != json.dumps(asked.get("objective")) and "objective" in recorded:
        changes.append(f"penalties: {_penalties(recorded['objective'])} → {_penalties(asked.get('objective'))}")
    for key in sorted(set(old) | set(new)):
        if key.startswith("objective") or key in ("train.device", "train.progress") or key not in old or key not in new:
            continue
        before, after = old.get(key, "(absent)"), new.get(key, "(absent)")
        if before == after:
            continue
        if key == "train.epochs" and isinstance(after, int) and after >= epochs_done:
            continue
        note = f" (the run has already trained {epochs_done} epochs)" if key == "train.epochs" else ""
        changes.append(f"{key}: {before!r} → {after!r}{note}")
    return changes



def _penalties(objective: list[dict[str, Any]] | None) -> str:
    """``smoothness=0.1 (offset=1, compat=true)`` for each penalty of an objective config."""
    if not objective:
        return "none (cross-entropy only)"
    return ", ".join(f"{o.get('name')}={o.get('weight')}"
                     + (f" ({', '.join(f'{k}={json.dumps(v)}' for k, v in o.get('settings', {}).items())})"
                        if o.get("settings") else "") for o in objective)

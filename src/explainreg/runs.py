"""Run folders: where a training run keeps its config, history, checkpoint and log.

Layout of ``RUN_DIR``: ``config.json`` (everything needed to rebuild the model and data),
``history.json`` (one record per epoch), ``steps.json`` (logged training terms every few steps),
``checkpoint.pt`` (model, optimiser, RNG states; ``finished`` once done), ``train.log``.
Every file is written atomically (temporary file + rename): an interrupted run never leaves a
half-written file.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

CONFIG, HISTORY, STEPS, CHECKPOINT, LOG = "config.json", "history.json", "steps.json", "checkpoint.pt", "train.log"


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
        os.replace(tmp, path)
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


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


def load_run(run_dir: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained model of a run folder (``config["model"]`` names a registered model)."""
    from .models import build_model

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file() or not (run_dir / CHECKPOINT).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it needs {CONFIG} and {CHECKPOINT} "
                                "(made by `explainreg train --out RUN_DIR`)")
    config = read_json(run_dir / CONFIG)
    model = build_model(config["model"], **config.get("model_kwargs", {}))
    state = torch.load(run_dir / CHECKPOINT, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config

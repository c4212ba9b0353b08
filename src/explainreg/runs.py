"""Run folders: where a training run keeps its config, history, checkpoint and log.

Layout of ``RUN_DIR``: ``config.json`` (everything needed to rebuild the model and data),
``history.json`` (one record per epoch), ``steps.json`` (logged training terms every few steps),
``checkpoint.pt`` (model, optimiser, RNG states; ``finished`` once done), ``train.log``.
Every file is written atomically (temporary file + rename): an interrupted run never leaves a
half-written file. Files get the usual permissions (``0666`` less the umask, like ``open``), and
the temporary ``.NAME.XXXXXXXX.tmp`` files that a killed process can leave (``NAME`` one of the
files above) are ignored by every reader and removed by :func:`clean_temporary` (the trainer calls
it once it holds the folder's lock, :class:`RunLock`); other hidden files are never touched.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import pickle
import platform
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .gradients import SCORES
from .models import build_model, MODELS
from . import __version__

__all__ = ["CHECKPOINT", "CONFIG", "DamagedRunError", "HISTORY", "LOCK", "LOG", "RESUMABLE_CHANGES", "RUN_FILES",
           "RunBusyError", "RunLock", "STEPS", "atomic_save", "atomic_write_bytes", "atomic_write_json",
           "clean_temporary", "default_run_name", "environment", "identify_model", "load_checkpoint", "load_run",
           "migrate", "read_config", "read_json", "settings_changes"]

CONFIG, HISTORY, STEPS, CHECKPOINT, LOG = "config.json", "history.json", "steps.json", "checkpoint.pt", "train.log"
#: the files the trainer writes atomically (their temporaries are the only ones :func:`clean_temporary` removes)
RUN_FILES = (CONFIG, HISTORY, STEPS, CHECKPOINT)
#: the lock file of a run folder that a training writes into (see :class:`RunLock`)
LOCK = ".train.lock"


class DamagedRunError(ValueError):
    """A file of a run folder exists but cannot be read (truncated or corrupted after it was written)."""


class RunBusyError(OSError):
    """Another training process is writing into the run folder (it holds the folder's lock)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(tmp: str, path: Path) -> None:
    """Give ``tmp`` the permissions ``open`` would (0666 less the umask; mkstemp makes 0600), then rename."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _temporary_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """The names ``tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")`` gives for each of ``names``."""
    return re.compile(r"\.(?:" + "|".join(re.escape(n) for n in names) + r")\.[A-Za-z0-9_]+\.tmp")


def clean_temporary(folder: str | os.PathLike, names: tuple[str, ...] = RUN_FILES) -> list[Path]:
    """Remove the temporaries ``.NAME.XXXXXXXX.tmp`` that an interrupted (killed) atomic write of
    one of the files ``names`` (default: the trainer's :data:`RUN_FILES`) left in ``folder``.

    Any other file, hidden ``*.tmp`` files of the user's own included, is left alone. Only call it
    while holding the folder's :class:`RunLock` (no other process writes these files then).
    Returns the removed paths."""
    folder = Path(folder)
    pattern = _temporary_pattern(tuple(names))
    removed = []
    if folder.is_dir():
        for tmp in sorted(folder.iterdir()):
            if pattern.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class RunLock:
    """An exclusive lock on a run folder for one writing process: the file ``FOLDER/.train.lock``,
    locked with ``fcntl.flock`` (released by the system when the process ends, however it ends) and
    holding the owner's pid, host and start time; removed on :meth:`release`.

    A second process asking for the lock gets a :class:`RunBusyError` naming the owner. A lock file
    left by a process that no longer runs (killed, or on a system without ``fcntl``) is taken over,
    and :attr:`note` says so. Use as a context manager.

    Example::

        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with RunLock(folder):
        ...     try:
        ...         RunLock(folder).acquire()
        ...     except RunBusyError as exc:
        ...         print("busy:", "in use by another training" in str(exc))
        busy: True
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self.note: str | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (creating the folder); raises :class:`RunBusyError` when another process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not self._lock(fd):
                    raise RunBusyError(self._busy_message(self._owner(fd)))
                if not self._same_file(fd):  # the owner released (removed) it between our open and lock: again
                    os.close(fd)
                    continue
                previous = self._owner(fd)
                if previous and previous.get("pid") != os.getpid():
                    self.note = (f"took over the lock of {self.folder} left by process {previous.get('pid')} on "
                                 f"{previous.get('host')} (started {previous.get('started')}), which no longer runs")
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                          "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
                self._fd = fd
            except BaseException:
                if self._fd is None:
                    os.close(fd)
                raise
        return self

    def release(self) -> None:
        """Remove the lock file and let the lock go (nothing when not held)."""
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _lock(self, fd: int) -> bool:
        """Lock ``fd`` exclusively without waiting; False when another process holds it."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): the pid in the file decides
            owner = self._owner(fd)
            return not owner or owner.get("pid") == os.getpid() or not _pid_alive(int(owner.get("pid", -1)))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    @staticmethod
    def _owner(fd: int) -> dict[str, Any]:
        try:
            owner = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (ValueError, UnicodeDecodeError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def _busy_message(self, owner: dict[str, Any]) -> str:
        who = (f"process {owner.get('pid')} on {owner.get('host')}, started {owner.get('started')}" if owner
               else "another process")
        return (f"{self.folder} is in use by another training ({who}): two runs writing into one folder would "
                "overwrite each other's checkpoint. Wait until it ends (then --resume / resume=True continues the "
                "run), or train into another output folder (--out / run_dir)")


def default_run_name(stem: str, settings: dict[str, Any],
                     ignore: tuple[str, ...] = ("out", "resume", "no_progress", "device", "workers", "threads",
                                                "no_download", "func")) -> str:
    """``STEM-HASH``: ``HASH`` the first 8 hex digits of the SHA-256 of ``settings`` (a JSON form,
    keys sorted, without the keys ``ignore``: where the run goes and what does not change its
    result), so runs with other settings (an lr sweep, say) get other folders, and the same
    settings the same folder (``--resume`` finds it again).

    Example::

        >>> default_run_name("runs/mnist-cnn3b-plain-s0", {"lr": 0.001, "out": None})
        'runs/mnist-cnn3b-plain-s0-bb90828f'
    """
    kept = {k: v for k, v in settings.items() if k not in ignore and not callable(v)}
    text = json.dumps(kept, sort_keys=True, default=_jsonable)
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _write_failed(path: Path, exc: OSError) -> OSError:
    """``exc`` (a failed write of ``path``) with a message saying what happened and that the old file is kept."""
    cause = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
             errno.EFBIG: "the file-size limit (ulimit -f) was reached"}.get(exc.errno or -1, exc.strerror or str(exc))
    kept = f"the previous {path.name} is kept unchanged" if path.exists() else f"no {path.name} was written"
    return type(exc)(exc.errno, f"could not write {path}: {cause} ({exc.strerror or exc}); {kept}. Free space "
                     "(or raise the limit) and run again (a training continues with --resume / resume=True)")


@contextlib.contextmanager
def _temporary_for(path: Path):
    """A temporary file beside ``path`` (yielded as an open binary file) that is published as ``path``
    on success and removed on any failure; a failed write says what happened (:func:`_write_failed`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _write_failed(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    Raises:
        OSError: the write failed (full disk, file-size limit, ...); ``path`` is left as it was."""
    with _temporary_for(Path(path)) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_jsonable) + "\n").encode())


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` written atomically.

    Raises:
        OSError: the write failed (full disk, file-size limit, ...); ``path`` is left as it was."""
    with _temporary_for(Path(path)) as f:
        writer = _RecordingWriter(f)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:  # torch's writer reports a failed write as "unexpected pos"
                raise writer.error from None
            raise


class _RecordingWriter:
    """A binary file whose failed ``write`` is kept in :attr:`error` (torch.save replaces it by its own message)."""

    def __init__(self, file: Any) -> None:
        self.file, self.error = file, None

    def write(self, data: bytes) -> int:
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.file.flush()


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; a :class:`DamagedRunError` naming the file when it cannot be parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedRunError(f"{path} is damaged and cannot be read ({exc}); every run file is written "
                              "atomically, so it was truncated or changed afterwards (disk, copy, editor): "
                              "restore it from a copy, or delete the run folder and train again") from None


def read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of ``run_dir`` (``{}`` when there is none).

    Raises:
        DamagedRunError: the file cannot be parsed, or holds JSON that is not an object (``{...}``)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return {}
    config = read_json(path)
    if not isinstance(config, dict):
        raise DamagedRunError(f"{path} holds a JSON {type(config).__name__}, not an object ({{\"model\": ..., "
                              "\"train\": {...}, ...}) as explainreg writes it: it was replaced or edited. Restore it "
                              "from a copy, or delete the run folder and train again")
    return migrate(config)


def migrate(record: Any) -> Any:
    """A run folder's JSON record (``config.json``, ``metrics.json``) in the current setting names.

    Run folders written by explainreg 0.1 name two settings differently: the saliency's scalar kind
    ``score`` was ``target`` (a string among the scalar kinds; ``target`` now means the class) and
    ``convention`` was the flag ``compat`` (``true`` → ``"seed"``, ``false`` → ``"explainreg"``). Both
    are renamed wherever they occur in the record; everything else is returned as it is.

    Example:
        >>> migrate({"objective": [{"settings": {"offset": 1, "compat": True, "target": "nll"}}]})
        {'objective': [{'settings': {'offset': 1, 'convention': 'seed', 'score': 'nll'}}]}
        >>> migrate({"target": 3})  # a class index stays
        {'target': 3}
    """
    if isinstance(record, list):
        return [migrate(v) for v in record]
    if not isinstance(record, dict):
        return record
    out = {}
    for key, value in record.items():
        if key == "target" and value in SCORES and "score" not in record:
            out["score"] = value
        elif key == "compat" and isinstance(value, bool) and "convention" not in record:
            out["convention"] = "seed" if value else "explainreg"
        else:
            out[key] = migrate(value)
    return out


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
    return __version__


def identify_model(model: nn.Module) -> dict[str, Any] | None:
    """``{"model": name, "model_kwargs": {...}}`` when ``model`` is structurally a registered model
    (same class, same layers and parameter shapes as ``build_model(name, **kwargs)``), else None.

    The candidates are built with ``num_classes`` from the last parameter's length and
    ``in_channels`` from the first conv/linear layer; the global RNG is left untouched."""
    import inspect


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
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file() or not (run_dir / CHECKPOINT).is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder: it needs {CONFIG} and {CHECKPOINT} "
                                "(made by `explainreg train --out RUN_DIR` or train(..., run_dir=RUN_DIR))")
    config = read_config(run_dir)
    if not config.get("model") or (config["model"] not in MODELS and ":" not in config["model"]):
        what = f"names the model {config['model']!r}, which is not registered" if config.get("model") else \
            "does not say how to rebuild the model (it was trained from Python on a model that is not registered)"
        raise ValueError(
            f"{run_dir / CONFIG} {what}. Register its builder with explainreg.models.MODELS.register(NAME, fn) "
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
        penalties = key == "objective" or key.startswith(("objective[", "objective."))  # compared above, as one list
        if penalties or key in ("train.device", "train.progress") or key not in old or key not in new:
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
    """``smoothness=0.1 (offset=1, convention="seed")`` for each penalty of an objective config."""
    if not objective:
        return "none (cross-entropy only)"
    return ", ".join(f"{o.get('name')}={o.get('weight')}"
                     + (f" ({', '.join(f'{k}={json.dumps(v)}' for k, v in o.get('settings', {}).items())})"
                        if o.get("settings") else "") for o in objective)

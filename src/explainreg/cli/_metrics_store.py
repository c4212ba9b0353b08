"""The metrics files of ``explainreg evaluate``: ``metrics.json`` and ``metrics.csv`` of an output folder,
holding every result computed there, keyed by (attribution, metric, settings).

A new result replaces only an earlier one with the same key; results of other attributions, metrics
or settings are kept. Both files are rewritten atomically after each finished part, so an
interrupted evaluation keeps what it finished. A ``metrics.json`` written before results were keyed
(``results`` only) is read as entries whose settings say ``"recorded": "before keyed results"``."""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any
from ..runs import atomic_write_bytes, atomic_write_json, migrate, read_json

__all__ = ["ResultStore", "file_fingerprint"]

Key = tuple[str, str, str]


def file_fingerprint(path: Path) -> str:
    """The first 16 hex digits of ``path``'s SHA-256 (which checkpoint a result belongs to)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _key(attribution: str, metric: str, settings: dict) -> Key:
    return attribution, metric, json.dumps(settings, sort_keys=True, default=str)


def _read_entries(path: Path) -> list[dict]:
    """The entries of an existing ``metrics.json`` (none when it does not exist); a file that is not
    an evaluation's metrics is refused, not overwritten."""
    if not path.exists():
        return []
    data = migrate(read_json(path))
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        return data["entries"]
    if isinstance(data, dict) and isinstance(data.get("results"), dict):  # results not yet keyed by settings
        settings = {"recorded": "before keyed results", "n_images": data.get("n_images"), "seed": data.get("seed"),
                    "convention": data.get("convention")}
        return [{"attribution": a, "metric": m, "settings": settings, "result": r}
                for a, rs in data["results"].items() for m, r in rs.items()]
    raise ValueError(f"{path} exists and is not a metrics file of `explainreg evaluate` (no 'entries' or "
                     "'results'); it is left as it is. Move it away, or pass --output DIR to write elsewhere")


def _rows(entry: dict) -> list[dict[str, Any]]:
    """The CSV rows of one entry: its summary (``step`` empty) and one per curve point."""
    r = entry["result"]
    base = {"attribution": entry["attribution"], "metric": entry["metric"],
            "higher_is_better": r.get("higher_is_better"), "n_images": r.get("n_images"),
            "n_degenerate": r.get("n_degenerate"), "settings": json.dumps(entry["settings"], sort_keys=True)}
    rows = [dict(base, kind="summary", step=float("nan"), value=r.get("value"), n_nan=r.get("n_nan"))]
    for step, value in zip(r.get("steps") or [], r.get("curve") or []):
        rows.append(dict(base, kind="curve", step=float(step), value=value, n_nan=0))
    return rows


class ResultStore:
    """The results in ``folder``'s ``metrics.json``, merged with those computed now.

    Args:
        folder: the output folder (read now; written by :meth:`write`).
        header: top-level facts written with the results (run folder, data set, ...).
    """

    def __init__(self, folder: Path, header: dict[str, Any]) -> None:
        self.folder, self.header = Path(folder), header
        self.entries: dict[Key, dict] = {}
        for entry in _read_entries(self.folder / "metrics.json"):
            self.entries[_key(entry["attribution"], entry["metric"], entry["settings"])] = entry
        self.earlier = set(self.entries)
        self.added: list[Key] = []
        self.replaced: list[Key] = []
        self.fallback: Path | None = None
        self.error: OSError | None = None

    def has(self, attribution: str, metric: str, settings: dict) -> bool:
        """Whether a result for this key is already there (from an earlier command or this one)."""
        return _key(attribution, metric, settings) in self.entries

    def put(self, attribution: str, metric: str, settings: dict, result: dict) -> None:
        """Add a result, replacing only one with the same key."""
        key = _key(attribution, metric, settings)
        if key in self.earlier and key not in self.replaced:
            self.replaced.append(key)
        elif key not in self.earlier and key not in self.added:
            self.added.append(key)
        self.entries[key] = {"attribution": attribution, "metric": metric, "settings": settings, "result": result}

    def latest(self) -> dict[str, dict[str, dict]]:
        """``{attribution: {metric: result}}``, the last stored result of each pair (for the plots)."""
        view: dict[str, dict[str, dict]] = {}
        for entry in self.entries.values():
            view.setdefault(entry["attribution"], {})[entry["metric"]] = entry["result"]
        return view

    def table(self):
        """All entries as one tidy pandas table (the rows of ``metrics.csv``)."""
        import pandas as pd

        return pd.DataFrame([row for entry in self.entries.values() for row in _rows(entry)])

    def write(self) -> Path:
        """Write ``metrics.json`` and ``metrics.csv`` atomically; when the folder cannot be written,
        into a fallback folder under the temporary directory (kept for the rest of the command).
        Returns the folder written."""
        folder = self.fallback or self.folder
        summary = {**self.header, "output": str(folder), "results": self.latest(),
                   "entries": list(self.entries.values())}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(folder / "metrics.json", summary)
            atomic_write_bytes(folder / "metrics.csv", self.table().to_csv(index=False).encode())
        except OSError as exc:
            if self.fallback is not None:
                raise
            self.error, self.fallback = exc, Path(tempfile.mkdtemp(prefix="explainreg-metrics-"))
            return self.write()
        return folder

    def report(self) -> str:
        """What this command did to the folder's results: added, replaced (same key), kept."""
        def names(keys: list[Key] | set[Key]) -> str:
            by: dict[str, list[str]] = {}
            for attribution, metric, _ in sorted(keys):
                by.setdefault(attribution, []).append(metric)
            return "; ".join(f"{a}: {', '.join(ms)}" for a, ms in by.items())

        kept = self.earlier - set(self.replaced)
        parts = [f"added {len(self.added)}" + (f" ({names(self.added)})" if self.added else "")]
        if self.replaced:
            parts.append(f"replaced {len(self.replaced)} with the same attribution, metric and settings "
                         f"({names(self.replaced)})")
        if kept:
            parts.append(f"kept {len(kept)} earlier ({names(kept)})")
        return f"{self.fallback or self.folder}/metrics.json: " + "; ".join(parts)

"""The UCR/UEA time-series archive's ``.ts`` format: reader and data sets.

The archives: Dau et al. (2019), "The UCR time series archive"; Bagnall et al. (2018), "The UEA
multivariate time series classification archive, 2018". The ``.ts`` format is sktime's.

A ``.ts`` file holds ``#`` comment lines, ``@`` headers (``@problemName``, ``@univariate``,
``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@missing``, ``@classLabel true A B …``),
then, after ``@data``, one case a line: the channels separated by ``:``, the values of a channel by
``,``, the class label last. ``?`` marks a missing value.

Series become a float tensor N×C×T (layout ``"BxCxT"``: channels × time). Variable-length series
are left-aligned and padded with ``pad_value`` to the longest series of the file; ``lengths`` (N)
and ``padding_mask`` (N×T, True = a real time step) say where each one ends. Class labels (strings)
map to 0…K−1 in the order of the ``@classLabel`` header; ``class_names`` keeps them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .arrays import ArrayDataset, stratified_subset, subset_note
from .catalog import DATASETS, DataSetFamily
from .sources import ENV_VAR, DataNotFoundError, resolve_data_root

#: The five archive sets of the project's shared data folder (README of /work/shared/data).
UCR_DATASETS = ("ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "JapaneseVowels")
MISSING = ("error", "nan")
LAYOUT = "BxCxT"


class TsFormatError(ValueError):
    """A ``.ts`` file that does not follow the format; the message names the file and line (a ValueError).

    Example::

        >>> import tempfile; from pathlib import Path
        >>> from explainreg.data.ucr import TsFormatError, read_ts
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, "bad.ts")
        ...     _ = path.write_text("@classLabel true a b\\n@data\\n1,2:a\\n1,x:b\\n")
        ...     try:
        ...         read_ts(path)
        ...     except TsFormatError as exc:
        ...         print(str(exc)[len(str(path)):])          # the file, its line 4, what is wrong
        :4: 'x' is not a number (nor the missing marker '?')
    """


@dataclass
class TsData:
    """What :func:`read_ts` returns: ``x`` N×C×T, ``y`` N (class indices), ``lengths`` N,
    ``padding_mask`` N×T (True = real step), ``class_names`` and the file's ``headers``.

    Shape:
        x: (N, C, T) float32; y, lengths: (N,) long; padding_mask: (N, T) bool.

    Example::

        >>> import torch
        >>> from explainreg.data.ucr import TsData
        >>> d = TsData(torch.zeros(1, 1, 3), torch.tensor([0]), torch.tensor([2]),
        ...            torch.tensor([[True, True, False]]), ["a"], {})
        >>> int(d.padding_mask.sum()) == int(d.lengths.sum())
        True
    """

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor
    padding_mask: torch.Tensor
    class_names: list[str]
    headers: dict[str, str]


def _parse_bool(value: str, key: str, path: Path, line_no: int) -> bool:
    low = value.strip().lower()
    if low not in ("true", "false"):
        raise TsFormatError(f"{path}:{line_no}: @{key} must be 'true' or 'false', got {value!r}")
    return low == "true"


def _parse_headers(lines: list[str], path: Path) -> tuple[dict[str, str], list[str], int]:
    """Headers (lower-case keys → raw values), class labels, and the index of the first data line."""
    headers: dict[str, str] = {}
    labels: list[str] | None = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise TsFormatError(f"{path}:{i + 1}: expected an @header or @data before the series, got {line[:40]!r}")
        key, _, value = line[1:].partition(" ")
        key = key.lower()
        if key == "data":
            if labels is None:
                raise TsFormatError(f"{path}: no '@classLabel true …' header before @data; explainreg reads "
                                    "classification files only")
            return headers, labels, i + 1
        if key == "classlabel":
            parts = value.split()
            if not parts or not _parse_bool(parts[0], "classLabel", path, i + 1):
                raise TsFormatError(f"{path}:{i + 1}: '@classLabel false' (no class labels): explainreg reads "
                                    "classification files with '@classLabel true LABEL …' only")
            labels = parts[1:]
            if not labels or len(set(labels)) != len(labels):
                raise TsFormatError(f"{path}:{i + 1}: @classLabel must list distinct class labels, got {parts[1:]}")
        elif key == "timestamps" and _parse_bool(value, "timeStamps", path, i + 1):
            raise TsFormatError(f"{path}:{i + 1}: '@timeStamps true' files ((time, value) pairs) are not supported; "
                                "convert them to plain comma-separated values")
        elif key == "targetlabel" and _parse_bool(value.split()[0] if value.split() else "", "targetLabel", path, i + 1):
            raise TsFormatError(f"{path}:{i + 1}: regression files (@targetLabel true) are not supported")
        headers[key] = value.strip()
    raise TsFormatError(f"{path}: no @data line: the file ends inside its headers")


def _parse_value(token: str, path: Path, line_no: int, missing: str) -> float:
    token = token.strip()
    if token == "?":
        if missing == "error":
            raise TsFormatError(f"{path}:{line_no}: missing value '?' found; pass missing='nan' to read it as NaN "
                                "(then impute or drop it before training)")
        return math.nan
    try:
        return float(token)
    except ValueError:
        raise TsFormatError(f"{path}:{line_no}: {token[:30]!r} is not a number (nor the missing marker '?')") from None


def read_ts(path: str | os.PathLike, *, missing: str = "error", pad_value: float = 0.0,
            class_names: Sequence[str] | None = None, pad_to: int | None = None) -> TsData:
    """Read one ``.ts`` classification file.

    Args:
        path: the ``.ts`` file.
        missing: ``"error"`` (default): a ``?`` raises :class:`TsFormatError` naming the line;
            ``"nan"``: ``?`` becomes NaN.
        pad_value: value of the padded steps of variable-length series (beyond ``lengths``).
        class_names: map labels to indices in this order instead of the file's ``@classLabel`` order
            (give the train file's names when reading its test file).
        pad_to: pad every series to this many steps (≥ the longest), e.g. to give train and test of a
            variable-length set the same T; default: the longest series of the file.

    Shape:
        x: N×C×T float32, y: N long, lengths: N long, padding_mask: N×T bool.

    Returns:
        A :class:`TsData`.

    Raises:
        TsFormatError: a malformed header or line (ragged channels, a length or channel count that
            disagrees with the headers, an unknown label, a non-number), naming the file and line.
        ValueError: a bad ``missing`` or ``pad_to``.
        DataNotFoundError: no such file.

    Example::

        >>> import tempfile; from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory(); folder = Path(tmp.name, "ucr", "Tiny"); folder.mkdir(parents=True)
        >>> header = "@problemName Tiny\\n@univariate true\\n@equalLength false\\n@classLabel true up down\\n@data\\n"
        >>> _ = (folder / "Tiny_TRAIN.ts").write_text(header + "1,2,3:up\\n3,2:down\\n0,1,2,3:up\\n")
        >>> _ = (folder / "Tiny_TEST.ts").write_text(header + "5,4:down\\n")
        >>> from explainreg.data.ucr import read_ts
        >>> d = read_ts(folder / "Tiny_TRAIN.ts", pad_value=-1.0)
        >>> d.x[:, 0], d.y, d.lengths, d.class_names
        (tensor([[ 1.,  2.,  3., -1.],
                [ 3.,  2., -1., -1.],
                [ 0.,  1.,  2.,  3.]]), tensor([0, 1, 0]), tensor([3, 2, 4]), ['up', 'down'])
        >>> bool(torch.equal(d.padding_mask.sum(1), d.lengths)), read_ts(folder / "Tiny_TEST.ts", pad_to=4).x.shape
        (True, torch.Size([1, 1, 4]))
        >>> _ = Path(tmp.name, "gap.ts").write_text("@classLabel true a\\n@data\\n1,?,3:a\\n")
        >>> read_ts(Path(tmp.name, "gap.ts"), missing="nan").x
        tensor([[[1., nan, 3.]]])
        >>> tmp.cleanup()
    """
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}; got {missing!r}")
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such .ts file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    headers, labels, start = _parse_headers(lines, path)
    names = list(class_names) if class_names is not None else labels
    index = {name: k for k, name in enumerate(names)}
    dims = int(headers["dimensions"]) if "dimensions" in headers else None
    if "univariate" in headers and _parse_bool(headers["univariate"], "univariate", path, 0):
        dims = 1 if dims is None else dims
    equal = _parse_bool(headers["equallength"], "equalLength", path, 0) if "equallength" in headers else None
    series_length = int(headers["serieslength"]) if "serieslength" in headers else None

    cases: list[list[list[float]]] = []
    targets: list[int] = []
    line_nos: list[int] = []
    for i in range(start, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 2:
            raise TsFormatError(f"{path}:{i + 1}: a case needs its values and a class label separated by ':'")
        label = parts[-1].strip()
        if label not in index:
            raise TsFormatError(f"{path}:{i + 1}: class label {label!r} is not among the declared labels {names}")
        channels = [[_parse_value(v, path, i + 1, missing) for v in p.split(",")] for p in parts[:-1]]
        if dims is not None and len(channels) != dims:
            raise TsFormatError(f"{path}:{i + 1}: ragged line: {len(channels)} channels, the header declares {dims}")
        if cases and len(channels) != len(cases[0]):
            raise TsFormatError(f"{path}:{i + 1}: ragged line: {len(channels)} channels, the first case has "
                                f"{len(cases[0])}")
        lengths = {len(c) for c in channels}
        if len(lengths) != 1:
            raise TsFormatError(f"{path}:{i + 1}: ragged line: the channels of one case have different lengths "
                                f"{sorted(lengths)}")
        n_steps = lengths.pop()
        if series_length is not None and equal is not False and n_steps != series_length:
            raise TsFormatError(f"{path}:{i + 1}: ragged line: {n_steps} values per channel, @seriesLength is "
                                f"{series_length}")
        if equal and cases and n_steps != len(cases[0][0]):
            raise TsFormatError(f"{path}:{i + 1}: ragged line: {n_steps} values per channel in an @equalLength "
                                f"true file whose first case has {len(cases[0][0])}")
        cases.append(channels)
        targets.append(index[label])
        line_nos.append(i + 1)
    if not cases:
        raise TsFormatError(f"{path}: no cases after @data")
    n, c = len(cases), len(cases[0])
    lengths_t = torch.tensor([len(case[0]) for case in cases], dtype=torch.long)
    t = int(lengths_t.max())
    if pad_to is not None:
        if isinstance(pad_to, bool) or int(pad_to) != pad_to or pad_to < t:
            raise ValueError(f"pad_to must be an integer ≥ the longest series of {path} ({t} steps), got {pad_to!r}")
        t = int(pad_to)
    x = torch.full((n, c, t), float(pad_value), dtype=torch.float32)
    for row, case in enumerate(cases):
        x[row, :, : len(case[0])] = torch.tensor(case, dtype=torch.float32)
    padding_mask = torch.arange(t)[None, :] < lengths_t[:, None]
    return TsData(x, torch.tensor(targets, dtype=torch.long), lengths_t, padding_mask, names, headers)


@dataclass
class SeriesDataset(ArrayDataset):
    """An :class:`ArrayDataset` of series N×C×T with ``class_names`` and the declared ``layout``.

    Items are ``(x_i, y_i, {"lengths": …, "padding_mask": …})``.

    Args:
        x, y, extras, name, source: as :class:`~explainreg.data.ArrayDataset`.
        class_names: the label names, index k ↦ ``class_names[k]`` (``num_classes`` is their number).
        layout: ``"BxCxT"``.

    Shape:
        x: (N, C, T); y: (N,).

    Example::

        >>> import torch
        >>> from explainreg.data.ucr import SeriesDataset
        >>> data = SeriesDataset(torch.zeros(3, 2, 5), torch.tensor([0, 0, 1]), class_names=["a", "b", "c"])
        >>> data.num_classes, data.take([2]).class_names, data.take(2).x.shape
        (3, ['a', 'b', 'c'], torch.Size([2, 2, 5]))
    """

    class_names: list[str] = field(default_factory=list)
    layout: str = LAYOUT

    def take(self, indices) -> "SeriesDataset":
        part = super().take(indices)
        return SeriesDataset(part.x, part.y, part.extras, name=part.name, source=part.source,
                             class_names=list(self.class_names), layout=self.layout)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else super().num_classes


def ucr_name(name: str) -> str:
    """``"ucr/GunPoint"`` or ``"GunPoint"`` (any case) → the archive's spelling ``"GunPoint"``.

    Names outside :data:`UCR_DATASETS` are returned as given (without the ``ucr/`` prefix).

    Example::

        >>> from explainreg.data.ucr import ucr_name
        >>> ucr_name("ucr/gunpoint"), ucr_name("ITALYPOWERDEMAND"), ucr_name("ucr/Coffee")
        ('GunPoint', 'ItalyPowerDemand', 'Coffee')
    """
    bare = name.split("/", 1)[1] if name.lower().startswith("ucr/") else name
    for known in UCR_DATASETS:
        if known.lower() == bare.lower():
            return known
    return bare


def locate_ts(name: str, split: str = "train", root: str | os.PathLike | None = None) -> Path:
    """The ``NAME_TRAIN.ts`` / ``NAME_TEST.ts`` file under the data root: ``ROOT/ucr/NAME/``, ``ROOT/NAME/``,
    or the archive's own ``ROOT/Univariate_ts/NAME/`` and ``ROOT/Multivariate_ts/NAME/``.

    Args:
        name: ``"ucr/NAME"`` or ``"NAME"``.
        split: ``"train"`` or ``"test"``.
        root: the data root (as :func:`~explainreg.data.sources.resolve_data_root`).

    Returns:
        The file's path.

    Raises:
        ValueError: a bad split.
        DataNotFoundError: no such file (the message lists where it looked).

    Example::

        >>> import tempfile; from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory(); folder = Path(tmp.name, "ucr", "Tiny"); folder.mkdir(parents=True)
        >>> header = "@problemName Tiny\\n@univariate true\\n@equalLength false\\n@classLabel true up down\\n@data\\n"
        >>> _ = (folder / "Tiny_TRAIN.ts").write_text(header + "1,2,3:up\\n3,2:down\\n0,1,2,3:up\\n")
        >>> _ = (folder / "Tiny_TEST.ts").write_text(header + "5,4:down\\n")
        >>> from explainreg.data.ucr import locate_ts
        >>> locate_ts("ucr/Tiny", "test", tmp.name).relative_to(tmp.name)
        PosixPath('ucr/Tiny/Tiny_TEST.ts')
        >>> tmp.cleanup()
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    name = ucr_name(name)
    data_root, how = resolve_data_root(root)
    file_name = f"{name}_{split.upper()}.ts"
    folders = [data_root / "ucr" / name, data_root / name, data_root / "Univariate_ts" / name,
               data_root / "Multivariate_ts" / name]
    for folder in folders:
        if (folder / file_name).is_file():
            return folder / file_name
    raise DataNotFoundError(f"ucr/{name} {split}: {file_name} not found; looked in "
                            f"{', '.join(str(f) for f in folders)} (data root from {how}). Pass --data-root / "
                            f"root=... or set ${ENV_VAR} to a folder holding ucr/{name}/{file_name} "
                            f"(the archive's .ts files; explainreg ships {', '.join(UCR_DATASETS)} names only)")


def load_ucr(name: str, split: str = "train", root: str | os.PathLike | None = None, *, missing: str = "error",
             pad_value: float = 0.0, pad_to: int | None = None, limit: int | None = None,
             subset_seed: int = 0) -> SeriesDataset:
    """A UCR/UEA data set split as a :class:`SeriesDataset` (N×C×T float32, extras ``lengths`` and
    ``padding_mask``). Labels follow the train file's ``@classLabel`` order in both splits; ``pad_to``
    pads variable-length series to a common T (see :func:`read_ts`).

    Args:
        name: ``"ucr/NAME"`` or ``"NAME"`` (found by :func:`locate_ts`).
        split: ``"train"`` or ``"test"``.
        root: the data root.
        missing, pad_value, pad_to: as :func:`read_ts`.
        limit: keep ``limit`` series: a seeded subset stratified by label, in file order
            (:func:`~explainreg.data.arrays.stratified_subset`; named in ``source``).
        subset_seed: seed of the ``limit`` subset.

    Shape:
        x: (N, C, T) float32; y: (N,); extras ``lengths`` (N,), ``padding_mask`` (N, T).

    Returns:
        A :class:`SeriesDataset` named ``"ucr/NAME"``.

    Raises:
        DataNotFoundError, TsFormatError: as :func:`locate_ts` and :func:`read_ts`.
        ValueError: a bad ``limit``.

    Example::

        >>> import tempfile; from pathlib import Path
        >>> tmp = tempfile.TemporaryDirectory(); folder = Path(tmp.name, "ucr", "Tiny"); folder.mkdir(parents=True)
        >>> header = "@problemName Tiny\\n@univariate true\\n@equalLength false\\n@classLabel true up down\\n@data\\n"
        >>> _ = (folder / "Tiny_TRAIN.ts").write_text(header + "1,2,3:up\\n3,2:down\\n0,1,2,3:up\\n")
        >>> _ = (folder / "Tiny_TEST.ts").write_text(header + "5,4:down\\n")
        >>> from explainreg.data import load_dataset
        >>> from explainreg.data.ucr import load_ucr
        >>> train = load_ucr("ucr/Tiny", "train", tmp.name, limit=2)
        >>> test = load_dataset("ucr/Tiny", "test", tmp.name)        # the same through load_dataset
        >>> train.x.shape, sorted(train.y.tolist()), test.y, test.class_names, train.name   # T: the longest; both labels
        (torch.Size([2, 1, 4]), [0, 1], tensor([1]), ['up', 'down'], 'ucr/Tiny')
        >>> tmp.cleanup()
    """
    name = ucr_name(name)
    path = locate_ts(name, split, root)
    names = None
    if split == "test":
        try:
            names = _parse_headers(locate_ts(name, "train", root).read_text(encoding="utf-8").splitlines(),
                                   path)[1]
        except DataNotFoundError:
            names = None
    data = read_ts(path, missing=missing, pad_value=pad_value, class_names=names, pad_to=pad_to)
    x, y, lengths, mask = data.x, data.y, data.lengths, data.padding_mask
    if limit is not None:
        keep = stratified_subset(y, limit, subset_seed)
        x, y, lengths, mask = x[keep], y[keep], lengths[keep], mask[keep]
    return SeriesDataset(x, y, {"lengths": lengths, "padding_mask": mask}, name=f"ucr/{name}",
                         source=f"{path}{subset_note(limit, subset_seed)}", class_names=data.class_names)



def _where(name: str, root: str | os.PathLike | None) -> list[tuple[str, str, str]]:
    rows = []
    for split in ("train", "test"):
        try:
            where = str(locate_ts(name, split, root))
        except DataNotFoundError:
            where = "not found"
        rows.append((name, split, where))
    return rows


def _load(name: str, split: str, root, *, limit: int | None, subset_seed: int) -> SeriesDataset:
    return load_ucr(name, split, root, limit=limit, subset_seed=subset_seed)


DATASETS.register("ucr", DataSetFamily(
    "ucr", _load, "UCR/UEA time-series archive sets as ucr/NAME (.ts files; N×C×T series), e.g. ucr/GunPoint.",
    ("train", "test"), lambda name, root: [row for m in UCR_DATASETS for row in _where(f"ucr/{m}", root)],
    model="tcn", members=UCR_DATASETS, canonical=lambda member: f"ucr/{ucr_name(member)}"))

__all__ = ["LAYOUT", "MISSING", "SeriesDataset", "TsData", "TsFormatError", "UCR_DATASETS", "load_ucr",
           "locate_ts", "read_ts", "ucr_name"]

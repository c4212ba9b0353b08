"""Where the IDX files of each data set live: data root resolution, download and checksums.

The data root is, in order: the ``root`` argument (command-line ``--data-root``), the environment
variable ``EXPLAINREG_DATA``, and the user cache folder ``~/.cache/explainreg`` (``XDG_CACHE_HOME``
respected). Files are looked for in ``ROOT/<name>/`` and, for torchvision users, ``ROOT/<Name>/raw/``.
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "EXPLAINREG_DATA"
BUNDLED_DIR = Path(__file__).parent / "bundled"


class DataNotFoundError(FileNotFoundError):
    """The files of a data set could not be found (and not downloaded); a ``FileNotFoundError``.

    Example::

        >>> import tempfile
        >>> from explainreg.data import load_dataset
        >>> from explainreg.data.sources import DataNotFoundError
        >>> with tempfile.TemporaryDirectory() as empty:
        ...     try:
        ...         load_dataset("mnist", "test", empty, download=False)
        ...     except DataNotFoundError as exc:
        ...         print(isinstance(exc, FileNotFoundError), "not found; looked in" in str(exc))
        True True
    """


@dataclass(frozen=True)
class IdxSource:
    """One IDX data set: its folder name, torchvision folder name, mirrors and file checksums (md5 of the .gz).

    Args:
        name: the folder under the data root (``mnist``).
        torchvision_name: torchvision's folder (``MNIST``; files in ``MNIST/raw/``).
        mirrors: base URLs tried in order.
        files: file name → md5 of the official ``.gz``.

    Example::

        >>> from explainreg.data.sources import SOURCES
        >>> SOURCES["mnist"].split_files("test")
        ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
    """

    name: str
    torchvision_name: str
    mirrors: tuple[str, ...]
    files: dict[str, str]  # file name -> md5 of the official .gz

    def split_files(self, split: str) -> tuple[str, str]:
        prefix = "train" if split == "train" else "t10k"
        return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


SOURCES: dict[str, IdxSource] = {
    "mnist": IdxSource(
        "mnist",
        "MNIST",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": IdxSource(
        "fashion-mnist",
        "FashionMNIST",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/explainreg``, else ``~/.cache/explainreg``: the data root of last resort.

    Example::

        >>> from explainreg.data.sources import default_cache_dir
        >>> default_cache_dir().name
        'explainreg'
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "explainreg"


def resolve_data_root(root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Return ``(root, how)``: the data root and where the choice came from (argument, env or cache).

    Args:
        root: the explicit root (``--data-root``); None reads ``$EXPLAINREG_DATA``, then the cache.

    Returns:
        ``(Path, "argument" | "$EXPLAINREG_DATA" | "user cache")``; ``~`` is expanded.

    Example::

        >>> from explainreg.data.sources import resolve_data_root
        >>> resolve_data_root("/data/sets")
        (PosixPath('/data/sets'), 'argument')
    """
    if root is not None:
        return Path(root).expanduser(), "argument"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    return default_cache_dir(), "user cache"


def candidate_dirs(root: Path, source: IdxSource) -> list[Path]:
    """The folders searched for ``source``'s files, in order: ``ROOT/<name>``, ``ROOT/<Name>/raw``, ``ROOT``.

    Example::

        >>> from pathlib import Path
        >>> from explainreg.data.sources import SOURCES, candidate_dirs
        >>> [str(p) for p in candidate_dirs(Path("/d"), SOURCES["fashion-mnist"])]
        ['/d/fashion-mnist', '/d/FashionMNIST/raw', '/d']
    """
    return [root / source.name, root / source.torchvision_name / "raw", root]


def find_split(root: Path, source: IdxSource, split: str) -> Path | None:
    """The folder under ``root`` that holds both files of ``split``, or None.

    A file counts in its ``.gz`` form or uncompressed (torchvision unpacks them).

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> from explainreg.data.sources import SOURCES, find_split
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     raw = Path(tmp, "MNIST", "raw"); raw.mkdir(parents=True)
        ...     for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        ...         (raw / name).touch()                                  # torchvision's unpacked files
        ...     found = find_split(Path(tmp), SOURCES["mnist"], "train")
        ...     print(found.relative_to(tmp), find_split(Path(tmp), SOURCES["mnist"], "test"))
        MNIST/raw None
    """
    names = source.split_files(split)
    for folder in candidate_dirs(root, source):
        if all((folder / n).is_file() or (folder / n[:-3]).is_file() for n in names):
            return folder
    return None


def file_in(folder: Path, name: str) -> Path:
    """The .gz file, or its uncompressed twin when only that exists.

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> from explainreg.data.sources import file_in
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     (Path(tmp) / "t10k-labels-idx1-ubyte").touch()
        ...     print(file_in(Path(tmp), "t10k-labels-idx1-ubyte.gz").name)
        t10k-labels-idx1-ubyte
    """
    return folder / name if (folder / name).is_file() else folder / name[:-3]


def md5(path: Path) -> str:
    """The md5 hex digest of a file (read in 1 MiB blocks).

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> from explainreg.data.sources import md5
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     (Path(tmp) / "empty").touch()
        ...     print(md5(Path(tmp) / "empty"))
        d41d8cd98f00b204e9800998ecf8427e
    """
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_md5(path: str | os.PathLike) -> str | None:
    """The official md5 of a data file, from its name and folder (``mnist/``, ``MNIST/raw/``, ...);
    None when the file is not one of the official ``.gz`` files or the data set cannot be told.

    Example::

        >>> from explainreg.data.sources import expected_md5
        >>> expected_md5("/data/mnist/t10k-labels-idx1-ubyte.gz"), expected_md5("/data/t10k-labels-idx1-ubyte.gz")
        ('ec29112dd5afa0611ce80d1b7f02629c', None)
    """
    path = Path(path)
    if BUNDLED_DIR in path.resolve().parents:  # the bundled subsets are not the official files
        return None
    folders = {part.lower() for part in path.parent.parts[-2:]}
    for source in SOURCES.values():
        if path.name in source.files and folders & {source.name.lower(), source.torchvision_name.lower()}:
            return source.files[path.name]
    return None


def download(source: IdxSource, split: str, folder: Path, timeout: float = 20.0) -> Path:
    """Download the two files of ``split`` into ``folder``, verifying md5 checksums.

    Files already there with the official md5 are kept. A folder this call created is removed again
    when the download fails and leaves it empty.

    Args:
        source: the data set (:data:`SOURCES`).
        split: ``"train"`` or ``"test"``.
        folder: where the files go.
        timeout: seconds per connection.

    Returns:
        ``folder``.

    Raises:
        OSError: no mirror answers (e.g. offline); the message lists each mirror's error.
        ValueError: a checksum mismatch.

    Example::

        >>> import tempfile
        >>> from pathlib import Path
        >>> from explainreg.data.sources import SOURCES, IdxSource, download
        >>> offline = IdxSource("mnist", "MNIST", ("http://127.0.0.1:9/",), SOURCES["mnist"].files)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     target = Path(tmp, "mnist")
        ...     try:
        ...         download(offline, "test", target, timeout=2)
        ...     except OSError as exc:
        ...         print(str(exc).startswith("could not download t10k-images-idx3-ubyte.gz"), target.exists())
        True False
    """
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _download_into(source, split, folder, timeout)
    except BaseException:
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    return folder


def _download_into(source: IdxSource, split: str, folder: Path, timeout: float) -> None:
    for name in source.split_files(split):
        target = folder / name
        if target.is_file() and md5(target) == source.files[name]:
            continue
        errors = []
        for mirror in source.mirrors:
            tmp = target.with_name(name + ".part")
            try:
                with urllib.request.urlopen(mirror + name, timeout=timeout) as response, open(tmp, "wb") as f:
                    while block := response.read(1 << 20):
                        f.write(block)
            except (urllib.error.URLError, OSError) as exc:
                errors.append(f"{mirror}: {exc}")
                tmp.unlink(missing_ok=True)
                continue
            if md5(tmp) != source.files[name]:
                tmp.unlink(missing_ok=True)
                raise ValueError(f"checksum mismatch for {name} from {mirror}: the download is corrupt")
            os.replace(tmp, target)
            break
        else:
            raise OSError(f"could not download {name}: " + "; ".join(errors))


__all__ = ["BUNDLED_DIR", "DataNotFoundError", "ENV_VAR", "IdxSource", "SOURCES", "candidate_dirs",
           "default_cache_dir", "download", "expected_md5", "file_in", "find_split", "md5",
           "resolve_data_root"]

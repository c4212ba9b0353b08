"""Read and write the IDX format of MNIST-style data sets (optionally gzip-compressed).

IDX: a big-endian header (two zero bytes, a type code, the number of dimensions, then one
4-byte size per dimension) followed by the raw data. Only unsigned bytes (type 0x08) are used here.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .sources import expected_md5, md5

_UBYTE = 0x08


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if str(path).endswith(".gz") else open(path, mode)


def _damaged(path: Path, problem: str) -> ValueError:
    """The error for a damaged data file: its name, what is wrong, its md5 against the official one."""
    expected = expected_md5(path)
    check = ""
    if expected is not None:
        actual = md5(path)
        check = (f" Its md5 is {actual}, the official file's is {expected}." if actual != expected else
                 f" Its md5 matches the official file's ({expected}), so the copy is fine: report this as a bug.")
    return ValueError(f"{path} is damaged: {problem}.{check} Delete it and download it again (explainreg fetches "
                      "missing MNIST/Fashion-MNIST files when online), or copy it again from its source.")


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Return the array stored in an IDX file as a ``torch.uint8`` tensor.

    A truncated or corrupted file (gzip end-of-stream or CRC errors, a short body) raises a
    ``ValueError`` naming the file, with its md5 against the official one when it is known.

    Args:
        path: an IDX file, gzip-compressed when its name ends in ``.gz``.

    Returns:
        The array, with the shape the header gives (N×28×28 images, N labels).

    Raises:
        ValueError: not an IDX file, a type other than unsigned bytes, or a damaged file.

    Example::

        >>> import os, tempfile, torch
        >>> from explainreg.data.idx import read_idx, write_idx
        >>> images = torch.arange(24, dtype=torch.uint8).view(2, 3, 4)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "tiny-images-idx3-ubyte.gz")
        ...     write_idx(path, images)
        ...     back = read_idx(path)
        ...     with open(os.path.join(folder, "short"), "wb") as f:
        ...         _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]))       # header says 5 bytes, 2 follow
        ...     try:
        ...         read_idx(os.path.join(folder, "short"))
        ...     except ValueError as exc:
        ...         print("refused:", "truncated" in str(exc))
        refused: True
        >>> back.dtype, back.shape, bool(torch.equal(back, images))
        (torch.uint8, torch.Size([2, 3, 4]), True)
    """
    path = Path(path)
    try:
        with _open(path, "rb") as f:
            raw = f.read()
    except EOFError:
        raise _damaged(path, "the gzip stream ends early (the file is truncated)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise _damaged(path, f"it is not a valid gzip file any more ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number); is it corrupted?")
    dtype, ndim = raw[2], raw[3]
    if dtype != _UBYTE:
        raise ValueError(f"{path}: IDX type 0x{dtype:02x} is not supported (only unsigned bytes, 0x08)")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - offset} bytes; the file is truncated or corrupted, delete it and fetch it again"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)
    return torch.from_numpy(array.copy())


def write_idx(path: str | os.PathLike, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (gzip-compressed when the name ends in ``.gz``).

    The file is written beside the target and then renamed, so a reader never sees half a file.

    Args:
        path: the file to write.
        array: a ``torch.uint8`` tensor (any number of dimensions).

    Raises:
        ValueError: ``array`` is not uint8.

    Example::

        >>> import os, tempfile, torch
        >>> from explainreg.data.idx import read_idx, write_idx
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "labels-idx1-ubyte")
        ...     write_idx(path, torch.tensor([3, 1, 4], dtype=torch.uint8))
        ...     with open(path, "rb") as f:
        ...         header = f.read(8)
        ...     labels = read_idx(path)
        >>> list(header), labels
        ([0, 0, 8, 1, 0, 0, 0, 3], tensor([3, 1, 4], dtype=torch.uint8))
        >>> write_idx("unused", torch.zeros(2))
        Traceback (most recent call last):
        ...
        ValueError: write_idx needs a uint8 tensor, got torch.float32
    """
    array = torch.as_tensor(array)
    if array.dtype != torch.uint8:
        raise ValueError(f"write_idx needs a uint8 tensor, got {array.dtype}")
    header = bytes([0, 0, _UBYTE, array.dim()]) + struct.pack(f">{array.dim()}I", *array.shape)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with (gzip.GzipFile(tmp, "wb", mtime=0) if path.name.endswith(".gz") else open(tmp, "wb")) as f:
        f.write(header + array.contiguous().numpy().tobytes())
    os.replace(tmp, path)


__all__ = ["read_idx", "write_idx"]

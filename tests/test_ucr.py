"""The UCR/UEA .ts reader against the shared files' own headers and lines, and its errors."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from explainreg.data import load_dataset
from explainreg.data.sources import DataNotFoundError
from explainreg.data.ucr import TsFormatError, load_ucr, read_ts

ROOT = Path(os.environ.get("EXPLAINREG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
UCR = ROOT / "ucr"
pytestmark = pytest.mark.skipif(not UCR.is_dir(), reason="shared UCR data not found (set EXPLAINREG_DATA)")

# README of the shared data: train/test counts, channels, length (None = variable, ≤ the bound), classes
EXPECTED = {"GunPoint": (50, 150, 1, 150, 2), "ArrowHead": (36, 175, 1, 251, 3),
            "ItalyPowerDemand": (67, 1029, 1, 24, 2), "BasicMotions": (40, 40, 6, 100, 4),
            "JapaneseVowels": (270, 370, 12, None, 9)}


def _plain_parse(path: Path):
    """An independent, line-by-line reading of a .ts file: headers and [(channels, label)]."""
    headers, cases, data = {}, [], False
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not data:
            key, _, value = line[1:].partition(" ")
            if key.lower() == "data":
                data = True
            else:
                headers[key.lower()] = value
            continue
        *channels, label = line.split(":")
        cases.append(([[float(v) for v in c.split(",")] for c in channels], label))
    return headers, cases


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reader_matches_headers_and_lines(name):
    n_train, n_test, channels, length, classes = EXPECTED[name]
    for split, count in (("train", n_train), ("test", n_test)):
        path = UCR / name / f"{name}_{split.upper()}.ts"
        headers, cases = _plain_parse(path)
        data = read_ts(path)
        labels = headers["classlabel"].split()[1:]
        assert data.x.shape[:2] == (count, channels) == (len(cases), len(cases[0][0]))
        assert data.class_names == labels and len(labels) == classes
        assert data.y.tolist() == [labels.index(lab) for _, lab in cases]
        steps = [len(c[0]) for c, _ in cases]
        assert data.lengths.tolist() == steps
        assert data.padding_mask.sum(1).tolist() == steps
        if length is not None:
            assert int(headers.get("serieslength", length)) == length == data.x.shape[2]   # ArrowHead has none
        else:
            assert headers["equallength"] == "false" and data.x.shape[2] == max(steps) <= 29
        for row in (0, len(cases) // 2, len(cases) - 1):              # values, channel by channel
            for c, values in enumerate(cases[row][0]):
                assert torch.allclose(data.x[row, c, : len(values)], torch.tensor(values, dtype=torch.float32))
                assert (data.x[row, c, len(values):] == 0).all()


def test_load_dataset_ucr_names_and_test_labels_follow_train_order():
    train = load_dataset("ucr/BasicMotions", "train", ROOT)
    test = load_dataset("ucr/basicmotions", "test", ROOT)
    assert train.class_names == test.class_names == ["Standing", "Running", "Walking", "Badminton"]
    assert train.name == "ucr/BasicMotions" and train.layout == "BxCxT"
    assert set(train.extras) == {"lengths", "padding_mask"}
    part = train.take(5)
    assert part.class_names == train.class_names and len(part) == 5 and part.num_classes == 4
    jv = load_ucr("JapaneseVowels", "train", ROOT, pad_to=29)
    assert jv.x.shape == (270, 12, 29) and not jv.extras["padding_mask"][:, 26:].any()
    with pytest.raises(ValueError, match="pad_to must be an integer ≥ the longest"):
        load_ucr("JapaneseVowels", "test", ROOT, pad_to=20)
    with pytest.raises(DataNotFoundError, match="NoSuchSet_TRAIN.ts not found"):
        load_dataset("ucr/NoSuchSet", "train", ROOT)


def _copy_with(tmp_path: Path, edit, name="GunPoint") -> Path:
    lines = (UCR / name / f"{name}_TRAIN.ts").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    lines = edit(lines, first)
    path = tmp_path / "bad.ts"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_marker_errors_or_reads_nan(tmp_path):
    def edit(lines, first):
        values = lines[first + 2].split(",")
        values[5] = "?"
        lines[first + 2] = ",".join(values)
        edit.line = first + 3
        return lines

    path = _copy_with(tmp_path, edit)
    with pytest.raises(TsFormatError, match=rf"bad.ts:{edit.line}: missing value '\?' found; pass missing='nan'"):
        read_ts(path)
    data = read_ts(path, missing="nan")
    assert math.isnan(float(data.x[2, 0, 5])) and int(torch.isnan(data.x).sum()) == 1
    with pytest.raises(ValueError, match="missing must be one of"):
        read_ts(path, missing="zero")


def test_ragged_lines_name_file_and_line(tmp_path):
    def shorter(lines, first):                    # one value fewer than @seriesLength 150
        values, label = lines[first + 3].rsplit(":", 1)
        lines[first + 3] = ",".join(values.split(",")[:-1]) + ":" + label
        return lines

    path = _copy_with(tmp_path, shorter)
    with pytest.raises(TsFormatError, match=r"bad.ts:\d+: ragged line: 149 values per channel, @seriesLength is 150"):
        read_ts(path)

    def channels(lines, first):                   # a 5-channel case in a 6-channel file
        values = lines[first + 1].split(":")
        lines[first + 1] = ":".join(values[1:])
        return lines

    with pytest.raises(TsFormatError, match=r"bad.ts:\d+: ragged line: 5 channels, the header declares 6"):
        read_ts(_copy_with(tmp_path, channels, "BasicMotions"))

    def unequal(lines, first):                    # channels of one case with different lengths
        parts = lines[first].split(":")
        parts[0] = ",".join(parts[0].split(",")[:-1])
        lines[first] = ":".join(parts)
        return lines

    with pytest.raises(TsFormatError, match=r"channels of one case have different lengths"):
        read_ts(_copy_with(tmp_path, unequal, "JapaneseVowels"))

    def label(lines, first):
        lines[first] = lines[first].rsplit(":", 1)[0] + ":7"
        return lines

    with pytest.raises(TsFormatError, match=r"class label '7' is not among the declared labels"):
        read_ts(_copy_with(tmp_path, label))

    def word(lines, first):
        lines[first] = "abc," + lines[first]
        return lines

    with pytest.raises(TsFormatError, match=r"'abc' is not a number"):
        read_ts(_copy_with(tmp_path, word))


def test_ragged_error_gives_the_exact_line(tmp_path):
    def edit(lines, first):
        values, label = lines[first + 3].rsplit(":", 1)
        lines[first + 3] = ",".join(values.split(",")[:-1]) + ":" + label
        edit.line = first + 4
        return lines

    path = _copy_with(tmp_path, edit)
    with pytest.raises(TsFormatError, match=rf"bad.ts:{edit.line}: ragged line"):
        read_ts(path)

"""The image-folder reader (documentation: guide/images) against files written here from real MNIST images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from explainreg.data import ImageFolder, ImageReadError, load_dataset
from explainreg.data.image_ops import center_crop, normalize, resize
from explainreg.models import cnn3b
from explainreg.objective import Objective
from explainreg.penalties import PENALTIES, build_penalty
from explainreg.training import TrainConfig, iterate_batches, train


@pytest.fixture(scope="module")
def digits():
    data = load_dataset("mnist", "test", limit=200)
    return (data.x[:, 0] * 255).round().to(torch.uint8).numpy(), data.y.numpy()


def write_folder(root, digits, classes=(0, 1, 2), per_class=4, masks=None, mask_every=2):
    """ROOT/<digit>/<i>.png from real MNIST digits; masks (a 6×6 top-left square) on every
    ``mask_every``-th image. Returns {(class, stem): (pixels, mask or None)}."""
    images, labels = digits
    written = {}
    for c in classes:
        (root / str(c)).mkdir(parents=True)
        if masks is not None:
            (masks / str(c)).mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(labels == c)[:per_class]):
            Image.fromarray(images[i], mode="L").save(root / str(c) / f"img{k}.png")
            mask = None
            if masks is not None and k % mask_every == 0:
                mask = np.zeros((28, 28), np.uint8)
                mask[:6, :6] = 255
                Image.fromarray(mask, mode="L").save(masks / str(c) / f"img{k}.png")
            written[(c, f"img{k}")] = (images[i], mask)
    return written


def test_classes_labels_pixels_and_masks(tmp_path, digits):
    written = write_folder(tmp_path / "img", digits, masks=tmp_path / "mask")
    data = ImageFolder(tmp_path / "img", tmp_path / "mask", mode="L")
    assert data.classes == ["0", "1", "2"] and len(data) == 12
    assert data.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for i, sample in enumerate(data.samples):
        x, y, extras = data[i]
        pixels, mask = written[(int(data.classes[int(y)]), sample.image.stem)]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32
        assert torch.equal(x[0], torch.from_numpy(pixels).float() / 255)  # PNG is lossless
        assert extras["mask"].shape == (1, 28, 28) and extras["mask"].dtype == torch.bool
        if mask is None:  # images without a mask file get an empty mask
            assert not extras["mask"].any()
        else:
            assert torch.equal(extras["mask"][0], torch.from_numpy(mask != 0))
    assert sum(s.mask is not None for s in data.samples) == 6


def test_grey_and_rgba_converted_to_rgb(tmp_path, digits):
    images, _ = digits
    (tmp_path / "a").mkdir()
    Image.fromarray(images[0], mode="L").save(tmp_path / "a" / "grey.png")
    rgba = np.stack([images[1], 255 - images[1], images[2], np.full((28, 28), 7, np.uint8)], -1)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a" / "rgba.png")
    data = ImageFolder(tmp_path, mode="RGB")
    by_stem = {s.image.stem: i for i, s in enumerate(data.samples)}
    grey = data[by_stem["grey"]][0]
    assert grey.shape == (3, 28, 28)
    for c in range(3):
        assert torch.equal(grey[c], torch.from_numpy(images[0]).float() / 255)
    colour = data[by_stem["rgba"]][0]
    assert torch.equal(colour, torch.from_numpy(rgba[..., :3]).permute(2, 0, 1).float() / 255)  # alpha dropped
    grey_of_rgba = ImageFolder(tmp_path, mode="L")[by_stem["rgba"]][0]
    expected = np.asarray(Image.fromarray(rgba, mode="RGBA").convert("L"), np.float32) / 255  # Pillow's ITU-R 601
    assert torch.allclose(grey_of_rgba[0], torch.from_numpy(expected))


def test_csv_listing(tmp_path, digits):
    write_folder(tmp_path / "img", digits, classes=(3, 7), per_class=2, masks=tmp_path / "mask", mask_every=1)
    rows = ["image,label,mask", "img/3/img0.png,three,mask/3/img0.png", "img/7/img1.png,seven,",
            "img/3/img1.png,three,mask/3/img1.png"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    data = ImageFolder(tmp_path / "list.csv", mode="L")
    assert data.classes == ["seven", "three"]
    assert data.targets.tolist() == [1, 0, 1]
    assert data[0][2]["mask"].any() and not data[1][2]["mask"].any()


def test_transforms_resize_crop_normalise(tmp_path, digits):
    write_folder(tmp_path / "img", digits, classes=(4,), per_class=1, masks=tmp_path / "mask", mask_every=1)
    data = ImageFolder(tmp_path / "img", tmp_path / "mask", mode="RGB", size=64, crop=56, mean=(0.5, 0.4, 0.3),
                       std=(0.2, 0.2, 0.25))
    x, _, extras = data[0]
    raw = ImageFolder(tmp_path / "img", mode="RGB")[0][0]
    expected = torch.nn.functional.interpolate(raw[None], size=(64, 64), mode="bilinear", antialias=True,
                                               align_corners=False)[0][:, 4:60, 4:60]
    expected = (expected - torch.tensor([0.5, 0.4, 0.3])[:, None, None]) / torch.tensor([0.2, 0.2, 0.25])[:, None, None]
    assert x.shape == (3, 56, 56) and torch.allclose(x, expected, atol=1e-6)
    m = extras["mask"][0]
    assert m.dtype == torch.bool and m.shape == (56, 56)
    # nearest: output row i reads source row floor(i·28/64); the 6×6 corner keeps rows with that < 6,
    # i.e. 14 rows at 64×64, 10 after the 4-pixel crop margin
    kept = sum(1 for i in range(4, 60) if (i * 28) // 64 < 6)
    assert kept == 10 and int(m.sum()) == kept * kept and bool(m[:kept, :kept].all())
    assert resize(torch.ones(3, 20, 10), 5).shape == (3, 10, 5)  # the shorter side to 5
    assert torch.equal(center_crop(torch.arange(25.).view(1, 5, 5), 3), torch.arange(25.).view(5, 5)[1:4, 1:4][None])
    with pytest.raises(ValueError, match="std must be positive"):
        normalize(torch.ones(3, 2, 2), (0, 0, 0), (1, 0, 1))
    with pytest.raises(ValueError, match="crop 30×30 is larger"):
        center_crop(torch.ones(1, 28, 28), 30)


def test_bad_inputs(tmp_path, digits):
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist"):
        ImageFolder(tmp_path / "nowhere")
    write_folder(tmp_path / "img", digits, classes=(0, 1), per_class=2)
    (tmp_path / "img" / "5").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*img/5 holds no images"):
        ImageFolder(tmp_path / "img")
    (tmp_path / "img" / "5").rmdir()
    with pytest.raises(FileNotFoundError, match="mask folder"):
        ImageFolder(tmp_path / "img", tmp_path / "no-masks")
    # a mask of another size than its image
    (tmp_path / "mask" / "0").mkdir(parents=True)
    Image.fromarray(np.ones((20, 28), np.uint8)).save(tmp_path / "mask" / "0" / "img1.png")
    data = ImageFolder(tmp_path / "img", tmp_path / "mask")
    with pytest.raises(ValueError, match=r"mask .*0/img1.png is 28×20 \(W×H\) but its image .*img1.png is 28×28"):
        data[1]
    # a corrupt image, named in the error, also when read through DataLoader workers
    (tmp_path / "img" / "1" / "img0.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    data = ImageFolder(tmp_path / "img", mode="L")
    with pytest.raises(ImageReadError, match=r"cannot read image file .*1/img0.png"):
        data[2]
    with pytest.raises(ImageReadError, match=r"img0.png"):
        list(iterate_batches(data, 4, shuffle=False))
    with pytest.raises(ValueError, match="mode must be one of"):
        ImageFolder(tmp_path / "img", mode="CMYK")


def test_penalties_same_on_folder_and_in_memory(tmp_path, digits):
    """Every registered penalty gives the same value on a batch read from disk as on the same batch in memory."""
    write_folder(tmp_path / "img", digits, classes=tuple(range(10)), per_class=3, masks=tmp_path / "mask")
    folder = ImageFolder(tmp_path / "img", tmp_path / "mask", mode="L")
    memory = folder.to_memory()
    torch.manual_seed(0)
    model = cnn3b()
    (xf, yf, ef), = list(iterate_batches(folder, 64, shuffle=False))
    (xm, ym, em), = list(iterate_batches(memory, 64, shuffle=False))
    assert torch.equal(xf, xm) and torch.equal(yf, ym) and torch.equal(ef["mask"], em["mask"])
    checked = []
    for name in sorted({cls.name for cls in PENALTIES.values()}):
        try:
            penalty = build_penalty(name)
        except TypeError:  # needs a required setting: not a default-constructible penalty
            continue
        try:
            b = Objective({penalty: 1.0}, seed=0)(model, xm, ym, **em)
        except ValueError as exc:  # needs an extra other than the mask (e.g. a reward mask)
            assert "needs `" in str(exc) and "needs `mask`" not in str(exc), (name, exc)
            continue
        a = Objective({penalty: 1.0}, seed=0)(model, xf, yf, **ef)
        assert a.terms == pytest.approx(b.terms, rel=1e-6, abs=1e-9), name
        checked.append(name)
    assert {"rrr", "cdep", "expected_gradients"} <= set(checked)


def test_train_on_folder_equals_in_memory(tmp_path, digits):
    """train() on the lazily read folder (with 2 DataLoader workers) repeats the in-memory run exactly."""
    write_folder(tmp_path / "img", digits, classes=tuple(range(10)), per_class=6, masks=tmp_path / "mask")
    folder = ImageFolder(tmp_path / "img", tmp_path / "mask", mode="L", num_workers=2)
    memory = folder.to_memory()
    config = TrainConfig(epochs=2, batch_size=16, seed=3, device="cpu", progress=False)
    results = []
    for data in (folder, memory):
        torch.manual_seed(0)
        model = cnn3b()
        results.append((train(model, Objective({"rrr": 10.0}), data, config=config), model))
    (ra, ma), (rb, mb) = results
    for a, b in zip(ra.history, rb.history):
        assert {k: v for k, v in a.items() if k != "seconds"} == pytest.approx(
            {k: v for k, v in b.items() if k != "seconds"})
    for pa, pb in zip(ma.parameters(), mb.parameters()):
        assert torch.allclose(pa, pb)
    assert ra.history[-1]["train_rrr"] > 0

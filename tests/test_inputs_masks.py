"""One mask parser (explainreg.inputs.normalize_mask) for every caller: the same mask shapes are
accepted identically by Locality, RRR, ExpectedGradients, CDEP, contextual decomposition and
masked_dataset, or refused by all of them with the same message. Real MNIST images, real UCR
series and real SST sentences."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from explainreg.data import load_dataset, masked_dataset
from explainreg.data.text import sst_bias
from explainreg.decomposition import decompose
from explainreg.inputs import dense_mask, normalize_mask
from explainreg.penalties import CDEP, RRR, ExpectedGradients, Locality
from explainreg.models.text import TextLSTMClassifier
from explainreg.training.batches import iterate_batches

ROOT = Path(os.environ.get("EXPLAINREG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
B, C, H, W = 4, 3, 28, 28


def _prefix_free(message: str) -> str:
    """The message without the caller's name (``"CDEP: "``), which is all that may differ."""
    return re.sub(r"^\w+: ", "", message)


@pytest.fixture(scope="module")
def images():
    """Four real MNIST digits as 3-channel images (channel c scaled by 2^-c, so channels differ), a
    small CNN that contextual decomposition covers, and per-image ink masks."""
    d = load_dataset("mnist", "test", limit=B)
    x = d.x[:B].expand(B, C, H, W) * torch.tensor([1.0, 0.5, 0.25])[None, :, None, None]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(C, 4, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 12 * 12, 10))
    ink = (d.x[:B, 0] > 0.5).float()                                    # B×H×W
    per_channel = torch.stack([d.x[:B, 0] > t for t in (0.2, 0.5, 0.8)], 1).float()   # B×C×H×W
    return net.eval(), x.contiguous(), d.y[:B], ink, per_channel


def _callers(net, x, y):
    """Every caller that reads a mask, as mask -> a value (or a ValueError)."""
    def penalty(p):
        return lambda m: p(net, x, y, mask=m, generator=torch.Generator().manual_seed(3))
    return {
        "Locality": penalty(Locality()),
        "RRR": penalty(RRR()),
        "ExpectedGradients": penalty(ExpectedGradients(n_refs=2)),
        "CDEP": penalty(CDEP()),
        "decompose": lambda m: torch.stack(decompose(net, x, m)),
        "normalize_mask": lambda m: normalize_mask(m, x),
    }


def _image_forms(ink, per_channel):
    """Each accepted one-mask form and its explicit B×C×H×W equivalent."""
    shared = ink[0]
    return {
        "H×W": (shared, shared.expand(B, C, H, W)),
        "1×H×W": (shared[None], shared.expand(B, C, H, W)),
        "B×H×W": (ink, ink[:, None].expand(B, C, H, W)),
        "B×1×H×W": (ink[:, None], ink[:, None].expand(B, C, H, W)),
        "B×C×H×W": (per_channel, per_channel),
        "bool B×H×W": (ink.bool(), ink[:, None].expand(B, C, H, W)),
    }


@pytest.mark.parametrize("form", ["H×W", "1×H×W", "B×H×W", "B×1×H×W", "B×C×H×W", "bool B×H×W"])
def test_every_image_mask_form_is_read_alike_by_every_caller(images, form):
    net, x, y, ink, per_channel = images
    mask, explicit = _image_forms(ink, per_channel)[form]
    for name, call in _callers(net, x, y).items():
        if name == "normalize_mask":
            torch.testing.assert_close(call(mask).expand(1, B, C, H, W), explicit[None].to(x.dtype))
            continue
        torch.testing.assert_close(call(mask), call(explicit.contiguous()), msg=f"{name} reads {form} differently")
    data = masked_dataset(x, y, mask)
    assert data.extras["mask"].shape[0] == B and torch.equal(data.extras["mask"].expand(B, C, H, W).float(),
                                                             explicit.float())


def test_a_list_of_blobs_is_summed_by_the_penalties_and_stacked_by_the_engine(images):
    net, x, y, ink, per_channel = images
    corner = torch.zeros(H, W)
    corner[:5, :5] = 1.0
    blobs = [corner, ink, per_channel]
    calls = _callers(net, x, y)
    for name in ("RRR", "ExpectedGradients", "CDEP"):
        summed = sum(calls[name](b) for b in blobs)
        torch.testing.assert_close(calls[name](blobs), summed, msg=f"{name} on a list of blobs")
    rel, irrel = decompose(net, x, blobs)                                   # B×N×K
    for n, b in enumerate(blobs):
        r, i = decompose(net, x, b)
        torch.testing.assert_close(rel[:, n], r)
        torch.testing.assert_close(irrel[:, n], i)
    assert normalize_mask(blobs, x).shape == (3, B, C, H, W)
    with pytest.raises(ValueError, match="Locality: mask is a list of 3 blobs, but Locality takes one mask"):
        calls["Locality"](blobs)


@pytest.mark.parametrize("bad,words", [
    (torch.ones(H - 1, W), "does not fit their H×W (28, 28)"),
    (torch.ones(B + 1, H, W), r"leading dims (5,) must be"),
    (torch.ones(B, 2, H, W), r"leading dims (4, 2) must be"),
    (torch.full((H, W), 2.0), "values must lie in [0, 1]"),
    (torch.ones(0, W), "is empty"),
    (torch.full((H, W), float("nan")), "finite real values"),
])
def test_a_bad_image_mask_is_refused_by_every_caller_with_one_message(images, bad, words):
    net, x, y, _, _ = images
    messages = {}
    for name, call in _callers(net, x, y).items():
        with pytest.raises(ValueError) as caught:
            call(bad)
        messages[name] = _prefix_free(str(caught.value))
    with pytest.raises(ValueError) as caught:
        masked_dataset(x, y, bad)
    assert len(set(messages.values())) == 1, messages
    assert words in messages["decompose"]
    assert words in str(caught.value)   # the data set's size plays the batch's part, the words are the same
    assert str(caught.value).startswith("masked_dataset: mask")


def test_a_bad_blob_in_a_list_is_named_alike(images):
    net, x, y, ink, _ = images
    messages = set()
    for name in ("RRR", "ExpectedGradients", "CDEP", "decompose", "normalize_mask"):
        with pytest.raises(ValueError) as caught:
            _callers(net, x, y)[name]([ink, torch.ones(H, W - 1)])
        messages.add(_prefix_free(str(caught.value)))
    assert len(messages) == 1 and next(iter(messages)).startswith("mask[1] of shape (28, 27) does not match")


@pytest.fixture(scope="module")
def series():
    d = load_dataset("ucr/BasicMotions", "train", ROOT)
    x, y = d.x[::7][:6], d.y[::7][:6]                                         # 6×6×100
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(6, 4, 5), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 96, 4))
    window = torch.zeros(6, 100)
    window[:, 30:60] = 1.0
    window[::2, 60:70] = 1.0                                                 # per-series windows
    return net.eval(), x, y, window


@pytest.mark.skipif(not (ROOT / "ucr").is_dir(), reason="shared UCR data not found")
def test_series_masks_are_read_alike_by_every_caller(series):
    net, x, y, window = series
    per_channel = window[:, None].repeat(1, 6, 1)
    per_channel[:, ::3] = 0.0
    forms = {"T": (window[0], window[0].expand(6, 6, 100)), "B×T": (window, window[:, None].expand(6, 6, 100)),
             "B×1×T": (window[:, None], window[:, None].expand(6, 6, 100)), "B×C×T": (per_channel, per_channel)}
    calls = _callers(net, x, y)
    for form, (mask, explicit) in forms.items():
        for name, call in calls.items():
            if name != "normalize_mask":
                torch.testing.assert_close(call(mask), call(explicit.contiguous()), msg=f"{name} reads {form}")
    messages = set()
    for name, call in calls.items():
        with pytest.raises(ValueError) as caught:
            call(window[:, :, None].expand(6, 100, 6).contiguous())       # B×T×C instead of B×C×T
        messages.add(_prefix_free(str(caught.value)))
    assert len(messages) == 1 and "does not match the series (6, 6, 100)" in messages.pop()


def test_token_masks_are_read_alike_by_every_caller():
    splits = sst_bias("decoy", limit=200)
    torch.manual_seed(0)
    model = TextLSTMClassifier(len(splits.vocab), 2, embedding_dim=12, hidden_size=16).eval()
    ids, y, extras = next(iterate_batches(splits.train, 8, shuffle=False))
    mask = extras["mask"].float()                                            # B×T, 1 = the decoy token
    shared = mask[mask.sum(1).argmax()]                                      # one sentence's mask, for all
    lengths = extras.get("lengths")
    calls = {"RRR": lambda m: RRR()(model, ids, y, mask=m, lengths=lengths),
             "CDEP": lambda m: CDEP()(model, ids, y, mask=m, lengths=lengths),
             "decompose": lambda m: torch.stack(decompose(model, ids, m)),
             "normalize_mask": lambda m: normalize_mask(m, ids)[0]}
    for name, call in calls.items():
        torch.testing.assert_close(call(shared), call(shared.expand_as(mask).contiguous()), msg=name)
    torch.testing.assert_close(normalize_mask(mask, ids)[0], mask)
    messages = set()
    for name, call in calls.items():
        with pytest.raises(ValueError) as caught:
            call(torch.ones(ids.shape[0], ids.shape[1] + 1))
        messages.add(_prefix_free(str(caught.value)))
    assert len(messages) == 1 and "does not match the token ids" in messages.pop()
    with pytest.raises(ValueError, match="token ids take one T or B×T token mask"):
        normalize_mask([mask, mask], ids)


@pytest.mark.synthetic
def test_canonical_shapes_and_blob_forms():
    """The engine's blob forms on synthetic tensors: N×S shared, B×N×S, B×N×C×S; features B×F."""
    x = torch.zeros(2, 3, 4, 5)
    assert normalize_mask(torch.ones(6, 4, 5), x, blobs=True).shape == (6, 1, 1, 4, 5)
    assert normalize_mask(torch.ones(2, 6, 4, 5), x, blobs=True).shape == (6, 2, 1, 4, 5)
    per = torch.rand(2, 6, 3, 4, 5)
    torch.testing.assert_close(normalize_mask(per, x, blobs=True), per.transpose(0, 1))
    tab = torch.zeros(2, 7)
    assert normalize_mask(torch.ones(7), tab).shape == (1, 1, 7)
    assert dense_mask(torch.ones(2, 7), tab).shape == (2, 7)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 7\) does not match the inputs \(2, 7\): its leading "
                                         r"dims \(3,\) must be \(\), \(B,\) = \(2,\)\. Accepted shapes: F"):
        normalize_mask(torch.ones(3, 7), tab)
    with pytest.raises(ValueError, match="HINT: reward_mask of shape"):
        dense_mask(torch.ones(3, 3), x, who="HINT", name="reward_mask")

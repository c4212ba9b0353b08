"""Every penalty on B×C×T series (real UCR data): weight gradients, or its clear error; Smoothness
along time only; SGT masks exactly k features per series."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from explainreg.data import load_dataset
from explainreg.models import build_model
from explainreg.penalties import PENALTIES, Locality, SaliencyGuided, Smoothness, saliency_guided_mask
from explainreg.penalties.saliency_guided import masked_count
from explainreg.gradients import input_gradient

ROOT = Path(os.environ.get("EXPLAINREG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
pytestmark = pytest.mark.skipif(not (ROOT / "ucr").is_dir(), reason="shared UCR data not found")
#: penalties whose definition does not cover series, with the start of their error
REFUSED = {"Symmetry": "Symmetry is defined for image inputs, not series",
           "CDEP": "contextual decomposition could not",
           "RRRGradCAM": "Grad-CAM needs a convolutional layer", "HINT": "Grad-CAM needs a convolutional layer"}


@pytest.fixture(scope="module")
def motions():
    d = load_dataset("ucr/BasicMotions", "train", ROOT)
    mask = torch.zeros(6, 6, 100)
    mask[:, :, 30:60] = 1.0                                # a time window on every channel
    return d.x[::7][:6], d.y[::7][:6], mask


@pytest.mark.parametrize("arch", ["tcn", "lstm"])
def test_every_penalty_gives_weight_gradients_or_a_clear_error(arch, motions):
    x, y, mask = motions
    for cls in sorted(set(PENALTIES.values()), key=lambda c: c.__name__):
        torch.manual_seed(0)
        model = build_model(arch, in_channels=6, num_classes=4)
        extras = {"mask": mask, "reward_mask": mask}
        refused = REFUSED.get(cls.__name__)
        if arch == "tcn" and cls.__name__ in ("RRRGradCAM", "HINT"):
            refused = None  # Grad-CAM over the TCN's last Conv1d
        if refused:
            with pytest.raises(Exception, match=refused):
                cls()(model, x, y, generator=torch.Generator().manual_seed(0), **extras)
            continue
        r = cls()(model, x, y, generator=torch.Generator().manual_seed(0), **extras)
        grads = torch.autograd.grad(r, list(model.parameters()), allow_unused=True)
        total = sum(float(g.abs().sum()) for g in grads if g is not None)
        assert torch.isfinite(r) and total > 0, f"{cls.__name__} on {arch}: no weight gradient"


def test_smoothness_is_along_time_only(motions):
    x, y, _ = motions
    torch.manual_seed(0)
    model = build_model("tcn", in_channels=6, num_classes=4).eval()     # no dropout: one saliency
    r = Smoothness()(model, x, y)
    g = input_gradient(model, x, y).detach()
    plain = sum(float((g[b, c, t] - g[b, c, t - 1]).abs()) for b in range(6) for c in range(6)
                for t in range(1, 100)) / (6 * 6 * 99)
    assert float(r) == pytest.approx(plain, rel=1e-5)
    # channels are unordered: permuting them (with the model's first layer) leaves R unchanged
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    twin = build_model("tcn", in_channels=6, num_classes=4).eval()
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name in ("blocks.0.net.0", "blocks.0.skip"):          # twin's channel j is model's perm[j]
            twin.get_submodule(name).weight.copy_(model.get_submodule(name).weight[:, perm])
    assert float(Smoothness()(twin, x[:, perm], y)) == pytest.approx(float(r), rel=1e-4)
    with pytest.raises(ValueError, match="convention=.seed.. reproduces the seed's image code"):
        Smoothness(convention="seed")(model, x, y)


def test_image_only_penalties_refuse_other_layouts(motions):
    x, y, mask = motions
    model = build_model("tcn", in_channels=6, num_classes=4)
    with pytest.raises(ValueError, match="Locality without a mask is defined for image inputs, not series"):
        Locality()(model, x, y)
    assert torch.isfinite(Locality()(model, x, y, mask=mask[:, 0]))          # B×T mask is broadcast
    with pytest.raises(ValueError, match=r"mask of shape \(6, 100, 6\) does not match the series"):
        Locality()(model, x, y, mask=mask.transpose(1, 2))
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(600, 4))
    with pytest.raises(ValueError, match="Smoothness is defined for image and series inputs, not tabular"):
        Smoothness()(flat, x.flatten(1), y)


def test_sgt_masks_exactly_k_features_per_series(motions):
    x, y, _ = motions
    model = build_model("lstm", in_channels=6, num_classes=4)
    g = input_gradient(model, x, y, create_graph=False)
    for fraction in (0.1, 0.5, 0.9):
        masked, mask = saliency_guided_mask(x, g, fraction, generator=torch.Generator().manual_seed(0))
        k = masked_count(600, fraction)
        assert mask.shape == x.shape and mask.flatten(1).sum(1).tolist() == [k] * 6
        # the masked features are the k smallest |g| of each series; the others are untouched
        for b in range(6):
            threshold = g[b].abs().flatten().sort().values[k - 1]
            assert (g[b].abs()[mask[b]] <= threshold).all()
        assert torch.equal(masked[~mask], x[~mask])
    r = SaliencyGuided(0.5)(model, x, y, generator=torch.Generator().manual_seed(0))
    assert float(r) >= -1e-6 and r.requires_grad      # KL ≥ 0 up to float rounding


def test_sgt_on_padded_series_masks_only_real_steps():
    """JapaneseVowels (12 channels, ≤ 29 steps, zero-padded): SGT masks ⌊f·C·L_b⌋ real entries of each
    series, never a padded step, and fills from the real values' range (documentation: methods/saliency-guided)."""
    from explainreg.data.ucr import load_ucr
    from explainreg.penalties.saliency_guided import saliency_guided_mask

    data = load_ucr("JapaneseVowels", "train", pad_to=29)
    x, pad = data.x[:16], data.extras["padding_mask"][:16].bool()
    assert not bool(pad.all())  # the batch really has padding
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    masked, mask = saliency_guided_mask(x, g, 0.5, "abs", "random", torch.Generator().manual_seed(1),
                                        valid=pad.unsqueeze(1))
    lengths = pad.sum(1)
    assert mask.flatten(1).sum(1).tolist() == [int(0.5 * 12 * int(n)) for n in lengths]
    assert not bool((mask & ~pad.unsqueeze(1)).any())
    torch.testing.assert_close(masked[~pad.unsqueeze(1).expand_as(x)], x[~pad.unsqueeze(1).expand_as(x)])
    for b in range(len(x)):
        real = x[b][:, pad[b]]
        filled = masked[b][mask[b]]
        assert float(filled.min()) >= float(real.min()) - 1e-6 and float(filled.max()) <= float(real.max()) + 1e-6
    # the lowest-|g| real entries are the ones masked
    b = 0
    scores = g[b].abs()[:, pad[b]].flatten()
    k = int(0.5 * scores.numel())
    assert bool(mask[b][:, pad[b]].flatten()[scores.argsort()[:k]].all())


def test_sgt_penalty_reads_the_series_padding_mask():
    from explainreg.data.ucr import load_ucr
    from explainreg.models import build_model
    from explainreg.penalties import SaliencyGuided

    data = load_ucr("JapaneseVowels", "train", pad_to=29)
    x, y, pad = data.x[:16], data.y[:16], data.extras["padding_mask"][:16].bool()
    torch.manual_seed(0)
    model = build_model("tcn", in_channels=12, num_classes=9)
    value = SaliencyGuided()(model, x, y, padding_mask=pad)
    value.backward()
    assert torch.isfinite(value) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with pytest.raises(ValueError, match="padding_mask of shape"):
        SaliencyGuided()(model, x, y, padding_mask=pad[:, :10])


def test_sgt_score_keyword():
    """``score=`` names the scalar kind (``target`` is not a keyword of the penalty: it means the class)."""
    torch.manual_seed(0)
    model = build_model("tcn", in_channels=3, num_classes=2).eval()   # no dropout: the two calls comparable
    x, y = torch.randn(6, 3, 20), torch.tensor([0, 1, 0, 1, 1, 0])
    new = SaliencyGuided(0.3, score="logit")
    assert new.score == "logit" and new.settings()["score"] == "logit"
    gen = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    torch.testing.assert_close(new(model, x, y, generator=gen()), SaliencyGuided(0.3, "abs", "random", "logit")(
        model, x, y, generator=gen()))
    assert SaliencyGuided(0.3).score == "log_prob"
    with pytest.raises(ValueError, match="score must be one of"):
        SaliencyGuided(score="prob")
    with pytest.raises(TypeError, match="target"):
        SaliencyGuided(target="logit")
"""Behavioural shortcut metrics (documentation: methods/shortcuts) against independent computations: a linear model
whose flip rate, group accuracies and decision shares are known in closed form, and plain
per-sample loops on real DecoyMNIST images; the mask-meaning rule (A.14)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from explainreg._random import image_generator
from explainreg.data import decoy_mnist
from explainreg.data.shortcuts import DecoyShortcut, TokenDecoyShortcut, decoy_corner_mask
from explainreg.inputs import EVIDENCE, MUST_NOT_USE, mask_for
from explainreg.metrics import build_metric
from explainreg.metrics import shortcut as S
from explainreg.metrics.functional import shortcut as SF

# ------------------------------------------------------------------------------ closed form (linear)
A, B = 1.0, 2.0  # logit_0 = A·s + B·c = −logit_1; s the shortcut feature, c the core feature


def linear_model() -> nn.Module:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[A, B], [-A, -B]]))
    return model.eval()


def sign(y: torch.Tensor) -> torch.Tensor:
    return 1.0 - 2.0 * y.float()  # class 0 → +1, class 1 → −1


def linear_data():
    """Class 0: core strengths u = 0.05, 0.15, …, 0.95 (10); class 1: 0.05 … 0.95 in steps of 0.1 too,
    plus 0.01, 0.02, 0.03, 0.04, 0.06 (15). The shortcut s = sign(y) (agreeing, as in training)."""
    u0 = torch.arange(10) * 0.1 + 0.05
    u1 = torch.cat([u0, torch.tensor([0.01, 0.02, 0.03, 0.04, 0.06])])
    y = torch.cat([torch.zeros(10), torch.ones(15)]).long()
    u = torch.cat([u0, u1])
    x = torch.stack([sign(y), sign(y) * u], 1)
    return x, y, u


def tabular_shortcut(x, mask, target, index):
    out = x.clone()
    out[:, 0] = sign(target)
    return out


REGION = torch.tensor([1.0, 0.0])  # the shortcut feature


@pytest.mark.synthetic
def test_linear_model_flip_rate_and_reliance_match_the_closed_form():
    model, (x, y, u) = linear_model(), linear_data()
    # with the other class's shortcut the sample is right iff B·u > A: u > 0.5
    disagree_right = (B * u > A).double()
    expected_disagree = disagree_right.mean().item()
    value = SF.shortcut_reliance(model, x, y, REGION, tabular_shortcut)
    assert value[1].item() == 1.0                                        # agreeing: always right
    assert value[2].item() == pytest.approx(expected_disagree)           # 5 + 5 of 25
    assert value[0].item() == pytest.approx(1.0 - expected_disagree)
    assert value[3].item() == pytest.approx(1.0 - expected_disagree)     # clean predictions are all right
    flips = SF.flip_rate(model, x, y, REGION, "other_class")              # binary: the donor's s = −sign(y)
    assert flips.item() == pytest.approx(1.0 - expected_disagree)
    assert SF.flip_rate(model, x, y, REGION, "shortcut", shortcut=tabular_shortcut).item() == pytest.approx(
        1.0 - expected_disagree)


@pytest.mark.synthetic
def test_linear_model_group_accuracies_match_the_closed_form():
    model, (x, y, u) = linear_model(), linear_data()
    result = S.ShortcutReliance(tabular_shortcut)(model, x, y, mask=REGION)
    class0, class1 = (B * u[:10] > A).double().mean().item(), (B * u[10:] > A).double().mean().item()
    torch.testing.assert_close(torch.tensor(result.extra["groups"]),
                               torch.tensor([[class0, 1.0], [class1, 1.0]]))          # 0.5 and 5/15
    assert result.extra["worst_group_accuracy"] == pytest.approx(5 / 15)
    assert result.extra["average_group_accuracy"] == pytest.approx((0.5 + 1 + 5 / 15 + 1) / 4)
    assert result.value == pytest.approx(1 - 10 / 25)


@pytest.mark.synthetic
@pytest.mark.parametrize("method", ["cd", "grad_x_input"])
def test_linear_model_decision_share_is_the_shortcut_term_over_the_margin(method):
    model, (x, y, u) = linear_model(), linear_data()
    rows = SF.decision_share(model, x, y, REGION, method=method, reduction="none")
    shortcut_term, core_term = A * x[:, 0], B * x[:, 1]
    margin_share = (shortcut_term / (shortcut_term + core_term)).double()   # (2·A·s) / (2·(A·s + B·c)) for y = 0
    logit_share = (shortcut_term.abs() / (shortcut_term.abs() + core_term.abs())).double()
    torch.testing.assert_close(rows[:, 0], margin_share, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(rows[:, 1], logit_share, rtol=1e-6, atol=1e-7)
    # over the data set: the region's part of the summed margins (2·A·s / 2·(A·s + B·c), summed)
    value = S.DecisionShare(method)(model, x, y, mask=REGION)
    margins = 2 * (shortcut_term + core_term) * sign(y)
    assert value.value == pytest.approx(float((2 * shortcut_term * sign(y)).sum() / margins.sum()), rel=1e-6)
    assert value.extra["logit_share"] == pytest.approx(float(logit_share.mean()), rel=1e-6)


@pytest.mark.synthetic
def test_linear_model_group_accuracy_by_shortcut_presence():
    model = linear_model()
    x = torch.tensor([[1.0, 0.1], [0.0, 0.1], [-1.0, 0.1], [0.0, -0.1]])  # class 0 with / without s, class 1 too
    y = torch.tensor([0, 0, 0, 1])
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])   # s present in rows 0 and 2
    result = S.GroupAccuracy()(model, x, y, mask=mask)
    # row 0: A + 0.2 > 0 right; row 2: −A + 0.2 < 0 wrong; rows 1 and 3 right
    assert result.extra["groups"][0] == [1.0, 0.5]
    assert math.isnan(result.extra["groups"][1][1]) and result.extra["groups"][1][0] == 1.0
    assert result.value == 0.5 and result.extra["average_group_accuracy"] == pytest.approx(2.5 / 3)


# --------------------------------------------------------------------- per-sample loops, DecoyMNIST
N = 48


@pytest.fixture(scope="module")
def decoy():
    """An MLP trained 6 epochs on 2,000 real DecoyMNIST training images, the digit erased from every
    second one (so that the patch carries part of the decision), and 48 test images with the
    four-corner mask."""
    train = decoy_mnist("train", limit=2000)
    erase = (torch.arange(len(train)) % 2 == 0)[:, None, None, None] & ~decoy_corner_mask()
    train.x[erase.expand_as(train.x)] = -1.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(6):
        for start in range(0, len(train), 50):
            loss = nn.functional.cross_entropy(model(train.x[start:start + 50]), train.y[start:start + 50])
            opt.zero_grad()
            loss.backward()
            opt.step()
    test = decoy_mnist("test", limit=N)
    return model.eval(), test.x, test.y, test.extras["mask"]


def _u(seed: int, i: int, stream: str, shape=(), dtype=torch.float64) -> torch.Tensor:
    return torch.rand(shape, generator=image_generator(seed, i, stream), dtype=dtype)


def test_other_class_flip_rate_equals_a_per_sample_loop(decoy):
    model, x, y, mask = decoy
    seed = 3
    flips = []
    for i in range(N):
        eligible = [j for j in range(N) if y[j] != y[i]]
        donor = eligible[int(math.floor(float(_u(seed, i, "shortcut_donor")) * len(eligible)))]
        xt = x[i].clone()
        region = mask[i].expand_as(xt)
        xt[region] = x[donor][region]
        with torch.no_grad():
            flips.append(float(model(xt[None]).argmax(1) != model(x[i][None]).argmax(1)))
    expected = torch.tensor(flips, dtype=torch.float64)
    rows = SF.flip_rate(model, x, y, mask, "other_class", seed=seed, reduction="none")
    torch.testing.assert_close(rows, expected)
    metric = S.FlipRate("other_class", seed=seed, donors=(x, y))
    for start in range(0, N, 7):                      # batching does not change the value
        metric.update(model, x[start:start + 7], y[start:start + 7], mask=mask[start:start + 7])
    assert metric.compute().value == pytest.approx(float(expected.mean()))


@pytest.mark.parametrize("fill", ["mean", "noise"])
def test_neutral_fills_equal_a_per_sample_loop(decoy, fill):
    model, x, y, mask = decoy
    expected = []
    for i in range(N):
        region = mask[i, 0]
        outside = x[i, 0][~region]
        r = outside.mean()
        if fill == "noise":
            std = ((outside - r) ** 2).mean().sqrt()
            r = r + std * torch.randn(x.shape[1:], generator=image_generator(0, i, "shortcut_noise"))[0][region]
        xt = x[i].clone()
        xt[0][region] = r
        with torch.no_grad():
            expected.append(float(model(xt[None]).argmax(1) != model(x[i][None]).argmax(1)))
    rows = SF.flip_rate(model, x, y, mask, fill, reduction="none")
    torch.testing.assert_close(rows, torch.tensor(expected, dtype=torch.float64))


def test_decoy_reliance_equals_a_per_sample_loop(decoy):
    model, x, y, mask = decoy
    hook = DecoyShortcut()
    agree, disagree = [], []
    for i in range(N):
        corner = _u(0, i, "decoy_corner", (2,), torch.float32)
        r, c = int(corner[0] < 0.5) * 23, int(corner[1] < 0.5) * 23
        other = (int(y[i]) + 1 + int(math.floor(float(_u(0, i, "shortcut_target")) * 9))) % 10
        for target, out in ((int(y[i]), agree), (other, disagree)):
            xt = x[i].clone()
            xt[0][decoy_corner_mask()] = -1.0
            xt[0, r:r + 5, c:c + 5] = (255.0 - 25.0 * target) / 255.0 * 2.0 - 1.0
            with torch.no_grad():
                out.append(float(model(xt[None]).argmax(1) == y[i]))
    value = SF.shortcut_reliance(model, x, y, mask, hook)
    assert value[1].item() == pytest.approx(sum(agree) / N)
    assert value[2].item() == pytest.approx(sum(disagree) / N)
    assert value[0].item() > 0.3  # the MLP follows the patch


# ----------------------------------------------------------------------------------------- tokens
@pytest.mark.synthetic
def test_token_interventions_equal_list_operations():
    ids = torch.tensor([[4, 9, 5, 0, 0], [6, 7, 8, 3, 0]])
    mask = torch.tensor([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]])
    deleted, lengths = SF.delete_tokens(ids, mask, padding=ids != 0)
    assert deleted.tolist() == [[4, 5, 0, 0, 0], [6, 7, 8, 3, 0]] and lengths.tolist() == [2, 4]
    hook = TokenDecoyShortcut((10, 11), seed=2)
    out = hook(ids, mask, torch.tensor([0, 1]), torch.tensor([5, 6]))
    assert out[0].tolist() == [4, 10, 5, 0, 0, 0]                        # replaced in place
    pos = int(math.floor(float(_u(2, 6, "decoy_position")) * 5))         # 0 … L for L = 4
    row = [6, 7, 8, 3]
    row.insert(pos, 11)
    assert out[1].tolist() == row + [0]


@pytest.mark.synthetic
def test_interventions_refuse_what_does_not_fit():
    model = linear_model()
    x, y, _ = linear_data()
    with pytest.raises(ValueError, match="token ids"):
        SF.flip_rate(model, x, y, REGION, "delete")
    with pytest.raises(ValueError, match="shortcut=HOOK"):
        build_metric("shortcut_reliance")
    with pytest.raises(ValueError, match="must-not-use mask"):
        S.FlipRate().update(model, x, y)


# ------------------------------------------------------------------------------------ mask meaning
@pytest.mark.synthetic
def test_mask_meaning_passes_converts_by_the_stated_rule_or_refuses():
    m = torch.tensor([[True, False]])
    assert mask_for(m, MUST_NOT_USE, MUST_NOT_USE, "flip_rate") is m
    assert mask_for(m, MUST_NOT_USE, EVIDENCE, "pointing_game", convert="complement").tolist() == [[False, True]]
    with pytest.raises(ValueError, match="marks what the model must not use .* convert='complement'"):
        mask_for(m, MUST_NOT_USE, EVIDENCE, "pointing_game")
    with pytest.raises(ValueError, match="does not say what its mask means.*mask_meaning='must_not_use'"):
        mask_for(m, None, EVIDENCE, "pointing_game")


def test_masks_carry_their_meaning_from_where_they_enter(tmp_path):
    from PIL import Image

    from explainreg.data import masked_dataset
    from explainreg.data.folder import image_folder
    from explainreg.metrics import LOCALISATION_METRICS
    from explainreg.penalties import CDEP, HINT, RRR

    decoy = decoy_mnist("test", limit=4, mask="patch", reward_mask=True)
    assert decoy.mask_meanings == {"mask": MUST_NOT_USE, "reward_mask": EVIDENCE}
    assert decoy.take(2).mask_meanings == decoy.mask_meanings
    data = masked_dataset(decoy.x, decoy.y, decoy.extras["reward_mask"], meaning="evidence")
    assert data.mask_meanings == {"mask": EVIDENCE}
    with pytest.raises(ValueError, match="meaning must be one of 'must_not_use', 'evidence'"):
        masked_dataset(decoy.x, decoy.y, decoy.extras["mask"], meaning="shortcut")
    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        Image.new("L", (4, 4), 40 if c == "a" else 200).save(tmp_path / "img" / c / "1.png")
    assert image_folder(tmp_path / "img", mask_meaning="evidence").to_memory().mask_meanings == {"mask": EVIDENCE}
    assert image_folder(tmp_path / "img").to_memory().mask_meanings == {}
    # every consumer states the meaning it is defined for
    assert CDEP.mask_meaning == RRR.mask_meaning == MUST_NOT_USE and HINT.mask_meaning == EVIDENCE
    assert {n: c.mask_meaning for n, c in LOCALISATION_METRICS.items()}["wrong_reason"] == MUST_NOT_USE
    assert {c.mask_meaning for n, c in LOCALISATION_METRICS.items() if n != "wrong_reason"} == {EVIDENCE}
    assert {c.mask_meaning for c in S.SHORTCUT_METRICS.values()} == {MUST_NOT_USE}


def test_metric_families_are_live_views_of_the_metric_registry_by_declared_need():
    from explainreg.cli.evaluate import _behaviour_metrics
    from explainreg.metrics import LOCALISATION_METRICS, METRICS, SHORTCUT_METRICS
    from explainreg.metrics.localisation import PointingGame

    class CornerFlipRate(S.FlipRate):
        name = "corner_flip_rate"

    class CentrePointing(PointingGame):
        name = "centre_pointing"

    assert "corner_flip_rate" not in SHORTCUT_METRICS and "centre_pointing" not in LOCALISATION_METRICS
    METRICS.register(None, CornerFlipRate)
    METRICS.register(None, CentrePointing)
    try:
        assert list(SHORTCUT_METRICS)[-1] == "corner_flip_rate"
        assert SHORTCUT_METRICS["Corner-Flip-Rate"] is CornerFlipRate
        assert list(LOCALISATION_METRICS)[-1] == "centre_pointing" and "centre_pointing" not in SHORTCUT_METRICS
        assert _behaviour_metrics("decoy-mnist") == ["flip_rate", "shortcut_reliance", "group_accuracy",
                                                     "decision_share", "corner_flip_rate"]
        unplanted = _behaviour_metrics("mnist")
        assert "shortcut_reliance" not in unplanted and "corner_flip_rate" in unplanted
        with pytest.raises(TypeError, match="register in that registry"):
            SHORTCUT_METRICS.register("x", CornerFlipRate)
    finally:
        METRICS.pop("corner_flip_rate")
        METRICS.pop("centre_pointing")
    assert list(SHORTCUT_METRICS) == ["flip_rate", "shortcut_reliance", "group_accuracy", "decision_share"]
    assert "centre_pointing" not in LOCALISATION_METRICS and len(LOCALISATION_METRICS) == 7


class _BagOfWords(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(12, 4, padding_idx=0)
        self.head = nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.embedding(ids).sum(1))


@pytest.mark.synthetic
@pytest.mark.parametrize("intervention", ["token", "delete"])
def test_token_flip_rate_equals_a_per_sentence_loop(intervention):
    torch.manual_seed(0)
    model = _BagOfWords().eval()
    ids = torch.randint(2, 12, (40, 6))
    lengths = torch.randint(2, 7, (40,))
    ids[torch.arange(6)[None, :] >= lengths[:, None]] = 0                 # padding at the end
    mask = (torch.rand(40, 6, generator=torch.Generator().manual_seed(1)) < 0.3).long()
    expected = []
    for i in range(40):
        tokens = ids[i, : int(lengths[i])].tolist()
        marked = mask[i, : int(lengths[i])].tolist()
        if intervention == "token":
            changed = [1 if m else t for t, m in zip(tokens, marked)]
        else:
            changed = [t for t, m in zip(tokens, marked) if not m]
        with torch.no_grad():
            before = model(torch.tensor([tokens])).argmax(1)
            after = model(torch.tensor([changed or [0]])).argmax(1)
        expected.append(float(before != after))
    rows = SF.flip_rate(model, ids, torch.zeros(40, dtype=torch.long), mask, intervention, token=1, reduction="none")
    torch.testing.assert_close(rows, torch.tensor(expected, dtype=torch.float64))
    assert 0 < sum(expected) < 40


def test_blur_fill_equals_a_per_pixel_window_mean(decoy):
    model, x, y, mask = decoy
    x, mask = x[:6], mask[:6]
    k = 5
    expected = x.clone()
    for i in range(len(x)):
        for r, c in mask[i, 0].nonzero().tolist():
            window = x[i, 0, max(r - k // 2, 0):r + k // 2 + 1, max(c - k // 2, 0):c + k // 2 + 1]
            expected[i, 0, r, c] = window.mean()                 # the window's part inside the image
    got = SF.intervene(x, mask, SF.neutral_fill(x, mask, "blur", kernel=k))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not torch.equal(got, x)

"""Bad input and faults in the data loaders, the penalties and the padding handling, on real data:
``limit`` as a seeded subset stratified by label, padding that never counts, non-finite penalty
options, bf16 autocast, attention kernels under double backprop, torch.func, the penalty registry."""
from __future__ import annotations

import pytest
import torch

from explainreg.data import load_dataset
from explainreg.data.text import sst_bias

torch.set_num_threads(1)


def test_limit_is_a_stratified_subset_on_a_file_grouped_by_label():
    whole = load_dataset("sst-2", "test")
    part = load_dataset("sst-2", "test", limit=500)
    share = lambda d: float(d.y.float().mean())  # noqa: E731
    assert abs(share(part) - share(whole)) <= 1 / 500 + 1e-9        # first 500 rows: 93.2 % one label
    train = load_dataset("sst-2", "train", limit=2000)
    counts = train.y.bincount().tolist()
    assert min(counts) > 900, counts                                   # first 2000 rows: 124 / 1,876
    assert "limit 2000 (stratified by label, seed 0)" in train.source
    again = load_dataset("sst-2", "train", limit=2000)
    other = load_dataset("sst-2", "train", limit=2000, subset_seed=1)
    assert torch.equal(again.x, train.x) and not torch.equal(other.x, train.x)


def test_limit_has_one_meaning_in_every_loader():
    for name, split, limit in (("mnist", "test", 300), ("ucr/JapaneseVowels", "train", 45),
                               ("sst-decoy", "test", 120)):
        whole, part = load_dataset(name, split), load_dataset(name, split, limit=limit)
        assert len(part) == limit, name
        expected = whole.y.bincount().double() * limit / len(whole)
        assert (part.y.bincount(minlength=len(expected)) - expected).abs().max() < 1, name
        assert f"limit {limit} (stratified by label, seed 0)" in part.source, name
    splits = sst_bias("decoy", limit=300)
    for ds in (splits.train, splits.dev, splits.test):
        assert abs(float(ds.y.float().mean()) - 0.5) < 0.1


def test_the_limit_subset_is_recorded_in_the_run(tmp_path):
    import json

    from explainreg.training import TrainConfig, train

    data = load_dataset("mnist", "train", limit=64, subset_seed=3)
    test = load_dataset("mnist", "test", limit=32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    train(model, None, data, test, config=TrainConfig(epochs=1, batch_size=32, progress=False), run_dir=tmp_path)
    text = json.dumps(json.loads((tmp_path / "config.json").read_text()))
    assert "limit 64 (stratified by label, seed 3)" in text and "limit 32 (stratified by label, seed 0)" in text


def test_limit_refuses_what_is_not_a_positive_count():
    from explainreg.data.datasets import stratified_subset

    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="limit must be a positive number"):
            stratified_subset(torch.tensor([0, 1, 0]), bad)
    with pytest.raises(ValueError, match="limit must be a positive number"):
        load_dataset("ucr/JapaneseVowels", "train", limit=0)


# ----------------------------------------------------------------------------------- padding never counts
def _pad_tokens(x: torch.Tensor, extra: int) -> torch.Tensor:
    return torch.cat([x, x.new_zeros(x.shape[0], extra)], 1)


def test_gradient_l1_on_tokens_is_the_same_with_more_padding():
    from explainreg.penalties import GradientL1
    from explainreg.models.text import TextLSTMClassifier
    from explainreg.training.batches import iterate_batches

    data = load_dataset("sst-2", "dev", limit=64)
    x, y, extras = next(iterate_batches(data, 16, shuffle=False))
    torch.manual_seed(0)
    model = TextLSTMClassifier(len(data.vocab), 2, embedding_dim=12, hidden_size=16).eval()
    padded = _pad_tokens(x, 20)
    assert torch.allclose(model(padded), model(x), atol=1e-6)          # the model ignores padding
    tight = GradientL1()(model, x, y, lengths=extras["lengths"])
    loose = GradientL1()(model, padded, y, lengths=extras["lengths"])
    by_idx = GradientL1()(model, padded, y)                              # padding_idx of the embedding
    assert loose.item() == pytest.approx(tight.item(), rel=1e-5)
    assert by_idx.item() == pytest.approx(tight.item(), rel=1e-5)


@pytest.mark.parametrize("name", ["double_backprop", "rrr", "consistency", "fidelity_refused"])
def test_token_penalties_are_the_same_with_more_padding(name):
    from explainreg.penalties import build_penalty
    from explainreg.models.text import TextLSTMClassifier
    from explainreg.training.batches import iterate_batches

    splits = sst_bias("decoy", limit=64)
    x, y, extras = next(iterate_batches(splits.train, 16, shuffle=False))
    torch.manual_seed(0)
    model = TextLSTMClassifier(len(splits.vocab), 2, embedding_dim=12, hidden_size=16).eval()
    if name == "fidelity_refused":                   # it scales the input: token ids cannot be
        with pytest.raises(ValueError, match="Fidelity is defined for .*not tokens"):
            build_penalty("fidelity")(model, x, y, **extras)
        return
    padded = {**extras, "mask": torch.cat([extras["mask"], extras["mask"].new_zeros(len(x), 20)], 1)}
    base = build_penalty(name)(model, x, y, **extras)
    more = build_penalty(name)(model, _pad_tokens(x, 20), y, **padded)
    assert more.item() == pytest.approx(base.item(), rel=1e-5, abs=1e-12), name


def _vowels(n: int = 24):
    data = load_dataset("ucr/JapaneseVowels", "train", limit=n)
    x, y = data.x, data.y
    real = data.extras["padding_mask"]
    assert not bool(real.all())                                          # variable-length series, padded
    return x, y, real


def _pad_series(x: torch.Tensor, real: torch.Tensor, extra: int) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.cat([x, x.new_zeros(*x.shape[:2], extra)], 2),
            torch.cat([real, real.new_zeros(real.shape[0], extra)], 1))


class _SumTime(torch.nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.sum(-1)


@pytest.mark.parametrize("name", ["gradient_l1", "smoothness", "locality", "fidelity", "consistency"])
def test_series_penalties_are_the_same_with_more_padding(name):
    from explainreg.penalties import build_penalty

    x, y, real = _vowels()
    model = _bias_free_net(x.shape[1], 9)
    penalty = build_penalty(name)
    extras = {"mask": (torch.arange(x.shape[-1]) < 5).float().expand(len(x), -1)} if name == "locality" else {}
    base = penalty(model, x, y, padding_mask=real, **extras)
    px, preal = _pad_series(x, real, 20)
    if name == "locality":
        extras = {"mask": torch.cat([extras["mask"], extras["mask"].new_zeros(len(x), 20)], 1)}
    more = penalty(model, px, y, padding_mask=preal, **extras)
    assert more.item() == pytest.approx(base.item(), rel=1e-5), name
    lengths = penalty(model, px, y, lengths=real.sum(1), **extras)
    assert lengths.item() == pytest.approx(base.item(), rel=1e-5), name


def _bias_free_net(channels: int, classes: int) -> torch.nn.Module:
    """Zero steps add nothing to the logits: the same series with more zero padding gives the same logits."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(channels, 8, 1, bias=False), torch.nn.Tanh(),
                               torch.nn.Conv1d(8, classes, 1, bias=False), _SumTime()).eval()


def test_saliency_of_padded_series_is_zero_at_padding():
    from explainreg.gradients import input_gradient

    x, y, real = _vowels()
    model = _bias_free_net(x.shape[1], 9)
    g = input_gradient(model, x, y, lengths=real.sum(1), create_graph=False)
    assert float(g.abs().sum()) > 0 and float((g * ~real[:, None]).abs().sum()) == 0.0


@pytest.mark.parametrize("name", ["morf", "lerf", "faithfulness", "complexity", "sparseness"])
def test_metrics_on_padded_series_are_the_same_with_more_padding(name):
    from explainreg.metrics import build_metric

    x, y, real = _vowels(32)
    model = _bias_free_net(x.shape[1], 9)
    px, preal = _pad_series(x, real, 20)
    assert torch.allclose(model(px), model(x), atol=1e-5)

    def attributions(inputs):                     # the raw input gradient: non-zero at padding too
        inputs = inputs.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(inputs).gather(1, y[:, None]).sum(), inputs)
        return g

    a, pa = attributions(x), attributions(px)
    assert float((pa * ~preal[:, None]).abs().sum() / pa.abs().sum()) > 0.3    # padding holds a third of |a|
    metric = build_metric(name)
    base = metric(model, x, y, a, padding_mask=real)
    more = metric(model, px, y, pa, padding_mask=preal)
    by_lengths = metric(model, px, y, pa, lengths=real.sum(1))
    assert more.value == pytest.approx(base.value, rel=1e-6, abs=1e-9), name
    assert by_lengths.value == pytest.approx(base.value, rel=1e-6, abs=1e-9), name


@pytest.mark.parametrize("name", ["pixel_flipping", "faithfulness_correlation", "region_perturbation",
                                  "masked_accuracy"])
def test_metrics_over_every_feature_refuse_padding_with_what_to_use(name):
    from explainreg.metrics import build_metric

    x, y, real = _vowels(8)
    model = _bias_free_net(x.shape[1], 9)
    with pytest.raises(ValueError, match="takes no padding_mask / lengths. On variable-length series use MoRF"):
        build_metric(name)(model, x, y, torch.rand_like(x), padding_mask=real)


def test_padding_mask_on_images_is_refused():
    from explainreg.metrics import Complexity

    with pytest.raises(ValueError, match="series batches"):
        Complexity()(None, None, None, torch.rand(2, 1, 4, 4), padding_mask=torch.ones(2, 4, dtype=torch.bool))


# ----------------------------------------------------------------------------- non-finite penalty options
@pytest.mark.parametrize("name, option", [("symmetry", {"angles": [float("nan")]}), ("symmetry", {"angles": [5, float("inf")]}),
                                          ("smoothness", {"offset": float("nan")}), ("locality", {"eps": float("inf")}),
                                          ("fidelity", {"threshold": float("nan")}),
                                          ("sgt", {"fraction": float("nan")})])
def test_non_finite_penalty_options_are_a_clear_error(name, option):
    from explainreg.penalties import PENALTIES, build_penalty

    key = next(iter(option))
    with pytest.raises(ValueError, match=f"'{key}' parameter of {PENALTIES[name].__name__} must hold finite numbers"):
        build_penalty(name, **option)


def test_symmetry_nan_angle_on_the_command_line_is_a_clear_error(tmp_path, capsys):
    from explainreg.cli import main

    code = main(["train", "--dataset", "mnist", "--penalty", "symmetry=1", "--penalty-option",
                 "symmetry.angles=[NaN]", "--epochs", "1", "--limit-train", "64", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "'angles' parameter of Symmetry must hold finite numbers" in err, err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------- bfloat16 autocast
def _decoy_batch(n: int = 128):
    from explainreg.data import decoy_mnist

    data = decoy_mnist("train", limit=n)
    return data.x, data.y, data.extras["mask"]


def test_sgt_kl_under_cpu_bfloat16_autocast_is_not_negative():
    from explainreg.models import cnn3b
    from explainreg.penalties import SaliencyGuided

    x, y, _ = _decoy_batch(256)
    for seed in range(3):                           # seed 2: −4.0e-4 against 9.6e-4 in float32
        torch.manual_seed(seed)
        model = cnn3b()
        f32 = SaliencyGuided()(model, x, y, generator=torch.Generator().manual_seed(0)).item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            r = SaliencyGuided()(model, x, y, generator=torch.Generator().manual_seed(0))
        assert r.dtype == torch.float32 and r.item() >= 0, (seed, r.item(), f32)
        assert r.item() == pytest.approx(f32, rel=0.1), seed   # the masked forward itself stays in bfloat16


@pytest.mark.parametrize("score", ["sum_log_prob", "nll", "logit"])
def test_rrr_under_cpu_bfloat16_autocast_equals_float32(score):
    from explainreg.models import MODELS
    from explainreg.penalties import RRR

    x, y, mask = _decoy_batch(256)
    torch.manual_seed(2)
    model = MODELS["cdep_decoymnist"]()
    f32 = RRR(score=score)(model, x, y, mask=mask).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        b16 = RRR(score=score)(model, x, y, mask=mask)
    assert b16.dtype == torch.float32
    assert b16.item() == pytest.approx(f32, rel=1e-5), score       # 1.5 % away (sum_log_prob) in bfloat16


@pytest.mark.parametrize("name", ["expected_gradients", "rrr_gradcam"])
def test_penalties_differentiating_their_own_gradients_under_bfloat16_autocast_equal_float32(name):
    from explainreg.models import MODELS
    from explainreg.penalties import build_penalty

    x, y, mask = _decoy_batch(128)
    torch.manual_seed(2)
    model = MODELS["cdep_decoymnist"]()
    penalty = build_penalty(name)
    f32 = penalty(model, x, y, mask=mask, generator=torch.Generator().manual_seed(0)).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        b16 = penalty(model, x, y, mask=mask, generator=torch.Generator().manual_seed(0))
    assert b16.dtype == torch.float32
    assert b16.item() == pytest.approx(f32, rel=1e-5), name          # expected gradients: 0.4 % away in bfloat16


# ------------------------------------------------------------------------- attention under double backprop
class _UserTransformer(torch.nn.Module):
    """A user's model: embedding, nn.TransformerEncoder, mean over tokens, linear head."""

    def __init__(self, vocab: int, dropout: float) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, 16, padding_idx=0)
        layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=dropout, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(16, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embedding(ids)).mean(1))


@pytest.mark.parametrize("mode", ["eval", "dropout0"])
@pytest.mark.parametrize("name", ["gradient_l1", "double_backprop", "rrr", "expected_gradients"])
def test_double_backprop_penalties_on_a_users_transformer_encoder(mode, name):
    from explainreg.objective import Objective
    from explainreg.penalties import build_penalty
    from explainreg.training.batches import iterate_batches

    splits = sst_bias("decoy", limit=48)
    x, y, extras = next(iterate_batches(splits.train, 8, shuffle=False))
    torch.manual_seed(0)
    model = _UserTransformer(len(splits.vocab), 0.1 if mode == "eval" else 0.0)
    model.train(mode != "eval")
    objective = Objective({build_penalty(name): 1.0}, seed=0)
    out = objective(model, x, y, **extras)
    out.loss.backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)


# ------------------------------------------------------------------------------ torch.func over a penalty
def test_torch_func_over_a_penalty_is_a_clear_error_naming_what_to_use():
    from torch.func import grad, vmap

    from explainreg.models import cnn3b
    from explainreg.objective import Objective
    from explainreg.penalties import GradientL1

    data = load_dataset("mnist", "test", limit=20)
    x, y = data.x[:4], data.y[:4]
    torch.manual_seed(0)
    model = cnn3b()
    params = {k: v.detach() for k, v in model.named_parameters()}

    def penalty_at(p):
        with torch.nn.utils.stateless._reparametrize_module(model, p):
            return GradientL1()(model, x, y)

    for call in (lambda: grad(penalty_at)(params),
                 lambda: vmap(lambda xi, yi: GradientL1()(model, xi[None], yi[None]))(x, y),
                 lambda: vmap(lambda xi, yi: Objective({GradientL1(): 1.0})(model, xi[None], yi[None]).loss)(x, y)):
        with pytest.raises(RuntimeError, match=r"torch\.func.*Use torch\.autograd instead.*one-sample batches"):
            call()
    r = GradientL1()(model, x, y)                       # what the message advises works
    (g,) = torch.autograd.grad(r, [next(model.parameters())])
    assert bool(torch.isfinite(g).all())


# --------------------------------------------------------------------------------------- penalty registry
def test_registry_refuses_a_duplicate_name_and_builds_every_name_it_lists():
    from explainreg.penalties import PENALTIES, GradientL1, build_penalty
    from explainreg.penalties.base import Penalty

    before = dict(PENALTIES)
    try:
        with pytest.raises(ValueError, match="'smoothness' is already registered to .*Smoothness"):
            @PENALTIES.register(aliases=("smoothness",))
            class MySmooth(Penalty):
                name = "my_smooth"

        assert PENALTIES["smoothness"] is before["smoothness"] and "my_smooth" not in PENALTIES

        @PENALTIES.register(aliases=("My-Alias",))
        class MyPenalty(Penalty):
            name = "my-penalty"
            needs_input_grad = False

            def compute(self, ctx):
                return ctx.logits.sum() * 0

        for name in ("my-penalty", "my_penalty", "MY-ALIAS", "my_alias"):
            assert isinstance(build_penalty(name), MyPenalty), name
        PENALTIES.register()(GradientL1)                    # the same class again (a re-import) is fine
        for key in PENALTIES.names(with_aliases=True):      # every listed name and alias builds
            assert type(build_penalty(key)) is PENALTIES[key], key
        assert PENALTIES.describe()["gradient_l1"].startswith("R = mean |g|")   # one line from the docstring
    finally:
        for name in set(PENALTIES) - set(before):
            PENALTIES.pop(name)
    assert list(PENALTIES) == list(before)


def test_attributions_of_padded_series_are_zero_at_the_padding_and_unchanged_elsewhere():
    """attribute(..., lengths=) on JapaneseVowels (variable length, zero-padded): every method gives 0
    on the padded steps and the same map on the real steps as without the argument."""
    from explainreg.attribution import attribute
    from explainreg.data.ucr import load_ucr

    data = load_ucr("JapaneseVowels", "test", limit=24)
    x = data.x[:8]
    lengths = (x.abs().sum(1) > 0).long().cumsum(1).argmax(1) + 1
    assert int(lengths.min()) < x.shape[-1], "the test needs padded series"
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv1d(x.shape[1], 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(8, 9))
    y = data.y[:8]
    for method in ("saliency", "ig", "random"):
        plain = attribute(model, x, y, method)
        padded = attribute(model, x, y, method, lengths=lengths)
        real = torch.arange(x.shape[-1])[None, :] < lengths[:, None]
        assert float(plain.abs().sum(1)[~real].sum()) > 0 or method == "ig"
        assert float(padded.abs().sum(1)[~real].sum()) == 0.0
        torch.testing.assert_close(padded.transpose(1, 2)[real], plain.transpose(1, 2)[real])
    with pytest.raises(ValueError, match="padded series"):
        image_model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        attribute(image_model, torch.zeros(2, 1, 4, 4), None, "saliency", lengths=torch.tensor([1, 2]))


@pytest.mark.parametrize("name", ["decoy-mnist", "color-mnist"])
def test_limit_on_the_shortcut_sets_is_the_stratified_subset_of_the_split(name):
    """decoy-mnist / color-mnist with limit: the rows stratified_subset picks from the split's labels,
    recorded in the source, and every class present in its share."""
    from explainreg.data.datasets import stratified_subset

    full = load_dataset(name, "test")
    part = load_dataset(name, "test", limit=200)
    keep = stratified_subset(full.y, 200)
    torch.testing.assert_close(part.x, full.x[keep])
    assert part.y.equal(full.y[keep])
    assert "limit 200 (stratified by label, seed 0)" in part.source
    expected = torch.bincount(full.y, minlength=10).double() / len(full.y) * 200
    assert (torch.bincount(part.y, minlength=10).double() - expected).abs().max() <= 1

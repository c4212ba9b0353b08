"""Token attributions (``attribute`` on token ids) and ERASER comprehensiveness / sufficiency (documentation:
guide/text) on real SST sentences."""
from __future__ import annotations

import pytest
import torch

from explainreg.data.text import sst_bias
from explainreg.inputs import token_scores
from explainreg.attribution import attribute
from explainreg.metrics import Comprehensiveness, Sufficiency
from explainreg.metrics.functional.text import eraser
from explainreg.gradients import forward_with_gradient
from explainreg.models.text import TextLSTMClassifier
from explainreg.training.batches import iterate_batches

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def batch():
    splits = sst_bias("decoy", limit=60)
    torch.manual_seed(0)
    model = TextLSTMClassifier(len(splits.vocab), 2, embedding_dim=10, hidden_size=12).eval()
    x, y, extras = next(iterate_batches(splits.test, 12, shuffle=False))
    return model, x, y, extras


def test_gradient_attribution_is_gradient_times_embedding(batch):
    model, x, y, _ = batch
    e, _, g = forward_with_gradient(model, x, y)
    torch.testing.assert_close(attribute(model, x, y, "input_x_gradient"),
                               token_scores(g, e.detach(), padding=x != 0))


def test_integrated_gradients_complete(batch):
    model, x, y, _ = batch
    s = attribute(model, x, y, "integrated_gradients", n_steps=64, integration="riemann_middle")
    with torch.no_grad():
        full = model(x).gather(1, y[:, None]).squeeze(1)
        emb = model.embedding
        zero = emb.weight.new_zeros(*x.shape, emb.embedding_dim)
        from explainreg.inputs import replaced_output

        with replaced_output(emb, zero):
            base = model(x).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(s.sum(1), full - base, atol=2e-3, rtol=2e-2)
    for method in ("smoothgrad", "gradient_shap", "saliency", "random"):
        assert (attribute(model, x, y, method)[x == 0] == 0).all()


def test_eraser_matches_a_per_sentence_loop(batch):
    model, x, y, _ = batch
    scores = attribute(model, x, y, "input_x_gradient")
    got = eraser(model, x, y, scores, percents=(10, 50))
    for b in range(len(x)):
        n = int((x[b] != 0).sum())
        tokens = x[b, :n].tolist()
        order = sorted(range(n), key=lambda t: -abs(float(scores[b, t])))
        p = lambda toks: float(torch.softmax(model(torch.tensor([toks])), 1)[0, y[b]])  # noqa: E731
        comp, suff = [], []
        for pct in (10, 50):
            k = max(1, int(n * pct / 100))
            top = set(order[:k])
            drop = set(order[:min(k, n - 1)])
            comp.append(p(tokens) - p([w for t, w in enumerate(tokens) if t not in drop]) if drop else 0.0)
            suff.append(p(tokens) - p([w for t, w in enumerate(tokens) if t in top]))
        assert float(got["comprehensiveness"][b]) == pytest.approx(sum(comp) / 2, abs=1e-5)
        assert float(got["sufficiency"][b]) == pytest.approx(sum(suff) / 2, abs=1e-5)


def test_eraser_bad_input(batch):
    model, x, y, _ = batch
    with pytest.raises(ValueError, match="scores must have the ids' shape"):
        eraser(model, x, y, torch.zeros(len(x), 3))
    with pytest.raises(ValueError, match="empty sentences"):
        eraser(model, torch.zeros(2, 4, dtype=torch.long), y[:2], torch.zeros(2, 4))


def test_token_deletion_curve_matches_a_per_sentence_loop(batch):
    from explainreg.metrics.functional.text import token_deletion_curve

    model, x, y, _ = batch
    scores = attribute(model, x, y, "input_x_gradient")
    fractions = (0.0, 0.3, 0.6)
    for order in ("morf", "lerf"):
        got = token_deletion_curve(model, x, y, scores, fractions=fractions, order=order)
        accuracy, ratio = [], []
        for f in fractions:
            correct, ratios = 0, []
            for b in range(len(x)):
                n = int((x[b] != 0).sum())
                tokens = x[b, :n].tolist()
                ranked = sorted(range(n), key=lambda t: -abs(float(scores[b, t])) if order == "morf"
                                else abs(float(scores[b, t])))
                gone = set(ranked[:min(int(n * f), n - 1)])
                with torch.no_grad():
                    p = torch.softmax(model(torch.tensor([tokens])), 1)[0]
                    q = torch.softmax(model(torch.tensor([[w for t, w in enumerate(tokens) if t not in gone]])), 1)[0]
                correct += int(q.argmax()) == int(y[b])
                ratios.append(float(q[p.argmax()] / p.max()))
            accuracy.append(correct / len(x))
            ratio.append(sum(ratios) / len(ratios))
        assert got["accuracy"].tolist() == pytest.approx(accuracy)
        assert got["ratio"].tolist() == pytest.approx(ratio, abs=1e-6)
        assert float(got["ratio"][0]) == pytest.approx(1.0)


def test_window_and_layer_methods_refuse_token_ids(batch):
    model, x, y, _ = batch
    for method in ("occlusion", "gradcam", "deeplift"):
        with pytest.raises(ValueError, match="not defined on token ids"):
            attribute(model, x, y, method)


def test_keyed_token_draws_do_not_depend_on_batching(batch):
    model, x, y, _ = batch
    for method in ("smoothgrad", "gradient_shap", "random"):
        whole = attribute(model, x, y, method, seed=4, nt_samples=4) if method == "smoothgrad" else \
            attribute(model, x, y, method, seed=4)
        opts = {"nt_samples": 4} if method == "smoothgrad" else {}
        parts = torch.cat([attribute(model, x[:5], y[:5], method, seed=4, **opts),
                           attribute(model, x[5:], y[5:], method, seed=4, index=torch.arange(5, len(x)), **opts)])
        torch.testing.assert_close(whole, parts)


#: reference ERASER values (percents 1, 5, 10, 20, 50) of the fixture's 12 sentences, with gradient × input
#: and integrated gradients (16 midpoints from the zero embedding)
REFERENCE = {"gradient": {"comprehensiveness": [-0.011236829, -0.01392178, -0.009092653, 0.003210974, -0.007543892, -0.00245992, -0.035603445, -0.005243552, 0.002440536, 0.001094848, -0.008330208, -0.020828355],
             "sufficiency": [-0.014253533, -0.008086383, 0.001761734, 0.005082476, -0.018014859, -0.005949831, -0.000141037, -0.014521753, -0.009122401, -0.008773136, -0.011302471, -0.001924634]}, "integrated_gradients": {"comprehensiveness": [-0.011236829, -0.010947734, -0.006078911, 0.008178878, -0.007543892, -0.009740978, -0.002314258, -0.007222748, 0.002440536, 0.000325859, -0.008330208, 7.9471e-05],
             "sufficiency": [-0.014253533, -0.011231571, -0.002022302, 0.000638759, -0.018014859, -0.00444001, -0.033814363, -0.0099828, -0.009122401, -0.014186174, -0.011302471, -0.029030854]}}


@pytest.mark.parametrize("column", ["gradient", "integrated_gradients"])
def test_eraser_values_on_tokens(batch, column):
    model, x, y, _ = batch
    method, options = {"gradient": ("input_x_gradient", {}),
                       "integrated_gradients": ("integrated_gradients",
                                                {"n_steps": 16, "integration": "riemann_middle"})}[column]
    got = eraser(model, x, y, attribute(model, x, y, method, **options))
    for part in ("comprehensiveness", "sufficiency"):
        assert got[part].tolist() == pytest.approx(REFERENCE[column][part], abs=1e-6)


def test_eraser_metrics_accumulate_per_batch(batch):
    model, x, y, _ = batch
    s = attribute(model, x, y, "input_x_gradient")
    full = eraser(model, x, y, s)
    for cls in (Comprehensiveness, Sufficiency):
        metric = cls()
        first = metric(model, x[:5], y[:5], s[:5])
        assert first.value == pytest.approx(float(full[cls.name][:5].mean()), abs=1e-7)
        metric(model, x[5:], y[5:], s[5:])
        assert metric.compute().value == pytest.approx(float(full[cls.name].mean()), abs=1e-7)
        assert metric.compute().n_images == len(x) and cls.layouts == ("tokens",)

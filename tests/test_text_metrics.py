"""Token attributions and ERASER comprehensiveness / sufficiency (documentation: guide/text) on real SST sentences."""
from __future__ import annotations

import pytest
import torch

from explainreg.data.text import sst_bias
from explainreg.inputs import token_scores
from explainreg.metrics.text import eraser, token_attributions
from explainreg.saliency import forward_with_saliency
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
    e, _, g = forward_with_saliency(model, x, y)
    torch.testing.assert_close(token_attributions(model, x, y, "gradient"),
                               token_scores(g, e.detach(), padding=x != 0))


def test_integrated_gradients_complete(batch):
    model, x, y, _ = batch
    s = token_attributions(model, x, y, "integrated_gradients", steps=64)
    with torch.no_grad():
        full = model(x).gather(1, y[:, None]).squeeze(1)
        emb = model.embedding
        zero = emb.weight.new_zeros(*x.shape, emb.embedding_dim)
        from explainreg.inputs import replaced_output

        with replaced_output(emb, zero):
            base = model(x).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(s.sum(1), full - base, atol=2e-3, rtol=2e-2)
    assert (token_attributions(model, x, y, "smoothgrad")[x == 0] == 0).all()


def test_eraser_matches_a_per_sentence_loop(batch):
    model, x, y, _ = batch
    scores = token_attributions(model, x, y, "gradient")
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
    from explainreg.metrics.text import token_deletion_curve

    model, x, y, _ = batch
    scores = token_attributions(model, x, y, "gradient")
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


def test_image_attributions_refuse_token_ids(batch):
    from explainreg.attribution import attribute

    model, x, y, _ = batch
    for method in ("occlusion", "saliency"):
        with pytest.raises(TypeError, match="token_attributions"):
            attribute(model, x, y, method)

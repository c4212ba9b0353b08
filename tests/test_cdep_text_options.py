"""CDEP on tokens with the seed's settings: detached word vectors, the decoy-and-next-word window,
the bias counted only at the decoy and the output bias left out, against the seed's text CD
(``cd_text_irreg_scores``) written out step by step on real SST decoy sentences."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explainreg.data.text import sst_bias
from explainreg.decomposition import decompose_tokens
from explainreg.penalties import CDEP
from explainreg.penalties.text import SEED_TEXT, cdep_text, widen_window
from explainreg.models.text import TextLSTMClassifier
from explainreg.training.batches import iterate_batches


def three(a, b, c, fn):
    return (0.5 * (fn(a + c) - fn(c) + fn(a + b + c) - fn(b + c)),
            0.5 * (fn(b + c) - fn(c) + fn(a + b + c) - fn(a + c)), fn(c))


def tanh_two(a, b):
    return 0.5 * (torch.tanh(a) + (torch.tanh(a + b) - torch.tanh(b))), \
        0.5 * (torch.tanh(b) + (torch.tanh(a + b) - torch.tanh(a)))


def seed_text_cd(model, ids, inputs_at, bias_at, output_bias):
    """The seed's cd_text_irreg_scores for one unpadded sentence (ids: T): word t's input goes to rel
    for t in ``inputs_at``, the step's bias × bias for t in ``bias_at``; the head reads the last
    state, its bias split in proportion to |r|, |s| (``output_bias``) or left out (the seed)."""
    lstm = model.lstm
    W_ii, W_if, W_ig, W_io = torch.chunk(lstm.weight_ih_l0, 4, 0)
    W_hi, W_hf, W_hg, W_ho = torch.chunk(lstm.weight_hh_l0, 4, 0)
    b_i, b_f, b_g, b_o = torch.chunk(lstm.bias_ih_l0 + lstm.bias_hh_l0, 4)
    vecs = model.embedding(ids).data
    H = lstm.hidden_size
    h_rel, h_irrel, prev_rel, prev_irrel = (torch.zeros(H) for _ in range(4))
    for t in range(len(ids)):
        rel_i, rel_g, rel_f = W_hi @ h_rel, W_hg @ h_rel, W_hf @ h_rel
        irrel_i, irrel_g, irrel_f = W_hi @ h_irrel, W_hg @ h_irrel, W_hf @ h_irrel
        if t in inputs_at:
            rel_i, rel_g, rel_f = rel_i + W_ii @ vecs[t], rel_g + W_ig @ vecs[t], rel_f + W_if @ vecs[t]
        else:
            irrel_i, irrel_g, irrel_f = irrel_i + W_ii @ vecs[t], irrel_g + W_ig @ vecs[t], irrel_f + W_if @ vecs[t]
        rc_i, ic_i, bc_i = three(rel_i, irrel_i, b_i, torch.sigmoid)
        rc_g, ic_g, bc_g = three(rel_g, irrel_g, b_g, torch.tanh)
        relevant = rc_i * (rc_g + bc_g) + bc_i * rc_g
        irrelevant = ic_i * (rc_g + ic_g + bc_g) + (rc_i + bc_i) * ic_g
        if t in bias_at:
            relevant = relevant + bc_i * bc_g
        else:
            irrelevant = irrelevant + bc_i * bc_g
        if t > 0:
            rc_f, ic_f, bc_f = three(rel_f, irrel_f, b_f, torch.sigmoid)
            relevant = relevant + (rc_f + bc_f) * prev_rel
            irrelevant = irrelevant + (rc_f + ic_f + bc_f) * prev_irrel + ic_f * prev_rel
        o = torch.sigmoid(W_io @ vecs[t] + W_ho @ (h_rel + h_irrel) + b_o)
        new_rel, new_irrel = tanh_two(relevant, irrelevant)
        h_rel, h_irrel = o * new_rel, o * new_irrel
        prev_rel, prev_irrel = relevant, irrelevant
    r, s = model.head.weight @ h_rel, model.head.weight @ h_irrel
    if not output_bias:
        return r, s
    b = model.head.bias
    return r + b * r.abs() / (r.abs() + s.abs() + 1e-19), s + b * s.abs() / (r.abs() + s.abs() + 1e-19)


@pytest.fixture(scope="module")
def decoy():
    """Real SST decoy sentences: a batch of 16 training sentences (10 with the decoy word marked) and a small LSTM."""
    splits = sst_bias("decoy", limit=200)
    torch.manual_seed(0)
    model = TextLSTMClassifier(len(splits.vocab), 2, embedding_dim=12, hidden_size=16).eval()
    x, y, extras = next(iterate_batches(splits.train, 16, shuffle=False))
    mask = extras["mask"].clone()
    mask[::3] = 0  # sentences without the decoy word: left out of the penalty's mean
    assert int((mask.sum(1) > 0).sum()) == 10
    return model, x, y, {**extras, "mask": mask}


# (window_after, bias_at, output_bias) -> (words whose input is relevant, steps whose bias is) from the decoy s
SWITCHES = [(1, "mask", False, (0, 1), (0,)),  # the seed: stop = start + 1, bias at start only, W_out·h
            (1, "window", True, (0, 1), (0, 1)),
            (0, "window", True, (0,), (0,)),  # the defaults
            (0, "mask", False, (0,), (0,))]


@pytest.mark.parametrize("after,bias_at,output_bias,inputs,biases", SWITCHES)
def test_window_and_bias_switches_equal_the_seeds_text_cd_by_hand(decoy, after, bias_at, output_bias, inputs, biases):
    model, x, y, extras = decoy
    mask, lengths = extras["mask"], extras["lengths"]
    terms = []
    with torch.no_grad():
        for b in (mask.sum(1) > 0).nonzero().flatten().tolist():
            n, s = int(lengths[b]), int(mask[b].argmax())
            rel_ref, irrel_ref = seed_text_cd(model, x[b, :n], {s + k for k in inputs}, {s + k for k in biases},
                                              output_bias)
            rel, irrel = decompose_tokens(model, x[b:b + 1, :n], widen_window(mask[b:b + 1, :n], after),
                                          bias_mask=mask[b:b + 1, :n] if bias_at == "mask" else None,
                                          output_bias=output_bias)
            torch.testing.assert_close(rel[0], rel_ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(irrel[0], irrel_ref, atol=1e-5, rtol=1e-5)
            terms.append(-F.log_softmax(torch.stack([rel_ref[y[b]], irrel_ref[y[b]]]), 0)[1])
        # the penalty on the padded batch: the seed's −log softmax([rel_y, irrel_y])[irrel] over the
        # sentences with the decoy
        value = cdep_text(model, x, y, mask, lengths=lengths, window_after=after, bias_at=bias_at,
                          output_bias=output_bias)
    torch.testing.assert_close(value, torch.stack(terms).mean(), atol=1e-5, rtol=1e-5)


def test_the_seed_settings_are_these_switches(decoy):
    model, x, y, extras = decoy
    seed = CDEP(**SEED_TEXT)(model, x, y, **extras)
    by_hand = cdep_text(model, x, y, extras["mask"], lengths=extras["lengths"], window_after=1, bias_at="mask",
                        output_bias=False)
    assert float(seed.detach()) == float(by_hand.detach())
    assert CDEP(**SEED_TEXT).settings()["window_after"] == 1 and "detach_embeddings" not in CDEP().settings()


def test_detached_embeddings_send_no_gradient_to_the_embedding(decoy):
    model, x, y, extras = decoy
    params = dict(model.named_parameters())
    grads = {}
    for detach in (True, False):
        value = CDEP(detach_embeddings=detach)(model, x, y, **extras)
        grads[detach] = dict(zip(params, torch.autograd.grad(value, list(params.values()), allow_unused=True)))
    detached, attached = grads[True], grads[False]
    assert detached["embedding.weight"] is None or float(detached["embedding.weight"].abs().max()) == 0
    assert float(attached["embedding.weight"].abs().max()) > 0
    # the word vectors' values are the same: the gradients of the other weights do not change
    for name in params:
        if name != "embedding.weight":
            torch.testing.assert_close(detached[name], attached[name])
            assert float(detached[name].abs().max()) > 0


def test_bad_text_options_are_named(decoy):
    model, x, y, extras = decoy
    with pytest.raises(ValueError, match="bias_at"):
        CDEP(bias_at="decoy")
    with pytest.raises(ValueError, match="window_after must be a whole number"):
        CDEP(window_after=-1)
    with pytest.raises(ValueError, match="output_bias=False leaves out the bias of the nn.Linear"):
        decompose_tokens(torch.nn.Sequential(model.embedding, torch.nn.Flatten(), torch.nn.Linear(12 * x.shape[1], 2),
                                             torch.nn.ReLU()), x, extras["mask"], output_bias=False)

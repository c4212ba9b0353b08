"""Contextual decomposition of LSTM / GRU text models (documentation: methods/decomposition) against a plainly written,
per-sentence, per-time-step implementation of the rules, on real SST sentences (random weights)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from explainreg.data.text import Vocabulary, binary_sst, read_sst
from explainreg.decomposition import UnsupportedLayerError, decompose
from explainreg.models.text import TextCNNClassifier, TextLSTMClassifier

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sst_batch():
    """Eight real SST-2 dev sentences (ids right-padded with 0), their labels and a vocabulary."""
    sentences = binary_sst(read_sst("dev"))[:8]
    vocab = Vocabulary.build(sentences)
    lengths = torch.tensor([len(s.tokens) for s in sentences])
    ids = torch.zeros(len(sentences), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(sentences):
        ids[i, : len(s.tokens)] = torch.tensor(vocab.encode(s.tokens))
    y = torch.tensor([s.label for s in sentences])
    return ids, y, lengths, vocab


def sig(v):
    return 1 / (1 + math.exp(-v))


def three(a, b, c, phi):
    """Shares of φ(a+b+c), written out per scalar."""
    return (0.5 * (phi(a + c) - phi(c) + phi(a + b + c) - phi(b + c)),
            0.5 * (phi(b + c) - phi(c) + phi(a + b + c) - phi(a + c)), phi(c))


def reference_lstm(lstm: nn.LSTM, rel, irrel, mask):
    """Per sentence, per direction, per time step, per hidden unit: Murdoch's rules written term by term.
    rel, irrel: B×T×I lists-of-lists (float), mask B×T; returns B×T×(D·H) rel and irrel."""
    B, T = len(rel), len(rel[0])
    H, D = lstm.hidden_size, 2 if lstm.bidirectional else 1
    for layer in range(lstm.num_layers):
        out_r = [[[0.0] * (D * H) for _ in range(T)] for _ in range(B)]
        out_i = [[[0.0] * (D * H) for _ in range(T)] for _ in range(B)]
        for direction in range(D):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            wi = getattr(lstm, "weight_ih" + sfx).tolist()
            wh = getattr(lstm, "weight_hh" + sfx).tolist()
            bias = (getattr(lstm, "bias_ih" + sfx) + getattr(lstm, "bias_hh" + sfx)).tolist()
            for b in range(B):
                hr, hi, cr, ci = [0.0] * H, [0.0] * H, [0.0] * H, [0.0] * H
                for t in (range(T) if direction == 0 else range(T - 1, -1, -1)):
                    xr, xi = rel[b][t], irrel[b][t]
                    pr = [sum(wi[g][k] * xr[k] for k in range(len(xr))) + sum(wh[g][k] * hr[k] for k in range(H))
                          for g in range(4 * H)]
                    pi = [sum(wi[g][k] * xi[k] for k in range(len(xi))) + sum(wh[g][k] * hi[k] for k in range(H))
                          for g in range(4 * H)]
                    new_hr, new_hi, new_cr, new_ci = [0.0] * H, [0.0] * H, [0.0] * H, [0.0] * H
                    for u in range(H):
                        ri, ii, bi = three(pr[u], pi[u], bias[u], sig)
                        rf, if_, bf = three(pr[H + u], pi[H + u], bias[H + u], sig)
                        rg, ig, bg = three(pr[2 * H + u], pi[2 * H + u], bias[2 * H + u], math.tanh)
                        o = sig(pr[3 * H + u] + pi[3 * H + u] + bias[3 * H + u])
                        c_rel = ri * rg + ri * bg + bi * rg + rf * cr[u] + bf * cr[u]
                        c_irrel = (ii * rg + ii * ig + ii * bg + ri * ig + bi * ig
                                   + rf * ci[u] + if_ * ci[u] + bf * ci[u] + if_ * cr[u])
                        m = mask[b][t]
                        c_rel += m * bi * bg
                        c_irrel += (1 - m) * bi * bg
                        new_cr[u], new_ci[u] = c_rel, c_irrel
                        tr = 0.5 * (math.tanh(c_rel) + math.tanh(c_rel + c_irrel) - math.tanh(c_irrel))
                        ti = 0.5 * (math.tanh(c_irrel) + math.tanh(c_rel + c_irrel) - math.tanh(c_rel))
                        new_hr[u], new_hi[u] = o * tr, o * ti
                    hr, hi, cr, ci = new_hr, new_hi, new_cr, new_ci
                    out_r[b][t][direction * H:(direction + 1) * H] = hr
                    out_i[b][t][direction * H:(direction + 1) * H] = hi
        rel, irrel = out_r, out_i
    return rel, irrel


def reference_gru(gru: nn.GRU, rel, irrel, mask):
    """Per scalar GRU rules: r, z by three-part shares; n = tanh(x_n + b_in + r·(W_hn h + b_hn)) with the
    product expanded term by term; h' = (1 − z)·n + z·h likewise (one layer, one direction)."""
    B, T, H = len(rel), len(rel[0]), gru.hidden_size
    wi, wh = gru.weight_ih_l0.tolist(), gru.weight_hh_l0.tolist()
    bi, bh = gru.bias_ih_l0.tolist(), gru.bias_hh_l0.tolist()
    out_r = [[[0.0] * H for _ in range(T)] for _ in range(B)]
    out_i = [[[0.0] * H for _ in range(T)] for _ in range(B)]
    for b in range(B):
        hr, hi = [0.0] * H, [0.0] * H
        for t in range(T):
            xr, xi = rel[b][t], irrel[b][t]
            dot = lambda w, v, g: sum(w[g][k] * v[k] for k in range(len(v)))  # noqa: E731
            nhr, nhi = [0.0] * H, [0.0] * H
            for u in range(H):
                rr, ri, rb = three(dot(wi, xr, u) + dot(wh, hr, u), dot(wi, xi, u) + dot(wh, hi, u), bi[u] + bh[u], sig)
                zr, zi, zb = three(dot(wi, xr, H + u) + dot(wh, hr, H + u), dot(wi, xi, H + u) + dot(wh, hi, H + u),
                                   bi[H + u] + bh[H + u], sig)
                ur, ui, ub = dot(wh, hr, 2 * H + u), dot(wh, hi, 2 * H + u), bh[2 * H + u]
                a_rel = dot(wi, xr, 2 * H + u) + rr * ur + rr * ub + rb * ur
                a_irrel = dot(wi, xi, 2 * H + u) + ri * ur + ri * ui + ri * ub + rr * ui + rb * ui
                a_bias = bi[2 * H + u] + rb * ub
                nr, ni, nb = three(a_rel, a_irrel, a_bias, math.tanh)
                qr, qi, qb = -zr, -zi, 1 - zb
                m = mask[b][t]
                h_rel = qr * nr + qr * nb + qb * nr + zr * hr[u] + zb * hr[u] + m * qb * nb
                h_irrel = (qi * nr + qi * ni + qi * nb + qr * ni + qb * ni
                           + zr * hi[u] + zi * hi[u] + zb * hi[u] + zi * hr[u] + (1 - m) * qb * nb)
                nhr[u], nhi[u] = h_rel, h_irrel
            hr, hi = nhr, nhi
            out_r[b][t], out_i[b][t] = hr, hi
    return out_r, out_i


def bias_split(r, s, b, eps=1e-19):
    return r + b * r.abs() / (r.abs() + s.abs() + eps), s + b * (s.abs() + eps) / (r.abs() + s.abs() + eps)


def reference_classifier(model: TextLSTMClassifier, ids, mask):
    """The TextLSTMClassifier's CD from the per-step reference: embedding split, LSTM, last state, head."""
    real = (ids != 0).double()
    m = mask.double() * real
    e = model.embedding(ids).double()
    rel = (m[..., None] * e).tolist()
    irrel = ((1 - m[..., None]) * e).tolist()
    out_r, out_i = reference_lstm(model.lstm, rel, irrel, m.tolist())
    out_r, out_i = torch.tensor(out_r, dtype=torch.float64), torch.tensor(out_i, dtype=torch.float64)
    H = model.hidden_size
    last = (ids != 0).sum(1) - 1
    rows = torch.arange(len(ids))
    hr, hi = out_r[rows, last, :H], out_i[rows, last, :H]
    if model.bidirectional:
        hr, hi = torch.cat([hr, out_r[:, 0, H:]], 1), torch.cat([hi, out_i[:, 0, H:]], 1)
    w, b = model.head.weight.double(), model.head.bias.double()
    return bias_split(hr @ w.T, hi @ w.T, b)


SHAPES = [dict(num_layers=1, bidirectional=False), dict(num_layers=2, bidirectional=False),
          dict(num_layers=1, bidirectional=True), dict(num_layers=2, bidirectional=True)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s['num_layers']}layer{'-bi' if s['bidirectional'] else ''}")
def test_lstm_cd_matches_per_step_reference(sst_batch, shape):
    ids, _, _, vocab = sst_batch
    ids = ids[:3, :12].clone()
    ids[1, 9:] = 0  # a shorter sentence: padding after it
    torch.manual_seed(1)
    model = TextLSTMClassifier(len(vocab), 3, embedding_dim=5, hidden_size=4, **shape).double().eval()
    mask = torch.zeros(ids.shape)
    mask[:, 2] = 1
    mask[0, 5] = 1
    rel, irrel = decompose(model, ids, mask)
    ref_rel, ref_irrel = reference_classifier(model, ids, mask)
    torch.testing.assert_close(rel, ref_rel, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(irrel, ref_irrel, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s['num_layers']}layer{'-bi' if s['bidirectional'] else ''}")
def test_lstm_cd_is_exact_float32(sst_batch, shape):
    ids, _, _, vocab = sst_batch
    torch.manual_seed(2)
    model = TextLSTMClassifier(len(vocab), 2, embedding_dim=16, hidden_size=32, **shape).eval()
    mask = torch.zeros(ids.shape)
    mask[:, 3:6] = 1
    logits = model(ids)
    rel, irrel = decompose(model, ids, mask)
    assert (rel + irrel - logits).abs().max() <= 1e-5
    # float32 against float64: the same weights, rel within 1e-4 of the logit scale
    model64 = TextLSTMClassifier(len(vocab), 2, embedding_dim=16, hidden_size=32, **shape).double().eval()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    rel64, _ = decompose(model64, ids, mask)
    assert (rel.double() - rel64).abs().max() <= 1e-4 * logits.abs().max()
    # all-ones mask on unpadded sentences: nothing is irrelevant
    full = ids[:, :8].clone()
    full[full == 0] = 2
    rel1, irrel1 = decompose(model, full, torch.ones(full.shape))
    scale = model(full).detach().abs().max()
    assert irrel1.abs().max() <= 1e-5 * scale
    torch.testing.assert_close(rel1, model(full).detach(), atol=1e-5 * float(scale), rtol=0)


def test_lstm_not_batch_first_and_its_final_state():
    class TimeMajor(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(20, 6, padding_idx=0)
            self.lstm = nn.LSTM(6, 5, num_layers=2, bidirectional=True)  # T×B×E
            self.head = nn.Linear(5, 2)

        def forward(self, ids):
            _, (h, _) = self.lstm(self.embedding(ids).transpose(0, 1))
            return self.head(h[-1])  # the last layer's backward direction

    torch.manual_seed(3)
    model = TimeMajor().double().eval()
    ids = torch.randint(1, 20, (4, 7))
    mask = torch.zeros(4, 7)
    mask[:, 0] = 1
    rel, irrel = decompose(model, ids, mask)
    torch.testing.assert_close(rel + irrel, model(ids), atol=1e-12, rtol=0)
    rel1, irrel1 = decompose(model, ids, torch.ones(4, 7))
    assert irrel1.abs().max() <= 1e-12


def test_gru_cd_matches_per_step_reference_and_is_exact(sst_batch):
    class GRUNet(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.embedding = nn.Embedding(n, 5, padding_idx=0)
            self.gru = nn.GRU(5, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, ids):
            out, _ = self.gru(self.embedding(ids))
            return self.head(out.mean(1))

    ids, _, _, vocab = sst_batch
    ids = ids[:2, :9]
    torch.manual_seed(4)
    model = GRUNet(len(vocab)).double().eval()
    mask = torch.zeros(ids.shape)
    mask[:, 1] = 1
    rel, irrel = decompose(model, ids, mask)
    torch.testing.assert_close(rel + irrel, model(ids), atol=1e-12, rtol=0)
    e = model.embedding(ids).double()
    m = mask.double() * (ids != 0).double()
    out_r, out_i = reference_gru(model.gru, (m[..., None] * e).tolist(), ((1 - m[..., None]) * e).tolist(), m.tolist())
    hr = torch.tensor(out_r, dtype=torch.float64).mean(1)
    hi = torch.tensor(out_i, dtype=torch.float64).mean(1)
    ref_rel, ref_irrel = bias_split(hr @ model.head.weight.T, hi @ model.head.weight.T, model.head.bias)
    torch.testing.assert_close(rel, ref_rel, atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(irrel, ref_irrel, atol=1e-10, rtol=1e-9)
    full = ids.clone()
    full[full == 0] = 3
    _, irrel1 = decompose(model, full, torch.ones(full.shape))
    assert irrel1.abs().max() <= 1e-12


def test_cnn_max_over_time_and_layer_norm_gelu_are_exact(sst_batch):
    ids, _, _, vocab = sst_batch
    torch.manual_seed(5)
    cnn = TextCNNClassifier(len(vocab), 2, embedding_dim=8, channels=6).eval()
    mask = torch.zeros(ids.shape)
    mask[:, :3] = 1
    rel, irrel = decompose(cnn, ids, mask)
    assert (rel + irrel - cnn(ids)).abs().max() <= 1e-5

    class NormNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(len(vocab), 8, padding_idx=0)
            self.norm = nn.LayerNorm(8)
            self.act = nn.GELU()
            self.head = nn.Linear(8, 2)

        def forward(self, ids):
            return self.head(self.act(self.norm(self.embedding(ids))).permute(0, 2, 1).mean(2))

    net = NormNet().double().eval()
    rel, irrel = decompose(net, ids, mask)
    torch.testing.assert_close(rel + irrel, net(ids), atol=1e-12, rtol=0)


def test_cd_bad_token_inputs(sst_batch):
    ids, _, _, vocab = sst_batch
    model = TextLSTMClassifier(len(vocab), 2, embedding_dim=4, hidden_size=3).eval()
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, " + str(len(vocab) - 1)):
        decompose(model, ids + len(vocab), torch.ones(ids.shape))
    with pytest.raises(ValueError, match="does not match the token ids"):
        decompose(model, ids, torch.ones(ids.shape[0], ids.shape[1] + 1))
    with pytest.raises(ValueError, match="empty sentences"):
        decompose(model, torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 5))
    with pytest.raises(UnsupportedLayerError, match="no nn.Embedding"):
        decompose(nn.Sequential(nn.Linear(5, 2)), ids[:, :5], torch.ones(ids.shape[0], 5))
    with pytest.raises(UnsupportedLayerError, match=r"no rule for RNN .*use nn.LSTM or nn.GRU"):
        class Elman(nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding, self.rnn, self.head = nn.Embedding(50, 4), nn.RNN(4, 3, batch_first=True), nn.Linear(3, 2)

            def forward(self, ids):
                return self.head(self.rnn(self.embedding(ids))[0][:, -1])

        decompose(Elman(), torch.randint(0, 50, (2, 4)), torch.ones(2, 4))


def test_lstm_on_float_series_uses_the_input_share_of_each_step():
    """A dense B×T×F input (a series, no embedding) through an LSTM: exact, and an all-ones mask
    leaves nothing irrelevant (the bias × bias share follows each step's relevant input share)."""
    class SeriesNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    torch.manual_seed(6)
    net = SeriesNet().double().eval()
    x = torch.randn(4, 10, 3, dtype=torch.float64)
    mask = torch.zeros(4, 10, 3)
    mask[:, 2:5] = 1
    rel, irrel = decompose(net, x, mask)
    torch.testing.assert_close(rel + irrel, net(x), atol=1e-12, rtol=0)
    rel1, irrel1 = decompose(net, x, torch.ones(4, 10, 3))
    assert irrel1.abs().max() <= 1e-12

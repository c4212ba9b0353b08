"""Contextual decomposition through attention (documentation: transformers; CD-T, Hsu et al. 2024): the rule
against an independent per-head computation written plainly here, against CD-T's own propagation of
BERT's self-attention on a worked example, and exactness as A.6 asks (rel + irrel = logits, float32
against float64, all-ones and all-zeros masks) on random and briefly trained Transformers on real data
(SST sentences, MNIST digits)."""
from __future__ import annotations

import copy
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.data import load_dataset
from explainreg.data.text import sst_bias
from explainreg.decomposition import decompose, decompose_tokens
from explainreg.decomposition.attention import self_attention
from explainreg.decomposition.rules import Decomposed
from explainreg.models.text import TextTransformerClassifier
from explainreg.training.batches import iterate_batches

torch.set_num_threads(1)
EPS = 1e-19


class MHAPool(nn.Module):
    """x B×T×E → self-attention (nn.MultiheadAttention) → mean over tokens → linear head."""

    def __init__(self, dim: int = 6, heads: int = 2, classes: int = 3) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x, x, x, need_weights=False)[0].mean(1))


class HandWritten(nn.Module):
    """The same attention written with matmul / softmax, or with F.scaled_dot_product_attention."""

    def __init__(self, source: MHAPool, sdpa: bool) -> None:
        super().__init__()
        self.source, self.sdpa = source, sdpa
        self.q, self.k, self.v, self.o = (nn.Linear(6, 6) for _ in range(4))
        wq, wk, wv = source.attn.in_proj_weight.detach().split(6)
        bq, bk, bv = source.attn.in_proj_bias.detach().split(6)
        for lin, w, b in ((self.q, wq, bq), (self.k, wk, bk), (self.v, wv, bv),
                          (self.o, source.attn.out_proj.weight.detach(), source.attn.out_proj.bias.detach())):
            lin.weight.data.copy_(w)
            lin.bias.data.copy_(b)
        self.head = copy.deepcopy(source.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q(x).view(B, T, 2, 3).transpose(1, 2)
        k = self.k(x).view(B, T, 2, 3).transpose(1, 2)
        v = self.v(x).view(B, T, 2, 3).transpose(1, 2)
        if self.sdpa:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(3), -1) @ v
        return self.head(self.o(out.transpose(1, 2).reshape(B, T, 6)).mean(1))


def split(r: torch.Tensor, s: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CD's affine bias split, written out."""
    share = r.abs() / (r.abs() + s.abs() + EPS)
    return r + b * share, s + b * (1 - share)


def plain_mha_pool(model: MHAPool, x: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The decomposition of MHAPool written per sample and per head with loops (no explainreg code)."""
    E, H = 6, 2
    D = E // H
    wq, wk, wv = model.attn.in_proj_weight.split(E)
    bq, bk, bv = model.attn.in_proj_bias.split(E)
    rels, irrels = [], []
    for b in range(len(x)):
        xb, mb = x[b], m[b][:, None]
        rel_in, irrel_in = mb * xb, (1 - mb) * xb
        rel_v, irrel_v = split(rel_in @ wv.T, irrel_in @ wv.T, bv)
        q, k = xb @ wq.T + bq, xb @ wk.T + bk
        rel_heads, irrel_heads = [], []
        for h in range(H):
            cols = slice(h * D, (h + 1) * D)
            weights = torch.softmax(q[:, cols] @ k[:, cols].T / math.sqrt(D), -1)  # from the total input
            rel_heads.append(weights @ rel_v[:, cols])
            irrel_heads.append(weights @ irrel_v[:, cols])
        rel_c, irrel_c = torch.cat(rel_heads, 1), torch.cat(irrel_heads, 1)
        rel_o, irrel_o = split(rel_c @ model.attn.out_proj.weight.T, irrel_c @ model.attn.out_proj.weight.T,
                               model.attn.out_proj.bias)
        rel_p, irrel_p = rel_o.mean(0), irrel_o.mean(0)
        rel, irrel = split(rel_p @ model.head.weight.T, irrel_p @ model.head.weight.T, model.head.bias)
        rels.append(rel)
        irrels.append(irrel)
    return torch.stack(rels), torch.stack(irrels)


def test_attention_rule_equals_a_plain_per_head_computation():
    torch.manual_seed(0)
    model = MHAPool().double().eval()
    x = torch.randn(4, 5, 6, dtype=torch.float64)
    m = (torch.rand(4, 5) < 0.4).double()
    m[:, 0] = 1
    rel, irrel = decompose(model, x, m[:, :, None].expand(4, 5, 6))
    expected_rel, expected_irrel = plain_mha_pool(model, x, m)
    torch.testing.assert_close(rel, expected_rel, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(irrel, expected_irrel, atol=1e-12, rtol=1e-10)
    for sdpa in (False, True):  # a hand-written attention and F.scaled_dot_product_attention decompose alike
        other = HandWritten(model, sdpa).double().eval()
        torch.testing.assert_close(other(x), model(x))
        rel2, irrel2 = decompose(other, x, m[:, :, None].expand(4, 5, 6))
        torch.testing.assert_close(rel2, rel, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(irrel2, irrel, atol=1e-12, rtol=1e-10)


def cdt_self_attention(rel: torch.Tensor, irrel: torch.Tensor, sa: nn.Module, heads: int, tol: float = 1e-8):
    """CD-T's ``prop_self_attention`` for BERT (Hsu et al. 2024, their vanilla HF-BERT code), restated:
    probabilities from rel + irrel, the values by ``prop_linear`` (bias split by |rel·W|, |irrel·W|, tol 1e-8),
    the same probabilities multiplied into each part."""
    def prop_linear(r, s, lin):
        rt, st = r @ lin.weight.T, s @ lin.weight.T
        tot = rt.abs() + st.abs() + tol
        return rt + lin.bias * rt.abs() / tot, st + lin.bias * st.abs() / tot

    def heads_of(t):
        B, T, E = t.shape
        return t.view(B, T, heads, E // heads).permute(0, 2, 1, 3)

    total = rel + irrel
    q, k = heads_of(sa.query(total)), heads_of(sa.key(total))
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
    r_v, s_v = prop_linear(rel, irrel, sa.value)
    merge = (lambda t: t.permute(0, 2, 1, 3).reshape(total.shape))
    return merge(probs @ heads_of(r_v)), merge(probs @ heads_of(s_v))


def test_self_attention_follows_cdt_on_a_worked_example():
    """The sentence "the film is a great disappointment", with "great" relevant, through one BERT
    self-attention of a random layer: explainreg's rule and CD-T's give the same parts (their bias
    splits differ only in ε: 1e-19 against 1e-8)."""
    transformers = needs_transformers()
    torch.manual_seed(0)
    config = transformers.BertConfig(hidden_size=8, num_attention_heads=2, attention_probs_dropout_prob=0.0)
    sa = transformers.models.bert.modeling_bert.BertSelfAttention(config).double().eval()
    e = torch.randn(1, 6, 8, dtype=torch.float64)
    m = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0], dtype=torch.float64)[None, :, None]
    ours = self_attention(Decomposed(m * e, (1 - m) * e, e), sa.query, sa.key, sa.value, 2, sa.scaling)
    rel, irrel = cdt_self_attention(m * e, (1 - m) * e, sa, 2)
    torch.testing.assert_close(ours.rel, rel, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours.irrel, irrel, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(ours.total, sa(e)[0])


# ----------------------------------------------------------------------------------------------
# exactness on random and briefly trained Transformers, real data


@pytest.fixture(scope="module")
def sst():
    splits = sst_bias("decoy", limit=200)
    batches = list(iterate_batches(splits.train, 32, shuffle=False))[:3]
    return splits, batches


def _train(model: nn.Module, batches, steps: int = 15) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        x, y, _ = batches[step % len(batches)]
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def _token_models(vocab: int):
    torch.manual_seed(0)
    yield "nn.TransformerEncoder", TextTransformerClassifier(vocab, 2, embedding_dim=16, heads=2, layers=2,
                                                         feedforward=32)
    if os.environ.get("EXPLAINREG_REQUIRE_OPTIONAL") or _has_transformers():
        from test_hf_models import tiny_bert, tiny_distilbert

        yield "BERT", tiny_bert(vocab)
        yield "DistilBERT", tiny_distilbert(vocab)


def _has_transformers() -> bool:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def needs_transformers():
    """transformers, or a skip (a failure under EXPLAINREG_REQUIRE_OPTIONAL, as make test sets)."""
    if os.environ.get("EXPLAINREG_REQUIRE_OPTIONAL"):
        import transformers
        return transformers
    return pytest.importorskip("transformers", reason="the optional extra `hf` is not installed")


def token_exactness(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Figures of A.6 for a token model (relative to max|logit|)."""
    logits = model(x)
    scale = float(logits.abs().max())
    rel, irrel = decompose_tokens(model, x, mask)
    model64 = copy.deepcopy(model).double()
    rel64, _ = decompose_tokens(model64, x, mask)
    ones_rel, ones_irrel = decompose_tokens(model, x, torch.ones(x.shape))
    zeros_rel, _ = decompose_tokens(model, x, torch.zeros(x.shape))
    return {"completeness": float((rel + irrel - logits).abs().max()) / scale,
            "float32_vs_64": float((rel.double() - rel64).abs().max()) / scale,
            "ones_irrel": float(ones_irrel.abs().max()) / scale,
            "ones_rel_vs_logit": float((ones_rel - logits).abs().max()) / scale,
            "zeros_rel": float(zeros_rel.abs().max()) / scale}


def check(figures: dict[str, float], where: str) -> None:
    assert figures["completeness"] <= 1e-5, (where, figures)
    assert figures["float32_vs_64"] <= 1e-3, (where, figures)
    assert figures["ones_irrel"] <= 1e-5 and figures["zeros_rel"] <= 1e-5, (where, figures)
    assert figures["ones_rel_vs_logit"] <= 1e-5, (where, figures)


@pytest.mark.parametrize("weights", ["random", "trained"])
def test_token_transformers_are_exact(sst, weights):
    splits, batches = sst
    x, _, extras = batches[0]
    for name, model in _token_models(len(splits.vocab)):
        if weights == "trained":
            _train(model, batches)
        with torch.no_grad():
            check(token_exactness(model.eval(), x, extras["mask"]), f"{name}/{weights}")


def image_exactness(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    logits = model(x)
    scale = float(logits.abs().max())
    rel, irrel = decompose(model, x, mask)
    rel64, _ = decompose(copy.deepcopy(model).double(), x.double(), mask.double())
    ones_rel, ones_irrel = decompose(model, x, torch.ones(x.shape[-2:]))
    one_image = torch.zeros(len(x), *x.shape[-2:])
    one_image[0] = 1  # decompose refuses a mask that is 0 for the whole batch
    zeros_rel, _ = decompose(model, x, one_image)
    return {"completeness": float((rel + irrel - logits).abs().max()) / scale,
            "float32_vs_64": float((rel.double() - rel64).abs().max()) / scale,
            "ones_irrel": float(ones_irrel.abs().max()) / scale,
            "ones_rel_vs_logit": float((ones_rel - logits).abs().max()) / scale,
            "zeros_rel": float(zeros_rel[1:].abs().max()) / scale}


@pytest.mark.parametrize("weights", ["random", "trained"])
def test_vit_is_exact_on_mnist(weights):
    needs_transformers()
    from test_hf_models import tiny_vit

    data = load_dataset("mnist", "train")
    x, y = data.x[:64], data.y[:64]
    model = tiny_vit()
    if weights == "trained":
        _train(model, [(x[i:i + 32], y[i:i + 32], None) for i in (0, 32)])
    mask = torch.zeros(28, 28)
    mask[7:21, 7:21] = 1  # the centre 2×2 patches
    with torch.no_grad():
        check(image_exactness(model.eval(), x[:16], mask), f"ViT/{weights}")


def test_padding_never_counts_and_key_padding_masks_are_read():
    """A TransformerEncoder batch with padding: a padded sentence decomposes as it does alone."""
    torch.manual_seed(0)
    model = TextTransformerClassifier(30, 2, embedding_dim=8, heads=2, layers=2, feedforward=16).eval()
    ids = torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0]])
    mask = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    rel, irrel = decompose_tokens(model, ids, mask)
    rel1, irrel1 = decompose_tokens(model, ids[1:, :2], mask[1:, :2])
    torch.testing.assert_close(rel[1:], rel1, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(irrel[1:], irrel1, atol=1e-6, rtol=1e-5)


def test_unsupported_attention_options_are_refused():
    from explainreg.decomposition import UnsupportedLayerError

    torch.manual_seed(0)
    model = MHAPool()
    model.attn = nn.MultiheadAttention(6, 2, batch_first=True, add_bias_kv=True)
    with pytest.raises(UnsupportedLayerError, match="add_bias_kv"):
        decompose(model, torch.randn(2, 3, 6), torch.ones(6))

"""Every CD rule against a plainly written two-stream computation (documentation: methods/decomposition; the CDEP code), on
real MNIST activations: BatchNorm, Tanh, Sigmoid, LeakyReLU, pooling, residual adds, functional
calls, registered user rules, and subclasses that override ``forward``."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explainreg.decomposition import Decomposed, UnsupportedLayerError, decompose, register_rule, run_rules

EPS = 1e-19


def split(r, s, b):
    """The affine rule's bias split, one element at a time in spirit (vectorised here)."""
    den = r.abs() + s.abs() + EPS
    lost = (r == 0) & (s == 0)
    return r + b * r.abs() / den, s + b * s.abs() / den + b * lost


@pytest.fixture(scope="module")
def parts(mnist_test):
    """rel / irrel of real images: every third pixel (diagonal stripes) is the relevant region, so
    every pooled feature mixes both parts (a half-image mask would give pure ones, on which the
    Shapley and relevant-first rules agree)."""
    x = (mnist_test.x[:6] - 0.1307) / 0.3081
    i, j = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    mask = ((i + j) % 3 == 0).float()
    return x, x * mask, x * (1 - mask)


def features(x: torch.Tensor, n: int = 12) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, (3, 4)).flatten(1)[:, :n]


def run(model, rel, irrel, total) -> Decomposed:
    return run_rules(model.eval(), Decomposed(rel, irrel, total))


def test_batchnorm_splits_its_shift_like_a_bias(parts):
    x, rel, irrel = (features(t) for t in parts)
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(12).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    want_rel, want_irrel = split(rel * scale, irrel * scale, shift)
    got = run(nn.Sequential(bn), rel, irrel, x)
    torch.testing.assert_close(got.rel, want_rel, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.irrel, want_irrel, atol=1e-5, rtol=1e-5)


def test_tanh_and_sigmoid_use_the_shapley_split(parts):
    x, rel, irrel = (features(t) for t in parts)
    assert float((rel.abs() * irrel.abs()).min()) > 0  # both parts present in every feature
    got = run(nn.Sequential(nn.Tanh()), rel, irrel, x)
    t = torch.tanh
    torch.testing.assert_close(got.rel, 0.5 * (t(rel) + t(rel + irrel) - t(irrel)), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got.irrel, 0.5 * (t(irrel) + t(rel + irrel) - t(rel)), atol=1e-6, rtol=1e-6)
    got = run(nn.Sequential(nn.Sigmoid()), rel, irrel, x)
    s = torch.sigmoid
    a_rel = 0.5 * ((s(rel) - 0.5) + (s(rel + irrel) - s(irrel)))
    a_irrel = 0.5 * ((s(irrel) - 0.5) + (s(rel + irrel) - s(rel)))
    want_rel, want_irrel = split(a_rel, a_irrel, torch.tensor(0.5))  # σ(0) is a bias
    torch.testing.assert_close(got.rel, want_rel, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got.irrel, want_irrel, atol=1e-6, rtol=1e-6)


def test_leaky_relu_is_relevant_first(parts):
    x, rel, irrel = (features(t) for t in parts)
    f = lambda v: F.leaky_relu(v, 0.2)  # noqa: E731
    got = run(nn.Sequential(nn.LeakyReLU(0.2)), rel, irrel, x)
    torch.testing.assert_close(got.rel, f(rel))
    torch.testing.assert_close(got.irrel, f(rel + irrel) - f(rel))


def test_pooling(parts):
    x, rel, irrel = parts
    torch.manual_seed(1)
    conv = nn.Conv2d(1, 3, 3)
    with torch.no_grad():
        c_rel, c_irrel = conv._conv_forward(rel, conv.weight, None), conv._conv_forward(irrel, conv.weight, None)
        c_rel, c_irrel = split(c_rel, c_irrel, conv.bias.view(-1, 1, 1))
        total = conv(x)
    got = run(nn.Sequential(nn.MaxPool2d(2)), c_rel, c_irrel, total)
    B, C, H, W = total.shape
    H, W = H // 2 * 2, W // 2 * 2
    win = lambda t: F.unfold(t[..., :H, :W].reshape(B * C, 1, H, W), 2, stride=2)  # noqa: E731
    t = win(total)
    top = t.max(1, keepdim=True).values
    tied = (t >= top - 1e-6 * top.abs()).float()  # the background's equal activations share a window
    take = lambda v: (win(v) * tied / tied.sum(1, keepdim=True)).sum(1).view(B, C, H // 2, W // 2)  # noqa: E731
    torch.testing.assert_close(got.rel, take(c_rel))
    torch.testing.assert_close(got.irrel, take(c_irrel))
    got = run(nn.Sequential(nn.AvgPool2d(2)), c_rel, c_irrel, total)
    torch.testing.assert_close(got.rel, F.avg_pool2d(c_rel, 2))
    torch.testing.assert_close(got.irrel, F.avg_pool2d(c_irrel, 2))


def test_max_pool_ties_share_the_window():
    total = torch.zeros(1, 1, 2, 2)  # four tied zeros, as after a ReLU
    rel = torch.tensor([[[[1.0, 0.0], [0.0, 3.0]]]])
    got = run(nn.Sequential(nn.MaxPool2d(2)), rel, -rel, total)
    torch.testing.assert_close(got.rel.flatten(), torch.tensor([1.0]))  # (1 + 0 + 0 + 3) / 4


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 12)

    def forward(self, x):
        return x + torch.tanh(self.fc(x))


def test_residual_add_adds_the_parts(parts):
    x, rel, irrel = (features(t) for t in parts)
    torch.manual_seed(2)
    net = Residual()
    got = run(net, rel, irrel, x)
    f_rel, f_irrel = split(rel @ net.fc.weight.T, irrel @ net.fc.weight.T, net.fc.bias)
    t = torch.tanh
    want_rel = rel + 0.5 * (t(f_rel) + t(f_rel + f_irrel) - t(f_irrel))
    want_irrel = irrel + 0.5 * (t(f_irrel) + t(f_rel + f_irrel) - t(f_rel))
    torch.testing.assert_close(got.rel, want_rel, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.irrel, want_irrel, atol=1e-5, rtol=1e-5)


class FunctionalBias(nn.Module):
    """``fc(x) + b`` written by hand: the bias must be split as nn.Linear's is."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 12) * 0.3)
        self.bias = nn.Parameter(torch.randn(4))

    def forward(self, x):
        return F.linear(x, self.weight) + self.bias


def test_a_functional_bias_is_split_like_linears(parts):
    x, rel, irrel = (features(t) for t in parts)
    torch.manual_seed(3)
    net = FunctionalBias()
    linear = nn.Linear(12, 4)
    linear.weight.data, linear.bias.data = net.weight.data.clone(), net.bias.data.clone()
    got = run(net, rel, irrel, x)
    want = run(nn.Sequential(linear), rel, irrel, x)
    torch.testing.assert_close(got.rel, want.rel, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got.irrel, want.irrel, atol=1e-6, rtol=1e-6)


class Doubler(nn.Module):
    def forward(self, x):
        if x.sum() > 1e12:  # untraceable: needs a registered rule
            return x
        return 2 * x


def test_a_registered_rule_is_the_one_used(parts):
    x, rel, irrel = (features(t) for t in parts)
    calls = []

    def rule(m, d):
        calls.append(m)
        return d.map(lambda t: 2 * t)

    register_rule(Doubler, rule)
    got = run(nn.Sequential(Doubler()), rel, irrel, x)
    assert len(calls) == 1
    torch.testing.assert_close(got.rel, 2 * rel)
    torch.testing.assert_close(got.irrel, 2 * irrel)


class StandardisedConv(nn.Conv2d):
    """Weight standardisation: a Conv2d subclass with its own forward."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class LoRALinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int, rank: int = 2) -> None:
        super().__init__(n_in, n_out)
        self.down = nn.Linear(n_in, rank, bias=False)
        self.up = nn.Linear(rank, n_out, bias=False)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + self.up(self.down(x))


def test_subclasses_with_their_own_forward_are_traced_not_given_the_parents_rule(mnist_test):
    torch.manual_seed(4)
    x = (mnist_test.x[:4] - 0.1307) / 0.3081
    ws = StandardisedConv(1, 3, 5)
    net = nn.Sequential(ws, nn.ReLU(), nn.Flatten(), nn.Linear(3 * 24 * 24, 5))
    rel, irrel = decompose(net, x, torch.ones(28, 28))
    torch.testing.assert_close(rel, net(x), atol=1e-5, rtol=1e-5)  # all-ones mask: all relevant
    assert float(irrel.abs().max()) < 1e-5
    # the same network with the standardised weight in a plain Conv2d decomposes identically
    plain = nn.Conv2d(1, 3, 5)
    with torch.no_grad():
        w = ws.weight
        plain.weight.copy_((w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5))
        plain.bias.copy_(ws.bias)
    twin = nn.Sequential(plain, nn.ReLU(), nn.Flatten(), net[3])
    mask = torch.zeros(28, 28)
    mask[:, :14] = 1
    for a, b in zip(decompose(net, x, mask), decompose(twin, x, mask)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    lora = nn.Sequential(nn.Flatten(), LoRALinear(784, 6))
    rel, irrel = decompose(lora, x, torch.ones(28, 28))
    torch.testing.assert_close(rel, lora(x), atol=1e-5, rtol=1e-5)
    assert float(irrel.abs().max()) < 1e-5


def test_a_subclass_forward_that_cannot_be_traced_is_refused(mnist_test):
    class Branchy(nn.Linear):
        def forward(self, x):
            return super().forward(x) if x.sum() > 0 else -super().forward(x)

    net = nn.Sequential(nn.Flatten(), Branchy(784, 3))
    with pytest.raises(UnsupportedLayerError, match="could not trace|no rule"):
        decompose(net, mnist_test.x[:2], torch.ones(28, 28))


@pytest.mark.parametrize("pool", [nn.MaxPool2d(2, ceil_mode=True), nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(2, 2)],
                         ids=["ceil", "overlapping", "tiled"])
def test_max_pool_variants_match_the_windowed_rule(parts, pool):
    """Every max-pool form (ceil mode on an odd size, overlapping padded windows, tiled) equals a plain
    per-window computation: the window's entries tied for the maximum share its output."""
    x, rel, irrel = (F.avg_pool2d(t, 2) for t in parts)  # 14×14 real activations
    x, rel, irrel = x[..., :13, :13], rel[..., :13, :13], irrel[..., :13, :13]  # odd size
    got = run(nn.Sequential(pool), rel, irrel, x)
    total_out = pool(x)
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    want_rel, want_irrel = torch.zeros_like(total_out), torch.zeros_like(total_out)
    for b in range(x.shape[0]):
        for i in range(total_out.shape[2]):
            for j in range(total_out.shape[3]):
                r0, c0 = i * s - p, j * s - p
                rows = range(max(r0, 0), min(r0 + k, x.shape[2]))
                cols = range(max(c0, 0), min(c0 + k, x.shape[3]))
                cells = [(r, c) for r in rows for c in cols]
                top = max(float(x[b, 0, r, c]) for r, c in cells)
                tied = [(r, c) for r, c in cells if float(x[b, 0, r, c]) >= top - 1e-6 * abs(top)]
                want_rel[b, 0, i, j] = sum(float(rel[b, 0, r, c]) for r, c in tied) / len(tied)
                want_irrel[b, 0, i, j] = sum(float(irrel[b, 0, r, c]) for r, c in tied) / len(tied)
    torch.testing.assert_close(got.rel, want_rel, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.irrel, want_irrel, atol=1e-5, rtol=1e-5)


def test_silu_uses_the_shapley_split(parts):
    x, rel, irrel = (features(t) for t in parts)
    got = run(nn.Sequential(nn.SiLU()), rel, irrel, x)
    f = F.silu  # f(0) = 0: no bias share
    torch.testing.assert_close(got.rel, 0.5 * (f(rel) + f(rel + irrel) - f(irrel)), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got.irrel, 0.5 * (f(irrel) + f(rel + irrel) - f(rel)), atol=1e-6, rtol=1e-6)


def test_group_norm_is_affine_with_the_totals_statistics(parts):
    x, rel, irrel = parts                                          # B×1×28×28 real images
    conv = nn.Conv2d(1, 6, 3, padding=1)
    gn = nn.GroupNorm(3, 6)
    with torch.no_grad():
        gn.weight.uniform_(0.5, 1.5)
        gn.bias.uniform_(-0.5, 0.5)
    total, r0, s0 = conv(x), F.conv2d(rel, conv.weight, padding=1), F.conv2d(irrel, conv.weight, padding=1)
    r0, s0 = split(r0, s0, conv.bias.view(1, -1, 1, 1))             # the conv's own rule first
    got = run(nn.Sequential(gn), r0.detach(), s0.detach(), total.detach())
    want = []
    for part in (r0, s0):  # one sample and group at a time: subtract the part's group mean, scale by the total's
        out = torch.empty_like(part)
        for b in range(part.shape[0]):
            for g in range(3):
                c = slice(2 * g, 2 * g + 2)
                std = torch.sqrt(total[b, c].var(unbiased=False) + gn.eps)
                out[b, c] = (part[b, c] - part[b, c].mean()) / std * gn.weight[c].view(-1, 1, 1)
        want.append(out)
    want_rel, want_irrel = split(*want, gn.bias.view(1, -1, 1, 1))
    torch.testing.assert_close(got.rel, want_rel.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.irrel, want_irrel.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.rel + got.irrel, gn(total).detach(), atol=1e-5, rtol=1e-5)


def test_group_norm_and_silu_nets_decompose_exactly(parts):
    x = parts[0]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.GroupNorm(4, 8), nn.SiLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.SiLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    corner = torch.zeros(28, 28)
    corner[:14, :14] = 1
    rel, irrel = decompose(net, x, corner)
    torch.testing.assert_close(rel + irrel, net(x), atol=1e-5, rtol=1e-5)
    rel, irrel = decompose(net, x, torch.ones(28, 28))
    assert float(irrel.abs().max()) <= 1e-5 * float(net(x).abs().max())

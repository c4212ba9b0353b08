"""Contextual decomposition engine: values against plainly written CD, invariants, errors."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from explainreg.decomposition import Decomposed, UnsupportedLayerError, decompose, register_function_rule, register_rule
from explainreg.models import cdep_colormnist_net, cdep_decoymnist_net

EPS = 1e-19


# ---------------------------------------------------------------------------------------------
# independent, plainly written CD with two streams (the seed's algorithm, B.2 §2.1)


def hand_affine(layer, rel, irrel, rho=None):
    """``rho``: per sample, the relevant share of the input, |m ⊙ x|₁ / |x|₁; a unit with r = s = 0
    splits its bias by it (None: the seed order's convention, all of it to irrel)."""
    bias = layer(torch.zeros_like(rel[:1]))  # the bias map, module(0)
    r, s = layer(rel) - bias, layer(irrel) - bias
    share_r = r.abs() / (r.abs() + s.abs() + EPS)
    share_s = s.abs() / (r.abs() + s.abs() + EPS)
    lost = ((r == 0) & (s == 0)).float()  # the seed drops the bias here (the sum breaks)
    to_rel = 0 if rho is None else lost * rho.view(-1, *[1] * (r.dim() - 1))
    return r + bias * share_r + bias * to_rel, s + bias * share_s + bias * (lost - to_rel)


def hand_rho(x, mask):
    rel, irrel = (x * mask).abs().flatten(1).sum(1), (x * (1 - mask)).abs().flatten(1).sum(1)
    return rel / (rel + irrel)


def hand_relu(rel, irrel):
    return F.relu(rel), F.relu(rel + irrel) - F.relu(rel)


def hand_pool(rel, irrel, total):
    # 2×2/2 windows of the total activation; the entries tied for the window's maximum (zeros after a
    # ReLU, a constant background) share the output equally (the seed's rel + irrel picks among
    # them by rounding noise)
    B, C, H, W = total.shape
    win = lambda t: F.unfold(t.reshape(B * C, 1, H, W), 2, stride=2)  # (B·C)×4×L  # noqa: E731
    t = win(total)
    top = t.max(1, keepdim=True).values
    share = (t >= top - max(1e-6, 8 * torch.finfo(t.dtype).eps) * top.abs()).float()
    share = share / share.sum(1, keepdim=True)
    take = lambda v: (win(v) * share).sum(1).view(B, C, H // 2, W // 2)  # noqa: E731
    return take(rel), take(irrel)


def hand_cdep_net(net: nn.Sequential, x, mask):
    """The seed's two-stream CD of conv–relu–pool–conv–relu–pool–flatten–fc–relu–fc, written out."""
    rel, irrel, rho = x * mask, x * (1 - mask), hand_rho(x, mask)
    rel, irrel = hand_pool(*hand_relu(*hand_affine(net[0], rel, irrel, rho)), net[:2](x))
    rel, irrel = hand_pool(*hand_relu(*hand_affine(net[3], rel, irrel, rho)), net[:5](x))
    rel, irrel = rel.flatten(1), irrel.flatten(1)
    rel, irrel = hand_relu(*hand_affine(net[7], rel, irrel, rho))
    return hand_affine(net[9], rel, irrel, rho)


def seed_pool(rel, irrel, total):
    # the seed's propagate_pooling: indices of the pool of rel + irrel, both parts read there (on exact
    # ties of the total, over a constant background, rounding picks; tests/test_cd_seed_fidelity.py)
    _, idx = F.max_pool2d(rel + irrel, 2, return_indices=True)
    take = lambda t: t.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)  # noqa: E731
    return take(rel), take(irrel)


def seed_cd_mnist(net: nn.Sequential, x, mask):
    """The seed's cd(..., model_type="mnist") written out: conv1 → pool → relu → conv2 → pool → relu →
    view → fc1 → relu → fc2 (pool before ReLU, as its code runs it)."""
    rel, irrel = x * mask, x * (1 - mask)
    rel, irrel = hand_relu(*seed_pool(*hand_affine(net[0], rel, irrel), net[0](x)))
    rel, irrel = hand_relu(*seed_pool(*hand_affine(net[3], rel, irrel), net[:4](x)))
    rel, irrel = rel.flatten(1), irrel.flatten(1)
    rel, irrel = hand_relu(*hand_affine(net[7], rel, irrel))
    return hand_affine(net[9], rel, irrel)


@pytest.mark.parametrize("build,channels", [(cdep_decoymnist_net, 1), (cdep_colormnist_net, 3)])
def test_seed_order_reproduces_the_seeds_conv_pool_relu(mnist_test, build, channels):
    torch.manual_seed(0)
    net = build().eval()
    x = (mnist_test.x[:16] * 2 - 1).repeat(1, channels, 1, 1)
    mask = torch.zeros(28, 28)
    mask[:5, :5] = mask[:5, -5:] = mask[-5:, :5] = mask[-5:, -5:] = 1
    rel_ref, irrel_ref = seed_cd_mnist(net, x, mask)
    rel, irrel = decompose(net, x, mask, order="seed")
    torch.testing.assert_close(rel, rel_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(irrel, irrel_ref, atol=1e-4, rtol=1e-4)
    # and it is a different decomposition from the forward order's (same sum)
    rel_fwd, irrel_fwd = decompose(net, x, mask)
    torch.testing.assert_close(rel_fwd + irrel_fwd, rel + irrel, atol=1e-4, rtol=1e-4)
    assert float((rel_fwd - rel).abs().max()) > 1e-3 * float(rel.abs().max())
    with pytest.raises(ValueError, match="order must be one of"):
        decompose(net, x, mask, order="pool-first")


def test_two_layer_mlp_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(6, 4)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0])
    W1, b1, W2, b2 = (p.detach() for p in (net[0].weight, net[0].bias, net[2].weight, net[2].bias))
    # layer 1, one sample and one unit at a time
    rel_ref = torch.zeros(6, 3)
    irrel_ref = torch.zeros(6, 3)
    for i in range(6):
        rel0, irrel0 = x[i] * mask, x[i] * (1 - mask)
        rho = float(rel0.abs().sum() / (rel0.abs().sum() + irrel0.abs().sum()))  # a unit with r = s = 0
        h_rel, h_irrel = [], []
        for j in range(5):
            r, s = float(W1[j] @ rel0), float(W1[j] @ irrel0)
            q = rho if r == s == 0 else abs(r) / (abs(r) + abs(s) + EPS)
            a = r + float(b1[j]) * q
            b = s + float(b1[j]) * (1 - q)
            h_rel.append(max(a, 0.0))
            h_irrel.append(max(a + b, 0.0) - max(a, 0.0))
        for k in range(3):
            r = sum(float(W2[k, j]) * h_rel[j] for j in range(5))
            s = sum(float(W2[k, j]) * h_irrel[j] for j in range(5))
            q = rho if r == s == 0 else abs(r) / (abs(r) + abs(s) + EPS)
            rel_ref[i, k] = r + float(b2[k]) * q
            irrel_ref[i, k] = s + float(b2[k]) * (1 - q)
    rel, irrel = decompose(net, x, mask)
    torch.testing.assert_close(rel, rel_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(irrel, irrel_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rel + irrel, net(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("build,channels", [(cdep_decoymnist_net, 1), (cdep_colormnist_net, 3)])
def test_cdep_nets_match_two_stream_cd_on_real_mnist(mnist_test, build, channels):
    torch.manual_seed(0)
    net = build().eval()
    x = (mnist_test.x[:16] * 2 - 1).repeat(1, channels, 1, 1)
    mask = torch.zeros(28, 28)
    mask[:5, :5] = mask[:5, -5:] = mask[-5:, :5] = mask[-5:, -5:] = 1
    rel_ref, irrel_ref = hand_cdep_net(net, x, mask)
    rel, irrel = decompose(net, x, mask)
    torch.testing.assert_close(rel, rel_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(irrel, irrel_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(rel + irrel, net(x), atol=1e-4, rtol=1e-4)


def test_blobs_in_one_pass_equal_separate_calls(mnist_test):
    torch.manual_seed(1)
    net = cdep_decoymnist_net()
    x = mnist_test.x[:8]
    blobs = (torch.rand(3, 28, 28) > 0.7).float()
    rel, irrel = decompose(net, x, blobs, blobs=True)
    assert rel.shape == (8, 3, 10)
    for n in range(3):
        r, i = decompose(net, x, blobs[n])
        torch.testing.assert_close(rel[:, n], r, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(irrel[:, n], i, atol=1e-5, rtol=1e-5)
    # per-image blob stacks (B×N×H×W) and a list of masks give the same
    rel2, _ = decompose(net, x, blobs.expand(8, 3, 28, 28), blobs=True)
    rel3, _ = decompose(net, x, [blobs[0], blobs[1], blobs[2]])
    torch.testing.assert_close(rel2, rel, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(rel3, rel, atol=1e-6, rtol=1e-6)


def test_mask_forms_agree(mnist_test):
    net = cdep_colormnist_net()
    x = mnist_test.x[:4].repeat(1, 3, 1, 1)
    m = torch.zeros(28, 28)
    m[10:15, 3:9] = 1
    expected = decompose(net, x, m)[0]
    for form in (m.expand(4, 28, 28), m.expand(4, 1, 28, 28), m.expand(4, 3, 28, 28), m.bool()):
        torch.testing.assert_close(decompose(net, x, form)[0], expected)


def test_gradients_reach_every_weight(mnist_test):
    net = cdep_decoymnist_net()
    m = torch.zeros(28, 28)
    m[:5, :5] = 1
    rel, irrel = decompose(net, mnist_test.x[:8] * 2 - 1, m)
    torch.sigmoid(rel - irrel).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


class CustomForward(nn.Module):
    """Functional calls in forward: F.relu, torch.flatten, x.view(x.size(0), -1), residual add, BN, pools."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = F.relu(self.bn(self.conv1(x)))
        h = h + torch.tanh(self.conv2(h)) * 0.5
        h = F.max_pool2d(h, 2)
        h = self.pool(h)
        h = torch.flatten(h, 1)
        h = F.leaky_relu(self.fc(h.view(h.size(0), -1)), 0.1)
        return self.out(torch.sigmoid(h) - 0.5)


def test_custom_forward_with_functional_calls():
    torch.manual_seed(0)
    net = CustomForward()
    net.bn.running_mean.uniform_(-0.5, 0.5)
    net.bn.running_var.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(5, 1, 16, 16)
    m = torch.zeros(16, 16)
    m[4:9, 4:9] = 1
    rel, irrel = decompose(net, x, m)
    torch.testing.assert_close(rel + irrel, net(x), atol=1e-5, rtol=1e-5)
    rel0, irrel0 = decompose(net, x, torch.zeros(5, 16, 16).index_fill_(0, torch.tensor([0]), 1.0))
    assert rel0[1:].abs().max() == 0  # images with an empty mask have no relevant part


# ---------------------------------------------------------------------------------------------
# property tests over random small architectures


def build_net(spec: list[str], channels: int, classes: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    c, size = 1, 12
    for kind in spec:
        if kind == "conv":
            layers.append(nn.Conv2d(c, channels, 3, padding=1))
            c = channels
        elif kind == "bn":
            bn = nn.BatchNorm2d(c)
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)
            layers.append(bn)
        elif kind == "maxpool" and size >= 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        elif kind == "avgpool" and size >= 4:
            layers.append(nn.AvgPool2d(2))
            size //= 2
        elif kind in ("relu", "leaky", "tanh", "sigmoid", "dropout"):
            layers.append({"relu": nn.ReLU(), "leaky": nn.LeakyReLU(0.2), "tanh": nn.Tanh(),
                           "sigmoid": nn.Sigmoid(), "dropout": nn.Dropout(0.3)}[kind])
    layers += [nn.Flatten(), nn.Linear(c * size * size, 6), nn.ReLU(), nn.Linear(6, classes)]
    return nn.Sequential(*layers).eval()


LAYERS = st.sampled_from(["conv", "bn", "relu", "leaky", "tanh", "sigmoid", "maxpool", "avgpool", "dropout"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.lists(LAYERS, min_size=1, max_size=6), channels=st.integers(1, 4), batch=st.integers(1, 4),
       n_blobs=st.integers(1, 3), seed=st.integers(0, 10_000), density=st.floats(0.05, 0.95))
def test_invariant_rel_plus_irrel_is_the_activation_at_every_layer(spec, channels, batch, n_blobs, seed, density):
    torch.manual_seed(seed)
    net = build_net(spec, channels)
    x = torch.randn(batch, 1, 12, 12)
    blobs = (torch.rand(n_blobs, 12, 12) < density).float()
    blobs[:, 0, 0] = 1  # never empty
    activations: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: activations.__setitem__(name, out.detach()))
             for name, m in net.named_children()]
    logits = net(x)
    for h in hooks:
        h.remove()
    rel, irrel, layers = decompose(net, x, blobs, blobs=True, return_layers=True)
    torch.testing.assert_close(rel + irrel, logits[:, None].expand_as(rel), atol=1e-4, rtol=1e-4)
    assert set(layers) == set(activations)
    for name, (r, i) in layers.items():
        expected = activations[name].unsqueeze(0).expand(n_blobs, *activations[name].shape)
        torch.testing.assert_close((r + i).view_as(expected), expected, atol=1e-4, rtol=1e-4)
    # an all-zero blob has no relevant part anywhere (exactly for the piecewise-linear rules; the
    # Shapley rules of Tanh/Sigmoid evaluate f(total) − f(total − 0), zero up to vectorised rounding)
    zero_blobs = torch.cat([blobs[:1], torch.zeros(1, 12, 12)])
    _, _, layers0 = decompose(net, x, zero_blobs, blobs=True, return_layers=True)
    smooth = any(kind in spec for kind in ("tanh", "sigmoid"))
    for r, _ in layers0.values():
        assert r.view(2, batch, -1)[1].abs().max() <= (1e-6 if smooth else 0)


def test_whole_image_mask_gives_everything_to_rel():
    torch.manual_seed(0)
    net = cdep_decoymnist_net()
    x = torch.rand(4, 1, 28, 28) + 0.1
    rel, irrel = decompose(net, x, torch.ones(28, 28))
    torch.testing.assert_close(rel, net(x), atol=1e-3, rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# registry and errors


class Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.tensor(2.0))

    def forward(self, x):
        if x.sum() > 1e9:  # data-dependent control flow: not traceable, so it needs its own rule
            return x
        return x * self.s


def test_register_rule_for_a_custom_layer():
    net = nn.Sequential(nn.Linear(4, 4), Scale(), nn.Linear(4, 2))
    x = torch.randn(3, 4)
    with pytest.raises(UnsupportedLayerError, match="register_rule"):
        decompose(net, x, torch.tensor([1.0, 0, 0, 0]))
    register_rule(Scale, lambda m, d: Decomposed(d.rel * m.s, d.irrel * m.s, d.total * m.s))
    rel, irrel = decompose(net, x, torch.tensor([1.0, 0, 0, 0]))
    torch.testing.assert_close(rel + irrel, net(x))


def test_rules_live_in_a_registry_that_refuses_a_second_rule_unless_replaced():
    from explainreg.decomposition import RULES, supported_layers
    from explainreg.registry import Registry

    class Triple(nn.Module):
        def forward(self, x):
            if x.sum() > 1e9:  # not traceable: needs a rule
                return x
            return 3 * x

    def triple(m, d):
        return d.map(lambda t: 3 * t)

    assert isinstance(RULES, Registry) and "Triple" not in supported_layers()
    register_rule(Triple, triple)
    try:
        assert "Triple" in supported_layers() and RULES[Triple] is triple
        register_rule(Triple, triple)                                       # the same rule again: accepted
        with pytest.raises(ValueError, match=r"rule for module type Triple is already registered to .*triple.*"
                                             r"replace=True"):
            register_rule(Triple, lambda m, d: d.map(lambda t: 2 * t))
        net, x = nn.Sequential(nn.Linear(3, 3), Triple()), torch.randn(2, 3)
        register_rule(Triple, lambda m, d: d.map(lambda t: 2 * t), replace=True)  # a rule that disagrees with forward
        rel, irrel = decompose(net, x, torch.tensor([1.0, 0.0, 0.0]))
        torch.testing.assert_close(rel + irrel, 2 * net[0](x))                 # the replacing rule ran
    finally:
        RULES.pop(Triple)
    assert "Triple" not in supported_layers() and Triple not in RULES


def test_register_function_rule():
    class UsesHardswish(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(F.hardswish(x))

    net, x = UsesHardswish(), torch.randn(2, 4)
    with pytest.raises(UnsupportedLayerError, match="hardswish"):
        decompose(net, x, torch.ones(4))
    register_function_rule(F.hardswish, lambda d, **kw: Decomposed(F.hardswish(d.rel), F.hardswish(d.sum)
                                                                   - F.hardswish(d.rel), F.hardswish(d.total)))
    rel, irrel = decompose(net, x, torch.ones(4))
    torch.testing.assert_close(rel + irrel, net(x))


def test_unsupported_layer_error_names_the_layer():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Hardswish(), nn.Flatten(), nn.Linear(2 * 26 * 26, 3))
    with pytest.raises(UnsupportedLayerError, match=r"Hardswish \(module '1'.*register_rule\(Hardswish"):
        decompose(net, torch.randn(2, 1, 28, 28), torch.ones(28, 28))
    with pytest.raises(UnsupportedLayerError, match="Softmax"):
        decompose(nn.Sequential(nn.Linear(3, 3), nn.Softmax(1)), torch.randn(2, 3), torch.ones(3))


@pytest.mark.parametrize("mask,match", [
    (torch.ones(27, 28), "does not fit"),
    (torch.ones(5, 28, 28), r"leading dims \(5,\)"),
    (torch.ones(0, 28), "empty"),
    (torch.zeros(28, 28), "selects no input"),
    (torch.full((28, 28), 2.0), r"\[0, 1\]"),
])
def test_bad_masks(mask, match):
    with pytest.raises(ValueError, match=match):
        decompose(cdep_decoymnist_net(), torch.randn(4, 1, 28, 28), mask)


def test_batch_mixing_reshape_is_rejected():
    class Mixes(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc(x.view(-1, 8))

    with pytest.raises(ValueError, match="batch dimension"):
        decompose(Mixes(), torch.randn(4, 4), torch.ones(4))

"""Expected gradients: all references of a batch through one batched forward and double backward
(or chunks of it) equal the per-reference loop, value and weight gradients, on real DecoyMNIST."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explainreg.data import decoy_mnist
from explainreg.models import cdep_decoymnist_net
from explainreg.penalties import ExpectedGradients
from explainreg.penalties.annotation import draw_references


@pytest.fixture(scope="module")
def batch():
    data = decoy_mnist("train", limit=6)
    return data.x.double(), data.y, data.extras["mask"].double()


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return cdep_decoymnist_net().double()


def _loop_penalty(model, x, y, mask, n_refs: int, seed: int) -> torch.Tensor:
    """R = (1/B) Σ_b Σ m ⊙ |mean_r (x_b − x′_br) ⊙ ∂p_y(x̃_br)/∂x̃_br|, one reference at a time."""
    index, alpha = draw_references(len(x), n_refs, torch.Generator().manual_seed(seed))
    terms = []
    for r in range(n_refs):
        refs = x[index[:, r]]
        x_tilde = (refs + alpha[:, r, None, None, None].to(x.dtype) * (x - refs)).requires_grad_(True)
        p_y = F.softmax(model(x_tilde), 1).gather(1, y[:, None]).sum()
        (grad,) = torch.autograd.grad(p_y, x_tilde, create_graph=True)
        terms.append((x - refs) * grad)
    eg = torch.stack(terms, 1).mean(1)
    return (mask * eg.abs()).flatten(1).sum(1).mean()


def _value_and_grads(model, penalty_fn):
    value = penalty_fn(model)
    return value.detach(), torch.autograd.grad(value, list(model.parameters()))


@pytest.mark.parametrize("chunk_size", [None, 7])
def test_batched_references_equal_the_per_reference_loop(batch, chunk_size):
    x, y, mask = batch
    model = _net()
    penalty = ExpectedGradients(n_refs=5, chunk_size=chunk_size)
    batched = _value_and_grads(model, lambda m: penalty(m, x, y, mask=mask, generator=torch.Generator().manual_seed(3)))
    loop = _value_and_grads(model, lambda m: _loop_penalty(m, x, y, mask, 5, 3))
    torch.testing.assert_close(batched[0], loop[0], rtol=1e-10, atol=1e-14)
    for a, b in zip(batched[1], loop[1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("bad", [0, 2.5, -3])
def test_chunk_size_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match="chunk_size"):
        ExpectedGradients(n_refs=2, chunk_size=bad)


def test_chunk_size_is_part_of_the_settings():
    assert ExpectedGradients(n_refs=2, chunk_size=64).settings()["chunk_size"] == 64
    assert "chunk_size" not in ExpectedGradients(n_refs=2).settings()


def test_default_chunks_on_the_cpu_only_where_rows_are_independent(batch, monkeypatch):
    """None: chunks of B rows for a net without batch statistics, one pass where BatchNorm trains."""
    from explainreg.penalties import annotation

    seen = []
    terms = annotation.expected_gradient_terms

    def spy(*args, chunk_size=None, **kwargs):
        seen.append(chunk_size)
        return terms(*args, chunk_size=chunk_size, **kwargs)

    monkeypatch.setattr(annotation, "expected_gradient_terms", spy)
    x, y, mask = batch
    ExpectedGradients(n_refs=3)(_net(), x, y, mask=mask, generator=torch.Generator().manual_seed(0))
    with_bn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                                  torch.nn.Flatten(), torch.nn.Linear(2 * 26 * 26, 10)).double().train()
    ExpectedGradients(n_refs=3)(with_bn, x, y, mask=mask, generator=torch.Generator().manual_seed(0))
    assert seen == [len(x), None]

"""XIL's objective options: normalisation rates over one pass of the training data, and clipping."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from explainreg.data import decoy_mnist
from explainreg.data.counterexamples import counterexamples
from explainreg.models import cdep_decoymnist_net
from explainreg.objective import Objective
from explainreg.penalties import RRR, RRRGradCAM
from explainreg.training.rates import normalisation_rates


@pytest.fixture(scope="module")
def data():
    return decoy_mnist("train", limit=96, mask="patch")


def test_rates_equal_a_plain_pass(data):
    torch.manual_seed(0)
    model = cdep_decoymnist_net()
    objective = Objective({RRR(): 10.0, RRRGradCAM(): 10.0})
    rates = normalisation_rates(model, objective, data, batch_size=32)
    ce, r1, r2 = 0.0, 0.0, 0.0
    mask = data.extras["mask"]
    for start in range(0, 96, 32):
        x, y, m = data.x[start:start + 32], data.y[start:start + 32], mask[start:start + 32]
        ce += float(F.cross_entropy(model(x), y).detach())
        r1 += float(RRR()(model, x, y, mask=m).detach())
        r2 += float(RRRGradCAM()(model, x, y, mask=m).detach())
    assert rates["rrr"] == pytest.approx(ce / r1 / 2, rel=1e-5)
    assert rates["rrr_gradcam"] == pytest.approx(ce / r2 / 2, rel=1e-5)
    # counterexample rows are left out of both sums, also inside mixed batches
    with_ce = counterexamples(data, n_copies=1, seed=0)
    assert normalisation_rates(model, objective, with_ce, batch_size=32)["rrr"] == pytest.approx(rates["rrr"])
    mixed = with_ce.take(torch.randperm(len(with_ce), generator=torch.Generator().manual_seed(1)))
    ce, r1 = 0.0, 0.0
    for start in range(0, len(mixed), 32):
        rows = torch.arange(start, min(start + 32, len(mixed)))
        rows = rows[~mixed.extras["counterexample"][rows]]
        if len(rows):
            x, y, m = mixed.x[rows], mixed.y[rows], mixed.extras["mask"][rows]
            ce += float(F.cross_entropy(model(x), y).detach())
            r1 += float(RRR()(model, x, y, mask=m).detach())
    got = normalisation_rates(model, objective, mixed, batch_size=32)["rrr"]
    assert got == pytest.approx(ce / r1 / 2, rel=1e-5) and got != pytest.approx(rates["rrr"], rel=1e-3)

def test_objective_applies_rates_and_clip(data):
    torch.manual_seed(0)
    model = cdep_decoymnist_net()
    x, y, m = data.x[:16], data.y[:16], data.extras["mask"][:16]
    raw = float(RRR()(model, x, y, mask=m))
    ce = float(F.cross_entropy(model(x), y))
    out = Objective({RRR(): 10.0}, rates={"rrr": 0.5})(model, x, y, mask=m)
    assert out.terms["rrr"] == pytest.approx(raw, rel=1e-5)  # the raw value is logged
    assert float(out.loss) == pytest.approx(ce + 10 * 0.5 * raw, rel=1e-5)
    cap = raw / 4
    clipped = Objective({RRR(): 10.0}, rates={"rrr": 0.5}, clip=cap)(model, x, y, mask=m)
    assert float(clipped.loss) == pytest.approx(ce + 10 * 0.5 * cap, rel=1e-5)
    clipped.loss.backward()  # above the cap the penalty gives no gradient: only CE's remains
    ce_grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    for p, g in zip(model.parameters(), ce_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-7)
    objective = Objective({RRR(): 1.0}, rates={"rrr": 2.0}, clip={"rrr": 3.0})
    assert objective.config()[0]["rate"] == 2.0 and objective.config()[0]["clip"] == 3.0
    with pytest.raises(ValueError, match="rates names penalties \\['cdep'\\]"):
        Objective({RRR(): 1.0}, rates={"cdep": 1.0})
    with pytest.raises(ValueError, match="clip\\['rrr'\\] must be a finite number"):
        Objective({RRR(): 1.0}, clip=-1)

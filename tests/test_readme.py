"""The README's "own model and masks" example runs as written, and CDEP does what it claims."""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block() -> str:
    text = README.read_text()
    match = re.search(r"<!-- tested: tests/test_readme.py runs this block -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README lost its tested example"
    return match.group(1)


def test_readme_own_masks_example_runs_and_cdep_shrinks_the_corner_share(capsys):
    namespace: dict = {}
    exec(compile(readme_block(), str(README), "exec"), namespace)
    assert "accuracy with the corner agreeing / disagreeing with the label" in capsys.readouterr().out
    reliance = namespace["reliance"]
    assert reliance.value == reliance.extra["accuracy_agreeing"] - reliance.extra["accuracy_disagreeing"]
    penalised = namespace["corner_share"]
    # the same training without the penalty: the model leans on the corner far more
    from explainreg.decomposition import decompose
    from explainreg.training import TrainConfig, train

    torch.manual_seed(0)
    plain = torch.nn.Sequential(*[type(m)(*_args(m)) for m in namespace["model"]])
    train(plain, None, namespace["data"], config=TrainConfig(epochs=2, batch_size=64, progress=False))
    rel, irrel = decompose(plain, namespace["x"][:200], namespace["corner"])
    unpenalised = (rel.abs() / (rel.abs() + irrel.abs())).mean().item()
    assert penalised < 0.5 * unpenalised, (penalised, unpenalised)


def _args(module: torch.nn.Module) -> tuple:
    if isinstance(module, torch.nn.Conv2d):
        return module.in_channels, module.out_channels, module.kernel_size
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, torch.nn.MaxPool2d):
        return (module.kernel_size,)
    return ()


def _block(name: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- tested: tests/test_readme.py runs the {name} block -->\n```python\n(.*?)```", text, re.S)
    assert match, f"the README lost its tested {name} example"
    root = os.environ.get("EXPLAINREG_DATA", "../shared/data")
    return match.group(1).replace('"../shared/data"', repr(root))


def test_readme_text_example_runs_and_decomposes_exactly():
    namespace: dict = {}
    exec(compile(_block("text"), str(README), "exec"), namespace)
    model, ids, y, extras = (namespace[k] for k in ("model", "ids", "y", "extras"))
    logits = model(ids)
    torch.testing.assert_close(namespace["rel"] + namespace["irrel"], logits, atol=1e-4, rtol=1e-4)
    out = namespace["objective"](model, ids, y, **extras)
    out.loss.backward()
    assert model.embedding.weight.grad is not None and model.embedding.weight.grad.abs().sum() > 0


def test_readme_time_series_example_runs():
    namespace: dict = {}
    exec(compile(_block("time-series"), str(README), "exec"), namespace)
    assert tuple(namespace["gunpoint"].x.shape) == (50, 1, 150)
    scores = namespace["aup_aur"](namespace["a"], namespace["bench"].extras["ground_truth"])
    assert 0 <= float(scores["aup"]) <= 1 and 0 <= float(scores["aur"]) <= 1
    out = namespace["objective"](namespace["model"], namespace["bench"].x, namespace["bench"].y)
    assert torch.isfinite(out.loss)

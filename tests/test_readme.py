"""The README's "own model and masks" example runs as written, and CDEP does what it claims."""
from __future__ import annotations

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
    assert "share of the logits that comes from the corner" in capsys.readouterr().out
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

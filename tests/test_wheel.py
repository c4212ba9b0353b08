"""The release: ``python -m build`` makes an sdist and a wheel; the wheel, installed into a fresh virtual
environment (the pinned torch first, the rest under constraints.txt), runs ``explainreg --help`` and the
quick constraints study on its bundled MNIST subset, outside the checkout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import explainreg

pytestmark = [pytest.mark.slow, pytest.mark.synthetic]
ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 1200) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def test_wheel_installs_in_a_fresh_venv_and_runs_the_quick_study(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=tmp_path)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    assert wheels[0].name == f"explainreg-{explainreg.__version__}-py3-none-any.whl"

    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python, cli = env_dir / "bin" / "python", env_dir / "bin" / "explainreg"
    run([str(python), "-m", "pip", "install", "-q", TORCH], cwd=tmp_path)
    run([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheels[0])], cwd=tmp_path)
    assert TORCH.split("==")[1] in run([str(python), "-c", "import torch; print(torch.__version__)"], cwd=tmp_path)

    work = tmp_path / "elsewhere"                 # outside the checkout: only the installed package is importable
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("EXPLAINREG_DATA", "PYTHONPATH")}
    env.update(HOME=str(work), OMP_NUM_THREADS="1")   # no data root and an empty cache: the bundled subset
    where = run([str(python), "-c", "import explainreg, pathlib; print(pathlib.Path(explainreg.__file__).parent)"],
                cwd=work, env=env)
    assert str(env_dir) in where and str(ROOT) not in where
    assert "study" in run([str(cli), "--help"], cwd=work, env=env)
    assert (Path(where.strip()) / "py.typed").exists()

    out = run([str(cli), "study", "constraints", "--quick", "--out", "quick"], cwd=work, env=env)
    assert "bundled" in out.lower()
    results = json.loads((work / "quick" / "results.json").read_text())
    assert (work / "quick" / "report.html").exists() and results

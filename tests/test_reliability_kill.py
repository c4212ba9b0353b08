"""kill -9 at random points of a real MNIST training run, then resume: the weights, the optimiser
state, ``history.json`` (but its wall-clock ``seconds``) and ``steps.json`` equal those of an
uninterrupted run. Every run is a subprocess with one thread, so the uninterrupted reference and
the killed-and-resumed run compute the same floating-point operations."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from explainreg.data.sources import BUNDLED_DIR

# a small real run: 150 images of the bundled MNIST subset, CNN3b, Symmetry (random angles: the
# objective's generator must carry over), terms logged every 2 steps
TRAIN_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
import explainreg as er
from explainreg.training import TrainConfig, train
out, epochs = sys.argv[1], int(sys.argv[2])
data = er.data.load_dataset("mnist", "train", root=sys.argv[3], limit=150)
test = er.data.load_dataset("mnist", "test", root=sys.argv[3], limit=100)
torch.manual_seed(1)
model = er.models.cnn3b()
objective = er.Objective({"symmetry": 0.1}, seed=1)
config = TrainConfig(epochs=epochs, batch_size=30, seed=1, log_every=2, progress=False)
train(model, objective, data, test, config=config, run_dir=out, resume="auto")
"""
CLI_SCRIPT = ("import sys, torch; torch.set_num_threads(1); from explainreg.cli import main; "
              "sys.exit(main(sys.argv[1:]))")


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _script_cmd(out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-c", TRAIN_SCRIPT, str(out), str(epochs), str(BUNDLED_DIR)]


def _cli_cmd(out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-c", CLI_SCRIPT, "train", "--data-root", str(BUNDLED_DIR), "--limit-train", "400",
            "--limit-test", "100", "--epochs", str(epochs), "--batch-size", "40", "--penalty", "symmetry=0.1",
            "--log-every", "3", "--seed", "2", "--no-progress", "--resume=auto", "--out", str(out)]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def _kill_at(cmd: list[str], ready, delay: float) -> bool:
    """Start ``cmd``, wait until ``ready()`` (or it exits), sleep ``delay`` s, kill -9.
    Returns whether the kill hit a running process."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    while proc.poll() is None and not ready() and time.monotonic() - started < 120:
        time.sleep(0.02)
    time.sleep(delay)
    hit = proc.poll() is None
    if hit:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    if not hit:
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    proc.stderr.close()
    return hit


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def _assert_same_run(reference: Path, resumed: Path) -> None:
    a = torch.load(reference / "checkpoint.pt", weights_only=False)
    b = torch.load(resumed / "checkpoint.pt", weights_only=False)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    opt_a, opt_b = a["optimizer"], b["optimizer"]
    assert opt_a["param_groups"] == opt_b["param_groups"]
    assert opt_a["state"].keys() == opt_b["state"].keys()
    for index in opt_a["state"]:
        for name, value in opt_a["state"][index].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(opt_b["state"][index][name])), (index, name)
    assert a["step"] == b["step"] and torch.equal(a["objective_rng"], b["objective_rng"])
    assert json.loads((reference / "steps.json").read_text()) == json.loads((resumed / "steps.json").read_text())
    history_a = json.loads((reference / "history.json").read_text())
    history_b = json.loads((resumed / "history.json").read_text())
    assert _without_seconds(history_a) == _without_seconds(history_b)
    assert not list(resumed.glob(".*.tmp")), "temporary files left behind"


@pytest.mark.slow  # three subprocesses; about 10 s alone, 30 s on a loaded machine (the in-process variant:
# tests/test_reliability.py::test_crash_mid_epoch_then_resume_repeats_history_and_steps_exactly)
def test_kill_9_after_the_first_checkpoint_then_resume_repeats_the_run_exactly(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _run(_script_cmd(reference, 2))
    steps = json.loads((reference / "steps.json").read_text())
    assert [s["step"] for s in steps] == list(range(1, 11, 2))  # 5 batches an epoch, logged every 2 steps
    # killed during epoch 2, once epoch 1's checkpoint is on disk
    assert _kill_at(_script_cmd(killed, 2), lambda: (killed / "checkpoint.pt").is_file(), 0.0)
    state = torch.load(killed / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 0 and not state["finished"]
    _run(_script_cmd(killed, 2))
    _assert_same_run(reference, killed)


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_repeats_the_run_exactly(tmp_path):
    """Five kills at random moments of a 3-epoch command-line run (seeded), each followed by
    ``--resume``, some of them during start-up, some mid-epoch, some while files are written."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _run(_cli_cmd(reference, 3))
    epoch_seconds = sum(r["seconds"] for r in json.loads((reference / "history.json").read_text())) / 3
    rng = random.Random(12)
    hits = 0
    log = killed / "train.log"
    for _ in range(5):
        delay = rng.uniform(0, 1.5 * epoch_seconds)
        before = log.stat().st_size if log.is_file() else -1  # ready: training has started (or resumed)
        hits += _kill_at(_cli_cmd(killed, 3), lambda: log.is_file() and log.stat().st_size > before, delay)
        if (killed / "checkpoint.pt").is_file() and torch.load(killed / "checkpoint.pt",
                                                                weights_only=False)["finished"]:
            break
    assert hits >= 2
    _run(_cli_cmd(killed, 3))
    _assert_same_run(reference, killed)

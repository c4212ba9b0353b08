"""Training and run folders under a user's own habits: data a classifier cannot learn from, a
mistyped ``--resume``, the objective's seed and state, resumed random draws, temporary files,
two trainings in one folder, full disks, frozen or meta models, BatchNorm's batch of one, labels
beyond the model's outputs and ``nn.DataParallel``. Real MNIST throughout."""
from __future__ import annotations

import errno
import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import explainreg as er
from explainreg import runs
from explainreg.cli import main
from explainreg.data import ArrayDataset
from explainreg.data.folder import ImageFolder
from explainreg.data.sources import BUNDLED_DIR
from explainreg.training import TrainConfig, train


@pytest.fixture(scope="module")
def small(mnist_train_small):
    return mnist_train_small.take(300)


@pytest.fixture(scope="module")
def test_small(mnist_test):
    return mnist_test.take(100)


def _config(epochs=1, **kw):
    return TrainConfig(**{"epochs": epochs, "batch_size": 50, "seed": 0, "progress": False, "log_every": 2, **kw})


def _mlp(outputs=10, dropout=0.0, norm=False):
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(784, 32)] + ([nn.BatchNorm1d(32)] if norm else []) + [nn.ReLU()]
    return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []), nn.Linear(32, outputs))


def _subprocess_env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


# ---------------------------------------------------------------- data a classifier cannot learn from
def _image_folder(root: Path, data: ArrayDataset, classes: dict[int, str]) -> Path:
    """Real MNIST digits written as PNG files into ROOT/<class name>/ (one folder per label in ``classes``)."""
    for i in range(len(data)):
        label = int(data.y[i])
        if label in classes:
            (root / classes[label]).mkdir(parents=True, exist_ok=True)
            pixels = (data.x[i, 0] * 255).round().byte().numpy()
            Image.fromarray(pixels, mode="L").save(root / classes[label] / f"{i}.png")
    return root


def test_an_image_folder_of_one_class_is_refused_before_training(small, tmp_path, capsys):
    folder = _image_folder(tmp_path / "digits", small.take(60), {3: "three"})
    data = ImageFolder(folder, mode="L")
    with pytest.raises(ValueError, match=r"one class only \(label 0 = 'three', \d+ examples\)"):
        train(_mlp(), None, data, config=_config())
    assert main(["train", "--data", f"folder:{folder}", "--mode", "L", "--model", "cnn3b", "--epochs", "1",
                 "--workers", "0", "--no-progress", "--out", str(tmp_path / "run")]) == 2
    assert "one class only" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_empty_training_test_or_validation_sets_are_refused(small, test_small):
    with pytest.raises(ValueError, match="train_set is empty .*0 steps"):
        train(_mlp(), None, small.take(0), test_small, config=_config())
    with pytest.raises(ValueError, match="test_set is empty .*recorded as 0.0"):
        train(_mlp(), None, small, test_small.take(0), config=_config())
    with pytest.raises(ValueError, match="val_set is empty .*selected on it"):
        train(_mlp(), None, small, test_small, val_set=test_small.take(0), config=_config(select="best_val_accuracy"))


# ---------------------------------------------------------------- --resume on a folder without a run
def test_resume_on_a_folder_without_a_run_is_refused_and_names_close_runs(small, test_small, tmp_path, capsys):
    train(_mlp(), None, small, test_small, config=_config(), run_dir=tmp_path / "mnist-lr0.01")
    typo = tmp_path / "mnist-lr0.1"
    with pytest.raises(FileNotFoundError) as caught:
        train(_mlp(), None, small, test_small, config=_config(2), run_dir=typo, resume=True)
    message = str(caught.value)
    assert str(typo) in message and "does not exist" in message and "drop --resume" in message
    assert str(tmp_path / "mnist-lr0.01") in message  # the run the user probably meant
    assert not typo.exists()  # nothing was created under the mistyped name
    args = ["train", "--limit-train", "100", "--limit-test", "50", "--epochs", "1", "--no-progress", "--out", str(typo)]
    assert main(args + ["--resume"]) == 2
    assert "drop --resume" in capsys.readouterr().err
    assert main(args + ["--resume=auto"]) == 0  # for job scripts that are started again: continue or start
    assert (typo / "checkpoint.pt").is_file()


# ---------------------------------------------------------------- the objective's seed and state
def test_the_objective_seed_is_recorded_in_the_run_config(small, test_small, tmp_path):
    for seed in (0, 1):
        train(_mlp(), er.Objective({"symmetry": 0.1}, seed=seed), small, test_small, config=_config(),
              run_dir=tmp_path / f"s{seed}")
    configs = [json.loads((tmp_path / f"s{seed}" / "config.json").read_text()) for seed in (0, 1)]
    assert [c["objective_seed"] for c in configs] == [0, 1]
    with pytest.raises(ValueError, match="objective_seed: 1 → 0"):  # a resume cannot mix the draws of two seeds
        train(_mlp(), er.Objective({"symmetry": 0.1}, seed=0), small, test_small, config=_config(2),
              run_dir=tmp_path / "s1", resume=True)
    assert "seed=1" in repr(er.Objective(seed=1))


def test_objective_state_dict_restores_the_penalty_draws(small):
    model = _mlp()
    x, y = small.x[:20], small.y[:20]

    def draws(objective, n):
        return [objective(model, x, y).terms["symmetry"] for _ in range(n)]

    whole = er.Objective({"symmetry": 0.1}, seed=7)
    expected = draws(whole, 8)
    first = er.Objective({"symmetry": 0.1}, seed=7)
    draws(first, 3)
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)  # a user's own checkpoint loop
    saved.seek(0)
    fresh = er.Objective({"symmetry": 0.1}, seed=0)
    fresh.load_state_dict(torch.load(saved, weights_only=False))
    assert fresh.calls == 3
    assert draws(fresh, 5) == expected[3:]
    assert len(set(expected)) > 1  # the draws do differ from batch to batch


def test_a_learnable_penalty_weight_is_refused():
    weight = torch.tensor(0.1, requires_grad=True)
    with pytest.raises(TypeError, match="requires grad .*learnable weight.*drives λ to 0"):
        er.Objective({"gradient_l1": weight})
    assert er.Objective({"gradient_l1": torch.tensor(0.5)}).weights == [0.5]  # a fixed tensor is a number


# ---------------------------------------------------------------- resumed runs draw the same random numbers
class _NoisyMLP(nn.Module):
    """Dropout (torch's generator), input noise from NumPy's and a scale from Python's ``random``."""

    def __init__(self):
        super().__init__()
        self.net = _mlp(dropout=0.5)

    def forward(self, x):
        if self.training:
            x = x + 0.05 * torch.from_numpy(np.random.standard_normal(x.shape)).float() * random.random()
        return self.net(x)


def test_a_dropout_model_killed_after_an_epoch_and_resumed_equals_the_uninterrupted_run(small, test_small, tmp_path):
    reference = _NoisyMLP()
    train(reference, None, small, test_small, config=_config(2), run_dir=tmp_path / "whole")
    cut = _NoisyMLP()
    train(cut, None, small, test_small, config=_config(1), run_dir=tmp_path / "cut")
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # a new process: other global states
    resumed = _NoisyMLP()
    train(resumed, None, small, test_small, config=_config(2), run_dir=tmp_path / "cut", resume=True)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


# ---------------------------------------------------------------- temporary files and the folder lock
def test_only_the_trainers_own_temporaries_are_removed(small, test_small, tmp_path):
    run = tmp_path / "run"
    train(_mlp(), None, small, test_small, config=_config(), run_dir=run)
    mine = [run / ".notes.tmp", run / ".results.json.a1b2c3d4.tmp", run / ".checkpoint.pt.tmp"]
    for path in mine:
        path.write_text("the user's own")
    left = [run / ".checkpoint.pt.k9x2ab_c.tmp", run / ".history.json.0a1b2c3d.tmp"]  # kill -9 during a save
    for path in left:
        path.write_bytes(b"partial")
    train(_mlp(), None, small, test_small, config=_config(2), run_dir=run, resume=True)
    assert all(p.read_text() == "the user's own" for p in mine)
    assert not any(p.exists() for p in left)


def test_a_second_training_on_a_busy_folder_is_refused_and_touches_nothing(small, test_small, tmp_path, capsys):
    run = tmp_path / "run"
    train(_mlp(), None, small, test_small, config=_config(), run_dir=run)
    with runs.RunLock(run):  # a training that is writing its next checkpoint
        writing = run / ".checkpoint.pt.x7y8z9ab.tmp"
        writing.write_bytes(b"half a checkpoint")
        with pytest.raises(runs.RunBusyError, match=f"{run} is in use by another training \\(process {os.getpid()}"):
            train(_mlp(), None, small, test_small, config=_config(2), run_dir=run, resume=True)
        assert main(["train", "--limit-train", "100", "--limit-test", "50", "--epochs", "2", "--no-progress",
                     "--out", str(run), "--resume"]) == 2
        assert "is in use by another training" in capsys.readouterr().err
        assert writing.read_bytes() == b"half a checkpoint"
    assert not (run / runs.LOCK).exists()
    writing.unlink()


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(small, test_small, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / runs.LOCK).write_text(json.dumps({"pid": dead.pid, "host": "here", "started": "earlier"}))
    train(_mlp(), None, small, test_small, config=_config(), run_dir=run)
    assert f"took over the lock of {run} left by process {dead.pid}" in (run / "train.log").read_text()
    assert not (run / runs.LOCK).exists()


WAITING_TRAINER = """
import sys, time, torch
from pathlib import Path
torch.set_num_threads(1)
import explainreg as er
from explainreg.training import TrainConfig, train
out, flag = Path(sys.argv[1]), Path(sys.argv[2])
data = er.data.load_dataset("mnist", "train", root=sys.argv[3], limit=150)
test = er.data.load_dataset("mnist", "test", root=sys.argv[3], limit=50)
torch.manual_seed(int(sys.argv[4]))

def wait(epoch, record):  # after epoch 1: wait for the test's signal (at most 120 s)
    started = time.monotonic()
    while epoch == 1 and not flag.exists() and time.monotonic() - started < 120:
        time.sleep(0.05)

train(er.models.cnn3b(), None, data, test, config=TrainConfig(epochs=2, batch_size=50, seed=int(sys.argv[4]),
      progress=False), run_dir=out, on_epoch_end=wait)
print("finished")
"""


@pytest.mark.slow  # two subprocesses (about 15 s)
def test_two_trainings_launched_into_one_folder_the_second_is_refused(tmp_path):
    run, flag = tmp_path / "run", tmp_path / "go-on"
    command = [sys.executable, "-c", WAITING_TRAINER, str(run), str(flag), str(BUNDLED_DIR)]
    first = subprocess.Popen(command + ["0"], env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        started = time.monotonic()
        while not (run / "checkpoint.pt").is_file() and first.poll() is None and time.monotonic() - started < 120:
            time.sleep(0.05)
        assert first.poll() is None, first.stderr.read()
        second = subprocess.run(command + ["1"], env=_subprocess_env(), capture_output=True, text=True, timeout=120)
        assert second.returncode != 0 and "is in use by another training" in second.stderr
        assert f"process {first.pid}" in second.stderr
    finally:
        flag.touch()
        out, err = first.communicate(timeout=180)
    assert first.returncode == 0 and "finished" in out, err[-2000:]
    assert len(json.loads((run / "history.json").read_text())) == 2
    assert json.loads((run / "config.json").read_text())["train"]["seed"] == 0  # the first run's, whole
    assert not (run / runs.LOCK).exists()


def test_the_default_run_folder_differs_for_other_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", "--limit-train", "60", "--limit-test", "20", "--epochs", "1", "--batch-size", "30",
            "--no-progress"]
    assert main(args + ["--lr", "0.001"]) == 0
    assert main(args + ["--lr", "0.01"]) == 0
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.startswith("mnist-cnn3b-plain-s0-") for f in folders)
    lrs = {json.loads((tmp_path / "runs" / f / "config.json").read_text())["train"]["lr"] for f in folders}
    assert lrs == {0.001, 0.01}
    assert main(args + ["--lr", "0.01", "--resume"]) == 0  # the same settings find their folder again
    assert runs.default_run_name("x", {"lr": 0.01, "out": "a"}) == runs.default_run_name("x", {"lr": 0.01, "out": "b"})


# ---------------------------------------------------------------- full disks
def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_says_so(small, test_small, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(_mlp(), None, small, test_small, config=_config(), run_dir=run)
    before = (run / "checkpoint.pt").read_bytes()

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs._RecordingWriter, "write", full)
    with pytest.raises(OSError, match=r"could not write .*checkpoint.pt: the disk is full .*the previous "
                                      r"checkpoint.pt is kept unchanged"):
        train(_mlp(), None, small, test_small, config=_config(2), run_dir=run, resume=True)
    monkeypatch.undo()
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp")) and not (run / runs.LOCK).exists()
    train(_mlp(), None, small, test_small, config=_config(2), run_dir=run, resume=True)  # space again: it goes on
    assert runs.load_checkpoint(run / "checkpoint.pt")["epoch"] == 1


FILE_SIZE_LIMITED = """
import resource, sys, torch
torch.set_num_threads(1)
import explainreg as er
from explainreg.training import TrainConfig, train
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
data = er.data.load_dataset("mnist", "train", root=sys.argv[3], limit=150)
torch.manual_seed(0)
train(er.models.cnn3b(), None, data, config=TrainConfig(epochs=2, batch_size=50, progress=False), run_dir=sys.argv[1],
      resume=True)
"""


def test_a_file_size_limit_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    run = tmp_path / "run"
    data = er.data.load_dataset("mnist", "train", root=BUNDLED_DIR, limit=150)
    torch.manual_seed(0)
    train(er.models.cnn3b(), None, data, config=TrainConfig(epochs=1, batch_size=50, progress=False), run_dir=run)
    before = (run / "checkpoint.pt").read_bytes()
    limit = len(before) // 2  # `ulimit -f`: the next checkpoint cannot be written
    done = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMITED, str(run), str(limit), str(BUNDLED_DIR)],
                          env=_subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "the file-size limit (ulimit -f) was reached" in done.stderr and "kept unchanged" in done.stderr
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp"))


# ---------------------------------------------------------------- unclear errors made clear
def test_the_meta_device_is_refused_with_what_to_do(small, test_small):
    with pytest.raises(ValueError, match="device='meta' holds shapes without values"):
        train(_mlp(), None, small, test_small, config=_config(device="meta"))
    with torch.device("meta"):
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ValueError, match=r"meta device .*to_empty"):
        train(model, None, small, test_small, config=_config())
    meta_data = ArrayDataset(small.x.to("meta"), small.y)
    with pytest.raises(ValueError, match="train_set holds tensors on the meta device"):
        train(_mlp(), None, meta_data, config=_config())


def test_a_config_json_that_is_not_an_object_is_named(small, test_small, tmp_path):
    run = tmp_path / "run"
    torch.manual_seed(0)
    train(er.models.cnn3b(), None, small, test_small, config=_config(), run_dir=run)
    (run / "config.json").write_text("[1, 2, 3]\n")
    with pytest.raises(runs.DamagedRunError, match=r"config.json holds a JSON list, not an object"):
        runs.load_run(run)
    with pytest.raises(runs.DamagedRunError, match="not an object"):
        train(er.models.cnn3b(), None, small, test_small, config=_config(2), run_dir=run, resume=True)


def test_a_model_with_every_parameter_frozen_is_refused(small, test_small):
    model = _mlp()
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="Sequential has no trainable parameters"):
        train(model, None, small, test_small, config=_config())
    with pytest.raises(ValueError, match=r"no trainable parameters: .*\(freeze=\['1', '3'\]\)"):
        train(_mlp(), None, small, test_small, config=_config(freeze=("1", "3")))


def test_a_batchnorm_net_leaves_out_a_last_batch_of_one_with_a_note(mnist_train_small, test_small, tmp_path):
    data = mnist_train_small.take(301)  # 6 batches of 50 and one of 1
    with pytest.warns(UserWarning, match=r"last batch of each epoch would hold 1 example \(301 = 6 × 50 \+ 1\).*"
                                         r"batch_size=51 or 49"):
        result = train(_mlp(norm=True), None, data, test_small, config=_config(log_every=1), run_dir=tmp_path / "run")
    assert [s["step"] for s in result.steps] == list(range(1, 7))
    assert "BatchNorm cannot train on one example" in (tmp_path / "run" / "train.log").read_text()


def test_labels_beyond_the_models_outputs_are_found_before_training(small, test_small):
    with pytest.raises(ValueError, match=r"train_set has labels from 0 to 9, but the model gives 5 outputs"):
        train(_mlp(outputs=5), None, small, test_small, config=_config())
    low = small.take(torch.nonzero(small.y < 5).flatten())  # the test set still has digits 5-9
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"test_set has labels from 0 to 9, but the model gives 5 outputs .*"
                                         r"num_classes=10"):
        train(_mlp(outputs=5), None, low, test_small, config=_config(5))
    assert time.perf_counter() - started < 5  # before the first epoch, not after it


def test_a_data_parallel_model_is_unwrapped_in_its_run_folder(small, test_small, tmp_path):
    torch.manual_seed(0)
    wrapped = nn.DataParallel(er.models.cnn3b())
    train(wrapped, None, small, test_small, config=_config(), run_dir=tmp_path / "run")
    model, config = runs.load_run(tmp_path / "run")
    assert config["model"] == "cnn3b"
    assert not any(k.startswith("module.") for k in runs.load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"])
    for a, b in zip(wrapped.module.parameters(), model.parameters()):
        assert torch.equal(a, b)

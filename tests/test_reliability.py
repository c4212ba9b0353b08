"""Bad inputs and faults a new user meets, on real MNIST: each gives a clear error (naming the
parameter or file and what to do) or loses nothing. One test per row of the reliability table
in notes/reliability.md."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from torch import nn

import explainreg as er
from explainreg.cli import main
from explainreg.data import load_dataset
from explainreg.data.sources import BUNDLED_DIR, SOURCES
from explainreg.penalties import functional as P
from explainreg.training import TrainConfig, train

DATA = Path(os.environ["EXPLAINREG_DATA"])


@pytest.fixture(scope="module")
def small(mnist_train_small):
    return mnist_train_small.take(300)


@pytest.fixture(scope="module")
def test_small(mnist_test):
    return mnist_test.take(100)


def _config(epochs=1, **kw):
    return TrainConfig(epochs=epochs, batch_size=50, seed=0, progress=False, log_every=2, **kw)


def _train(data, test, run_dir, epochs=1, model=None, objective=None, resume=False, **kw):
    torch.manual_seed(0)
    model = model if model is not None else er.models.cnn3b()
    objective = objective if objective is not None else er.Objective({"gradient_l1": 0.1}, seed=0)
    return model, train(model, objective, data, test, config=_config(epochs, **kw), run_dir=run_dir, resume=resume)


def _without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


# ---------------------------------------------------------------- 1. Python run folders are evaluable
def test_a_run_folder_written_by_python_train_can_be_evaluated(small, test_small, tmp_path, capsys):
    run = tmp_path / "smooth"
    model, _ = _train(small, test_small, run)  # README: train(model, objective, ..., run_dir="runs/smooth")
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "cnn3b" and config["model_kwargs"] == {"num_classes": 10, "in_channels": 1}
    assert config["dataset"] == "mnist" and config["normalize"] is False
    rebuilt, _ = er.runs.load_run(run)
    x = test_small.x[:8]
    assert torch.equal(rebuilt(x), model.eval()(x))
    assert main(["evaluate", str(run), "--metrics", "morf", "--limit", "16", "--batch-size", "8", "--no-progress"]) == 0
    assert json.loads((run / "metrics.json").read_text())["n_images"] == 16


def test_a_run_of_an_unregistered_model_says_what_to_pass(small, test_small, tmp_path, capsys):
    run = tmp_path / "custom"
    custom = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    _train(small, test_small, run, model=custom)
    assert json.loads((run / "config.json").read_text())["model"] is None
    with pytest.raises(ValueError, match="does not say how to rebuild the model.*MODELS.register"):
        er.runs.load_run(run)
    assert main(["evaluate", str(run), "--metrics", "morf", "--no-progress"]) == 2
    assert "run_info={'model': NAME" in capsys.readouterr().err


# ---------------------------------------------------------------- 2. resume refuses changed settings
def test_resume_with_other_settings_is_refused_with_the_differences(small, test_small, tmp_path):
    run = tmp_path / "run"
    _train(small, test_small, run)
    with pytest.raises(ValueError, match=r"train\.lr: 0\.001 → 0\.01"):
        torch.manual_seed(0)
        model = er.models.cnn3b()
        train(model, er.Objective({"gradient_l1": 0.1}), small, test_small, run_dir=run, resume=True,
              config=TrainConfig(epochs=1, batch_size=50, lr=1e-2, progress=False, log_every=2))
    with pytest.raises(ValueError, match=r"penalties: gradient_l1=0\.1 \(score=\"logit\"\) → smoothness=0\.1"):
        _train(small, test_small, run, objective=er.Objective({"smoothness": 0.1}), resume=True)
    with pytest.raises(ValueError, match=r"train_source: .* → .*, 200 rows"):
        _train(small.take(200), test_small, run, resume=True)
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 1e-3  # untouched


def test_resume_with_more_epochs_extends_and_equals_an_uninterrupted_run(small, test_small, tmp_path):
    # best-on-validation selection: the finished 1-epoch run must continue from its last weights
    val = test_small
    torch.manual_seed(0)
    one = er.models.cnn3b()
    train(one, er.Objective({"gradient_l1": 0.1}, seed=0), small, test_small, val_set=val,
          config=_config(1, select="best_val_accuracy"), run_dir=tmp_path / "short")
    torch.manual_seed(0)
    two = er.models.cnn3b()
    extended = train(two, er.Objective({"gradient_l1": 0.1}, seed=0), small, test_small, val_set=val,
                     config=_config(2, select="best_val_accuracy"), run_dir=tmp_path / "short", resume=True)
    torch.manual_seed(0)
    ref = er.models.cnn3b()
    reference = train(ref, er.Objective({"gradient_l1": 0.1}, seed=0), small, test_small, val_set=val,
                      config=_config(2, select="best_val_accuracy"), run_dir=tmp_path / "ref")
    for a, b in zip(ref.parameters(), two.parameters()):
        assert torch.equal(a, b)
    assert _without_seconds(extended.history) == _without_seconds(reference.history)
    assert extended.steps == reference.steps
    assert json.loads((tmp_path / "short" / "config.json").read_text())["train"]["epochs"] == 2
    # fewer epochs than already trained cannot be undone
    with pytest.raises(ValueError, match=r"train\.epochs: 2 → 1 \(the run has already trained 2 epochs\)"):
        torch.manual_seed(0)
        train(er.models.cnn3b(), er.Objective({"gradient_l1": 0.1}, seed=0), small, test_small, val_set=val,
              config=_config(1, select="best_val_accuracy"), run_dir=tmp_path / "short", resume=True)


def test_cli_resume_with_another_lr_is_refused(tmp_path, capsys):
    base = ["train", "--limit-train", "300", "--limit-test", "100", "--epochs", "1", "--batch-size", "50",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert main(base + ["--penalty", "smoothness"]) == 0
    assert main(base + ["--penalty", "smoothness", "--lr", "0.01", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "train.lr: 0.001 → 0.01" in err and "another output folder" in err
    assert main(base + ["--penalty", "fidelity=1", "--resume"]) == 2
    assert "penalties: smoothness=0.1" in capsys.readouterr().err


# ---------------------------------------------------------------- 3. resume repeats steps.json and history.json
def test_crash_mid_epoch_then_resume_repeats_history_and_steps_exactly(small, test_small, tmp_path, monkeypatch):
    full_model, full = _train(small, test_small, tmp_path / "full", epochs=3,
                              objective=er.Objective({"symmetry": 0.1}, seed=0))
    # a crash in the middle of epoch 2 (as kill -9 would: after epoch 1's checkpoint, before epoch 2's)
    calls = {"n": 0}
    original = torch.optim.Adam.step

    def crashing_step(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 9:  # 6 batches an epoch: step 9 is in epoch 2
            raise KeyboardInterrupt
        return original(self, *a, **kw)

    monkeypatch.setattr(torch.optim.Adam, "step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        _train(small, test_small, tmp_path / "cut", epochs=3, objective=er.Objective({"symmetry": 0.1}, seed=0))
    monkeypatch.setattr(torch.optim.Adam, "step", original)
    model, resumed = _train(small, test_small, tmp_path / "cut", epochs=3,
                            objective=er.Objective({"symmetry": 0.1}, seed=0), resume=True)
    for a, b in zip(full_model.parameters(), model.parameters()):
        assert torch.equal(a, b)
    steps, history = ([json.loads((tmp_path / r / name).read_text()) for r in ("full", "cut")]
                      for name in ("steps.json", "history.json"))
    assert steps[0] == steps[1] and steps[0] == full.steps
    assert _without_seconds(history[0]) == _without_seconds(history[1])
    assert [s["step"] for s in resumed.steps] == list(range(1, 19, 2))  # 18 steps, logged every 2


def test_a_kill_between_checkpoint_and_history_is_repaired_on_resume(small, test_small, tmp_path):
    run = tmp_path / "run"
    _, full = _train(small, test_small, run, epochs=1)
    (run / "history.json").write_text("[]\n")  # killed after the checkpoint, before history.json
    (run / "steps.json").write_text("[]\n")
    _train(small, test_small, run, epochs=1, resume=True)
    assert _without_seconds(json.loads((run / "history.json").read_text())) == _without_seconds(full.history)
    assert json.loads((run / "steps.json").read_text()) == full.steps


# ---------------------------------------------------------------- 4. damaged .gz data files
@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_gz_data_file_is_named_with_its_md5(tmp_path, damage):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(DATA / "mnist" / name, folder / name)
    bad = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    if damage == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    expected = SOURCES["mnist"].files[bad.name]
    with pytest.raises(ValueError) as info:
        load_dataset("mnist", "test", root=tmp_path, download=False)
    message = str(info.value)
    assert str(bad) in message and expected in message and "download it again" in message
    assert ("truncated" in message) if damage == "truncated" else ("not a valid gzip file" in message)


# ---------------------------------------------------------------- 5. evaluate never loses results
@pytest.fixture()
def mnist_run(small, test_small, tmp_path):
    run = tmp_path / "run"
    _train(small, test_small, run)
    return run


def test_evaluate_checks_that_it_can_write_before_computing(mnist_run, tmp_path, capsys, monkeypatch):
    calls = []
    import explainreg.metrics as metrics

    original = metrics.build_metric
    monkeypatch.setattr(metrics, "build_metric", lambda *a, **k: calls.append(a) or original(*a, **k))
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    # a folder that cannot be created (its parent is a file): refused before any metric is built
    assert main(["evaluate", str(mnist_run), "--metrics", "morf", "--output", str(blocked / "out"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write the metrics into {blocked / 'out'}" in err and "nothing was computed" in err
    assert calls == []
    if os.geteuid() != 0:  # root writes into read-only folders anyway
        mnist_run.chmod(0o555)
        try:
            assert main(["evaluate", str(mnist_run), "--metrics", "morf", "--no-progress"]) == 2
            assert "cannot write the metrics" in capsys.readouterr().err and calls == []
        finally:
            mnist_run.chmod(0o755)


def test_evaluate_writes_to_a_fallback_when_writing_fails_after_computing(mnist_run, capsys, monkeypatch):
    import explainreg.runs as runs

    original = runs.atomic_write_json
    failed = []

    def full_disk(path, obj):
        if Path(path).parent == mnist_run and not failed:
            failed.append(path)
            raise OSError(28, "No space left on device")
        return original(path, obj)

    from explainreg.cli import _metrics_store

    monkeypatch.setattr(_metrics_store, "atomic_write_json", full_disk)  # the store evaluate writes through
    assert main(["evaluate", str(mnist_run), "--metrics", "morf,complexity", "--limit", "16", "--batch-size", "8",
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    printed = json.loads(captured.out[: captured.out.rindex("}") + 1])
    fallback = Path(captured.err.split("the results are safe in ")[1].split(":")[0])
    saved = json.loads((fallback / "metrics.json").read_text())
    assert {n: round(r["value"], 4) for n, r in saved["results"]["saliency"].items()} == printed["saliency"]
    assert (fallback / "metrics.csv").is_file() and not (mnist_run / "metrics.json").exists()
    shutil.rmtree(fallback)


# ---------------------------------------------------------------- 6. damaged checkpoint
def test_a_truncated_checkpoint_names_the_file(mnist_run, small, test_small, capsys):
    path = mnist_run / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(er.runs.DamagedRunError, match=f"{path} is damaged .*train again"):
        er.runs.load_run(mnist_run)
    assert main(["evaluate", str(mnist_run), "--no-progress"]) == 2
    assert f"{path} is damaged" in capsys.readouterr().err
    with pytest.raises(er.runs.DamagedRunError, match="checkpoint.pt is damaged"):
        _train(small, test_small, mnist_run, resume=True)


# ---------------------------------------------------------------- 7. the data source a run recorded
def test_evaluate_uses_the_bundled_subset_a_run_trained_on(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EXPLAINREG_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty user cache
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="bundled"):
        assert main(["train", "--no-download", "--limit-train", "300", "--limit-test", "100", "--epochs", "1",
                     "--batch-size", "50", "--no-progress", "--out", str(run)]) == 0
    assert "BUNDLED SUBSET" in capsys.readouterr().out
    assert json.loads((run / "config.json").read_text())["data"] == "bundled"
    assert main(["evaluate", str(run), "--metrics", "morf", "--limit", "16", "--batch-size", "8",
                 "--no-progress"]) == 0
    assert "bundled subset" in capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text())["n_images"] == 16


def test_an_empty_explainreg_data_folder_is_an_error_not_the_bundled_subset(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("EXPLAINREG_DATA", str(tmp_path / "empty"))
    assert main(["train", "--no-download", "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not found; looked in" in err and "$EXPLAINREG_DATA" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- 8. Consistency on (near-)identical images
def _consistency_loop(g, x, predicted, eps, floor):
    """The definition written pair by pair (independent of the batched implementation)."""
    total = 0.0
    gh = P.minmax_normalize(g.detach()).flatten(1).double()
    xf = x.flatten(1).double()
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if predicted[i] != predicted[j]:
                continue
            cg = torch.dot(gh[i], gh[j]) / (gh[i].norm() * gh[j].norm()).clamp_min(1e-12)
            cx = torch.dot(xf[i], xf[j]) / (xf[i].norm() * xf[j].norm()).clamp_min(1e-12)
            total += float((1 - cg) / (max(float(1 - cx), floor) + eps))
    return total / len(x)


def test_consistency_is_bounded_on_constant_and_near_identical_images(trained_cnn3b, mnist_test):
    x = mnist_test.x[:16]
    near = torch.cat([x[:8], x[:8] + 1e-4 * torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))])
    constant = torch.linspace(0.2, 0.8, 16).view(16, 1, 1, 1).expand(16, 1, 28, 28).contiguous()
    for inputs in (near, constant):
        inputs = inputs.clone().requires_grad_(True)
        logits = trained_cnn3b(inputs)
        predicted = logits.argmax(1)
        g = torch.autograd.grad(logits.gather(1, predicted[:, None]).sum(), inputs, create_graph=True)[0]
        value = P.consistency(g, inputs, predicted)
        value_ = float(value.detach())
        pairs = int((predicted[:, None] == predicted[None, :]).triu(1).sum())
        assert 0 < value_ <= pairs * 2 / P.CONSISTENCY_MIN_DISTANCE / len(inputs)
        # float32 1 − cos of near-identical saliency maps (gaps ≈ 1e-4, rounding ≈ 1e-7) divided by the
        # floor 1e-3: 1.2e-4 relative off the float64 loop was seen with one thread
        assert value_ == pytest.approx(_consistency_loop(g, inputs, predicted, 1e-8, 1e-3), rel=1e-3)
        unguarded = float(P.consistency(g, inputs, predicted, min_distance=0.0).detach())
        assert unguarded > 10 * value_  # what the floor prevents (5e5 and more)
        grad = torch.autograd.grad(value, g)[0]
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_consistency_floor_leaves_real_image_pairs_unchanged(trained_cnn3b, mnist_test):
    x = mnist_test.x[:64].clone().requires_grad_(True)
    logits = trained_cnn3b(x)
    predicted = logits.argmax(1)
    g = torch.autograd.grad(logits.gather(1, predicted[:, None]).sum(), x)[0]
    assert torch.equal(P.consistency(g, x, predicted), P.consistency(g, x, predicted, min_distance=0.0))
    with pytest.raises(ValueError, match="min_distance must be ≥ 0"):
        P.consistency(g, x, predicted, min_distance=-1.0)


# ---------------------------------------------------------------- 9. unclear messages made clear
def test_grey_images_without_a_channel_dimension(mnist_test):
    x, y = mnist_test.x[:8, 0], mnist_test.y[:8]  # B×28×28
    with pytest.raises(ValueError, match=r"expects B×C×H×W inputs, got shape \(8, 28, 28\).*x\.unsqueeze\(1\)"):
        er.Objective({"smoothness": 0.1})(er.models.cnn3b(), x, y)
    with pytest.raises(ValueError, match=r"C = 3 channels, got shape \(8, 1, 28, 28\)"):
        er.Objective()(er.models.cnn3b(in_channels=3), x[:, None], y)
    # the same message from the attribution and saliency entry points, not a conv2d shape error
    from explainreg.attribution import attribute
    from explainreg.gradients import input_gradient
    for explain in (lambda m, v: attribute(m, v, y, "saliency"), lambda m, v: input_gradient(m, v, y)):
        with pytest.raises(ValueError, match=r"expects B×C×H×W inputs, got shape \(8, 28, 28\).*x\.unsqueeze\(1\)"):
            explain(er.models.cnn3b(), x)
        with pytest.raises(TypeError, match=r"x is torch.float64 but the model's parameters are torch.float32"):
            explain(er.models.cnn3b(), x[:, None].double())


def test_integer_labels_of_other_dtypes(mnist_test, small, test_small):
    x = mnist_test.x[:8]
    for dtype in (torch.int32, torch.uint8):
        with pytest.raises(TypeError, match=rf"int64 \(torch.long\) class indices, got {dtype}: convert with y\.long"):
            er.Objective({"smoothness": 0.1})(er.models.cnn3b(), x, mnist_test.y[:8].to(dtype))
    # the trainer converts them: the same run as with int64 labels
    as_int32 = er.data.ArrayDataset(small.x, small.y.to(torch.int32), name="mnist")
    a, _ = _train(as_int32, test_small, None)
    b, _ = _train(small, test_small, None)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_inputs_of_another_float_dtype_than_the_model(mnist_test):
    for dtype, hint in ((torch.float64, "x.float()"), (torch.float16, "x.float()")):
        with pytest.raises(TypeError, match=rf"x is {dtype} but the model's parameters are torch.float32.*{hint}"):
            er.Objective({"smoothness": 0.1})(er.models.cnn3b(), mnist_test.x[:4].to(dtype), mnist_test.y[:4])


def test_command_line_values_are_checked(tmp_path, capsys, mnist_run):
    out = str(tmp_path / "x")
    assert main(["train", "--device", "gpu", "--out", out]) == 2
    assert "device 'gpu' is not a device name; use one of 'auto'" in capsys.readouterr().err
    assert main(["train", "--penalty", "symmetry", "--penalty-option", "symmetry.angles=5", "--out", out]) == 2
    assert "symmetry.angles=5: angles takes a list (default (5, 10, 15, 20)); write it e.g. as " \
           "symmetry.angles=[5,10,15,20]" in capsys.readouterr().err
    assert main(["train", "--penalty", "smoothness", "--penalty-option", "smoothness.ofset=2", "--out", out]) == 2
    assert "smoothness has no option 'ofset'; its options: offset" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["train", "--out", str(tmp_path / "file")]) == 2
    assert "is an existing file, not a run folder" in capsys.readouterr().err
    for argv, text in ((["train", "--weight", "abc"], "argument --weight: must be a finite number ≥ 0, got 'abc'"),
                       (["train", "--epochs", "0"], "argument --epochs: must be a whole number ≥ 1, got '0'"),
                       (["evaluate", str(mnist_run), "--batch-size", "0"],
                        "argument --batch-size: must be a whole number ≥ 1, got '0'"),
                       (["study", "constraints", "--epochs", "0"], "argument --epochs: must be a whole number ≥ 1"),
                       (["study", "decoymnist", "--epochs", "0"], "argument --epochs: must be a whole number ≥ 1")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert text in capsys.readouterr().err, argv


def test_train_config_takes_whole_numbers_only():
    with pytest.raises(TypeError, match=r"epochs must be an integer, got 2\.5 \(float\)"):
        TrainConfig(epochs=2.5)
    with pytest.raises(TypeError, match="batch_size must be an integer, got True"):
        TrainConfig(batch_size=True)
    with pytest.raises(TypeError, match="lr must be a finite number"):
        TrainConfig(lr=float("nan"))


# ---------------------------------------------------------------- 10. file permissions and temporary files
def test_run_files_are_readable_like_the_log_and_temporaries_are_cleaned(small, test_small, tmp_path):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        _train(small, test_small, run)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in run.iterdir()}
        assert modes == {n: 0o644 for n in ("config.json", "history.json", "steps.json", "checkpoint.pt", "train.log")}
        leftover = run / ".checkpoint.pt.k9x2.tmp"  # what a kill -9 during a save leaves
        leftover.write_bytes(b"partial")
        er.runs.load_run(run)  # readers ignore it
        _train(small, test_small, run, epochs=2, resume=True)
        assert not leftover.exists()
        os.umask(0o077)
        er.runs.atomic_write_json(run / "private.json", {})
        assert stat.S_IMODE((run / "private.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


# ---------------------------------------------------------------- 11. quick-mode reports are smoke tests
def test_quick_mode_reports_mark_a_smoke_test_without_best_or_spread():
    from explainreg.report import Report, mean_std
    from explainreg.studies.constraints import COLUMNS, SEED_MNIST, Settings
    from explainreg.studies.constraints_report import results_table

    # the seed's published MNIST values as the study's metrics
    metrics = {name: {key: {"value": values[i]} for i, (key, _, _) in enumerate(COLUMNS)}
               for name, values in SEED_MNIST.items()}
    _, quick = results_table(Settings(quick=True), metrics)
    _, full = results_table(Settings(quick=False), metrics)
    assert "**" not in quick.markdown() and "smoke test" in quick.notes
    assert "**98.99 (98.99)**" in full.markdown()  # fidelity's accuracy is the best
    report = Report("t").text("body").smoke_test()
    assert report.markdown(Path(".")).startswith("# t\n\n> **Quick mode: a smoke test, not a result.")
    assert "class='warning'" in report.html()
    assert mean_std(25.0, 0.0, 1) == "25.00 (1 run)" and mean_std(25.0, 1.5, 3) == "25.00 ± 1.50"

"""Data-parallel training under torchrun (gloo, 2 CPU processes) against one process, on real MNIST.

Each torchrun test launches ``tests/_dist_worker.py`` once (several runs per launch: start-up is the
slow part) and compares with the same worker run inside this process."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import explainreg
from explainreg import _dist
from explainreg.modes import unwrap_parallel
from explainreg.objective import Objective
from explainreg.penalties import build_penalty
from explainreg.training import distributed

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_dist_worker.py"
METRICS_WORKER = HERE / "_dist_metrics_worker.py"
#: the folder holding the explainreg this process imported: the workers import the same package
PACKAGE_ROOT = Path(explainreg.__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).with_name("torchrun")
needs_torchrun = pytest.mark.skipif(not TORCHRUN.exists() or not torch.distributed.is_available(),
                                    reason="torchrun / torch.distributed not available")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                          "MASTER_PORT")}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(PACKAGE_ROOT)}


def torchrun(*args, timeout: int = 180, nproc: int = 2) -> str:
    """Run ``torchrun --standalone --nproc_per_node 2 ARGS`` (its own session: on a timeout the whole
    process group, workers included, is killed, so a hang fails the test instead of lingering)."""
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", str(nproc), *map(str, args)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s (a hang?):\n{out[-3000:]}")
    assert proc.returncode == 0, out[-4000:]
    return out


def one_process(*args: str, worker: Path = WORKER) -> None:
    """The worker's ``main`` in this process (no WORLD_SIZE: plain one-process training)."""
    spec = importlib.util.spec_from_file_location(worker.stem, worker)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = sys.argv
    sys.argv = [str(worker), *map(str, args)]
    try:
        module.main()
    finally:
        sys.argv = argv


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ------------------------------------------------------------------------------- in one process
def test_global_batches_partition_each_batch_and_weights_average_to_one():
    n, batch, world = 97, 32, 2
    steps = [distributed.global_batches(n, batch, 3, 1, r, world) for r in range(world)]
    assert len(steps[0]) == len(steps[1]) == 4  # every rank takes every step
    order = distributed.epoch_order(n, 3, 1)
    for s in range(4):
        real = [(i, w, sh) for i, w, sh in (steps[r][s] for r in range(world)) if w > 0]
        assert torch.equal(torch.cat([i for i, _, _ in real]), order[s * batch:(s + 1) * batch])
        assert sum(w for _, w, _ in real) == pytest.approx(world)  # (1/W) Σ_r w_r = 1: a global mean
        for i, _, sh in real:
            assert torch.equal(order[s * batch + sh.offset:s * batch + sh.offset + sh.rows], i)
    index, weight, shard = steps[1][3]  # the last batch has 1 row: rank 1 gets a padded, weight-0 row
    assert weight == 0 and len(index) == 1 and shard.total == 1


def test_shard_rand_keeps_the_ranks_rows_of_the_global_draw():
    full = torch.rand((10, 7), generator=torch.Generator().manual_seed(5))
    for offset, rows in ((0, 5), (5, 5), (3, 4)):
        g = torch.Generator().manual_seed(5)
        _dist.set_shard(_dist.Shard(offset, rows, 10))
        try:
            part = _dist.shard_rand((rows, 7), g, "cpu", torch.float32)
        finally:
            _dist.set_shard(None)
        assert torch.equal(part, full[offset:offset + rows])
        assert torch.equal(torch.rand(3, generator=g), _after(5, 70, 3))  # advanced as for the whole batch


def _after(seed: int, drawn: int, k: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    torch.rand(drawn, generator=g)
    return torch.rand(k, generator=g)


def test_collectives_are_identities_in_one_process():
    rows = torch.arange(6.0).view(3, 2)
    assert not _dist.active()
    assert _dist.gather_rows(rows) is rows
    assert _dist.all_reduce_sum([1, 2.5]) == [1.0, 2.5]
    assert distributed.reduce_counts(3, 1.5, 4) == (3, 1.5, 4)


def test_gradient_sync_mode_follows_the_penalties_and_bad_names_are_refused(monkeypatch):
    assert distributed.resolve_mode(Objective({build_penalty("gradient_l1"): 1.0})) == "ddp"
    assert distributed.resolve_mode(Objective({build_penalty("cdep"): 1.0})) == "allreduce"
    assert distributed.resolve_mode(Objective({build_penalty("cdep"): 1.0}), "ddp") == "ddp"
    monkeypatch.setenv("EXPLAINREG_GRADIENT_SYNC", "allreduce")
    assert distributed.resolve_mode(Objective()) == "allreduce"
    with pytest.raises(ValueError, match="'horovod' is not one of auto, ddp, allreduce"):
        distributed.resolve_mode(Objective(), "horovod")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not a number of processes"):
        distributed.wanted()


def test_a_users_ddp_wrapper_is_unwrapped_for_checkpoints():
    from torch.nn.parallel import DistributedDataParallel

    inner = torch.nn.Linear(2, 2)
    wrapper = DistributedDataParallel.__new__(DistributedDataParallel)  # no process group needed to unwrap
    torch.nn.Module.__init__(wrapper)
    wrapper.module = inner
    assert unwrap_parallel(wrapper) is inner
    assert unwrap_parallel(inner) is inner


# ------------------------------------------------------------------------------------ torchrun
@needs_torchrun
def test_torchrun_matches_one_process_for_gradient_l1_cdep_sgt_on_an_uneven_split(tmp_path):
    """97 images, global batch 32: the last batch has one row, so rank 1 runs a padded, weight-0 row.
    GradientL1 and SGT (random fill) run through DDP, CDEP through the manual all-reduce; Adam."""
    penalties = "gradient_l1,cdep,saliency_guided"
    common = ("--penalty", penalties, "--images", 97, "--batch", 32, "--optimizer", "adam", "--eval", 101)
    torchrun(WORKER, tmp_path / "two", *common)
    one_process(tmp_path / "one", *common)
    for penalty, mode in zip(penalties.split(","), ("ddp", "allreduce", "ddp")):
        one, two = torch.load(tmp_path / f"one.{penalty}.pt"), torch.load(tmp_path / f"two.{penalty}.pt")
        assert two["mode"] == mode
        assert max_difference(one["state"], two["state"]) < 1e-5, penalty
        for k in ("train_ce", f"train_{penalty}", "train_accuracy", "test_accuracy", "test_loss"):
            assert two["history"][0][k] == pytest.approx(one["history"][0][k], rel=1e-5, abs=1e-7), (penalty, k)
        assert len(two["steps"]) == len(one["steps"]) == 4
        for s1, s2 in zip(one["steps"], two["steps"]):
            assert s2["ce"] == pytest.approx(s1["ce"], rel=1e-5)
        expected = torch.load(tmp_path / f"one.{penalty}.pt.rank0")["evaluation"]
        for rank in (0, 1):  # evaluation of 101 test images: each rank's share, summed over both
            got = torch.load(tmp_path / f"two.{penalty}.pt.rank{rank}")["evaluation"]
            assert got["accuracy"] == expected["accuracy"]
            assert got["loss"] == pytest.approx(expected["loss"], rel=1e-6)


@needs_torchrun
def test_resume_under_torchrun_repeats_one_uninterrupted_process(tmp_path):
    """2 epochs in one process vs 1 epoch under torchrun, then a fresh model resumed to 2 epochs;
    rank 0 alone writes the run folder, whose checkpoint has no ``module.`` prefix."""
    common = ("--penalty", "gradient_l1", "--images", 64, "--batch", 24, "--epochs", 2, "--eval", 40)
    torchrun(WORKER, tmp_path / "two", *common, "--resume-at", 1, "--run-dir", tmp_path / "runs")
    one_process(tmp_path / "one", *common)
    one, two = torch.load(tmp_path / "one.gradient_l1.pt"), torch.load(tmp_path / "two.gradient_l1.pt")
    assert max_difference(one["state"], two["state"]) < 1e-5
    assert [r["epoch"] for r in two["history"]] == [1, 2]
    assert two["history"][1]["train_ce"] == pytest.approx(one["history"][1]["train_ce"], rel=1e-5)
    run = tmp_path / "runs" / "gradient_l1"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.pt", "config.json", "history.json", "steps.json",
                                                      "train.log"]
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert not any(k.startswith("module.") for k in state["model"])
    assert max_difference(state["model"], one["state"]) < 1e-5


def _explainreg(*args: str) -> None:
    from explainreg.cli import main

    assert main([str(a) for a in args]) == 0


@needs_torchrun
def test_evaluate_under_torchrun_equals_one_process(tmp_path, capsys):
    """``explainreg evaluate`` of a real MNIST run over 2 ranks: every metric's value, curve and counts as
    in one process (stochastic ones included: their draws are keyed by image index)."""
    _explainreg("train", "--dataset", "mnist", "--limit-train", 300, "--limit-test", 60, "--epochs", 1,
                "--out", tmp_path / "run", "--no-progress", "--device", "cpu")
    metrics = "morf,faithfulness,complexity,gaussian,blocks,faithfulness_correlation"
    common = ("evaluate", tmp_path / "run", "--metrics", metrics, "--attribution", "saliency,random",
              "--limit", 110, "--batch-size", 25, "--no-progress", "--device", "cpu")
    out = torchrun("--no-python", TORCHRUN.with_name("explainreg"), *common, "--output", tmp_path / "two")
    assert "wrote" in out and out.count("wrote") == 1  # rank 0 alone writes
    _explainreg(*common, "--output", tmp_path / "one")
    import json

    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["results"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["results"]
    assert one.keys() == two.keys() == {"none", "saliency", "random"}  # none: the attribution-free ones
    for method in one:
        for name, r in one[method].items():
            got = two[method][name]
            assert got["n_images"] == r["n_images"] == 110, (method, name)
            assert got["value"] == pytest.approx(r["value"], rel=1e-6, abs=1e-9), (method, name)
            assert got.get("curve") == pytest.approx(r.get("curve"), rel=1e-6, abs=1e-9) if "curve" in r else True
            assert (got["n_nan"], got["n_degenerate"]) == (r["n_nan"], r["n_degenerate"])


@needs_torchrun
def test_metric_rows_over_ranks_come_in_data_set_order_and_degenerate_maps_are_summed(tmp_path):
    """50 real MNIST test images in batches of 10, rank r updating with batches r, r + 2, ...: every
    per-image row (MoRF's curves, Complexity's, top-k intersection's and wrong-reason scores: WR's
    threshold is over all maps) in the data set's order, as in one process, and the 10 zeroed maps
    (5 on each rank) counted once each over both ranks."""
    torchrun(METRICS_WORKER, tmp_path / "two")
    one_process(tmp_path / "one", worker=METRICS_WORKER)
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert (one["world"], two["world"]) == (1, 2)
    assert [torch.load(tmp_path / f"two.pt.rank{r}")["images"] for r in (0, 1)] == [30, 20]
    for name in ("morf", "complexity", "top_k_intersection", "wrong_reason"):
        assert two[name]["n_images"] == one[name]["n_images"] == 50
        torch.testing.assert_close(two[name]["per_image"], one[name]["per_image"], rtol=1e-6, atol=1e-9,
                                   equal_nan=True, msg=f"{name}: per-image rows not in data-set order")
        assert two[name]["value"] == pytest.approx(one[name]["value"], rel=1e-6)
    for name in ("morf", "complexity"):
        assert two[name]["n_degenerate"] == one[name]["n_degenerate"] == 10, name


def test_workers_import_the_explainreg_this_process_imports():
    """The torchrun workers get the tested package (an installed one, or a copy on PYTHONPATH), not
    the checkout's ``src`` folder."""
    probe = "import explainreg, pathlib; print(pathlib.Path(explainreg.__file__).resolve())"
    out = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(Path(explainreg.__file__).resolve())


@pytest.mark.slow
@needs_torchrun
def test_explainreg_train_cli_under_torchrun_writes_one_run_equal_to_one_process(tmp_path):
    common = ("train", "--dataset", "mnist", "--limit-train", 90, "--limit-test", 30, "--epochs", 1,
              "--batch-size", 30, "--penalty", "gradient_l1=1", "--no-progress", "--device", "cpu")
    out = torchrun("--no-python", TORCHRUN.with_name("explainreg"), *common, "--out", tmp_path / "two")
    assert out.count("test accuracy:") == 1  # rank 0 alone reports
    _explainreg(*common, "--out", tmp_path / "one")
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["model"]
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)["model"]
    assert max_difference(one, two) < 1e-5

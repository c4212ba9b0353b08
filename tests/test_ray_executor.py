"""Study grids on Ray: a local Ray of 2 CPUs runs the constraints study's models and the report equals
the one from this process and from the local process pool (``--jobs 2``), on real MNIST.

``make install`` installs Ray (the ``ray`` extra). Without it these tests do not run: they skip with a
message saying so, and fail instead when ``$EXPLAINREG_REQUIRE_OPTIONAL`` is set (``make test`` sets
it), so a run that was meant to test the Ray executor cannot pass without testing it."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from explainreg.cli import build_parser, main
from explainreg.studies.constraints import run_study, settings_from_args
from explainreg.studies.executors import check_executor


def _settings(out, *extra: str):
    argv = ["study", "constraints", "--quick", "--out", str(out), "--limit-train", "120", "--limit-test", "40",
            "--eval-images", "16", "--roar-train", "40", "--penalties", "gradient_l1,locality,fidelity", *extra]
    return settings_from_args(build_parser().parse_args(argv))


def _ray():
    """The ``ray`` module, or a loud skip (a failure under ``$EXPLAINREG_REQUIRE_OPTIONAL``)."""
    try:
        import ray
    except ImportError as err:
        message = (f"ray is not installed ({err}): the Ray executor was NOT tested; install it with "
                   "pip install -c constraints.txt -e '.[ray]' (make install does)")
        if os.environ.get("EXPLAINREG_REQUIRE_OPTIONAL"):
            pytest.fail(message)
        pytest.skip(message)
    return ray


def test_a_grid_of_two_runs_on_local_ray_reports_what_one_process_reports(tmp_path):
    ray = _ray()
    small = ("--limit-train", "60", "--limit-test", "20", "--eval-images", "8", "--roar-train", "20",
             "--roar-epochs", "1", "--penalties", "gradient_l1")
    run_study(_settings(tmp_path / "local", *small), jobs=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # the local cluster of 2 CPUs
    try:
        run_study(_settings(tmp_path / "ray", *small), executor="ray")
    finally:
        ray.shutdown()
    local, on_ray = (pd.read_csv(tmp_path / kind / "results.csv") for kind in ("local", "ray"))
    assert list(on_ray["model"]) == ["baseline", "gradient_l1"]
    pd.testing.assert_frame_equal(on_ray, local, rtol=1e-6)


@pytest.mark.slow
def test_a_grid_of_four_runs_on_local_ray_reports_what_the_process_pool_reports(tmp_path):
    ray = _ray()

    run_study(_settings(tmp_path / "pool"), jobs=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # the local cluster of 2 CPUs
    try:
        assert ray.cluster_resources()["CPU"] == 2
        run_study(_settings(tmp_path / "ray"), executor="ray")
    finally:
        ray.shutdown()
    pool, on_ray = (pd.read_csv(tmp_path / kind / "results.csv") for kind in ("pool", "ray"))
    assert list(on_ray["model"]) == ["baseline", "gradient_l1", "locality", "fidelity"]
    pd.testing.assert_frame_equal(on_ray, pool, rtol=1e-6)
    for run in ("baseline", "gradient_l1-w0.1", "locality-w0.1", "fidelity-w0.1"):
        assert (tmp_path / "ray" / "runs" / run / "checkpoint.pt").is_file()


def test_executor_choices_and_address_are_checked(tmp_path):
    with pytest.raises(ValueError, match="executor must be one of local, ray, got 'dask'"):
        check_executor("dask")
    with pytest.raises(ValueError, match="names a Ray cluster; add --executor ray"):
        check_executor("local", "auto")
    assert main(["study", "constraints", "--quick", "--out", str(tmp_path), "--address", "auto"]) == 2

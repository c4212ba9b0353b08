"""Study grids on Ray: a local Ray of 2 CPUs runs the constraints study's models and the report equals
the one from the local process pool (``--jobs 2``), on real MNIST."""
from __future__ import annotations

import pandas as pd
import pytest

from explainreg.cli import build_parser, main
from explainreg.studies.constraints import run_study, settings_from_args
from explainreg.studies.executors import check_executor


def _settings(out):
    argv = ["study", "constraints", "--quick", "--out", str(out), "--limit-train", "120", "--limit-test", "40",
            "--eval-images", "16", "--roar-train", "40", "--penalties", "gradient_l1,locality,fidelity"]
    return settings_from_args(build_parser().parse_args(argv))


@pytest.mark.slow
def test_a_grid_of_four_runs_on_local_ray_reports_what_the_process_pool_reports(tmp_path):
    pytest.importorskip("ray")
    import ray

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
